//! The SSH transport against real OpenSSH servers started by the test.
//!
//! Each test starts its own `sshd -D` on 127.0.0.1 with a random port, its own
//! host key and authorized_keys in a temp dir; the server is killed on drop.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use rigger::connection::ssh::SshConnection;
use rigger::connection::ssh_config::{apply_ssh_config, ExplicitFields};
use rigger::connection::{
    exec, fetch, put_bytes, put_file, ConnError, Connection, ExecRequest, FileAttrs, HostKeyChecking, ProcEvent,
    SshTarget,
};

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// A private OpenSSH server.
struct Sshd {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
    /// `ssh-ed25519 AAAA...` of the host key.
    host_key: String,
}

impl Sshd {
    fn start() -> Sshd {
        Sshd::start_with("")
    }

    fn start_with(extra_config: &str) -> Sshd {
        let _ = std::fs::create_dir_all("/run/sshd");
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let host_key_path = d.join("host_ed25519");
        run(Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-f"])
            .arg(&host_key_path));
        let host_key = std::fs::read_to_string(d.join("host_ed25519.pub")).unwrap();
        let host_key = host_key.split_whitespace().take(2).collect::<Vec<_>>().join(" ");
        std::fs::write(d.join("authorized_keys"), "").unwrap();
        std::fs::create_dir_all(d.join("home")).unwrap();
        for _ in 0..5 {
            let port = free_port();
            let config = format!(
                "Port {port}\nListenAddress 127.0.0.1\nHostKey {hk}\nPidFile none\nUsePAM no\nStrictModes no\n\
                 PermitRootLogin yes\nAuthorizedKeysFile {ak}\nPasswordAuthentication yes\n\
                 KbdInteractiveAuthentication no\nSetEnv HOME={home}\nMaxSessions 100\nMaxStartups 100:30:200\n\
                 AllowTcpForwarding yes\nLogLevel ERROR\n{extra_config}\n",
                hk = host_key_path.display(),
                ak = d.join("authorized_keys").display(),
                home = d.join("home").display(),
            );
            let conf = d.join("sshd_config");
            std::fs::write(&conf, config).unwrap();
            let log = std::fs::File::create(d.join("sshd.log")).unwrap();
            let mut child = Command::new("/usr/sbin/sshd")
                .arg("-D")
                .arg("-e")
                .arg("-f")
                .arg(&conf)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .expect("start sshd");
            for _ in 0..100 {
                if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                    return Sshd {
                        child,
                        port,
                        dir,
                        host_key,
                    };
                }
                if let Ok(Some(_)) = child.try_wait() {
                    break; // port taken meanwhile: retry with another
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        panic!(
            "sshd did not start: {}",
            std::fs::read_to_string(dir.path().join("sshd.log")).unwrap_or_default()
        );
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Make a client key of `kind` (ed25519, rsa, ecdsa), authorize it and return its path.
    fn authorized_key(&self, kind: &str, passphrase: &str) -> PathBuf {
        let p = self.path(&format!("id_{kind}_{}", rand_suffix()));
        let mut cmd = Command::new("ssh-keygen");
        cmd.args(["-q", "-t", kind, "-N", passphrase, "-f"]).arg(&p);
        if kind == "rsa" {
            cmd.args(["-b", "2048"]);
        }
        run(&mut cmd);
        let pubkey = std::fs::read_to_string(p.with_extension("pub")).unwrap();
        let mut ak = std::fs::read_to_string(self.path("authorized_keys")).unwrap();
        ak.push_str(&pubkey);
        std::fs::write(self.path("authorized_keys"), ak).unwrap();
        p
    }

    /// A known_hosts line for this server.
    fn known_line(&self) -> String {
        format!("[127.0.0.1]:{} {}\n", self.port, self.host_key)
    }

    fn known_hosts(&self) -> PathBuf {
        let p = self.path("known_hosts");
        if !p.exists() {
            std::fs::write(&p, self.known_line()).unwrap();
        }
        p
    }

    fn target(&self, key: &Path) -> SshTarget {
        let mut t = SshTarget::new("testhost", "127.0.0.1");
        t.port = self.port;
        t.user = "root".into();
        t.identity_files = vec![key.to_path_buf()];
        t.use_agent = false;
        t.known_hosts = vec![self.known_hosts()];
        t.host_key_checking = HostKeyChecking::Strict;
        t.connect_timeout = Duration::from_secs(10);
        t
    }

    /// Kill the per-connection sshd processes (children of the listener),
    /// which drops every open connection.
    fn kill_sessions(&self) {
        let _ = Command::new("pkill")
            .args(["-KILL", "-P", &self.child.id().to_string()])
            .status();
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        self.kill_sessions();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn rand_suffix() -> String {
    format!("{:08x}", rand::random::<u32>())
}

async fn connect(t: &SshTarget) -> SshConnection {
    match SshConnection::connect(t).await {
        Ok(c) => c,
        Err(e) => panic!("connect failed: {e}"),
    }
}

async fn sh(conn: &SshConnection, cmd: &str) -> (i32, String, String) {
    let out = exec(conn, &ExecRequest::new(cmd)).await.unwrap();
    (out.status, out.stdout_str(), out.stderr_str())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exec_streams_status_and_stdin() {
    let sshd = Sshd::start();
    let key = sshd.authorized_key("ed25519", "");
    let conn = connect(&sshd.target(&key)).await;
    assert_eq!(conn.host(), "testhost");

    assert_eq!(
        sh(&conn, "echo hi; echo err >&2; exit 3").await,
        (3, "hi\n".to_string(), "err\n".to_string())
    );
    assert_eq!(
        sh(&conn, "echo $HOME").await.1.trim(),
        sshd.path("home").display().to_string()
    );
    // Killed by a signal: 128+N, as a shell reports it.
    assert_eq!(sh(&conn, "kill -KILL $$").await.0, 137);

    let mut req = ExecRequest::new("cat; echo done >&2");
    req.stdin = Some(b"piped input".to_vec());
    req.env = vec![("GREETING".into(), "a b".into())];
    let out = exec(&conn, &req).await.unwrap();
    assert_eq!(out.stdout, b"piped input");
    assert_eq!(out.stderr_str(), "done\n");

    // Several MB through stdin and back out, written before anything is read:
    // the output must not stall the connection.
    let big: Vec<u8> = (0..6 * 1024 * 1024u32).map(|i| (i % 251) as u8).collect();
    let mut req = ExecRequest::new("cat");
    req.stdin = Some(big.clone());
    let out = exec(&conn, &req).await.unwrap();
    assert_eq!(out.stdout.len(), big.len());
    assert!(out.stdout == big);

    // Env via the streamed API; stdin EOF ends `wc`.
    let mut p = conn.spawn("wc -c", false).await.unwrap();
    p.write_stdin(b"12345").await.unwrap();
    p.close_stdin().await.unwrap();
    let mut stdout = Vec::new();
    let mut status = None;
    while let Some(ev) = p.next_event().await.unwrap() {
        match ev {
            ProcEvent::Stdout(d) => stdout.extend(d),
            ProcEvent::Stderr(_) => {}
            ProcEvent::Exit(c) => status = Some(c),
        }
    }
    assert_eq!(String::from_utf8_lossy(&stdout).trim(), "5");
    assert_eq!(status, Some(0));

    // A terminal when asked for one.
    let mut p = conn.spawn("tty", true).await.unwrap();
    p.close_stdin().await.unwrap();
    let mut out = Vec::new();
    while let Some(ev) = p.next_event().await.unwrap() {
        if let ProcEvent::Stdout(d) = ev {
            out.extend(d);
        }
    }
    assert!(String::from_utf8_lossy(&out).starts_with("/dev/pts/"), "{out:?}");
    assert_eq!(sh(&conn, "tty").await.0, 1, "no terminal unless asked");
    conn.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_concurrent_channels_share_one_connection() {
    let sshd = Sshd::start();
    let key = sshd.authorized_key("ed25519", "");
    let conn = Arc::new(connect(&sshd.target(&key)).await);
    let mut tasks = Vec::new();
    for i in 0..20 {
        let c = conn.clone();
        tasks.push(tokio::spawn(async move {
            let out = exec(&*c, &ExecRequest::new(format!("sleep 0.3; echo $PPID {i}")))
                .await
                .unwrap();
            (i, out)
        }));
    }
    for t in tasks {
        let (i, out) = t.await.unwrap();
        assert_eq!(out.status, 0);
        assert!(
            out.stdout_str().trim().ends_with(&format!(" {i}")),
            "{}",
            out.stdout_str()
        );
    }
    // All commands ran over one TCP connection: the listener forked one
    // session process for it.
    let children = Command::new("pgrep")
        .args(["-P", &sshd.child.id().to_string()])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&children.stdout).lines().count(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upload_and_download_keep_mode_and_owner() {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let sshd = Sshd::start();
    let key = sshd.authorized_key("ed25519", "");
    let conn = connect(&sshd.target(&key)).await;
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("a.conf");
    let dest_s = dest.to_str().unwrap();
    let attrs = FileAttrs {
        mode: Some(0o640),
        owner: Some("nobody".into()),
        group: None,
    };
    put_bytes(&conn, b"hello\n", dest_s, &attrs, None).await.unwrap();
    let meta = std::fs::metadata(&dest).unwrap();
    assert_eq!(meta.permissions().mode() & 0o777, 0o640);
    let nobody_uid: u32 = run(Command::new("id").args(["-u", "nobody"])).trim().parse().unwrap();
    assert_eq!(meta.uid(), nobody_uid);
    assert_eq!(fetch(&conn, dest_s, None).await.unwrap(), b"hello\n");

    // A bigger file streamed from disk replaces it, keeping mode and owner.
    let local = dir.path().join("local.bin");
    let data: Vec<u8> = (0..3 * 1024 * 1024u32).map(|i| (i * 7 % 256) as u8).collect();
    std::fs::write(&local, &data).unwrap();
    put_file(&conn, &local, dest_s, &FileAttrs::default(), None)
        .await
        .unwrap();
    let meta = std::fs::metadata(&dest).unwrap();
    assert_eq!(meta.permissions().mode() & 0o777, 0o640);
    assert_eq!(meta.uid(), nobody_uid);
    assert!(fetch(&conn, dest_s, None).await.unwrap() == data);

    let err = fetch(&conn, "/nonexistent/file", None).await.unwrap_err();
    assert!(err.to_string().contains("/nonexistent/file"), "{err}");
}

/// Like `authorized_key("ecdsa", ..)`, but a P-256 key whose private scalar
/// is below 2^248: OpenSSH stores it as a 31-byte mpint. One
/// `ssh-keygen -t ecdsa` key in 256 is like this (CI hit one). The scalar is
/// chosen, openssl derives the public point, ssh-keygen writes the file in
/// its own format.
fn short_scalar_ecdsa_key(sshd: &Sshd, passphrase: &str) -> PathBuf {
    let p = sshd.path(&format!("id_short_ecdsa_{}", rand_suffix()));
    // 0x00 then a byte in 0x01..=0x7f: the mpint is 31 bytes (a top byte
    // from 0x80 up would take a sign byte and make it 32 again).
    let mut scalar = [0u8; 32];
    scalar[1..].copy_from_slice(&rand::random::<[u8; 31]>());
    scalar[1] = 1 + scalar[1] % 0x7f;
    // SEC1 ECPrivateKey { version 1, privateKey, [0] prime256v1 }, no public key.
    let mut der = vec![0x30, 0x31, 0x02, 0x01, 0x01, 0x04, 0x20];
    der.extend_from_slice(&scalar);
    der.extend_from_slice(&[0xa0, 0x0a, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07]);
    let der_path = p.with_extension("der");
    std::fs::write(&der_path, der).unwrap();
    run(Command::new("openssl")
        .args(["ec", "-inform", "DER", "-in"])
        .arg(&der_path)
        .arg("-out")
        .arg(&p));
    std::fs::set_permissions(&p, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    run(Command::new("ssh-keygen")
        .args(["-q", "-p", "-P", "", "-N", passphrase, "-f"])
        .arg(&p));
    let pubkey = run(Command::new("ssh-keygen").args(["-y", "-P", passphrase, "-f"]).arg(&p));
    let mut ak = std::fs::read_to_string(sshd.path("authorized_keys")).unwrap();
    ak.push_str(&pubkey);
    std::fs::write(sshd.path("authorized_keys"), ak).unwrap();
    p
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ecdsa_key_with_a_short_private_scalar() {
    let sshd = Sshd::start();
    for passphrase in ["", "s3cret pass"] {
        let key = short_scalar_ecdsa_key(&sshd, passphrase);
        let text = std::fs::read_to_string(&key).unwrap();
        assert!(text.starts_with("-----BEGIN OPENSSH PRIVATE KEY-----"), "{text}");
        // The key is the kind the ssh-key crate itself cannot read.
        let plain = russh::keys::decode_secret_key(&text, Some(passphrase).filter(|p| !p.is_empty()));
        assert!(
            plain.is_err(),
            "ssh-key read a short-scalar key: the repair is no longer needed\n{text}"
        );
        let mut t = sshd.target(&key);
        if !passphrase.is_empty() {
            t.key_passphrase = Some(passphrase.into());
        }
        let conn = connect(&t).await;
        assert_eq!(sh(&conn, "echo ok").await.1, "ok\n", "passphrase {passphrase:?}");
        if !passphrase.is_empty() {
            t.key_passphrase = Some("wrong".into());
            match SshConnection::connect(&t).await {
                Err(ConnError::Key { reason, .. }) => assert!(reason.contains("wrong passphrase"), "{reason}"),
                Err(e) => panic!("unexpected error {e}"),
                Ok(_) => panic!("connected with a wrong passphrase"),
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_types_and_passphrases() {
    let sshd = Sshd::start();
    for kind in ["rsa", "ecdsa", "ed25519"] {
        let key = sshd.authorized_key(kind, "");
        let conn = connect(&sshd.target(&key)).await;
        assert_eq!(sh(&conn, "echo ok").await.1, "ok\n", "{kind}");
    }

    let enc = sshd.authorized_key("ed25519", "s3cret pass");
    let mut t = sshd.target(&enc);
    t.key_passphrase = Some("s3cret pass".into());
    let conn = connect(&t).await;
    assert_eq!(sh(&conn, "echo ok").await.1, "ok\n");

    t.key_passphrase = Some("wrong".into());
    match SshConnection::connect(&t).await {
        Err(ConnError::Key { path, reason }) => {
            assert_eq!(path, enc.display().to_string());
            assert!(reason.contains("wrong passphrase"), "{reason}");
        }
        Err(e) => panic!("unexpected error {e}"),
        Ok(_) => panic!("connected with a wrong passphrase"),
    }
    t.key_passphrase = None;
    match SshConnection::connect(&t).await {
        Err(ConnError::Key { reason, .. }) => assert!(reason.contains("encrypted"), "{reason}"),
        Err(e) => panic!("unexpected error {e}"),
        Ok(_) => panic!("connected without the passphrase"),
    }

    let missing = sshd.path("no_such_key");
    match SshConnection::connect(&sshd.target(&missing)).await {
        Err(e @ ConnError::Key { .. }) => assert!(e.to_string().contains("no_such_key"), "{e}"),
        Err(e) => panic!("unexpected error {e}"),
        Ok(_) => panic!("connected with a missing key"),
    }

    // A valid key the server does not know: an auth error listing what was tried.
    let stranger = sshd.path("stranger");
    run(Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(&stranger));
    match SshConnection::connect(&sshd.target(&stranger)).await {
        Err(e @ ConnError::Auth { .. }) => {
            let msg = e.to_string();
            assert!(msg.contains("root@127.0.0.1:"), "{msg}");
            assert!(msg.contains(&format!("key {}", stranger.display())), "{msg}");
            assert!(msg.contains("publickey"), "{msg}");
        }
        Err(e) => panic!("unexpected error {e}"),
        Ok(_) => panic!("connected with an unauthorized key"),
    }
}

struct Agent {
    child: Child,
    sock: PathBuf,
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_authentication() {
    let sshd = Sshd::start();
    let key = sshd.authorized_key("rsa", "");
    let sock = sshd.path("agent.sock");
    let child = Command::new("ssh-agent")
        .arg("-D")
        .arg("-a")
        .arg(&sock)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let agent = Agent { child, sock };
    for _ in 0..100 {
        if agent.sock.exists() {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    run(Command::new("ssh-add").arg(&key).env("SSH_AUTH_SOCK", &agent.sock));
    // Only this test uses the agent; every other target has use_agent = false.
    std::env::set_var("SSH_AUTH_SOCK", &agent.sock);

    let mut t = sshd.target(&key);
    // An identity the server rejects first, so the agent has to do the work.
    let stranger = sshd.path("stranger");
    run(Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(&stranger));
    t.identity_files = vec![stranger];
    t.use_agent = true;
    let conn = connect(&t).await;
    assert_eq!(sh(&conn, "echo agent").await.1, "agent\n");

    t.use_agent = false;
    let err = SshConnection::connect(&t)
        .await
        .err()
        .expect("must fail without the agent");
    assert!(matches!(err, ConnError::Auth { .. }), "{err}");
}

/// A throwaway local user with a password, removed on drop.
struct TempUser(String);

impl Drop for TempUser {
    fn drop(&mut self) {
        let _ = Command::new("userdel").args(["-r", &self.0]).output();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn password_authentication() {
    let sshd = Sshd::start();
    let name = format!("rgt{}", &rand_suffix()[..6]);
    let home = sshd.path("userhome");
    run(Command::new("useradd")
        .args(["-m", "-s", "/bin/sh", "-d"])
        .arg(&home)
        .arg(&name));
    let user = TempUser(name.clone());
    let mut chpasswd = Command::new("chpasswd").stdin(Stdio::piped()).spawn().unwrap();
    {
        use std::io::Write;
        let mut stdin = chpasswd.stdin.take().unwrap();
        writeln!(stdin, "{name}:Corr3ct-horse").unwrap();
    }
    assert!(chpasswd.wait().unwrap().success());

    let mut t = sshd.target(Path::new("/unused"));
    t.identity_files.clear();
    t.user = user.0.clone();
    t.password = Some("Corr3ct-horse".into());
    // No identity files: the defaults under $HOME/.ssh are tried if they exist,
    // then the password.
    let conn = connect(&t).await;
    assert_eq!(sh(&conn, "id -un").await.1.trim(), name);

    t.password = Some("wrong".into());
    match SshConnection::connect(&t).await {
        Err(e @ ConnError::Auth { .. }) => assert!(e.to_string().contains("password"), "{e}"),
        Err(e) => panic!("unexpected error {e}"),
        Ok(_) => panic!("logged in with a wrong password"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn host_key_checking_modes() {
    let sshd = Sshd::start();
    let key = sshd.authorized_key("ed25519", "");
    let dir = tempfile::tempdir().unwrap();

    // Strict, unknown host: refused with the command that fixes it.
    let kh = dir.path().join("new/sub/known_hosts");
    let mut t = sshd.target(&key);
    t.known_hosts = vec![kh.clone()];
    let err = SshConnection::connect(&t).await.err().expect("unknown host must fail");
    let msg = err.to_string();
    assert!(matches!(err, ConnError::HostKey(_)), "{msg}");
    assert!(
        msg.contains(&format!("ssh-keyscan -p {} 127.0.0.1 >> {}", sshd.port, kh.display())),
        "{msg}"
    );
    assert!(msg.contains("accept-new"), "{msg}");
    assert!(!kh.exists());

    // accept-new learns the key (creating the directories), then enforces it.
    t.host_key_checking = HostKeyChecking::AcceptNew;
    let conn = connect(&t).await;
    assert_eq!(sh(&conn, "echo in").await.1, "in\n");
    assert_eq!(std::fs::read_to_string(&kh).unwrap(), sshd.known_line());
    t.host_key_checking = HostKeyChecking::Strict;
    connect(&t).await;

    // A changed key is always an error naming file and line.
    let other = Sshd::start();
    let changed = dir.path().join("changed_known_hosts");
    std::fs::write(
        &changed,
        format!(
            "# header\nexample.org {}\n[127.0.0.1]:{} {}\n",
            sshd.host_key, sshd.port, other.host_key
        ),
    )
    .unwrap();
    for mode in [HostKeyChecking::Strict, HostKeyChecking::AcceptNew] {
        t.known_hosts = vec![changed.clone()];
        t.host_key_checking = mode;
        let err = SshConnection::connect(&t).await.err().expect("changed key must fail");
        let msg = err.to_string();
        assert!(matches!(err, ConnError::HostKey(_)), "{msg}");
        assert!(
            msg.contains(&format!("Offending ED25519 key in {}:3", changed.display())),
            "{msg}"
        );
    }
    // Off connects anyway (with a warning on stderr).
    t.host_key_checking = HostKeyChecking::Off;
    connect(&t).await;

    // Hashed entries (ssh-keygen -H) match.
    let hashed = dir.path().join("hashed");
    std::fs::write(&hashed, format!("{}{}", other.known_line(), sshd.known_line())).unwrap();
    run(Command::new("ssh-keygen").arg("-H").arg("-f").arg(&hashed));
    let text = std::fs::read_to_string(&hashed).unwrap();
    assert!(text.starts_with("|1|") && !text.contains("127.0.0.1"), "{text}");
    t.known_hosts = vec![hashed];
    t.host_key_checking = HostKeyChecking::Strict;
    connect(&t).await;

    // The port matters: the key recorded for plain 127.0.0.1 (port 22) does not count.
    let plain = dir.path().join("plain");
    std::fs::write(&plain, format!("127.0.0.1 {}\n", sshd.host_key)).unwrap();
    t.known_hosts = vec![plain];
    assert!(matches!(SshConnection::connect(&t).await, Err(ConnError::HostKey(_))));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jump_host() {
    let bastion = Sshd::start();
    let inner = Sshd::start();
    let bkey = bastion.authorized_key("ed25519", "");
    let ikey = inner.authorized_key("ecdsa", "");
    let dir = tempfile::tempdir().unwrap();
    let kh = dir.path().join("known_hosts");
    std::fs::write(&kh, format!("{}{}", bastion.known_line(), inner.known_line())).unwrap();

    let mut hop = bastion.target(&bkey);
    hop.name = "bastion".into();
    hop.known_hosts = vec![kh.clone()];
    let mut t = inner.target(&ikey);
    t.known_hosts = vec![kh.clone()];
    t.jump_hosts = vec![hop.clone()];
    let conn = connect(&t).await;
    // The inner server sees the connection coming from the bastion, which
    // runs on the same machine; its session has the inner server's HOME.
    assert_eq!(
        sh(&conn, "echo $HOME").await.1.trim(),
        inner.path("home").display().to_string()
    );
    let outs = futures::future::join_all((0..5).map(|i| {
        let conn = &conn;
        async move { sh(conn, &format!("echo {i}")).await.1 }
    }))
    .await;
    assert_eq!(outs, vec!["0\n", "1\n", "2\n", "3\n", "4\n"]);

    // Every hop's key is checked: an unknown inner host fails even though the
    // bastion is known.
    std::fs::write(&kh, bastion.known_line()).unwrap();
    let err = SshConnection::connect(&t).await.err().expect("unknown inner host");
    assert!(
        err.to_string().contains(&format!("[127.0.0.1]:{}", inner.port)),
        "{err}"
    );
    // ... and an unknown bastion fails too.
    std::fs::write(&kh, inner.known_line()).unwrap();
    let err = SshConnection::connect(&t).await.err().expect("unknown bastion");
    assert!(
        err.to_string().contains(&format!("[127.0.0.1]:{}", bastion.port)),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ssh_config_alias_and_proxy_jump() {
    let bastion = Sshd::start();
    let inner = Sshd::start();
    let bkey = bastion.authorized_key("ed25519", "");
    let ikey = inner.authorized_key("ed25519", "");
    let dir = tempfile::tempdir().unwrap();
    let kh = dir.path().join("known_hosts");
    std::fs::write(&kh, format!("{}{}", bastion.known_line(), inner.known_line())).unwrap();
    let cfg = dir.path().join("config");
    std::fs::write(
        &cfg,
        format!(
            "Host jump\n  HostName 127.0.0.1\n  Port {}\n  User root\n  IdentityFile {}\n\n\
             Host app\n  HostName 127.0.0.1\n  Port {}\n  ProxyJump jump\n  IdentityFile {}\n\n\
             Host *\n  User nobody\n  UserKnownHostsFile {}\n  StrictHostKeyChecking yes\n  ConnectTimeout 5\n",
            bastion.port,
            bkey.display(),
            inner.port,
            ikey.display(),
            kh.display()
        ),
    )
    .unwrap();
    let mut t = SshTarget::new("app", "app");
    t.user = "root".into();
    t.use_agent = false;
    let explicit = ExplicitFields {
        user: true,
        ..Default::default()
    };
    apply_ssh_config(&mut t, &cfg, &explicit).unwrap();
    assert_eq!(
        (t.address.as_str(), t.port, t.user.as_str()),
        ("127.0.0.1", inner.port, "root")
    );
    assert_eq!(t.jump_hosts.len(), 1);
    assert_eq!(t.jump_hosts[0].port, bastion.port);
    t.jump_hosts[0].use_agent = false;
    let conn = connect(&t).await;
    assert_eq!(sh(&conn, "echo via-config").await.1, "via-config\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_connection_mid_command_is_an_error() {
    let sshd = Sshd::start();
    let key = sshd.authorized_key("ed25519", "");
    let conn = connect(&sshd.target(&key)).await;
    let mut p = conn.spawn("echo started; sleep 30", false).await.unwrap();
    p.close_stdin().await.unwrap();
    match p.next_event().await {
        Ok(Some(ProcEvent::Stdout(d))) => assert_eq!(d, b"started\n"),
        other => panic!("unexpected {other:?}"),
    }
    sshd.kill_sessions();
    let res = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match p.next_event().await {
                Ok(Some(_)) => continue,
                other => return other,
            }
        }
    })
    .await
    .expect("next_event must not hang after the connection dropped");
    match res {
        Err(ConnError::Dropped(msg)) => assert!(msg.contains("testhost"), "{msg}"),
        other => panic!("expected Dropped, got {other:?}"),
    }
    // Later commands fail cleanly too.
    let err = match conn.spawn("true", false).await {
        Err(e) => e,
        Ok(mut p) => p.next_event().await.expect_err("a dead connection cannot run commands"),
    };
    assert!(err.is_unreachable(), "{err}");
    assert!(conn.is_closed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_timeout_and_refused() {
    // A listener that never answers: the SSH banner never comes.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port();
    let mut t = SshTarget::new("slow", "127.0.0.1");
    t.port = port;
    t.use_agent = false;
    t.connect_timeout = Duration::from_secs(1);
    match SshConnection::connect(&t).await {
        Err(ConnError::Timeout { addr, secs }) => {
            assert_eq!(addr, format!("127.0.0.1:{port}"));
            assert_eq!(secs, 1);
        }
        Err(e) => panic!("unexpected error {e}"),
        Ok(_) => panic!("connected to a silent port"),
    }
    drop(silent);

    let closed = free_port();
    t.port = closed;
    match SshConnection::connect(&t).await {
        Err(e @ ConnError::Connect { .. }) => {
            let msg = e.to_string();
            assert!(msg.contains(&format!("127.0.0.1:{closed}")), "{msg}");
            assert!(msg.to_lowercase().contains("refused"), "{msg}");
        }
        Err(e) => panic!("unexpected error {e}"),
        Ok(_) => panic!("connected to a closed port"),
    }
}

/// With pipelining, commands go through one persistent shell and behave as on
/// a fresh channel: status, stdout/stderr apart, binary stdin, `$$`, `exit`,
/// `cd` and variables not leaking into the next command; a killed shell is
/// replaced.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipelined_commands_behave_like_fresh_channels() {
    let sshd = Sshd::start();
    let key = sshd.authorized_key("ed25519", "");
    let mut t = sshd.target(&key);
    t.pipelining = true;
    let conn = connect(&t).await;
    assert!(conn.pipelining());
    assert_eq!(
        sh(&conn, "echo hi; printf 'no newline'; echo err >&2; exit 3").await,
        (3, "hi\nno newline".to_string(), "err\n".to_string())
    );
    let start_dir = sh(&conn, "pwd").await.1;
    assert_ne!(start_dir, "/tmp\n");
    assert_eq!(sh(&conn, "cd /tmp; X=1; pwd").await.1, "/tmp\n");
    assert_eq!(sh(&conn, "pwd; echo \"[$X]\"").await.1, format!("{start_dir}[]\n"));
    // Newlines and quotes in the command text.
    assert_eq!(sh(&conn, "printf '%s\\n' 'a\nb' \"it's\"").await.1, "a\nb\nit's\n");
    assert_eq!(sh(&conn, "kill -KILL $$").await.0, 137);
    let mut req = ExecRequest::new("cat; echo \"$GREETING\" >&2");
    let bin: Vec<u8> = (0..300_000u32).map(|i| (i % 256) as u8).collect();
    req.stdin = Some(bin.clone());
    req.env = vec![("GREETING".into(), "a b".into())];
    let out = exec(&conn, &req).await.unwrap();
    assert!(out.stdout == bin, "binary stdin/stdout round trip");
    assert_eq!(out.stderr_str(), "a b\n");
    // A command without stdin sees EOF at once.
    assert_eq!(sh(&conn, "cat; echo end").await.1, "end\n");
    // Killing the persistent shell fails that command; the next one gets a new shell.
    let r = exec(&conn, &ExecRequest::new("kill -KILL $PPID; sleep 1")).await;
    assert!(r.is_err(), "{r:?}");
    assert_eq!(sh(&conn, "echo again").await.1, "again\n");
    // Two persistent shells (the killed one and its replacement), one channel
    // each; every other command ran in them.
    assert_eq!(conn.channels_opened(), 2, "{}", conn.channels_opened());
    // rigger's own scripts (`subshell_ok`) run in a subshell of the
    // persistent shell: no new shell program, so `$$` is the loop's (the
    // same for two scripts), while a user command gets its own; `exit`, `cd`
    // and variables stay inside the subshell, binary stdin still arrives.
    let internal = |cmd: &str| {
        let mut r = ExecRequest::new(cmd);
        r.subshell_ok = true;
        r
    };
    let opened = conn.channels_opened();
    let pid1 = exec(&conn, &internal("echo $$")).await.unwrap().stdout_str();
    let pid2 = exec(&conn, &internal("cd /tmp; Y=2; echo $$; exit 4")).await.unwrap();
    assert_eq!((pid2.status, pid2.stdout_str()), (4, pid1.clone()));
    assert_eq!(
        exec(&conn, &internal("pwd; echo \"[$Y]\"")).await.unwrap().stdout_str(),
        format!("{start_dir}[]\n")
    );
    assert_ne!(sh(&conn, "echo $$").await.1, pid1, "a user command has its own shell");
    let mut req = internal("cat | od -An -tx1 | tr -d ' \\n'");
    req.stdin = Some(vec![0, 255, 10]);
    assert_eq!(exec(&conn, &req).await.unwrap().stdout_str(), "00ff0a");
    assert_eq!(conn.channels_opened(), opened, "all in the same persistent shell");
    // A timed-out command gives the shell up; the next command still works.
    let mut req = ExecRequest::new("sleep 5");
    req.timeout = Some(Duration::from_millis(300));
    assert!(matches!(exec(&conn, &req).await, Err(ConnError::CommandTimeout(_))));
    assert_eq!(sh(&conn, "echo after").await.1, "after\n");
    conn.close().await;
}
