//! The playbook runner.
//!
//! Every host of a play is walked by its own async task ([`Walker`]) through
//! the task tree (blocks, rescue/always, includes, handlers). Walkers do not
//! run a task on their own: they announce it to the play's coordinator with
//! the task's *key* (its position in document order) and wait for a go. The
//! coordinator implements the strategy: `linear` lets the hosts that are at
//! the smallest key run it together and waits for them (lockstep, output
//! grouped by task, as Ansible does); `free` lets every host run at once.
//! `run_once`, `any_errors_fatal` and `max_fail_percentage` are decisions of
//! the coordinator too.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use futures::future::BoxFuture;
use serde_json::{Map, Value};
use tokio::sync::{mpsc, oneshot, Semaphore};

use super::conn_pool::{connection_vars, var_str, ConnDefaults, ConnPool};
use super::vars::{Vars, VarsBuilder};
use crate::connection::{Become, BecomeMethod, ConnError};
use crate::error::LocError;
use crate::inventory::Inventory;
use crate::modules::args::truthy;
use crate::modules::{self, ControllerEffect, ModuleCtx, ModuleError, ModuleOutcome};
use crate::output::{Event, HostStats, Renderer, Status};
use crate::playbook::{
    Block, CheckModeKw, Common, Cond, Include, IncludeKind, LoopSpec, Play, Playbook, RoleCtx, Serial, Strategy, Task,
    TaskNode,
};
use crate::template::{omit, Templar};
use crate::yaml::Loc;

/// Set by the Ctrl-C handler: start no new task.
pub static INTERRUPTED: AtomicBool = AtomicBool::new(false);

/// Options of a run, from the CLI.
#[derive(Debug, Clone)]
pub struct RunOptions {
    pub forks: usize,
    pub check: bool,
    pub diff: bool,
    pub tags: Vec<String>,
    pub skip_tags: Vec<String>,
    pub limit: Option<String>,
    pub extra_vars: Map<String, Value>,
    pub start_at_task: Option<String>,
    pub force_handlers: bool,
    pub task_timeout: Option<Duration>,
    pub become_: Option<bool>,
    pub become_user: Option<String>,
    pub become_method: Option<String>,
    pub become_password: Option<String>,
    pub verbosity: u8,
    pub conn: ConnDefaults,
    /// Keep every task's result of every host for the caller
    /// ([`RunSummary::task_records`], used by `rigger check`). A plain run
    /// does not, so its memory does not grow with hosts × tasks.
    pub keep_task_records: bool,
    /// What is kept of each output stream of a user's command (`--max-output`).
    pub max_output: usize,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            forks: 50,
            check: false,
            diff: false,
            tags: Vec::new(),
            skip_tags: Vec::new(),
            limit: None,
            extra_vars: Map::new(),
            start_at_task: None,
            force_handlers: false,
            task_timeout: None,
            become_: None,
            become_user: None,
            become_method: None,
            become_password: None,
            verbosity: 0,
            conn: ConnDefaults::default(),
            keep_task_records: false,
            max_output: crate::connection::output::DEFAULT_MAX_OUTPUT,
        }
    }
}

/// What a [`TaskRecord`] keeps of a result: what `rigger check` reports
/// (`msg`, `changed`, `failed`, diffs, `no_log`, and those of loop items),
/// not a command's output: every task of every host is kept until the end
/// of the run, and each may hold up to `--max-output` per stream.
fn record_view(result: &Map<String, Value>) -> Map<String, Value> {
    const KEPT: [&str; 5] = ["msg", "changed", "failed", "diff", "_ansible_no_log"];
    let pick = |m: &Map<String, Value>| -> Map<String, Value> {
        KEPT.iter()
            .filter_map(|k| m.get(*k).map(|v| (k.to_string(), v.clone())))
            .collect()
    };
    let mut out = pick(result);
    if let Some(Value::Array(items)) = result.get("results") {
        let items = items
            .iter()
            .map(|it| match it {
                Value::Object(m) => Value::Object(pick(m)),
                _ => Value::Null,
            })
            .collect();
        out.insert("results".into(), Value::Array(items));
    }
    out
}

/// The outcome of a whole run.
#[derive(Debug, Clone, Default)]
pub struct RunSummary {
    pub stats: BTreeMap<String, HostStats>,
    pub interrupted: bool,
    /// Every task's final outcome per host, in execution order (for `rigger
    /// check`; only with [`RunOptions::keep_task_records`]).
    pub task_records: Vec<TaskRecord>,
}

/// One task's final outcome on one host (after loops, `changed_when`, `failed_when`).
#[derive(Debug, Clone)]
pub struct TaskRecord {
    pub host: String,
    pub task: String,
    /// `file:line:col` of the task (of the play for fact gathering and connection errors).
    pub location: String,
    pub status: Status,
    /// Failed or unreachable, but ignored (`ignore_errors`, `ignore_unreachable`).
    pub ignored: bool,
    pub result: Map<String, Value>,
}

impl RunSummary {
    /// ansible-playbook's exit codes: 2 failed, 4 unreachable, 0 ok.
    pub fn exit_code(&self) -> i32 {
        if self.interrupted {
            return 130;
        }
        if self.stats.values().any(|s| s.failed > 0) {
            2
        } else if self.stats.values().any(|s| s.unreachable > 0) {
            4
        } else {
            0
        }
    }
}

#[derive(Default)]
struct HostState {
    /// Gathered facts: data from the host, never rendered (see [`super::vars`]).
    facts: Map<String, Value>,
    /// Facts that modules returned (`ansible_facts` of a result), without
    /// connection, become and magic variables: data at facts precedence.
    module_facts: Map<String, Value>,
    /// set_fact values and registered results: data, never rendered.
    set_facts: Map<String, Value>,
    /// Variables from files through `include_vars`: template source.
    include_vars: Map<String, Value>,
    notified: HashSet<String>,
    failed: bool,
    unreachable: bool,
    /// `--start-at-task`: this host reached the task (per host, so that hosts
    /// walking ahead of others do not start early).
    start_found: bool,
}

/// Shared state of a run.
pub struct Runner {
    opts: RunOptions,
    inventory: RwLock<Inventory>,
    pool: ConnPool,
    templar: Templar,
    out: Arc<Renderer>,
    hosts: Mutex<HashMap<String, HostState>>,
    stats: Mutex<BTreeMap<String, HostStats>>,
    task_records: Mutex<Vec<TaskRecord>>,
    forks: Semaphore,
    run_once_results: Mutex<HashMap<Vec<u32>, Map<String, Value>>>,
    /// `--start-at-task` not reached yet.
    start_pending: AtomicBool,
    /// A play aborted (any_errors_fatal / max_fail_percentage): stop the playbook.
    stop_playbook: AtomicBool,
    /// Answers to `vars_prompt`, asked once before the run starts.
    prompted: Mutex<Map<String, Value>>,
    /// Bumped by every change to the inventory (`add_host`, `group_by`).
    inv_generation: AtomicU64,
}

/// Per-play data shared by walkers.
struct PlayCtx {
    play: Arc<Play>,
    vars: Map<String, Value>,
    all_hosts: Vec<String>,
    batch: Vec<String>,
    /// Handlers of roles included at run time (`include_role`), in the order
    /// first included; deduplicated by definition location.
    extra_handlers: Mutex<Vec<Arc<Task>>>,
    /// The play-wide magic variables as template values, see [`Walker::magic`].
    magic: Mutex<Option<PlayMagic>>,
}

/// `groups`, `ansible_play_hosts_all`, `ansible_play_hosts`, `play_hosts`
/// and `ansible_play_batch`: lists of hosts, the same for every host of a
/// batch. Built once (and again when the inventory changes or a host drops
/// out) and shared by every host's template context, instead of copied
/// into each host's variables for each task, which made memory and CPU grow
/// with hosts × hosts.
struct PlayMagic {
    inv_generation: u64,
    /// Hosts of the play that failed or became unreachable.
    dropped: Vec<String>,
    value: minijinja::Value,
}

/// Keywords and variables in effect around a task (from play, blocks, roles, includes).
#[derive(Clone)]
struct Scope {
    common: Common,
    role: Option<Arc<RoleCtx>>,
    /// include_tasks / include_role parameters: the `vars:` of an include
    /// (template source).
    params: Map<String, Value>,
    /// Parameters already rendered (an include's arguments, its loop item):
    /// data, above `params`.
    rendered_params: Map<String, Value>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flow {
    Continue,
    Failed,
    EndHost,
    EndPlay,
    Unreachable,
    Abort,
}

enum Go {
    Run,
    /// run_once: another host ran it; use its result.
    Follow,
    Abort,
}

/// strategy free + run_once, per task key: (host running it, hosts waiting
/// for its result), or `None` once done.
type OnceStates = HashMap<Vec<u32>, Option<(String, Vec<oneshot::Sender<Go>>)>>;

/// A host waiting at a task: (key, title, location, handler, run_once, reply).
type Pending = (Vec<u32>, String, String, bool, bool, oneshot::Sender<Go>);

enum Msg {
    Ready {
        host: String,
        key: Vec<u32>,
        title: String,
        loc: String,
        handler: bool,
        run_once: bool,
        reply: oneshot::Sender<Go>,
    },
    Finished {
        host: String,
    },
}

impl Runner {
    pub fn new(opts: RunOptions, inventory: Inventory, out: Arc<Renderer>) -> Arc<Self> {
        let forks = opts.forks.max(1);
        let start_pending = opts.start_at_task.is_some();
        // Secrets known before any host runs; templated ones are added as
        // each host's variables are resolved (`Walker::run_task`).
        let secrets = out.secrets();
        for s in [&opts.become_password, &opts.conn.password, &opts.conn.key_passphrase]
            .into_iter()
            .flatten()
        {
            secrets.add(s);
        }
        secrets.add_from_vars(&opts.extra_vars);
        for vars in inventory.raw_var_maps() {
            secrets.add_from_vars(vars);
        }
        Arc::new(Runner {
            pool: ConnPool::new(opts.conn.clone()),
            opts,
            inventory: RwLock::new(inventory),
            templar: Templar::new(),
            out,
            hosts: Mutex::new(HashMap::new()),
            stats: Mutex::new(BTreeMap::new()),
            task_records: Mutex::new(Vec::new()),
            forks: Semaphore::new(forks),
            run_once_results: Mutex::new(HashMap::new()),
            start_pending: AtomicBool::new(start_pending),
            stop_playbook: AtomicBool::new(false),
            prompted: Mutex::new(Map::new()),
            inv_generation: AtomicU64::new(0),
        })
    }

