//! `rigger check`: drift detection against real sshd test hosts.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::support::{build_deb, down_host, rigger, rigger_bin, sysv_init_script, HostOpts, TestHosts};

const PLAYBOOK: &str = r#"
- name: Site
  hosts: all
  gather_facts: false
  tasks:
    - name: app directory
      file:
        path: /srv/app
        state: directory
        mode: "0755"
    - name: app config
      copy:
        dest: /srv/app/app.conf
        content: "port=8080\nworkers=4\n"
        mode: "0644"
    - name: debug off
      lineinfile:
        path: /srv/app/settings
        regexp: "^debug="
        line: "debug=false"
        create: true
        mode: "0644"
    - name: motd
      template:
        src: motd.j2
        dest: /srv/app/motd
        mode: "0644"
    - name: a command is never run in check mode
      command: touch /srv/app/touched
"#;

/// A project directory with the playbook, its template and a history db path.
struct Project {
    dir: tempfile::TempDir,
}

impl Project {
    fn new() -> Project {
        let dir = tempfile::Builder::new()
            .prefix("check-")
            .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
            .unwrap();
        fs::write(dir.path().join("site.yml"), PLAYBOOK).unwrap();
        fs::write(dir.path().join("motd.j2"), "Welcome to {{ inventory_hostname }}\n").unwrap();
        Project { dir }
    }
    fn path(&self, name: &str) -> String {
        self.dir.path().join(name).display().to_string()
    }
    fn db(&self) -> String {
        self.path("state/check.db")
    }
}

/// sha256 and mode of every file under a host's /srv/app.
fn snapshot(root: &Path) -> BTreeMap<String, (String, u32)> {
    let mut out = BTreeMap::new();
    let dir = root.join("app");
    out.insert(
        "app/".into(),
        (String::new(), fs::metadata(&dir).unwrap().permissions().mode() & 0o7777),
    );
    for e in fs::read_dir(&dir).unwrap() {
        let e = e.unwrap();
        let data = fs::read(e.path()).unwrap();
        let sum: String = Sha256::digest(&data).iter().map(|b| format!("{b:02x}")).collect();
        let mode = e.metadata().unwrap().permissions().mode() & 0o7777;
        out.insert(e.file_name().to_string_lossy().into_owned(), (sum, mode));
    }
    out
}

fn check_args<'a>(inv: &'a str, kh: &'a str, db: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut v = vec!["check", "-i", inv, "--known-hosts", kh, "--db", db];
    v.extend_from_slice(extra);
    v
}

fn json(s: &str) -> Value {
    serde_json::from_str(s).unwrap_or_else(|e| panic!("not JSON ({e}):\n{s}"))
}

fn host<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["hosts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["name"] == name)
        .unwrap_or_else(|| panic!("no host {name} in {report}"))
}

