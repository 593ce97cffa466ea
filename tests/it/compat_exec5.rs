//! What ansible-core's integration targets check that rigger built this
//! session: `set_stats` and the recap's CUSTOM STATS (set_stats), Ansible's
//! exit code 4 for a file that cannot be parsed (yaml_parsing, playbook),
//! old-style role requirements and vars_prompt without a name (playbook),
//! the `vault_encrypted` test (test_core). Real playbooks, the real binary,
//! real sshd test hosts.

use crate::engine::{parse_events, results, Lab};

fn assert_ok(code: i32, out: &str, err: &str) {
    assert_eq!(code, 0, "rigger failed\n--- stdout ---\n{out}\n--- stderr ---\n{err}");
}

/// `set_stats` registers `ansible_stats`; the recap adds the run's stats
/// up (numbers add, lists append, mappings merge, another type is
/// ignored), keeps per-host ones per host, and `aggregate: false`
/// replaces. The text recap shows them only with ANSIBLE_SHOW_CUSTOM_STATS,
/// the JSON recap always (custom_stats, global_custom_stats).
#[test]
fn set_stats_adds_up_into_the_recaps_custom_stats() {
    let lab = Lab::new(2);
    lab.write(
        "stats.yml",
        r#"
- hosts: testhosts
  gather_facts: false
  tasks:
    - set_stats:
        data:
          my_int: 10
          names: ["{{ inventory_hostname }}"]
          nested: {a: 1}
      register: first
    - set_stats:
        data:
          my_int: 15
          nested: {b: 2}
          names: not a list
    - set_stats:
        data:
          seen: "{{ inventory_hostname }}"
          count: 1
        per_host: "yes"
    - set_stats:
        data:
          count: 5
        per_host: true
        aggregate: "x"
    - copy:
        dest: "@OUT@/{{ inventory_hostname }}.registered"
        content: "{{ first.ansible_stats | to_json }} {{ first.changed }}"
    - name: not a mapping
      set_stats:
        data: [1, 2]
      ignore_errors: true
      register: bad
    - name: a bad name
      set_stats:
        data:
          .bad: 1
      ignore_errors: true
      register: bad_name
    - copy:
        dest: "@OUT@/{{ inventory_hostname }}.bad"
        content: "{{ bad.msg }}|{{ bad_name.msg }}"
"#,
    );
    let mut cmd = lab.cmd("stats.yml", &[]);
    cmd.env("ANSIBLE_SHOW_CUSTOM_STATS", "yes");
    let (code, out, err) = crate::support::rigger_cmd(cmd, std::time::Duration::from_secs(120));
    assert_ok(code, &out, &err);
    let registered: serde_json::Value =
        serde_json::from_str(lab.read("out/host1.registered").trim_end_matches(" False")).unwrap();
    assert_eq!(
        registered,
        serde_json::json!({"data": {"my_int": 10, "names": ["host1"], "nested": {"a": 1}}, "per_host": false, "aggregate": true})
    );
    assert!(lab.read("out/host1.registered").ends_with(" False"));
    let bad = lab.read("out/host1.bad");
    assert!(
        bad.starts_with("The 'data' option needs to be a dictionary/hash|")
            && bad.contains("Invalid variable name '.bad'"),
        "{bad}"
    );
    // Two hosts ran each task: my_int 10+10+15+15, both names, the
    // string for `names` ignored; per host: aggregate false replaced count.
    let recap = out.split("CUSTOM STATS: ").nth(1).unwrap_or_else(|| panic!("{out}"));
    assert!(
        recap.contains("\thost1: { \"count\": 5, \"seen\": \"host1\"}\n"),
        "{recap}"
    );
    assert!(
        recap.contains("\thost2: { \"count\": 5, \"seen\": \"host2\"}\n"),
        "{recap}"
    );
    let run_line = recap
        .lines()
        .find(|l| l.starts_with("\tRUN: "))
        .unwrap_or_else(|| panic!("{recap}"));
    assert!(run_line.contains("\"my_int\": 50"), "{run_line}");
    assert!(run_line.contains("\"nested\": {  \"a\": 1,  \"b\": 2 }"), "{run_line}");
    assert!(
        run_line.contains("\"host1\"") && run_line.contains("\"host2\"") && !run_line.contains("not a list"),
        "{run_line}"
    );

    // Without the setting the text recap has no such block.
    let (code, out, err) = lab.run("stats.yml", &[]);
    assert_ok(code, &out, &err);
    assert!(out.contains("PLAY RECAP") && !out.contains("CUSTOM STATS"), "{out}");

    // JSON: the recap event carries them as Ansible's json callback names them.
    let (code, out, err) = lab.run("stats.yml", &["--output", "json"]);
    assert_ok(code, &out, &err);
    let events = parse_events(&out);
    let recap = events.iter().find(|e| e["event"] == "recap").unwrap();
    assert_eq!(recap["global_custom_stats"]["my_int"], 50);
    assert_eq!(
        recap["custom_stats"]["host2"],
        serde_json::json!({"seen": "host2", "count": 5})
    );
    assert_eq!(results(&events, "not a mapping").len(), 2);
}

