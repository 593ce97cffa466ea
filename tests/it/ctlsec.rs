//! Controller-side hardening (issue #18): rigger's own state and log files
//! are private whatever the umask, dynamic inventory scripts are bounded in
//! time and output, a closed stdout/stderr ends rigger quietly, the
//! `RIGGER_DEBUG_ROUNDTRIPS` trace hides `no_log` commands and secrets, and
//! `rigger watch --listen` keeps to loopback and takes a bearer token.
//!
//! Every test runs the real binary; `CTLSEC_RIGGER_BIN` may name another
//! one (an older build, to see these tests fail on it).

use std::fs;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::{procs, run_with_timeout, RunOutput, TestHosts};
use crate::watch::Watch;

fn bin() -> PathBuf {
    std::env::var_os("CTLSEC_RIGGER_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(crate::support::rigger_bin)
}

/// `rigger ARGS` under umask 022 (the common default that made the files
/// world-readable), with extra environment variables.
fn run(args: &[&str], env: &[(&str, &str)], timeout: Duration) -> RunOutput {
    let mut cmd = Command::new(bin());
    cmd.args(args).envs(env.iter().copied());
    // SAFETY: umask(2) only, between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            libc::umask(0o022);
            Ok(())
        });
    }
    run_with_timeout(cmd, timeout)
}

fn mode(p: &Path) -> u32 {
    fs::metadata(p)
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        .permissions()
        .mode()
        & 0o7777
}

fn workdir(prefix: &str) -> tempfile::TempDir {
    let d = tempfile::Builder::new()
        .prefix(prefix)
        .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
        .unwrap();
    // A shared parent, as a home directory or /var/lib is: only rigger's own
    // modes protect what it writes below.
    fs::set_permissions(d.path(), fs::Permissions::from_mode(0o755)).unwrap();
    d
}

const DRIFT_PLAYBOOK: &str = r#"
- hosts: all
  gather_facts: false
  tasks:
    - name: app config
      copy:
        dest: /tmp/ctlsec-app.conf
        content: "password=hunter2-not-shown\n"
        mode: "0600"
"#;

