//! The status page of `rigger watch --listen`, end to end in a real browser:
//! headless Chromium (Debian's `chromium`) driven over WebDriver by Debian's
//! `chromedriver`, against a watch of a real sshd test host.
//!
//! The WebDriver client is the few JSON-over-HTTP calls below on a std
//! `TcpStream` (chromedriver listens on loopback, plain HTTP): no HTTP client
//! is in the dependency tree (no hyper, reqwest or ureq), and fantoccini or
//! thirtyfour would bring in the hyper stack for a dozen calls.
//!
//! Screenshots go to `target/tmp/webstatus/` (CARGO_TARGET_TMPDIR).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{json, Value};

use crate::support::{rigger, rigger_bin, TestHosts};
use crate::watch::Watch;

const TOKEN: &str = "page-token-8f2a61";
/// The W3C WebDriver element reference key.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// One HTTP/1.1 request on loopback: (status, body).
fn http(port: u16, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> (u16, String) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(120))).unwrap();
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    req.push_str(body);
    s.write_all(req.as_bytes()).unwrap();
    // chromedriver keeps the connection open whatever the request says: read
    // by Content-Length (or to the last chunk), not to the end.
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = s.read(&mut chunk).unwrap();
        assert!(n > 0, "{method} {path}: connection closed before the answer's head");
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
    let length = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse::<usize>().ok());
    let chunked = head.contains("transfer-encoding: chunked");
    loop {
        let body = &buf[head_end..];
        let complete = match length {
            Some(n) => body.len() >= n,
            None if chunked => body.ends_with(b"0\r\n\r\n"),
            None => false,
        };
        if complete {
            break;
        }
        let n = s.read(&mut chunk).unwrap();
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let code = head.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    let body = String::from_utf8_lossy(&buf[head_end..]).into_owned();
    let body = if chunked { dechunk(&body) } else { body };
    (code, body)
}

fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = s.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        s = rest[n..].trim_start_matches("\r\n");
    }
    out
}

/// chromedriver on a loopback port, stopped (with its browsers) on drop.
struct Driver {
    child: Child,
    port: u16,
    session: Option<String>,
}

