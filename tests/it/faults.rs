//! Uploads under faults (issue #18, items 2, 4 and 5): `kill -9` of rigger, a
//! TCP connection cut in the middle of a transfer (a proxy between rigger
//! and the sshd), and a dropped sshd session, through the shell (the
//! persistent shell for files up to 8 MB, a channel of its own for bigger
//! ones; `ansible_ssh_transfer_method=piped`) and over SFTP. The destination
//! always holds its old content or the new one, never a part; a dropped
//! host is UNREACHABLE and rigger ends; the temp file is private while it is
//! written; stale temp files of the destination (and only of it) are removed
//! by the next upload.
//!
//! The hosts share the machine's file system: the test watches the target
//! directory directly.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::support::{procs, rigger_bin, run_with_timeout, RunOutput, TestHosts};

/// Size of the big file: streamed on a channel of its own (over 8 MB).
const BIG: usize = 100 * 1024 * 1024;
/// Size of a file that goes through the persistent shell (8 MB or less).
const SMALL: usize = 5 * 1024 * 1024;
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

/// A scratch place: local files to copy, and a directory on the (shared)
/// file system that the uploads go to.
struct Lab {
    hosts: TestHosts,
    local: tempfile::TempDir,
    target: tempfile::TempDir,
    home: tempfile::TempDir,
    /// The hosts' known_hosts plus the proxies' ports.
    known_hosts: PathBuf,
}

impl Lab {
    fn new(n: usize) -> Lab {
        let hosts = TestHosts::new(n);
        let target = tempfile::Builder::new()
            .prefix("faults-target-")
            .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
            .expect("target dir");
        let known_hosts = hosts.dir().join("faults_known_hosts");
        std::fs::copy(hosts.known_hosts(), &known_hosts).expect("known_hosts");
        Lab {
            hosts,
            local: tempfile::tempdir().expect("local dir"),
            target,
            home: tempfile::tempdir().expect("HOME"),
            known_hosts,
        }
    }

    fn local_file(&self, name: &str, data: &[u8]) -> String {
        let p = self.local.path().join(name);
        std::fs::write(&p, data).expect("write local file");
        p.display().to_string()
    }

    fn dest(&self, name: &str) -> PathBuf {
        self.target.path().join(name)
    }

    /// An inventory: `victim` (host 0) through `port` (the sshd's own, or a
    /// proxy's) with `vars`, and `bystander` (host 1, when there is one)
    /// straight to its sshd, with the same `vars`.
    fn inventory(&self, port: u16, vars: &str) -> PathBuf {
        if port != self.hosts.port(0) {
            // A proxy: host 0's key at the proxy's port.
            let mut f = std::fs::OpenOptions::new()
                .append(true)
                .open(&self.known_hosts)
                .expect("known_hosts");
            writeln!(f, "[{}]:{port} {}", self.hosts.addr(0), self.hosts.host_key(0)).expect("known_hosts");
        }
        let key = self.hosts.client_key().display();
        let mut text = format!(
            "victim ansible_host={} ansible_port={port} ansible_user=root ansible_ssh_private_key_file={key} {vars}\n",
            self.hosts.addr(0)
        );
        if self.hosts.len() > 1 {
            text.push_str(&format!(
                "bystander ansible_host={} ansible_port={} ansible_user=root ansible_ssh_private_key_file={key} {vars}\n",
                self.hosts.addr(1),
                self.hosts.port(1)
            ));
        }
        let path = self.hosts.dir().join(format!("faults-{}.ini", rand_suffix()));
        std::fs::write(&path, text).expect("inventory");
        path
    }

    /// `rigger adhoc PATTERN -i INV --json -m copy -a ARGS`, with a private
    /// HOME and none of the machine's rigger settings.
    fn copy_cmd(&self, inventory: &Path, pattern: &str, args: &str) -> Command {
        let mut cmd = Command::new(rigger_bin());
        cmd.arg("adhoc")
            .arg(pattern)
            .arg("-i")
            .arg(inventory)
            .arg("--known-hosts")
            .arg(&self.known_hosts)
            .args(["--json", "-m", "copy", "-a", args])
            .env("HOME", self.home.path());
        for var in [
            "ANSIBLE_INVENTORY",
            "ANSIBLE_REMOTE_USER",
            "ANSIBLE_PRIVATE_KEY_FILE",
            "ANSIBLE_TIMEOUT",
            "RIGGER_PIPELINING",
            "RIGGER_SFTP",
            "RIGGER_BECOME_PASSWORD",
            "SSH_AUTH_SOCK",
        ] {
            cmd.env_remove(var);
        }
        cmd
    }

