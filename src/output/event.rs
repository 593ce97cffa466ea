//! The events a run produces ([`Event`]), with the status and the recap
//! counters they carry: what the renderer and the secret masking read.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::{Map, Value};

/// The status of one host for one task.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Ok,
    Changed,
    Failed,
    Skipped,
    Unreachable,
}

/// What happens during a run, in order: the renderer prints each event, the
/// JSON format writes it as one line.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    PlaybookStart {
        playbook: String,
        check: bool,
        /// How many plays the playbook has (imports expanded).
        plays: usize,
    },
    PlayStart {
        play: String,
        hosts: Vec<String>,
    },
    TaskStart {
        task: String,
        location: String,
        handler: bool,
    },
    HostResult {
        host: String,
        task: String,
        status: Status,
        /// Failed but `ignore_errors`.
        ignored: bool,
        /// The item of a loop iteration (label).
        #[serde(skip_serializing_if = "Option::is_none")]
        item: Option<Value>,
        #[serde(skip_serializing_if = "Option::is_none")]
        delegated_to: Option<String>,
        #[serde(serialize_with = "without_error_text")]
        result: Map<String, Value>,
    },
    Warning {
        message: String,
    },
    /// What a `meta` task did (or why it did not): Ansible's `META: ...`
    /// line, shown at `-vv`.
    Meta {
        host: String,
        message: String,
    },
    /// A command about to run on a host (`-vvv`): Ansible's `<host> EXEC`
    /// line. The command as the debug trace shows it: the run's secrets
    /// masked, nothing of a `no_log` task's.
    Exec {
        host: String,
        command: String,
        /// `sudo root`, `su postgres`: the command runs as that user.
        #[serde(rename = "become", skip_serializing_if = "Option::is_none")]
        become_: Option<String>,
    },
    /// A file sent to a host (`-vvv`): Ansible's `<host> PUT` line.
    Put {
        host: String,
        /// The local file, or `(N bytes)` for data made by the run.
        source: String,
        dest: String,
    },
    Recap {
        hosts: BTreeMap<String, HostStats>,
        /// The signal that interrupted the run (`SIGINT`, `SIGTERM`):
        /// running tasks finished, no new one started.
        #[serde(skip_serializing_if = "Option::is_none")]
        interrupted: Option<String>,
        /// What `set_stats` set: per host, and for the whole run.
        #[serde(flatten)]
        custom: CustomStats,
    },
    /// `--profile`: per-task timing, after the recap.
    Profile(Profile),
}

/// How long each task took (`--profile`, Ansible's profile_tasks), after
/// the recap of a playbook.
#[derive(Debug, Clone, Serialize)]
pub struct Profile {
    /// The tasks, slowest first (as `PROFILE_TASKS_SORT_ORDER` and
    /// `PROFILE_TASKS_TASK_OUTPUT_LIMIT` ask).
    pub tasks: Vec<TaskTiming>,
    /// Seconds from the first task's start to the recap.
    pub total: f64,
    /// profile_tasks' clock line at the recap (text output only).
    #[serde(skip)]
    pub clock: String,
}

/// One task's time: from its start (on all hosts) to the next task's start.
#[derive(Debug, Clone, Serialize)]
pub struct TaskTiming {
    pub task: String,
    pub location: String,
    pub handler: bool,
    pub seconds: f64,
}

/// The custom stats `set_stats` sets (Ansible's `AggregateStats.custom`):
/// per host, and for the whole run (Ansible's `_run`). In JSON as Ansible's
/// `json` callback names them: `custom_stats` and `global_custom_stats`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct CustomStats {
    #[serde(rename = "custom_stats", skip_serializing_if = "BTreeMap::is_empty")]
    pub per_host: BTreeMap<String, Map<String, Value>>,
    #[serde(rename = "global_custom_stats", skip_serializing_if = "Map::is_empty")]
    pub run: Map<String, Value>,
}

impl CustomStats {
    pub fn is_empty(&self) -> bool {
        self.per_host.is_empty() && self.run.is_empty()
    }

    /// Set `data` for `host` (`None`: the run), each value added to the one
    /// set before when `aggregate` (Ansible's `update_custom_stats`), else
    /// replacing it (`set_custom_stats`).
    pub fn update(&mut self, host: Option<&str>, data: &Map<String, Value>, aggregate: bool) {
        let stats = match host {
            Some(h) => self.per_host.entry(h.to_string()).or_default(),
            None => &mut self.run,
        };
        for (k, v) in data {
            match stats.get_mut(k) {
                Some(old) if aggregate => {
                    if let Some(sum) = aggregated(old, v) {
                        *old = sum;
                    }
                }
                _ => {
                    stats.insert(k.clone(), v.clone());
                }
            }
        }
    }
}

/// Python's `old += new` for stats of the same type (mappings merged as
/// `merge_hash`); `None` for a value of another type, which Ansible ignores.
/// (A bool is an int in Python: it adds as 1 or 0.)
fn aggregated(old: &Value, new: &Value) -> Option<Value> {
    let as_int = |v: &Value| match v {
        Value::Bool(b) => Some(i64::from(*b)),
        Value::Number(n) => n.as_i64(),
        _ => None,
    };
    match (old, new) {
        (Value::Object(_), Value::Object(_)) => Some(crate::ansible_cfg::merge_hash(old, new)),
        (Value::String(a), Value::String(b)) => Some(Value::String(format!("{a}{b}"))),
        (Value::Array(a), Value::Array(b)) => Some(Value::Array(a.iter().chain(b).cloned().collect())),
        (Value::Bool(_), Value::Number(_)) => None,
        // An int stat takes ints (and bools); a float stat any number.
        (Value::Number(a), Value::Number(b)) if a.is_f64() => Some(Value::from(a.as_f64()? + b.as_f64()?)),
        (Value::Number(_) | Value::Bool(_), Value::Number(_) | Value::Bool(_)) if !new.is_f64() => {
            Some(Value::from(as_int(old)?.checked_add(as_int(new)?)?))
        }
        _ => None,
    }
}

/// Per-host counters of the recap.
#[derive(Debug, Clone, Default, Serialize)]
pub struct HostStats {
    pub ok: u32,
    pub changed: u32,
    pub unreachable: u32,
    pub failed: u32,
    pub skipped: u32,
    pub rescued: u32,
    pub ignored: u32,
}

/// A result as JSON events carry it: without `_error`, the text renderer's
/// copy of the error summary (the result's `msg` already says it).
fn without_error_text<S: serde::Serializer>(m: &Map<String, Value>, s: S) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeMap;
    let mut out = s.serialize_map(Some(m.len()))?;
    for (k, v) in m.iter().filter(|(k, _)| k.as_str() != "_error") {
        out.serialize_entry(k, v)?;
    }
    out.end()
}
