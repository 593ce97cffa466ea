//! The file-family modules and local facts as ansible-core's own
//! integration targets exercise them (`facts_d`, ...): real playbooks, the
//! real binary, a real sshd test host.

use serde_json::Value;

use crate::engine::Lab;

/// `setup` reads `fact_path` as Ansible's local fact collector: a readable
/// file as JSON or INI, an executable one run (its output the fact), and a
/// message in place of a fact that cannot be loaded; `filter` keeps
/// `ansible_local`, which later tasks see as a fact.
#[test]
fn setup_reads_local_facts_from_fact_path() {
    let lab = Lab::new(1);
    lab.write(
        "facts.yml",
        r##"
- hosts: testhosts
  gather_facts: false
  tasks:
    - file: path=@OUT@/facts.d state=directory
    - copy:
        dest: "@OUT@/facts.d/{{ item.name }}.fact"
        content: "{{ item.content }}"
        mode: "{{ item.mode }}"
      loop:
        - {name: preferences, content: "[general]\nbar=loaded\n", mode: "0644"}
        - {name: json, content: '{"n": [1, 2]}', mode: "0644"}
        - {name: goodscript, content: "#!/bin/sh\necho '{\"script_ran\": true}'\n", mode: "0755"}
        - {name: badscript, content: "#!/bin/sh\nexit 3\n", mode: "0755"}
        - {name: bad, content: "[bad fact]\nvalue = this is a % bad % fact\n", mode: "0644"}
        - {name: noheader, content: "k=v\n", mode: "0644"}
    - file: path=@OUT@/facts.d/dead.fact src=/nonexistent/x state=link force=true
    - setup:
        fact_path: "@OUT@/facts.d"
        filter: "*local*"
      register: r
    - copy:
        dest: "@OUT@/local.json"
        content: "{{ {'keys': r.ansible_facts.keys() | list, 'local': ansible_local} | to_json }}"
"##,
    );
    let (code, out, err) = lab.run("facts.yml", &[]);
    assert_eq!(code, 0, "rigger failed\n--- stdout ---\n{out}\n--- stderr ---\n{err}");
    let got: Value = serde_json::from_str(&lab.read("out/local.json")).unwrap();
    assert_eq!(got["keys"], serde_json::json!(["ansible_local"]));
    let local = &got["local"];
    assert_eq!(local["preferences"], serde_json::json!({"general": {"bar": "loaded"}}));
    assert_eq!(local["json"], serde_json::json!({"n": [1, 2]}));
    assert_eq!(local["goodscript"], serde_json::json!({"script_ran": true}));
    let text = |k: &str| local[k].as_str().unwrap_or_default().to_string();
    assert!(
        text("badscript").starts_with("Failure executing fact script ("),
        "{local}"
    );
    assert!(text("badscript").contains("rc: 3"), "{local}");
    assert!(
        text("bad").starts_with("error loading facts as ini - please check content: "),
        "{local}"
    );
    assert!(
        text("noheader").starts_with("error loading facts as JSON or ini"),
        "{local}"
    );
    assert!(text("dead").starts_with("Could not stat fact ("), "{local}");
}
