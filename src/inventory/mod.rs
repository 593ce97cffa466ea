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
//!
//! `model.rs` holds the inventory's data and the building blocks the parsers
//! (`ini`, `yaml_inv`, `script`) add to it; this file loads sources into it
//! and selects hosts by pattern (`pattern`).

mod conn_vars;
mod hosts;
mod ini;
mod model;
mod output;
mod pattern;
mod plugin_hook;
mod script;
pub(crate) mod value;
mod vars_dirs;
mod yaml_inv;

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use crate::error::LocError;
use crate::yaml::Loc;

pub use conn_vars::{check as check_connection_var, check_all as check_connection_vars};
pub use hosts::split_host_port;
use model::DynamicChange;
pub use model::{controller_python, Group, GroupChars, Host, Inventory, UnparsedPolicy, LOCALHOST_NAMES};
pub use output::dump_json;
pub use pattern::Selection;
pub use value::parse_ini_value;

pub use plugin_hook::{install_plugin_loader, PluginLoader};

impl Inventory {
    /// Load one or more inventory sources: INI or YAML files, directories,
    /// executable dynamic-inventory scripts, inventory plugin configurations
    /// (`plugin: constructed`, `plugin: generator`), or a host list like
    /// `a,b,`. A source may itself be a comma-separated list of existing
    /// paths. Any source that cannot be parsed is an error (see
    /// [`Inventory::load_with`] for Ansible's warnings instead).
    pub fn load(sources: &[String]) -> Result<Inventory, LocError> {
        Inventory::load_with(sources, UnparsedPolicy::strict())
    }

    /// The inventory a dynamic-inventory script's `--list` output gives
    /// (`list`, JSON as the script printed it), without running anything:
    /// hosts missing from `_meta.hostvars` get no variables. For tests and
    /// fuzzing of the parser that [`Inventory::load`] uses on a script.
    pub fn from_script_output(list: &[u8], name: &str) -> Result<Inventory, LocError> {
        let loc = crate::yaml::Loc::synthetic(name);
        let data = serde_json::from_slice(list)
            .map_err(|e| LocError::new(loc.clone(), format!("inventory script printed invalid JSON: {e}")))?;
        let mut inv = Inventory::new();
        script::from_output(&mut inv, data, &loc, |_| {
            Ok(serde_json::Value::Object(Default::default()))
        })?;
        Ok(inv)
    }

    /// Load sources as Ansible's inventory manager does: a source that
    /// cannot be parsed (missing, malformed, an empty directory) is a
    /// warning in [`Inventory::warnings`], unless
    /// `policy.any_unparsed_is_failed`; when no source at all was parsed,
    /// only the implicit localhost is there (a warning), unless
    /// `policy.unparsed_is_failed`.
    pub fn load_with(sources: &[String], policy: UnparsedPolicy) -> Result<Inventory, LocError> {
        let mut inv = Inventory::new();
        inv.group_chars = policy.group_chars;
        let mut parsed = false;
        for source in sources {
            parsed |= inv.add_source(source, &policy)?;
        }
        if !parsed && !sources.is_empty() {
            if policy.unparsed_is_failed {
                return Err(LocError::new(
                    Loc::synthetic(&sources.join(", ")),
                    "No inventory was parsed, please check your configuration and options.",
                ));
            }
            inv.warnings.push(LocError::new(
                Loc::synthetic(&sources.join(", ")),
                "No inventory was parsed, only implicit localhost is available",
            ));
        }
        inv.reconcile();
        inv.refresh_layer_vars(false)?;
        inv.origin = Some((sources.to_vec(), policy));
        Ok(inv)
    }

    /// `meta: refresh_inventory`: read the sources again (as Ansible's
    /// `InventoryManager.refresh_inventory`), keeping the playbook's vars
    /// dirs and the `--limit`, then replay this run's `add_host` and
    /// `group_by` changes (a `group_by` of a host that is gone is dropped).
    /// Warnings of the new read are returned. An inventory that was not
    /// loaded from sources only replays.
    pub fn refresh(&mut self) -> Result<Vec<LocError>, LocError> {
        let mut fresh = match &self.origin {
            Some((sources, policy)) => Inventory::load_with(sources, *policy)?,
            None => {
                let mut inv = Inventory::new();
                inv.group_chars = self.group_chars;
                inv
            }
        };
        for dir in &self.playbook_layer.dirs {
            fresh.load_vars_dirs(dir)?;
        }
        fresh.subsets = self.subsets.clone();
        let dynamic = std::mem::take(&mut self.dynamic);
        for change in &dynamic {
            match change {
                DynamicChange::AddHost { name, groups, vars } => {
                    fresh.add_host(name, groups, vars.clone())?;
                }
                DynamicChange::GroupBy { host, group, parents } => {
                    if fresh.hosts.contains_key(host) {
                        fresh.group_by(host, group, parents)?;
                    }
                }
            }
        }
        fresh.dynamic = dynamic;
        let warnings = std::mem::take(&mut fresh.warnings);
        *self = fresh;
        Ok(warnings)
    }

