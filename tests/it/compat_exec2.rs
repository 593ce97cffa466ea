//! Executor semantics as ansible-core's own integration targets exercise
//! them (any_errors_fatal, blocks, failed_when, special_vars_hosts,
//! task-timeout, throttle, group_by, order, environment): host errors and
//! their clearing, the 2.19 error summary of a failed result, forced
//! handlers of an aborted play, the order hosts start in, `group_by`
//! parents. Real playbooks, the real binary, real sshd test hosts.

use serde_json::Value;

use crate::engine::Lab;

/// `meta: clear_host_errors` brings every host of the play back (for the
/// plays after it), and in an `always` it forgives the block's failure: the
/// host goes on with the tasks after the block, as in Ansible.
#[test]
fn clear_host_errors_brings_every_host_back_and_forgives_in_always() {
    let lab = Lab::new(2);
    lab.write(
        "clear.yml",
        r#"
- hosts: testhosts
  gather_facts: false
  tasks:
    - command: "true"
      failed_when: inventory_hostname == 'host2'
    - meta: clear_host_errors

- hosts: testhosts
  gather_facts: false
  tasks:
    - copy:
        dest: "@OUT@/{{ inventory_hostname }}.play2"
        content: "{{ ansible_play_hosts | to_json }}"
    - block:
        - fail:
            msg: failed in the block
      always:
        - meta: clear_host_errors
    - copy:
        dest: "@OUT@/{{ inventory_hostname }}.after"
        content: x
"#,
    );
    let (code, out, err) = lab.run("clear.yml", &[]);
    // The failures stay in the recap (`failed=`), but no host is failed at
    // the end, so the exit code is 0, as ansible-playbook's (checked with
    // ansible-core 2.19.14 on this playbook).
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains("failed=1") && out.contains("failed=2"), "{out}");
    for h in ["host1", "host2"] {
        let hosts: Value = serde_json::from_str(&lab.read(&format!("out/{h}.play2")))
            .unwrap_or_else(|e| panic!("{h} ran the second play ({e})\n{out}"));
        assert_eq!(hosts, serde_json::json!(["host1", "host2"]), "{out}");
        assert!(
            lab.path(&format!("out/{h}.after")).exists(),
            "{h} went on after the block\n{out}"
        );
    }
}

/// A failed result carries ansible-core 2.19's error summary (`exception`,
/// which `failed_when: false` moves to `failed_when_suppressed_exception`),
/// and the run prints Ansible's `[ERROR]` with the task's origin before the
/// result; the command module's times are Python's `datetime` and
/// `timedelta` text; an `environment:` list merges its mappings, `omit`
/// dropping an entry or a name.
#[test]
fn failed_results_carry_the_error_summary_and_environment_lists_merge() {
    let lab = Lab::new(1);
    lab.write(
        "summary.yml",
        r#"
- hosts: testhosts
  gather_facts: false
  tasks:
    - shell: exit 1
      register: plain_fail
      ignore_errors: true
    - shell: exit 1
      failed_when: false
      register: suppressed
    - command: "true"
      failed_when: true
      register: forced
      ignore_errors: true
    - shell: echo "A=$A B=$B C=$C"
      environment:
        - A: one
          B: "{{ omit }}"
        - "{{ omit }}"
        - C: three
      register: env
    - copy:
        dest: "@OUT@/r.json"
        content: "{{ {'plain': plain_fail.exception,
                      'suppressed': [suppressed.exception is defined, suppressed.failed_when_suppressed_exception],
                      'forced': forced.exception,
                      'env': env.stdout,
                      'delta': plain_fail.delta is match('^0:00:0\\d(\\.\\d{6})?$'),
                      'start': plain_fail.start is match('^\\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d:\\d\\d\\.\\d{6}$')} | to_json }}"
"#,
    );
    let (code, out, err) = lab.run("summary.yml", &[]);
    assert_eq!(code, 0, "{out}\n{err}");
    let got: Value = serde_json::from_str(&lab.read("out/r.json")).expect("r.json");
    assert_eq!(
        got,
        serde_json::json!({
            "plain": "(traceback unavailable)",
            "suppressed": [false, "(traceback unavailable)"],
            "forced": "(traceback unavailable)",
            "env": "A=one B= C=three",
            "delta": true,
            "start": true,
        })
    );
    let pb = lab.path("summary.yml").display().to_string();
    let expected = format!(
        "[ERROR]: Task failed: Module failed: non-zero return code\nOrigin: {pb}:5:7\n\n\
         3   gather_facts: false\n4   tasks:\n5     - shell: exit 1\n        ^ column 7\n\nfatal: [host1]: FAILED!"
    );
    // The task's line and the two above it, as Ansible shows them (the
    // file uses no `no_log`).
    assert!(out.contains(&expected), "{out}");
    assert!(
        out.contains("[ERROR]: Task failed: Action failed: ") && !out.contains("\"exception\""),
        "{out}"
    );
}