    /// Runs a copy to the end, within [`RUN_LIMIT`]: a hang fails the test.
    #[track_caller]
    fn copy(&self, inventory: &Path, pattern: &str, args: &str) -> RunOutput {
        let out = run_with_timeout(self.copy_cmd(inventory, pattern, args), RUN_LIMIT);
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

    /// Starts a copy in its own process group (to be killed by the test).
    fn spawn_copy(&self, inventory: &Path, args: &str) -> Child {
        procs::become_subreaper();
        let mut cmd = self.copy_cmd(inventory, "victim", args);
        cmd.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0);
        cmd.spawn().expect("start rigger")
    }

    /// The `.rigger-tmp-*` files in the target directory, with their sizes and modes.
    fn temps(&self) -> Vec<(String, u64, u32)> {
        temps_in(self.target.path())
    }
}

fn rand_suffix() -> String {
    use std::time::SystemTime;
    let n = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    format!("{n:x}")
}

fn temps_in(dir: &Path) -> Vec<(String, u64, u32)> {
    let mut v: Vec<(String, u64, u32)> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .filter_map(|e| {
                    let name = e.file_name().to_string_lossy().into_owned();
                    if !name.starts_with(".rigger-tmp-") {
                        return None;
                    }
                    let m = e.metadata().ok()?;
                    Some((name, m.len(), m.permissions().mode() & 0o7777))
                })
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// Waits until a temp file in `dir` holds at least `bytes` (the upload is
/// in the middle of the content); returns what it saw then.
#[track_caller]
fn wait_for_temp(dir: &Path, bytes: u64, child: &mut Child) -> Vec<(String, u64, u32)> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let t = temps_in(dir);
        if t.iter().any(|(_, len, _)| *len >= bytes) {
            return t;
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!("rigger ended ({status}) before the upload reached {bytes} bytes");
        }
        assert!(Instant::now() < deadline, "no temp file reached {bytes} bytes: {t:?}");
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// Kills rigger (its whole process group) with SIGKILL and reaps it.
fn kill9(child: &mut Child) {
    let pgid = child.id() as i32;
    // SAFETY: a plain kill(2) of the process group the test started.
    unsafe {
        libc::kill(-pgid, libc::SIGKILL);
    }
    let _ = child.wait();
}

/// The destination holds exactly `old` or exactly `new`: never a part, never a mix.
#[track_caller]
fn assert_old_or_new(path: &Path, old: &[u8], new: &[u8]) -> &'static str {
    let now = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    if now == old {
        "old"
    } else if now == new {
        "new"
    } else {
        panic!(
            "{} holds {} bytes: neither the old content ({} bytes) nor the new ({} bytes)",
            path.display(),
            now.len(),
            old.len(),
            new.len()
        )
    }
}