    fn inv(&self) -> std::sync::RwLockReadGuard<'_, Inventory> {
        self.inventory.read().unwrap_or_else(|p| p.into_inner())
    }

    /// Change the inventory. The generation is bumped after the change,
    /// still under the write lock: whoever read the old generation rebuilds
    /// what depends on the inventory on its next look (see [`Walker::magic`]).
    fn change_inv<R>(&self, f: impl FnOnce(&mut Inventory) -> R) -> R {
        let mut inv = self.inventory.write().unwrap_or_else(|p| p.into_inner());
        let r = f(&mut inv);
        self.inv_generation.fetch_add(1, Ordering::SeqCst);
        r
    }

    fn with_host<R>(&self, host: &str, f: impl FnOnce(&mut HostState) -> R) -> R {
        let mut hosts = self.hosts.lock().unwrap_or_else(|p| p.into_inner());
        f(hosts.entry(host.to_string()).or_default())
    }

    fn record(
        &self,
        host: &str,
        task: &str,
        location: String,
        status: Status,
        ignored: bool,
        result: &Map<String, Value>,
    ) {
        if !self.opts.keep_task_records {
            return;
        }
        let mut result = record_view(result);
        self.out.secrets().redact_map(&mut result);
        self.task_records
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(TaskRecord {
                host: host.to_string(),
                task: task.to_string(),
                location,
                status,
                ignored,
                result,
            });
    }

    fn stat(&self, host: &str, f: impl FnOnce(&mut HostStats)) {
        let mut stats = self.stats.lock().unwrap_or_else(|p| p.into_inner());
        f(stats.entry(host.to_string()).or_default())
    }

    /// `e` with known secrets masked in its message and hint.
    fn mask_error(&self, mut e: LocError) -> LocError {
        let secrets = self.out.secrets();
        e.msg = secrets.redact_str(&e.msg).into_owned();
        e.hint = e.hint.map(|h| secrets.redact_str(&h).into_owned());
        e
    }

    /// Run every play of a playbook.
    pub async fn run_playbook(self: &Arc<Self>, pb: &Playbook) -> Result<RunSummary, LocError> {
        // Every prompt is answered (or reported) before any host is contacted.
        self.ask_prompts(pb)?;
        self.out.emit(&Event::PlaybookStart {
            playbook: pb.path.display().to_string(),
            check: self.opts.check,
        });
        for play in &pb.plays {
            if INTERRUPTED.load(Ordering::SeqCst) || self.stop_playbook.load(Ordering::SeqCst) {
                break;
            }
            self.run_play(Arc::new(play.clone()))
                .await
                .map_err(|e| self.mask_error(e))?;
        }
        let stats = self.stats.lock().unwrap_or_else(|p| p.into_inner()).clone();
        self.out.emit(&Event::Recap { hosts: stats.clone() });
        Ok(RunSummary {
            stats,
            interrupted: INTERRUPTED.load(Ordering::SeqCst),
            task_records: std::mem::take(&mut *self.task_records.lock().unwrap_or_else(|p| p.into_inner())),
        })
    }

    /// Hosts a play targets: pattern, `--limit`, minus hosts that already failed.
    pub fn play_hosts(&self, pattern: &str) -> Result<Vec<String>, LocError> {
        let inv = self.inv();
        let mut hosts = inv.select(pattern)?;
        if let Some(limit) = &self.opts.limit {
            let allowed: HashSet<String> = inv.select(limit)?.into_iter().collect();
            hosts.retain(|h| allowed.contains(h));
        }
        drop(inv);
        let states = self.hosts.lock().unwrap_or_else(|p| p.into_inner());
        hosts.retain(|h| states.get(h).is_none_or(|s| !s.failed && !s.unreachable));
        Ok(hosts)
    }

    async fn run_play(self: &Arc<Self>, play: Arc<Play>) -> Result<(), LocError> {
        // Play-level `when` (from import_playbook) is evaluated with extra vars only.
        let hosts_pattern = self.render_plain(&play.hosts, &play.loc)?;
        let hosts = self.play_hosts(&hosts_pattern)?;
        if hosts.is_empty() {
            self.out.emit(&Event::PlayStart {
                play: play.name.clone(),
                hosts: Vec::new(),
            });
            self.out.emit(&Event::Warning {
                message: match &self.opts.limit {
                    Some(l) => format!("no hosts matched `{hosts_pattern}` and the limit `{l}`; skipping play"),
                    None => format!("no hosts matched `{hosts_pattern}`; skipping play"),
                },
            });
            return Ok(());
        }
        for h in &hosts {
            self.stat(h, |_| {});
        }
        let vars = self.play_vars(&play)?;
        for batch in batches(&hosts, &play.serial) {
            if INTERRUPTED.load(Ordering::SeqCst) || self.stop_playbook.load(Ordering::SeqCst) {
                break;
            }
            let batch: Vec<String> = {
                let states = self.hosts.lock().unwrap_or_else(|p| p.into_inner());
                batch
                    .into_iter()
                    .filter(|h| states.get(h).is_none_or(|s| !s.failed && !s.unreachable))
                    .collect()
            };
            if batch.is_empty() {
                continue;
            }
            // Like Ansible, every serial batch starts with its own PLAY header.
            self.out.emit(&Event::PlayStart {
                play: play.name.clone(),
                hosts: batch.clone(),
            });
            let pctx = Arc::new(PlayCtx {
                play: play.clone(),
                vars: vars.clone(),
                all_hosts: hosts.clone(),
                batch,
                extra_handlers: Mutex::new(Vec::new()),
                magic: Mutex::new(None),
            });
            self.run_batch(pctx).await;
        }
        // Once a play reached --start-at-task, later plays run from their start.
        if self.start_pending.load(Ordering::SeqCst) && hosts.iter().any(|h| self.with_host(h, |s| s.start_found)) {
            self.start_pending.store(false, Ordering::SeqCst);
        }
        Ok(())
    }

    /// `vars_prompt`: extra vars answer a prompt; on a terminal rigger asks
    /// (an empty answer takes the default); otherwise the default is used, and
    /// a prompt without one is an error naming it.
    fn ask_prompts(&self, pb: &Playbook) -> Result<(), LocError> {
        use std::io::{BufRead, IsTerminal, Write};
        let tty = std::io::stdin().is_terminal();
        let mut prompted = self.prompted.lock().unwrap_or_else(|p| p.into_inner());
        for play in &pb.plays {
            for p in &play.vars_prompt {
                if self.opts.extra_vars.contains_key(&p.name) || prompted.contains_key(&p.name) {
                    continue;
                }
                if !tty {
                    match &p.default {
                        Some(d) => {
                            prompted.insert(p.name.clone(), d.clone());
                            continue;
                        }
                        None => {
                            return Err(LocError::new(
                                p.loc.clone(),
                                format!("vars_prompt `{}` has no default and stdin is not a terminal", p.name),
                            )
                            .with_hint(format!("pass it with -e {}=VALUE", p.name)))
                        }
                    }
                }
                let question = p.prompt.clone().unwrap_or_else(|| p.name.clone());
                let shown_default = match &p.default {
                    Some(Value::String(d)) if !p.private => format!(" [{d}]"),
                    Some(d) if !p.private => format!(" [{d}]"),
                    _ => String::new(),
                };
                stderr!("{question}{shown_default}: ");
                let _ = std::io::stderr().flush();
                if p.private {
                    let _ = std::process::Command::new("stty").arg("-echo").status();
                }
                let mut line = String::new();
                let r = std::io::stdin().lock().read_line(&mut line);
                if p.private {
                    let _ = std::process::Command::new("stty").arg("echo").status();
                    stderrln!();
                }
                r.map_err(|e| LocError::new(p.loc.clone(), format!("cannot read the answer: {e}")))?;
                let answer = line.trim_end_matches(['\n', '\r']).to_string();
                if p.private {
                    self.out.secrets().add(&answer);
                }
                let value = match (&p.default, answer.is_empty()) {
                    (Some(d), true) => d.clone(),
                    _ => Value::String(answer),
                };
                prompted.insert(p.name.clone(), value);
            }
        }
        Ok(())
    }

    /// Play `vars`, `vars_files` and `vars_prompt` answers.
    fn play_vars(&self, play: &Play) -> Result<Map<String, Value>, LocError> {
        let mut vars = play.common.vars.clone();
        {
            let prompted = self.prompted.lock().unwrap_or_else(|p| p.into_inner());
            for p in &play.vars_prompt {
                if let Some(v) = prompted.get(&p.name) {
                    vars.insert(p.name.clone(), v.clone());
                }
            }
        }
        for (file, loc) in &play.vars_files {
            let mut ctx_vars = vars.clone();
            ctx_vars.extend(self.opts.extra_vars.clone());
            let ctx = mj(&ctx_vars);
            // A list entry (joined by \x1f) means the first file that exists.
            let mut loaded = false;
            let cands: Vec<&str> = file.split('\u{1f}').collect();
            for cand in &cands {
                let name = match self.templar.render_str(cand, &ctx, loc)? {
                    Value::String(s) => s,
                    other => other.to_string(),
                };
                let path = crate::playbook::resolve(&play.dir, &name);
                if !path.exists() && cands.len() > 1 {
                    continue;
                }
                let n = crate::yaml::load_file(&path).map_err(|e| {
                    if e.loc.is_synthetic() {
                        LocError::new(loc.clone(), format!("vars_files {name}: {}", e.msg))
                    } else {
                        e
                    }
                })?;
                match n.to_json() {
                    Value::Object(m) => vars.extend(m),
                    Value::Null => {}
                    _ => return Err(LocError::new(n.loc.clone(), "a vars file must be a mapping")),
                }
                loaded = true;
                break;
            }
            if !loaded {
                return Err(LocError::new(loc.clone(), "none of the vars_files candidates exists"));
            }
        }
        Ok(vars)
    }

