//! Argument handling shared by all modules: load-time validation against a
//! [`ModuleDoc`], lenient deserializers for Ansible's loose typing, and the
//! `k=v` free-form syntax.

use serde::{Deserialize, Deserializer};
use serde_json::Value;

use super::values::{choices_have_bool, parse_bool, value_bool};
use super::{ModuleDoc, OptKind};
use crate::error::{did_you_mean, LocError};
use crate::yaml::{Loc, Node, NodeKind};

/// The argument holding arguments given as one template
/// (`add_host: "{{ host_spec }}"`), rendered into a mapping when the task runs.
pub const VARIABLE_PARAMS: &str = "_variable_params";

/// True when a string will be templated at run time (its type is unknown now).
pub fn is_templated(s: &str) -> bool {
    s.contains("{{") || s.contains("{%")
}

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
pub fn validate_args(doc: &ModuleDoc, args: &Node, task_loc: &Loc) -> Result<(), LocError> {
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
        if key == "_raw_params" {
            if !doc.free_form {
                return Err(LocError::new(
                    k.loc.clone(),
                    format!("module `{}` does not take free-form arguments", doc.name),
                )
                .with_hint("give its options as a mapping or as key=value pairs"));
            }
            continue;
        }
        let Some(opt) = doc
            .options
            .iter()
            .find(|o| o.name == key || o.aliases.contains(&key.as_str()))
        else {
            // Modules whose other arguments are variables (checked when they run).
            if matches!(doc.name, "set_fact" | "add_host" | "set_stats") {
                continue;
            }
            // An option of a backend the generic module may pick on a host:
            // checked against the backend chosen there, when the task runs.
            if backend_docs(doc.name).iter().any(|d| {
                d.options
                    .iter()
                    .any(|o| o.name == key || o.aliases.contains(&key.as_str()))
            }) {
                continue;
            }
            let names = doc
                .options
                .iter()
                .flat_map(|o| std::iter::once(o.name).chain(o.aliases.iter().copied()));
            let mut e = LocError::new(
                k.loc.clone(),
                format!("unsupported parameter `{key}` for module `{}`", doc.name),
            );
            e = match did_you_mean(&key, names) {
                Some(s) => e.with_hint(format!("did you mean `{s}`?")),
                None => e.with_hint(format!(
                    "supported parameters: {}",
                    doc.options.iter().map(|o| o.name).collect::<Vec<_>>().join(", ")
                )),
            };
            return Err(e);
        };
        check_kind(doc, opt.name, opt.kind, opt.choices, v)?;
    }
    let variable_params = entries
        .iter()
        .any(|(k, _)| k.as_str() == Some(crate::modules::args::VARIABLE_PARAMS));
    for opt in doc.options.iter().filter(|o| o.required && !variable_params) {
        let present = entries.iter().any(|(k, _)| {
            let key = k.key_string();
            key == opt.name || opt.aliases.contains(&key.as_str())
        });
        let free = doc.free_form && entries.iter().any(|(k, _)| k.as_str() == Some("_raw_params"));
        if !present && !free {
            return Err(LocError::new(
                task_loc.clone(),
                format!("missing required parameter `{}` for module `{}`", opt.name, doc.name),
            ));
        }
    }
    Ok(())
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

/// Split `key=value key2="quoted value"` free-form arguments (Ansible's
/// `parse_kv`). Text that is not `k=v` is collected into `_raw_params`
/// when `free_form` is true, and is an error otherwise.
pub fn parse_kv(text: &str, free_form: bool, loc: &Loc) -> Result<Vec<(String, String)>, LocError> {
    let words = split_args(text).ok_or_else(|| LocError::new(loc.clone(), "unbalanced quotes in arguments"))?;
    let mut out = Vec::new();
    let mut raw: Vec<String> = Vec::new();
    for w in words {
        match w.find('=') {
            Some(eq) if is_key(&w[..eq]) && (raw.is_empty() || !free_form) => {
                out.push((w[..eq].to_string(), unquote(&decode_escapes(&w[eq + 1..]))));
            }
            _ if free_form => raw.push(w),
            _ => {
                return Err(LocError::new(loc.clone(), format!("expected key=value, found `{w}`"))
                    .with_hint("write the arguments as a mapping or as key=value pairs"))
            }
        }
    }
    if !raw.is_empty() {
        out.push(("_raw_params".to_string(), raw.join(" ")));
    }
    Ok(out)
}

