//! Result shaping: a module's outcome as Ansible's result dict
//! ([`TaskResult`]) with its controller effects applied, `changed_when`
//! and `failed_when`, `no_log` marking and censoring, the result's report
//! to the renderer, and settling it on the host (task record, `register`,
//! stats, notified handlers).

use serde_json::{Map, Value};

use super::context::{mj, Flow, PlayHost, Scope, TaskResult};
use super::task_vars::clean_facts;
use crate::error::LocError;
use crate::modules::{ControllerEffect, ModuleOutcome};
use crate::output::{Event, Status};
use crate::playbook::{Cond, Task};
use crate::template::Templar;

impl TaskResult {
    /// A failure before or instead of a module's outcome.
    pub(super) fn failed(msg: String) -> TaskResult {
        TaskResult {
            status: Status::Failed,
            result: error_result(msg),
            ignored: false,
        }
    }

    /// The host could not be reached.
    pub(super) fn unreachable(msg: String) -> TaskResult {
        TaskResult {
            status: Status::Unreachable,
            result: unreachable_result(msg),
            ignored: false,
        }
    }
}

impl PlayHost {
    /// Show a result: the renderer's line, then the module's warnings.
    pub(super) fn report(
        &self,
        task: &str,
        status: Status,
        ignored: bool,
        item: Option<Value>,
        result: Map<String, Value>,
    ) {
        self.report_delegated(task, status, ignored, item, None, result)
    }

    pub(super) fn report_delegated(
        &self,
        task: &str,
        status: Status,
        ignored: bool,
        item: Option<Value>,
        delegated_to: Option<String>,
        result: Map<String, Value>,
    ) {
        // A module's `warnings` are printed, as Ansible's callback does (a
        // `no_log` result was censored before: it has none).
        // A `meta` task shows its `META:` line (at -vv) and, only when
        // skipped, its result: as Ansible's strategy reports it.
        if let Some(Value::String(message)) = result.get(crate::modules::control::META_MESSAGE) {
            self.runner.out.emit(&Event::Meta {
                host: self.host.clone(),
                message: message.clone(),
            });
            if status != Status::Skipped {
                return;
            }
        }
        let warnings: Vec<String> = match result.get("warnings") {
            Some(Value::Array(w)) => w
                .iter()
                .filter_map(Value::as_str)
                .map(|w| format!("{}: {task}: {w}", self.host))
                .collect(),
            _ => Vec::new(),
        };
        self.runner.out.emit(&Event::HostResult {
            host: self.host.clone(),
            task: task.to_string(),
            status,
            ignored,
            item,
            delegated_to,
            result,
        });
        for message in warnings {
            self.runner.out.emit(&Event::Warning { message });
        }
    }

