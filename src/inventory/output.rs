//! What `rigger inventory` prints, in the formats of `ansible-inventory`
//! `--list`, `--graph [--vars]` and `--host`.

use serde::Serialize;
use serde_json::{Map, Value};

use super::model::Inventory;
use super::value::py_str;
use crate::error::{did_you_mean, LocError};
use crate::yaml::Loc;

impl Inventory {
    /// `ansible-inventory --list`: groups with `hosts` and `children`
    /// (empty groups omitted), `all.children`, and `_meta` with each host's
    /// merged variables (hosts without variables omitted) and the
    /// serialization `profile` ansible-core 2.19 names. Keys sorted, 4-space
    /// indent, as Ansible's `json.dumps(sort_keys=True, indent=4)`.
    pub fn to_list_json(&self) -> String {
        let mut buf = Vec::new();
        // Writing into memory cannot fail.
        let _ = self.write_list_json(false, &mut buf);
        String::from_utf8(buf).unwrap_or_default()
    }

    /// [`Inventory::to_list_json`] (or `--export`'s list) written to `w` as
    /// it is made: each host's merged variables are built, written and
    /// dropped in turn, never the whole listing at once (100,000 hosts with
    /// a few group variables each are hundreds of MB as a JSON tree).
    /// The same bytes as `dump_json(&self.to_list_value(export))`.
    pub fn write_list_json(&self, export: bool, w: &mut dyn std::io::Write) -> std::io::Result<()> {
        // `all` is always a valid pattern.
        let hosts = self.select("all").unwrap_or_else(|_| self.group_hosts("all"));
        let available: std::collections::HashSet<&str> = hosts.iter().map(String::as_str).collect();
        let mut groups = Map::new();
        let mut seen = std::collections::HashSet::new();
        self.format_group("all", &available, export, &mut seen, &mut groups);
        let mut sorted_hosts: Vec<&str> = hosts.iter().map(String::as_str).collect();
        sorted_hosts.sort_unstable();
        let listing = ListJson {
            groups: &groups,
            meta: HostVarsJson {
                inv: self,
                hosts: &sorted_hosts,
                export,
            },
        };
        let fmt = serde_json::ser::PrettyFormatter::with_indent(b"    ");
        let mut ser = serde_json::Serializer::with_formatter(w, fmt);
        listing.serialize(&mut ser).map_err(std::io::Error::from)
    }

    /// The data of `ansible-inventory --list [--export]`. With `export`, each
    /// group also carries its own `vars` and each host only the variables set
    /// on it (not those it inherits from groups), as Ansible's `--export`.
    pub fn to_list_value(&self, export: bool) -> Value {
        // `all` is always a valid pattern.
        let hosts = self.select("all").unwrap_or_else(|_| self.group_hosts("all"));
        let available: std::collections::HashSet<&str> = hosts.iter().map(String::as_str).collect();
        let mut out = Map::new();
        let mut seen = std::collections::HashSet::new();
        self.format_group("all", &available, export, &mut seen, &mut out);
        let mut hostvars = Map::new();
        for h in &hosts {
            let vars = self.listed_host_vars(h, export);
            if !vars.is_empty() {
                hostvars.insert(h.clone(), Value::Object(vars));
            }
        }
        let mut meta = Map::new();
        meta.insert("hostvars".into(), Value::Object(hostvars));
        meta.insert("profile".into(), Value::from("inventory_legacy"));
        out.insert("_meta".into(), Value::Object(meta));
        Value::Object(out)
    }

    /// The data of `ansible-inventory --list --yaml [--export]`: the YAML
    /// inventory format, `children` and `hosts` as mappings, each host's
    /// variables under its first group only.
    pub fn to_yaml_value(&self, export: bool) -> Value {
        let hosts = self.select("all").unwrap_or_else(|_| self.group_hosts("all"));
        let available: std::collections::HashSet<&str> = hosts.iter().map(String::as_str).collect();
        let mut seen_hosts = std::collections::HashSet::new();
        let mut seen_groups = std::collections::HashSet::new();
        let mut out = Map::new();
        if let Some((name, v)) = self.yaml_group("all", &available, export, &mut seen_hosts, &mut seen_groups) {
            out.insert(name, v);
        }
        Value::Object(out)
    }

