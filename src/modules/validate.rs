//! The load-time check of a task's arguments against its module's doc
//! (`validate_args`), before any host is contacted. It sits above the
//! registry: a generic module (`package`, `service`) accepts the options of
//! the backends it hands its arguments to.

use super::args::is_templated;
use super::values::{choices_have_bool, parse_bool};
use super::{ModuleDoc, OptKind};
use crate::error::{did_you_mean, LocError};
use crate::yaml::{Loc, Node, NodeKind};

/// The modules a generic module hands its arguments to, one of them chosen
/// on each host as Ansible does (`package`: apt, dnf, yum; `service`:
/// systemd besides its own SysV/OpenRC options). An option of any of them
/// passes the load-time check; the backend chosen on the host refuses the
/// ones it does not take.
pub fn backend_docs(generic: &str) -> Vec<&'static ModuleDoc> {
    let names: &[&str] = match generic {
        "package" => &["apt", "dnf", "yum"],
        "service" => &["systemd_service"],
        _ => &[],
    };
    names
        .iter()
        .filter_map(|n| super::registry::lookup(n))
        .map(|m| m.doc())
        .collect()
}

/// Check a task's arguments against the module's doc, before any host is contacted.
/// `args` is a mapping node; `_raw_params` holds free-form text.
/// `required`: also check that required options are given (not when
/// module_defaults may give them).
///
/// A parameter the module does not take is not an error here: a task that
/// is skipped on a host (`when:`), or an option for another OS's backend,
/// must not stop the playbook at load (issue #20). It is a located warning
/// pushed on `warnings` (with "did you mean" when a name is close), and the
/// task fails on each host it runs on, with Ansible's wording
/// ([`unsupported_params`], [`super::unsupported::unsupported_message`]).
pub fn validate_args(
    doc: &ModuleDoc,
    args: &Node,
    task_loc: &Loc,
    required: bool,
    warnings: &mut Vec<LocError>,
) -> Result<(), LocError> {
    let Some(entries) = args.as_map() else {
        return Err(LocError::new(
            args.loc.clone(),
            format!("arguments of `{}` must be a mapping", doc.name),
        ));
    };
    for (k, v) in entries {
        let key = k.key_string();
        if key == crate::modules::args::VARIABLE_PARAMS {
            continue;
        }
        // Free-form text for a module without it fails the task when it
        // runs, as in Ansible (see `refuse_raw_params`).
        if key == "_raw_params" {
            continue;
        }
        let Some(opt) = find_option(doc, &key) else {
            if is_unsupported(doc, &key) {
                warnings.push(unsupported_warning(doc, &key, &k.loc));
            }
            continue;
        };
        check_kind(doc, opt.name, opt.kind, opt.choices, v)?;
    }
    // Arguments rendered when the task runs may give the required ones;
    // free-form text for a module without it fails the task then anyway.
    let variable_params = entries.iter().any(|(k, _)| {
        k.as_str() == Some(crate::modules::args::VARIABLE_PARAMS)
            || (!doc.free_form && k.as_str() == Some("_raw_params"))
    });
    for opt in doc
        .options
        .iter()
        .filter(|o| required && o.required && !variable_params)
    {
        let present = entries.iter().any(|(k, _)| {
            let key = k.key_string();
            key == opt.name || opt.aliases.contains(&key.as_str())
        });
        let free = doc.free_form && entries.iter().any(|(k, _)| k.as_str() == Some("_raw_params"));
        if !present && !free {
            let err = LocError::new(
                task_loc.clone(),
                format!("missing required parameter `{}` for module `{}`", opt.name, doc.name),
            );
            // A misspelt name of it is the likely cause: the error points
            // at it and says so.
            let typo = entries.iter().find(|(k, _)| {
                let k = k.key_string();
                is_unsupported(doc, &k) && did_you_mean(&k, std::iter::once(opt.name)).is_some()
            });
            return Err(match typo {
                Some((k, _)) => LocError::new(k.loc.clone(), err.msg).with_hint(format!(
                    "`{}` is not a parameter of `{}`: did you mean `{}`?",
                    k.key_string(),
                    doc.name,
                    opt.name
                )),
                None => err,
            });
        }
    }
    Ok(())
}

fn find_option<'a>(doc: &'a ModuleDoc, key: &str) -> Option<&'a super::OptionDoc> {
    doc.options.iter().find(|o| o.name == key || o.aliases.contains(&key))
}

/// Whether `key` is a parameter the module does not take: not one of its
/// options or aliases, not free-form text, and not an option of a backend
/// the generic module may pick on a host (that backend refuses it there).
fn is_unsupported(doc: &ModuleDoc, key: &str) -> bool {
    if key == crate::modules::args::VARIABLE_PARAMS || key == "_raw_params" || find_option(doc, key).is_some() {
        return false;
    }
    // Modules whose other arguments are variables.
    if matches!(doc.name, "set_fact" | "add_host") {
        return false;
    }
    !backend_docs(doc.name).iter().any(|d| find_option(d, key).is_some())
}

