//! Python `re` compatibility: playbooks are written for Python regular
//! expressions and `re.sub` replacement templates (`\1`, `\g<name>`).
//! The patterns compile through [`crate::pyregex`] (fancy-regex): Python's
//! syntax, lookarounds and backreferences included, on raw bytes, so files
//! that are not UTF-8 are searched and rewritten without loss.

use crate::modules::ModuleError;
pub(crate) use crate::pyregex::Subject;

#[cfg(test)]
use crate::pyregex::translate;

/// One match of a [`Regex`] in a byte string.
pub(crate) type Captures<'h> = fancy_regex::Captures<'h, [u8]>;

/// A compiled Python regular expression searching bytes. Searching can
/// fail (a lookaround or backreference that exceeds the backtracking
/// limit): that is an error naming the pattern, never a silent non-match.
pub(crate) struct Regex {
    re: fancy_regex::Regex,
    what: &'static str,
    pat: String,
}

/// Compile the Python regular expression `pat` given in option `what`.
pub(crate) fn compile(
    what: &'static str,
    pat: &str,
    subject: Subject,
    multiline: bool,
    dotall: bool,
) -> Result<Regex, ModuleError> {
    let re = crate::pyregex::compile_with(pat, subject, false, multiline, dotall)
        .map_err(|e| ModuleError::Args(format!("invalid regular expression in `{what}` ({pat}): {e}")))?;
    Ok(Regex {
        re,
        what,
        pat: pat.to_string(),
    })
}

impl Regex {
    fn failed(&self, e: fancy_regex::Error) -> ModuleError {
        ModuleError::Failed(format!(
            "the regular expression in `{}` ({}) could not be searched: {e}",
            self.what, self.pat
        ))
    }

    pub fn is_match(&self, hay: &[u8]) -> Result<bool, ModuleError> {
        self.re.is_match(hay).map_err(|e| self.failed(e))
    }

    /// The leftmost-first match's start and end.
    pub fn find(&self, hay: &[u8]) -> Result<Option<(usize, usize)>, ModuleError> {
        match self.re.find(hay) {
            Ok(m) => Ok(m.map(|m| (m.start(), m.end()))),
            Err(e) => Err(self.failed(e)),
        }
    }

    pub fn captures<'h>(&self, hay: &'h [u8]) -> Result<Option<Captures<'h>>, ModuleError> {
        self.re.captures(hay).map_err(|e| self.failed(e))
    }

    /// Group count, group 0 (the whole match) included.
    pub fn captures_len(&self) -> usize {
        self.re.captures_len()
    }

    /// The number of the group called `name`.
    pub fn group_index(&self, name: &str) -> Option<usize> {
        self.re.capture_names().position(|c| c == Some(name))
    }
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
                            .group_index(&name)
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
pub(crate) fn subn(re: &Regex, tpl: &Template, text: &[u8]) -> Result<(Vec<u8>, usize), ModuleError> {
    let mut out = Vec::with_capacity(text.len());
    let mut last = 0;
    let mut n = 0;
    for caps in re.re.captures_iter(text) {
        let caps = caps.map_err(|e| re.failed(e))?;
        let Some(m) = caps.get(0) else { continue };
        out.extend_from_slice(&text[last..m.start()]);
        tpl.expand_into(&caps, &mut out);
        last = m.end();
        n += 1;
    }
    out.extend_from_slice(&text[last..]);
    Ok((out, n))
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
        assert!(compile("regexp", r"^(?P<k>\w+)=", Subject::Bytes, false, false).is_ok());
        assert!(matches!(
            compile("regexp", r"(", Subject::Bytes, false, false),
            Err(ModuleError::Args(_))
        ));
    }

    #[test]
    fn templates_follow_python() {
        let re = compile("regexp", r"^(?P<key>\w+)=(\w+)?", Subject::Bytes, false, false).unwrap();
        let caps = re.captures(b"port=22").unwrap().unwrap();
        let t = Template::parse(br"\g<key> is \2\n\\\&", &re).unwrap();
        assert_eq!(t.expand(&caps), b"port is 22\n\\\\&");
        let caps = re.captures(b"port=").unwrap().unwrap();
        assert_eq!(Template::parse(br"[\2]", &re).unwrap().expand(&caps), b"[]");
        assert!(Template::parse(br"\3", &re).is_err());
        assert!(Template::parse(br"\q", &re).is_err());
        assert!(Template::parse(br"\g<nope>", &re).is_err());
        let (s, n) = subn(&re, &Template::parse(br"\1: \2", &re).unwrap(), b"a=1").unwrap();
        assert_eq!((s.as_slice(), n), (&b"a: 1"[..], 1));
    }

    #[test]
    fn python_syntax_on_bytes() {
        let bytes = |p: &str| compile("regexp", p, Subject::Bytes, false, false).unwrap();
        // Lookarounds and backreferences, as devsec.os_hardening writes them.
        let re = bytes(r"^(account.*pam_unix.so(?!.*no_pass_expiry).*)$");
        assert!(re.is_match(b"account required pam_unix.so").unwrap());
        assert!(!re.is_match(b"account required pam_unix.so no_pass_expiry").unwrap());
        assert!(bytes(r"(?<=x)y").is_match(b"xy").unwrap());
        assert!(bytes(r#"(?P<q>['"]).*(?P=q)"#).is_match(b"'a'").unwrap());
        assert!(!bytes(r"(a)\1").is_match(b"ab").unwrap());
        // Files that are not UTF-8 are searched byte for byte.
        let re = bytes(r"^k=(.*)(?<!#)$");
        let caps = re.captures(b"k=\xff\xfe").unwrap().unwrap();
        assert_eq!(caps.get(1).unwrap().as_bytes(), b"\xff\xfe");
        // A bytes pattern's classes are ASCII (Python's re on bytes).
        assert!(!bytes(r"^\w$").is_match("é".as_bytes()).unwrap());
        assert!(bytes(r"^caf.$").is_match(b"caf\xe9").unwrap());
        assert!(bytes("^café$").is_match("café".as_bytes()).unwrap());
        // A str pattern's are Unicode.
        let text = compile("regexp", r"^\w+$", Subject::Text, false, false).unwrap();
        assert!(text.is_match("café".as_bytes()).unwrap());
        // Replacement through a lookahead keeps the rest of the text.
        let re = bytes(r"(?m)^(a)(?=b)");
        let (s, n) = subn(&re, &Template::parse(br"[\1]", &re).unwrap(), b"ab\nac\nab\xff").unwrap();
        assert_eq!((s.as_slice(), n), (&b"[a]b\nac\n[a]b\xff"[..], 2));
    }
}
