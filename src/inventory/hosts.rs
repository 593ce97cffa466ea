//! Host names as inventories write them: `web[01:20].example.com` ranges,
//! `name:port` shorthand, `[::1]:2222` bracketed IPv6.

/// Upper bound on the hosts one range may produce, so that a typo such as
/// `[1:100000000]` fails instead of exhausting memory. Ansible has none. The
/// messages of [`HostError::RangeTooLarge`] and [`HostError::PatternTooLarge`]
/// name it.
const MAX_EXPANSION: usize = 1_000_000;

const LETTERS: &str = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";

/// Why a host name or range in an inventory cannot be read. Each variant
/// keeps the text it is about (`spec` is a range without its brackets).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HostError {
    #[error("host `{0}` ends with `:`; that character is reserved to give a port")]
    EmptyPort(String),
    #[error("port `{0}` is out of range (1-65535)")]
    PortRange(String),
    #[error("unterminated range `[` in host `{0}`")]
    Unterminated(String),
    #[error("host range `[{0}]` must be begin:end or begin:end:step")]
    RangeShape(String),
    #[error("host range `[{0}]` must specify an end value")]
    NoEnd(String),
    #[error("host range `[{spec}]` has an invalid step `{step}`")]
    Step { spec: String, step: String },
    #[error("host range `[{0}]` must have begin <= end")]
    Order(String),
    #[error("host range `[{0}]` must use numbers or single letters")]
    Bounds(String),
    #[error("host range `[{0}]` must use equal-length begin and end when zero-padded")]
    Padding(String),
    #[error("host range `[{0}]` expands to too many hosts (the limit is 1,000,000 per host pattern)")]
    RangeTooLarge(String),
    #[error("host pattern `{0}` expands to too many hosts (the limit is 1,000,000)")]
    PatternTooLarge(String),
}

/// Split `host:port` (or `[v6]:port`). Bare IPv6 addresses have no port.
/// Colons inside `[x:y]` ranges are not port separators.
pub fn split_host_port(s: &str) -> Result<(String, Option<u16>), HostError> {
    if let Some(rest) = s.strip_prefix('[') {
        if let Some((inner, port)) = rest.rsplit_once("]:") {
            if !inner.contains('[') && !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) {
                return Ok((inner.to_string(), Some(parse_port(port)?)));
            }
        }
    }
    // Find colons outside brackets.
    let mut depth = 0i32;
    let mut colons = Vec::new();
    for (i, c) in s.char_indices() {
        match c {
            '[' => depth += 1,
            ']' => depth -= 1,
            ':' if depth == 0 => colons.push(i),
            _ => {}
        }
    }
    if colons.len() == 1 {
        let i = colons[0];
        let port = &s[i + 1..];
        if !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) {
            return Ok((s[..i].to_string(), Some(parse_port(port)?)));
        }
        if port.is_empty() {
            return Err(HostError::EmptyPort(s.to_string()));
        }
    }
    Ok((s.to_string(), None))
}

fn parse_port(p: &str) -> Result<u16, HostError> {
    p.parse::<u16>().map_err(|_| HostError::PortRange(p.to_string()))
}

/// Expand every `[a:b]` / `[a:b:step]` range in a host name.
pub fn expand_range(pattern: &str) -> Result<Vec<String>, HostError> {
    let mut out = Vec::new();
    expand_into(pattern, &mut out)?;
    Ok(out)
}

fn expand_into(pattern: &str, out: &mut Vec<String>) -> Result<(), HostError> {
    let Some(open) = pattern.find('[') else {
        out.push(pattern.to_string());
        return Ok(());
    };
    let Some(close_rel) = pattern[open..].find(']') else {
        return Err(HostError::Unterminated(pattern.to_string()));
    };
    let close = open + close_rel;
    let (head, spec, tail) = (&pattern[..open], &pattern[open + 1..close], &pattern[close + 1..]);
    let bounds: Vec<&str> = spec.split(':').collect();
    if bounds.len() != 2 && bounds.len() != 3 {
        return Err(HostError::RangeShape(spec.to_string()));
    }
    let beg = if bounds[0].is_empty() { "0" } else { bounds[0] };
    let end = bounds[1];
    if end.is_empty() {
        return Err(HostError::NoEnd(spec.to_string()));
    }
    let step: usize = match bounds.get(2) {
        None => 1,
        Some(s) => match s.parse::<usize>() {
            Ok(n) if n > 0 => n,
            _ => {
                return Err(HostError::Step {
                    spec: spec.to_string(),
                    step: s.to_string(),
                })
            }
        },
    };
    let items: Vec<String> = if let (Some(b), Some(e)) = (letter_index(beg), letter_index(end)) {
        if b > e {
            return Err(HostError::Order(spec.to_string()));
        }
        LETTERS[b..=e].chars().step_by(step).map(String::from).collect()
    } else {
        let (Ok(b), Ok(e)) = (beg.parse::<u64>(), end.parse::<u64>()) else {
            return Err(HostError::Bounds(spec.to_string()));
        };
        let width = if beg.starts_with('0') && beg.len() > 1 {
            if beg.len() != end.len() {
                return Err(HostError::Padding(spec.to_string()));
            }
            beg.len()
        } else {
            0
        };
        if e >= b && ((e - b) / step as u64) as usize >= MAX_EXPANSION {
            return Err(HostError::RangeTooLarge(spec.to_string()));
        }
        if e < b {
            Vec::new()
        } else {
            (b..=e).step_by(step).map(|i| format!("{i:0width$}")).collect()
        }
    };
    for item in items {
        if out.len() >= MAX_EXPANSION {
            return Err(HostError::PatternTooLarge(pattern.to_string()));
        }
        expand_into(&format!("{head}{item}{tail}"), out)?;
    }
    Ok(())
}

