//! Modules rigger has no native implementation for run as Ansible runs them
//! (src/modules/ansible): tests/data/ansible_modules/site.yml uses one
//! module of ansible-core (`dpkg_selections`, `debconf`), one of a
//! collection installed from PyPI (`python.dist.boo`, without check-mode
//! support; scripts/ansible-collections.sh) and one of a collection next
//! to the playbook whose helpers are in the collection's `module_utils`
//! (`rigger_test.util.kv_set`, with diff and a `no_log` option). The same
//! playbook runs with ansible-core on one overlay-root host and with rigger
//! on an identical one, in check mode (with `--diff`), then for real twice;
//! each run's task statuses and registered results must match, and so must
//! the hosts afterwards. A host without Python gets a located error; a
//! module found nowhere fails the load, saying where rigger looked.
//!
//! ansible-core comes from PyPI (scripts/ansible-venv.sh, cached under
//! /var/tmp), as for the differential test: `RIGGER_SKIP_ANSIBLE_DIFF=1`
//! skips this test on a machine without network.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::{Map, Value};

use crate::support::{rigger_bin, rigger_cmd, run_with_timeout, TestHosts};

const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/ansible_modules");
const COLLECTIONS_SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/ansible-collections.sh");
const DIFF_CALLBACK: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/differential/callback_plugins");

struct Tools {
    venv: PathBuf,
    collections: PathBuf,
}

fn tools() -> Option<Tools> {
    let venv = crate::differential::venv_bin()?;
    let out = Command::new("bash")
        .arg(COLLECTIONS_SCRIPT)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {COLLECTIONS_SCRIPT}: {e}"));
    assert!(
        out.status.success(),
        "{COLLECTIONS_SCRIPT} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let collections = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    Some(Tools { venv, collections })
}

fn inventory(hosts: &TestHosts, i: usize, path: &Path) -> PathBuf {
    let line = format!(
        "target ansible_host={} ansible_port={} ansible_user=root ansible_ssh_private_key_file={}\n",
        hosts.addr(i),
        hosts.port(i),
        hosts.client_key().display()
    );
    std::fs::write(path, line).unwrap();
    path.to_path_buf()
}

/// The host results of a run: (task, status, result).
type Results = Vec<(String, String, Value)>;

fn host_results(text: &str) -> Results {
    text.lines()
        .filter(|l| l.trim_start().starts_with('{'))
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["event"] == "host_result")
        .map(|v| {
            (
                v["task"].as_str().unwrap_or_default().to_string(),
                v["status"].as_str().unwrap_or_default().to_string(),
                v["result"].clone(),
            )
        })
        .collect()
}

fn run_ansible(t: &Tools, hosts: &TestHosts, inv: &Path, extra: &[&str], tag: &str) -> Results {
    let dir = hosts.dir();
    let events = dir.join(format!("ansible-{tag}.jsonl"));
    let home = dir.join("ansible-home");
    std::fs::create_dir_all(&home).unwrap();
    let mut cmd = Command::new(t.venv.join("ansible-playbook"));
    cmd.current_dir(dir)
        .env_clear()
        .env("PATH", "/usr/local/bin:/usr/bin:/bin")
        .env("HOME", &home)
        .env("LC_ALL", "C.UTF-8")
        .env("ANSIBLE_STDOUT_CALLBACK", "rigger_diff")
        .env("ANSIBLE_CALLBACK_PLUGINS", DIFF_CALLBACK)
        .env("RIGGER_DIFF_EVENTS", &events)
        .env("ANSIBLE_COLLECTIONS_PATH", &t.collections)
        .env("ANSIBLE_PIPELINING", "True")
        .env("ANSIBLE_HOST_KEY_CHECKING", "False")
        .env("ANSIBLE_RETRY_FILES_ENABLED", "False")
        .env("ANSIBLE_PYTHON_INTERPRETER", "/usr/bin/python3")
        .arg("-i")
        .arg(inv)
        .args(extra)
        .arg(Path::new(DATA).join("site.yml"));
    let out = run_with_timeout(cmd, Duration::from_secs(300));
    let text = std::fs::read_to_string(&events).unwrap_or_default();
    assert!(
        !out.timed_out && out.code == Some(0),
        "ansible-playbook ({tag}) failed ({:?}):\n{}\n{}\n{text}",
        out.code,
        out.stdout,
        out.stderr
    );
    host_results(&text)
}

