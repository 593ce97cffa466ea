//! `rigger watch` against real sshd test hosts, a real SMTP server
//! (aiosmtpd, Maildir) and a real HTTP webhook receiver on loopback.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;

use crate::support::{procs, rigger, rigger_bin, HostOpts, TestHosts};

const SECRET: &str = "s3cret-shared";

/// One request received by the webhook receiver.
#[derive(Debug, Clone)]
pub(crate) struct Hook {
    pub(crate) signature: String,
    pub(crate) body: Vec<u8>,
    pub(crate) json: Value,
    /// When the request arrived.
    at: Instant,
}

/// An HTTP server on 127.0.0.1 recording every POST.
pub(crate) struct Receiver {
    port: u16,
    got: Arc<Mutex<Vec<Hook>>>,
}

impl Receiver {
    pub(crate) fn start() -> Receiver {
        Receiver::answering("200 OK")
    }

    /// A receiver that answers every request with `status` (`"503 Service Unavailable"`).
    fn answering(status: &'static str) -> Receiver {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let got = Arc::new(Mutex::new(Vec::new()));
        let g = got.clone();
        std::thread::spawn(move || {
            for s in l.incoming().flatten() {
                let _ = handle(s, &g, status);
            }
        });
        Receiver { port, got }
    }

    pub(crate) fn url(&self) -> String {
        format!("http://127.0.0.1:{}/hook", self.port)
    }

    pub(crate) fn hooks(&self) -> Vec<Hook> {
        self.got.lock().unwrap().clone()
    }

    /// Hooks whose body has an alert named `name` with `status`.
    pub(crate) fn matching(&self, name: &str, status: &str) -> Vec<Hook> {
        self.hooks()
            .into_iter()
            .filter(|h| {
                h.json["alerts"].as_array().is_some_and(|a| {
                    a.iter()
                        .any(|x| x["labels"]["alertname"] == name && x["status"] == status)
                })
            })
            .collect()
    }
}

