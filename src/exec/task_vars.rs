//! A host's variables for a task, in Ansible's precedence order (role
//! defaults, inventory, facts, play, role and block vars, `include_vars`,
//! `set_fact`/registered results, include parameters, extra vars, magic
//! variables), and the template context made of them: the play's magic
//! host lists and `hostvars` (other hosts' variables, computed on access)
//! over the variables. How layers merge and render is [`super::vars`].

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use serde_json::{Map, Value};

use super::context::{mj, PlayHost, PlayMagic, Scope};
use super::runner::Runner;
use super::vars::{Vars, VarsBuilder};
use crate::playbook::{RoleCtx, Task};
use crate::template::{omit, Templar};

impl Runner {
    /// Variables of a host visible to other hosts through `hostvars`.
    pub(super) fn hostvars_of(&self, host: &str) -> Option<Map<String, Value>> {
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
        let overlay = || minijinja::context! { groups => groups_value(&self.inv(), &mut NameValues::default()) };
        Some(b.resolve(&self.templar, overlay).into_map())
    }
}

impl PlayHost {
    /// This host's play vars when the play's `vars_files` are per host
    /// (loaded when its walk starts).
    pub(super) fn host_play_vars(&self) -> Option<Arc<Map<String, Value>>> {
        if !self.pctx.per_host_vars_files {
            return None;
        }
        let cached = self.pctx.host_vars.lock().unwrap_or_else(|p| p.into_inner());
        cached.get(&self.host).cloned()
    }

