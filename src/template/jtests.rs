//! Ansible's Jinja tests (`is match`, `is version`, `is failed`, ...).
//! minijinja provides defined, none, number, string, mapping, sequence,
//! iterable, boolean, integer, float, in, eq/ne/lt/... already.

use std::cmp::Ordering;

use minijinja::value::{Kwargs, ValueKind};
use minijinja::{Environment, Error, Value};

use super::value::{check_defined, op_err, text};

pub(crate) fn register(env: &mut Environment<'static>) {
    env.add_test("undefined", |v: &Value| v.is_undefined());
    env.add_test("match", |v: &Value, p: String, k: Kwargs| regex_test(v, &p, k, "match"));
    env.add_test("search", |v: &Value, p: String, k: Kwargs| {
        regex_test(v, &p, k, "search")
    });
    env.add_test("regex", |v: &Value, p: String, k: Kwargs| {
        let t = k
            .get::<Option<String>>("match_type")?
            .unwrap_or_else(|| "search".into());
        regex_test(v, &p, k, &t)
    });
    env.add_test("version", version_test);
    env.add_test("version_compare", version_test);
    env.add_test("file", |v: &Value| path_test(v, |p| p.is_file()));
    env.add_test("is_file", |v: &Value| path_test(v, |p| p.is_file()));
    env.add_test("directory", |v: &Value| path_test(v, |p| p.is_dir()));
    env.add_test("is_dir", |v: &Value| path_test(v, |p| p.is_dir()));
    env.add_test("link", |v: &Value| path_test(v, |p| p.is_symlink()));
    env.add_test("is_link", |v: &Value| path_test(v, |p| p.is_symlink()));
    env.add_test("abs", |v: &Value| path_test(v, |p| p.is_absolute()));
    env.add_test("is_abs", |v: &Value| path_test(v, |p| p.is_absolute()));
    env.add_test("failed", |v: &Value| Ok(result_flag(v, "failed")?.unwrap_or(false)));
    env.add_test("failure", |v: &Value| Ok(result_flag(v, "failed")?.unwrap_or(false)));
    env.add_test("succeeded", |v: &Value| Ok(!result_flag(v, "failed")?.unwrap_or(false)));
    env.add_test("success", |v: &Value| Ok(!result_flag(v, "failed")?.unwrap_or(false)));
    env.add_test(
        "successful",
        |v: &Value| Ok(!result_flag(v, "failed")?.unwrap_or(false)),
    );
    env.add_test("changed", changed);
    env.add_test("change", changed);
    env.add_test("skipped", |v: &Value| Ok(result_flag(v, "skipped")?.unwrap_or(false)));
    env.add_test("skip", |v: &Value| Ok(result_flag(v, "skipped")?.unwrap_or(false)));
    env.add_test("finished", |v: &Value| Ok(result_flag(v, "finished")?.unwrap_or(true)));
    env.add_test("started", |v: &Value| Ok(result_flag(v, "started")?.unwrap_or(true)));
    env.add_test("timedout", timedout);
    env.add_test("unreachable", |v: &Value| {
        Ok(result_flag(v, "unreachable")?.unwrap_or(false))
    });
    env.add_test("reachable", |v: &Value| {
        Ok(!result_flag(v, "unreachable")?.unwrap_or(false))
    });
    // Python's `item in seq`: a substring test on strings.
    env.add_test("contains", |seq: &Value, item: Value| -> Result<bool, Error> {
        check_defined(seq)?;
        if let (Some(s), Some(sub)) = (seq.as_str(), item.as_str()) {
            return Ok(s.contains(sub));
        }
        Ok(seq.try_iter()?.any(|x| x == item))
    });
    env.add_test("subset", |a: &Value, b: &Value| -> Result<bool, Error> {
        let bl: Vec<Value> = b.try_iter()?.collect();
        Ok(a.try_iter()?.all(|x| bl.contains(&x)))
    });
    env.add_test("superset", |a: &Value, b: &Value| -> Result<bool, Error> {
        let al: Vec<Value> = a.try_iter()?.collect();
        Ok(b.try_iter()?.all(|x| al.contains(&x)))
    });
    env.add_test("truthy", |v: &Value, k: Kwargs| truthy(v, k));
    env.add_test("falsy", |v: &Value, k: Kwargs| truthy(v, k).map(|b| !b));
    env.add_test("any", |v: &Value| -> Result<bool, Error> {
        Ok(v.try_iter()?.any(|x| x.is_true()))
    });
    env.add_test("all", |v: &Value| -> Result<bool, Error> {
        Ok(v.try_iter()?.all(|x| x.is_true()))
    });
    env.add_test("nan", |v: &Value| f64::try_from(v.clone()).is_ok_and(f64::is_nan));
    // The old name Ansible keeps.
    env.add_test("isnan", |v: &Value| f64::try_from(v.clone()).is_ok_and(f64::is_nan));
    env.add_test("ip_address", |v: &Value| -> Result<bool, Error> {
        Ok(v.as_str().is_some_and(|s| s.parse::<std::net::IpAddr>().is_ok()))
    });
    // ansible.module_utils.common.network's validators, which playbooks reach
    // through one-line local test plugins (ansible-core's own targets do).
    env.add_test("is_mac", |v: &Value| -> Result<bool, Error> {
        let s = v
            .as_str()
            .ok_or_else(|| op_err(format!("is_mac: expected a string, got {}", v.kind())))?;
        Ok(is_mac(s))
    });
    env.add_test("is_netmask", |v: &Value| is_netmask(&v.to_string()));
    env.add_test("is_masklen", |v: &Value| {
        v.to_string().trim().parse::<i64>().is_ok_and(|n| (0..=32).contains(&n))
    });
}

