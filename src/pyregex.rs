//! Python regular-expression syntax for the `regex` crate: the translation
//! the file modules (`modules::files::pyre`), the `regex_*` filters and
//! lookups share, and [`compile`], Python's `re` as the templating uses it
//! (lookarounds and backreferences included, through `fancy-regex`). A
//! leaf: it depends on nothing in rigger.

/// A Python `re` pattern compiled with `re.IGNORECASE` / `re.MULTILINE`
/// as asked. Lookaheads, lookbehinds, `(?P<name>...)`, `(?P=name)` and
/// backreferences work as in Python; `\Z` is the absolute end. The error
/// is Python's wording where rigger knows it ("nothing to repeat").
pub fn compile(pat: &str, ignorecase: bool, multiline: bool) -> Result<fancy_regex::Regex, String> {
    compile_with(pat, Subject::Text, ignorecase, multiline, false)
}

/// What a Python pattern is matched against, which decides its semantics.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Subject {
    /// A `str` pattern on text: `\w`, `\d`, `\s`, `\b` and `re.IGNORECASE`
    /// are Unicode-aware. The subject is UTF-8 text (`&str`, or its bytes).
    Text,
    /// A `bytes` pattern on raw bytes (`re.compile(to_bytes(regexp))`, as
    /// `lineinfile` and `blockinfile` do): the classes and case folding are
    /// ASCII-only, `.` matches any byte but `\n`, and a non-ASCII literal
    /// in the pattern matches its UTF-8 bytes.
    Bytes,
}

/// [`compile`] for either [`Subject`], with `re.DOTALL` as asked. The
/// compiled expression searches `&str` or `&[u8]`; a pattern that uses no
/// lookaround or backreference runs on the `regex` crate's engine as is.
pub fn compile_with(
    pat: &str,
    subject: Subject,
    ignorecase: bool,
    multiline: bool,
    dotall: bool,
) -> Result<fancy_regex::Regex, String> {
    let mode = match subject {
        Subject::Text => fancy_regex::BytesMode::Unicode,
        Subject::Bytes => fancy_regex::BytesMode::Ascii,
    };
    fancy_regex::RegexBuilder::new(&translate(pat))
        .case_insensitive(ignorecase)
        .multi_line(multiline)
        .dot_matches_new_line(dotall)
        .bytes_mode(mode)
        .build()
        .map_err(|e| {
            let msg = e.to_string();
            if msg.contains("Target of repeat operator is invalid")
                || msg.contains("repetition operator missing expression")
            {
                "nothing to repeat".to_string()
            } else {
                msg
            }
        })
}

/// Translate Python regex syntax the `regex` crate spells differently:
/// `\Z` is `\z`; a `{` that does not start a repetition is a literal; a
/// `[` inside a class is a literal (the crate would read a nested class).
pub fn translate(pat: &str) -> String {
    let chars: Vec<char> = pat.chars().collect();
    let mut out = String::with_capacity(pat.len() + 8);
    let mut in_class = false;
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match c {
            '\\' if i + 1 < chars.len() => {
                let n = chars[i + 1];
                if n == 'Z' && !in_class {
                    out.push_str("\\z");
                } else {
                    out.push('\\');
                    out.push(n);
                }
                i += 2;
                continue;
            }
            '[' if !in_class => {
                in_class = true;
                out.push('[');
                // A leading `^` and a leading `]` belong to the class.
                if chars.get(i + 1) == Some(&'^') {
                    out.push('^');
                    i += 1;
                }
                if chars.get(i + 1) == Some(&']') {
                    out.push_str("\\]");
                    i += 1;
                }
            }
            '[' => out.push_str("\\["),
            ']' if in_class => {
                in_class = false;
                out.push(']');
            }
            '&' | '~' | '-' if in_class && chars.get(i + 1) == Some(&c) => {
                out.push('\\');
                out.push(c);
            }
            '{' if !in_class && !is_repetition(&chars[i..]) => out.push_str("\\{"),
            _ => out.push(c),
        }
        i += 1;
    }
    out
}

/// `{n}`, `{n,}`, `{n,m}` or `{,m}`.
fn is_repetition(s: &[char]) -> bool {
    let Some(end) = s.iter().position(|&c| c == '}') else {
        return false;
    };
    let inner: String = s[1..end].iter().collect();
    let mut parts = inner.splitn(2, ',');
    let a = parts.next().unwrap_or("");
    let b = parts.next();
    let digits = |x: &str| x.chars().all(|c| c.is_ascii_digit());
    match b {
        None => !a.is_empty() && digits(a),
        Some(b) => digits(a) && digits(b) && !(a.is_empty() && b.is_empty()),
    }
}

#[cfg(test)]
mod compile_tests {
    use super::compile;

    #[test]
    fn python_re_features() {
        let m = |p: &str, s: &str| compile(p, false, false).unwrap().is_match(s).unwrap();
        assert!(m("(?=.*qa_1)(?=.*qz_1)", "qz_1,qa_1"));
        assert!(!m("(?=.*qa_1)(?=.*qz_1)", "qz_1"));
        assert!(m("(?<!x)b", "ab"));
        assert!(!m("(?<!a)b", "ab"));
        assert!(m("(?P<w>o)(?P=w)", "foo"));
        assert!(m(r"(a)\1", "aa"));
        assert!(!m(r"a\Z", "a\n"));
        assert!(compile("A", true, false).unwrap().is_match("a").unwrap());
        assert!(compile("^b", false, true).unwrap().is_match("a\nb").unwrap());
        assert_eq!(compile("*", false, false).unwrap_err(), "nothing to repeat");
    }
}
