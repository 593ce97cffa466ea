//! Running the `rigger` binary (or any command) with a timeout.

use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use super::procs;

/// Default time limit for one rigger run in tests.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(120);

/// The `rigger` binary that cargo built for this test run.
pub fn rigger_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_rigger"))
}

/// Output of a finished command.
#[derive(Debug)]
pub struct RunOutput {
    /// Exit code; None when killed by a signal (including by the timeout).
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    pub timed_out: bool,
}

/// Runs rigger with `args`, no stdin, and [`DEFAULT_TIMEOUT`]; returns
/// (exit code, stdout, stderr). Panics, showing the output so far, if it times
/// out or dies from a signal.
pub fn rigger(args: &[&str]) -> (i32, String, String) {
    let mut cmd = Command::new(rigger_bin());
    cmd.args(args);
    rigger_cmd(cmd, DEFAULT_TIMEOUT)
}

/// Like [`rigger`], for a prepared command (extra env, cwd) and a custom timeout.
pub fn rigger_cmd(cmd: Command, timeout: Duration) -> (i32, String, String) {
    let shown = format!("{cmd:?}");
    let out = run_with_timeout(cmd, timeout);
    match out.code {
        Some(code) if !out.timed_out => (code, out.stdout, out.stderr),
        _ => panic!(
            "{shown} {} \n--- stdout ---\n{}\n--- stderr ---\n{}",
            if out.timed_out {
                format!("timed out after {timeout:?}")
            } else {
                "was killed by a signal".into()
            },
            out.stdout,
            out.stderr
        ),
    }
}

/// Runs `cmd` (stdin closed, output captured) in its own process group; after
/// `timeout` its whole process tree is killed and reaped, and the output so far returned.
pub fn run_with_timeout(mut cmd: Command, timeout: Duration) -> RunOutput {
    procs::become_subreaper();
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    let mut child = cmd.spawn().unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    let stdout = child.stdout.take().map(drain);
    let stderr = child.stderr.take().map(drain);
    let deadline = Instant::now() + timeout;
    let mut timed_out = false;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() < deadline => thread::sleep(Duration::from_millis(5)),
            Ok(None) => {
                timed_out = true;
                // Whatever the command started must not outlive it or hold the pipes open.
                let tree = procs::tree_of(child.id());
                procs::kill9(&tree);
                let status = child.wait().unwrap_or_else(|e| panic!("waiting for {cmd:?}: {e}"));
                // The rest were orphaned to us (subreaper): collect them.
                procs::reap(&tree[1..], Duration::from_secs(5));
                break status;
            }
            Err(e) => panic!("waiting for {cmd:?}: {e}"),
        }
    };
    let join = |h: Option<thread::JoinHandle<String>>| h.and_then(|h| h.join().ok()).unwrap_or_default();
    RunOutput {
        code: status.code(),
        stdout: join(stdout),
        stderr: join(stderr),
        timed_out,
    }
}

fn drain(mut pipe: impl Read + Send + 'static) -> thread::JoinHandle<String> {
    thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = pipe.read_to_end(&mut bytes);
        String::from_utf8_lossy(&bytes).into_owned()
    })
}
