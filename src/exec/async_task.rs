//! A task with `async:` (and `poll:`), as Ansible runs it: the module's
//! work runs as a job detached on the host (see
//! [`crate::modules::control::async_status`]); `poll: 0` returns at once
//! with the job's id (`ansible_job_id`, `started`, `finished: false`,
//! `results_file`), a `poll` of N seconds reads the job every N seconds
//! until it finished (its result, and the job file is removed) or the
//! `async` seconds are over (Ansible's "async task did not complete within
//! the requested time").
//!
//! What runs detached is the module's change when it is a user command
//! (`command`, `shell`: [`modules::Change::detached`]). A module whose
//! query settles the task (nothing to change, a guard that skips, check
//! mode) has its result at once: `poll: 0` then writes it to the job file,
//! so `async_status` reads it as Ansible's would. Any other change is made
//! from the controller: with `poll` > 0 within the `async` limit (the task
//! waits for it either way), with `poll: 0` refused, since rigger cannot
//! leave it running on the host. As in Ansible, actions that are not
//! modules (`script`, `raw`, `copy`, `template`, `debug`, ...) refuse
//! `async` ("This action (NAME) does not support async.").

use std::time::Duration;

use serde_json::{Map, Value};

use crate::modules::control::async_status::{self as job, Job};
use crate::modules::{self, ModuleCtx, ModuleError, ModuleOutcome, Plan};

/// A task's `async` and `poll`, in seconds.
#[derive(Debug, Clone, Copy)]
pub(super) struct AsyncSpec {
    pub limit: u64,
    pub poll: u64,
}

/// Ansible's action plugins that do not set `_supports_async`: these
/// actions refuse `async`.
const NO_ASYNC: &[&str] = &[
    "add_host",
    "assemble",
    "assert",
    "async_status",
    "copy",
    "debug",
    "fail",
    "fetch",
    "gather_facts",
    "group_by",
    "include_vars",
    "pause",
    "raw",
    "reboot",
    "script",
    "set_fact",
    "set_stats",
    "template",
    "unarchive",
    "validate_argument_spec",
    "wait_for_connection",
    "meta",
];

/// Whether the action `action` (as written: `script`,
/// `ansible.builtin.script`) may run with `async`.
fn supports_async(action: &str, doc: &modules::ModuleDoc) -> bool {
    let short = action
        .strip_prefix("ansible.builtin.")
        .or_else(|| action.strip_prefix("ansible.legacy."))
        .unwrap_or(action);
    !NO_ASYNC.contains(&short) && !NO_ASYNC.contains(&doc.name) && !doc.controller_only
}

/// Run `module` for a task with `async`.
pub(super) async fn run(
    module: &dyn modules::Module,
    ctx: &ModuleCtx<'_>,
    args: Map<String, Value>,
    spec: AsyncSpec,
    action: &str,
) -> Result<ModuleOutcome, ModuleError> {
    let doc = module.doc();
    if !supports_async(action, doc) {
        return Ok(ModuleOutcome::failed(format!(
            "This action ({action}) does not support async."
        )));
    }
    let dir = job::async_dir(ctx.vars);
    let jid = job::new_jid();
    // User modules and Ansible's run whole in their query: they cannot be
    // left running.
    let runs_in_query = modules::external::lookup(doc.name).is_some() || modules::ansible::is_ansible_module(doc.name);
    if spec.poll == 0 && runs_in_query {
        return Err(ModuleError::Failed(format!(
            "{}: `poll: 0` (leave the task running on the host) is not supported by rigger for the module \
             `{}` (rigger runs it from the controller); use `poll:` > 0, or command/shell",
            ctx.loc, doc.name
        )));
    }
    let outcome = match module.query(ctx, args).await? {
        Plan::Done(o) => o,
        Plan::Change(planned, change) if ctx.check_mode => {
            change.discard(ctx).await?;
            planned
        }
        Plan::Change(planned, change) => match change.detached() {
            Some(detached) => {
                let path = job::launch(ctx, &dir, &jid, spec.limit, detached).await?;
                if spec.poll == 0 {
                    return Ok(started(&jid, &path));
                }
                return poll(ctx, &dir, &jid, spec).await;
            }
            None if spec.poll == 0 => {
                return Err(ModuleError::Failed(format!(
                    "{}: `poll: 0` (leave the task running on the host) is not supported by rigger for the \
                     module `{}`: its change is made from the controller; use `poll:` > 0 (the task then \
                     waits for it within `async`)",
                    ctx.loc, doc.name
                )))
            }
            None => {
                let limit = Duration::from_secs(spec.limit.max(1));
                match tokio::time::timeout(limit, change.apply(ctx, planned)).await {
                    Ok(o) => o?,
                    Err(_) => return Ok(not_done_in_time(spec, &jid)),
                }
            }
        },
    };
    // Settled without a job left running.
    if spec.poll == 0 {
        let path = job::write_finished(ctx, &dir, &jid, &job::json_of(&outcome)).await?;
        return Ok(started(&jid, &path));
    }
    let path = format!("{}/{jid}", dir.trim_end_matches('/'));
    let data = job::json_of(&outcome);
    Ok(job::status_outcome(&jid, &path, Job::Data(data)))
}