/// Waits (briefly) for the host side of a killed upload to end: its temp
/// files removed by its own script.
fn settle(dir: &Path) -> Vec<(String, u64, u32)> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let t = temps_in(dir);
        if t.is_empty() || Instant::now() > deadline {
            return t;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A TCP proxy on loopback in front of an sshd that cuts the connection
/// (both directions, both sockets) once `cut_after` bytes went from the
/// client to the server; `pace` slows the client's data down (a pause per
/// 64 KiB), so an upload can be watched while it runs.
struct CutProxy {
    port: u16,
    cut: Arc<AtomicBool>,
    sent: Arc<AtomicU64>,
}

impl CutProxy {
    /// A proxy on `upstream`'s address (a port of its own).
    fn start(upstream: SocketAddr, cut_after: u64, pace: Option<Duration>) -> CutProxy {
        let listener = TcpListener::bind((upstream.ip(), 0)).expect("proxy listen");
        let port = listener.local_addr().expect("proxy address").port();
        let cut = Arc::new(AtomicBool::new(false));
        let sent = Arc::new(AtomicU64::new(0));
        let (c, s) = (cut.clone(), sent.clone());
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { return };
                let Ok(server) = TcpStream::connect(upstream) else {
                    continue;
                };
                let (c, s) = (c.clone(), s.clone());
                let (Ok(client2), Ok(server2)) = (client.try_clone(), server.try_clone()) else {
                    continue;
                };
                // Server to client: copied until either side is gone.
                std::thread::spawn(move || {
                    let (mut from, mut to) = (server2, client2);
                    let mut buf = vec![0u8; 64 * 1024];
                    while let Ok(n) = from.read(&mut buf) {
                        if n == 0 || to.write_all(&buf[..n]).is_err() {
                            break;
                        }
                    }
                    let _ = to.shutdown(Shutdown::Both);
                    let _ = from.shutdown(Shutdown::Both);
                });
                // Client to server: counted, and cut.
                std::thread::spawn(move || {
                    let (mut from, mut to) = (client, server);
                    let mut buf = vec![0u8; 64 * 1024];
                    loop {
                        let n = match from.read(&mut buf) {
                            Ok(0) | Err(_) => break,
                            Ok(n) => n,
                        };
                        let total = s.fetch_add(n as u64, Ordering::SeqCst) + n as u64;
                        if total > cut_after {
                            // Forward only up to the limit, then drop everything.
                            let keep = n - (total - cut_after).min(n as u64) as usize;
                            let _ = to.write_all(&buf[..keep]);
                            c.store(true, Ordering::SeqCst);
                            break;
                        }
                        if to.write_all(&buf[..n]).is_err() {
                            break;
                        }
                        if let Some(p) = pace {
                            std::thread::sleep(p);
                        }
                    }
                    let _ = from.shutdown(Shutdown::Both);
                    let _ = to.shutdown(Shutdown::Both);
                });
            }
        });
        CutProxy { port, cut, sent }
    }
}

fn upstream(hosts: &TestHosts, i: usize) -> SocketAddr {
    SocketAddr::from((hosts.addr(i), hosts.port(i)))
}

/// The transfer methods under test: (label, inventory variables, file size).
fn methods() -> Vec<(&'static str, &'static str, usize)> {
    vec![
        // The persistent shell (8 MB or less): the upload that hung (item 4).
        (
            "persistent shell",
            "ansible_ssh_transfer_method=piped ansible_pipelining=true",
            SMALL,
        ),
        // A channel of its own, streamed.
        (
            "shell channel",
            "ansible_ssh_transfer_method=piped ansible_pipelining=true",
            BIG,
        ),
        ("SFTP", "", BIG),
    ]
}

/// `kill -9` of rigger while it copies a 100 MB file: the destination keeps
/// its old content (never a part of the new one); the next run installs the
/// new content, and after it no temp file is left (the shell path: the
/// script removes its own temp file when its input ends early, and an
/// upload removes stale ones of its destination).
#[test]
fn kill9_of_rigger_mid_upload_keeps_the_old_file() {
    let lab = Lab::new(1);
    let old = content(3 * 1024 * 1024, 1);
    let new = content(BIG, 2);
    let src = lab.local_file("big.bin", &new);
    for (label, vars, tag) in [
        ("shell", "ansible_ssh_transfer_method=piped", "shell"),
        ("sftp", "", "sftp"),
    ] {
        let dest = lab.dest(&format!("{tag}.bin"));
        std::fs::write(&dest, &old).unwrap();
        let inv = lab.inventory(lab.hosts.port(0), vars);
        let args = format!("src={src} dest={} mode=0640", dest.display());
        let mut child = lab.spawn_copy(&inv, &args);
        let seen = wait_for_temp(lab.target.path(), 20 * 1024 * 1024, &mut child);
        kill9(&mut child);
        assert_eq!(assert_old_or_new(&dest, &old, &new), "old", "{label}: {seen:?}");
        let left = settle(lab.target.path());
        // The destination never changes afterwards either (the host side of
        // the killed upload is done once its temp file is gone).
        assert_eq!(assert_old_or_new(&dest, &old, &new), "old", "{label}");
        if label == "shell" {
            assert!(left.is_empty(), "{label}: the script left {left:?}");
        }
        let out = lab.copy(&inv, "victim", &args);
        assert_eq!(out.code, Some(0), "{label}: {}\n{}", out.stdout, out.stderr);
        assert_eq!(assert_old_or_new(&dest, &old, &new), "new", "{label}");
        // The next upload (over SFTP: after its rename) removed what the
        // killed run left.
        assert_eq!(lab.temps(), vec![], "{label}: temp files left after the second run");
    }
}

