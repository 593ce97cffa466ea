//! The audit log (issue #22): real runs against sshd test hosts append
//! hash-chained records of who ran what; `rigger audit verify` passes on
//! them and names the record after a byte is changed or a line deleted;
//! `rigger audit show` filters; secrets given on the command line stay out.

use std::os::unix::fs::PermissionsExt;
use std::process::Command;
use std::time::Duration;

use serde_json::Value;

use crate::engine::Lab;
use crate::support::{rigger_bin, rigger_cmd};

const SECRET: &str = "Audit-S3cret-91";

const PLAYBOOK: &str = r#"
- hosts: all
  gather_facts: false
  tasks:
    - name: write the config
      copy:
        content: "port={{ 8000 + groups['all'].index(inventory_hostname) }}\nmode=fast\n"
        dest: "@OUT@/{{ inventory_hostname }}.conf"
    - name: use the password
      command: echo "{{ db_password }}"
      changed_when: false
    - name: a failure that is ignored
      command: /bin/false
      ignore_errors: true
"#;

fn records(path: &std::path::Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON: {l}: {e}")))
        .collect()
}

fn audit(log: &std::path::Path, args: &[&str]) -> (i32, String, String) {
    let mut cmd = Command::new(rigger_bin());
    cmd.arg("audit").args(args).arg("--audit-log").arg(log);
    rigger_cmd(cmd, Duration::from_secs(30))
}

