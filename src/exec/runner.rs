//! The run's shared state: its options ([`RunOptions`]), what each host
//! carries from task to task (`HostState`), what the run reports at the
//! end ([`RunSummary`], [`TaskRecord`]), and the [`Runner`] that every layer
//! of the executor holds. The layers themselves are the sibling files
//! listed in [`super`]; this file knows none of them.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use serde_json::{Map, Value};
use tokio::sync::Semaphore;

use super::conn_pool::{ConnDefaults, ConnPool};
use crate::error::LocError;
use crate::inventory::Inventory;
use crate::output::{HostStats, Renderer, Status};
use crate::template::Templar;

/// Set by the Ctrl-C and SIGTERM handlers ([`interrupt`]): start no new task.
pub static INTERRUPTED: AtomicBool = AtomicBool::new(false);

/// The signal that interrupted the run (0: none yet); the first one wins.
static INTERRUPT_SIGNAL: AtomicI32 = AtomicI32::new(0);

/// The run was interrupted by `signal` (SIGINT or SIGTERM): running tasks
/// finish, no new one starts, the recap is printed and the exit code is
/// [`interrupted_exit_code`]'s. Returns false when
/// the run had already been interrupted (a second signal aborts at once).
pub fn interrupt(signal: i32) -> bool {
    let _ = INTERRUPT_SIGNAL.compare_exchange(0, signal, Ordering::SeqCst, Ordering::SeqCst);
    !INTERRUPTED.swap(true, Ordering::SeqCst)
}

/// [`INTERRUPT_SIGNAL`]'s value when the run's own time ran out (`--run-timeout`).
const RUN_TIMEOUT: i32 = -1;

/// The exit code of a run stopped by Ctrl-C (Ansible's `KEYBOARD_INTERRUPT`).
pub const KEYBOARD_INTERRUPT_EXIT_CODE: i32 = 99;

/// The exit code of a run stopped by `--run-timeout` (as `timeout(1)`'s).
pub const RUN_TIMEOUT_EXIT_CODE: i32 = 124;

/// The whole run's limit (`--run-timeout`) and when it ends, once set.
static RUN_DEADLINE: std::sync::OnceLock<(tokio::time::Instant, Duration)> = std::sync::OnceLock::new();

/// Start the whole run's clock (`--run-timeout`): when `limit` has passed,
/// no new task starts and the tasks still running fail as timed out
/// ([`run_deadline`]), the recap is printed and the exit code is
/// [`RUN_TIMEOUT_EXIT_CODE`]. Call once, from within the runtime.
pub fn start_run_timeout(limit: Duration) {
    let deadline = tokio::time::Instant::now() + limit;
    if RUN_DEADLINE.set((deadline, limit)).is_err() {
        return;
    }
    tokio::spawn(async move {
        tokio::time::sleep_until(deadline).await;
        let _ = INTERRUPT_SIGNAL.compare_exchange(0, RUN_TIMEOUT, Ordering::SeqCst, Ordering::SeqCst);
        if !INTERRUPTED.swap(true, Ordering::SeqCst) {
            crate::stderrln!(
                "\nrigger: the run timed out (--run-timeout {}); failing the tasks still running",
                human_duration(limit)
            );
        }
    });
}

/// Resolves when the whole run's time is up (never without `--run-timeout`),
/// with the limit.
pub async fn run_deadline() -> Duration {
    match RUN_DEADLINE.get() {
        Some((deadline, limit)) => {
            tokio::time::sleep_until(*deadline).await;
            *limit
        }
        None => std::future::pending().await,
    }
}

/// `90s`, `5m`, `1h30m`: a limit as it was most likely written.
pub fn human_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms % 1000 != 0 {
        return format!("{ms}ms");
    }
    let mut secs = d.as_secs();
    if secs == 0 {
        return "0s".into();
    }
    let mut out = String::new();
    for (unit, n) in [("h", 3600), ("m", 60), ("s", 1)] {
        if secs >= n {
            out.push_str(&format!("{}{unit}", secs / n));
            secs %= n;
        }
    }
    out
}

/// What interrupted the run, if anything did: `SIGINT`, `SIGTERM`, or the
/// run timeout.
pub fn interrupted_by() -> Option<String> {
    if !INTERRUPTED.load(Ordering::SeqCst) {
        return None;
    }
    Some(match INTERRUPT_SIGNAL.load(Ordering::SeqCst) {
        libc::SIGTERM => "SIGTERM".into(),
        RUN_TIMEOUT => format!(
            "the run timeout (--run-timeout {})",
            RUN_DEADLINE.get().map(|(_, l)| human_duration(*l)).unwrap_or_default()
        ),
        _ => "SIGINT".into(),
    })
}

