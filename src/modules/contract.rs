//! The module contract: what the executor gives a module ([`ModuleCtx`]),
//! what a module declares ([`ModuleDoc`]), what its query returns ([`Plan`])
//! and what a run reports ([`ModuleOutcome`]).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use crate::connection::{self, Become, ConnError, Connection, ExecOutput, ExecRequest, FileAttrs, OutputLimit};
use crate::yaml::Loc;

use super::values;

/// Everything a module may use while running on one host.
pub struct ModuleCtx<'a> {
    pub conn: &'a dyn Connection,
    /// Inventory name of the host.
    pub host: &'a str,
    pub check_mode: bool,
    pub diff_mode: bool,
    pub become_: Option<&'a Become>,
    /// Task/play `environment:`.
    pub env: &'a [(String, String)],
    pub templar: &'a crate::template::Templar,
    /// The task's template context (for modules that render, like `template`).
    pub vars: &'a minijinja::Value,
    /// Directories searched for relative `src` paths, most specific first
    /// (role dir, playbook dir). `files/` and `templates/` subdirectories of
    /// each are tried too.
    pub search_paths: &'a [PathBuf],
    /// Where the task is defined, for errors.
    pub loc: &'a Loc,
    /// What is kept of each output stream of a user's command, and the most
    /// of a user module's JSON that is read (`--max-output`).
    pub max_output: usize,
    /// The task is `no_log` (passed on to Ansible modules as `_ansible_no_log`).
    pub no_log: bool,
    /// The soft limit of open files the module's commands run with
    /// (`ansible_python_module_rlimit_nofile`; None: unchanged).
    pub rlimit_nofile: Option<u64>,
}