/// `ansible.module_utils.common.network.is_mac`: six pairs of hex digits,
/// any case, separated all by `:` or all by `-` (Python's `$` also allows
/// one trailing newline).
fn is_mac(s: &str) -> bool {
    let s = s.strip_suffix('\n').unwrap_or(s).to_ascii_lowercase();
    let b = s.as_bytes();
    if b.len() != 17 {
        return false;
    }
    let sep = b[2];
    (sep == b':' || sep == b'-')
        && b.iter()
            .enumerate()
            .all(|(i, c)| if i % 3 == 2 { *c == sep } else { c.is_ascii_hexdigit() })
}

/// `ansible.module_utils.common.network.is_netmask`: four dotted octets,
/// each a valid mask octet (255, 254, 252, ..., 0).
fn is_netmask(s: &str) -> bool {
    let parts: Vec<&str> = s.split('.').collect();
    parts.len() == 4
        && parts.iter().all(|p| {
            p.trim()
                .parse::<i64>()
                .is_ok_and(|n| (0..=8).any(|i| n == 256 - (1 << i)))
        })
}

fn regex_test(v: &Value, pattern: &str, kwargs: Kwargs, how: &str) -> Result<bool, Error> {
    let s = text(v)?;
    let ignorecase = kwargs.get::<Option<bool>>("ignorecase")?.unwrap_or(false);
    let multiline = kwargs.get::<Option<bool>>("multiline")?.unwrap_or(false);
    kwargs.assert_all_used()?;
    // Python's re.match anchors at the start only; fullmatch at both ends.
    // (`\A`/`\Z` stay anchored at the text's ends under `multiline`.)
    let pat = match how {
        "match" => format!("\\A(?:{pattern})"),
        "fullmatch" => format!("\\A(?:{pattern})\\Z"),
        "search" => pattern.to_string(),
        other => return Err(op_err(format!("regex: unknown match_type {other:?}"))),
    };
    let re = crate::pyregex::compile(&pat, ignorecase, multiline)
        .map_err(|e| op_err(format!("invalid regular expression {pattern:?}: {e}")))?;
    re.is_match(&s)
        .map_err(|e| op_err(format!("regular expression matching failed: {e}")))
}

fn path_test(v: &Value, f: impl Fn(&std::path::Path) -> bool) -> Result<bool, Error> {
    let s = text(v)?;
    let expanded = match s.strip_prefix("~/") {
        Some(rest) => format!("{}/{}", std::env::var("HOME").unwrap_or_default(), rest),
        None => s,
    };
    Ok(f(std::path::Path::new(&expanded)))
}

/// A flag of a registered result; errors when the value is not a result.
fn result_flag(v: &Value, key: &str) -> Result<Option<bool>, Error> {
    check_defined(v)?;
    if v.kind() != ValueKind::Map {
        return Err(op_err(format!(
            "the '{key}' test expects a registered task result (a dictionary), got {}",
            v.kind()
        )));
    }
    let x = v.get_attr(key)?;
    if x.is_undefined() || x.is_none() {
        return Ok(None);
    }
    Ok(Some(match x.as_str() {
        Some(s) => super::value::parse_bool(s).unwrap_or(!s.is_empty()),
        None => x.is_true(),
    }))
}