fn handle(s: TcpStream, got: &Arc<Mutex<Vec<Hook>>>, status: &str) -> std::io::Result<()> {
    let mut r = BufReader::new(s.try_clone()?);
    let mut len = 0usize;
    let mut sig = String::new();
    loop {
        let mut line = String::new();
        r.read_line(&mut line)?;
        let l = line.trim_end();
        if l.is_empty() {
            break;
        }
        let lower = l.to_ascii_lowercase();
        if let Some(v) = lower.strip_prefix("content-length:") {
            len = v.trim().parse().unwrap_or(0);
        }
        if lower.starts_with("x-rigger-signature:") {
            sig = l["x-rigger-signature:".len()..].trim().to_string();
        }
    }
    let mut body = vec![0u8; len];
    r.read_exact(&mut body)?;
    let json = serde_json::from_slice(&body).unwrap_or(Value::Null);
    got.lock().unwrap().push(Hook {
        signature: sig,
        body,
        json,
        at: Instant::now(),
    });
    let mut s = s;
    write!(s, "HTTP/1.1 {status}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
}

/// `t=<unix>,v1=<hex HMAC-SHA256 of "<t>.<body>">`, verified as a receiver
/// should: the MAC over the time and the body, and a time within 5 minutes
/// of now (a captured request cannot be replayed later).
fn valid_signature(h: &Hook) -> bool {
    let Some((t, v1)) = h.signature.strip_prefix("t=").and_then(|r| r.split_once(",v1=")) else {
        return false;
    };
    let Ok(ts) = t.parse::<u64>() else { return false };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    if now.abs_diff(ts) > 300 {
        return false;
    }
    let mut mac = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(t.as_bytes());
    mac.update(b".");
    mac.update(&h.body);
    let want: String = mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect();
    v1 == want
}

pub(crate) fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// aiosmtpd writing every message into a Maildir.
pub(crate) struct Smtp {
    child: Child,
    dir: PathBuf,
}

impl Smtp {
    pub(crate) fn start(port: u16, dir: &Path) -> Smtp {
        let child = Command::new("/usr/bin/python3")
            .args([
                "-m",
                "aiosmtpd",
                "-n",
                "-l",
                &format!("127.0.0.1:{port}"),
                "-c",
                "aiosmtpd.handlers.Mailbox",
            ])
            .arg(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("python3 -m aiosmtpd (install python3-aiosmtpd: scripts/test-deps.sh)");
        wait_for(Duration::from_secs(20), "the SMTP server to listen", || {
            TcpStream::connect(("127.0.0.1", port)).is_ok()
        });
        Smtp {
            child,
            dir: dir.to_path_buf(),
        }
    }

    pub(crate) fn messages(&self) -> Vec<String> {
        maildir(&self.dir)
    }

    fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Smtp {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Undo quoted-printable soft line breaks and `=3D`, in case the mail used them.
pub(crate) fn unqp(m: &str) -> String {
    m.replace("=\r\n", "").replace("=\n", "").replace("=3D", "=")
}

fn maildir(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    for sub in ["new", "cur"] {
        if let Ok(rd) = std::fs::read_dir(dir.join(sub)) {
            for e in rd.flatten() {
                out.push(std::fs::read_to_string(e.path()).unwrap_or_default());
            }
        }
    }
    out
}

/// A running `rigger watch` whose stdout is collected.
/// A running `rigger watch` whose stdout and stderr are collected.
pub(crate) struct Watch {
    child: Child,
    out: Arc<Mutex<String>>,
}

impl Watch {
    /// `rigger watch -c cfg` of `hosts`, its state file in `dir`, listening on
    /// a free loopback port: started and serving. (the watch, its port)
    pub(crate) fn serving(hosts: &TestHosts, cfg: &Path, dir: &Path) -> (Watch, u16) {
        Watch::serving_through(&[], hosts, cfg, dir)
    }

    /// [`Watch::serving`], started through `wrapper`, a command that runs
    /// the rest of its command line (`prlimit --nofile=32:50 --`).
    pub(crate) fn serving_through(wrapper: &[&str], hosts: &TestHosts, cfg: &Path, dir: &Path) -> (Watch, u16) {
        let port = free_port();
        let listen = format!("127.0.0.1:{port}");
        let (inv, kh) = (hosts.inventory(), hosts.known_hosts());
        let state = dir.join("watch.db");
        let mut cmd = match wrapper.split_first() {
            Some((program, args)) => {
                let mut c = Command::new(program);
                c.args(args).arg(rigger_bin());
                c
            }
            None => Command::new(rigger_bin()),
        };
        cmd.arg("watch").args([
            "-c",
            cfg.to_str().unwrap(),
            "-i",
            inv.to_str().unwrap(),
            "--known-hosts",
            kh.to_str().unwrap(),
            "--state",
            state.to_str().unwrap(),
            "--listen",
            &listen,
        ]);
        let w = Watch::spawn(cmd);
        w.wait_log(&format!("status endpoint on http://{listen}/"), Duration::from_secs(20));
        (w, port)
    }

    pub(crate) fn start(args: &[&str]) -> Watch {
        let mut cmd = Command::new(rigger_bin());
        cmd.arg("watch").args(args);
        Watch::spawn(cmd)
    }

    /// Run `cmd` (a `rigger watch` command line, maybe wrapped).
    pub(crate) fn spawn(mut cmd: Command) -> Watch {
        procs::become_subreaper();
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let out = Arc::new(Mutex::new(String::new()));
        for pipe in [
            Box::new(child.stdout.take().unwrap()) as Box<dyn Read + Send>,
            Box::new(child.stderr.take().unwrap()),
        ] {
            let o = out.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                    let mut o = o.lock().unwrap();
                    o.push_str(&line);
                    o.push('\n');
                }
            });
        }
        Watch { child, out }
    }

    pub(crate) fn log(&self) -> String {
        self.out.lock().unwrap().clone()
    }

    pub(crate) fn wait_log(&self, what: &str, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if self.log().contains(what) {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("rigger watch did not log {what:?} in {timeout:?}:\n{}", self.log());
    }

    /// SIGKILL: no shutdown code runs (a crash, an OOM kill).
    pub(crate) fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub(crate) fn stop(&mut self) {
        // SAFETY: kill(2) on our own child.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub(crate) fn wait_for(timeout: Duration, what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if f() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("timed out after {timeout:?} waiting for {what}");
}

pub(crate) fn get(port: u16, path: &str) -> String {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(s, "GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out.split_once("\r\n\r\n").map(|x| x.1.to_string()).unwrap_or_default()
}

fn ssh_ok(hosts: &TestHosts, i: usize, cmd: &str) {
    let o = hosts.ssh(i, cmd);
    assert!(o.status.success(), "{cmd}: {}", String::from_utf8_lossy(&o.stderr));
}

fn conn_args(hosts: &TestHosts) -> Vec<String> {
    vec![
        "-i".into(),
        hosts.inventory().display().to_string(),
        "--known-hosts".into(),
        hosts.known_hosts().display().to_string(),
    ]
}

#[test]
fn disk_fill_fires_threshold_and_predict_mails_hooks_resolves_and_host_down_inhibits() {
    let mut hosts = TestHosts::with_opts(2, HostOpts { isolated_root: true });
    // A 4 MiB file system inside host1 only (its own mount namespace).
    ssh_ok(
        &hosts,
        0,
        "mkdir -p /srv/fill && mount -t tmpfs -o size=4m tmpfs /srv/fill",
    );
    let hook = Receiver::start();
    let smtp_port = free_port();
    let work = tempfile::tempdir().unwrap();
    let smtp = Smtp::start(smtp_port, &work.path().join("mail"));
    let cfg = work.path().join("watch.yml");
    std::fs::write(
        &cfg,
        format!(
            r#"interval: 1s
host_down_after: 6s
persist_every: 1s
rules:
  - alert: DiskAlmostFull
    metric: disk_used_pct
    match: {{mount: /srv/fill}}
    threshold: "> 50"
    for: 2s
    severity: critical
    summary: "{{{{ labels.mount }}}} on {{{{ labels.host }}}} is {{{{ value | round(1) }}}}% full"
  - alert: DiskFillsSoon
    metric: disk_used_pct
    match: {{mount: /srv/fill}}
    predict: {{window: 8s, horizon: 1h, threshold: "> 100"}}
    for: 2s
  - alert: NoDiskSamples
    metric: disk_used_pct
    match: {{mount: /srv/fill}}
    absent: 10s
route:
  receiver: ops
  group_by: [alertname, host]
  group_wait: 1s
  group_interval: 1s
  repeat_interval: 1h
receivers:
  - name: ops
    email:
      to: [oncall@example.com, second@example.com]
      from: rigger@example.com
      smarthost: 127.0.0.1:{smtp_port}
      tls: none
    webhook:
      url: {url}
      secret: {SECRET}
      timeout: 5s
"#,
            url = hook.url()
        ),
    )
    .unwrap();
    let listen = free_port();
    let mut args = vec![
        "-c".to_string(),
        cfg.display().to_string(),
        "--listen".into(),
        format!("127.0.0.1:{listen}"),
    ];
    args.extend(conn_args(&hosts));
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut w = Watch::start(&argv);
    w.wait_log("host1: connected", Duration::from_secs(20));
    w.wait_log("host2: connected", Duration::from_secs(20));
    // Fill 3 MiB of 4 in 256 KiB steps, one per second: the trend is steep.
    // Appending (never truncating) so the usage only grows.
    for _ in 1..=12 {
        ssh_ok(&hosts, 0, "head -c 262144 /dev/zero >> /srv/fill/blob");
        std::thread::sleep(Duration::from_millis(700));
    }
    wait_for(Duration::from_secs(20), "DiskAlmostFull webhook", || {
        !hook.matching("DiskAlmostFull", "firing").is_empty()
    });
    wait_for(Duration::from_secs(20), "DiskFillsSoon webhook", || {
        !hook.matching("DiskFillsSoon", "firing").is_empty()
    });
    let h = &hook.matching("DiskAlmostFull", "firing")[0];
    assert!(valid_signature(h), "signature of {:?}", h.signature);
    assert_eq!(h.json["version"], "4");
    assert_eq!(h.json["receiver"], "ops");
    let a = &h.json["alerts"][0];
    assert_eq!(a["labels"]["host"], "host1");
    assert_eq!(a["labels"]["severity"], "critical");
    assert!(a["annotations"]["summary"]
        .as_str()
        .unwrap()
        .starts_with("/srv/fill on host1 is "));
    assert!(a["value"].as_f64().unwrap() > 50.0);
    wait_for(Duration::from_secs(20), "the firing email", || {
        smtp.messages().iter().any(|m| m.contains("DiskAlmostFull"))
    });
    let mail = unqp(
        &smtp
            .messages()
            .into_iter()
            .find(|m| m.contains("DiskAlmostFull"))
            .unwrap(),
    );
    assert!(mail.contains("From: rigger@example.com"), "{mail}");
    assert!(
        mail.contains("oncall@example.com") && mail.contains("second@example.com"),
        "{mail}"
    );
    assert!(mail.contains("Subject: [FIRING:1] DiskAlmostFull host1"), "{mail}");
    assert!(mail.contains("X-Rigger-Status: firing"), "{mail}");
    assert!(mail.contains("text/plain") && mail.contains("text/html"), "{mail}");
    // The chart is a PNG image of a multipart/related part, referenced by
    // `cid:` (mail clients strip inline SVG).
    assert!(mail.contains("multipart/related"), "{mail}");
    assert!(mail.contains("Content-Type: image/png"), "{mail}");
    assert!(mail.contains("src=\"cid:chart-"), "{mail}");
    assert!(mail.contains("iVBORw0KGgo"), "base64 of a PNG signature: {mail}");
    assert!(!mail.contains("<svg"), "{mail}");
    // Nothing on host2 (its /srv has no such mount).
    assert!(hook.hooks().iter().all(|h| h.json["commonLabels"]["host"] != "host2"));

    // The condition clears: resolved notices.
    ssh_ok(&hosts, 0, "rm -f /srv/fill/blob");
    wait_for(Duration::from_secs(20), "DiskAlmostFull resolved webhook", || {
        !hook.matching("DiskAlmostFull", "resolved").is_empty()
    });
    wait_for(Duration::from_secs(20), "resolved email", || {
        smtp.messages()
            .iter()
            .any(|m| m.contains("X-Rigger-Status: resolved") && m.contains("DiskAlmostFull"))
    });
    assert!(hook.hooks().iter().all(valid_signature));
    // No duplicates: one firing and one resolved notice per alert.
    assert_eq!(
        hook.matching("DiskAlmostFull", "firing").len(),
        1,
        "{:#?}",
        hook.hooks()
    );
    assert_eq!(hook.matching("DiskAlmostFull", "resolved").len(), 1);

    // host1 goes down: host_down fires, NoDiskSamples fires too but is inhibited.
    hosts.stop(0);
    wait_for(Duration::from_secs(30), "host_down webhook", || {
        !hook.matching("host_down", "firing").is_empty()
    });
    let hd = &hook.matching("host_down", "firing")[0];
    assert_eq!(hd.json["alerts"][0]["labels"]["host"], "host1");
    wait_for(Duration::from_secs(25), "NoDiskSamples in /alerts", || {
        get(listen, "/alerts").contains("NoDiskSamples")
    });
    std::thread::sleep(Duration::from_secs(3));
    let alerts: Value = serde_json::from_str(&get(listen, "/alerts")).unwrap();
    let nd = alerts
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["labels"]["alertname"] == "NoDiskSamples")
        .unwrap();
    assert_eq!(nd["state"], "firing");
    assert_eq!(nd["suppressed"], "inhibited by host_down");
    assert!(
        hook.matching("NoDiskSamples", "firing").is_empty(),
        "inhibited alerts are not sent"
    );
    assert!(hook
        .matching("host_down", "firing")
        .iter()
        .all(|h| h.json["alerts"][0]["labels"]["host"] == "host1"));
    let health: Value = serde_json::from_str(&get(listen, "/health")).unwrap();
    assert_eq!(health["hosts"]["host1"]["up"], false);
    assert_eq!(health["hosts"]["host2"]["up"], true);
    let metrics = get(listen, "/metrics");
    assert!(metrics.contains("# TYPE disk_used_pct gauge"), "{metrics}");
    assert!(metrics.contains("up{host=\"host2\"} 1 "), "{metrics}");
    w.stop();
}

#[test]
fn smtp_outage_restart_silences_reload_and_repeat() {
    let hosts = TestHosts::new(1);
    let hook = Receiver::start();
    let smtp_port = free_port();
    let work = tempfile::tempdir().unwrap();
    let value = work.path().join("value");
    let other = work.path().join("other");
    std::fs::write(&value, "1\n").unwrap();
    std::fs::write(&other, "1\n").unwrap();
    let cfg = work.path().join("watch.yml");
    let config = |extra_rule: &str| {
        format!(
            r#"interval: 1s
custom_metrics:
  - name: queue_depth
    command: cat {value}
  - name: other_depth
    command: cat {other}
rules:
  - alert: QueueHigh
    metric: queue_depth
    threshold: "> 5"
  - alert: OtherHigh
    metric: other_depth
    threshold: "> 5"
{extra_rule}route:
  receiver: mail
  group_wait: 0s
  group_interval: 1s
  repeat_interval: 1h
  routes:
    - match: {{alertname: OtherHigh}}
      receiver: hook
      repeat_interval: 3s
receivers:
  - name: mail
    email:
      to: [ops@example.com]
      from: rigger@example.com
      smarthost: 127.0.0.1:{smtp_port}
  - name: hook
    webhook:
      url: {url}
      secret: {SECRET}
"#,
            value = value.display(),
            other = other.display(),
            url = hook.url()
        )
    };
    std::fs::write(&cfg, config("")).unwrap();
    let mut args = vec!["-c".to_string(), cfg.display().to_string()];
    args.extend(conn_args(&hosts));
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();

    // SMTP is down while QueueHigh fires.
    let mut w = Watch::start(&argv);
    w.wait_log("host1: connected", Duration::from_secs(20));
    std::fs::write(&value, "9\n").unwrap();
    w.wait_log("delivery failed", Duration::from_secs(20));
    // rigger restarts while the notification is undelivered.
    w.stop();
    let mut smtp = Smtp::start(smtp_port, &work.path().join("mail"));
    let mut w = Watch::start(&argv);
    wait_for(Duration::from_secs(20), "the queued email after the restart", || {
        smtp.messages().iter().any(|m| m.contains("QueueHigh"))
    });
    std::thread::sleep(Duration::from_secs(3));
    let q: Vec<String> = smtp
        .messages()
        .into_iter()
        .filter(|m| m.contains("QueueHigh"))
        .collect();
    assert_eq!(
        q.len(),
        1,
        "delivered once, not re-notified after the restart:\n{}",
        w.log()
    );

    // Silences: OtherHigh is silenced, so nothing is sent ...
    let c = cfg.display().to_string();
    let (code, out, err) = rigger(&[
        "watch",
        "-c",
        &c,
        "silence",
        "add",
        "alertname=OtherHigh",
        "-d",
        "10m",
        "--comment",
        "maintenance",
    ]);
    assert_eq!(code, 0, "{out}{err}");
    let id: String = out.split_whitespace().nth(1).unwrap().to_string();
    let (_, list, _) = rigger(&["watch", "-c", &c, "silence", "list"]);
    assert!(
        list.contains("alertname=OtherHigh") && list.contains("maintenance"),
        "{list}"
    );
    std::fs::write(&other, "7\n").unwrap();
    w.wait_log("OtherHigh", Duration::from_secs(10));
    std::thread::sleep(Duration::from_secs(3));
    assert!(
        hook.matching("OtherHigh", "firing").is_empty(),
        "silenced: {:?}",
        hook.hooks()
    );
    // ... until it expires.
    let (code, _, err) = rigger(&["watch", "-c", &c, "silence", "expire", &id]);
    assert_eq!(code, 0, "{err}");
    wait_for(Duration::from_secs(10), "OtherHigh after the silence", || {
        !hook.matching("OtherHigh", "firing").is_empty()
    });
    // Repeat interval (3 s on this route, flushed on 1 s group_interval ticks):
    // each repeat comes 3 s after the previous notice at the earliest and at the
    // next flush after that at the latest (+ one evaluation and delivery of slack).
    // Arrival times carry the delivery's jitter (the outbox is polled every
    // 500 ms, so two notices 3 s apart may arrive 2.5 s apart, and a loaded
    // machine adds to that): the lower bound leaves 1 s; the exact times are
    // unit-tested in src/watch/state.rs.
    wait_for(Duration::from_secs(20), "two repeats of OtherHigh", || {
        hook.matching("OtherHigh", "firing").len() >= 3
    });
    let times: Vec<Instant> = hook.matching("OtherHigh", "firing").iter().map(|h| h.at).collect();
    for pair in times.windows(2) {
        let gap = pair[1] - pair[0];
        assert!(
            gap >= Duration::from_millis(2000) && gap <= Duration::from_millis(6000),
            "notices {gap:?} apart with repeat_interval 3s: {:?}",
            times.iter().map(|t| *t - times[0]).collect::<Vec<_>>()
        );
    }

    // A live edit adds a rule.
    std::fs::write(
        &cfg,
        config("  - alert: QueueAboveEight\n    metric: queue_depth\n    threshold: \"> 8\"\n"),
    )
    .unwrap();
    w.wait_log("configuration reloaded (3 rules)", Duration::from_secs(10));
    wait_for(Duration::from_secs(15), "mail from the new rule", || {
        smtp.messages().iter().any(|m| m.contains("QueueAboveEight"))
    });
    // A broken edit is rejected with its location; the old rules stay active.
    std::fs::write(
        &cfg,
        config("  - alert: Broken\n    metric: queue_depth\n    treshold: \"> 8\"\n"),
    )
    .unwrap();
    w.wait_log("reload rejected", Duration::from_secs(10));
    let log = w.log();
    assert!(
        log.contains(&format!("{}:16:5: unknown key `treshold`", cfg.display())),
        "{log}"
    );
    std::fs::write(&value, "1\n").unwrap();
    wait_for(Duration::from_secs(15), "resolved mail under the old config", || {
        smtp.messages()
            .iter()
            .any(|m| m.contains("X-Rigger-Status: resolved") && m.contains("QueueHigh"))
    });
    smtp.stop();
    w.stop();
}

/// A receiver that refuses the request (400) is tried once and the failure
/// logged as permanent; one that is unavailable (503) is tried again.
#[test]
fn webhook_400_is_not_retried_503_is() {
    let hosts = TestHosts::new(1);
    let refusing = Receiver::answering("400 Bad Request");
    let busy = Receiver::answering("503 Service Unavailable");
    let work = tempfile::tempdir().unwrap();
    let cfg = work.path().join("watch.yml");
    std::fs::write(
        &cfg,
        format!(
            r#"interval: 1s
retry_max_backoff: 1s
custom_metrics:
  - name: depth
    command: echo 9
rules:
  - alert: Refused
    metric: depth
    threshold: "> 5"
  - alert: Busy
    metric: depth
    threshold: "> 5"
route:
  receiver: refusing
  group_by: [alertname]
  group_wait: 0s
  group_interval: 1s
  repeat_interval: 1h
  routes:
    - match: {{alertname: Busy}}
      receiver: busy
receivers:
  - name: refusing
    webhook: {{url: '{}'}}
  - name: busy
    webhook: {{url: '{}'}}
"#,
            refusing.url(),
            busy.url()
        ),
    )
    .unwrap();
    let mut args = vec!["-c".to_string(), cfg.display().to_string()];
    args.extend(conn_args(&hosts));
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut w = Watch::start(&argv);
    wait_for(Duration::from_secs(30), "three attempts at the 503 receiver", || {
        busy.matching("Busy", "firing").len() >= 3
    });
    w.wait_log("permanent: not retried", Duration::from_secs(10));
    // Several retry periods (1 s) later, the 400 receiver still saw one attempt.
    std::thread::sleep(Duration::from_secs(3));
    w.stop();
    let log = w.log();
    assert_eq!(
        refusing.hooks().len(),
        1,
        "the 400 answer is permanent: one attempt\n{log}"
    );
    assert!(refusing.matching("Refused", "firing").len() == 1, "{log}");
    assert!(
        log.contains(&format!(
            "{} answered HTTP 400 (attempt 1, permanent: not retried)",
            refusing.url()
        )),
        "{log}"
    );
    assert!(
        log.contains(&format!("{} answered HTTP 503 (attempt 2, retry in", busy.url())),
        "{log}"
    );
    assert!(!log.contains("HTTP 503 (attempt 1, permanent"), "{log}");
}

#[test]
fn check_config_and_once() {
    let hosts = TestHosts::new(1);
    let work = tempfile::tempdir().unwrap();
    let cfg = work.path().join("w.yml");
    let hook = Receiver::start();
    let body = |thr: &str| {
        format!(
            "interval: 1s\nrules:\n  - alert: Procs\n    metric: processes\n    threshold: \"{thr}\"\nreceivers:\n  - name: h\n    webhook: {{url: '{}'}}\n",
            hook.url()
        )
    };
    std::fs::write(&cfg, body("> 0")).unwrap();
    let c = cfg.display().to_string();
    let (code, out, err) = rigger(&["watch", "-c", &c, "--check-config"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("OK (1 rules"), "{out}");
    std::fs::write(&cfg, body("> zero")).unwrap();
    let (code, _, err) = rigger(&["watch", "-c", &c, "--check-config"]);
    assert_eq!(code, 1);
    assert!(
        err.contains(&format!("{c}:5:16: `zero` in `> zero` is not a number")),
        "{err}"
    );

    let inv = hosts.inventory().display().to_string();
    let kh = hosts.known_hosts().display().to_string();
    std::fs::write(&cfg, body("> 0")).unwrap();
    let (code, out, err) = rigger(&["watch", "-c", &c, "--once", "-i", &inv, "--known-hosts", &kh]);
    assert_eq!(code, 2, "{out}{err}");
    assert!(
        out.contains("FIRING Procs {alertname=\"Procs\",host=\"host1\""),
        "{out}"
    );
    assert_eq!(hook.matching("Procs", "firing").len(), 1, "--once delivers");
    std::fs::write(&cfg, body("> 1000000")).unwrap();
    let (code, out, err) = rigger(&["watch", "-c", &c, "--once", "-i", &inv, "--known-hosts", &kh]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(!out.contains("FIRING"), "{out}");
}

/// The value of the first header `name` of a raw mail (case-insensitive name).
fn header(mail: &str, name: &str) -> Option<String> {
    let want = format!("{}:", name.to_ascii_lowercase());
    mail.lines()
        .take_while(|l| !l.is_empty() && *l != "\r")
        .find(|l| l.to_ascii_lowercase().starts_with(&want))
        .map(|l| l[want.len()..].trim().to_string())
}

/// `activeSince` of the alert named `name` in `/alerts`, with its state.
fn alert_since(port: u16, name: &str) -> Option<(String, String)> {
    let alerts: Value = serde_json::from_str(&get(port, "/alerts")).ok()?;
    alerts
        .as_array()?
        .iter()
        .find(|a| a["labels"]["alertname"] == name)
        .map(|a| {
            (
                a["state"].as_str().unwrap_or_default().to_string(),
                a["activeSince"].as_str().unwrap_or_default().to_string(),
            )
        })
}

/// Issue #21.3: a restart while a host is down, an alert fires, another is
/// pending (`for:`) and a notification is undelivered (SMTP down) sends no
/// false `[RESOLVED] host_down`, no new `[FIRING]`, keeps start times and
/// `for:` timers, delivers each pending notification once, and threads a
/// group's later mail under its first one across the restart.
#[test]
fn restart_while_a_host_is_down_keeps_alert_state_and_delivers_pending_once() {
    let mut hosts = TestHosts::new(2);
    let hook = Receiver::start();
    let smtp_port = free_port();
    let work = tempfile::tempdir().unwrap();
    let value = work.path().join("value");
    let slow = work.path().join("slow");
    std::fs::write(&value, "9\n").unwrap();
    std::fs::write(&slow, "1\n").unwrap();
    let cfg = work.path().join("watch.yml");
    std::fs::write(
        &cfg,
        format!(
            r#"interval: 1s
host_down_after: 3s
retry_max_backoff: 1s
custom_metrics:
  - name: queue_depth
    command: cat {value}
  - name: slow_depth
    command: cat {slow}
rules:
  - alert: QueueHigh
    metric: queue_depth
    match: {{host: host1}}
    threshold: "> 5"
    severity: critical
  - alert: SlowHigh
    metric: slow_depth
    match: {{host: host1}}
    threshold: "> 5"
    for: 25s
route:
  receiver: ops
  group_by: [alertname, host]
  group_wait: 0s
  group_interval: 1s
  repeat_interval: 1h
receivers:
  - name: ops
    email:
      to: [ops@example.com]
      from: rigger@example.com
      smarthost: 127.0.0.1:{smtp_port}
    webhook:
      url: {url}
      secret: {SECRET}
"#,
            value = value.display(),
            slow = slow.display(),
            url = hook.url()
        ),
    )
    .unwrap();
    let conn = conn_args(&hosts);
    let start = |listen: u16| {
        let mut args = vec![
            "-c".to_string(),
            cfg.display().to_string(),
            "--listen".into(),
            format!("127.0.0.1:{listen}"),
        ];
        args.extend(conn.iter().cloned());
        let argv: Vec<&str> = args.iter().map(String::as_str).collect();
        Watch::start(&argv)
    };
    let listen = free_port();
    let mut w = start(listen);
    w.wait_log("host2: connected", Duration::from_secs(20));
    wait_for(Duration::from_secs(20), "QueueHigh webhook", || {
        !hook.matching("QueueHigh", "firing").is_empty()
    });
    hosts.stop(1);
    wait_for(Duration::from_secs(20), "host_down webhook", || {
        !hook.matching("host_down", "firing").is_empty()
    });
    std::fs::write(&slow, "9\n").unwrap();
    wait_for(Duration::from_secs(10), "SlowHigh pending", || {
        alert_since(listen, "SlowHigh").is_some_and(|(s, _)| s == "pending")
    });
    w.wait_log("delivery failed", Duration::from_secs(10));
    let down_since = alert_since(listen, "host_down").unwrap();
    let slow_since = alert_since(listen, "SlowHigh").unwrap();
    assert_eq!(down_since.0, "firing");
    w.stop();
    let first_log = w.log();

    // The mail server comes back; rigger restarts while host2 is still down.
    let smtp = Smtp::start(smtp_port, &work.path().join("mail"));
    let listen = free_port();
    let w = start(listen);
    w.wait_log("host1: connected", Duration::from_secs(20));
    wait_for(Duration::from_secs(20), "the queued mails", || {
        let m = smtp.messages();
        m.iter().any(|m| m.contains("QueueHigh")) && m.iter().any(|m| m.contains("host_down"))
    });
    assert_eq!(
        alert_since(listen, "host_down"),
        Some(down_since.clone()),
        "same alert, same start"
    );
    assert_eq!(
        alert_since(listen, "SlowHigh").map(|a| a.1),
        Some(slow_since.1.clone()),
        "the `for:` timer survived the restart"
    );
    wait_for(
        Duration::from_secs(30),
        "SlowHigh firing on its original schedule",
        || !hook.matching("SlowHigh", "firing").is_empty(),
    );
    // Longer than host_down_after and several group_interval flushes.
    std::thread::sleep(Duration::from_secs(5));
    let log = w.log();
    let all = || format!("{:#?}\nfirst run:\n{first_log}\nsecond run:\n{log}", hook.hooks());
    assert!(hook.matching("host_down", "resolved").is_empty(), "{}", all());
    assert_eq!(hook.matching("host_down", "firing").len(), 1, "{}", all());
    assert_eq!(hook.matching("QueueHigh", "firing").len(), 1, "{}", all());
    assert_eq!(hook.matching("SlowHigh", "firing").len(), 1, "{}", all());
    let mails: Vec<String> = smtp.messages().iter().map(|m| unqp(m)).collect();
    let with = |name: &str| -> Vec<&String> { mails.iter().filter(|m| m.contains(name)).collect() };
    for name in ["QueueHigh", "host_down", "SlowHigh"] {
        assert_eq!(with(name).len(), 1, "{name} mailed once:\n{mails:#?}\n{log}");
    }
    assert!(mails.iter().all(|m| !m.contains("RESOLVED")), "{mails:#?}");
    for m in &mails {
        assert!(
            header(m, "Message-ID").is_some_and(|id| id.starts_with("<rigger.") && id.ends_with("@example.com>")),
            "{m}"
        );
        assert!(header(m, "Date").is_some(), "{m}");
    }
    let queue_mail = with("QueueHigh")[0].clone();
    let subject = header(&queue_mail, "Subject").unwrap();
    assert!(
        subject.starts_with("[FIRING:1] QueueHigh host1 (severity=critical"),
        "{subject}"
    );

    // The condition clears: the resolved mail threads under the firing one
    // (whose id was given before the restart).
    std::fs::write(&value, "1\n").unwrap();
    wait_for(Duration::from_secs(15), "the resolved mail", || {
        smtp.messages()
            .iter()
            .any(|m| m.contains("X-Rigger-Status: resolved") && m.contains("QueueHigh"))
    });
    let resolved = smtp
        .messages()
        .into_iter()
        .find(|m| m.contains("X-Rigger-Status: resolved") && m.contains("QueueHigh"))
        .unwrap();
    let root = header(&queue_mail, "Message-ID").unwrap();
    assert_eq!(header(&resolved, "In-Reply-To"), Some(root.clone()), "{resolved}");
    assert_eq!(header(&resolved, "References"), Some(root.clone()), "{resolved}");
    assert_ne!(header(&resolved, "Message-ID"), Some(root));
}

/// Issue #21.7: `--once` as a probe reports a condition that holds but
/// waits for its rule's `for:` (exit 3 and a PENDING line), not "healthy".
#[test]
fn once_reports_pending_conditions() {
    let hosts = TestHosts::new(1);
    let hook = Receiver::start();
    let work = tempfile::tempdir().unwrap();
    let cfg = work.path().join("w.yml");
    std::fs::write(
        &cfg,
        format!(
            "interval: 1s\nrules:\n  - alert: Procs\n    metric: processes\n    threshold: \"> 0\"\n    for: 1h\nreceivers:\n  - name: h\n    webhook: {{url: '{}'}}\n",
            hook.url()
        ),
    )
    .unwrap();
    let c = cfg.display().to_string();
    let inv = hosts.inventory().display().to_string();
    let kh = hosts.known_hosts().display().to_string();
    let (code, out, err) = rigger(&["watch", "-c", &c, "--once", "-i", &inv, "--known-hosts", &kh]);
    assert_eq!(code, 3, "{out}{err}");
    assert!(
        out.contains("PENDING Procs {alertname=\"Procs\",host=\"host1\",severity=\"warning\"} (active since "),
        "{out}"
    );
    assert!(out.contains("fires after for: 3600s"), "{out}");
    assert!(!out.contains("FIRING"), "{out}");
    assert!(hook.hooks().is_empty(), "a pending alert is not notified");
}

/// Issue #21.4: rules on metrics that do not exist, matchers on labels the
/// metric never has, receivers no route uses and a child route's unknown
/// receiver are located errors with "did you mean", in `--check-config` and
/// on reload; a reload that ends firing alerts only because a rule was
/// renamed says so in the log and on /health.
#[test]
fn config_validation_and_reloads_that_end_alerts() {
    let work = tempfile::tempdir().unwrap();
    let cfg = work.path().join("w.yml");
    let c = cfg.display().to_string();
    let hook = Receiver::start();
    let value = work.path().join("value");
    std::fs::write(&value, "9\n").unwrap();
    let body = |rule: &str, extra_receiver: &str, child: &str| {
        format!(
            "interval: 1s\ncustom_metrics:\n  - name: queue_depth\n    command: cat {}\n    metrics: [queue_age]\nrules:\n{rule}route:\n  receiver: h\n  group_wait: 0s\n  group_interval: 1s\n  routes:\n{child}receivers:\n  - name: h\n    webhook: {{url: '{}'}}\n{extra_receiver}",
            value.display(),
            hook.url()
        )
    };
    let ok_rule = "  - alert: QueueHigh\n    metric: queue_depth\n    threshold: \"> 5\"\n";
    let child = "    - match: {severity: critical}\n      receiver: h\n";
    let check = |text: String| {
        std::fs::write(&cfg, text).unwrap();
        rigger(&["watch", "-c", &c, "--check-config"])
    };
    let (code, out, err) = check(body(ok_rule, "", child));
    assert_eq!(code, 0, "{out}{err}");
    // A typo in a built-in metric (line 7: `metric:` of the first rule).
    let (code, _, err) = check(body(
        "  - alert: Disk\n    metric: disk_usd_pct\n    threshold: \"> 5\"\n",
        "",
        child,
    ));
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains(&format!("{c}:8:13: rule `Disk`: unknown metric `disk_usd_pct`")),
        "{err}"
    );
    assert!(err.contains("did you mean `disk_used_pct`?"), "{err}");
    // A metric only a custom command could print, not declared there.
    let (code, _, err) = check(body(
        "  - alert: Q\n    metric: queue_ag\n    threshold: \"> 5\"\n",
        "",
        child,
    ));
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains(&format!("{c}:8:13: rule `Q`: unknown metric `queue_ag`")),
        "{err}"
    );
    assert!(err.contains("did you mean `queue_age`?"), "{err}");
    let (code, out, err) = check(body(
        "  - alert: Q\n    metric: queue_age\n    threshold: \"> 5\"\n",
        "",
        child,
    ));
    assert_eq!(code, 0, "declared in custom_metrics[].metrics: {out}{err}");
    // A matcher on a label the metric never has.
    let (code, _, err) = check(body(
        "  - alert: Disk\n    metric: disk_used_pct\n    match: {host: web1, mountpoint: /}\n    threshold: \"> 5\"\n",
        "",
        child,
    ));
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains(&format!(
            "{c}:9:25: rule `Disk`: `disk_used_pct` has no label `mountpoint`"
        )),
        "{err}"
    );
    assert!(err.contains("did you mean `mount`?"), "{err}");
    // A receiver no route uses (line 20: its list item).
    let (code, _, err) = check(body(
        ok_rule,
        "  - name: pager\n    webhook: {url: 'http://127.0.0.1:9/x'}\n",
        child,
    ));
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains(&format!("{c}:20:5: receiver `pager` is not used by any route")),
        "{err}"
    );
    // A child route's unknown receiver points at the child's line.
    let (code, _, err) = check(body(
        ok_rule,
        "",
        "    - match: {severity: critical}\n      receiver: hh\n",
    ));
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains(&format!("{c}:16:17: route uses unknown receiver `hh`")),
        "{err}"
    );
    assert!(err.contains("did you mean `h`?"), "{err}");

    // Reloads on a running watch with a firing alert.
    let hosts = TestHosts::new(1);
    std::fs::write(&cfg, body(ok_rule, "", child)).unwrap();
    let listen = free_port();
    let mut args = vec![
        "-c".to_string(),
        c.clone(),
        "--listen".into(),
        format!("127.0.0.1:{listen}"),
    ];
    args.extend(conn_args(&hosts));
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut w = Watch::start(&argv);
    wait_for(Duration::from_secs(20), "QueueHigh webhook", || {
        !hook.matching("QueueHigh", "firing").is_empty()
    });
    // The typo is rejected: the alert keeps firing, nothing resolves.
    std::fs::write(
        &cfg,
        body(
            "  - alert: QueueHigh\n    metric: queue_dpth\n    threshold: \"> 5\"\n",
            "",
            child,
        ),
    )
    .unwrap();
    w.wait_log("reload rejected", Duration::from_secs(10));
    assert!(w.log().contains("unknown metric `queue_dpth`"), "{}", w.log());
    std::thread::sleep(Duration::from_secs(2));
    assert!(hook.matching("QueueHigh", "resolved").is_empty(), "{:#?}", hook.hooks());
    // A rename ends the alert: said in the log and on /health.
    std::fs::write(
        &cfg,
        body(
            "  - alert: QueueTooHigh\n    metric: queue_depth\n    threshold: \"> 5\"\n",
            "",
            child,
        ),
    )
    .unwrap();
    w.wait_log("configuration reloaded", Duration::from_secs(10));
    let want = "1 firing alert(s) of rule `QueueHigh` ({alertname=\"QueueHigh\",host=\"host1\",severity=\"warning\"}) will resolve because the rule was renamed to `QueueTooHigh`";
    w.wait_log(want, Duration::from_secs(5));
    wait_for(Duration::from_secs(10), "the warning on /health", || {
        serde_json::from_str::<Value>(&get(listen, "/health"))
            .is_ok_and(|h| h["lastReloadWarnings"][0].as_str().is_some_and(|w| w.starts_with(want)))
    });
    w.stop();
}