    /// Shape a module outcome as Ansible's result dict and apply controller effects.
    pub(super) fn outcome_to_result(&self, o: ModuleOutcome, t: &Task, diff: bool) -> TaskResult {
        let is_debug = o.show_result;
        let mut r = Map::new();
        r.insert("changed".into(), Value::Bool(o.changed));
        if let Some(m) = &o.msg {
            r.insert("msg".into(), Value::String(m.clone()));
        }
        r.extend(o.ret);
        if o.failed {
            r.insert("failed".into(), Value::Bool(true));
        }
        if o.skipped {
            r.insert("skipped".into(), Value::Bool(true));
        }
        if diff && !o.diff.is_empty() {
            r.insert("diff".into(), serde_json::to_value(&o.diff).unwrap_or(Value::Null));
        }
        if is_debug {
            r.insert("_debug".into(), Value::Bool(true));
        }
        let mut changed_by_effect: Option<bool> = None;
        // Controller-side effects: typed, from rigger's own modules only.
        // Facts a module returns are data (a custom module's are the host's).
        if !o.failed {
            let effect_error = match o.effect {
                Some(ControllerEffect::IncludeVars(vars)) => {
                    self.runner.with_host(&self.host, |s| s.include_vars.extend(vars));
                    None
                }
                Some(ControllerEffect::SetFacts(vars)) => {
                    self.runner.with_host(&self.host, |s| s.set_facts.extend(vars));
                    None
                }
                Some(ControllerEffect::CacheableFacts(vars)) => {
                    // Ansible sets both: the variables at set_fact
                    // precedence for this run, and facts for the cache.
                    let (facts, module_facts) = crate::fact_cache::split_entry(vars.clone());
                    self.runner.with_host(&self.host, |s| {
                        s.set_facts.extend(vars);
                        s.facts.extend(facts);
                        s.module_facts.extend(module_facts);
                    });
                    self.runner.save_facts(&self.host);
                    None
                }
                Some(ControllerEffect::Facts(facts)) => {
                    self.runner.with_host(&self.host, |s| s.facts.extend(facts));
                    self.runner.save_facts(&self.host);
                    None
                }
                Some(ControllerEffect::Stats {
                    data,
                    per_host,
                    aggregate,
                }) => {
                    let host = per_host.then_some(self.host.as_str());
                    self.runner
                        .custom_stats
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .update(host, &data, aggregate);
                    None
                }
                effect => {
                    // `debug` shows values: an `ansible_facts` it shows
                    // (`var: ansible_facts`) sets no fact (Ansible's
                    // `_ACTION_DEBUG` exception, ansible/ansible#74060).
                    if let Some(Value::Object(facts)) = r.get("ansible_facts").filter(|_| !is_debug) {
                        let facts = clean_facts(facts);
                        self.runner.with_host(&self.host, |s| s.module_facts.extend(facts));
                        self.runner.save_facts(&self.host);
                    }
                    match effect {
                        Some(ControllerEffect::AddHost { name, groups, vars }) => {
                            // Changed only when the inventory changed (Ansible's add_dynamic_host).
                            match self.runner.change_inv(|inv| inv.add_host(&name, &groups, vars)) {
                                Ok(changed) => {
                                    r.insert("changed".into(), Value::Bool(changed));
                                    changed_by_effect = Some(changed);
                                    None
                                }
                                Err(e) => Some(e),
                            }
                        }
                        Some(ControllerEffect::RefreshInventory) => match self.runner.change_inv(|inv| inv.refresh()) {
                            Ok(warnings) => {
                                for w in warnings {
                                    self.runner
                                        .out
                                        .emit(&crate::output::Event::Warning { message: w.to_string() });
                                }
                                None
                            }
                            Err(e) => Some(e),
                        },
                        Some(ControllerEffect::JoinGroup { group, parents }) => {
                            // Changed only when the inventory changed (as Ansible's strategy reports it).
                            match self.runner.change_inv(|inv| inv.group_by(&self.host, &group, &parents)) {
                                Ok(changed) => {
                                    r.insert("changed".into(), Value::Bool(changed));
                                    changed_by_effect = Some(changed);
                                    None
                                }
                                Err(e) => Some(e),
                            }
                        }
                        _ => None,
                    }
                }
            };
            if let Some(e) = effect_error {
                return TaskResult::failed(e.to_string());
            }
        }
        let _ = t;
        let status = if o.failed {
            Status::Failed
        } else if o.skipped {
            Status::Skipped
        } else if changed_by_effect.unwrap_or(o.changed) {
            Status::Changed
        } else {
            Status::Ok
        };
        TaskResult {
            status,
            result: r,
            ignored: false,
        }
    }

    /// The context `changed_when`, `failed_when` and `until` see: Ansible
    /// also exposes the result's keys (`rc`, `stdout`) directly here, below
    /// the variables; the register name is above them (the play's magic
    /// variables above all, as in every context).
    pub(super) fn result_context(
        &self,
        t: &Task,
        result: &Map<String, Value>,
        ctx: &minijinja::Value,
    ) -> minijinja::Value {
        let reg = mj(&strip_internal(result));
        let registered = minijinja::Value::from_pairs(t.register.iter().map(|name| (name.as_str(), reg.clone())));
        self.over_vars(minijinja::value::merge_maps([reg, ctx.clone(), registered]))
    }

