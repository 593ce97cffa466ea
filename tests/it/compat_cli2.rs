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
