//! Execution: the playbook runner, split along Ansible's executor seams
//! with one job per file, plus connections per host and facts. Calls and
//! imports go down this list, never up.
//!
//! - `play`: play iteration and setup (hosts, play vars, `vars_prompt`,
//!   `serial` batches).
//! - `strategy`: a walker per host of a batch, and the coordinator that
//!   decides which host runs which task when (`linear`, `free`,
//!   `run_once`, failure thresholds).
//! - `walker`: one host's way through the task tree (blocks, rescue,
//!   always, includes, handlers, `meta`).
//! - `task`: running one task on one host (loops, conditions,
//!   delegation, connection and become, the module, retries).
//! - `loops`: the items of `loop` and `with_*`.
//! - `predicted`: check mode's predicted paths, and the failures they
//!   explain (drift, not an error).
//! - `results`: a module's outcome as a task result (controller effects,
//!   `changed_when`/`failed_when`, `no_log`), reported and settled on the
//!   host (record, `register`, stats, notify).
//! - `task_vars`: a host's variables for a task in Ansible's precedence,
//!   and the template context (magic variables, `hostvars`).
//! - `vars`: how variable layers merge and render.
//! - `context`: the types these share (play context, a host in a play,
//!   scopes, flows, task results, the walker–strategy messages).
//! - `runner`: the run's shared state: options, per-host state, summary.
//! - `conn_pool`: one connection per host; `facts`: fact gathering.

mod async_task;
pub mod conn_pool;
mod context;
pub mod facts;
mod loops;
mod play;
mod predicted;
mod results;
pub mod runner;
mod strategy;
pub(crate) mod task;
mod task_vars;
pub mod vars;
mod walker;