/// any_errors_fatal aborts the play on every host, and with force_handlers
/// the notified handlers still run on each (Ansible's iterator moves a
/// failed host to its handlers).
#[test]
fn an_aborted_play_still_runs_forced_handlers_on_every_host() {
    let lab = Lab::new(2);
    lab.write(
        "fatal.yml",
        r#"
- hosts: testhosts
  gather_facts: false
  any_errors_fatal: true
  force_handlers: true
  tasks:
    - command: "true"
      notify: record
    - fail:
      when: inventory_hostname == 'host1'
    - copy:
        dest: "@OUT@/{{ inventory_hostname }}.after"
        content: x
  handlers:
    - name: record
      copy:
        dest: "@OUT@/{{ inventory_hostname }}.handler"
        content: x
"#,
    );
    let (code, out, err) = lab.run("fatal.yml", &[]);
    assert_eq!(code, 2, "{out}\n{err}");
    for h in ["host1", "host2"] {
        assert!(
            lab.path(&format!("out/{h}.handler")).exists(),
            "{h} ran its handler\n{out}"
        );
        assert!(!lab.path(&format!("out/{h}.after")).exists(), "{h} stopped\n{out}");
    }
}

/// With fewer forks than hosts, the linear strategy starts hosts in the
/// play's `order:`; a throttle that cannot be an integer names the
/// templating error as Ansible does; `-vv` prints the PLAYBOOK header with
/// the count of plays.
#[test]
fn hosts_start_in_play_order_and_throttle_errors_name_the_cause() {
    let lab = Lab::new(3);
    lab.write(
        "order.yml",
        r#"
- hosts: testhosts
  gather_facts: false
  order: reverse_inventory
  tasks:
    - shell: "echo {{ inventory_hostname }} >> @OUT@/order"
"#,
    );
    let (code, out, err) = lab.run("order.yml", &["--forks", "1", "-vv"]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert_eq!(lab.lines("order"), ["host3", "host2", "host1"], "{out}");
    assert!(
        out.contains("PLAYBOOK: order.yml ***") && out.contains("1 plays in "),
        "{out}"
    );

    lab.write(
        "throttle.yml",
        r#"
- hosts: testhosts
  gather_facts: false
  tasks:
    - debug:
      throttle: "{{ nope }}"
"#,
    );
    let (code, out, err) = lab.run("throttle.yml", &[]);
    assert_eq!(code, 2, "{out}\n{err}");
    assert!(
        out.contains("throttle.yml:5:7: Failed to convert the throttle value to an integer: 'nope' is undefined"),
        "{out}"
    );
}

/// `group_by` with `parents`: the new group becomes a child of each parent
/// (created as needed), its name keeps Ansible's characters (spaces become
/// dashes), and the parents' group_vars apply to the host.
#[test]
fn group_by_nests_the_group_under_its_parents() {
    let lab = Lab::new(1);
    lab.write("group_vars/outer-a.yml", "from_parent: outer-a\n");
    lab.write(
        "group_by.yml",
        r#"
- hosts: testhosts
  gather_facts: false
  tasks:
    - group_by:
        key: "kind {{ inventory_hostname }}"
        parents: [outer-a, outer-b]
      register: joined

- hosts: outer-a
  gather_facts: false
  tasks:
    - copy:
        dest: "@OUT@/groups.json"
        content: "{{ {'names': group_names, 'var': from_parent, 'changed': joined is changed,
                      'add_group': joined.add_group} | to_json }}"
"#,
    );
    let (code, out, err) = lab.run("group_by.yml", &[]);
    assert_eq!(code, 0, "{out}\n{err}");
    let got: Value = serde_json::from_str(&lab.read("out/groups.json")).expect("groups.json");
    assert_eq!(got["add_group"], "kind-host1", "{got}");
    assert_eq!(got["var"], "outer-a", "{got}");
    assert_eq!(got["changed"], true, "{got}");
    let names: Vec<&str> = got["names"]
        .as_array()
        .expect("names")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    for g in ["kind-host1", "outer-a", "outer-b", "testhosts"] {
        assert!(names.contains(&g), "{g} in {names:?}");
    }
}

