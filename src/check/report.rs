//! The check report: built from a run's task records, rendered as text, JSON
//! (schema in docs/check-report.md), JUnit XML, and the plain/HTML mail bodies.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;
use serde_json::{Map, Value};

use crate::exec::runner::TaskRecord;
use crate::output::{render_diff, Status};
use crate::text::xml_escape;

/// Version of the JSON report; bumped only on incompatible changes.
pub const SCHEMA_VERSION: u32 = 1;

/// The state of one host relative to the playbook.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum HostState {
    InSync,
    Drifted,
    Failed,
    Unreachable,
}

impl HostState {
    pub fn as_str(self) -> &'static str {
        match self {
            HostState::InSync => "in_sync",
            HostState::Drifted => "drifted",
            HostState::Failed => "failed",
            HostState::Unreachable => "unreachable",
        }
    }
}

/// The outcome of one task on one host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskState {
    Ok,
    Drifted,
    Skipped,
    Failed,
    Unreachable,
}

impl TaskState {
    pub fn as_str(self) -> &'static str {
        match self {
            TaskState::Ok => "ok",
            TaskState::Drifted => "drifted",
            TaskState::Skipped => "skipped",
            TaskState::Failed => "failed",
            TaskState::Unreachable => "unreachable",
        }
    }

    pub fn parse(s: &str) -> TaskState {
        match s {
            "drifted" => TaskState::Drifted,
            "skipped" => TaskState::Skipped,
            "failed" => TaskState::Failed,
            "unreachable" => TaskState::Unreachable,
            _ => TaskState::Ok,
        }
    }
}

