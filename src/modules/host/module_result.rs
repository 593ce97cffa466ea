//! The JSON a module program prints (a user module, an Ansible module's
//! payload), read as Ansible reads it.

use serde_json::{Map, Value};

/// Ansible's leniency: text before and after the JSON object (banners,
/// MOTDs, a module's stray prints) is ignored.
pub fn parse_result(stdout: &str) -> Option<Map<String, Value>> {
    let start = stdout.find('{')?;
    let end = stdout.rfind('}')?;
    match serde_json::from_str::<Value>(stdout.get(start..=end)?) {
        Ok(Value::Object(m)) => Some(m),
        _ => None,
    }
}

/// A result field as text: a string as is, other values as pretty JSON.
pub fn text_of(v: Option<Value>) -> String {
    match v {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s,
        Some(other) => serde_json::to_string_pretty(&other).unwrap_or_default(),
    }
}
