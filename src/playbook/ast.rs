//! The playbook AST: plays, blocks, tasks, handlers and includes, each with
//! the location it was written at.

use std::path::PathBuf;
use std::sync::Arc;

use serde_json::{Map, Value};

use crate::yaml::{Loc, Node};

/// A loaded playbook, with `import_playbook`s expanded in place.
#[derive(Debug, Clone)]
pub struct Playbook {
    pub path: PathBuf,
    pub plays: Vec<Play>,
}

#[derive(Debug, Clone)]
pub struct Play {
    pub name: String,
    pub hosts: String,
    /// Directory of the file that defined this play (for relative paths, `playbook_dir`).
    pub dir: PathBuf,
    pub vars: Map<String, Value>,
    pub vars_files: Vec<(String, Loc)>,
    pub vars_prompt: Vec<VarsPrompt>,
    /// The play's `gather_facts` (None: not set; the gathering policy decides).
    pub gather_facts: Option<bool>,
    pub gather_subset: Vec<String>,
    pub serial: Vec<Serial>,
    pub strategy: Strategy,
    /// `order:`: the order the play's hosts run in.
    pub order: HostOrder,
    pub max_fail_percentage: Option<f64>,
    pub any_errors_fatal: bool,
    pub ignore_unreachable: bool,
    pub force_handlers: bool,
    pub common: Common,
    /// pre_tasks, roles (as blocks), tasks, post_tasks — in run order, with
    /// implicit handler flushes between sections as Ansible does.
    pub sections: Vec<Vec<TaskNode>>,
    pub handlers: Vec<Arc<Task>>,
    /// Roles whose defaults and vars the whole play sees, as Ansible's
    /// `play.roles` holds the public ones: the `roles:` entries, then the
    /// roles of `import_role`s (public unless `public: false` or
    /// `private_role_vars`), in load order.
    pub roles: Vec<Arc<RoleCtx>>,
    pub loc: Loc,
}

#[derive(Debug, Clone)]
pub struct VarsPrompt {
    pub name: String,
    /// The question shown on a terminal (default: the name).
    pub prompt: Option<String>,
    /// Do not echo the answer (default true, as Ansible).
    pub private: bool,
    pub default: Option<Value>,
    pub loc: Loc,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Serial {
    Count(usize),
    Percent(f64),
}

/// A play's `order:` of its hosts, as Ansible's inventory manager applies it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum HostOrder {
    /// As the inventory lists them.
    #[default]
    Inventory,
    ReverseInventory,
    /// By name.
    Sorted,
    ReverseSorted,
    Shuffle,
}

