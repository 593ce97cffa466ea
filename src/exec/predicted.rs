//! Check mode's predicted changes, and the failures they explain.
//!
//! In check mode nothing changes, so a task that depends on what an earlier
//! task would create cannot succeed: a `template` into a managed directory
//! that was deleted fails with "Destination directory … does not exist"
//! because the `file: state=directory` before it only predicted the
//! directory. That failure is the drift the earlier task already found, not
//! an error of the playbook: it is reported as a predicted change ("would
//! be created by task X") and the host's other tasks are still checked.
//!
//! What counts, conservatively: the task ran in check mode and failed (not
//! ignored); one of the remote paths it works on (`path`/`dest` and the
//! paths its module queries) is a path an earlier task of the same host
//! (same connection) was predicted to change, or lies beneath it; and the
//! failure says that a path is missing (`does not exist`, `No such file`,
//! `not a directory`) naming that path or the failing task's own. Any
//! other failure stays a failure.

use std::path::Path;

use serde_json::{Map, Value};

use super::context::TaskResult;
use crate::output::Status;

pub(super) use super::runner::PredictedPath;

/// The remote paths a task works on: its `path`/`dest` arguments (and their
/// aliases' values the module's query names).
pub(super) fn task_paths(args: &Map<String, Value>, queried: &[String]) -> Vec<String> {
    let mut out: Vec<String> = ["path", "dest", "name"]
        .iter()
        .filter_map(|k| args.get(*k).and_then(Value::as_str))
        .filter(|p| p.starts_with('/'))
        .map(|p| p.trim_end_matches('/').to_string())
        .collect();
    for q in queried {
        let q = q.trim_end_matches('/').to_string();
        if q.starts_with('/') && !out.contains(&q) {
            out.push(q);
        }
    }
    out
}

/// What a changed result predicts, for [`explain`] to find later.
pub(super) fn predictions(result: &Map<String, Value>, paths: &[String], task: &str, loc: &str) -> Vec<PredictedPath> {
    let mut found: Vec<String> = ["path", "dest"]
        .iter()
        .filter_map(|k| result.get(*k).and_then(Value::as_str))
        .filter(|p| p.starts_with('/'))
        .map(|p| p.trim_end_matches('/').to_string())
        .collect();
    for p in paths {
        if !found.contains(p) {
            found.push(p.clone());
        }
    }
    let created = created(result);
    found
        .into_iter()
        .map(|path| PredictedPath {
            path,
            task: task.to_string(),
            loc: loc.to_string(),
            created,
        })
        .collect()
}

/// Whether a predicted change creates its path: the diff's `before` says
/// the path is absent (the file module's `state: absent`).
fn created(result: &Map<String, Value>) -> bool {
    let diffs: Vec<&Value> = match result.get("diff") {
        Some(Value::Array(a)) => a.iter().collect(),
        Some(d) => vec![d],
        None => Vec::new(),
    };
    diffs.iter().any(|d| match d.get("before") {
        Some(Value::Object(b)) => b.get("state").and_then(Value::as_str) == Some("absent"),
        // The file modules' attribute diffs: `path: …\nstate: absent\n`.
        Some(Value::String(b)) => b.lines().any(|l| l == "state: absent"),
        _ => false,
    })
}

fn says_missing(msg: &str) -> bool {
    let m = msg.to_ascii_lowercase();
    ["does not exist", "no such file", "not a directory"]
        .iter()
        .any(|s| m.contains(s))
}

/// The failure of a check-mode task as the change an earlier task
/// predicted, when it depends on it (see the module docs); `None` leaves
/// the failure as it is.
pub(super) fn explain(tr: &TaskResult, paths: &[String], earlier: &[PredictedPath]) -> Option<TaskResult> {
    if tr.status != Status::Failed || tr.ignored {
        return None;
    }
    let msg = tr.result.get("msg").and_then(Value::as_str).unwrap_or("");
    if !says_missing(msg) {
        return None;
    }
    // The prediction the failing task depends on: the deepest path, and of
    // those the first task that predicted it.
    let mut dep: Option<&PredictedPath> = None;
    for e in earlier {
        let relevant = paths.iter().any(|p| {
            let under = Path::new(p).starts_with(Path::new(&e.path));
            under && (msg.contains(e.path.as_str()) || msg.contains(p.as_str()))
        });
        if relevant && dep.is_none_or(|d| e.path.len() > d.path.len()) {
            dep = Some(e);
        }
    }
    let dep = dep?;
    let verb = if dep.created { "created" } else { "changed" };
    let mut r = Map::new();
    r.insert("changed".into(), Value::Bool(true));
    r.insert(
        "msg".into(),
        Value::String(format!(
            "{} would be {verb} by task \"{}\" ({}); in check mode this task cannot run before it ({msg})",
            dep.path, dep.task, dep.loc
        )),
    );
    r.insert(
        "check_mode_dependency".into(),
        serde_json::json!({"path": dep.path, "task": dep.task, "location": dep.loc, "error": msg}),
    );
    Some(TaskResult {
        status: Status::Changed,
        result: r,
        ignored: false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failed(msg: &str) -> TaskResult {
        TaskResult::failed(msg.to_string())
    }

    fn dir() -> Vec<PredictedPath> {
        let mut r = Map::new();
        r.insert("path".into(), Value::String("/srv/app".into()));
        r.insert(
            "diff".into(),
            serde_json::json!({"before": "path: /srv/app\nstate: absent\n", "after": "path: /srv/app\nstate: directory\n"}),
        );
        predictions(&r, &[], "app directory", "site.yml:5:7")
    }

    #[test]
    fn a_missing_predicted_directory_is_drift_other_failures_are_not() {
        let paths = vec!["/srv/app/motd".to_string()];
        let e = explain(&failed("Destination directory /srv/app does not exist"), &paths, &dir()).unwrap();
        assert_eq!(e.status, Status::Changed);
        let msg = e.result["msg"].as_str().unwrap();
        assert!(
            msg.starts_with("/srv/app would be created by task \"app directory\" (site.yml:5:7)"),
            "{msg}"
        );
        // Not about a missing path: stays a failure.
        assert!(explain(&failed("'port' is undefined"), &paths, &dir()).is_none());
        // A path outside what was predicted: stays a failure.
        let other = vec!["/etc/motd".to_string()];
        assert!(explain(&failed("Destination directory /etc does not exist"), &other, &dir()).is_none());
        // /srv/application is not beneath /srv/app.
        let sibling = vec!["/srv/application/x".to_string()];
        assert!(explain(
            &failed("Destination directory /srv/application does not exist"),
            &sibling,
            &dir()
        )
        .is_none());
        // Nothing predicted before: a failure.
        assert!(explain(&failed("Destination directory /srv/app does not exist"), &paths, &[]).is_none());
        // An ignored failure stays ignored.
        let mut ig = failed("Destination /srv/app/x does not exist !");
        ig.ignored = true;
        assert!(explain(&ig, &paths, &dir()).is_none());
    }
}
