//! Inventory plugin configurations: a YAML source whose `plugin:` key names
//! an Ansible inventory plugin. Two are built in, as Ansible documents them:
//!
//! - `ansible.builtin.constructed` adds groups and variables to the hosts
//!   the earlier sources made, from Jinja2 expressions over each host's
//!   variables (`compose`, `groups`, `keyed_groups`, `strict`,
//!   `leading_separator`, `use_vars_plugins`);
//! - `ansible.builtin.generator` makes hosts from every combination of
//!   `layers` values, with a tree of parent groups (`hosts.name`,
//!   `hosts.parents[].name/vars/parents`).
//!
//! Any other plugin (a Python inventory plugin, a collection's cloud
//! inventory) is an error naming it: rigger does not run inventory plugins.

use std::collections::HashSet;

use serde_json::{Map, Value};

use crate::error::LocError;
use crate::inventory::value::py_str;
use crate::inventory::Inventory;
use crate::template::resolve::{needs_render, resolve};
use crate::template::{truthy, Templar};
use crate::yaml::{Node, NodeKind};

/// The plugins rigger implements, by their short names.
const BUILTIN: [&str; 2] = ["constructed", "generator"];

/// Load a plugin configuration (`root` is the file's mapping, `plugin` its
/// `plugin:` value).
/// Make the inventory loader read plugin configurations with this module
/// (it needs the template engine, which itself uses the inventory for the
/// `inventory_hostnames` lookup, so the inventory cannot import it).
pub fn install() {
    crate::inventory::install_plugin_loader(load);
}

pub fn load(inv: &mut Inventory, root: &Node, plugin: &Node) -> Result<(), LocError> {
    let name = plugin.scalar_string().unwrap_or_default();
    let short = name
        .strip_prefix("ansible.builtin.")
        .or_else(|| name.strip_prefix("ansible.legacy."))
        .unwrap_or(&name);
    match short {
        "constructed" => constructed(inv, root),
        "generator" => generator(inv, root),
        _ => Err(LocError::new(
            plugin.loc.clone(),
            format!("inventory plugin `{name}` is not supported by rigger"),
        )
        .with_hint(format!(
            "rigger has the {} inventory plugins built in; for others, write a dynamic inventory script",
            BUILTIN.map(|b| format!("ansible.builtin.{b}")).join(" and ")
        ))),
    }
}

/// The configuration's options, checked against the plugin's documented ones.
fn options(root: &Node, plugin: &str, known: &[&str]) -> Result<Map<String, Value>, LocError> {
    let mut out = Map::new();
    for (k, kn, v) in root.map_entries() {
        if !known.contains(&k.as_str()) {
            let hint = match crate::error::did_you_mean(&k, known.iter().copied()) {
                Some(s) => format!("did you mean `{s}`?"),
                None => format!("the options of {plugin} are: {}", known.join(", ")),
            };
            return Err(LocError::new(
                kn.loc.clone(),
                format!("unknown option `{k}` for inventory plugin {plugin}"),
            )
            .with_hint(hint));
        }
        out.insert(k, v.to_json());
    }
    Ok(out)
}

fn bool_option(opts: &Map<String, Value>, key: &str, default: bool, root: &Node) -> Result<bool, LocError> {
    match opts.get(key) {
        None | Some(Value::Null) => Ok(default),
        Some(Value::Bool(b)) => Ok(*b),
        Some(Value::String(s)) => crate::template::parse_bool(s).ok_or_else(|| option_error(root, key, "a boolean")),
        Some(_) => Err(option_error(root, key, "a boolean")),
    }
}

fn option_error(root: &Node, key: &str, what: &str) -> LocError {
    let loc = root.get(key).map(|n| n.loc.clone()).unwrap_or_else(|| root.loc.clone());
    LocError::new(loc, format!("option `{key}` must be {what}"))
}

// ---------------------------------------------------------------------------
// constructed

const CONSTRUCTED_OPTIONS: [&str; 8] = [
    "plugin",
    "strict",
    "compose",
    "groups",
    "keyed_groups",
    "leading_separator",
    "use_extra_vars",
    "use_vars_plugins",
];

