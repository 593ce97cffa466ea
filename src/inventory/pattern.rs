//! Ansible host patterns: `all`, `*`, names, groups, `a:b` / `a,b` (union),
//! `a:&b` (intersection), `a:!b` (exclusion), `~regex`, shell wildcards
//! (`web*.example.com`, `db[ab]`), and subscripts on a term (`web[0]`,
//! `web[-1]`, `web[0:2]`, `web[1:]`, inclusive).

use std::collections::HashSet;
use std::sync::OnceLock;

use indexmap::IndexSet;
use regex::Regex;

use super::model::{Inventory, LOCALHOST_NAMES};
use crate::error::LocError;
use crate::yaml::Loc;

/// The result of evaluating a pattern.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Selection {
    /// Matching hosts, in Ansible's order, without duplicates.
    pub hosts: Vec<String>,
    /// Terms that matched no host or group (Ansible warns "Could not match
    /// supplied host pattern, ignoring: X" and goes on).
    pub unmatched: Vec<String>,
}

fn error(term: &str, msg: impl std::fmt::Display) -> LocError {
    LocError::new(
        Loc::synthetic("host pattern"),
        format!("invalid host pattern `{term}`: {msg}"),
    )
}

/// Split a pattern string into terms: on commas if there are any, else on
/// colons outside `[...]` (a bare IPv6 address stays whole).
pub fn split_patterns(pattern: &str) -> Vec<String> {
    let pattern = pattern.trim();
    if pattern.contains(',') {
        return pattern
            .split(',')
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(String::from)
            .collect();
    }
    if pattern.parse::<std::net::Ipv6Addr>().is_ok() {
        return vec![pattern.to_string()];
    }
    static TERM: OnceLock<Regex> = OnceLock::new();
    let re = TERM.get_or_init(|| Regex::new(r"(?:[^\s:\[\]]|\[[^\]]*\])+").unwrap_or_else(|e| panic!("{e}")));
    re.find_iter(pattern).map(|m| m.as_str().to_string()).collect()
}

/// Evaluate patterns (each may hold several terms) against the inventory.
pub fn evaluate(inv: &Inventory, patterns: &[String]) -> Result<Selection, LocError> {
    for p in patterns {
        if p.matches('[').count() != p.matches(']').count() {
            return Err(error(p, "unbalanced `[` and `]`"));
        }
    }
    let terms: Vec<String> = patterns.iter().flat_map(|p| split_patterns(p)).collect();
    // Ansible's order: plain terms, then intersections, then exclusions.
    let mut ordered: Vec<&str> = terms
        .iter()
        .filter(|t| !t.starts_with(['&', '!']))
        .map(String::as_str)
        .collect();
    if ordered.is_empty() {
        ordered.push("all");
    }
    ordered.extend(terms.iter().filter(|t| t.starts_with('&')).map(String::as_str));
    ordered.extend(terms.iter().filter(|t| t.starts_with('!')).map(String::as_str));

    let mut sel = Selection::default();
    let mut hosts: IndexSet<String> = IndexSet::new();
    for term in ordered {
        if inv.hosts.contains_key(term) {
            hosts.insert(term.to_string());
            continue;
        }
        let (matched, found_any) = match_term(inv, term)?;
        if !found_any {
            sel.unmatched.push(term.to_string());
        }
        if term.starts_with('!') {
            let drop: HashSet<&String> = matched.iter().collect();
            hosts.retain(|h| !drop.contains(h));
        } else if term.starts_with('&') {
            let keep: HashSet<&String> = matched.iter().collect();
            hosts.retain(|h| keep.contains(h));
        } else {
            hosts.extend(matched);
        }
    }
    sel.hosts = hosts.into_iter().collect();
    Ok(sel)
}

enum Subscript {
    Index(i64),
    Range(usize, Option<usize>),
}

/// Hosts for one term, and whether the term matched any group or host.
fn match_term(inv: &Inventory, term: &str) -> Result<(Vec<String>, bool), LocError> {
    let expr = term.trim_start_matches(['&', '!']);
    if expr.is_empty() {
        return Err(error(term, "empty term"));
    }
    let (expr, subscript) = if expr.starts_with('~') {
        (expr, None)
    } else {
        split_subscript(expr).map_err(|m| error(term, m))?
    };
    let (hosts, found) = enumerate(inv, expr).map_err(|m| error(term, m))?;
    let hosts = match subscript {
        None => hosts,
        Some(Subscript::Index(i)) => {
            let n = hosts.len() as i64;
            let idx = if i < 0 { n + i } else { i };
            if idx < 0 || idx >= n {
                return Err(error(
                    term,
                    format!("subscript [{i}] is out of range: `{expr}` matches {n} host(s)"),
                ));
            }
            vec![hosts[idx as usize].clone()]
        }
        // Ansible: `[x:0]` is the single host x; `[x:]` runs to the end.
        Some(Subscript::Range(start, Some(0))) => match hosts.get(start) {
            Some(h) => vec![h.clone()],
            None => {
                return Err(error(
                    term,
                    format!(
                        "subscript [{start}] is out of range: `{expr}` matches {} host(s)",
                        hosts.len()
                    ),
                ))
            }
        },
        Some(Subscript::Range(start, end)) => {
            let end = end.map(|e| (e + 1).min(hosts.len())).unwrap_or(hosts.len());
            if start >= end {
                vec![]
            } else {
                hosts[start..end].to_vec()
            }
        }
    };
    Ok((hosts, found))
}