impl ModuleCtx<'_> {
    /// A request for `cmd` with the task's become and environment.
    fn request(&self, cmd: &str, stdin: Option<Vec<u8>>) -> ExecRequest {
        ExecRequest {
            cmd: cmd.to_string(),
            stdin,
            become_: self.become_.cloned(),
            env: self.env.to_vec(),
            rlimit_nofile: self.rlimit_nofile,
            ..Default::default()
        }
    }

    /// Run `cmd` on `conn` (the task's connection or a fresh one) with the
    /// task's become and environment, within `limit`.
    pub async fn run_on(
        &self,
        conn: &dyn Connection,
        cmd: &str,
        limit: std::time::Duration,
    ) -> Result<ExecOutput, ConnError> {
        let req = ExecRequest {
            timeout: Some(limit),
            ..self.request(cmd, None)
        };
        connection::exec(conn, &req).await
    }

    /// Run one of the module's own scripts on the host with the task's
    /// become and environment ([`ExecRequest::subshell_ok`]: it must not rely
    /// on its own `$$`).
    pub async fn run(&self, cmd: &str) -> Result<ExecOutput, ConnError> {
        let req = ExecRequest {
            subshell_ok: true,
            ..self.request(cmd, None)
        };
        connection::exec(self.conn, &req).await
    }

    /// Run a user's command line (`command`, `shell`, `raw`, `script`) on a
    /// channel of its own ([`ExecRequest::own_channel`]): whatever it leaves
    /// running in the background cannot write into a later command's output.
    /// At most [`ModuleCtx::max_output`] of each output stream is kept; the
    /// rest is counted in [`ExecOutput::stdout_dropped`]/`stderr_dropped`.
    pub async fn run_user(&self, cmd: &str, stdin: Option<Vec<u8>>) -> Result<ExecOutput, ConnError> {
        let req = ExecRequest {
            own_channel: true,
            output_limit: OutputLimit::Keep(self.max_output),
            ..self.request(cmd, stdin)
        };
        connection::exec(self.conn, &req).await
    }

    /// Run a program whose output rigger parses whole (a user module's JSON)
    /// feeding `stdin`: more than [`ModuleCtx::max_output`] on stdout or
    /// stderr is refused ([`ConnError::OutputTooLarge`]) instead of read.
    /// `cmd` runs only once the whole of `stdin` arrived and was checked
    /// (see [`ModuleCtx::run_with_whole_stdin`]).
    pub async fn run_parsed(&self, cmd: &str, stdin: Vec<u8>) -> Result<ExecOutput, ConnError> {
        let whole = connection::with_whole_stdin(cmd, &connection::ContentSum::of_bytes(&stdin));
        let req = ExecRequest {
            subshell_ok: true,
            output_limit: OutputLimit::Refuse(self.max_output),
            ..self.request(&whole, Some(stdin))
        };
        connection::exec(self.conn, &req).await
    }

    /// Run one of the module's own scripts whose output is read whole (a
    /// file's content): more than [`ModuleCtx::max_output`] on stdout or
    /// stderr is refused ([`ConnError::OutputTooLarge`]), never cut.
    pub async fn run_read(&self, cmd: &str) -> Result<ExecOutput, ConnError> {
        let req = ExecRequest {
            subshell_ok: true,
            output_limit: OutputLimit::Refuse(self.max_output),
            ..self.request(cmd, None)
        };
        connection::exec(self.conn, &req).await
    }

    /// Run one of the module's own scripts feeding `stdin`.
    pub async fn run_with_stdin(&self, cmd: &str, stdin: Vec<u8>) -> Result<ExecOutput, ConnError> {
        let req = ExecRequest {
            subshell_ok: true,
            ..self.request(cmd, Some(stdin))
        };
        connection::exec(self.conn, &req).await
    }

    /// [`ModuleCtx::run_with_stdin`] for a script that writes or installs
    /// what it reads: it runs only once all of `stdin` arrived (see
    /// [`connection::with_whole_stdin`]).
    pub async fn run_with_whole_stdin(&self, cmd: &str, stdin: Vec<u8>) -> Result<ExecOutput, ConnError> {
        let whole = connection::with_whole_stdin(cmd, &connection::ContentSum::of_bytes(&stdin));
        self.run_with_stdin(&whole, stdin).await
    }

    /// Atomically write `data` to `dest` on the host.
    pub async fn put_bytes(&self, data: &[u8], dest: &str, attrs: &FileAttrs) -> Result<(), ConnError> {
        connection::put_bytes(self.conn, data, dest, attrs, self.become_).await
    }

    /// Atomically stream a local file to `dest` on the host.
    pub async fn put_file(&self, local: &std::path::Path, dest: &str, attrs: &FileAttrs) -> Result<(), ConnError> {
        connection::put_file(self.conn, local, dest, attrs, self.become_).await
    }

    /// [`ModuleCtx::put_file`] of a file whose sum is known already (or computed, `None`).
    pub async fn put_file_summed(
        &self,
        local: &std::path::Path,
        dest: &str,
        attrs: &FileAttrs,
        sum: Option<connection::ContentSum>,
    ) -> Result<(), ConnError> {
        connection::put_file_summed(self.conn, local, dest, attrs, self.become_, sum).await
    }

    /// Read a file from the host.
    pub async fn fetch(&self, src: &str) -> Result<Vec<u8>, ConnError> {
        connection::fetch(self.conn, src, self.become_).await
    }

    /// Find a local file for a relative `src`, looking in `<dir>/<subdir>/name`
    /// and `<dir>/name` for each search path (`subdir` is `files` or `templates`).
    pub fn find_local(&self, subdir: &str, name: &str) -> Result<PathBuf, ModuleError> {
        let p = std::path::Path::new(name);
        if p.is_absolute() {
            return if p.exists() {
                Ok(p.to_path_buf())
            } else {
                Err(ModuleError::Failed(format!("could not find source file {name}")))
            };
        }
        for dir in self.search_paths {
            for cand in [dir.join(subdir).join(name), dir.join(name)] {
                if cand.exists() {
                    return Ok(cand);
                }
            }
        }
        Err(ModuleError::Failed(format!(
            "could not find `{name}` in {} (searched {})",
            subdir,
            self.search_paths
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        )))
    }
}

/// Opens a fresh connection to the task's host, replacing the run's pooled one
/// (`reboot`, `wait_for_connection`).
pub type Reconnect = std::sync::Arc<
    dyn Fn() -> futures::future::BoxFuture<'static, Result<std::sync::Arc<dyn Connection>, ConnError>> + Send + Sync,
>;

tokio::task_local! {
    /// Set by the runner around `Module::run`; modules that must outlive a
    /// dropped connection read it with `RECONNECT.try_with(Clone::clone)`.
    pub static RECONNECT: Reconnect;
}