const KEYED_GROUP_KEYS: [&str; 6] = [
    "key",
    "prefix",
    "separator",
    "parent_group",
    "default_value",
    "trailing_separator",
];

/// The run's extra vars (`-e`), set once from the command line before the
/// inventory is read: what `constructed` sees with `use_extra_vars`.
static EXTRA_VARS: std::sync::RwLock<Option<Map<String, Value>>> = std::sync::RwLock::new(None);

/// Set the run's extra vars (see [`EXTRA_VARS`]).
pub fn set_extra_vars(vars: Map<String, Value>) {
    *EXTRA_VARS.write().unwrap_or_else(|p| p.into_inner()) = Some(vars);
}

/// Ansible's `constructed` plugin (`Constructable` in
/// `ansible/plugins/inventory/__init__.py`): for each host, in inventory
/// order, `compose` sets variables, then `groups` adds the host to each
/// group whose condition holds, then `keyed_groups` to groups named after
/// values. Without `strict`, an expression that fails skips its entry.
fn constructed(inv: &mut Inventory, root: &Node) -> Result<(), LocError> {
    let opts = options(root, "ansible.builtin.constructed", &CONSTRUCTED_OPTIONS)?;
    let strict = bool_option(&opts, "strict", false, root)?;
    let leading_separator = bool_option(&opts, "leading_separator", true, root)?;
    let use_vars_plugins = bool_option(&opts, "use_vars_plugins", false, root)?;
    let use_extra_vars = bool_option(&opts, "use_extra_vars", false, root)?;
    let extra = use_extra_vars.then(|| {
        EXTRA_VARS
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
            .unwrap_or_default()
    });
    let compose = match opts.get("compose") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(m)) => m.clone(),
        Some(_) => {
            return Err(option_error(
                root,
                "compose",
                "a mapping of variable names to expressions",
            ))
        }
    };
    let groups = match opts.get("groups") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(m)) => m.clone(),
        Some(_) => return Err(option_error(root, "groups", "a mapping of group names to conditions")),
    };
    let keyed = keyed_groups(root)?;
    let templar = Templar::new();
    if use_vars_plugins {
        // group_vars/ and host_vars/ of the sources read so far.
        inv.reconcile();
        inv.refresh_layer_vars(false)?;
    }
    let loc = |key: &str| root.get(key).map(|n| n.loc.clone()).unwrap_or_else(|| root.loc.clone());
    let hosts: Vec<String> = inv.hosts.keys().cloned().collect();
    for host in hosts {
        let ctx = host_context(inv, &templar, &host, use_vars_plugins, extra.as_ref());
        for (var, expr) in &compose {
            match eval(&templar, expr, &ctx, &loc("compose")) {
                Ok(v) => inv.set_host_var(&host, var, v),
                Err(e) if strict => {
                    return Err(LocError::new(
                        e.loc,
                        format!("Could not set {var} for host {host}: {}", e.msg),
                    ))
                }
                Err(_) => {}
            }
        }
        let ctx = host_context(inv, &templar, &host, use_vars_plugins, extra.as_ref());
        for (group, cond) in &groups {
            let holds = match eval(&templar, cond, &ctx, &loc("groups")) {
                Ok(v) => truthy(&v),
                Err(e) if strict => {
                    return Err(LocError::new(
                        e.loc,
                        format!("Could not add host {host} to group {group}: {}", e.msg),
                    ))
                }
                Err(_) => false,
            };
            if holds {
                inv.add_host_to(&host, Some(group));
            }
        }
        for k in &keyed {
            k.apply(inv, &templar, &ctx, &host, strict, leading_separator)?;
        }
    }
    inv.reconcile();
    Ok(())
}