fn rigger_run(t: &Tools, hosts: &TestHosts, inv: &Path, playbook: &Path, extra: &[&str]) -> (i32, String, String) {
    let mut cmd = Command::new(rigger_bin());
    cmd.current_dir(hosts.dir())
        .env_remove("ANSIBLE_INVENTORY")
        .env("RIGGER_ANSIBLE_PYTHON", t.venv.join("python"))
        .env("ANSIBLE_COLLECTIONS_PATH", &t.collections)
        .arg("run")
        .arg("-i")
        .arg(inv)
        .arg("--known-hosts")
        .arg(hosts.known_hosts())
        .args(["--output", "json"])
        .args(extra)
        .arg(playbook);
    rigger_cmd(cmd, Duration::from_secs(300))
}

/// A registered result as compared: what both tools report, without what
/// only one of them adds by design (ansible's interpreter discovery fact).
fn comparable(v: &Value) -> Value {
    match v {
        Value::Object(m) => {
            let mut out = Map::new();
            for (k, v) in m {
                if k.starts_with('_') || k == "discovered_interpreter_python" {
                    continue;
                }
                out.insert(k.clone(), comparable(v));
            }
            Value::Object(out)
        }
        Value::Array(a) => Value::Array(a.iter().map(comparable).collect()),
        other => other.clone(),
    }
}

fn compare(ansible: &Results, rigger: &Results, what: &str) {
    let statuses = |r: &Results| r.iter().map(|(t, s, _)| format!("{t}: {s}")).collect::<Vec<_>>();
    assert_eq!(statuses(ansible), statuses(rigger), "{what}: task statuses differ");
    for ((task, _, a), (_, _, r)) in ansible.iter().zip(rigger) {
        if task.starts_with("result of ") {
            let (a, r) = (comparable(a), comparable(r));
            assert_eq!(
                a,
                r,
                "{what}: `{task}` differs\n--- ansible ---\n{}\n--- rigger ---\n{}",
                serde_json::to_string_pretty(&a).unwrap(),
                serde_json::to_string_pretty(&r).unwrap()
            );
        }
    }
}

