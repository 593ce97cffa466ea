//! Shared state (docs/state.md): `--shard K/N` splits the hosts so that N
//! runs cover each exactly once, and the shards of one `rigger check` run
//! are one run in the history, on a SQLite file and on a real PostgreSQL
//! server (a private cluster started by the test).

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use serde_json::Value;

use crate::support::{rigger, rigger_bin, rigger_cmd, TestHosts};

#[path = "../../src/state/testpg.rs"]
pub(crate) mod testpg;

const PLAYBOOK: &str = r#"
- hosts: all
  gather_facts: false
  tasks:
    - name: marker
      copy:
        dest: "{{ out }}/{{ inventory_hostname }}.conf"
        content: "x\n"
"#;

fn json(s: &str) -> Value {
    serde_json::from_str(s).unwrap_or_else(|e| panic!("not JSON ({e}):\n{s}"))
}

/// `rigger ARGS` with `env` and a private state directory.
fn rigger_env(args: &[&str], env: &[(&str, &str)], state_home: &Path) -> (i32, String, String) {
    let mut c = Command::new(rigger_bin());
    c.args(args)
        .env("XDG_STATE_HOME", state_home)
        .env_remove("RIGGER_STATE_URL");
    for (k, v) in env {
        c.env(k, v);
    }
    rigger_cmd(c, Duration::from_secs(120))
}

#[test]
fn shards_of_a_run_cover_every_host_once() {
    // Host names only: --list-hosts touches no host.
    let names: Vec<String> = (1..=40).map(|i| format!("web{i}.example.org")).collect();
    let inv = format!("{},", names.join(","));
    let dir = tempfile::tempdir().unwrap();
    let site = dir.path().join("site.yml");
    std::fs::write(&site, PLAYBOOK).unwrap();
    let site = site.display().to_string();
    let mut seen: Vec<String> = Vec::new();
    let mut sizes = Vec::new();
    for k in 1..=4 {
        let shard = format!("{k}/4");
        let (code, out, err) = rigger(&["run", &site, "-i", &inv, "--list-hosts", "--shard", &shard]);
        assert_eq!(code, 0, "{out}\n{err}");
        let hosts: Vec<String> = out
            .lines()
            .map(str::trim)
            .filter(|l| l.starts_with("web"))
            .map(str::to_string)
            .collect();
        sizes.push(hosts.len());
        seen.extend(hosts);
    }
    let unique: BTreeSet<&String> = seen.iter().collect();
    assert_eq!(seen.len(), 40, "every host in exactly one shard: {sizes:?}");
    assert_eq!(unique.len(), 40);
    assert!(sizes.iter().all(|&n| n > 0), "{sizes:?}");
    // A bad shard is a usage error (exit 5, docs/exit-codes.md).
    let (code, _, err) = rigger(&["run", &site, "-i", &inv, "--list-hosts", "--shard", "5/4"]);
    assert_eq!(code, 5, "{err}");
    assert!(err.contains("expected K/N"), "{err}");
}