/// A TCP connection cut in the middle of an upload (a proxy that stops
/// forwarding both ways after some megabytes): the host is UNREACHABLE,
/// rigger ends (through the persistent shell it used to hang forever), the
/// other host's copy is done, and the destination is the old file.
#[test]
fn a_connection_cut_mid_upload_is_unreachable_and_keeps_the_old_file() {
    let lab = Lab::new(2);
    let old = content(1024 * 1024, 3);
    for (n, (label, vars, size)) in methods().into_iter().enumerate() {
        let new = content(size, 10 + n as u32);
        let src = lab.local_file(&format!("cut{n}.bin"), &new);
        let proxy = CutProxy::start(upstream(&lab.hosts, 0), (size / 2) as u64, None);
        let inv = lab.inventory(proxy.port, vars);
        let dest_of = |h: &str| lab.dest(&format!("cut{n}-{h}.bin"));
        for h in ["victim", "bystander"] {
            std::fs::write(dest_of(h), &old).unwrap();
        }
        let args = format!(
            "src={src} dest={}/cut{n}-{{{{ inventory_hostname }}}}.bin",
            lab.target.path().display()
        );
        let started = Instant::now();
        let out = lab.copy(&inv, "all", &args);
        let took = started.elapsed();
        assert!(
            proxy.cut.load(Ordering::SeqCst),
            "{label}: the proxy never cut ({} bytes)\n{}\n{}",
            proxy.sent.load(Ordering::SeqCst),
            out.stdout,
            out.stderr
        );
        assert_eq!(out.code, Some(4), "{label}: {}\n{}", out.stdout, out.stderr);
        let lines: Vec<serde_json::Value> = out
            .stdout
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect();
        let status = |h: &str| {
            lines
                .iter()
                .find(|v| v["host"] == h)
                .map(|v| v["status"].as_str().unwrap_or_default().to_string())
                .unwrap_or_else(|| panic!("{label}: no result for {h}: {}", out.stdout))
        };
        assert_eq!(status("victim"), "unreachable", "{label}: {}", out.stdout);
        assert_eq!(status("bystander"), "changed", "{label}: {}", out.stdout);
        assert_eq!(assert_old_or_new(&dest_of("victim"), &old, &new), "old", "{label}");
        assert_eq!(assert_old_or_new(&dest_of("bystander"), &old, &new), "new", "{label}");
        settle(lab.target.path());
        assert_eq!(assert_old_or_new(&dest_of("victim"), &old, &new), "old", "{label}");
        eprintln!(
            "{label}: cut after {} bytes sent; rigger ended after {took:?}",
            proxy.sent.load(Ordering::SeqCst)
        );
    }
}