    fn yaml_group(
        &self,
        name: &str,
        available: &std::collections::HashSet<&str>,
        export: bool,
        seen_hosts: &mut std::collections::HashSet<String>,
        seen_groups: &mut std::collections::HashSet<String>,
    ) -> Option<(String, Value)> {
        let g = self.groups.get(name)?;
        let mut entry = Map::new();
        let mut children = Map::new();
        for c in &g.children {
            if c == "all" {
                continue;
            }
            if seen_groups.contains(c) {
                children.insert(c.clone(), Value::Object(Map::new()));
            } else if let Some((k, v)) = self.yaml_group(c, available, export, seen_hosts, seen_groups) {
                seen_groups.insert(c.clone());
                children.insert(k, v);
            } else {
                seen_groups.insert(c.clone());
            }
        }
        if !children.is_empty() {
            entry.insert("children".into(), Value::Object(children));
        }
        let mut hosts = Map::new();
        if name != "all" {
            for h in g.hosts.iter().filter(|h| available.contains(h.as_str())) {
                let vars = if seen_hosts.insert(h.clone()) {
                    self.listed_host_vars(h, export)
                } else {
                    Map::new()
                };
                hosts.insert(h.clone(), Value::Object(vars));
            }
        }
        if !hosts.is_empty() {
            entry.insert("hosts".into(), Value::Object(hosts));
        }
        if export {
            let vars = self.exported_group_vars(name);
            if !vars.is_empty() {
                entry.insert("vars".into(), Value::Object(vars));
            }
        }
        if entry.is_empty() {
            None
        } else {
            Some((name.to_string(), Value::Object(entry)))
        }
    }

    /// A host's variables as `--list` shows them: merged from its groups, or
    /// with `export` only those set on the host itself.
    fn listed_host_vars(&self, host: &str, export: bool) -> Map<String, Value> {
        if !export {
            return strip_internal(self.host_vars(host));
        }
        let mut out = self.hosts.get(host).map(|h| h.vars.clone()).unwrap_or_default();
        for layer in [&self.inventory_layer, &self.playbook_layer] {
            if let Some(m) = layer.hosts.get(host) {
                out.extend(m.iter().map(|(k, v)| (k.clone(), v.clone())));
            }
        }
        strip_internal(out)
    }

    /// A group's own variables for `--export` (inventory source, then its
    /// `group_vars/` of the inventory and playbook dirs) and its priority.
    fn exported_group_vars(&self, group: &str) -> Map<String, Value> {
        let mut vars = self.group_vars(group);
        if let Some(m) = self.playbook_layer.groups.get(group) {
            vars.extend(m.iter().map(|(k, v)| (k.clone(), v.clone())));
        }
        if let Some(g) = self.groups.get(group) {
            if g.priority() != 1 {
                vars.insert("ansible_group_priority".into(), Value::from(g.priority()));
            }
        }
        strip_internal(vars)
    }

    fn format_group(
        &self,
        name: &str,
        available: &std::collections::HashSet<&str>,
        export: bool,
        seen: &mut std::collections::HashSet<String>,
        out: &mut Map<String, Value>,
    ) {
        let Some(g) = self.groups.get(name) else { return };
        let mut entry = Map::new();
        if name != "all" {
            let hosts: Vec<Value> = g
                .hosts
                .iter()
                .filter(|h| available.contains(h.as_str()))
                .map(|h| Value::from(h.as_str()))
                .collect();
            if !hosts.is_empty() {
                entry.insert("hosts".into(), Value::Array(hosts));
            }
        }
        let children: Vec<Value> = g.children.iter().map(|c| Value::from(c.as_str())).collect();
        for c in &g.children {
            if seen.insert(c.clone()) {
                self.format_group(c, available, export, seen, out);
            }
        }
        if !children.is_empty() {
            entry.insert("children".into(), Value::Array(children));
        }
        if export {
            let vars = self.exported_group_vars(name);
            if !vars.is_empty() {
                entry.insert("vars".into(), Value::Object(vars));
            }
        }
        if !entry.is_empty() {
            out.insert(name.to_string(), Value::Object(entry));
        }
    }

