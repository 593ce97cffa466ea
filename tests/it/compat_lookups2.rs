//! Inline `!vault` values as ansible-core 2.19 reads them (its
//! filter_encryption and templating targets): decrypted where they are
//! used, with the run's vault passwords; one that cannot be decrypted fails
//! only where it is used, naming its place, and `unvault` still opens it
//! with a secret given. Real playbooks, the real binary, real sshd test hosts.

use crate::engine::Lab;

/// `secret`, encrypted with the password `test` (ansible-vault 1.1).
const SECRET_WITH_TEST: &str = "$ANSIBLE_VAULT;1.1;AES256
33323332333033383335333533383338333333303339333733323339333833303334333133313339
33373339333133323331333833373335333933323338333633343338333133343334333733383334
33333335333433383337333133303339333433353332333333363339333733363335333233303330
3337333733353331333633313335333733373334333733320a373938666533366165653830313163
62386564343438653437333564383664646538653364343138303831613039313232636437336530
3438376662373764650a633366646563386335623161646262366137393635633464333265613938
6661";

/// `{{ "not trusted" }}`, encrypted with the password `blarblar`.
const TEMPLATE_WITH_BLARBLAR: &str = "$ANSIBLE_VAULT;1.1;AES256
36306639316132393663356162643765396231396462623962373832643539306635356639366633
6234303731383636623165633330653435336130613361370a373931613335353762376433636263
35363536613933396532636430646337393932393166396133613666386433353932373063356235
3666336365616535610a636534333332633930326331353533626332363263363666373730386264
31643561353465613030343632663036313963363634663231393665316437646530";

fn indented(envelope: &str, by: &str) -> String {
    envelope.replace('\n', &format!("\n{by}"))
}

#[test]
fn undecryptable_inline_vault_values_fail_only_where_used_and_unvault_opens_them() {
    let lab = Lab::new(1);
    lab.write(
        "site.yml",
        &format!(
            r#"
- hosts: testhosts
  gather_facts: false
  vars:
    vaulted: !vault |
      {secret}
    nested:
      fine: hi
      deeper: !vault |
        {deeper}
  tasks:
    - debug:
        var: vaulted
      register: as_var
      ignore_errors: true
    - debug:
        msg: "{{{{ nested | to_json }}}}"
      register: in_dict
      ignore_errors: true
    - debug:
        msg: "{{{{ vaulted | comment }}}}"
      register: as_text
      ignore_errors: true
    - copy:
        dest: "@OUT@/result.json"
        content: "{{{{ {{'unvaulted': vaulted | unvault('test'),
                      'as_var': as_var is failed, 'as_var_msg': as_var.msg,
                      'in_dict': in_dict is failed, 'in_dict_msg': in_dict.msg,
                      'as_text': as_text is failed,
                      'tagged': vaulted is ansible._protomatter.tagged_with('VaultedValue'),
                      'plain_tagged': 'x' is ansible._protomatter.tagged_with('VaultedValue')}} | to_json }}}}"
"#,
            secret = indented(SECRET_WITH_TEST, "      "),
            deeper = indented(SECRET_WITH_TEST, "        "),
        ),
    );
    let (code, out, err) = lab.run("site.yml", &[]);
    assert_eq!(code, 0, "{out}\n{err}");
    let r: serde_json::Value = serde_json::from_str(&lab.read("out/result.json")).expect("json");
    assert_eq!(r["unvaulted"], "secret", "{r}");
    for k in ["as_var", "in_dict", "as_text"] {
        assert_eq!(r[k], true, "{k}: {r}");
    }
    for k in ["as_var_msg", "in_dict_msg"] {
        let msg = r[k].as_str().unwrap_or_default();
        assert!(
            msg.contains("Attempt to use undecryptable variable")
                && msg.contains("site.yml:")
                && msg.contains("no vault password was given")
                && !msg.contains("3332333233303338"),
            "{k}: {msg}"
        );
    }
    assert_eq!(r["tagged"], true, "{r}");
    assert_eq!(r["plain_tagged"], false, "{r}");
}

#[test]
fn inline_vault_values_decrypt_with_the_run_password_and_are_never_rendered() {
    let lab = Lab::new(1);
    lab.write("pw", "blarblar\n");
    lab.write(
        "site.yml",
        &format!(
            r#"
- hosts: testhosts
  gather_facts: false
  vars:
    vaulted: !vault |
      {template}
  tasks:
    - copy:
        dest: "@OUT@/value.txt"
        content: "{{{{ vaulted }}}}"
"#,
            template = indented(TEMPLATE_WITH_BLARBLAR, "      "),
        ),
    );
    let (code, out, err) = lab.run("site.yml", &["--vault-password-file", "pw"]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert_eq!(lab.read("out/value.txt"), "{{ \"not trusted\" }}");
    // A wrong password: the value fails where it is used, naming the vault id tried.
    lab.write("pw", "wrong\n");
    let (code, out, err) = lab.run("site.yml", &["--vault-password-file", "pw"]);
    assert_ne!(code, 0, "{out}\n{err}");
    assert!(
        out.contains("Attempt to use undecryptable variable")
            && out.contains("site.yml:5:14")
            && out.contains("`default`"),
        "{out}\n{err}"
    );
}

#[test]
fn ansible_search_path_and_the_loop_variable_names_are_task_variables() {
    let lab = Lab::new(1);
    lab.write(
        "roles/inner/tasks/main.yml",
        "- copy: {dest: \"@OUT@/inner.json\", content: \"{{ ansible_search_path | to_json }}\"}\n",
    );
    lab.write(
        "roles/outer/tasks/main.yml",
        "- copy: {dest: \"@OUT@/outer.json\", content: \"{{ ansible_search_path | to_json }}\"}\n- include_role: {name: inner}\n",
    );
    lab.write(
        "site.yml",
        r#"
- hosts: testhosts
  gather_facts: false
  tasks:
    - copy: {dest: "@OUT@/play.json", content: "{{ ansible_search_path | to_json }}"}
    - debug: {var: item}
      loop: ["{{ ansible_search_path }}"]
      register: looped
    - assert: {that: "looped.results.0.item == ansible_search_path"}
    # The loop's and index's variable names are the item's variables too.
    - assert:
        that: [ansible_loop_var == 'alvin', ansible_index_var == 'idx', alvin == 1, idx == 0]
      loop: [1]
      loop_control: {loop_var: alvin, index_var: idx}
    # loop_var is templated.
    - assert: {that: "named_by_template == 'v' and ansible_loop_var == 'named_by_template'"}
      loop: [v]
      loop_control: {loop_var: "{{ var_name }}"}
      vars: {var_name: named_by_template}
    - include_role: {name: outer}
"#,
    );
    let (code, out, err) = lab.run("site.yml", &[]);
    assert_eq!(code, 0, "{out}\n{err}");
    let dir = std::fs::canonicalize(lab.dir.path()).expect("dir");
    let read = |f: &str| -> Vec<String> { serde_json::from_str(&lab.read(&format!("out/{f}"))).expect("json") };
    let d = |rel: &str| dir.join(rel).display().to_string();
    assert_eq!(read("play.json"), vec![dir.display().to_string()]);
    assert_eq!(read("outer.json"), vec![d("roles/outer"), d("roles/outer/tasks")]);
    assert_eq!(
        read("inner.json"),
        vec![d("roles/inner"), d("roles/outer"), d("roles/inner/tasks")]
    );
}