    /// Variables for a task on this host, in Ansible's precedence order.
    /// Source layers (playbook, roles, inventory, files, `-e`) hold
    /// templates; data layers (facts, registered and `set_fact` values,
    /// rendered include parameters) are never rendered (see [`super::vars`]).
    pub(super) fn vars(&self, scopes: &[Scope], task: Option<&Task>) -> Vars {
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
        // The play's public roles' defaults, then the task's own roles'.
        let included: Vec<Arc<RoleCtx>> = self
            .pctx
            .included_roles
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        m.source(&self.pctx.role_exports.defaults);
        for role in &included {
            let mut d = Map::new();
            role.add_defaults(&mut d);
            m.source_owned(d);
        }
        for role in &roles {
            m.source(&role.defaults);
        }
        let inv = r.inv();
        m.source_owned(inv.host_vars(&self.host));
        m.data_owned(inv.host_runtime_vars(&self.host));
        let group_names = inv.group_names(&self.host);
        drop(inv);
        r.with_host(&self.host, |s| add_facts(&mut m, &s.facts, &s.module_facts));
        match self.host_play_vars() {
            Some(v) => m.source(&v),
            None => m.source(&self.pctx.vars),
        }
        // Public roles' exported vars are above play vars (and vars_files).
        m.source(&self.pctx.role_exports.vars);
        for role in &included {
            let mut v = Map::new();
            role.add_exports(&mut v);
            m.source_owned(v);
        }
        // Ansible's Role.get_vars for the task's own role: the parents'
        // vars/ (outermost first), then what the role's dependencies export
        // (their vars/), then the role's own vars/.
        for (i, role) in roles.iter().enumerate() {
            if i + 1 == roles.len() {
                for d in &role.deps {
                    let mut v = Map::new();
                    d.add_exports(&mut v);
                    m.source_owned(v);
                }
            }
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
        m.data_one(
            "ansible_inventory_sources".into(),
            Value::Array(r.opts.inventory_sources.iter().cloned().map(Value::String).collect()),
        );
        m.data_one("ansible_check_mode".into(), Value::Bool(r.opts.check));
        // Ansible's options variables (`load_options_vars`) and the
        // controller's magic variables (`_get_magic_variables`).
        m.data_one("ansible_verbosity".into(), Value::from(r.opts.verbosity));
        m.data_one("ansible_forks".into(), Value::from(r.opts.forks));
        if let Some(limit) = &r.opts.limit {
            m.data_one("ansible_limit".into(), Value::String(limit.clone()));
        }
        m.data_one("ansible_config_file".into(), config_file());
        m.data_one(
            "ansible_playbook_python".into(),
            Value::String(crate::modules::ansible::playbook_python().display().to_string()),
        );
        m.data_one("ansible_diff_mode".into(), Value::Bool(r.opts.diff));
        // Ansible's `ansible_verbosity`: the run's -v count.
        m.data_one("ansible_verbosity".into(), Value::from(r.opts.verbosity));
        m.data_one(
            "ansible_run_tags".into(),
            Value::Array(r.opts.tags.iter().cloned().map(Value::String).collect()),
        );
        m.data_one(
            "ansible_skip_tags".into(),
            Value::Array(r.opts.skip_tags.iter().cloned().map(Value::String).collect()),
        );
        m.data_one("omit".into(), Value::String(omit().to_string()));
        // The connection variables a task sees even when nothing sets them
        // (Ansible's PlayContext.update_vars): the type, as the connection
        // pool chooses it, and the address.
        if !m.has("ansible_connection") {
            let implicit_local = self.host == "localhost" && !m.has("ansible_host");
            let kind = match &r.opts.conn.connection {
                Some(k) => k.clone(),
                None if implicit_local => {
                    // Ansible's implicit localhost runs modules with the
                    // controller's Python.
                    if let Some(py) = crate::inventory::controller_python() {
                        m.data_default("ansible_python_interpreter".into(), Value::from(py));
                    }
                    "local".into()
                }
                None => "ssh".into(),
            };
            m.data_one("ansible_connection".into(), Value::String(kind));
        }
        m.data_default("ansible_host".into(), host.clone());
        if let Some(role) = roles.last() {
            m.data_one("role_path".into(), Value::String(abs(&role.path)));
            m.data_one("role_name".into(), Value::String(role.name.clone()));
            // Ansible's fully qualified role name: the same for a role found on the roles path.
            m.data_one("ansible_role_name".into(), Value::String(role.name.clone()));
            if !role.parents.is_empty() {
                let names = role.parents.iter().map(|(n, _)| Value::String(n.clone())).collect();
                let paths = role.parents.iter().map(|(_, p)| Value::String(abs(p))).collect();
                m.data_one("ansible_parent_role_names".into(), Value::Array(names));
                m.data_one("ansible_parent_role_paths".into(), Value::Array(paths));
            }
        }
        add_role_names(&mut m, &self.pctx.play.roles, &included);
        let paths = self.search_dirs(roles.last().map(|r| r.as_ref()), task.map(|t| t.dir.as_path()));
        m.data_one(
            Templar::search_paths_var().into(),
            crate::template::search_paths(&paths),
        );
        m.data_one("ansible_search_path".into(), search_path_var(&paths));
        // Ansible's task executor: the first of `template`, `var`, `file`
        // that the action's name contains, else `file`; plus `s`.
        let subdir = match task.map(|t| t.action.as_str()) {
            Some(a) if a.contains("template") => "templates",
            Some(a) if a.contains("var") => "vars",
            _ => "files",
        };
        m.data_one(crate::template::LOOKUP_SUBDIR_VAR.into(), Value::String(subdir.into()));
        // Ansible's `ansible_search_path` (Base.get_search_path): the paths of
        // the task's role dependency chain, innermost first, then the
        // directory of the file that holds the task unless already there.
        let mut search_path: Vec<Value> = roles.iter().rev().map(|r| Value::String(abs(&r.path))).collect();
        if let Some(dir) = task.map(|t| Value::String(abs(&t.dir))) {
            if !search_path.contains(&dir) {
                search_path.push(dir);
            }
        }
        m.data_one("ansible_search_path".into(), Value::Array(search_path));
        m.resolve(&r.templar, || self.overlay())
    }

    /// Directories searched for relative paths (lookups, `src:`, task
    /// files): the role's, the directory of the file that holds the task or
    /// include, the play's.
    pub(super) fn search_dirs(&self, role: Option<&RoleCtx>, dir: Option<&std::path::Path>) -> Vec<PathBuf> {
        let mut paths: Vec<PathBuf> = role.map(|r| r.path.clone()).into_iter().collect();
        paths.extend(dir.map(std::path::Path::to_path_buf));
        paths.push(self.pctx.play.dir.clone());
        paths
    }

    /// What wins over variables in a template context: the play's magic
    /// variables and `hostvars`.
    pub(super) fn overlay(&self) -> minijinja::Value {
        let hv = minijinja::Value::from_object(HostVarsObj {
            runner: Arc::downgrade(&self.runner),
        });
        minijinja::value::merge_maps([self.magic(), minijinja::context! { hostvars => hv }])
    }

    /// `vars` with a data layer (loop item, include parameters) over them.
    pub(super) fn with_data(&self, vars: &Vars, layer: Map<String, Value>) -> Vars {
        vars.with_data(layer, &self.runner.templar, || self.overlay())
    }

    /// The play-wide magic variables (see [`PlayMagic`]), from the cache
    /// unless the inventory changed or another host dropped out.
    pub(super) fn magic(&self) -> minijinja::Value {
        let r = &self.runner;
        let generation = r.inv_generation.load(Ordering::SeqCst);
        let dropped_generation = r.dropped_generation.load(Ordering::SeqCst);
        {
            let cache = self.pctx.magic.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(c) = cache.as_ref() {
                if c.inv_generation == generation && c.dropped_generation == dropped_generation {
                    return c.value.clone();
                }
            }
        }
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
                let value = c.value.clone();
                *cache = Some(PlayMagic {
                    inv_generation: generation,
                    dropped_generation,
                    dropped,
                    value: value.clone(),
                });
                return value;
            }
        }
        // Each host's name is made a template value once and shared by
        // every list that names it (a clone is a reference count): the
        // lists of 100,000 hosts are 24 bytes an entry.
        let inv = r.inv();
        let mut shared = NameValues::default();
        let groups = groups_value(&inv, &mut shared);
        drop(inv);
        let mut names =
            |hosts: &mut dyn Iterator<Item = &String>| -> minijinja::Value { hosts.map(|h| shared.get(h)).collect() };
        // Failed and unreachable hosts are not active: they leave every
        // list but `ansible_play_hosts_all`. `play_hosts` is Ansible's old
        // name of `ansible_play_batch` (the serial batch), not of the play's.
        let gone: std::collections::HashSet<&String> = dropped.iter().collect();
        let active = names(&mut self.pctx.all_hosts.iter().filter(|h| !gone.contains(h)));
        let batch = names(&mut self.pctx.batch.iter().filter(|h| !gone.contains(h)));
        let value = minijinja::context! {
            groups => groups,
            ansible_play_hosts_all => names(&mut self.pctx.all_hosts.iter()),
            ansible_play_hosts => active,
            play_hosts => batch.clone(),
            ansible_play_batch => batch,
        };
        drop(gone);
        *cache = Some(PlayMagic {
            inv_generation: generation,
            dropped_generation,
            dropped,
            value: value.clone(),
        });
        value
    }

    /// The template context: variables plus lazily computed `hostvars`.
    pub(super) fn ctx(&self, vars: &Vars) -> minijinja::Value {
        self.over_vars(vars.context())
    }

    /// `base` (variables) under the play's magic variables and `hostvars`.
    pub(super) fn over_vars(&self, base: minijinja::Value) -> minijinja::Value {
        // The last map wins: hostvars, then the magic lists, then variables.
        minijinja::value::merge_maps([base, self.overlay()])
    }
}