/// A fresh connection to the task's host (the run's pool is reset to it),
/// within `limit`; `None` when the module runs outside a runner.
pub async fn fresh_connection(limit: std::time::Duration) -> Option<Result<std::sync::Arc<dyn Connection>, ConnError>> {
    let f = RECONNECT.try_with(Clone::clone).ok()?;
    Some(match tokio::time::timeout(limit, f()).await {
        Ok(r) => r,
        Err(_) => Err(ConnError::CommandTimeout(limit.as_secs())),
    })
}

/// A before/after pair for `--diff`, shaped like Ansible's diff dict.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Diff {
    pub before_header: String,
    pub after_header: String,
    pub before: String,
    pub after: String,
}

/// What a module did (or, in check mode, would do).
#[derive(Debug, Clone, Default)]
pub struct ModuleOutcome {
    pub changed: bool,
    pub failed: bool,
    pub skipped: bool,
    pub msg: Option<String>,
    pub diff: Vec<Diff>,
    /// Module-specific return values (`rc`, `stdout`, `path`, ...), registered with the result.
    pub ret: Map<String, Value>,
    /// What the task changes in the run itself (variables, inventory).
    pub effect: Option<ControllerEffect>,
    /// The result is what the task is for (`debug`): shown without `-v`,
    /// as Ansible prints it.
    pub show_result: bool,
}

/// What a controller-side module changes in the run besides its result.
/// Only rigger's own modules set one: no key of a result (which a module
/// running on a host controls) has an effect on the controller, except
/// `ansible_facts`, which become facts (data, never rendered, at facts
/// precedence, without connection and become variables), and the internal
/// `_` keys that only rigger's own modules can return (a custom module's are
/// dropped, see `external`).
#[derive(Debug, Clone)]
pub enum ControllerEffect {
    /// `include_vars`: variables from files on the controller (template source).
    IncludeVars(Map<String, Value>),
    /// `set_fact`: variables at set_fact precedence (rendered values: data).
    SetFacts(Map<String, Value>),
    /// `set_fact` with `cacheable: true`: variables at set_fact precedence
    /// that are also facts of the host, kept in the fact cache.
    CacheableFacts(Map<String, Value>),
    /// `add_host`: a host for the following plays, with its variables
    /// (rendered values: data).
    AddHost {
        name: String,
        groups: Vec<String>,
        vars: Map<String, Value>,
    },
    /// `group_by`: this host joins `group`, which becomes a child of each
    /// of `parents` (groups created as needed).
    JoinGroup { group: String, parents: Vec<String> },
    /// `meta: refresh_inventory`: the inventory is read again from its
    /// sources, this run's `add_host`/`group_by` changes replayed.
    RefreshInventory,
    /// `setup`: gathered facts (names without the `ansible_` prefix),
    /// merged into the host's facts as a play's fact gathering sets them.
    Facts(Map<String, Value>),
    /// `set_stats`: custom stats for the recap, of this host (`per_host`)
    /// or of the run, added to the earlier ones (`aggregate`) or replacing them.
    Stats {
        data: Map<String, Value>,
        per_host: bool,
        aggregate: bool,
    },
}

impl ModuleOutcome {
    pub fn ok() -> Self {
        Self::default()
    }
    pub fn changed(changed: bool) -> Self {
        ModuleOutcome {
            changed,
            ..Default::default()
        }
    }
    pub fn failed(msg: impl Into<String>) -> Self {
        ModuleOutcome {
            failed: true,
            msg: Some(msg.into()),
            ..Default::default()
        }
    }
    pub fn with(mut self, key: &str, v: impl Into<Value>) -> Self {
        self.ret.insert(key.to_string(), v.into());
        self
    }
    pub fn with_msg(mut self, msg: impl Into<String>) -> Self {
        self.msg = Some(msg.into());
        self
    }
    pub fn with_effect(mut self, e: ControllerEffect) -> Self {
        self.effect = Some(e);
        self
    }
    pub fn with_diff(mut self, d: Diff) -> Self {
        self.diff.push(d);
        self
    }
}

