//! What the audit log says a run read and how it logged in: the files the
//! loaders read (with their SHA-256) and the login used for each host. The
//! loaders and the SSH client report here; nothing is kept unless a log is
//! open ([`enable`]).

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use serde_json::{json, Value};
use sha2::{Digest, Sha256};

/// Whether files read by the loaders are hashed for the log.
static ENABLED: AtomicBool = AtomicBool::new(false);
/// Files the run read (path → SHA-256), in the order first read.
static FILES: Mutex<Vec<(String, String)>> = Mutex::new(Vec::new());
/// How each host was logged in to (inventory name → description).
static LOGINS: Mutex<BTreeMap<String, Value>> = Mutex::new(BTreeMap::new());

/// The SHA-256 of `bytes`, lowercase hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    format!("{:x}", Sha256::digest(bytes))
}

/// Start keeping what the loaders and the SSH client report.
pub fn enable() {
    ENABLED.store(true, Ordering::Relaxed);
}

/// Whether a log is open (reporting is worth its cost).
pub fn enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

/// Remember a file a loader read (playbook, tasks, vars, inventory), with
/// the hash of its bytes; a no-op unless a log is open.
pub fn note_file(path: &Path, bytes: &[u8]) {
    if !enabled() {
        return;
    }
    let shown = std::fs::canonicalize(path)
        .unwrap_or_else(|_| path.to_path_buf())
        .display()
        .to_string();
    let hash = sha256_hex(bytes);
    let mut files = FILES.lock().unwrap_or_else(|p| p.into_inner());
    match files.iter_mut().find(|(p, _)| *p == shown) {
        // Read again after a change (an included file rewritten mid-run):
        // the last version read is the one that counted.
        Some(entry) => entry.1 = hash,
        None => files.push((shown, hash)),
    }
}

/// Remember how `host` was logged in to (SSH user, method, key fingerprint
/// and file); a no-op unless a log is open.
pub fn note_login(host: &str, login: Value) {
    if !enabled() {
        return;
    }
    LOGINS
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(host.to_string(), login);
}

/// How `host` was logged in to, once it was.
pub fn login_of(host: &str) -> Option<Value> {
    LOGINS.lock().unwrap_or_else(|p| p.into_inner()).get(host).cloned()
}

/// The files read so far, as `[{path, sha256}]`.
pub fn files_read() -> Value {
    let files = FILES.lock().unwrap_or_else(|p| p.into_inner());
    Value::Array(files.iter().map(|(p, h)| json!({"path": p, "sha256": h})).collect())
}
