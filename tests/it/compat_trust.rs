//! ansible-core 2.19's templating and trust semantics as its own integration
//! targets (`debug`, `var_blending`, `jinja2_native_types`, `undefined`,
//! `conditionals`) exercise them: `debug`'s `var` (placeholders for
//! undefined values, `!unsafe` and computed names refused, omit,
//! verbosity), task arguments given as one template in `args:`, and the
//! `Task failed:` chain of an error raised before the module runs. Real
//! playbooks, the real binary, a real sshd test host.

use crate::engine::Lab;

fn assert_ok(code: i32, out: &str, err: &str) {
    assert_eq!(code, 0, "rigger failed\n--- stdout ---\n{out}\n--- stderr ---\n{err}");
}

#[test]
fn debug_var_follows_ansible_2_19() {
    let lab = Lab::new(1);
    lab.write(
        "site.yml",
        r#"
- hosts: testhosts
  gather_facts: false
  vars:
    shown: hi mom
    indirect_omit: '{{ omit }}'
  tasks:
    # An undefined value is a numbered placeholder, with a warning.
    - debug:
        var: nosuch.attr
      register: undefined_var
    # `!unsafe` text is data: never evaluated as the expression.
    - debug:
        var: !unsafe shown
      ignore_errors: true
      register: unsafe_var
    # Not a string: no conversion.
    - debug:
        var:
          a: b
      ignore_errors: true
      register: dict_var
    # A name a template computes is not trusted; one variable's value is.
    - debug:
        var: '{{ "shown" }}'
      ignore_errors: true
      register: computed_name
    - debug:
        var: '{{ item }}'
      loop: [shown]
      register: item_name
    # An omitted `var` is no `var`; a value that is omit is a placeholder.
    - debug:
        var: '{{ omit }}'
      register: omitted
    - debug:
        var: indirect_omit
      register: omit_value
    # Above the run's verbosity: skipped.
    - debug:
        msg: quiet
        verbosity: '{{ 2 }}'
      register: too_verbose
    - copy:
        dest: "@OUT@/seen.json"
        content: "{{ [undefined_var, unsafe_var.msg, dict_var.msg, computed_name.msg, item_name.results[0].shown, omitted.msg, omit_value, too_verbose is skipped] | to_json }}"
"#,
    );
    let (code, out, err) = lab.run("site.yml", &[]);
    assert_ok(code, &out, &err);
    let seen: serde_json::Value = serde_json::from_str(&lab.read("out/seen.json")).expect("json");
    let undefined = &seen[0];
    assert_eq!(
        undefined["nosuch.attr"], "<< error 1 - 'nosuch' is undefined >>",
        "{seen}"
    );
    assert_eq!(
        undefined["warnings"][0], "Encountered 1 template error.\nerror 1 - 'nosuch' is undefined",
        "{seen}"
    );
    assert!(
        seen[1].as_str().unwrap().contains("untrusted template or expression"),
        "{seen}"
    );
    assert!(
        seen[2]
            .as_str()
            .unwrap()
            .contains("is not a string and conversion is not allowed"),
        "{seen}"
    );
    assert!(
        seen[3].as_str().unwrap().contains("untrusted template or expression"),
        "{seen}"
    );
    assert_eq!(seen[4], "hi mom", "{seen}");
    assert_eq!(seen[5], "Hello world!", "{seen}");
    assert_eq!(seen[6]["indirect_omit"], "<<Omit>>", "{seen}");
    assert!(
        seen[6]["warnings"][0]
            .as_str()
            .unwrap()
            .contains("could not be omitted"),
        "{seen}"
    );
    assert_eq!(seen[7], true, "{seen}");
}

#[test]
fn task_args_as_one_template_in_args() {
    let lab = Lab::new(1);
    lab.write(
        "site.yml",
        r#"
- hosts: testhosts
  gather_facts: false
  vars:
    splatted:
      msg: '{{ omit }}'
      var: not_this_one
    local_wins: from the task
  tasks:
    - debug:
        var: local_wins
      args: '{{ splatted }}'
      register: merged
    - debug:
      args: '{{ omit }}'
      register: omitted
    - debug:
      args: '{{ "a string" }}'
      ignore_errors: true
      register: not_a_mapping
    - copy:
        dest: "@OUT@/seen.txt"
        content: "{{ merged.local_wins }}|{{ omitted.msg }}|{{ not_a_mapping.msg }}"
"#,
    );
    let (code, out, err) = lab.run("site.yml", &[]);
    assert_ok(code, &out, &err);
    let seen = lab.read("out/seen.txt");
    let parts: Vec<&str> = seen.split('|').collect();
    assert_eq!(parts[0], "from the task", "{seen}");
    assert_eq!(parts[1], "Hello world!", "{seen}");
    assert!(
        parts[2].starts_with("Task failed: ")
            && parts[2].contains(
                "Finalization of task args for 'debug' failed: Task args must resolve to a 'dict' not 'str'."
            ),
        "{seen}"
    );
}