    /// `ansible-inventory --graph [GROUP] [--vars]`.
    pub fn to_graph(&self, group: Option<&str>, with_vars: bool) -> Result<String, LocError> {
        let start = group.unwrap_or("all");
        if !self.groups.contains_key(start) {
            let mut e = LocError::new(
                Loc::synthetic("inventory graph"),
                format!("Pattern must be valid group name when using --graph: `{start}` is not a group"),
            );
            if let Some(s) = did_you_mean(start, self.groups.keys().map(String::as_str)) {
                e = e.with_hint(format!("did you mean `{s}`?"));
            }
            return Err(e);
        }
        let mut lines = Vec::new();
        self.graph_group(start, 0, with_vars, &mut lines);
        Ok(lines.join("\n"))
    }

    fn graph_group(&self, name: &str, depth: usize, with_vars: bool, lines: &mut Vec<String>) {
        let Some(g) = self.groups.get(name) else { return };
        lines.push(graph_line(&format!("@{name}:"), depth));
        for c in &g.children {
            self.graph_group(c, depth + 1, with_vars, lines);
        }
        if name != "all" {
            for h in &g.hosts {
                lines.push(graph_line(h, depth + 1));
                if with_vars {
                    graph_vars(&strip_internal(self.host_vars(h)), depth + 2, lines);
                }
            }
        }
        if with_vars {
            let mut vars = self.group_vars(name);
            if g.priority() != 1 {
                vars.insert("ansible_group_priority".into(), Value::from(g.priority()));
            }
            graph_vars(&strip_internal(vars), depth + 1, lines);
        }
    }

    /// `ansible-inventory --host HOST`: the host's merged variables.
    pub fn host_json(&self, host: &str) -> Result<String, LocError> {
        if !self.hosts.contains_key(host) && !super::model::LOCALHOST_NAMES.contains(&host) {
            let mut e = LocError::new(
                Loc::synthetic("inventory"),
                format!("host `{host}` is not in the inventory"),
            );
            if let Some(s) = did_you_mean(host, self.hosts.keys().map(String::as_str)) {
                e = e.with_hint(format!("did you mean `{s}`?"));
            }
            return Err(e);
        }
        Ok(dump_json(&Value::Object(self.host_vars_shown(host))))
    }

    /// A host's merged variables as `--host` shows them (internal keys dropped).
    pub fn host_vars_shown(&self, host: &str) -> Map<String, Value> {
        strip_internal(self.host_vars(host))
    }
}

fn graph_line(text: &str, depth: usize) -> String {
    if depth == 0 {
        text.to_string()
    } else {
        format!("{}--{text}", "  |".repeat(depth))
    }
}

fn graph_vars(vars: &Map<String, Value>, depth: usize, lines: &mut Vec<String>) {
    let mut keys: Vec<&String> = vars.keys().collect();
    keys.sort();
    for k in keys {
        lines.push(graph_line(&format!("{{{k} = {}}}", py_str(&vars[k])), depth));
    }
}

/// The magic variables ansible-inventory drops from what it shows
/// (ansible-core's `C.INTERNAL_STATIC_VARS`).
const INTERNAL_STATIC_VARS: [&str; 33] = [
    "ansible_async_path",
    "ansible_collection_name",
    "ansible_config_file",
    "ansible_dependent_role_names",
    "ansible_diff_mode",
    "ansible_facts",
    "ansible_forks",
    "ansible_inventory_sources",
    "ansible_limit",
    "ansible_play_batch",
    "ansible_play_hosts",
    "ansible_play_hosts_all",
    "ansible_play_role_names",
    "ansible_playbook_python",
    "ansible_role_name",
    "ansible_role_names",
    "ansible_run_tags",
    "ansible_skip_tags",
    "ansible_verbosity",
    "ansible_version",
    "inventory_dir",
    "inventory_file",
    "inventory_hostname",
    "inventory_hostname_short",
    "groups",
    "group_names",
    "hostvars",
    "playbook_dir",
    "play_hosts",
    "role_name",
    "role_names",
    "role_path",
    "role_uuid",
];

