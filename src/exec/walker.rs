//! The walker: one host's way through a play's task tree. Fact gathering,
//! then each section's blocks (rescue, always), includes (`include_tasks`,
//! `include_role`, loaded when reached) and tasks in document order, each
//! after the strategy's go ([`super::strategy`]); notified handlers at each
//! flush; `meta` actions. Running a task is [`super::task`]'s job.

use std::ops::Deref;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use futures::future::BoxFuture;
use serde_json::{Map, Value};
use tokio::sync::{mpsc, oneshot};

use super::context::{resolve_bool, tags_match, Flow, Go, PlayHost, Scope, TaskResult, Waiting, WalkerMsg};
use super::results::unreachable_result;
use crate::connection::ConnError;
use crate::output::Status;
use crate::playbook::{Block, Flag, Include, IncludeKind, Task, TaskNode};
use crate::yaml::Loc;

/// Walks one host through a play: the host in the play, and its line to
/// the strategy.
pub(super) struct Walker {
    pub(super) play_host: PlayHost,
    /// The host's position in the batch, how the strategy knows it.
    pub(super) idx: usize,
    /// Unbounded: a walker has at most one message on its way (it waits
    /// for the answer), and sending it is then not an await point that
    /// every parked walker's future would have to hold room for.
    pub(super) tx: mpsc::UnboundedSender<WalkerMsg>,
    /// How many included handlers are running (their tasks are shown as
    /// handlers, `RUNNING HANDLER`, as in Ansible).
    pub(super) in_handler: std::sync::atomic::AtomicUsize,
}

impl Deref for Walker {
    type Target = PlayHost;

    fn deref(&self) -> &PlayHost {
        &self.play_host
    }
}

impl Walker {
    /// Gather facts, then walk every section of the play and flush its handlers.
    pub(super) async fn run(self) {
        let play = self.pctx.play.clone();
        // One root scope for every host of the batch.
        let scopes = &self.pctx.root_scopes[..];
        let mut flow = Flow::Continue;
        if self.pctx.per_host_vars_files {
            // Named with what the host has before the files (Ansible's
            // get_vars templates each entry with the variables so far).
            let vars = self.vars(scopes, None);
            let ctx = self.ctx(&vars);
            match self.runner.host_vars_files(&play, &self.pctx.vars, &ctx) {
                Ok(v) => {
                    let mut cache = self.pctx.host_vars.lock().unwrap_or_else(|p| p.into_inner());
                    cache.insert(self.host.clone(), Arc::new(v));
                }
                Err(e) => flow = self.fail_without_task(&e.loc, &e.msg),
            }
        }
        let gathered = self.runner.with_host(&self.host, |s| s.facts_gathered);
        if flow == Flow::Continue && crate::ansible_cfg::gathering().gathers(play.gather_facts, gathered) {
            flow = Box::pin(self.gather_facts(scopes)).await;
        }
        let mut failed_flow = None;
        for (s, section) in play.sections.iter().enumerate() {
            if flow != Flow::Continue {
                break;
            }
            flow = self.walk(section, vec![1 + s as u32], scopes).await;
            if flow == Flow::Failed {
                failed_flow = Some(flow);
            }
            let force = play.force_handlers || self.runner.opts.force_handlers;
            // A play aborted by a failure policy fails every host; forced
            // handlers run for them too (not on an interrupt).
            let aborted = flow == Flow::Abort
                && self.runner.stop_playbook.load(Ordering::SeqCst)
                && !super::runner::INTERRUPTED.load(Ordering::SeqCst);
            if flow == Flow::Continue || ((flow == Flow::Failed || aborted) && force) {
                let hf = self.flush_handlers(vec![1 + s as u32, u32::MAX], scopes).await;
                if flow == Flow::Continue {
                    flow = hf;
                }
            }
        }
        let _ = failed_flow;
        let _ = self.tx.send(WalkerMsg::Finished { host: self.idx });
    }

    /// Ask the coordinator for permission to run the task at `key`.
    async fn ready(&self, key: &[u32], title: &str, loc: &Loc, handler: bool, run_once: bool) -> Go {
        let (reply, rx) = oneshot::channel();
        let msg = WalkerMsg::Ready {
            host: self.idx,
            waiting: Waiting {
                key: key.to_vec(),
                title: title.to_string(),
                loc: loc.to_string(),
                handler,
                run_once,
                reply,
            },
        };
        if self.tx.send(msg).is_err() {
            return Go::Abort;
        }
        rx.await.unwrap_or(Go::Abort)
    }

