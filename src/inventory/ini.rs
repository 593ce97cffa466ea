//! Ansible's INI inventory format.
//!
//! ```ini
//! host0                          # before any section: ungrouped
//! [web]
//! web[01:20].example.com:2222 ansible_user=deploy
//! [web:vars]
//! http_port=8080
//! [prod:children]
//! web
//! ```

use std::sync::Arc;

use serde_json::Value;

use super::hosts::{expand_range, shell_tokens, split_host_port};
use super::model::Inventory;
use super::value::parse_ini_value;
use crate::error::{did_you_mean, LocError};
use crate::yaml::Loc;

#[derive(Clone, Copy, PartialEq)]
enum State {
    Hosts,
    Vars,
    Children,
}

/// A reference that must be resolved by the end of the file.
struct Pending {
    loc: Loc,
    /// For `[g:children]` entries: the parents waiting for this group.
    parents: Vec<String>,
    state: State,
}

/// Parse INI inventory text into `inv`. `file` names the source in locations.
pub fn parse(inv: &mut Inventory, text: &str, file: &str) -> Result<(), LocError> {
    parse_with(inv, text, file, false)
}

/// [`parse`] the plaintext of an ansible-vault encrypted INI inventory:
/// every variable value in it is a vault value, so it is tainted (masked in
/// every output, see `output::redact`), as the string leaves of a vaulted
/// YAML file are. Host and group names are names, not secrets.
pub fn parse_vaulted(inv: &mut Inventory, text: &str, file: &str) -> Result<(), LocError> {
    parse_with(inv, text, file, true)
}

fn parse_with(inv: &mut Inventory, text: &str, file: &str, vaulted: bool) -> Result<(), LocError> {
    let file: Arc<str> = Arc::from(file);
    let mut group = "ungrouped".to_string();
    let mut state = State::Hosts;
    // Groups referenced before being declared (Ansible's pending_declarations).
    let mut pending: indexmap::IndexMap<String, Pending> = indexmap::IndexMap::new();

    for (idx, raw) in text.lines().enumerate() {
        let lineno = idx as u32 + 1;
        let indent = raw.chars().take_while(|c| c.is_whitespace()).count();
        let line = raw.trim();
        let loc_at = |col: usize| Loc::new(file.clone(), lineno, (indent + col) as u32);
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if line.starts_with('[') {
            if let Some((name, tag)) = section_header(line).map_err(|(col, m)| {
                LocError::new(loc_at(col), m).with_hint(
                    "section headers look like `[group]`, `[group:vars]` or `[group:children]`, without spaces",
                )
            })? {
                let new_state = match tag {
                    None | Some("hosts") => State::Hosts,
                    Some("vars") => State::Vars,
                    Some("children") => State::Children,
                    Some(other) => {
                        let hint = match did_you_mean(other, ["vars", "children"]) {
                            Some(s) => format!("did you mean `[{name}:{s}]`?"),
                            None => "use `:vars` or `:children`".to_string(),
                        };
                        return Err(LocError::new(
                            loc_at(name.chars().count() + 3),
                            format!("section [{name}:{other}] has unknown type `{other}`"),
                        )
                        .with_hint(hint));
                    }
                };
                let name = name.to_string();
                if !inv.groups.contains_key(&name) && new_state == State::Vars && !pending.contains_key(&name) {
                    pending.insert(
                        name.clone(),
                        Pending {
                            loc: loc_at(1),
                            parents: vec![],
                            state: State::Vars,
                        },
                    );
                }
                inv.ensure_group(&name);
                if new_state != State::Vars {
                    resolve_pending(inv, &name, &mut pending)?;
                }
                group = name;
                state = new_state;
                continue;
            }
        }
        match state {
            State::Hosts => host_line(inv, line, &group, &loc_at, vaulted)?,
            State::Vars => {
                let Some((k, v)) = line.split_once('=') else {
                    return Err(LocError::new(loc_at(1), format!("expected key=value, got `{line}`"))
                        .with_hint(format!("[{group}:vars] sections hold `name=value` lines")));
                };
                let k = k.trim();
                if k.is_empty() {
                    return Err(LocError::new(loc_at(1), "variable name is empty"));
                }
                let value = parse_ini_value(v.trim());
                if vaulted {
                    crate::output::redact::taint_leaves(&value);
                }
                super::conn_vars::check_source(k, &value)
                    .map_err(|m| LocError::new(loc_at(line.find('=').unwrap_or(0) + 2), m))?;
                inv.set_group_var(&group, k, value)
                    .map_err(|m| LocError::new(loc_at(line.find('=').unwrap_or(0) + 2), m.to_string()))?;
            }
            State::Children => {
                let child = child_name(line).map_err(|(col, m)| {
                    LocError::new(loc_at(col), m).with_hint(format!(
                        "[{group}:children] lists group names, one per line; put variables in [{group}:vars]"
                    ))
                })?;
                // The child as it was stored (invalid characters maybe replaced).
                let stored = inv.safe_group_name(child);
                if inv.groups.contains_key(&stored) {
                    inv.add_child(&group, child)
                        .map_err(|m| LocError::new(loc_at(1), m.to_string()))?;
                } else {
                    pending
                        .entry(child.to_string())
                        .or_insert(Pending {
                            loc: loc_at(1),
                            parents: vec![],
                            state: State::Children,
                        })
                        .parents
                        .push(group.clone());
                }
            }
        }
    }
    if let Some((name, p)) = pending.into_iter().next() {
        let msg = match p.state {
            State::Vars => format!("section [{name}:vars] is for group `{name}`, which is not defined"),
            _ => format!(
                "section [{}:children] includes group `{name}`, which is not defined",
                p.parents.last().map(String::as_str).unwrap_or("?")
            ),
        };
        let candidates: Vec<&str> = inv.groups.keys().map(String::as_str).filter(|g| *g != name).collect();
        let hint = match did_you_mean(&name, candidates) {
            Some(s) => format!("did you mean `{s}`?"),
            None => format!("declare it with a `[{name}]` section (it may be empty)"),
        };
        return Err(LocError::new(p.loc, msg).with_hint(hint));
    }
    Ok(())
}

