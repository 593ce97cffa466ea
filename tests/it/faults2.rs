//! Faults survived (issue #22): SIGTERM of rigger during a run and during
//! `rigger check`, a full disk on the target, a network partition. After
//! each: target files hold their old or their new content (never a part), no
//! temp file is left, the recap and the exit code say what happened, the
//! audit log's chain verifies, the check history is consistent, and a rerun
//! converges (`changed=0` on the run after the first good one).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::{procs, rigger_bin, run_with_timeout, HostOpts, RunOutput, TestHosts};

/// A rigger run that takes longer than this hangs: the test fails.
const RUN_LIMIT: Duration = Duration::from_secs(90);

/// Bytes that do not repeat in any short period.
fn content(len: usize, seed: u32) -> Vec<u8> {
    let mut x = seed.wrapping_mul(2_654_435_761) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            (x >> 7) as u8
        })
        .collect()
}

/// Test hosts, a project directory (playbooks, local files, the audit log)
/// and, for hosts that share the machine's file system, a target directory.
struct Lab {
    hosts: TestHosts,
    dir: tempfile::TempDir,
    home: tempfile::TempDir,
}

impl Lab {
    fn new(n: usize, opts: HostOpts) -> Lab {
        let hosts = TestHosts::with_opts(n, opts);
        let dir = tempfile::Builder::new()
            .prefix("faults2-")
            .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
            .expect("project dir");
        std::fs::create_dir(dir.path().join("out")).expect("out dir");
        Lab {
            hosts,
            dir,
            home: tempfile::tempdir().expect("HOME"),
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn out(&self) -> PathBuf {
        self.path("out")
    }

    /// Writes a playbook, `@OUT@` replaced by the target directory.
    fn write(&self, name: &str, text: &str) -> PathBuf {
        let p = self.path(name);
        std::fs::write(&p, text.replace("@OUT@", &self.out().display().to_string())).expect("write");
        p
    }

    fn audit_log(&self) -> PathBuf {
        self.path("audit.jsonl")
    }

    /// An inventory of every host, host 0 reached through `port` when given
    /// (a proxy on host 0's address), with `vars` on every line.
    fn inventory(&self, port0: Option<u16>, vars: &str) -> PathBuf {
        let key = self.hosts.client_key().display();
        let mut text = String::new();
        for i in 0..self.hosts.len() {
            let port = match (i, port0) {
                (0, Some(p)) => p,
                _ => self.hosts.port(i),
            };
            text.push_str(&format!(
                "{} ansible_host={} ansible_port={port} ansible_user=root ansible_ssh_private_key_file={key} {vars}\n",
                self.hosts.name(i),
                self.hosts.addr(i)
            ));
        }
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let p = self.path(&format!("inv-{}.ini", N.fetch_add(1, Ordering::SeqCst)));
        std::fs::write(&p, text).expect("inventory");
        p
    }

    /// known_hosts with host 0's key also at `port` (a proxy's).
    fn known_hosts(&self, proxy_port: Option<u16>) -> PathBuf {
        let p = self.path("known_hosts");
        let mut text = std::fs::read_to_string(self.hosts.known_hosts()).expect("known_hosts");
        if let Some(port) = proxy_port {
            text.push_str(&format!("[{}]:{port} {}\n", self.hosts.addr(0), self.hosts.host_key(0)));
        }
        std::fs::write(&p, text).expect("known_hosts");
        p
    }

    /// `rigger ARGS...` with a private HOME and none of the machine's settings.
    fn cmd(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(rigger_bin());
        cmd.args(args)
            .env("HOME", self.home.path())
            .current_dir(self.dir.path());
        for var in [
            "ANSIBLE_INVENTORY",
            "ANSIBLE_REMOTE_USER",
            "ANSIBLE_PRIVATE_KEY_FILE",
            "ANSIBLE_TIMEOUT",
            "ANSIBLE_CONFIG",
            "RIGGER_AUDIT_LOG",
            "RIGGER_PIPELINING",
            "RIGGER_SFTP",
            "SSH_AUTH_SOCK",
        ] {
            cmd.env_remove(var);
        }
        cmd
    }

    /// `rigger run PLAYBOOK -i INV --known-hosts KH --audit-log LOG EXTRA...`.
    fn run_cmd(&self, playbook: &Path, inv: &Path, kh: &Path, extra: &[&str]) -> Command {
        let mut cmd = self.cmd(&["run"]);
        cmd.arg(playbook)
            .arg("-i")
            .arg(inv)
            .arg("--known-hosts")
            .arg(kh)
            .arg("--audit-log")
            .arg(self.audit_log())
            .args(extra);
        cmd
    }

    /// Runs to the end within [`RUN_LIMIT`]: a hang or a panic fails the test.
    #[track_caller]
    fn finish(&self, cmd: Command) -> RunOutput {
        let out = run_with_timeout(cmd, RUN_LIMIT);
        assert!(
            !out.timed_out,
            "rigger hung (killed after {RUN_LIMIT:?})\n--- stdout ---\n{}\n--- stderr ---\n{}",
            out.stdout, out.stderr
        );
        assert!(
            out.code != Some(250) && !out.stderr.contains("panicked"),
            "rigger panicked\n{}",
            out.stderr
        );
        out
    }

    /// `rigger audit verify` of the run's audit log: the chain is whole.
    #[track_caller]
    fn assert_audit_verifies(&self) -> Vec<Value> {
        let mut cmd = self.cmd(&["audit", "verify", "--audit-log"]);
        cmd.arg(self.audit_log());
        let out = self.finish(cmd);
        assert_eq!(out.code, Some(0), "audit verify: {}\n{}", out.stdout, out.stderr);
        std::fs::read_to_string(self.audit_log())
            .expect("audit log")
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON: {l}: {e}")))
            .collect()
    }
}

/// Starts a command in its own process group, its output collected in files.
struct Spawned {
    child: Child,
    stdout: PathBuf,
    stderr: PathBuf,
}

impl Spawned {
    fn start(mut cmd: Command, dir: &Path, tag: &str) -> Spawned {
        use std::os::unix::process::CommandExt;
        procs::become_subreaper();
        let stdout = dir.join(format!("{tag}.stdout"));
        let stderr = dir.join(format!("{tag}.stderr"));
        cmd.stdin(Stdio::null())
            .stdout(std::fs::File::create(&stdout).expect("stdout file"))
            .stderr(std::fs::File::create(&stderr).expect("stderr file"))
            .process_group(0);
        let child = cmd.spawn().expect("start rigger");
        Spawned { child, stdout, stderr }
    }

    /// Sends `sig` to rigger itself (not its group: as `kill PID` or a
    /// service manager's stop would).
    fn signal(&self, sig: i32) {
        // SAFETY: kill(2) of the process this test started.
        unsafe {
            libc::kill(self.child.id() as i32, sig);
        }
    }

    /// Waits for the end (at most `limit`): (exit code, stdout, stderr).
    #[track_caller]
    fn wait(mut self, limit: Duration) -> (Option<i32>, String, String) {
        let deadline = Instant::now() + limit;
        let status = loop {
            if let Some(s) = self.child.try_wait().expect("wait") {
                break s;
            }
            if Instant::now() > deadline {
                let tree = procs::tree_of(self.child.id());
                procs::kill9(&tree);
                let _ = self.child.wait();
                panic!(
                    "rigger did not end within {limit:?}\n--- stdout ---\n{}\n--- stderr ---\n{}",
                    std::fs::read_to_string(&self.stdout).unwrap_or_default(),
                    std::fs::read_to_string(&self.stderr).unwrap_or_default()
                );
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        (
            status.code(),
            std::fs::read_to_string(&self.stdout).unwrap_or_default(),
            std::fs::read_to_string(&self.stderr).unwrap_or_default(),
        )
    }
}

#[track_caller]
fn wait_until(what: &str, limit: Duration, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// `.rigger-tmp-*` files in `dir`, with their sizes.
fn temps_in(dir: &Path) -> Vec<(String, u64)> {
    let mut v: Vec<(String, u64)> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .filter(|e| e.file_name().to_string_lossy().starts_with(".rigger-tmp-"))
                .map(|e| {
                    let len = e.metadata().map(|m| m.len()).unwrap_or(0);
                    (e.file_name().to_string_lossy().into_owned(), len)
                })
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// The recap's counters of `host` (`changed=N` etc.) from a text run's stdout.
fn recap(stdout: &str, host: &str) -> Vec<(String, u32)> {
    let tail = stdout
        .rsplit_once("PLAY RECAP")
        .map(|(_, t)| t)
        .unwrap_or_else(|| panic!("no recap:\n{stdout}"));
    let line = tail
        .lines()
        .find(|l| l.split_whitespace().next() == Some(host))
        .unwrap_or_else(|| panic!("no recap line for {host}:\n{stdout}"));
    line.split_whitespace()
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_string(), v.parse().unwrap_or(u32::MAX)))
        .collect()
}

fn count(stdout: &str, host: &str, what: &str) -> u32 {
    recap(stdout, host)
        .into_iter()
        .find(|(k, _)| k == what)
        .map(|(_, n)| n)
        .unwrap_or_else(|| panic!("no {what} for {host}:\n{stdout}"))
}

const STEPS: &str = r#"
- hosts: all
  gather_facts: false
  tasks:
    - name: the big file
      copy:
        src: "@SRC@"
        dest: "@OUT@/{{ inventory_hostname }}.bin"
    - name: a slow step
      shell: touch @OUT@/{{ inventory_hostname }}.started; sleep 2; echo done > @OUT@/{{ inventory_hostname }}.first
      args:
        creates: "@OUT@/{{ inventory_hostname }}.first"
    - name: the step after it
      copy:
        content: "second\n"
        dest: "@OUT@/{{ inventory_hostname }}.second"
"#;

/// SIGTERM (as `kill PID`, a service manager, a CI runner's cancel send it)
/// while tasks run: rigger lets the running tasks finish, starts no new one,
/// prints the recap saying it was interrupted and exits 143 (as a process
/// that SIGTERM ended: ansible-playbook dies of the signal); the audit log's
/// chain verifies and ends with the run's end. A SIGTERM in the middle of
/// an upload lets it finish (the new file, no temp file left). A second
/// SIGTERM ends rigger at once: files are old or new, the audit log still
/// verifies. Reruns converge.
#[test]
fn sigterm_finishes_running_tasks_reports_the_interruption_and_reruns_converge() {
    let lab = Lab::new(2, HostOpts::default());
    let big_new = content(100 * 1024 * 1024, 1);
    let big_old = content(64 * 1024, 2);
    let src = lab.path("big.bin");
    std::fs::write(&src, &big_new).unwrap();
    let pb = lab.write("steps.yml", &STEPS.replace("@SRC@", &src.display().to_string()));
    let kh = lab.known_hosts(None);
    // Through the shell (100 MB: a channel of its own).
    let inv = lab.inventory(None, "ansible_ssh_transfer_method=piped");
    let names: Vec<String> = (0..2).map(|i| lab.hosts.name(i).to_string()).collect();
    let file = |h: &str, ext: &str| lab.out().join(format!("{h}.{ext}"));
    for h in &names {
        std::fs::write(file(h, "bin"), &big_old).unwrap();
    }

    // 1. SIGTERM while the uploads run.
    let run = Spawned::start(lab.run_cmd(&pb, &inv, &kh, &[]), lab.dir.path(), "term1");
    let mut child_alive = true;
    wait_until("an upload in progress", Duration::from_secs(60), || {
        child_alive = !has_ended(&run);
        !child_alive || temps_in(&lab.out()).iter().any(|(_, len)| *len >= 4 * 1024 * 1024)
    });
    assert!(child_alive, "rigger ended before the upload was under way");
    run.signal(libc::SIGTERM);
    let (code, out, err) = run.wait(RUN_LIMIT);
    assert_eq!(code, Some(143), "{out}\n{err}");
    assert!(err.contains("terminated (SIGTERM)"), "{err}");
    assert!(out.contains("INTERRUPTED by SIGTERM"), "{out}");
    for h in &names {
        assert!(
            std::fs::read(file(h, "bin")).unwrap() == big_new,
            "{h}: the running upload did not finish"
        );
        assert!(!file(h, "started").exists(), "{h}: a task started after SIGTERM\n{out}");
        assert_eq!(count(&out, h, "changed"), 1, "{out}");
    }
    assert_eq!(temps_in(&lab.out()), vec![], "temp files left");
    let recs = lab.assert_audit_verifies();
    let last = recs.last().unwrap();
    assert_eq!(last["kind"], "run_end", "{last}");
    assert_eq!(last["exit_code"], 143, "{last}");
    let recap_rec = recs
        .iter()
        .rev()
        .find(|r| r["kind"] == "recap")
        .expect("a recap record");
    assert_eq!(recap_rec["interrupted"], "SIGTERM", "{recap_rec}");

    // 2. SIGTERM during the slow step: it finishes, the next one never starts.
    let run = Spawned::start(lab.run_cmd(&pb, &inv, &kh, &[]), lab.dir.path(), "term2");
    wait_until("the slow step on every host", Duration::from_secs(60), || {
        names.iter().all(|h| file(h, "started").exists())
    });
    run.signal(libc::SIGTERM);
    let (code, out, err) = run.wait(RUN_LIMIT);
    assert_eq!(code, Some(143), "{out}\n{err}");
    for h in &names {
        assert_eq!(std::fs::read_to_string(file(h, "first")).unwrap(), "done\n", "{h}");
        assert!(!file(h, "second").exists(), "{h}: a task started after SIGTERM\n{out}");
        assert_eq!(count(&out, h, "changed"), 1, "{h}: {out}");
        assert_eq!(count(&out, h, "failed"), 0, "{h}: {out}");
    }
    lab.assert_audit_verifies();

    // 3. A second SIGTERM ends rigger at once, mid-upload.
    for h in &names {
        std::fs::write(file(h, "bin"), &big_old).unwrap();
    }
    let run = Spawned::start(lab.run_cmd(&pb, &inv, &kh, &[]), lab.dir.path(), "term3");
    wait_until("an upload in progress", Duration::from_secs(60), || {
        temps_in(&lab.out()).iter().any(|(_, len)| *len >= 4 * 1024 * 1024)
    });
    run.signal(libc::SIGTERM);
    std::thread::sleep(Duration::from_millis(50));
    run.signal(libc::SIGTERM);
    let t = Instant::now();
    let (code, out, err) = run.wait(Duration::from_secs(10));
    assert_eq!(code, Some(143), "{out}\n{err}");
    assert!(
        t.elapsed() < Duration::from_secs(5),
        "a second SIGTERM must abort at once"
    );
    assert!(err.contains("terminated twice"), "{err}");
    for h in &names {
        let now = std::fs::read(file(h, "bin")).unwrap();
        assert!(
            now == big_old || now == big_new,
            "{h}: a partial file ({} bytes)",
            now.len()
        );
    }
    let recs = lab.assert_audit_verifies();
    let last = recs.last().unwrap();
    assert_eq!(last["kind"], "run_end", "{last}");
    assert_eq!(last["error"], "aborted by a second SIGTERM", "{last}");

    // 4. Reruns: the first good one completes, the next one changes nothing.
    let out = lab.finish(lab.run_cmd(&pb, &inv, &kh, &[]));
    assert_eq!(out.code, Some(0), "{}\n{}", out.stdout, out.stderr);
    let out = lab.finish(lab.run_cmd(&pb, &inv, &kh, &[]));
    assert_eq!(out.code, Some(0), "{}\n{}", out.stdout, out.stderr);
    for h in &names {
        assert_eq!(count(&out.stdout, h, "changed"), 0, "{h}: {}", out.stdout);
        assert!(std::fs::read(file(h, "bin")).unwrap() == big_new, "{h}");
        assert_eq!(std::fs::read_to_string(file(h, "second")).unwrap(), "second\n");
    }
    assert_eq!(temps_in(&lab.out()), vec![], "temp files left");
    lab.assert_audit_verifies();
}

/// Whether rigger has ended (exited or a zombie not reaped yet).
fn has_ended(run: &Spawned) -> bool {
    // SAFETY: kill(2) with signal 0 checks for existence only.
    let alive = unsafe { libc::kill(run.child.id() as i32, 0) } == 0;
    let zombie = std::fs::read_to_string(format!("/proc/{}/stat", run.child.id()))
        .map(|s| s.contains(") Z "))
        .unwrap_or(true);
    !alive || zombie
}

fn sqlite(db: &Path, sql: &str) -> String {
    let out = Command::new("sqlite3").arg(db).arg(sql).output().expect("sqlite3");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

const SLOW_CHECK: &str = r#"
- hosts: all
  gather_facts: false
  tasks:
    - name: slow probe
      shell: touch @OUT@/{{ inventory_hostname }}.probing; sleep {{ secs | default(3) }}
      check_mode: false
      changed_when: false
    - name: the config
      copy:
        content: "wanted\n"
        dest: "@OUT@/{{ inventory_hostname }}.conf"
"#;

/// `rigger check` stopped by SIGTERM mid-run: the running probe finishes,
/// the run is recorded `interrupted` with exit code 143 in one consistent
/// history (no task results of a half run), the audit chain verifies; after
/// a `kill -9` mid-run too; the next check runs normally and reports.
#[test]
fn sigterm_and_kill9_of_check_leave_its_history_and_audit_log_consistent() {
    let lab = Lab::new(1, HostOpts::default());
    let pb = lab.write("slow.yml", SLOW_CHECK);
    let kh = lab.known_hosts(None);
    let inv = lab.inventory(None, "");
    let db = lab.path("state/check.db");
    let h = lab.hosts.name(0).to_string();
    let probing = lab.out().join(format!("{h}.probing"));
    let check = |extra: &[&str]| {
        let mut cmd = lab.cmd(&["check"]);
        cmd.arg(&pb)
            .arg("-i")
            .arg(&inv)
            .arg("--known-hosts")
            .arg(&kh)
            .arg("--db")
            .arg(&db)
            .arg("--audit-log")
            .arg(lab.audit_log())
            .args(["--format", "json"])
            .args(extra);
        cmd
    };

    for (tag, sig) in [("term", libc::SIGTERM), ("kill", libc::SIGKILL)] {
        let _ = std::fs::remove_file(&probing);
        let run = Spawned::start(check(&[]), lab.dir.path(), &format!("check-{tag}"));
        wait_until("the probe", Duration::from_secs(60), || probing.exists());
        run.signal(sig);
        let (code, out, err) = run.wait(RUN_LIMIT);
        assert_eq!(sqlite(&db, "PRAGMA integrity_check"), "ok\n");
        let last = sqlite(
            &db,
            "SELECT status || ' ' || ifnull(exit_code, '-') FROM runs ORDER BY id DESC LIMIT 1",
        );
        if sig == libc::SIGTERM {
            assert_eq!(code, Some(143), "{out}\n{err}");
            assert_eq!(last, "interrupted 143\n");
        } else {
            assert_eq!(code, None, "{out}\n{err}");
            // Marked `interrupted` by the next run (its lock is free again).
            assert_eq!(last, "running -\n");
        }
        // A half run leaves no task results behind.
        assert_eq!(
            sqlite(
                &db,
                "SELECT count(*) FROM task_results WHERE run_id = (SELECT max(id) FROM runs)"
            ),
            "0\n"
        );
        lab.assert_audit_verifies();
    }

    // The next check works and reports the drift (the config is missing).
    let out = lab.finish(check(&["-e", "secs=0"]));
    assert_eq!(out.code, Some(2), "{}\n{}", out.stdout, out.stderr);
    assert_eq!(
        sqlite(&db, "SELECT status FROM runs ORDER BY id"),
        "interrupted\ninterrupted\ndone\n"
    );
    assert!(!lab.out().join(format!("{h}.conf")).exists(), "check changed the host");
    lab.assert_audit_verifies();
}

/// A full disk on the target (an 8 MiB tmpfs mounted inside an isolated
/// host's own mount namespace, filled but for under 2 MB): `copy` and
/// `template` of content bigger than the space left fail with the reason
/// (`No space left on device`), the old file is intact, no temp file is
/// left; through the shell and over SFTP. Once space is freed, the rerun
/// installs the new content and the one after it changes nothing.
#[test]
fn a_full_disk_fails_the_copy_clearly_and_keeps_the_old_file() {
    let lab = Lab::new(1, HostOpts { isolated_root: true });
    let mount = lab.hosts.ssh(
        0,
        "mkdir -p /srv/full && mount -t tmpfs -o size=8m tmpfs /srv/full && \
         head -c 6500000 /dev/zero > /srv/full/filler && printf 'old contents\\n' > /srv/full/app.conf && \
         printf 'old template\\n' > /srv/full/app.tmpl.out",
    );
    assert!(mount.status.success(), "{}", String::from_utf8_lossy(&mount.stderr));
    let srv = lab.hosts.root_dir(0).expect("isolated host").join("full");
    let view = |name: &str| -> Option<Vec<u8>> {
        // The tmpfs lives in the host's mount namespace only: read it through ssh.
        let out = lab.hosts.ssh(0, &format!("cat /srv/full/{name}"));
        out.status.success().then_some(out.stdout)
    };
    let listing = || -> Vec<String> {
        let out = lab.hosts.ssh(0, "ls -A /srv/full");
        let mut v: Vec<String> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_string)
            .collect();
        v.sort();
        v
    };
    // The tmpfs is not the machine's file system: the host's srv dir does not see it.
    assert!(
        !srv.join("filler").exists(),
        "the tmpfs leaked out of the host's namespace"
    );

    let big = content(2 * 1024 * 1024, 7);
    let src = lab.path("big.bin");
    std::fs::write(&src, &big).unwrap();
    // 2.6 MB of rendered text: a template's output.
    std::fs::write(
        lab.path("big.j2"),
        "{% for i in range(80000) %}line {{ i }} of the big template\n{% endfor %}",
    )
    .unwrap();
    let dir = lab.dir.path().display().to_string();
    let play = |tasks: &str| {
        format!("- hosts: all\n  gather_facts: false\n  tasks:\n{tasks}")
            .replace("@SRC@", &src.display().to_string())
            .replace("@DIR@", &dir)
    };
    let copy_task = "    - copy: {src: \"@SRC@\", dest: /srv/full/app.conf}\n";
    let tpl_task = "    - template: {src: \"@DIR@/big.j2\", dest: /srv/full/app.tmpl.out}\n";
    let copy_pb = lab.write("copy.yml", &play(copy_task));
    let tpl_pb = lab.write("tpl.yml", &play(tpl_task));
    let both_pb = lab.write("both.yml", &play(&format!("{copy_task}{tpl_task}")));
    let kh = lab.known_hosts(None);
    for (label, vars) in [
        (
            "persistent shell",
            "ansible_ssh_transfer_method=piped ansible_pipelining=true",
        ),
        ("channel", "ansible_ssh_transfer_method=piped ansible_pipelining=false"),
        ("SFTP", "ansible_ssh_transfer_method=sftp"),
    ] {
        let inv = lab.inventory(None, vars);
        for (what, pb, file, old) in [
            ("copy", &copy_pb, "app.conf", &b"old contents\n"[..]),
            ("template", &tpl_pb, "app.tmpl.out", &b"old template\n"[..]),
        ] {
            let out = lab.finish(lab.run_cmd(pb, &inv, &kh, &[]));
            assert_eq!(out.code, Some(2), "{label} {what}: {}\n{}", out.stdout, out.stderr);
            let text = format!("{}\n{}", out.stdout, out.stderr);
            assert!(
                text.contains("No space left on device"),
                "{label} {what}: the reason is not given:\n{text}"
            );
            assert_eq!(view(file).as_deref(), Some(old), "{label} {what}");
            assert_eq!(
                listing(),
                ["app.conf", "app.tmpl.out", "filler"],
                "{label} {what}: temp files left"
            );
        }
    }
    lab.assert_audit_verifies();

    // Space freed: the rerun installs both, the next one changes nothing.
    assert!(lab.hosts.ssh(0, "rm /srv/full/filler").status.success());
    let inv = lab.inventory(None, "");
    let out = lab.finish(lab.run_cmd(&both_pb, &inv, &kh, &[]));
    assert_eq!(out.code, Some(0), "{}\n{}", out.stdout, out.stderr);
    assert!(view("app.conf").unwrap() == big);
    let out = lab.finish(lab.run_cmd(&both_pb, &inv, &kh, &[]));
    assert_eq!(out.code, Some(0), "{}\n{}", out.stdout, out.stderr);
    assert_eq!(count(&out.stdout, lab.hosts.name(0), "changed"), 0, "{}", out.stdout);
}

/// A TCP proxy in front of an sshd that forwards both ways until it is told
/// to stall: then it keeps both connections open and silently drops
/// everything (a partition: packets go nowhere, nothing is closed or reset).
struct StallProxy {
    port: u16,
    stalled: Arc<AtomicBool>,
}

impl StallProxy {
    fn start(upstream: SocketAddr, stalled_from_start: bool) -> StallProxy {
        let listener = TcpListener::bind((upstream.ip(), 0)).expect("proxy listen");
        let port = listener.local_addr().expect("proxy address").port();
        let stalled = Arc::new(AtomicBool::new(stalled_from_start));
        let st = stalled.clone();
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { return };
                let Ok(server) = TcpStream::connect(upstream) else {
                    continue;
                };
                let (Ok(client2), Ok(server2)) = (client.try_clone(), server.try_clone()) else {
                    continue;
                };
                for (from, to) in [(client, server), (server2, client2)] {
                    let st = st.clone();
                    std::thread::spawn(move || {
                        let (mut from, mut to) = (from, to);
                        let mut buf = vec![0u8; 64 * 1024];
                        loop {
                            let n = match from.read(&mut buf) {
                                Ok(0) | Err(_) => break,
                                Ok(n) => n,
                            };
                            // Stalled: read (so the sender is never blocked
                            // by a full window either) and drop.
                            if !st.load(Ordering::SeqCst) && to.write_all(&buf[..n]).is_err() {
                                break;
                            }
                        }
                        // The sockets stay open until the test ends (they
                        // are dropped with this thread only when the
                        // other side closes).
                    });
                }
            }
        });
        StallProxy { port, stalled }
    }
}

/// A network partition: the link to a host stops carrying anything while
/// nothing closes (a proxy that drops every byte). Before the connection is
/// made: the host is UNREACHABLE after the connect timeout (`-T`, as
/// ansible's `--timeout`); in the middle of a command: UNREACHABLE after the
/// SSH keepalives (`ServerAliveInterval` x `ServerAliveCountMax`, as
/// OpenSSH) go unanswered, rather than waiting for the command forever. The
/// other host's run completes; a rerun converges.
#[test]
fn a_network_partition_makes_the_host_unreachable_instead_of_hanging() {
    let lab = Lab::new(2, HostOpts::default());
    let upstream = SocketAddr::from((lab.hosts.addr(0), lab.hosts.port(0)));
    let pb = lab.write(
        "part.yml",
        r#"
- hosts: all
  gather_facts: false
  tasks:
    - name: a slow step
      shell: touch @OUT@/{{ inventory_hostname }}.started; sleep 4; echo done > @OUT@/{{ inventory_hostname }}.first
      args:
        creates: "@OUT@/{{ inventory_hostname }}.first"
    - copy: {content: "after\n", dest: "@OUT@/{{ inventory_hostname }}.after"}
"#,
    );
    let h0 = lab.hosts.name(0).to_string();
    let h1 = lab.hosts.name(1).to_string();

    // Partitioned from the start: the connect timeout.
    let proxy = StallProxy::start(upstream, true);
    let kh = lab.known_hosts(Some(proxy.port));
    let inv = lab.inventory(Some(proxy.port), "");
    let t = Instant::now();
    let out = lab.finish(lab.run_cmd(&pb, &inv, &kh, &["-T", "2"]));
    let took = t.elapsed();
    assert_eq!(out.code, Some(4), "{}\n{}", out.stdout, out.stderr);
    assert!(out.stdout.contains("UNREACHABLE"), "{}", out.stdout);
    assert!(
        took < Duration::from_secs(12),
        "took {took:?}: the connect timeout is 2 s"
    );
    assert_eq!(count(&out.stdout, &h0, "unreachable"), 1, "{}", out.stdout);
    assert_eq!(count(&out.stdout, &h1, "changed"), 2, "{}", out.stdout);
    eprintln!("partitioned before connecting: UNREACHABLE after {took:?}");

    // Partitioned mid-command: the keepalives, as many unanswered as
    // ServerAliveCountMax allows (1, then 6: five seconds more).
    let mid = lab.write(
        "mid.yml",
        "- hosts: all\n  gather_facts: false\n  tasks:\n    - shell: touch @OUT@/{{ inventory_hostname }}.mid; sleep 30\n",
    );
    let mid_started = lab.out().join(format!("{h0}.mid"));
    let mut took = Vec::new();
    for count_max in [1, 6] {
        let proxy = StallProxy::start(upstream, false);
        let kh = lab.known_hosts(Some(proxy.port));
        let inv = lab.inventory(
            Some(proxy.port),
            &format!("ansible_ssh_common_args='-o ServerAliveInterval=1 -o ServerAliveCountMax={count_max}'"),
        );
        let _ = std::fs::remove_file(&mid_started);
        let run = Spawned::start(
            lab.run_cmd(&mid, &inv, &kh, &["-l", &h0]),
            lab.dir.path(),
            &format!("partition-{count_max}"),
        );
        wait_until("the slow step", Duration::from_secs(60), || mid_started.exists());
        proxy.stalled.store(true, Ordering::SeqCst);
        let t = Instant::now();
        let (code, out, err) = run.wait(RUN_LIMIT);
        let elapsed = t.elapsed();
        assert_eq!(code, Some(4), "{out}\n{err}");
        assert_eq!(count(&out, &h0, "unreachable"), 1, "{out}");
        assert!(
            elapsed < Duration::from_secs(20),
            "UNREACHABLE after {elapsed:?}; keepalives every 1 s, {count_max} unanswered allowed"
        );
        eprintln!("partitioned mid-command, ServerAliveCountMax={count_max}: UNREACHABLE after {elapsed:?}");
        took.push(elapsed);
    }
    assert!(
        took[1] >= took[0] + Duration::from_secs(3),
        "ServerAliveCountMax is not honoured: {took:?}"
    );
    lab.assert_audit_verifies();

    // The partition heals: the rerun converges.
    let kh = lab.known_hosts(None);
    let inv = lab.inventory(None, "");
    let out = lab.finish(lab.run_cmd(&pb, &inv, &kh, &[]));
    assert_eq!(out.code, Some(0), "{}\n{}", out.stdout, out.stderr);
    let out = lab.finish(lab.run_cmd(&pb, &inv, &kh, &[]));
    assert_eq!(out.code, Some(0), "{}\n{}", out.stdout, out.stderr);
    for h in [&h0, &h1] {
        assert_eq!(count(&out.stdout, h, "changed"), 0, "{h}: {}", out.stdout);
    }
}

/// A TCP proxy in front of an sshd that closes the first `refuse` connections
/// at once (a host still booting, a firewall's rate limit, sshd's
/// `MaxStartups`), then forwards.
struct RefusingProxy {
    port: u16,
    accepted: Arc<std::sync::atomic::AtomicUsize>,
}

impl RefusingProxy {
    fn start(upstream: SocketAddr, refuse: usize) -> RefusingProxy {
        let listener = TcpListener::bind((upstream.ip(), 0)).expect("proxy listen");
        let port = listener.local_addr().expect("proxy address").port();
        let accepted = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let acc = accepted.clone();
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { return };
                if acc.fetch_add(1, Ordering::SeqCst) < refuse {
                    drop(client);
                    continue;
                }
                let Ok(server) = TcpStream::connect(upstream) else {
                    continue;
                };
                let (Ok(client2), Ok(server2)) = (client.try_clone(), server.try_clone()) else {
                    continue;
                };
                for (mut from, mut to) in [(client, server), (server2, client2)] {
                    std::thread::spawn(move || {
                        let _ = std::io::copy(&mut from, &mut to);
                        let _ = to.shutdown(std::net::Shutdown::Both);
                        let _ = from.shutdown(std::net::Shutdown::Both);
                    });
                }
            }
        });
        RefusingProxy { port, accepted }
    }
}