#[test]
fn runs_are_recorded_chained_and_tampering_is_named() {
    let lab = Lab::new(2);
    lab.write("site.yml", PLAYBOOK);
    let log = lab.path("audit/log.jsonl");
    let log_s = log.display().to_string();
    let ev = format!("db_password={SECRET}");
    let (code, out, err) = lab.run("site.yml", &["--diff", "--audit-log", &log_s, "-e", &ev]);
    assert_eq!(code, 0, "{out}\n{err}");

    // 0600, in a 0700 directory rigger created.
    assert_eq!(std::fs::metadata(&log).unwrap().permissions().mode() & 0o777, 0o600);
    assert_eq!(
        std::fs::metadata(log.parent().unwrap()).unwrap().permissions().mode() & 0o777,
        0o700
    );
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(!text.contains(SECRET), "the password reached the audit log:\n{text}");
    let recs = records(&log);
    let kinds: Vec<&str> = recs.iter().map(|r| r["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds.first(), Some(&"run_start"), "{kinds:?}");
    assert_eq!(kinds.last(), Some(&"run_end"), "{kinds:?}");
    assert_eq!(kinds.iter().filter(|k| **k == "task").count(), 6, "{kinds:?}");
    let seqs: Vec<u64> = recs.iter().map(|r| r["seq"].as_u64().unwrap()).collect();
    assert_eq!(seqs, (1..=recs.len() as u64).collect::<Vec<_>>());

    // Who and what.
    let start = &recs[0];
    assert_eq!(start["user"], "root");
    assert_eq!(start["uid"], 0);
    assert_eq!(start["command"], "run");
    let argv: Vec<&str> = start["argv"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert!(argv.contains(&"'db_password=********'"), "{argv:?}");
    let run = start["run"].as_str().unwrap();
    assert!(recs.iter().all(|r| r["run"] == run));

    // Per host and task: status, the diff as counts, the login's key.
    let fp = String::from_utf8(
        Command::new("ssh-keygen")
            .arg("-lf")
            .arg(lab.hosts.client_key())
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    let fp = fp.split_whitespace().nth(1).unwrap().to_string();
    for h in 0..2 {
        let host = lab.hosts.name(h);
        let tasks: Vec<&Value> = recs
            .iter()
            .filter(|r| r["kind"] == "task" && r["host"] == host)
            .collect();
        assert_eq!(tasks.len(), 3, "{tasks:?}");
        assert_eq!(tasks[0]["task"], "write the config");
        assert_eq!(tasks[0]["status"], "changed");
        assert!(
            tasks[0]["location"].as_str().unwrap().contains("site.yml:5"),
            "{}",
            tasks[0]
        );
        let conf = format!("{}/{host}.conf", lab.out());
        assert_eq!(tasks[0]["diff"][0]["path"], conf.as_str(), "{}", tasks[0]);
        assert_eq!(tasks[0]["diff"][0]["added"], 2, "{}", tasks[0]);
        assert_eq!(tasks[0]["login"]["key"], fp.as_str(), "{}", tasks[0]);
        assert_eq!(tasks[0]["login"]["user"], "root");
        assert_eq!(tasks[1]["status"], "ok");
        assert_eq!(tasks[2]["status"], "failed");
        assert_eq!(tasks[2]["ignored"], true);
        assert!(tasks[1].get("login").is_none());
    }
    let end = recs.last().unwrap();
    assert_eq!(end["exit_code"], 0);
    let pb = std::fs::canonicalize(lab.path("site.yml"))
        .unwrap()
        .display()
        .to_string();
    let file = end["files"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["path"] == pb.as_str())
        .unwrap_or_else(|| panic!("the playbook is not among the files: {}", end["files"]));
    let want = format!("{:x}", sha2_of(&std::fs::read(lab.path("site.yml")).unwrap()));
    assert_eq!(file["sha256"], want.as_str());

    // An ad-hoc command by the same user continues the chain.
    let mut cmd = Command::new(rigger_bin());
    cmd.args(["adhoc", "all", "-m", "ping", "-i"])
        .arg(lab.hosts.inventory())
        .arg("--known-hosts")
        .arg(lab.hosts.known_hosts())
        .arg("--audit-log")
        .arg(&log);
    let (code, out, err) = rigger_cmd(cmd, Duration::from_secs(60));
    assert_eq!(code, 0, "{out}\n{err}");
    let recs2 = records(&log);
    assert!(recs2.len() > recs.len());
    let (code, out, err) = audit(&log, &["verify"]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains(&format!("OK, {} records", recs2.len())), "{out}");
    let head = out.trim().rsplit("sha256:").next().unwrap().to_string();

    // show: by host, user and time.
    let (code, out, _) = audit(&log, &["show", "--host", lab.hosts.name(0), "--json"]);
    assert_eq!(code, 0);
    let shown: Vec<Value> = out.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert!(shown.len() >= 4, "{out}");
    assert!(shown.iter().all(|r| r["host"] == lab.hosts.name(0)
        || r["hosts"]
            .as_array()
            .is_some_and(|a| a.iter().any(|h| h == lab.hosts.name(0)))));
    let (_, out, _) = audit(&log, &["show", "--user", "root", "--kind", "run_start"]);
    assert_eq!(out.lines().count(), 2, "{out}");
    assert!(out.contains("adhoc") && out.contains("run"), "{out}");
    let (_, out, _) = audit(&log, &["show", "--user", "nobody", "--json"]);
    assert_eq!(out.trim(), "");
    let (_, out, _) = audit(&log, &["show", "--until", "2000-01-01", "--json"]);
    assert_eq!(out.trim(), "");
    let (_, out, _) = audit(&log, &["show", "--since", "1h", "--json"]);
    assert_eq!(out.lines().count(), recs2.len());

    // A changed byte in record 3: verify names record 3.
    let original = std::fs::read(&log).unwrap();
    let lines: Vec<&[u8]> = original.split(|&b| b == b'\n').collect();
    let third = String::from_utf8(lines[2].to_vec()).unwrap();
    let edited = third.replacen("\"seq\":3", "\"seq\":3 ", 1);
    assert_ne!(edited, third);
    let mut tampered = original.clone();
    let at = original
        .windows(third.len())
        .position(|w| w == third.as_bytes())
        .unwrap();
    tampered.splice(at..at + third.len(), edited.bytes());
    std::fs::write(&log, &tampered).unwrap();
    let (code, out, err) = audit(&log, &["verify"]);
    assert_eq!(code, 1, "{out}\n{err}");
    assert!(
        err.contains("line 4 (record 4)") && err.contains("record 3 was changed"),
        "{err}"
    );

    // A deleted line: verify names the gap.
    let without: Vec<&[u8]> = lines
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != 4)
        .map(|(_, l)| *l)
        .collect();
    std::fs::write(&log, without.join(&b'\n')).unwrap();
    let (code, _, err) = audit(&log, &["verify"]);
    assert_eq!(code, 1);
    assert!(err.contains("records 5 to 5") && err.contains("deleted"), "{err}");

    // The last record cut off: only the kept head shows it.
    let cut: Vec<&[u8]> = lines[..lines.len() - 2].to_vec();
    let mut cut = cut.join(&b'\n');
    cut.push(b'\n');
    std::fs::write(&log, &cut).unwrap();
    assert_eq!(audit(&log, &["verify"]).0, 0);
    let (code, _, err) = audit(&log, &["verify", "--head", &head]);
    assert_eq!(code, 1);
    assert!(err.contains("cut off the end"), "{err}");
}

#[test]
fn an_audit_log_that_cannot_be_opened_stops_the_run_before_any_host() {
    let lab = Lab::new(1);
    lab.write("site.yml", PLAYBOOK);
    // A directory where the log should be.
    std::fs::create_dir_all(lab.path("log-is-a-dir")).unwrap();
    let log = lab.path("log-is-a-dir").display().to_string();
    let ev = format!("db_password={SECRET}");
    let (code, out, err) = lab.run("site.yml", &["--audit-log", &log, "-e", &ev]);
    assert_ne!(code, 0, "{out}");
    assert!(err.contains("audit log") && err.contains("log-is-a-dir"), "{err}");
    let conf = format!("out/{}.conf", lab.hosts.name(0));
    assert!(!lab.path(&conf).exists(), "a host was changed");
}

fn sha2_of(bytes: &[u8]) -> impl std::fmt::LowerHex {
    use sha2::Digest;
    sha2::Sha256::digest(bytes)
}