/// The exit code of an interrupted run: Ansible's for Ctrl-C (its
/// `ExitCode.KEYBOARD_INTERRUPT`, 99, in ansible-core's errors/__init__.py);
/// for SIGTERM, as a shell reports a process that signal ended (143: Ansible's
/// TaskQueueManager sends itself the SIGTERM again), although rigger ends it
/// in order, with the recap; [`RUN_TIMEOUT_EXIT_CODE`] for `--run-timeout`.
pub fn interrupted_exit_code() -> i32 {
    match INTERRUPT_SIGNAL.load(Ordering::SeqCst) {
        0 | libc::SIGINT => KEYBOARD_INTERRUPT_EXIT_CODE,
        RUN_TIMEOUT => RUN_TIMEOUT_EXIT_CODE,
        s => 128 + s,
    }
}

/// Options of a run, from the CLI.
#[derive(Debug, Clone)]
pub struct RunOptions {
    pub forks: usize,
    pub check: bool,
    pub diff: bool,
    pub tags: Vec<String>,
    pub skip_tags: Vec<String>,
    pub limit: Option<String>,
    /// `--shard K/N`: only the hosts of this shard.
    pub shard: Option<crate::shard::Shard>,
    pub extra_vars: Map<String, Value>,
    pub start_at_task: Option<String>,
    pub force_handlers: bool,
    pub task_timeout: Option<Duration>,
    /// The whole run's limit (`--run-timeout`), see [`start_run_timeout`].
    pub run_timeout: Option<Duration>,
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
    /// The inventory sources of the run as Ansible's CLI keeps them (paths
    /// made absolute, host lists as given): `ansible_inventory_sources`.
    pub inventory_sources: Vec<String>,
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
            shard: None,
            extra_vars: Map::new(),
            start_at_task: None,
            force_handlers: false,
            task_timeout: None,
            run_timeout: None,
            become_: None,
            become_user: None,
            become_method: None,
            become_password: None,
            verbosity: 0,
            conn: ConnDefaults::default(),
            keep_task_records: false,
            max_output: crate::connection::output::DEFAULT_MAX_OUTPUT,
            inventory_sources: Vec::new(),
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
    /// Some host is failed at the end of the run (a failure that no
    /// `rescue` handled and no `meta: clear_host_errors` cleared).
    pub failed_hosts: bool,
    /// Some host is unreachable at the end of the run.
    pub unreachable_hosts: bool,
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
    /// ansible-playbook's exit codes: 2 failed, 4 unreachable, 0 ok. As
    /// Ansible's, they say whether hosts are failed (unreachable) at the
    /// end, not whether a failure was counted: a failure that
    /// `meta: clear_host_errors` cleared leaves the recap's `failed=1` and
    /// exit code 0.
    pub fn exit_code(&self) -> i32 {
        if self.interrupted {
            return interrupted_exit_code();
        }
        if self.failed_hosts {
            2
        } else if self.unreachable_hosts {
            4
        } else {
            0
        }
    }
}

/// What a host carries from task to task within a run.
#[derive(Default)]
pub(super) struct HostState {
    /// Gathered facts: data from the host, never rendered (see [`super::vars`]).
    pub(super) facts: Map<String, Value>,
    /// A play gathered this host's facts earlier in the run (Ansible's
    /// `_ansible_facts_gathered`, what `gathering = smart` looks at).
    pub(super) facts_gathered: bool,
    /// Facts that modules returned (`ansible_facts` of a result), without
    /// connection, become and magic variables: data at facts precedence.
    pub(super) module_facts: Map<String, Value>,
    /// set_fact values and registered results: data, never rendered.
    pub(super) set_facts: Map<String, Value>,
    /// Variables from files through `include_vars`: template source.
    pub(super) include_vars: Map<String, Value>,
    pub(super) notified: HashSet<String>,
    pub(super) failed: bool,
    pub(super) unreachable: bool,
    /// Bumped by each `meta: clear_host_errors`, so that a block whose
    /// `always` cleared the errors does not fail the host again.
    pub(super) errors_cleared: u64,
    /// `--start-at-task`: this host reached the task (per host, so that hosts
    /// walking ahead of others do not start early).
    pub(super) start_found: bool,
    /// Check mode: the paths earlier tasks on this host would create or change.
    pub(super) predicted: Vec<PredictedPath>,
    /// The task that last failed on this host and its result, as
    /// `ansible_failed_task` / `ansible_failed_result` for the next `rescue`.
    pub(super) last_failure: Option<Box<(Value, Value)>>,
    /// Failed by `any_errors_fatal` because another host failed: a failed
    /// host whose own result did not fail, so its `rescue` counts no
    /// `rescued` (as Ansible's stats count only failed results).
    pub(super) failed_by_fatal: bool,
}

