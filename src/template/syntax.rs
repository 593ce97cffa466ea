//! What in a value is template source: template syntax (`{{`, `{%`, `{#`)
//! and `!unsafe` text, which is never rendered. Used by the templar and by
//! [`super::resolve`] (which re-exports these for the engine).

use serde_json::Value;

use crate::yaml::{UNSAFE_KEY, VAULT_ERROR_KEY, VAULT_KEY};

/// The text of an `!unsafe` value: Ansible's JSON form `{"__ansible_unsafe": "..."}`.
pub fn unsafe_text(v: &Value) -> Option<&str> {
    match v {
        Value::Object(o) if o.len() == 1 => o.get(UNSAFE_KEY)?.as_str(),
        _ => None,
    }
}

/// An inline `!vault` value the run's vault passwords cannot decrypt
/// (see `yaml::VAULT_KEY`): its ciphertext and why it cannot be decrypted.
pub fn undecryptable(v: &Value) -> Option<(&str, &str)> {
    match v {
        Value::Object(o) if o.len() == 2 => Some((o.get(VAULT_KEY)?.as_str()?, o.get(VAULT_ERROR_KEY)?.as_str()?)),
        _ => None,
    }
}

/// Whether `s` holds template syntax (`{{`, `{%` or `{#`).
pub fn has_template_syntax(s: &str) -> bool {
    s.contains("{{") || s.contains("{%") || s.contains("{#")
}

/// Whether a source value needs rendering: it holds template syntax,
/// `!unsafe` text (which rendering turns into plain text) or an
/// undecryptable `!vault` value (which rendering refuses).
pub fn needs_render(v: &Value) -> bool {
    match v {
        Value::String(s) => has_template_syntax(s),
        Value::Array(a) => a.iter().any(needs_render),
        Value::Object(o) => {
            unsafe_text(v).is_some()
                || undecryptable(v).is_some()
                || o.iter().any(|(k, x)| has_template_syntax(k) || needs_render(x))
        }
        _ => false,
    }
}

/// Ansible's `escape_backslashes` for templates sourced from YAML (task
/// arguments, variables): a string constant inside `{{ }}` keeps its
/// backslashes literally, where Jinja would read `\1` or `\n` as an escape
/// (Ansible doubles every backslash of an expression's string tokens before
/// Jinja decodes them; `{% %}` tags, comments and raw blocks are left as
/// they are). So `regex_replace("^v(\d+)", "\1")` gets `\1`, a
/// back-reference, as under Ansible. Conditionals and template files are
/// not escaped (Ansible does not escape them either).
pub fn escape_backslashes(src: &str) -> std::borrow::Cow<'_, str> {
    if !src.contains('\\') || !src.contains("{{") {
        return std::borrow::Cow::Borrowed(src);
    }
    let b = src.as_bytes();
    let mut out = String::with_capacity(src.len() + 8);
    let mut i = 0;
    let mut copied = 0;
    // The end of a string literal starting at `q` (its closing quote), or None.
    let string_end = |q: usize| -> Option<usize> {
        let quote = b[q];
        let mut j = q + 1;
        while j < b.len() {
            match b[j] {
                b'\\' => j += 2,
                c if c == quote => return Some(j),
                _ => j += 1,
            }
        }
        None
    };
    // The end (index after the closer) of a tag opened at `start` (after `{%`).
    let tag_end = |start: usize| -> Option<usize> {
        let mut j = start;
        while j + 1 < b.len() {
            match b[j] {
                b'\'' | b'"' => j = string_end(j)? + 1,
                b'%' if b[j + 1] == b'}' => return Some(j + 2),
                _ => j += 1,
            }
        }
        None
    };
    let tag_name = |from: usize, to: usize| -> &str {
        src[from..to - 2].trim_matches(|c: char| c == '-' || c == '+' || c.is_whitespace())
    };
    while i + 1 < b.len() {
        match (b[i], b[i + 1]) {
            (b'{', b'#') => {
                i = src[i + 2..].find("#}").map_or(b.len(), |e| i + 2 + e + 2);
            }
            (b'{', b'%') => {
                let Some(end) = tag_end(i + 2) else { break };
                if tag_name(i + 2, end) == "raw" {
                    // Up to the `{% endraw %}` tag.
                    let mut j = end;
                    i = b.len();
                    while let Some(k) = src[j..].find("{%") {
                        let Some(e) = tag_end(j + k + 2) else { break };
                        if tag_name(j + k + 2, e) == "endraw" {
                            i = e;
                            break;
                        }
                        j = e;
                    }
                } else {
                    i = end;
                }
            }
            (b'{', b'{') => {
                let mut j = i + 2;
                let mut depth = 0usize;
                while j < b.len() {
                    match b[j] {
                        b'\'' | b'"' => {
                            let Some(e) = string_end(j) else {
                                j = b.len();
                                break;
                            };
                            let body = &src[j + 1..e];
                            if body.contains('\\') {
                                out.push_str(&src[copied..j + 1]);
                                let quote = b[j] as char;
                                for c in body.chars() {
                                    match c {
                                        '\\' => out.push_str("\\\\"),
                                        c if c == quote => {
                                            out.push('\\');
                                            out.push(c);
                                        }
                                        c => out.push(c),
                                    }
                                }
                                copied = e;
                            }
                            j = e + 1;
                        }
                        b'{' | b'[' | b'(' => {
                            depth += 1;
                            j += 1;
                        }
                        b'}' if depth == 0 && b.get(j + 1) == Some(&b'}') => break,
                        b'}' | b']' | b')' => {
                            depth = depth.saturating_sub(1);
                            j += 1;
                        }
                        _ => j += 1,
                    }
                }
                i = j + 2;
            }
            _ => i += 1,
        }
    }
    if copied == 0 {
        return std::borrow::Cow::Borrowed(src);
    }
    out.push_str(&src[copied..]);
    std::borrow::Cow::Owned(out)
}

#[cfg(test)]
mod escape_tests {
    use super::escape_backslashes as esc;

    #[test]
    fn backslashes_in_expression_strings_are_literal() {
        assert_eq!(
            esc(r#"{{ v | regex_replace("^v(\d+)", "\1") }}"#),
            r#"{{ v | regex_replace("^v(\\d+)", "\\1") }}"#
        );
        assert_eq!(esc(r"{{ 'a\'b' }}"), r"{{ 'a\\\'b' }}");
        assert_eq!(
            esc(r#"x\n {{ "\t" ~ {'k': '\n'}['k'] }} y\1"#),
            r#"x\n {{ "\\t" ~ {'k': '\\n'}['k'] }} y\1"#
        );
        // Tags, comments, raw blocks and text outside expressions are untouched.
        for same in [
            r#"{% set x = "\n" %}{{ x }}"#,
            r#"{# "\n" #}{{ x }}"#,
            r#"{% raw %}{{ "\n" }}{% endraw %}{{ y }}"#,
            r#"no \1 expression"#,
            r#"{{ "plain" }} \1"#,
        ] {
            assert_eq!(esc(same), same);
        }
        assert_eq!(
            esc(r#"{% raw %}{{ "\n" }}{% endraw %}{{ "\n" }}"#),
            r#"{% raw %}{{ "\n" }}{% endraw %}{{ "\\n" }}"#
        );
    }
}
