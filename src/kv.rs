//! Ansible's `key=value` argument syntax (`parse_kv`, `split_args`): free-form
//! module arguments, `include_role: name=x`, lookup terms in the old k=v form.
//! A leaf below the playbook loader, the modules and the template engine.

use crate::error::LocError;
use crate::loc::Loc;

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

/// Ansible's `split_args` (ansible.parsing.splitter), for a free-form
/// module's text (`command`, `shell`, ...): words split on spaces outside
/// quotes and Jinja blocks, where runs of spaces and each line's newline
/// stay attached to the word before them, and a lone `\` at the end of a
/// line (outside quotes) joins the next line to it. [`join_args`] gives
/// the text back with its lines. `None` when quotes or blocks are left open.
pub fn split_args_keeping_lines(args: &str) -> Option<Vec<String>> {
    let mut params: Vec<String> = Vec::new();
    let items: Vec<&str> = args.split('\n').collect();
    let mut quote_char: Option<char> = None;
    let (mut print_depth, mut block_depth, mut comment_depth) = (0i64, 0i64, 0i64);
    for (itemidx, item) in items.iter().enumerate() {
        let mut line_continuation = false;
        for (idx, token) in item.split(' ').enumerate() {
            if token.is_empty() && idx != 0 {
                match params.last_mut() {
                    Some(last) => last.push(' '),
                    None => params.push(" ".into()),
                }
                continue;
            }
            let inside_quotes_before = quote_char.is_some();
            if token == "\\" && !inside_quotes_before {
                line_continuation = true;
                continue;
            }
            let was_inside_quotes = inside_quotes_before;
            quote_char = quote_state(token, quote_char);
            let inside_quotes = quote_char.is_some();
            let in_block = print_depth != 0 || block_depth != 0 || comment_depth != 0;
            let mut appended = false;
            if inside_quotes && !was_inside_quotes && !in_block {
                params.push(token.to_string());
                appended = true;
            } else if in_block || inside_quotes || was_inside_quotes {
                // The space the split took, except at a line's start.
                let spacer = if idx > 0 { " " } else { "" };
                match params.last_mut() {
                    Some(last) => {
                        last.push_str(spacer);
                        last.push_str(token);
                    }
                    None => params.push(token.to_string()),
                }
                appended = true;
            }
            for (depth, open, close) in [
                (&mut print_depth, "{{", "}}"),
                (&mut block_depth, "{%", "%}"),
                (&mut comment_depth, "{#", "#}"),
            ] {
                let before = *depth;
                let (opened, closed) = (token.matches(open).count() as i64, token.matches(close).count() as i64);
                if opened != closed {
                    *depth = (*depth + opened - closed).max(0);
                }
                if *depth != before && !appended {
                    params.push(token.to_string());
                    appended = true;
                }
            }
            let in_block = print_depth != 0 || block_depth != 0 || comment_depth != 0;
            if !in_block && !inside_quotes && !appended && !token.is_empty() {
                params.push(token.to_string());
            }
        }
        if items.len() > 1 && itemidx != items.len() - 1 && !line_continuation {
            match params.last_mut() {
                Some(last) => last.push('\n'),
                None => params.push("\n".into()),
            }
        }
    }
    if print_depth != 0 || block_depth != 0 || comment_depth != 0 || quote_char.is_some() {
        return None;
    }
    Some(params)
}

/// Ansible's `_get_quote_state`: the open quote after `token`.
fn quote_state(token: &str, mut quote_char: Option<char>) -> Option<char> {
    let mut prev: Option<char> = None;
    for c in token.chars() {
        if (c == '"' || c == '\'') && prev != Some('\\') {
            match quote_char {
                Some(q) if q == c => quote_char = None,
                Some(_) => {}
                None => quote_char = Some(c),
            }
        }
        prev = Some(c);
    }
    quote_char
}

/// Ansible's `join_args`: the words of [`split_args_keeping_lines`] back
/// into text, a space between words except after a newline.
pub fn join_args(words: &[String]) -> String {
    let mut out = String::new();
    for w in words {
        if !out.is_empty() && !out.ends_with('\n') {
            out.push(' ');
        }
        out.push_str(w);
    }
    out
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
    use super::{decode_escapes, join_args, split_args_keeping_lines};

    /// ansible.parsing.splitter: lines, runs of spaces, quotes and a
    /// trailing ` \` line continuation, as Ansible keeps them.
    #[test]
    fn free_form_text_keeps_its_lines_as_ansible_split_args() {
        let text = "echo this is a \\\n\"multiline echo\" \\\n\"with a new line\nin quotes\" \\\n| sha1sum\necho \"this is a second line\"\n";
        let words = split_args_keeping_lines(text).expect("balanced");
        assert_eq!(
            join_args(&words),
            "echo this is a \"multiline echo\" \"with a new line\nin quotes\" | sha1sum\necho \"this is a second line\"\n"
        );
        let words = split_args_keeping_lines("echo a  b chdir=/tmp {{ x  }}").expect("balanced");
        assert_eq!(words, ["echo", "a ", "b", "chdir=/tmp", "{{ x  }}"]);
        assert_eq!(join_args(&words), "echo a  b chdir=/tmp {{ x  }}");
        assert_eq!(split_args_keeping_lines("echo 'open"), None);
        assert_eq!(split_args_keeping_lines("{{ open"), None);
    }

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
