//! What the real roles (issue #20 point 6) need beyond the integration
//! targets: Python `re` patterns in the file modules, as
//! devsec.os_hardening writes them (look-aheads, back-references), on files
//! that are not all UTF-8. Real playbooks, the real binary, a real sshd
//! test host.

use crate::engine::Lab;

fn assert_ok(code: i32, out: &str, err: &str) {
    assert_eq!(code, 0, "rigger failed\n--- stdout ---\n{out}\n--- stderr ---\n{err}");
}

#[test]
fn file_modules_take_python_lookarounds_and_backreferences_on_any_bytes() {
    let lab = Lab::new(1);
    // One line that is not UTF-8 (Latin-1 `é`): it must come back unchanged.
    let pam = b"# pam\naccount [success=1 default=ignore] pam_unix.so\ncaf\xe9 latin1\nk = 'v'\n";
    std::fs::write(lab.path("out/common-account"), pam).unwrap();
    std::fs::write(lab.path("out/conf"), "a=1\nb=2 # keep\nçé\n").unwrap();
    lab.write(
        "re.yml",
        r#"
- hosts: testhosts
  gather_facts: false
  tasks:
    - name: devsec.os_hardening's task
      lineinfile:
        path: "@OUT@/common-account"
        backrefs: true
        regexp: "^(account.*pam_unix.so(?!.*no_pass_expiry).*)$"
        line: '\1 no_pass_expiry'
      register: first
    - name: the look-ahead keeps the second run from appending again
      lineinfile:
        path: "@OUT@/common-account"
        backrefs: true
        regexp: "^(account.*pam_unix.so(?!.*no_pass_expiry).*)$"
        line: '\1 no_pass_expiry'
      register: second
    - name: a back-reference in the pattern
      lineinfile:
        path: "@OUT@/common-account"
        regexp: "^k = (['\"])v\\1$"
        line: "k = w"
    - name: a look-behind in replace
      replace:
        path: "@OUT@/conf"
        regexp: '(?<=^b=)\d+'
        replace: "3"
    - name: a negative look-ahead in blockinfile's insertbefore
      blockinfile:
        path: "@OUT@/conf"
        insertbefore: '^b=(?!2)'
        block: "inserted"
    - find:
        paths: "@OUT@"
        patterns: '^(?!common-account$).*'
        use_regex: true
        contains: '^b=(?=3 )'
      register: found
    - copy:
        dest: "@OUT@/result.json"
        content: "{{ {'first': first.changed, 'second': second.changed,
                      'found': found.files | map(attribute='path') | map('basename') | list} | to_json }}"
"#,
    );
    let (code, out, err) = lab.run("re.yml", &[]);
    assert_ok(code, &out, &err);
    let got: serde_json::Value = serde_json::from_str(&lab.read("out/result.json")).unwrap();
    assert_eq!(
        got,
        serde_json::json!({"first": true, "second": false, "found": ["conf"]})
    );
    assert_eq!(
        std::fs::read(lab.path("out/common-account")).unwrap(),
        b"# pam\naccount [success=1 default=ignore] pam_unix.so no_pass_expiry\ncaf\xe9 latin1\nk = w\n"
    );
    // `b` became 3, so `^b=(?!2)` matches its line: the block goes before it.
    assert_eq!(
        std::fs::read(lab.path("out/conf")).unwrap(),
        "a=1\n# BEGIN ANSIBLE MANAGED BLOCK\ninserted\n# END ANSIBLE MANAGED BLOCK\nb=3 # keep\nçé\n".as_bytes()
    );
}

#[test]
fn a_pattern_python_rejects_fails_at_its_task() {
    let lab = Lab::new(1);
    lab.write(
        "bad.yml",
        r#"
- hosts: testhosts
  gather_facts: false
  tasks:
    - lineinfile:
        path: "@OUT@/x"
        create: true
        regexp: "^(account(?!x)"
        line: x
"#,
    );
    let (code, out, err) = lab.run("bad.yml", &[]);
    assert_eq!(code, 2, "--- stdout ---\n{out}\n--- stderr ---\n{err}");
    let all = format!("{out}{err}");
    assert!(all.contains("invalid regular expression in `regexp`"), "{all}");
    assert!(!lab.path("out/x").exists());
}