    /// Render a play-level string with extra vars only.
    fn render_plain(&self, s: &str, loc: &Loc) -> Result<String, LocError> {
        let ctx = mj(&self.opts.extra_vars);
        Ok(match self.templar.render_str(s, &ctx, loc)? {
            Value::String(s) => s,
            other => other.to_string(),
        })
    }

    async fn run_batch(self: &Arc<Self>, pctx: Arc<PlayCtx>) {
        let (tx, rx) = mpsc::channel::<Msg>(pctx.batch.len() * 2 + 8);
        let mut handles = Vec::new();
        for host in &pctx.batch {
            let w = Walker {
                runner: self.clone(),
                pctx: pctx.clone(),
                host: host.clone(),
                tx: tx.clone(),
            };
            handles.push(tokio::spawn(async move { w.run().await }));
        }
        drop(tx);
        self.coordinate(&pctx, rx).await;
        for h in handles {
            let _ = h.await;
        }
    }

    /// The strategy: decides which host runs which task when.
    async fn coordinate(&self, pctx: &PlayCtx, mut rx: mpsc::Receiver<Msg>) {
        let mut active: HashSet<String> = pctx.batch.iter().cloned().collect();
        let mut pending: BTreeMap<String, Pending> = BTreeMap::new();
        let free = pctx.play.strategy == Strategy::Free;
        let mut last_header: Option<(Vec<u32>, String)> = None;
        let mut aborted = false;
        let order: HashMap<&str, usize> = pctx.batch.iter().enumerate().map(|(i, h)| (h.as_str(), i)).collect();
        // strategy free + run_once: per task key, the host running it and the
        // hosts waiting for its result (`None` once it is done).
        let mut once: OnceStates = HashMap::new();
        let release_once = |once: &mut OnceStates, host: &str| {
            for state in once.values_mut() {
                if state.as_ref().is_some_and(|(leader, _)| leader == host) {
                    if let Some((_, waiters)) = state.take() {
                        for w in waiters {
                            let _ = w.send(Go::Follow);
                        }
                    }
                }
            }
        };
        loop {
            // Wait until every active host is waiting (linear), or for any message (free).
            while !active.is_empty() && (pending.len() < active.len() || free && pending.is_empty()) {
                match rx.recv().await {
                    Some(Msg::Ready {
                        host,
                        key,
                        title,
                        loc,
                        handler,
                        run_once,
                        reply,
                    }) => {
                        if free {
                            release_once(&mut once, &host);
                        }
                        if aborted || INTERRUPTED.load(Ordering::SeqCst) {
                            let _ = reply.send(Go::Abort);
                            continue;
                        }
                        pending.insert(host, (key, title, loc, handler, run_once, reply));
                        if free {
                            break;
                        }
                    }
                    Some(Msg::Finished { host }) => {
                        if free {
                            release_once(&mut once, &host);
                        }
                        active.remove(&host);
                        pending.remove(&host);
                    }
                    None => return,
                }
            }
            if active.is_empty() {
                return;
            }
            if pending.is_empty() {
                continue;
            }
            // Check failure thresholds once the previous step is complete.
            if !free && !aborted {
                let failed = {
                    let states = self.hosts.lock().unwrap_or_else(|p| p.into_inner());
                    pctx.batch
                        .iter()
                        .filter(|h| states.get(*h).is_some_and(|s| s.failed || s.unreachable))
                        .count()
                };
                if let Some(pct) = pctx.play.max_fail_percentage {
                    if failed as f64 * 100.0 / pctx.batch.len() as f64 > pct {
                        aborted = true;
                    }
                }
                if pctx.play.any_errors_fatal && failed > 0 {
                    aborted = true;
                }
                if self.stop_playbook.load(Ordering::SeqCst) {
                    aborted = true;
                }
                if aborted {
                    self.stop_playbook.store(true, Ordering::SeqCst);
                    self.out.emit(&Event::Warning {
                        message: "NO MORE HOSTS LEFT: the play was aborted".into(),
                    });
                }
            }
            if aborted || INTERRUPTED.load(Ordering::SeqCst) {
                for (_, (_, _, _, _, _, reply)) in std::mem::take(&mut pending) {
                    let _ = reply.send(Go::Abort);
                }
                continue;
            }
            let min_key = pending.values().map(|p| p.0.clone()).min().unwrap_or_default();
            let mut chosen: Vec<String> = pending
                .iter()
                .filter(|(_, p)| p.0 == min_key)
                .map(|(h, _)| h.clone())
                .collect();
            chosen.sort_by_key(|h| order.get(h.as_str()).copied().unwrap_or(usize::MAX));
            let (title, loc, handler, run_once) = {
                let p = &pending[&chosen[0]];
                (p.1.clone(), p.2.clone(), p.3, p.4)
            };
            if last_header.as_ref().is_none_or(|(k, t)| *k != min_key || *t != title) {
                self.out.emit(&Event::TaskStart {
                    task: title.clone(),
                    location: loc,
                    handler,
                });
                last_header = Some((min_key.clone(), title));
            }
            if run_once && !free {
                let leader = chosen.remove(0);
                if let Some((_, _, _, _, _, reply)) = pending.remove(&leader) {
                    let _ = reply.send(Go::Run);
                }
                // Wait for the leader to come back, then release the followers.
                loop {
                    match rx.recv().await {
                        Some(Msg::Ready {
                            host,
                            key,
                            title,
                            loc,
                            handler,
                            run_once,
                            reply,
                        }) => {
                            let back = host == leader;
                            pending.insert(host, (key, title, loc, handler, run_once, reply));
                            if back {
                                break;
                            }
                        }
                        Some(Msg::Finished { host }) => {
                            let back = host == leader;
                            active.remove(&host);
                            pending.remove(&host);
                            if back {
                                break;
                            }
                        }
                        None => return,
                    }
                }
                for h in chosen {
                    if let Some((_, _, _, _, _, reply)) = pending.remove(&h) {
                        let _ = reply.send(Go::Follow);
                    }
                }
            } else if run_once {
                // strategy free: the first host to get here runs it, later ones follow.
                for h in chosen {
                    if let Some((_, _, _, _, _, reply)) = pending.remove(&h) {
                        match once.get_mut(&min_key) {
                            None => {
                                once.insert(min_key.clone(), Some((h.clone(), Vec::new())));
                                let _ = reply.send(Go::Run);
                            }
                            Some(Some((_, waiters))) => waiters.push(reply),
                            Some(None) => {
                                let _ = reply.send(Go::Follow);
                            }
                        }
                    }
                }
            } else {
                for h in chosen {
                    if let Some((_, _, _, _, _, reply)) = pending.remove(&h) {
                        let _ = reply.send(Go::Run);
                    }
                }
            }
        }
    }

    /// Variables of a host visible to other hosts through `hostvars`.
    fn hostvars_of(&self, host: &str) -> Option<Map<String, Value>> {
        let inv = self.inv();
        if !inv.hosts.contains_key(host) {
            return None;
        }
        let mut b = VarsBuilder::new();
        b.source_owned(inv.host_vars(host));
        b.data_owned(inv.host_runtime_vars(host));
        let group_names = inv.group_names(host);
        drop(inv);
        self.with_host(host, |s| {
            add_facts(&mut b, &s.facts, &s.module_facts);
            b.source(&s.include_vars);
            b.data(&s.set_facts);
        });
        b.data_one("inventory_hostname".into(), Value::String(host.to_string()));
        b.data_one(
            "inventory_hostname_short".into(),
            Value::String(host.split('.').next().unwrap_or(host).to_string()),
        );
        b.data_one(
            "group_names".into(),
            Value::Array(group_names.into_iter().map(Value::String).collect()),
        );
        b.source(&self.opts.extra_vars);
        // Rendered in the host's own variables and `groups`, without
        // `hostvars` (which could lead back here) or the play's host lists.
        let overlay = || minijinja::context! { groups => mj(&self.inv().groups_map()) };
        Some(b.resolve(&self.templar, overlay).into_map())
    }
}

/// A template context value from any serializable value.
fn mj<T: serde::Serialize>(v: &T) -> minijinja::Value {
    minijinja::Value::from(minijinja::value::Serde(v))
}

/// Facts as variables, all data: gathered facts as `ansible_facts` and each
/// as `ansible_NAME`; facts that modules returned under their own names
/// (and in `ansible_facts`).
fn add_facts(b: &mut VarsBuilder, facts: &Map<String, Value>, module_facts: &Map<String, Value>) {
    if facts.is_empty() && module_facts.is_empty() {
        return;
    }
    let mut all = facts.clone();
    all.extend(module_facts.iter().map(|(k, v)| (k.clone(), v.clone())));
    b.data_one("ansible_facts".into(), Value::Object(all));
    for (k, v) in facts {
        b.data_one(format!("ansible_{k}"), v.clone());
    }
    b.data(module_facts);
}

