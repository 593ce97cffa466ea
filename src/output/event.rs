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