#[test]
fn errors_before_the_module_are_the_task_failed_chain() {
    let lab = Lab::new(1);
    lab.write(
        "site.yml",
        r#"
- hosts: testhosts
  gather_facts: false
  tasks:
    - raw: "{{ [{ 'key': nested_and_undefined }] }} second_node"
      ignore_errors: true
      register: inside_text
    - ping:
        data: "{{ 5 / item }}"
      loop: [0, 1]
      ignore_errors: true
      register: division
    - copy:
        dest: "@OUT@/seen.json"
        content: "{{ [inside_text.msg, inside_text.exception is defined, division.results[0].msg, division.results[1].exception is undefined, ansible_verbosity] | to_json }}"
"#,
    );
    let (code, out, err) = lab.run("site.yml", &["-v"]);
    assert_ok(code, &out, &err);
    let seen: serde_json::Value = serde_json::from_str(&lab.read("out/seen.json")).expect("json");
    let msg = seen[0].as_str().unwrap();
    assert!(
        msg.starts_with("Task failed: ") && msg.contains("'nested_and_undefined' is undefined"),
        "{seen}"
    );
    assert_eq!(seen[1], true, "{seen}");
    let msg = seen[2].as_str().unwrap();
    assert!(
        msg.starts_with("Task failed: ") && msg.contains("division by zero"),
        "{seen}"
    );
    assert_eq!(seen[3], true, "{seen}");
    assert_eq!(seen[4], 1, "{seen}");
    // The error summary is printed before the result, as Ansible's callback does.
    assert!(out.contains("[ERROR]: Task failed: "), "{out}");
}

#[test]
fn password_and_vaulted_template_lookups_and_debug_facts() {
    let lab = Lab::new(1);
    let dir = lab.dir.path();
    std::fs::create_dir_all(dir.join("templates")).unwrap();
    std::fs::write(dir.join("pw"), "topsecret\n").unwrap();
    std::fs::write(dir.join("templates/hello.j2"), "Unvaulted {{ who }}!\n").unwrap();
    crate::vault::ok(crate::vault::vault(
        dir,
        &["encrypt", "--vault-password-file", "pw", "templates/hello.j2"],
    ));
    lab.write(
        "site.yml",
        r#"
- hosts: testhosts
  gather_facts: false
  vars:
    who: World
  tasks:
    - set_fact:
        one: "{{ lookup('password', '/dev/null length=12 chars=digits') }}"
        two: "{{ lookup('password', '/dev/null', length=30) }}"
        stored: "{{ lookup('password', 'creds/db chars=ascii_lowercase,,') }}"
        again: "{{ lookup('password', 'creds/db') }}"
        hello: "{{ lookup('template', 'hello.j2') }}"
    # `debug` showing `ansible_facts` sets no fact.
    - set_fact:
        ansible_facts:
          nonfact: 1
    - debug: var=ansible_facts
    - ping:
        data: 5.0
      register: pinged
    - copy:
        dest: "@OUT@/seen.json"
        content: "{{ [one, two, stored, again, hello | trim, nonfact is defined, pinged.ping] | to_json }}"
"#,
    );
    let (code, out, err) = lab.run("site.yml", &["--vault-password-file", "pw"]);
    assert_ok(code, &out, &err);
    let seen: serde_json::Value = serde_json::from_str(&lab.read("out/seen.json")).expect("json");
    let one = seen[0].as_str().unwrap();
    assert!(one.len() == 12 && one.bytes().all(|b| b.is_ascii_digit()), "{seen}");
    let two = seen[1].as_str().unwrap();
    assert!(
        two.len() == 30 && two.chars().all(|c| c.is_ascii_alphanumeric() || ".,:-_".contains(c)),
        "{seen}"
    );
    let stored = seen[2].as_str().unwrap();
    assert!(
        stored.len() == 20 && stored.chars().all(|c| c.is_ascii_lowercase() || c == ','),
        "{seen}"
    );
    assert_eq!(seen[3], seen[2], "the second lookup reads the stored password: {seen}");
    let file = dir.join("creds/db");
    assert_eq!(std::fs::read_to_string(&file).unwrap(), format!("{stored}\n"));
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(&file).unwrap().permissions().mode() & 0o777, 0o600);
    assert_eq!(seen[4], "Unvaulted World!", "{seen}");
    assert_eq!(seen[5], false, "{seen}");
    assert_eq!(seen[6], "5.0", "{seen}");
}