    /// Parse one source; `Ok(false)` when it was not parsed and the policy
    /// makes that a warning.
    fn add_source(&mut self, source: &str, policy: &UnparsedPolicy) -> Result<bool, LocError> {
        let path = Path::new(source);
        if path.exists() {
            return self.add_path(path, true, policy);
        }
        let result = if source.contains(',') {
            let parts: Vec<&str> = source.split(',').map(str::trim).filter(|p| !p.is_empty()).collect();
            if !parts.is_empty() && parts.iter().all(|p| Path::new(p).exists()) {
                let mut parsed = false;
                for p in parts {
                    parsed |= self.add_path(Path::new(p), true, policy)?;
                }
                return Ok(parsed);
            }
            self.add_host_list(source)
        } else {
            Err(LocError::new(
                Loc::synthetic(source),
                format!("inventory source `{source}` does not exist"),
            )
            .with_hint("give a path to an inventory file or directory, or a host list ending in a comma like `host1,`"))
        };
        self.unparsed(source, result, policy)
    }

    /// What a source's parse result means under the policy.
    fn unparsed(
        &mut self,
        source: &str,
        result: Result<(), LocError>,
        policy: &UnparsedPolicy,
    ) -> Result<bool, LocError> {
        match result {
            Ok(()) => Ok(true),
            Err(e) if policy.any_unparsed_is_failed => Err(e),
            Err(e) => {
                self.warnings.push(e);
                self.warnings.push(LocError::new(
                    Loc::synthetic(source),
                    format!("Unable to parse {source} as an inventory source"),
                ));
                Ok(false)
            }
        }
    }