/// Host names as template values, each made once (see [`PlayHost::magic`]).
#[derive(Default)]
struct NameValues(HashMap<String, minijinja::Value>);

impl NameValues {
    fn get(&mut self, host: &str) -> minijinja::Value {
        if let Some(v) = self.0.get(host) {
            return v.clone();
        }
        let v = minijinja::Value::from(host);
        self.0.insert(host.to_string(), v.clone());
        v
    }
}

/// `groups`: every group of the inventory and its hosts (and its
/// descendants'), in inventory order.
fn groups_value(inv: &crate::inventory::Inventory, names: &mut NameValues) -> minijinja::Value {
    let groups: indexmap::IndexMap<minijinja::Value, minijinja::Value> = inv
        .groups
        .keys()
        .map(|g| {
            let hosts: minijinja::Value = inv.group_host_names(g).into_iter().map(|h| names.get(h)).collect();
            (minijinja::Value::from(g.as_str()), hosts)
        })
        .collect();
    minijinja::Value::from_object(groups)
}

/// Ansible's role name magic variables: `ansible_play_role_names` (and its
/// old name `role_names`), the roles the play names (`roles:`, imported and
/// included roles); `ansible_dependent_role_names`, the roles they depend on
/// (through meta/main.yml, recursively); `ansible_role_names`, both.
fn add_role_names(b: &mut VarsBuilder, play_roles: &[Arc<RoleCtx>], included: &[Arc<RoleCtx>]) {
    fn push_unique(out: &mut Vec<String>, name: &str) {
        if !out.iter().any(|n| n == name) {
            out.push(name.to_string());
        }
    }
    fn deps_of(role: &RoleCtx, out: &mut Vec<String>) {
        for d in &role.deps {
            push_unique(out, &d.name);
            deps_of(d, out);
        }
    }
    let mut play_names = Vec::new();
    let mut dep_names = Vec::new();
    for role in play_roles.iter().chain(included) {
        push_unique(&mut play_names, &role.name);
        deps_of(role, &mut dep_names);
    }
    let mut all = play_names.clone();
    for d in &dep_names {
        push_unique(&mut all, d);
    }
    let list = |v: &[String]| Value::Array(v.iter().cloned().map(Value::String).collect());
    b.data_one("ansible_play_role_names".into(), list(&play_names));
    b.data_one("role_names".into(), list(&play_names));
    b.data_one("ansible_dependent_role_names".into(), list(&dep_names));
    b.data_one("ansible_role_names".into(), list(&all));
}

