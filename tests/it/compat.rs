//! The compatibility suite's regression guard: every target of ansible-core's
//! own integration tests listed in tests/compat/passing.txt (the ones that
//! passed with rigger on both connections when `scripts/compat.sh` last
//! measured, see docs/compat.md) must still pass, with this build's rigger, on
//! the local connection and on an sshd test host. Each run happens in an
//! isolated root (overlays, private namespaces; see scripts/compat.py), so the
//! targets' destructive tasks never touch the machine.
//!
//! The ansible-core sdist comes from PyPI (`pip download`, cached under
//! /var/tmp by scripts/compat.sh); when it cannot be had the test fails.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::support::{rigger_bin, run_with_timeout};

const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/compat.sh");
const PASSING: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/compat/passing.txt");

/// Runs `scripts/compat.sh --ci` on the targets listed in `passing`; returns (success, stdout, stderr).
fn compat_ci(passing: &Path, work: &Path) -> (bool, String, String) {
    let mut cmd = Command::new(SCRIPT);
    cmd.arg("--ci")
        .arg("--passing")
        .arg(passing)
        .arg("--work")
        .arg(work)
        .env("RIGGER_BIN", rigger_bin());
    // Generous: the per-target timeout in the script is 120 s, and the list runs two at a time.
    let out = run_with_timeout(cmd, Duration::from_secs(20 * 60));
    assert!(
        !out.timed_out,
        "scripts/compat.sh --ci timed out\n{}\n{}",
        out.stdout, out.stderr
    );
    (out.code == Some(0), out.stdout, out.stderr)
}

fn work_dir(name: &str) -> PathBuf {
    // Under target/; where the isolated roots mount over it (a clone in $HOME),
    // compat.py moves the work to /rigger-compat and says so.
    Path::new(env!("CARGO_TARGET_TMPDIR")).join(name)
}

fn listed(passing: &str) -> Vec<String> {
    passing
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(String::from)
        .collect()
}

#[test]
fn passing_ansible_core_targets_still_pass_on_both_connections() {
    let text = std::fs::read_to_string(PASSING).expect("tests/compat/passing.txt (written by scripts/compat.sh)");
    let names = listed(&text);
    assert!(!names.is_empty(), "tests/compat/passing.txt lists no target");
    let (ok, stdout, stderr) = compat_ci(Path::new(PASSING), &work_dir("compat-ci"));
    let regressions: Vec<&str> = stdout.lines().filter(|l| l.starts_with("REGRESSION:")).collect();
    assert!(
        ok,
        "ansible-core targets that passed with rigger now fail ({} runs):\n{}\n--- output ---\n{stdout}\n{stderr}",
        regressions.len(),
        regressions.join("\n")
    );
    // Every listed target ran on both connections.
    for n in &names {
        for conn in ["local", "ssh"] {
            assert!(
                stdout.lines().any(|l| {
                    // Progress lines: `[i/n  Ts] MODE TARGET STATUS ...`.
                    let f: Vec<&str> = l.split_whitespace().collect();
                    f.len() > 3 && f[2] == conn && f[3] == n
                }),
                "no {conn} run of {n} in the output:\n{stdout}"
            );
        }
    }
}

/// The guard itself: a target rigger does not pass is reported by name, per
/// connection, and fails the run.
#[test]
fn a_failing_target_is_named_as_a_regression() {
    let work = work_dir("compat-ci-guard");
    std::fs::create_dir_all(&work).unwrap();
    let list = work.join("passing.txt");
    // `assert` hands the module a templated argument string (`assert: '{{ item }}'`),
    // which rigger rejects at load time; if that ever passes, pick another failing target.
    std::fs::write(&list, "assert\n").unwrap();
    let (ok, stdout, stderr) = compat_ci(&list, &work);
    assert!(!ok, "a failing target did not fail the run:\n{stdout}\n{stderr}");
    for conn in ["local", "ssh"] {
        assert!(
            stdout
                .lines()
                .any(|l| l.starts_with(&format!("REGRESSION: assert ({conn}):"))),
            "no REGRESSION line for assert ({conn}):\n{stdout}\n{stderr}"
        );
    }
}