impl Driver {
    fn start(chromium: &Path, chromedriver: &Path, profile: &Path) -> Driver {
        let port = free_port();
        let log = profile.with_extension("chromedriver.log");
        let child = Command::new(chromedriver)
            .arg(format!("--port={port}"))
            .arg(format!("--log-path={}", log.display()))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut d = Driver {
            child,
            port,
            session: None,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                let (code, body) = http(port, "GET", "/status", &[], "");
                if code == 200 && body.contains("\"ready\":true") {
                    break;
                }
            }
            assert!(Instant::now() < deadline, "chromedriver did not start on port {port}");
            std::thread::sleep(Duration::from_millis(100));
        }
        // Chromium's sandbox needs user namespaces it cannot have as root
        // here: as root it runs with --no-sandbox (the page under test is
        // ours, on loopback).
        let mut args = vec![
            "--headless=new".to_string(),
            "--disable-gpu".into(),
            "--disable-dev-shm-usage".into(),
            "--window-size=1400,2200".into(),
            format!("--user-data-dir={}", profile.display()),
        ];
        // SAFETY: geteuid(2) has no preconditions.
        if unsafe { libc::geteuid() } == 0 {
            args.push("--no-sandbox".into());
        }
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {"binary": chromium.display().to_string(), "args": args},
        }}});
        let v = d.call("POST", "/session", Some(caps));
        d.session = Some(v["sessionId"].as_str().expect("a session id").to_string());
        d
    }

    /// A WebDriver command; its `value`, or a panic with WebDriver's error.
    fn call(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        let headers: &[(&str, &str)] = if method == "POST" {
            &[("Content-Type", "application/json")]
        } else {
            &[]
        };
        let (code, text) = http(self.port, method, path, headers, &body);
        let v: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{method} {path}: {e}: {text}"));
        assert_eq!(code, 200, "{method} {path}: {v}");
        v["value"].clone()
    }

    fn session(&self, method: &str, tail: &str, body: Option<Value>) -> Value {
        let id = self.session.as_deref().unwrap();
        self.call(method, &format!("/session/{id}{tail}"), body)
    }

    fn goto(&self, url: &str) {
        self.session("POST", "/url", Some(json!({ "url": url })));
    }

    /// The elements matching a CSS selector (may be none).
    fn find_all(&self, css: &str) -> Vec<String> {
        let v = self.session(
            "POST",
            "/elements",
            Some(json!({"using": "css selector", "value": css})),
        );
        v.as_array()
            .map(|a| a.iter().filter_map(|e| e[ELEMENT].as_str().map(String::from)).collect())
            .unwrap_or_default()
    }

    /// Wait for the first element matching `css`.
    fn wait_for(&self, css: &str, timeout: Duration, what: &str) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(e) = self.find_all(css).into_iter().next() {
                return e;
            }
            if Instant::now() > deadline {
                let page = self.script("return document.body.innerText", json!([]));
                let n = self.script("return document.querySelectorAll(arguments[0]).length", json!([css]));
                let raw = self.session(
                    "POST",
                    "/elements",
                    Some(json!({"using": "css selector", "value": css})),
                );
                panic!("timed out after {timeout:?} waiting for {what} ({css}; {n} in the DOM; {raw}); the page shows:\n{page}");
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    fn text(&self, el: &str) -> String {
        self.session("GET", &format!("/element/{el}/text"), None)
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    fn click(&self, el: &str) {
        self.session("POST", &format!("/element/{el}/click"), Some(json!({})));
    }

    fn type_into(&self, css: &str, text: &str) {
        let el = self.wait_for(css, Duration::from_secs(5), css);
        self.session("POST", &format!("/element/{el}/clear"), Some(json!({})));
        self.session("POST", &format!("/element/{el}/value"), Some(json!({ "text": text })));
    }

    fn script(&self, script: &str, args: Value) -> Value {
        self.session("POST", "/execute/sync", Some(json!({"script": script, "args": args})))
    }

    fn screenshot(&self, path: &Path) {
        let b64 = self.session("GET", "/screenshot", None);
        let png = base64::engine::general_purpose::STANDARD
            .decode(b64.as_str().unwrap_or_default())
            .unwrap();
        assert!(png.starts_with(b"\x89PNG"), "a PNG screenshot");
        std::fs::write(path, png).unwrap();
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        if let Some(id) = self.session.take() {
            // Ends the browser too.
            let _ = TcpStream::connect(("127.0.0.1", self.port))
                .map(|_| http(self.port, "DELETE", &format!("/session/{id}"), &[], ""));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Chromium and chromedriver, or None (the caller skips, loudly) when the
/// packages are not installed. In CI they must be: scripts/test-deps.sh
/// installs them, so their absence there fails the test.
fn browser() -> Option<(PathBuf, PathBuf)> {
    let find = |names: &[&str]| {
        names
            .iter()
            .flat_map(|n| ["/usr/bin", "/usr/local/bin", "/usr/lib/chromium"].map(|d| Path::new(d).join(n)))
            .find(|p| p.is_file())
    };
    let chromium = find(&["chromium", "chromium-browser"]);
    let driver = find(&["chromedriver"]);
    match (chromium, driver) {
        (Some(c), Some(d)) => Some((c, d)),
        (c, d) => {
            let msg = format!(
                "chromium ({}) and chromedriver ({}) are needed: apt-get install chromium chromium-driver \
                 (scripts/test-deps.sh installs them)",
                if c.is_some() { "found" } else { "MISSING" },
                if d.is_some() { "found" } else { "MISSING" },
            );
            if std::env::var_os("CI").is_some() {
                panic!("{msg}");
            }
            eprintln!("\n!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!");
            eprintln!("!!! SKIPPED webstatus: {msg}");
            eprintln!("!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!\n");
            None
        }
    }
}

fn api(port: u16, path: &str) -> Value {
    let (code, body) = http(port, "GET", path, &[], "");
    assert_eq!(code, 200, "GET {path}: {body}");
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("GET {path}: {e}: {body}"))
}

fn alert<'a>(alerts: &'a Value, name: &str) -> Option<&'a Value> {
    alerts
        .as_array()?
        .iter()
        .find(|a| a["labels"]["alertname"] == name && a["state"] != "resolved")
}

fn wait_until(timeout: Duration, what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if f() {
            return;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    panic!("timed out after {timeout:?} waiting for {what}");
}

/// Issue #23: the status page shows a real host's firing alert, creates a
/// silence through its form (only with the token), shows the alert silenced
/// as the API does, expires the silence from the page, lists the host and a
/// `rigger check` run, charts the host's series, and renders labels a host
/// sent with `<script>`/`<img onerror>` as text.
#[test]
fn status_page_in_chromium_silences_an_alert_and_renders_host_data_as_text() {
    let Some((chromium, chromedriver)) = browser() else {
        return;
    };
    let hosts = TestHosts::new(1);
    let work = tempfile::Builder::new()
        .prefix("webstatus-")
        .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
        .unwrap();
    let shots = Path::new(env!("CARGO_TARGET_TMPDIR")).join("webstatus");
    std::fs::create_dir_all(&shots).unwrap();
    let inv = hosts.inventory().display().to_string();
    let kh = hosts.known_hosts().display().to_string();

    // One `rigger check` run in a history database the page lists.
    let db = work.path().join("check.db").display().to_string();
    let pb = work.path().join("site.yml");
    std::fs::write(
        &pb,
        "- hosts: all\n  gather_facts: false\n  tasks:\n    - name: motd\n      copy: {dest: /tmp/rigger-webstatus-motd, content: \"hi\\n\", mode: \"0644\"}\n",
    )
    .unwrap();
    let (code, out, err) = rigger(&[
        "check",
        &pb.display().to_string(),
        "-i",
        &inv,
        "--known-hosts",
        &kh,
        "--db",
        &db,
    ]);
    assert_eq!(code, 2, "the check run drifts:\n{out}{err}");

    // A custom metric whose labels come from the host and carry markup.
    let cfg = work.path().join("watch.yml");
    std::fs::write(
        &cfg,
        r#"interval: 1s
host_down_after: 10s
persist_every: 1s
custom_metrics:
  - name: hostile
    command: 'printf ''hostile{who="<script>window.pwned=1</script>",img="<img src=x onerror=window.pwned=2>"} 1\n'''
rules:
  - alert: ProcessesRunning
    metric: processes
    threshold: "> 0"
    summary: "{{ value }} processes on {{ labels.host }}"
    action: {playbook: fix.yml, approval: true}
  - alert: HostileLabels
    metric: hostile
    threshold: "> 0"
    summary: "the host says {{ labels.who }}"
receivers:
  - name: nowhere
    webhook: {url: 'http://127.0.0.1:9/hook'}
"#,
    )
    .unwrap();
    // The rule's action waits for approval on the page.
    std::fs::write(
        work.path().join("fix.yml"),
        "- hosts: all\n  gather_facts: false\n  tasks:\n    - debug: {msg: approved}\n",
    )
    .unwrap();
    let token_file = work.path().join("status.token");
    std::fs::write(&token_file, format!("{TOKEN}\n")).unwrap();
    std::fs::set_permissions(&token_file, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let port = free_port();
    let mut cmd = Command::new(rigger_bin());
    cmd.args([
        "watch",
        "-c",
        &cfg.display().to_string(),
        "-i",
        &inv,
        "--known-hosts",
        &kh,
    ])
    .args(["--state", &work.path().join("watch.db").display().to_string()])
    .args(["--listen", &format!("127.0.0.1:{port}")])
    .args(["--status-token-file", &token_file.display().to_string()])
    .args(["--check-db", &db]);
    let watch = Watch::spawn(cmd);
    watch.wait_log(
        &format!("status page on http://127.0.0.1:{port}/status"),
        Duration::from_secs(20),
    );
    wait_until(Duration::from_secs(40), "both alerts firing in /api/alerts", || {
        let a = api(port, "/api/alerts");
        ["ProcessesRunning", "HostileLabels"]
            .iter()
            .all(|n| alert(&a, n).is_some_and(|x| x["state"] == "firing"))
    });
    let hostile = alert(&api(port, "/api/alerts"), "HostileLabels").unwrap().clone();
    assert_eq!(hostile["labels"]["who"], "<script>window.pwned=1</script>", "{hostile}");

    let driver = Driver::start(&chromium, &chromedriver, &work.path().join("chromium-profile"));
    driver.goto(&format!("http://127.0.0.1:{port}/status"));
    let firing = r#"#alerts tr[data-alertname="ProcessesRunning"][data-state="firing"][data-silenced="no"]"#;
    driver.wait_for(firing, Duration::from_secs(20), "the firing alert on the page");
    driver.wait_for(
        r#"#hosts tr[data-host="host1"][data-up="yes"]"#,
        Duration::from_secs(10),
        "host1 up",
    );
    driver.wait_for(
        "#charts figure svg polyline",
        Duration::from_secs(10),
        "a chart of host1",
    );
    driver.wait_for(r#"#checks tr[data-run="1"]"#, Duration::from_secs(10), "the check run");
    let run = driver.text(&driver.find_all(r#"#checks tr[data-run="1"]"#)[0]);
    assert!(run.contains("site.yml") && run.contains("done"), "{run}");
    driver.screenshot(&shots.join("1-firing.png"));

    // Host data is text: the labels show literally, nothing ran, no element was made.
    let row = driver.wait_for(
        r#"#alerts tr[data-alertname="HostileLabels"]"#,
        Duration::from_secs(5),
        "the hostile alert",
    );
    let text = driver.text(&row);
    assert!(text.contains("who=<script>window.pwned=1</script>"), "{text}");
    assert!(text.contains("img=<img src=x onerror=window.pwned=2>"), "{text}");
    assert!(text.contains("the host says <script>window.pwned=1</script>"), "{text}");
    let dom = driver.script(
        "return [typeof window.pwned, document.querySelectorAll('main img, main script, main iframe').length, \
         Array.from(document.querySelectorAll('#charts figcaption')).map(f => f.textContent).join('\\n')]",
        json!([]),
    );
    assert_eq!(dom[0], "undefined", "no script from host data ran: {dom}");
    assert_eq!(dom[1], 0, "no element from host data: {dom}");
    assert!(
        dom[2].as_str().unwrap().contains("<img src=x onerror=window.pwned=2>"),
        "{dom}"
    );

    // The action awaiting approval is listed; without the token the page
    // cannot approve it.
    let waiting = r#"#actions tr[data-action="1"][data-state="awaiting_approval"]"#;
    let row = driver.wait_for(waiting, Duration::from_secs(15), "the action awaiting approval");
    let text = driver.text(&row);
    assert!(
        text.contains("ProcessesRunning") && text.contains("host1") && text.contains("fix.yml"),
        "{text}"
    );
    driver.click(&driver.wait_for(
        &format!("{waiting} button.approve"),
        Duration::from_secs(5),
        "the approve button",
    ));
    let refused = driver.wait_for("#action-result.error", Duration::from_secs(10), "the refusal");
    assert!(
        driver.text(&refused).contains("token is missing or wrong"),
        "{}",
        driver.text(&refused)
    );
    assert_eq!(api(port, "/api/actions")["actions"][0]["state"], "awaiting_approval");

    // Without the token the page cannot silence (and neither can a plain POST).
    driver.type_into("#silence-matchers", "alertname=ProcessesRunning, host=host1");
    driver.type_into("#silence-comment", "replacing the disk");
    driver.type_into("#silence-author", "webdriver");
    driver.click(&driver.wait_for("#silence-submit", Duration::from_secs(5), "the submit button"));
    let refused = driver.wait_for("#silence-result.error", Duration::from_secs(10), "the refusal");
    assert!(
        driver.text(&refused).contains("token is missing or wrong"),
        "{}",
        driver.text(&refused)
    );
    let body = r#"{"matchers":["alertname=ProcessesRunning"],"comment":"x"}"#;
    let (code, _) = http(
        port,
        "POST",
        "/api/silences",
        &[("Content-Type", "application/json")],
        body,
    );
    assert_eq!(code, 401);
    assert_eq!(api(port, "/api/silences")["silences"], json!([]));

    // With the token: the silence is created, the alert shows silenced, the API agrees.
    driver.type_into("#token", TOKEN);
    driver.click(&driver.wait_for("#token-use", Duration::from_secs(5), "the token button"));
    driver.click(&driver.wait_for("#silence-submit", Duration::from_secs(5), "the submit button"));
    let created = driver.wait_for(
        "#silence-result:not(.error)",
        Duration::from_secs(10),
        "the new silence",
    );
    let msg = driver.text(&created);
    assert!(
        msg.contains("silence 1 created") && msg.contains("matches 1 current alerts"),
        "{msg}"
    );
    let silenced = r#"#alerts tr[data-alertname="ProcessesRunning"][data-silenced="yes"]"#;
    let row = driver.wait_for(silenced, Duration::from_secs(15), "the alert shown silenced");
    assert!(
        driver.text(&row).contains("silenced by silence 1"),
        "{}",
        driver.text(&row)
    );
    driver.wait_for(
        r#"#silences tr[data-silence="1"][data-status="active"]"#,
        Duration::from_secs(5),
        "the silence listed",
    );
    let a = api(port, "/api/alerts");
    assert_eq!(
        alert(&a, "ProcessesRunning").unwrap()["suppressed"],
        "silenced by silence 1",
        "{a}"
    );
    assert_eq!(alert(&a, "HostileLabels").unwrap()["suppressed"], Value::Null, "{a}");
    let s = api(port, "/api/silences");
    assert_eq!(
        s["silences"][0]["matchers"],
        json!(["alertname=ProcessesRunning", "host=host1"]),
        "{s}"
    );
    assert_eq!(s["silences"][0]["createdBy"], "webdriver", "{s}");
    assert_eq!(s["silences"][0]["status"], "active", "{s}");
    // The CLI reads the same state file.
    let state = work.path().join("watch.db").display().to_string();
    let (code, out, err) = rigger(&[
        "watch",
        "silence",
        "list",
        "--json",
        "-c",
        &cfg.display().to_string(),
        "--state",
        &state,
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("\"comment\": \"replacing the disk\""), "{out}");
    driver.screenshot(&shots.join("2-silenced.png"));

    // With the token the page approves the action: it runs and succeeds.
    driver.click(&driver.wait_for(
        &format!("{waiting} button.approve"),
        Duration::from_secs(5),
        "the approve button",
    ));
    let said = driver.wait_for("#action-result:not(.error)", Duration::from_secs(10), "the approval");
    assert!(
        driver.text(&said).contains("action 1 approved"),
        "{}",
        driver.text(&said)
    );
    let done = driver.wait_for(
        r#"#actions tr[data-action="1"][data-state="succeeded"]"#,
        Duration::from_secs(40),
        "the approved action to succeed",
    );
    let text = driver.text(&done);
    assert!(
        text.contains("decided by status page") && text.contains("0 changed"),
        "{text}"
    );
    let a = &api(port, "/api/actions")["actions"][0];
    assert_eq!(a["state"], "succeeded", "{a}");
    assert_eq!(a["approvedBy"], "status page", "{a}");
    assert!(
        driver.find_all("#actions button.approve").is_empty(),
        "no approve button once decided"
    );

    // Expire it from the page: the alert is no longer silenced.
    let expire = driver.wait_for(
        r#"#silences tr[data-silence="1"] button.expire"#,
        Duration::from_secs(5),
        "the expire button",
    );
    driver.click(&expire);
    driver.wait_for(
        r#"#silences tr[data-silence="1"][data-status="expired"]"#,
        Duration::from_secs(10),
        "the silence expired",
    );
    driver.wait_for(firing, Duration::from_secs(15), "the alert no longer silenced");
    wait_until(Duration::from_secs(10), "the API to show the alert unsilenced", || {
        alert(&api(port, "/api/alerts"), "ProcessesRunning").is_some_and(|a| a["suppressed"].is_null())
    });
    assert_eq!(api(port, "/api/silences")["silences"][0]["status"], "expired");
    driver.screenshot(&shots.join("3-expired.png"));
    let log = watch.log();
    assert!(!log.contains("panicked"), "{log}");
    drop(driver);
    eprintln!("webstatus: screenshots in {}", shots.display());
}

/// With `--listen-token-file` the page loads (it holds no data) but shows
/// nothing from the watch until the token is entered; the listen token then
/// also lets the page change silences (no `--status-token-file`).
#[test]
fn status_page_behind_a_listen_token_asks_for_it() {
    let Some((chromium, chromedriver)) = browser() else {
        return;
    };
    let hosts = TestHosts::new(1);
    let work = tempfile::Builder::new()
        .prefix("webstatus-")
        .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
        .unwrap();
    let cfg = work.path().join("watch.yml");
    std::fs::write(
        &cfg,
        "interval: 1s\nrules:\n  - alert: Procs\n    metric: processes\n    threshold: \"> 0\"\n\
         receivers:\n  - name: nowhere\n    webhook: {url: 'http://127.0.0.1:9/hook'}\n",
    )
    .unwrap();
    let token_file = work.path().join("listen.token");
    std::fs::write(&token_file, format!("{TOKEN}\n")).unwrap();
    std::fs::set_permissions(&token_file, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let port = free_port();
    let mut cmd = Command::new(rigger_bin());
    cmd.args(["watch", "-c", &cfg.display().to_string()])
        .args(["-i", &hosts.inventory().display().to_string()])
        .args(["--known-hosts", &hosts.known_hosts().display().to_string()])
        .args(["--state", &work.path().join("watch.db").display().to_string()])
        .args(["--listen", &port.to_string()])
        .args(["--listen-token-file", &token_file.display().to_string()])
        .args(["--check-db", &work.path().join("none.db").display().to_string()]);
    let watch = Watch::spawn(cmd);
    watch.wait_log(
        &format!("status page on http://127.0.0.1:{port}/status (silences can be created"),
        Duration::from_secs(20),
    );
    assert_eq!(http(port, "GET", "/api/hosts", &[], "").0, 401);
    assert_eq!(http(port, "GET", "/status", &[], "").0, 200);

    let driver = Driver::start(&chromium, &chromedriver, &work.path().join("chromium-profile"));
    driver.goto(&format!("http://127.0.0.1:{port}/status"));
    let msg = driver.wait_for("#message", Duration::from_secs(10), "the message line");
    wait_until(Duration::from_secs(10), "the page to ask for the token", || {
        driver.text(&msg).contains("needs the token")
    });
    assert!(
        driver.find_all("#hosts tr[data-host]").is_empty(),
        "no data without the token"
    );
    driver.type_into("#token", TOKEN);
    driver.click(&driver.wait_for("#token-use", Duration::from_secs(5), "the token button"));
    driver.wait_for(
        r#"#hosts tr[data-host="host1"]"#,
        Duration::from_secs(15),
        "host1 with the token",
    );
    driver.wait_for(
        r#"#alerts tr[data-alertname="Procs"]"#,
        Duration::from_secs(20),
        "the alert",
    );
    let disabled = driver.script("return document.getElementById('silence-submit').disabled", json!([]));
    assert_eq!(disabled, false, "the listen token lets the page change silences");
    let empty = driver.text(&driver.wait_for("#checks-db", Duration::from_secs(5), "the check db line"));
    assert!(empty.contains("no check history yet"), "{empty}");
    let shots = Path::new(env!("CARGO_TARGET_TMPDIR")).join("webstatus");
    std::fs::create_dir_all(&shots).unwrap();
    driver.screenshot(&shots.join("4-listen-token.png"));
}
