//! Variables whose values are templates, rendered once, from their source.
//!
//! A variable defined in a playbook, role, inventory, vars file or `-e` is
//! *template source*: `b: "{{ a }}-x"` means the value of `a` followed by
//! `-x`. Everything else — module results, registered variables, facts,
//! `set_fact` values, loop items, rendered arguments, lookups' results — is
//! *data*: text that may come from a managed host and is never rendered, so
//! a file named `{{ lookup('pipe', 'id') }}` stays that name. Text tagged
//! `!unsafe` in a source is data inside source (see [`unsafe_text`]).
//!
//! [`resolve`] renders each source binding that holds a template once, in
//! the order the bindings need each other (a binding used by another is
//! rendered on first use, through [`Pending`]), and never renders a
//! rendered value again: the output of a template is data. A binding that
//! refers to itself, directly or through others, is an error naming the
//! chain; one that uses an undefined variable stays undefined (so
//! `x | default(...)` works) and may be rendered again once a later layer
//! (a loop item) defines what it needs.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use minijinja::value::{Enumerator, Object};
use minijinja::{Error as JinjaError, ErrorKind};
use serde_json::{Map, Value};

pub use super::syntax::{has_template_syntax, needs_render, unsafe_text};
use super::Templar;

/// Why a source binding has no value.
#[derive(Debug, Clone)]
pub enum Failure {
    /// It uses a variable that is not defined (yet): the binding is undefined.
    Undefined,
    /// Any other error (a loop between bindings, a failing filter): using the
    /// binding is this error.
    Error(String),
    /// It is an inline `!vault` value the run's passwords cannot decrypt:
    /// reading it gives its marker, using that is the error (see
    /// [`super::vaulted`]).
    Vault { ciphertext: String, why: String },
}

/// A source binding that could not be rendered.
#[derive(Debug, Clone)]
pub struct Unresolved {
    pub name: String,
    pub source: Value,
    pub failure: Failure,
}

/// Renders the bindings named in `pending` (template source in `values`)
/// with `values` and `overlay` (which wins, as magic variables do) as the
/// context. Returns every binding with a value, and those without one.
pub fn resolve(
    templar: &Templar,
    mut values: Map<String, Value>,
    pending: HashSet<String>,
    overlay: &minijinja::Value,
) -> (Map<String, Value>, Vec<Unresolved>) {
    if pending.is_empty() {
        return (values, Vec::new());
    }
    let slots: HashMap<String, Slot> = pending
        .into_iter()
        .filter_map(|k| values.remove(&k).map(|v| (k, Slot::Source(v))))
        .collect();
    let names: Vec<String> = slots.keys().cloned().collect();
    let lazy = Arc::new(Pending {
        templar: templar.clone(),
        overlay: overlay.clone(),
        state: Mutex::new(State { values, slots }),
    });
    for name in &names {
        let _ = lazy.get_value(&minijinja::Value::from(name.as_str()));
    }
    let state = match Arc::try_unwrap(lazy) {
        Ok(p) => p.state.into_inner().unwrap_or_else(|p| p.into_inner()),
        // A template kept the context alive (it cannot: rendering is over);
        // copy the state out rather than fail.
        Err(shared) => {
            let st = shared.state.lock().unwrap_or_else(|p| p.into_inner());
            State {
                values: st.values.clone(),
                slots: st.slots.clone(),
            }
        }
    };
    let mut unresolved: Vec<Unresolved> = Vec::new();
    for (name, slot) in state.slots {
        match slot {
            Slot::Failed { source, failure } => unresolved.push(Unresolved { name, source, failure }),
            // Every pending binding was asked for above.
            Slot::Source(source) | Slot::Resolving(source) => unresolved.push(Unresolved {
                name,
                source,
                failure: Failure::Undefined,
            }),
        }
    }
    unresolved.sort_by(|a, b| a.name.cmp(&b.name));
    (state.values, unresolved)
}

/// The template context of bindings that failed with an error (not merely
/// undefined): each name gives an invalid value, so using it fails with the
/// error and nothing renders a partial text in its place.
pub fn failures_context(unresolved: &[Unresolved]) -> Option<minijinja::Value> {
    let failed: Vec<(&str, minijinja::Value)> = unresolved
        .iter()
        .filter_map(|u| Some((u.name.as_str(), failed_value(&u.failure)?)))
        .collect();
    if failed.is_empty() {
        return None;
    }
    Some(minijinja::Value::from_pairs(failed))
}

#[derive(Debug, Clone)]
enum Slot {
    /// Not rendered yet.
    Source(Value),
    /// Being rendered: asking for it now is a loop.
    Resolving(Value),
    Failed {
        source: Value,
        failure: Failure,
    },
}