/// A host's variables as the constructed plugin sees them: its groups'
/// and its own inventory variables (with `group_vars/`/`host_vars/` when
/// they were read), templates rendered, and `inventory_hostname`,
/// `inventory_hostname_short` and `group_names`.
fn host_context(
    inv: &Inventory,
    templar: &Templar,
    host: &str,
    with_vars_dirs: bool,
    extra_vars: Option<&Map<String, Value>>,
) -> minijinja::Value {
    let mut vars = if with_vars_dirs {
        inv.host_vars(host)
    } else {
        inv.host_source_vars(host)
    };
    // `use_extra_vars`: the run's extra vars over the host's (Ansible's
    // `combine_vars(hostvars, load_extra_vars(...))`).
    if let Some(extra) = extra_vars {
        crate::ansible_cfg::combine_vars(&mut vars, extra.clone());
    }
    let pending: HashSet<String> = vars
        .iter()
        .filter(|(_, v)| needs_render(v))
        .map(|(k, _)| k.clone())
        .collect();
    let short = host.split('.').next().unwrap_or(host);
    vars.insert("inventory_hostname".into(), Value::from(host));
    vars.insert("inventory_hostname_short".into(), Value::from(short));
    let names: Vec<Value> = inv
        .group_names(host)
        .into_iter()
        .filter(|g| g != "ungrouped")
        .map(Value::from)
        .collect();
    vars.insert("group_names".into(), Value::Array(names));
    let (values, _unresolved) = resolve(templar, vars, pending, &minijinja::Value::from(()));
    minijinja::Value::from(minijinja::value::Serde(&values))
}

/// Evaluate an option's expression (a string; other values are themselves).
fn eval(templar: &Templar, expr: &Value, ctx: &minijinja::Value, loc: &crate::yaml::Loc) -> Result<Value, LocError> {
    match expr {
        Value::String(s) => templar.eval(s, ctx, loc),
        Value::Bool(_) | Value::Number(_) | Value::Null => Ok(expr.clone()),
        _ => Err(LocError::new(
            loc.clone(),
            format!("expected an expression, found {expr}"),
        )),
    }
}

/// One `keyed_groups` entry.
struct KeyedGroup {
    key: Value,
    prefix: String,
    separator: String,
    parent_group: Option<String>,
    default_value: Option<Value>,
    trailing_separator: Option<bool>,
    loc: crate::yaml::Loc,
}

fn keyed_groups(root: &Node) -> Result<Vec<KeyedGroup>, LocError> {
    let Some(list) = root.get("keyed_groups") else {
        return Ok(Vec::new());
    };
    let items = match &list.kind {
        NodeKind::Null => return Ok(Vec::new()),
        NodeKind::Seq(items) => items,
        _ => {
            return Err(LocError::new(
                list.loc.clone(),
                "keyed_groups must be a list of mappings",
            ))
        }
    };
    let mut out = Vec::new();
    for item in items {
        if !matches!(item.kind, NodeKind::Map(_)) {
            return Err(LocError::new(
                item.loc.clone(),
                format!(
                    "Invalid keyed group entry, it must be a dictionary, found a {}",
                    item.type_name()
                ),
            ));
        }
        for (k, kn, _) in item.map_entries() {
            if !KEYED_GROUP_KEYS.contains(&k.as_str()) {
                return Err(
                    LocError::new(kn.loc.clone(), format!("unknown keyed_groups option `{k}`")).with_hint(format!(
                        "the options of a keyed group are: {}",
                        KEYED_GROUP_KEYS.join(", ")
                    )),
                );
            }
        }
        let text = |k: &str| item.get(k).map(|n| py_str(&n.to_json()));
        let trailing_separator = match item.get("trailing_separator").map(Node::to_json) {
            None | Some(Value::Null) => None,
            Some(Value::Bool(b)) => Some(b),
            Some(Value::String(s)) => crate::template::parse_bool(&s),
            Some(_) => None,
        };
        let default_value = item.get("default_value").map(Node::to_json).filter(|v| !v.is_null());
        if trailing_separator.is_some() && default_value.is_some() {
            return Err(LocError::new(
                item.loc.clone(),
                "parameters are mutually exclusive for keyed groups: default_value|trailing_separator",
            ));
        }
        out.push(KeyedGroup {
            key: item.get("key").map(Node::to_json).unwrap_or(Value::Null),
            prefix: text("prefix").unwrap_or_default(),
            separator: text("separator").unwrap_or_else(|| "_".into()),
            parent_group: text("parent_group").filter(|s| !s.is_empty()),
            default_value,
            trailing_separator,
            loc: item.loc.clone(),
        });
    }
    Ok(out)
}

