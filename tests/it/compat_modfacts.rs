//! Module, fact and interpreter settings as ansible-core's own integration
//! targets exercise them (python_module_rlimit_nofile, split). Real
//! playbooks, the real binary, a real sshd test host.

use serde_json::Value;

use crate::engine::Lab;

fn assert_ok(code: i32, out: &str, err: &str) {
    assert_eq!(code, 0, "rigger failed\n--- stdout ---\n{out}\n--- stderr ---\n{err}");
}

/// `ansible_python_module_rlimit_nofile` is templated where a module runs:
/// a value is the soft limit, `omit` leaves the limit alone, a template
/// using an undefined variable fails the task naming the variable.
#[test]
fn rlimit_nofile_setting_is_templated_and_an_undefined_one_fails() {
    let lab = Lab::new(1);
    lab.write(
        "rlimit.yml",
        r#"
- hosts: testhosts
  gather_facts: false
  tasks:
    - shell: ulimit -n
      vars:
        ansible_python_module_rlimit_nofile: "{{ 123 }}"
      register: set
    - shell: ulimit -n
      vars:
        ansible_python_module_rlimit_nofile: "{{ undefined_variable }}"
      register: undef
      ignore_errors: true
    - copy:
        dest: "@OUT@/rlimit.json"
        content: "{{ {'set': set.stdout, 'failed': undef is failed, 'ran': undef.rc is defined,
                      'msg': undef.msg | default('')} | to_json }}"
"#,
    );
    let (code, out, err) = lab.run("rlimit.yml", &[]);
    assert_ok(code, &out, &err);
    let got: Value = serde_json::from_str(&lab.read("out/rlimit.json")).unwrap();
    assert_eq!(got["set"], "123");
    assert_eq!(got["failed"], true, "{got}");
    assert_eq!(got["ran"], false, "{got}");
    let msg = got["msg"].as_str().unwrap();
    assert!(msg.contains("undefined_variable") && msg.contains("undefined"), "{msg}");
}

/// `setup` reports `ansible_python_version` (Ansible's platform fact) from
/// the host's interpreter, beside `ansible_python`.
#[test]
fn setup_reports_python_version() {
    let lab = Lab::new(1);
    lab.write(
        "pyver.yml",
        r#"
- hosts: testhosts
  gather_facts: false
  tasks:
    - setup:
      register: facts
    - copy:
        dest: "@OUT@/pyver.json"
        content: "{{ {'version': facts.ansible_facts.ansible_python_version,
                      'info': facts.ansible_facts.ansible_python.version} | to_json }}"
"#,
    );
    let (code, out, err) = lab.run("pyver.yml", &[]);
    assert_ok(code, &out, &err);
    let got: Value = serde_json::from_str(&lab.read("out/pyver.json")).unwrap();
    let version = got["version"].as_str().unwrap();
    let info = &got["info"];
    assert!(
        version.starts_with(&format!("{}.{}.{}", info["major"], info["minor"], info["micro"])),
        "{got}"
    );
}