/// The result of a job left running (`poll: 0`).
fn started(jid: &str, path: &str) -> ModuleOutcome {
    ModuleOutcome::changed(true)
        .with("started", true)
        .with("finished", false)
        .with("ansible_job_id", jid)
        .with("results_file", path)
}

fn not_done_in_time(spec: AsyncSpec, jid: &str) -> ModuleOutcome {
    ModuleOutcome::failed(format!(
        "async task did not complete within the requested time - {}s",
        spec.limit
    ))
    .with("ansible_job_id", jid)
}

/// Read the job every `poll` seconds until it finished or `limit` seconds
/// passed (Ansible's `_poll_async_result`); a finished job's file is removed.
async fn poll(ctx: &ModuleCtx<'_>, dir: &str, jid: &str, spec: AsyncSpec) -> Result<ModuleOutcome, ModuleError> {
    let mut time_left = spec.limit as i64;
    let mut last = None;
    while time_left > 0 {
        tokio::time::sleep(Duration::from_secs(spec.poll)).await;
        let (path, data) = job::read(ctx, dir, jid).await?;
        let parsed = !matches!(data, Job::Unreadable(ref t) if !t.trim().is_empty());
        let status = job::status_outcome(jid, &path, data);
        let finished = status.ret.get("finished") == Some(&Value::Bool(true));
        if finished || (status.failed && parsed) || status.skipped {
            last = Some((status, true));
            break;
        }
        last = Some((status, parsed));
        time_left -= spec.poll as i64;
    }
    match last {
        Some((status, _)) if status.ret.get("finished") == Some(&Value::Bool(true)) => {
            job::cleanup(ctx, dir, jid).await?;
            Ok(status)
        }
        Some((status, false)) => {
            let mut o = ModuleOutcome::failed("async task produced unparsable results");
            o.ret
                .insert("async_result".into(), Value::Object(job::json_of(&status)));
            Ok(o)
        }
        Some((status, true)) if status.failed || status.skipped => Ok(status),
        other => {
            let mut o = not_done_in_time(spec, jid);
            if let Some((status, _)) = other {
                o.ret
                    .insert("async_result".into(), Value::Object(job::json_of(&status)));
            }
            Ok(o)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actions_that_are_not_modules_refuse_async() {
        let doc = |n: &str| modules::registry::lookup(n).unwrap().doc();
        assert!(!supports_async("script", doc("script")));
        assert!(!supports_async("ansible.builtin.raw", doc("raw")));
        assert!(!supports_async("debug", doc("debug")));
        assert!(supports_async("command", doc("command")));
        assert!(supports_async("ansible.builtin.shell", doc("shell")));
        assert!(supports_async("file", doc("file")));
    }
}