/// Facts as variables, all data: gathered facts as `ansible_facts` and each
/// as `ansible_NAME`; facts that modules returned under their own names
/// (and in `ansible_facts`). `ansible_facts` is always defined, as under
/// Ansible: an empty mapping before any fact is gathered or set.
fn add_facts(b: &mut VarsBuilder, facts: &Map<String, Value>, module_facts: &Map<String, Value>) {
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
pub(super) fn clean_facts(facts: &Map<String, Value>) -> Map<String, Value> {
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
        "ansible_search_path",
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

/// The `hostvars` magic variable: other hosts' variables, computed on access.
#[derive(Debug)]
struct HostVarsObj {
    runner: std::sync::Weak<Runner>,
}

impl minijinja::value::Object for HostVarsObj {
    fn get_value(self: &Arc<Self>, key: &minijinja::Value) -> Option<minijinja::Value> {
        let runner = self.runner.upgrade()?;
        let host = key.as_str()?;
        let vars = runner.hostvars_of(host)?;
        // A render reading another host's vault values is tainted.
        if crate::template::taint::tracking() {
            crate::template::taint::mark_if_secret(&Value::Object(vars.clone()));
        }
        Some(mj(&vars))
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

/// `ansible_config_file`: the absolute path of the ansible.cfg in use
/// (null without one), found once per run.
fn config_file() -> Value {
    static CFG: std::sync::OnceLock<Value> = std::sync::OnceLock::new();
    CFG.get_or_init(|| match crate::ansible_cfg::ansible_cfg_path() {
        Some(p) => Value::String(std::path::absolute(&p).unwrap_or(p).display().to_string()),
        None => Value::Null,
    })
    .clone()
}

/// `ansible_search_path`: the directories relative paths are looked up
/// in (the role's, the task file's, the play's), absolute, each once.
fn search_path_var(paths: &[PathBuf]) -> Value {
    let mut out: Vec<Value> = Vec::new();
    for p in paths {
        let p = if p.as_os_str().is_empty() {
            std::path::Path::new(".")
        } else {
            p.as_path()
        };
        let s = Value::String(
            std::path::absolute(p)
                .unwrap_or_else(|_| p.to_path_buf())
                .display()
                .to_string(),
        );
        if !out.contains(&s) {
            out.push(s);
        }
    }
    Value::Array(out)
}

fn abs(p: &std::path::Path) -> String {
    // A playbook named without a directory lives in the current one
    // (Ansible's `dirname(abspath(playbook))`), not in "".
    let p = if p.as_os_str().is_empty() {
        std::path::Path::new(".")
    } else {
        p
    };
    std::fs::canonicalize(p)
        .unwrap_or_else(|_| p.to_path_buf())
        .display()
        .to_string()
}
