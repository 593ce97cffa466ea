//! Secret masking: the values of connection and become passwords (and private
//! `vars_prompt` answers) are replaced by [`MASK`] wherever they appear in an
//! event, a task record or an error message, whatever printed them (`debug`,
//! a command line echoed in a result, a module's error message).
//!
//! Vault taint: every plaintext that comes out of a vault (the string
//! leaves of a vaulted file, an inline `!vault` value, the `unvault`
//! filter and lookup, a vaulted `copy` source) enters the run's secrets
//! ([`run_secrets`], [`taint`]), and so does every value computed from one
//! (a template that read a tainted value, a `set_fact`, a registered
//! result of a task whose arguments were tainted: see `template::taint`).
//! So the masking reaches what the playbook never marked `no_log`. A value
//! shorter than [`MIN_LEN`] characters is tracked (what it taints is
//! tainted) but not masked itself: masking every `ab` in the output would
//! hide nothing worth hiding and make the output unreadable.

use std::borrow::Cow;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::RwLock;

use serde_json::{Map, Value};

use super::event::Event;

/// What a secret is replaced with.
pub const MASK: &str = "********";

/// Variables whose values are secrets.
pub const SECRET_VARS: &[&str] = &[
    "ansible_password",
    "ansible_ssh_pass",
    "ansible_ssh_password",
    "ansible_become_password",
    "ansible_become_pass",
    "ansible_sudo_pass",
    "ansible_ssh_private_key_passphrase",
];

/// Secrets shorter than this are not masked: replacing every `a` or `12` in
/// the output would make it unreadable and hide nothing worth hiding.
pub const MIN_LEN: usize = 4;

/// The run's secrets: every renderer masks them, and so do the sinks that
/// do not go through one (error messages, check reports and history, the
/// audit log's own records). One per process, as a run's vault keyring is.
pub fn run_secrets() -> &'static Secrets {
    static RUN: std::sync::OnceLock<Secrets> = std::sync::OnceLock::new();
    RUN.get_or_init(Secrets::default)
}

/// Whether this run tracks vault taint: it has vault passwords, or a vault
/// plaintext entered it. Without a vault a run does no taint work at all.
static TRACKING: AtomicBool = AtomicBool::new(false);

pub fn tracking() -> bool {
    TRACKING.load(Ordering::Relaxed)
}

/// Turn taint tracking on (the run was given vault passwords).
pub fn track() {
    TRACKING.store(true, Ordering::Relaxed);
}

/// A vault plaintext (or a value computed from one) entered the run: mask
/// it everywhere from now on.
pub fn taint(plaintext: &str) {
    track();
    run_secrets().add(plaintext);
}

/// [`taint`] every line of a vaulted text (a `copy` or `template` source),
/// as a diff or a module's output would show them.
pub fn taint_lines(text: &str) {
    text.lines().map(str::trim).filter(|l| !l.is_empty()).for_each(taint);
}

/// [`taint`] every string leaf of `v`. Map keys are names, and numbers and
/// booleans are not taken for secrets (a vaulted file's port would mask
/// every `5432` of the output): a numeric secret is written as a string.
pub fn taint_leaves(v: &Value) {
    match v {
        Value::String(s) => taint(s),
        Value::Array(a) => a.iter().for_each(taint_leaves),
        Value::Object(m) => m.values().for_each(taint_leaves),
        Value::Null | Value::Bool(_) | Value::Number(_) => {}
    }
}

/// The set of secret values of a run. Thread-safe; grows as hosts' variables
/// are resolved.
#[derive(Debug, Default)]
pub struct Secrets {
    /// Longest first, so that a secret containing another is masked whole.
    values: RwLock<Vec<String>>,
}

impl Secrets {
    /// Remember a secret value (ignored when too short or already known).
    pub fn add(&self, secret: &str) {
        if secret.chars().count() < MIN_LEN {
            return;
        }
        if self.read().iter().any(|s| s == secret) {
            return;
        }
        let mut values = self.values.write().unwrap_or_else(|p| p.into_inner());
        if !values.iter().any(|s| s == secret) {
            values.push(secret.to_string());
            values.sort_by_key(|s| std::cmp::Reverse(s.len()));
        }
    }

    /// Remember the string values of the [`SECRET_VARS`] among `vars`.
    pub fn add_from_vars(&self, vars: &Map<String, Value>) {
        for name in SECRET_VARS {
            if let Some(Value::String(s)) = vars.get(*name) {
                // A still-unrendered template is not the secret itself.
                if !s.contains("{{") {
                    self.add(s);
                }
            }
        }
    }

