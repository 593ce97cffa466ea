//! Task execution: a task on one host, item by item (loops), each item's
//! steps in order: its conditions, the module and its rendered arguments,
//! check and diff mode, delegation, the connection and become, the
//! module's run (fork slot, reconnection, trace, timeout), and `until`
//! with its retries. Shaping each outcome is [`super::results`]'s job.
//! Also check mode's prefetch of the file state a run of tasks will query.

use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Map, Value};

use super::conn_pool::{connection_vars, var_str};
use super::context::{resolve_bool, tags_match, PlayHost, Scope, TaskResult};
use super::predicted;
use super::results::{censor, mark_no_log, strip_results};
use super::runner::INTERRUPTED;
use super::vars::Vars;
use crate::connection::{Become, BecomeMethod, Connection};
use crate::error::LocError;
use crate::modules::args::truthy;
use crate::modules::{self, ModuleCtx, ModuleDoc, ModuleError, ModuleOutcome};
use crate::output::{Event, Status};
use crate::playbook::{Common, Flag, LoopSpec, Task, TaskNode};
use crate::template::{omit, Templar};
use crate::yaml::Loc;

/// A task's keywords on its results: hidden (`no_log`), and which failures
/// are ignored.
#[derive(Clone, Copy)]
struct ResultHandling {
    no_log: bool,
    ignore_errors: bool,
    ignore_unreachable: bool,
}

impl ResultHandling {
    fn ignores(&self, status: Status) -> bool {
        status == Status::Failed && self.ignore_errors || status == Status::Unreachable && self.ignore_unreachable
    }
}

/// A module run ready to go: the module, its rendered arguments, and where
/// and how it runs.
struct Invocation {
    module: &'static Arc<dyn modules::Module>,
    doc: &'static ModuleDoc,
    args: Map<String, Value>,
    env: Vec<(String, String)>,
    /// `ansible_python_module_rlimit_nofile`, rendered.
    rlimit_nofile: Option<u64>,
    check: bool,
    diff: bool,
    /// The task runs outside check mode during a check: the prefetched file
    /// state is dropped before and after it.
    forget_prefetch: bool,
    target: Target,
    search_paths: Vec<PathBuf>,
    retries: Retries,
    /// Seconds each run of the module may take (`timeout:`, else
    /// `--task-timeout`); `None` for no limit.
    timeout: Option<u64>,
    /// `async` and `poll`: the module runs as a job on the host.
    async_: Option<super::async_task::AsyncSpec>,
    /// Ansible's failure for parameters the module does not take: the
    /// module does not run, the task fails with it (a result that
    /// `failed_when` and `ignore_errors` judge, as in Ansible).
    unsupported: Option<String>,
    /// Its arguments read a vault value: its result is tainted (see
    /// [`taint_result`]).
    tainted: bool,
}

/// The connection a module runs on.
struct Target {
    /// `delegate_to`, rendered.
    delegate: Option<String>,
    /// The inventory host whose connection it is (this host or the delegate).
    conn_host: String,
    /// Only the connection and become variables of that host.
    conn_vars: Arc<Map<String, Value>>,
    become_: Option<Become>,
    conn: Arc<dyn Connection>,
}

/// How often an `until` task runs again, and how many seconds apart.
#[derive(Clone, Copy)]
struct Retries {
    retries: u64,
    delay: u64,
}

impl PlayHost {
    /// Run a task on this host: loop, conditions, module, retries. Its
    /// templated boolean keywords and those of its scopes are evaluated
    /// first, with the task's variables (see [`PlayHost::render_flags`]).
    pub(super) async fn run_task(&self, t: &Task, scopes: &[Scope]) -> TaskResult {
        if !t.common.has_flag_templates() && !scopes.iter().any(|s| s.common.has_flag_templates()) {
            return self.run_task_rendered(t, scopes).await;
        }
        let vars = self.vars(scopes, Some(t));
        let ctx = self.ctx(&vars);
        match self.render_flags(t, scopes, &ctx) {
            (task, scopes, None) => {
                drop(ctx);
                drop(vars);
                self.run_task_rendered(&task, &scopes).await
            }
            (task, scopes, Some(mut r)) => {
                // A keyword that is not a boolean fails the task; its
                // `ignore_errors` still applies (Ansible's post-validation
                // failure is a task failure too).
                r.ignored = r.status == Status::Failed
                    && resolve_bool(&scopes, &task.common, |c| &c.ignore_errors).unwrap_or(false);
                self.report_delegated(&t.display_name(), r.status, r.ignored, None, None, r.result.clone());
                r
            }
        }
    }

    /// `t` and `scopes` with every templated boolean keyword evaluated for
    /// this host, and the failure of the first that cannot be (one that
    /// fails is left unset). As in Ansible, a task whose condition is false is skipped
    /// before its keywords are evaluated: one that cannot be evaluated then
    /// does not matter.
    fn render_flags(
        &self,
        t: &Task,
        scopes: &[Scope],
        ctx: &minijinja::Value,
    ) -> (Task, Vec<Scope>, Option<TaskResult>) {
        let mut task = t.clone();
        let mut scopes = scopes.to_vec();
        let mut first_err = None;
        for common in scopes
            .iter_mut()
            .map(|s| &mut s.common)
            .chain(std::iter::once(&mut task.common))
        {
            for (name, f) in common.flags_mut() {
                if let Some(Flag::Template(src, loc)) = f {
                    match self.flag_value(name, src, loc, ctx) {
                        Ok(b) => *f = Some(Flag::Bool(b)),
                        Err(e) => {
                            *f = None;
                            first_err.get_or_insert(e);
                        }
                    }
                }
            }
        }
        match first_err {
            Some(e) if !matches!(self.check_when(&task, &scopes, ctx), Err(r) if r.status == Status::Skipped) => {
                (task, scopes, Some(TaskResult::failed(e.to_string())))
            }
            _ => (task, scopes, None),
        }
    }

    /// The value of the boolean keyword `name` written as the template `src`:
    /// a boolean, or a string or number Ansible reads as one.
    pub(super) fn flag_value(
        &self,
        name: &str,
        src: &str,
        loc: &crate::yaml::Loc,
        ctx: &minijinja::Value,
    ) -> Result<bool, crate::error::LocError> {
        let v = self.runner.templar.render_str(src, ctx, loc)?;
        let b = match &v {
            Value::Bool(b) => Some(*b),
            Value::String(s) => crate::template::parse_bool(s.trim()),
            Value::Number(n) => match n.as_f64() {
                Some(1.0) => Some(true),
                Some(0.0) => Some(false),
                _ => None,
            },
            Value::Null => Some(false),
            _ => None,
        };
        b.ok_or_else(|| {
            // Ansible's wording (FieldAttributeBase's conversion), the value
            // in Python's repr for text.
            let shown = match &v {
                Value::String(s) => format!("'{s}'"),
                other => other.to_string(),
            };
            crate::error::LocError::new(
                loc.clone(),
                format!("`{name}: {src}`: The value {shown} could not be converted to 'bool'."),
            )
            .with_hint("the keyword must be true or false (or yes/no, 1/0), or a template that gives one")
        })
    }

    /// `run_once` of a task for this host (a template is evaluated with
    /// the task's variables; one that fails counts as false here and fails
    /// the task when it runs).
    pub(super) fn run_once_for(&self, t: &Task, scopes: &[Scope]) -> bool {
        let f = t
            .common
            .run_once
            .as_ref()
            .or_else(|| scopes.iter().rev().find_map(|s| s.common.run_once.as_ref()));
        match f {
            Some(Flag::Bool(b)) => *b,
            Some(Flag::Template(src, loc)) => {
                let vars = self.vars(scopes, Some(t));
                let ctx = self.ctx(&vars);
                self.flag_value("run_once", src, loc, &ctx).unwrap_or(false)
            }
            None => false,
        }
    }

    async fn run_task_rendered(&self, t: &Task, scopes: &[Scope]) -> TaskResult {
        let vars = self.vars(scopes, Some(t));
        self.runner.out.secrets().add_from_vars(vars.map());
        let handling = ResultHandling {
            no_log: resolve_bool(scopes, &t.common, |c| &c.no_log).unwrap_or(false),
            ignore_errors: resolve_bool(scopes, &t.common, |c| &c.ignore_errors).unwrap_or(false),
            ignore_unreachable: resolve_bool(scopes, &t.common, |c| &c.ignore_unreachable)
                .unwrap_or(self.pctx.play.ignore_unreachable),
        };
        let no_log = handling.no_log;
        let Some(spec) = &t.loop_ else {
            let mut r = self.run_item(t, scopes, vars, no_log).await;
            mark_no_log(&mut r.result, no_log);
            r.ignored = handling.ignores(r.status);
            let shown = if no_log { censor(&r.result) } else { r.result.clone() };
            let delegated = r
                .result
                .get("_delegated_to")
                .and_then(Value::as_str)
                .map(str::to_string);
            self.report_delegated(&t.display_name(), r.status, r.ignored, None, delegated, shown);
            return r;
        };
        self.run_loop(t, scopes, spec, vars, handling).await
    }