    async fn gather_facts(&self, scopes: &[Scope]) -> Flow {
        let loc = self.pctx.play.loc.clone();
        if let Go::Abort = self.ready(&[0], "Gathering Facts", &loc, false, false).await {
            return Flow::Abort;
        }
        let vars = self.vars(scopes, None);
        // A play-level `when` (from import_playbook) applies to fact gathering too.
        let ctx = self.ctx(&vars);
        for c in scopes.iter().flat_map(|s| s.common.when.iter()) {
            match super::results::eval_cond(&self.runner.templar, c, &ctx) {
                Ok(true) => {}
                Ok(false) => {
                    let mut r = Map::new();
                    r.insert("changed".into(), Value::Bool(false));
                    r.insert("false_condition".into(), Value::String(c.expr.clone()));
                    self.report("Gathering Facts", Status::Skipped, false, None, r);
                    self.runner.stat(&self.host, |s| s.skipped += 1);
                    return Flow::Continue;
                }
                Err(e) => return self.fail_without_task(&c.loc, &e.to_string()),
            }
        }
        if let Err(m) = crate::inventory::check_connection_vars(vars.map()) {
            return self.fail_gathering(&format!("{}: {m}", self.pctx.play.loc));
        }
        let conn = match self.runner.pool.get(&self.host, vars.map()).await {
            Ok(c) => c,
            Err(e) => return self.unreachable("Gathering Facts", e),
        };
        // A templated `become` of the play counts for fact gathering too.
        let mut rendered = scopes.to_vec();
        if scopes.iter().any(|s| s.common.has_flag_templates()) {
            let ctx = self.ctx(&vars);
            for (name, f) in rendered.iter_mut().flat_map(|s| s.common.flags_mut()) {
                if let Some(Flag::Template(src, loc)) = f {
                    match self.flag_value(name, src, loc, &ctx) {
                        Ok(b) => *f = Some(Flag::Bool(b)),
                        Err(e) => return self.fail_without_task(loc, &e.msg),
                    }
                }
            }
        }
        let render = |src: &str| {
            let ctx = self.ctx(&vars);
            match self.runner.templar.render_str(src, &ctx, &self.pctx.play.loc) {
                Ok(Value::String(s)) => Ok(s),
                Ok(other) => Ok(other.to_string()),
                Err(e) => Err(format!("become_method: {}", e.msg)),
            }
        };
        let become_ = match self.become_for(&rendered, None, vars.map(), &render) {
            Ok(b) => b,
            Err(m) => return self.fail_gathering(&format!("{}: {m}", self.pctx.play.loc)),
        };
        let subset = self.pctx.play.gather_subset.clone();
        // The `python` facts describe the interpreter Ansible's setup would run under.
        let python = match vars.map().get("ansible_python_interpreter") {
            Some(Value::String(p)) if !p.is_empty() => {
                let ctx = self.ctx(&vars);
                match self.runner.templar.render_str(p, &ctx, &self.pctx.play.loc) {
                    Ok(Value::String(p)) if !p.is_empty() && !p.starts_with("auto") => Some(p),
                    Ok(_) => None,
                    Err(e) => {
                        let at = &self.pctx.play.loc;
                        return self.fail_gathering(&format!("{at}: ansible_python_interpreter: {}", e.msg));
                    }
                }
            }
            _ => None,
        };
        // The play's `environment:` applies to fact gathering too (a name
        // that needs the facts being gathered is left out).
        let env = match self.environment(scopes, None, &self.ctx(&vars)) {
            Ok(env) => env,
            Err(e) => return self.fail_gathering(&e.to_string()),
        };
        let _permit = self.runner.forks.acquire().await;
        let fact_path = crate::ansible_cfg::fact_path();
        match super::facts::gather(
            &*conn,
            &subset,
            become_.as_ref(),
            python.as_deref(),
            env,
            Some(&fact_path),
        )
        .await
        {
            Ok(facts) => {
                self.runner.with_host(&self.host, |s| {
                    // Merged, as Ansible's set_host_facts: facts set earlier
                    // (`set_fact` with `cacheable`, a module's) stay.
                    s.facts.extend(facts);
                    s.facts_gathered = true;
                });
                self.runner.save_facts(&self.host);
                self.report("Gathering Facts", Status::Ok, false, None, Map::new());
                self.runner.stat(&self.host, |s| s.ok += 1);
                Flow::Continue
            }
            Err(e) if e.is_unreachable() => self.unreachable("Gathering Facts", e),
            Err(e) => self.fail_gathering(&format!("fact gathering failed: {e}")),
        }
    }