    fn add_host_list(&mut self, list: &str) -> Result<(), LocError> {
        let loc = Loc::synthetic(list);
        for item in list.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (name, port) = hosts::split_host_port(item).map_err(|m| LocError::new(loc.clone(), m.to_string()))?;
            self.add_host_to(&name, Some("ungrouped"));
            if let Some(p) = port {
                self.set_host_var(&name, "ansible_port", Value::from(p));
            }
        }
        Ok(())
    }

    /// `top` is true for a source given on the command line: its directory is
    /// where `group_vars/` and `host_vars/` are looked up. Returns whether
    /// anything was parsed (an empty directory is not, as in Ansible).
    fn add_path(&mut self, path: &Path, top: bool, policy: &UnparsedPolicy) -> Result<bool, LocError> {
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
            let mut parsed = false;
            for entry in entries {
                parsed |= self.add_path(&entry, false, policy)?;
            }
            if !parsed {
                let source = path.display().to_string();
                let e = LocError::new(
                    Loc::synthetic(&source),
                    format!("inventory directory {source} holds no inventory source"),
                );
                return self.unparsed(&source, Err(e), policy);
            }
            return Ok(true);
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
        let result = self.add_file(path);
        self.unparsed(&path.display().to_string(), result, policy)
    }

    fn add_file(&mut self, path: &Path) -> Result<(), LocError> {
        if is_executable(path) {
            if crate::audit::files::enabled() {
                if let Ok(bytes) = std::fs::read(path) {
                    crate::audit::files::note_file(path, &bytes);
                }
            }
            return script::load(self, path);
        }
        let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
        if matches!(ext, "yml" | "yaml" | "json") {
            return yaml_inv::load(self, path);
        }
        let text = std::fs::read_to_string(path).map_err(|e| io_error(path, "cannot read inventory file", e))?;
        crate::audit::files::note_file(path, text.as_bytes());
        let name = path.display().to_string();
        match crate::yaml::decrypt_vaulted_text(&text, &name)? {
            Some(plain) => ini::parse_vaulted(self, &plain, &name),
            None => ini::parse(self, &text, &name),
        }
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
    pub(crate) fn refresh_layer_vars(&mut self, playbook_only: bool) -> Result<(), LocError> {
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

    /// Like [`Inventory::select_ignoring_limit`] for a list of patterns.
    pub fn select_ignoring_limits(&self, patterns: &[String]) -> Result<Vec<String>, LocError> {
        Ok(pattern::evaluate(self, patterns)?.hosts)
    }

    /// Add an empty group (a child of `all`) if it does not exist.
    pub fn add_group(&mut self, name: &str) {
        if !self.groups.contains_key(name) {
            self.ensure_group(name);
            self.reconcile();
        }
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

    /// `group_by` at run time, as Ansible's strategy applies it: `group`
    /// and each of `parents` are created if missing, `group` becomes a
    /// child of each parent, and `host` joins `group`; the vars-dir files of
    /// new groups are read. Whether the inventory changed.
    pub fn group_by(&mut self, host: &str, group: &str, parents: &[String]) -> Result<bool, LocError> {
        self.dynamic.push(DynamicChange::GroupBy {
            host: host.to_string(),
            group: group.to_string(),
            parents: parents.to_vec(),
        });
        let new_groups: Vec<String> = std::iter::once(group)
            .chain(parents.iter().map(String::as_str))
            .filter(|g| !self.groups.contains_key(*g))
            .map(str::to_string)
            .collect();
        let mut changed = !new_groups.is_empty();
        self.ensure_group(group);
        for p in parents {
            let linked = self
                .groups
                .get(p)
                .is_some_and(|pg| pg.children.iter().any(|c| c == group));
            if !linked {
                self.add_child(p, group)
                    .map_err(|e| LocError::new(Loc::synthetic("group_by"), e.to_string()))?;
                changed = true;
            }
        }
        if !self.memberships.get(host).is_some_and(|m| m.contains(group)) {
            self.add_host_to(host, Some(group));
            changed = true;
        }
        self.reconcile();
        vars_dirs::load_layer(&mut self.inventory_layer, &new_groups, &[])?;
        vars_dirs::load_layer(&mut self.playbook_layer, &new_groups, &[])?;
        Ok(changed)
    }

    /// Add a host at run time (`add_host`): creates the host and any missing
    /// group (as a child of `all`), sets `vars` on the host, and reads the
    /// vars-dir files of what is new. Returns whether the inventory changed
    /// (as Ansible's `add_dynamic_host` reports it): a new host, a variable
    /// the host did not have with that value, or a new group membership.
    pub fn add_host(&mut self, name: &str, groups: &[String], vars: Map<String, Value>) -> Result<bool, LocError> {
        self.dynamic.push(DynamicChange::AddHost {
            name: name.to_string(),
            groups: groups.to_vec(),
            vars: vars.clone(),
        });
        let new_host = !self.hosts.contains_key(name);
        let mut changed = new_host
            || self.hosts.get(name).is_some_and(|h| {
                vars.iter()
                    .any(|(k, v)| h.runtime_vars.get(k).or_else(|| h.vars.get(k)) != Some(v))
            });
        let member_of = |inv: &Self| inv.memberships.get(name).map(|m| m.len());
        let before = member_of(self);
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
        changed |= member_of(self) != before;
        self.reconcile();
        let hosts: Vec<String> = if new_host { vec![name.to_string()] } else { vec![] };
        vars_dirs::load_layer(&mut self.inventory_layer, &new_groups, &hosts)?;
        vars_dirs::load_layer(&mut self.playbook_layer, &new_groups, &hosts)?;
        changed |= !new_groups.is_empty();
        Ok(changed)
    }
}

impl UnparsedPolicy {
    /// Every failure is an error.
    pub fn strict() -> Self {
        UnparsedPolicy {
            group_chars: GroupChars::Never,
            any_unparsed_is_failed: true,
            unparsed_is_failed: true,
        }
    }

    /// Ansible's settings: `ANSIBLE_INVENTORY_ANY_UNPARSED_IS_FAILED` and
    /// `ANSIBLE_INVENTORY_UNPARSED_FAILED` (or `any_unparsed_is_failed` and
    /// `unparsed_is_failed` in ansible.cfg's `[inventory]`). Both are false
    /// by default in Ansible, which then runs on whatever sources did parse
    /// (or on the implicit localhost alone) after a warning; rigger's
    /// default is true: an inventory it cannot read stops the run with the
    /// source's location, so a playbook never runs on fewer hosts than the
    /// operator's inventory names. Set to false, they give Ansible's warnings.
    pub fn from_config() -> Result<Self, LocError> {
        let setting = |env: &str, key: &str| -> Result<bool, LocError> {
            let Some(v) = std::env::var(env)
                .ok()
                .or_else(|| crate::ansible_cfg::value("inventory", key))
            else {
                return Ok(true);
            };
            match v.trim().to_ascii_lowercase().as_str() {
                "y" | "yes" | "on" | "1" | "true" | "t" => Ok(true),
                "n" | "no" | "off" | "0" | "false" | "f" | "" => Ok(false),
                _ => Err(LocError::new(
                    Loc::synthetic(env),
                    format!("{env} must be a boolean, got `{v}`"),
                )),
            }
        };
        Ok(UnparsedPolicy {
            group_chars: GroupChars::from_config()
                .map_err(|m| LocError::new(Loc::synthetic("ANSIBLE_TRANSFORM_INVALID_GROUP_CHARS"), m))?,
            any_unparsed_is_failed: setting("ANSIBLE_INVENTORY_ANY_UNPARSED_IS_FAILED", "any_unparsed_is_failed")?,
            unparsed_is_failed: setting("ANSIBLE_INVENTORY_UNPARSED_FAILED", "unparsed_is_failed")?,
        })
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
