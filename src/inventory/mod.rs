//! Inventories: INI, YAML, directories, dynamic scripts; host patterns.
//!
//! Loading follows Ansible's inventory manager: every source adds hosts,
//! groups and variables to one [`Inventory`]; afterwards every group without
//! a parent becomes a child of `all`, and hosts in no group land in
//! `ungrouped`. `group_vars/` and `host_vars/` next to each source (and next
//! to the playbook, see [`Inventory::load_vars_dirs`]) are layered on top in
//! Ansible's precedence order, see [`Inventory::host_vars`].
//!
//! Non-fatal problems (unknown keys in a YAML inventory, ...) are collected
//! in [`Inventory::warnings`] for the CLI to print, like Ansible's warnings.

mod hosts;
mod ini;
mod output;
mod pattern;
mod script;
mod value;
mod vars_dirs;
mod yaml_inv;

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use indexmap::{IndexMap, IndexSet};
use serde_json::{Map, Value};

use crate::error::LocError;
use crate::yaml::Loc;

pub use pattern::Selection;
pub use value::parse_ini_value;

/// Host names that Ansible resolves to an implicit `localhost` (connection
/// `local`) when the inventory does not define them.
pub const LOCALHOST_NAMES: [&str; 3] = ["localhost", "127.0.0.1", "::1"];

#[derive(Debug, Clone, Default)]
pub struct Host {
    pub name: String,
    /// Variables set on the host itself in an inventory source (not host_vars/).
    pub vars: Map<String, Value>,
    /// Variables `add_host` set during a run: rendered values (data, which
    /// may come from a host), never rendered again; above every other layer
    /// of the host.
    pub runtime_vars: Map<String, Value>,
}

#[derive(Debug, Clone, Default)]
pub struct Group {
    pub name: String,
    /// Variables set on the group in an inventory source (not group_vars/).
    pub vars: Map<String, Value>,
    /// Hosts listed directly in the group.
    pub hosts: Vec<String>,
    pub children: Vec<String>,
    pub parents: Vec<String>,
    /// `ansible_group_priority` from an inventory source; `None` means 1.
    pub priority: Option<i64>,
}

impl Group {
    fn new(name: &str) -> Self {
        Group {
            name: name.to_string(),
            ..Default::default()
        }
    }
    pub fn priority(&self) -> i64 {
        self.priority.unwrap_or(1)
    }
}

/// Variables read from `group_vars/` and `host_vars/` directories.
#[derive(Debug, Clone, Default)]
struct VarsLayer {
    dirs: Vec<PathBuf>,
    groups: HashMap<String, Map<String, Value>>,
    hosts: HashMap<String, Map<String, Value>>,
}

/// A loaded inventory. `all` and `ungrouped` always exist.
#[derive(Debug, Clone)]
pub struct Inventory {
    pub hosts: IndexMap<String, Host>,
    pub groups: IndexMap<String, Group>,
    /// Problems that Ansible reports as warnings; each carries its location.
    pub warnings: Vec<LocError>,
    /// group_vars/host_vars next to inventory sources.
    inventory_layer: VarsLayer,
    /// group_vars/host_vars next to the playbook (higher precedence).
    playbook_layer: VarsLayer,
    /// host -> groups that list it directly.
    memberships: HashMap<String, IndexSet<String>>,
    /// Depth of each group below `all`, recomputed by `reconcile`.
    depths: HashMap<String, usize>,
    /// `--limit` patterns; a selected host must match every one of them.
    subsets: Vec<Vec<String>>,
}

impl Default for Inventory {
    fn default() -> Self {
        Inventory::new()
    }
}

impl Inventory {
    /// An inventory with only `all` and `ungrouped`.
    pub fn new() -> Inventory {
        let mut inv = Inventory {
            hosts: IndexMap::new(),
            groups: IndexMap::new(),
            warnings: Vec::new(),
            inventory_layer: VarsLayer::default(),
            playbook_layer: VarsLayer::default(),
            memberships: HashMap::new(),
            depths: HashMap::new(),
            subsets: Vec::new(),
        };
        inv.ensure_group("all");
        inv.ensure_group("ungrouped");
        // Cannot fail: neither group has relatives yet.
        let _ = inv.add_child("all", "ungrouped");
        inv.reconcile();
        inv
    }