    /// `changed_when`, then `failed_when`, in `ctx` ([`Self::result_context`]),
    /// as Ansible's TaskExecutor: each is a list of conditions that must all
    /// hold; `failed_when` decides `failed` (a module failure included) and is
    /// kept as `failed_when_result`. A condition that cannot be evaluated
    /// fails the task, with the error as `changed_when_result` or
    /// `failed_when_result` and the module's result kept.
    pub(super) fn apply_conditions(&self, t: &Task, tr: &mut TaskResult, ctx: &minijinja::Value) {
        if tr.status == Status::Skipped {
            return;
        }
        tr.result
            .entry("failed")
            .or_insert(Value::Bool(tr.status == Status::Failed));
        tr.result.entry("changed").or_insert(Value::Bool(false));
        let fail_with = |tr: &mut TaskResult, key: &str, e: LocError| {
            tr.result.insert("failed".into(), Value::Bool(true));
            tr.result.insert(key.into(), Value::String(e.to_string()));
            tr.status = Status::Failed;
        };
        if !t.changed_when.is_empty() {
            match all_true(&self.runner.templar, &t.changed_when, ctx) {
                Ok(ch) => {
                    tr.result.insert("changed".into(), Value::Bool(ch));
                    if tr.status != Status::Failed {
                        tr.status = if ch { Status::Changed } else { Status::Ok };
                    }
                }
                Err(e) => return fail_with(tr, "changed_when_result", e),
            }
        }
        if !t.failed_when.is_empty() {
            match all_true(&self.runner.templar, &t.failed_when, ctx) {
                Ok(f) => {
                    tr.result.insert("failed_when_result".into(), Value::Bool(f));
                    tr.result.insert("failed".into(), Value::Bool(f));
                    if f {
                        tr.status = Status::Failed;
                    } else {
                        if let Some(e) = tr.result.remove("exception") {
                            tr.result.insert("failed_when_suppressed_exception".into(), e);
                        }
                        let ch = tr.result.get("changed").and_then(Value::as_bool).unwrap_or(false);
                        tr.status = if ch { Status::Changed } else { Status::Ok };
                    }
                }
                Err(e) => fail_with(tr, "failed_when_result", e),
            }
        }
    }

    /// Record, register and count a task's final result on this host, and
    /// notify its handlers when it changed something. `Err` with the flow
    /// of a host that failed or became unreachable; otherwise the result's
    /// `meta` action, if any.
    pub(super) fn settle(
        &self,
        t: &Task,
        title: &str,
        tr: TaskResult,
        scopes: &[Scope],
    ) -> Result<Option<String>, Flow> {
        let TaskResult {
            mut status,
            mut result,
            mut ignored,
        } = tr;
        // A changed task notifies its handlers; one that names no handler of
        // the play (known only now: a templated name, a handler of a role
        // included at run time) fails here, loudly, as in Ansible.
        let mut notified = Vec::new();
        if status == Status::Changed {
            match self.resolve_notify(t, scopes) {
                Ok(names) => notified = names,
                Err(msg) => {
                    status = Status::Failed;
                    ignored = false;
                    result.insert("failed".into(), Value::Bool(true));
                    result.insert("msg".into(), Value::String(msg.clone()));
                    // A `no_log` result stays hidden; the message names only
                    // the handler and where it was asked for.
                    let mut shown = if result.contains_key("_ansible_no_log") {
                        censor(&result)
                    } else {
                        result.clone()
                    };
                    shown.insert("msg".into(), Value::String(msg));
                    self.report(title, status, false, None, shown);
                }
            }
        }
        self.runner
            .record(&self.host, title, t.loc.to_string(), status, ignored, &result);
        let meta = result.get("_meta").and_then(Value::as_str).map(str::to_string);
        let result_is_meta = result.contains_key(crate::modules::control::META_MESSAGE);
        let failed_result = match status {
            Status::Failed if !ignored => result.clone(),
            _ => Map::new(),
        };
        if let Some(reg) = &t.register {
            // The registered form of the result: without the internal keys.
            let mut registered = result;
            registered.retain(|k, _| !is_internal(k));
            // Every registered result says whether it failed and changed
            // (Ansible's TaskExecutor fills in both), skipped ones included.
            registered
                .entry("failed")
                .or_insert(Value::Bool(matches!(status, Status::Failed)));
            registered.entry("changed").or_insert(Value::Bool(false));
            self.runner.with_host(&self.host, |s| {
                s.set_facts.insert(reg.clone(), Value::Object(registered));
            });
        }
        // A `meta` task counts in no recap column (Ansible's strategy runs
        // it outside the task queue).
        if result_is_meta && matches!(status, Status::Ok | Status::Skipped) {
            return Ok(meta);
        }
        match status {
            Status::Ok => self.runner.stat(&self.host, |s| s.ok += 1),
            Status::Changed => {
                self.runner.stat(&self.host, |s| {
                    s.ok += 1;
                    s.changed += 1
                });
                self.mark_notified(notified);
            }
            Status::Skipped => self.runner.stat(&self.host, |s| s.skipped += 1),
            Status::Failed if ignored => self.runner.stat(&self.host, |s| s.ignored += 1),
            Status::Failed => {
                self.runner.stat(&self.host, |s| s.failed += 1);
                let failure = (task_dump(t), Value::Object(strip_internal(&failed_result)));
                self.runner.with_host(&self.host, |s| {
                    s.failed = true;
                    s.last_failure = Some(Box::new(failure));
                });
                return Err(Flow::Failed);
            }
            Status::Unreachable if ignored => self.runner.stat(&self.host, |s| s.ignored += 1),
            Status::Unreachable => {
                self.runner.stat(&self.host, |s| s.unreachable += 1);
                self.runner.with_host(&self.host, |s| s.unreachable = true);
                return Err(Flow::Unreachable);
            }
        }
        Ok(meta)
    }