fn unsupported_warning(doc: &ModuleDoc, key: &str, at: &Loc) -> LocError {
    let names = doc
        .options
        .iter()
        .flat_map(|o| std::iter::once(o.name).chain(o.aliases.iter().copied()));
    let hint = match did_you_mean(key, names) {
        Some(s) => format!("did you mean `{s}`?"),
        None => format!(
            "supported parameters: {}",
            doc.options.iter().map(|o| o.name).collect::<Vec<_>>().join(", ")
        ),
    };
    LocError::new(
        at.clone(),
        format!(
            "unsupported parameter `{key}` for module `{}`: the task fails on every host where it runs",
            doc.name
        ),
    )
    .with_hint(hint)
}

/// The parameters among `keys` (a task's rendered arguments, without
/// module_defaults) that the module does not take, sorted.
pub fn unsupported_params<'a>(doc: &ModuleDoc, keys: impl Iterator<Item = &'a String>) -> Vec<String> {
    let mut bad: Vec<String> = keys.filter(|k| is_unsupported(doc, k)).cloned().collect();
    bad.sort();
    bad
}

/// Ansible's check on a task's free-form text (`Task._post_validate_args`):
/// a module that takes none refuses it. Made when the task runs, so that
/// `ignore_errors` and `failed_when` apply to it as in Ansible.
pub fn refuse_raw_params(doc: &ModuleDoc, args: &Node, task_loc: &Loc) -> Result<(), LocError> {
    let raw = args.get("_raw_params").filter(|v| !v.is_null());
    match raw {
        Some(v) if !doc.free_form => {
            let name = if doc.name.contains('.') {
                doc.name.to_string()
            } else {
                format!("ansible.builtin.{}", doc.name)
            };
            let at = if v.loc.is_synthetic() { task_loc } else { &v.loc };
            Err(
                LocError::new(at.clone(), format!("Action '{name}' does not support raw params."))
                    .with_hint("give its options as a mapping or as key=value pairs"),
            )
        }
        _ => Ok(()),
    }
}

fn check_kind(doc: &ModuleDoc, name: &str, kind: OptKind, choices: &[&str], v: &Node) -> Result<(), LocError> {
    let wrong = |what: &str| {
        LocError::new(
            v.loc.clone(),
            format!(
                "parameter `{name}` of `{}` must be {what}, not {}",
                doc.name,
                v.type_name()
            ),
        )
    };
    if let NodeKind::Str(s) = &v.kind {
        if is_templated(s) {
            return Ok(());
        }
    }
    match kind {
        OptKind::Bool => match &v.kind {
            NodeKind::Bool(_) => {}
            NodeKind::Str(s) if parse_bool(s).is_some() => {}
            NodeKind::Int(0 | 1) => {}
            _ => return Err(wrong("a boolean")),
        },
        OptKind::Int => match &v.kind {
            NodeKind::Int(_) => {}
            NodeKind::Str(s) if s.trim().parse::<i64>().is_ok() => {}
            _ => return Err(wrong("an integer")),
        },
        OptKind::Float => match &v.kind {
            NodeKind::Int(_) | NodeKind::Float(_) => {}
            NodeKind::Str(s) if s.trim().parse::<f64>().is_ok() => {}
            _ => return Err(wrong("a number")),
        },
        OptKind::Str | OptKind::Path => match &v.kind {
            NodeKind::Seq(_) | NodeKind::Map(_) => return Err(wrong("a string")),
            _ => {}
        },
        OptKind::Dict => match &v.kind {
            NodeKind::Map(_) | NodeKind::Null => {}
            NodeKind::Str(_) => {}
            _ => return Err(wrong("a mapping")),
        },
        OptKind::Mode => match &v.kind {
            NodeKind::Int(_) | NodeKind::Null => {}
            NodeKind::Str(s) if parse_mode_literal(s) => {}
            _ => {
                return Err(LocError::new(
                    v.loc.clone(),
                    format!("parameter `{name}` of `{}` is not a valid mode", doc.name),
                )
                .with_hint("use an octal string like '0644' or a symbolic mode like 'u=rw,g=r,o=r'"))
            }
        },
        OptKind::List | OptKind::Raw | OptKind::Expr => {}
    }
    if !choices.is_empty() {
        if let Some(s) = v.scalar_string() {
            let s = match &v.kind {
                NodeKind::Bool(b) => if *b { "yes" } else { "no" }.to_string(),
                _ => s,
            };
            let bool_accepted = matches!(v.kind, NodeKind::Bool(_)) && choices_have_bool(choices);
            if !bool_accepted && !choices.contains(&s.as_str()) {
                let mut e = LocError::new(
                    v.loc.clone(),
                    format!("value of `{name}` must be one of: {}; got `{s}`", choices.join(", ")),
                );
                if let Some(c) = did_you_mean(&s, choices.iter().copied()) {
                    e = e.with_hint(format!("did you mean `{c}`?"));
                }
                return Err(e);
            }
        }
    }
    Ok(())
}

fn parse_mode_literal(s: &str) -> bool {
    let s = s.trim();
    if s.bytes().all(|c| (b'0'..=b'7').contains(&c)) && !s.is_empty() {
        return true;
    }
    if s == "preserve" {
        return true;
    }
    s.split(',').all(|clause| {
        let Some(pos) = clause.find(['=', '+', '-']) else {
            return false;
        };
        clause[..pos].bytes().all(|c| b"ugoa".contains(&c)) && clause[pos + 1..].bytes().all(|c| b"rwxXst".contains(&c))
    })
}
