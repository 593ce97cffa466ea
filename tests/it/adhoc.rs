//! `rigger adhoc` end to end: the real binary against real sshd test hosts.
//!
//! Exec modules, `--json`, exit codes (0 ok, 2 a host failed, 4 a host
//! unreachable, 1 bad input or configuration, 5 bad command-line options; 250
//! would be a panic and must never happen), hosts that are down or drop the
//! connection mid-command, fan-out, and one-line errors for bad input.
//!
//! The helpers here are shared with `transport.rs`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::{down_host, procs, rigger_bin, rigger_cmd, TestHosts};

/// Environment variables rigger reads (directly or through clap); removed so
/// the machine's environment cannot change what a test sees.
pub const RIGGER_ENV: &[&str] = &[
    "ANSIBLE_INVENTORY",
    "ANSIBLE_FORKS",
    "ANSIBLE_REMOTE_USER",
    "ANSIBLE_PRIVATE_KEY_FILE",
    "ANSIBLE_TIMEOUT",
    "ANSIBLE_TASK_TIMEOUT",
    "RIGGER_HOST_KEY_CHECKING",
    "RIGGER_KNOWN_HOSTS",
    "RIGGER_BECOME_PASSWORD",
    "RIGGER_MAX_OUTPUT",
    "SSH_AUTH_SOCK",
];

/// A rigger invocation with a private, empty `HOME` (no `~/.ssh/config`, keys or
/// known_hosts of the machine) and none of the machine's rigger variables.
pub struct Rig {
    cmd: Command,
    /// Kept alive for the run; `HOME` points here.
    _home: Option<tempfile::TempDir>,
}

impl Rig {
    /// `rigger ARGS` with a fresh empty `HOME`.
    pub fn new(args: &[&str]) -> Rig {
        let home = tempfile::tempdir().expect("temp HOME");
        let mut rig = Rig::with_home(home.path(), args);
        rig._home = Some(home);
        rig
    }

    /// `rigger ARGS` with `HOME` set to `home`.
    pub fn with_home(home: &Path, args: &[&str]) -> Rig {
        let mut cmd = Command::new(rigger_bin());
        cmd.args(args).env("HOME", home);
        for var in RIGGER_ENV {
            cmd.env_remove(var);
        }
        Rig { cmd, _home: None }
    }

    /// Runs it in `dir`.
    pub fn current_dir(mut self, dir: &Path) -> Rig {
        self.cmd.current_dir(dir);
        self
    }

    pub fn env(mut self, key: &str, value: impl AsRef<std::ffi::OsStr>) -> Rig {
        self.cmd.env(key, value);
        self
    }

    /// Runs it; asserts it did not panic (exit code 250).
    pub fn run(self) -> Outcome {
        let shown = format!("{:?}", self.cmd);
        let (code, stdout, stderr) = rigger_cmd(self.cmd, Duration::from_secs(120));
        assert!(
            code != 250 && !stderr.contains("panicked") && !stderr.contains("internal error"),
            "rigger panicked (exit {code}): {shown}\n--- stdout ---\n{stdout}\n--- stderr ---\n{stderr}"
        );
        Outcome { code, stdout, stderr }
    }
}

/// What a rigger run printed and returned.
#[derive(Debug)]
pub struct Outcome {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Outcome {
    /// Asserts the exit code, showing the output otherwise.
    #[track_caller]
    pub fn expect_code(&self, code: i32) -> &Self {
        assert_eq!(
            self.code, code,
            "unexpected exit code\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.stdout, self.stderr
        );
        self
    }

    /// `--json` output: one object per host, by host name. Panics on anything else.
    #[track_caller]
    pub fn json_by_host(&self) -> BTreeMap<String, Value> {
        let mut out = BTreeMap::new();
        for line in self.stdout.lines().filter(|l| !l.trim().is_empty()) {
            let v: Value = serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("not a JSON line ({e}): {line}\n--- stdout ---\n{}", self.stdout));
            let host = v["host"]
                .as_str()
                .unwrap_or_else(|| panic!("no \"host\" in {line}"))
                .to_string();
            assert!(
                out.insert(host.clone(), v).is_none(),
                "two objects for {host}:\n{}",
                self.stdout
            );
        }
        out
    }

    /// The non-empty lines of stderr.
    pub fn stderr_lines(&self) -> Vec<&str> {
        self.stderr.lines().filter(|l| !l.trim().is_empty()).collect()
    }
}

