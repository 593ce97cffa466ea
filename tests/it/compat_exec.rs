//! Module execution as ansible-core's own integration targets exercise it:
//! modules named by templates, ansible-core modules rigger cannot run on a
//! controller without ansible-core, and user modules in Ansible's old-style
//! and WANT_JSON protocols. Real playbooks, the real binary, a real sshd
//! test host.

use crate::engine::Lab;

/// Whether the controller's Python (the one a test run without `PATH`
/// additions would find) has ansible-core, which would run Ansible's modules.
fn controller_has_ansible() -> bool {
    std::process::Command::new("/usr/bin/python3")
        .args(["-c", "import ansible"])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// rigger without ansible-core on the controller: `PATH` without
/// `ansible-playbook`, no `RIGGER_ANSIBLE_PYTHON`.
fn run_without_ansible(lab: &Lab, pb: &str) -> (i32, String, String) {
    let mut cmd = lab.cmd(pb, &[]);
    cmd.env("PATH", "/usr/bin:/bin").env_remove("RIGGER_ANSIBLE_PYTHON");
    crate::support::rigger_cmd(cmd, std::time::Duration::from_secs(120))
}

#[test]
fn templated_modules_resolve_per_run_and_core_modules_fail_only_where_they_run() {
    if controller_has_ansible() {
        return;
    }
    let lab = Lab::new(1);
    lab.write(
        "site.yml",
        r#"
- hosts: testhosts
  gather_facts: false
  vars:
    which: debug
  tasks:
    - name: an ansible-core module rigger has no native module for, skipped here
      rpm_key: key=/nonexistent.asc state=present
      when: false
    - action: "{{ which }} msg=templated"
      register: by_text
    - action:
        module: "{{ 'ping' }}"
      register: by_mapping
    - action: "{{ which }} nosuch=1"
      register: bad_arg
      ignore_errors: true
    - copy:
        dest: "@OUT@/r.json"
        content: "{{ {'text': by_text.msg, 'mapping': by_mapping.ping, 'bad': bad_arg.msg} | to_json }}"
    - name: the same module, run here
      ansible.builtin.rpm_key:
        key: /nonexistent.asc
    - copy:
        dest: "@OUT@/not-reached"
        content: x
"#,
    );
    let (code, out, err) = run_without_ansible(&lab, "site.yml");
    assert_eq!(code, 2, "--- stdout ---\n{out}\n--- stderr ---\n{err}");
    let got: serde_json::Value = serde_json::from_str(&lab.read("out/r.json")).expect("r.json");
    assert_eq!(got["text"], "templated");
    assert_eq!(got["mapping"], "pong");
    // Ansible's words for the argument the module does not take; the
    // failure is located by its origin (the task) in the output.
    assert_eq!(
        got["bad"],
        "Unsupported parameters for (debug) module: nosuch. Supported parameters include: msg, var, verbosity."
    );
    let all = format!("{out}\n{err}");
    assert!(all.contains("site.yml:15:"), "{all}");
    assert!(
        all.contains("site.yml:21:7: unknown module `ansible.builtin.rpm_key`")
            && all.contains("no ansible-core on the controller"),
        "{all}"
    );
    assert!(!lab.path("out/not-reached").exists());

    // A name close to a module and not one of ansible-core's stays a
    // load-time typo, before any host is touched.
    lab.write(
        "typo.yml",
        "- hosts: testhosts\n  gather_facts: false\n  tasks:\n    - debugg: msg=x\n    - rpm_key: key=/x\n",
    );
    let (code, out, err) = run_without_ansible(&lab, "typo.yml");
    assert_ne!(code, 0);
    assert!(
        err.contains("typo.yml:4:7: unknown module `debugg`") && err.contains("did you mean `debug`"),
        "{err}"
    );
    assert!(!out.contains("host_result") && !err.contains("rpm_key"), "{out}\n{err}");
}

/// User modules in `library/` run as Ansible runs them: old-style text
/// modules get `key=value` arguments a shell can source, `WANT_JSON` ones a
/// JSON object; each runs with its `#!` interpreter (`python` meaning the
/// target's Python, any other NAME overridable by `ansible_NAME_interpreter`),
/// so none needs an executable bit. (And `ansible_facts` is an empty
/// mapping before facts are gathered, as ansible-core's targets check.)
#[test]
fn old_style_and_want_json_modules_run_with_their_interpreter() {
    let lab = Lab::new(1);
    // Ansible's own old_style_modules_posix module.
    lab.write(
        "library/hello_old.sh",
        "#!/bin/sh\nif [ -f \"$1\" ]; then . \"$1\"; else echo '{\"failed\": true}'; exit 1; fi\n\
         salutation=${salutation:=Hello}\nname=${name:=World}\n\
         printf '{\"msg\": \"%s, %s!\", \"check\": \"%s\"}\\n' \"$salutation\" \"$name\" \"$_ansible_check_mode\"\n",
    );
    // `#!/usr/bin/python` is not on a Debian host: the target's Python runs it.
    lab.write(
        "library/hello_json.py",
        "#!/usr/bin/python\n# WANT_JSON\nimport json, sys\nargs = json.load(open(sys.argv[1]))\n\
         print(json.dumps({'msg': 'Hello, %s!' % args.get('name', 'World'), 'args': sorted(args)}))\n",
    );
    // An interpreter that does not exist, replaced by a variable.
    lab.write(
        "library/hello_var",
        "#!/opt/nowhere/mysh\necho \"{\\\"msg\\\": \\\"$(cat \"$1\" | tr -d \"'\")\\\"}\"\n",
    );
    lab.write(
        "site.yml",
        r#"
- hosts: testhosts
  gather_facts: false
  tasks:
    - hello_old:
      register: old_default
    - hello_old:
        name: "it's me"
        salutation: Goodbye
      register: old_args
    - hello_json:
        name: Ansible
      register: want_json
    - hello_var: who=me
      vars:
        ansible_mysh_interpreter: /bin/sh
      register: by_var
    - copy:
        dest: "@OUT@/r.json"
        content: "{{ {'old_default': old_default.msg, 'old_args': old_args.msg, 'check': old_args.check,
                      'json': want_json.msg, 'json_args': want_json.args, 'var': by_var.msg,
                      'no_facts_yet': ansible_facts == {}} | to_json }}"
"#,
    );
    let (code, out, err) = lab.run("site.yml", &[]);
    assert_eq!(code, 0, "--- stdout ---\n{out}\n--- stderr ---\n{err}");
    let got: serde_json::Value = serde_json::from_str(&lab.read("out/r.json")).expect("r.json");
    assert_eq!(got["old_default"], "Hello, World!");
    assert_eq!(got["old_args"], "Goodbye, it's me!");
    assert_eq!(got["check"], "False");
    assert_eq!(got["json"], "Hello, Ansible!");
    // `ansible_facts` is defined (empty) before any fact is gathered.
    assert_eq!(got["no_facts_yet"], true);
    assert!(
        got["json_args"]
            .as_array()
            .is_some_and(|a| a.iter().any(|v| v == "_ansible_check_mode")),
        "{got}"
    );
    assert!(got["var"].as_str().is_some_and(|s| s.starts_with("who=me ")), "{got}");
}