/// Ansible's exit codes (ansible-core's errors/__init__.py `ExitCode`): a
/// file that cannot be parsed exits 4 (PARSER_ERROR: YAML syntax, a
/// duplicate key under ANSIBLE_DUPLICATE_YAML_DICT_KEY=error, an action
/// that names no module, a vars_prompt without a name), another error 1
/// (an old-style `name,version` role, with Ansible's message).
#[test]
fn a_file_that_cannot_be_parsed_exits_4_as_in_ansible() {
    let lab = Lab::new(1);
    let head = "- hosts: testhosts\n  gather_facts: false\n";
    lab.write("syntax.yml", &format!("{head}  tasks:\n    - debug: {{msg: [a, b}}\n"));
    lab.write(
        "dup.yml",
        &format!("{head}  vars:\n    foo: 1\n    foo: 2\n  tasks: []\n"),
    );
    lab.write("nomodule.yml", &format!("{head}  tasks:\n    - debugg: msg=x\n"));
    lab.write(
        "prompt.yml",
        &format!("{head}  vars_prompt:\n    - foo: bar\n  tasks: []\n"),
    );
    lab.write("oldstyle.yml", &format!("{head}  roles:\n    - foo,bar\n"));
    let run = |pb: &str| {
        let mut cmd = lab.cmd(pb, &[]);
        cmd.env("ANSIBLE_DUPLICATE_YAML_DICT_KEY", "error");
        crate::support::rigger_cmd(cmd, std::time::Duration::from_secs(120))
    };
    for (pb, code, msg) in [
        ("syntax.yml", 4, "syntax.yml:4:"),
        ("dup.yml", 4, "Found duplicate mapping key 'foo'"),
        ("nomodule.yml", 4, "unknown module `debugg`"),
        (
            "prompt.yml",
            4,
            "Invalid vars_prompt data structure, missing 'name' key",
        ),
        (
            "oldstyle.yml",
            1,
            "oldstyle.yml:4:7: Invalid old style role requirement: foo,bar",
        ),
    ] {
        let (got, out, err) = run(pb);
        assert_eq!(got, code, "{pb}: {out}\n{err}");
        assert!(err.contains(msg), "{pb}: {msg}\n{err}");
        assert!(!out.contains("PLAY ["), "{pb}: nothing ran\n{out}");
    }
}