const ONE_TASK: &str = r#"
- hosts: all
  gather_facts: false
  tasks:
    - copy: {content: "hello\n", dest: "@OUT@/{{ inventory_hostname }}.hello"}
"#;

/// `--retries N` tries the connection setup again after a transient failure
/// (here: the first two connections closed at once), pausing as Ansible's
/// ssh `retries` does (0 s, then 1 s, ...); with too few retries the host is
/// UNREACHABLE and the error says how many attempts were made. A host's
/// `ansible_ssh_retries` and ansible.cfg's `[ssh_connection] retries` set it
/// too. Distinct from a task's `retries`/`until`, which never reconnects.
#[test]
fn retries_connect_again_after_transient_failures_with_backoff() {
    let lab = Lab::new(1, HostOpts::default());
    let upstream = SocketAddr::from((lab.hosts.addr(0), lab.hosts.port(0)));
    let pb = lab.write("one.yml", ONE_TASK);
    let h = lab.hosts.name(0).to_string();

    // No retries (the default): the first closed connection is final.
    let proxy = RefusingProxy::start(upstream, 2);
    let kh = lab.known_hosts(Some(proxy.port));
    let inv = lab.inventory(Some(proxy.port), "");
    let out = lab.finish(lab.run_cmd(&pb, &inv, &kh, &[]));
    assert_eq!(out.code, Some(4), "{}\n{}", out.stdout, out.stderr);
    assert_eq!(proxy.accepted.load(Ordering::SeqCst), 1);

    // --retries 1: two attempts, both closed.
    let proxy = RefusingProxy::start(upstream, 2);
    let kh = lab.known_hosts(Some(proxy.port));
    let inv = lab.inventory(Some(proxy.port), "");
    let out = lab.finish(lab.run_cmd(&pb, &inv, &kh, &["--retries", "1"]));
    assert_eq!(out.code, Some(4), "{}\n{}", out.stdout, out.stderr);
    assert!(out.stdout.contains("after 2 attempts"), "{}", out.stdout);
    assert_eq!(proxy.accepted.load(Ordering::SeqCst), 2);

    // --retries 2: the third attempt gets through, after pauses of 0 and 1 s.
    let proxy = RefusingProxy::start(upstream, 2);
    let kh = lab.known_hosts(Some(proxy.port));
    let inv = lab.inventory(Some(proxy.port), "");
    let t = Instant::now();
    let out = lab.finish(lab.run_cmd(&pb, &inv, &kh, &["--retries", "2"]));
    let took = t.elapsed();
    assert_eq!(out.code, Some(0), "{}\n{}", out.stdout, out.stderr);
    assert_eq!(proxy.accepted.load(Ordering::SeqCst), 3);
    assert!(took >= Duration::from_secs(1), "no backoff: {took:?}");
    assert_eq!(
        std::fs::read_to_string(lab.out().join(format!("{h}.hello"))).unwrap(),
        "hello\n"
    );

    // The host's ansible_ssh_retries, then ansible.cfg's retries.
    let proxy = RefusingProxy::start(upstream, 1);
    let kh = lab.known_hosts(Some(proxy.port));
    let inv = lab.inventory(Some(proxy.port), "ansible_ssh_retries=1");
    let out = lab.finish(lab.run_cmd(&pb, &inv, &kh, &[]));
    assert_eq!(out.code, Some(0), "{}\n{}", out.stdout, out.stderr);
    assert_eq!(proxy.accepted.load(Ordering::SeqCst), 2);
    std::fs::write(lab.path("ansible.cfg"), "[ssh_connection]\nretries = 1\n").unwrap();
    let proxy = RefusingProxy::start(upstream, 1);
    let kh = lab.known_hosts(Some(proxy.port));
    let inv = lab.inventory(Some(proxy.port), "");
    let out = lab.finish(lab.run_cmd(&pb, &inv, &kh, &[]));
    std::fs::remove_file(lab.path("ansible.cfg")).unwrap();
    assert_eq!(out.code, Some(0), "{}\n{}", out.stdout, out.stderr);
    assert_eq!(proxy.accepted.load(Ordering::SeqCst), 2);

    // A host key that does not match is not retried.
    let proxy = RefusingProxy::start(upstream, 0);
    let inv = lab.inventory(Some(proxy.port), "");
    let wrong = lab.path("wrong_known_hosts");
    std::fs::write(
        &wrong,
        format!(
            "[{}]:{} {}\n",
            lab.hosts.addr(0),
            proxy.port,
            "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl"
        ),
    )
    .unwrap();
    let out = lab.finish(lab.run_cmd(&pb, &inv, &wrong, &["--retries", "3"]));
    assert_eq!(out.code, Some(4), "{}\n{}", out.stdout, out.stderr);
    assert_eq!(
        proxy.accepted.load(Ordering::SeqCst),
        1,
        "a host key mismatch was retried"
    );
}