/// Ansible's `timedout` test: the result's `timedout` is set and has a
/// `period` (what the `timeout:` keyword leaves on a task it stopped).
fn timedout(v: &Value) -> Result<bool, Error> {
    check_defined(v)?;
    if v.kind() != ValueKind::Map {
        return Err(op_err("The 'timedout' test expects a dictionary".to_string()));
    }
    let t = v.get_attr("timedout")?;
    if t.is_undefined() || !t.is_true() {
        return Ok(false);
    }
    Ok(t.kind() == ValueKind::Map && t.get_attr("period")?.is_true())
}

fn changed(v: &Value) -> Result<bool, Error> {
    if let Some(c) = result_flag(v, "changed")? {
        return Ok(c);
    }
    // A loop's result: changed when any item changed.
    let results = v.get_attr("results")?;
    if results.kind() == ValueKind::Seq {
        for r in results.try_iter()? {
            if r.kind() == ValueKind::Map && result_flag(&r, "changed")?.unwrap_or(false) {
                return Ok(true);
            }
        }
    }
    Ok(false)
}

fn truthy(v: &Value, kwargs: Kwargs) -> Result<bool, Error> {
    check_defined(v)?;
    let convert_bool = kwargs.get::<Option<bool>>("convert_bool")?.unwrap_or(false);
    kwargs.assert_all_used()?;
    if convert_bool {
        if let Some(s) = v.as_str() {
            if let Some(b) = super::value::parse_bool(s) {
                return Ok(b);
            }
        }
    }
    Ok(v.is_true())
}

// ---------------------------------------------------------------- versions

#[derive(Debug, Clone, PartialEq)]
enum Part {
    Num(u64),
    Str(String),
}

/// distutils' LooseVersion: runs of digits and of letters; dots dropped.
fn loose_parts(s: &str) -> Vec<Part> {
    let mut parts = Vec::new();
    let mut cur = String::new();
    let mut cur_digit = false;
    let flush = |cur: &mut String, digit: bool, parts: &mut Vec<Part>| {
        if !cur.is_empty() {
            parts.push(if digit {
                Part::Num(cur.parse().unwrap_or(u64::MAX))
            } else {
                Part::Str(std::mem::take(cur))
            });
            cur.clear();
        }
    };
    for c in s.chars() {
        if c == '.' {
            flush(&mut cur, cur_digit, &mut parts);
            continue;
        }
        let d = c.is_ascii_digit();
        if !cur.is_empty() && d != cur_digit {
            flush(&mut cur, cur_digit, &mut parts);
        }
        cur_digit = d;
        cur.push(c);
    }
    flush(&mut cur, cur_digit, &mut parts);
    parts
}

fn cmp_parts(a: &[Part], b: &[Part]) -> Ordering {
    for (x, y) in a.iter().zip(b) {
        let o = match (x, y) {
            (Part::Num(m), Part::Num(n)) => m.cmp(n),
            (Part::Str(m), Part::Str(n)) => m.cmp(n),
            // Python 3 cannot compare int with str; a number sorts after a
            // pre-release tag here ("1.0" > "1.0rc1" needs no such pair).
            (Part::Num(_), Part::Str(_)) => Ordering::Greater,
            (Part::Str(_), Part::Num(_)) => Ordering::Less,
        };
        if o != Ordering::Equal {
            return o;
        }
    }
    a.len().cmp(&b.len())
}

/// distutils' StrictVersion: `N.N[.N][(a|b)N]`.
/// (major, minor, patch, pre-release tag and number)
type StrictKey = (u64, u64, u64, Option<(char, u64)>);

fn strict_key(s: &str) -> Option<StrictKey> {
    let re = regex::Regex::new(r"^(\d+)\.(\d+)(?:\.(\d+))?(?:([ab])(\d+))?$").ok()?;
    let c = re.captures(s.trim())?;
    let n = |i: usize| c.get(i).and_then(|m| m.as_str().parse::<u64>().ok());
    let pre = match (c.get(4), n(5)) {
        (Some(t), Some(v)) => Some((t.as_str().chars().next().unwrap_or('a'), v)),
        _ => None,
    };
    Some((n(1)?, n(2)?, n(3).unwrap_or(0), pre))
}

