//! What a check depends on besides its command line, and the scheduled
//! entry that carries it.
//!
//! A check reads a config file found in the current directory (or under
//! `$XDG_CONFIG_HOME`), a history database and a known_hosts file found
//! through `$HOME`, relative inventory/playbook/`-e @file` paths, and a few
//! environment variables. cron runs an entry from the home directory (here:
//! `/`) with `PATH=/usr/bin:/bin` and little else; a systemd service runs
//! with an empty environment. So [`Entry`] carries all of it explicitly
//! (absolute paths, the working directory, the environment), and
//! `--install` runs the entry once the way the scheduler will, with
//! `--dry-run`, and compares its [`Resolved`] with the one of the command
//! that asked for the install: an entry that would check something else,
//! somewhere else, or mail someone else is not installed.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde::{Deserialize, Serialize};

use crate::error::AppError;

/// Environment variables rigger itself reads while checking (besides HOME,
/// which the entry always sets): the entry keeps the values they have when
/// it is installed. `PATH` is one: inventory scripts, `connection: local`
/// tasks and the modules' local helpers find their programs through it.
pub const CARRIED_ENV: [&str; 9] = [
    "PATH",
    "USER",
    "LOGNAME",
    "ANSIBLE_ROLES_PATH",
    "RIGGER_PIPELINING",
    "RIGGER_SFTP",
    "RIGGER_INVENTORY_SCRIPT_TIMEOUT",
    "RIGGER_INVENTORY_SCRIPT_MAX_OUTPUT",
    "RIGGER_LOG",
];

/// Everything a check resolves before it connects anywhere; what
/// `--dry-run` prints. Two checks with the same `Resolved` check the same
/// hosts with the same playbook and settings, record into the same history
/// and mail the same people.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Resolved {
    pub playbook: String,
    pub playbook_sha256: String,
    pub inventory: Vec<String>,
    /// The hosts the check would visit, in order.
    pub hosts: Vec<String>,
    /// The config file read (absolute), or none.
    pub config: Option<String>,
    pub config_sha256: Option<String>,
    pub db: String,
    /// The known_hosts files host keys are checked against.
    pub known_hosts: Vec<String>,
    /// The remote user for hosts without `ansible_user`.
    pub default_remote_user: String,
    pub mail_to: Vec<String>,
    pub mail_from: String,
    pub smtp_host: String,
    pub smtp_port: u16,
    pub smtp_tls: String,
    pub smtp_username: Option<String>,
    /// Whether an SMTP password is known (never the password).
    pub smtp_password_set: bool,
    /// Whether a become password is known (`RIGGER_BECOME_PASSWORD`).
    pub become_password_set: bool,
    pub log_file: Option<String>,
    /// The carried environment variables rigger reads ([`CARRIED_ENV`]), and HOME.
    pub env: BTreeMap<String, String>,
}

impl Resolved {
    /// The fields that differ, as `name: here X, scheduled Y` lines.
    pub fn differences(&self, scheduled: &Resolved) -> Vec<String> {
        let (Ok(serde_json::Value::Object(a)), Ok(serde_json::Value::Object(b))) =
            (serde_json::to_value(self), serde_json::to_value(scheduled))
        else {
            return vec!["the resolved settings cannot be compared".into()];
        };
        let mut out = Vec::new();
        for (k, va) in &a {
            let vb = b.get(k).unwrap_or(&serde_json::Value::Null);
            if k == "env" {
                // One line per variable.
                let empty = serde_json::Map::new();
                let (ea, eb) = (va.as_object().unwrap_or(&empty), vb.as_object().unwrap_or(&empty));
                let mut names: Vec<&String> = ea.keys().chain(eb.keys()).collect();
                names.sort();
                names.dedup();
                for n in names {
                    if ea.get(n) != eb.get(n) {
                        out.push(format!(
                            "environment variable {n}: here {}, scheduled {}",
                            show(ea.get(n)),
                            show(eb.get(n))
                        ));
                    }
                }
                continue;
            }
            if va != vb {
                out.push(format!("{k}: here {}, scheduled {}", show(Some(va)), show(Some(vb))));
            }
        }
        out
    }
}

fn show(v: Option<&serde_json::Value>) -> String {
    match v {
        None | Some(serde_json::Value::Null) => "(none)".into(),
        Some(serde_json::Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    }
}

/// The values of [`CARRIED_ENV`] and HOME that are set now: what the entry
/// carries.
pub fn current_env() -> BTreeMap<String, String> {
    std::iter::once("HOME")
        .chain(CARRIED_ENV)
        .filter_map(|k| std::env::var(k).ok().map(|v| (k.to_string(), v)))
        .collect()
}

/// The part of [`current_env`] that [`Resolved`] compares: USER and LOGNAME
/// only give the default remote user, which is compared as such (cron sets
/// LOGNAME where an interactive shell may not have it).
pub fn compared_env() -> BTreeMap<String, String> {
    let mut env = current_env();
    env.remove("USER");
    env.remove("LOGNAME");
    env
}

/// A scheduled check: run `argv` in `cwd` with `env` (on top of what the
/// scheduler provides).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub cwd: PathBuf,
    pub env: Vec<(String, String)>,
    pub argv: Vec<String>,
}

/// A word of the scheduled shell command (and of the remediation command
/// in reports), quoted as Python's `shlex.quote` does.
pub(super) fn sh_word(s: &str) -> String {
    // try_quote refuses only a NUL byte, which no path, argument or
    // environment value can hold; never fall back to the unquoted text.
    shlex::try_quote(s)
        .map(|q| q.into_owned())
        .unwrap_or_else(|_| crate::shell::sh_quote(s))
}