/// The sshd sessions of a host killed (`kill -9` of sshd's session
/// processes and of every command they run) during an upload: rigger
/// reports the host UNREACHABLE and ends; the destination keeps its old
/// content; the next run removes the temp file the killed script could not,
/// and installs the new content.
#[test]
fn a_dropped_session_mid_upload_is_unreachable_and_keeps_the_old_file() {
    let mut lab = Lab::new(1);
    let old = content(2 * 1024 * 1024, 4);
    let new = content(BIG, 5);
    let src = lab.local_file("drop.bin", &new);
    let dest = lab.dest("drop.bin");
    std::fs::write(&dest, &old).unwrap();
    let inv = lab.inventory(lab.hosts.port(0), "ansible_ssh_transfer_method=piped");
    let args = format!("src={src} dest={} mode=0600", dest.display());
    let cmd = lab.copy_cmd(&inv, "victim", &args);
    let run = std::thread::spawn(move || run_with_timeout(cmd, RUN_LIMIT));
    let deadline = Instant::now() + Duration::from_secs(60);
    while !temps_in(lab.target.path())
        .iter()
        .any(|(_, len, _)| *len >= 20 * 1024 * 1024)
    {
        assert!(Instant::now() < deadline, "the upload never got going");
        std::thread::sleep(Duration::from_millis(2));
    }
    assert!(lab.hosts.kill_sessions(0) >= 1);
    let out = run.join().expect("rigger thread");
    assert!(!out.timed_out, "rigger hung\n{}\n{}", out.stdout, out.stderr);
    assert_eq!(out.code, Some(4), "{}\n{}", out.stdout, out.stderr);
    assert!(out.stdout.contains("\"unreachable\""), "{}", out.stdout);
    assert_eq!(assert_old_or_new(&dest, &old, &new), "old");
    // The script was killed with its session: its temp file stays, for the next run.
    let stale = lab.temps();
    assert_eq!(stale.len(), 1, "{stale:?}");
    assert!(stale[0].0.starts_with(".rigger-tmp-drop.bin."), "{stale:?}");
    let out = lab.copy(&inv, "victim", &args);
    assert_eq!(out.code, Some(0), "{}\n{}", out.stdout, out.stderr);
    assert_eq!(assert_old_or_new(&dest, &old, &new), "new");
    assert_eq!(lab.temps(), vec![], "the stale temp file was not removed");
}

/// A `mode: 0600` secret is never readable by others on the host, not even
/// while it is written: the temp file is created private (it was created
/// with the umask, 0644, and written before its chmod). Watched through a
/// slow connection, through the shell and over SFTP.
#[test]
fn the_temp_file_is_private_while_it_is_written() {
    let lab = Lab::new(1);
    let secret = content(12 * 1024 * 1024, 6);
    let src = lab.local_file("secret.bin", &secret);
    for (label, vars) in [
        ("shell", "ansible_ssh_transfer_method=piped ansible_pipelining=false"),
        ("sftp", ""),
    ] {
        // 64 KiB per 5 ms at most: about 12 MB/s, so the file takes a second.
        let proxy = CutProxy::start(upstream(&lab.hosts, 0), u64::MAX, Some(Duration::from_millis(5)));
        let inv = lab.inventory(proxy.port, vars);
        let dest = lab.dest(&format!("secret-{label}"));
        let args = format!("src={src} dest={} mode=0600", dest.display());
        let mut child = lab.spawn_copy(&inv, &args);
        let mut seen: Vec<(String, u64, u32)> = Vec::new();
        let status = loop {
            for t in temps_in(lab.target.path()) {
                // Each temp file once per mode, with the first size seen.
                if t.1 > 0 && !seen.iter().any(|s| s.0 == t.0 && s.2 == t.2) {
                    seen.push(t);
                }
            }
            if let Ok(Some(status)) = child.try_wait() {
                break status;
            }
            std::thread::sleep(Duration::from_millis(1));
        };
        assert!(status.success(), "{label}: rigger failed: {status}");
        assert!(std::fs::read(&dest).unwrap() == secret, "{label}: wrong content");
        assert_eq!(
            std::fs::metadata(&dest).unwrap().permissions().mode() & 0o7777,
            0o600,
            "{label}"
        );
        assert!(
            seen.iter().any(|(_, len, _)| *len < secret.len() as u64),
            "{label}: never saw the temp file mid-transfer"
        );
        let open: Vec<_> = seen.iter().filter(|(_, _, mode)| mode & 0o077 != 0).collect();
        assert!(open.is_empty(), "{label}: temp file readable by others: {open:?}");
    }
}

