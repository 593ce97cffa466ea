//! ansible.builtin pieces that ansible-core's own integration targets
//! exercise: `setup` as a task, `getent`, templated `set_fact`/`add_host`
//! arguments, `include_vars` directory options, and the result flags that
//! `changed_when`/`failed_when` decide. Real playbooks, the real binary,
//! a real sshd test host.

use serde_json::Value;

use crate::engine::Lab;

fn assert_ok(code: i32, out: &str, err: &str) {
    assert_eq!(code, 0, "rigger failed\n--- stdout ---\n{out}\n--- stderr ---\n{err}");
}

#[test]
fn failed_when_and_changed_when_decide_the_result_flags() {
    let lab = Lab::new(1);
    lab.write(
        "cond.yml",
        r#"
- hosts: testhosts
  gather_facts: false
  tasks:
    - command: "true"
      register: plain
    - shell: exit 1
      failed_when: false
      register: suppressed
    # A list of conditions is ANDed: one false condition means not failed.
    - command: echo hi
      failed_when: ["rc == 0", "stdout == 'other'"]
      register: anded
    - command: echo foo
      failed_when: boomboomboom
      register: bad_failed_when
      ignore_errors: true
    - command: echo foo
      changed_when: boomboomboom
      register: bad_changed_when
      ignore_errors: true
    - group_by:
        key: joined_once
      register: first_join
    - group_by:
        key: joined_once
      register: second_join
    - copy:
        dest: "@OUT@/cond.json"
        content: "{{ {'plain': [plain.failed, plain.changed],
                      'suppressed': [suppressed.failed, suppressed.failed_when_result, suppressed.rc],
                      'anded': [anded.failed, anded.failed_when_result],
                      'bad_failed_when': [bad_failed_when is failed, bad_failed_when.stdout,
                                          'boomboomboom' in bad_failed_when.failed_when_result],
                      'bad_changed_when': [bad_changed_when is failed, bad_changed_when.stdout,
                                           'boomboomboom' in bad_changed_when.changed_when_result],
                      'group_by': [first_join is changed, second_join is changed]} | to_json }}"
"#,
    );
    let (code, out, err) = lab.run("cond.yml", &[]);
    assert_ok(code, &out, &err);
    let got: Value = serde_json::from_str(&lab.read("out/cond.json")).unwrap();
    assert_eq!(
        got,
        serde_json::json!({
            "plain": [false, true],
            "suppressed": [false, false, 1],
            "anded": [false, false],
            "bad_failed_when": [true, "foo", true],
            "bad_changed_when": [true, "foo", true],
            "group_by": [true, false],
        })
    );
}

#[test]
fn set_fact_and_add_host_take_templated_keys_and_whole_argument_templates() {
    let lab = Lab::new(1);
    lab.write(
        "tmpl.yml",
        r#"
- hosts: testhosts
  gather_facts: false
  vars:
    spec:
      name: dyn1
      groups: dynamic
      color: blue
  tasks:
    - set_fact: "{{ item }}=set_{{ item }}"
      loop: [alpha, beta]
    - set_fact:
        "{{ 'gamma' }}": 3
        cacheable: true
    - add_host: "{{ spec }}"
    - copy:
        dest: "@OUT@/tmpl.json"
        content: "{{ {'alpha': alpha, 'beta': beta, 'gamma': gamma,
                      'dynamic': groups['dynamic'], 'color': hostvars['dyn1'].color} | to_json }}"
"#,
    );
    let (code, out, err) = lab.run("tmpl.yml", &[]);
    assert_ok(code, &out, &err);
    let got: Value = serde_json::from_str(&lab.read("out/tmpl.json")).unwrap();
    assert_eq!(
        got,
        serde_json::json!({"alpha": "set_alpha", "beta": "set_beta", "gamma": 3, "dynamic": ["dyn1"], "color": "blue"})
    );
}

#[test]
fn setup_task_and_getent_set_facts() {
    let lab = Lab::new(1);
    lab.write(
        "facts.yml",
        r#"
- hosts: testhosts
  gather_facts: false
  tasks:
    - setup:
        gather_subset: min
        filter: ["ansible_distribution*", "ansible_system"]
      register: filtered
    - getent:
        database: passwd
        key: root
    - set_fact:
        root_entry: "{{ getent_passwd.root[:2] }}"
    - getent:
        database: passwd
        key: no-such-user-here
        fail_key: false
      register: missing
    - getent:
        database: passwd
        key: no-such-user-here
      register: missing_fails
      ignore_errors: true
    - copy:
        dest: "@OUT@/facts.json"
        content: "{{ {'system': ansible_system, 'facts_system': ansible_facts.system,
                      'returned': filtered.ansible_facts.keys() | select('match', 'ansible_(system|distribution)$') | sort,
                      'has_kernel': 'ansible_kernel' in filtered.ansible_facts,
                      'root': root_entry,
                      'missing': missing.ansible_facts.getent_passwd,
                      'missing_fails': missing_fails is failed} | to_json }}"
"#,
    );
    let (code, out, err) = lab.run("facts.yml", &[]);
    assert_ok(code, &out, &err);
    let got: Value = serde_json::from_str(&lab.read("out/facts.json")).unwrap();
    assert_eq!(
        got,
        serde_json::json!({
            "system": "Linux",
            "facts_system": "Linux",
            "returned": ["ansible_distribution", "ansible_system"],
            "has_kernel": false,
            "root": ["x", "0"],
            "missing": {"no-such-user-here": null},
            "missing_fails": true,
        })
    );
}

