//! A private PostgreSQL cluster for tests: `initdb` and `postgres` from
//! Debian's postgresql-15 (scripts/test-deps.sh installs it), data and
//! socket directory in a temp dir, listening on 127.0.0.1 on a free port,
//! run as the `postgres` user when the tests run as root, as a child of
//! the test and stopped when the value is dropped. Password authentication
//! over TCP (scram-sha-256), so the URL carries a password as a real one
//! would.
//!
//! Self-contained (std, libc, tempfile, postgres): tests/it includes this
//! file too.

#![allow(dead_code)]

use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const PASSWORD: &str = "pg-test-Secret-7f3a";

pub struct TestPg {
    child: Option<Child>,
    pub port: u16,
    pub dir: tempfile::TempDir,
    log: PathBuf,
}

/// `initdb`, `postgres`: the newest /usr/lib/postgresql/N/bin, else PATH.
fn bin(name: &str) -> PathBuf {
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let v: u32 = e.file_name().to_str()?.parse().ok()?;
            let p = e.path().join("bin").join(name);
            p.exists().then_some((v, p))
        })
        .collect();
    versions.sort();
    versions.pop().map_or_else(|| PathBuf::from(name), |(_, p)| p)
}

/// (uid, gid) to run PostgreSQL as: `postgres` when we are root (it
/// refuses to run as root).
fn run_as() -> Option<(u32, u32)> {
    // SAFETY: plain libc calls; getpwnam's result is read at once.
    unsafe {
        if libc::geteuid() != 0 {
            return None;
        }
        let pw = libc::getpwnam(c"postgres".as_ptr());
        assert!(
            !pw.is_null(),
            "no `postgres` user: install postgresql (scripts/test-deps.sh)"
        );
        Some(((*pw).pw_uid, (*pw).pw_gid))
    }
}

fn command(program: &Path, ids: Option<(u32, u32)>) -> Command {
    let mut c = Command::new(program);
    if let Some((uid, gid)) = ids {
        // std drops the supplementary groups (setgroups) before setuid.
        c.uid(uid).gid(gid);
    }
    c.env_remove("PGDATA").env("LC_ALL", "C");
    c
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

impl TestPg {
    pub fn start() -> TestPg {
        TestPg::start_with(&[])
    }

    /// A server with TLS on (a certificate for 127.0.0.1 and localhost
    /// signed by a CA made here with openssl); the CA's PEM file.
    pub fn start_tls() -> (TestPg, PathBuf, tempfile::TempDir) {
        let certs = tempfile::tempdir().expect("temp dir");
        let d = certs.path();
        let openssl = |args: &[&str]| {
            let out = Command::new("openssl")
                .args(args)
                .current_dir(d)
                .output()
                .expect("openssl runs");
            assert!(
                out.status.success(),
                "openssl {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        };
        let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"];
        let mut ca = vec!["req", "-x509"];
        ca.extend(ec);
        ca.extend([
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            "-days",
            "2",
            "-subj",
            "/CN=rigger test CA",
        ]);
        openssl(&ca);
        let mut csr = vec!["req"];
        csr.extend(ec);
        csr.extend(["-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=127.0.0.1"]);
        openssl(&csr);
        std::fs::write(d.join("ext"), "subjectAltName=IP:127.0.0.1,DNS:localhost\n").unwrap();
        openssl(&[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "server.pem",
            "-days",
            "2",
            "-extfile",
            "ext",
        ]);
        // PostgreSQL wants its key private and its own.
        let key = d.join("server.key");
        std::fs::set_permissions(&key, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
        if let Some((uid, gid)) = run_as() {
            std::os::unix::fs::chown(d, Some(uid), Some(gid)).unwrap();
            for f in ["server.key", "server.pem"] {
                std::os::unix::fs::chown(d.join(f), Some(uid), Some(gid)).unwrap();
            }
        }
        let args = [
            "-c".to_string(),
            "ssl=on".to_string(),
            "-c".to_string(),
            format!("ssl_cert_file={}", d.join("server.pem").display()),
            "-c".to_string(),
            format!("ssl_key_file={}", key.display()),
        ];
        let pg = TestPg::start_with(&args);
        (pg, d.join("ca.pem"), certs)
    }

    fn start_with(extra: &[String]) -> TestPg {
        let ids = run_as();
        let dir = tempfile::tempdir().expect("temp dir");
        let data = dir.path().join("data");
        let pwfile = dir.path().join("pw");
        std::fs::write(&pwfile, PASSWORD).unwrap();
        if let Some((uid, gid)) = ids {
            for p in [dir.path(), pwfile.as_path()] {
                std::os::unix::fs::chown(p, Some(uid), Some(gid)).unwrap();
            }
        }
        let out = command(&bin("initdb"), ids)
            .arg("-D")
            .arg(&data)
            .args(["-U", "rigger", "-E", "UTF8", "--no-sync", "--auth-local=trust"])
            .args(["--auth-host=scram-sha-256", "--pwfile"])
            .arg(&pwfile)
            .output()
            .expect("initdb runs (install postgresql: scripts/test-deps.sh)");
        assert!(
            out.status.success(),
            "initdb failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let log = dir.path().join("postgres.log");
        let logf = std::fs::File::create(&log).unwrap();
        if let Some((uid, gid)) = ids {
            std::os::unix::fs::chown(&log, Some(uid), Some(gid)).unwrap();
        }
        let port = free_port();
        let child = command(&bin("postgres"), ids)
            .arg("-D")
            .arg(&data)
            .arg("-k")
            .arg(dir.path())
            .args(["-h", "127.0.0.1", "-p", &port.to_string()])
            .args([
                "-c",
                "fsync=off",
                "-c",
                "full_page_writes=off",
                "-c",
                "max_connections=50",
            ])
            .args(extra)
            .stdin(Stdio::null())
            .stdout(logf.try_clone().unwrap())
            .stderr(logf)
            .spawn()
            .expect("postgres starts");
        let mut pg = TestPg {
            child: Some(child),
            port,
            dir,
            log,
        };
        pg.wait_ready();
        pg
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if postgres::Client::connect(&self.url("postgres"), postgres::NoTls).is_ok() {
                return;
            }
            if let Some(Ok(Some(status))) = self.child.as_mut().map(Child::try_wait) {
                panic!("postgres exited ({status}): {}", self.log_text());
            }
            assert!(
                Instant::now() < deadline,
                "postgres not ready in 60 s: {}",
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The URL of database `db` (with the password).
    pub fn url(&self, db: &str) -> String {
        format!("postgres://rigger:{PASSWORD}@127.0.0.1:{}/{db}", self.port)
    }

    /// A new empty database; its URL.
    pub fn create_db(&self, name: &str) -> String {
        let mut c = postgres::Client::connect(&self.url("postgres"), postgres::NoTls).expect("connect");
        c.batch_execute(&format!("CREATE DATABASE {name}"))
            .expect("create database");
        self.url(name)
    }

    /// Stop now (fast shutdown) and wait for it.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            // SIGINT: PostgreSQL's fast shutdown.
            // SAFETY: a signal to our own child, by its pid.
            unsafe {
                libc::kill(c.id() as libc::pid_t, libc::SIGINT);
            }
            let deadline = Instant::now() + Duration::from_secs(20);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = c.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for TestPg {
    fn drop(&mut self) {
        self.stop();
    }
}