/// Ansible's `vault_encrypted` test: true for an inline `!vault` value
/// (decrypted or not, kept through set_fact), false for any other value,
/// even text that holds an ansible-vault envelope (2.19).
#[test]
fn vault_encrypted_knows_inline_vault_values() {
    let lab = Lab::new(1);
    lab.write("vault-password", "test-vault-password\n");
    // test_core's value, encrypted with its password.
    lab.write(
        "vaulted.yml",
        r#"
- hosts: testhosts
  gather_facts: false
  vars:
    envelope: "$ANSIBLE_VAULT;1.1;AES256\n3532"
  tasks:
    - set_fact:
        vaulted_value: !vault |
              $ANSIBLE_VAULT;1.1;AES256
              35323961353038346165643738646465376139363061353835303739663538343266303232326635
              3365353662646236356665323135633630656238316530640a663362363763633436373439663031
              33663433383037396438656464636433653837376361313638366362333037323961316364363363
              3835616438623261650a636164376534376661393134326662326362323131373964313961623365
              3833
    - copy:
        dest: "@OUT@/tests"
        content: "{{ vaulted_value is vault_encrypted }} {{ inventory_hostname is vault_encrypted }} {{ envelope is vault_encrypted }} {{ 'x' is not vault_encrypted }}"
"#,
    );
    let (code, out, err) = lab.run("vaulted.yml", &["--vault-password-file", "vault-password"]);
    assert_ok(code, &out, &err);
    assert_eq!(lab.read("out/tests"), "True False False True");
}

/// A module's value and `args:` that are both templates are layers, as
/// ansible-core 2.19's TaskArgsFinalizer chains them: `args:`' mapping
/// under the module's, and the task's explicit arguments over both
/// (the task-args target).
#[test]
fn module_value_and_args_templates_merge_as_ansible() {
    let lab = Lab::new(1);
    lab.write(
        "layers.yml",
        r#"
- hosts: testhosts
  gather_facts: false
  tasks:
    - copy: '{{ vp }}'
      args: '{{ rp }}'
      vars:
        vp:
          dest: "@OUT@/layered"
          content: "from vp"
        rp:
          content: "from rp"
          mode: "0600"
    - copy: '{{ vp }} mode=0640'
      args: '{{ rp }}'
      vars:
        vp: {dest: "@OUT@/explicit", content: "from vp", mode: "0600"}
        rp: {content: "from rp"}
    - name: a layer that is no mapping
      copy: '{{ vp }}'
      args: '{{ rp }}'
      vars:
        vp: {dest: "@OUT@/never", content: x}
        rp: [1]
      ignore_errors: true
      register: bad
    - copy:
        dest: "@OUT@/bad"
        content: "{{ bad.msg }}"
"#,
    );
    let (code, out, err) = lab.run("layers.yml", &[]);
    assert_ok(code, &out, &err);
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(lab.read("out/layered"), "from vp");
    let mode = |f: &str| std::fs::metadata(lab.path(f)).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode("out/layered"), 0o600);
    assert_eq!(lab.read("out/explicit"), "from vp");
    assert_eq!(mode("out/explicit"), 0o640);
    assert!(!lab.path("out/never").exists());
    assert!(
        lab.read("out/bad").contains("must resolve to a 'dict' not 'list'"),
        "{}",
        lab.read("out/bad")
    );
}

/// From -vvv on, a module's result shows its arguments as
/// `invocation.module_args`, as Ansible's output does (the roles target).
#[test]
fn module_args_show_as_invocation_from_vvv() {
    let lab = Lab::new(1);
    lab.write(
        "ping.yml",
        "- hosts: testhosts\n  gather_facts: false\n  tasks:\n    - ping:\n        data: reachable\n",
    );
    let (code, out, err) = lab.run("ping.yml", &["-vvv"]);
    assert_ok(code, &out, &err);
    assert!(
        out.contains("\"invocation\"") && out.contains("\"data\": \"reachable\""),
        "{out}"
    );
    let (code, out, err) = lab.run("ping.yml", &["-v"]);
    assert_ok(code, &out, &err);
    assert!(!out.contains("\"invocation\"") && !out.contains("\"data\""), "{out}");
}

