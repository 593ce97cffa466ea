//! Lookups, their `with_<lookup>` loops, filters and tests as ansible-core
//! 2.19 implements them (what its lookup_*, filter_* and test_* integration
//! targets exercise). Real playbooks, the real binary, real sshd test hosts.

use serde_json::{json, Value};

use crate::engine::Lab;

fn assert_ok(code: i32, out: &str, err: &str) {
    assert_eq!(code, 0, "rigger failed\n--- stdout ---\n{out}\n--- stderr ---\n{err}");
}

#[test]
fn with_lookup_loops_and_an_undefined_loop_under_a_false_condition() {
    let lab = Lab::new(2);
    lab.write(
        "loops.yml",
        r#"
- hosts: testhosts
  gather_facts: false
  tasks:
    - set_fact: "{{ 'seq_' + item }}={{ item }}"
      with_sequence: '2-6/2'
    - set_fact: "{{ 'fmt_' + item }}=1"
      with_sequence: '7-8:host%02d'
    - set_fact: "{{ item.0 }}={{ item.1 }}"
      with_together:
        - ['ta', 'tb']
        - ['1', '2']
    - set_fact:
        picked: "{{ item }}"
      with_random_choice: ['x', 'y']
    - debug:
        msg: "{{ item.0.id ~ item.1 }}"
      register: subs
      with_subelements:
        - [{id: a, l: [1, 2]}, {id: b}, {id: c, l: [3]}]
        - l
        - skip_missing: true
    # Ansible's executor: the loop's undefined variable is no error when
    # the task's condition (seen without the item) is false.
    - debug:
      with_items: ["{{ not_defined_anywhere }}"]
      when: false
      register: skipped_loop
    - block:
        - debug:
          with_sequence: start=0 junk=3
      rescue:
        - set_fact:
            seq_error: "{{ ansible_failed_result.msg }}"
    - copy:
        dest: "@OUT@/{{ inventory_hostname }}.json"
        content: "{{ {'seq': [seq_2, seq_4, seq_6], 'fmt': [fmt_host07 is defined, fmt_host08 is defined],
                      'together': [ta, tb], 'picked': picked in ['x', 'y'], 'subs': subs.results | map(attribute='msg') | list,
                      'skipped': skipped_loop is skipped, 'seq_error': seq_error,
                      'hosts': query('inventory_hostnames', 'testhosts:!' ~ inventory_hostname) | length} | to_json }}"
"#,
    );
    let (code, out, err) = lab.run("loops.yml", &[]);
    assert_ok(code, &out, &err);
    for i in 0..lab.hosts.len() {
        let host = lab.hosts.name(i);
        let got: Value = serde_json::from_str(&lab.read(&format!("out/{host}.json")))
            .unwrap_or_else(|e| panic!("{host}: {e}\n{out}"));
        assert_eq!(got["seq"], json!(["2", "4", "6"]));
        assert_eq!(got["fmt"], json!([true, true]));
        assert_eq!(got["together"], json!(["1", "2"]));
        assert_eq!(got["picked"], json!(true));
        assert_eq!(got["subs"], json!(["a1", "a2", "c3"]));
        assert_eq!(got["skipped"], json!(true));
        assert!(
            got["seq_error"]
                .as_str()
                .is_some_and(|m| m.contains("unrecognized arguments to with_sequence: ['junk']")),
            "{got}"
        );
        assert_eq!(got["hosts"], json!(1));
    }
}

#[test]
fn playbook_dir_of_a_bare_playbook_name_and_an_untrusted_assert_string() {
    let lab = Lab::new(1);
    lab.write(
        "pd.yml",
        r#"
- hosts: testhosts
  gather_facts: false
  tasks:
    - assert:
        that: "{{ '1 == 1' }}"
      ignore_errors: true
      register: untrusted
    - copy:
        dest: "@OUT@/pd.json"
        content: "{{ {'dir': playbook_dir, 'untrusted': untrusted.msg} | to_json }}"
"#,
    );
    // Named without a directory: playbook_dir is the current directory,
    // absolute (Ansible's dirname(abspath(playbook))).
    let mut cmd = std::process::Command::new(crate::support::run::rigger_bin());
    cmd.args(["run", "pd.yml", "-i"])
        .arg(lab.hosts.inventory())
        .arg("--known-hosts")
        .arg(lab.hosts.known_hosts())
        .current_dir(lab.dir.path());
    let (code, out, err) = crate::support::run::rigger_cmd(cmd, std::time::Duration::from_secs(120));
    assert_ok(code, &out, &err);
    let got: Value = serde_json::from_str(&lab.read("out/pd.json")).unwrap_or_else(|e| panic!("{e}\n{out}"));
    let dir = std::fs::canonicalize(lab.dir.path()).expect("canonical lab dir");
    assert_eq!(got["dir"], json!(dir.display().to_string()));
    assert!(
        got["untrusted"]
            .as_str()
            .is_some_and(|m| m.contains("untrusted template or expression")),
        "{got}"
    );
}