fn resolve_pending(
    inv: &mut Inventory,
    name: &str,
    pending: &mut indexmap::IndexMap<String, Pending>,
) -> Result<(), LocError> {
    let Some(p) = pending.shift_remove(name) else {
        return Ok(());
    };
    for parent in &p.parents {
        inv.add_child(parent, name)
            .map_err(|m| LocError::new(p.loc.clone(), m.to_string()))?;
    }
    Ok(())
}

/// `[name]` or `[name:tag]` followed by optional whitespace and `#` comment.
/// `Ok(None)` never happens for lines starting with `[`: they are sections
/// or errors. Errors carry a 1-based column within the trimmed line.
#[allow(clippy::type_complexity)]
fn section_header(line: &str) -> Result<Option<(&str, Option<&str>)>, (usize, String)> {
    let Some(close) = line.find(']') else {
        return Err((1, format!("unterminated section header `{line}`: missing `]`")));
    };
    let inner = &line[1..close];
    let rest = line[close + 1..].trim_start();
    if !rest.is_empty() && !rest.starts_with('#') && !rest.starts_with(';') {
        let col = line.len() - line[close + 1..].trim_start().len() + 1;
        return Err((col, format!("unexpected text after section header: `{rest}`")));
    }
    let (name, tag) = match inner.split_once(':') {
        Some((n, t)) => (n, Some(t)),
        None => (inner, None),
    };
    if name.is_empty() {
        return Err((2, "empty group name in section header".into()));
    }
    if let Some(pos) = name.find(|c: char| c.is_whitespace() || c == '[') {
        return Err((pos + 2, format!("invalid group name `{name}` in section header")));
    }
    if let Some(t) = tag {
        if t.is_empty() || !t.chars().all(|c| c.is_alphanumeric() || c == '_') {
            return Err((name.len() + 3, format!("invalid section type `{t}` in `{line}`")));
        }
    }
    Ok(Some((name, tag)))
}

fn child_name(line: &str) -> Result<&str, (usize, String)> {
    let end = line.find(['#', ';']).unwrap_or(line.len());
    let name = line[..end].trim_end();
    if let Some(pos) = name.find(|c: char| c.is_whitespace() || matches!(c, ':' | ']' | '=' | '[')) {
        let what = if name.contains('=') {
            format!("expected a group name, got a variable assignment `{name}`")
        } else {
            format!("expected a group name, got `{name}`")
        };
        return Err((pos + 1, what));
    }
    Ok(name)
}

fn host_line(
    inv: &mut Inventory,
    line: &str,
    group: &str,
    loc_at: &dyn Fn(usize) -> Loc,
    vaulted: bool,
) -> Result<(), LocError> {
    let tokens =
        shell_tokens(line).map_err(|(col, m)| LocError::new(loc_at(col), format!("cannot parse host line: {m}")))?;
    let Some(first) = tokens.first() else {
        return Ok(());
    };
    let (pattern, port) = split_host_port(&first.text).map_err(|m| LocError::new(loc_at(first.col), m.to_string()))?;
    if pattern == "---" {
        return Err(LocError::new(loc_at(first.col), "`---` is not a host name")
            .with_hint("this looks like a YAML file; name it *.yml so it is read as YAML"));
    }
    let names = expand_range(&pattern).map_err(|m| {
        LocError::new(loc_at(first.col), m.to_string())
            .with_hint("ranges look like `web[01:10]`, `db-[a:f]` or `h[1:10:2]`")
    })?;
    let mut vars: Vec<(String, Value)> = Vec::new();
    for t in &tokens[1..] {
        let Some((k, v)) = t.text.split_once('=') else {
            return Err(LocError::new(
                loc_at(t.col),
                format!("expected key=value host variable, got `{}`", t.text),
            )
            .with_hint("host lines are `name [key=value ...]`; quote values containing spaces"));
        };
        if k.is_empty() {
            return Err(LocError::new(loc_at(t.col), "variable name is empty"));
        }
        let value = parse_ini_value(v);
        if vaulted {
            crate::output::redact::taint_leaves(&value);
        }
        super::conn_vars::check_source(k, &value).map_err(|m| LocError::new(loc_at(t.col + k.len() + 1), m))?;
        vars.push((k.to_string(), value));
    }
    for name in names {
        inv.add_host_to(&name, Some(group));
        if let Some(p) = port {
            inv.set_host_var(&name, "ansible_port", Value::from(p));
        }
        for (k, v) in &vars {
            inv.set_host_var(&name, k, v.clone());
        }
    }
    Ok(())
}