/// Why one term of a host pattern cannot be read (the caller names the term).
#[derive(Debug, thiserror::Error)]
enum TermError {
    #[error("unbalanced `[` and `]`")]
    Unbalanced,
    #[error("subscript `[{0}]` needs a pattern before it; {SUBSCRIPT_HINT}")]
    NoBase(String),
    #[error("bad subscript `[{0}]`; {SUBSCRIPT_HINT}")]
    BadSubscript(String),
    #[error("`[x-y]` subscripts were removed from Ansible; use inclusive `[x:y]` instead")]
    DashRange,
    #[error("bad regular expression: {0}")]
    Regex(regex::Error),
    #[error("bad wildcard: {0}")]
    Wildcard(regex::Error),
}

const SUBSCRIPT_HINT: &str = "subscripts look like [0], [-1], [0:2] or [1:]";

fn split_subscript(expr: &str) -> Result<(&str, Option<Subscript>), TermError> {
    let opens = expr.matches('[').count();
    let closes = expr.matches(']').count();
    if opens != closes {
        return Err(TermError::Unbalanced);
    }
    if !expr.ends_with(']') {
        return Ok((expr, None));
    }
    let Some(open) = expr.rfind('[') else {
        return Ok((expr, None));
    };
    let (base, inner) = (&expr[..open], &expr[open + 1..expr.len() - 1]);
    // Only brackets made of digits, `:` and `-` are subscripts; others are
    // wildcard character classes like `db[ab]`.
    if !inner.chars().all(|c| c.is_ascii_digit() || c == ':' || c == '-') {
        return Ok((expr, None));
    }
    if base.is_empty() {
        return Err(TermError::NoBase(inner.to_string()));
    }
    if let Ok(i) = inner.parse::<i64>() {
        return Ok((base, Some(Subscript::Index(i))));
    }
    if let Some((s, e)) = inner.split_once(':') {
        let start = s
            .parse::<usize>()
            .map_err(|_| TermError::BadSubscript(inner.to_string()))?;
        let end = if e.is_empty() {
            None
        } else {
            Some(
                e.parse::<usize>()
                    .map_err(|_| TermError::BadSubscript(inner.to_string()))?,
            )
        };
        return Ok((base, Some(Subscript::Range(start, end))));
    }
    if inner.contains('-') && !inner.starts_with('-') {
        return Err(TermError::DashRange);
    }
    Err(TermError::BadSubscript(inner.to_string()))
}

enum Matcher {
    Literal(String),
    Regex(Regex),
}

impl Matcher {
    fn is_match(&self, s: &str) -> bool {
        match self {
            Matcher::Literal(l) => l == s,
            Matcher::Regex(r) => r.is_match(s),
        }
    }
}

fn enumerate(inv: &Inventory, expr: &str) -> Result<(Vec<String>, bool), TermError> {
    let is_regex = expr.starts_with('~');
    let special = is_regex || expr.contains(['.', '?', '*', '[']);
    let matcher = if let Some(re) = expr.strip_prefix('~') {
        // Python's re.match: anchored at the start only.
        Matcher::Regex(Regex::new(&format!("^(?:{re})")).map_err(TermError::Regex)?)
    } else if expr.contains(['?', '*', '[']) {
        Matcher::Regex(Regex::new(&glob_to_regex(expr)).map_err(TermError::Wildcard)?)
    } else {
        Matcher::Literal(expr.to_string())
    };
    let mut out: IndexSet<String> = IndexSet::new();
    let groups: Vec<&String> = match &matcher {
        Matcher::Literal(l) => inv.groups.get_key_value(l).map(|(k, _)| k).into_iter().collect(),
        Matcher::Regex(_) => inv.groups.keys().filter(|g| matcher.is_match(g)).collect(),
    };
    for g in &groups {
        out.extend(inv.group_hosts(g));
    }
    if groups.is_empty() || special {
        match &matcher {
            Matcher::Literal(l) => {
                if inv.hosts.contains_key(l) {
                    out.insert(l.clone());
                }
            }
            Matcher::Regex(_) => out.extend(inv.hosts.keys().filter(|h| matcher.is_match(h)).cloned()),
        }
    }
    if out.is_empty() && LOCALHOST_NAMES.contains(&expr) {
        // Ansible's implicit localhost.
        return Ok((vec![expr.to_string()], true));
    }
    let found = !out.is_empty() || !groups.is_empty() || expr == "all";
    Ok((out.into_iter().collect(), found))
}

/// Python's `fnmatch.translate`: `*`, `?`, `[seq]`, `[!seq]`, full match.
fn glob_to_regex(glob: &str) -> String {
    let chars: Vec<char> = glob.chars().collect();
    let mut out = String::from("^(?:");
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        i += 1;
        match c {
            '*' => out.push_str(".*"),
            '?' => out.push('.'),
            '[' => {
                let mut j = i;
                if j < chars.len() && chars[j] == '!' {
                    j += 1;
                }
                if j < chars.len() && chars[j] == ']' {
                    j += 1;
                }
                while j < chars.len() && chars[j] != ']' {
                    j += 1;
                }
                if j >= chars.len() {
                    out.push_str("\\[");
                    continue;
                }
                let mut class = String::from("[");
                let mut k = i;
                if chars[k] == '!' {
                    class.push('^');
                    k += 1;
                } else if chars[k] == '^' {
                    class.push_str("\\^");
                    k += 1;
                }
                for &ch in &chars[k..j] {
                    if matches!(ch, '\\' | '[' | ']' | '&' | '~') {
                        class.push('\\');
                    }
                    class.push(ch);
                }
                class.push(']');
                out.push_str(&class);
                i = j + 1;
            }
            c => out.push_str(&regex::escape(&c.to_string())),
        }
    }
    out.push_str(")$");
    out
}