/// `meta` tasks as Ansible shows them: a `META:` line at `-vv`, a result
/// only when skipped (with Ansible's skip reason), no recap count; and
/// `end_play` ends every serial batch of the play.
#[test]
fn meta_tasks_report_as_ansible_and_end_play_ends_every_batch() {
    let lab = Lab::new(2);
    lab.write(
        "meta.yml",
        r#"
- hosts: testhosts
  gather_facts: false
  tasks:
    - meta: end_host
      when: inventory_hostname == 'host2'
    - copy:
        dest: "@OUT@/{{ inventory_hostname }}.after"
        content: x

- hosts: testhosts
  gather_facts: false
  serial: 1
  tasks:
    - copy:
        dest: "@OUT@/{{ inventory_hostname }}.serial"
        content: x
    - meta: end_play
"#,
    );
    let (code, out, err) = lab.run("meta.yml", &["-vv"]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(
        out.contains("META: end_host conditional evaluated to False, continuing execution for host1\n"),
        "{out}"
    );
    assert!(
        out.contains("META: ending play for host2\n") && out.contains("META: ending play\n"),
        "{out}"
    );
    assert!(
        out.contains("\"skip_reason\": \"end_host conditional evaluated to False, continuing execution for host1\""),
        "{out}"
    );
    assert!(!out.contains("ok: [host2] => {\"changed\": false"), "{out}");
    assert!(
        lab.path("out/host1.after").exists() && !lab.path("out/host2.after").exists(),
        "{out}"
    );
    assert!(lab.path("out/host1.serial").exists(), "{out}");
    assert!(
        !lab.path("out/host2.serial").exists(),
        "end_play ended the second batch too\n{out}"
    );
    // Only the copies count: ok=1 for host1 in play 1 and 1 in play 2.
    assert!(out.contains("host1                      : ok=2    changed=2"), "{out}");
    assert!(out.contains("host2                      : ok=0    changed=0"), "{out}");
}

/// The linear strategy runs a batch-wide `meta` task once, on the first
/// host, for every host of the batch (Ansible's linear strategy): its
/// `when` is the first host's, and `end_play` / `end_batch` end the play
/// or batch for all of them, however the condition would come out on the
/// others. `end_host` stays per host.
#[test]
fn batch_wide_meta_tasks_run_once_on_the_first_host_for_all() {
    let lab = Lab::new(3);
    lab.write(
        "meta_once.yml",
        r#"
- hosts: testhosts
  gather_facts: false
  tasks:
    - meta: end_play
      when: inventory_hostname == 'host2'
    - copy:
        dest: "@OUT@/{{ inventory_hostname }}.a"
        content: x
    - meta: end_host
      when: inventory_hostname == 'host3'
    - copy:
        dest: "@OUT@/{{ inventory_hostname }}.b"
        content: x
    - meta: end_batch
      when: inventory_hostname == 'host1'
    - copy:
        dest: "@OUT@/{{ inventory_hostname }}.c"
        content: x

- hosts: testhosts
  gather_facts: false
  tasks:
    - meta: end_play
      when: inventory_hostname == 'host1'
    - copy:
        dest: "@OUT@/{{ inventory_hostname }}.d"
        content: x
"#,
    );
    let (code, out, err) = lab.run("meta_once.yml", &["-vv"]);
    assert_eq!(code, 0, "{out}\n{err}");
    let exists = |f: &str| lab.path(&format!("out/{f}")).exists();
    // end_play whose `when` is false on the first host: no host ends,
    // though it is true on host2.
    for h in ["host1", "host2", "host3"] {
        assert!(exists(&format!("{h}.a")), "{h}.a\n{out}");
        assert!(!exists(&format!("{h}.c")), "end_batch ended every host: {h}.c\n{out}");
        assert!(!exists(&format!("{h}.d")), "end_play ended every host: {h}.d\n{out}");
    }
    // end_host is per host.
    assert!(exists("host1.b") && exists("host2.b") && !exists("host3.b"), "{out}");
    // Run once each: one skip line for the first play's end_play, one
    // `META:` line for end_batch and for the second play's end_play.
    assert_eq!(
        out.matches("end_play conditional evaluated to False, continuing play")
            .count(),
        2,
        "one skipped result (its reason and message) for the first host only\n{out}"
    );
    assert_eq!(out.matches("META: ending batch\n").count(), 1, "{out}");
    assert_eq!(out.matches("META: ending play\n").count(), 1, "{out}");
}
