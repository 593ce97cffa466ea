//! A small YAML emitter for `to_yaml`/`to_nice_yaml` that follows PyYAML's
//! layout: sorted keys, sequences inside mappings not indented, `-   key:`
//! padding for mappings inside sequences, and (for `to_yaml`) flow style for
//! collections that hold only plain scalars. Strings that would read back as
//! another type are quoted. Long-line folding is not reproduced.

use serde_json::Value;

use crate::yaml::{resolve_plain, NodeKind};

struct Emitter {
    indent: usize,
    sort_keys: bool,
    flow_leaves: bool,
}

pub(crate) fn dump(v: &Value, indent: usize, sort_keys: bool, flow_leaves: bool) -> String {
    let e = Emitter {
        indent: indent.max(1),
        sort_keys,
        flow_leaves,
    };
    if let Some(inline) = e.inline(v) {
        let mut out = inline;
        out.push('\n');
        // PyYAML ends a document that is a lone plain scalar with `...`.
        if !v.is_array() && !v.is_object() && !out.starts_with(['\'', '"']) {
            out.push_str("...\n");
        }
        return out;
    }
    let mut out = String::new();
    for line in e.block(v) {
        out.push_str(&line);
        out.push('\n');
    }
    out
}

/// Whether a string can be written without quotes and read back as itself.
fn plain_ok(s: &str) -> bool {
    if s.is_empty() || s != s.trim() || s.contains('\n') {
        return false;
    }
    if !matches!(resolve_plain(s.to_string()), NodeKind::Str(_)) {
        return false;
    }
    let first = s.chars().next().unwrap_or(' ');
    if "!&*[]{}|>'\"%@`#,".contains(first) {
        return false;
    }
    if ["-", "?", ":"].contains(&s) || s.starts_with("- ") || s.starts_with("? ") || s.starts_with(": ") {
        return false;
    }
    if s.contains(": ") || s.contains(" #") || s.ends_with(':') {
        return false;
    }
    // Dates and times would be read back as timestamps by PyYAML.
    let b = s.as_bytes();
    if b.len() >= 10 && b[..4].iter().all(u8::is_ascii_digit) && b[4] == b'-' && b[7] == b'-' {
        return false;
    }
    !s.chars().any(|c| c.is_control() && c != '\t')
}

fn quote(s: &str) -> String {
    if !s.chars().any(|c| c.is_control()) {
        return format!("'{}'", s.replace('\'', "''"));
    }
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() => out.push_str(&format!("\\x{:02x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn scalar(v: &Value) -> Option<String> {
    Some(match v {
        Value::Null => "null".into(),
        Value::Bool(b) => if *b { "true" } else { "false" }.into(),
        Value::Number(n) => n.to_string(),
        Value::String(s) if plain_ok(s) => s.clone(),
        Value::String(s) => quote(s),
        _ => return None,
    })
}

fn is_plain_scalar(v: &Value) -> bool {
    match v {
        Value::String(s) => plain_ok(s),
        Value::Array(_) | Value::Object(_) => false,
        _ => true,
    }
}

impl Emitter {
    fn entries<'a>(&self, m: &'a serde_json::Map<String, Value>) -> Vec<(&'a String, &'a Value)> {
        let mut e: Vec<_> = m.iter().collect();
        if self.sort_keys {
            e.sort_by(|a, b| a.0.cmp(b.0));
        }
        e
    }

    /// The one-line form of a value, if it has one in this style.
    fn inline(&self, v: &Value) -> Option<String> {
        match v {
            Value::Array(a) if a.is_empty() => Some("[]".into()),
            Value::Object(m) if m.is_empty() => Some("{}".into()),
            Value::Array(a) if self.flow_leaves && a.iter().all(is_plain_scalar) => Some(format!(
                "[{}]",
                a.iter().filter_map(scalar).collect::<Vec<_>>().join(", ")
            )),
            Value::Object(m) if self.flow_leaves && m.values().all(is_plain_scalar) => Some(format!(
                "{{{}}}",
                self.entries(m)
                    .into_iter()
                    .map(|(k, v)| format!(
                        "{}: {}",
                        scalar(&Value::String(k.clone())).unwrap_or_default(),
                        scalar(v).unwrap_or_default()
                    ))
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
            Value::Array(_) | Value::Object(_) => None,
            other => scalar(other),
        }
    }

    /// Lines of a block collection, relative to its own indentation.
    fn block(&self, v: &Value) -> Vec<String> {
        let pad = " ".repeat(self.indent);
        let mut lines = Vec::new();
        match v {
            Value::Object(m) => {
                for (k, x) in self.entries(m) {
                    let key = scalar(&Value::String(k.clone())).unwrap_or_default();
                    match self.inline(x) {
                        Some(s) => lines.push(format!("{key}: {s}")),
                        None => {
                            lines.push(format!("{key}:"));
                            // Sequences in mappings are not indented (PyYAML).
                            let child_pad = if x.is_array() { "" } else { pad.as_str() };
                            lines.extend(self.block(x).into_iter().map(|l| format!("{child_pad}{l}")));
                        }
                    }
                }
            }
            Value::Array(a) => {
                for x in a {
                    match self.inline(x) {
                        Some(s) => lines.push(format!("- {s}")),
                        None => {
                            let first = format!("-{}", " ".repeat(self.indent - 1).max(" ".to_string()));
                            for (i, l) in self.block(x).into_iter().enumerate() {
                                if i == 0 {
                                    lines.push(format!("{first}{l}"));
                                } else {
                                    lines.push(format!("{}{l}", " ".repeat(first.len())));
                                }
                            }
                        }
                    }
                }
            }
            other => lines.push(scalar(other).unwrap_or_default()),
        }
        lines
    }
}