/// The connect timeout comes from `-T`/`--timeout` (ansible's), else
/// ansible.cfg's `[defaults] timeout`; a host's `ansible_ssh_timeout` wins
/// over both. Against a host that accepts TCP and then says nothing.
#[test]
fn the_connect_timeout_comes_from_the_cli_ansible_cfg_and_the_host() {
    let lab = Lab::new(1, HostOpts::default());
    let upstream = SocketAddr::from((lab.hosts.addr(0), lab.hosts.port(0)));
    let pb = lab.write("one.yml", ONE_TASK);
    let proxy = StallProxy::start(upstream, true);
    let kh = lab.known_hosts(Some(proxy.port));
    let plain = lab.inventory(Some(proxy.port), "");
    for (label, cfg, inv, args, secs) in [
        ("-T", None, plain.clone(), vec!["-T", "1"], 1),
        (
            "ansible.cfg",
            Some("[defaults]\ntimeout = 2\n"),
            plain.clone(),
            vec![],
            2,
        ),
        (
            "-T over ansible.cfg",
            Some("[defaults]\ntimeout = 2\n"),
            plain.clone(),
            vec!["-T", "1"],
            1,
        ),
        (
            "ansible_ssh_timeout",
            Some("[defaults]\ntimeout = 2\n"),
            lab.inventory(Some(proxy.port), "ansible_ssh_timeout=3"),
            vec!["-T", "1"],
            3,
        ),
    ] {
        match cfg {
            Some(c) => std::fs::write(lab.path("ansible.cfg"), c).unwrap(),
            None => {
                let _ = std::fs::remove_file(lab.path("ansible.cfg"));
            }
        }
        let t = Instant::now();
        let out = lab.finish(lab.run_cmd(&pb, &inv, &kh, &args));
        let took = t.elapsed();
        assert_eq!(out.code, Some(4), "{label}: {}\n{}", out.stdout, out.stderr);
        assert!(
            out.stdout.contains(&format!("timed out after {secs}s")),
            "{label}: {}",
            out.stdout
        );
        assert!(took >= Duration::from_secs(secs), "{label}: {took:?}");
        assert!(took < Duration::from_secs(secs + 8), "{label}: {took:?}");
    }
}