/// Ansible's `clean_facts`: facts a module returns cannot set connection or
/// become variables, nor the engine's magic variables.
fn clean_facts(facts: &Map<String, Value>) -> Map<String, Value> {
    const MAGIC: &[&str] = &[
        "inventory_hostname",
        "inventory_hostname_short",
        "inventory_dir",
        "inventory_file",
        "group_names",
        "groups",
        "hostvars",
        "vars",
        "omit",
        "playbook_dir",
        "play_hosts",
        "role_name",
        "role_path",
        "environment",
    ];
    facts
        .iter()
        .filter(|(k, _)| {
            !super::conn_pool::is_connection_var(k)
                && !k.ends_with("_interpreter")
                && !k.starts_with("ansible_play")
                && !k.starts_with("ansible_check_mode")
                && !k.starts_with("ansible_diff_mode")
                && !MAGIC.contains(&k.as_str())
                && !k.starts_with(crate::template::SEARCH_PATHS_VAR)
        })
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// Split hosts into `serial` batches (the last size repeats).
fn batches(hosts: &[String], serial: &[Serial]) -> Vec<Vec<String>> {
    if serial.is_empty() {
        return vec![hosts.to_vec()];
    }
    let mut out = Vec::new();
    let mut i = 0;
    let mut idx = 0;
    while i < hosts.len() {
        let spec = &serial[idx.min(serial.len() - 1)];
        let n = match spec {
            Serial::Count(0) => hosts.len(),
            Serial::Count(n) => *n,
            Serial::Percent(p) => ((hosts.len() as f64 * p / 100.0).floor() as usize).max(1),
        };
        let end = (i + n).min(hosts.len());
        out.push(hosts[i..end].to_vec());
        i = end;
        idx += 1;
    }
    out
}

/// The `hostvars` magic variable: other hosts' variables, computed on access.
#[derive(Debug)]
struct HostVarsObj {
    runner: std::sync::Weak<Runner>,
}

impl minijinja::value::Object for HostVarsObj {
    fn get_value(self: &Arc<Self>, key: &minijinja::Value) -> Option<minijinja::Value> {
        let runner = self.runner.upgrade()?;
        let host = key.as_str()?;
        runner.hostvars_of(host).map(|m| mj(&m))
    }

    fn enumerate(self: &Arc<Self>) -> minijinja::value::Enumerator {
        let Some(runner) = self.runner.upgrade() else {
            return minijinja::value::Enumerator::Empty;
        };
        let names: Vec<minijinja::Value> = runner
            .inv()
            .hosts
            .keys()
            .map(|h| minijinja::Value::from(h.as_str()))
            .collect();
        minijinja::value::Enumerator::Values(names)
    }
}

impl std::fmt::Display for HostVarsObj {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<hostvars>")
    }
}

/// Walks one host through a play.
struct Walker {
    runner: Arc<Runner>,
    pctx: Arc<PlayCtx>,
    host: String,
    tx: mpsc::Sender<Msg>,
}

/// What one task did on a host (all loop items together).
struct TaskResult {
    status: Status,
    result: Map<String, Value>,
    ignored: bool,
}

impl Walker {
    async fn run(self) {
        let play = self.pctx.play.clone();
        // Play vars are in `pctx.vars` (below vars_files and role vars); the
        // root scope carries only the play's keywords.
        let mut play_common = play.common.clone();
        play_common.vars = Map::new();
        let root = Scope {
            common: play_common,
            role: None,
            params: Map::new(),
            rendered_params: Map::new(),
        };
        let scopes = vec![root];
        let mut flow = Flow::Continue;
        if play.gather_facts {
            flow = self.gather_facts(&scopes).await;
        }
        let mut failed_flow = None;
        for (s, section) in play.sections.iter().enumerate() {
            if flow != Flow::Continue {
                break;
            }
            flow = self.walk(section, vec![1 + s as u32], &scopes).await;
            if flow == Flow::Failed {
                failed_flow = Some(flow);
            }
            let force = play.force_handlers || self.runner.opts.force_handlers;
            if flow == Flow::Continue || (flow == Flow::Failed && force) {
                let hf = self.flush_handlers(vec![1 + s as u32, u32::MAX], &scopes).await;
                if flow == Flow::Continue {
                    flow = hf;
                }
            }
        }
        let _ = failed_flow;
        let _ = self
            .tx
            .send(Msg::Finished {
                host: self.host.clone(),
            })
            .await;
    }

