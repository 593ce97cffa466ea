//! Executor semantics as ansible-core 2.19's own integration targets
//! (`playbook`, `environment`, `meta_tasks`, `add_host`) exercise them. Real
//! playbooks, the real binary, a real sshd test host.

use crate::engine::Lab;

fn assert_ok(code: i32, out: &str, err: &str) {
    assert_eq!(code, 0, "rigger failed\n--- stdout ---\n{out}\n--- stderr ---\n{err}");
}

#[test]
fn a_plays_user_is_its_remote_user_but_not_beside_it() {
    let lab = Lab::new(1);
    lab.write(
        "user.yml",
        "- hosts: testhosts\n  gather_facts: false\n  user: \"{{ me }}\"\n  vars:\n    me: root\n  tasks:\n    \
         - command: id -un\n      register: who\n    - assert:\n        that: who.stdout == 'root'\n",
    );
    let (code, out, err) = lab.run("user.yml", &[]);
    assert_ok(code, &out, &err);
    lab.write(
        "both.yml",
        "- hosts: testhosts\n  user: root\n  remote_user: root\n  tasks: []\n",
    );
    let (code, out, err) = lab.run("both.yml", &[]);
    assert_ne!(code, 0);
    assert!(
        err.contains("both.yml:2:3") && err.contains("both 'user' and 'remote_user' are set for this play"),
        "{out}{err}"
    );
}

#[test]
fn command_expands_variables_and_tilde_from_the_hosts_environment() {
    let lab = Lab::new(1);
    lab.write(
        "cmd.yml",
        r#"- hosts: testhosts
  gather_facts: false
  tasks:
    - command: printf '%s|' $RIGGER_X ${RIGGER_X}/y $RIGGER_UNSET "a b" ~/h
      environment:
        RIGGER_X: "1  *"
      register: r
    - command: echo $RIGGER_X
      args:
        expand_argument_vars: false
      environment:
        RIGGER_X: "1"
      register: raw
    - command: sh -c 'printf %s "$HOME"'
      register: home
    - assert:
        that:
          - r.stdout == '1  *|1  */y|$RIGGER_UNSET|a b|' ~ home.stdout ~ '/h|'
          - raw.stdout == '$RIGGER_X'
"#,
    );
    let (code, out, err) = lab.run("cmd.yml", &[]);
    assert_ok(code, &out, &err);
}

#[test]
fn the_plays_environment_reaches_fact_gathering_without_what_needs_the_facts() {
    let lab = Lab::new(1);
    lab.write(
        "env.yml",
        r#"- hosts: testhosts
  gather_facts: false
  tasks:
    - shell: printf %s "$PATH"
      register: before
- hosts: testhosts
  environment:
    PATH: '{{ ansible_env.PATH + ":/lola" }}'
    lola: ido
  tasks:
    - assert:
        that:
          - ansible_env.lola == 'ido'
          - ansible_env.PATH == before.stdout
    - shell: printf %s "$PATH"
      register: after
    - assert:
        that: after.stdout == before.stdout ~ ':/lola'
"#,
    );
    let (code, out, err) = lab.run("env.yml", &[]);
    assert_ok(code, &out, &err);
}

#[test]
fn refresh_inventory_rereads_the_sources_and_keeps_added_hosts() {
    let lab = Lab::new(1);
    // A second inventory source the play rewrites, then reads again.
    let extra = lab.path("extra.ini");
    std::fs::write(&extra, "[extra]\nold_one ansible_connection=local\n").unwrap();
    lab.write(
        "refresh.yml",
        &format!(
            r#"- hosts: testhosts
  gather_facts: false
  tasks:
    - add_host:
        name: dyn_host
        ansible_connection: local
      register: first
    - add_host:
        name: dyn_host
        ansible_connection: local
      register: again
    - copy:
        dest: {extra}
        content: "[extra]\nnew_one ansible_connection=local\n"
      delegate_to: localhost
    - meta: refresh_inventory
- hosts: testhosts
  gather_facts: false
  tasks:
    - assert:
        that:
          - first is changed
          - again is not changed
          - "'new_one' in groups.extra"
          - "'old_one' not in groups.all"
          - "'dyn_host' in groups.all"
"#,
            extra = extra.display()
        ),
    );
    let (code, out, err) = lab.run("refresh.yml", &["-i", &extra.display().to_string()]);
    assert_ok(code, &out, &err);
}