/// `--run-timeout`: when the whole run's time is up, the task still running
/// fails as timed out (not waited for), no new task starts on any host, the
/// recap is printed saying so and the exit code is 124; the audit log's
/// chain verifies. A zero or malformed limit is a usage error.
#[test]
fn run_timeout_fails_the_running_hosts_prints_the_recap_and_exits_124() {
    let lab = Lab::new(2, HostOpts::default());
    let h0 = lab.hosts.name(0).to_string();
    let h1 = lab.hosts.name(1).to_string();
    let pb = lab.write(
        "long.yml",
        &r#"
- hosts: all
  gather_facts: false
  tasks:
    - copy: {content: "first\n", dest: "@OUT@/{{ inventory_hostname }}.first"}
    - shell: "sleep {{ 60 if inventory_hostname == '@H0@' else 0 }}"
    - copy: {content: "last\n", dest: "@OUT@/{{ inventory_hostname }}.last"}
"#
        .replace("@H0@", &h0),
    );
    let kh = lab.known_hosts(None);
    let inv = lab.inventory(None, "");
    let t = Instant::now();
    let out = lab.finish(lab.run_cmd(&pb, &inv, &kh, &["--run-timeout", "3s"]));
    let took = t.elapsed();
    assert_eq!(out.code, Some(124), "{}\n{}", out.stdout, out.stderr);
    assert!(took < Duration::from_secs(20), "{took:?}");
    assert!(
        out.stdout.contains("the run timed out (--run-timeout 3s)"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("INTERRUPTED by the run timeout (--run-timeout 3s)"),
        "{}",
        out.stdout
    );
    assert!(out.stderr.contains("the run timed out"), "{}", out.stderr);
    assert_eq!(count(&out.stdout, &h0, "failed"), 1, "{}", out.stdout);
    assert_eq!(count(&out.stdout, &h1, "failed"), 0, "{}", out.stdout);
    assert_eq!(count(&out.stdout, &h1, "changed"), 2, "{}", out.stdout);
    for h in [&h0, &h1] {
        assert!(lab.out().join(format!("{h}.first")).exists());
        assert!(
            !lab.out().join(format!("{h}.last")).exists(),
            "{h}: a task started after the run timed out"
        );
    }
    let recs = lab.assert_audit_verifies();
    assert_eq!(recs.last().unwrap()["exit_code"], 124);

    for bad in ["0", "soon", "-5s"] {
        let out = lab.finish(lab.run_cmd(&pb, &inv, &kh, &[&format!("--run-timeout={bad}")]));
        assert_eq!(out.code, Some(5), "{bad}: {}\n{}", out.stdout, out.stderr);
        assert!(out.stderr.contains("--run-timeout"), "{bad}: {}", out.stderr);
    }
}
