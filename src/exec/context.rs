//! What the executor's layers share about one play: the play's context
//! ([`PlayCtx`]), one host in it ([`PlayHost`]), the keywords around a task
//! ([`Scope`]), where a host's walk goes next ([`Flow`]), what a task did
//! ([`TaskResult`]), and the messages between the walkers and the strategy
//! ([`WalkerMsg`], [`Waiting`], [`Go`]). Types only, and the few helpers on
//! scopes that every layer asks.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use serde_json::{Map, Value};
use tokio::sync::oneshot;

use super::runner::{RunOptions, Runner};
use crate::output::Status;
use crate::playbook::{Common, Flag, Play, RoleCtx, Task};

/// Per-play data shared by walkers.
pub(super) struct PlayCtx {
    pub(super) play: Arc<Play>,
    pub(super) vars: Map<String, Value>,
    pub(super) all_hosts: Vec<String>,
    pub(super) batch: Vec<String>,
    /// Handlers of roles included at run time (`include_role`), in the order
    /// first included; deduplicated by definition location.
    pub(super) extra_handlers: Mutex<Vec<Arc<Task>>>,
    /// The play-wide magic variables as template values, see [`PlayHost::magic`].
    pub(super) magic: Mutex<Option<PlayMagic>>,
    /// `throttle:` slots per task (by its key in the batch).
    pub(super) throttles: Mutex<HashMap<Vec<u32>, Arc<tokio::sync::Semaphore>>>,
    /// What the play's public roles give every task: their defaults (the
    /// lowest precedence) and their exported vars (above play vars).
    pub(super) role_exports: RoleExports,
    /// Public roles included at run time (`include_role: public: true`), in
    /// the order included: their defaults and vars are seen from then on.
    pub(super) included_roles: Mutex<Vec<Arc<RoleCtx>>>,
    /// Which uses of roles that must not run twice ran on which host.
    pub(super) role_runs: Mutex<RoleRuns>,
    /// `vars_files` named with host variables: `vars` lacks them, each
    /// host's play vars with them are in `host_vars`.
    pub(super) per_host_vars_files: bool,
    pub(super) host_vars: Mutex<HashMap<String, Arc<Map<String, Value>>>>,
    /// The scopes every host's walk starts with: the play's keywords (its
    /// vars are in `vars`), one copy for the batch.
    pub(super) root_scopes: Vec<Scope>,
}

impl PlayCtx {
    /// The root scope of a play: its keywords without its vars (they are
    /// in [`PlayCtx::vars`], below vars_files and role vars).
    pub(super) fn root_scopes(play: &Play) -> Vec<Scope> {
        let mut common = play.common.clone();
        common.vars = Map::new();
        vec![Scope {
            common,
            role: None,
            params: Map::new(),
            rendered_params: Map::new(),
        }]
    }
}

/// Ansible's per-play role cache state (`Role._had_task_run` and
/// `_completed`), by host and role identity ([`RoleCtx::dedup_key`]).
#[derive(Default)]
pub(super) struct RoleRuns {
    /// A task of the role ran (ok, changed or failed) on the host.
    ran: HashSet<(String, String)>,
    /// The host got to the role's end after one of its tasks ran: a later
    /// use of the same role is skipped for it.
    completed: HashSet<(String, String)>,
}

impl RoleRuns {
    pub(super) fn mark_ran(&mut self, host: &str, key: &str) {
        self.ran.insert((host.to_string(), key.to_string()));
    }

    /// The host reached the end of the role: complete if any task ran.
    pub(super) fn finish(&mut self, host: &str, key: &str) {
        let k = (host.to_string(), key.to_string());
        if self.ran.contains(&k) {
            self.completed.insert(k);
        }
    }

    pub(super) fn completed(&self, host: &str, key: &str) -> bool {
        self.completed.contains(&(host.to_string(), key.to_string()))
    }
}

/// The merged defaults and exported vars of a play's public roles (see
/// [`crate::playbook::Play::roles`]), computed once per play.
#[derive(Default)]
pub(super) struct RoleExports {
    pub(super) defaults: Map<String, Value>,
    pub(super) vars: Map<String, Value>,
}

impl RoleExports {
    pub(super) fn of(roles: &[Arc<RoleCtx>]) -> RoleExports {
        let mut e = RoleExports::default();
        for r in roles {
            r.add_defaults(&mut e.defaults);
        }
        for r in roles {
            r.add_exports(&mut e.vars);
        }
        e
    }
}