    /// Run a looped task: each item in turn, reported as it ends, then the
    /// aggregate of all items (`results`).
    async fn run_loop(
        &self,
        t: &Task,
        scopes: &[Scope],
        spec: &LoopSpec,
        mut vars: Vars,
        handling: ResultHandling,
    ) -> TaskResult {
        let ResultHandling {
            no_log, ignore_errors, ..
        } = handling;
        let title = t.display_name();
        // An item's result under the task's register name (Ansible's
        // per-iteration `task_vars[register]`), for its label and break_when.
        let register_layer = |result: &Map<String, Value>| -> Map<String, Value> {
            t.register
                .iter()
                .map(|name| (name.clone(), Value::Object(result.clone())))
                .collect()
        };
        // As Ansible's TaskExecutor: the label is templated after the item
        // ran, with the item's result under the register name; a label that
        // cannot be templated fails the item, saying so.
        let label_of = |item: &Value, vars: &Vars, r: &mut TaskResult| -> Value {
            let Some(l) = &t.loop_control.label else {
                return item.clone();
            };
            let c = self.ctx(&self.with_data(vars, register_layer(&r.result)));
            match self.runner.templar.render_str(l, &c, &t.loc) {
                Ok(v) => v,
                Err(e) => {
                    r.status = Status::Failed;
                    r.result.insert("failed".into(), Value::Bool(true));
                    r.result.insert(
                        "msg".into(),
                        Value::String(format!("Failed to template loop_control.label: {}", e.msg)),
                    );
                    item.clone()
                }
            }
        };
        // A loop that cannot be set up (its items, its `loop_var`) fails
        // the task as a whole.
        let fail_loop = |msg: String| {
            let mut r = Map::new();
            r.insert("msg".into(), Value::String(msg));
            r.insert("failed".into(), Value::Bool(true));
            self.report(&title, Status::Failed, ignore_errors, None, r.clone());
            TaskResult {
                status: Status::Failed,
                result: r,
                ignored: ignore_errors,
            }
        };
        // Only a loop needs the context here (run_item builds its own): a
        // task without one converts its variables once, not twice.
        let ctx = self.ctx(&vars);
        let items = match self.loop_items(spec, &ctx) {
            Ok(i) => i,
            Err(e) => {
                // As Ansible's task executor: a loop over an undefined
                // variable is an error only if the task's conditions (seen
                // without the item) hold; one that does not skips the task.
                if e.msg.contains("' is undefined") {
                    if let Err(r) = self.check_when(t, scopes, &ctx) {
                        if r.status == Status::Skipped {
                            self.report(&title, Status::Skipped, false, None, r.result.clone());
                            return r;
                        }
                    }
                }
                return fail_loop(e.to_string());
            }
        };
        // `loop_var` is templated, as every loop_control field (Ansible's FieldAttribute).
        let loop_var = match &t.loop_control.loop_var {
            Some(v) => match self.runner.templar.render_string(v, &ctx, &t.loc) {
                Ok(v) => v,
                Err(e) => return fail_loop(e.to_string()),
            },
            None => "item".into(),
        };
        drop(ctx);
        // Items of a list the playbook's author wrote (`loop: [...]` without
        // a template, or `loop: '{{ name }}'` of such a variable) are trusted
        // text, as 2.19 trusts them by their origin.
        let literal_items: Vec<bool> = match spec {
            LoopSpec::Items {
                value: Value::String(s),
                ..
            } if bare_variable(s).is_some_and(|n| vars.is_literal(n)) => {
                vec![true; items.len()]
            }
            LoopSpec::Items {
                value: Value::Array(raw),
                flatten: false,
                ..
            } if raw.len() == items.len() => raw.iter().zip(&items).map(|(r, i)| literal_text(r, i)).collect(),
            _ => Vec::new(),
        };
        let mut results = Vec::new();
        let (mut any_changed, mut any_failed, mut all_skipped, mut unreachable) = (false, false, true, false);
        let mut unreachable_msg: Option<Value> = None;
        let n = items.len();
        for (idx, item) in items.iter().enumerate() {
            if INTERRUPTED.load(Ordering::SeqCst) {
                break;
            }
            // As Ansible's TaskExecutor: the item, the names of the loop and
            // index variables, the index and `ansible_loop` are the item's
            // variables.
            let mut layer = Map::new();
            layer.insert(loop_var.clone(), item.clone());
            layer.insert("ansible_loop_var".into(), Value::String(loop_var.clone()));
            if let Some(iv) = &t.loop_control.index_var {
                layer.insert(iv.clone(), Value::from(idx));
                layer.insert("ansible_index_var".into(), Value::String(iv.clone()));
            }
            if let Some(al) = t.loop_control.ansible_loop(&items, idx) {
                layer.insert("ansible_loop".into(), al);
            }
            // The item's result also says which loop variables it had, as Ansible's.
            let loop_keys: Map<String, Value> = layer
                .iter()
                .filter(|(k, _)| **k != loop_var)
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            let mut ivars = self.with_data(&vars, layer);
            if literal_items.get(idx).copied().unwrap_or(false) {
                ivars.mark_literal(&loop_var);
            }
            let ivars_for_break = (!t.loop_control.break_when.is_empty()).then(|| ivars.clone());
            let ivars_for_label = (!no_log && t.loop_control.label.is_some()).then(|| ivars.clone());
            let mut r = self.run_item(t, scopes, ivars, no_log).await;
            mark_no_log(&mut r.result, no_log);
            r.result.insert(loop_var.clone(), item.clone());
            if let Some(iv) = &t.loop_control.index_var {
                r.result.insert("ansible_index_var".into(), Value::String(iv.clone()));
            }
            r.result.extend(loop_keys);
            r.result
                .insert("ansible_loop_var".into(), Value::String(loop_var.clone()));
            // no_log hides the item too (Ansible shows `item=None`).
            let label = match &ivars_for_label {
                _ if no_log => Value::Null,
                Some(lv) => label_of(item, lv, &mut r),
                None => item.clone(),
            };
            if r.status == Status::Unreachable {
                // As Ansible: an unreachable host ends the loop, and the task
                // reports it once, with why (below), not once per item and
                // again as "All items completed".
                unreachable_msg = r.result.get("msg").cloned();
            } else {
                let shown = if no_log { censor(&r.result) } else { r.result.clone() };
                let delegated = r
                    .result
                    .get("_delegated_to")
                    .and_then(Value::as_str)
                    .map(str::to_string);
                self.report_delegated(&title, r.status, false, Some(label), delegated, shown);
            }
            match r.status {
                Status::Changed => any_changed = true,
                Status::Failed => any_failed = true,
                Status::Unreachable => unreachable = true,
                _ => {}
            }
            if r.status != Status::Skipped {
                all_skipped = false;
            }
            // break_when sees the item and, under the register name, its result.
            let mut stop = false;
            if let Some(ivars_for_break) = ivars_for_break {
                let bctx = self.ctx(&self.with_data(&ivars_for_break, register_layer(&r.result)));
                for c in &t.loop_control.break_when {
                    match super::results::eval_cond(&self.runner.templar, c, &bctx) {
                        Ok(true) => stop = true,
                        Ok(false) => {
                            stop = false;
                            break;
                        }
                        Err(e) => {
                            r.result.insert("failed".into(), Value::Bool(true));
                            r.result.insert("msg".into(), Value::String(e.to_string()));
                            any_failed = true;
                            stop = true;
                            break;
                        }
                    }
                }
            }
            results.push(Value::Object(r.result));
            if unreachable || stop {
                break;
            }
            // As Ansible's task executor: the facts a `set_fact` or
            // `include_vars` item set are seen by the next items (a list
            // built up one item at a time).
            if r.status != Status::Failed && sets_clean_facts(&t.action) && idx + 1 < n {
                vars = self.vars(scopes, Some(t));
            }
            if let Some(p) = t.loop_control.pause {
                tokio::time::sleep(Duration::from_secs_f64(p)).await;
            }
        }
        let mut agg = Map::new();
        agg.insert("changed".into(), Value::Bool(any_changed));
        agg.insert(
            "msg".into(),
            Value::String(if any_failed {
                "One or more items failed".into()
            } else {
                "All items completed".into()
            }),
        );
        if let Some(m) = unreachable_msg {
            agg.insert("msg".into(), m);
            agg.insert("unreachable".into(), Value::Bool(true));
        }
        agg.insert("results".into(), Value::Array(results));
        agg.insert("skipped".into(), Value::Bool(all_skipped && n > 0 || n == 0));
        mark_no_log(&mut agg, no_log);
        let status = if unreachable {
            Status::Unreachable
        } else if any_failed {
            agg.insert("failed".into(), Value::Bool(true));
            Status::Failed
        } else if n == 0 || all_skipped {
            Status::Skipped
        } else if any_changed {
            Status::Changed
        } else {
            Status::Ok
        };
        let ignored = handling.ignores(status);
        if status == Status::Failed || status == Status::Unreachable || n == 0 {
            // The summary line for a failed loop, as Ansible prints it.
            let shown = if no_log { censor(&agg) } else { strip_results(&agg) };
            if n == 0 {
                self.report(&title, Status::Skipped, false, None, shown);
            } else {
                self.report(&title, status, ignored, None, shown);
            }
        }
        TaskResult {
            status,
            result: agg,
            ignored,
        }
    }
    /// One module run (one loop item): when, args, become, delegate, retries.
    /// `vars` is taken, and dropped once the template context and the
    /// connection variables are made from it: it is not held on every host
    /// at once while the modules run.
    async fn run_item(&self, t: &Task, scopes: &[Scope], vars: Vars, no_log: bool) -> TaskResult {
        let ctx = self.ctx(&vars);
        match self.prepare(t, scopes, vars, &ctx).await {
            Ok(inv) => {
                let tr = self.run_with_retries(t, &inv, &ctx, no_log).await;
                if inv.tainted {
                    taint_result(&tr.result, &inv.args);
                }
                if inv.check {
                    self.predicted_changes(t, &inv, tr)
                } else {
                    tr
                }
            }
            Err(mut ended) => {
                // ansible-core 2.19 wraps an error raised before the module
                // runs (a task argument or `when` that cannot be templated)
                // in its task error: the result's `msg` is the chain
                // `Task failed: ...`, with the error summary.
                if ended.status == Status::Failed && !ended.result.contains_key("exception") {
                    if let Some(Value::String(msg)) = ended.result.get_mut("msg") {
                        if !msg.starts_with("Task failed: ") {
                            *msg = format!("Task failed: {msg}");
                        }
                    }
                    summarise_error(&mut ended, &t.loc, "Action");
                }
                ended
            }
        }
    }

