//! Argument handling shared by all modules: load-time validation against a
//! [`ModuleDoc`], lenient deserializers for Ansible's loose typing, and the
//! `k=v` free-form syntax.

use serde::{Deserialize, Deserializer};
use serde_json::Value;

use super::values::value_bool;

/// The argument holding arguments given as one template
/// (`add_host: "{{ host_spec }}"`), rendered into a mapping when the task runs.
pub const VARIABLE_PARAMS: &str = "_variable_params";

/// True when a string will be templated at run time (its type is unknown now).
pub fn is_templated(s: &str) -> bool {
    s.contains("{{") || s.contains("{%")
}

/// One of `choices` (run-time check for templated values), with Ansible's message.
pub fn choice<'a>(module: &str, name: &str, v: &'a str, choices: &[&str]) -> Result<&'a str, super::ModuleError> {
    if choices.contains(&v) {
        Ok(v)
    } else {
        Err(super::ModuleError::Args(format!(
            "{module}: {name} must be one of: {}; got {v}",
            choices.join(", ")
        )))
    }
}

/// `state: present | absent` (default present) as a boolean.
pub fn present_absent(module: &str, state: Option<&str>) -> Result<bool, super::ModuleError> {
    Ok(choice(module, "state", state.unwrap_or("present"), &["absent", "present"])? == "present")
}

/// Fails when both options of a pair are set, with Ansible's message.
pub fn exclusive(module: &str, a: (&str, bool), b: (&str, bool)) -> Result<(), super::ModuleError> {
    if a.1 && b.1 {
        return Err(super::ModuleError::Args(format!(
            "{module}: parameters are mutually exclusive: {}|{}",
            a.0, b.0
        )));
    }
    Ok(())
}

// Ansible's boolean spellings and Jinja truthiness belong to the template
// layer (conditions use them too); modules read them from there.
pub use crate::template::truthy;

/// Deserialize a boolean written as `yes`, `"true"`, `1`, ...
pub fn de_bool<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    let v = Value::deserialize(d)?;
    value_bool(&v).ok_or_else(|| serde::de::Error::custom(format!("expected a boolean, got {v}")))
}

pub fn de_opt_bool<'de, D: Deserializer<'de>>(d: D) -> Result<Option<bool>, D::Error> {
    let v = Value::deserialize(d)?;
    if v.is_null() {
        return Ok(None);
    }
    value_bool(&v)
        .map(Some)
        .ok_or_else(|| serde::de::Error::custom(format!("expected a boolean, got {v}")))
}

/// Deserialize an integer that may be written as a string.
pub fn de_opt_int<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    let v = Value::deserialize(d)?;
    match &v {
        Value::Null => Ok(None),
        Value::Number(n) => n
            .as_i64()
            .or_else(|| n.as_f64().map(|f| f as i64))
            .map(Some)
            .ok_or_else(|| serde::de::Error::custom("expected an integer")),
        Value::String(s) => s
            .trim()
            .parse()
            .map(Some)
            .map_err(|_| serde::de::Error::custom(format!("expected an integer, got `{s}`"))),
        _ => Err(serde::de::Error::custom(format!("expected an integer, got {v}"))),
    }
}

/// Deserialize a value that may be given as a string; numbers and booleans
/// are stringified the way Ansible does.
pub fn de_opt_string<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    let v = Value::deserialize(d)?;
    Ok(match v {
        Value::Null => None,
        Value::String(s) => Some(s),
        Value::Bool(b) => Some(if b { "True".into() } else { "False".into() }),
        Value::Number(n) => Some(n.to_string()),
        other => Some(other.to_string()),
    })
}

/// Deserialize a list given as a list or as a comma-separated string.
pub fn de_string_list<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    let v = Value::deserialize(d)?;
    Ok(match v {
        Value::Null => Vec::new(),
        Value::String(s) => s
            .split(',')
            .map(|x| x.trim().to_string())
            .filter(|x| !x.is_empty())
            .collect(),
        Value::Array(a) => a
            .into_iter()
            .map(|x| match x {
                Value::String(s) => s,
                other => other.to_string(),
            })
            .collect(),
        other => vec![other.to_string()],
    })
}

/// A file mode as given in a playbook: an integer (already octal-decoded by
/// YAML 1.1 when written `0644`), an octal string, or a symbolic mode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    Octal(u32),
    Symbolic(String),
    /// Keep the source file's mode (`copy`).
    Preserve,
}

impl Mode {
    /// The resulting mode when applied to a file currently at `current`.
    pub fn apply_to(&self, current: u32, is_dir: bool) -> Option<u32> {
        match self {
            Mode::Octal(m) => Some(*m),
            Mode::Preserve => None,
            Mode::Symbolic(s) => symbolic(s, current, is_dir),
        }
    }
}

