//! The inventory itself: hosts, groups, their variables and the group tree,
//! with the building blocks the source parsers add to it and the variable
//! precedence the runner reads. Loading sources and selecting hosts by
//! pattern build on this (see the folder's `mod.rs`).

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;

use indexmap::{IndexMap, IndexSet};
use serde_json::{Map, Value};

use crate::error::LocError;

/// Why a group relation or group variable is refused; the caller adds the
/// source location.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum GroupError {
    #[error("adding group `{child}` as a child of `{parent}` creates a cycle: `{parent}` is already inside `{child}`")]
    Cycle { parent: String, child: String },
    #[error("group `all` cannot be a child of `{0}`")]
    AllAsChild(String),
    #[error("ansible_group_priority must be an integer, got {0}")]
    Priority(Value),
}

/// Host names that Ansible resolves to an implicit `localhost` (connection
/// `local`) when the inventory does not define them.
pub const LOCALHOST_NAMES: [&str; 3] = ["localhost", "127.0.0.1", "::1"];

/// The implicit localhost's `ansible_python_interpreter`: Ansible gives it
/// the controller's own Python (`sys.executable`); rigger's controller
/// Python is `RIGGER_ANSIBLE_PYTHON` (the one it runs ansible-core's modules
/// with), else `python3` on `PATH`. None found: unset, discovered as on any
/// host. Looked up once, without running anything.
pub fn controller_python() -> Option<&'static str> {
    static PY: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
    PY.get_or_init(|| {
        if let Some(p) = std::env::var_os("RIGGER_ANSIBLE_PYTHON").filter(|p| !p.is_empty()) {
            return p.into_string().ok();
        }
        let path = std::env::var_os("PATH")?;
        std::env::split_paths(&path)
            .map(|d| d.join("python3"))
            .find(|p| p.is_absolute() && p.is_file())
            .and_then(|p| p.into_os_string().into_string().ok())
    })
    .as_deref()
}

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
    pub(super) fn new(name: &str) -> Self {
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
pub(super) struct VarsLayer {
    pub(super) dirs: Vec<PathBuf>,
    pub(super) groups: HashMap<String, Map<String, Value>>,
    pub(super) hosts: HashMap<String, Map<String, Value>>,
}

/// A loaded inventory. `all` and `ungrouped` always exist.
#[derive(Debug, Clone)]
pub struct Inventory {
    pub hosts: IndexMap<String, Host>,
    pub groups: IndexMap<String, Group>,
    /// Problems that Ansible reports as warnings; each carries its location.
    pub warnings: Vec<LocError>,
    /// group_vars/host_vars next to inventory sources.
    pub(super) inventory_layer: VarsLayer,
    /// group_vars/host_vars next to the playbook (higher precedence).
    pub(super) playbook_layer: VarsLayer,
    /// host -> groups that list it directly.
    pub(super) memberships: HashMap<String, IndexSet<String>>,
    /// Depth of each group below `all`, recomputed by `reconcile`.
    pub(super) depths: HashMap<String, usize>,
    /// `--limit` patterns; a selected host must match every one of them.
    pub(super) subsets: Vec<Vec<String>>,
    /// What to do with group names that are not valid variable names.
    pub group_chars: GroupChars,
    /// The sources and policy it was loaded from, and every change made to
    /// it during the run (`add_host`, `group_by`): what `meta:
    /// refresh_inventory` reads again and replays.
    pub(super) origin: Option<(Vec<String>, UnparsedPolicy)>,
    pub(super) dynamic: Vec<DynamicChange>,
}

/// A change made to the inventory during a run, kept to be replayed after
/// `meta: refresh_inventory` (Ansible's `_cached_dynamic_hosts` and
/// `_cached_dynamic_grouping`).
#[derive(Debug, Clone)]
pub(super) enum DynamicChange {
    AddHost {
        name: String,
        groups: Vec<String>,
        vars: Map<String, Value>,
    },
    GroupBy {
        host: String,
        group: String,
        parents: Vec<String>,
    },
}

/// Ansible's `TRANSFORM_INVALID_GROUP_CHARS`: whether group names with
/// characters that are invalid in a variable name are rewritten.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum GroupChars {
    /// Replace them with `_` and warn.
    Always,
    /// Keep them and warn (Ansible's default).
    #[default]
    Never,
    /// Keep them silently.
    Ignore,
    /// Replace them silently.
    Silently,
}

