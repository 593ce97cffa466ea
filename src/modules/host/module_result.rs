//! The JSON a module program prints (a user module, an Ansible module's
//! payload), read as Ansible reads it.

use serde_json::{Map, Value};

/// Ansible's leniency: text before and after the JSON object (banners,
/// MOTDs, a module's stray prints) is ignored; text after it is reported,
/// as Ansible does, in the result's `warnings` ("Module invocation had junk
/// after the JSON data: ...").
pub fn parse_result(stdout: &str) -> Option<Map<String, Value>> {
    let start = stdout.find('{')?;
    let end = stdout.rfind('}')?;
    let mut m = match serde_json::from_str::<Value>(stdout.get(start..=end)?) {
        Ok(Value::Object(m)) => m,
        _ => return None,
    };
    // The rest of the JSON's last line, then the lines after it.
    let mut after: Vec<&str> = stdout[end + 1..].lines().collect();
    if after.first().is_some_and(|l| l.trim().is_empty()) {
        after.remove(0);
    }
    if after.iter().any(|l| !l.trim().is_empty()) {
        let warning = Value::String(format!(
            "Module invocation had junk after the JSON data: {}",
            after.join("\n")
        ));
        let warnings = match m.remove("warnings") {
            Some(Value::Array(mut a)) => {
                a.push(warning);
                a
            }
            None | Some(Value::Null) => vec![warning],
            Some(other) => vec![other, warning],
        };
        m.insert("warnings".into(), Value::Array(warnings));
    }
    Some(m)
}

/// A result field as text: a string as is, other values as pretty JSON.
pub fn text_of(v: Option<Value>) -> String {
    match v {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s,
        Some(other) => serde_json::to_string_pretty(&other).unwrap_or_default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn junk_after_the_json_is_a_warning_and_junk_before_is_ignored() {
        let m = parse_result("junk_before\n{\"changed\": false}\njunk_after\n").unwrap();
        assert_eq!(
            m["warnings"],
            serde_json::json!(["Module invocation had junk after the JSON data: junk_after"])
        );
        let m = parse_result("{\"warnings\": [\"own\"]}\nx\ny").unwrap();
        assert_eq!(m["warnings"][0], "own");
        assert_eq!(m["warnings"][1], "Module invocation had junk after the JSON data: x\ny");
        assert!(!parse_result("motd\n{\"a\": 1}\n\n").unwrap().contains_key("warnings"));
    }
}