#[test]
fn check_detects_drift_without_changing_hosts() {
    let hosts = TestHosts::with_opts(2, HostOpts { isolated_root: true });
    let p = Project::new();
    let inv = hosts.inventory().display().to_string();
    let kh = hosts.known_hosts().display().to_string();
    let db = p.db();
    let site = p.path("site.yml");

    // Converge both hosts for real, then remove what the command task made.
    let (code, out, err) = rigger(&["run", &site, "-i", &inv, "--known-hosts", &kh]);
    assert_eq!(code, 0, "{out}\n{err}");
    for i in 0..2 {
        fs::remove_file(hosts.root_dir(i).unwrap().join("app/touched")).unwrap();
    }

    // 1. In sync: exit 0, nothing but the headline.
    let mut args = check_args(&inv, &kh, &db, &[&site]);
    let (code, out, err) = rigger(&args);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains("all 2 hosts in sync"), "{out}");
    assert!(!out.contains("host1"), "short report lists in-sync hosts:\n{out}");
    assert!(
        !hosts.root_dir(0).unwrap().join("app/touched").exists(),
        "the command ran in check mode"
    );

    // 2. Drift on host2: file content, mode, and a line.
    let root2 = hosts.root_dir(1).unwrap();
    fs::write(root2.join("app/app.conf"), "port=9090\nworkers=4\n").unwrap();
    fs::set_permissions(root2.join("app/motd"), fs::Permissions::from_mode(0o600)).unwrap();
    fs::write(root2.join("app/settings"), "debug=true\n").unwrap();
    let before = [snapshot(&hosts.root_dir(0).unwrap()), snapshot(&root2)];

    let (code, out, err) = rigger(&args);
    assert_eq!(code, 2, "{out}\n{err}");
    assert!(out.contains("1 drifted of 2 hosts"), "{out}");
    assert!(out.contains("host2: DRIFTED"), "{out}");
    assert!(!out.contains("host1"), "{out}");
    assert!(out.contains("drifted [app config]"), "{out}");
    assert!(
        out.contains("      -port=9090\n      +port=8080\n"),
        "exact content diff:\n{out}"
    );
    assert!(
        out.contains("      -debug=true\n      +debug=false\n"),
        "exact line diff:\n{out}"
    );
    assert!(out.contains("drifted [motd]"), "{out}");
    assert!(
        out.contains("      -mode: '0600'\n      +mode: '0644'\n"),
        "exact mode diff:\n{out}"
    );
    assert!(!out.contains("[app directory]"), "in-sync task listed:\n{out}");
    let after = [snapshot(&hosts.root_dir(0).unwrap()), snapshot(&root2)];
    assert_eq!(before, after, "rigger check changed a host");
    assert!(!root2.join("app/touched").exists(), "the command ran in check mode");

    // 3. JSON report: schema fields.
    args.extend_from_slice(&["--format", "json"]);
    let (code, out, err) = rigger(&args);
    assert_eq!(code, 2, "{err}");
    let r = json(&out);
    assert_eq!(r["schema_version"], 1);
    assert_eq!(r["exit_code"], 2);
    assert_eq!(r["summary"]["hosts"], 2);
    assert_eq!(r["summary"]["drifted"], 1);
    assert_eq!(r["summary"]["in_sync"], 1);
    assert_eq!(r["playbook"]["sha256"].as_str().unwrap().len(), 64);
    assert!(r["run_id"].as_i64().unwrap() >= 3);
    assert_eq!(host(&r, "host1")["status"], "in_sync");
    let h2 = host(&r, "host2");
    assert_eq!(h2["status"], "drifted");
    let tasks = h2["tasks"].as_array().unwrap();
    let conf = tasks.iter().find(|t| t["task"] == "app config").unwrap();
    assert_eq!(conf["status"], "drifted");
    assert_eq!(conf["diff"][0]["before"], "port=9090\nworkers=4\n");
    assert_eq!(conf["diff"][0]["after"], "port=8080\nworkers=4\n");
    assert_eq!(conf["since"]["runs"], 2);
    assert!(conf["location"].as_str().unwrap().contains("site.yml:"), "{conf}");
    let cmd = tasks
        .iter()
        .find(|t| t["task"] == "a command is never run in check mode")
        .unwrap();
    assert_eq!(cmd["status"], "skipped");
    assert_eq!(
        tasks.iter().find(|t| t["task"] == "app directory").unwrap()["status"],
        "ok"
    );

    // 4. JUnit: parsed by a real XML parser.
    args.truncate(args.len() - 2);
    args.extend_from_slice(&["--format", "junit"]);
    let (code, out, err) = rigger(&args);
    assert_eq!(code, 2, "{err}");
    let junit = p.path("junit.xml");
    fs::write(&junit, &out).unwrap();
    let parsed = Command::new("/usr/bin/python3")
        .args([
            "-c",
            "import sys, xml.etree.ElementTree as E\n\
             r = E.parse(sys.argv[1]).getroot()\n\
             for s in r.findall('testsuite'):\n\
             \x20   fails = [c.get('name') for c in s.findall('testcase') if c.find('failure') is not None]\n\
             \x20   print(s.get('name'), len(s.findall('testcase')), ','.join(fails))",
            &junit,
        ])
        .output()
        .unwrap();
    assert!(parsed.status.success(), "{}", String::from_utf8_lossy(&parsed.stderr));
    assert_eq!(
        String::from_utf8_lossy(&parsed.stdout),
        "host1 5 \nhost2 5 app config,debug off,motd\n"
    );

    // 5. History: the fifth run (fourth with drift) says how long the drift has existed.
    args.truncate(args.len() - 2);
    let (code, out, _) = rigger(&args);
    assert_eq!(code, 2);
    assert!(out.contains("(since 4 runs / "), "{out}");
    let (code, out, err) = rigger(&["check", "history", "--db", &db, "--format", "json"]);
    assert_eq!(code, 0, "{err}");
    let runs = json(&out)["runs"].as_array().unwrap().clone();
    assert_eq!(runs.len(), 5);
    assert_eq!(runs[0]["drifted"], 1);
    assert_eq!(runs[4]["drifted"], 0);
    assert!(runs.iter().all(|r| r["status"] == "done"));
    let (code, out, _) = rigger(&["check", "history", "--db", &db]);
    assert_eq!(code, 0);
    assert_eq!(out.lines().count(), 6, "{out}");
    let (first, second) = (runs[4]["id"].to_string(), runs[3]["id"].to_string());
    let (code, out, err) = rigger(&["check", "diff", &first, &second, "--db", &db]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("new drift (3):\n  host2 [app config]"), "{out}");
    assert!(out.contains("+port=8080"), "{out}");
    assert!(out.contains("resolved drift (0)"), "{out}");
    let (code, out, _) = rigger(&["check", "diff", &second, &first, "--db", &db, "--format", "json"]);
    assert_eq!(code, 0);
    assert_eq!(json(&out)["resolved"].as_array().unwrap().len(), 3);

    // 6. Unreachable host: 4 alone, 6 with drift.
    let down = down_host();
    let base = fs::read_to_string(hosts.inventory()).unwrap();
    let host1_line = base.lines().find(|l| l.starts_with("host1 ")).unwrap();
    let inv4 = p.path("inv4.ini");
    fs::write(
        &inv4,
        format!("{host1_line}\n{}\n", down.inventory_line("gone", hosts.client_key())),
    )
    .unwrap();
    let (code, out, err) = rigger(&check_args(&inv4, &kh, &db, &[&site, "-T", "3"]));
    assert_eq!(code, 4, "{out}\n{err}");
    assert!(out.contains("gone: UNREACHABLE"), "{out}");
    let inv6 = p.path("inv6.ini");
    fs::write(
        &inv6,
        format!("{base}{}\n", down.inventory_line("gone", hosts.client_key())),
    )
    .unwrap();
    let (code, out, err) = rigger(&check_args(&inv6, &kh, &db, &[&site, "-T", "3"]));
    assert_eq!(code, 6, "{out}\n{err}");
    assert!(out.contains("1 drifted, 1 unreachable of 3 hosts"), "{out}");

    // 7. Errors: a failing task (1) and a broken playbook (1).
    let bad = p.path("bad.yml");
    fs::write(
        &bad,
        "- hosts: all\n  gather_facts: false\n  tasks:\n    - name: missing source\n      copy:\n        src: /nonexistent/file\n        dest: /srv/app/x\n",
    )
    .unwrap();
    let (code, out, err) = rigger(&check_args(&inv, &kh, &db, &[&bad]));
    assert_eq!(code, 1, "{out}\n{err}");
    assert!(out.contains("FAILED"), "{out}");
    fs::write(&bad, "- hosts: all\n  tasks:\n    - copy: {dest: /x, bogus_arg: 1}\n").unwrap();
    let (code, _, err) = rigger(&check_args(&inv, &kh, &db, &[&bad]));
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("bad.yml:3"), "{err}");

    // 8. Remediation: only the drifted host is changed, and it is recorded.
    let host1_before = snapshot(&hosts.root_dir(0).unwrap());
    let (code, out, err) = rigger(&check_args(&inv, &kh, &db, &[&site, "--remediate"]));
    assert_eq!(code, 2, "{out}\n{err}");
    assert!(out.contains("remediation:\n  host2: fixed"), "{out}");
    assert_eq!(
        fs::read_to_string(root2.join("app/app.conf")).unwrap(),
        "port=8080\nworkers=4\n"
    );
    assert_eq!(fs::read_to_string(root2.join("app/settings")).unwrap(), "debug=false\n");
    assert_eq!(
        fs::metadata(root2.join("app/motd")).unwrap().permissions().mode() & 0o777,
        0o644
    );
    assert_eq!(snapshot(&hosts.root_dir(0).unwrap()), host1_before, "host1 was touched");
    let (code, out, err) = rigger(&check_args(&inv, &kh, &db, &[&site]));
    assert_eq!(code, 0, "{out}\n{err}");
    let (_, out, _) = rigger(&["check", "history", "--db", &db, "--format", "json", "-n", "2"]);
    assert_eq!(json(&out)["runs"][1]["remediated"], 1);
    assert_eq!(
        sqlite(&db, "SELECT host || ':' || task FROM remediations ORDER BY task"),
        "host2:a command is never run in check mode\nhost2:app config\nhost2:debug off\nhost2:motd\n"
    );
}

