//! How module arguments spell plain values (booleans, choices), for the
//! load-time checks ([`super::args`]) and run-time parsing
//! ([`super::contract::parse_params`]) alike.

use serde_json::Value;

/// Ansible's boolean spellings (the template layer's: conditions use them too).
pub use crate::template::parse_bool;

/// A boolean argument as the modules read it (`yes`, `"true"`, `1`, ...).
pub fn value_bool(v: &Value) -> Option<bool> {
    match v {
        Value::Bool(b) => Some(*b),
        Value::String(s) => parse_bool(s),
        Value::Number(n) => n.as_i64().map(|i| i != 0),
        _ => None,
    }
}

/// Whether an option's choices are boolean spellings (a YAML boolean matches them).
pub fn choices_have_bool(choices: &[&str]) -> bool {
    choices.iter().any(|c| matches!(*c, "yes" | "no" | "true" | "false"))
}
