//! Python `re` compatibility: playbooks are written for Python regular
//! expressions and `re.sub` replacement templates (`\1`, `\g<name>`).
//! The `regex` crate accepts most Python syntax; the differences that show up
//! in practice are translated here.

use regex::bytes::{Captures, Regex, RegexBuilder};

use crate::modules::ModuleError;

pub(crate) use crate::pyregex::translate;

/// Compile a Python regular expression.
pub(crate) fn compile(what: &str, pat: &str, multiline: bool, dotall: bool) -> Result<Regex, ModuleError> {
    RegexBuilder::new(&translate(pat))
        .multi_line(multiline)
        .dot_matches_new_line(dotall)
        .build()
        .map_err(|e| ModuleError::Args(format!("invalid regular expression in `{what}` ({pat}): {e}")))
}

enum Piece {
    Lit(Vec<u8>),
    Group(usize),
}

/// A parsed Python replacement template.
pub(crate) struct Template(Vec<Piece>);

impl Template {
    /// Parse `t` for `re`, checking group references like Python does.
    pub fn parse(t: &[u8], re: &Regex) -> Result<Template, ModuleError> {
        let ngroups = re.captures_len();
        let bad = |m: String| ModuleError::Args(format!("invalid replacement template: {m}"));
        let mut pieces = Vec::new();
        let mut lit = Vec::new();
        let mut i = 0;
        while i < t.len() {
            if t[i] != b'\\' || i + 1 == t.len() {
                lit.push(t[i]);
                i += 1;
                continue;
            }
            let n = t[i + 1];
            let mut group = None;
            match n {
                b'g' => {
                    let rest = &t[i + 2..];
                    if rest.first() != Some(&b'<') {
                        return Err(bad("missing < after \\g".into()));
                    }
                    let end = rest
                        .iter()
                        .position(|&b| b == b'>')
                        .ok_or_else(|| bad("missing > in \\g<...>".into()))?;
                    let name = String::from_utf8_lossy(&rest[1..end]).into_owned();
                    let idx = match name.parse::<usize>() {
                        Ok(n) => n,
                        Err(_) => re
                            .capture_names()
                            .position(|c| c == Some(name.as_str()))
                            .ok_or_else(|| bad(format!("unknown group name '{name}'")))?,
                    };
                    group = Some(idx);
                    i += 2 + end + 1;
                }
                b'0' => {
                    // Octal escape: \0, \0NN.
                    let mut j = i + 2;
                    let mut v: u32 = 0;
                    while j < t.len() && j < i + 4 && (b'0'..=b'7').contains(&t[j]) {
                        v = v * 8 + u32::from(t[j] - b'0');
                        j += 1;
                    }
                    lit.push((v & 0xff) as u8);
                    i = j;
                }
                b'1'..=b'9' => {
                    let mut j = i + 2;
                    if j < t.len() && t[j].is_ascii_digit() {
                        j += 1;
                    }
                    let num: usize = std::str::from_utf8(&t[i + 1..j])
                        .ok()
                        .and_then(|s| s.parse().ok())
                        .unwrap_or(0);
                    group = Some(num);
                    i = j;
                }
                b'n' | b't' | b'r' | b'f' | b'v' | b'a' | b'b' | b'\\' => {
                    lit.push(match n {
                        b'n' => b'\n',
                        b't' => b'\t',
                        b'r' => b'\r',
                        b'f' => 0x0c,
                        b'v' => 0x0b,
                        b'a' => 0x07,
                        b'b' => 0x08,
                        _ => b'\\',
                    });
                    i += 2;
                }
                c if c.is_ascii_alphabetic() => return Err(bad(format!("bad escape \\{}", c as char))),
                c => {
                    lit.push(b'\\');
                    lit.push(c);
                    i += 2;
                }
            }
            if let Some(g) = group {
                if g >= ngroups {
                    return Err(bad(format!("invalid group reference {g}")));
                }
                if !lit.is_empty() {
                    pieces.push(Piece::Lit(std::mem::take(&mut lit)));
                }
                pieces.push(Piece::Group(g));
            }
        }
        if !lit.is_empty() {
            pieces.push(Piece::Lit(lit));
        }
        Ok(Template(pieces))
    }

    /// Append the expansion for one match (unmatched groups expand to nothing).
    pub fn expand_into(&self, caps: &Captures<'_>, out: &mut Vec<u8>) {
        for p in &self.0 {
            match p {
                Piece::Lit(l) => out.extend_from_slice(l),
                Piece::Group(g) => {
                    if let Some(m) = caps.get(*g) {
                        out.extend_from_slice(m.as_bytes());
                    }
                }
            }
        }
    }

    pub fn expand(&self, caps: &Captures<'_>) -> Vec<u8> {
        let mut out = Vec::new();
        self.expand_into(caps, &mut out);
        out
    }
}

/// Python's `re.subn(pattern, template, text)`: the new text and the count.
pub(crate) fn subn(re: &Regex, tpl: &Template, text: &[u8]) -> (Vec<u8>, usize) {
    let mut out = Vec::with_capacity(text.len());
    let mut last = 0;
    let mut n = 0;
    for caps in re.captures_iter(text) {
        let Some(m) = caps.get(0) else { continue };
        out.extend_from_slice(&text[last..m.start()]);
        tpl.expand_into(&caps, &mut out);
        last = m.end();
        n += 1;
    }
    out.extend_from_slice(&text[last..]);
    (out, n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn translation() {
        assert_eq!(translate(r"foo\Z"), r"foo\z");
        assert_eq!(translate(r"a{b"), r"a\{b");
        assert_eq!(translate(r"a{2,3}"), r"a{2,3}");
        assert_eq!(translate(r"[[]x"), r"[\[]x");
        assert_eq!(translate(r"[]a]"), r"[\]a]");
        assert!(compile("regexp", r"^(?P<k>\w+)=", false, false).is_ok());
        assert!(matches!(
            compile("regexp", r"(", false, false),
            Err(ModuleError::Args(_))
        ));
    }

    #[test]
    fn templates_follow_python() {
        let re = compile("regexp", r"^(?P<key>\w+)=(\w+)?", false, false).unwrap();
        let caps = re.captures(b"port=22").unwrap();
        let t = Template::parse(br"\g<key> is \2\n\\\&", &re).unwrap();
        assert_eq!(t.expand(&caps), b"port is 22\n\\\\&");
        let caps = re.captures(b"port=").unwrap();
        assert_eq!(Template::parse(br"[\2]", &re).unwrap().expand(&caps), b"[]");
        assert!(Template::parse(br"\3", &re).is_err());
        assert!(Template::parse(br"\q", &re).is_err());
        assert!(Template::parse(br"\g<nope>", &re).is_err());
        let (s, n) = subn(&re, &Template::parse(br"\1: \2", &re).unwrap(), b"a=1");
        assert_eq!((s.as_slice(), n), (&b"a: 1"[..], 1));
    }
}