/// `groups`, `ansible_play_hosts_all`, `ansible_play_hosts`, `play_hosts`
/// and `ansible_play_batch`: lists of hosts, the same for every host of a
/// batch. Built once (and again when the inventory changes or a host drops
/// out) and shared by every host's template context, instead of copied
/// into each host's variables for each task, which made memory and CPU grow
/// with hosts × hosts.
pub(super) struct PlayMagic {
    pub(super) inv_generation: u64,
    /// [`super::runner::Runner::dropped_generation`] when it was made.
    pub(super) dropped_generation: u64,
    /// Hosts of the play that failed or became unreachable.
    pub(super) dropped: Vec<String>,
    pub(super) value: minijinja::Value,
}

/// One host in one play (batch): what the variable, task and result layers
/// work with. A [`super::walker::Walker`] is one of these plus its line to
/// the strategy.
pub(super) struct PlayHost {
    pub(super) runner: Arc<Runner>,
    pub(super) pctx: Arc<PlayCtx>,
    pub(super) host: String,
}

/// Keywords and variables in effect around a task (from play, blocks, roles, includes).
#[derive(Clone)]
pub(super) struct Scope {
    pub(super) common: Common,
    pub(super) role: Option<Arc<RoleCtx>>,
    /// include_tasks / include_role parameters: the `vars:` of an include
    /// (template source).
    pub(super) params: Map<String, Value>,
    /// Parameters already rendered (an include's arguments, its loop item):
    /// data, above `params`.
    pub(super) rendered_params: Map<String, Value>,
}

/// Where a host's walk goes after a step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Flow {
    Continue,
    Failed,
    EndHost,
    EndPlay,
    Unreachable,
    Abort,
}

/// What one task did on a host (all loop items together).
pub(super) struct TaskResult {
    pub(super) status: Status,
    pub(super) result: Map<String, Value>,
    pub(super) ignored: bool,
}

/// The strategy's answer to a host waiting at a task.
pub(super) enum Go {
    Run,
    /// run_once: another host ran it; use its result.
    Follow,
    Abort,
}

/// A host waiting at a task for the strategy's [`Go`].
pub(super) struct Waiting {
    /// The task's position in document order.
    pub(super) key: Vec<u32>,
    /// The task's title and location, for the task header.
    pub(super) title: String,
    pub(super) loc: String,
    pub(super) handler: bool,
    pub(super) run_once: bool,
    pub(super) reply: oneshot::Sender<Go>,
}

/// What a walker tells the strategy; a host is its position in the batch
/// ([`PlayCtx::batch`]).
pub(super) enum WalkerMsg {
    /// The host waits at a task.
    Ready { host: usize, waiting: Waiting },
    /// The host is through the play.
    Finished { host: usize },
    /// The host ran a task with `any_errors_fatal` (strategy linear) and
    /// waits for the verdict of the step: `true` when another host of the
    /// step failed, so this one is failed where it stands (Ansible's
    /// `mark_host_failed`: it goes on to its block's `rescue`/`always`).
    StepDone {
        host: usize,
        failed: bool,
        verdict: oneshot::Sender<bool>,
    },
}

/// A boolean keyword: the task's own, else the innermost scope's.
/// (Templates are evaluated before, see `PlayHost::render_flags`.)
pub(super) fn resolve_bool(scopes: &[Scope], task: &Common, f: impl Fn(&Common) -> &Option<Flag>) -> Option<bool> {
    let get = |c: &Common| f(c).as_ref().and_then(Flag::literal);
    get(task).or_else(|| scopes.iter().rev().find_map(|s| get(&s.common)))
}

/// Whether `--tags`/`--skip-tags` select a task with these scopes and own tags.
pub(super) fn tags_match(opts: &RunOptions, scopes: &[Scope], own: &[String]) -> bool {
    let mut tags: HashSet<&str> = own.iter().map(String::as_str).collect();
    for s in scopes {
        tags.extend(s.common.tags.iter().map(String::as_str));
    }
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

/// A template context value from any serializable value.
pub(super) fn mj<T: serde::Serialize>(v: &T) -> minijinja::Value {
    minijinja::Value::from(minijinja::value::Serde(v))
}
