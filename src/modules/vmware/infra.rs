//! What the inventory facts modules (`vmware_datacenter_info`,
//! `vmware_cluster_info`, `vmware_datastore_info`, `vmware_portgroup_info`)
//! share: the optional datacenter filter, and reads of several objects'
//! properties at once.

use serde_json::Value;

use super::client::{Props, Session, VmwareError};
use super::inventory::{self, Datacenter};
use super::soap::{MoRef, Node};
use crate::modules::{OptKind, OptionDoc};

/// `datacenter` as the facts modules take it: a filter, all when omitted.
pub const DATACENTER: OptionDoc = OptionDoc::new(
    "datacenter",
    OptKind::Str,
    "Only this datacenter (an unknown one is an error); every datacenter when omitted.",
)
.aliases(&["datacenter_name"]);

/// `show_tag`: tags live in the vSphere REST API (vapi), which rigger does not speak.
pub const SHOW_TAG: OptionDoc = OptionDoc::new(
    "show_tag",
    OptKind::Bool,
    "Accepted for compatibility: `true` is refused (tags need the vSphere REST API, which rigger does not speak).",
)
.default("false");

/// `schema`: only `summary`.
pub const SCHEMA: OptionDoc = OptionDoc::new(
    "schema",
    OptKind::Str,
    "Only `summary` (Ansible's default) is supported.",
)
.choices(&["summary"])
.default("summary");

/// The datacenters a task looks at: the one named, or all (by name).
pub async fn datacenters(s: &mut Session, name: Option<&str>) -> Result<Vec<Datacenter>, VmwareError> {
    if let Some(n) = name {
        return Ok(vec![inventory::datacenter(s, n).await?]);
    }
    let root = s.content.root_folder.clone();
    let all = s.list(&root, "Datacenter", &["name"]).await?;
    let mut names: Vec<String> = all
        .iter()
        .filter_map(|(_, p)| p.get("name").map(|n| n.text.clone()))
        .collect();
    names.sort();
    let mut out = Vec::new();
    for n in names {
        out.push(inventory::datacenter(s, &n).await?);
    }
    Ok(out)
}

/// The references in an array property (`host`, `datastore`).
pub fn refs(p: &Props, name: &str) -> Vec<MoRef> {
    p.get(name)
        .map(|n| n.children.iter().filter_map(Node::as_moref).collect())
        .unwrap_or_default()
}

/// The text of a property, or "".
pub fn text<'a>(p: &'a Props, name: &str) -> &'a str {
    p.get(name).map(|n| n.text.as_str()).unwrap_or("")
}

/// A number at `path` under a property node, as JSON (null when unset).
pub fn num(n: Option<&Node>, path: &str) -> Value {
    n.and_then(|n| n.int(path)).map(Value::from).unwrap_or(Value::Null)
}

/// A boolean at `path` under a property node, as JSON (null when unset).
pub fn flag(n: Option<&Node>, path: &str) -> Value {
    n.and_then(|n| n.bool(path)).map(Value::from).unwrap_or(Value::Null)
}

/// Refuse `show_tag: true` in `module`.
pub fn check_show_tag(module: &str, show_tag: Option<bool>) -> Result<(), crate::modules::ModuleError> {
    if show_tag.unwrap_or(false) {
        return Err(crate::modules::ModuleError::Args(format!(
            "{module}: show_tag: true is not supported (tags need the vSphere REST API, which rigger does not speak)"
        )));
    }
    Ok(())
}