/// Errors a module can end with. `Conn` errors that make the host unusable
/// are reported as UNREACHABLE; the others fail the task.
#[derive(Debug, thiserror::Error)]
pub enum ModuleError {
    #[error(transparent)]
    Conn(#[from] ConnError),
    /// A bad argument, found at run time (after templating).
    #[error("{0}")]
    Args(String),
    #[error("{0}")]
    Failed(String),
    /// The task's `timeout:` (or `--task-timeout`) ran out: Ansible's
    /// message and a `timedout` result.
    #[error("Timed out after {0} second(s).")]
    TimedOut(u64),
    /// The whole run's time (`--run-timeout`) ran out while the task ran.
    #[error("the run timed out (--run-timeout {}) while this task was running", crate::exec::runner::human_duration(*.0))]
    RunTimedOut(std::time::Duration),
}

/// The user documentation and argument schema of a module.
#[derive(Debug)]
pub struct ModuleDoc {
    pub name: &'static str,
    /// Other names: `ansible.builtin.NAME` is added automatically.
    pub aliases: &'static [&'static str],
    pub short: &'static str,
    pub description: &'static str,
    /// Accepts a free-form string (`command: ls -l`), stored as `_raw_params`.
    pub free_form: bool,
    pub options: &'static [OptionDoc],
    /// YAML examples, as in Ansible's EXAMPLES.
    pub examples: &'static str,
    pub returns: &'static [ReturnDoc],
    /// The module runs on the controller only (debug, set_fact, ...).
    pub controller_only: bool,
}

#[derive(Debug, Clone, Copy)]
pub struct OptionDoc {
    pub name: &'static str,
    pub aliases: &'static [&'static str],
    pub kind: OptKind,
    pub required: bool,
    pub default: Option<&'static str>,
    pub choices: &'static [&'static str],
    pub description: &'static str,
    /// Accepted for compatibility and ignored: [`parse_params`] drops it, so
    /// a module's `Params` does not declare it.
    pub ignored: bool,
}

impl OptionDoc {
    /// A shorthand for the common case; use struct syntax for the rest.
    pub const fn new(name: &'static str, kind: OptKind, description: &'static str) -> Self {
        OptionDoc {
            name,
            aliases: &[],
            kind,
            required: false,
            default: None,
            choices: &[],
            description,
            ignored: false,
        }
    }
    /// Accepted for compatibility and ignored (see [`OptionDoc::ignored`]).
    pub const fn ignored(mut self) -> Self {
        self.ignored = true;
        self
    }
    pub const fn required(mut self) -> Self {
        self.required = true;
        self
    }
    pub const fn default(mut self, d: &'static str) -> Self {
        self.default = Some(d);
        self
    }
    pub const fn choices(mut self, c: &'static [&'static str]) -> Self {
        self.choices = c;
        self
    }
    pub const fn aliases(mut self, a: &'static [&'static str]) -> Self {
        self.aliases = a;
        self
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OptKind {
    Str,
    Bool,
    Int,
    Float,
    List,
    Dict,
    Path,
    /// File mode: octal number, octal string or symbolic (`u=rw,g=r`).
    Mode,
    /// Anything (validated by the module at run time).
    Raw,
    /// A Jinja expression the module evaluates itself (`debug`'s `var`,
    /// `assert`'s `that`): the engine passes it unrendered, so that a value
    /// rendered into it (which may come from a host) is never evaluated.
    Expr,
}

impl OptKind {
    pub fn name(self) -> &'static str {
        match self {
            OptKind::Str => "str",
            OptKind::Bool => "bool",
            OptKind::Int => "int",
            OptKind::Float => "float",
            OptKind::List => "list",
            OptKind::Dict => "dict",
            OptKind::Path => "path",
            OptKind::Mode => "mode",
            OptKind::Raw => "raw",
            OptKind::Expr => "expr",
        }
    }
}

#[derive(Debug)]
pub struct ReturnDoc {
    pub name: &'static str,
    pub description: &'static str,
}

/// What a module's query found on the host.
pub enum Plan {
    /// Nothing to change, or a module that only reads or acts on the
    /// controller: the outcome is final, in check mode too.
    Done(ModuleOutcome),
    /// The host differs from what the task asks. The outcome is what the
    /// run reports (`changed`, the `--diff`, the values predicted from the
    /// query); the executor applies the [`Change`] unless in check mode, and
    /// reports what its `apply` returns.
    Change(ModuleOutcome, Box<dyn Change>),
}

impl Plan {
    /// A change to make, reported as `outcome` (marked changed).
    pub fn change(mut outcome: ModuleOutcome, change: impl Change + 'static) -> Self {
        outcome.changed = true;
        Plan::Change(outcome, Box::new(change))
    }
}

