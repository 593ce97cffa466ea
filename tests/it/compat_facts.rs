//! Facts and the controller's magic variables as ansible-core's own
//! integration targets use them (`gathering`, `unicode`): the gathering
//! policy (`ANSIBLE_GATHERING` implicit/explicit/smart), local facts
//! (`ansible_local`) gathered with the play's facts, and the variables
//! Ansible sets from its options and its controller. Real playbooks, the
//! real binary, a real sshd test host.

use std::time::Duration;

use serde_json::{json, Value};

use crate::engine::Lab;
use crate::support::rigger_cmd;

fn assert_ok(code: i32, out: &str, err: &str) {
    assert_eq!(code, 0, "rigger failed\n--- stdout ---\n{out}\n--- stderr ---\n{err}");
}

/// Two plays without `gather_facts`; the first adds a local fact file
/// after recording what it saw, the second records what it sees.
const TWO_PLAYS: &str = r#"
- hosts: testhosts
  tasks:
    - copy:
        dest: "@OUT@/{{ policy }}-first.json"
        content: "{{ {'fqdn': 'fqdn' in ansible_facts,
                      'local': ansible_local | default('undefined')} | to_json }}"
    - copy:
        dest: "@OUT@/facts.d/added.fact"
        content: '{"added": true}'
- hosts: testhosts
  tasks:
    - copy:
        dest: "@OUT@/{{ policy }}-second.json"
        content: "{{ {'fqdn': 'fqdn' in ansible_facts,
                      'local': ansible_local | default('undefined')} | to_json }}"
- hosts: testhosts
  gather_facts: true
  tasks:
    - copy:
        dest: "@OUT@/{{ policy }}-third.json"
        content: "{{ ansible_local | to_json }}"
"#;

#[test]
fn gathering_policy_decides_which_plays_gather_and_local_facts_come_along() {
    let lab = Lab::new(1);
    lab.write("gather.yml", TWO_PLAYS);
    for policy in ["implicit", "smart", "explicit"] {
        let _ = std::fs::remove_dir_all(lab.path("out/facts.d"));
        // An executable fact prints JSON; a plain one is INI.
        lab.write("out/facts.d/ran.fact", "#!/bin/sh\necho '{\"answer\": 42}'\n");
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(lab.path("out/facts.d/ran.fact"), std::fs::Permissions::from_mode(0o755)).unwrap();
        lab.write("out/facts.d/plain.fact", "[general]\nName = x\n");
        let mut cmd = lab.cmd("gather.yml", &["-e", &format!("policy={policy}")]);
        cmd.env("ANSIBLE_GATHERING", policy)
            .env("ANSIBLE_FACT_PATH", lab.path("out/facts.d"));
        let (code, out, err) = rigger_cmd(cmd, Duration::from_secs(120));
        assert_ok(code, &out, &err);
        let read =
            |which: &str| -> Value { serde_json::from_str(&lab.read(&format!("out/{policy}-{which}.json"))).unwrap() };
        let before = json!({"ran": {"answer": 42}, "plain": {"general": {"name": "x"}}});
        let after = json!({"ran": {"answer": 42}, "plain": {"general": {"name": "x"}}, "added": {"added": true}});
        let (first, second) = match policy {
            // Every play gathers: the second sees the fact the first added.
            "implicit" => (
                json!({"fqdn": true, "local": before}),
                json!({"fqdn": true, "local": after}),
            ),
            // Gathered once per host: the second play keeps the first's facts.
            "smart" => (
                json!({"fqdn": true, "local": before}),
                json!({"fqdn": true, "local": before}),
            ),
            // Only plays that ask gather.
            _ => (
                json!({"fqdn": false, "local": "undefined"}),
                json!({"fqdn": false, "local": "undefined"}),
            ),
        };
        assert_eq!(read("first"), first, "{policy}");
        assert_eq!(read("second"), second, "{policy}");
        // `gather_facts: true` gathers under every policy but smart, which
        // already has this host's facts.
        let third = if policy == "smart" { before } else { after };
        assert_eq!(read("third"), third, "{policy}");
    }
}

#[test]
fn a_bad_gathering_policy_is_refused_before_the_run() {
    let lab = Lab::new(1);
    lab.write("gather.yml", TWO_PLAYS);
    let mut cmd = lab.cmd("gather.yml", &["-e", "policy=x"]);
    cmd.env("ANSIBLE_GATHERING", "sometimes");
    let (code, out, err) = rigger_cmd(cmd, Duration::from_secs(120));
    assert_ne!(code, 0, "{out}");
    assert!(err.contains("`sometimes`") && err.contains("smart"), "{err}");
    assert!(!lab.path("out/x-first.json").exists());
}