impl HostOrder {
    /// Put `hosts` (in inventory order) in this order.
    pub fn apply(self, hosts: &mut [String]) {
        match self {
            HostOrder::Inventory => {}
            HostOrder::ReverseInventory => hosts.reverse(),
            HostOrder::Sorted => hosts.sort(),
            HostOrder::ReverseSorted => {
                hosts.sort();
                hosts.reverse();
            }
            HostOrder::Shuffle => {
                // Fisher–Yates.
                for i in (1..hosts.len()).rev() {
                    hosts.swap(i, rand::random_range(0..=i));
                }
            }
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strategy {
    Linear,
    Free,
}

/// Keywords shared by plays, blocks, roles and tasks; inner values override outer.
#[derive(Debug, Clone, Default)]
pub struct Common {
    pub become_: Option<Flag>,
    pub become_user: Option<String>,
    pub become_method: Option<String>,
    pub remote_user: Option<String>,
    pub environment: Vec<Value>,
    pub tags: Vec<String>,
    pub when: Vec<Cond>,
    pub vars: Map<String, Value>,
    pub ignore_errors: Option<Flag>,
    pub ignore_unreachable: Option<Flag>,
    pub check_mode: Option<Flag>,
    pub diff: Option<Flag>,
    pub no_log: Option<Flag>,
    pub delegate_to: Option<String>,
    pub run_once: Option<Flag>,
    pub any_errors_fatal: Option<Flag>,
    pub connection: Option<String>,
    /// `throttle:`: at most this many hosts run the task at once (a
    /// number or a template; 0 means no limit).
    pub throttle: Option<Value>,
    /// `module_defaults:` in the order written (a list of mappings from
    /// module name to default arguments); inner scopes come after outer.
    pub module_defaults: Vec<ModuleDefaults>,
    /// `timeout:`: seconds a task may run before it is stopped and failed
    /// (a number or a template; 0 means no limit).
    pub timeout: Option<Value>,
    /// `notify:` of a block (or an include's `apply:`): the handlers its
    /// tasks notify when they have no `notify:` of their own.
    pub notify: Vec<Notify>,
}

/// One mapping of `module_defaults:`: module name (short for builtin
/// modules) to its default arguments (a mapping or a template of one).
#[derive(Debug, Clone)]
pub struct ModuleDefaults {
    pub entries: Map<String, Value>,
    pub loc: Loc,
}

/// A boolean keyword (`become`, `no_log`, `check_mode`, `ignore_errors`...):
/// a literal, or a template that each host evaluates when it reaches the
/// play, block, include or task that carries it (as Ansible does).
#[derive(Debug, Clone, PartialEq)]
pub enum Flag {
    Bool(bool),
    Template(String, Loc),
}

impl Flag {
    /// The literal value; `None` for a template not yet evaluated.
    pub fn literal(&self) -> Option<bool> {
        match self {
            Flag::Bool(b) => Some(*b),
            Flag::Template(..) => None,
        }
    }
}

impl Common {
    /// Whether any boolean keyword here is a template.
    pub fn has_flag_templates(&self) -> bool {
        self.flags().iter().any(|f| matches!(f, Some(Flag::Template(..))))
    }

    fn flags(&self) -> [&Option<Flag>; 8] {
        [
            &self.become_,
            &self.ignore_errors,
            &self.ignore_unreachable,
            &self.check_mode,
            &self.diff,
            &self.no_log,
            &self.run_once,
            &self.any_errors_fatal,
        ]
    }

    /// The boolean keywords by name, for evaluating their templates in place.
    pub fn flags_mut(&mut self) -> [(&'static str, &mut Option<Flag>); 8] {
        [
            ("become", &mut self.become_),
            ("ignore_errors", &mut self.ignore_errors),
            ("ignore_unreachable", &mut self.ignore_unreachable),
            ("check_mode", &mut self.check_mode),
            ("diff", &mut self.diff),
            ("no_log", &mut self.no_log),
            ("run_once", &mut self.run_once),
            ("any_errors_fatal", &mut self.any_errors_fatal),
        ]
    }
}

/// A `when:` / `changed_when:` condition with where it was written.
#[derive(Debug, Clone)]
pub struct Cond {
    pub expr: String,
    pub loc: Loc,
    /// The condition was written as a YAML boolean (`when: false`): a
    /// skipped task's `false_condition` is that boolean, as in Ansible.
    pub literal: Option<bool>,
    /// Written as `!unsafe` text: never evaluated; using it fails (at use,
    /// not at load, as in Ansible 2.19).
    pub untrusted: bool,
}

#[derive(Debug, Clone)]
pub enum TaskNode {
    Task(Arc<Task>),
    Block(Arc<Block>),
    /// `include_tasks` / `include_role`: expanded per host at run time.
    Include(Arc<Include>),
}

#[derive(Debug, Clone)]
pub struct Block {
    pub name: Option<String>,
    pub block: Vec<TaskNode>,
    pub rescue: Vec<TaskNode>,
    pub always: Vec<TaskNode>,
    pub common: Common,
    /// Role this block belongs to (role defaults/vars, role_path).
    pub role: Option<Arc<RoleCtx>>,
    /// This block is a use of a role, its whole task list: its end is the
    /// role's end (Ansible's implicit `role_complete`). Blocks and imports
    /// inside the role are not.
    pub role_root: bool,
    pub loc: Loc,
}

/// The variables and paths a role contributes to its tasks.
#[derive(Debug)]
pub struct RoleCtx {
    /// What identifies this use of the role in its play when it must not
    /// run twice on a host (duplicates not allowed); None when it may.
    pub dedup_key: Option<String>,
    pub name: String,
    pub path: PathBuf,
    pub defaults: Map<String, Value>,
    pub vars: Map<String, Value>,
    /// Parameters given where the role is used (`roles: [{role: x, port: 1}]`).
    pub params: Map<String, Value>,
    /// Its `meta/main.yml` dependencies, in order.
    pub deps: Vec<Arc<RoleCtx>>,
    /// The roles that imported or included it (`import_role`/`include_role`
    /// in a role's tasks), innermost first: name and path
    /// (`ansible_parent_role_names`, `ansible_parent_role_paths`).
    pub parents: Vec<(String, PathBuf)>,
    /// Its `meta/main.yml` `collections:`: the collections searched, in
    /// order, for a module its tasks name without a collection.
    pub collections: Vec<String>,
}

impl RoleCtx {
    /// Ansible's `get_default_vars()` without a dependency chain: the
    /// dependencies' defaults (recursively), then the role's own.
    pub fn add_defaults(&self, out: &mut Map<String, Value>) {
        for d in &self.deps {
            d.add_defaults(out);
        }
        out.extend(self.defaults.iter().map(|(k, v)| (k.clone(), v.clone())));
    }

    /// Ansible's `get_vars(only_exports=True)`: what a public role exports
    /// to its play: the dependencies' exports, then the role's `vars/`
    /// (not its parameters nor its `vars:` keyword).
    pub fn add_exports(&self, out: &mut Map<String, Value>) {
        for d in &self.deps {
            d.add_exports(out);
        }
        out.extend(self.vars.iter().map(|(k, v)| (k.clone(), v.clone())));
    }
}

/// Whether a role's defaults and vars are visible to the whole play, as
/// Ansible decides: its `public:` option; without one, the
/// `private_role_vars` setting (`ANSIBLE_PRIVATE_ROLE_VARS`) when set; else
/// public for roles loaded statically (`roles:`, `import_role`), private
/// for `include_role`.
pub fn role_is_public(public: Option<bool>, statically_loaded: bool) -> bool {
    public.unwrap_or_else(|| {
        match std::env::var("ANSIBLE_PRIVATE_ROLE_VARS")
            .ok()
            .and_then(|v| crate::template::parse_bool(&v))
        {
            Some(private) => !private,
            None => statically_loaded,
        }
    })
}

#[derive(Debug, Clone)]
pub struct Task {
    pub name: Option<String>,
    /// Canonical module name as written (`copy`, `ansible.builtin.copy`).
    pub action: String,
    /// Module arguments (a mapping; free-form text is under `_raw_params`).
    pub args: Node,
    pub loop_: Option<LoopSpec>,
    pub loop_control: LoopControl,
    pub register: Option<String>,
    pub until: Option<Cond>,
    pub retries: Option<Value>,
    pub delay: Option<Value>,
    /// `async`: seconds the module may run detached on the host (a
    /// template, rendered per host); unset or 0 runs it in the foreground.
    pub async_: Option<Value>,
    /// `poll`: seconds between checks of an `async` task (default 15); 0
    /// returns at once with the job's id (fire and forget).
    pub poll: Option<Value>,
    pub changed_when: Vec<Cond>,
    pub failed_when: Vec<Cond>,
    /// Handler names or `listen` topics, each with where it was written.
    pub notify: Vec<Notify>,
    pub listen: Vec<String>,
    pub common: Common,
    pub role: Option<Arc<RoleCtx>>,
    /// Directory for relative paths (`src:`, lookups): the file that defined the task.
    pub dir: PathBuf,
    pub loc: Loc,
    /// A handler that is a dynamic include (`include_tasks`/`include_role`
    /// under `handlers:`): notified by its name or `listen` topic like any
    /// handler, and when it runs, the include is loaded and walked then, as
    /// Ansible does.
    pub include: Option<Arc<Include>>,
}

impl Task {
    /// A task of `action` with `args` and no keywords (the ad-hoc task, the
    /// handler entry of an include).
    pub fn bare(name: Option<String>, action: &str, args: Node, dir: PathBuf, loc: Loc) -> Task {
        Task {
            name,
            action: action.to_string(),
            args,
            loop_: None,
            loop_control: LoopControl::default(),
            register: None,
            until: None,
            retries: None,
            delay: None,
            async_: None,
            poll: None,
            changed_when: Vec::new(),
            failed_when: Vec::new(),
            notify: Vec::new(),
            listen: Vec::new(),
            common: Common::default(),
            role: None,
            dir,
            loc,
            include: None,
        }
    }

    /// The name shown in output: `role : name`, or the action.
    pub fn display_name(&self) -> String {
        let base = self.name.clone().unwrap_or_else(|| self.action.clone());
        match &self.role {
            Some(r) => format!("{} : {}", r.name, base),
            None => base,
        }
    }
}

/// One `notify:` entry.
#[derive(Debug, Clone)]
pub struct Notify {
    pub name: String,
    pub loc: Loc,
}

/// The files a role is used with (`tasks_from`, `vars_from`,
/// `defaults_from`, `handlers_from`; `main` when not given).
#[derive(Debug, Clone, Default)]
pub struct RoleFiles {
    pub tasks_from: Option<String>,
    pub vars_from: Option<String>,
    pub defaults_from: Option<String>,
    pub handlers_from: Option<String>,
}

impl Task {
    /// Whether handler `h` answers the notification `name`: its name, its
    /// `role : name` form, or one of its `listen` topics.
    pub fn answers(&self, name: &str) -> bool {
        self.name.as_deref() == Some(name) || self.display_name() == name || self.listen.iter().any(|l| l == name)
    }
}

#[derive(Debug, Clone)]
pub enum LoopSpec {
    /// `loop:` or `with_items`/`with_list` (a template or a literal list).
    Items { value: Value, flatten: bool, loc: Loc },
    /// `with_dict`.
    Dict { value: Value, loc: Loc },
    /// `with_fileglob`.
    Fileglob { value: Value, loc: Loc },
    /// `with_<lookup>` (`with_first_found`, `with_sequence`...): the lookup's
    /// results for the value's terms (a list is a list of terms).
    Lookup { name: String, value: Value, loc: Loc },
}

#[derive(Debug, Clone, Default)]
pub struct LoopControl {
    pub loop_var: Option<String>,
    pub index_var: Option<String>,
    pub label: Option<String>,
    pub pause: Option<f64>,
    pub extended: bool,
    /// `extended_allitems:` (default true): `ansible_loop.allitems` holds
    /// the whole list when `extended` is on.
    pub extended_allitems: Option<bool>,
    /// `break_when:`: conditions checked after each item (with the item and
    /// its registered result); when they all hold the loop ends there.
    pub break_when: Vec<Cond>,
}

impl LoopControl {
    /// `ansible_loop` for item `idx` of `items`, as Ansible's TaskExecutor
    /// builds it, when `extended` is on.
    pub fn ansible_loop(&self, items: &[Value], idx: usize) -> Option<Value> {
        if !self.extended {
            return None;
        }
        let n = items.len();
        let mut m = Map::new();
        m.insert("index".into(), Value::from(idx + 1));
        m.insert("index0".into(), Value::from(idx));
        m.insert("first".into(), Value::Bool(idx == 0));
        m.insert("last".into(), Value::Bool(idx + 1 == n));
        m.insert("length".into(), Value::from(n));
        m.insert("revindex".into(), Value::from(n - idx));
        m.insert("revindex0".into(), Value::from(n - idx - 1));
        if self.extended_allitems.unwrap_or(true) {
            m.insert("allitems".into(), Value::Array(items.to_vec()));
        }
        if let Some(next) = items.get(idx + 1) {
            m.insert("nextitem".into(), next.clone());
        }
        if idx > 0 {
            m.insert("previtem".into(), items[idx - 1].clone());
        }
        Some(Value::Object(m))
    }
}

#[derive(Debug, Clone)]
pub struct Include {
    pub kind: IncludeKind,
    /// File (`include_tasks`) or role name (`include_role`), may be templated.
    pub target: String,
    pub args: Map<String, Value>,
    pub loop_: Option<LoopSpec>,
    pub loop_control: LoopControl,
    pub common: Common,
    pub role: Option<Arc<RoleCtx>>,
    pub dir: PathBuf,
    pub loc: Loc,
    /// `include_role: tasks_from:`, `vars_from:`... .
    pub role_files: RoleFiles,
    /// `include_role: public:`.
    pub public: Option<bool>,
    /// `include_role: allow_duplicates:` (default true).
    pub allow_duplicates: bool,
    /// `apply:`: keywords the included tasks get, as from a block around
    /// them.
    pub apply: Option<Common>,
    /// `name:` and `listen:`, which matter when the include is a handler.
    pub name: Option<String>,
    pub listen: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IncludeKind {
    Tasks,
    Role,
}
