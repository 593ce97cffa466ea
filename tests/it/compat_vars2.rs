//! Task arguments and keywords as ansible-core 2.19 checks them when a task
//! runs (its `Task._post_validate_args` and keyword conversion), as its own
//! integration targets (`parsing`, `tasks`, `add_host`, `playbook`,
//! `includes`) exercise them. Real playbooks, the real binary, a real sshd
//! test host.

use crate::engine::Lab;

fn assert_ok(code: i32, out: &str, err: &str) {
    assert_eq!(code, 0, "rigger failed\n--- stdout ---\n{out}\n--- stderr ---\n{err}");
}

#[test]
fn free_form_text_for_a_module_without_it_fails_the_task_when_it_runs() {
    let lab = Lab::new(1);
    lab.write(
        "site.yml",
        r#"
- hosts: testhosts
  gather_facts: false
  tasks:
    # Text that is not key=value: the task fails (ignore_errors applies).
    - debug:
        garbage {{ "with a template" }}
      ignore_errors: true
      register: bad_raw
    - add_host: namenewdynamichost groupsnewdynamicgroup
      ignore_errors: true
      register: bad_add_host
    # Text that is all template: rendered when the task runs, it must
    # give a mapping (explicit key=value arguments win over it).
    - file: path=@OUT@/made state=touch {{ more }}
      vars:
        more: "mode=0600"
      ignore_errors: true
      register: not_a_mapping
    - file: path=@OUT@/made {{ more }}
      vars:
        more:
          state: touch
          path: "@OUT@/not-this-one"
      register: a_mapping
    - copy:
        dest: "@OUT@/seen.txt"
        content: "{{ bad_raw.msg }}|{{ bad_add_host.msg }}|{{ not_a_mapping is failed }}|{{ a_mapping is changed }}"
"#,
    );
    let (code, out, err) = lab.run("site.yml", &[]);
    assert_ok(code, &out, &err);
    let seen = lab.read("out/seen.txt");
    let parts: Vec<&str> = seen.split('|').collect();
    assert!(
        parts[0].contains("site.yml:7:")
            && parts[0].contains("Action 'ansible.builtin.debug' does not support raw params."),
        "{seen}"
    );
    assert!(
        parts[1].contains("Action 'ansible.builtin.add_host' does not support raw params."),
        "{seen}"
    );
    assert_eq!(&parts[2..], ["True", "True"], "{seen}");
    assert!(lab.path("out/made").exists());
    assert!(!lab.path("out/not-this-one").exists());
}

#[test]
fn a_boolean_keyword_that_is_not_one_fails_its_task_with_ansibles_wording() {
    let lab = Lab::new(1);
    lab.write(
        "site.yml",
        r#"
- hosts: testhosts
  gather_facts: false
  tasks:
    - debug: msg=fine
      diff: yes
      register: good_diff
    - debug: msg=never
      diff: yes.
      ignore_errors: true
      register: bad_diff
    - copy:
        dest: "@OUT@/seen.txt"
        content: "{{ good_diff is success }} {{ bad_diff is failed }} {{ bad_diff.msg }}"
"#,
    );
    let (code, out, err) = lab.run("site.yml", &[]);
    assert_ok(code, &out, &err);
    let seen = lab.read("out/seen.txt");
    assert!(
        seen.starts_with("True True ") && seen.contains("site.yml:9:13:"),
        "{seen}"
    );
    assert!(
        seen.contains("The value 'yes.' could not be converted to 'bool'"),
        "{seen}"
    );
    assert!(!out.contains("never"), "{out}");

    // Without ignore_errors the run fails there, located.
    lab.write(
        "strict.yml",
        "- hosts: testhosts\n  gather_facts: false\n  tasks:\n    - debug: msg=x\n      no_log: maybe\n",
    );
    let (code, out, err) = lab.run("strict.yml", &[]);
    assert_ne!(code, 0);
    assert!(
        format!("{out}{err}").contains("strict.yml:5:15")
            && format!("{out}{err}").contains("The value 'maybe' could not be converted to 'bool'"),
        "{out}"
    );
}

#[test]
fn an_unknown_play_keyword_is_named_as_ansible_names_it() {
    let lab = Lab::new(1);
    lab.write("inc.yml", "- debug: msg=x\n");
    lab.write("site.yml", "- include_tasks: inc.yml\n");
    let (code, _out, err) = lab.run("site.yml", &[]);
    assert_ne!(code, 0);
    assert!(
        err.contains("site.yml:1:3")
            && err.contains("unknown play keyword `include_tasks`")
            && err.contains("'include_tasks' is not a valid attribute for a Play"),
        "{err}"
    );
}

#[test]
fn hash_behaviour_merge_merges_mappings_across_variable_layers() {
    let lab = Lab::new(1);
    lab.write("vars/h.yml", "h:\n  file: 2\n");
    lab.write("roles/r/defaults/main.yml", "h:\n  default: 0\n");
    lab.write(
        "roles/r/tasks/main.yml",
        "- copy:\n    dest: \"@OUT@/h-{{ mode }}.json\"\n    content: \"{{ h | to_json }}\"\n  vars:\n    h:\n      task: 3\n",
    );
    lab.write(
        "site.yml",
        r#"
- hosts: testhosts
  gather_facts: false
  vars_files: [vars/h.yml]
  vars:
    h:
      play: 1
  roles:
    - r
"#,
    );
    for mode in ["merge", "replace"] {
        let out = lab
            .cmd(
                "site.yml",
                &["-e", &format!("{{\"mode\": \"{mode}\", \"h\": {{\"extra\": 4}}}}")],
            )
            .env("ANSIBLE_HASH_BEHAVIOUR", mode)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
    }
    let read = |name: &str| -> serde_json::Value { serde_json::from_str(&lab.read(name)).unwrap() };
    assert_eq!(
        read("out/h-merge.json"),
        serde_json::json!({"default": 0, "extra": 4, "file": 2, "play": 1, "task": 3})
    );
    assert_eq!(read("out/h-replace.json"), serde_json::json!({"extra": 4}));

    let out = lab
        .cmd("site.yml", &[])
        .env("ANSIBLE_HASH_BEHAVIOUR", "deep")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(5));
    assert!(String::from_utf8_lossy(&out.stderr).contains("must be `replace` or `merge`, not `deep`"));
}