fn host_state(hosts: &TestHosts, i: usize) -> String {
    let out = hosts.ssh(i, "dpkg --get-selections bash; cat /srv/am/kv.conf 2>&1");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn unimplemented_modules_run_through_ansible_as_ansible_runs_them() {
    let Some(t) = tools() else { return };
    let hosts = TestHosts::with_overlay_root(2);
    let dir = hosts.dir();
    let (ainv, rinv) = (
        inventory(&hosts, 0, &dir.join("a.ini")),
        inventory(&hosts, 1, &dir.join("r.ini")),
    );
    let playbook = Path::new(DATA).join("site.yml");
    for (tag, extra) in [
        ("check", &["--check", "--diff"][..]),
        ("first", &["--diff"][..]),
        ("second", &[][..]),
    ] {
        let a = run_ansible(&t, &hosts, &ainv, extra, tag);
        let (code, stdout, stderr) = rigger_run(&t, &hosts, &rinv, &playbook, extra);
        assert_eq!(code, 0, "rigger ({tag}) failed:\n{stdout}\n{stderr}");
        let r = host_results(&stdout);
        compare(&a, &r, tag);
        assert!(
            !stdout.contains("s3cr3t-value") && !stderr.contains("s3cr3t-value"),
            "a no_log value leaked ({tag}):\n{stdout}\n{stderr}"
        );
        assert_eq!(host_state(&hosts, 0), host_state(&hosts, 1), "hosts differ after {tag}");
    }
    let state = host_state(&hosts, 1);
    assert!(
        state.contains("hold") && state.contains("color=blue") && state.contains("token=s3cr3t-value"),
        "{state}"
    );
}

#[test]
fn a_target_without_python_and_a_module_found_nowhere_are_located_errors() {
    let Some(t) = tools() else { return };
    let hosts = TestHosts::with_overlay_root(1);
    let dir = hosts.dir();
    let inv = inventory(&hosts, 0, &dir.join("r.ini"));
    let out = hosts.ssh(0, "rm -f /usr/bin/python3 /usr/bin/python3.11 && ! command -v python3");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let pb = dir.join("nopy.yml");
    std::fs::write(
        &pb,
        "- hosts: target\n  gather_facts: false\n  tasks:\n    - name: needs python\n      debconf: {name: tzdata}\n",
    )
    .unwrap();
    let (code, stdout, stderr) = rigger_run(&t, &hosts, &inv, &pb, &[]);
    assert_eq!(code, 2, "{stdout}\n{stderr}");
    let all = format!("{stdout}\n{stderr}");
    assert!(
        all.contains("nopy.yml:4:7: module ansible.builtin.debconf needs Python on the target")
            && all.contains("/usr/bin/python3")
            && all.contains("set ansible_python_interpreter"),
        "{all}"
    );

    let pb = dir.join("missing.yml");
    std::fs::write(
        &pb,
        "- hosts: target\n  gather_facts: false\n  tasks:\n    - rigger_test.util.no_such_module: {}\n",
    )
    .unwrap();
    let (code, stdout, stderr) = rigger_run(&t, &hosts, &inv, &pb, &[]);
    assert_ne!(code, 0);
    assert!(
        stderr.contains("missing.yml:4:7")
            && stderr.contains("unknown module `rigger_test.util.no_such_module`")
            && stderr.contains("not in the collections under")
            && stderr.contains(&*t.collections.to_string_lossy())
            && stderr.contains("ansible-galaxy collection install rigger_test.util"),
        "{stderr}"
    );
    assert_eq!(
        stdout.lines().filter(|l| l.contains("host_result")).count(),
        0,
        "{stdout}"
    );

    // Without ansible-core on the controller the load error says so.
    let mut cmd = Command::new(rigger_bin());
    cmd.current_dir(dir)
        .env("PATH", "/usr/bin:/bin")
        .env_remove("RIGGER_ANSIBLE_PYTHON")
        .args(["run", "-i"])
        .arg(&inv)
        .arg("--known-hosts")
        .arg(hosts.known_hosts())
        .arg(&pb);
    let (code, _, stderr) = rigger_cmd(cmd, Duration::from_secs(60));
    assert_ne!(code, 0);
    assert!(
        stderr.contains("no ansible-core on the controller") && stderr.contains("RIGGER_ANSIBLE_PYTHON"),
        "{stderr}"
    );
}

#[test]
fn doc_list_tells_native_modules_from_those_run_through_ansible() {
    let Some(t) = tools() else { return };
    let mut cmd = Command::new(rigger_bin());
    cmd.env("RIGGER_ANSIBLE_PYTHON", t.venv.join("python"))
        .env("ANSIBLE_COLLECTIONS_PATH", &t.collections)
        .args(["doc", "--list"]);
    let (code, stdout, stderr) = rigger_cmd(cmd, Duration::from_secs(60));
    assert_eq!(code, 0, "{stderr}");
    let (native, through) = stdout
        .split_once("# run through Ansible with ansible-core")
        .expect(&stdout);
    assert!(native.lines().any(|l| l.starts_with("copy ")), "{native}");
    let line = |name: &str| through.lines().find(|l| l.split_whitespace().next() == Some(name));
    let debconf = line("ansible.builtin.debconf").expect(through);
    assert!(debconf.ends_with("/ansible/modules/debconf.py"), "{debconf}");
    let boo = line("python.dist.boo").expect(through);
    assert!(boo.contains(&*t.collections.to_string_lossy()), "{boo}");
    assert!(
        line("ansible.builtin.copy").is_none(),
        "a native module is not listed as run through Ansible"
    );
}