    /// Mark the task's handlers notified on this host (a task that another
    /// host ran for this one, `run_once`, and that changed).
    pub(super) fn notify(&self, t: &Task, scopes: &[Scope]) {
        match self.resolve_notify(t, scopes) {
            Ok(names) => self.mark_notified(names),
            Err(msg) => self.runner.out.emit(&Event::Warning { message: msg }),
        }
    }

    fn mark_notified(&self, names: Vec<String>) {
        if names.is_empty() {
            return;
        }
        self.runner.with_host(&self.host, |s| s.notified.extend(names));
    }

    /// The names a task notifies, rendered, each checked against the play's
    /// handlers (names, `role : name`, `listen` topics), including those of
    /// roles included so far. `Err` is Ansible's message, located at the
    /// `notify:` entry.
    fn resolve_notify(&self, t: &Task, scopes: &[Scope]) -> Result<Vec<String>, String> {
        // A task without `notify:` inherits its innermost block's (or
        // include `apply:`'s), as Ansible's inheritable attribute.
        let notify = if t.notify.is_empty() {
            scopes
                .iter()
                .rev()
                .map(|s| &s.common.notify)
                .find(|n| !n.is_empty())
                .map(Vec::as_slice)
                .unwrap_or_default()
        } else {
            t.notify.as_slice()
        };
        if notify.is_empty() {
            return Ok(Vec::new());
        }
        let ctx = if notify.iter().any(|n| n.name.contains("{{") || n.name.contains("{%")) {
            let vars = self.vars(scopes, Some(t));
            Some(self.ctx(&vars))
        } else {
            None
        };
        let extra = self
            .pctx
            .extra_handlers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let mut out = Vec::with_capacity(notify.len());
        for n in notify {
            let name = match &ctx {
                Some(ctx) => match self.runner.templar.render_str(&n.name, ctx, &n.loc) {
                    Ok(Value::String(s)) => s,
                    Ok(other) => other.to_string(),
                    Err(e) => return Err(e.to_string()),
                },
                None => n.name.clone(),
            };
            let known = self
                .pctx
                .play
                .handlers
                .iter()
                .chain(extra.iter())
                .any(|h| h.answers(&name));
            if !known {
                let names = self
                    .pctx
                    .play
                    .handlers
                    .iter()
                    .chain(extra.iter())
                    .filter_map(|h| h.name.clone());
                let mut msg = format!(
                    "{}: The requested handler '{name}' was not found in either the main handlers list nor in the listening handlers list",
                    n.loc
                );
                if let Some(s) = crate::error::did_you_mean(&name, names.collect::<Vec<_>>().iter().map(String::as_str))
                {
                    msg.push_str(&format!(" (did you mean '{s}'?)"));
                }
                return Err(msg);
            }
            out.push(name);
        }
        Ok(out)
    }
}