    /// Check mode: remember the paths a changed result predicts, and report
    /// a failure that only an earlier predicted change explains as that
    /// change ([`super::predicted`]).
    fn predicted_changes(&self, t: &Task, inv: &Invocation, tr: TaskResult) -> TaskResult {
        if !matches!(tr.status, Status::Changed | Status::Failed) {
            return tr;
        }
        let queried: Vec<String> = inv.module.query_hints(&inv.args).into_iter().map(|q| q.path).collect();
        let paths = predicted::task_paths(&inv.args, &queried);
        if paths.is_empty() {
            return tr;
        }
        let host = &inv.target.conn_host;
        let title = t.display_name();
        let loc = t.loc.to_string();
        let (tr, new) = if tr.status == Status::Failed {
            let earlier = self.runner.with_host(host, |s| s.predicted.clone());
            let Some(drift) = predicted::explain(&tr, &paths, &earlier) else {
                return tr;
            };
            // It would create what it names itself (`dest`), not the
            // directories its query looked at.
            let own = predicted::task_paths(&inv.args, &[]);
            let mut new = predicted::predictions(&Map::new(), &own, &title, &loc);
            new.iter_mut().for_each(|p| p.created = true);
            (drift, new)
        } else {
            let new = predicted::predictions(&tr.result, &paths, &title, &loc);
            (tr, new)
        };
        self.runner.with_host(host, |s| s.predicted.extend(new));
        tr
    }

    /// Everything before the module runs, in this order: conditions, the
    /// module and its arguments, environment, check and diff mode,
    /// delegation, connection and become, search paths, retries. `Err` is
    /// the item's result when it ends before the module runs.
    async fn prepare(
        &self,
        t: &Task,
        scopes: &[Scope],
        vars: Vars,
        ctx: &minijinja::Value,
    ) -> Result<Invocation, TaskResult> {
        self.check_when(t, scopes, ctx)?;
        let module = self.module_for(t, ctx)?;
        let doc = module.doc();
        // An action plugin without `supports_raw_params` refuses free text
        // as Ansible's Task._post_validate_args does.
        if (!modules::external::skips_validation(doc.name) && !modules::ansible::is_ansible_module(doc.name))
            || modules::ansible::action::is_action_plugin(doc)
        {
            modules::validate::refuse_raw_params(doc, &t.args, &t.loc)
                .map_err(|e| TaskResult::failed(e.to_string()))?;
        }
        let defaults = self
            .module_defaults(t, scopes, doc, (ctx, &vars))
            .map_err(|e| TaskResult::failed(e.to_string()))?;
        let mut unsupported = None;
        let taint = crate::template::taint::Scope::start();
        let rendered = render_args(&self.runner.templar, doc, t.args.to_json(), (ctx, &vars), &t.loc);
        let tainted = taint.finish();
        let args = match rendered {
            Ok(Value::Object(m)) => {
                let m = strip_omit(m);
                // A parameter the module does not take (warned about at
                // load) fails the task on the host it runs on, as in Ansible.
                if !modules::external::skips_validation(doc.name) && !modules::ansible::is_ansible_module(doc.name) {
                    let bad = modules::validate::unsupported_params(doc, m.keys());
                    if !bad.is_empty() {
                        unsupported = Some(modules::unsupported::unsupported_message(doc, &bad));
                    }
                }
                let mut merged = defaults;
                merged.extend(m);
                strip_omit(merged)
            }
            Ok(_) => return Err(TaskResult::failed("module arguments must be a mapping".into())),
            Err(e) => {
                return Err(TaskResult::failed(
                    locate_arg_error(&self.runner.templar, t, doc, ctx, e).to_string(),
                ))
            }
        };
        let env = self
            .environment(scopes, Some(t), ctx)
            .map_err(|e| TaskResult::failed(e.to_string()))?;
        let rlimit_nofile = self.rlimit_nofile(&vars, ctx, &t.loc).map_err(TaskResult::failed)?;
        let (check, diff) = self.modes(t, scopes);
        // A task outside check mode during a check may change what the
        // prefetched state of every host says.
        let forget_prefetch = self.runner.opts.check && !check;
        if forget_prefetch {
            self.runner.pool.forget_prefetched();
        }
        let delegate = self.delegate_to(t, scopes, ctx)?;
        let target = self.connect(t, scopes, doc, delegate, vars).await?;
        Ok(Invocation {
            module,
            doc,
            args,
            env,
            rlimit_nofile,
            check,
            diff,
            forget_prefetch,
            target,
            search_paths: self.search_paths(t, scopes),
            retries: self.retries(t, ctx).map_err(TaskResult::failed)?,
            timeout: self.timeout(t, scopes, ctx).map_err(TaskResult::failed)?,
            async_: self.async_spec(t, ctx).map_err(TaskResult::failed)?,
            unsupported,
            tainted,
        })
    }

    /// The task's `async` and `poll` (seconds), when `async` is above 0.
    /// As in Ansible, `poll` defaults to 15.
    fn async_spec(&self, t: &Task, ctx: &minijinja::Value) -> Result<Option<super::async_task::AsyncSpec>, String> {
        let number = |key: &str, v: &Value| {
            value_u64(v, ctx, &self.runner.templar, &t.loc)
                .ok_or_else(|| format!("{}: `{key}` must be a whole number of seconds, not {v}", t.loc))
        };
        let limit = match &t.async_ {
            Some(v) => number("async", v)?,
            None => 0,
        };
        if limit == 0 {
            return Ok(None);
        }
        let poll = match &t.poll {
            Some(v) => number("poll", v)?,
            None => 15,
        };
        Ok(Some(super::async_task::AsyncSpec { limit, poll }))
    }

