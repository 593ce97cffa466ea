//! Executor semantics as ansible-core's integration targets exercise them
//! (any_errors_fatal, blocks, set_fact): a task-level `any_errors_fatal`
//! failure fails every host of the step where it stands, so each goes on
//! to its block's `rescue`; the `[ERROR]` origin excerpt with Ansible's two
//! lines above; set_fact's key types. Real playbooks, the real binary, real
//! sshd test hosts.

use crate::engine::Lab;

/// ansible/ansible#80981: with `any_errors_fatal`, one host's failure in a
/// block fails the other hosts too, and every host goes on to the block's
/// `rescue` (the rescue then recovers them all); the other hosts have no
/// failed result of their own, so they count no `rescued`.
#[test]
fn any_errors_fatal_sends_every_host_to_the_rescue() {
    let lab = Lab::new(2);
    lab.write(
        "fatal.yml",
        r#"
- hosts: testhosts
  gather_facts: false
  tasks:
    - block:
        - fail:
          when: inventory_hostname == "host1"
        - name: not reached
          copy:
            dest: "@OUT@/{{ inventory_hostname }}.reached"
            content: x
      rescue:
        - copy:
            dest: "@OUT@/{{ inventory_hostname }}.rescued"
            content: x
      any_errors_fatal: true
    - copy:
        dest: "@OUT@/{{ inventory_hostname }}.after"
        content: x
"#,
    );
    let (code, out, err) = lab.run("fatal.yml", &[]);
    assert_eq!(code, 0, "the rescue recovers every host\n{out}\n{err}");
    for h in ["host1", "host2"] {
        assert!(!lab.path(&format!("out/{h}.reached")).exists(), "{h}: {out}");
        assert!(lab.path(&format!("out/{h}.rescued")).exists(), "{h}: {out}");
        assert!(lab.path(&format!("out/{h}.after")).exists(), "{h}: {out}");
    }
    let recap = |h: &str| {
        out.lines()
            .find(|l| l.starts_with(h) && l.contains("rescued="))
            .unwrap_or_else(|| panic!("no recap for {h}\n{out}"))
            .to_string()
    };
    assert!(recap("host1").contains("rescued=1"), "{out}");
    assert!(
        recap("host2").contains("rescued=0") && recap("host2").contains("failed=0"),
        "{out}"
    );

    // Without a rescue, the other host is failed where it stands: its
    // block's `always` still runs, nothing after the block does.
    lab.write(
        "always.yml",
        r#"
- hosts: testhosts
  gather_facts: false
  tasks:
    - block:
        - fail:
          when: inventory_hostname == "host1"
          any_errors_fatal: true
      always:
        - copy:
            dest: "@OUT@/{{ inventory_hostname }}.always"
            content: x
    - copy:
        dest: "@OUT@/{{ inventory_hostname }}.never"
        content: x
"#,
    );
    let (code, out, err) = lab.run("always.yml", &[]);
    assert_eq!(code, 2, "{out}\n{err}");
    for h in ["host1", "host2"] {
        assert!(lab.path(&format!("out/{h}.always")).exists(), "{h}: {out}");
        assert!(!lab.path(&format!("out/{h}.never")).exists(), "{h}: {out}");
    }
}

/// The `[ERROR]` summary's origin shows the task's line and the two above
/// it, as ansible-core 2.19 does (blocks' runme.sh counts them); a file that
/// uses `no_log` shows only the task's own line (the lines above may be
/// another task's secrets).
#[test]
fn error_origin_shows_two_lines_above_unless_the_file_uses_no_log() {
    let lab = Lab::new(1);
    lab.write(
        "ctx.yml",
        r#"- hosts: testhosts
  gather_facts: false
  tasks:
    - debug:
        msg: the line above
    - fail:
        msg: boom
"#,
    );
    let (code, out, err) = lab.run("ctx.yml", &[]);
    assert_eq!(code, 2, "{out}\n{err}");
    assert!(
        out.contains("4     - debug:\n5         msg: the line above\n6     - fail:\n        ^ column 7\n"),
        "{out}"
    );
    lab.write(
        "secret.yml",
        r#"- hosts: testhosts
  gather_facts: false
  tasks:
    - debug:
        msg: hunter2-secret
      no_log: true
    - fail:
        msg: boom
"#,
    );
    let (code, out, err) = lab.run("secret.yml", &[]);
    assert_eq!(code, 2, "{out}\n{err}");
    assert!(out.contains("7     - fail:\n        ^ column 7\n"), "{out}");
    assert!(!out.contains("hunter2-secret"), "{out}");
}

/// set_fact templates its keys; a key that renders to a non-string fails
/// the task with Ansible's message naming the type.
#[test]
fn set_fact_key_of_another_type_fails_naming_it() {
    let lab = Lab::new(1);
    lab.write(
        "keys.yml",
        r#"- hosts: testhosts
  gather_facts: false
  tasks:
    - set_fact:
        "{{ 1 }}": value
      register: int_key
      ignore_errors: true
    - set_fact:
        "{{ 'true' }}": value
      register: kw_key
      ignore_errors: true
    - set_fact:
        "{{ 'good' ~ '_name' }}": value
    - copy:
        dest: "@OUT@/r.txt"
        content: "{{ int_key.msg }}|{{ kw_key.msg }}|{{ good_name }}"
"#,
    );
    let (code, out, err) = lab.run("keys.yml", &[]);
    assert_eq!(code, 0, "{out}\n{err}");
    let r = lab.read("out/r.txt");
    let parts: Vec<&str> = r.split('|').collect();
    assert!(parts[0].contains("Invalid variable name '1' of type 'int'."), "{r}");
    assert!(
        parts[1].contains("Invalid variable name 'true'.") && !parts[1].contains("of type"),
        "{r}"
    );
    assert_eq!(parts[2], "value", "{r}");
}