/// A task as `ansible_failed_task` shows it: the attributes of Ansible's
/// task dump that describe what was asked (its name, action and arguments
/// as written, untemplated, and its keywords), without Ansible's internal
/// identifiers.
pub(super) fn task_dump(t: &Task) -> Value {
    let conds = |c: &[crate::playbook::Cond]| Value::Array(c.iter().map(|c| Value::String(c.expr.clone())).collect());
    let mut m = Map::new();
    m.insert("name".into(), Value::String(t.name.clone().unwrap_or_default()));
    m.insert("action".into(), Value::String(t.action.clone()));
    m.insert("args".into(), t.args.to_json());
    m.insert("when".into(), conds(&t.common.when));
    m.insert("changed_when".into(), conds(&t.changed_when));
    m.insert("failed_when".into(), conds(&t.failed_when));
    m.insert(
        "tags".into(),
        Value::Array(t.common.tags.iter().cloned().map(Value::String).collect()),
    );
    m.insert(
        "register".into(),
        t.register.clone().map(Value::String).unwrap_or(Value::Null),
    );
    m.insert(
        "notify".into(),
        match t.notify.is_empty() {
            true => Value::Null,
            false => Value::Array(t.notify.iter().map(|n| Value::String(n.name.clone())).collect()),
        },
    );
    m.insert("vars".into(), Value::Object(t.common.vars.clone()));
    m.insert(
        "ignore_errors".into(),
        match &t.common.ignore_errors {
            Some(crate::playbook::Flag::Bool(b)) => Value::Bool(*b),
            Some(crate::playbook::Flag::Template(text, _)) => Value::String(text.clone()),
            None => Value::Null,
        },
    );
    m.insert(
        "delegate_to".into(),
        t.common.delegate_to.clone().map(Value::String).unwrap_or(Value::Null),
    );
    Value::Object(m)
}

fn error_result(msg: String) -> Map<String, Value> {
    let mut r = Map::new();
    r.insert("failed".into(), Value::Bool(true));
    r.insert("msg".into(), Value::String(msg));
    r
}

pub(super) fn unreachable_result(msg: String) -> Map<String, Value> {
    let mut r = Map::new();
    r.insert("changed".into(), Value::Bool(false));
    r.insert("msg".into(), Value::String(msg));
    r.insert("unreachable".into(), Value::Bool(true));
    r
}

/// A condition's truth. One written `!unsafe` is refused, as Ansible
/// refuses an untrusted expression.
pub(super) fn eval_cond(templar: &Templar, c: &Cond, ctx: &minijinja::Value) -> Result<bool, LocError> {
    if c.untrusted {
        return Err(LocError::new(
            c.loc.clone(),
            format!(
                "Encountered untrusted template or expression: the conditional `{}` is marked `!unsafe`, so it is \
                 never evaluated",
                c.expr
            ),
        )
        .with_hint("remove the `!unsafe` tag from the condition"));
    }
    templar.eval_bool(&c.expr, ctx, &c.loc)
}

fn all_true(templar: &Templar, conds: &[Cond], ctx: &minijinja::Value) -> Result<bool, LocError> {
    for c in conds {
        if !eval_cond(templar, c, ctx)? {
            return Ok(false);
        }
    }
    Ok(true)
}

/// A result's key only rigger reads (`_meta`, `_delegated_to`…): not registered.
fn is_internal(key: &str) -> bool {
    key.starts_with('_')
}

/// The registered form of a result: no internal keys.
fn strip_internal(m: &Map<String, Value>) -> Map<String, Value> {
    m.iter()
        .filter(|(k, _)| !is_internal(k))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

pub(super) fn strip_results(m: &Map<String, Value>) -> Map<String, Value> {
    let mut out = m.clone();
    out.remove("results");
    out
}

/// Mark a `no_log` task's result (every one: loop items, their aggregate, and
/// failures before the module ran), so that every consumer (renderer, check
/// report) can tell it must not show it.
pub(super) fn mark_no_log(m: &mut Map<String, Value>, no_log: bool) {
    if no_log {
        m.insert("_ansible_no_log".into(), Value::Bool(true));
    }
}

/// What `no_log` shows.
pub(super) fn censor(m: &Map<String, Value>) -> Map<String, Value> {
    let mut out = Map::new();
    out.insert("_ansible_no_log".into(), Value::Bool(true));
    out.insert(
        "changed".into(),
        m.get("changed").cloned().unwrap_or(Value::Bool(false)),
    );
    if m.get("failed").and_then(Value::as_bool).unwrap_or(false) {
        out.insert("failed".into(), Value::Bool(true));
    }
    out
}