/// ansible-inventory's `_remove_internal`: drop the magic variables
/// (other keys, `_ansible_*` ones included, are shown as set).
fn strip_internal(mut m: Map<String, Value>) -> Map<String, Value> {
    m.retain(|k, _| !INTERNAL_STATIC_VARS.contains(&k.as_str()));
    m
}

/// A JSON value serialized with the keys of every object sorted (Python's
/// `sort_keys=True`), without copying it.
struct SortedKeys<'a>(&'a Value);

impl Serialize for SortedKeys<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::{SerializeMap, SerializeSeq};
        match self.0 {
            Value::Object(m) => {
                let mut entries: Vec<(&String, &Value)> = m.iter().collect();
                entries.sort_unstable_by(|a, b| a.0.cmp(b.0));
                let mut map = s.serialize_map(Some(entries.len()))?;
                for (k, v) in entries {
                    map.serialize_entry(k, &SortedKeys(v))?;
                }
                map.end()
            }
            Value::Array(a) => {
                let mut seq = s.serialize_seq(Some(a.len()))?;
                for v in a {
                    seq.serialize_element(&SortedKeys(v))?;
                }
                seq.end()
            }
            other => other.serialize(s),
        }
    }
}

/// `--list`'s top level: the groups (made beforehand: names only) and
/// `_meta`, keys sorted.
struct ListJson<'a> {
    groups: &'a Map<String, Value>,
    meta: HostVarsJson<'a>,
}

impl Serialize for ListJson<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut keys: Vec<&str> = self
            .groups
            .keys()
            .map(String::as_str)
            .filter(|k| *k != "_meta")
            .collect();
        keys.push("_meta");
        keys.sort_unstable();
        let mut map = s.serialize_map(Some(keys.len()))?;
        for k in keys {
            if k == "_meta" {
                map.serialize_entry(k, &MetaJson(&self.meta))?;
            } else {
                map.serialize_entry(k, &SortedKeys(&self.groups[k]))?;
            }
        }
        map.end()
    }
}

/// `_meta`: `hostvars` and the serialization `profile`.
struct MetaJson<'a>(&'a HostVarsJson<'a>);

impl Serialize for MetaJson<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = s.serialize_map(Some(2))?;
        map.serialize_entry("hostvars", self.0)?;
        map.serialize_entry("profile", "inventory_legacy")?;
        map.end()
    }
}

/// `_meta.hostvars`: each host's variables made as they are written
/// (hosts without variables left out), `hosts` sorted.
struct HostVarsJson<'a> {
    inv: &'a Inventory,
    hosts: &'a [&'a str],
    export: bool,
}

impl Serialize for HostVarsJson<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = s.serialize_map(None)?;
        for h in self.hosts {
            let vars = Value::Object(self.inv.listed_host_vars(h, self.export));
            if vars.as_object().is_some_and(|m| !m.is_empty()) {
                map.serialize_entry(h, &SortedKeys(&vars))?;
            }
        }
        map.end()
    }
}

/// `json.dumps(v, sort_keys=True, indent=4, ensure_ascii=False)`.
pub fn dump_json(v: &Value) -> String {
    let mut buf = Vec::new();
    let fmt = serde_json::ser::PrettyFormatter::with_indent(b"    ");
    let mut ser = serde_json::Serializer::with_formatter(&mut buf, fmt);
    // Serializing a Value into memory cannot fail.
    let _ = SortedKeys(v).serialize(&mut ser);
    String::from_utf8(buf).unwrap_or_default()
}