impl Entry {
    /// The shell command cron runs: `cd DIR && VAR=value ... rigger check ...`
    /// (without cron's `%` escaping).
    pub fn shell_command(&self) -> String {
        let mut s = format!("cd {} &&", sh_word(&self.cwd.display().to_string()));
        for (k, v) in &self.env {
            s.push(' ');
            s.push_str(&format!("{k}={}", sh_word(v)));
        }
        for a in &self.argv {
            s.push(' ');
            s.push_str(&sh_word(a));
        }
        s
    }
}

/// How a scheduler starts an entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheduler {
    Cron,
    Systemd,
}

/// The home directory and name of the user running rigger, from the
/// password database (what cron gives a job), not from the environment.
fn passwd_user() -> (Option<String>, Option<String>) {
    // SAFETY: getpwuid returns a pointer into static storage or null; the
    // strings are copied out before any other call can overwrite them.
    unsafe {
        let pw = libc::getpwuid(libc::geteuid());
        if pw.is_null() {
            return (None, None);
        }
        let s =
            |p: *const libc::c_char| (!p.is_null()).then(|| std::ffi::CStr::from_ptr(p).to_string_lossy().into_owned());
        (s((*pw).pw_dir), s((*pw).pw_name))
    }
}

/// Run `entry` with `--dry-run` the way `scheduler` runs it: cron through
/// `/bin/sh -c` from `/` with cron's minimal environment (HOME and LOGNAME
/// from the password database, `PATH=/usr/bin:/bin`, `SHELL=/bin/sh`);
/// systemd with an empty environment besides systemd's PATH and the unit's
/// `Environment=`, in its `WorkingDirectory=`. Returns what it resolved.
pub fn probe(entry: &Entry, scheduler: Scheduler) -> Result<Resolved, AppError> {
    let mut cmd = match scheduler {
        Scheduler::Cron => {
            let (home, name) = passwd_user();
            let mut c = Command::new("/bin/sh");
            c.arg("-c")
                .arg(format!("{} --dry-run", entry.shell_command()))
                .env_clear()
                .env("PATH", "/usr/bin:/bin")
                .env("SHELL", "/bin/sh")
                .current_dir("/");
            if let Some(h) = home {
                c.env("HOME", h);
            }
            if let Some(n) = name {
                c.env("LOGNAME", n);
            }
            c
        }
        Scheduler::Systemd => {
            let mut c = Command::new(&entry.argv[0]);
            c.args(&entry.argv[1..])
                .arg("--dry-run")
                .env_clear()
                .env("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
                .envs(entry.env.iter().map(|(k, v)| (k, v)))
                .current_dir(&entry.cwd);
            c
        }
    };
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .map_err(|e| AppError::Other(format!("cannot run the scheduled entry to test it: {e}")))?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() {
        return Err(AppError::Other(format!(
            "not installed: the entry fails when run as {} runs it (exit {}): {}",
            match scheduler {
                Scheduler::Cron => "cron",
                Scheduler::Systemd => "systemd",
            },
            out.status
                .code()
                .map(|c| c.to_string())
                .unwrap_or_else(|| "by a signal".into()),
            stderr.trim()
        )));
    }
    serde_json::from_slice(&out.stdout).map_err(|e| {
        AppError::Other(format!(
            "not installed: the entry's dry run printed no settings ({e}): {}",
            stderr.trim()
        ))
    })
}

/// Absolute form of `p` (canonical when it exists).
pub fn absolute(p: &Path) -> PathBuf {
    std::fs::canonicalize(p).unwrap_or_else(|_| {
        std::env::current_dir()
            .map(|d| d.join(p))
            .unwrap_or_else(|_| p.to_path_buf())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolved() -> Resolved {
        Resolved {
            playbook: "/p/site.yml".into(),
            playbook_sha256: "x".into(),
            inventory: vec!["/p/inv".into()],
            hosts: vec!["web1".into()],
            config: Some("/p/rigger.toml".into()),
            config_sha256: Some("c".into()),
            db: "/p/db".into(),
            known_hosts: vec!["/root/.ssh/known_hosts".into()],
            default_remote_user: "root".into(),
            mail_to: vec!["ops@example.com".into()],
            mail_from: "rigger@localhost".into(),
            smtp_host: "localhost".into(),
            smtp_port: 25,
            smtp_tls: "none".into(),
            smtp_username: None,
            smtp_password_set: false,
            become_password_set: false,
            log_file: None,
            env: [("HOME".to_string(), "/root".to_string())].into(),
        }
    }

    #[test]
    fn differences_name_the_field_and_both_values() {
        let a = resolved();
        assert!(a.differences(&a).is_empty());
        let mut b = a.clone();
        b.config = None;
        b.config_sha256 = None;
        b.hosts = vec![];
        b.env.insert("PATH".into(), "/usr/bin:/bin".into());
        let d = a.differences(&b);
        assert!(
            d.contains(&"config: here /p/rigger.toml, scheduled (none)".to_string()),
            "{d:?}"
        );
        assert!(d.contains(&"hosts: here [\"web1\"], scheduled []".to_string()), "{d:?}");
        assert!(
            d.contains(&"environment variable PATH: here (none), scheduled /usr/bin:/bin".to_string()),
            "{d:?}"
        );
    }

    #[test]
    fn shell_command_quotes_everything() {
        let e = Entry {
            cwd: "/srv/my ops".into(),
            env: vec![("HOME".into(), "/root".into())],
            argv: vec!["/bin/rigger".into(), "check".into(), "a b.yml".into()],
        };
        assert_eq!(
            e.shell_command(),
            "cd '/srv/my ops' && HOME=/root /bin/rigger check 'a b.yml'"
        );
    }
}