/// Three shards of one check, each its own process; then the history.
fn sharded_check(db_args: &[&str], env: &[(&str, &str)]) {
    let hosts = TestHosts::new(6);
    let work = tempfile::tempdir().unwrap();
    let out_dir = work.path().join("out");
    std::fs::create_dir(&out_dir).unwrap();
    let site = work.path().join("site.yml");
    std::fs::write(&site, PLAYBOOK).unwrap();
    let (site, inv, kh) = (
        site.display().to_string(),
        hosts.inventory().display().to_string(),
        hosts.known_hosts().display().to_string(),
    );
    let out_var = format!("out={}", out_dir.display());
    let state_home = work.path().join("state");

    // `rigger run --shard`: only the shard's hosts are changed.
    let (code, out, err) = rigger_env(
        &[
            "run",
            &site,
            "-i",
            &inv,
            "--known-hosts",
            &kh,
            "-e",
            &out_var,
            "--shard",
            "2/3",
        ],
        env,
        &state_home,
    );
    assert_eq!(code, 0, "{out}\n{err}");
    let made: BTreeSet<String> = std::fs::read_dir(&out_dir)
        .unwrap()
        .map(|e| {
            e.unwrap()
                .file_name()
                .to_string_lossy()
                .trim_end_matches(".conf")
                .to_string()
        })
        .collect();
    for f in std::fs::read_dir(&out_dir).unwrap() {
        std::fs::remove_file(f.unwrap().path()).unwrap();
    }

    let mut reported: Vec<String> = Vec::new();
    let mut shard2 = BTreeSet::new();
    for k in 1..=3 {
        let shard = format!("{k}/3");
        let mut args = vec!["check", &site, "-i", &inv, "--known-hosts", &kh, "-e", &out_var];
        args.extend_from_slice(db_args);
        args.extend_from_slice(&["--shard", &shard, "--run-id", "nightly-%Y%m%d", "--format", "json"]);
        let (code, out, err) = rigger_env(&args, env, &state_home);
        // Every host drifts: its marker file is missing.
        assert_eq!(code, 2, "{out}\n{err}");
        let report = json(&out);
        for h in report["hosts"].as_array().unwrap() {
            assert_eq!(h["status"], "drifted", "{h}");
            let name = h["name"].as_str().unwrap().to_string();
            if k == 2 {
                shard2.insert(name.clone());
            }
            reported.push(name);
        }
    }
    assert_eq!(
        made, shard2,
        "`run --shard 2/3` changed the hosts that `check --shard 2/3` checks"
    );
    let all: BTreeSet<String> = (1..=6).map(|i| format!("host{i}")).collect();
    assert_eq!(reported.len(), 6, "each host checked once: {reported:?}");
    assert_eq!(reported.iter().cloned().collect::<BTreeSet<_>>(), all);
    assert_eq!(std::fs::read_dir(&out_dir).unwrap().count(), 0, "check changed nothing");

    // One run of three shards in the history.
    let mut args = vec!["check", "history", "--format", "json"];
    args.extend_from_slice(db_args);
    let (code, out, err) = rigger_env(&args, env, &state_home);
    assert_eq!(code, 0, "{out}\n{err}");
    let runs = json(&out)["runs"].as_array().unwrap().clone();
    assert_eq!(runs.len(), 1, "{out}");
    let r = &runs[0];
    assert_eq!(
        (r["shards"].as_i64(), r["hosts"].as_i64(), r["drifted"].as_i64()),
        (Some(3), Some(6), Some(6)),
        "{r}"
    );
    assert_eq!(r["status"], "done");
    let run_id = r["run_id"].as_str().unwrap();
    assert!(
        run_id.starts_with("nightly-20") && run_id.len() == "nightly-20240501".len(),
        "{run_id}"
    );
    let mut args = vec!["check", "history"];
    args.extend_from_slice(db_args);
    let (code, out, err) = rigger_env(&args, env, &state_home);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains(&format!("(run {run_id}, 3 shard(s))")), "{out}");

    // The next run of shard 1 alone is a run of its own until its siblings come.
    let mut args = vec!["check", &site, "-i", &inv, "--known-hosts", &kh, "-e", &out_var];
    args.extend_from_slice(db_args);
    args.extend_from_slice(&["--shard", "1/3", "--run-id", "second", "--format", "json"]);
    let (code, out, err) = rigger_env(&args, env, &state_home);
    assert_eq!(code, 2, "{out}\n{err}");
    let first_id = r["id"].as_i64().unwrap();
    let mut args = vec!["check", "diff", "--format", "json"];
    args.extend_from_slice(db_args);
    let second_id = json(&out)["run_id"].as_i64().unwrap();
    let (a, b) = (first_id.to_string(), second_id.to_string());
    args.extend_from_slice(&[&a, &b]);
    let (code, out, err) = rigger_env(&args, env, &state_home);
    assert_eq!(code, 0, "{out}\n{err}");
    let d = json(&out);
    // Shard 1's hosts are still drifted; the other shards' are not in the second run.
    assert_eq!(
        d["unchanged"].as_array().unwrap().len() + d["resolved"].as_array().unwrap().len(),
        6,
        "{d}"
    );
    assert!(d["new"].as_array().unwrap().is_empty(), "{d}");
}