/// Python escape sequences in a `key=value` value (`\n`, `\t`, `\\`, `\"`,
/// `\x41`, `\u00e9`, octal `\101`, ...), decoded as Ansible's `parse_kv`
/// does, so `content="a\nb"` writes a newline. Invalid sequences stay as written.
pub fn decode_escapes(s: &str) -> String {
    let chars: Vec<char> = s.chars().collect();
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    while i < chars.len() {
        if chars[i] != '\\' || i + 1 == chars.len() {
            out.push(chars[i]);
            i += 1;
            continue;
        }
        let code_point = |digits: &[char], radix: u32| {
            let text: String = digits.iter().collect();
            u32::from_str_radix(&text, radix).ok().and_then(char::from_u32)
        };
        let hex = |len: usize| {
            chars
                .get(i + 2..i + 2 + len)
                .filter(|d| d.iter().all(char::is_ascii_hexdigit))
                .and_then(|d| code_point(d, 16))
                .map(|c| (c, 2 + len))
        };
        let decoded = match chars[i + 1] {
            '\\' => Some(('\\', 2)),
            '\'' => Some(('\'', 2)),
            '"' => Some(('"', 2)),
            'a' => Some(('\x07', 2)),
            'b' => Some(('\x08', 2)),
            'f' => Some(('\x0c', 2)),
            'n' => Some(('\n', 2)),
            'r' => Some(('\r', 2)),
            't' => Some(('\t', 2)),
            'v' => Some(('\x0b', 2)),
            'x' => hex(2),
            'u' => hex(4),
            'U' => hex(8),
            '0'..='7' => {
                let digits: Vec<char> = chars[i + 1..]
                    .iter()
                    .take(3)
                    .take_while(|c| ('0'..='7').contains(*c))
                    .copied()
                    .collect();
                code_point(&digits, 8).map(|c| (c, 1 + digits.len()))
            }
            _ => None,
        };
        match decoded {
            Some((c, used)) => {
                out.push(c);
                i += used;
            }
            None => {
                out.push('\\');
                i += 1;
            }
        }
    }
    out
}

fn is_key(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'_')
}

pub fn unquote(s: &str) -> String {
    let b = s.as_bytes();
    if b.len() >= 2 && (b[0] == b'"' || b[0] == b'\'') && b[b.len() - 1] == b[0] {
        s[1..s.len() - 1].to_string()
    } else {
        s.to_string()
    }
}

/// Split on whitespace outside quotes and Jinja blocks, keeping quotes.
pub fn split_args(text: &str) -> Option<Vec<String>> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quote: Option<char> = None;
    let mut depth = 0i32;
    let chars: Vec<char> = text.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        if quote.is_none() && c == '{' && matches!(next, Some('{') | Some('%') | Some('#')) {
            depth += 1;
            cur.push(c);
            cur.push(next.unwrap_or('{'));
            i += 2;
            continue;
        }
        if quote.is_none() && depth > 0 && matches!(c, '}' | '%' | '#') && next == Some('}') {
            depth -= 1;
            cur.push(c);
            cur.push('}');
            i += 2;
            continue;
        }
        match quote {
            Some(q) if c == q && chars.get(i.wrapping_sub(1)) != Some(&'\\') => {
                quote = None;
                cur.push(c)
            }
            Some(_) => cur.push(c),
            None if (c == '"' || c == '\'') && depth == 0 => {
                quote = Some(c);
                cur.push(c)
            }
            None if c.is_whitespace() && depth == 0 => {
                if !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
            }
            None => cur.push(c),
        }
        i += 1;
    }
    if quote.is_some() {
        return None;
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

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
        assert_eq!(decode_escapes(r"\x41\u00e9\101\0"), "A\u{e9}A\0");
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