impl GroupChars {
    /// `ANSIBLE_TRANSFORM_INVALID_GROUP_CHARS`, else ansible.cfg's
    /// `[defaults] force_valid_group_names`, else `never`.
    pub fn from_config() -> Result<GroupChars, String> {
        let Some(v) = std::env::var("ANSIBLE_TRANSFORM_INVALID_GROUP_CHARS")
            .ok()
            .or_else(|| crate::ansible_cfg::value("defaults", "force_valid_group_names"))
        else {
            return Ok(GroupChars::Never);
        };
        match v.trim().to_ascii_lowercase().as_str() {
            "always" | "true" | "yes" => Ok(GroupChars::Always),
            "never" | "false" | "no" | "" => Ok(GroupChars::Never),
            "ignore" => Ok(GroupChars::Ignore),
            "silently" => Ok(GroupChars::Silently),
            other => Err(format!(
                "ANSIBLE_TRANSFORM_INVALID_GROUP_CHARS must be one of always, never, ignore, silently, got `{other}`"
            )),
        }
    }
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
            group_chars: GroupChars::Never,
            origin: None,
            dynamic: Vec::new(),
        };
        inv.ensure_group("all");
        inv.ensure_group("ungrouped");
        // Cannot fail: neither group has relatives yet.
        let _ = inv.add_child("all", "ungrouped");
        inv.reconcile();
        inv
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
            if let Some(py) = controller_python() {
                out.insert("ansible_python_interpreter".into(), Value::from(py));
            }
            vec!["all".to_string()]
        } else {
            return out;
        };
        let merge = crate::ansible_cfg::hash_merge();
        let combine = |out: &mut Map<String, Value>, m: Option<&Map<String, Value>>| {
            if let Some(m) = m {
                for (k, v) in m {
                    let v = match out.get(k) {
                        Some(old) if merge => crate::ansible_cfg::merge_hash(old, v),
                        _ => v.clone(),
                    };
                    out.insert(k.clone(), v);
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

    /// A host's variables from the inventory sources alone (no
    /// `group_vars/`/`host_vars/`): `all`'s, its groups' in precedence
    /// order, its own. What an inventory plugin sees of a host.
    pub(crate) fn host_source_vars(&self, host: &str) -> Map<String, Value> {
        let mut out = Map::new();
        let groups = self.sorted_groups_of(host);
        for g in std::iter::once(&"all".to_string()).chain(&groups) {
            if let Some(grp) = self.groups.get(g) {
                out.extend(grp.vars.clone());
            }
        }
        if let Some(h) = self.hosts.get(host) {
            out.extend(h.vars.clone());
        }
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

    // ----- building blocks used by the parsers -----

    /// A group name as Ansible's `to_safe_group_name` leaves it: characters
    /// that cannot be in a variable name (and a leading digit) are replaced
    /// by `_` when [`GroupChars::Always`]/[`GroupChars::Silently`]; a
    /// warning says so, or says that they were kept (`Never`, Ansible's
    /// default).
    pub(super) fn safe_group_name(&mut self, name: &str) -> String {
        let invalid = |i: usize, c: char| !(c.is_alphanumeric() || c == '_') || (i == 0 && c.is_numeric());
        if !name.chars().enumerate().any(|(i, c)| invalid(i, c)) {
            return name.to_string();
        }
        let (out, warning) = match self.group_chars {
            GroupChars::Always | GroupChars::Silently => (
                name.chars()
                    .enumerate()
                    .map(|(i, c)| if invalid(i, c) { '_' } else { c })
                    .collect(),
                (self.group_chars == GroupChars::Always).then_some(
                    "Invalid characters were found in group names and automatically replaced, use -vvvv to see details",
                ),
            ),
            GroupChars::Never => (
                name.to_string(),
                Some("Invalid characters were found in group names but not replaced, use -vvvv to see details"),
            ),
            GroupChars::Ignore => (name.to_string(), None),
        };
        if let Some(w) = warning {
            if !self.warnings.iter().any(|e| e.msg == w) {
                self.warnings.push(LocError::new(crate::yaml::Loc::synthetic(name), w));
            }
        }
        out
    }

    pub(crate) fn ensure_group(&mut self, name: &str) {
        let name = &self.safe_group_name(name);
        if !self.groups.contains_key(name) {
            self.groups.insert(name.to_string(), Group::new(name));
        }
    }

    /// Add a host (if new) and put it in `group` (if given, created if needed).
    pub(crate) fn add_host_to(&mut self, name: &str, group: Option<&str>) {
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
        let group = &self.safe_group_name(group);
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
    pub(crate) fn add_child(&mut self, parent: &str, child: &str) -> Result<(), GroupError> {
        let (parent, child) = (&self.safe_group_name(parent), &self.safe_group_name(child));
        if parent == child || self.is_descendant(child, parent) {
            return Err(GroupError::Cycle {
                parent: parent.to_string(),
                child: child.to_string(),
            });
        }
        if child == "all" {
            return Err(GroupError::AllAsChild(parent.to_string()));
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
    pub(super) fn is_descendant(&self, group: &str, candidate: &str) -> bool {
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
    pub(crate) fn set_group_var(&mut self, group: &str, key: &str, value: Value) -> Result<(), GroupError> {
        let group = &self.safe_group_name(group);
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
                None => return Err(GroupError::Priority(value)),
            }
        } else {
            // Ansible's Group.set_variable: a mapping over a mapping is
            // combined (merged when hashes merge).
            crate::ansible_cfg::combine_vars(&mut g.vars, Map::from_iter([(key.to_string(), value)]));
        }
        Ok(())
    }

    pub(crate) fn set_host_var(&mut self, host: &str, key: &str, value: Value) {
        self.add_host_to(host, None);
        if let Some(h) = self.hosts.get_mut(host) {
            crate::ansible_cfg::combine_vars(&mut h.vars, Map::from_iter([(key.to_string(), value)]));
        }
    }

    /// Ansible's `reconcile_inventory`: parentless groups go under `all`,
    /// hosts in no group go to `ungrouped`, hosts in another group leave it.
    pub(crate) fn reconcile(&mut self) {
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

    pub(super) fn depth_of(&mut self, group: &str) -> usize {
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
    pub(super) fn ancestors_of_host(&self, host: &str) -> Vec<String> {
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
    pub(super) fn sorted_groups_of(&self, host: &str) -> Vec<String> {
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
    pub(super) fn group_hosts(&self, group: &str) -> Vec<String> {
        self.group_host_names(group).into_iter().map(String::from).collect()
    }

    /// The hosts of a group and of its descendants, in inventory order,
    /// each once (what `groups[group]` lists).
    pub fn group_host_names(&self, group: &str) -> Vec<&str> {
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
        out.into_iter().collect()
    }
}

/// How sources are read: what happens to one that cannot be parsed
/// (Ansible's `INVENTORY_ANY_UNPARSED_IS_FAILED` and
/// `INVENTORY_UNPARSED_IS_FAILED`) and to invalid group names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnparsedPolicy {
    /// Group names that are not valid variable names.
    pub group_chars: GroupChars,
    /// Any source that fails is an error (else a warning).
    pub any_unparsed_is_failed: bool,
    /// No source parsed at all is an error (else a warning: only the
    /// implicit localhost is left).
    pub unparsed_is_failed: bool,
}