    /// The module the task runs. One that was not resolved at load (named
    /// by a template, or one of ansible-core's own that rigger has no
    /// native module for) is resolved now, for this host: its arguments
    /// are checked against it here, and a module found nowhere fails this
    /// task, located.
    fn module_for(&self, t: &Task, ctx: &minijinja::Value) -> Result<&'static Arc<dyn modules::Module>, TaskResult> {
        if let Some(m) = modules::registry::lookup(&t.action) {
            return Ok(m);
        }
        let name = if t.action.contains("{{") {
            match self.runner.templar.render_string(&t.action, ctx, &t.loc) {
                Ok(n) => n.trim().to_string(),
                Err(e) => return Err(TaskResult::failed(e.to_string())),
            }
        } else {
            t.action.clone()
        };
        if let Some(f) = crate::plugin_filter::rejects(&name) {
            return Err(TaskResult::failed(format!(
                "{}: {}",
                t.loc,
                crate::plugin_filter::rejected_message(&name, f)
            )));
        }
        let module = match modules::registry::lookup(&name) {
            Some(m) => m,
            None => modules::ansible::find(&name)
                .map_err(|why| TaskResult::failed(format!("{}: unknown module `{name}`: {}", t.loc, why.0)))?,
        };
        let doc = module.doc();
        if !modules::external::skips_validation(doc.name) && !modules::ansible::is_ansible_module(doc.name) {
            // Required arguments are checked when the module parses them
            // (after module_defaults are merged).
            // A parameter it does not take fails the task in `prepare`,
            // in Ansible's words; here it is not an error.
            modules::validate::validate_args(doc, &t.args, &t.loc, false, &mut Vec::new())
                .map_err(|e| TaskResult::failed(e.to_string()))?;
        }
        Ok(module)
    }

    /// Conditions from enclosing blocks/roles/includes, then the task's own.
    /// `Err` with the skipped result at the first that does not hold (or
    /// the failure of one that cannot be evaluated).
    fn check_when(&self, t: &Task, scopes: &[Scope], ctx: &minijinja::Value) -> Result<(), TaskResult> {
        for c in scopes
            .iter()
            .flat_map(|s| s.common.when.iter())
            .chain(t.common.when.iter())
        {
            match super::results::eval_cond(&self.runner.templar, c, ctx) {
                Ok(true) => {}
                Ok(false) if meta_action(t).is_some() => {
                    let action = meta_action(t).unwrap_or_default();
                    return Err(TaskResult {
                        status: Status::Skipped,
                        result: modules::control::meta_skipped(&action, &self.host),
                        ignored: false,
                    });
                }
                Ok(false) => {
                    let mut r = Map::new();
                    r.insert("changed".into(), Value::Bool(false));
                    r.insert(
                        "skip_reason".into(),
                        Value::String("Conditional result was False".into()),
                    );
                    let cond = match c.literal {
                        Some(b) => Value::Bool(b),
                        None => Value::String(c.expr.clone()),
                    };
                    r.insert("false_condition".into(), cond);
                    r.insert("skipped".into(), Value::Bool(true));
                    return Err(TaskResult {
                        status: Status::Skipped,
                        result: r,
                        ignored: false,
                    });
                }
                Err(e) => {
                    return Err(TaskResult::failed(format!(
                        "The conditional check '{}' failed: {}",
                        c.expr, e
                    )))
                }
            }
        }
        Ok(())
    }

    /// Check mode and diff mode of a task: its own keyword, else the
    /// innermost scope's, else the run's.
    fn modes(&self, t: &Task, scopes: &[Scope]) -> (bool, bool) {
        let check = resolve_bool(scopes, &t.common, |c| &c.check_mode).unwrap_or(self.runner.opts.check);
        let diff = resolve_bool(scopes, &t.common, |c| &c.diff).unwrap_or(self.runner.opts.diff);
        (check, diff)
    }

    /// The host named by `delegate_to`, rendered.
    fn delegate_to(&self, t: &Task, scopes: &[Scope], ctx: &minijinja::Value) -> Result<Option<String>, TaskResult> {
        match t
            .common
            .delegate_to
            .as_ref()
            .or_else(|| scopes.iter().rev().find_map(|s| s.common.delegate_to.as_ref()))
        {
            Some(d) => match self.runner.templar.render_str(d, ctx, &t.loc) {
                Ok(Value::String(s)) => Ok(Some(s)),
                Ok(other) => Ok(Some(other.to_string())),
                Err(e) => Err(TaskResult::failed(e.to_string())),
            },
            None => Ok(None),
        }
    }

    /// Where the module runs and as whom: with `delegate_to`, on another
    /// host's connection with this host's variables; a controller-only
    /// module on the controller. `Err` with the unreachable result when the
    /// host cannot be connected to.
    async fn connect(
        &self,
        t: &Task,
        scopes: &[Scope],
        doc: &ModuleDoc,
        delegate: Option<String>,
        vars: Vars,
    ) -> Result<Target, TaskResult> {
        // Only the connection and become variables: held for the whole task
        // (and by the reconnect closure) on every host at once, so the rest
        // (facts, play host lists, `groups`) is not copied for it.
        let (conn_host, conn_vars) = match &delegate {
            Some(d) if *d != self.host => {
                let dv = self.runner.hostvars_of(d).unwrap_or_default();
                self.runner.out.secrets().add_from_vars(&dv);
                (d.clone(), Arc::new(connection_vars(&dv)))
            }
            _ => (self.host.clone(), Arc::new(connection_vars(vars.map()))),
        };
        // Become needs the variables for a templated `become_method`.
        let become_ = self.become_for(scopes, Some(&t.common), &conn_vars, &|src| {
            let ctx = self.ctx(&vars);
            match self.runner.templar.render_str(src, &ctx, &t.loc) {
                Ok(Value::String(s)) => Ok(s),
                Ok(other) => Ok(other.to_string()),
                Err(e) => Err(format!("become_method: {}", e.msg)),
            }
        });
        drop(vars);
        // Typed connection variables that were templates (or set by the
        // play) are checked once rendered: a wrong value is this task's
        // located failure, not an unreachable host.
        if let Err(m) = crate::inventory::check_connection_vars(&conn_vars) {
            return Err(TaskResult::failed(format!("{}: host {conn_host}: {m}", t.loc)));
        }
        let become_ = become_.map_err(|m| TaskResult::failed(format!("{}: {m}", t.loc)))?;
        let conn: Arc<dyn Connection> = if doc.controller_only {
            Arc::new(crate::connection::local::LocalConnection::new("localhost"))
        } else {
            match self.runner.pool.get(&conn_host, &conn_vars).await {
                Ok(c) => c,
                Err(e) => return Err(TaskResult::unreachable(e.to_string())),
            }
        };
        Ok(Target {
            delegate,
            conn_host,
            conn_vars,
            become_,
            conn,
        })
    }

    /// Directories searched for a task's relative paths (see `search_dirs`).
    fn search_paths(&self, t: &Task, scopes: &[Scope]) -> Vec<PathBuf> {
        let role = t
            .role
            .as_ref()
            .or_else(|| scopes.iter().rev().find_map(|s| s.role.as_ref()));
        self.search_dirs(role.map(|r| r.as_ref()), Some(&t.dir))
    }

    /// `retries` and `delay` (seconds) of a task.
    /// A value that is not a whole number is the task's located failure,
    /// not a silent default.
    fn retries(&self, t: &Task, ctx: &minijinja::Value) -> Result<Retries, String> {
        let number = |key: &str, v: &Value| {
            value_u64(v, ctx, &self.runner.templar, &t.loc)
                .ok_or_else(|| format!("{}: `{key}` must be a whole number, not {v}", t.loc))
        };
        let retries = match &t.retries {
            Some(v) => number("retries", v)?,
            None if t.until.is_some() => 3,
            None => 0,
        };
        let delay = match &t.delay {
            Some(v) => number("delay", v)?,
            None => 5,
        };
        Ok(Retries { retries, delay })
    }

    /// The task's `timeout:` (the innermost of the task and its blocks,
    /// roles and play), else `--task-timeout`. As in Ansible, 0 is no
    /// limit and a value outside 0..=100000000 fails the task.
    fn timeout(&self, t: &Task, scopes: &[Scope], ctx: &minijinja::Value) -> Result<Option<u64>, String> {
        const MAX: i64 = 100_000_000;
        let keyword = t
            .common
            .timeout
            .as_ref()
            .or_else(|| scopes.iter().rev().find_map(|s| s.common.timeout.as_ref()));
        let Some(v) = keyword else {
            return Ok(self.runner.opts.task_timeout.map(|d| d.as_secs()));
        };
        let rendered = self
            .runner
            .templar
            .render_value(v, ctx, &t.loc)
            .map_err(|e| e.to_string())?;
        let secs = match &rendered {
            Value::Number(n) => n.as_i64(),
            Value::String(s) => s.trim().parse::<i64>().ok(),
            _ => None,
        }
        .ok_or_else(|| format!("{}: `timeout` must be a whole number of seconds, not {rendered}", t.loc))?;
        if !(0..=MAX).contains(&secs) {
            return Err(format!("Timeout {secs} is invalid, it must be between 0 and {MAX}."));
        }
        Ok((secs > 0).then_some(secs as u64))
    }

    /// Run the module, shape its outcome ([`super::results`]), and run it
    /// again while `until` does not hold and retries are left.
    async fn run_with_retries(&self, t: &Task, inv: &Invocation, ctx: &minijinja::Value, no_log: bool) -> TaskResult {
        let mut tr = self.attempts(t, inv, ctx, no_log).await;
        // ansible-core 2.19's task executor: a failed result carries the
        // error summary (`failed_when: true` failures too).
        summarise_error(&mut tr, &t.loc, "Action");
        tr
    }

    /// Run the module until `until` holds or the retries are spent, each
    /// result judged by `changed_when` / `failed_when`.
    async fn attempts(&self, t: &Task, inv: &Invocation, ctx: &minijinja::Value, no_log: bool) -> TaskResult {
        let Retries { retries, delay } = inv.retries;
        let mut attempt = 0u64;
        loop {
            attempt += 1;
            let outcome = self.invoke(t, inv, ctx, no_log).await;
            if inv.forget_prefetch {
                self.runner.pool.forget_prefetched();
            }
            self.forget_stale_users(inv, &outcome).await;
            let mut tr = match outcome {
                Ok(o) => self.outcome_to_result(o, t, inv.diff),
                Err(ModuleError::Conn(e)) if e.is_unreachable() => {
                    self.runner.pool.reset(&inv.target.conn_host);
                    return TaskResult::unreachable(e.to_string());
                }
                Err(e @ ModuleError::RunTimedOut(limit)) => {
                    // Not subject to `until`, `failed_when` or `ignore_errors`
                    // judgement: the run is over.
                    let mut tr = TaskResult::failed(e.to_string());
                    tr.result.insert(
                        "timedout".into(),
                        serde_json::json!({ "period": limit.as_secs(), "run_timeout": true }),
                    );
                    return tr;
                }
                Err(ModuleError::TimedOut(secs)) => {
                    let mut tr = TaskResult::failed(ModuleError::TimedOut(secs).to_string());
                    tr.result.insert(
                        "timedout".into(),
                        serde_json::json!({ "period": secs, "frame": "rigger keeps no traceback of a timed-out task" }),
                    );
                    tr
                }
                Err(e) => TaskResult::failed(e.to_string()),
            };
            // ansible-core 2.19 normalises a failed module result: its
            // `exception` is the error summary, which `failed_when` may
            // suppress (`failed_when_suppressed_exception`).
            let kind = if inv.doc.controller_only { "Action" } else { "Module" };
            summarise_error(&mut tr, &t.loc, kind);
            // A module on a host reports its arguments as `invocation`,
            // which Ansible's output shows from -vvv on.
            if self.runner.opts.verbosity >= 3 && !inv.doc.controller_only && !no_log {
                let module_args: Map<String, Value> = inv
                    .args
                    .iter()
                    .filter(|(k, _)| !k.starts_with('_'))
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect();
                tr.result
                    .entry("invocation")
                    .or_insert_with(|| serde_json::json!({ "module_args": module_args }));
            }
            if let Some(d) = &inv.target.delegate {
                tr.result.insert("_delegated_to".into(), Value::String(d.clone()));
            }
            if no_log {
                tr.result.insert("_ansible_no_log".into(), Value::Bool(true));
            }
            // changed_when / failed_when see the result under the register name.
            if !t.changed_when.is_empty() || !t.failed_when.is_empty() || t.until.is_some() {
                let c2 = self.result_context(t, &tr.result, ctx);
                self.apply_conditions(t, &mut tr, &c2);
                if let Some(u) = &t.until {
                    match super::results::eval_cond(&self.runner.templar, u, &c2) {
                        Ok(true) => {
                            tr.result.insert("attempts".into(), Value::from(attempt));
                            return tr;
                        }
                        Ok(false) if attempt <= retries && !INTERRUPTED.load(Ordering::SeqCst) => {
                            self.runner.out.emit(&Event::Warning {
                                message: format!(
                                    "{}: retrying {} ({} retries left)",
                                    self.host,
                                    t.display_name(),
                                    retries + 1 - attempt
                                ),
                            });
                            tokio::time::sleep(Duration::from_secs(delay)).await;
                            continue;
                        }
                        Ok(false) => {
                            tr.result.insert("attempts".into(), Value::from(attempt));
                            tr.result.insert("failed".into(), Value::Bool(true));
                            tr.result
                                .entry("msg")
                                .or_insert(Value::String("Retries exhausted".into()));
                            tr.status = Status::Failed;
                            return tr;
                        }
                        Err(e) => return TaskResult::failed(e.to_string()),
                    }
                }
            }
            return tr;
        }
    }

    /// Ansible's PYTHON_MODULE_RLIMIT_NOFILE: the soft limit of open files
    /// modules run with, from `ansible_python_module_rlimit_nofile`, else
    /// `$ANSIBLE_PYTHON_MODULE_RLIMIT_NOFILE`, else `[defaults]
    /// python_module_rlimit_nofile`; 0 or omitted leaves the limit alone.
    /// Rendered only when set, so the common task pays nothing.
    fn rlimit_nofile(&self, vars: &Vars, ctx: &minijinja::Value, loc: &crate::loc::Loc) -> Result<Option<u64>, String> {
        const VAR: &str = "ansible_python_module_rlimit_nofile";
        let value = if vars.map().contains_key(VAR) {
            match self.runner.templar.eval(VAR, ctx, loc) {
                Ok(Value::String(s)) if s == crate::template::omit() => return Ok(None),
                Ok(v) => v,
                Err(e) => return Err(format!("{VAR}: {}", e.msg)),
            }
        } else if let Some(source) = vars.unresolved_source(VAR) {
            // Defined, but its template failed (an undefined variable): an
            // error, as Ansible's templating of the setting is; rendered
            // again for the message that names what is missing.
            return Err(match self.runner.templar.render_value(source, ctx, loc) {
                Err(e) => format!("{VAR}: {}", e.msg),
                Ok(_) => format!("{VAR}: its value is undefined"),
            });
        } else {
            static CFG: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
            let cfg = CFG.get_or_init(|| {
                std::env::var("ANSIBLE_PYTHON_MODULE_RLIMIT_NOFILE")
                    .ok()
                    .or_else(|| crate::ansible_cfg::value("defaults", "python_module_rlimit_nofile"))
            });
            match cfg {
                Some(s) => Value::String(s.clone()),
                None => return Ok(None),
            }
        };
        let n = match &value {
            Value::Number(n) => n.as_u64(),
            Value::String(s) => s.trim().parse::<u64>().ok(),
            _ => None,
        }
        .ok_or_else(|| format!("{VAR} must be a non-negative integer, got {value}"))?;
        Ok((n > 0).then_some(n))
    }

    /// One run of the module: in a fork slot (unless it runs on the
    /// controller), able to reconnect, its commands traced, within the
    /// task's timeout.
    async fn invoke(
        &self,
        t: &Task,
        inv: &Invocation,
        ctx: &minijinja::Value,
        no_log: bool,
    ) -> Result<ModuleOutcome, ModuleError> {
        if let Some(msg) = &inv.unsupported {
            return Err(ModuleError::Failed(msg.clone()));
        }
        let Invocation {
            module,
            doc,
            args,
            env,
            rlimit_nofile,
            check,
            diff,
            target,
            search_paths,
            ..
        } = inv;
        let Target {
            conn_host,
            conn_vars,
            become_,
            conn,
            ..
        } = target;
        let mctx = ModuleCtx {
            conn: &**conn,
            host: &self.host,
            check_mode: *check,
            diff_mode: *diff,
            become_: become_.as_ref(),
            env,
            templar: &self.runner.templar,
            vars: ctx,
            search_paths,
            loc: &t.loc,
            max_output: self.runner.opts.max_output,
            no_log,
            rlimit_nofile: *rlimit_nofile,
        };
        let _permit = if doc.controller_only {
            None
        } else {
            self.runner.forks.acquire().await.ok()
        };
        // The file modules need the login user's umask and ids for
        // what they create: learnt without `id` where the transport
        // can (once per connection; see Connection::login_user).
        if become_.is_none() && module.creates_files() {
            let key = modules::host::remote_file::whoami_memo_key(None);
            if let Some(m) = conn.memo().filter(|m| m.get(&key).is_none()) {
                if let Some(who) = conn.login_user().await {
                    m.set(&key, who);
                }
            }
        }
        let reconnect: modules::Reconnect = {
            let (runner, host, vars) = (self.runner.clone(), conn_host.clone(), conn_vars.clone());
            Arc::new(move || {
                let (runner, host, vars) = (runner.clone(), host.clone(), vars.clone());
                Box::pin(async move {
                    runner.pool.reset(&host);
                    runner.pool.get(&host, &vars).await
                })
            })
        };
        // The RIGGER_DEBUG_ROUNDTRIPS trace of this module's commands:
        // hidden for no_log, the run's secrets masked otherwise.
        let trace = crate::connection::TraceScope {
            no_log,
            redact: {
                let out = self.runner.out.clone();
                Arc::new(move |s: &str| out.secrets().redact_str(s).into_owned())
            },
            // Ansible's -vvv `<host> EXEC ...` and `<host> PUT ...` lines.
            show_exec: (self.runner.out.verbosity() >= 3).then(|| {
                let out = self.runner.out.clone();
                Arc::new(move |host: &str, action| {
                    let host = host.to_string();
                    out.emit(&match action {
                        crate::connection::TargetAction::Exec { command, become_ } => {
                            Event::Exec { host, command, become_ }
                        }
                        crate::connection::TargetAction::Put { source, dest } => Event::Put { host, source, dest },
                    })
                }) as crate::connection::ExecDisplay
            }),
        };
        let run = async {
            match inv.async_ {
                Some(spec) => super::async_task::run(module.as_ref(), &mctx, args.clone(), spec, &t.action).await,
                None => execute(module.as_ref(), &mctx, args.clone()).await,
            }
        };
        let fut = crate::connection::TRACE_SCOPE.scope(trace, modules::RECONNECT.scope(reconnect, run));
        let started = std::time::Instant::now();
        tracing::debug!(host = %self.host, module = doc.name, task = t.name.as_deref().unwrap_or(""), check, "module starts");
        // Past the timeout the module's future is dropped: its commands'
        // channels close and a local child process is killed.
        let timed = async {
            match inv.timeout {
                Some(secs) => match tokio::time::timeout(Duration::from_secs(secs), fut).await {
                    Ok(r) => r,
                    Err(_) => Err(ModuleError::TimedOut(secs)),
                },
                None => fut.await,
            }
        };
        // `--run-timeout`: the module's future is dropped as for its own timeout.
        let outcome = tokio::select! {
            r = timed => r,
            limit = super::runner::run_deadline() => Err(ModuleError::RunTimedOut(limit)),
        };
        match &outcome {
            Ok(o) => tracing::debug!(
                host = %self.host,
                module = doc.name,
                changed = o.changed,
                failed = o.failed,
                elapsed_ms = started.elapsed().as_millis() as u64,
                "module ends"
            ),
            // A no_log task's error may quote its arguments.
            Err(e) => tracing::debug!(
                host = %self.host,
                module = doc.name,
                error = %if no_log { "<hidden: no_log task>".to_string() } else { e.to_string() },
                elapsed_ms = started.elapsed().as_millis() as u64,
                "module ends with an error"
            ),
        }
        outcome
    }

    /// After a task that may have changed the remote users or groups
    /// ([`modules::Module::may_change_users`]), what the connection remembers of them is
    /// dropped.
    async fn forget_stale_users(&self, inv: &Invocation, outcome: &Result<ModuleOutcome, ModuleError>) {
        let conn = &inv.target.conn;
        if outcome
            .as_ref()
            .map_or(true, |o| (o.changed || o.failed) && inv.module.may_change_users(&o.ret))
        {
            if let Some(m) = conn.memo() {
                let login_user = m.get(&modules::host::remote_file::whoami_memo_key(None));
                m.clear();
                // The login user's ids and umask are those of this
                // connection's processes, which no task changes; only
                // the names of the ids may have changed: kept when the
                // host's name service still gives the same (over SFTP,
                // no program started), asked again otherwise.
                if let Some(who) = login_user {
                    if modules::host::remote_file::names_still_match(conn.as_ref(), &who).await {
                        m.set(&modules::host::remote_file::whoami_memo_key(None), who);
                    }
                }
            }
        }
    }

    /// Become settings for a task (or the play's, without one): keywords,
    /// then the command line, then `ansible_become*` variables.
    pub(super) fn become_for(
        &self,
        scopes: &[Scope],
        task: Option<&Common>,
        vars: &Map<String, Value>,
        render: &dyn Fn(&str) -> Result<String, String>,
    ) -> Result<Option<Become>, String> {
        let opts = &self.runner.opts;
        let pick = |f: &dyn Fn(&Common) -> Option<String>| -> Option<String> {
            task.and_then(f)
                .or_else(|| scopes.iter().rev().find_map(|s| f(&s.common)))
        };
        let on = task
            .and_then(|c| c.become_.as_ref().and_then(Flag::literal))
            .or_else(|| {
                scopes
                    .iter()
                    .rev()
                    .find_map(|s| s.common.become_.as_ref().and_then(Flag::literal))
            })
            .or(opts.become_)
            .or_else(|| vars.get("ansible_become").map(truthy))
            .unwrap_or(false);
        if !on {
            return Ok(None);
        }
        // Like every keyword, `become_user` is a template (rendered with the
        // task's variables when it runs, e.g. from a set_fact).
        let user = pick(&|c: &Common| c.become_user.clone())
            .map(|u| match crate::template::has_template_syntax(&u) {
                true => render(&u),
                false => Ok(u),
            })
            .transpose()?
            .or_else(|| opts.become_user.clone())
            .or_else(|| var_str(vars, "ansible_become_user"))
            .unwrap_or_else(|| "root".into());
        let method = pick(&|c: &Common| c.become_method.clone())
            .map(|m| match crate::template::has_template_syntax(&m) {
                true => render(&m),
                false => Ok(m),
            })
            .transpose()?
            .or_else(|| opts.become_method.clone())
            .or_else(|| var_str(vars, "ansible_become_method"))
            .unwrap_or_else(|| "sudo".into());
        let password = var_str(vars, "ansible_become_password")
            .or_else(|| var_str(vars, "ansible_become_pass"))
            .or_else(|| opts.become_password.clone());
        // An unknown method (a templated keyword, a variable set at run time)
        // is this task's failure, never a silent sudo.
        let method: BecomeMethod = method.parse().map_err(|e| format!("{e}"))?;
        Ok(Some(Become { method, user, password }))
    }

    /// The `module_defaults:` of the scopes and the task for this task's
    /// module, rendered, as Ansible merges them: the mappings in order
    /// (outer scopes first), each replacing an earlier module's entry as a
    /// whole; the task's own arguments then win over them.
    fn module_defaults(
        &self,
        task: &Task,
        scopes: &[Scope],
        doc: &modules::ModuleDoc,
        (ctx, vars): (&minijinja::Value, &Vars),
    ) -> Result<Map<String, Value>, LocError> {
        let key = crate::playbook::module_defaults_key(&task.action);
        let mut found: Option<(&Value, &Loc)> = None;
        for md in scopes
            .iter()
            .flat_map(|s| s.common.module_defaults.iter())
            .chain(task.common.module_defaults.iter())
        {
            if let Some(v) = md.entries.get(key) {
                found = Some((v, &md.loc));
            }
        }
        let Some((raw, loc)) = found else {
            return Ok(Map::new());
        };
        match raw {
            Value::Null => Ok(Map::new()),
            _ => match render_args(&self.runner.templar, doc, raw.clone(), (ctx, vars), loc)? {
                Value::Object(m) => Ok(m),
                other => Err(LocError::new(
                    loc.clone(),
                    format!("the module_defaults of `{key}` must be a mapping, not {other}"),
                )),
            },
        }
    }

    /// The `environment:` of the scopes and the task, rendered; inner names win.
    pub(super) fn environment(
        &self,
        scopes: &[Scope],
        task: Option<&Task>,
        ctx: &minijinja::Value,
    ) -> Result<Vec<(String, String)>, LocError> {
        let loc = task.map_or(&self.pctx.play.loc, |t| &t.loc);
        let mut env: Vec<(String, String)> = Vec::new();
        for e in scopes
            .iter()
            .flat_map(|s| s.common.environment.iter())
            .chain(task.into_iter().flat_map(|t| t.common.environment.iter()))
        {
            // As Ansible's (Task._post_validate_environment): each entry of
            // the list (outer scopes first) is a mapping merged over the
            // ones before; `{{ omit }}` drops an entry or a name, an empty
            // entry adds nothing; a name whose value uses `ansible_env`
            // (facts not gathered yet) is left out instead of failing.
            let m = match e {
                Value::Object(entries) => {
                    let mut m = Map::new();
                    for (k, v) in entries {
                        match self.runner.templar.render_value(v, ctx, loc) {
                            Ok(v) => {
                                m.insert(k.clone(), v);
                            }
                            Err(err) if uses_unset_env_facts(v, &err.msg) => {}
                            Err(err) => return Err(err),
                        }
                    }
                    strip_omit(m)
                }
                _ => match self.runner.templar.render_value(e, ctx, loc)? {
                    Value::Object(m) => strip_omit(m),
                    Value::Null => continue,
                    Value::String(s) if s.is_empty() || s == omit() => continue,
                    other => {
                        return Err(LocError::new(
                            loc.clone(),
                            format!("environment must be a mapping of names to values, received {other}"),
                        ))
                    }
                },
            };
            for (k, v) in m {
                let s = match v {
                    Value::String(s) => s,
                    other => other.to_string(),
                };
                env.retain(|(ek, _)| *ek != k);
                env.push((k, s));
            }
        }
        Ok(env)
    }

    /// Check mode: learn the file state the next tasks of `nodes` will query
    /// on this host in one command ([`modules::host::prefetch`]); returns how
    /// many nodes the window covered. Nothing changes on a host in check
    /// mode, so the answers hold until a task runs outside check mode (which
    /// drops them, see `run_item`). Arguments that cannot be rendered yet
    /// (they use a later `register`), use lookups (which may have effects),
    /// or name another host are left out: those tasks query for themselves.
    pub(super) async fn prefetch(&self, nodes: &[TaskNode], scopes: &[Scope]) -> usize {
        const WINDOW: usize = 32;
        let window = &nodes[..nodes.len().min(WINDOW)];
        let vars = self.vars(scopes, None);
        let ctx = self.ctx(&vars);
        let delegated_scope = scopes.iter().any(|s| s.common.delegate_to.is_some());
        let mut needs: Vec<modules::PathQuery> = Vec::new();
        for node in window {
            let TaskNode::Task(t) = node else { continue };
            if delegated_scope
                || t.loop_.is_some()
                || t.common.delegate_to.is_some()
                || matches!(t.common.check_mode, Some(Flag::Bool(false)))
                // Its paths would show in the batch's RIGGER_DEBUG_ROUNDTRIPS
                // trace: a no_log task queries for itself, hidden.
                || resolve_bool(scopes, &t.common, |c| &c.no_log).unwrap_or(false)
                || t.common.has_flag_templates()
                || !tags_match(&self.runner.opts, scopes, &t.common.tags)
            {
                continue;
            }
            let raw = t.args.to_json();
            let text = raw.to_string();
            if text.contains("lookup") || text.contains("query(") || text.contains("q(") {
                continue;
            }
            let Ok(Value::Object(args)) = self.runner.templar.render_value(&raw, &ctx, &t.loc) else {
                continue;
            };
            let Some(module) = modules::registry::lookup(&t.action) else {
                continue;
            };
            for n in module.query_hints(&strip_omit(args)) {
                if !needs.contains(&n) {
                    needs.push(n);
                }
            }
        }
        drop(ctx);
        // One path: the task's own query costs the same.
        if needs.len() < 2 {
            return window.len();
        }
        let conn_vars = connection_vars(vars.map());
        let Ok(conn) = self.runner.pool.get(&self.host, &conn_vars).await else {
            return window.len();
        };
        let Some(memo) = conn.memo() else {
            return window.len();
        };
        // An unknown become method fails the task itself (see `run_item`).
        let Ok(become_) = self.become_for(scopes, None, &conn_vars, &|_| Err(String::new())) else {
            return window.len();
        };
        let req = crate::connection::ExecRequest {
            // The login user too, which every file task needs.
            cmd: format!(
                "{}{}",
                modules::host::remote_file::whoami_snippet(),
                modules::host::prefetch::batch_script(&needs)
            ),
            become_: become_.clone(),
            subshell_ok: true,
            ..Default::default()
        };
        let _permit = self.runner.forks.acquire().await.ok();
        if let Ok(out) = crate::connection::exec(&*conn, &req).await {
            modules::host::prefetch::store(memo, become_.as_ref().map(|b| b.user.as_str()), &needs, &out.stdout);
            let head = &out.stdout[..out.stdout.len().min(4096)];
            modules::host::remote_file::remember_whoami_in(memo, become_.as_ref(), &String::from_utf8_lossy(head));
        }
        window.len()
    }
}