fn letter_index(s: &str) -> Option<usize> {
    let mut chars = s.chars();
    let c = chars.next()?;
    if chars.next().is_some() {
        return None;
    }
    LETTERS.find(c)
}

/// A token of an INI host line with the character column where it started.
#[derive(Debug, PartialEq)]
pub struct Token {
    pub text: String,
    pub col: usize,
}

/// Split a host line like Python's `shlex.split(line, comments=True)`:
/// POSIX quoting, and `#` outside quotes starts a comment (even mid-word).
pub fn shell_tokens(line: &str) -> Result<Vec<Token>, (usize, String)> {
    let chars: Vec<char> = line.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    let mut cur: Option<Token> = None;
    while i < chars.len() {
        let c = chars[i];
        match c {
            c if c.is_whitespace() => {
                if let Some(t) = cur.take() {
                    out.push(t);
                }
            }
            '#' => break,
            '\'' | '"' => {
                let start = i;
                let tok = cur.get_or_insert_with(|| Token {
                    text: String::new(),
                    col: start + 1,
                });
                i += 1;
                loop {
                    let Some(&d) = chars.get(i) else {
                        return Err((start + 1, "no closing quotation".into()));
                    };
                    if d == c {
                        break;
                    }
                    if c == '"' && d == '\\' && matches!(chars.get(i + 1), Some('\\' | '"' | '$' | '`')) {
                        i += 1;
                        tok.text.push(chars[i]);
                    } else {
                        tok.text.push(d);
                    }
                    i += 1;
                }
            }
            '\\' => {
                let start = i;
                let tok = cur.get_or_insert_with(|| Token {
                    text: String::new(),
                    col: start + 1,
                });
                i += 1;
                match chars.get(i) {
                    Some(&d) => tok.text.push(d),
                    None => return Err((start + 1, "no escaped character".into())),
                }
            }
            c => {
                let start = i;
                cur.get_or_insert_with(|| Token {
                    text: String::new(),
                    col: start + 1,
                })
                .text
                .push(c);
            }
        }
        i += 1;
    }
    if let Some(t) = cur.take() {
        out.push(t);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expansion_is_bounded_and_the_error_names_the_limit() {
        let e = expand_range("h[1:2000000]").unwrap_err();
        assert_eq!(e, HostError::RangeTooLarge("1:2000000".into()));
        assert!(e.to_string().contains("1,000,000"), "{e}");
        // Each range fits, their product does not.
        let e = expand_range("h[1:1000][1:1001]").unwrap_err();
        assert!(matches!(e, HostError::PatternTooLarge(_)), "{e:?}");
        assert!(e.to_string().contains("1,000,000"), "{e}");
        assert_eq!(expand_range("h[1:1000][1:1000]").unwrap().len(), 1_000_000);
    }

    #[test]
    fn ranges() {
        assert_eq!(
            expand_range("web[01:03].x").unwrap(),
            vec!["web01.x", "web02.x", "web03.x"]
        );
        assert_eq!(expand_range("db-[a:c]").unwrap(), vec!["db-a", "db-b", "db-c"]);
        assert_eq!(expand_range("h[1:10:4]").unwrap(), vec!["h1", "h5", "h9"]);
        assert_eq!(expand_range("h[:2]").unwrap(), vec!["h0", "h1", "h2"]);
        assert_eq!(
            expand_range("r[1:2]c[a:b]").unwrap(),
            vec!["r1ca", "r1cb", "r2ca", "r2cb"]
        );
        assert_eq!(expand_range("plain").unwrap(), vec!["plain"]);
        assert!(expand_range("h[1:]").unwrap_err().to_string().contains("end value"));
        assert!(expand_range("h[01:100]")
            .unwrap_err()
            .to_string()
            .contains("equal-length"));
        assert!(expand_range("h[1:x]").is_err());
        assert!(expand_range("h[1:5").unwrap_err().to_string().contains("unterminated"));
        assert!(expand_range("h[1:5:0]").unwrap_err().to_string().contains("step"));
        assert_eq!(
            expand_range("h[1:5:0]").unwrap_err(),
            HostError::Step {
                spec: "1:5:0".into(),
                step: "0".into()
            }
        );
        assert!(expand_range("h[c:a]").is_err());
        assert!(expand_range("h[1:99999999999]")
            .unwrap_err()
            .to_string()
            .contains("too many"));
    }

    #[test]
    fn ports() {
        assert_eq!(split_host_port("web:2222").unwrap(), ("web".into(), Some(2222)));
        assert_eq!(split_host_port("web").unwrap(), ("web".into(), None));
        assert_eq!(split_host_port("::1").unwrap(), ("::1".into(), None));
        assert_eq!(split_host_port("[::1]:22").unwrap(), ("::1".into(), Some(22)));
        assert_eq!(split_host_port("w[1:3]:22").unwrap(), ("w[1:3]".into(), Some(22)));
        assert_eq!(split_host_port("w[1:3]").unwrap(), ("w[1:3]".into(), None));
        assert!(split_host_port("web:").is_err());
        assert!(split_host_port("web:99999").is_err());
    }

    #[test]
    fn shlex_like() {
        let t = shell_tokens(r#"h1 a="x y" b='q"' c=d#comment e=f"#).unwrap();
        let texts: Vec<&str> = t.iter().map(|t| t.text.as_str()).collect();
        assert_eq!(texts, vec!["h1", "a=x y", "b=q\"", "c=d"]);
        assert_eq!(t[1].col, 4);
        assert_eq!(shell_tokens("h 'open").unwrap_err().0, 3);
    }
}
