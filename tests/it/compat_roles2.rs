//! Roles, vars and includes as ansible-core's integration targets use them
//! (`roles`, `import-role-tasks`, `vars_files`): a role runs once per host
//! and play unless duplicates are allowed, role vars and defaults from a
//! directory, `command` expanding `$VAR` and `~` in its arguments, and
//! `vars_files` named from each host's variables. Real playbooks, the real
//! binary, real sshd test hosts.

use crate::engine::Lab;

fn assert_ok(code: i32, out: &str, err: &str) {
    assert_eq!(code, 0, "rigger failed\n--- stdout ---\n{out}\n--- stderr ---\n{err}");
}

/// A role whose only task appends `line` to out/runs.
fn role(lab: &Lab, name: &str, line: &str, meta: &str) {
    lab.write(
        &format!("roles/{name}/tasks/main.yml"),
        &format!("- shell: echo {line} >> @OUT@/runs\n"),
    );
    if !meta.is_empty() {
        lab.write(&format!("roles/{name}/meta/main.yml"), meta);
    }
}

#[test]
fn a_role_runs_once_per_host_and_play_unless_duplicates_are_allowed() {
    let lab = Lab::new(1);
    role(&lab, "a", "A", "");
    role(&lab, "b", "B", "dependencies: [a]\n");
    role(&lab, "c", "C", "dependencies: [a]\n");
    role(&lab, "d", "D", "allow_duplicates: true\n");
    role(&lab, "e", "E", "dependencies: [d]\n");
    role(&lab, "f", "F", "");
    lab.write("roles/setgo/tasks/main.yml", "- set_fact: {go: true}\n");
    lab.write(
        "roles.yml",
        r#"
- hosts: testhosts
  gather_facts: false
  roles:
    # `a` as a dependency of b and c is the same use: it ran already.
    - a
    - b
    - c
    # Another use (other parameters) runs.
    - {role: a, p: 1}
    # d allows duplicates: it runs for each use.
    - d
    - e
    # Skipped by its condition, so it has not run: the next use runs.
    - {role: f, when: go is defined}
    - setgo
    - {role: f, when: go is defined}
    - {role: f, when: go is defined}
  tasks:
    # An import or an include runs the role again unless told not to...
    - import_role: name=a
    - include_role: name=a
    - include_role: {name: b, allow_duplicates: false}
    # ...and then the same include is the same use.
    - include_role: {name: b, allow_duplicates: false}

# Another play: every role runs again.
- hosts: testhosts
  gather_facts: false
  roles: [a, b]
"#,
    );
    let (code, out, err) = lab.run("roles.yml", &[]);
    assert_ok(code, &out, &err);
    assert_eq!(
        lab.lines("runs"),
        ["A", "B", "C", "A", "D", "D", "E", "F", "A", "A", "B", "A", "B"],
        "{out}"
    );
}

#[test]
fn role_vars_and_defaults_may_be_directories_and_files_stay_inside_the_role() {
    let lab = Lab::new(1);
    lab.write("roles/r/defaults/main/00.yml", "x: 0\ny: 0\n");
    lab.write("roles/r/defaults/main/01.yml", "");
    lab.write("roles/r/defaults/main/02/z.yml", "y: 2\n");
    lab.write("roles/r/defaults/main/03.txt", "x: 3\n");
    lab.write("roles/r/defaults/main/.04.yml", "x: 4\n");
    lab.write("roles/r/vars/extra/a.yml", "v: a\n");
    lab.write(
        "roles/r/tasks/main.yml",
        "- copy: {dest: '@OUT@/vars', content: \"{{ x }} {{ y }} {{ v | default('none') }}\"}\n",
    );
    lab.write(
        "dirs.yml",
        r#"
- hosts: testhosts
  gather_facts: false
  roles:
    - r
  tasks:
    - import_role: {name: r, vars_from: extra}
"#,
    );
    let (code, out, err) = lab.run("dirs.yml", &[]);
    assert_ok(code, &out, &err);
    assert_eq!(lab.read("out/vars"), "0 2 a", "{out}");

    // A tasks file outside the role's tasks/ is refused, where it is asked for.
    lab.write("outside.yml", "- debug: msg=outside\n");
    lab.write("roles/r/tasks/sub/inside.yml", "- debug: msg=inside\n");
    lab.write(
        "escape.yml",
        "- hosts: testhosts\n  gather_facts: false\n  tasks:\n    - import_role:\n        name: r\n        tasks_from: sub/../../../../outside.yml\n",
    );
    let (code, out, err) = lab.run("escape.yml", &[]);
    assert_ne!(code, 0, "{out}");
    assert!(
        err.contains("escape.yml:5:") && err.contains("as it is not inside the expected role path"),
        "{err}"
    );
}

