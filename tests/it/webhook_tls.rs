//! https webhooks (issue #22): `rigger watch` posts to a real HTTPS receiver
//! (Python's http.server behind ssl, with a certificate from a test CA made
//! by openssl), trusting only `ca_file`; the request carries a timestamped
//! HMAC signature a receiver can check against replay. SMTP passwords are
//! refused without TLS unless `insecure_auth` says otherwise.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;

use crate::support::{rigger, TestHosts};

const SECRET: &str = "tls-hook-secret";

const RECEIVER: &str = r#"
import http.server, json, os, ssl, sys
out, cert, key = sys.argv[1], sys.argv[2], sys.argv[3]
class H(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get('Content-Length', '0')))
        n = len([f for f in os.listdir(out) if f.endswith('.json')])
        tmp = os.path.join(out, '%d.tmp' % n)
        with open(tmp, 'w') as f:
            json.dump({'sig': self.headers.get('X-Rigger-Signature', ''), 'body': body.decode()}, f)
        os.rename(tmp, os.path.join(out, '%d.json' % n))
        self.send_response(200)
        self.send_header('Content-Length', '0')
        self.end_headers()
    def log_message(self, *a):
        pass
srv = http.server.HTTPServer(('127.0.0.1', 0), H)
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(cert, key)
srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
print(srv.server_address[1], flush=True)
srv.serve_forever()
"#;

struct Https {
    child: Child,
    port: u16,
    out: std::path::PathBuf,
}

impl Drop for Https {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn openssl(dir: &Path, args: &[&str]) {
    let o = Command::new("openssl").args(args).current_dir(dir).output().unwrap();
    assert!(
        o.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

/// A CA and a server certificate for 127.0.0.1 signed by it.
fn make_certs(dir: &Path) {
    let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
    let mut a = vec!["req", "-x509"];
    a.extend(ec);
    a.extend([
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "2",
        "-subj",
        "/CN=rigger test CA",
    ]);
    openssl(dir, &a);
    let mut a = vec!["req"];
    a.extend(ec);
    a.extend(["-keyout", "srv.key", "-out", "srv.csr", "-subj", "/CN=127.0.0.1"]);
    openssl(dir, &a);
    std::fs::write(
        dir.join("ext.cnf"),
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "srv.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "srv.pem",
            "-days",
            "2",
            "-extfile",
            "ext.cnf",
        ],
    );
}

fn start_receiver(dir: &Path) -> Https {
    let out = dir.join("got");
    std::fs::create_dir_all(&out).unwrap();
    let mut child = Command::new("/usr/bin/python3")
        .arg("-c")
        .arg(RECEIVER)
        .arg(&out)
        .arg(dir.join("srv.pem"))
        .arg(dir.join("srv.key"))
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let port = line
        .trim()
        .parse()
        .unwrap_or_else(|_| panic!("receiver port: `{line}`"));
    Https { child, port, out }
}

fn received(out: &Path) -> Vec<Value> {
    let mut v: Vec<(usize, Value)> = std::fs::read_dir(out)
        .unwrap()
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().to_string();
            let n = name.strip_suffix(".json")?.parse().ok()?;
            Some((n, serde_json::from_str(&std::fs::read_to_string(e.path()).ok()?).ok()?))
        })
        .collect();
    v.sort_by_key(|x| x.0);
    v.into_iter().map(|x| x.1).collect()
}

/// What a receiver should do: the MAC over `t`, `.` and the body, and `t`
/// within 5 minutes of now.
fn check_signature(sig: &str, body: &str) -> Result<(), String> {
    let (t, v1) = sig
        .strip_prefix("t=")
        .and_then(|r| r.split_once(",v1="))
        .ok_or(format!("not t=..,v1=..: {sig}"))?;
    let ts: u64 = t.parse().map_err(|_| format!("bad t in {sig}"))?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    if now.abs_diff(ts) > 300 {
        return Err(format!("t={ts} is not now ({now})"));
    }
    let mut mac = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(format!("{t}.").as_bytes());
    mac.update(body.as_bytes());
    let want: String = mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect();
    if want != v1 {
        return Err(format!("v1 {v1} is not the HMAC of t.body ({want})"));
    }
    Ok(())
}

fn config(url: &str, ca: Option<&str>) -> String {
    let ca = ca.map(|c| format!(", ca_file: '{c}'")).unwrap_or_default();
    format!(
        "interval: 1s\nrules:\n  - alert: Procs\n    metric: processes\n    threshold: \"> 0\"\n\
         receivers:\n  - name: h\n    webhook: {{url: '{url}', secret: '{SECRET}'{ca}}}\n"
    )
}