/// An `action` mapping's `module: name k=v` text gives arguments over the
/// mapping's other keys, and its `args` wins over both (Ansible's
/// `_normalize_old_style_args`); for a FREEFORM action the other words
/// stay its command. Argument names are not templates (only set_fact's
/// are): `"{{ 'mode' }}"` is an unsupported parameter (the task-args target).
#[test]
fn action_mapping_module_text_and_untemplated_argument_names() {
    let lab = Lab::new(1);
    lab.write(
        "action.yml",
        r#"
- hosts: testhosts
  gather_facts: false
  tasks:
    - action:
        module: copy dest=@OUT@/layered content=from_module_kv
        content: discrete
        mode: "0600"
        args:
          mode: "0640"
    - action:
        module: "command echo {{ 'hi' }} chdir=/tmp"
      register: echoed
    - copy:
        dest: "@OUT@/named"
        content: x
        "{{ 'mode' }}": "0600"
      ignore_errors: true
      register: named
    - copy:
        dest: "@OUT@/results"
        content: "{{ echoed.stdout }}|{{ named.msg }}"
"#,
    );
    let (code, out, err) = lab.run("action.yml", &[]);
    assert_ok(code, &out, &err);
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(lab.read("out/layered"), "from_module_kv");
    let mode = std::fs::metadata(lab.path("out/layered")).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o640);
    let results = lab.read("out/results");
    assert!(
        results.starts_with("hi|Unsupported parameters for (copy) module: {{ 'mode' }}."),
        "{results}"
    );
    assert!(!lab.path("out/named").exists());
}

/// An `action` mapping's `args` that is one template renders, when the
/// task runs, into the arguments (the task-esoterica target).
#[test]
fn action_mapping_args_template_renders_into_arguments() {
    let lab = Lab::new(1);
    lab.write(
        "action_args.yml",
        r#"
- hosts: testhosts
  gather_facts: false
  tasks:
    - action:
        module: "{{ 'copy' }}"
        args: "{{ copy_args }}"
      vars:
        copy_args:
          dest: "@OUT@/from_template"
          content: templated
"#,
    );
    let (code, out, err) = lab.run("action_args.yml", &[]);
    assert_ok(code, &out, &err);
    assert_eq!(lab.read("out/from_template"), "templated");
}

/// The `constructed` plugin's `use_extra_vars`: `-e` values are seen by
/// `compose` (over the host's own variables), in `rigger inventory` and
/// in a run (the inventory target).
#[test]
fn constructed_use_extra_vars_sees_the_runs_extra_vars() {
    let lab = Lab::new(1);
    lab.write(
        "constructed.yml",
        "plugin: ansible.builtin.constructed\nstrict: true\nuse_extra_vars: true\ncompose:\n  example: \"'hello' + from_extras\"\n",
    );
    let mut cmd = std::process::Command::new(crate::support::rigger_bin());
    cmd.args(["inventory", "-i", "testhost,", "-i"])
        .arg(lab.path("constructed.yml"))
        .args(["--list", "-e", "from_extras=hey"]);
    let (code, out, err) = crate::support::rigger_cmd(cmd, std::time::Duration::from_secs(60));
    assert_ok(code, &out, &err);
    let list: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(list["_meta"]["hostvars"]["testhost"]["example"], "hellohey", "{out}");
    // In a run, the fleet's hosts get it from the run's -e.
    lab.write(
        "show.yml",
        "- hosts: testhosts\n  gather_facts: false\n  tasks:\n    - copy:\n        dest: \"@OUT@/example\"\n        content: \"{{ example }}\"\n",
    );
    let mut cmd = lab.cmd("show.yml", &["-e", "from_extras=you"]);
    cmd.arg("-i").arg(lab.path("constructed.yml"));
    let (code, out, err) = crate::support::rigger_cmd(cmd, std::time::Duration::from_secs(120));
    assert_ok(code, &out, &err);
    assert_eq!(lab.read("out/example"), "helloyou");
}