impl KeyedGroup {
    fn apply(
        &self,
        inv: &mut Inventory,
        templar: &Templar,
        ctx: &minijinja::Value,
        host: &str,
        strict: bool,
        leading_separator: bool,
    ) -> Result<(), LocError> {
        let key_text = py_str(&self.key);
        let key = match eval(templar, &self.key, ctx, &self.loc) {
            Ok(v) => v,
            Err(e) if strict => {
                return Err(LocError::new(
                    e.loc,
                    format!(
                        "Could not generate group for host {host} from {key_text} entry: {}",
                        e.msg
                    ),
                ))
            }
            Err(_) => return Ok(()),
        };
        // Ansible: None and '' take the default value; [] and {} make no group.
        let empty = |v: &Value| v.is_null() || v.as_str() == Some("");
        let use_default = empty(&key) && self.default_value.is_some();
        if !truthy(&key) && !use_default {
            if strict
                && !matches!(&key, Value::Array(a) if a.is_empty())
                && !matches!(&key, Value::Object(m) if m.is_empty())
            {
                return Err(LocError::new(
                    self.loc.clone(),
                    format!("No key or key resulted empty for {key_text} in host {host}, invalid entry"),
                ));
            }
            return Ok(());
        }
        let default = self.default_value.as_ref().map(py_str);
        let mut names: Vec<String> = Vec::new();
        match &key {
            _ if use_default => names.extend(default.clone()),
            Value::String(s) => names.push(s.clone()),
            Value::Array(items) => {
                for v in items {
                    match (&default, empty(v)) {
                        (Some(d), true) => names.push(d.clone()),
                        _ => names.push(py_str(v)),
                    }
                }
            }
            Value::Object(m) => {
                for (name, v) in m {
                    let bare = if empty(v) {
                        match (&default, self.trailing_separator) {
                            (Some(d), _) => format!("{name}{}{d}", self.separator),
                            (None, Some(false)) => name.clone(),
                            _ => format!("{name}{}{}", self.separator, py_str(v)),
                        }
                    } else {
                        format!("{name}{}{}", self.separator, py_str(v))
                    };
                    names.push(bare);
                }
            }
            other => {
                return Err(LocError::new(
                    self.loc.clone(),
                    format!(
                        "Invalid group name format, expected a string or a list of them or dictionary, got: {}",
                        match other {
                            Value::Bool(_) => "<class 'bool'>",
                            Value::Number(n) if n.is_f64() => "<class 'float'>",
                            _ => "<class 'int'>",
                        }
                    ),
                ))
            }
        }
        let parent = match &self.parent_group {
            Some(p) => match templar.render_str(p, ctx, &self.loc) {
                Ok(v) => Some(py_str(&v)).filter(|s| !s.is_empty()),
                Err(e) if strict => return Err(e),
                Err(_) => return Ok(()),
            },
            None => None,
        };
        let sep = if self.prefix.is_empty() && !leading_separator {
            ""
        } else {
            self.separator.as_str()
        };
        for bare in names {
            let group = format!("{}{sep}{bare}", self.prefix);
            inv.add_host_to(host, Some(&group));
            if let Some(p) = &parent {
                inv.ensure_group(p);
                inv.add_child(p, &group)
                    .map_err(|m| LocError::new(self.loc.clone(), m.to_string()))?;
            }
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------
// generator

/// Ansible's `generator` plugin: one host per combination of the `layers`
/// values (in the order the layers are written, the last varying fastest),
/// named by templating `hosts.name` with that combination; each host gets
/// the `hosts.parents` tree of groups, whose names and string `vars` are
/// templated the same way (other values stay as written, templated later
/// like any inventory variable).
fn generator(inv: &mut Inventory, root: &Node) -> Result<(), LocError> {
    options(root, "ansible.builtin.generator", &["plugin", "hosts", "layers"])?;
    let layers_node = root
        .get("layers")
        .ok_or_else(|| LocError::new(root.loc.clone(), "the generator plugin needs `layers:`"))?;
    let hosts_node = root
        .get("hosts")
        .ok_or_else(|| LocError::new(root.loc.clone(), "the generator plugin needs `hosts:`"))?;
    let mut layers: Vec<(String, Vec<Value>)> = Vec::new();
    for (name, _, values) in layers_node.map_entries() {
        match values.to_json() {
            Value::Array(items) => layers.push((name, items)),
            other => {
                return Err(LocError::new(
                    values.loc.clone(),
                    format!("layer `{name}` must be a list of values, found {other}"),
                ))
            }
        }
    }
    if !matches!(layers_node.kind, NodeKind::Map(_)) {
        return Err(LocError::new(
            layers_node.loc.clone(),
            "`layers` must be a mapping of names to lists",
        ));
    }
    let templar = Templar::new();
    let mut combination: Vec<usize> = vec![0; layers.len()];
    if layers.iter().any(|(_, v)| v.is_empty()) {
        return Ok(());
    }
    loop {
        let vars: Map<String, Value> = layers
            .iter()
            .zip(&combination)
            .map(|((name, values), i)| (name.clone(), values[*i].clone()))
            .collect();
        let ctx = minijinja::Value::from(minijinja::value::Serde(&vars));
        let name_node = hosts_node
            .get("name")
            .ok_or_else(|| LocError::new(hosts_node.loc.clone(), "`hosts` needs a `name:`"))?;
        let host = py_str(&render(&templar, &name_node.to_json(), &ctx, name_node)?);
        inv.add_host_to(&host, None);
        if let Some(parents) = hosts_node.get("parents") {
            add_parents(inv, &templar, &ctx, &host, true, parents, 0)?;
        }
        // Next combination, the last layer varying fastest (itertools.product).
        let mut i = layers.len();
        loop {
            if i == 0 {
                inv.reconcile();
                return Ok(());
            }
            i -= 1;
            combination[i] += 1;
            if combination[i] < layers[i].1.len() {
                break;
            }
            combination[i] = 0;
        }
    }
}

fn render(templar: &Templar, v: &Value, ctx: &minijinja::Value, node: &Node) -> Result<Value, LocError> {
    match v {
        Value::String(s) => templar.render_str(s, ctx, &node.loc),
        other => Ok(other.clone()),
    }
}

fn add_parents(
    inv: &mut Inventory,
    templar: &Templar,
    ctx: &minijinja::Value,
    child: &str,
    child_is_host: bool,
    parents: &Node,
    depth: usize,
) -> Result<(), LocError> {
    if depth > 100 {
        return Err(LocError::new(parents.loc.clone(), "parents are nested too deeply"));
    }
    let items = match &parents.kind {
        NodeKind::Null => return Ok(()),
        NodeKind::Seq(items) => items,
        _ => return Err(LocError::new(parents.loc.clone(), "`parents` must be a list")),
    };
    for parent in items {
        let name = match parent.get("name") {
            Some(n) => render(templar, &n.to_json(), ctx, n)?,
            None => Value::Null,
        };
        if !truthy(&name) {
            return Err(LocError::new(
                parent.loc.clone(),
                format!("Element {child} has a parent with no name."),
            ));
        }
        let group = py_str(&name);
        inv.ensure_group(&group);
        if let Some(vars) = parent.get("vars") {
            for (k, _, v) in vars.map_entries() {
                let value = render(templar, &v.to_json(), ctx, v)?;
                inv.set_group_var(&group, &k, value)
                    .map_err(|m| LocError::new(v.loc.clone(), m.to_string()))?;
            }
        }
        if child_is_host {
            inv.add_host_to(child, Some(&group));
        } else {
            inv.add_child(&group, child)
                .map_err(|m| LocError::new(parent.loc.clone(), m.to_string()))?;
        }
        if let Some(grand) = parent.get("parents") {
            add_parents(inv, templar, ctx, &group, false, grand, depth + 1)?;
        }
    }
    Ok(())
}