#[test]
fn https_webhook_trusts_its_ca_file_and_signs_with_a_timestamp() {
    let hosts = TestHosts::new(1);
    let work = tempfile::tempdir().unwrap();
    let d = work.path();
    make_certs(d);
    let recv = start_receiver(d);
    let url = format!("https://127.0.0.1:{}/hook", recv.port);
    let cfg = d.join("w.yml");
    let c = cfg.display().to_string();
    let inv = hosts.inventory().display().to_string();
    let kh = hosts.known_hosts().display().to_string();
    let once = || rigger(&["watch", "-c", &c, "--once", "-i", &inv, "--known-hosts", &kh]);

    // Trusting only the test CA (a path relative to the configuration).
    std::fs::write(&cfg, config(&url, Some("ca.pem"))).unwrap();
    let (code, out, err) = once();
    assert_eq!(code, 2, "{out}{err}");
    let start = Instant::now();
    while received(&recv.out).is_empty() && start.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(100));
    }
    let got = received(&recv.out);
    assert_eq!(got.len(), 1, "{out}{err}");
    let body = got[0]["body"].as_str().unwrap();
    let json: Value = serde_json::from_str(body).unwrap();
    assert_eq!(json["alerts"][0]["labels"]["alertname"], "Procs");
    check_signature(got[0]["sig"].as_str().unwrap(), body).unwrap();
    // The same signature does not hold for another body or time.
    assert!(check_signature(got[0]["sig"].as_str().unwrap(), &body.replace("firing", "resolved")).is_err());

    // The platform's roots do not include the test CA: nothing is sent, and
    // the output says why.
    // (A fresh state file: the alert is new there, so it is notified again.)
    std::fs::write(&cfg, config(&url, None)).unwrap();
    let state2 = d.join("state2.db").display().to_string();
    let (_, out, err) = rigger(&[
        "watch",
        "-c",
        &c,
        "--once",
        "-i",
        &inv,
        "--known-hosts",
        &kh,
        "--state",
        &state2,
    ]);
    assert_eq!(
        received(&recv.out).len(),
        1,
        "sent to an untrusted certificate:\n{out}{err}"
    );
    let all = format!("{out}{err}");
    assert!(
        all.contains("delivery failed") && all.to_lowercase().contains("certificate"),
        "{all}"
    );

    // ca_file mistakes are located at load.
    std::fs::write(&cfg, config(&url, Some("missing.pem"))).unwrap();
    let (code, _, err) = rigger(&["watch", "-c", &c, "--check-config"]);
    assert_eq!(code, 1);
    assert!(err.contains(&format!("{c}:8:")) && err.contains("missing.pem"), "{err}");
    std::fs::write(&cfg, config(&url.replace("https", "http"), Some("ca.pem"))).unwrap();
    let (code, _, err) = rigger(&["watch", "-c", &c, "--check-config"]);
    assert_eq!(code, 1);
    assert!(err.contains("ca_file is for https://"), "{err}");
}

#[test]
fn smtp_password_without_tls_needs_insecure_auth() {
    let work = tempfile::tempdir().unwrap();
    let cfg = work.path().join("w.yml");
    let c = cfg.display().to_string();
    let body = |extra: &str| {
        format!(
            "interval: 1s\nrules:\n  - alert: Procs\n    metric: processes\n    threshold: \"> 0\"\n\
             receivers:\n  - name: m\n    email:\n      to: [ops@example.com]\n      from: w@example.com\n      \
             smarthost: 127.0.0.1:2525\n      username: watch\n      password: pw-123\n{extra}"
        )
    };
    std::fs::write(&cfg, body("")).unwrap();
    let (code, _, err) = rigger(&["watch", "-c", &c, "--check-config"]);
    assert_eq!(code, 1);
    assert!(
        err.contains(&format!("{c}:13:")) && err.contains("would be sent without TLS"),
        "{err}"
    );
    std::fs::write(&cfg, body("      insecure_auth: true\n")).unwrap();
    let (code, out, err) = rigger(&["watch", "-c", &c, "--check-config"]);
    assert_eq!(code, 0, "{out}{err}");
    std::fs::write(&cfg, body("      tls: starttls\n")).unwrap();
    let (code, out, err) = rigger(&["watch", "-c", &c, "--check-config"]);
    assert_eq!(code, 0, "{out}{err}");
}