#[test]
fn check_history_lock_log_and_watch_state_are_private_under_umask_022() {
    let hosts = TestHosts::new(1);
    let w = workdir("ctlsec-files-");
    let d = w.path();
    let pb = d.join("site.yml");
    fs::write(&pb, DRIFT_PLAYBOOK).unwrap();
    let (inv, kh) = (
        hosts.inventory().display().to_string(),
        hosts.known_hosts().display().to_string(),
    );
    let db = d.join("state/history/check.db");
    let log = d.join("logs/check.log");
    let args = |db: &Path, log: &Path| -> Vec<String> {
        [
            "check",
            &pb.display().to_string(),
            "-i",
            &inv,
            "--known-hosts",
            &kh,
            "--db",
            &db.display().to_string(),
            "--log-file",
            &log.display().to_string(),
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    };
    let a = args(&db, &log);
    let a: Vec<&str> = a.iter().map(String::as_str).collect();
    let out = run(&a, &[], Duration::from_secs(120));
    assert_eq!(out.code, Some(2), "drift expected\n{}\n{}", out.stdout, out.stderr);

    // New directories 0700 (every missing level), files 0600.
    assert_eq!(mode(&d.join("state")), 0o700, "state dir");
    assert_eq!(mode(&d.join("state/history")), 0o700, "history dir");
    assert_eq!(mode(&d.join("logs")), 0o700, "log dir");
    assert_eq!(mode(&db), 0o600, "history database");
    assert_eq!(mode(&log), 0o600, "log file");
    let locks: Vec<PathBuf> = fs::read_dir(d.join("state/history"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "lock"))
        .collect();
    assert_eq!(locks.len(), 1, "one lock file: {locks:?}");
    assert_eq!(mode(&locks[0]), 0o600, "lock file");

    // SQLite's -wal and -shm exist while a connection is open: hold one
    // (reading creates them) during a second run; all are private.
    let reader = rusqlite::Connection::open(&db).unwrap();
    let runs: i64 = reader.query_row("SELECT count(*) FROM runs", [], |r| r.get(0)).unwrap();
    assert_eq!(runs, 1);
    let out = run(&a, &[], Duration::from_secs(120));
    assert_eq!(out.code, Some(2), "{}\n{}", out.stdout, out.stderr);
    let runs: i64 = reader.query_row("SELECT count(*) FROM runs", [], |r| r.get(0)).unwrap();
    assert_eq!(runs, 2);
    for side in ["check.db-wal", "check.db-shm"] {
        let p = d.join("state/history").join(side);
        assert!(p.exists(), "{side} is there while a reader is open");
        assert_eq!(mode(&p), 0o600, "{side}");
    }
    drop(reader);

    // Files left world-readable (by an older rigger) are tightened, visibly.
    let old_db = d.join("old/check.db");
    let old_log = d.join("old/check.log");
    fs::create_dir_all(d.join("old")).unwrap();
    fs::write(&old_log, "an old line\n").unwrap();
    rusqlite::Connection::open(&old_db).unwrap();
    for p in [&old_db, &old_log] {
        fs::set_permissions(p, fs::Permissions::from_mode(0o644)).unwrap();
    }
    let a = args(&old_db, &old_log);
    let a: Vec<&str> = a.iter().map(String::as_str).collect();
    let out = run(&a, &[], Duration::from_secs(120));
    assert_eq!(out.code, Some(2), "{}\n{}", out.stdout, out.stderr);
    assert_eq!(mode(&old_db), 0o600);
    assert_eq!(mode(&old_log), 0o600);
    assert!(fs::read_to_string(&old_log).unwrap().starts_with("an old line\n"));
    for p in [&old_db, &old_log] {
        assert!(
            out.stderr.contains(&format!(
                "[WARNING]: {} could be read by other users (mode 0644)",
                p.display()
            )),
            "a warning names {}:\n{}",
            p.display(),
            out.stderr
        );
    }
    // The directory existed already (a user's choice): left as it was.
    assert_eq!(mode(&d.join("old")), 0o755);

    // rigger watch's state file.
    let c = watch_config(d);
    let state = d.join("watch-state/sub/watch.db");
    let s = state.display().to_string();
    let out = run(
        &[
            "watch",
            "-c",
            &c,
            "--state",
            &s,
            "--once",
            "-i",
            &inv,
            "--known-hosts",
            &kh,
        ],
        &[],
        Duration::from_secs(60),
    );
    assert_eq!(out.code, Some(0), "{}\n{}", out.stdout, out.stderr);
    assert_eq!(mode(&d.join("watch-state")), 0o700);
    assert_eq!(mode(&d.join("watch-state/sub")), 0o700);
    assert_eq!(mode(&state), 0o600);
}

fn write_script(dir: &Path, name: &str, body: &str) -> PathBuf {
    let p = dir.join(name);
    fs::write(&p, body).unwrap();
    fs::set_permissions(&p, fs::Permissions::from_mode(0o755)).unwrap();
    p
}

#[test]
fn an_inventory_script_that_hangs_is_killed_with_its_process_group_after_the_timeout() {
    let w = workdir("ctlsec-inv-");
    let child_pid = w.path().join("child.pid");
    let script = write_script(
        w.path(),
        "cloud.sh",
        &format!(
            "#!/bin/sh\n# a cloud API that never answers, with a helper process\nsleep 300 &\necho $! > {}\nsleep 300\n",
            child_pid.display()
        ),
    );
    let s = script.display().to_string();
    let started = Instant::now();
    let out = run(
        &["inventory", "--list", "-i", &s],
        &[("RIGGER_INVENTORY_SCRIPT_TIMEOUT", "1")],
        Duration::from_secs(40),
    );
    assert!(!out.timed_out, "rigger hung on the script:\n{}", out.stderr);
    assert_eq!(out.code, Some(1), "{}\n{}", out.stdout, out.stderr);
    assert!(
        out.stderr
            .contains(&format!("{s}: inventory script did not finish `--list` within 1 s")),
        "a located error naming the script:\n{}",
        out.stderr
    );
    assert!(out.stderr.contains("RIGGER_INVENTORY_SCRIPT_TIMEOUT"), "{}", out.stderr);
    assert!(started.elapsed() < Duration::from_secs(30));
    // The script's helper process was killed with it (it was orphaned to
    // this test process, the subreaper: reap it).
    let pid: u32 = fs::read_to_string(&child_pid).unwrap().trim().parse().unwrap();
    assert!(
        procs::reap(&[pid], Duration::from_secs(10)),
        "the script's child {pid} still runs"
    );
}

#[test]
fn an_inventory_script_that_prints_more_than_the_limit_is_refused() {
    let w = workdir("ctlsec-inv-");
    // 2 MiB of JSON whitespace, then a valid inventory: fine without a limit.
    let script = write_script(
        w.path(),
        "big.sh",
        "#!/bin/sh\nhead -c 2097152 /dev/zero | tr '\\0' ' '\necho '{\"web\": {\"hosts\": [\"h1\"]}}'\n",
    );
    let s = script.display().to_string();
    let out = run(
        &["inventory", "--list", "-i", &s],
        &[("RIGGER_INVENTORY_SCRIPT_MAX_OUTPUT", "1M")],
        Duration::from_secs(60),
    );
    assert_eq!(out.code, Some(1), "{}\n{}", out.stdout, out.stderr);
    assert!(
        out.stderr.contains(&format!(
            "{s}: inventory script printed more than 1048576 bytes for `--list`"
        )),
        "{}",
        out.stderr
    );
    // Within the limit (the default, 64 MiB) the same script is an inventory.
    let out = run(&["inventory", "--list", "-i", &s], &[], Duration::from_secs(60));
    assert_eq!(out.code, Some(0), "{}\n{}", out.stdout, out.stderr);
    assert!(out.stdout.contains("\"h1\""), "{}", out.stdout);
}

/// rigger with stdout and/or stderr a pipe whose reader is already gone:
/// every write there fails with EPIPE, deterministically.
fn run_into_closed_pipe(args: &[&str], close_stdout: bool, close_stderr: bool) -> (std::process::ExitStatus, String) {
    let closed = || {
        let mut fds = [0; 2];
        // SAFETY: pipe(2) into a valid array; the read end is closed at once
        // and the write end owned by the returned File.
        unsafe {
            assert_eq!(libc::pipe(fds.as_mut_ptr()), 0);
            libc::close(fds[0]);
            Stdio::from(<fs::File as std::os::fd::FromRawFd>::from_raw_fd(fds[1]))
        }
    };
    let mut cmd = Command::new(bin());
    cmd.args(args).stdin(Stdio::null());
    cmd.stdout(if close_stdout { closed() } else { Stdio::null() });
    let err_file = tempfile::NamedTempFile::new().unwrap();
    if close_stderr {
        cmd.stderr(closed());
    } else {
        cmd.stderr(err_file.reopen().unwrap());
    }
    let status = cmd.status().unwrap();
    (status, fs::read_to_string(err_file.path()).unwrap())
}

#[test]
fn a_closed_stdout_or_stderr_ends_rigger_quietly_as_sigpipe_does() {
    // stdout closed: `rigger doc --list | head -1` once the reader is gone.
    let (status, err) = run_into_closed_pipe(&["doc", "--list"], true, false);
    assert_eq!(
        status.signal(),
        Some(libc::SIGPIPE),
        "ended by SIGPIPE, as `ls | head` ends ls ({status:?}); stderr:\n{err}"
    );
    assert_eq!(err, "", "no panic or other message");
    for args in [&["inventory", "--list", "-i", "h1,h2,"][..], &["doc", "copy"]] {
        let (status, err) = run_into_closed_pipe(args, true, false);
        assert_eq!(status.signal(), Some(libc::SIGPIPE), "{args:?}: {status:?} {err}");
        assert_eq!(err, "", "{args:?}");
    }
    // stderr closed while reporting an error (no module of that name).
    let (status, _) = run_into_closed_pipe(&["doc", "no_such_module"], false, true);
    assert_eq!(status.signal(), Some(libc::SIGPIPE), "{status:?}");

    // Another write error (a full disk under a redirection) is an error, not
    // a complete answer and not a panic.
    let out = Command::new(bin())
        .args(["doc", "--list"])
        .stdout(fs::File::create("/dev/full").unwrap())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert_eq!(
        err,
        "rigger: cannot write to stdout: No space left on device (os error 28)\n"
    );

    // The shell pipeline itself: whatever the timing, no panic, and head's line.
    let out = Command::new("bash")
        .args(["-c", "\"$0\" doc --list | head -1; echo \"status=${PIPESTATUS[0]}\""])
        .arg(bin())
        .output()
        .unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert_eq!(stderr, "", "no panic message");
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{stdout}");
    assert!(
        lines[1] == "status=0" || lines[1] == "status=141",
        "0 when rigger finished writing before head left, else SIGPIPE's 141: {stdout}"
    );
}

#[test]
fn debug_roundtrips_hides_no_log_commands_and_masks_secrets() {
    let hosts = TestHosts::new(1);
    let w = workdir("ctlsec-trace-");
    let pb = w.path().join("site.yml");
    fs::write(
        &pb,
        r#"
- hosts: all
  gather_facts: false
  vars:
    api_token: "Tok3n-of-a-no_log-task"
    ansible_become_password: "Bec0me-in-the-trace"
  tasks:
    - name: a visible command (the trace works)
      command: /bin/echo visible-trace-marker
    - name: a no_log command
      command: /bin/echo "{{ api_token }}"
      no_log: true
    - name: a no_log file
      copy:
        content: "{{ api_token }}\n"
        dest: /tmp/ctlsec-no-log-{{ api_token }}
      no_log: true
    - name: a command that quotes a known secret
      command: /bin/echo "{{ ansible_become_password }}"
"#,
    )
    .unwrap();
    let (p, inv, kh) = (
        pb.display().to_string(),
        hosts.inventory().display().to_string(),
        hosts.known_hosts().display().to_string(),
    );
    // Level 3: whole commands (level 2 cuts them at 160 characters, through
    // the same code).
    {
        let level = "3";
        let out = run(
            &["run", &p, "-i", &inv, "--known-hosts", &kh],
            &[("RIGGER_DEBUG_ROUNDTRIPS", level)],
            Duration::from_secs(120),
        );
        assert_eq!(out.code, Some(0), "{}\n{}", out.stdout, out.stderr);
        assert!(
            out.stderr.contains("visible-trace-marker"),
            "the trace shows commands at level {level}:\n{}",
            out.stderr
        );
        assert!(out.stderr.contains("<hidden: no_log task>"), "{}", out.stderr);
        for secret in ["Tok3n-of-a-no_log-task", "Bec0me-in-the-trace"] {
            assert!(
                !out.stderr.contains(secret) && !out.stdout.contains(secret),
                "level {level} shows `{secret}`:\n{}\n{}",
                out.stdout,
                out.stderr
            );
        }
        assert!(out.stderr.contains("********"), "the secret is masked:\n{}", out.stderr);
    }
    // The tasks did run with the real values.
    let o = hosts.ssh(0, "cat /tmp/ctlsec-no-log-Tok3n-of-a-no_log-task");
    assert_eq!(String::from_utf8_lossy(&o.stdout).trim_end(), "Tok3n-of-a-no_log-task");
}

/// How long a `rigger watch` may take to log what a test waits for.
const WAIT: Duration = Duration::from_secs(30);

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// One HTTP GET; the whole response (status line, headers, body).
fn http_get(addr: (&str, u16), path: &str, auth: Option<&str>) -> std::io::Result<String> {
    let mut s = TcpStream::connect(addr)?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    let auth = auth.map(|a| format!("Authorization: {a}\r\n")).unwrap_or_default();
    write!(s, "GET {path} HTTP/1.1\r\nHost: x\r\n{auth}\r\n")?;
    let mut out = String::new();
    s.read_to_string(&mut out)?;
    Ok(out)
}

fn watch_config(dir: &Path) -> String {
    let cfg = dir.join("watch.yml");
    fs::write(
        &cfg,
        "interval: 1s\nrules:\n  - alert: Procs\n    metric: processes\n    threshold: \"> 100000000\"\n\
         receivers:\n  - name: h\n    webhook: {url: 'http://127.0.0.1:1/'}\n",
    )
    .unwrap();
    cfg.display().to_string()
}

#[test]
fn watch_listen_is_loopback_by_default_and_needs_the_bearer_token() {
    let hosts = TestHosts::new(1);
    let w = workdir("ctlsec-listen-");
    let cfg = watch_config(w.path());
    let token_file = w.path().join("token");
    fs::write(&token_file, "Zq8-listen-token-71\n").unwrap();
    fs::set_permissions(&token_file, fs::Permissions::from_mode(0o600)).unwrap();
    let watch_on = |listen: &str| {
        let mut cmd = Command::new(bin());
        cmd.args(["watch", "-c", &cfg, "-i"])
            .arg(hosts.inventory())
            .arg("--known-hosts")
            .arg(hosts.known_hosts())
            .args(["--listen", listen]);
        cmd
    };
    let port = free_port();
    let mut cmd = watch_on(&port.to_string());
    cmd.arg("--listen-token-file").arg(&token_file);
    let watch = Watch::spawn(cmd);
    watch.wait_log("status endpoint on", WAIT);
    let log = watch.log();
    assert!(
        log.contains(&format!("status endpoint on http://127.0.0.1:{port}/")),
        "a bare port listens on 127.0.0.1:\n{log}"
    );
    assert!(!log.contains("[WARNING]"), "{log}");
    // Loopback only: another local address of this machine gets no answer.
    assert!(
        TcpStream::connect(("127.0.0.2", port)).is_err(),
        "the endpoint answers on 127.0.0.2 too: bound to more than 127.0.0.1"
    );
    for path in ["/health", "/alerts", "/metrics"] {
        let r = http_get(("127.0.0.1", port), path, None).unwrap();
        assert!(r.starts_with("HTTP/1.1 401 "), "{path} without a token: {r}");
        assert!(r.contains("\r\nWWW-Authenticate: Bearer"), "{r}");
        assert!(!r.contains("host1"), "nothing of the state leaks: {r}");
        for wrong in [
            "Bearer Zq8-listen-token-7",
            "Bearer Zq8-listen-token-712",
            "Basic Zq8-listen-token-71",
        ] {
            let r = http_get(("127.0.0.1", port), path, Some(wrong)).unwrap();
            assert!(r.starts_with("HTTP/1.1 401 "), "{path} with `{wrong}`: {r}");
        }
        let r = http_get(("127.0.0.1", port), path, Some("Bearer Zq8-listen-token-71")).unwrap();
        assert!(r.starts_with("HTTP/1.1 200 "), "{path} with the token: {r}");
    }
    // The token from the environment works the same.
    drop(watch);
    let port = free_port();
    let mut cmd = watch_on(&format!("127.0.0.1:{port}"));
    cmd.env("RIGGER_WATCH_TOKEN", "env-token-0042");
    let watch = Watch::spawn(cmd);
    watch.wait_log("bearer token required", WAIT);
    let r = http_get(("127.0.0.1", port), "/health", None).unwrap();
    assert!(r.starts_with("HTTP/1.1 401 "), "{r}");
    let r = http_get(("127.0.0.1", port), "/health", Some("Bearer env-token-0042")).unwrap();
    assert!(r.starts_with("HTTP/1.1 200 "), "{r}");
}

#[test]
fn watch_listen_on_every_address_without_a_token_warns() {
    // In a network namespace of its own (loopback only): 0.0.0.0 there
    // reaches nothing outside this test.
    let w = workdir("ctlsec-listen-");
    let cfg = watch_config(w.path());
    let mut cmd = Command::new("unshare");
    cmd.args(["--net", "sh", "-c", "ip link set lo up && exec \"$0\" \"$@\""])
        .arg(bin())
        .args(["watch", "-c", &cfg, "-i", "nohost.invalid,", "--listen", "0.0.0.0:9464"]);
    let watch = Watch::spawn(cmd);
    watch.wait_log("[WARNING]", WAIT);
    let log = watch.log();
    assert!(
        log.contains("[WARNING]: --listen 0.0.0.0:9464: /health, /alerts and /metrics are open to anyone"),
        "{log}"
    );
    assert!(
        log.contains("--listen-token-file"),
        "the warning says how to fix it: {log}"
    );
}