#[test]
fn options_and_controller_magic_variables() {
    let lab = Lab::new(1);
    lab.write("ansible.cfg", "[defaults]\nretry_files_enabled = False\n");
    lab.write(
        "magic.yml",
        r#"
- hosts: testhosts
  gather_facts: false
  tasks:
    - copy:
        dest: "@OUT@/magic.json"
        content: "{{ {'python': ansible_playbook_python,
                      'cfg': ansible_config_file,
                      'verbosity': ansible_verbosity,
                      'forks': ansible_forks,
                      'limit': ansible_limit | default('unset'),
                      'search': ansible_search_path} | to_json }}"
"#,
    );
    let (code, out, err) = lab.run("magic.yml", &["-v", "--forks", "3", "--limit", "testhosts"]);
    assert_ok(code, &out, &err);
    let got: Value = serde_json::from_str(&lab.read("out/magic.json")).unwrap();
    let python = got["python"].as_str().unwrap();
    assert!(
        std::path::Path::new(python).is_absolute() && python.contains("python"),
        "{got}"
    );
    let dir = std::fs::canonicalize(lab.dir.path()).unwrap();
    let cfg = got["cfg"].as_str().unwrap();
    assert_eq!(
        std::fs::canonicalize(cfg).unwrap(),
        dir.join("ansible.cfg"),
        "the ansible.cfg of the working directory"
    );
    assert_eq!(got["verbosity"], 1);
    assert_eq!(got["forks"], 3);
    assert_eq!(got["limit"], "testhosts");
    let search: Vec<std::path::PathBuf> = got["search"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| std::fs::canonicalize(p.as_str().unwrap()).unwrap())
        .collect();
    assert_eq!(search, vec![dir], "the play's directory, once");
}

#[test]
fn a_fact_cache_plugin_other_than_memory_and_jsonfile_is_refused() {
    let lab = Lab::new(1);
    lab.write("gather.yml", TWO_PLAYS);
    let mut cmd = lab.cmd("gather.yml", &["-e", "policy=x"]);
    cmd.env("ANSIBLE_CACHE_PLUGIN", "redis");
    let (code, out, err) = rigger_cmd(cmd, Duration::from_secs(120));
    assert_ne!(code, 0, "{out}");
    assert!(err.contains("fact cache plugin `redis`"), "{err}");
    assert!(!lab.path("out/x-first.json").exists());
    // jsonfile needs its directory.
    let mut cmd = lab.cmd("gather.yml", &["-e", "policy=x"]);
    cmd.env("ANSIBLE_CACHE_PLUGIN", "jsonfile")
        .env_remove("ANSIBLE_CACHE_PLUGIN_CONNECTION");
    let (code, out, err) = rigger_cmd(cmd, Duration::from_secs(120));
    assert_ne!(code, 0, "{out}");
    assert!(err.contains("requires the 'fact_caching_connection'"), "{err}");
    assert!(!lab.path("out/x-first.json").exists());
    let mut cmd = lab.cmd("gather.yml", &["-e", "policy=x"]);
    cmd.env("ANSIBLE_CACHE_PLUGIN", "memory");
    lab.write("out/facts.d/.keep", "");
    let (code, out, err) = rigger_cmd(cmd, Duration::from_secs(120));
    assert_ok(code, &out, &err);
}

/// `ansible_python_module_rlimit_nofile` is the soft limit of open files
/// the module runs with (capped at the hard limit); omitted, it is left
/// alone.
#[test]
fn modules_run_with_the_requested_open_files_limit() {
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
        ansible_python_module_rlimit_nofile: "{{ omit }}"
      register: omitted
    - shell: ulimit -n
      register: plain
    - shell: ulimit -n
      vars:
        ansible_python_module_rlimit_nofile: 99999999999
      register: capped
    - shell: ulimit -Hn
      register: hard
    - copy:
        dest: "@OUT@/rlimit.json"
        content: "{{ {'set': set.stdout, 'omitted': omitted.stdout == plain.stdout,
                      'capped': capped.stdout == hard.stdout} | to_json }}"
"#,
    );
    let (code, out, err) = lab.run("rlimit.yml", &[]);
    assert_ok(code, &out, &err);
    let got: Value = serde_json::from_str(&lab.read("out/rlimit.json")).unwrap();
    assert_eq!(got, json!({"set": "123", "omitted": true, "capped": true}));
}
