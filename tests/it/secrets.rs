//! Secrets never reach logs: become/connection passwords and `no_log`
//! results stay out of text output (at -vvv), JSON events, `rigger check`
//! reports, its log file and its history database.

use std::fs;

use serde_json::Value;

use crate::support::{rigger, TestHosts};

const BECOME_PW: &str = "Bec0me-Pa55word";
const SSH_PW: &str = "Ssh-Pa55word-7";
const NO_LOG_CONTENT: &str = "no-log-c0ntent-xyz";

const PLAYBOOK: &str = r#"
- hosts: all
  gather_facts: false
  tasks:
    - name: show the become password
      debug: var=ansible_become_password
    - name: show the ssh password
      debug:
        msg: "the password is {{ ansible_password }}"
    - name: a no_log file in a loop
      copy:
        content: "@SECRET@ {{ item }}\n"
        dest: "@DIR@/out/{{ inventory_hostname }}-{{ item }}"
      loop: [a]
      no_log: true
    - name: a failing command line that holds the password
      command: /bin/false "{{ ansible_become_password }}"
      ignore_errors: true
    - name: a marker that is not secret
      copy:
        content: "visible\n"
        dest: "@DIR@/out/{{ inventory_hostname }}-visible"
"#;

fn assert_clean(what: &str, text: &str) {
    for secret in [BECOME_PW, SSH_PW, NO_LOG_CONTENT] {
        assert!(!text.contains(secret), "{what} shows `{secret}`:\n{text}");
    }
}

#[test]
fn secrets_and_no_log_results_stay_out_of_every_output() {
    let hosts = TestHosts::new(1);
    let dir = tempfile::Builder::new()
        .prefix("secrets-")
        .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
        .unwrap();
    let d = dir.path();
    fs::create_dir_all(d.join("out")).unwrap();
    fs::create_dir_all(d.join("group_vars")).unwrap();
    // The ssh password comes from group_vars next to the playbook, the
    // become password from the command line.
    fs::write(d.join("group_vars/all.yml"), format!("ansible_password: {SSH_PW}\n")).unwrap();
    let pb = d.join("site.yml");
    fs::write(
        &pb,
        PLAYBOOK
            .replace("@SECRET@", NO_LOG_CONTENT)
            .replace("@DIR@", &d.display().to_string()),
    )
    .unwrap();
    let (pb, inv, kh) = (
        pb.display().to_string(),
        hosts.inventory().display().to_string(),
        hosts.known_hosts().display().to_string(),
    );
    let db = d.join("check.db").display().to_string();
    let log = d.join("check.log").display().to_string();
    let become_var = format!("ansible_become_password={BECOME_PW}");
    let base = ["-i", &inv, "--known-hosts", &kh, "-e", &become_var];

    // 1. rigger check (check mode, diffs on): report, log file and database.
    let mut args = vec![
        "check",
        &pb,
        "--db",
        &db,
        "--log-file",
        &log,
        "--format",
        "json",
        "-vvv",
    ];
    args.extend(base);
    let (code, out, err) = rigger(&args);
    assert_eq!(code, 2, "drift expected\n{out}\n{err}");
    assert_clean("the check report", &out);
    assert_clean("check's stderr", &err);
    let report: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    let tasks = report["hosts"][0]["tasks"].as_array().expect("tasks").clone();
    let drifted: Vec<&str> = tasks
        .iter()
        .filter(|t| t["status"] == "drifted")
        .filter_map(|t| t["task"].as_str())
        .collect();
    assert!(
        drifted.contains(&"a no_log file in a loop") && drifted.contains(&"a marker that is not secret"),
        "{report}"
    );
    // The non-secret task's diff is reported; the no_log one's is not.
    let visible = tasks
        .iter()
        .find(|t| t["task"] == "a marker that is not secret")
        .unwrap();
    assert!(visible["diff"].to_string().contains("visible"), "{report}");
    let log_text = fs::read_to_string(&log).unwrap();
    assert!(
        log_text.contains("********"),
        "the masked debug output is logged:\n{log_text}"
    );
    assert_clean("the check log file", &log_text);
    let db_bytes = fs::read(&db).unwrap();
    assert_clean("the check database", &String::from_utf8_lossy(&db_bytes));

    // 2. rigger run, text at -vvv with --diff.
    let mut args = vec!["run", &pb, "-vvv", "--diff"];
    args.extend(base);
    let (code, out, err) = rigger(&args);
    assert_eq!(code, 0, "{out}\n{err}");
    assert_clean("rigger run -vvv --diff", &out);
    assert_clean("rigger run's stderr", &err);
    assert!(out.contains("\"ansible_become_password\": \"********\""), "{out}");
    assert!(out.contains("the password is ********"), "{out}");
    assert!(out.contains("/bin/false ********"), "{out}");
    // The tasks did run with the real values.
    let written = fs::read_to_string(d.join(format!("out/{}-a", hosts.name(0)))).unwrap();
    assert_eq!(written, format!("{NO_LOG_CONTENT} a\n"));

    // 3. rigger run --output json: every event.
    fs::remove_file(d.join(format!("out/{}-a", hosts.name(0)))).unwrap();
    let mut args = vec!["run", &pb, "--output", "json", "--diff"];
    args.extend(base);
    let (code, out, err) = rigger(&args);
    assert_eq!(code, 0, "{out}\n{err}");
    assert_clean("JSON events", &out);
    let results = out
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|e| e["event"] == "host_result")
        .count();
    assert!(results >= 5, "{out}");
}
