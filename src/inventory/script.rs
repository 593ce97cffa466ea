//! Dynamic inventory scripts: an executable run with `--list` that prints
//! `{"group": {"hosts": [..], "vars": {..}, "children": [..]}, "_meta":
//! {"hostvars": {..}}}`. Without `_meta.hostvars` the script is called again
//! with `--host NAME` for each host.

use std::path::Path;
use std::process::Command;

use indexmap::IndexSet;
use serde_json::{Map, Value};

use super::Inventory;
use crate::error::LocError;
use crate::yaml::Loc;

pub fn load(inv: &mut Inventory, path: &Path) -> Result<(), LocError> {
    let name = path.display().to_string();
    let loc = Loc::synthetic(&name);
    let data = run_json(path, &["--list"], &loc)?;
    let Value::Object(groups) = data else {
        return Err(
            LocError::new(loc, "inventory script output for --list must be a JSON object")
                .with_hint("print {\"group\": {\"hosts\": [...]}, \"_meta\": {\"hostvars\": {}}}"),
        );
    };
    let mut meta: Option<Map<String, Value>> = None;
    let mut seen_hosts: IndexSet<String> = IndexSet::new();
    for (group, gdata) in &groups {
        if group == "_meta" {
            if let Some(hv) = gdata.get("hostvars") {
                match hv {
                    Value::Object(m) => meta = Some(m.clone()),
                    _ => return Err(LocError::new(loc, "`_meta.hostvars` must be an object of host -> vars")),
                }
            }
            continue;
        }
        parse_group(inv, group, gdata, &mut seen_hosts, &loc)?;
    }
    for host in seen_hosts {
        let vars = match &meta {
            Some(m) => m.get(&host).cloned().unwrap_or(Value::Object(Map::new())),
            None => run_json(path, &["--host", &host], &loc)?,
        };
        let Value::Object(vars) = vars else {
            return Err(LocError::new(
                loc,
                format!("variables of host `{host}` must be a JSON object"),
            ));
        };
        for (k, v) in vars {
            inv.set_host_var(&host, &k, v);
        }
    }
    Ok(())
}

fn parse_group(
    inv: &mut Inventory,
    group: &str,
    data: &Value,
    seen_hosts: &mut IndexSet<String>,
    loc: &Loc,
) -> Result<(), LocError> {
    inv.ensure_group(group);
    let bad = |what: &str| LocError::new(loc.clone(), format!("group `{group}` has invalid {what}: {data}"));
    let simplified_hosts = Value::Array(vec![Value::String(group.to_string())]);
    let (hosts, vars, children) = match data {
        // `"group": ["h1", "h2"]`
        Value::Array(_) => (Some(data), None, None),
        // Ansible's simplified form: a host named like the group, with these vars.
        Value::Object(m) if !["hosts", "vars", "children"].iter().any(|k| m.contains_key(*k)) => {
            (Some(&simplified_hosts), Some(data), None)
        }
        Value::Object(m) => (m.get("hosts"), m.get("vars"), m.get("children")),
        _ => return Err(bad("data")),
    };
    if let Some(h) = hosts {
        let Value::Array(list) = h else {
            return Err(bad("host list"));
        };
        for host in list {
            let Value::String(host) = host else {
                return Err(bad("host list"));
            };
            seen_hosts.insert(host.clone());
            inv.add_host_to(host, Some(group));
        }
    }
    if let Some(v) = vars {
        let Value::Object(vars) = v else {
            return Err(bad("variables"));
        };
        for (k, v) in vars {
            inv.set_group_var(group, k, v.clone())
                .map_err(|m| LocError::new(loc.clone(), m))?;
        }
    }
    if let Some(c) = children {
        let Value::Array(list) = c else {
            return Err(bad("children"));
        };
        for child in list {
            let Value::String(child) = child else {
                return Err(bad("children"));
            };
            inv.add_child(group, child).map_err(|m| LocError::new(loc.clone(), m))?;
        }
    }
    Ok(())
}

fn run_json(path: &Path, args: &[&str], loc: &Loc) -> Result<Value, LocError> {
    let out = Command::new(path).args(args).output().map_err(|e| {
        LocError::new(loc.clone(), format!("cannot run inventory script: {e}"))
            .with_hint("check the script's #! line, or remove its executable bit if it is a static inventory")
    })?;
    let shown = args.join(" ");
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        return Err(LocError::new(
            loc.clone(),
            format!(
                "inventory script failed ({}) for `{shown}`: {}",
                out.status,
                stderr.trim()
            ),
        ));
    }
    serde_json::from_slice(&out.stdout).map_err(|e| {
        LocError::new(
            loc.clone(),
            format!(
                "inventory script printed invalid JSON for `{shown}` (output line {}, column {}): {e}",
                e.line(),
                e.column()
            ),
        )
        .with_hint("an executable file is run as a dynamic inventory script; chmod -x a static inventory")
    })
}