    /// Ask the coordinator for permission to run the task at `key`.
    async fn ready(&self, key: &[u32], title: &str, loc: &Loc, handler: bool, run_once: bool) -> Go {
        let (reply, rx) = oneshot::channel();
        let msg = Msg::Ready {
            host: self.host.clone(),
            key: key.to_vec(),
            title: title.to_string(),
            loc: loc.to_string(),
            handler,
            run_once,
            reply,
        };
        if self.tx.send(msg).await.is_err() {
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
            match self.runner.templar.eval_bool(&c.expr, &ctx, &c.loc) {
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
        let conn = match self.runner.pool.get(&self.host, vars.map()).await {
            Ok(c) => c,
            Err(e) => return self.unreachable("Gathering Facts", e),
        };
        let become_ = self.become_for(scopes, None, vars.map());
        let subset = self.pctx.play.gather_subset.clone();
        let _permit = self.runner.forks.acquire().await;
        match super::facts::gather(&*conn, &subset, become_.as_ref()).await {
            Ok(facts) => {
                self.runner.with_host(&self.host, |s| s.facts = facts);
                self.report("Gathering Facts", Status::Ok, false, None, Map::new());
                self.runner.stat(&self.host, |s| s.ok += 1);
                Flow::Continue
            }
            Err(e) if e.is_unreachable() => self.unreachable("Gathering Facts", e),
            Err(e) => {
                let mut r = Map::new();
                r.insert("msg".into(), Value::String(format!("fact gathering failed: {e}")));
                let at = self.pctx.play.loc.to_string();
                self.runner
                    .record(&self.host, "Gathering Facts", at, Status::Failed, false, &r);
                self.report("Gathering Facts", Status::Failed, false, None, r);
                self.runner.stat(&self.host, |s| s.failed += 1);
                self.runner.with_host(&self.host, |s| s.failed = true);
                Flow::Failed
            }
        }
    }

    fn unreachable(&self, task: &str, e: ConnError) -> Flow {
        let mut r = Map::new();
        r.insert("changed".into(), Value::Bool(false));
        r.insert("msg".into(), Value::String(e.to_string()));
        r.insert("unreachable".into(), Value::Bool(true));
        let at = self.pctx.play.loc.to_string();
        self.runner.record(&self.host, task, at, Status::Unreachable, false, &r);
        self.report(task, Status::Unreachable, false, None, r);
        self.runner.stat(&self.host, |s| s.unreachable += 1);
        self.runner.with_host(&self.host, |s| s.unreachable = true);
        Flow::Unreachable
    }

    fn report(&self, task: &str, status: Status, ignored: bool, item: Option<Value>, result: Map<String, Value>) {
        self.report_delegated(task, status, ignored, item, None, result)
    }

    fn report_delegated(
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

    fn walk<'a>(&'a self, nodes: &'a [TaskNode], prefix: Vec<u32>, scopes: &'a [Scope]) -> BoxFuture<'a, Flow> {
        Box::pin(async move {
            let mut prefetched_to = 0;
            for (i, node) in nodes.iter().enumerate() {
                if self.runner.opts.check && i >= prefetched_to && matches!(node, TaskNode::Task(_)) {
                    prefetched_to = i + self.prefetch(&nodes[i..], scopes).await;
                }
                let mut key = prefix.clone();
                key.push(i as u32);
                let flow = match node {
                    TaskNode::Task(t) => self.task_node(t, key, scopes).await,
                    TaskNode::Block(b) => self.block(b, key, scopes).await,
                    TaskNode::Include(inc) => self.include(inc, key, scopes).await,
                };
                if flow != Flow::Continue {
                    return flow;
                }
            }
            Flow::Continue
        })
    }

    /// Check mode: learn the file state the next tasks of `nodes` will query
    /// on this host in one command ([`modules::host::prefetch`]); returns how
    /// many nodes the window covered. Nothing changes on a host in check
    /// mode, so the answers hold until a task runs outside check mode (which
    /// drops them, see `run_item`). Arguments that cannot be rendered yet
    /// (they use a later `register`), use lookups (which may have effects),
    /// or name another host are left out: those tasks query for themselves.
    async fn prefetch(&self, nodes: &[TaskNode], scopes: &[Scope]) -> usize {
        const WINDOW: usize = 32;
        let window = &nodes[..nodes.len().min(WINDOW)];
        let vars = self.vars(scopes, None);
        let ctx = self.ctx(&vars);
        let delegated_scope = scopes.iter().any(|s| s.common.delegate_to.is_some());
        let mut needs: Vec<modules::host::prefetch::Need> = Vec::new();
        for node in window {
            let TaskNode::Task(t) = node else { continue };
            if delegated_scope
                || t.loop_.is_some()
                || t.common.delegate_to.is_some()
                || matches!(t.common.check_mode, Some(CheckModeKw::Bool(false)))
                // Its paths would show in the batch's RIGGER_DEBUG_ROUNDTRIPS
                // trace: a no_log task queries for itself, hidden.
                || resolve_bool(scopes, &t.common, |c| c.no_log).unwrap_or(false)
                || !self.tags_match(scopes, &t.common.tags)
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
            for n in modules::host::prefetch::needs(&t.action, &strip_omit(args)) {
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
        let become_ = self.become_for(scopes, None, &conn_vars);
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
        if flow == Flow::Failed && !b.rescue.is_empty() {
            // As Ansible: a rescued failure counts as `rescued`, not `failed`.
            self.runner.stat(&self.host, |s| {
                s.rescued += 1;
                s.failed = s.failed.saturating_sub(1);
            });
            self.runner.with_host(&self.host, |s| s.failed = false);
            let mut k = key.clone();
            k.push(1);
            flow = self.walk(&b.rescue, k, &inner).await;
        }
        if !b.always.is_empty() && matches!(flow, Flow::Continue | Flow::Failed) {
            let failed_before = flow == Flow::Failed;
            // `always` runs even for a failed host.
            self.runner.with_host(&self.host, |s| s.failed = false);
            let mut k = key.clone();
            k.push(2);
            let af = self.walk(&b.always, k, &inner).await;
            if af != Flow::Continue {
                flow = af;
            } else if failed_before {
                self.runner.with_host(&self.host, |s| s.failed = true);
            }
        }
        flow
    }

    async fn include(&self, inc: &Arc<Include>, key: Vec<u32>, scopes: &[Scope]) -> Flow {
        let mut inner: Vec<Scope> = scopes.to_vec();
        // `vars:` on an include are include params (above set_fact), as in Ansible.
        let mut common = inc.common.clone();
        let include_params = std::mem::take(&mut common.vars);
        inner.push(Scope {
            common,
            role: inc.role.clone().or_else(|| scopes.last().and_then(|s| s.role.clone())),
            params: include_params.clone(),
            rendered_params: Map::new(),
        });
        let base_vars = self.vars(&inner, None);
        // Conditions on an include apply to the include itself.
        let ctx = self.ctx(&base_vars);
        for c in &inc.common.when {
            match self.runner.templar.eval_bool(&c.expr, &ctx, &c.loc) {
                Ok(true) => {}
                Ok(false) => return Flow::Continue,
                Err(e) => return self.fail_without_task(&inc.loc, &e.to_string()),
            }
        }
        if !self.tags_match(&inner, &[]) {
            return Flow::Continue;
        }
        let items = match &inc.loop_ {
            Some(spec) => match self.loop_items(spec, &ctx) {
                Ok(items) => items.into_iter().map(Some).collect(),
                Err(e) => return self.fail_without_task(&inc.loc, &e.to_string()),
            },
            None => vec![None],
        };
        let loop_var = inc.loop_control.loop_var.clone().unwrap_or_else(|| "item".into());
        for (idx, item) in items.into_iter().enumerate() {
            // The loop item and the rendered arguments are data.
            let mut params = Map::new();
            if let Some(it) = &item {
                params.insert(loop_var.clone(), it.clone());
                if let Some(iv) = &inc.loop_control.index_var {
                    params.insert(iv.clone(), Value::from(idx));
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
            let lctx = crate::playbook::LoadCtx::default();
            let nodes = match inc.kind {
                IncludeKind::Tasks => {
                    let path = match &inc.role {
                        Some(r) if r.path.join("tasks").join(&target).exists() => r.path.join("tasks").join(&target),
                        _ => crate::playbook::resolve(&inc.dir, &target),
                    };
                    crate::playbook::load_task_file(&path, inc.role.as_ref(), &lctx)
                        .map(|nodes| (nodes, lctx.take_role_handlers()))
                }
                IncludeKind::Role => crate::playbook::load_included_role(
                    &target,
                    inc.tasks_from.as_deref(),
                    &inc.loc,
                    &self.pctx.play.dir,
                    &lctx,
                )
                .map(|(node, handlers)| (vec![node], handlers)),
            };
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
            let mut scoped = inner.clone();
            scoped.push(Scope {
                common: Common::default(),
                role: scoped.last().and_then(|s| s.role.clone()),
                params: include_params.clone(),
                rendered_params: params,
            });
            let mut k = key.clone();
            k.push(idx as u32);
            let flow = self.walk(&nodes, k, &scoped).await;
            if flow != Flow::Continue {
                return flow;
            }
        }
        Flow::Continue
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

    fn fail_without_task(&self, loc: &Loc, msg: &str) -> Flow {
        let mut r = Map::new();
        r.insert("msg".into(), Value::String(format!("{loc}: {msg}")));
        self.report("include", Status::Failed, false, None, r);
        self.runner.stat(&self.host, |s| s.failed += 1);
        self.runner.with_host(&self.host, |s| s.failed = true);
        Flow::Failed
    }

    /// Whether `--tags`/`--skip-tags` select a task with these scopes and own tags.
    fn tags_match(&self, scopes: &[Scope], own: &[String]) -> bool {
        let mut tags: HashSet<&str> = own.iter().map(String::as_str).collect();
        for s in scopes {
            tags.extend(s.common.tags.iter().map(String::as_str));
        }
        let opts = &self.runner.opts;
        if opts.skip_tags.iter().any(|t| {
            tags.contains(t.as_str()) || (t == "tagged" && !tags.is_empty()) || (t == "untagged" && tags.is_empty())
        }) {
            return false;
        }
        if tags.contains("never") && !opts.tags.iter().any(|t| t != "never" && tags.contains(t.as_str())) {
            return false;
        }
        if opts.tags.is_empty() || opts.tags.iter().any(|t| t == "all") {
            return true;
        }
        if tags.contains("always") {
            return true;
        }
        opts.tags.iter().any(|t| {
            tags.contains(t.as_str()) || (t == "tagged" && !tags.is_empty()) || (t == "untagged" && tags.is_empty())
        })
    }

    async fn task_node(&self, t: &Arc<Task>, key: Vec<u32>, scopes: &[Scope]) -> Flow {
        if !self.tags_match(scopes, &t.common.tags) {
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
        let run_once = resolve_bool(scopes, &t.common, |c| c.run_once).unwrap_or(false);
        let go = self.ready(&key, &title, &t.loc, false, run_once).await;
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
                if let (Some(r), Some(reg)) = (res, &t.register) {
                    self.runner.with_host(&self.host, |s| {
                        s.set_facts.insert(reg.clone(), Value::Object(r.clone()));
                    });
                    if r.get("changed").and_then(Value::as_bool).unwrap_or(false) {
                        self.notify(t);
                    }
                }
                Flow::Continue
            }
            Go::Run => {
                let tr = self.run_task(t, scopes).await;
                if run_once {
                    self.runner
                        .run_once_results
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .insert(key.clone(), tr.result.clone());
                }
                self.finish_task(t, &title, tr, scopes, &key).await
            }
        }
    }

    /// Account, register, notify, and apply controller-side effects of a result.
    async fn finish_task(&self, t: &Task, title: &str, tr: TaskResult, scopes: &[Scope], key: &[u32]) -> Flow {
        let TaskResult {
            status,
            result,
            ignored,
        } = tr;
        self.runner
            .record(&self.host, title, t.loc.to_string(), status, ignored, &result);
        let meta = result.get("_meta").and_then(Value::as_str).map(str::to_string);
        if let Some(reg) = &t.register {
            // The registered form of the result: without the internal keys.
            let mut registered = result;
            registered.retain(|k, _| !is_internal(k));
            self.runner.with_host(&self.host, |s| {
                s.set_facts.insert(reg.clone(), Value::Object(registered));
            });
        }
        match status {
            Status::Ok => self.runner.stat(&self.host, |s| s.ok += 1),
            Status::Changed => {
                self.runner.stat(&self.host, |s| {
                    s.ok += 1;
                    s.changed += 1
                });
                self.notify(t);
            }
            Status::Skipped => self.runner.stat(&self.host, |s| s.skipped += 1),
            Status::Failed if ignored => self.runner.stat(&self.host, |s| s.ignored += 1),
            Status::Failed => {
                self.runner.stat(&self.host, |s| s.failed += 1);
                self.runner.with_host(&self.host, |s| s.failed = true);
                return Flow::Failed;
            }
            Status::Unreachable if ignored => self.runner.stat(&self.host, |s| s.ignored += 1),
            Status::Unreachable => {
                self.runner.stat(&self.host, |s| s.unreachable += 1);
                self.runner.with_host(&self.host, |s| s.unreachable = true);
                return Flow::Unreachable;
            }
        }
        // meta actions.
        if let Some(action) = meta {
            match action.as_str() {
                "flush_handlers" => return self.flush_handlers(key.to_vec(), scopes).await,
                "end_play" => return Flow::EndPlay,
                "end_host" | "end_batch" => return Flow::EndHost,
                "clear_facts" => self.runner.with_host(&self.host, |s| {
                    s.facts.clear();
                    s.module_facts.clear();
                }),
                "clear_host_errors" => self.runner.with_host(&self.host, |s| s.failed = false),
                _ => {}
            }
        }
        Flow::Continue
    }

    fn notify(&self, t: &Task) {
        if t.notify.is_empty() {
            return;
        }
        self.runner.with_host(&self.host, |s| {
            for n in &t.notify {
                s.notified.insert(n.clone());
            }
        });
    }

    /// Run notified handlers in definition order; each is a coordinated step.
    fn flush_handlers<'a>(&'a self, key: Vec<u32>, scopes: &'a [Scope]) -> BoxFuture<'a, Flow> {
        Box::pin(self.flush_handlers_inner(key, scopes))
    }

    async fn flush_handlers_inner(&self, key: Vec<u32>, scopes: &[Scope]) -> Flow {
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
            let tr = self.run_task(h, scopes).await;
            let flow = self.finish_task(h, &full, tr, scopes, &k).await;
            if flow != Flow::Continue {
                return flow;
            }
        }
        // Clear only after running, so a handler's own notifications chain.
        self.runner.with_host(&self.host, |s| s.notified.clear());
        Flow::Continue
    }

    /// Variables for a task on this host, in Ansible's precedence order.
    /// Source layers (playbook, roles, inventory, files, `-e`) hold
    /// templates; data layers (facts, registered and `set_fact` values,
    /// rendered include parameters) are never rendered (see [`super::vars`]).
    fn vars(&self, scopes: &[Scope], task: Option<&Task>) -> Vars {
        let r = &self.runner;
        let mut m = VarsBuilder::new();
        let mut seen_roles: Vec<*const RoleCtx> = Vec::new();
        let roles: Vec<&Arc<RoleCtx>> = scopes
            .iter()
            .filter_map(|s| s.role.as_ref())
            .chain(task.and_then(|t| t.role.as_ref()))
            .filter(|role| {
                let p = Arc::as_ptr(role);
                if seen_roles.contains(&p) {
                    false
                } else {
                    seen_roles.push(p);
                    true
                }
            })
            .collect();
        for role in &roles {
            m.source(&role.defaults);
        }
        let inv = r.inv();
        m.source_owned(inv.host_vars(&self.host));
        m.data_owned(inv.host_runtime_vars(&self.host));
        let group_names = inv.group_names(&self.host);
        drop(inv);
        r.with_host(&self.host, |s| add_facts(&mut m, &s.facts, &s.module_facts));
        m.source(&self.pctx.vars);
        for role in &roles {
            m.source(&role.vars);
        }
        for s in scopes {
            m.source(&s.common.vars);
        }
        if let Some(t) = task {
            m.source(&t.common.vars);
        }
        r.with_host(&self.host, |s| {
            m.source(&s.include_vars);
            m.data(&s.set_facts);
        });
        for role in &roles {
            m.source(&role.params);
        }
        for s in scopes {
            m.source(&s.params);
            m.data(&s.rendered_params);
        }
        m.source(&r.opts.extra_vars);
        // Magic variables.
        let host = Value::String(self.host.clone());
        m.data_one("inventory_hostname".into(), host.clone());
        m.data_one(
            "inventory_hostname_short".into(),
            Value::String(self.host.split('.').next().unwrap_or(&self.host).to_string()),
        );
        m.data_one(
            "group_names".into(),
            Value::Array(group_names.into_iter().map(Value::String).collect()),
        );
        m.data_one("ansible_play_name".into(), Value::String(self.pctx.play.name.clone()));
        m.data_one("playbook_dir".into(), Value::String(abs(&self.pctx.play.dir)));
        m.data_one("ansible_check_mode".into(), Value::Bool(r.opts.check));
        m.data_one("ansible_diff_mode".into(), Value::Bool(r.opts.diff));
        m.data_one(
            "ansible_run_tags".into(),
            Value::Array(r.opts.tags.iter().cloned().map(Value::String).collect()),
        );
        m.data_one(
            "ansible_skip_tags".into(),
            Value::Array(r.opts.skip_tags.iter().cloned().map(Value::String).collect()),
        );
        m.data_one("omit".into(), Value::String(omit().to_string()));
        if let Some(role) = roles.last() {
            m.data_one("role_path".into(), Value::String(abs(&role.path)));
            m.data_one("role_name".into(), Value::String(role.name.clone()));
        }
        let mut paths: Vec<PathBuf> = Vec::new();
        if let Some(role) = roles.last() {
            paths.push(role.path.clone());
        }
        if let Some(t) = task {
            paths.push(t.dir.clone());
        }
        paths.push(self.pctx.play.dir.clone());
        m.data_one(
            Templar::search_paths_var().into(),
            crate::template::search_paths(&paths),
        );
        m.resolve(&r.templar, || self.overlay())
    }

    /// What wins over variables in a template context: the play's magic
    /// variables and `hostvars`.
    fn overlay(&self) -> minijinja::Value {
        let hv = minijinja::Value::from_object(HostVarsObj {
            runner: Arc::downgrade(&self.runner),
        });
        minijinja::value::merge_maps([self.magic(), minijinja::context! { hostvars => hv }])
    }

    /// `vars` with a data layer (loop item, include parameters) over them.
    fn with_data(&self, vars: &Vars, layer: Map<String, Value>) -> Vars {
        vars.with_data(layer, &self.runner.templar, || self.overlay())
    }

    /// The play-wide magic variables (see [`PlayMagic`]), from the cache
    /// unless the inventory changed or another host dropped out.
    fn magic(&self) -> minijinja::Value {
        let r = &self.runner;
        let generation = r.inv_generation.load(Ordering::SeqCst);
        let dropped: Vec<String> = {
            let states = r.hosts.lock().unwrap_or_else(|p| p.into_inner());
            self.pctx
                .all_hosts
                .iter()
                .filter(|h| states.get(*h).is_some_and(|s| s.failed || s.unreachable))
                .cloned()
                .collect()
        };
        let mut cache = self.pctx.magic.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(c) = cache.as_ref() {
            if c.inv_generation == generation && c.dropped == dropped {
                return c.value.clone();
            }
        }
        let names = |hosts: &mut dyn Iterator<Item = &String>| -> minijinja::Value {
            hosts.map(|h| minijinja::Value::from(h.as_str())).collect()
        };
        // Failed and unreachable hosts are not active: they leave every
        // list but `ansible_play_hosts_all`. `play_hosts` is Ansible's old
        // name of `ansible_play_batch` (the serial batch), not of the play's.
        let active = names(&mut self.pctx.all_hosts.iter().filter(|h| !dropped.contains(*h)));
        let batch = names(&mut self.pctx.batch.iter().filter(|h| !dropped.contains(*h)));
        let value = minijinja::context! {
            groups => mj(&r.inv().groups_map()),
            ansible_play_hosts_all => names(&mut self.pctx.all_hosts.iter()),
            ansible_play_hosts => active,
            play_hosts => batch.clone(),
            ansible_play_batch => batch,
        };
        *cache = Some(PlayMagic {
            inv_generation: generation,
            dropped,
            value: value.clone(),
        });
        value
    }

    /// The template context: variables plus lazily computed `hostvars`.
    fn ctx(&self, vars: &Vars) -> minijinja::Value {
        self.over_vars(vars.context())
    }

    /// `base` (variables) under the play's magic variables and `hostvars`.
    fn over_vars(&self, base: minijinja::Value) -> minijinja::Value {
        // The last map wins: hostvars, then the magic lists, then variables.
        minijinja::value::merge_maps([base, self.overlay()])
    }

    fn become_for(&self, scopes: &[Scope], task: Option<&Common>, vars: &Map<String, Value>) -> Option<Become> {
        let opts = &self.runner.opts;
        let pick = |f: &dyn Fn(&Common) -> Option<String>| -> Option<String> {
            task.and_then(f)
                .or_else(|| scopes.iter().rev().find_map(|s| f(&s.common)))
        };
        let on = task
            .and_then(|c| c.become_)
            .or_else(|| scopes.iter().rev().find_map(|s| s.common.become_))
            .or(opts.become_)
            .or_else(|| vars.get("ansible_become").map(truthy))
            .unwrap_or(false);
        if !on {
            return None;
        }
        let user = pick(&|c: &Common| c.become_user.clone())
            .or_else(|| opts.become_user.clone())
            .or_else(|| var_str(vars, "ansible_become_user"))
            .unwrap_or_else(|| "root".into());
        let method = pick(&|c: &Common| c.become_method.clone())
            .or_else(|| opts.become_method.clone())
            .or_else(|| var_str(vars, "ansible_become_method"))
            .unwrap_or_else(|| "sudo".into());
        let password = var_str(vars, "ansible_become_password")
            .or_else(|| var_str(vars, "ansible_become_pass"))
            .or_else(|| opts.become_password.clone());
        Some(Become {
            method: method.parse().unwrap_or(BecomeMethod::Sudo),
            user,
            password,
        })
    }

    fn environment(
        &self,
        scopes: &[Scope],
        task: &Task,
        ctx: &minijinja::Value,
    ) -> Result<Vec<(String, String)>, LocError> {
        let mut env: Vec<(String, String)> = Vec::new();
        for e in scopes
            .iter()
            .flat_map(|s| s.common.environment.iter())
            .chain(task.common.environment.iter())
        {
            let v = self.runner.templar.render_value(e, ctx, &task.loc)?;
            let Value::Object(m) = v else {
                return Err(LocError::new(
                    task.loc.clone(),
                    "environment must be a mapping of names to values",
                ));
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

    fn loop_items(&self, spec: &LoopSpec, ctx: &minijinja::Value) -> Result<Vec<Value>, LocError> {
        match spec {
            LoopSpec::Items { value, flatten, loc } => {
                let v = self.runner.templar.render_value(value, ctx, loc)?;
                let items = match v {
                    Value::Array(a) => a,
                    Value::Null => Vec::new(),
                    Value::String(s) if !*flatten => {
                        return Err(
                            LocError::new(loc.clone(), format!("loop needs a list, got the string `{s}`"))
                                .with_hint("use `loop: \"{{ var }}\"` with a list variable"),
                        )
                    }
                    other => vec![other],
                };
                if *flatten {
                    let mut out = Vec::new();
                    for i in items {
                        match i {
                            Value::Array(inner) => out.extend(inner),
                            other => out.push(other),
                        }
                    }
                    Ok(out)
                } else {
                    Ok(items)
                }
            }
            LoopSpec::Dict { value, loc } => match self.runner.templar.render_value(value, ctx, loc)? {
                Value::Object(m) => Ok(m
                    .into_iter()
                    .map(|(k, v)| serde_json::json!({"key": k, "value": v}))
                    .collect()),
                _ => Err(LocError::new(loc.clone(), "with_dict needs a mapping")),
            },
            LoopSpec::Fileglob { value, loc } => {
                let v = self.runner.templar.render_value(value, ctx, loc)?;
                let pats: Vec<String> = match v {
                    Value::Array(a) => a.into_iter().filter_map(|x| x.as_str().map(str::to_string)).collect(),
                    Value::String(s) => vec![s],
                    _ => Vec::new(),
                };
                let mut out = Vec::new();
                for p in pats {
                    let full = if p.starts_with('/') {
                        p
                    } else {
                        format!("{}/files/{p}", self.pctx.play.dir.display())
                    };
                    if let Ok(paths) = glob::glob(&full) {
                        for path in paths.flatten() {
                            if path.is_file() {
                                out.push(Value::String(path.display().to_string()));
                            }
                        }
                    }
                }
                Ok(out)
            }
            LoopSpec::Sequence { spec, loc } => sequence(spec).map_err(|m| LocError::new(loc.clone(), m)),
        }
    }

    /// Run a task on this host: loop, conditions, module, retries.
    async fn run_task(&self, t: &Task, scopes: &[Scope]) -> TaskResult {
        let vars = self.vars(scopes, Some(t));
        self.runner.out.secrets().add_from_vars(vars.map());
        let no_log = resolve_bool(scopes, &t.common, |c| c.no_log).unwrap_or(false);
        let ignore_errors = resolve_bool(scopes, &t.common, |c| c.ignore_errors).unwrap_or(false);
        let ignore_unreachable =
            resolve_bool(scopes, &t.common, |c| c.ignore_unreachable).unwrap_or(self.pctx.play.ignore_unreachable);
        let title = t.display_name();
        let label_of = |item: &Value, vars: &Vars| -> Value {
            match &t.loop_control.label {
                Some(l) => {
                    let c = self.ctx(vars);
                    self.runner
                        .templar
                        .render_str(l, &c, &t.loc)
                        .unwrap_or_else(|_| item.clone())
                }
                None => item.clone(),
            }
        };
        let Some(spec) = &t.loop_ else {
            let mut r = self.run_item(t, scopes, vars, no_log).await;
            mark_no_log(&mut r.result, no_log);
            r.ignored =
                r.status == Status::Failed && ignore_errors || r.status == Status::Unreachable && ignore_unreachable;
            let shown = if no_log { censor(&r.result) } else { r.result.clone() };
            let delegated = r
                .result
                .get("_delegated_to")
                .and_then(Value::as_str)
                .map(str::to_string);
            self.report_delegated(&title, r.status, r.ignored, None, delegated, shown);
            return r;
        };
        // Only a loop needs the context here (run_item builds its own): a
        // task without one converts its variables once, not twice.
        let ctx = self.ctx(&vars);
        let items = match self.loop_items(spec, &ctx) {
            Ok(i) => i,
            Err(e) => {
                let mut r = Map::new();
                r.insert("msg".into(), Value::String(e.to_string()));
                r.insert("failed".into(), Value::Bool(true));
                self.report(&title, Status::Failed, ignore_errors, None, r.clone());
                return TaskResult {
                    status: Status::Failed,
                    result: r,
                    ignored: ignore_errors,
                };
            }
        };
        drop(ctx);
        let loop_var = t.loop_control.loop_var.clone().unwrap_or_else(|| "item".into());
        let mut results = Vec::new();
        let (mut any_changed, mut any_failed, mut all_skipped, mut unreachable) = (false, false, true, false);
        let n = items.len();
        for (idx, item) in items.into_iter().enumerate() {
            if INTERRUPTED.load(Ordering::SeqCst) {
                break;
            }
            let mut layer = Map::new();
            layer.insert(loop_var.clone(), item.clone());
            if let Some(iv) = &t.loop_control.index_var {
                layer.insert(iv.clone(), Value::from(idx));
            }
            if t.loop_control.extended {
                layer.insert(
                    "ansible_loop".into(),
                    serde_json::json!({"index": idx + 1, "index0": idx, "first": idx == 0, "last": idx + 1 == n, "length": n,
                        "revindex": n - idx, "revindex0": n - idx - 1}),
                );
            }
            let ivars = self.with_data(&vars, layer);
            // no_log hides the item too (Ansible shows `item=None`).
            let label = if no_log { Value::Null } else { label_of(&item, &ivars) };
            let mut r = self.run_item(t, scopes, ivars, no_log).await;
            mark_no_log(&mut r.result, no_log);
            r.result.insert(loop_var.clone(), item.clone());
            r.result
                .insert("ansible_loop_var".into(), Value::String(loop_var.clone()));
            let shown = if no_log { censor(&r.result) } else { r.result.clone() };
            let delegated = r
                .result
                .get("_delegated_to")
                .and_then(Value::as_str)
                .map(str::to_string);
            self.report_delegated(&title, r.status, false, Some(label), delegated, shown);
            match r.status {
                Status::Changed => any_changed = true,
                Status::Failed => any_failed = true,
                Status::Unreachable => unreachable = true,
                _ => {}
            }
            if r.status != Status::Skipped {
                all_skipped = false;
            }
            results.push(Value::Object(r.result));
            if unreachable {
                break;
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
        let ignored = status == Status::Failed && ignore_errors || status == Status::Unreachable && ignore_unreachable;
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
        let fail = |msg: String| {
            let mut r = Map::new();
            r.insert("failed".into(), Value::Bool(true));
            r.insert("msg".into(), Value::String(msg));
            TaskResult {
                status: Status::Failed,
                result: r,
                ignored: false,
            }
        };
        // Conditions from enclosing blocks/roles/includes, then the task's own.
        for c in scopes
            .iter()
            .flat_map(|s| s.common.when.iter())
            .chain(t.common.when.iter())
        {
            match self.runner.templar.eval_bool(&c.expr, &ctx, &c.loc) {
                Ok(true) => {}
                Ok(false) => {
                    let mut r = Map::new();
                    r.insert("changed".into(), Value::Bool(false));
                    r.insert(
                        "skip_reason".into(),
                        Value::String("Conditional result was False".into()),
                    );
                    r.insert("false_condition".into(), Value::String(c.expr.clone()));
                    r.insert("skipped".into(), Value::Bool(true));
                    return TaskResult {
                        status: Status::Skipped,
                        result: r,
                        ignored: false,
                    };
                }
                Err(e) => return fail(format!("The conditional check '{}' failed: {}", c.expr, e)),
            }
        }
        let Some(module) = modules::registry::lookup(&t.action) else {
            return fail(format!("unknown module `{}`", t.action));
        };
        let doc = module.doc();
        let args = match render_args(&self.runner.templar, doc, t.args.to_json(), &ctx, &t.loc) {
            Ok(Value::Object(m)) => strip_omit(m),
            Ok(_) => return fail("module arguments must be a mapping".into()),
            Err(e) => return fail(e.to_string()),
        };
        let env = match self.environment(scopes, t, &ctx) {
            Ok(e) => e,
            Err(e) => return fail(e.to_string()),
        };
        let check = match t
            .common
            .check_mode
            .as_ref()
            .or_else(|| scopes.iter().rev().find_map(|s| s.common.check_mode.as_ref()))
        {
            Some(CheckModeKw::Bool(b)) => *b,
            None => self.runner.opts.check,
        };
        // A task outside check mode during a check may change what the
        // prefetched state of every host says.
        let forget_prefetch = self.runner.opts.check && !check;
        if forget_prefetch {
            self.runner.pool.forget_prefetched();
        }
        let diff = t
            .common
            .diff
            .or_else(|| scopes.iter().rev().find_map(|s| s.common.diff))
            .unwrap_or(self.runner.opts.diff);
        // delegate_to: run on another host's connection, with this host's variables.
        let delegate = match t
            .common
            .delegate_to
            .as_ref()
            .or_else(|| scopes.iter().rev().find_map(|s| s.common.delegate_to.as_ref()))
        {
            Some(d) => match self.runner.templar.render_str(d, &ctx, &t.loc) {
                Ok(Value::String(s)) => Some(s),
                Ok(other) => Some(other.to_string()),
                Err(e) => return fail(e.to_string()),
            },
            None => None,
        };
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
        drop(vars);
        let become_ = self.become_for(scopes, Some(&t.common), &conn_vars);
        let conn: Arc<dyn crate::connection::Connection> = if doc.controller_only {
            Arc::new(crate::connection::local::LocalConnection::new("localhost"))
        } else {
            match self.runner.pool.get(&conn_host, &conn_vars).await {
                Ok(c) => c,
                Err(e) => {
                    let mut r = Map::new();
                    r.insert("changed".into(), Value::Bool(false));
                    r.insert("msg".into(), Value::String(e.to_string()));
                    r.insert("unreachable".into(), Value::Bool(true));
                    return TaskResult {
                        status: Status::Unreachable,
                        result: r,
                        ignored: false,
                    };
                }
            }
        };
        let search_paths: Vec<PathBuf> = {
            let mut p = Vec::new();
            if let Some(r) = t
                .role
                .as_ref()
                .or_else(|| scopes.iter().rev().find_map(|s| s.role.as_ref()))
            {
                p.push(r.path.clone());
            }
            p.push(t.dir.clone());
            p.push(self.pctx.play.dir.clone());
            p
        };
        let retries = match &t.retries {
            Some(v) => value_u64(v, &ctx, &self.runner.templar, &t.loc).unwrap_or(3),
            None if t.until.is_some() => 3,
            None => 0,
        };
        let delay = match &t.delay {
            Some(v) => value_u64(v, &ctx, &self.runner.templar, &t.loc).unwrap_or(5),
            None => 5,
        };
        let mut attempt = 0u64;
        loop {
            attempt += 1;
            let mctx = ModuleCtx {
                conn: &*conn,
                host: &self.host,
                check_mode: check,
                diff_mode: diff,
                become_: become_.as_ref(),
                env: &env,
                templar: &self.runner.templar,
                vars: &ctx,
                search_paths: &search_paths,
                loc: &t.loc,
                max_output: self.runner.opts.max_output,
            };
            let outcome = {
                let _permit = if doc.controller_only {
                    None
                } else {
                    self.runner.forks.acquire().await.ok()
                };
                // The file modules need the login user's umask and ids for
                // what they create: learnt without `id` where the transport
                // can (once per connection; see Connection::login_user).
                if become_.is_none() && USER_MODULES.contains(&doc.name) {
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
                };
                let fut = crate::connection::TRACE_SCOPE.scope(
                    trace,
                    modules::RECONNECT.scope(reconnect, module.run(&mctx, args.clone())),
                );
                match self.runner.opts.task_timeout {
                    Some(d) => match tokio::time::timeout(d, fut).await {
                        Ok(r) => r,
                        Err(_) => Err(ModuleError::Failed(format!(
                            "the task timed out after {}s",
                            d.as_secs()
                        ))),
                    },
                    None => fut.await,
                }
            };
            if forget_prefetch {
                self.runner.pool.forget_prefetched();
            }
            if outcome
                .as_ref()
                .map_or(true, |o| (o.changed || o.failed) && may_change_users(doc.name, &o.ret))
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
            let mut tr = match outcome {
                Ok(o) => self.outcome_to_result(o, t, doc.name == "debug", diff),
                Err(ModuleError::Conn(e)) if e.is_unreachable() => {
                    self.runner.pool.reset(&conn_host);
                    let mut r = Map::new();
                    r.insert("changed".into(), Value::Bool(false));
                    r.insert("msg".into(), Value::String(e.to_string()));
                    r.insert("unreachable".into(), Value::Bool(true));
                    return TaskResult {
                        status: Status::Unreachable,
                        result: r,
                        ignored: false,
                    };
                }
                Err(e) => fail(e.to_string()),
            };
            if let Some(d) = &delegate {
                tr.result.insert("_delegated_to".into(), Value::String(d.clone()));
            }
            if no_log {
                tr.result.insert("_ansible_no_log".into(), Value::Bool(true));
            }
            // changed_when / failed_when see the result under the register name.
            if !t.changed_when.is_empty() || !t.failed_when.is_empty() || t.until.is_some() {
                // Ansible also exposes the result's keys (`rc`, `stdout`)
                // directly here, below the variables; the register name is
                // above them (the play's magic variables above all, as in
                // every context).
                let reg = mj(&strip_internal(&tr.result));
                let registered =
                    minijinja::Value::from_pairs(t.register.iter().map(|name| (name.as_str(), reg.clone())));
                let c2 = self.over_vars(minijinja::value::merge_maps([reg, ctx.clone(), registered]));
                if !t.changed_when.is_empty() && tr.status != Status::Skipped {
                    match all_true(&self.runner.templar, &t.changed_when, &c2) {
                        Ok(ch) => {
                            tr.result.insert("changed".into(), Value::Bool(ch));
                            if tr.status != Status::Failed {
                                tr.status = if ch { Status::Changed } else { Status::Ok };
                            }
                        }
                        Err(e) => return fail(e.to_string()),
                    }
                }
                if !t.failed_when.is_empty() && tr.status != Status::Skipped {
                    match any_true(&self.runner.templar, &t.failed_when, &c2) {
                        Ok(f) => {
                            tr.result.insert("failed_when_result".into(), Value::Bool(f));
                            if f {
                                tr.result.insert("failed".into(), Value::Bool(true));
                                tr.status = Status::Failed;
                            } else {
                                tr.result.remove("failed");
                                let ch = tr.result.get("changed").and_then(Value::as_bool).unwrap_or(false);
                                tr.status = if ch { Status::Changed } else { Status::Ok };
                            }
                        }
                        Err(e) => return fail(e.to_string()),
                    }
                }
                if let Some(u) = &t.until {
                    match self.runner.templar.eval_bool(&u.expr, &c2, &u.loc) {
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
                        Err(e) => return fail(e.to_string()),
                    }
                }
            }
            return tr;
        }
    }

    /// Shape a module outcome as Ansible's result dict and apply controller effects.
    fn outcome_to_result(&self, o: ModuleOutcome, t: &Task, is_debug: bool, diff: bool) -> TaskResult {
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
                effect => {
                    if let Some(Value::Object(facts)) = r.get("ansible_facts") {
                        let facts = clean_facts(facts);
                        self.runner.with_host(&self.host, |s| s.module_facts.extend(facts));
                    }
                    match effect {
                        Some(ControllerEffect::AddHost { name, groups, vars }) => {
                            self.runner.change_inv(|inv| inv.add_host(&name, &groups, vars)).err()
                        }
                        Some(ControllerEffect::JoinGroup(group)) => self
                            .runner
                            .change_inv(|inv| inv.add_host(&self.host, &[group], Map::new()))
                            .err(),
                        _ => None,
                    }
                }
            };
            if let Some(e) = effect_error {
                return TaskResult {
                    status: Status::Failed,
                    result: error_result(e.to_string()),
                    ignored: false,
                };
            }
        }
        let _ = t;
        let status = if o.failed {
            Status::Failed
        } else if o.skipped {
            Status::Skipped
        } else if o.changed {
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
}

fn error_result(msg: String) -> Map<String, Value> {
    let mut r = Map::new();
    r.insert("failed".into(), Value::Bool(true));
    r.insert("msg".into(), Value::String(msg));
    r
}

fn resolve_bool(scopes: &[Scope], task: &Common, f: impl Fn(&Common) -> Option<bool>) -> Option<bool> {
    f(task).or_else(|| scopes.iter().rev().find_map(|s| f(&s.common)))
}

fn all_true(templar: &Templar, conds: &[Cond], ctx: &minijinja::Value) -> Result<bool, LocError> {
    for c in conds {
        if !templar.eval_bool(&c.expr, ctx, &c.loc)? {
            return Ok(false);
        }
    }
    Ok(true)
}

fn any_true(templar: &Templar, conds: &[Cond], ctx: &minijinja::Value) -> Result<bool, LocError> {
    for c in conds {
        if templar.eval_bool(&c.expr, ctx, &c.loc)? {
            return Ok(true);
        }
    }
    Ok(false)
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
    ctx: &minijinja::Value,
    loc: &Loc,
) -> Result<Value, LocError> {
    let Value::Object(mut m) = raw else {
        return templar.render_value(&raw, ctx, loc);
    };
    let mut exprs = Map::new();
    for o in doc.options.iter().filter(|o| o.kind == modules::OptKind::Expr) {
        for name in std::iter::once(o.name).chain(o.aliases.iter().copied()) {
            if let Some(v) = m.remove(name) {
                exprs.insert(name.to_string(), v);
            }
        }
    }
    match templar.render_value(&Value::Object(m), ctx, loc)? {
        Value::Object(mut rendered) => {
            rendered.extend(exprs);
            Ok(Value::Object(rendered))
        }
        other => Ok(other),
    }
}

/// Remove arguments whose value is `{{ omit }}`.
fn strip_omit(m: Map<String, Value>) -> Map<String, Value> {
    m.into_iter().filter(|(_, v)| v.as_str() != Some(omit())).collect()
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

fn strip_results(m: &Map<String, Value>) -> Map<String, Value> {
    let mut out = m.clone();
    out.remove("results");
    out
}

/// Mark a `no_log` task's result (every one: loop items, their aggregate, and
/// failures before the module ran), so that every consumer (renderer, check
/// report) can tell it must not show it.
fn mark_no_log(m: &mut Map<String, Value>, no_log: bool) {
    if no_log {
        m.insert("_ansible_no_log".into(), Value::Bool(true));
    }
}

/// What `no_log` shows.
fn censor(m: &Map<String, Value>) -> Map<String, Value> {
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

fn abs(p: &std::path::Path) -> String {
    std::fs::canonicalize(p)
        .unwrap_or_else(|_| p.to_path_buf())
        .display()
        .to_string()
}

/// `with_sequence: start=1 end=5 stride=1 format=web%02d` (or `count=`).
fn sequence(spec: &str) -> Result<Vec<Value>, String> {
    let mut start = 1i64;
    let mut end: Option<i64> = None;
    let mut stride = 1i64;
    let mut format: Option<String> = None;
    for w in spec.split_whitespace() {
        let (k, v) = w
            .split_once('=')
            .ok_or_else(|| format!("with_sequence: expected key=value, got `{w}`"))?;
        let num = || {
            v.parse::<i64>()
                .map_err(|_| format!("with_sequence: `{k}` must be a number"))
        };
        match k {
            "start" => start = num()?,
            "end" => end = Some(num()?),
            "count" => end = Some(start + num()? - 1),
            "stride" => stride = num()?,
            "format" => format = Some(v.to_string()),
            _ => return Err(format!("with_sequence: unknown option `{k}`")),
        }
    }
    let end = end.ok_or("with_sequence needs `end` or `count`")?;
    if stride == 0 {
        return Err("with_sequence: stride must not be 0".into());
    }
    let mut out = Vec::new();
    let mut i = start;
    while (stride > 0 && i <= end) || (stride < 0 && i >= end) {
        out.push(Value::String(match &format {
            Some(f) => printf_int(f, i),
            None => i.to_string(),
        }));
        i += stride;
    }
    Ok(out)
}

fn printf_int(fmt: &str, v: i64) -> String {
    let re = regex::Regex::new(r"%(0?)(\d*)d").ok();
    match re.and_then(|re| {
        re.captures(fmt)
            .map(|c| (c.get(0).map(|m| m.range()), c[1].to_string(), c[2].to_string()))
    }) {
        Some((Some(range), zero, width)) => {
            let w: usize = width.parse().unwrap_or(0);
            let num = if zero == "0" {
                format!("{v:0w$}")
            } else {
                format!("{v:w$}")
            };
            format!("{}{}{}", &fmt[..range.start], num, &fmt[range.end..])
        }
        _ => fmt.to_string(),
    }
}

/// Modules that ask for the login user (umask, ids) when they create files.
const USER_MODULES: &[&str] = &[
    "file",
    "copy",
    "template",
    "lineinfile",
    "blockinfile",
    "replace",
    "assemble",
];

/// Whether a task that changed something may have changed the remote users
/// or groups (so the connection's [`crate::connection::Memo`] of `id` is
/// stale): any module but the file-content ones, and those too when they
/// wrote a user or group database or the configuration naming users.
fn may_change_users(module: &str, result: &Map<String, Value>) -> bool {
    const OTHER_FILE_MODULES: &[&str] = &["tempfile", "archive", "unarchive", "fetch", "stat"];
    if !USER_MODULES.contains(&module) && !OTHER_FILE_MODULES.contains(&module) {
        return true;
    }
    let path = ["dest", "path"]
        .iter()
        .find_map(|k| result.get(*k).and_then(Value::as_str))
        .unwrap_or("/");
    ["passwd", "group", "shadow", "nsswitch", "sssd", "login.defs", "ldap"]
        .iter()
        .any(|w| path.contains(w))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn only_user_changing_tasks_forget_the_remote_user() {
        let ret = |k: &str, v: &str| {
            let mut m = Map::new();
            m.insert(k.into(), Value::String(v.into()));
            m
        };
        assert!(!may_change_users("copy", &ret("dest", "/srv/app/app.conf")));
        assert!(!may_change_users("file", &ret("path", "/srv/app")));
        assert!(may_change_users("lineinfile", &ret("path", "/etc/group")));
        assert!(may_change_users("template", &ret("dest", "/etc/nsswitch.conf")));
        assert!(may_change_users("user", &ret("name", "deploy")));
        assert!(may_change_users("command", &Map::new()));
    }

    #[test]
    fn serial_batches() {
        let hosts: Vec<String> = (1..=5).map(|i| format!("h{i}")).collect();
        let b = batches(&hosts, &[Serial::Count(1), Serial::Count(2)]);
        assert_eq!(b.iter().map(Vec::len).collect::<Vec<_>>(), vec![1, 2, 2]);
        let b = batches(&hosts, &[Serial::Percent(40.0)]);
        assert_eq!(b.iter().map(Vec::len).collect::<Vec<_>>(), vec![2, 2, 1]);
        assert_eq!(batches(&hosts, &[]).len(), 1);
    }

    #[test]
    fn sequences() {
        assert_eq!(
            sequence("start=1 end=3").unwrap(),
            vec![Value::from("1"), Value::from("2"), Value::from("3")]
        );
        assert_eq!(
            sequence("count=2 format=web%02d").unwrap(),
            vec![Value::from("web01"), Value::from("web02")]
        );
        assert!(sequence("start=1").is_err());
    }

    /// A kept task record holds what the check report reads, not the
    /// command's output (a check run keeps every task of every host).
    #[test]
    fn task_records_keep_the_report_not_the_output() {
        let big = "x".repeat(100_000);
        let item = json!({"changed": true, "diff": [{"before": "a", "after": "b"}], "stdout": big, "item": 1});
        let result = json!({
            "changed": true, "msg": "m", "stdout": big, "stdout_lines": [big], "rc": 0,
            "diff": {"before": "1", "after": "2"}, "_ansible_no_log": false, "results": [item],
        });
        let Value::Object(result) = result else { unreachable!() };
        let kept = record_view(&result);
        assert_eq!(
            Value::Object(kept),
            json!({"msg": "m", "changed": true, "diff": {"before": "1", "after": "2"}, "_ansible_no_log": false,
                   "results": [{"changed": true, "diff": [{"before": "a", "after": "b"}]}]})
        );
    }
}