/// Shared state of a run.
pub struct Runner {
    pub(super) opts: RunOptions,
    pub(super) inventory: RwLock<Inventory>,
    pub(super) pool: ConnPool,
    pub(super) templar: Templar,
    pub(super) out: Arc<Renderer>,
    /// Boxed: a batch's table of 100,000 hosts holds a pointer a host.
    pub(super) hosts: Mutex<HashMap<String, Box<HostState>>>,
    pub(super) stats: Mutex<BTreeMap<String, HostStats>>,
    /// What `set_stats` tasks set, for the recap.
    pub(super) custom_stats: Mutex<crate::output::CustomStats>,
    pub(super) task_records: Mutex<Vec<TaskRecord>>,
    pub(super) forks: Semaphore,
    pub(super) run_once_results: Mutex<HashMap<Vec<u32>, Map<String, Value>>>,
    /// `--start-at-task` not reached yet.
    pub(super) start_pending: AtomicBool,
    /// A play aborted (any_errors_fatal / max_fail_percentage): stop the playbook.
    pub(super) stop_playbook: AtomicBool,
    /// `meta: end_play` ran: the play's later serial batches do not run.
    pub(super) play_ended: AtomicBool,
    /// Answers to `vars_prompt`, asked once before the run starts.
    pub(super) prompted: Mutex<Map<String, Value>>,
    /// Bumped by every change to the inventory (`add_host`, `group_by`).
    pub(super) inv_generation: AtomicU64,
    /// Bumped whenever a host becomes failed or unreachable, or stops being
    /// so (see [`Runner::with_host`]): the play's magic host lists are
    /// rebuilt only then, not checked host by host on every task of every
    /// host (quadratic in the hosts: 100,000 hosts never got to a task).
    pub(super) dropped_generation: AtomicU64,
    /// Load warnings of included files already shown: a file included on
    /// every host (or in a loop) warns once.
    pub(super) load_warnings: Mutex<HashSet<String>>,
    /// The fact cache of the settings (`jsonfile`), `None` for `memory`.
    pub(super) fact_cache: Option<crate::fact_cache::FactCache>,
}

impl Runner {
    pub fn new(opts: RunOptions, inventory: Inventory, out: Arc<Renderer>) -> Arc<Self> {
        let forks = opts.forks.max(1);
        let start_pending = opts.start_at_task.is_some();
        // Secrets known before any host runs; templated ones are added as
        // each host's variables are resolved (`PlayHost::run_task`).
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
        if let Some(limit) = opts.run_timeout {
            start_run_timeout(limit);
        }
        Arc::new(Runner {
            pool: ConnPool::new(opts.conn.clone()),
            opts,
            inventory: RwLock::new(inventory),
            templar: Templar::new(),
            out,
            hosts: Mutex::new(HashMap::new()),
            stats: Mutex::new(BTreeMap::new()),
            custom_stats: Mutex::new(Default::default()),
            task_records: Mutex::new(Vec::new()),
            forks: Semaphore::new(forks),
            run_once_results: Mutex::new(HashMap::new()),
            start_pending: AtomicBool::new(start_pending),
            stop_playbook: AtomicBool::new(false),
            play_ended: AtomicBool::new(false),
            prompted: Mutex::new(Map::new()),
            inv_generation: AtomicU64::new(0),
            dropped_generation: AtomicU64::new(0),
            load_warnings: Mutex::new(HashSet::new()),
            // A bad setting stopped the run at its start (app::run).
            fact_cache: crate::fact_cache::FactCache::configured().ok().flatten(),
        })
    }