fn value_u64(v: &Value, ctx: &minijinja::Value, templar: &Templar, loc: &Loc) -> Option<u64> {
    match templar.render_value(v, ctx, loc).ok()? {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// Renders a task's arguments, except the options the module evaluates as
/// expressions itself ([`modules::OptKind::Expr`]): a value rendered into
/// those could come from a host and would be evaluated as code.
fn render_args(
    templar: &Templar,
    doc: &modules::ModuleDoc,
    raw: Value,
    (ctx, vars): (&minijinja::Value, &Vars),
    loc: &Loc,
) -> Result<Value, LocError> {
    let Value::Object(mut m) = raw else {
        return templar.render_value(&raw, ctx, loc);
    };
    if doc.name == "set_fact" {
        set_fact_key_types(templar, &m, ctx, loc)?;
    }
    // `args: '{{ name }}'` of a variable the playbook's author wrote
    // without a template is trusted text, expressions included.
    let trusted_whole = m
        .get(crate::modules::args::VARIABLE_PARAMS)
        .and_then(Value::as_str)
        .and_then(bare_variable)
        .is_some_and(|name| vars.is_literal(name));
    let mut exprs = Map::new();
    for name in exprs_of(doc) {
        if let Some(v) = m.remove(name) {
            exprs.insert(name.to_string(), v);
        }
    }
    // Argument names are not templates (ansible-core 2.19 templates only
    // the values; set_fact templates its names itself, above).
    let rendered = if doc.name != "set_fact" && m.keys().any(|k| crate::template::has_template_syntax(k)) {
        let mut out = Map::new();
        for (k, v) in m {
            out.insert(k, templar.render_value(&v, ctx, loc)?);
        }
        Value::Object(out)
    } else {
        templar.render_value(&Value::Object(m), ctx, loc)?
    };
    match rendered {
        Value::Object(mut rendered) => {
            if let Some(whole) = rendered.remove(crate::modules::args::VARIABLE_PARAMS) {
                // Several layers (the `args:` template, then the module's
                // own): each later one wins, as Ansible's TaskArgsFinalizer
                // chains them.
                let layers = match whole {
                    Value::Array(layers) => layers,
                    one => vec![one],
                };
                let mut base = Map::new();
                for layer in layers {
                    // An omitted template is no arguments (Ansible's
                    // `value_for_omit={}`); anything else must be a mapping.
                    match layer {
                        Value::Object(m) => base.extend(m),
                        Value::String(s) if s == crate::template::omit() => {}
                        other => {
                            return Err(LocError::new(
                                loc.clone(),
                                format!(
                                    "Finalization of task args for '{}' failed: Task args must resolve to a 'dict' \
                                     not '{}'.",
                                    doc.name,
                                    json_type_name(&other)
                                ),
                            ))
                        }
                    }
                }
                // What the template rendered is data: an expression option
                // (`assert`'s `that`, `debug`'s `var`) from it would be
                // evaluated, so it is refused, as 2.19 refuses untrusted
                // expressions (one the task writes itself wins and is kept).
                // A value without text (true, 1) is no expression anyone wrote: harmless.
                let untrusted = exprs_of(doc).find(|n| base.get(*n).is_some_and(has_text) && !exprs.contains_key(*n));
                if let Some(name) = untrusted.filter(|_| !trusted_whole) {
                    return Err(LocError::new(
                        loc.clone(),
                        format!(
                            "Encountered untrusted template or expression: `{name}` of `{}` comes from the task's \
                             `args` template, whose result is data and is never evaluated; write `{name}` on the task",
                            doc.name
                        ),
                    ));
                }
                base.extend(rendered);
                rendered = base;
            }
            rendered.extend(exprs);
            Ok(Value::Object(rendered))
        }
        other => Ok(other),
    }
}

/// set_fact templates its keys (Ansible's action: `self._templar.template(k)`)
/// and a key must give a string: one that renders to another type (`{{ 1 }}`)
/// fails the task with Ansible's `validate_variable_name` message. (The
/// string keys are checked by the module.)
fn set_fact_key_types(
    templar: &Templar,
    args: &Map<String, Value>,
    ctx: &minijinja::Value,
    loc: &Loc,
) -> Result<(), LocError> {
    for k in args.keys() {
        if !(k.contains("{{") || k.contains("{%")) {
            continue;
        }
        let key = templar.render_str(k, ctx, loc)?;
        if key.is_string() {
            continue;
        }
        // Python's str() of a scalar key, and its type name.
        let shown = match &key {
            Value::Null => Some("None".to_string()),
            Value::Bool(true) => Some("True".to_string()),
            Value::Bool(false) => Some("False".to_string()),
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        };
        let name = match shown {
            Some(s) => format!("name '{s}'"),
            None => "name".to_string(),
        };
        return Err(LocError::new(
            loc.clone(),
            format!(
                "set_fact: Invalid variable {name} of type '{}'. Variable names must be strings starting with a \
                 letter or underscore character, and contain only letters, numbers and underscores.",
                json_type_name(&key)
            ),
        ));
    }
    Ok(())
}

/// Whether every string in `rendered` is text the author wrote in `raw` (at
/// the same place, without a template): a template there may only have
/// given a value without text (`true`, `1`).
fn literal_text(raw: &Value, rendered: &Value) -> bool {
    match (raw, rendered) {
        (Value::String(_), v) if crate::template::resolve::needs_render(raw) => !has_text(v),
        (Value::Array(r), Value::Array(v)) => r.len() == v.len() && r.iter().zip(v).all(|(r, v)| literal_text(r, v)),
        (Value::Object(r), Value::Object(v)) => v.iter().all(|(k, v)| r.get(k).is_some_and(|r| literal_text(r, v))),
        (r, v) => r == v,
    }
}

/// Whether `v` holds a string anywhere (text that could be an expression).
fn has_text(v: &Value) -> bool {
    match v {
        Value::String(_) => true,
        Value::Array(a) => a.iter().any(has_text),
        Value::Object(o) => o.values().any(has_text),
        _ => false,
    }
}

/// `name` when `template` is exactly `{{ name }}` (one variable, nothing else).
fn bare_variable(template: &str) -> Option<&str> {
    let inner = template.trim().strip_prefix("{{")?.strip_suffix("}}")?.trim();
    let mut chars = inner.chars();
    let first = chars.next()?;
    ((first.is_ascii_alphabetic() || first == '_') && chars.all(|c| c.is_ascii_alphanumeric() || c == '_'))
        .then_some(inner)
}

/// The names (and aliases) of a module's expression options, which the
/// module evaluates itself and the engine never renders.
fn exprs_of(doc: &modules::ModuleDoc) -> impl Iterator<Item = &'static str> + '_ {
    doc.options
        .iter()
        .filter(|o| o.kind == modules::OptKind::Expr)
        .flat_map(|o| std::iter::once(o.name).chain(o.aliases.iter().copied()))
}

/// Python's name for the type of a JSON value, as Ansible's messages give it.
fn json_type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "NoneType",
        Value::Bool(_) => "bool",
        Value::Number(n) if n.is_f64() => "float",
        Value::Number(_) => "int",
        Value::String(_) => "str",
        Value::Array(_) => "list",
        Value::Object(_) => "dict",
    }
}