/// The second half of a module: makes the change its query planned.
#[async_trait]
pub trait Change: Send {
    /// Apply the change; `planned` is the outcome the query predicted (the
    /// result to return, amended with what only the change learns: backup
    /// file names, command output, ...).
    async fn apply(self: Box<Self>, ctx: &ModuleCtx<'_>, planned: ModuleOutcome) -> Result<ModuleOutcome, ModuleError>;

    /// Check mode: the change will not be made. A query that left something
    /// on the host for its change (a download next to the destination)
    /// removes it here; nothing to do by default.
    async fn discard(self: Box<Self>, _ctx: &ModuleCtx<'_>) -> Result<(), ModuleError> {
        Ok(())
    }

    /// The change as one shell script the host can run on its own, for a
    /// task with `async:` (the executor starts it detached and the job's
    /// result is written on the host, see
    /// [`crate::modules::control::async_status`]). `None` (the default): the
    /// change is made from the controller, which cannot leave it running.
    fn detached(&self) -> Option<DetachedJob> {
        None
    }
}

/// A change that runs on the host by itself (see [`Change::detached`]): a
/// user's command, whose result is `command`'s (`rc`, `stdout`, `stderr`,
/// `start`, `end`, `delta`, `cmd`; failed on a non-zero status).
#[derive(Debug, Clone)]
pub struct DetachedJob {
    /// The shell script to run (`sh -c`).
    pub script: String,
    /// What it reads on its standard input.
    pub stdin: Option<Vec<u8>>,
    /// The result's `cmd`.
    pub display: String,
    /// Trailing newlines are dropped from `stdout`/`stderr`.
    pub strip: bool,
    /// A token the script prints (and exits 0) instead of running the
    /// command, and the skip message the result then has (`creates`/`removes`).
    pub skips: Vec<(String, String)>,
}

/// One path a module's query will look at: the executor may learn it for
/// several tasks in one round trip in check mode (see
/// [`crate::modules::host::prefetch`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathQuery {
    pub path: String,
    /// `stat -L` (follow links) rather than `stat`.
    pub follow: bool,
    /// Its sha1 checksum too (regular files).
    pub sum: bool,
    /// Its content too (regular files, with `follow`).
    pub content: bool,
}

/// A module implementation.
///
/// A module answers [`Module::query`]: it reads the host and returns a
/// [`Plan`]. It never applies a change itself: the executor decides (not in
/// check mode). `ctx.check_mode` is for the few modules that must pass it
/// on (a user module receives `_ansible_check_mode`) and say why where they
/// read it.
#[async_trait]
pub trait Module: Send + Sync {
    fn doc(&self) -> &'static ModuleDoc;