fn cmp_strict(a: &str, b: &str) -> Result<Ordering, Error> {
    let ka = strict_key(a).ok_or_else(|| op_err(format!("invalid version number '{a}'")))?;
    let kb = strict_key(b).ok_or_else(|| op_err(format!("invalid version number '{b}'")))?;
    let base = (ka.0, ka.1, ka.2).cmp(&(kb.0, kb.1, kb.2));
    if base != Ordering::Equal {
        return Ok(base);
    }
    // A release sorts after its pre-releases.
    Ok(match (ka.3, kb.3) {
        (None, None) => Ordering::Equal,
        (None, Some(_)) => Ordering::Greater,
        (Some(_), None) => Ordering::Less,
        (Some(x), Some(y)) => x.cmp(&y),
    })
}

fn cmp_semver(a: &str, b: &str) -> Result<Ordering, Error> {
    let split = |s: &str| -> Result<(Vec<u64>, Option<String>), Error> {
        let s = s.trim().trim_start_matches('v');
        let s = s.split('+').next().unwrap_or("");
        let (core, pre) = match s.split_once('-') {
            Some((c, p)) => (c, Some(p.to_string())),
            None => (s, None),
        };
        let nums = core
            .split('.')
            .map(|x| x.parse::<u64>())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|_| op_err(format!("invalid semantic version '{s}'")))?;
        if nums.len() != 3 {
            return Err(op_err(format!("invalid semantic version '{s}'")));
        }
        Ok((nums, pre))
    };
    let (na, pa) = split(a)?;
    let (nb, pb) = split(b)?;
    Ok(na.cmp(&nb).then_with(|| match (pa, pb) {
        (None, None) => Ordering::Equal,
        (None, Some(_)) => Ordering::Greater,
        (Some(_), None) => Ordering::Less,
        (Some(x), Some(y)) => cmp_parts(&loose_parts(&x), &loose_parts(&y)),
    }))
}

/// Ansible's `version_compare(value, version, operator='eq', strict=None,
/// version_type=None)`: each parameter positional or by name.
pub(crate) fn version_test(
    v: &Value,
    other: &Value,
    op: Option<String>,
    strict: Option<bool>,
    kwargs: Kwargs,
) -> Result<bool, Error> {
    let a = text(v)?;
    let b = text(other)?;
    let op = match op {
        Some(o) => o,
        None => kwargs.get::<Option<String>>("operator")?.unwrap_or_else(|| "eq".into()),
    };
    let strict = match strict {
        Some(s) => Some(s),
        None => kwargs.get::<Option<bool>>("strict")?,
    };
    let vtype = kwargs.get::<Option<String>>("version_type")?;
    kwargs.assert_all_used()?;
    if strict.is_some() && vtype.is_some() {
        return Err(op_err("Cannot specify both 'strict' and 'version_type'"));
    }
    if a.is_empty() {
        return Err(op_err("Input version value cannot be empty"));
    }
    if b.is_empty() {
        return Err(op_err("Version parameter to compare against cannot be empty"));
    }
    let strict = strict.unwrap_or(false);
    let vtype = vtype.unwrap_or_else(|| if strict { "strict".into() } else { "loose".into() });
    let ord = match vtype.as_str() {
        "loose" | "pep440" => cmp_parts(&loose_parts(&a), &loose_parts(&b)),
        "strict" => cmp_strict(&a, &b)?,
        "semver" | "semantic" => cmp_semver(&a, &b)?,
        other => {
            return Err(op_err(format!(
                "version: unknown version_type {other:?} (loose, strict, semver, semantic, pep440)"
            )))
        }
    };
    Ok(match op.as_str() {
        "==" | "=" | "eq" => ord == Ordering::Equal,
        "!=" | "<>" | "ne" => ord != Ordering::Equal,
        "<" | "lt" => ord == Ordering::Less,
        "<=" | "le" => ord != Ordering::Greater,
        ">" | "gt" => ord == Ordering::Greater,
        ">=" | "ge" => ord != Ordering::Less,
        other => {
            return Err(op_err(format!(
                "version: invalid operator {other:?} (==, !=, <, <=, >, >=, eq, ne, lt, le, gt, ge)"
            )))
        }
    })
}
