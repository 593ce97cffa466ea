//! Module parameters as Ansible treats them (issue #20, point 6): a
//! parameter a native module does not take is a located warning at load and
//! a failure, in Ansible's words, of the task on each host where it runs (a
//! skipped task does not stop the playbook); the options rigger's modules
//! take the way Ansible's do (`package` without `state`,
//! `ansible_package_use`, `group`'s `local`/`force`/`gid_min`/`gid_max`,
//! `command`'s argument spec). Real playbooks, the real binary, real sshd
//! test hosts.

use serde_json::{json, Value};

use crate::engine::Lab;

fn assert_ok(code: i32, out: &str, err: &str) {
    assert_eq!(code, 0, "rigger failed\n--- stdout ---\n{out}\n--- stderr ---\n{err}");
}

#[test]
fn unknown_parameters_warn_at_load_and_fail_where_the_task_runs() {
    let lab = Lab::new(1);
    lab.write(
        "params.yml",
        r#"
- hosts: testhosts
  gather_facts: false
  tasks:
    - name: skipped here, so its typo does not stop the playbook
      file:
        path: "@OUT@/never"
        stae: touch
      when: false
    - name: shell refuses command's option
      shell: echo hi
      args:
        expand_argument_vars: false
      register: shell_r
      ignore_errors: true
    - name: a module's argument spec
      stat:
        path: /
        bogus: 1
        zzz: 2
      register: stat_r
      ignore_errors: true
    - name: an action with a fixed set of options
      fail:
        msg: never shown
        bogus: 1
      register: fail_r
      ignore_errors: true
    - name: failed_when judges the failure
      stat:
        path: /
        bogus: 1
      register: judged
      failed_when: false
    - name: an option that is omitted is not given
      stat:
        path: /
        bogus: "{{ omit }}"
      register: omitted
    - copy:
        dest: "@OUT@/params.json"
        content: "{{ {'shell': [shell_r is failed, shell_r.msg],
                      'stat': [stat_r is failed, stat_r.msg],
                      'fail': [fail_r is failed, fail_r.msg],
                      'judged': [judged is failed, judged.msg],
                      'omitted': omitted is failed} | to_json }}"
"#,
    );
    let (code, out, err) = lab.run("params.yml", &[]);
    assert_ok(code, &out, &err);
    let pb = lab.path("params.yml").display().to_string();
    // Located warnings, once each, with "did you mean" when a name is close.
    assert!(
        err.contains(&format!(
            "[WARNING]: {pb}:8:9: unsupported parameter `stae` for module `file`: the task fails on every host \
             where it runs (hint: did you mean `state`?)"
        )),
        "{err}"
    );
    assert!(
        err.contains(&format!(
            "[WARNING]: {pb}:13:9: unsupported parameter `expand_argument_vars` for module `shell`"
        )),
        "{err}"
    );
    assert_eq!(
        err.matches("unsupported parameter `bogus` for module `stat`").count(),
        3,
        "{err}"
    );
    let got: Value = serde_json::from_str(&lab.read("out/params.json")).unwrap();
    let stat_msg = got["stat"][1].as_str().unwrap();
    assert!(
        stat_msg.starts_with(
            "Unsupported parameters for (stat) module: bogus, zzz. Supported parameters include: checksum_algorithm, \
             follow, get_attributes, get_checksum, get_mime, path"
        ),
        "{stat_msg}"
    );
    assert!(
        stat_msg.ends_with(").") && stat_msg.contains(" ("),
        "aliases in parentheses: {stat_msg}"
    );
    assert_eq!(got["stat"][0], json!(true));
    assert_eq!(
        got["shell"],
        json!([true, "Unsupported parameters for (shell) module: expand_argument_vars"])
    );
    assert_eq!(got["fail"], json!([true, "Invalid options for fail: bogus"]));
    assert_eq!(got["judged"][0], json!(false), "{got}");
    assert!(got["judged"][1]
        .as_str()
        .unwrap()
        .starts_with("Unsupported parameters for (stat) module: bogus."));
    assert_eq!(got["omitted"], json!(false));
    // The file module never ran: nothing was touched.
    assert!(!lab.path("out/never").exists());
}