#[test]
fn include_vars_walks_directories_with_its_options() {
    let lab = Lab::new(1);
    lab.write("vars/a/one.yml", "x: 1\nconfig: {k1: 1, nested: {a: 1}}\n");
    lab.write("vars/a/deeper/two.yml", "x: 2\n");
    lab.write("vars/a/deeper/deepest/three.yml", "x: 3\n");
    lab.write("vars/a/noext", "noext: true\n");
    lab.write("vars/a/skip_me.yml", "x: 99\n");
    lab.write("vars/merge.yml", "config: {k2: 2, nested: {b: 2}}\n");
    lab.write(
        "iv.yml",
        r#"
- hosts: testhosts
  gather_facts: false
  tasks:
    - include_vars:
        dir: vars/a
        depth: 2
        ignore_files: ['skip_.*']
        extensions: ['', 'yml']
      register: two_levels
    - set_fact:
        x_after_two: "{{ x }}"
    - include_vars:
        dir: vars/a
        ignore_unknown_extensions: true
        files_matching: "three"
      register: only_three
    - include_vars:
        dir: vars/a
      register: unknown_ext
      ignore_errors: true
    - include_vars:
        file: vars/merge.yml
        hash_behaviour: merge
    - copy:
        dest: "@OUT@/iv.json"
        content: "{{ {'two': two_levels.ansible_included_var_files | map('relpath', playbook_dir) | list,
                      'x_after_two': x_after_two, 'noext': noext,
                      'three': only_three.ansible_included_var_files | map('basename') | list,
                      'unknown': unknown_ext is failed and 'does not have a valid extension' in unknown_ext.message,
                      'config': config} | to_json }}"
"#,
    );
    let (code, out, err) = lab.run("iv.yml", &[]);
    assert_ok(code, &out, &err);
    let got: Value = serde_json::from_str(&lab.read("out/iv.json")).unwrap();
    assert_eq!(
        got,
        serde_json::json!({
            "two": ["vars/a/noext", "vars/a/one.yml", "vars/a/deeper/two.yml"],
            "x_after_two": 2,
            "noext": true,
            "three": ["three.yml"],
            "unknown": true,
            "config": {"k1": 1, "k2": 2, "nested": {"a": 1, "b": 2}},
        })
    );
}

#[test]
fn lookups_see_connection_variables_and_role_templates() {
    let lab = Lab::new(1);
    lab.write("roles/r/templates/outer.j2", "[{% include 'inner.j2' %}]");
    lab.write("roles/r/templates/inner.j2", "{{ inventory_hostname }}");
    lab.write(
        "roles/r/tasks/main.yml",
        r#"
- copy:
    dest: "@OUT@/lk.json"
    content: "{{ {'host': lookup('vars', 'ansible_host') == ansible_host,
                  'conn': query('vars', 'ansible_connection'),
                  'tmpl': lookup('template', 'outer.j2')} | to_json }}"
"#,
    );
    lab.write("lk.yml", "- hosts: testhosts\n  gather_facts: false\n  roles: [r]\n");
    let (code, out, err) = lab.run("lk.yml", &[]);
    assert_ok(code, &out, &err);
    let got: Value = serde_json::from_str(&lab.read("out/lk.json")).unwrap();
    assert_eq!(
        got,
        serde_json::json!({"host": true, "conn": ["ssh"], "tmpl": "[host1]"})
    );
}

/// A relative file named in an include's own expression (a `first_found`
/// of task files, as ansible-core's setup_* roles pick per-OS tasks) is
/// searched like a task's: the role, the directory of the file holding the
/// include (the role's `tasks/`), the play's.
#[test]
fn an_include_finds_first_found_task_files_beside_it() {
    let lab = Lab::new(1);
    lab.write(
        "roles/pick/tasks/main.yml",
        "- include_tasks: \"{{ lookup('first_found', files) }}\"\n  vars:\n    files:\n      - \"{{ 'NoSuchOS' | lower }}.yml\"\n      - default.yml\n",
    );
    lab.write(
        "roles/pick/tasks/default.yml",
        "- shell: echo default >> @OUT@/picked\n",
    );
    lab.write("pb.yml", "- hosts: testhosts\n  gather_facts: false\n  roles: [pick]\n");
    let (code, out, err) = lab.run("pb.yml", &[]);
    assert_ok(code, &out, &err);
    assert_eq!(lab.lines("picked"), ["default"], "{out}");
}

/// In a loop, what a `set_fact` item set is seen by the next items, as in
/// Ansible's task executor (the usual way to build a list).
#[test]
fn set_fact_in_a_loop_accumulates() {
    let lab = Lab::new(1);
    lab.write(
        "pb.yml",
        "- hosts: testhosts\n  gather_facts: false\n  tasks:\n    - set_fact:\n        acc: \"{{ acc | default([]) + [item] }}\"\n      loop: [a, b, c]\n    - copy:\n        content: \"{{ acc | join(',') }}\\n\"\n        dest: \"@OUT@/acc\"\n",
    );
    let (code, out, err) = lab.run("pb.yml", &[]);
    assert_ok(code, &out, &err);
    assert_eq!(lab.lines("acc"), ["a,b,c"], "{out}");
}