/// An argument that failed to render, located as Ansible 2.19 locates it:
/// at the argument's own value (file:line:column), naming the task and the
/// argument. Only on the error path: each argument is rendered again alone
/// to find the one that fails.
fn locate_arg_error(
    templar: &Templar,
    t: &Task,
    doc: &modules::ModuleDoc,
    ctx: &minijinja::Value,
    e: LocError,
) -> LocError {
    let exprs: Vec<&str> = doc
        .options
        .iter()
        .filter(|o| o.kind == modules::OptKind::Expr)
        .flat_map(|o| std::iter::once(o.name).chain(o.aliases.iter().copied()))
        .collect();
    for (key, _, value) in t.args.map_entries() {
        if exprs.contains(&key.as_str()) {
            continue;
        }
        if let Err(inner) = templar.render_value(&value.to_json(), ctx, &value.loc) {
            let at = if value.loc.is_synthetic() {
                t.loc.clone()
            } else {
                value.loc.clone()
            };
            let mut located = LocError::new(
                at,
                format!("task `{}`, argument `{key}`: {}", t.display_name(), inner.msg),
            );
            if let Some(h) = inner.hint {
                located = located.with_hint(h);
            }
            return located;
        }
    }
    e
}

/// Remove arguments whose value is `{{ omit }}`.
fn strip_omit(m: Map<String, Value>) -> Map<String, Value> {
    m.into_iter().filter(|(_, v)| v.as_str() != Some(omit())).collect()
}