#[test]
fn an_unknown_parameter_in_an_included_file_warns_once() {
    let lab = Lab::new(2);
    lab.write(
        "inc.yml",
        "- debug:\n    msg: hi\n    verbosty: 1\n  register: d\n  ignore_errors: true\n",
    );
    lab.write(
        "main.yml",
        r#"
- hosts: testhosts
  gather_facts: false
  tasks:
    - include_tasks: inc.yml
      loop: [1, 2]
    - assert:
        that:
          - d is failed
          - d.msg is match('Unsupported parameters for \(debug\) module. verbosty. Supported parameters include. ')
"#,
    );
    let (code, out, err) = lab.run("main.yml", &[]);
    assert_ok(code, &out, &err);
    let inc = lab.path("inc.yml").display().to_string();
    let warning = format!("{inc}:3:5: unsupported parameter `verbosty` for module `debug`");
    assert_eq!(
        out.matches(&warning).count() + err.matches(&warning).count(),
        1,
        "{out}\n{err}"
    );
    assert!(err.contains("did you mean `verbosity`?") || out.contains("did you mean `verbosity`?"));
}

#[test]
fn command_takes_exactly_one_of_its_command_forms() {
    let lab = Lab::new(1);
    lab.write(
        "cmd.yml",
        r#"
- hosts: testhosts
  gather_facts: false
  tasks:
    - command:
      args:
        chdir: /
      register: none_given
      ignore_errors: true
    - command: echo a
      args:
        cmd: echo b
      register: two_given
      ignore_errors: true
    - shell:
      args:
        chdir: /
      register: shell_none
      ignore_errors: true
    - command: echo
      args:
        chdir: "@OUT@/nope"
      register: no_dir
      ignore_errors: true
    - shell: echo
      args:
        chdir: "@OUT@/file"
        creates: /nonexistent
      register: not_a_dir
      ignore_errors: true
    # As Python's exec: no output, rc is the errno (failed_when sees it).
    - command: commandthatdoesnotexist --would-be-awkward
      register: missing
      failed_when: missing.stdout != '' or missing.stderr != ''
    # A process left in the background does not hold the task (local).
    - shell: sleep 20 &
      delegate_to: localhost
      timeout: 10
    - copy:
        dest: "@OUT@/cmd.json"
        content: "{{ [none_given.msg, two_given.msg, shell_none.msg, no_dir.msg, no_dir.exception,
                      not_a_dir.exception, missing.rc, missing.msg] | to_json }}"
"#,
    );
    lab.write("out/file", "");
    let (code, out, err) = lab.run("cmd.yml", &[]);
    assert_ok(code, &out, &err);
    let got: Value = serde_json::from_str(&lab.read("out/cmd.json")).unwrap();
    let o = lab.out();
    assert_eq!(
        got,
        json!([
            "one of the following is required: _raw_params, cmd, argv",
            "parameters are mutually exclusive: _raw_params|cmd|argv",
            "one of the following is required: _raw_params, cmd, argv",
            "Unable to change directory before execution.",
            format!("[Errno 2] No such file or directory: b'{o}/nope'"),
            format!("[Errno 20] Not a directory: b'{o}/file'"),
            2,
            "[Errno 2] No such file or directory: b'commandthatdoesnotexist'",
        ])
    );
}

#[test]
fn an_include_under_a_false_condition_is_skipped_before_its_loop_renders() {
    let lab = Lab::new(1);
    lab.write("inc.yml", "- copy:\n    dest: \"@OUT@/{{ item }}\"\n    content: x\n");
    lab.write(
        "main.yml",
        r#"
- hosts: testhosts
  gather_facts: false
  tasks:
    - when: false
      block:
        - set_fact:
            names: [a, b]
        # `names` is only set by the skipped task above.
        - include_tasks: inc.yml
          loop: "{{ names }}"
    - when: true
      block:
        - include_tasks: inc.yml
          loop: [c]
"#,
    );
    let (code, out, err) = lab.run("main.yml", &[]);
    assert_ok(code, &out, &err);
    assert!(!lab.path("out/a").exists());
    assert!(lab.path("out/c").exists());
}