/// Task arguments rendered from `args: '{{ ... }}'` are data: an expression
/// option among them (`assert`'s `that`) built from a host's output is
/// refused, never evaluated (it would run its lookup on the controller).
#[test]
fn expressions_from_an_args_template_are_never_evaluated() {
    let lab = Lab::new(1);
    lab.write(
        "site.yml",
        r#"
- hosts: testhosts
  gather_facts: false
  tasks:
    - command: cat @OUT@/payload.json
      register: host_output
    - assert:
      args: "{{ host_output.stdout | from_json }}"
      register: refused
      ignore_errors: true
    - copy:
        content: "{{ refused.msg }}\n"
        dest: "@OUT@/msg"
"#,
    );
    // What a host's command prints (here, a file on the shared test host).
    lab.write(
        "out/payload.json",
        r#"{"that": ["lookup('pipe', 'touch @OUT@/pwned') is string"]}"#,
    );
    let (code, out, err) = lab.run("site.yml", &[]);
    assert_ok(code, &out, &err);
    assert!(
        !lab.path("out/pwned").exists(),
        "a host's output was evaluated on the controller"
    );
    let msg = lab.read("out/msg");
    assert!(
        msg.contains("Encountered untrusted template or expression") && msg.contains("`that`"),
        "{msg}"
    );
}

/// 2.19's trust: an `args:` template that is one variable the playbook's
/// author wrote without a template is trusted, expression options included;
/// one whose value holds a template gives data and is refused.
#[test]
fn args_from_a_literal_variable_are_trusted_and_from_a_template_are_not() {
    let lab = Lab::new(1);
    lab.write(
        "site.yml",
        r#"
- hosts: testhosts
  gather_facts: false
  vars:
    literal_args:
      that: ["1 + 1 == 3"]
    templated_args:
      that: ["{{ '1 + 1 == 2' }}"]
  tasks:
    - assert:
      args: "{{ literal_args }}"
      register: evaluated
      ignore_errors: true
    - assert:
      args: "{{ templated_args }}"
      register: refused
      ignore_errors: true
    - copy:
        content: "{{ evaluated.msg }}|{{ evaluated.assertion | default('') }}\n{{ refused.msg }}\n"
        dest: "@OUT@/msg"
"#,
    );
    let (code, out, err) = lab.run("site.yml", &[]);
    assert_ok(code, &out, &err);
    let msg = lab.read("out/msg");
    let mut lines = msg.lines();
    assert_eq!(lines.next(), Some("Assertion failed|1 + 1 == 3"), "{msg}");
    let refused = lines.next().unwrap_or_default();
    assert!(
        refused.contains("Encountered untrusted template or expression") && refused.contains("`that`"),
        "{msg}"
    );
}

/// 2.19's trust by origin for loop items: `assert: '{{ item }}'` over a
/// list the playbook's author wrote evaluates its expressions (a template
/// in it may only give a value without text); over a host's output it
/// refuses them.
#[test]
fn literal_loop_items_are_trusted_as_arguments_and_host_output_is_not() {
    let lab = Lab::new(1);
    lab.write(
        "site.yml",
        r#"
- hosts: testhosts
  gather_facts: false
  vars:
    a_var: one
  tasks:
    - assert: '{{ item }}'
      loop:
        - that: a_var == "one"
        - that: ['1 == 1', '{{ a_var == "one" }}']
    - command: cat @OUT@/payload.json
      register: host_output
    - assert: '{{ item }}'
      loop: "{{ [host_output.stdout | from_json] }}"
      register: refused
      ignore_errors: true
    - copy:
        content: "{{ refused.results[0].msg }}\n"
        dest: "@OUT@/msg"
"#,
    );
    // What a host's command prints (here, a file on the shared test host).
    lab.write("out/payload.json", r#"{"that": "a_var == \"one\""}"#);
    let (code, out, err) = lab.run("site.yml", &[]);
    assert_ok(code, &out, &err);
    let msg = lab.read("out/msg");
    assert!(msg.contains("Encountered untrusted template or expression"), "{msg}");
}
