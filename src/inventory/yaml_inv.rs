//! Ansible's YAML inventory format:
//!
//! ```yaml
//! all:
//!   hosts:
//!     host1:
//!   vars:
//!     ntp: time.example.com
//!   children:
//!     web:
//!       hosts:
//!         web[01:03].example.com:
//!           http_port: 8080
//! ```

use std::path::Path;

use super::hosts::{expand_range, split_host_port};
use super::model::Inventory;
use crate::error::{did_you_mean, LocError};
use crate::yaml::{load_file, Node, NodeKind};

/// Deep nesting guard for hostile inventories.
const MAX_DEPTH: usize = 200;

pub fn load(inv: &mut Inventory, path: &Path) -> Result<(), LocError> {
    let root = load_file(path)?;
    if let Some(plugin) = root.get("plugin") {
        return match super::plugin_hook::plugin_loader() {
            Some(load) => load(inv, &root, plugin),
            None => Err(LocError::new(
                plugin.loc.clone(),
                "inventory plugin configurations cannot be read here (rigger::inventory_plugins::install was not called)",
            )),
        };
    }
    parse_root(inv, &root)
}

pub fn parse_root(inv: &mut Inventory, root: &Node) -> Result<(), LocError> {
    match &root.kind {
        NodeKind::Null => Err(LocError::new(root.loc.clone(), "YAML inventory is empty")),
        NodeKind::Map(_) => {
            if let Some(p) = root.get("plugin") {
                return Err(LocError::new(
                    p.loc.clone(),
                    "this is an inventory plugin configuration, not a YAML inventory",
                )
                .with_hint("inventory plugins are not supported; use a dynamic inventory script instead"));
            }
            for (name, key, data) in root.map_entries() {
                parse_group(inv, &name, key, data, 0)?;
            }
            Ok(())
        }
        _ => Err(LocError::new(
            root.loc.clone(),
            format!(
                "a YAML inventory must be a mapping of groups, found a {}",
                root.type_name()
            ),
        )
        .with_hint("start with `all:` and put `hosts:`, `vars:` and `children:` under it")),
    }
}

fn parse_group(inv: &mut Inventory, name: &str, key: &Node, data: &Node, depth: usize) -> Result<(), LocError> {
    if depth > MAX_DEPTH {
        return Err(LocError::new(key.loc.clone(), "groups are nested too deeply"));
    }
    if !matches!(data.kind, NodeKind::Map(_) | NodeKind::Null) {
        inv.warnings.push(
            LocError::new(
                data.loc.clone(),
                format!(
                    "skipping `{name}`: a group must be a mapping, found a {}",
                    data.type_name()
                ),
            )
            .with_hint("a group holds `hosts:`, `vars:` and `children:` mappings"),
        );
        return Ok(());
    }
    inv.ensure_group(name);
    for (section, skey, sval) in data.map_entries() {
        if !matches!(section.as_str(), "hosts" | "vars" | "children") {
            let hint = match did_you_mean(&section, ["hosts", "vars", "children"]) {
                Some(s) => format!("did you mean `{s}`?"),
                None => "only `hosts`, `vars` and `children` are valid in a group".to_string(),
            };
            inv.warnings.push(
                LocError::new(
                    skey.loc.clone(),
                    format!("skipping unexpected key `{section}` in group `{name}`"),
                )
                .with_hint(hint),
            );
            continue;
        }
        let entries: Vec<(String, &Node, Option<&Node>)> = match &sval.kind {
            NodeKind::Null => continue,
            // A bare string is allowed: `hosts: web1` means `hosts: {web1: }`.
            NodeKind::Str(s) => vec![(s.clone(), sval, None)],
            NodeKind::Map(_) => sval.map_entries().map(|(k, kn, v)| (k, kn, Some(v))).collect(),
            _ => {
                return Err(LocError::new(
                    sval.loc.clone(),
                    format!(
                        "invalid `{section}` entry for group `{name}`: needs a mapping, found a {}",
                        sval.type_name()
                    ),
                )
                .with_hint(format!("write `{section}:` as a mapping, e.g. `{section}: {{name: }}`")));
            }
        };
        for (k, knode, v) in entries {
            match section.as_str() {
                "vars" => {
                    let value = v.map(Node::to_json).unwrap_or(serde_json::Value::Null);
                    super::conn_vars::check_source(&k, &value)
                        .map_err(|m| LocError::new(v.map(|v| v.loc.clone()).unwrap_or(knode.loc.clone()), m))?;
                    inv.set_group_var(name, &k, value).map_err(|m| {
                        LocError::new(v.map(|v| v.loc.clone()).unwrap_or(knode.loc.clone()), m.to_string())
                    })?;
                }
                "children" => {
                    let null = Node::new(NodeKind::Null, knode.loc.clone());
                    parse_group(inv, &k, knode, v.unwrap_or(&null), depth + 1)?;
                    inv.add_child(name, &k)
                        .map_err(|m| LocError::new(knode.loc.clone(), m.to_string()))?;
                }
                _ => {
                    if !matches!(knode.kind, NodeKind::Str(_)) {
                        // Ansible's yaml plugin: a host key must be a string.
                        return Err(LocError::new(
                            knode.loc.clone(),
                            format!("Host pattern {k} must be a string. Enclose integers/floats in quotation marks."),
                        ));
                    }
                    parse_host(inv, name, &k, knode, v)?
                }
            }
        }
    }
    Ok(())
}

fn parse_host(
    inv: &mut Inventory,
    group: &str,
    pattern: &str,
    key: &Node,
    vars: Option<&Node>,
) -> Result<(), LocError> {
    let (pattern, port) = split_host_port(pattern).map_err(|m| LocError::new(key.loc.clone(), m.to_string()))?;
    let names = expand_range(&pattern).map_err(|m| {
        LocError::new(key.loc.clone(), m.to_string())
            .with_hint("ranges look like `web[01:10]`, `db-[a:f]` or `h[1:10:2]`")
    })?;
    let vars: Vec<(String, serde_json::Value)> = match vars {
        None => vec![],
        Some(v) => match &v.kind {
            NodeKind::Null => vec![],
            NodeKind::Map(_) => {
                let mut out = Vec::new();
                for (k, _, val) in v.map_entries() {
                    let value = val.to_json();
                    super::conn_vars::check_source(&k, &value).map_err(|m| LocError::new(val.loc.clone(), m))?;
                    out.push((k, value));
                }
                out
            }
            _ => {
                return Err(LocError::new(
                    v.loc.clone(),
                    format!(
                        "variables of host `{pattern}` must be a mapping, found a {}",
                        v.type_name()
                    ),
                )
                .with_hint("write `host:` alone, or `host: {var: value}`"))
            }
        },
    };
    for name in names {
        inv.add_host_to(&name, Some(group));
        if let Some(p) = port {
            inv.set_host_var(&name, "ansible_port", serde_json::Value::from(p));
        }
        for (k, v) in &vars {
            inv.set_host_var(&name, k, v.clone());
        }
    }
    Ok(())
}