/// A custom metric whose command fails is not silent: the watch log and the
/// host's `warnings` on /health say so while it fails, and both say when it
/// works again.
#[test]
fn a_failing_custom_metric_is_a_warning_on_health_until_it_recovers() {
    let hosts = TestHosts::new(1);
    let hook = Receiver::start();
    let work = tempfile::tempdir().unwrap();
    let flag = work.path().join("broken");
    std::fs::write(&flag, "").unwrap();
    let cfg = work.path().join("w.yml");
    std::fs::write(
        &cfg,
        format!(
            "interval: 1s\ncustom_metrics:\n  - name: queue\n    command: \"test -e '{}' && exit 3; echo queue 1\"\nrules:\n  - alert: Queue\n    metric: queue\n    threshold: \"> 5\"\nreceivers:\n  - name: h\n    webhook: {{url: '{}'}}\n",
            flag.display(),
            hook.url()
        ),
    )
    .unwrap();
    let (mut w, port) = Watch::serving(&hosts, &cfg, work.path());
    let warning = "custom metric `queue`: its command exited 3";
    let warnings = || -> Vec<String> {
        let health: serde_json::Value = serde_json::from_str(&get(port, "/health")).unwrap_or_default();
        health["hosts"]["host1"]["warnings"]
            .as_array()
            .map(|a| a.iter().filter_map(|v| v.as_str().map(String::from)).collect())
            .unwrap_or_default()
    };
    wait_for(Duration::from_secs(20), "the warning on /health", || {
        warnings() == [warning]
    });
    w.wait_log(&format!("host1: warning: {warning}"), Duration::from_secs(5));
    std::fs::remove_file(&flag).unwrap();
    wait_for(Duration::from_secs(20), "the warning gone from /health", || {
        warnings().is_empty()
    });
    w.wait_log(&format!("host1: no longer: {warning}"), Duration::from_secs(5));
    assert_eq!(w.log().matches("host1: warning:").count(), 1, "{}", w.log());
    w.stop();
}