/// `rigger adhoc PATTERN -i INV --known-hosts KH ARGS...` against `hosts`.
pub fn adhoc(hosts: &TestHosts, pattern: &str, args: &[&str]) -> Rig {
    adhoc_with(hosts.inventory(), hosts.known_hosts(), pattern, args)
}

/// `rigger adhoc PATTERN -i INV --known-hosts KH ARGS...`.
pub fn adhoc_with(inventory: &Path, known_hosts: &Path, pattern: &str, args: &[&str]) -> Rig {
    let inv = inventory.display().to_string();
    let kh = known_hosts.display().to_string();
    let mut all = vec!["adhoc", pattern, "-i", &inv, "--known-hosts", &kh];
    all.extend_from_slice(args);
    Rig::new(&all)
}

/// The status and result of one host in `--json` output.
#[track_caller]
pub fn status_of(by_host: &BTreeMap<String, Value>, host: &str) -> String {
    by_host
        .get(host)
        .unwrap_or_else(|| panic!("no result for {host} in {by_host:?}"))["status"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

#[track_caller]
pub fn result_str(by_host: &BTreeMap<String, Value>, host: &str, key: &str) -> String {
    by_host[host]["result"][key]
        .as_str()
        .unwrap_or_else(|| panic!("{host}: no string `{key}` in {}", by_host[host]))
        .to_string()
}

/// Writes a file and returns its path as a string.
pub fn write_file(path: &Path, text: &str) -> String {
    std::fs::write(path, text).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
    path.display().to_string()
}

/// The inventory of `hosts` plus extra lines (appended to the `[testhosts]` group).
pub fn inventory_plus(hosts: &TestHosts, name: &str, extra: &[String]) -> PathBuf {
    let mut text = std::fs::read_to_string(hosts.inventory()).expect("read inventory");
    for line in extra {
        text.push_str(line);
        text.push('\n');
    }
    let path = hosts.dir().join(name);
    write_file(&path, &text);
    path
}

fn kernel_release() -> String {
    let out = Command::new("uname").arg("-r").output().expect("uname -r");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[test]
fn exec_modules_text_and_json_output() {
    let hosts = TestHosts::new(3);
    let release = kernel_release();

    // command: Ansible's ad-hoc text format, one block per host.
    let out = adhoc(&hosts, "all", &["-m", "command", "-a", "uname -r"]).run();
    out.expect_code(0);
    for i in 0..hosts.len() {
        let header = format!("{} | CHANGED | rc=0 >>\n{release}\n", hosts.name(i));
        assert!(out.stdout.contains(&header), "missing `{header}` in:\n{}", out.stdout);
    }

    // --json: exactly one object per host, whose result has the command's output.
    let out = adhoc(&hosts, "all", &["--json", "-m", "command", "-a", "uname -r"]).run();
    out.expect_code(0);
    let by_host = out.json_by_host();
    assert_eq!(by_host.len(), hosts.len(), "{}", out.stdout);
    for i in 0..hosts.len() {
        let name = hosts.name(i);
        assert_eq!(status_of(&by_host, name), "changed");
        assert_eq!(result_str(&by_host, name, "stdout"), release);
        assert_eq!(by_host[name]["result"]["rc"], 0);
    }

    // command does not use a shell: the pipe is an argument of echo.
    let out = adhoc(&hosts, "host1", &["--json", "-m", "command", "-a", "echo a | tr a b"]).run();
    assert_eq!(
        result_str(&out.expect_code(0).json_by_host(), "host1", "stdout"),
        "a | tr a b"
    );

    // shell runs a pipeline; each host reports the address it was reached on.
    let out = adhoc(
        &hosts,
        "all",
        &[
            "--json",
            "-m",
            "shell",
            "-a",
            "echo {{ inventory_hostname }} $SSH_CONNECTION | tr a-z A-Z",
        ],
    )
    .run();
    let by_host = out.expect_code(0).json_by_host();
    for i in 0..hosts.len() {
        let stdout = result_str(&by_host, hosts.name(i), "stdout");
        let fields: Vec<&str> = stdout.split_whitespace().collect();
        assert_eq!(fields[0], hosts.name(i).to_uppercase(), "{stdout}");
        // SSH_CONNECTION = client_addr client_port server_addr server_port
        assert_eq!(fields[3], hosts.addr(i).to_string(), "{stdout}");
        assert_eq!(fields[4], hosts.port(i).to_string(), "{stdout}");
    }

    // raw: the command line goes to the login shell as is.
    let out = adhoc(
        &hosts,
        "host2",
        &["--json", "-m", "raw", "-a", "echo raw $((6 * 7)) >&2; exit 3"],
    )
    .run();
    let by_host = out.expect_code(2).json_by_host();
    assert_eq!(status_of(&by_host, "host2"), "failed");
    assert_eq!(by_host["host2"]["result"]["rc"], 3);
    assert!(
        result_str(&by_host, "host2", "stderr").contains("raw 42"),
        "{}",
        out.stdout
    );
    let out = adhoc(&hosts, "host2", &["-m", "raw", "-a", "echo raw $((6 * 7))"]).run();
    out.expect_code(0);
    assert!(
        out.stdout.starts_with("host2 | CHANGED | rc=0 >>\nraw 42\n"),
        "{}",
        out.stdout
    );
}

#[test]
fn exit_codes_and_one_line_errors() {
    let hosts = TestHosts::new(2);
    let dir = hosts.dir();

    // 0: every host ok.
    adhoc(&hosts, "all", &["-m", "command", "-a", "true"])
        .run()
        .expect_code(0);

    // 2: one host fails; the other still runs and succeeds.
    let out = adhoc(
        &hosts,
        "all",
        &["--json", "-m", "shell", "-a", "test {{ inventory_hostname }} != host1"],
    )
    .run();
    let by_host = out.expect_code(2).json_by_host();
    assert_eq!(status_of(&by_host, "host1"), "failed");
    assert_eq!(status_of(&by_host, "host2"), "changed");

    // 4: a host is down; the others still finish. Failed beats unreachable (2).
    let down = down_host();
    let inv = inventory_plus(
        &hosts,
        "with-down.ini",
        &[down.inventory_line("down", hosts.client_key())],
    );
    let out = adhoc_with(&inv, hosts.known_hosts(), "all", &["-m", "command", "-a", "echo hi"]).run();
    out.expect_code(4);
    assert!(out.stdout.contains("down | UNREACHABLE! => {"), "{}", out.stdout);
    assert!(
        out.stdout
            .contains(&format!("cannot connect to {}:{}", down.addr, down.port)),
        "{}",
        out.stdout
    );
    for name in ["host1", "host2"] {
        assert!(
            out.stdout.contains(&format!("{name} | CHANGED | rc=0 >>\nhi\n")),
            "{}",
            out.stdout
        );
    }
    let out = adhoc_with(
        &inv,
        hosts.known_hosts(),
        "all",
        &["--json", "-m", "command", "-a", "false"],
    )
    .run();
    let by_host = out.expect_code(2).json_by_host();
    assert_eq!(status_of(&by_host, "down"), "unreachable");
    assert_eq!(by_host["down"]["result"]["unreachable"], true);
    assert_eq!(status_of(&by_host, "host1"), "failed");

    // 1: malformed inventory: one line naming file and line, no host contacted.
    let bad_inv = dir.join("bad.ini");
    write_file(
        &bad_inv,
        &format!(
            "[web]\n{}\nweb2 ansible_host=127.0.0.1 =oops\n",
            std::fs::read_to_string(hosts.inventory())
                .unwrap()
                .lines()
                .nth(1)
                .unwrap()
        ),
    );
    let out = adhoc_with(&bad_inv, hosts.known_hosts(), "all", &["-m", "command", "-a", "true"]).run();
    out.expect_code(1);
    assert!(out.stdout.is_empty(), "{}", out.stdout);
    let first = out.stderr_lines()[0];
    assert!(first.contains(&format!("{}:3:", bad_inv.display())), "{}", out.stderr);

    // 1: module arguments that do not fit the module.
    let out = adhoc(&hosts, "all", &["-m", "copy", "-a", "force=maybe dest=/tmp/x"]).run();
    out.expect_code(1);
    assert!(
        out.stderr_lines()[0].contains("parameter `force` of `copy` must be a boolean"),
        "{}",
        out.stderr
    );
    // A parameter the module does not take is a warning, then the task
    // fails on each host as under Ansible (2: a failed task; issue #20).
    let out = adhoc(&hosts, "all", &["-m", "copy", "-a", "bogus=1 dest=/tmp/x"]).run();
    out.expect_code(2);
    assert!(
        out.stderr_lines()[0].contains("unsupported parameter `bogus`")
            && out.stdout.contains("Unsupported parameters for (copy) module: bogus."),
        "{}\n{}",
        out.stdout,
        out.stderr
    );

    // 5: bad command-line options.
    let out = adhoc(&hosts, "all", &["--no-such-flag"]).run();
    out.expect_code(5);
    assert!(out.stderr.contains("--no-such-flag"), "{}", out.stderr);
    let out = adhoc(&hosts, "all", &["--host-key-checking", "sometimes", "-a", "true"]).run();
    out.expect_code(5);
    assert!(out.stderr_lines()[0].contains("sometimes"), "{}", out.stderr);
    let out = adhoc(&hosts, "all", &["-m", "no_such_module"]).run();
    out.expect_code(5);
    assert!(out.stderr_lines()[0].contains("no_such_module"), "{}", out.stderr);

    // Unknown host pattern: one line naming the pattern and the inventory.
    let out = adhoc(&hosts, "nosuchhost", &["-m", "command", "-a", "true"]).run();
    out.expect_code(5);
    assert_eq!(out.stderr_lines().len(), 1, "{}", out.stderr);
    assert!(out.stderr.contains("nosuchhost"), "{}", out.stderr);
    assert!(
        out.stderr.contains(&hosts.inventory().display().to_string()),
        "{}",
        out.stderr
    );
}

#[test]
fn connection_errors_are_one_line_and_per_host() {
    let hosts = TestHosts::new(2);
    let dir = hosts.dir();

    // Key file that cannot be read (a directory), for host1 only.
    let not_a_key = dir.join("keydir");
    std::fs::create_dir(&not_a_key).unwrap();
    // An encrypted key, authorized nowhere, with the wrong passphrase.
    let enc = dir.join("encrypted_key");
    let st = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "right-phrase", "-C", "enc", "-f"])
        .arg(&enc)
        .status()
        .unwrap();
    assert!(st.success());
    let inv = dir.join("keys.ini");
    write_file(
        &inv,
        &format!(
            "[testhosts]\n\
             host1 ansible_host={a1} ansible_port={p1} ansible_user=root ansible_ssh_private_key_file={nokey}\n\
             host2 ansible_host={a2} ansible_port={p2} ansible_user=root ansible_ssh_private_key_file={enc} \
             ansible_ssh_private_key_passphrase=wrong-phrase\n\
             host3 ansible_host={a1} ansible_port={p1} ansible_user=root ansible_ssh_private_key_file={good}\n",
            a1 = hosts.addr(0),
            p1 = hosts.port(0),
            a2 = hosts.addr(1),
            p2 = hosts.port(1),
            nokey = not_a_key.display(),
            enc = enc.display(),
            good = hosts.client_key().display(),
        ),
    );
    let out = adhoc_with(
        &inv,
        hosts.known_hosts(),
        "all",
        &["--json", "-m", "command", "-a", "true"],
    )
    .run();
    let by_host = out.expect_code(4).json_by_host();
    assert_eq!(status_of(&by_host, "host3"), "changed");
    let msg1 = result_str(&by_host, "host1", "msg");
    assert_eq!(status_of(&by_host, "host1"), "unreachable");
    assert!(msg1.contains(&not_a_key.display().to_string()), "{msg1}");
    assert!(!msg1.contains('\n'), "{msg1}");
    let msg2 = result_str(&by_host, "host2", "msg");
    assert_eq!(status_of(&by_host, "host2"), "unreachable");
    assert!(msg2.contains(&enc.display().to_string()), "{msg2}");
    assert!(msg2.contains("passphrase"), "{msg2}");
    assert!(
        !msg2.contains("wrong-phrase") && !out.stderr.contains("wrong-phrase"),
        "{msg2}"
    );
    assert!(!msg2.contains('\n'), "{msg2}");

    // The right passphrase decrypts it; the server then refuses the key (not authorized).
    let inv_ok = dir.join("keys-ok.ini");
    write_file(
        &inv_ok,
        &std::fs::read_to_string(&inv)
            .unwrap()
            .replace("wrong-phrase", "right-phrase"),
    );
    let out = adhoc_with(
        &inv_ok,
        hosts.known_hosts(),
        "host2",
        &["--json", "-m", "command", "-a", "true"],
    )
    .run();
    let by_host = out.expect_code(4).json_by_host();
    let msg = result_str(&by_host, "host2", "msg");
    assert!(msg.starts_with("authentication failed for root@"), "{msg}");
    assert!(msg.contains(&enc.display().to_string()), "{msg}");
}

#[test]
fn dropped_connection_is_unreachable_not_a_hang() {
    let mut hosts = TestHosts::new(2);
    let inv = hosts.inventory().to_path_buf();
    let kh = hosts.known_hosts().to_path_buf();
    let started = Instant::now();
    // host1 sleeps long; host2 finishes at once.
    let run = std::thread::spawn(move || {
        adhoc_with(
            &inv,
            &kh,
            "all",
            &[
                "--json",
                "-m",
                "shell",
                "-a",
                "if [ {{ inventory_hostname }} = host1 ]; then sleep 30; fi; echo done",
            ],
        )
        .run()
    });
    // Wait until host1 runs the sleep, then drop its connections.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let sleeping = hosts
            .pids(0)
            .into_iter()
            .any(|pid| std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| c.starts_with(b"sleep\x0030")));
        if sleeping {
            break;
        }
        assert!(Instant::now() < deadline, "host1 never started `sleep 30`");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(hosts.kill_sessions(0) >= 1);
    let out = run.join().expect("rigger thread");
    let elapsed = started.elapsed();
    let by_host = out.expect_code(4).json_by_host();
    assert_eq!(status_of(&by_host, "host1"), "unreachable", "{}", out.stdout);
    let msg = result_str(&by_host, "host1", "msg");
    assert!(!msg.contains('\n'), "{msg}");
    assert!(msg.contains(&hosts.addr(0).to_string()), "{msg}");
    assert_eq!(status_of(&by_host, "host2"), "changed");
    assert_eq!(result_str(&by_host, "host2", "stdout"), "done");
    // Not a timing benchmark: finishing before the 30 s sleep could have ended
    // shows the drop was noticed instead of waited out.
    assert!(elapsed < Duration::from_secs(25), "took {elapsed:?}");
}

