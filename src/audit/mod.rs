//! The audit log (issue #22): an append-only record of who ran what and what
//! it did, one JSON object per line, that shows when it was edited.
//!
//! Each record carries `seq` (one more than the record before it) and
//! `prev`, the SHA-256 of the previous line's bytes (64 zeros for the first
//! one), so changing a byte of a record breaks the next record's `prev`,
//! deleting a record breaks `seq` and `prev`, and `rigger audit verify`
//! ([`chain::verify`]) names the first record where the chain breaks. Cutting
//! records off the end leaves a shorter valid chain: `verify` prints the head
//! hash to keep elsewhere (`--head` checks against it).
//!
//! Several rigger processes may append to one log (a cron `rigger check`
//! and an operator's run): each record is appended under an exclusive
//! `flock`, after reading the log's last line when another process wrote
//! since. The file is created 0600 (its directory 0700) and only ever
//! appended to. A record that cannot be written is reported on stderr and
//! makes the run's exit code non-zero ([`failures`]); a log that cannot be
//! opened stops the command before it touches a host.
//!
//! What goes in: `run_start` (OS user, sudo user, controller, command line
//! with secret values masked, working directory, git commit of the playbook
//! directory), one record per host and task (`task`: status, the diff as a
//! summary of changed lines per file, never its content; the login used for
//! the host on its first record), `recap`, `run_end` (exit code, every YAML
//! and inventory file the run read with its SHA-256), watch notifications
//! and deliveries, and silences added or expired. Events are recorded after
//! the run's secret masking.

pub mod chain;
pub mod command;
pub mod files;

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use serde_json::{json, Map, Value};

use crate::output::{Event, Status};

use files::{files_read, sha256_hex};

/// `prev` of the first record.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// The environment variable naming the log (as `--audit-log`).
pub const ENV: &str = "RIGGER_AUDIT_LOG";

/// The log of this process, once opened.
static LOG: OnceLock<Arc<AuditLog>> = OnceLock::new();
/// An open audit log.
pub struct AuditLog {
    path: PathBuf,
    run: String,
    tail: Mutex<Tail>,
    failures: AtomicU64,
    /// Task name → location, from the task's start event.
    locations: Mutex<HashMap<String, String>>,
    /// Hosts whose login has been recorded.
    logged_in: Mutex<std::collections::HashSet<String>>,
}

struct Tail {
    file: File,
    /// The log's length after this process's last append (another writer
    /// changed it when it differs).
    len: u64,
    prev: String,
    seq: u64,
}

/// The log this process writes to, when one is open.
pub fn log() -> Option<&'static Arc<AuditLog>> {
    LOG.get()
}

/// Open the log at `path` for this process (creating it 0600) and start
/// hashing the files the loaders read. Errors name the path.
pub fn install(path: &Path) -> Result<&'static Arc<AuditLog>, String> {
    let log = AuditLog::open(path).map_err(|e| format!("audit log {}: {e}", path.display()))?;
    files::enable();
    Ok(LOG.get_or_init(|| Arc::new(log)))
}

/// How many records could not be written in this process.
pub fn failures() -> u64 {
    LOG.get().map(|l| l.failures.load(Ordering::Relaxed)).unwrap_or(0)
}

/// Record `kind` with `fields` in the open log, if any (see [`AuditLog::record`]).
pub fn record(kind: &str, fields: Map<String, Value>) {
    if let Some(l) = LOG.get() {
        l.record(kind, fields);
    }
}

/// Flush the open log to disk, if any.
pub fn sync() {
    if let Some(l) = LOG.get() {
        l.sync();
    }
}

