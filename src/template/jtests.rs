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

/// A PEP 440 version (Python `packaging.version.Version`, what Ansible's
/// `version_type='pep440'` compares): `[N!]N(.N)*[{a|b|rc}N][.postN][.devN][+local]`,
/// with the normalisations PEP 440 allows (case, `v` prefix, `-`/`_`/`.`
/// separators, `alpha`/`beta`/`c`/`pre`/`preview`, `rev`/`r`, `-N` as a
/// post-release, a missing number as 0).
#[derive(Debug, PartialEq, Eq)]
struct Pep440 {
    epoch: u64,
    /// Without trailing zeros (1.0 == 1).
    release: Vec<u64>,
    /// (0 a, 1 b, 2 rc, n).
    pre: Option<(u8, u64)>,
    post: Option<u64>,
    dev: Option<u64>,
    local: Vec<LocalPart>,
}

/// What [`Pep440`] versions sort by: epoch, release, pre-release,
/// post-release, dev release, local version.
type Pep440Key<'a> = (
    u64,
    &'a [u64],
    (u8, u8, u64),
    (bool, u64),
    (bool, u64),
    (bool, &'a [LocalPart]),
);

/// A segment of a local version: numbers sort after words.
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
enum LocalPart {
    Word(String),
    Num(u64),
}

impl Pep440 {
    fn parse(s: &str) -> Option<Pep440> {
        let s = s.trim().to_ascii_lowercase();
        let (s, local) = match s.split_once('+') {
            Some((v, l)) => (v.to_string(), Some(l.to_string())),
            None => (s, None),
        };
        let mut rest = s.strip_prefix('v').unwrap_or(&s);
        let digits = |r: &str| r.bytes().take_while(u8::is_ascii_digit).count();
        let mut epoch = 0;
        let n = digits(rest);
        if n > 0 && rest[n..].starts_with('!') {
            epoch = rest[..n].parse().ok()?;
            rest = &rest[n + 1..];
        }
        let mut release = Vec::new();
        loop {
            let n = digits(rest);
            if n == 0 {
                return None;
            }
            release.push(rest[..n].parse().ok()?);
            rest = &rest[n..];
            match rest.strip_prefix('.') {
                Some(r) if digits(r) > 0 => rest = r,
                _ => break,
            }
        }
        // An optional separator, a word, another optional separator and
        // a number (0 when missing).
        fn tagged<'a>(rest: &'a str, words: &[(&str, u8)]) -> Option<(&'a str, u8, u64)> {
            let r = rest.strip_prefix(['.', '-', '_']).unwrap_or(rest);
            let (w, tag) = words.iter().find(|(w, _)| r.starts_with(w))?;
            let r = &r[w.len()..];
            let r2 = r.strip_prefix(['.', '-', '_']).unwrap_or(r);
            let n = r2.bytes().take_while(u8::is_ascii_digit).count();
            if n > 0 {
                Some((&r2[n..], *tag, r2[..n].parse().ok()?))
            } else {
                Some((r, *tag, 0))
            }
        }
        let mut pre = None;
        // Longest spellings first.
        let pre_words = [
            ("preview", 2),
            ("alpha", 0),
            ("beta", 1),
            ("pre", 2),
            ("rc", 2),
            ("a", 0),
            ("b", 1),
            ("c", 2),
        ];
        if let Some((r, tag, n)) = tagged(rest, &pre_words) {
            pre = Some((tag, n));
            rest = r;
        }
        let mut post = None;
        if let Some((r, _, n)) = tagged(rest, &[("post", 0), ("rev", 0), ("r", 0)]) {
            post = Some(n);
            rest = r;
        } else if let Some(r) = rest.strip_prefix('-') {
            let n = digits(r);
            if n > 0 {
                post = Some(r[..n].parse().ok()?);
                rest = &r[n..];
            }
        }
        let mut dev = None;
        if let Some((r, _, n)) = tagged(rest, &[("dev", 0)]) {
            dev = Some(n);
            rest = r;
        }
        if !rest.is_empty() {
            return None;
        }
        let local = match local {
            None => Vec::new(),
            Some(l) => {
                let parts: Vec<&str> = l.split(['.', '-', '_']).collect();
                if parts
                    .iter()
                    .any(|p| p.is_empty() || !p.bytes().all(|b| b.is_ascii_alphanumeric()))
                {
                    return None;
                }
                parts
                    .into_iter()
                    .map(|p| match p.parse() {
                        Ok(n) => LocalPart::Num(n),
                        Err(_) => LocalPart::Word(p.to_string()),
                    })
                    .collect()
            }
        };
        while release.len() > 1 && release.last() == Some(&0) {
            release.pop();
        }
        Some(Pep440 {
            epoch,
            release,
            pre,
            post,
            dev,
            local,
        })
    }

    /// packaging's `_cmpkey`: a dev release alone sorts before its
    /// pre-releases, a final release after them; no post-release before
    /// any; no dev release after any; no local version before any.
    fn key(&self) -> Pep440Key<'_> {
        let pre = match self.pre {
            None if self.post.is_none() && self.dev.is_some() => (0, 0, 0),
            None => (2, 0, 0),
            Some((tag, n)) => (1, tag, n),
        };
        let post = self.post.map_or((false, 0), |n| (true, n));
        let dev = self.dev.map_or((true, 0), |n| (false, n));
        (
            self.epoch,
            &self.release,
            pre,
            post,
            dev,
            (!self.local.is_empty(), &self.local),
        )
    }
}

impl Ord for Pep440 {
    fn cmp(&self, other: &Self) -> Ordering {
        self.key().cmp(&other.key())
    }
}

impl PartialOrd for Pep440 {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
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
        "loose" => cmp_parts(&loose_parts(&a), &loose_parts(&b)),
        "pep440" => {
            let parse = |s: &str| {
                Pep440::parse(s).ok_or_else(|| op_err(format!("Version comparison failed: Invalid version: '{s}'")))
            };
            parse(&a)?.cmp(&parse(&b)?)
        }
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

#[cfg(test)]
mod tests {
    use super::Pep440;

    fn v(s: &str) -> Pep440 {
        Pep440::parse(s).unwrap_or_else(|| panic!("{s} parses"))
    }

    /// PEP 440's ordering example, in order, with its spellings.
    #[test]
    fn pep440_orders_as_packaging() {
        let ordered = [
            "1.0.dev456",
            "1.0a1",
            "1.0a2.dev456",
            "1.0a12.dev456",
            "1.0a12",
            "1.0b1.dev456",
            "1.0b2",
            "1.0b2.post345.dev456",
            "1.0b2.post345",
            "1.0rc1.dev456",
            "1.0rc1",
            "1.0",
            "1.0+abc.5",
            "1.0+abc.7",
            "1.0+5",
            "1.0.post456.dev34",
            "1.0.post456",
            "1.1.dev1",
            "1!0.1",
        ];
        for w in ordered.windows(2) {
            assert!(v(w[0]) < v(w[1]), "{} < {}", w[0], w[1]);
        }
        assert!(v("2.14.0rc1") < v("2.14.0"));
        assert_eq!(v("1.0"), v("1"));
        assert_eq!(v("v1.0-ALPHA.1"), v("1.0a1"));
        assert_eq!(v("1.0-1"), v("1.0.post1"));
        assert_eq!(v("1.0c1"), v("1.0rc1"));
        assert_eq!(v("1.0.rev2"), v("1.0.post2"));
        for bad in ["", "1.0.x", "abc", "1.0+", "1.0+a..b", "1..0"] {
            assert!(Pep440::parse(bad).is_none(), "{bad} is invalid");
        }
    }
}