#[test]
fn fan_out_to_twenty_hosts() {
    let hosts = TestHosts::new(20);
    let out = adhoc(
        &hosts,
        "all",
        &[
            "--json",
            "-f",
            "20",
            "-m",
            "shell",
            "-a",
            "echo {{ inventory_hostname }} $SSH_CONNECTION",
        ],
    )
    .run();
    let by_host = out.expect_code(0).json_by_host();
    assert_eq!(by_host.len(), 20, "{}", out.stdout);
    for i in 0..hosts.len() {
        let stdout = result_str(&by_host, hosts.name(i), "stdout");
        let fields: Vec<&str> = stdout.split_whitespace().collect();
        assert_eq!(
            (fields[0], fields[3], fields[4]),
            (
                hosts.name(i),
                hosts.addr(i).to_string().as_str(),
                hosts.port(i).to_string().as_str()
            ),
            "{stdout}"
        );
    }
}

/// A run keeps a connection per host for the play: with more hosts than
/// its soft open-files limit allows, rigger raises the limit to what they
/// need (here 200 hosts from `prlimit --nofile=32:4096`: a local command's
/// parent, rigger, has 264), and says so when the hard limit is too low.
#[test]
fn a_run_raises_its_open_files_limit_for_its_hosts() {
    let dir = tempfile::tempdir().unwrap();
    let inv = dir.path().join("hosts.ini");
    let mut text = String::from("[many]\n");
    for i in 1..=200 {
        text.push_str(&format!("h{i} ansible_connection=local\n"));
    }
    std::fs::write(&inv, text).unwrap();
    for (limit, want, warned) in [("32:4096", "264 4096", false), ("32:100", "100 100", true)] {
        let mut cmd = Command::new("prlimit");
        cmd.arg(format!("--nofile={limit}"))
            .arg("--")
            .arg(rigger_bin())
            .args(["adhoc", "h1", "-i"])
            .arg(&inv)
            .args(["-m", "shell", "-a", "grep 'Max open files' /proc/$PPID/limits"]);
        for v in RIGGER_ENV {
            cmd.env_remove(v);
        }
        let (code, out, err) = rigger_cmd(cmd, Duration::from_secs(60));
        assert_eq!(code, 0, "{out}{err}");
        assert_eq!(procs::max_open_files(&out).as_deref(), Some(want), "{out}");
        let warning = "the open-files limit allows 100 descriptors and 200 hosts need about 264";
        assert_eq!(err.contains(warning), warned, "{err}");
    }
}