    /// Read the host's state and say what would change. `args` are templated.
    async fn query(&self, ctx: &ModuleCtx<'_>, args: Map<String, Value>) -> Result<Plan, ModuleError>;

    /// The paths [`Module::query`] will look at for these (rendered)
    /// arguments, when the module can tell without the host; empty otherwise.
    fn query_hints(&self, _args: &Map<String, Value>) -> Vec<PathQuery> {
        Vec::new()
    }

    /// Whether the module creates files as the login user, so it needs the
    /// user's umask and ids (learnt once per connection).
    fn creates_files(&self) -> bool {
        false
    }

    /// Whether a run that changed something may have changed the host's
    /// users or groups (so what the connection learnt of `id` is stale).
    fn may_change_users(&self, _result: &Map<String, Value>) -> bool {
        true
    }
}

/// Parse templated arguments into a module's typed parameters, from its
/// doc: aliases are renamed to their canonical names; each value is coerced
/// to its option's kind the way Ansible does (`"yes"`/`1` for a bool, `"8"`
/// for an int, numbers and booleans for a string); a required option that
/// templating left empty, and a value outside an option's choices, are the
/// errors Ansible gives. A module's `Params` then needs no per-field parsing.
pub fn parse_params<T: DeserializeOwned>(doc: &ModuleDoc, args: Map<String, Value>) -> Result<T, ModuleError> {
    let args = normalize_args(doc, args)?;
    serde_json::from_value(Value::Object(args)).map_err(|e| ModuleError::Args(format!("{}: {e}", doc.name)))
}

/// The checks and coercions of [`parse_params`], on the argument map.
pub fn normalize_args(doc: &ModuleDoc, mut args: Map<String, Value>) -> Result<Map<String, Value>, ModuleError> {
    for opt in doc.options {
        for alias in opt.aliases {
            if let Some(v) = args.remove(*alias) {
                args.insert(opt.name.to_string(), v);
            }
        }
        if opt.ignored {
            args.remove(opt.name);
            continue;
        }
        let Some(v) = args.get_mut(opt.name) else {
            continue;
        };
        if !opt.choices.is_empty() {
            check_choice(doc, opt, v)?;
        }
        coerce(opt.kind, v);
    }
    let free_form = doc.free_form && args.get("_raw_params").is_some_and(|v| !v.is_null());
    if !free_form {
        if let Some(opt) = doc
            .options
            .iter()
            .find(|o| o.required && args.get(o.name).is_none_or(Value::is_null))
        {
            return Err(ModuleError::Args(format!(
                "{}: missing required argument: {}",
                doc.name, opt.name
            )));
        }
    }
    Ok(args)
}

/// A templated value outside the option's choices (literal ones were refused
/// when the playbook was loaded, see [`super::validate::validate_args`]).
fn check_choice(doc: &ModuleDoc, opt: &OptionDoc, v: &Value) -> Result<(), ModuleError> {
    let s = match v {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Bool(_) if values::choices_have_bool(opt.choices) => return Ok(()),
        Value::Bool(b) => if *b { "yes" } else { "no" }.to_string(),
        _ => return Ok(()),
    };
    if opt.choices.contains(&s.as_str()) {
        return Ok(());
    }
    Err(ModuleError::Args(format!(
        "{}: {} must be one of: {}; got {s}",
        doc.name,
        opt.name,
        opt.choices.join(", ")
    )))
}

/// Coerce a value to an option kind where that loses nothing; anything else
/// is left for the module's type to refuse, with the message it gives.
fn coerce(kind: OptKind, v: &mut Value) {
    let coerced = match (kind, &*v) {
        (OptKind::Bool, Value::String(_) | Value::Number(_)) => values::value_bool(v).map(Value::Bool),
        (OptKind::Int, Value::String(s)) => s
            .trim()
            .parse::<i64>()
            .ok()
            .filter(|n| n.to_string() == s.trim())
            .map(Value::from),
        (OptKind::Float, Value::String(s)) => s.trim().parse::<f64>().ok().map(Value::from),
        (OptKind::Str | OptKind::Path, Value::Bool(b)) => Some(Value::String(if *b { "True" } else { "False" }.into())),
        (OptKind::Str | OptKind::Path, Value::Number(n)) => Some(Value::String(n.to_string())),
        _ => None,
    };
    if let Some(c) = coerced {
        *v = c;
    }
}

/// Modules by name (`copy`, `ansible.builtin.copy`, aliases).
#[derive(Default)]
pub struct Registry {
    by_name: HashMap<String, Arc<dyn Module>>,
    /// Canonical names, sorted, for `rigger doc --list`.
    names: Vec<&'static str>,
}

impl Registry {
    /// Sort the canonical names once every module is in.
    pub fn finish(&mut self) {
        self.names.sort_unstable();
        self.names.dedup();
    }

    /// Register a module under its name, its aliases, and their
    /// `ansible.builtin.` / `ansible.legacy.` forms.
    pub fn add(&mut self, m: Arc<dyn Module>) {
        let doc = m.doc();
        self.names.push(doc.name);
        for name in std::iter::once(&doc.name).chain(doc.aliases.iter()) {
            for full in [
                name.to_string(),
                format!("ansible.builtin.{name}"),
                format!("ansible.legacy.{name}"),
            ] {
                self.by_name.entry(full).or_insert_with(|| m.clone());
            }
        }
    }

    pub fn get(&self, name: &str) -> Option<&Arc<dyn Module>> {
        self.by_name.get(name)
    }

    /// Every name a module answers to (for "did you mean" hints).
    pub fn all_names(&self) -> impl Iterator<Item = &str> {
        self.by_name.keys().map(String::as_str)
    }

    /// Canonical module names, sorted.
    pub fn names(&self) -> &[&'static str] {
        &self.names
    }
}
