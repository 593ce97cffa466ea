//! Loading and CLI behaviour that ansible-core's integration targets check
//! (templating, yaml_parsing, ansible_log): user modules named like a task
//! keyword, duplicate mapping keys per ANSIBLE_DUPLICATE_YAML_DICT_KEY, and
//! Ansible's log file. Real playbooks, the real binary, a real sshd test host.

use crate::engine::Lab;

fn assert_ok(code: i32, out: &str, err: &str) {
    assert_eq!(code, 0, "rigger failed\n--- stdout ---\n{out}\n--- stderr ---\n{err}");
}

/// `noisy:` is one edit from the `notify` keyword, but a module of that name
/// in `library/` makes it a module, as in Ansible (the templating target).
#[test]
fn a_library_module_named_like_a_misspelt_keyword_is_a_module() {
    let lab = Lab::new(1);
    lab.write(
        "library/noisy",
        "#!/bin/sh\n# WANT_JSON\necho '{\"changed\": false, \"noise\": \"made\"}'\n",
    );
    lab.write(
        "noisy.yml",
        r#"
- hosts: testhosts
  gather_facts: false
  tasks:
    - noisy:
      register: result
    - copy:
        dest: "@OUT@/noise"
        content: "{{ result.noise }}"
"#,
    );
    let (code, out, err) = lab.run("noisy.yml", &[]);
    assert_ok(code, &out, &err);
    assert_eq!(lab.read("out/noise"), "made");
    // Without such a module it is still a misspelt keyword.
    lab.write(
        "typo.yml",
        "- hosts: testhosts\n  tasks:\n    - command: 'true'\n      notfy: x\n",
    );
    let (code, _, err) = lab.run("typo.yml", &[]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("typo.yml:4:7") && err.contains("did you mean `notify`"),
        "{err}"
    );
}

/// A playbook repeating a key loads with Ansible's warning by default (the
/// last value wins), fails at the repeated key with `error`, and says
/// nothing with `ignore` (the yaml_parsing target).
#[test]
fn duplicate_mapping_keys_follow_ansible_duplicate_yaml_dict_key() {
    let lab = Lab::new(1);
    lab.write(
        "dup.yml",
        r#"
- hosts: testhosts
  gather_facts: false
  vars:
    foo: bar
    foo: baz
  tasks:
    - copy:
        dest: "@OUT@/foo"
        content: "{{ foo }}"
"#,
    );
    let run = |mode: Option<&str>| {
        let mut cmd = lab.cmd("dup.yml", &[]);
        match mode {
            Some(m) => cmd.env("ANSIBLE_DUPLICATE_YAML_DICT_KEY", m),
            None => cmd.env_remove("ANSIBLE_DUPLICATE_YAML_DICT_KEY"),
        };
        crate::support::rigger_cmd(cmd, std::time::Duration::from_secs(120))
    };
    let (code, out, err) = run(None);
    assert_ok(code, &out, &err);
    assert_eq!(lab.read("out/foo"), "baz");
    assert_eq!(err.matches("Found duplicate mapping key 'foo'.").count(), 1, "{err}");
    assert!(err.contains("dup.yml:6:5"), "{err}");
    let (code, out, err) = run(Some("ignore"));
    assert_ok(code, &out, &err);
    assert!(!err.contains("duplicate"), "{err}");
    std::fs::remove_file(lab.path("out/foo")).unwrap();
    let (code, _, err) = run(Some("error"));
    // Ansible's AnsibleParserError: exit 4 (PARSER_ERROR).
    assert_eq!(code, 4, "{err}");
    assert!(err.contains("dup.yml:6:5: Found duplicate mapping key 'foo'."), "{err}");
    assert_eq!(lab.read("out/foo"), "", "nothing ran");
}

/// ANSIBLE_LOG_PATH: what the run shows is appended to the log file in
/// Ansible's logging format, warnings at WARNING; no file without it, and a
/// directory is a warning, not a failure (the ansible_log target).
#[test]
fn ansible_log_path_records_the_run_in_ansibles_format() {
    let lab = Lab::new(1);
    lab.write(
        "logit.yml",
        r#"
- hosts: testhosts
  gather_facts: false
  vars:
    dup: 1
    dup: 2
  tasks:
    - name: normal task
      command: "true"
"#,
    );
    let log = lab.path("out/ansible.log");
    let run = |path: Option<&std::path::Path>| {
        let mut cmd = lab.cmd("logit.yml", &[]);
        cmd.env_remove("ANSIBLE_DUPLICATE_YAML_DICT_KEY");
        match path {
            Some(p) => cmd.env("ANSIBLE_LOG_PATH", p),
            None => cmd.env_remove("ANSIBLE_LOG_PATH"),
        };
        crate::support::rigger_cmd(cmd, std::time::Duration::from_secs(120))
    };
    let (code, out, err) = run(None);
    assert_ok(code, &out, &err);
    assert!(!log.exists());
    let (code, out, err) = run(Some(&log));
    assert_ok(code, &out, &err);
    let text = std::fs::read_to_string(&log).expect("log file written");
    let user = std::env::var("LOGNAME")
        .or_else(|_| std::env::var("USER"))
        .unwrap_or_else(|_| "root".into());
    let fields = format!(" u={user} n=ansible ");
    let task = text
        .lines()
        .find(|l| l.contains("INFO| TASK [normal task]"))
        .unwrap_or_else(|| panic!("no task record:\n{text}"));
    // `2026-12-07 07:11:08,522 p=PID u=USER n=ansible INFO| ...`
    let b = task.as_bytes();
    assert!(
        b[4] == b'-' && b[10] == b' ' && b[13] == b':' && b[19] == b',',
        "{task}"
    );
    assert!(task[23..].starts_with(" p=") && task.contains(&fields), "{task}");
    assert!(
        text.lines()
            .any(|l| l.contains("WARNING| [WARNING]:") && l.contains("Found duplicate mapping key 'dup'")),
        "{text}"
    );
    assert!(text.contains("INFO| PLAY RECAP"), "{text}");
    // A second run appends.
    let before = text.lines().count();
    run(Some(&log));
    assert_eq!(std::fs::read_to_string(&log).unwrap().lines().count(), 2 * before);
    // A directory: Ansible's warning, and the run goes on.
    let (code, out, err) = run(Some(&lab.path("out")));
    assert_ok(code, &out, &err);
    assert!(err.contains("DEFAULT_LOG_PATH can not be a directory"), "{err}");
}