    pub fn is_empty(&self) -> bool {
        self.read().is_empty()
    }

    /// Whether `s` holds a known secret (what masking would change).
    pub fn holds_secret(&self, s: &str) -> bool {
        let values = self.read();
        values.iter().any(|secret| s.contains(secret.as_str()))
    }

    /// Whether `s` is exactly a known secret.
    pub fn is_secret(&self, s: &str) -> bool {
        self.read().iter().any(|secret| secret == s)
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Vec<String>> {
        self.values.read().unwrap_or_else(|p| p.into_inner())
    }

    /// `s` with every known secret replaced by [`MASK`].
    pub fn redact_str<'a>(&self, s: &'a str) -> Cow<'a, str> {
        let values = self.read();
        let mut out = Cow::Borrowed(s);
        for secret in values.iter() {
            if out.contains(secret.as_str()) {
                out = Cow::Owned(out.replace(secret.as_str(), MASK));
            }
        }
        out
    }

    /// Mask secrets in every string (and object key) inside `v`; a number
    /// that is a secret (a vaulted PIN) becomes the mask text.
    pub fn redact_value(&self, v: &mut Value) {
        match v {
            Value::String(s) => {
                if let Cow::Owned(r) = self.redact_str(s) {
                    *s = r;
                }
            }
            Value::Number(n) if self.is_secret(&n.to_string()) => {
                *v = Value::String(MASK.to_string());
            }
            Value::Array(a) => a.iter_mut().for_each(|x| self.redact_value(x)),
            Value::Object(m) => self.redact_map(m),
            _ => {}
        }
    }

    pub fn redact_map(&self, m: &mut Map<String, Value>) {
        if self.is_empty() {
            return;
        }
        if m.keys().any(|k| matches!(self.redact_str(k), Cow::Owned(_))) {
            *m = std::mem::take(m)
                .into_iter()
                .map(|(k, v)| (self.redact_str(&k).into_owned(), v))
                .collect();
        }
        m.values_mut().for_each(|x| self.redact_value(x));
    }

    /// A copy of `ev` with secrets masked in everything a playbook controls.
    pub fn redact_event(&self, ev: &Event) -> Event {
        let mut ev = ev.clone();
        let s = |t: &mut String| {
            if let Cow::Owned(r) = self.redact_str(t) {
                *t = r;
            }
        };
        match &mut ev {
            Event::PlaybookStart { .. } | Event::Recap { .. } => {}
            Event::Exec { command, .. } => s(command),
            Event::Put { source, dest, .. } => {
                s(source);
                s(dest);
            }
            Event::Profile(p) => p.tasks.iter_mut().for_each(|t| s(&mut t.task)),
            Event::PlayStart { play, .. } => s(play),
            Event::TaskStart { task, .. } => s(task),
            Event::HostResult { task, item, result, .. } => {
                s(task);
                if let Some(i) = item {
                    self.redact_value(i);
                }
                self.redact_map(result);
            }
            Event::Warning { message } | Event::Meta { message, .. } => s(message),
        }
        ev
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_known_secrets_everywhere_in_a_result() {
        let secrets = Secrets::default();
        let vars = serde_json::json!({"ansible_become_password": "hunter22", "ansible_password": "{{ vault_pw }}",
            "ansible_ssh_pass": "abc", "other": "visible"});
        secrets.add_from_vars(vars.as_object().unwrap());
        // The template and the too-short value are not secrets.
        assert_eq!(secrets.redact_str("abc {{ vault_pw }}"), "abc {{ vault_pw }}");
        let mut r = serde_json::json!({"cmd": "echo hunter22", "list": ["xhunter22x", 1],
            "hunter22": {"k": "hunter22"}, "other": "visible"});
        secrets.redact_value(&mut r);
        assert_eq!(
            r,
            serde_json::json!({"cmd": "echo ********", "list": ["x********x", 1],
                "********": {"k": "********"}, "other": "visible"})
        );
    }

    #[test]
    fn longer_secrets_are_masked_first() {
        let secrets = Secrets::default();
        secrets.add("pass");
        secrets.add("password1");
        assert_eq!(secrets.redact_str("password1 pass"), "******** ********");
    }

    #[test]
    fn events_are_masked() {
        let secrets = Secrets::default();
        secrets.add("s3cr3t!");
        let ev = Event::Warning {
            message: "retrying with s3cr3t!".into(),
        };
        let Event::Warning { message } = secrets.redact_event(&ev) else {
            panic!("not a warning");
        };
        assert_eq!(message, "retrying with ********");
    }
}
