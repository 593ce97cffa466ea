//! The connection variables that have a type (`ansible_port` is a port
//! number, `ansible_become` a boolean, `ansible_connection` one of a few
//! plugins...). A malformed one is an error where it was written, when the
//! inventory (or a `group_vars`/`host_vars` file) is loaded, not an
//! UNREACHABLE host once rigger tries to connect. A value that is a
//! template is checked after rendering, at run time ([`check_all`]).

use serde_json::{Map, Value};

/// What a typed connection variable must hold.
#[derive(Debug, Clone, Copy)]
enum Kind {
    Port,
    Seconds,
    Bool,
    HostKeyChecking,
    Choice(&'static [&'static str]),
}

const CONNECTIONS: &[&str] = &["ssh", "smart", "paramiko", "local"];
const BECOME_METHODS: &[&str] = &["sudo", "su"];
const TRANSFER_METHODS: &[&str] = &["sftp", "scp", "piped", "smart"];

fn kind_of(name: &str) -> Option<Kind> {
    Some(match name {
        "ansible_port" | "ansible_ssh_port" => Kind::Port,
        "ansible_timeout" | "ansible_ssh_timeout" => Kind::Seconds,
        "ansible_become" | "ansible_pipelining" | "ansible_ssh_pipelining" => Kind::Bool,
        "ansible_host_key_checking" | "ansible_ssh_host_key_checking" => Kind::HostKeyChecking,
        "ansible_connection" => Kind::Choice(CONNECTIONS),
        "ansible_become_method" => Kind::Choice(BECOME_METHODS),
        "ansible_ssh_transfer_method" => Kind::Choice(TRANSFER_METHODS),
        _ => return None,
    })
}

/// Whether a value is template source, checked only once rendered.
pub fn is_template(v: &Value) -> bool {
    matches!(v, Value::String(s) if s.contains("{{") || s.contains("{%"))
}

/// Check one variable as written in an inventory source: a template passes
/// (it is checked at run time). `Err` says what is wrong with the value.
pub fn check_source(name: &str, v: &Value) -> Result<(), String> {
    if is_template(v) {
        return Ok(());
    }
    check(name, v)
}

/// Check one variable's (rendered) value. Untyped variables always pass.
pub fn check(name: &str, v: &Value) -> Result<(), String> {
    let Some(kind) = kind_of(name) else {
        return Ok(());
    };
    let shown = match v {
        Value::String(s) => format!("`{s}`"),
        other => format!("`{other}`"),
    };
    let text = match v {
        Value::String(s) => Some(s.trim().to_string()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    };
    let bad = |what: &str| Err(format!("{name} must be {what}, not {shown}"));
    let Some(text) = text else {
        return bad(match kind {
            Kind::Port => "a port number (1-65535)",
            Kind::Seconds => "a whole number of seconds",
            Kind::Bool | Kind::HostKeyChecking => "true or false",
            Kind::Choice(_) => "a string",
        });
    };
    match kind {
        Kind::Port => match text.parse::<u32>() {
            Ok(p) if (1..=65535).contains(&p) => Ok(()),
            _ => bad("a port number (1-65535)"),
        },
        Kind::Seconds => match text.parse::<u64>() {
            Ok(_) => Ok(()),
            _ => bad("a whole number of seconds"),
        },
        Kind::Bool => match crate::kv::parse_bool(&text) {
            Some(_) => Ok(()),
            None => bad("true or false"),
        },
        Kind::HostKeyChecking => match text.parse::<crate::connection::HostKeyChecking>() {
            Ok(_) => Ok(()),
            Err(_) => bad("true, false or accept-new"),
        },
        Kind::Choice(choices) => {
            if choices.contains(&text.as_str()) {
                Ok(())
            } else {
                let mut msg = format!("{name} {shown} is not supported (use one of: {})", choices.join(", "));
                if let Some(s) = crate::error::did_you_mean(&text, choices.iter().copied()) {
                    msg.push_str(&format!("; did you mean `{s}`?"));
                }
                Err(msg)
            }
        }
    }
}

/// Check every typed connection variable of a host's rendered variables
/// (run time: values that were templates in the inventory, and variables
/// set by the play).
pub fn check_all(vars: &Map<String, Value>) -> Result<(), String> {
    for (k, v) in vars {
        check(k, v)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn typed_connection_variables() {
        assert!(check("ansible_port", &json!(2222)).is_ok());
        assert!(check("ansible_port", &json!("2222")).is_ok());
        assert!(check("ansible_port", &json!("22x"))
            .unwrap_err()
            .contains("port number"));
        assert!(check("ansible_port", &json!(0)).is_err());
        assert!(check("ansible_port", &json!(70000)).is_err());
        assert!(check("ansible_ssh_timeout", &json!("ten")).is_err());
        assert!(check("ansible_become", &json!("yes")).is_ok());
        assert!(check("ansible_become", &json!("maybe")).is_err());
        assert!(check("ansible_connection", &json!("sssh"))
            .unwrap_err()
            .contains("did you mean `ssh`"));
        assert!(check("ansible_become_method", &json!("doas")).is_err());
        assert!(check("ansible_host_key_checking", &json!("accept-new")).is_ok());
        assert!(check("app_port", &json!("anything")).is_ok());
        assert!(check_source("ansible_port", &json!("{{ base + 1 }}")).is_ok());
        assert!(check("ansible_port", &json!("{{ base + 1 }}")).is_err());
    }
}
