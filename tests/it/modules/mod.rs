//! Modules through `rigger run` against real sshd test hosts, one file per
//! module domain (as in `src/modules/`): apply, re-apply (changed=0),
//! check+diff predicting the real run, and located argument errors.
//! Package, service and account changes happen inside the hosts' overlay
//! roots and vanish with them; the machine itself is never changed.

use std::fs;
use std::path::{Path, PathBuf};

use crate::support::{rigger, TestHosts};

mod accounts;
mod net;
mod net_interfaces;
mod packages;
mod services;
mod source_control;
mod system;

// Helpers of the one-playbook-text tests (packages, services, accounts).

/// Runs `playbook` (YAML text) against the fleet with extra args; returns (code, stdout+stderr).
pub(super) fn play(hosts: &TestHosts, name: &str, playbook: &str, extra: &[&str]) -> (i32, String) {
    let path = hosts.dir().join(format!("{name}.yml"));
    std::fs::write(&path, playbook).unwrap();
    let inv = hosts.inventory().display().to_string();
    let kh = hosts.known_hosts().display().to_string();
    let pb = path.display().to_string();
    let mut args = vec!["run", "-i", &inv, "--known-hosts", &kh, &pb];
    args.extend_from_slice(extra);
    let (code, out, err) = rigger(&args);
    (code, format!("{out}\n{err}"))
}

/// The `changed=N` count of the recap line for host1.
pub(super) fn changed(out: &str) -> usize {
    let line = out
        .lines()
        .rev()
        .find(|l| l.trim_start().starts_with("host1") && l.contains("changed="))
        .unwrap_or_else(|| panic!("no recap line in:\n{out}"));
    let v = line
        .split("changed=")
        .nth(1)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap();
    v.parse().unwrap()
}

pub(super) fn host1_out(hosts: &TestHosts, cmd: &str) -> String {
    let o = hosts.ssh(0, cmd);
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub(super) fn ok(code: i32, out: &str) {
    assert_eq!(code, 0, "rigger failed:\n{out}");
}

pub(super) const HEAD: &str = "- hosts: host1\n  gather_facts: no\n  tasks:\n";

// Helpers of the playbook-file tests (system, net, source control).

/// `rigger run` of `playbook` against `hosts`, with extra arguments.
pub(super) fn run(hosts: &TestHosts, playbook: &Path, extra: &[&str]) -> (i32, String, String) {
    let inv = hosts.inventory().display().to_string();
    let kh = hosts.known_hosts().display().to_string();
    let pb = playbook.display().to_string();
    let mut args = vec!["run", "-i", &inv, "--known-hosts", &kh, &pb];
    args.extend_from_slice(extra);
    rigger(&args)
}

/// (changed, failed) of `host` in the recap.
pub(super) fn recap(out: &str, host: &str) -> (u32, u32) {
    let line = out
        .lines()
        .rev()
        .find(|l| l.starts_with(host) && l.contains("changed="))
        .unwrap_or_else(|| panic!("no recap line for {host} in:\n{out}"));
    let num = |key: &str| -> u32 {
        let rest = &line[line.find(key).unwrap_or_else(|| panic!("{key} missing in {line}")) + key.len()..];
        rest.split_whitespace().next().unwrap_or("x").parse().unwrap()
    };
    (num("changed="), num("failed="))
}

pub(super) fn expect(out: &(i32, String, String), host: &str, changed: u32, what: &str) {
    let (code, stdout, stderr) = out;
    let (c, f) = recap(stdout, host);
    assert!(
        *code == 0 && f == 0 && c == changed,
        "{what}: expected changed={changed} failed=0 exit 0, got changed={c} failed={f} exit {code}\n--- stdout\n{stdout}\n--- stderr\n{stderr}"
    );
}

pub(super) fn ssh_out(hosts: &TestHosts, i: usize, cmd: &str) -> String {
    let o = hosts.ssh(i, cmd);
    String::from_utf8_lossy(&o.stdout).trim().to_string()
}

pub(super) fn repo_modules() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("modules")
}

pub(super) fn write(path: &Path, text: &str) {
    if let Some(p) = path.parent() {
        fs::create_dir_all(p).unwrap();
    }
    fs::write(path, text).unwrap();
}