#[derive(Debug)]
struct State {
    /// Data, source without templates, and rendered bindings.
    values: Map<String, Value>,
    slots: HashMap<String, Slot>,
}

/// The context while bindings are rendered: a pending binding is rendered
/// when a template first asks for it.
#[derive(Debug)]
struct Pending {
    templar: Templar,
    overlay: minijinja::Value,
    state: Mutex<State>,
}

impl Pending {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

fn to_mj(v: &Value) -> minijinja::Value {
    minijinja::Value::from(minijinja::value::Serde(v))
}

impl Object for Pending {
    fn get_value(self: &Arc<Self>, key: &minijinja::Value) -> Option<minijinja::Value> {
        let name = key.as_str()?;
        let source = {
            let mut st = self.lock();
            if let Some(v) = st.values.get(name) {
                return Some(to_mj(v));
            }
            let slot = st.slots.get_mut(name)?;
            match slot {
                Slot::Source(v) if super::syntax::undecryptable(v).is_some() => {
                    let source = std::mem::take(v);
                    let (ciphertext, why) = super::syntax::undecryptable(&source)?;
                    let failure = Failure::Vault {
                        ciphertext: ciphertext.to_string(),
                        why: why.to_string(),
                    };
                    let out = failed_value(&failure);
                    *slot = Slot::Failed { source, failure };
                    return out;
                }
                Slot::Source(v) => {
                    let v = std::mem::take(v);
                    *slot = Slot::Resolving(v.clone());
                    v
                }
                Slot::Resolving(_) => {
                    return Some(minijinja::Value::from(JinjaError::new(
                        ErrorKind::InvalidOperation,
                        format!("recursive loop detected in template: variable `{name}` refers to itself"),
                    )))
                }
                Slot::Failed { failure, .. } => return failed_value(failure),
            }
        };
        // The lock is released while rendering: the template asks this
        // object for the bindings it uses.
        let ctx = minijinja::value::merge_maps([minijinja::Value::from_dyn_object(self.clone()), self.overlay.clone()]);
        let rendered = self.templar.render_source(&source, &ctx);
        let mut st = self.lock();
        match rendered {
            Ok(v) => {
                let out = to_mj(&v);
                st.slots.remove(name);
                st.values.insert(name.to_string(), v);
                Some(out)
            }
            Err(e) => {
                let failure = if e.kind() == ErrorKind::UndefinedError {
                    Failure::Undefined
                } else {
                    // Errors of the bindings this one uses are named, not
                    // described again.
                    let why = match e.detail() {
                        Some(d)
                            if e.kind() == ErrorKind::InvalidOperation
                                && CHAIN_PREFIXES.iter().any(|p| d.starts_with(p)) =>
                        {
                            d.to_string()
                        }
                        _ => super::describe(&e, Some(&ctx)),
                    };
                    Failure::Error(format!("variable `{name}`: {why}"))
                };
                let out = failed_value(&failure);
                st.slots.insert(name.to_string(), Slot::Failed { source, failure });
                out
            }
        }
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        let st = self.lock();
        let names: Vec<minijinja::Value> = st
            .values
            .keys()
            .chain(st.slots.keys())
            .map(|k| minijinja::Value::from(k.as_str()))
            .collect();
        Enumerator::Values(names)
    }
}

/// How this module's own errors start (see [`Pending::get_value`]).
const CHAIN_PREFIXES: [&str; 2] = ["variable `", "recursive loop"];

fn failed_value(failure: &Failure) -> Option<minijinja::Value> {
    match failure {
        Failure::Undefined => None,
        Failure::Vault { ciphertext, why } => Some(super::vaulted::Undecryptable::value(ciphertext, why)),
        Failure::Error(msg) => Some(minijinja::Value::from(JinjaError::new(
            ErrorKind::InvalidOperation,
            msg.clone(),
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn run(vars: Value) -> (Map<String, Value>, Vec<Unresolved>) {
        let Value::Object(m) = vars else { panic!("object") };
        let pending = m
            .iter()
            .filter(|(_, v)| needs_render(v))
            .map(|(k, _)| k.clone())
            .collect();
        resolve(&Templar::new(), m, pending, &minijinja::Value::UNDEFINED)
    }

    #[test]
    fn cycle_is_an_error() {
        let (_, un) = run(json!({"c": "{{ d }}", "d": "{{ c }}"}));
        assert_eq!(un.len(), 2);
        assert!(
            un.iter()
                .all(|u| matches!(&u.failure, Failure::Error(m) if m.contains("recursive loop"))),
            "{un:?}"
        );
    }
}
