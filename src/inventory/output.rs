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
    /// (empty groups omitted), `all.children`, and `_meta.hostvars` with each
    /// host's merged variables (hosts without variables omitted). Keys sorted,
    /// 4-space indent, as Ansible's `json.dumps(sort_keys=True, indent=4)`.
    pub fn to_list_json(&self) -> String {
        // `all` is always a valid pattern.
        let hosts = self.select("all").unwrap_or_else(|_| self.group_hosts("all"));
        let available: std::collections::HashSet<&str> = hosts.iter().map(String::as_str).collect();
        let mut out = Map::new();
        let mut seen = std::collections::HashSet::new();
        self.format_group("all", &available, &mut seen, &mut out);
        let mut hostvars = Map::new();
        for h in &hosts {
            let vars = strip_internal(self.host_vars(h));
            if !vars.is_empty() {
                hostvars.insert(h.clone(), Value::Object(vars));
            }
        }
        let mut meta = Map::new();
        meta.insert("hostvars".into(), Value::Object(hostvars));
        out.insert("_meta".into(), Value::Object(meta));
        dump_json(&Value::Object(out))
    }

    fn format_group(
        &self,
        name: &str,
        available: &std::collections::HashSet<&str>,
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
                self.format_group(c, available, seen, out);
            }
        }
        if !children.is_empty() {
            entry.insert("children".into(), Value::Array(children));
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
                format!("`{start}` is not a group; --graph needs a group name"),
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
        if !self.hosts.contains_key(host) {
            let mut e = LocError::new(
                Loc::synthetic("inventory"),
                format!("host `{host}` is not in the inventory"),
            );
            if let Some(s) = did_you_mean(host, self.hosts.keys().map(String::as_str)) {
                e = e.with_hint(format!("did you mean `{s}`?"));
            }
            return Err(e);
        }
        Ok(dump_json(&Value::Object(strip_internal(self.host_vars(host)))))
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

/// Ansible's `strip_internal_keys`: drop `_ansible_*` keys.
fn strip_internal(mut m: Map<String, Value>) -> Map<String, Value> {
    m.retain(|k, _| !k.starts_with("_ansible_"));
    m
}

fn sort_keys(v: &Value) -> Value {
    match v {
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            Value::Object(keys.into_iter().map(|k| (k.clone(), sort_keys(&m[k]))).collect())
        }
        Value::Array(a) => Value::Array(a.iter().map(sort_keys).collect()),
        other => other.clone(),
    }
}

/// `json.dumps(v, sort_keys=True, indent=4, ensure_ascii=False)`.
pub fn dump_json(v: &Value) -> String {
    let mut buf = Vec::new();
    let fmt = serde_json::ser::PrettyFormatter::with_indent(b"    ");
    let mut ser = serde_json::Serializer::with_formatter(&mut buf, fmt);
    // Serializing a Value into memory cannot fail.
    let _ = sort_keys(v).serialize(&mut ser);
    String::from_utf8(buf).unwrap_or_default()
}