/// Temp files a killed run left for a destination are removed by the next
/// upload to it, through the shell (rigger's one-round-trip copy with the
/// query, and the persistent shell); another destination's, even one whose
/// name starts the same, are left alone.
#[test]
fn stale_temp_files_of_the_destination_only_are_removed() {
    let lab = Lab::new(1);
    let inv = lab.inventory(
        lab.hosts.port(0),
        "ansible_ssh_transfer_method=piped ansible_pipelining=true",
    );
    let medium = content(200 * 1024, 7);
    let src = lab.local_file("medium.bin", &medium);
    for (name, args) in [
        // Small content: written by the query script itself.
        ("conf", "content=stale-test".to_string()),
        // A 200 KB file: through the persistent shell.
        ("blob", format!("src={src}")),
    ] {
        let dir = lab.target.path();
        let stale_mine = [
            format!(".rigger-tmp-{name}.0123456789abcdef"),
            format!(".rigger-tmp-{name}.fedcba9876543210"),
        ];
        let others = [
            format!(".rigger-tmp-{name}.old.0123456789abcdef"),
            ".rigger-tmp-other.0123456789abcdef".to_string(),
        ];
        for f in stale_mine.iter().chain(&others) {
            std::fs::write(dir.join(f), b"partial").unwrap();
        }
        let out = lab.copy(&inv, "victim", &format!("{args} dest={}", dir.join(name).display()));
        assert_eq!(out.code, Some(0), "{name}: {}\n{}", out.stdout, out.stderr);
        let left: Vec<String> = lab.temps().into_iter().map(|t| t.0).collect();
        let mut want = others.to_vec();
        want.sort();
        assert_eq!(left, want, "{name}");
        for f in others {
            std::fs::remove_file(dir.join(f)).unwrap();
        }
    }
    assert!(
        std::fs::read(lab.dest("blob")).unwrap() == medium,
        "blob: wrong content"
    );
    assert_eq!(std::fs::read_to_string(lab.dest("conf")).unwrap(), "stale-test");
}

/// A directory copy sends a tar of the changed files that `tar -x` reads
/// from the channel: cut in the middle, it extracted the files that arrived
/// and a part of the next one. Now the tar is received whole before
/// anything is extracted: every file is its old or its new content, the
/// host is UNREACHABLE, rigger ends; the next run copies everything.
#[test]
fn a_connection_cut_mid_directory_copy_extracts_nothing_partial() {
    let lab = Lab::new(1);
    let src = lab.local.path().join("tree");
    std::fs::create_dir(&src).unwrap();
    let n_files = 12;
    let olds: Vec<Vec<u8>> = (0..n_files).map(|i| content(64 * 1024, 100 + i)).collect();
    let news: Vec<Vec<u8>> = (0..n_files).map(|i| content(700 * 1024, 200 + i)).collect();
    for (i, new) in news.iter().enumerate() {
        std::fs::write(src.join(format!("f{i:02}")), new).unwrap();
    }
    for (label, vars) in [
        (
            "persistent shell",
            "ansible_ssh_transfer_method=piped ansible_pipelining=true",
        ),
        ("channel", "ansible_ssh_transfer_method=piped ansible_pipelining=false"),
    ] {
        let dest = lab.dest(&format!("tree-{}", label.replace(' ', "-")));
        std::fs::create_dir(&dest).unwrap();
        for (i, old) in olds.iter().enumerate() {
            std::fs::write(dest.join(format!("f{i:02}")), old).unwrap();
        }
        let total: usize = news.iter().map(Vec::len).sum();
        let proxy = CutProxy::start(upstream(&lab.hosts, 0), (total / 2) as u64, None);
        let inv = lab.inventory(proxy.port, vars);
        let args = format!("src={}/ dest={}", src.display(), dest.display());
        let out = lab.copy(&inv, "victim", &args);
        assert!(
            proxy.cut.load(Ordering::SeqCst),
            "{label}: the proxy never cut\n{}",
            out.stdout
        );
        assert_eq!(out.code, Some(4), "{label}: {}\n{}", out.stdout, out.stderr);
        assert!(out.stdout.contains("\"unreachable\""), "{label}: {}", out.stdout);
        // What the host side does after the cut is done within a moment.
        std::thread::sleep(Duration::from_millis(500));
        for i in 0..n_files as usize {
            let f = dest.join(format!("f{i:02}"));
            assert_old_or_new(&f, &olds[i], &news[i]);
        }
        let inv = lab.inventory(lab.hosts.port(0), vars);
        let out = lab.copy(&inv, "victim", &args);
        assert_eq!(out.code, Some(0), "{label}: {}\n{}", out.stdout, out.stderr);
        for i in 0..n_files as usize {
            let f = dest.join(format!("f{i:02}"));
            assert_eq!(assert_old_or_new(&f, &olds[i], &news[i]), "new", "{label}");
        }
    }
}
