//! Ansible's `key=value` argument syntax (`parse_kv`, `split_args`): free-form
//! module arguments, `include_role: name=x`, lookup terms in the old k=v form.
//! A leaf below the playbook loader, the modules and the template engine.

use crate::error::LocError;
use crate::yaml::Loc;

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
/// `\x41`, `\u00e9`, ...), decoded as Ansible's `parse_kv` does, so
/// `content="a\nb"` writes a newline. Invalid sequences stay as written, and
/// so do octal ones (not in Ansible's list): `replace='"\1"'` keeps its
/// group reference.
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

/// Ansible's boolean spellings.
pub fn parse_bool(s: &str) -> Option<bool> {
    match s.trim().to_ascii_lowercase().as_str() {
        "yes" | "true" | "on" | "1" | "y" | "t" => Some(true),
        "no" | "false" | "off" | "0" | "n" | "f" | "" => Some(false),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::decode_escapes;

    /// Ansible's `_ESCAPE_SEQUENCE_RE`: single-character and hex escapes are
    /// decoded; a backslash and digits (a regex group reference) are not.
    #[test]
    fn escapes_as_ansible_parse_kv() {
        assert_eq!(decode_escapes(r"a\nb\t\x41\u00e9\\"), "a\nb\tAé\\");
        assert_eq!(decode_escapes(r#""\1" \101 \0"#), r#""\1" \101 \0"#);
        assert_eq!(decode_escapes(r"\b(.+)\b"), "\x08(.+)\x08");
        assert_eq!(decode_escapes(r"\q"), r"\q");
    }
}