/// Query, then apply unless in check mode: the one place where check mode
/// decides whether a module changes a host ([`modules::Plan`]).
pub(crate) async fn execute(
    module: &dyn modules::Module,
    ctx: &modules::ModuleCtx<'_>,
    args: Map<String, Value>,
) -> Result<ModuleOutcome, ModuleError> {
    match module.query(ctx, args).await? {
        modules::Plan::Done(outcome) => Ok(outcome),
        modules::Plan::Change(planned, change) if ctx.check_mode => {
            change.discard(ctx).await?;
            Ok(planned)
        }
        modules::Plan::Change(planned, change) => change.apply(ctx, planned).await,
    }
}

/// Ansible's `_ACTION_WITH_CLEAN_FACTS`: actions whose facts become plain
/// variables at once (in a loop, for the next item too).
fn sets_clean_facts(action: &str) -> bool {
    let short = action
        .strip_prefix("ansible.builtin.")
        .or_else(|| action.strip_prefix("ansible.legacy."))
        .unwrap_or(action);
    matches!(short, "set_fact" | "include_vars")
}

/// ansible-core 2.19's error summary on a failed result: its `exception`,
/// which without traceback display (rigger keeps no Python traceback)
/// templates as this text, and the error its callback prints before the
/// result (`[ERROR]: Task failed: Module failed: ...`, the task's origin
/// and source lines, see [`crate::loc::origin_excerpt`]),
/// kept as the internal `_error` for the text renderer (not in JSON events). `kind`:
/// `Module` or `Action`, what Ansible says failed.
fn summarise_error(tr: &mut TaskResult, loc: &Loc, kind: &str) {
    if tr.status != Status::Failed || tr.result.contains_key("exception") {
        return;
    }
    tr.result
        .insert("exception".into(), Value::String("(traceback unavailable)".into()));
    let msg = match tr.result.get("msg") {
        Some(Value::String(m)) => m.clone(),
        Some(other) => other.to_string(),
        None => "Unknown error.".into(),
    };
    // A message that already is the chain (a module that raised) is kept.
    let mut text = match msg.strip_prefix("Task failed: ") {
        Some(chain) => format!("[ERROR]: Task failed: {chain}\nOrigin: {loc}\n"),
        None => format!("[ERROR]: Task failed: {kind} failed: {msg}\nOrigin: {loc}\n"),
    };
    if let Some(excerpt) = crate::loc::origin_excerpt(loc) {
        text.push('\n');
        text.push_str(&excerpt);
        text.push('\n');
    }
    tr.result.insert("_error".into(), Value::String(text));
}

