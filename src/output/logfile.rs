//! Ansible's log file (DEFAULT_LOG_PATH: `$ANSIBLE_LOG_PATH`, else
//! `[defaults] log_path` in ansible.cfg): what a run shows is also appended
//! there, one record per message in Ansible's logging format,
//! `2026-12-07 07:11:08,522 p=PID u=USER n=ansible INFO| TASK [x] ***`
//! (leading newlines dropped; warnings at WARNING, errors at ERROR). The
//! time is the controller's clock in UTC, as rigger's other timestamps.
//! A directory or an unwritable path is a warning and no log, as in Ansible.

use std::io::Write;
use std::path::PathBuf;
use std::sync::{Mutex, OnceLock};

/// A record's level, Ansible's `levelname`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Level {
    Info,
    Warning,
    Error,
}

impl Level {
    fn name(self) -> &'static str {
        match self {
            Level::Info => "INFO",
            Level::Warning => "WARNING",
            Level::Error => "ERROR",
        }
    }
}

struct LogFile {
    file: Mutex<std::fs::File>,
    /// `p=PID u=USER n=ansible`
    fields: String,
}

static LOG: OnceLock<LogFile> = OnceLock::new();

/// The log path the environment or ansible.cfg names (`~` expanded), if any.
fn configured_path() -> Option<PathBuf> {
    match std::env::var("ANSIBLE_LOG_PATH") {
        Ok(v) if v.trim().is_empty() => None,
        Ok(v) => Some(match (v.strip_prefix("~/"), std::env::var_os("HOME")) {
            (Some(rest), Some(home)) => PathBuf::from(home).join(rest),
            _ => PathBuf::from(v),
        }),
        Err(_) => crate::ansible_cfg::path_value("defaults", "log_path"),
    }
}

/// The user a record names: Python's `getpass.getuser()` (LOGNAME, USER,
/// LNAME, USERNAME, then the password database).
fn user() -> String {
    ["LOGNAME", "USER", "LNAME", "USERNAME"]
        .iter()
        .filter_map(|v| std::env::var(v).ok())
        .find(|v| !v.is_empty())
        .unwrap_or_else(crate::os_user::current)
}

/// Open the configured log file for the run (once). Returns the warning to
/// show when one is configured but cannot be used.
pub fn open() -> Option<String> {
    let path = configured_path()?;
    if path.is_dir() {
        return Some(format!(
            "DEFAULT_LOG_PATH can not be a directory '{}', aborting",
            path.display()
        ));
    }
    match std::fs::OpenOptions::new().create(true).append(true).open(&path) {
        Ok(file) => {
            let _ = LOG.set(LogFile {
                file: Mutex::new(file),
                fields: format!("p={} u={} n=ansible", std::process::id(), user()),
            });
            None
        }
        Err(_) => Some(format!(
            "log file at '{}' is not writeable and we cannot create it, aborting",
            path.display()
        )),
    }
}

/// Whether a log file is open.
pub fn enabled() -> bool {
    LOG.get().is_some()
}

/// Append `text` (one message as shown) to the log file, if one is open.
pub fn record(level: Level, text: &str) {
    let Some(log) = LOG.get() else { return };
    let line = format_record(&timestamp(), &log.fields, level, text);
    if line.is_empty() {
        return;
    }
    let mut f = log.file.lock().unwrap_or_else(|p| p.into_inner());
    // A log that cannot be written must not stop the run, but it is said
    // once (on stderr directly: a warning would be logged again).
    if let Err(e) = f.write_all(line.as_bytes()) {
        if !WRITE_FAILED.swap(true, std::sync::atomic::Ordering::Relaxed) {
            let _ = writeln!(
                std::io::stderr(),
                "[WARNING]: the log file could not be written ({e}); what follows is not logged"
            );
        }
    }
}

/// A write to the log file failed (said once).
static WRITE_FAILED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// One record: nothing for an empty message.
fn format_record(time: &str, fields: &str, level: Level, text: &str) -> String {
    let msg = text.trim_start_matches('\n');
    let msg = msg.strip_suffix('\n').unwrap_or(msg);
    if msg.is_empty() {
        return String::new();
    }
    format!("{time} {fields} {}| {msg}\n", level.name())
}

/// Python logging's `asctime`: `2026-12-07 07:11:08,522`.
fn timestamp() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let date_time = crate::calendar::utc_datetime(now.as_secs() as i64).replacen('T', " ", 1);
    format!("{date_time},{:03}", now.subsec_millis())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_are_in_ansibles_format() {
        let f = "p=7 u=root n=ansible";
        let t = "2026-12-07 07:11:08,522";
        assert_eq!(
            format_record(t, f, Level::Info, "\nTASK [x] ****\n"),
            "2026-12-07 07:11:08,522 p=7 u=root n=ansible INFO| TASK [x] ****\n"
        );
        assert_eq!(
            format_record(t, f, Level::Warning, "[WARNING]: w\n"),
            "2026-12-07 07:11:08,522 p=7 u=root n=ansible WARNING| [WARNING]: w\n"
        );
        // A multi-line message is one record.
        assert_eq!(
            format_record(t, f, Level::Info, "ok: [h] => {\n    \"a\": 1\n}\n"),
            "2026-12-07 07:11:08,522 p=7 u=root n=ansible INFO| ok: [h] => {\n    \"a\": 1\n}\n"
        );
        assert_eq!(format_record(t, f, Level::Info, "\n"), "");
        let ts = timestamp();
        assert_eq!(ts.len(), 23, "{ts}");
        assert_eq!(&ts[19..20], ",");
    }
}