    /// Fact gathering failed on a reachable host (or before connecting).
    fn fail_gathering(&self, msg: &str) -> Flow {
        let mut r = Map::new();
        r.insert("msg".into(), Value::String(msg.to_string()));
        let at = self.pctx.play.loc.to_string();
        self.runner
            .record(&self.host, "Gathering Facts", at, Status::Failed, false, &r);
        self.report("Gathering Facts", Status::Failed, false, None, r);
        self.runner.stat(&self.host, |s| s.failed += 1);
        self.runner.with_host(&self.host, |s| s.failed = true);
        Flow::Failed
    }

    /// The host cannot be reached (outside a task: fact gathering).
    fn unreachable(&self, task: &str, e: ConnError) -> Flow {
        let r = unreachable_result(e.to_string());
        let at = self.pctx.play.loc.to_string();
        self.runner.record(&self.host, task, at, Status::Unreachable, false, &r);
        self.report(task, Status::Unreachable, false, None, r);
        self.runner.stat(&self.host, |s| s.unreachable += 1);
        self.runner.with_host(&self.host, |s| s.unreachable = true);
        Flow::Unreachable
    }

    fn walk<'a>(&'a self, nodes: &'a [TaskNode], prefix: Vec<u32>, scopes: &'a [Scope]) -> BoxFuture<'a, Flow> {
        Box::pin(async move {
            let mut prefetched_to = 0;
            for (i, node) in nodes.iter().enumerate() {
                if self.runner.opts.check && i >= prefetched_to && matches!(node, TaskNode::Task(_)) {
                    prefetched_to = i + Box::pin(self.prefetch(&nodes[i..], scopes)).await;
                }
                let mut key = prefix.clone();
                key.push(i as u32);
                let flow = match node {
                    TaskNode::Task(t) => self.task_node(t, key, scopes).await,
                    TaskNode::Block(b) => self.block(b, key, scopes).await,
                    // Boxed, as a task's run (see `task_node`): only the
                    // include being walked takes its size.
                    TaskNode::Include(inc) => Box::pin(self.include(inc, key, scopes)).await,
                };
                if flow != Flow::Continue {
                    return flow;
                }
            }
            Flow::Continue
        })
    }

    async fn block(&self, b: &Arc<Block>, key: Vec<u32>, scopes: &[Scope]) -> Flow {
        let mut inner: Vec<Scope> = scopes.to_vec();
        inner.push(Scope {
            common: b.common.clone(),
            role: b.role.clone().or_else(|| scopes.last().and_then(|s| s.role.clone())),
            params: Map::new(),
            rendered_params: Map::new(),
        });
        let mut k = key.clone();
        k.push(0);
        let mut flow = self.walk(&b.block, k, &inner).await;
        // Ansible's implicit `role_complete` at a role's end: a host that
        // gets there after one of the role's tasks ran has completed it.
        if let Some(dk) = b
            .role
            .as_ref()
            .filter(|_| b.role_root)
            .and_then(|r| r.dedup_key.as_deref())
        {
            if flow == Flow::Continue {
                self.role_runs().finish(&self.host, dk);
            }
        }
        if flow == Flow::Failed && !b.rescue.is_empty() {
            // As Ansible: a rescued failure counts as `rescued`, not
            // `failed` (a host failed by another's `any_errors_fatal` has
            // no failed result to count).
            let by_fatal = self
                .runner
                .with_host(&self.host, |s| std::mem::take(&mut s.failed_by_fatal));
            if !by_fatal {
                self.runner.stat(&self.host, |s| {
                    s.rescued += 1;
                    s.failed = s.failed.saturating_sub(1);
                });
            }
            // Ansible's rescue variables, kept (as set_fact's are) after it.
            self.runner.with_host(&self.host, |s| {
                s.failed = false;
                if let Some((task, result)) = s.last_failure.take().map(|b| *b) {
                    s.set_facts.insert("ansible_failed_task".into(), task);
                    s.set_facts.insert("ansible_failed_result".into(), result);
                }
            });
            let mut k = key.clone();
            k.push(1);
            flow = self.walk(&b.rescue, k, &inner).await;
        }
        if !b.always.is_empty() && matches!(flow, Flow::Continue | Flow::Failed) {
            let failed_before = flow == Flow::Failed;
            // `always` runs even for a failed host.
            let cleared = self.runner.with_host(&self.host, |s| {
                s.failed = false;
                s.errors_cleared
            });
            let mut k = key.clone();
            k.push(2);
            let af = self.walk(&b.always, k, &inner).await;
            if af != Flow::Continue {
                flow = af;
            } else if failed_before {
                // A `meta: clear_host_errors` in `always` forgives the
                // failure: the host goes on with the tasks after the block.
                if self.runner.with_host(&self.host, |s| s.errors_cleared) == cleared {
                    self.runner.with_host(&self.host, |s| s.failed = true);
                } else {
                    flow = Flow::Continue;
                }
            }
        }
        flow
    }

    async fn include(&self, inc: &Arc<Include>, key: Vec<u32>, scopes: &[Scope]) -> Flow {
        if self.role_already_ran(scopes) {
            return Flow::Continue;
        }
        let mut inner: Vec<Scope> = scopes.to_vec();
        // `vars:` on an include are include params (above set_fact), as in Ansible.
        let mut common = inc.common.clone();
        let include_params = std::mem::take(&mut common.vars);
        // Its conditions apply to the include itself (evaluated once, below), not to each task it
        // brings in: a first included task that changes what they test does not skip the others
        // (Ansible's include_tasks/include_role; `apply:` is the way to condition the tasks).
        common.when.clear();
        inner.push(Scope {
            common,
            role: inc.role.clone().or_else(|| scopes.last().and_then(|s| s.role.clone())),
            params: include_params.clone(),
            rendered_params: Map::new(),
        });
        let base_vars = self.vars(&inner, None);
        // Relative names in the include's own expressions (a `first_found`
        // of task files) are searched as a task's are: the role, the
        // directory of the file that has the include, the play's.
        let role = inner.iter().rev().find_map(|s| s.role.as_deref());
        let paths = self.search_dirs(role, Some(&inc.dir));
        let mut layer = Map::new();
        layer.insert(
            crate::template::Templar::search_paths_var().into(),
            crate::template::search_paths(&paths),
        );
        let base_vars = self.with_data(&base_vars, layer);
        // Conditions on an include apply to the include itself, and so do
        // those of its enclosing blocks (inherited, as a task's are): an
        // include under a false `when` is skipped before its loop is
        // rendered, so a loop over what the skipped tasks would have set
        // is not an error (Ansible's TaskExecutor does the same).
        let ctx = self.ctx(&base_vars);
        for c in scopes.iter().flat_map(|s| s.common.when.iter()).chain(&inc.common.when) {
            match super::results::eval_cond(&self.runner.templar, c, &ctx) {
                Ok(true) => {}
                Ok(false) => return Flow::Continue,
                Err(e) => return self.fail_without_task(&inc.loc, &e.to_string()),
            }
        }
        if !tags_match(&self.runner.opts, &inner, &[]) {
            return Flow::Continue;
        }
        self.mark_role_ran(scopes);
        let items = match &inc.loop_ {
            Some(spec) => match self.loop_items(spec, &ctx) {
                Ok(items) => items.into_iter().map(Some).collect(),
                Err(e) => return self.fail_without_task(&inc.loc, &e.to_string()),
            },
            None => vec![None],
        };
        // `loop_var` is templated, as every loop_control field (Ansible's FieldAttribute).
        let loop_var = match &inc.loop_control.loop_var {
            Some(v) => match self.runner.templar.render_string(v, &ctx, &inc.loc) {
                Ok(v) => v,
                Err(e) => return self.fail_without_task(&inc.loc, &e.to_string()),
            },
            None => "item".into(),
        };
        let all_items: Vec<Value> = items.iter().flatten().cloned().collect();
        for (idx, item) in items.into_iter().enumerate() {
            // The loop item and the rendered arguments are data.
            let mut params = Map::new();
            if let Some(it) = &item {
                params.insert(loop_var.clone(), it.clone());
                params.insert("ansible_loop_var".into(), Value::String(loop_var.clone()));
                if let Some(iv) = &inc.loop_control.index_var {
                    params.insert(iv.clone(), Value::from(idx));
                    params.insert("ansible_index_var".into(), Value::String(iv.clone()));
                }
                if let Some(al) = inc.loop_control.ansible_loop(&all_items, idx) {
                    params.insert("ansible_loop".into(), al);
                }
            }
            let pvars = self.with_data(&base_vars, params.clone());
            let pctx = self.ctx(&pvars);
            for (k, v) in &inc.args {
                match self.runner.templar.render_value(v, &pctx, &inc.loc) {
                    Ok(v) => {
                        params.insert(k.clone(), v);
                    }
                    Err(e) => return self.fail_without_task(&inc.loc, &e.to_string()),
                }
            }
            let target = match self.runner.templar.render_str(&inc.target, &pctx, &inc.loc) {
                Ok(Value::String(s)) => s,
                Ok(other) => other.to_string(),
                Err(e) => return self.fail_without_task(&inc.loc, &e.to_string()),
            };
            let mut lctx = crate::playbook::LoadCtx {
                module_defaults_in_scope: scopes
                    .iter()
                    .map(|s| &s.common)
                    .chain(std::iter::once(&inc.common))
                    .any(|c| !c.module_defaults.is_empty()),
                ..Default::default()
            };
            // As at load: the play's roles/ for an `import_role` in what is included.
            lctx.roles_path.push(self.pctx.play.dir.join("roles"));
            // Inside a role, an included role is also looked up next to it.
            if let Some(parent) = inc.role.as_ref().and_then(|r| r.path.parent()) {
                lctx.roles_path.push(parent.to_path_buf());
            }
            // `tasks_from`, `vars_from`... may be templates too.
            let mut files = inc.role_files.clone();
            for f in [
                &mut files.tasks_from,
                &mut files.vars_from,
                &mut files.defaults_from,
                &mut files.handlers_from,
            ] {
                if let Some(name) = f.as_mut() {
                    match self.runner.templar.render_str(name, &pctx, &inc.loc) {
                        Ok(Value::String(s)) => *name = s,
                        Ok(other) => *name = other.to_string(),
                        Err(e) => return self.fail_without_task(&inc.loc, &e.to_string()),
                    }
                }
            }
            let nodes = match inc.kind {
                IncludeKind::Tasks => {
                    let path = match &inc.role {
                        Some(r) if r.path.join("tasks").join(&target).exists() => r.path.join("tasks").join(&target),
                        _ => crate::playbook::resolve(&inc.dir, &target),
                    };
                    crate::playbook::load_task_file(&path, inc.role.as_ref(), &lctx)
                        .map(|nodes| (nodes, lctx.take_role_handlers()))
                }
                IncludeKind::Role => {
                    crate::playbook::load_included_role(
                        &target,
                        &files,
                        &inc.loc,
                        &self.pctx.play.dir,
                        &lctx,
                        inc.role.as_ref(),
                        inc.allow_duplicates,
                    )
                    .map(|(node, handlers)| {
                        // An included role is private unless `public: true` (or
                        // private_role_vars says otherwise), as in Ansible.
                        if crate::playbook::role_is_public(inc.public, false) {
                            if let TaskNode::Block(b) = &node {
                                self.add_included_roles(b.role.iter().cloned());
                            }
                        }
                        (vec![node], handlers)
                    })
                }
            };
            // `import_role`s in what was just loaded are the play's roles too.
            self.add_included_roles(lctx.take_imported_roles());
            for w in lctx.take_warnings() {
                let message = w.to_string();
                let new = self
                    .runner
                    .load_warnings
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(message.clone());
                if new {
                    self.runner.out.emit(&crate::output::Event::Warning { message });
                }
            }
            let nodes = match nodes {
                Ok((nodes, handlers)) => {
                    self.add_handlers(handlers);
                    Ok(nodes)
                }
                Err(e) => Err(e),
            };
            let nodes = match nodes {
                Ok(n) => n,
                Err(e) => return self.fail_without_task(&inc.loc, &e.render()),
            };
            // loop_control.break_when: this item is included, later ones not.
            let mut stop = false;
            for c in &inc.loop_control.break_when {
                match super::results::eval_cond(&self.runner.templar, c, &pctx) {
                    Ok(b) => {
                        stop = b;
                        if !b {
                            break;
                        }
                    }
                    Err(e) => return self.fail_without_task(&c.loc, &e.to_string()),
                }
            }
            let mut scoped = inner.clone();
            // `apply:` is a block around the included tasks.
            scoped.push(Scope {
                common: inc.apply.clone().unwrap_or_default(),
                role: scoped.last().and_then(|s| s.role.clone()),
                params: include_params.clone(),
                rendered_params: params,
            });
            let mut k = key.clone();
            k.push(idx as u32);
            let flow = self.walk(&nodes, k, &scoped).await;
            if flow != Flow::Continue || stop {
                return flow;
            }
        }
        Flow::Continue
    }

    fn role_runs(&self) -> std::sync::MutexGuard<'_, super::context::RoleRuns> {
        self.pctx.role_runs.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The innermost role around a task, when it must not run twice.
    fn dedup_key(scopes: &[Scope]) -> Option<&str> {
        scopes
            .last()
            .and_then(|s| s.role.as_ref())
            .and_then(|r| r.dedup_key.as_deref())
    }

    /// Whether the task's role (duplicates not allowed) already completed
    /// on this host in this play: Ansible skips its tasks, silently.
    fn role_already_ran(&self, scopes: &[Scope]) -> bool {
        Self::dedup_key(scopes).is_some_and(|k| self.role_runs().completed(&self.host, k))
    }

    /// A task of the role ran here (not skipped, host reachable).
    fn mark_role_ran(&self, scopes: &[Scope]) {
        if let Some(k) = Self::dedup_key(scopes) {
            self.role_runs().mark_ran(&self.host, k);
        }
    }

    /// Make the defaults and vars of public roles loaded at run time visible
    /// to the rest of the play (Ansible appends them to `play.roles`).
    fn add_included_roles(&self, roles: impl IntoIterator<Item = Arc<crate::playbook::RoleCtx>>) {
        let mut included = self.pctx.included_roles.lock().unwrap_or_else(|p| p.into_inner());
        for role in roles {
            // Every host's include loads the role again: keep one copy, in
            // the place of the last inclusion (the values are the files').
            included.retain(|r| r.path != role.path || r.name != role.name);
            included.push(role);
        }
    }

    /// Make handlers of a role included at run time notifiable in this play.
    fn add_handlers(&self, handlers: Vec<Arc<Task>>) {
        if handlers.is_empty() {
            return;
        }
        let mut extra = self.pctx.extra_handlers.lock().unwrap_or_else(|p| p.into_inner());
        for h in handlers {
            let known = self
                .pctx
                .play
                .handlers
                .iter()
                .chain(extra.iter())
                .any(|k| k.loc == h.loc);
            if !known {
                extra.push(h);
            }
        }
    }

    /// A failure outside a task (a condition, an include that cannot be
    /// loaded), reported as `include`.
    fn fail_without_task(&self, loc: &Loc, msg: &str) -> Flow {
        let mut r = Map::new();
        r.insert("msg".into(), Value::String(format!("{loc}: {msg}")));
        self.report("include", Status::Failed, false, None, r);
        self.runner.stat(&self.host, |s| s.failed += 1);
        self.runner.with_host(&self.host, |s| s.failed = true);
        Flow::Failed
    }

    async fn task_node(&self, t: &Arc<Task>, key: Vec<u32>, scopes: &[Scope]) -> Flow {
        if !tags_match(&self.runner.opts, scopes, &t.common.tags) {
            return Flow::Continue;
        }
        if self.role_already_ran(scopes) {
            return Flow::Continue;
        }
        let title = t.display_name();
        if self.runner.start_pending.load(Ordering::SeqCst) && !self.runner.with_host(&self.host, |s| s.start_found) {
            let want = self.runner.opts.start_at_task.as_deref().unwrap_or("");
            if title == want || t.name.as_deref() == Some(want) {
                self.runner.with_host(&self.host, |s| s.start_found = true);
            } else {
                return Flow::Continue;
            }
        }
        let meta_once = self.meta_runs_once(t);
        let run_once = meta_once || self.run_once_for(t, scopes);
        let handler = self.in_handler.load(Ordering::SeqCst) > 0;
        let go = self.ready(&key, &title, &t.loc, handler, run_once).await;
        match go {
            Go::Abort => Flow::Abort,
            Go::Follow => {
                let res = self
                    .runner
                    .run_once_results
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .get(&key)
                    .cloned();
                if meta_once {
                    // The first host ran it for the batch: an action that
                    // ends the play or batch ends it here too (its `when`
                    // was the first host's, as in Ansible).
                    return match res.as_ref().and_then(|r| r.get("_meta")).and_then(Value::as_str) {
                        Some("end_play") => Flow::EndPlay,
                        Some("end_batch") => Flow::EndHost,
                        _ => Flow::Continue,
                    };
                }
                if let (Some(r), Some(reg)) = (res, &t.register) {
                    self.runner.with_host(&self.host, |s| {
                        s.set_facts.insert(reg.clone(), Value::Object(r.clone()));
                    });
                    if r.get("changed").and_then(Value::as_bool).unwrap_or(false) {
                        self.notify(t, scopes);
                    }
                }
                Flow::Continue
            }
            Go::Run => {
                // Boxed: a task's run (templating, the module, its
                // connection) is most of a walker's size, and every host of
                // the batch has a walker parked at `ready` meanwhile:
                // inline, 100,000 hosts' walkers were ~21 KB each.
                let tr = Box::pin(self.run_throttled(t, &key, scopes)).await;
                if !matches!(tr.status, Status::Skipped | Status::Unreachable) {
                    self.mark_role_ran(scopes);
                }
                if run_once {
                    self.runner
                        .run_once_results
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .insert(key.clone(), tr.result.clone());
                }
                let flow = Box::pin(self.finish_task(t, &title, tr, scopes, &key)).await;
                if self.fatal_for(t, scopes) {
                    return self.step_verdict(flow).await;
                }
                flow
            }
        }
    }

    /// A `meta` task the linear strategy runs once for every host of the
    /// batch, on the first (Ansible's linear strategy: all but `noop`,
    /// `reset_connection`, `end_host`, `role_complete`, `flush_handlers`
    /// and `end_role`). Its effect is the batch's or the play's:
    /// `end_play`, `end_batch`, `clear_facts`, `clear_host_errors`,
    /// `refresh_inventory`.
    fn meta_runs_once(&self, t: &Task) -> bool {
        self.pctx.play.strategy != crate::playbook::Strategy::Free
            && super::task::meta_action(t).is_some_and(|a| {
                !matches!(
                    a.as_str(),
                    "noop" | "reset_connection" | "end_host" | "role_complete" | "flush_handlers" | "end_role"
                )
            })
    }

    /// `any_errors_fatal` of a task (its own, its blocks', the play's), as
    /// the linear strategy applies it; the free strategy does not.
    fn fatal_for(&self, t: &Task, scopes: &[Scope]) -> bool {
        self.pctx.play.strategy != crate::playbook::Strategy::Free
            && resolve_bool(scopes, &t.common, |c| &c.any_errors_fatal).unwrap_or(self.pctx.play.any_errors_fatal)
    }

    /// After an `any_errors_fatal` task: tell the strategy whether it failed
    /// here and wait for the step's verdict. When another host of the step
    /// failed, this host is failed where it stands (Ansible's linear
    /// strategy marks every other host failed: each goes on to its block's
    /// `rescue` or `always`, or stops), without a failed result of its own.
    async fn step_verdict(&self, flow: Flow) -> Flow {
        let failed = matches!(flow, Flow::Failed | Flow::Unreachable);
        let (verdict, rx) = oneshot::channel();
        let msg = WalkerMsg::StepDone {
            host: self.idx,
            failed,
            verdict,
        };
        if self.tx.send(msg).is_err() {
            return flow;
        }
        if rx.await.unwrap_or(false) && flow == Flow::Continue {
            self.runner.with_host(&self.host, |s| {
                s.failed = true;
                s.failed_by_fatal = true;
            });
            return Flow::Failed;
        }
        flow
    }

    /// Run a task, holding one of its `throttle:` slots while it runs: at
    /// most that many hosts of the batch run it at once (within `forks`).
    async fn run_throttled(&self, t: &Task, key: &[u32], scopes: &[Scope]) -> TaskResult {
        let spec = t
            .common
            .throttle
            .clone()
            .or_else(|| scopes.iter().rev().find_map(|s| s.common.throttle.clone()));
        let Some(spec) = spec else {
            return self.run_task(t, scopes).await;
        };
        // Ansible's wording (strategy/__init__.py: `int(templar.template(task.throttle))`).
        const CONVERT: &str = "Failed to convert the throttle value to an integer";
        let limit = {
            let vars = self.vars(scopes, Some(t));
            let ctx = self.ctx(&vars);
            match self.runner.templar.render_value(&spec, &ctx, &t.loc) {
                Ok(Value::Number(n)) => n
                    .as_u64()
                    .ok_or_else(|| format!("`{n}` is not a whole number of hosts")),
                Ok(Value::String(s)) => s
                    .trim()
                    .parse()
                    .map_err(|_| format!("invalid literal for int() with base 10: '{s}'")),
                Ok(other) => Err(format!("`{other}` is not a whole number of hosts")),
                // Ansible reports the templating error's own text
                // (`'nope' is undefined`), not the template it came from.
                Err(e) => Err(match &spec {
                    Value::String(src) => e
                        .msg
                        .strip_prefix(&format!("template error while templating `{src}`: "))
                        .unwrap_or(&e.msg)
                        .to_string(),
                    _ => e.msg,
                }),
            }
        };
        let limit = match limit {
            Ok(limit) => limit,
            Err(why) => {
                let tr = TaskResult::failed(format!("{}: {CONVERT}: {why}", t.loc));
                self.report(&t.display_name(), tr.status, false, None, tr.result.clone());
                return tr;
            }
        };
        if limit == 0 {
            return self.run_task(t, scopes).await;
        }
        // The first host to reach the task sizes its slots.
        let slots = self
            .pctx
            .throttles
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(key.to_vec())
            .or_insert_with(|| Arc::new(tokio::sync::Semaphore::new(limit as usize)))
            .clone();
        let _slot = slots.acquire_owned().await;
        self.run_task(t, scopes).await
    }

    /// Settle a task's result on this host ([`PlayHost::settle`]), then
    /// act on its `meta` action.
    async fn finish_task(&self, t: &Task, title: &str, tr: TaskResult, scopes: &[Scope], key: &[u32]) -> Flow {
        let meta = match self.settle(t, title, tr, scopes) {
            Ok(meta) => meta,
            Err(flow) => return flow,
        };
        if let Some(action) = meta {
            match action.as_str() {
                "flush_handlers" => return self.flush_handlers(key.to_vec(), scopes).await,
                "end_play" => {
                    self.runner.play_ended.store(true, Ordering::SeqCst);
                    return Flow::EndPlay;
                }
                "end_host" | "end_batch" => return Flow::EndHost,
                // As Ansible's: the facts of every host of the play.
                "clear_facts" => {
                    for h in &self.pctx.all_hosts {
                        self.runner.with_host(h, |s| {
                            s.facts.clear();
                            s.module_facts.clear();
                        });
                        if let Some(cache) = &self.runner.fact_cache {
                            if let Err(message) = cache.delete(h) {
                                self.runner.out.emit(&crate::output::Event::Warning { message });
                            }
                        }
                    }
                }
                // As Ansible's: every host of the play, failed or
                // unreachable, is back for the plays that follow.
                "clear_host_errors" => {
                    for h in &self.pctx.all_hosts {
                        self.runner.with_host(h, |s| {
                            s.failed = false;
                            s.unreachable = false;
                            s.errors_cleared += 1;
                        });
                    }
                }
                _ => {}
            }
        }
        Flow::Continue
    }

    /// Run notified handlers in definition order; each is a coordinated step.
    fn flush_handlers<'a>(&'a self, key: Vec<u32>, scopes: &'a [Scope]) -> BoxFuture<'a, Flow> {
        Box::pin(self.flush_handlers_inner(key, scopes))
    }

    async fn flush_handlers_inner(&self, key: Vec<u32>, scopes: &[Scope]) -> Flow {
        // Nothing notified, nothing to run (most hosts at most flushes).
        if self.runner.with_host(&self.host, |s| s.notified.is_empty()) {
            return Flow::Continue;
        }
        let mut handlers = self.pctx.play.handlers.clone();
        handlers.extend(
            self.pctx
                .extra_handlers
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .iter()
                .cloned(),
        );
        for (i, h) in handlers.iter().enumerate() {
            let name = h.name.clone().unwrap_or_default();
            let full = h.display_name();
            let hit = self.runner.with_host(&self.host, |s| {
                let names = [name.as_str(), full.as_str()];
                let hit =
                    names.iter().any(|n| s.notified.contains(*n)) || h.listen.iter().any(|l| s.notified.contains(l));
                hit
            });
            if !hit {
                continue;
            }
            let mut k = key.clone();
            k.push(i as u32);
            let go = self.ready(&k, &full, &h.loc, true, false).await;
            if let Go::Abort = go {
                return Flow::Abort;
            }
            // A handler runs once per flush even if notified several times.
            if let Some(inc) = &h.include {
                // An include as a handler: its file or role is loaded now,
                // and its tasks run in order under the handler's key.
                self.in_handler.fetch_add(1, Ordering::SeqCst);
                let flow = self.include(inc, k, scopes).await;
                self.in_handler.fetch_sub(1, Ordering::SeqCst);
                if flow != Flow::Continue {
                    return flow;
                }
                continue;
            }
            let tr = Box::pin(self.run_throttled(h, &k, scopes)).await;
            let flow = self.finish_task(h, &full, tr, scopes, &k).await;
            if flow != Flow::Continue {
                return flow;
            }
        }
        // Clear only after running, so a handler's own notifications chain.
        self.runner.with_host(&self.host, |s| s.notified.clear());
        Flow::Continue
    }
}