/// ansible/ansible#72725: the exit code says whether a host is failed at
/// the end, as ansible-playbook's does: a failure that an `always`'s
/// `meta: clear_host_errors` cleared stays in the recap but exits 0; one
/// that stays exits 2.
#[test]
fn exit_code_counts_hosts_failed_at_the_end() {
    let lab = Lab::new(2);
    lab.write(
        "cleared.yml",
        r#"
- hosts: testhosts
  gather_facts: false
  tasks:
    - block:
        - fail:
          when: inventory_hostname == 'host1'
      always:
        - meta: clear_host_errors
    - copy:
        dest: "@OUT@/{{ inventory_hostname }}.after"
        content: x
"#,
    );
    let (code, out, err) = lab.run("cleared.yml", &[]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains("failed=1"), "the failure stays in the recap\n{out}");
    assert!(lab.path("out/host1.after").exists(), "{out}");
    lab.write(
        "kept.yml",
        r#"
- hosts: testhosts
  gather_facts: false
  tasks:
    - fail:
      when: inventory_hostname == 'host1'
"#,
    );
    let (code, out, err) = lab.run("kept.yml", &[]);
    assert_eq!(code, 2, "{out}\n{err}");
}

/// An empty list of plays is an error, in Ansible's words; nothing runs.
#[test]
fn an_empty_playbook_is_an_error() {
    let lab = Lab::new(1);
    lab.write("empty.yml", "[]\n");
    let (code, out, err) = lab.run("empty.yml", &[]);
    assert_ne!(code, 0, "{out}\n{err}");
    assert!(
        err.contains("A playbook must contain at least one play: ") && err.contains("empty.yml"),
        "{err}"
    );
    assert!(!out.contains("PLAY RECAP"), "{out}");
}

/// `action: {module: ..., args: {...}}`: the `args` entry's arguments are
/// the module's (Ansible's mod_args merges them), as mapping or k=v text.
#[test]
fn action_mapping_args_entry_is_merged() {
    let lab = Lab::new(1);
    lab.write(
        "act.yml",
        r#"- hosts: testhosts
  gather_facts: false
  tasks:
    - action:
        module: ansible.legacy.assert
        args:
          that: '{{ 1 + 1 == 2 }}'
    - action:
        module: copy
        dest: "@OUT@/wrong"
        args:
          dest: "@OUT@/a.txt"
          content: mapped
    - action:
        module: copy
        args: dest=@OUT@/b.txt content=text
"#,
    );
    let (code, out, err) = lab.run("act.yml", &[]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert_eq!(lab.read("out/a.txt"), "mapped");
    assert_eq!(lab.read("out/b.txt"), "text");
    assert!(!lab.path("out/wrong").exists(), "{out}");
}

/// A play section that is not a list of tasks is Ansible's malformed-block
/// error, naming the section; nothing runs.
#[test]
fn a_malformed_play_section_names_it() {
    let lab = Lab::new(1);
    for section in ["tasks", "pre_tasks", "post_tasks", "handlers"] {
        lab.write(
            "bad.yml",
            &format!("- hosts: testhosts\n  gather_facts: false\n  {section}: 123\n"),
        );
        let (code, out, err) = lab.run("bad.yml", &[]);
        assert_ne!(code, 0, "{out}\n{err}");
        assert!(
            err.contains(&format!(
                "bad.yml:3:{}: A malformed block was encountered while loading {section}: 123 should be a list or None",
                section.len() + 5
            )),
            "{err}"
        );
        assert!(!out.contains("PLAY ["), "{out}");
    }
    lab.write("roles.yml", "- hosts: testhosts\n  gather_facts: false\n  roles: 123\n");
    let (code, out, err) = lab.run("roles.yml", &[]);
    assert_ne!(code, 0, "{out}\n{err}");
    assert!(
        err.contains("roles.yml:3:10: A malformed role declaration was encountered."),
        "{err}"
    );
}

/// As Ansible's TaskExecutor (ansible/ansible#83619): a loop's label is
/// templated after the item ran, with the item's result under the register
/// name; a label that cannot be templated fails that item, saying so.
#[test]
fn a_loop_label_sees_the_items_result_and_a_broken_one_fails_the_item() {
    let lab = Lab::new(1);
    lab.write(
        "label.yml",
        r#"
- hosts: testhosts
  gather_facts: false
  tasks:
    - command: "echo {{ item }}"
      register: r
      loop: [changed, skipped]
      loop_control:
        label: "{{ r.stdout }}"
      when: item == "changed"
      ignore_errors: true
    - copy:
        dest: "@OUT@/results"
        content: "{{ r.results[0].failed | default(false) }}|{{ r.results[1].failed }}|{{ r.results[1].msg }}\n"
"#,
    );
    let (code, out, err) = lab.run("label.yml", &[]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains("(item=changed)"), "the label is the item's stdout:\n{out}");
    let results = lab.read("out/results");
    assert!(
        results.starts_with("False|True|Failed to template loop_control.label:")
            && results.contains("no attribute 'stdout'"),
        "{results}"
    );
}