/// How long a drift has existed: consecutive completed runs (this one included).
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Since {
    pub runs: u32,
    pub first_run_id: i64,
    /// Unix seconds of the first run of the streak.
    #[serde(skip)]
    pub first_seen_unix: i64,
    pub first_seen: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct TaskReport {
    pub task: String,
    pub location: String,
    pub status: TaskState,
    /// Ansible-style diff dicts: `{before, after, before_header, after_header}`.
    pub diff: Vec<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub msg: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub since: Option<Since>,
}

#[derive(Debug, Clone, Serialize)]
pub struct HostReport {
    pub name: String,
    pub status: HostState,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub msg: Option<String>,
    pub tasks: Vec<TaskReport>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Summary {
    pub hosts: usize,
    pub in_sync: usize,
    pub drifted: usize,
    pub failed: usize,
    pub unreachable: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct PlaybookInfo {
    pub path: String,
    pub sha256: String,
}

/// What `--remediate` did.
#[derive(Debug, Clone, Serialize)]
pub struct Remediation {
    /// Per host: the tasks the real run changed.
    pub hosts: BTreeMap<String, Vec<String>>,
    /// Hosts where the real run failed or could not connect.
    pub failed: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct CheckReport {
    pub schema_version: u32,
    pub run_id: i64,
    pub started: String,
    pub finished: String,
    pub duration_ms: u64,
    pub playbook: PlaybookInfo,
    pub inventory: Vec<String>,
    pub exit_code: i32,
    pub summary: Summary,
    pub hosts: Vec<HostReport>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remediation: Option<Remediation>,
}

/// Exit code for schedulers: 0 in sync, 2 drift, 4 unreachable, 6 both; 1 when
/// a task failed (the check could not decide, usually a playbook error).
pub fn exit_code(summary: &Summary) -> i32 {
    if summary.failed > 0 {
        return 1;
    }
    let mut code = 0;
    if summary.drifted > 0 {
        code |= 2;
    }
    if summary.unreachable > 0 {
        code |= 4;
    }
    code
}

/// Group the runner's task records by host (hosts in `hosts` order; hosts
/// without a record are in sync).
pub fn build_hosts(hosts: &[String], records: &[TaskRecord]) -> Vec<HostReport> {
    let mut by_host: BTreeMap<&str, Vec<&TaskRecord>> = BTreeMap::new();
    for r in records {
        by_host.entry(r.host.as_str()).or_default().push(r);
    }
    let mut names: Vec<String> = hosts.to_vec();
    for h in by_host.keys() {
        if !names.iter().any(|n| n == h) {
            names.push(h.to_string());
        }
    }
    names
        .into_iter()
        .map(|name| {
            let recs = by_host.get(name.as_str()).cloned().unwrap_or_default();
            let tasks: Vec<TaskReport> = recs.iter().copied().map(task_report).collect();
            let state_of = |s: TaskState| tasks.iter().find(|t| t.status == s);
            let (status, msg) = if let Some(t) = state_of(TaskState::Unreachable) {
                (HostState::Unreachable, t.msg.clone())
            } else if let Some(t) = state_of(TaskState::Failed) {
                (HostState::Failed, t.msg.clone().map(|m| format!("{}: {m}", t.task)))
            } else if state_of(TaskState::Drifted).is_some() {
                (HostState::Drifted, None)
            } else {
                (HostState::InSync, None)
            };
            HostReport {
                name,
                status,
                msg,
                tasks,
            }
        })
        .collect()
}

fn task_report(r: &TaskRecord) -> TaskReport {
    let no_log = r
        .result
        .get("_ansible_no_log")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let status = match r.status {
        Status::Ok => TaskState::Ok,
        Status::Changed => TaskState::Drifted,
        Status::Skipped => TaskState::Skipped,
        // An ignored failure does not make the host failed; it is not drift either.
        Status::Failed | Status::Unreachable if r.ignored => TaskState::Skipped,
        Status::Failed => TaskState::Failed,
        Status::Unreachable => TaskState::Unreachable,
    };
    let diff = if no_log { Vec::new() } else { diffs_of(&r.result) };
    let msg = if no_log {
        None
    } else {
        r.result.get("msg").and_then(Value::as_str).map(str::to_string)
    };
    TaskReport {
        task: r.task.clone(),
        location: r.location.clone(),
        status,
        diff,
        msg,
        since: None,
    }
}

/// The diff dicts of a result, including those of loop items.
fn diffs_of(result: &Map<String, Value>) -> Vec<Value> {
    let mut out = Vec::new();
    let mut push = |d: &Value| match d {
        Value::Array(items) => out.extend(items.iter().filter(|v| v.is_object()).cloned()),
        Value::Object(_) => out.push(d.clone()),
        _ => {}
    };
    if let Some(d) = result.get("diff") {
        push(d);
    }
    if let Some(Value::Array(items)) = result.get("results") {
        for it in items {
            let hidden = it.get("_ansible_no_log").and_then(Value::as_bool).unwrap_or(false);
            if !hidden && it.get("changed").and_then(Value::as_bool).unwrap_or(false) {
                if let Some(d) = it.get("diff") {
                    push(d);
                }
            }
        }
    }
    out
}

pub fn summarize(hosts: &[HostReport]) -> Summary {
    let mut s = Summary {
        hosts: hosts.len(),
        ..Default::default()
    };
    for h in hosts {
        match h.status {
            HostState::InSync => s.in_sync += 1,
            HostState::Drifted => s.drifted += 1,
            HostState::Failed => s.failed += 1,
            HostState::Unreachable => s.unreachable += 1,
        }
    }
    s
}

/// The unified diff text of a task's diff dicts (empty diffs are left out).
pub fn diff_text(diffs: &[Value]) -> String {
    let mut s = String::new();
    for d in diffs {
        s.push_str(&render_diff(d));
    }
    s
}

/// "since 3 runs / 2 days" (the current run counts).
pub fn since_text(since: &Since, now_unix: i64) -> String {
    let runs = if since.runs == 1 {
        "first seen in this run".to_string()
    } else {
        format!("since {} runs", since.runs)
    };
    if since.runs == 1 {
        return runs;
    }
    format!("{runs} / {}", human_age(now_unix - since.first_seen_unix))
}

/// A coarse age: "45 seconds", "3 hours", "2 days".
pub fn human_age(secs: i64) -> String {
    let secs = secs.max(0);
    let (n, unit) = match secs {
        s if s < 120 => (s, "second"),
        s if s < 2 * 3600 => (s / 60, "minute"),
        s if s < 2 * 86400 => (s / 3600, "hour"),
        s => (s / 86400, "day"),
    };
    format!("{n} {unit}{}", if n == 1 { "" } else { "s" })
}

impl CheckReport {
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    /// Headline of the report and subject of the mail.
    pub fn headline(&self) -> String {
        let s = &self.summary;
        let mut parts = Vec::new();
        if s.drifted > 0 {
            parts.push(format!("{} drifted", s.drifted));
        }
        if s.unreachable > 0 {
            parts.push(format!("{} unreachable", s.unreachable));
        }
        if s.failed > 0 {
            parts.push(format!("{} failed", s.failed));
        }
        if parts.is_empty() {
            format!("all {} hosts in sync", s.hosts)
        } else {
            format!("{} of {} hosts", parts.join(", "), s.hosts)
        }
    }

    /// Human text. Short by default: only hosts that are not in sync and their
    /// drifted or failed tasks; `verbose` lists every host and task.
    pub fn to_text(&self, verbose: u8, now_unix: i64, color: bool) -> String {
        let paint = |code: &str, s: &str| {
            if color {
                format!("\x1b[{code}m{s}\x1b[0m")
            } else {
                s.to_string()
            }
        };
        let mut out = String::new();
        let _ = writeln!(
            out,
            "rigger check {} (run {}): {}",
            self.playbook.path,
            self.run_id,
            self.headline()
        );
        for h in &self.hosts {
            if h.status == HostState::InSync && verbose == 0 {
                continue;
            }
            let label = match h.status {
                HostState::InSync => paint("32", "in sync"),
                HostState::Drifted => paint("33", "DRIFTED"),
                HostState::Failed => paint("31", "FAILED"),
                HostState::Unreachable => paint("31", "UNREACHABLE"),
            };
            let _ = writeln!(out, "\n{}: {label}", h.name);
            if let Some(m) = &h.msg {
                let _ = writeln!(out, "  {m}");
            }
            for t in &h.tasks {
                let show = match t.status {
                    TaskState::Drifted => true,
                    TaskState::Failed => h.status != HostState::Failed || verbose > 0,
                    _ => verbose > 0,
                };
                if !show {
                    continue;
                }
                let since = t
                    .since
                    .as_ref()
                    .map(|s| format!(" ({})", since_text(s, now_unix)))
                    .unwrap_or_default();
                let _ = writeln!(out, "  - {} [{}] {}{since}", t.status.as_str(), t.task, t.location);
                if t.status == TaskState::Skipped && verbose > 0 {
                    if let Some(m) = &t.msg {
                        let _ = writeln!(out, "      {m}");
                    }
                }
                if t.status == TaskState::Drifted {
                    // A drift without a diff says what it is (a task that
                    // needs an earlier task's predicted change).
                    if let Some(m) = t.msg.as_ref().filter(|_| t.diff.is_empty()) {
                        let _ = writeln!(out, "      {m}");
                    }
                    for line in diff_text(&t.diff).lines().filter(|l| !l.is_empty()) {
                        let line = match line.chars().next() {
                            Some('+') if !line.starts_with("+++") => paint("32", line),
                            Some('-') if !line.starts_with("---") => paint("31", line),
                            _ => line.to_string(),
                        };
                        let _ = writeln!(out, "      {line}");
                    }
                }
            }
        }
        if let Some(r) = &self.remediation {
            let _ = writeln!(out, "\nremediation:");
            for (host, tasks) in &r.hosts {
                let _ = writeln!(out, "  {host}: fixed {} task(s): {}", tasks.len(), tasks.join(", "));
            }
            for host in &r.failed {
                let _ = writeln!(out, "  {host}: remediation FAILED");
            }
        }
        out
    }

    /// The mail subject: what was checked (the configured environment name,
    /// else the inventory) and the drift found.
    pub fn mail_subject(&self, name: &str) -> String {
        let drifted_tasks = self.drifted_tasks();
        let pb = std::path::Path::new(&self.playbook.path)
            .file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_default();
        let tasks = if drifted_tasks > 0 {
            format!(
                " ({drifted_tasks} drifted task{})",
                if drifted_tasks == 1 { "" } else { "s" }
            )
        } else {
            String::new()
        };
        format!("rigger check {name} {pb}: {}{tasks}", self.headline())
    }

    fn drifted_tasks(&self) -> usize {
        self.hosts
            .iter()
            .flat_map(|h| &h.tasks)
            .filter(|t| t.status == TaskState::Drifted)
            .count()
    }

    /// The plain-text part of the mail: the drift first (each drifted
    /// host, its drifted tasks with their diffs), then the unreachable and
    /// failed hosts with the reason, then a short summary (in-sync hosts
    /// and unchanged tasks are only counted), then the command that
    /// remediates.
    pub fn to_mail_text(&self, name: &str, remediate: &str, now_unix: i64) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "rigger check of {name}: {}", self.headline());
        let of = |s: HostState| self.hosts.iter().filter(move |h| h.status == s);
        if of(HostState::Drifted).next().is_some() {
            let _ = writeln!(out, "\nDRIFT ({} task(s)):", self.drifted_tasks());
            for h in of(HostState::Drifted) {
                let _ = writeln!(out, "\n{}: DRIFTED", h.name);
                for t in h.tasks.iter().filter(|t| t.status == TaskState::Drifted) {
                    let since = t
                        .since
                        .as_ref()
                        .map(|s| format!(" ({})", since_text(s, now_unix)))
                        .unwrap_or_default();
                    let _ = writeln!(out, "  - drifted [{}] {}{since}", t.task, t.location);
                    if let Some(m) = t.msg.as_ref().filter(|_| t.diff.is_empty()) {
                        let _ = writeln!(out, "      {m}");
                    }
                    for line in diff_text(&t.diff).lines().filter(|l| !l.is_empty()) {
                        let _ = writeln!(out, "      {line}");
                    }
                }
            }
        }
        for (state, title) in [(HostState::Unreachable, "UNREACHABLE"), (HostState::Failed, "FAILED")] {
            if of(state).next().is_none() {
                continue;
            }
            let _ = writeln!(out, "\n{title}:");
            for h in of(state) {
                let _ = writeln!(out, "  {}: {}", h.name, h.msg.as_deref().unwrap_or("(no reason given)"));
            }
        }
        let s = &self.summary;
        let tasks: usize = self.hosts.iter().map(|h| h.tasks.len()).sum();
        let _ = writeln!(
            out,
            "\nSummary: {} host(s): {} in sync, {} drifted, {} unreachable, {} failed; \
             {} drifted of {tasks} task result(s).\nPlaybook {} (sha256 {}), inventory {}, run {} started {}.",
            s.hosts,
            s.in_sync,
            s.drifted,
            s.unreachable,
            s.failed,
            self.drifted_tasks(),
            self.playbook.path,
            self.playbook.sha256,
            self.inventory.join(", "),
            self.run_id,
            self.started
        );
        if let Some(r) = &self.remediation {
            let _ = writeln!(out, "\nRemediation:");
            for (host, tasks) in &r.hosts {
                let _ = writeln!(out, "  {host}: fixed {} task(s): {}", tasks.len(), tasks.join(", "));
            }
            for host in &r.failed {
                let _ = writeln!(out, "  {host}: remediation FAILED");
            }
        }
        if s.drifted > 0 {
            let _ = writeln!(out, "\nTo remediate:\n  {remediate}");
        }
        out
    }

    /// JUnit XML: one testsuite per host, one testcase per task; drift is a
    /// failure, a failed task an error, a skipped task skipped.
    pub fn to_junit(&self) -> String {
        let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
        let s = &self.summary;
        let total: usize = self.hosts.iter().map(|h| h.tasks.len().max(1)).sum();
        let _ = writeln!(
            out,
            "<testsuites name=\"rigger check {}\" tests=\"{total}\" failures=\"{}\" errors=\"{}\" time=\"{:.3}\">",
            xml_escape(&self.playbook.path),
            self.hosts
                .iter()
                .flat_map(|h| &h.tasks)
                .filter(|t| t.status == TaskState::Drifted)
                .count(),
            s.failed + s.unreachable,
            self.duration_ms as f64 / 1000.0
        );
        for h in &self.hosts {
            let failures = h.tasks.iter().filter(|t| t.status == TaskState::Drifted).count();
            let errors = h
                .tasks
                .iter()
                .filter(|t| matches!(t.status, TaskState::Failed | TaskState::Unreachable))
                .count();
            let skipped = h.tasks.iter().filter(|t| t.status == TaskState::Skipped).count();
            let _ = writeln!(
                out,
                "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{failures}\" errors=\"{errors}\" skipped=\"{skipped}\" timestamp=\"{}\">",
                xml_escape(&h.name),
                h.tasks.len(),
                xml_escape(&self.started)
            );
            for t in &h.tasks {
                let _ = write!(
                    out,
                    "    <testcase classname=\"{}\" name=\"{}\" file=\"{}\"",
                    xml_escape(&h.name),
                    xml_escape(&t.task),
                    xml_escape(&t.location)
                );
                let msg = t.msg.clone().unwrap_or_default();
                match t.status {
                    TaskState::Ok => out.push_str("/>\n"),
                    TaskState::Skipped => {
                        let _ = writeln!(
                            out,
                            ">\n      <skipped message=\"{}\"/>\n    </testcase>",
                            xml_escape(&msg)
                        );
                    }
                    TaskState::Drifted => {
                        let _ = writeln!(
                            out,
                            ">\n      <failure type=\"drift\" message=\"drifted from the playbook\">{}</failure>\n    </testcase>",
                            xml_escape(&diff_text(&t.diff))
                        );
                    }
                    TaskState::Failed | TaskState::Unreachable => {
                        let _ = writeln!(
                            out,
                            ">\n      <error type=\"{}\" message=\"{}\"/>\n    </testcase>",
                            t.status.as_str(),
                            xml_escape(&msg)
                        );
                    }
                }
            }
            out.push_str("  </testsuite>\n");
        }
        out.push_str("</testsuites>\n");
        out
    }

    /// The HTML part of the mail report.
    pub fn to_html(&self, now_unix: i64, remediate: &str) -> String {
        let mut out = String::new();
        let _ = write!(
            out,
            "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>rigger check</title></head><body>\n\
             <h1>rigger check: {}</h1>\n<p>Playbook <code>{}</code> (sha256 {}), run {} started {}.</p>\n",
            xml_escape(&self.headline()),
            xml_escape(&self.playbook.path),
            xml_escape(&self.playbook.sha256),
            self.run_id,
            xml_escape(&self.started)
        );
        out.push_str(
            "<table border=\"1\" cellpadding=\"4\" cellspacing=\"0\">\n<tr><th>Host</th><th>Status</th></tr>\n",
        );
        for h in &self.hosts {
            let color = match h.status {
                HostState::InSync => "#2e7d32",
                HostState::Drifted => "#ef6c00",
                _ => "#c62828",
            };
            let _ = writeln!(
                out,
                "<tr><td>{}</td><td style=\"color:{color}\">{}</td></tr>",
                xml_escape(&h.name),
                h.status.as_str()
            );
        }
        out.push_str("</table>\n");
        for h in self.hosts.iter().filter(|h| h.status != HostState::InSync) {
            let _ = writeln!(out, "<h2>{} &mdash; {}</h2>", xml_escape(&h.name), h.status.as_str());
            if let Some(m) = &h.msg {
                let _ = writeln!(out, "<p>{}</p>", xml_escape(m));
            }
            for t in h
                .tasks
                .iter()
                .filter(|t| matches!(t.status, TaskState::Drifted | TaskState::Failed))
            {
                let since = t
                    .since
                    .as_ref()
                    .map(|s| format!(" <em>({})</em>", xml_escape(&since_text(s, now_unix))))
                    .unwrap_or_default();
                let _ = writeln!(
                    out,
                    "<h3>{}: {} <small>{}</small>{since}</h3>",
                    t.status.as_str(),
                    xml_escape(&t.task),
                    xml_escape(&t.location)
                );
                if t.status == TaskState::Drifted {
                    let _ = writeln!(out, "<pre>{}</pre>", xml_escape(&diff_text(&t.diff)));
                } else if let Some(m) = &t.msg {
                    let _ = writeln!(out, "<p>{}</p>", xml_escape(m));
                }
            }
        }
        if self.summary.drifted > 0 {
            let _ = writeln!(out, "<p>To remediate:</p>\n<pre>{}</pre>", xml_escape(remediate));
        }
        out.push_str("</body></html>\n");
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(host: &str, task: &str, status: Status, result: Value) -> TaskRecord {
        TaskRecord {
            host: host.into(),
            task: task.into(),
            location: "site.yml:3:7".into(),
            status,
            ignored: false,
            result: result.as_object().cloned().unwrap_or_default(),
        }
    }

    #[test]
    fn host_states_and_exit_codes() {
        let d = serde_json::json!({"changed": true, "diff": {"before": "a\n", "after": "b\n"}});
        let records = vec![
            rec("h1", "t", Status::Ok, serde_json::json!({})),
            rec("h2", "t", Status::Changed, d.clone()),
            rec(
                "h3",
                "Gathering Facts",
                Status::Unreachable,
                serde_json::json!({"msg": "refused"}),
            ),
        ];
        let hosts = build_hosts(&["h1".into(), "h2".into(), "h3".into(), "h4".into()], &records);
        let states: Vec<_> = hosts.iter().map(|h| h.status).collect();
        assert_eq!(
            states,
            [
                HostState::InSync,
                HostState::Drifted,
                HostState::Unreachable,
                HostState::InSync
            ]
        );
        let s = summarize(&hosts);
        assert_eq!(exit_code(&s), 6);
        assert_eq!(exit_code(&summarize(&hosts[..2])), 2);
        assert_eq!(exit_code(&summarize(&[hosts[0].clone(), hosts[2].clone()])), 4);
        assert_eq!(exit_code(&summarize(&hosts[..1])), 0);
        let failed = build_hosts(&["h5".into()], &[rec("h5", "t", Status::Failed, serde_json::json!({}))]);
        assert_eq!(exit_code(&summarize(&failed)), 1);
        assert_eq!(
            diff_text(&hosts[1].tasks[0].diff),
            "--- before: \n+++ after: \n@@ -1 +1 @@\n-a\n+b\n\n"
        );
    }

    #[test]
    fn loop_item_diffs_are_collected_and_no_log_hides_them() {
        let r = serde_json::json!({"changed": true, "results": [
            {"changed": true, "diff": [{"before": "1\n", "after": "2\n"}]},
            {"changed": false, "diff": [{"before": "x\n", "after": "x\n"}]}]});
        assert_eq!(diffs_of(r.as_object().unwrap()).len(), 1);
        let hidden = rec(
            "h",
            "t",
            Status::Changed,
            serde_json::json!({"_ansible_no_log": true, "diff": {"before": "secret", "after": "x"}}),
        );
        assert!(task_report(&hidden).diff.is_empty());
        let hidden_item = serde_json::json!({"changed": true, "results": [
            {"changed": true, "_ansible_no_log": true, "diff": [{"before": "secret\n", "after": "x\n"}]}]});
        assert!(diffs_of(hidden_item.as_object().unwrap()).is_empty());
    }

    #[test]
    fn ages_and_escaping() {
        assert_eq!(human_age(59), "59 seconds");
        assert_eq!(human_age(3 * 86400 + 5), "3 days");
        assert_eq!(human_age(3600), "60 minutes");
        let s = Since {
            runs: 3,
            first_run_id: 1,
            first_seen_unix: 0,
            first_seen: String::new(),
        };
        assert_eq!(since_text(&s, 2 * 86400), "since 3 runs / 2 days");
        assert_eq!(xml_escape("a<b>&\"\u{1}"), "a&lt;b&gt;&amp;&quot;");
    }
}
