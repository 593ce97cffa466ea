//! The command line as ansible-core's own script targets use it: `rigger
//! inventory` with ansible-inventory's flags and output, and the wording of
//! errors those scripts grep for. The real binary, no test hosts needed.

use std::path::Path;

use crate::adhoc::Rig;

const INI: &str = "\
solo
[web]
w2 port_var=1
w1
[web:vars]
tier=front
[db]
[prod:children]
web
[all:vars]
_ansible_internal=x
";

fn write(dir: &Path, name: &str, text: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, text).expect("write");
    p.display().to_string()
}

/// `ansible-inventory -i hosts --list --yaml --export`, `--graph GROUP --vars`
/// (group as positional), `--output FILE`: what ansible-core 2.19.14 prints.
#[test]
fn inventory_takes_ansible_inventory_flags() {
    let dir = tempfile::tempdir().expect("tempdir");
    let inv = write(dir.path(), "hosts", INI);

    let out = Rig::new(&["inventory", "-i", &inv, "--list", "--yaml", "--export"]).run();
    out.expect_code(0);
    let expected = "\
all:
  children:
    prod:
      children:
        web:
          hosts:
            w1: {}
            w2:
              port_var: 1
          vars:
            tier: front
    ungrouped:
      hosts:
        solo: {}
  vars:
    _ansible_internal: x
";
    assert_eq!(out.stdout, expected);

    let out = Rig::new(&["inventory", "-i", &inv, "prod", "--graph", "--vars"]).run();
    out.expect_code(0);
    let expected = "\
@prod:
  |--@web:
  |  |--w2
  |  |  |--{_ansible_internal = x}
  |  |  |--{port_var = 1}
  |  |  |--{tier = front}
  |  |--w1
  |  |  |--{_ansible_internal = x}
  |  |  |--{tier = front}
  |  |--{tier = front}
";
    assert_eq!(out.stdout, expected);

    let file = dir.path().join("out.json");
    let out = Rig::new(&[
        "inventory",
        "-i",
        &inv,
        "--list",
        "--output",
        &file.display().to_string(),
    ])
    .run();
    out.expect_code(0);
    assert_eq!(out.stdout, "");
    let list: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&file).expect("--output file")).expect("JSON");
    assert_eq!(list["_meta"]["profile"], "inventory_legacy");
    assert_eq!(list["web"]["hosts"], serde_json::json!(["w2", "w1"]));
    assert_eq!(list["_meta"]["hostvars"]["w2"]["tier"], "front");

    // As ansible-inventory: one of --list, --host, --graph is needed.
    let out = Rig::new(&["inventory", "-i", &inv]).run();
    out.expect_code(5);
    assert!(
        out.stderr
            .contains("No action selected, at least one of --host, --graph or --list needs to be specified."),
        "{}",
        out.stderr
    );
}

/// A YAML inventory whose host key is a number is not parsed, with
/// Ansible's message at the key's position.
#[test]
fn inventory_yaml_integer_host_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    let inv = write(
        dir.path(),
        "int.yml",
        "all:\n  children:\n    kids:\n      hosts:\n        1234: {}\n",
    );
    // As ansible-inventory with Ansible's default settings: the source is
    // skipped with a warning saying why (rigger's default: an error).
    let out = Rig::new(&["inventory", "-i", &inv, "--list"])
        .env("ANSIBLE_INVENTORY_ANY_UNPARSED_IS_FAILED", "false")
        .env("ANSIBLE_INVENTORY_UNPARSED_FAILED", "false")
        .run();
    out.expect_code(0);
    assert!(
        out.stderr.contains("int.yml:5:9: Host pattern 1234 must be a string"),
        "{}",
        out.stderr
    );
    let out = Rig::new(&["inventory", "-i", &inv, "--list"])
        .env("ANSIBLE_INVENTORY_ANY_UNPARSED_IS_FAILED", "1")
        .run();
    out.expect_code(1);
    assert!(
        out.stderr.contains("int.yml:5:9: Host pattern 1234 must be a string"),
        "{}",
        out.stderr
    );
}

/// `register: 200` is refused at load with Ansible's "Invalid variable name",
/// and a throttle that is not an integer fails the task with Ansible's words.
#[test]
fn register_and_throttle_errors_use_ansibles_words() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pb = write(
        dir.path(),
        "invalid.yml",
        "- hosts: localhost\n  gather_facts: false\n  tasks:\n    - debug: msg=x\n      register: 200\n",
    );
    let out = Rig::new(&["run", &pb, "-i", "localhost,"]).run();
    out.expect_code(1);
    assert!(
        out.stderr
            .contains("invalid.yml:5:17: Invalid 'register' specified: Invalid variable name `200`"),
        "{}",
        out.stderr
    );

    let pb = write(
        dir.path(),
        "throttle.yml",
        "- hosts: localhost\n  gather_facts: false\n  tasks:\n    - debug:\n      throttle: \"{{ 'nope' }}\"\n",
    );
    let out = Rig::new(&["run", &pb, "-i", "localhost,"]).run();
    out.expect_code(2);
    assert!(
        out.stdout.contains(
            "Failed to convert the throttle value to an integer: invalid literal for int() with base 10: 'nope'"
        ),
        "{}",
        out.stdout
    );
}

/// `ansible_inventory_sources`: the `-i` sources as Ansible's CLI keeps them,
/// a path made absolute (against the working directory, `..` resolved), a
/// host list as given.
#[test]
fn inventory_sources_magic_variable() {
    let dir = tempfile::tempdir().expect("tempdir");
    let sub = dir.path().join("sub");
    std::fs::create_dir(&sub).expect("mkdir");
    write(dir.path(), "hosts", "localhost ansible_connection=local\n");
    let pb = write(
        dir.path(),
        "pb.yml",
        "- hosts: localhost\n  gather_facts: false\n  tasks:\n    - debug: var=ansible_inventory_sources\n",
    );
    let out = Rig::new(&["run", &pb, "-i", "../hosts", "-i", "a,b"])
        .current_dir(&sub)
        .run();
    out.expect_code(0);
    let abs = dir.path().join("hosts").display().to_string();
    let expected = format!("\"ansible_inventory_sources\": [\n        \"{abs}\",\n        \"a,b\"\n    ]");
    assert!(out.stdout.contains(&expected), "{}", out.stdout);
}