#[test]
fn package_takes_the_backend_default_state_and_the_host_package_use() {
    let lab = Lab::new(1);
    lab.write(
        "pkg.yml",
        r#"
- hosts: testhosts
  gather_facts: false
  tasks:
    # No `state`: the backend's default (present); dpkg is always installed.
    - package:
        name: dpkg
      register: no_state
    - package:
        name: doesnotmatter
      vars:
        ansible_package_use: lola
      register: lola
      ignore_errors: true
    # An option of another backend, refused by the one this host has.
    - package:
        name: dpkg
        enablerepo: epel
      register: other_backend
      ignore_errors: true
    - copy:
        dest: "@OUT@/pkg.json"
        content: "{{ {'no_state': [no_state is failed, no_state is changed],
                      'lola': [lola is failed, lola.msg],
                      'other': [other_backend is failed, other_backend.msg]} | to_json }}"
"#,
    );
    let (code, out, err) = lab.run("pkg.yml", &[]);
    assert_ok(code, &out, &err);
    let got: Value = serde_json::from_str(&lab.read("out/pkg.json")).unwrap();
    assert_eq!(got["no_state"], json!([false, false]), "{got}");
    assert_eq!(
        got["lola"],
        json!([
            true,
            "Could not find a matching action for the \"lola\" package manager."
        ])
    );
    assert_eq!(got["other"][0], json!(true));
    assert!(
        got["other"][1]
            .as_str()
            .unwrap()
            .starts_with("Unsupported parameters for (apt) module: enablerepo. Supported parameters include: "),
        "{got}"
    );
}

#[test]
fn group_local_force_and_gid_range() {
    let lab = Lab::isolated(1);
    lab.write(
        "group.yml",
        r#"
- hosts: testhosts
  gather_facts: false
  tasks:
    - group:
        name: rigger_range
        gid_min: 4711
        gid_max: 4712
      register: ranged
    - group:
        name: rigger_local1
        gid: 4801
        local: true
      register: local1
    - group:
        name: rigger_local1
        gid: 4801
        local: true
      register: local1_again
    - group:
        name: rigger_local2
        gid: 4801
        local: true
      register: local2
      ignore_errors: true
    - group:
        name: rigger_local3
        gid_min: 1000
        local: true
      register: local_min
      ignore_errors: true
    - group:
        name: rigger_nu
        non_unique: true
      register: nu
      ignore_errors: true
    - group:
        name: rigger_local1
        state: absent
        local: true
      register: local_gone
    - group:
        name: rigger_range
        state: absent
        force: true
      register: forced
    - shell: "getent group rigger_local1 rigger_range rigger_local2 || true"
      register: left
    - copy:
        dest: "@OUT@/group.json"
        content: "{{ {'ranged': [ranged is changed, ranged.gid],
                      'local1': [local1 is changed, local1.gid, local1_again is changed],
                      'local2': [local2 is failed, local2.msg],
                      'local_min': local_min.msg,
                      'nu': nu.msg,
                      'gone': [local_gone is changed, forced is changed, left.stdout]} | to_json }}"
"#,
    );
    let (code, out, err) = lab.run("group.yml", &[]);
    assert_ok(code, &out, &err);
    let got: Value = serde_json::from_str(&lab.read("out/group.json")).unwrap();
    let gid = got["ranged"][1].as_i64().unwrap();
    assert!((4711..=4712).contains(&gid), "{got}");
    assert_eq!(got["ranged"][0], json!(true));
    assert_eq!(got["local1"], json!([true, 4801, false]));
    assert_eq!(
        got["local2"],
        json!([true, "GID '4801' already exists with group 'rigger_local1'"])
    );
    assert_eq!(got["local_min"], json!("'gid_min' can not be used with 'local'"));
    assert_eq!(
        got["nu"],
        json!("non_unique is True but all of the following are missing: gid")
    );
    assert_eq!(got["gone"], json!([true, true, ""]));
}