pub fn de_opt_mode<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Mode>, D::Error> {
    let v = Value::deserialize(d)?;
    match v {
        Value::Null => Ok(None),
        Value::Number(n) => {
            let i = n
                .as_u64()
                .ok_or_else(|| serde::de::Error::custom("mode must be a positive number"))?;
            // A bare 644 in YAML (no leading zero) is decimal 644; Ansible
            // interprets the digits as octal when they look octal.
            let as_text = i.to_string();
            if i > 0o7777 && as_text.bytes().all(|c| (b'0'..=b'7').contains(&c)) {
                return u32::from_str_radix(&as_text, 8)
                    .map(|m| Some(Mode::Octal(m)))
                    .map_err(serde::de::Error::custom);
            }
            Ok(Some(Mode::Octal(i as u32)))
        }
        Value::String(s) => {
            let t = s.trim();
            if t == "preserve" {
                return Ok(Some(Mode::Preserve));
            }
            if !t.is_empty() && t.bytes().all(|c| (b'0'..=b'7').contains(&c)) {
                return u32::from_str_radix(t, 8)
                    .map(|m| Some(Mode::Octal(m)))
                    .map_err(serde::de::Error::custom);
            }
            if symbolic(t, 0, false).is_some() {
                return Ok(Some(Mode::Symbolic(t.to_string())));
            }
            Err(serde::de::Error::custom(format!("invalid mode `{s}`")))
        }
        other => Err(serde::de::Error::custom(format!("invalid mode {other}"))),
    }
}

/// Apply a symbolic mode (`u=rw,g+r,o-w,a+X`) to `current`, as chmod does.
pub fn symbolic(spec: &str, current: u32, is_dir: bool) -> Option<u32> {
    let mut mode = current & 0o7777;
    for clause in spec.split(',') {
        let pos = clause.find(['=', '+', '-'])?;
        let (who, rest) = clause.split_at(pos);
        let op = rest.as_bytes()[0];
        let perms = &rest[1..];
        let mut mask = 0u32;
        for c in if who.is_empty() { "a" } else { who }.chars() {
            mask |= match c {
                'u' => 0o4700,
                'g' => 0o2070,
                'o' => 0o1007,
                'a' => 0o7777,
                _ => return None,
            };
        }
        let mut bits = 0u32;
        for c in perms.chars() {
            bits |= match c {
                'r' => 0o444,
                'w' => 0o222,
                'x' => 0o111,
                'X' if is_dir || current & 0o111 != 0 => 0o111,
                'X' => 0,
                's' => 0o6000,
                't' => 0o1000,
                _ => return None,
            };
        }
        let bits = bits & mask;
        match op {
            b'=' => {
                mode = (mode
                    & !(mask & 0o777
                        | if who.contains('u') || who.contains('a') || who.is_empty() {
                            0o4000
                        } else {
                            0
                        }
                        | if who.contains('g') || who.contains('a') || who.is_empty() {
                            0o2000
                        } else {
                            0
                        }))
                    | bits
            }
            b'+' => mode |= bits,
            b'-' => mode &= !bits,
            _ => return None,
        }
    }
    Some(mode)
}

pub use crate::kv::{decode_escapes, parse_kv, split_args, unquote};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::yaml::Loc;

    #[test]
    fn kv_parsing() {
        let loc = Loc::synthetic("t");
        let kv = parse_kv("path=/tmp/x state=directory mode='0755'", false, &loc).unwrap();
        assert_eq!(kv[2], ("mode".into(), "0755".into()));
        let kv = parse_kv("echo hi there chdir=/tmp", true, &loc).unwrap();
        assert_eq!(
            kv.last().unwrap(),
            &("_raw_params".to_string(), "echo hi there chdir=/tmp".to_string())
        );
        let kv = parse_kv("chdir=/tmp echo {{ a }} b", true, &loc).unwrap();
        assert_eq!(kv[0], ("chdir".into(), "/tmp".into()));
        assert_eq!(kv[1].1, "echo {{ a }} b");
        assert!(parse_kv("a='b", false, &loc).is_err());
    }

    #[test]
    fn kv_values_decode_escapes_like_ansible() {
        let loc = Loc::synthetic("t");
        let kv = parse_kv(r#"content="a\nb\t'c'\\d\"e" dest=/x"#, false, &loc).unwrap();
        assert_eq!(kv[0].1, "a\nb\t'c'\\d\"e");
        // As ansible-core 2.19's parse_kv: octal-looking escapes are kept
        // (so `\1` stays a group reference).
        assert_eq!(decode_escapes(r"\x41\u00e9\101\0"), "A\u{e9}\\101\\0");
        // Not escapes in Python: kept, so regexes like \d survive.
        assert_eq!(decode_escapes(r"^\d+\.\s$ \xZZ \"), r"^\d+\.\s$ \xZZ \");
        // Free-form commands are passed on as written.
        let kv = parse_kv(r"printf 'a\nb'", true, &loc).unwrap();
        assert_eq!(kv[0].1, r"printf 'a\nb'");
    }

    #[test]
    fn symbolic_modes() {
        assert_eq!(symbolic("u=rw,g=r,o=r", 0o777, false), Some(0o644));
        assert_eq!(symbolic("u+x", 0o644, false), Some(0o744));
        assert_eq!(symbolic("go-w", 0o666, false), Some(0o644));
        assert_eq!(symbolic("a+X", 0o644, true), Some(0o755));
        assert_eq!(symbolic("a+X", 0o644, false), Some(0o644));
        assert_eq!(symbolic("u=rwx", 0o4755, false), Some(0o755));
    }
}