    pub(super) fn inv(&self) -> std::sync::RwLockReadGuard<'_, Inventory> {
        self.inventory.read().unwrap_or_else(|p| p.into_inner())
    }

    /// Change the inventory. The generation is bumped after the change,
    /// still under the write lock: whoever read the old generation rebuilds
    /// what depends on the inventory on its next look (see [`super::context::PlayHost::magic`]).
    pub(super) fn change_inv<R>(&self, f: impl FnOnce(&mut Inventory) -> R) -> R {
        let mut inv = self.inventory.write().unwrap_or_else(|p| p.into_inner());
        let r = f(&mut inv);
        self.inv_generation.fetch_add(1, Ordering::SeqCst);
        r
    }

    /// At the end of the process: the inventory and the hosts' states are
    /// left to the operating system instead of being freed one allocation
    /// at a time (a tenth of a 100,000-host run's CPU went to that).
    pub fn leave_to_exit(&self) {
        let inventory = std::mem::take(&mut *self.inventory.write().unwrap_or_else(|p| p.into_inner()));
        std::mem::forget(inventory);
        let hosts = std::mem::take(&mut *self.hosts.lock().unwrap_or_else(|p| p.into_inner()));
        std::mem::forget(hosts);
    }

    /// Read or change a host's state. The only way to change one: a change
    /// of `failed`/`unreachable` bumps [`Runner::dropped_generation`] (still
    /// under the lock, so whoever saw the old generation sees the change).
    pub(super) fn with_host<R>(&self, host: &str, f: impl FnOnce(&mut HostState) -> R) -> R {
        let mut hosts = self.hosts.lock().unwrap_or_else(|p| p.into_inner());
        // The name is copied only for a host's first use.
        if !hosts.contains_key(host) {
            let state = Box::new(self.cached_state(host));
            hosts.insert(host.to_string(), state);
        }
        let s = hosts.get_mut(host).expect("the host's state was inserted above");
        let before = (s.failed, s.unreachable);
        let r = f(s);
        if (s.failed, s.unreachable) != before {
            self.dropped_generation.fetch_add(1, Ordering::SeqCst);
        }
        r
    }

    /// A host's state at its first use: its facts from the fact cache,
    /// as Ansible reads them back (facts precedence).
    fn cached_state(&self, host: &str) -> HostState {
        let mut s = HostState::default();
        if let Some(cache) = &self.fact_cache {
            match cache.get(host) {
                Ok(Some(entry)) => (s.facts, s.module_facts) = crate::fact_cache::split_entry(entry),
                Ok(None) => {}
                Err(message) => self.out.emit(&crate::output::Event::Warning { message }),
            }
        }
        s
    }

    /// Write a host's fact layer to the fact cache, if there is one.
    pub(super) fn save_facts(&self, host: &str) {
        let Some(cache) = &self.fact_cache else {
            return;
        };
        let entry = self.with_host(host, |s| crate::fact_cache::entry_of(&s.facts, &s.module_facts));
        if let Err(message) = cache.set(host, &entry) {
            self.out.emit(&crate::output::Event::Warning { message });
        }
    }

    pub(super) fn record(
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
        let secrets = self.out.secrets();
        secrets.redact_map(&mut result);
        self.task_records
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(TaskRecord {
                host: host.to_string(),
                task: secrets.redact_str(task).into_owned(),
                location,
                status,
                ignored,
                result,
            });
    }

    pub(super) fn stat(&self, host: &str, f: impl FnOnce(&mut HostStats)) {
        let mut stats = self.stats.lock().unwrap_or_else(|p| p.into_inner());
        f(stats.entry(host.to_string()).or_default())
    }

    /// `e` with known secrets masked in its message and hint.
    pub(super) fn mask_error(&self, mut e: LocError) -> LocError {
        let secrets = self.out.secrets();
        e.msg = secrets.redact_str(&e.msg).into_owned();
        e.hint = e.hint.map(|h| secrets.redact_str(&h).into_owned());
        e
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn run_limits_read_as_written() {
        let d = |s| human_duration(Duration::from_secs(s));
        assert_eq!(d(3), "3s");
        assert_eq!(d(90), "1m30s");
        assert_eq!(d(3600), "1h");
        assert_eq!(d(5400), "1h30m");
        assert_eq!(human_duration(Duration::from_millis(1500)), "1500ms");
        // What --run-timeout and a scheduled check entry read back.
        for s in [3, 90, 5400] {
            assert_eq!(
                crate::watch::config::parse_duration(&d(s)).unwrap(),
                Duration::from_secs(s)
            );
        }
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

/// A remote path an earlier task would create or change.
#[derive(Debug, Clone)]
pub(super) struct PredictedPath {
    pub(super) path: String,
    /// The task's title and location.
    pub(super) task: String,
    pub(super) loc: String,
    /// Created (it did not exist) rather than changed.
    pub(super) created: bool,
}