#[test]
fn command_expands_variables_and_home_in_its_arguments() {
    let lab = Lab::new(1);
    lab.write(
        "expand.yml",
        r#"
- hosts: testhosts
  gather_facts: false
  tasks:
    - command: printf '[%s]' $RG_X x${RG_X}y $RG_UNSET ~/h '$(touch @OUT@/pwned)' '*'
      environment: {RG_X: "a b", HOME: /home/rg}
      register: expanded
    - command:
        argv: [printf, '[%s]', $RG_X, ~/h]
        expand_argument_vars: false
      environment: {RG_X: "a b"}
      register: verbatim
    - copy: {dest: '@OUT@/expand', content: "{{ expanded.stdout }}\n{{ verbatim.stdout }}\n"}
"#,
    );
    let (code, out, err) = lab.run("expand.yml", &[]);
    assert_ok(code, &out, &err);
    assert_eq!(
        lab.lines("expand"),
        [
            format!("[a b][xa by][$RG_UNSET][/home/rg/h][$(touch {}/pwned)][*]", lab.out()),
            "[$RG_X][~/h]".to_string()
        ]
    );
    assert!(!lab.path("out/pwned").exists());
}

#[test]
fn vars_files_are_named_from_each_hosts_variables() {
    let lab = Lab::new(2);
    lab.write("vars/common.yml", "common: true\n");
    lab.write("vars/host1.yml", "who: one\n");
    lab.write("vars/defaults.yml", "who: default\n");
    lab.write(
        "vf.yml",
        r#"
- hosts: testhosts
  gather_facts: false
  vars_files:
    - vars/common.yml
    - ["vars/{{ inventory_hostname }}.yml", vars/defaults.yml]
    # A name from a variable this host does not have: skipped, as in Ansible.
    - "vars/{{ nowhere }}.yml"
  tasks:
    - shell: echo {{ inventory_hostname }} {{ who }} {{ common }} >> @OUT@/who
"#,
    );
    let (code, out, err) = lab.run("vf.yml", &[]);
    assert_ok(code, &out, &err);
    let mut got = lab.lines("who");
    got.sort();
    assert_eq!(got, ["host1 one True", "host2 default True"], "{out}");
}

#[test]
fn a_role_named_ns_collection_role_is_found_in_the_collection_roots() {
    let lab = Lab::new(1);
    // Next to the playbook...
    lab.write(
        "collections/ansible_collections/ns/col/roles/here/tasks/main.yml",
        "- shell: echo here >> @OUT@/runs\n",
    );
    // ...and on the collections path.
    lab.write(
        "elsewhere/ansible_collections/ns/col/roles/there/tasks/main.yml",
        "- shell: echo there >> @OUT@/runs\n",
    );
    lab.write(
        "coll.yml",
        "- hosts: testhosts\n  gather_facts: false\n  roles: [ns.col.here]\n  tasks:\n    - import_role: {name: ns.col.there}\n    - include_role: {name: ns.col.here}\n",
    );
    let mut cmd = lab.cmd("coll.yml", &[]);
    cmd.env("ANSIBLE_COLLECTIONS_PATH", lab.path("elsewhere"));
    let (code, out, err) = crate::support::rigger_cmd(cmd, std::time::Duration::from_secs(120));
    assert_ok(code, &out, &err);
    assert_eq!(lab.lines("runs"), ["here", "there", "here"], "{out}");
}

/// The end of a block or an import inside a role is not the role's end: a
/// role whose included file starts with a skipped import (devsec's
/// os_hardening: `import_tasks: auditd.yml` with `when:` false) runs every
/// task after it. (Before, the rest of the role vanished without a word.)
#[test]
fn a_block_or_import_inside_a_role_does_not_end_the_role() {
    let lab = Lab::new(1);
    lab.write("roles/r/tasks/main.yml", "- include_tasks: inner.yml\n");
    lab.write(
        "roles/r/tasks/inner.yml",
        r#"- shell: echo first >> @OUT@/runs
- import_tasks: skipped.yml
  when: enabled | bool
- block:
    - shell: echo in-block >> @OUT@/runs
- import_tasks: after.yml
- shell: echo last >> @OUT@/runs
"#,
    );
    lab.write("roles/r/tasks/skipped.yml", "- shell: echo skipped >> @OUT@/runs\n");
    lab.write("roles/r/tasks/after.yml", "- shell: echo after >> @OUT@/runs\n");
    lab.write(
        "play.yml",
        r#"
- hosts: testhosts
  gather_facts: false
  roles:
    - {role: r, enabled: false}
"#,
    );
    let (code, out, err) = lab.run("play.yml", &[]);
    assert_ok(code, &out, &err);
    assert_eq!(lab.lines("runs"), ["first", "in-block", "after", "last"], "{out}");
}