    /// Load one or more inventory sources: INI or YAML files, directories,
    /// executable dynamic-inventory scripts, or a host list like `a,b,`.
    /// A source may itself be a comma-separated list of existing paths.
    pub fn load(sources: &[String]) -> Result<Inventory, LocError> {
        let mut inv = Inventory::new();
        for source in sources {
            inv.add_source(source)?;
        }
        inv.reconcile();
        inv.refresh_layer_vars(false)?;
        Ok(inv)
    }

    fn add_source(&mut self, source: &str) -> Result<(), LocError> {
        let path = Path::new(source);
        if path.exists() {
            return self.add_path(path, true);
        }
        if source.contains(',') {
            let parts: Vec<&str> = source.split(',').map(str::trim).filter(|p| !p.is_empty()).collect();
            if !parts.is_empty() && parts.iter().all(|p| Path::new(p).exists()) {
                for p in parts {
                    self.add_path(Path::new(p), true)?;
                }
                return Ok(());
            }
            return self.add_host_list(source);
        }
        Err(LocError::new(
            Loc::synthetic(source),
            format!("inventory source `{source}` does not exist"),
        )
        .with_hint("give a path to an inventory file or directory, or a host list ending in a comma like `host1,`"))
    }

    fn add_host_list(&mut self, list: &str) -> Result<(), LocError> {
        let loc = Loc::synthetic(list);
        for item in list.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (name, port) = hosts::split_host_port(item).map_err(|m| LocError::new(loc.clone(), m))?;
            self.add_host_to(&name, Some("ungrouped"));
            if let Some(p) = port {
                self.set_host_var(&name, "ansible_port", Value::from(p));
            }
        }
        Ok(())
    }

    /// `top` is true for a source given on the command line: its directory is
    /// where `group_vars/` and `host_vars/` are looked up.
    fn add_path(&mut self, path: &Path, top: bool) -> Result<(), LocError> {
        if path.is_dir() {
            if top {
                self.inventory_layer.dirs.push(path.to_path_buf());
            }
            let mut entries: Vec<PathBuf> = std::fs::read_dir(path)
                .map_err(|e| io_error(path, "cannot read inventory directory", e))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| !ignored_in_dir(p))
                .collect();
            entries.sort();
            for entry in entries {
                self.add_path(&entry, false)?;
            }
            return Ok(());
        }
        if top {
            let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
            let dir = if dir.as_os_str().is_empty() {
                PathBuf::from(".")
            } else {
                dir
            };
            self.inventory_layer.dirs.push(dir);
        }
        if is_executable(path) {
            return script::load(self, path);
        }
        let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
        if matches!(ext, "yml" | "yaml" | "json") {
            return yaml_inv::load(self, path);
        }
        let text = std::fs::read_to_string(path).map_err(|e| io_error(path, "cannot read inventory file", e))?;
        crate::yaml::refuse_vaulted(text.as_bytes(), &path.display().to_string())?;
        ini::parse(self, &text, &path.display().to_string())
    }

    /// Read `group_vars/` and `host_vars/` next to the playbook (`dir` is the
    /// playbook's directory). They override the inventory's own vars dirs.
    pub fn load_vars_dirs(&mut self, dir: &Path) -> Result<(), LocError> {
        if !self.playbook_layer.dirs.iter().any(|d| d == dir) {
            self.playbook_layer.dirs.push(dir.to_path_buf());
        }
        self.refresh_layer_vars(true)
    }

    /// (Re)load vars-dir files for every group and host, of one layer or both.
    fn refresh_layer_vars(&mut self, playbook_only: bool) -> Result<(), LocError> {
        let groups: Vec<String> = self.groups.keys().cloned().collect();
        let hosts: Vec<String> = self.hosts.keys().cloned().collect();
        if !playbook_only {
            vars_dirs::load_layer(&mut self.inventory_layer, &groups, &hosts)?;
        }
        vars_dirs::load_layer(&mut self.playbook_layer, &groups, &hosts)
    }

    /// Hosts matching an Ansible pattern, honouring `--limit` (see
    /// [`Inventory::restrict`]). Order is Ansible's: pattern by pattern, each
    /// group's hosts as listed, no duplicates. Terms that match nothing are
    /// skipped (Ansible warns); use [`Inventory::select_detailed`] to learn
    /// which. A malformed pattern (bad regex, bad subscript) is an error at a
    /// synthetic location; callers with a playbook location may replace `loc`.
    pub fn select(&self, pattern: &str) -> Result<Vec<String>, LocError> {
        Ok(self.select_detailed(&[pattern.to_string()])?.hosts)
    }

    /// Like [`Inventory::select`] for a list of patterns (a play's `hosts:`
    /// list), also reporting the terms that matched nothing.
    pub fn select_detailed(&self, patterns: &[String]) -> Result<Selection, LocError> {
        let mut sel = pattern::evaluate(self, patterns)?;
        for subset in &self.subsets {
            let allowed: HashSet<String> = pattern::evaluate(self, subset)?.hosts.into_iter().collect();
            sel.hosts.retain(|h| allowed.contains(h));
        }
        Ok(sel)
    }

    /// Hosts matching a pattern, ignoring `--limit` (for `delegate_to`,
    /// `hostvars` lookups and the like).
    pub fn select_ignoring_limit(&self, pattern: &str) -> Result<Vec<String>, LocError> {
        Ok(pattern::evaluate(self, &[pattern.to_string()])?.hosts)
    }

    /// Apply `--limit`: later selections only return hosts that also match
    /// `limit`. `@file` reads one pattern per line. Several calls intersect.
    pub fn restrict(&mut self, limit: &str) -> Result<(), LocError> {
        let mut patterns = Vec::new();
        for part in pattern::split_patterns(limit) {
            if let Some(file) = part.strip_prefix('@') {
                let text = std::fs::read_to_string(file)
                    .map_err(|e| io_error(Path::new(file), "cannot read limit file", e))?;
                patterns.extend(text.lines().map(str::trim).filter(|l| !l.is_empty()).map(String::from));
            } else {
                patterns.push(part);
            }
        }
        // Validate now so that a bad limit fails before anything runs.
        pattern::evaluate(self, &patterns)?;
        self.subsets.push(patterns);
        Ok(())
    }

    /// A host's variables, in Ansible's precedence order (later wins):
    /// inventory-source vars of `all`, then of each of the host's groups
    /// sorted by (depth, `ansible_group_priority`, name); then `group_vars/all`
    /// (inventory dirs, then playbook dir); then `group_vars/<group>` in the
    /// same group order (inventory dirs, then playbook dir); then the host's
    /// inventory vars, `host_vars/<host>` of the inventory dirs and of the
    /// playbook dir. Dicts are replaced, not merged.
    ///
    /// An undefined `localhost`/`127.0.0.1`/`::1` is Ansible's implicit
    /// localhost: `all`'s vars plus `ansible_connection: local`.
    pub fn host_vars(&self, host: &str) -> Map<String, Value> {
        let mut out = Map::new();
        let groups = if self.hosts.contains_key(host) {
            self.sorted_groups_of(host)
        } else if LOCALHOST_NAMES.contains(&host) {
            out.insert("ansible_connection".into(), Value::from("local"));
            vec!["all".to_string()]
        } else {
            return out;
        };
        let combine = |out: &mut Map<String, Value>, m: Option<&Map<String, Value>>| {
            if let Some(m) = m {
                for (k, v) in m {
                    out.insert(k.clone(), v.clone());
                }
            }
        };
        combine(&mut out, self.groups.get("all").map(|g| &g.vars));
        for g in &groups {
            combine(&mut out, self.groups.get(g).map(|g| &g.vars));
        }
        combine(&mut out, self.inventory_layer.groups.get("all"));
        combine(&mut out, self.playbook_layer.groups.get("all"));
        for g in &groups {
            combine(&mut out, self.inventory_layer.groups.get(g));
        }
        for g in &groups {
            combine(&mut out, self.playbook_layer.groups.get(g));
        }
        combine(&mut out, self.hosts.get(host).map(|h| &h.vars));
        combine(&mut out, self.inventory_layer.hosts.get(host));
        combine(&mut out, self.playbook_layer.hosts.get(host));
        out
    }

    /// The variables `add_host` gave `host` during the run (data, see
    /// [`Host::runtime_vars`]).
    pub fn host_runtime_vars(&self, host: &str) -> Map<String, Value> {
        self.hosts.get(host).map(|h| h.runtime_vars.clone()).unwrap_or_default()
    }

    /// Every variable map as written in the sources (hosts, groups, and the
    /// `host_vars/`/`group_vars/` layers), unmerged: for finding secret values.
    pub fn raw_var_maps(&self) -> impl Iterator<Item = &Map<String, Value>> {
        let layers = [&self.inventory_layer, &self.playbook_layer];
        self.hosts
            .values()
            .map(|h| &h.vars)
            .chain(self.groups.values().map(|g| &g.vars))
            .chain(
                layers
                    .into_iter()
                    .flat_map(|l| l.hosts.values().chain(l.groups.values())),
            )
    }

    /// A group's own variables: inventory source, then `group_vars/` files of
    /// the inventory dirs (what `ansible-inventory --graph --vars` shows).
    pub fn group_vars(&self, group: &str) -> Map<String, Value> {
        let mut out = self.groups.get(group).map(|g| g.vars.clone()).unwrap_or_default();
        if let Some(m) = self.inventory_layer.groups.get(group) {
            for (k, v) in m {
                out.insert(k.clone(), v.clone());
            }
        }
        out
    }

    /// Groups the host belongs to, directly or through children, without
    /// `all`, sorted by name (Ansible's `group_names`; includes `ungrouped`).
    pub fn group_names(&self, host: &str) -> Vec<String> {
        let mut names: Vec<String> = self
            .ancestors_of_host(host)
            .into_iter()
            .filter(|g| g != "all")
            .collect();
        names.sort();
        names
    }

    /// `groups` magic variable: group name -> hosts (all groups, including
    /// `all` and `ungrouped`; ignores `--limit`, as Ansible does).
    pub fn groups_map(&self) -> Map<String, Value> {
        self.groups
            .keys()
            .map(|g| {
                let hosts = self.group_hosts(g).into_iter().map(Value::from).collect();
                (g.clone(), Value::Array(hosts))
            })
            .collect()
    }

    /// Add a host at run time (`add_host`): creates the host and any missing
    /// group (as a child of `all`), sets `vars` on the host, and reads the
    /// vars-dir files of what is new.
    pub fn add_host(&mut self, name: &str, groups: &[String], vars: Map<String, Value>) -> Result<(), LocError> {
        let new_host = !self.hosts.contains_key(name);
        let new_groups: Vec<String> = groups
            .iter()
            .filter(|g| !self.groups.contains_key(*g))
            .cloned()
            .collect();
        if groups.is_empty() {
            self.add_host_to(name, None);
        }
        for g in groups {
            self.add_host_to(name, Some(g));
        }
        if let Some(h) = self.hosts.get_mut(name) {
            h.runtime_vars.extend(vars);
        }
        self.reconcile();
        let hosts: Vec<String> = if new_host { vec![name.to_string()] } else { vec![] };
        vars_dirs::load_layer(&mut self.inventory_layer, &new_groups, &hosts)?;
        vars_dirs::load_layer(&mut self.playbook_layer, &new_groups, &hosts)?;
        Ok(())
    }

    // ----- building blocks used by the parsers -----

    fn ensure_group(&mut self, name: &str) {
        if !self.groups.contains_key(name) {
            self.groups.insert(name.to_string(), Group::new(name));
        }
    }

    /// Add a host (if new) and put it in `group` (if given, created if needed).
    fn add_host_to(&mut self, name: &str, group: Option<&str>) {
        if !self.hosts.contains_key(name) {
            self.hosts.insert(
                name.to_string(),
                Host {
                    name: name.to_string(),
                    vars: Map::new(),
                    runtime_vars: Map::new(),
                },
            );
        }
        let Some(group) = group else { return };
        self.ensure_group(group);
        let member_of = self.memberships.entry(name.to_string()).or_default();
        if member_of.insert(group.to_string()) {
            if let Some(g) = self.groups.get_mut(group) {
                g.hosts.push(name.to_string());
            }
        }
    }

    /// Make `child` a child group of `parent` (both created if needed).
    /// Errors (message only) when that would make a cycle.
    fn add_child(&mut self, parent: &str, child: &str) -> Result<(), String> {
        if parent == child || self.is_descendant(child, parent) {
            return Err(format!(
                "adding group `{child}` as a child of `{parent}` creates a cycle: `{parent}` is already inside `{child}`"
            ));
        }
        if child == "all" {
            return Err(format!("group `all` cannot be a child of `{parent}`"));
        }
        self.ensure_group(parent);
        self.ensure_group(child);
        if let Some(p) = self.groups.get_mut(parent) {
            if !p.children.iter().any(|c| c == child) {
                p.children.push(child.to_string());
            }
        }
        if let Some(c) = self.groups.get_mut(child) {
            if !c.parents.iter().any(|p| p == parent) {
                c.parents.push(parent.to_string());
            }
        }
        Ok(())
    }

    /// Is `candidate` `group` itself or below it?
    fn is_descendant(&self, group: &str, candidate: &str) -> bool {
        let mut stack = vec![group];
        let mut seen = HashSet::new();
        while let Some(g) = stack.pop() {
            if g == candidate {
                return true;
            }
            if !seen.insert(g) {
                continue;
            }
            if let Some(grp) = self.groups.get(g) {
                stack.extend(grp.children.iter().map(String::as_str));
            }
        }
        false
    }

    /// Set a group variable from an inventory source. `ansible_group_priority`
    /// sets the priority instead, as in Ansible.
    fn set_group_var(&mut self, group: &str, key: &str, value: Value) -> Result<(), String> {
        self.ensure_group(group);
        let Some(g) = self.groups.get_mut(group) else {
            return Ok(());
        };
        if key == "ansible_group_priority" {
            let p = match &value {
                Value::Number(n) => n.as_i64(),
                Value::String(s) => s.trim().parse().ok(),
                _ => None,
            };
            match p {
                Some(p) => g.priority = Some(p),
                None => return Err(format!("ansible_group_priority must be an integer, got {value}")),
            }
        } else {
            g.vars.insert(key.to_string(), value);
        }
        Ok(())
    }

    fn set_host_var(&mut self, host: &str, key: &str, value: Value) {
        self.add_host_to(host, None);
        if let Some(h) = self.hosts.get_mut(host) {
            h.vars.insert(key.to_string(), value);
        }
    }

    /// Ansible's `reconcile_inventory`: parentless groups go under `all`,
    /// hosts in no group go to `ungrouped`, hosts in another group leave it.
    fn reconcile(&mut self) {
        let orphans: Vec<String> = self
            .groups
            .values()
            .filter(|g| g.name != "all" && g.parents.is_empty())
            .map(|g| g.name.clone())
            .collect();
        for g in orphans {
            let _ = self.add_child("all", &g);
        }
        let names: Vec<String> = self.hosts.keys().cloned().collect();
        for h in names {
            let member_of = self.memberships.entry(h.clone()).or_default();
            let other = member_of.iter().any(|g| g != "all" && g != "ungrouped");
            if other && member_of.shift_remove("ungrouped") {
                if let Some(u) = self.groups.get_mut("ungrouped") {
                    u.hosts.retain(|x| *x != h);
                }
            } else if !other && !member_of.contains("ungrouped") {
                self.add_host_to(&h, Some("ungrouped"));
            }
        }
        self.depths.clear();
        let names: Vec<String> = self.groups.keys().cloned().collect();
        for g in names {
            self.depth_of(&g);
        }
    }

    fn depth_of(&mut self, group: &str) -> usize {
        if let Some(d) = self.depths.get(group) {
            return *d;
        }
        let parents = self.groups.get(group).map(|g| g.parents.clone()).unwrap_or_default();
        // Provisional value guards against (impossible) cycles.
        self.depths.insert(group.to_string(), 0);
        let d = parents.iter().map(|p| self.depth_of(p) + 1).max().unwrap_or(0);
        self.depths.insert(group.to_string(), d);
        d
    }

    /// The host's groups with all their ancestors (including `all`).
    fn ancestors_of_host(&self, host: &str) -> Vec<String> {
        let mut seen: IndexSet<String> = IndexSet::new();
        let mut stack: Vec<String> = self
            .memberships
            .get(host)
            .map(|m| m.iter().cloned().collect())
            .unwrap_or_default();
        while let Some(g) = stack.pop() {
            if seen.insert(g.clone()) {
                if let Some(grp) = self.groups.get(&g) {
                    stack.extend(grp.parents.iter().cloned());
                }
            }
        }
        if self.hosts.contains_key(host) {
            seen.insert("all".to_string());
        }
        seen.into_iter().collect()
    }

    /// The host's groups in variable-precedence order (`all` excluded).
    fn sorted_groups_of(&self, host: &str) -> Vec<String> {
        let mut groups: Vec<String> = self
            .ancestors_of_host(host)
            .into_iter()
            .filter(|g| g != "all")
            .collect();
        groups.sort_by(|a, b| {
            let key = |g: &String| {
                (
                    self.depths.get(g).copied().unwrap_or(0),
                    self.groups.get(g).map(Group::priority).unwrap_or(1),
                )
            };
            key(a).cmp(&key(b)).then_with(|| a.cmp(b))
        });
        groups
    }

    /// Hosts of a group and its descendants (breadth first), as Ansible's
    /// `Group.get_hosts`. For `all`, every host is included.
    fn group_hosts(&self, group: &str) -> Vec<String> {
        let mut out: IndexSet<&str> = IndexSet::new();
        let mut queue: std::collections::VecDeque<&str> = std::collections::VecDeque::from([group]);
        let mut seen: HashSet<&str> = HashSet::new();
        while let Some(g) = queue.pop_front() {
            if !seen.insert(g) {
                continue;
            }
            if let Some(grp) = self.groups.get(g) {
                out.extend(grp.hosts.iter().map(String::as_str));
                queue.extend(grp.children.iter().map(String::as_str));
            }
        }
        if group == "all" {
            out.extend(self.hosts.keys().map(String::as_str));
        }
        out.into_iter().map(String::from).collect()
    }
}