/// A watch holds a socket per host for as long as it runs: it raises its
/// soft open-files limit to what its hosts need (the real binary, started
/// with `prlimit --nofile=32:4096`, one host: /proc says 65), and when
/// the hard limit is below what its hosts need it says so and what to
/// change, instead of failing later with "Too many open files".
#[test]
fn watch_raises_its_open_files_limit_and_says_when_the_hard_limit_is_too_low() {
    let hosts = TestHosts::new(1);
    let work = tempfile::tempdir().unwrap();
    let cfg = work.path().join("w.yml");
    std::fs::write(
        &cfg,
        "interval: 1s\nreceivers:\n  - name: h\n    webhook: {url: 'http://127.0.0.1:9/none'}\n",
    )
    .unwrap();
    let max_open =
        |w: &Watch| procs::max_open_files(&std::fs::read_to_string(format!("/proc/{}/limits", w.child.id())).unwrap());
    for (limit, want, warned) in [("32:4096", "65 4096", false), ("32:50", "50 50", true)] {
        let dir = tempfile::tempdir().unwrap();
        let nofile = format!("--nofile={limit}");
        let (mut w, port) = Watch::serving_through(&["prlimit", &nofile, "--"], &hosts, &cfg, dir.path());
        assert_eq!(max_open(&w).as_deref(), Some(want), "{}", w.log());
        let warning = "the open-files limit allows 50 descriptors and 1 hosts need about 65";
        assert_eq!(w.log().contains(warning), warned, "{}", w.log());
        if warned {
            assert!(w.log().contains("LimitNOFILE="), "{}", w.log());
        }
        // And it watches: the host's first samples arrive.
        wait_for(Duration::from_secs(20), "host1's samples", || {
            get(port, "/metrics").contains("load1{host=\"host1\"}")
        });
        w.stop();
    }
}