/// The action of a `meta` task (`end_host`, `flush_handlers`, ...).
pub(super) fn meta_action(t: &Task) -> Option<String> {
    let short = t
        .action
        .strip_prefix("ansible.builtin.")
        .or_else(|| t.action.strip_prefix("ansible.legacy."))
        .unwrap_or(&t.action);
    if short != "meta" {
        return None;
    }
    t.args
        .to_json()
        .get("_raw_params")?
        .as_str()
        .map(|s| s.trim().to_string())
}

/// Whether rendering `src` failed only because it uses the environment
/// facts (`ansible_env`, `ansible_facts.env`) before they are gathered:
/// Ansible leaves such an `environment:` name out.
fn uses_unset_env_facts(src: &Value, msg: &str) -> bool {
    let text = src.to_string();
    (text.contains("ansible_env") || text.contains("ansible_facts"))
        && (msg.contains("undefined") || msg.contains("no attribute"))
}

/// Keys of a result that describe what a module did, not what it computed
/// from its arguments: not taken for secrets when its arguments were
/// tainted (masking every `file` or `root` would make the output unreadable).
const RESULT_METADATA: &[&str] = &[
    "changed",
    "failed",
    "skipped",
    "rc",
    "start",
    "end",
    "delta",
    "state",
    "path",
    "dest",
    "src",
    "owner",
    "group",
    "mode",
    "uid",
    "gid",
    "size",
    "checksum",
    "md5sum",
    "backup_file",
    "invocation",
    "item",
    "ansible_loop_var",
    "ansible_index_var",
    "msg",
    "diff",
    "warnings",
    "deprecations",
    "cmd",
];

/// A task whose arguments read a vault value: every string its result holds
/// (what `register` and `set_fact` keep) is a secret, but for the
/// [`RESULT_METADATA`] keys, internal (`_`) keys, and text that is one of
/// its arguments' plain (untainted) values. The tainted parts of those it
/// skips (a command line) are secrets already: their masking reaches them.
fn taint_result(result: &Map<String, Value>, args: &Map<String, Value>) {
    fn plain_args<'a>(v: &'a Value, out: &mut std::collections::HashSet<&'a str>) {
        match v {
            Value::String(s) if !crate::output::redact::run_secrets().holds_secret(s) => {
                out.insert(s);
            }
            Value::Array(a) => a.iter().for_each(|x| plain_args(x, out)),
            Value::Object(m) => m.values().for_each(|x| plain_args(x, out)),
            _ => {}
        }
    }
    fn walk(v: &Value, plain: &std::collections::HashSet<&str>) {
        match v {
            Value::String(s) if !plain.contains(s.as_str()) => crate::output::redact::taint(s),
            Value::Array(a) => a.iter().for_each(|x| walk(x, plain)),
            Value::Object(m) => m.values().for_each(|x| walk(x, plain)),
            _ => {}
        }
    }
    let mut plain = std::collections::HashSet::new();
    args.values().for_each(|v| plain_args(v, &mut plain));
    for (k, v) in result {
        if !k.starts_with('_') && !RESULT_METADATA.contains(&k.as_str()) {
            walk(v, &plain);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_user_changing_tasks_forget_the_remote_user() {
        let ret = |k: &str, v: &str| {
            let mut m = Map::new();
            m.insert(k.into(), Value::String(v.into()));
            m
        };
        let may_change_users = |module: &str, result: &Map<String, Value>| {
            modules::registry::lookup(module).unwrap().may_change_users(result)
        };
        assert!(!may_change_users("copy", &ret("dest", "/srv/app/app.conf")));
        assert!(!may_change_users("file", &ret("path", "/srv/app")));
        assert!(may_change_users("lineinfile", &ret("path", "/etc/group")));
        assert!(may_change_users("template", &ret("dest", "/etc/nsswitch.conf")));
        assert!(may_change_users("user", &ret("name", "deploy")));
        assert!(may_change_users("command", &Map::new()));
    }
}