/// None while the database or its tables do not exist yet.
fn try_sqlite(db: &str, sql: &str) -> Option<String> {
    if !Path::new(db).exists() {
        return None;
    }
    let out = Command::new("sqlite3").args([db, sql]).output().unwrap();
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

fn sqlite(db: &str, sql: &str) -> String {
    let out = Command::new("sqlite3").args([db, sql]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

const SLOW: &str = r#"
- hosts: all
  gather_facts: false
  tasks:
    - name: slow probe
      command: sleep {{ secs | default(30) }}
      check_mode: false
      changed_when: false
"#;

fn spawn_check(args: &[&str]) -> std::process::Child {
    Command::new(rigger_bin())
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn wait_for(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) {
    let end = Instant::now() + timeout;
    while !f() {
        assert!(Instant::now() < end, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn check_lock_serializes_runs_and_a_killed_run_leaves_history_consistent() {
    let hosts = TestHosts::new(1);
    let p = Project::new();
    fs::write(p.path("slow.yml"), SLOW).unwrap();
    let inv = hosts.inventory().display().to_string();
    let kh = hosts.known_hosts().display().to_string();
    let db = p.db();
    let slow = p.path("slow.yml");

    // A run that is killed mid-run.
    let mut first = spawn_check(&check_args(&inv, &kh, &db, &[&slow]));
    wait_for("the first run to start its task", Duration::from_secs(30), || {
        try_sqlite(&db, "SELECT status FROM runs").as_deref() == Some("running\n")
    });
    // A second run of the same check gives up after --lock-timeout with exit 3.
    let t = Instant::now();
    let (code, out, err) = rigger(&check_args(
        &inv,
        &kh,
        &db,
        &[&slow, "--lock-timeout", "1", "-e", "secs=0"],
    ));
    assert_eq!(code, 3, "{out}\n{err}");
    assert!(t.elapsed() >= Duration::from_secs(1));
    assert!(err.contains("another run of this check"), "{err}");
    assert!(err.contains(&format!("pid {}", first.id())), "{err}");
    first.kill().unwrap(); // SIGKILL
    first.wait().unwrap();
    assert_eq!(sqlite(&db, "PRAGMA integrity_check"), "ok\n");
    assert_eq!(sqlite(&db, "SELECT count(*) FROM task_results"), "0\n");

    // The next run works, and marks the killed one interrupted.
    let (code, out, err) = rigger(&check_args(&inv, &kh, &db, &[&slow, "-e", "secs=0"]));
    assert_eq!(code, 0, "{out}\n{err}");
    let (code, out, _) = rigger(&["check", "history", "--db", &db, "--format", "json"]);
    assert_eq!(code, 0);
    let runs = json(&out)["runs"].as_array().unwrap().clone();
    let statuses: Vec<&str> = runs.iter().map(|r| r["status"].as_str().unwrap()).collect();
    assert_eq!(statuses, ["done", "interrupted"]);

    // Two overlapping runs: the second waits for the first, they never overlap.
    let a = spawn_check(&check_args(&inv, &kh, &db, &[&slow, "-e", "secs=2"]));
    wait_for("run A to hold the lock", Duration::from_secs(30), || {
        try_sqlite(&db, "SELECT count(*) FROM runs WHERE status = 'running'").as_deref() == Some("1\n")
    });
    let (code, out, err) = rigger(&check_args(
        &inv,
        &kh,
        &db,
        &[&slow, "-e", "secs=0", "--lock-timeout", "60"],
    ));
    assert_eq!(code, 0, "{out}\n{err}");
    let a = a.wait_with_output().unwrap();
    assert_eq!(a.status.code(), Some(0), "{}", String::from_utf8_lossy(&a.stderr));
    let rows = sqlite(
        &db,
        "SELECT started, finished FROM runs WHERE status = 'done' ORDER BY id DESC LIMIT 2",
    );
    let v: Vec<Vec<i64>> = rows
        .lines()
        .map(|l| l.split('|').map(|x| x.parse().unwrap()).collect())
        .collect();
    // Newest (B) started no earlier than A finished.
    assert!(v[0][0] >= v[1][1], "runs overlapped: {rows}");
}

#[test]
fn check_mails_the_report_to_a_real_smtp_server() {
    let hosts = TestHosts::with_opts(1, HostOpts { isolated_root: true });
    let p = Project::new();
    let inv = hosts.inventory().display().to_string();
    let kh = hosts.known_hosts().display().to_string();
    let db = p.db();
    let site = p.path("site.yml");
    let (code, out, err) = rigger(&["run", &site, "-i", &inv, "--known-hosts", &kh]);
    assert_eq!(code, 0, "{out}\n{err}");
    fs::write(hosts.root_dir(0).unwrap().join("app/app.conf"), "port=1\n").unwrap();

    let smtp = SmtpServer::start(&p.dir.path().join("maildir"));
    let config = p.path("rigger.toml");
    fs::write(
        &config,
        format!(
            "[check]\nmail_to = [\"ops@example.com\"]\nmail_from = \"rigger@example.com\"\n\n[check.smtp]\nhost = \"127.0.0.1\"\nport = {}\ntls = \"none\"\n",
            smtp.port
        ),
    )
    .unwrap();
    // In sync hosts do not mail by default: this run drifts, so it mails.
    let (code, out, err) = rigger(&check_args(&inv, &kh, &db, &[&site, "--config", &config]));
    assert_eq!(code, 2, "{out}\n{err}");
    let msgs = smtp.messages(1);
    let m = parse_mail(&msgs[0]);
    assert_eq!(m["from"], "rigger@example.com");
    assert_eq!(m["to"], "ops@example.com");
    assert!(m["subject"].as_str().unwrap().contains("1 drifted of 1 hosts"), "{m}");
    assert_eq!(m["content_type"], "multipart/alternative");
    let parts = m["parts"].as_array().unwrap();
    assert_eq!(parts.len(), 2, "{m}");
    assert_eq!(parts[0]["type"], "text/plain");
    assert_eq!(parts[1]["type"], "text/html");
    let plain = parts[0]["body"].as_str().unwrap();
    assert!(plain.contains("host1: DRIFTED"), "{plain}");
    assert!(plain.contains("-port=1\n") && plain.contains("+port=8080"), "{plain}");
    let html = parts[1]["body"].as_str().unwrap();
    assert!(html.contains("<h2>host1 &mdash; drifted</h2>"), "{html}");
    assert!(html.contains("+port=8080"), "{html}");

    // Back in sync: no mail unless --mail-always.
    let (code, _, err) = rigger(&["run", &site, "-i", &inv, "--known-hosts", &kh]);
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = rigger(&check_args(&inv, &kh, &db, &[&site, "--config", &config]));
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = rigger(&check_args(
        &inv,
        &kh,
        &db,
        &[&site, "--config", &config, "--mail-always"],
    ));
    assert_eq!(code, 0, "{err}");
    let msgs = smtp.messages(2);
    assert_eq!(
        msgs.len(),
        2,
        "a mail was sent for an in-sync run without --mail-always"
    );
    assert!(parse_mail(&msgs[1])["subject"]
        .as_str()
        .unwrap()
        .contains("all 1 hosts in sync"));
}

/// python3 -m aiosmtpd writing every message to a Maildir.
struct SmtpServer {
    child: std::process::Child,
    port: u16,
    maildir: PathBuf,
}

impl SmtpServer {
    fn start(maildir: &Path) -> SmtpServer {
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
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
            .arg(maildir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("python3-aiosmtpd (scripts/test-deps.sh)");
        wait_for("aiosmtpd to listen", Duration::from_secs(20), || {
            std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
        });
        SmtpServer {
            child,
            port,
            maildir: maildir.to_path_buf(),
        }
    }

    /// The raw messages, oldest first, once there are `n`.
    fn messages(&self, n: usize) -> Vec<Vec<u8>> {
        let new = self.maildir.join("new");
        let mut files = Vec::new();
        wait_for("the mail", Duration::from_secs(20), || {
            files = fs::read_dir(&new)
                .map(|d| d.filter_map(|e| e.ok()).map(|e| e.path()).collect())
                .unwrap_or_default();
            files.len() >= n
        });
        files.sort_by_key(|f| fs::metadata(f).and_then(|m| m.modified()).unwrap());
        files.iter().map(|f| fs::read(f).unwrap()).collect()
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Parse a message with Python's email package: headers and decoded parts.
fn parse_mail(raw: &[u8]) -> Value {
    let mut child = Command::new("/usr/bin/python3")
        .args([
            "-c",
            "import sys, json, email\n\
             from email import policy\n\
             m = email.message_from_binary_file(sys.stdin.buffer, policy=policy.default)\n\
             parts = [{'type': p.get_content_type(), 'body': p.get_content()} for p in m.iter_parts()]\n\
             print(json.dumps({'from': str(m['From']), 'to': str(m['To']), 'subject': str(m['Subject']),\n\
             \x20   'content_type': m.get_content_type(), 'parts': parts}))",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child.stdin.take().unwrap().write_all(raw).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    json(&String::from_utf8_lossy(&out.stdout))
}

#[test]
fn check_install_writes_and_removes_a_crontab_entry() {
    let p = Project::new();
    // A private crontab spool, so the machine's crontabs stay untouched.
    let spool = p.dir.path().join("crontabs");
    fs::create_dir(&spool).unwrap();
    let script = format!(
        "set -e\n\
         chgrp crontab {spool} && chmod 1730 {spool}\n\
         mount --bind {spool} /var/spool/cron/crontabs\n\
         echo '5 5 * * * /bin/true # keep me' | crontab -\n\
         {rigger} check {site} -i 'web1,' --cron '0 3 * * *' --install --scheduler cron --db {db}\n\
         crontab -l > {out1}\n\
         {rigger} check {site} -i 'web1,' --cron '30 4 * * *' --install --scheduler cron --db {db}\n\
         crontab -l > {out2}\n\
         {rigger} check {site} -i 'web1,' --uninstall --scheduler cron\n\
         crontab -l > {out3}\n\
         {rigger} check {site} -i 'web1,' --cron 'bad cron' --install --scheduler cron || echo \"bad: $?\" > {out4}\n",
        spool = spool.display(),
        rigger = rigger_bin().display(),
        site = p.path("site.yml"),
        db = p.db(),
        out1 = p.path("out1"),
        out2 = p.path("out2"),
        out3 = p.path("out3"),
        out4 = p.path("out4"),
    );
    let out = Command::new("unshare")
        .args(["--mount", "--propagation", "private", "sh", "-c", &script])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let read = |n: &str| fs::read_to_string(p.path(n)).unwrap();
    let one = read("out1");
    assert!(one.starts_with("5 5 * * * /bin/true # keep me\n"), "{one}");
    assert!(one.contains("# rigger-check "), "{one}");
    let entry = one
        .lines()
        .find(|l| l.starts_with("0 3 * * * "))
        .unwrap_or_else(|| panic!("{one}"));
    assert!(entry.contains(&format!("check {}", p.path("site.yml"))), "{entry}");
    assert!(entry.contains(&format!("--db {}", p.db())), "{entry}");
    // Installing again replaces the entry.
    let two = read("out2");
    assert_eq!(two.matches("# rigger-check ").count(), 1, "{two}");
    assert!(two.contains("30 4 * * * ") && !two.contains("0 3 * * * "), "{two}");
    // Uninstalling leaves the other entries.
    assert_eq!(read("out3"), "5 5 * * * /bin/true # keep me\n");
    assert_eq!(read("out4"), "bad: 5\n");
}

/// Package and service drift on an overlay-root host (the machine's own
/// packages and services are never touched): a removed package and a stopped
/// service are reported as drift with their diffs, exit 2, and the host
/// stays exactly as it was (package still absent, service never started).
#[test]
fn check_reports_package_and_service_drift_without_fixing_it() {
    let hosts = TestHosts::with_overlay_root(1);
    let dir = hosts.dir().to_path_buf();
    let deb = build_deb(&dir, "rigger-drift", "1.0");
    fs::write(dir.join("rigger-drift.init"), sysv_init_script("rigger-drift")).unwrap();
    let site = dir.join("system.yml");
    fs::write(
        &site,
        format!(
            "- hosts: all\n  gather_facts: false\n  tasks:\n\
             \x20   - name: init script\n      copy: {{src: {init}, dest: /etc/init.d/rigger-drift, mode: '0755'}}\n\
             \x20   - name: drift package\n      apt: {{deb: {deb}}}\n\
             \x20   - name: drift service\n      service: {{name: rigger-drift, state: started}}\n",
            init = dir.join("rigger-drift.init").display(),
            deb = deb.display()
        ),
    )
    .unwrap();
    let site = site.display().to_string();
    let inv = hosts.inventory().display().to_string();
    let kh = hosts.known_hosts().display().to_string();
    let db = dir.join("check.db").display().to_string();
    let ssh = |cmd: &str| String::from_utf8_lossy(&hosts.ssh(0, cmd).stdout).into_owned();

    let (code, out, err) = rigger(&["run", &site, "-i", &inv, "--known-hosts", &kh]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(ssh("dpkg-query -W -f='${db:Status-Abbrev}' rigger-drift").starts_with("ii"));
    assert!(
        !Path::new("/usr/share/rigger-drift").exists(),
        "installed on the machine itself"
    );
    let args = check_args(&inv, &kh, &db, &[&site, "--format", "json"]);
    let (code, out, err) = rigger(&args);
    assert_eq!(code, 0, "converged host is in sync:\n{out}\n{err}");

    // Drift: the package is removed and the service stopped behind rigger's back.
    ssh("dpkg -r rigger-drift >/dev/null 2>&1; /etc/init.d/rigger-drift stop; : > /tmp/rigger-drift.calls");
    assert!(!ssh("dpkg-query -W -f='${db:Status-Abbrev}' rigger-drift 2>/dev/null").starts_with("ii"));
    let (code, out, err) = rigger(&args);
    assert_eq!(code, 2, "drift exit code:\n{out}\n{err}");
    let r = json(&out);
    let h = host(&r, "host1");
    assert_eq!(h["status"], "drifted", "{h}");
    let task = |name: &str| {
        h["tasks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["task"] == name)
            .unwrap_or_else(|| panic!("no task {name} in {h}"))
            .clone()
    };
    assert_eq!(task("init script")["status"], "ok");
    for t in ["drift package", "drift service"] {
        assert_eq!(task(t)["status"], "drifted", "{t}: {}", task(t));
    }
    let diff = |name: &str| task(name)["diff"].to_string();
    let pkg = &task("drift package")["diff"][0];
    assert_eq!(
        (pkg["before"].as_str(), pkg["after"].as_str()),
        (Some("rigger-drift: not installed\n"), Some("rigger-drift: 1.0\n")),
        "exact package diff: {pkg}"
    );
    let svc = diff("drift service");
    assert!(
        svc.contains("stopped") && svc.contains("started"),
        "service diff: {svc}"
    );

    // Nothing was fixed: the package is still absent, the service was only asked for its status.
    assert!(!ssh("dpkg-query -W -f='${db:Status-Abbrev}' rigger-drift 2>/dev/null").starts_with("ii"));
    let calls = ssh("cat /tmp/rigger-drift.calls");
    assert!(
        calls.lines().all(|l| l == "status"),
        "check mode only queried the service: {calls:?}"
    );
    assert_eq!(
        ssh("/etc/init.d/rigger-drift status && echo running || echo stopped").trim(),
        "stopped"
    );
}

/// `rigger check` learns the file state of the next tasks in one command per
/// host (one `stat` for every path, one `sha1sum`), and the tasks use it:
/// their own queries run no `stat`/`sha1sum`. A task run outside check mode
/// (`check_mode: false`) drops what was learnt, so a later task sees the
/// change it made: no stale "in sync".
#[test]
fn check_prefetches_file_state_and_forgets_it_after_a_real_change() {
    let hosts = TestHosts::with_opts(1, HostOpts { isolated_root: true });
    let p = Project::new();
    let inv = hosts.inventory().display().to_string();
    let kh = hosts.known_hosts().display().to_string();
    let db = p.db();
    let site = p.path("prefetch.yml");
    fs::write(
        &site,
        r#"
- hosts: all
  gather_facts: false
  tasks:
    - {name: dir, file: {path: /srv/pf, state: directory, mode: "0755"}}
    - {name: one, copy: {dest: /srv/pf/one, content: "1\n", mode: "0644"}}
    - {name: two, copy: {dest: /srv/pf/two, content: "2\n", mode: "0644"}}
    - {name: line, lineinfile: {path: /srv/pf/conf, line: "a=1", create: true, mode: "0644"}}
    - {name: look, stat: {path: /srv/pf/one}, register: st}
    - {name: same, assert: {that: ["st.stat.exists", "st.stat.checksum == 'e5fa44f2b31c1fb553b6021e7360d07d5d91ff5e'"]}}
"#,
    )
    .unwrap();
    let (code, out, err) = rigger(&["run", &site, "-i", &inv, "--known-hosts", &kh]);
    assert_eq!(code, 0, "{out}\n{err}");

    // In sync; the trace shows every command the host ran.
    let mut cmd = Command::new(rigger_bin());
    cmd.args(check_args(&inv, &kh, &db, &[&site]))
        .env("RIGGER_DEBUG_ROUNDTRIPS", "3");
    let (code, out, err) = crate::support::rigger_cmd(cmd, Duration::from_secs(120));
    assert_eq!(code, 0, "{out}\n{err}");
    let cmds: Vec<&str> = err
        .lines()
        .filter(|l| l.starts_with("rigger-roundtrips: host=host1 "))
        .collect();
    let shown = cmds.join("\n");
    let (batch, tasks): (Vec<&str>, Vec<&str>) = cmds
        .iter()
        .filter(|c| c.contains(" pipelined cmd="))
        .partition(|c| c.contains("echo '@N'"));
    assert_eq!(batch.len(), 1, "one prefetch:\n{shown}");
    for program in ["stat -c", "stat -L -c", "sha1sum"] {
        assert!(batch[0].contains(program), "{program} in the prefetch:\n{shown}");
    }
    // Only `stat` still asks the host (for its access tests); the other
    // tasks' queries are answered by the prefetch alone.
    assert_eq!(tasks.len(), 1, "{shown}");
    for t in tasks {
        // The file module's query stats a link's target only behind `[ -L path ]`.
        let unguarded = t.split("[ -L /srv/pf ] && {").next().unwrap();
        assert!(
            !unguarded.contains("stat -") && !unguarded.contains("sha1sum"),
            "a task ran its own stat or checksum:\n{t}"
        );
    }

    // Tasks outside check mode change two files between tasks that query
    // them: the later tasks must see the change.
    fs::write(
        &site,
        r#"
- hosts: all
  gather_facts: false
  tasks:
    - {name: one, copy: {dest: /srv/pf/one, content: "1\n", mode: "0644"}}
    - {name: two, copy: {dest: /srv/pf/two, content: "2\n", mode: "0644"}}
    - name: a real change during the check
      copy: {dest: /srv/pf/two, content: "changed\n"}
      check_mode: false
      changed_when: false
    - name: and another
      file: {path: /srv/pf/one, mode: "0600"}
      check_mode: false
      changed_when: false
    - {name: two again, copy: {dest: /srv/pf/two, content: "2\n", mode: "0644"}}
    - {name: one again, file: {path: /srv/pf/one, mode: "0644"}}
"#,
    )
    .unwrap();
    let (code, out, err) = rigger(&check_args(&inv, &kh, &db, &["--format", "json", &site]));
    assert_eq!(code, 2, "{out}\n{err}");
    let report = json(&out);
    let drifted: Vec<String> = host(&report, "host1")["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["status"] == "drifted")
        .map(|t| t["task"].as_str().unwrap_or("").to_string())
        .collect();
    assert_eq!(drifted, ["two again", "one again"], "{out}");
}

/// Runs `script` with `sh -c` in a private mount namespace where
/// /var/spool/cron/crontabs is the fresh directory `spool` (the machine's
/// crontabs stay untouched); `cwd` is where the script starts.
fn in_private_crontab(spool: &Path, cwd: &Path, script: &str) -> std::process::Output {
    fs::create_dir_all(spool).unwrap();
    let full = format!(
        "set -e\nchgrp crontab {spool} && chmod 1730 {spool}\nmount --bind {spool} /var/spool/cron/crontabs\n{script}",
        spool = spool.display()
    );
    Command::new("unshare")
        .args(["--mount", "--propagation", "private", "sh", "-c", &full])
        .current_dir(cwd)
        .output()
        .unwrap()
}

/// The command of the one rigger entry in a crontab, as cron hands it to
/// `/bin/sh -c` (the schedule's five fields removed, `\%` unescaped).
fn cron_command(crontab: &str) -> String {
    let line = crontab
        .lines()
        .skip_while(|l| !l.starts_with("# rigger-check "))
        .nth(1)
        .unwrap_or_else(|| panic!("no rigger entry in:\n{crontab}"));
    let mut rest = line;
    for _ in 0..5 {
        rest = rest.trim_start().split_once(' ').unwrap().1;
    }
    rest.replace("\\%", "%")
}

/// #21.2: a check installed from a project directory (its rigger.toml, a
/// relative inventory, known_hosts and database found there) and run the
/// way cron runs it — from `/`, with cron's minimal environment — still
/// reads that config and mails its report to a real SMTP server. The mail
/// names the inventory, leads with the drift and gives the command that
/// remediates.
#[test]
fn check_installed_entry_runs_from_root_with_cron_env_and_mails() {
    let hosts = TestHosts::with_opts(1, HostOpts { isolated_root: true });
    let p = Project::new();
    let dir = p.dir.path();
    fs::copy(hosts.inventory(), dir.join("hosts.ini")).unwrap();
    fs::copy(hosts.known_hosts(), dir.join("known_hosts")).unwrap();
    let smtp = SmtpServer::start(&dir.join("maildir"));
    fs::write(
        dir.join("rigger.toml"),
        format!(
            "[check]\nmail_to = [\"ops@example.com\"]\nmail_from = \"rigger@example.com\"\n\n\
             [check.smtp]\nhost = \"127.0.0.1\"\nport = {}\ntls = \"none\"\n",
            smtp.port
        ),
    )
    .unwrap();
    let (code, out, err) = rigger(&[
        "run",
        &p.path("site.yml"),
        "-i",
        &p.path("hosts.ini"),
        "--known-hosts",
        &p.path("known_hosts"),
    ]);
    assert_eq!(code, 0, "{out}\n{err}");
    fs::write(hosts.root_dir(0).unwrap().join("app/app.conf"), "port=1\n").unwrap();

    let out = in_private_crontab(
        &dir.join("crontabs"),
        dir,
        &format!(
            "{rigger} check site.yml -i hosts.ini --known-hosts known_hosts --db state/check.db \
             --cron '0 3 * * *' --install --scheduler cron\ncrontab -l > crontab.out\n",
            rigger = rigger_bin().display()
        ),
    );
    let (so, se) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(out.status.success(), "{so}\n{se}");
    let crontab = fs::read_to_string(dir.join("crontab.out")).unwrap();
    let cmd = cron_command(&crontab);
    for part in [
        format!("--config {}", p.path("rigger.toml")),
        format!("--db {}", p.path("state/check.db")),
        format!("--known-hosts {}", p.path("known_hosts")),
        format!("-i {}", p.path("hosts.ini")),
        format!("check {}", p.path("site.yml")),
    ] {
        assert!(cmd.contains(&part), "`{part}` missing from the entry:\n{cmd}");
    }
    assert!(cmd.starts_with(&format!("cd {} && ", dir.display())), "{cmd}");

    // As cron runs it: from /, with nothing but cron's environment.
    let home = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let run = Command::new("env")
        .args(["-i", "PATH=/usr/bin:/bin", "SHELL=/bin/sh"])
        .arg(format!("HOME={}", home.path().display()))
        .args(["/bin/sh", "-c", &cmd])
        .current_dir("/")
        .output()
        .unwrap();
    let (so, se) = (
        String::from_utf8_lossy(&run.stdout),
        String::from_utf8_lossy(&run.stderr),
    );
    assert_eq!(run.status.code(), Some(2), "{so}\n{se}");
    let m = parse_mail(&smtp.messages(1)[0]);
    let subject = m["subject"].as_str().unwrap();
    assert!(
        subject.contains(&p.path("hosts.ini")),
        "the subject names the inventory: {subject}"
    );
    assert!(subject.contains("1 drifted of 1 hosts (1 drifted task)"), "{subject}");
    let plain = m["parts"][0]["body"].as_str().unwrap();
    let drift = plain.find("\nDRIFT (1 task(s)):\n\nhost1: DRIFTED\n  - drifted [app config]");
    let summary = plain.find("\nSummary: 1 host(s): 0 in sync, 1 drifted");
    assert!(
        drift.is_some() && summary.is_some() && drift < summary,
        "drift first, then the summary:\n{plain}"
    );
    assert!(plain.contains("      +port=8080\n"), "{plain}");
    assert!(
        !plain.contains("[app directory]"),
        "an unchanged task is listed:\n{plain}"
    );
    assert!(
        plain.contains(&format!(
            "To remediate:\n  rigger run {} -i {} --known-hosts {}\n",
            p.path("site.yml"),
            p.path("hosts.ini"),
            p.path("known_hosts")
        )),
        "{plain}"
    );
    // It recorded into the project's database, found through the cwd at install time.
    let (code, out, _) = rigger(&["check", "history", "--db", &p.db(), "--format", "json"]);
    assert_eq!(code, 0);
    assert_eq!(json(&out)["runs"][0]["delivery"], "mailed", "{out}");
}

/// #21.2: `--install` refuses an entry that would check something else when
/// run as cron runs it, and says what differs: an inventory script whose
/// hosts come from the caller's environment, an SMTP password that only
/// the environment holds. Nothing is installed.
#[test]
fn check_install_refuses_an_entry_that_would_behave_differently() {
    let p = Project::new();
    let dir = p.dir.path();
    let inv = dir.join("hosts.sh");
    fs::write(
        &inv,
        "#!/bin/sh\nif [ \"$1\" = --list ]; then\n  if [ -n \"$OPS_FLEET\" ]; then\n\
         \x20   echo '{\"web\": {\"hosts\": [\"web1\"]}, \"_meta\": {\"hostvars\": {}}}'\n\
         \x20 else echo '{\"_meta\": {\"hostvars\": {}}}'; fi\nelse echo '{}'; fi\n",
    )
    .unwrap();
    fs::set_permissions(&inv, fs::Permissions::from_mode(0o755)).unwrap();
    let rigger = rigger_bin().display().to_string();
    let out = in_private_crontab(
        &dir.join("crontabs"),
        dir,
        &format!(
            "echo '5 5 * * * /bin/true' | crontab -\n\
             OPS_FLEET=1 {rigger} check site.yml -i hosts.sh --db db --cron '0 3 * * *' --install --scheduler cron \
             2> err1 || echo $? > code1\n\
             RIGGER_SMTP_PASSWORD=s3cret {rigger} check site.yml -i 'web1,' --mail-to ops@example.com --db db \
             --cron '0 3 * * *' --install --scheduler cron 2> err2 || echo $? > code2\n\
             crontab -l > crontab.out\n"
        ),
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let read = |n: &str| fs::read_to_string(dir.join(n)).unwrap_or_default();
    assert_eq!(read("code1"), "1\n", "{}", read("err1"));
    let err1 = read("err1");
    assert!(
        err1.contains("not installed: run as cron runs it, this check would behave differently"),
        "{err1}"
    );
    assert!(err1.contains("hosts: here [\"web1\"], scheduled []"), "{err1}");
    assert_eq!(read("code2"), "1\n", "{}", read("err2"));
    let err2 = read("err2");
    assert!(err2.contains("smtp_password_set: here true, scheduled false"), "{err2}");
    assert!(
        err2.contains("hint: the SMTP password is never written into a schedule"),
        "{err2}"
    );
    assert!(!err2.contains("s3cret"), "{err2}");
    assert_eq!(read("crontab.out"), "5 5 * * * /bin/true\n");
}

/// #21.2: a report that cannot be delivered (the SMTP server is down) is
/// retried, then changes the exit code (+8: 2 becomes 10) and is recorded
/// in the history with the reason.
#[test]
fn check_retries_an_undeliverable_report_then_exits_8_more_and_records_it() {
    let hosts = TestHosts::with_opts(1, HostOpts { isolated_root: true });
    let p = Project::new();
    let inv = hosts.inventory().display().to_string();
    let kh = hosts.known_hosts().display().to_string();
    let db = p.db();
    let site = p.path("site.yml");
    let (code, out, err) = rigger(&["run", &site, "-i", &inv, "--known-hosts", &kh]);
    assert_eq!(code, 0, "{out}\n{err}");
    fs::write(hosts.root_dir(0).unwrap().join("app/app.conf"), "port=1\n").unwrap();
    // Nothing listens on this port: every attempt is refused.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let config = p.path("rigger.toml");
    fs::write(
        &config,
        format!(
            "[check]\nenvironment = \"production\"\nmail_to = [\"ops@example.com\"]\n\n\
             [check.smtp]\nhost = \"127.0.0.1\"\nport = {port}\ntls = \"none\"\nretries = 2\nretry_delay = 1\n"
        ),
    )
    .unwrap();
    let t = Instant::now();
    let (code, out, err) = rigger(&check_args(&inv, &kh, &db, &[&site, "--config", &config]));
    assert_eq!(code, 10, "drift (2) + report not delivered (8):\n{out}\n{err}");
    assert!(t.elapsed() >= Duration::from_secs(3), "retried 1 s, then 2 s later");
    assert!(err.contains("mail attempt 1 of 3 failed: SMTP 127.0.0.1: "), "{err}");
    assert!(err.contains("; retrying in 1 s"), "{err}");
    assert!(
        err.contains("mail attempt 2 of 3 failed: ") && err.contains("; retrying in 2 s"),
        "{err}"
    );
    assert!(
        err.contains("cannot mail the report: SMTP 127.0.0.1: ")
            && err.contains("(giving up after 3 attempt(s)); exit 10 (8 added: report not delivered)"),
        "{err}"
    );
    let (code, out, _) = rigger(&["check", "history", "--db", &db, "--format", "json"]);
    assert_eq!(code, 0);
    let run = &json(&out)["runs"][0];
    assert_eq!(run["exit_code"], 10, "{run}");
    assert_eq!(run["drifted"], 1, "{run}");
    let delivery = run["delivery"].as_str().unwrap_or_default();
    assert!(
        delivery.starts_with("failed: SMTP 127.0.0.1: ") && delivery.ends_with("(giving up after 3 attempt(s))"),
        "{run}"
    );
}

/// A systemd `--install` that systemd refuses (here: no systemd runs, so
/// `systemctl daemon-reload` fails) removes the unit files it wrote.
#[test]
fn check_failed_systemd_install_removes_its_units() {
    let p = Project::new();
    let dir = p.dir.path();
    let units = dir.join("units");
    fs::create_dir(&units).unwrap();
    fs::write(units.join("other.service"), "[Service]\nExecStart=/bin/true\n").unwrap();
    let script = format!(
        "set -e\nmount --bind {units} /etc/systemd/system\n\
         {rigger} check {site} -i 'web1,' --db {db} --cron '0 3 * * *' --install --scheduler systemd \
         > out 2> err || echo $? > code\n",
        units = units.display(),
        rigger = rigger_bin().display(),
        site = p.path("site.yml"),
        db = p.db(),
    );
    let out = Command::new("unshare")
        .args(["--mount", "--propagation", "private", "sh", "-c", &script])
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let read = |n: &str| fs::read_to_string(dir.join(n)).unwrap_or_default();
    assert_eq!(read("code"), "1\n", "{}\n{}", read("out"), read("err"));
    let err = read("err");
    assert!(err.contains("systemctl daemon-reload failed"), "{err}");
    assert!(
        err.contains("not installed (removed the unit files it wrote in /etc/systemd/system)"),
        "{err}"
    );
    let left: Vec<String> = fs::read_dir(&units)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(left, ["other.service"]);
}

/// #21.6: a managed directory deleted behind rigger's back: the `file`
/// task predicts it, and the tasks that write into it cannot run in check
/// mode. They are drift ("would be created by task …"), not failures; the
/// host's other tasks are still checked; exit 2. A failure that no earlier
/// predicted change explains (a directory nothing manages) stays a
/// failure (exit 1).
#[test]
fn check_reports_tasks_needing_a_predicted_directory_as_drift() {
    let hosts = TestHosts::with_opts(1, HostOpts { isolated_root: true });
    let p = Project::new();
    let inv = hosts.inventory().display().to_string();
    let kh = hosts.known_hosts().display().to_string();
    let db = p.db();
    let site = p.path("deps.yml");
    fs::write(
        &site,
        r#"
- hosts: all
  gather_facts: false
  tasks:
    - name: app directory
      file: {path: /srv/app, state: directory, mode: "0755"}
    - name: motd
      template: {src: motd.j2, dest: /srv/app/motd, mode: "0644"}
    - name: settings
      lineinfile: {path: /srv/app/settings, line: "debug=false"}
    - name: other config
      copy: {dest: /srv/other.conf, content: "a=1\n", mode: "0644"}
"#,
    )
    .unwrap();
    let root = hosts.root_dir(0).unwrap();
    fs::create_dir_all(root.join("app")).unwrap();
    fs::write(root.join("app/settings"), "debug=false\n").unwrap();
    let (code, out, err) = rigger(&["run", &site, "-i", &inv, "--known-hosts", &kh]);
    assert_eq!(code, 0, "{out}\n{err}");
    let (code, out, err) = rigger(&check_args(&inv, &kh, &db, &[&site]));
    assert_eq!(code, 0, "{out}\n{err}");

    // The managed directory is deleted, and another file drifts.
    fs::remove_dir_all(root.join("app")).unwrap();
    fs::write(root.join("other.conf"), "a=2\n").unwrap();
    let (code, out, err) = rigger(&check_args(&inv, &kh, &db, &[&site, "--format", "json"]));
    assert_eq!(code, 2, "drift, not a failure:\n{out}\n{err}");
    let r = json(&out);
    let h = host(&r, "host1");
    assert_eq!(h["status"], "drifted", "{h}");
    let task = |name: &str| {
        h["tasks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["task"] == name)
            .unwrap_or_else(|| panic!("no task {name} in {h}"))
            .clone()
    };
    assert_eq!(task("app directory")["status"], "drifted");
    for t in ["motd", "settings"] {
        let t = task(t);
        assert_eq!(t["status"], "drifted", "{t}");
        let msg = t["msg"].as_str().unwrap();
        assert!(
            msg.starts_with("/srv/app would be created by task \"app directory\" (") && msg.contains("deps.yml:5:7)"),
            "{msg}"
        );
    }
    // Still checked after them.
    let other = task("other config");
    assert_eq!(other["status"], "drifted", "{other}");
    assert_eq!(other["diff"][0]["before"], "a=2\n");
    assert!(!root.join("app").exists(), "check mode created the directory");
    let (code, out, _) = rigger(&check_args(&inv, &kh, &db, &[&site]));
    assert_eq!(code, 2);
    assert!(
        out.contains("  - drifted [motd] ")
            && out.contains("      /srv/app would be created by task \"app directory\""),
        "{out}"
    );

    // Nothing predicts /srv/none: the template's failure is a failure.
    let bad = p.path("unmanaged.yml");
    fs::write(
        &bad,
        "- hosts: all\n  gather_facts: false\n  tasks:\n    - {name: app directory, file: {path: /srv/app, state: directory}}\n\
         \x20   - {name: stray, template: {src: motd.j2, dest: /srv/none/motd}}\n",
    )
    .unwrap();
    let (code, out, err) = rigger(&check_args(&inv, &kh, &db, &[&bad]));
    assert_eq!(code, 1, "{out}\n{err}");
    assert!(out.contains("host1: FAILED") && out.contains("/srv/none"), "{out}");
}
