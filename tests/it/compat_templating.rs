//! Templating as ansible-core 2.19 does it (what its conditionals, loops,
//! jinja2_native_types, filter_mathstuff, undefined ... integration targets
//! exercise). Real playbooks, the real binary, real sshd test hosts.

use serde_json::{json, Value};

use crate::engine::Lab;

fn assert_ok(code: i32, out: &str, err: &str) {
    assert_eq!(code, 0, "rigger failed\n--- stdout ---\n{out}\n--- stderr ---\n{err}");
}

/// `with_dict` is the `dict` lookup: a list of mappings chains their items,
/// and a term that is no mapping fails with the lookup's own message.
#[test]
fn with_dict_takes_a_list_of_mappings_and_names_a_bad_term() {
    let lab = Lab::new(1);
    lab.write(
        "dict.yml",
        r#"
- hosts: testhosts
  gather_facts: false
  tasks:
    - debug:
        msg: "{{ item.key }}={{ item.value }}"
      with_dict: [{a: 1}, {b: 2, c: 3}]
      register: chained
    - debug:
        msg: "{{ item }}"
      with_dict: "{{ a_list }}"
      vars:
        a_list: [1, 2]
      register: bad
      ignore_errors: true
    - copy:
        dest: "@OUT@/{{ inventory_hostname }}.json"
        content: "{{ {'chained': chained.results | map(attribute='msg') | list, 'bad': bad.msg} | to_json }}"
"#,
    );
    let (code, out, err) = lab.run("dict.yml", &[]);
    assert_ok(code, &out, &err);
    let host = lab.hosts.name(0);
    let got: Value =
        serde_json::from_str(&lab.read(&format!("out/{host}.json"))).unwrap_or_else(|e| panic!("{e}\n{out}"));
    assert_eq!(got["chained"], json!(["a=1", "b=2", "c=3"]));
    let bad = got["bad"].as_str().unwrap_or_default();
    assert!(
        bad.contains("the 'dict' lookup plugin expects a dictionary, got '1' of type <class 'int'>")
            && bad.contains("dict.yml:"),
        "{bad}"
    );
}