#[test]
fn sharded_check_is_one_run_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("check.db").display().to_string();
    sharded_check(&["--db", &db], &[]);
}

#[test]
fn sharded_check_is_one_run_on_postgres() {
    let pg = testpg::TestPg::start();
    let url = pg.create_db("checks");
    // From the environment, as a scheduler would hand it over.
    sharded_check(&[], &[("RIGGER_STATE_URL", &url)]);

    // The setting is shown, its password never.
    let home = tempfile::tempdir().unwrap();
    let (code, out, err) = rigger_env(&["config", "dump"], &[("RIGGER_STATE_URL", &url)], home.path());
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains("state = \"postgres://rigger:***@127.0.0.1:"), "{out}");
    assert!(!out.contains(testpg::PASSWORD), "{out}");
    // `--install` would write the password into a crontab: refused.
    let site = home.path().join("site.yml");
    std::fs::write(&site, PLAYBOOK).unwrap();
    let (code, out, err) = rigger_env(
        &[
            "check",
            &site.display().to_string(),
            "-i",
            "localhost,",
            "--install",
            "--cron",
            "0 3 * * *",
        ],
        &[("RIGGER_STATE_URL", &url)],
        home.path(),
    );
    assert_eq!(code, 5, "{out}\n{err}");
    assert!(
        err.contains("would write the password of postgres://rigger:***@"),
        "{err}"
    );
    assert!(!format!("{out}{err}").contains(testpg::PASSWORD));
}

#[test]
fn watch_keeps_its_state_in_postgres() {
    let pg = testpg::TestPg::start();
    let url = pg.create_db("watch");
    let hosts = TestHosts::new(1);
    let work = tempfile::tempdir().unwrap();
    let cfg = work.path().join("w.yml");
    std::fs::write(
        &cfg,
        format!(
            "interval: 1s\nstate: {url}\nrules:\n  - alert: Procs\n    metric: processes\n    threshold: \"> 0\"\n\
             receivers:\n  - name: h\n    webhook: {{url: 'http://127.0.0.1:9/'}}\n"
        ),
    )
    .unwrap();
    let c = cfg.display().to_string();
    let (code, out, err) = rigger(&[
        "watch",
        "-c",
        &c,
        "silence",
        "add",
        "alertname=Other",
        "-d",
        "10m",
        "--comment",
        "upgrade",
    ]);
    assert_eq!(code, 0, "{out}{err}");
    let (code, list, err) = rigger(&["watch", "-c", &c, "silence", "list"]);
    assert_eq!(code, 0, "{err}");
    assert!(list.contains("alertname=Other") && list.contains("upgrade"), "{list}");
    // The watch loop itself, on its async runtime, against PostgreSQL.
    let (inv, kh) = (
        hosts.inventory().display().to_string(),
        hosts.known_hosts().display().to_string(),
    );
    let (code, out, err) = rigger(&["watch", "-c", &c, "--once", "-i", &inv, "--known-hosts", &kh]);
    assert_eq!(code, 2, "{out}{err}");
    assert!(out.contains("FIRING Procs"), "{out}");
    assert!(!format!("{out}{err}").contains(testpg::PASSWORD));
    // In the database, not in a file beside the configuration.
    assert!(!work.path().join("watch.db").exists());
    let mut db = postgres::Client::connect(&url, postgres::NoTls).unwrap();
    let n: i64 = db.query_one("SELECT COUNT(*) FROM silences", &[]).unwrap().get(0);
    assert_eq!(n, 1);
    let v: i64 = db
        .query_one("SELECT version FROM schema_version WHERE component = 'watch'", &[])
        .unwrap()
        .get(0);
    // 1: samples, alerts, silences, outbox; 2: the guarded actions; 3: groups.
    assert_eq!(v, 3);
    let n: i64 = db.query_one("SELECT COUNT(*) FROM actions", &[]).unwrap().get(0);
    assert_eq!(n, 0, "no rule has an action");
}