fn io_error(path: &Path, what: &str, e: std::io::Error) -> LocError {
    LocError::new(Loc::synthetic(&path.display().to_string()), format!("{what}: {e}"))
}

/// Files of an inventory directory that are not inventories (Ansible's
/// `INVENTORY_IGNORE_EXTS` plus hidden files and the vars directories).
fn ignored_in_dir(path: &Path) -> bool {
    let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
        return true;
    };
    const IGNORED_SUFFIXES: [&str; 12] = [
        "~", ".orig", ".retry", ".md", ".cfg", ".pyc", ".pyo", ".swp", ".bak", ".rpm", ".txt", ".rst",
    ];
    name.starts_with('.')
        || matches!(name, "group_vars" | "host_vars" | "vars_plugins")
        || IGNORED_SUFFIXES.iter().any(|s| name.ends_with(s))
}

/// An executable file is a dynamic inventory script, unless it is plainly a
/// text file that merely has the executable bit (common on copied trees):
/// scripts start with `#!`, programs with the ELF magic.
#[cfg(unix)]
fn is_executable(path: &Path) -> bool {
    use std::io::Read;
    use std::os::unix::fs::PermissionsExt;
    let executable = std::fs::metadata(path)
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false);
    if !executable {
        return false;
    }
    let mut head = [0u8; 4];
    let n = std::fs::File::open(path)
        .and_then(|mut f| f.read(&mut head))
        .unwrap_or(0);
    head[..n].starts_with(b"#!") || head[..n] == *b"\x7fELF"
}

#[cfg(not(unix))]
fn is_executable(_path: &Path) -> bool {
    false
}

#[cfg(test)]
mod tests;