fn flock(f: &File, op: libc::c_int) -> std::io::Result<()> {
    loop {
        // SAFETY: flock on a descriptor we own; no memory is involved.
        if unsafe { libc::flock(f.as_raw_fd(), op) } == 0 {
            return Ok(());
        }
        let e = std::io::Error::last_os_error();
        if e.kind() != std::io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

/// The last line of `f` (of length `len`) without its newline, and whether
/// the file ends with a newline (a record cut off by a crash does not).
fn last_line(f: &mut File, len: u64) -> std::io::Result<(Vec<u8>, bool)> {
    if len == 0 {
        return Ok((Vec::new(), true));
    }
    let mut chunk = 64 * 1024u64;
    loop {
        let start = len.saturating_sub(chunk);
        f.seek(SeekFrom::Start(start))?;
        let mut buf = Vec::with_capacity((len - start) as usize);
        Read::by_ref(f).take(len - start).read_to_end(&mut buf)?;
        let ends_nl = buf.last() == Some(&b'\n');
        let body = if ends_nl { &buf[..buf.len() - 1] } else { &buf[..] };
        match body.iter().rposition(|&b| b == b'\n') {
            Some(i) => return Ok((body[i + 1..].to_vec(), ends_nl)),
            None if start == 0 => return Ok((body.to_vec(), ends_nl)),
            None => chunk *= 4,
        }
    }
}

impl AuditLog {
    fn open(path: &Path) -> std::io::Result<AuditLog> {
        crate::private_files::create_parent(path)?;
        let mut file = crate::private_files::open(path, OpenOptions::new().read(true).append(true).create(true))?;
        if !file.metadata()?.is_file() {
            return Err(std::io::Error::other("not a regular file"));
        }
        flock(&file, libc::LOCK_SH)?;
        let len = file.metadata()?.len();
        let tail = last_line(&mut file, len);
        flock(&file, libc::LOCK_UN)?;
        let (line, _) = tail?;
        let (prev, seq) = chain_point(&line);
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        Ok(AuditLog {
            path: path.to_path_buf(),
            run: format!("{:x}-{:x}", now, std::process::id()),
            tail: Mutex::new(Tail { file, len, prev, seq }),
            failures: AtomicU64::new(0),
            locations: Mutex::new(HashMap::new()),
            logged_in: Mutex::new(Default::default()),
        })
    }

    /// This process's run id (in every record it writes).
    pub fn run_id(&self) -> &str {
        &self.run
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Append one record; a failure is reported on stderr and counted,
    /// never dropped silently.
    pub fn record(&self, kind: &str, fields: Map<String, Value>) {
        if let Err(e) = self.append(kind, fields) {
            let n = self.failures.fetch_add(1, Ordering::Relaxed) + 1;
            // Every failure is counted; the first few are shown.
            if n <= 3 {
                crate::stdio::warn(&format!(
                    "audit log {}: cannot write a `{kind}` record: {e}",
                    self.path.display()
                ));
            }
        }
    }

    fn append(&self, kind: &str, fields: Map<String, Value>) -> std::io::Result<()> {
        let mut tail = self.tail.lock().unwrap_or_else(|p| p.into_inner());
        let t = &mut *tail;
        flock(&t.file, libc::LOCK_EX)?;
        let res = (|| {
            let len = t.file.metadata()?.len();
            let mut sep = "";
            if len != t.len {
                // Another process appended (or the file was replaced under
                // its name, which verify reports): chain onto its last line.
                let (line, ends_nl) = last_line(&mut t.file, len)?;
                (t.prev, t.seq) = chain_point(&line);
                if !ends_nl {
                    // A record cut off by a crash stays visible as such; the
                    // new one starts on its own line.
                    sep = "\n";
                }
            }
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default();
            let mut rec = Map::new();
            rec.insert("seq".into(), (t.seq + 1).into());
            rec.insert(
                "time".into(),
                format!(
                    "{}.{:03}Z",
                    crate::calendar::utc_datetime(now.as_secs() as i64),
                    now.subsec_millis()
                )
                .into(),
            );
            rec.insert("kind".into(), kind.into());
            rec.insert("run".into(), self.run.clone().into());
            for (k, v) in fields {
                rec.insert(k, v);
            }
            rec.insert("prev".into(), t.prev.clone().into());
            let line = serde_json::to_string(&Value::Object(rec)).map_err(std::io::Error::other)?;
            let mut bytes = Vec::with_capacity(sep.len() + line.len() + 1);
            bytes.extend_from_slice(sep.as_bytes());
            bytes.extend_from_slice(line.as_bytes());
            bytes.push(b'\n');
            t.file.write_all(&bytes)?;
            t.len = len + bytes.len() as u64;
            t.prev = sha256_hex(line.as_bytes());
            t.seq += 1;
            Ok(())
        })();
        let unlocked = flock(&t.file, libc::LOCK_UN);
        res.and(unlocked)
    }

    /// Flush what was appended to disk (at the run's start and end and
    /// after watch records; task records ride on the page cache between).
    pub fn sync(&self) {
        let tail = self.tail.lock().unwrap_or_else(|p| p.into_inner());
        if let Err(e) = tail.file.sync_data() {
            self.failures.fetch_add(1, Ordering::Relaxed);
            crate::stdio::warn(&format!("audit log {}: cannot sync: {e}", self.path.display()));
        }
    }

    /// Record an event of a run (already masked by the renderer).
    pub fn record_event(&self, ev: &Event) {
        match ev {
            Event::PlaybookStart { playbook, check, .. } => {
                self.record("playbook_start", obj(json!({"playbook": playbook, "check": check})))
            }
            Event::PlayStart { play, hosts } => self.record("play_start", obj(json!({"play": play, "hosts": hosts}))),
            Event::TaskStart { task, location, .. } => {
                self.locations
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(task.clone(), location.clone());
            }
            Event::HostResult {
                host,
                task,
                status,
                ignored,
                item,
                delegated_to,
                result,
            } => {
                let mut m = Map::new();
                m.insert("host".into(), host.clone().into());
                m.insert("task".into(), task.clone().into());
                if let Some(loc) = self.locations.lock().unwrap_or_else(|p| p.into_inner()).get(task) {
                    m.insert("location".into(), loc.clone().into());
                }
                m.insert("status".into(), serde_json::to_value(status).unwrap_or(Value::Null));
                if *ignored {
                    m.insert("ignored".into(), true.into());
                }
                if let Some(i) = item {
                    m.insert("item".into(), i.clone());
                }
                if let Some(d) = delegated_to {
                    m.insert("delegated_to".into(), d.clone().into());
                }
                if let Some(d) = result.get("diff") {
                    let summary = diff_summary(d);
                    if !summary.is_empty() {
                        m.insert("diff".into(), Value::Array(summary));
                    }
                }
                if matches!(status, Status::Failed | Status::Unreachable) {
                    if let Some(msg) = result.get("msg") {
                        m.insert("msg".into(), msg.clone());
                    }
                }
                let first = self
                    .logged_in
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(host.clone());
                if first {
                    if let Some(login) = files::login_of(host) {
                        m.insert("login".into(), login);
                    } else {
                        // Not logged in yet (a local host, a skipped task):
                        // its login goes with a later record.
                        self.logged_in.lock().unwrap_or_else(|p| p.into_inner()).remove(host);
                    }
                }
                self.record("task", m);
            }
            Event::Warning { message } => self.record("warning", obj(json!({"message": message}))),
            Event::Meta { .. } | Event::Exec { .. } | Event::Put { .. } | Event::Profile(_) => {}
            Event::Recap { hosts, interrupted, .. } => {
                let mut m = obj(json!({"hosts": hosts}));
                if let Some(sig) = interrupted {
                    m.insert("interrupted".into(), sig.clone().into());
                }
                self.record("recap", m)
            }
        }
    }
}

impl crate::output::EventSink for AuditLog {
    fn event(&self, ev: &Event) {
        self.record_event(ev);
    }
}

/// Send the events of `renderer` to the open log, if any.
pub fn attach(renderer: &crate::output::Renderer) {
    if let Some(l) = LOG.get() {
        renderer.add_sink(l.clone());
    }
}

/// Record `kind` and flush it to disk at once (watch notifications,
/// deliveries and silences: rare, and each one matters).
pub fn record_synced(kind: &str, fields: Map<String, Value>) {
    if let Some(l) = LOG.get() {
        l.record(kind, fields);
        l.sync();
    }
}

fn obj(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

/// The hash and `seq` a new record chains onto, after `line` (the log's
/// last line; empty for an empty log).
fn chain_point(line: &[u8]) -> (String, u64) {
    if line.is_empty() {
        return (GENESIS.to_string(), 0);
    }
    let seq = serde_json::from_slice::<Value>(line)
        .ok()
        .and_then(|v| v.get("seq").and_then(Value::as_u64))
        .unwrap_or(0);
    (sha256_hex(line), seq)
}

/// A diff as counts of changed lines per file (`[{path, added, removed}]`):
/// what changed where, without the content.
pub fn diff_summary(d: &Value) -> Vec<Value> {
    let parts: Vec<&Value> = match d {
        Value::Array(a) => a.iter().collect(),
        v @ Value::Object(_) => vec![v],
        _ => Vec::new(),
    };
    let mut out = Vec::new();
    for p in parts {
        let text = |k: &str| match p.get(k) {
            Some(Value::String(s)) => Some(s.clone()),
            Some(Value::Null) | None => None,
            Some(v) => Some(serde_json::to_string_pretty(v).unwrap_or_default()),
        };
        let (before, after) = (text("before"), text("after"));
        if before.is_none() && after.is_none() && p.get("prepared").is_none() {
            continue;
        }
        // The file changed: Ansible's `before_header` (the `after_header`
        // names the source, e.g. "dynamically generated" for `content:`).
        let header = p
            .get("before_header")
            .or_else(|| p.get("after_header"))
            .and_then(Value::as_str)
            .unwrap_or("");
        let (mut added, mut removed) = (0u64, 0u64);
        let (b, a) = (before.unwrap_or_default(), after.unwrap_or_default());
        for change in similar::TextDiff::from_lines(&b, &a).iter_all_changes() {
            match change.tag() {
                similar::ChangeTag::Insert => added += 1,
                similar::ChangeTag::Delete => removed += 1,
                similar::ChangeTag::Equal => {}
            }
        }
        let mut m = Map::new();
        if !header.is_empty() {
            m.insert("path".into(), header.into());
        }
        m.insert("added".into(), added.into());
        m.insert("removed".into(), removed.into());
        if p.get("prepared").is_some() {
            m.insert("prepared".into(), true.into());
        }
        out.push(Value::Object(m));
    }
    out
}

/// Keys whose values a command line shows masked in the log.
fn secret_key(k: &str) -> bool {
    let k = k.to_ascii_lowercase();
    ["pass", "secret", "token", "key", "credential", "vault"]
        .iter()
        .any(|s| k.contains(s))
}

fn mask_secrets(v: &mut Value) {
    match v {
        Value::Object(m) => {
            for (k, v) in m.iter_mut() {
                if secret_key(k) && !v.is_object() && !v.is_array() {
                    *v = Value::String(crate::output::redact::MASK.into());
                } else {
                    mask_secrets(v);
                }
            }
        }
        Value::Array(a) => a.iter_mut().for_each(mask_secrets),
        _ => {}
    }
}

/// An `-e` value as the log shows it: `@file` as it is; `k=v` pairs and
/// YAML/JSON mappings with the values of secret-looking keys masked; what
/// cannot be parsed masked whole.
fn redact_extra_vars(v: &str) -> String {
    let t = v.trim_start();
    if t.starts_with('@') {
        return v.to_string();
    }
    if t.starts_with('{') || t.starts_with('[') {
        return match serde_json::from_str::<Value>(t)
            .ok()
            .or_else(|| crate::yaml::parse_one(t, "<-e>").ok().map(|n| n.to_json()))
        {
            Some(mut val) => {
                mask_secrets(&mut val);
                val.to_string()
            }
            None => crate::output::redact::MASK.into(),
        };
    }
    match shlex::split(v) {
        Some(words) => words
            .into_iter()
            .map(|w| match w.split_once('=') {
                Some((k, _)) if secret_key(k) => format!("{k}={}", crate::output::redact::MASK),
                _ => w,
            })
            .map(|w| crate::shell::sh_quote(&w))
            .collect::<Vec<_>>()
            .join(" "),
        None => crate::output::redact::MASK.into(),
    }
}

/// The command line as the log shows it (see [`redact_extra_vars`]).
pub fn redacted_argv(args: &[String]) -> Vec<String> {
    let mut out = Vec::with_capacity(args.len());
    let mut next_is_ev = false;
    for a in args {
        if next_is_ev {
            out.push(redact_extra_vars(a));
            next_is_ev = false;
            continue;
        }
        if a == "-e" || a == "--extra-vars" {
            next_is_ev = true;
            out.push(a.clone());
        } else if let Some(v) = a.strip_prefix("--extra-vars=") {
            out.push(format!("--extra-vars={}", redact_extra_vars(v)));
        } else if let Some(v) = a.strip_prefix("-e").filter(|v| !v.is_empty() && !a.starts_with("--")) {
            out.push(format!("-e{}", redact_extra_vars(v)));
        } else {
            out.push(a.clone());
        }
    }
    out
}

/// Who runs this process: the OS user (name and uid), the user sudo ran it
/// for, the controller's host name.
fn who() -> Map<String, Value> {
    let mut m = Map::new();
    // SAFETY: getuid has no preconditions.
    let uid = unsafe { libc::getuid() };
    m.insert("user".into(), crate::os_user::name_or_uid(uid).into());
    m.insert("uid".into(), uid.into());
    if let Ok(s) = std::env::var("SUDO_USER") {
        m.insert("sudo_user".into(), s.into());
    }
    let mut buf = [0u8; 256];
    // SAFETY: gethostname writes at most buf.len() bytes into buf.
    if unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) } == 0 {
        let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
        m.insert(
            "controller".into(),
            String::from_utf8_lossy(&buf[..end]).into_owned().into(),
        );
    }
    m
}

/// The git commit of `dir` (and whether tracked files differ from it),
/// when it is in a git work tree and git is installed.
fn git_state(dir: &Path) -> Option<Value> {
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    let run = |args: &[&str]| {
        std::process::Command::new("git")
            .arg("-C")
            .arg(dir)
            .args(args)
            .stdin(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    let commit = run(&["rev-parse", "HEAD"])?;
    let dirty = run(&["status", "--porcelain", "--untracked-files=no"]).map(|s| !s.is_empty());
    let top = run(&["rev-parse", "--show-toplevel"]);
    Some(json!({"repository": top, "commit": commit, "dirty": dirty}))
}

/// Record the start of a command: who, the command line, where, the git
/// state of `dir` (the first playbook's directory).
pub fn run_start(command: &str, dir: Option<&Path>) {
    let Some(l) = LOG.get() else { return };
    let argv: Vec<String> = std::env::args().collect();
    let mut m = who();
    m.insert("command".into(), command.into());
    m.insert("argv".into(), json!(redacted_argv(&argv)));
    m.insert("pid".into(), std::process::id().into());
    if let Ok(cwd) = std::env::current_dir() {
        m.insert("cwd".into(), cwd.display().to_string().into());
    }
    if let Some(g) = dir.and_then(git_state) {
        m.insert("git".into(), g);
    }
    l.record("run_start", m);
    l.sync();
}

/// Record the end of a command: its exit code, the error that stopped it,
/// every file the loaders read (with its SHA-256).
pub fn run_end(code: i32, error: Option<String>) {
    let Some(l) = LOG.get() else { return };
    let mut m = obj(json!({"exit_code": code}));
    if let Some(e) = error {
        m.insert("error".into(), e.into());
    }
    m.insert("files".into(), files_read());
    l.record("run_end", m);
    l.sync();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn argv_masks_secret_values_only() {
        let argv: Vec<String> = [
            "rigger",
            "run",
            "-e",
            "db_password=hunter22 port=5432",
            "--extra-vars={\"api_token\": \"abc\", \"n\": 1}",
            "-e",
            "@vars.yml",
            "site.yml",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let out = redacted_argv(&argv);
        assert_eq!(out[3], "'db_password=********' port=5432");
        assert_eq!(out[4], "--extra-vars={\"api_token\":\"********\",\"n\":1}");
        assert_eq!(out[6], "@vars.yml");
        assert!(!out.join(" ").contains("hunter22"));
    }

    #[test]
    fn diff_summary_counts_lines_without_content() {
        let d = json!([{"before": "a\nsecret-b\n", "after": "a\nsecret-c\nd\n", "after_header": "/etc/x"}]);
        let s = diff_summary(&d);
        assert_eq!(s, vec![json!({"path": "/etc/x", "added": 2, "removed": 1})]);
        assert!(!serde_json::to_string(&s).unwrap().contains("secret"));
    }

    #[test]
    fn appends_chain_across_writers_and_survive_a_cut_line() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("sub/audit.jsonl");
        let a = AuditLog::open(&p).unwrap();
        let b = AuditLog::open(&p).unwrap();
        a.record("one", Map::new());
        b.record("two", Map::new());
        a.record("three", Map::new());
        let text = std::fs::read_to_string(&p).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3);
        let v: Vec<Value> = lines.iter().map(|l| serde_json::from_str(l).unwrap()).collect();
        assert_eq!(v[0]["prev"], GENESIS);
        assert_eq!(v[1]["prev"], sha256_hex(lines[0].as_bytes()));
        assert_eq!(v[2]["prev"], sha256_hex(lines[1].as_bytes()));
        assert_eq!(
            v.iter().map(|r| r["seq"].as_u64().unwrap()).collect::<Vec<_>>(),
            vec![1, 2, 3]
        );
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&p).unwrap().permissions().mode() & 0o777, 0o600);
        assert!(chain::verify_text(&text, None).is_ok());
        // A record cut off by a crash: the next one starts on its own line,
        // and verify names the cut one.
        let mut f = OpenOptions::new().append(true).open(&p).unwrap();
        f.write_all(b"{\"seq\":4,\"ki").unwrap();
        a.record("five", Map::new());
        let text = std::fs::read_to_string(&p).unwrap();
        assert_eq!(text.lines().count(), 5);
        let err = chain::verify_text(&text, None).unwrap_err();
        assert!(err.contains("line 4"), "{err}");
    }
}
