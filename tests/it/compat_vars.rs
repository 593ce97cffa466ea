//! The playbook language and variables as ansible-core's own integration
//! targets exercise them: where `vars_files` are found and what they may
//! hold, keywords that imported tasks inherit, static imports named by a
//! template known at load, templated `become_user`. Real playbooks, the
//! real binary, a real sshd test host.

use crate::engine::Lab;

fn assert_ok(code: i32, out: &str, err: &str) {
    assert_eq!(code, 0, "rigger failed\n--- stdout ---\n{out}\n--- stderr ---\n{err}");
}

#[test]
fn vars_files_are_found_in_the_vars_directory_and_may_be_lists_of_mappings() {
    let lab = Lab::new(1);
    // Ansible looks in the play's vars/ first: the playbook's own name is
    // not loaded as a vars file when vars/ holds one of that name.
    lab.write("vars/site.yml", "from_vars_dir: yes_vars_dir\n");
    lab.write("listed.yml", "- first: 1\n  shared: a\n- second: 2\n  shared: b\n");
    lab.write(
        "site.yml",
        r#"
- hosts: testhosts
  gather_facts: false
  vars_files:
    - site.yml
    - listed.yml
  tasks:
    - copy:
        dest: "@OUT@/vf.txt"
        content: "{{ from_vars_dir }} {{ first }} {{ second }} {{ shared }}"
"#,
    );
    let (code, out, err) = lab.run("site.yml", &[]);
    assert_ok(code, &out, &err);
    assert_eq!(lab.read("out/vf.txt"), "yes_vars_dir 1 2 b");

    lab.write("bad.yml", "- fine: 1\n- not a mapping\n");
    lab.write(
        "bad_play.yml",
        "- hosts: testhosts\n  gather_facts: false\n  vars_files: [bad.yml]\n  tasks:\n    - debug: msg=x\n",
    );
    let (code, _out, err) = lab.run("bad_play.yml", &[]);
    assert_ne!(code, 0);
    assert!(
        err.contains("bad.yml:2:3") && err.contains("a vars file must be a mapping or a list of mappings"),
        "{err}"
    );
}

#[test]
fn imported_tasks_inherit_notify_and_import_names_render_at_load() {
    let lab = Lab::new(1);
    lab.write(
        "tasks/change.yml",
        "- command: echo one\n- command: echo two\n  notify: own\n",
    );
    lab.write(
        "site.yml",
        r#"
- hosts: testhosts
  gather_facts: false
  vars:
    task_dir: tasks
  tasks:
    - import_tasks: "{{ task_dir }}/change.yml"
      notify: inherited
  handlers:
    - name: inherited
      copy: {dest: "@OUT@/inherited", content: "ran"}
    - name: own
      copy: {dest: "@OUT@/own", content: "ran"}
"#,
    );
    let (code, out, err) = lab.run("site.yml", &[]);
    assert_ok(code, &out, &err);
    assert_eq!(lab.read("out/inherited"), "ran");
    assert_eq!(lab.read("out/own"), "ran");
}

#[test]
fn become_user_is_a_template_rendered_when_the_task_runs() {
    let lab = Lab::new(1);
    lab.write(
        "site.yml",
        r#"
- hosts: testhosts
  gather_facts: false
  tasks:
    - set_fact:
        known_late: root
    - command: whoami
      become: true
      become_user: "{{ known_late }}"
      register: who
    - copy: {dest: "@OUT@/who", content: "{{ who.stdout }}"}
"#,
    );
    let (code, out, err) = lab.run("site.yml", &[]);
    assert_ok(code, &out, &err);
    assert_eq!(lab.read("out/who"), "root");
}

#[test]
fn role_name_magic_variables_list_play_dependent_and_parent_roles() {
    let lab = Lab::new(1);
    // `import_role` in a role's tasks finds `child` in the play's roles/.
    // A role may be only vars/ (found as a role all the same).
    lab.write("roles/base/vars/main.yml", "from_base: here\n");
    lab.write("roles/app/meta/main.yml", "dependencies: [base]\n");
    lab.write(
        "roles/app/tasks/main.yml",
        r#"
- copy:
    dest: "@OUT@/app.json"
    content: "{{ {'play': ansible_play_role_names, 'old': role_names, 'deps': ansible_dependent_role_names,
                  'all': ansible_role_names | sort, 'parent': ansible_parent_role_names is defined,
                  'base': from_base} | to_json }}"
- include_role: {name: child}
- import_role: {name: child, tasks_from: imported}
"#,
    );
    lab.write(
        "roles/child/tasks/main.yml",
        r#"
- copy:
    dest: "@OUT@/included.json"
    content: "{{ {'names': ansible_parent_role_names, 'paths': ansible_parent_role_paths | map('basename') | list} | to_json }}"
- include_role: {name: child, tasks_from: nested}
"#,
    );
    lab.write(
        "roles/child/tasks/nested.yml",
        "- copy: {dest: \"@OUT@/nested.json\", content: \"{{ ansible_parent_role_names | to_json }}\"}\n",
    );
    lab.write(
        "roles/child/tasks/imported.yml",
        "- copy: {dest: \"@OUT@/imported.json\", content: \"{{ ansible_parent_role_names | to_json }}\"}\n",
    );
    lab.write(
        "site.yml",
        "- hosts: testhosts\n  gather_facts: false\n  roles: [app]\n",
    );
    let (code, out, err) = lab.run("site.yml", &[]);
    assert_ok(code, &out, &err);
    // As Ansible's play.roles: the `roles:` entries and, from load on, the
    // role `import_role` brings in.
    let app: serde_json::Value = serde_json::from_str(&lab.read("out/app.json")).unwrap();
    assert_eq!(
        app,
        serde_json::json!({"play": ["app", "child"], "old": ["app", "child"], "deps": ["base"],
                           "all": ["app", "base", "child"], "parent": false, "base": "here"})
    );
    let included: serde_json::Value = serde_json::from_str(&lab.read("out/included.json")).unwrap();
    assert_eq!(included, serde_json::json!({"names": ["app"], "paths": ["app"]}));
    assert_eq!(lab.read("out/nested.json"), r#"["child", "app"]"#);
    assert_eq!(lab.read("out/imported.json"), r#"["app"]"#);
}
