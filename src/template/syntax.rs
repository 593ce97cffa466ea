//! What in a value is template source: template syntax (`{{`, `{%`, `{#`)
//! and `!unsafe` text, which is never rendered. Used by the templar and by
//! [`super::resolve`] (which re-exports these for the engine).

use serde_json::Value;

use crate::yaml::UNSAFE_KEY;

/// The text of an `!unsafe` value: Ansible's JSON form `{"__ansible_unsafe": "..."}`.
pub fn unsafe_text(v: &Value) -> Option<&str> {
    match v {
        Value::Object(o) if o.len() == 1 => o.get(UNSAFE_KEY)?.as_str(),
        _ => None,
    }
}

/// Whether `s` holds template syntax (`{{`, `{%` or `{#`).
pub fn has_template_syntax(s: &str) -> bool {
    s.contains("{{") || s.contains("{%") || s.contains("{#")
}

/// Whether a source value needs rendering: it holds template syntax or
/// `!unsafe` text (which rendering turns into plain text).
pub fn needs_render(v: &Value) -> bool {
    match v {
        Value::String(s) => has_template_syntax(s),
        Value::Array(a) => a.iter().any(needs_render),
        Value::Object(o) => {
            unsafe_text(v).is_some() || o.iter().any(|(k, x)| has_template_syntax(k) || needs_render(x))
        }
        _ => false,
    }
}
