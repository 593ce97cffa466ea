//! Ansible's filters on top of minijinja's builtins. minijinja already
//! provides most of Jinja2's own filters (default, join, map, select,
//! selectattr, sort, unique, first, last, min, max, sum, indent, zip, ...);
//! this adds Ansible's and replaces the ones whose semantics differ
//! (`bool`, `int`, `float` fall back to 0 like Jinja2).

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};

use base64::Engine as _;
use minijinja::value::{Kwargs, Rest, ValueKind, ValueOrKwargs};
use minijinja::{Environment, Error, ErrorKind, State, Value};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use serde_json::Value as Json;

use super::value::{check_defined, from_json_value, note_undefined, op_err, python_type_name, text, to_json};

pub(crate) fn register(env: &mut Environment<'static>) {
    env.add_filter("bool", bool_filter);
    env.add_filter("unique", unique);
    env.add_filter("map", map_filter);
    env.add_filter("int", int_filter);
    env.add_filter("float", float_filter);
    env.add_filter("regex_replace", regex_replace);
    env.add_filter("regex_search", regex_search);
    env.add_filter("regex_findall", regex_findall);
    env.add_filter("regex_escape", regex_escape);
    env.add_filter("combine", combine);
    env.add_filter("dict2items", dict2items);
    env.add_filter("items2dict", items2dict);
    env.add_filter("union", union);
    env.add_filter("intersect", intersect);
    env.add_filter("difference", difference);
    env.add_filter("symmetric_difference", symmetric_difference);
    env.add_filter("flatten", flatten);
    env.add_filter("to_json", to_json_filter);
    env.add_filter("to_nice_json", to_nice_json);
    env.add_filter("from_json", from_json);
    env.add_filter("to_yaml", to_yaml);
    env.add_filter("to_nice_yaml", to_nice_yaml);
    env.add_filter("from_yaml", from_yaml);
    env.add_filter("from_yaml_all", from_yaml_all);
    env.add_filter("b64encode", b64encode);
    env.add_filter("b64decode", b64decode);
    env.add_filter("hash", hash);
    env.add_filter("checksum", |v: &Value| hash(v, Some("sha1".into())));
    env.add_filter("md5", |v: &Value| hash(v, Some("md5".into())));
    env.add_filter("sha1", |v: &Value| hash(v, Some("sha1".into())));
    env.add_filter("password_hash", password_hash);
    env.add_filter("basename", basename);
    env.add_filter("dirname", dirname);
    env.add_filter("expanduser", expanduser);
    env.add_filter("realpath", realpath);
    env.add_filter("splitext", splitext);
    env.add_filter("path_join", path_join);
    env.add_filter("quote", quote);
    env.add_filter("mandatory", mandatory);
    env.add_filter("ternary", ternary);
    env.add_filter("zip_longest", zip_longest);
    env.add_filter("ipaddr", |v: &Value, q: Option<Value>| {
        super::netaddr::filter(v, q, None)
    });
    env.add_filter("ipv4", |v: &Value, q: Option<Value>| {
        super::netaddr::filter(v, q, Some(4))
    });
    env.add_filter("ipv6", |v: &Value, q: Option<Value>| {
        super::netaddr::filter(v, q, Some(6))
    });
    env.add_filter("random", random);
    env.add_filter("shuffle", shuffle);
    env.add_filter("comment", comment);
    env.add_filter("version_compare", version_compare);
    env.add_filter("type_debug", type_debug);
    env.add_filter("extract", extract);
    env.add_filter("subelements", subelements);
    env.add_filter("product", product);
    env.add_filter("human_readable", human_readable);
    env.add_filter("human_to_bytes", human_to_bytes);
    env.add_filter("rekey_on_member", rekey_on_member);
    env.add_function("dict", dict_fn);
}

/// Python's `dict()`: from a mapping, from a list of pairs, and/or keywords.
fn dict_fn(arg: Option<Value>, kwargs: Kwargs) -> Result<Value, Error> {
    let mut m = serde_json::Map::new();
    if let Some(a) = arg {
        match to_json(&a)? {
            Json::Object(o) => m.extend(o),
            Json::Array(pairs) => {
                for p in pairs {
                    match p.as_array().map(Vec::as_slice) {
                        Some([k, v]) => {
                            let k = match k {
                                Json::String(s) => s.clone(),
                                other => other.to_string(),
                            };
                            m.insert(k, v.clone());
                        }
                        _ => return Err(op_err(format!("dict(): expected a list of pairs, got the item {p}"))),
                    }
                }
            }
            other => return Err(op_err(format!("dict(): cannot make a dictionary from {other}"))),
        }
    }
    for k in kwargs.args() {
        let v: Value = kwargs.get(k)?;
        m.insert(k.to_string(), to_json(&v)?);
    }
    Ok(from_json_value(&Json::Object(m)))
}

fn items(v: &Value) -> Result<Vec<Value>, Error> {
    check_defined(v)?;
    if v.kind() == ValueKind::String {
        return Err(op_err(format!(
            "expected a list, got the string {:?}",
            v.as_str().unwrap_or("")
        )));
    }
    Ok(v.try_iter()?.collect())
}

/// Ansible's `unique`: Jinja's (case-insensitive unless `case_sensitive`,
/// optionally on an `attribute`), falling back, when an item cannot be
/// hashed (a dict, a list), to Ansible's own equality-based version, which
/// takes neither option. A value that is not iterable is a Python
/// TypeError, as in Ansible.
fn unique(v: &Value, kwargs: Kwargs) -> Result<Value, Error> {
    check_defined(v)?;
    let case_sensitive = kwargs.get::<Option<Value>>("case_sensitive")?;
    let attribute = kwargs.get::<Option<Value>>("attribute")?.filter(|a| !a.is_none());
    kwargs.assert_all_used()?;
    let explicit_insensitive = case_sensitive.as_ref().is_some_and(|c| !c.is_none() && !c.is_true());
    let insensitive = !case_sensitive.as_ref().is_some_and(Value::is_true);
    if !matches!(
        v.kind(),
        ValueKind::Seq | ValueKind::Map | ValueKind::String | ValueKind::Iterable
    ) {
        return Err(op_err(format!("'{}' object is not iterable", python_type_name(v))));
    }
    let list: Vec<Value> = v.try_iter()?.collect();
    let key_of = |item: &Value| -> Result<Value, Error> {
        let mut key = item.clone();
        if let Some(attr) = &attribute {
            for part in attr.to_string().split('.') {
                key = match part.parse::<i64>() {
                    Ok(i) if key.kind() == ValueKind::Seq => key.get_item(&Value::from(i))?,
                    _ => key.get_attr(part)?,
                };
            }
        }
        Ok(match key.as_str() {
            Some(s) if insensitive => Value::from(s.to_lowercase()),
            _ => key,
        })
    };
    let keys: Vec<Value> = list.iter().map(key_of).collect::<Result<_, _>>()?;
    if keys.iter().any(|k| matches!(k.kind(), ValueKind::Map | ValueKind::Seq)) {
        if explicit_insensitive || attribute.is_some() {
            return Err(op_err(
                "Jinja2's unique filter failed and we cannot fall back to Ansible's version as it does not \
                 support the parameters supplied.",
            ));
        }
        let mut out: Vec<Value> = Vec::new();
        for x in list {
            if !out.contains(&x) {
                out.push(x);
            }
        }
        return Ok(Value::from(out));
    }
    let mut seen: Vec<Value> = Vec::new();
    let mut out = Vec::new();
    for (x, k) in list.into_iter().zip(keys) {
        if !seen.contains(&k) {
            seen.push(k);
            out.push(x);
        }
    }
    Ok(Value::from(out))
}

fn bool_filter(v: &Value) -> Result<bool, Error> {
    check_defined(v)?;
    Ok(match v.kind() {
        ValueKind::Bool => v.is_true(),
        ValueKind::None => false,
        ValueKind::Number => v.as_i64() == Some(1) || f64::try_from(v.clone()).is_ok_and(|f| f == 1.0),
        ValueKind::String => matches!(
            v.as_str().unwrap_or("").trim().to_ascii_lowercase().as_str(),
            "yes" | "on" | "1" | "true" | "y" | "t"
        ),
        _ => v.is_true(),
    })
}

fn int_filter(v: &Value, default: Option<Value>, base: Option<u32>, kwargs: Kwargs) -> Result<Value, Error> {
    check_defined(v)?;
    let default = match default {
        Some(d) => d,
        None => kwargs.get::<Option<Value>>("default")?.unwrap_or(Value::from(0)),
    };
    let base = match base {
        Some(b) => b,
        None => kwargs.get::<Option<u32>>("base")?.unwrap_or(10),
    };
    kwargs.assert_all_used()?;
    Ok(match v.kind() {
        ValueKind::Bool => Value::from(v.is_true() as i64),
        ValueKind::Number => match v.as_i64() {
            Some(i) => Value::from(i),
            None => f64::try_from(v.clone())
                .map(|f| Value::from(f.trunc() as i64))
                .unwrap_or(default),
        },
        ValueKind::String => {
            let s = v.as_str().unwrap_or("").trim();
            let digits = match base {
                16 => s.trim_start_matches("0x").trim_start_matches("0X"),
                8 => s.trim_start_matches("0o").trim_start_matches("0O"),
                2 => s.trim_start_matches("0b").trim_start_matches("0B"),
                _ => s,
            };
            match i64::from_str_radix(digits, base) {
                Ok(i) => Value::from(i),
                Err(_) if base == 10 => s
                    .parse::<f64>()
                    .map(|f| Value::from(f.trunc() as i64))
                    .unwrap_or(default),
                Err(_) => default,
            }
        }
        _ => default,
    })
}

fn float_filter(v: &Value, default: Option<Value>, kwargs: Kwargs) -> Result<Value, Error> {
    check_defined(v)?;
    let default = match default {
        Some(d) => d,
        None => kwargs.get::<Option<Value>>("default")?.unwrap_or(Value::from(0.0)),
    };
    kwargs.assert_all_used()?;
    Ok(match v.kind() {
        ValueKind::Bool => Value::from(v.is_true() as i64 as f64),
        ValueKind::Number => f64::try_from(v.clone()).map(Value::from).unwrap_or(default),
        ValueKind::String => v
            .as_str()
            .unwrap_or("")
            .trim()
            .parse::<f64>()
            .map(Value::from)
            .unwrap_or(default),
        _ => default,
    })
}

// ---------------------------------------------------------------- regex

/// Compile a Python `re` pattern with Ansible's `ignorecase`/`multiline`
/// (see [`crate::pyregex::compile`]).
fn compile_regex(pattern: &str, kwargs: &Kwargs) -> Result<fancy_regex::Regex, Error> {
    let ignorecase = kwargs.get::<Option<bool>>("ignorecase")?.unwrap_or(false);
    let multiline = kwargs.get::<Option<bool>>("multiline")?.unwrap_or(false);
    crate::pyregex::compile(pattern, ignorecase, multiline)
        .map_err(|e| op_err(format!("invalid regular expression {pattern:?}: {e}")))
}

/// A failure while matching (fancy-regex's backtrack limit).
fn match_err(e: fancy_regex::Error) -> Error {
    op_err(format!("regular expression matching failed: {e}"))
}

/// Translate a Python replacement string (`\1`, `\g<name>`) to the regex
/// crate's syntax (`${1}`, `${name}`).
fn python_replacement(rep: &str) -> String {
    let mut out = String::with_capacity(rep.len());
    let chars: Vec<char> = rep.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '$' {
            out.push_str("$$");
        } else if c == '\\' && i + 1 < chars.len() {
            let n = chars[i + 1];
            if n.is_ascii_digit() {
                let mut j = i + 1;
                let mut num = String::new();
                while j < chars.len() && chars[j].is_ascii_digit() && num.len() < 2 {
                    num.push(chars[j]);
                    j += 1;
                }
                out.push_str(&format!("${{{num}}}"));
                i = j;
                continue;
            } else if n == 'g' && chars.get(i + 2) == Some(&'<') {
                if let Some(end) = chars[i + 3..].iter().position(|&c| c == '>') {
                    let name: String = chars[i + 3..i + 3 + end].iter().collect();
                    out.push_str(&format!("${{{name}}}"));
                    i += 4 + end;
                    continue;
                }
                out.push(c);
            } else {
                match n {
                    'n' => out.push('\n'),
                    't' => out.push('\t'),
                    'r' => out.push('\r'),
                    '\\' => out.push('\\'),
                    other => {
                        out.push('\\');
                        out.push(other);
                    }
                }
                i += 2;
                continue;
            }
        } else {
            out.push(c);
        }
        i += 1;
    }
    out
}

fn regex_replace(
    v: &Value,
    pattern: Option<String>,
    replacement: Option<String>,
    kwargs: Kwargs,
) -> Result<String, Error> {
    let s = text(v)?;
    let pattern = pattern.unwrap_or_default();
    let re = compile_regex(&pattern, &kwargs)?;
    let count = kwargs.get::<Option<usize>>("count")?.unwrap_or(0);
    kwargs.assert_all_used()?;
    let rep = python_replacement(&replacement.unwrap_or_default());
    Ok(re
        .try_replacen(&s, count, rep.as_str())
        .map_err(match_err)?
        .into_owned())
}

fn regex_search(v: &Value, pattern: String, groups: Rest<String>, kwargs: Kwargs) -> Result<Value, Error> {
    let s = text(v)?;
    let re = compile_regex(&pattern, &kwargs)?;
    kwargs.assert_all_used()?;
    let Some(caps) = re.captures(&s).map_err(match_err)? else {
        return Ok(Value::from(()));
    };
    if groups.is_empty() {
        return Ok(Value::from(caps.get(0).map(|m| m.as_str()).unwrap_or("")));
    }
    let mut out = Vec::new();
    for g in groups.iter() {
        let m = if let Some(name) = g.strip_prefix("\\g<").and_then(|n| n.strip_suffix('>')) {
            match name.parse::<usize>() {
                Ok(idx) => caps.get(idx),
                Err(_) => caps.name(name),
            }
        } else if let Some(idx) = g.strip_prefix('\\').and_then(|n| n.parse::<usize>().ok()) {
            caps.get(idx)
        } else {
            return Err(op_err(format!(
                "regex_search group arguments look like '\\1' or '\\g<name>', got {g:?}"
            )));
        };
        out.push(m.map(|m| Value::from(m.as_str())).unwrap_or(Value::from(())));
    }
    Ok(Value::from(out))
}

fn regex_findall(v: &Value, pattern: String, kwargs: Kwargs) -> Result<Value, Error> {
    let s = text(v)?;
    let re = compile_regex(&pattern, &kwargs)?;
    kwargs.assert_all_used()?;
    let ngroups = re.captures_len() - 1;
    let mut out = Vec::new();
    for caps in re.captures_iter(&s) {
        let caps = caps.map_err(match_err)?;
        let g = |i: usize| Value::from(caps.get(i).map(|m| m.as_str()).unwrap_or(""));
        out.push(match ngroups {
            0 => g(0),
            1 => g(1),
            n => Value::from((1..=n).map(g).collect::<Vec<_>>()),
        });
    }
    Ok(Value::from(out))
}

fn regex_escape(v: &Value, re_type: Option<String>) -> Result<String, Error> {
    let s = text(v)?;
    let posix = match re_type.as_deref() {
        None | Some("python") => false,
        Some("posix_basic") => true,
        Some(other) => return Err(op_err(format!("regex_escape: unsupported re_type {other:?}"))),
    };
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        let special = if posix {
            ".[]\\*^$".contains(c)
        } else {
            // Python 3.7+ re.escape
            "()[]{}?*+-|^$\\.&~# \t\n\r\u{b}\u{c}".contains(c)
        };
        if special {
            out.push('\\');
        }
        out.push(c);
    }
    Ok(out)
}

// ---------------------------------------------------------------- dicts and lists

fn merge(a: &mut Json, b: &Json, recursive: bool, list_merge: &str) {
    match (a, b) {
        (Json::Object(am), Json::Object(bm)) => {
            for (k, bv) in bm {
                match am.get_mut(k) {
                    Some(av) if recursive && av.is_object() && bv.is_object() => merge(av, bv, recursive, list_merge),
                    Some(Json::Array(al)) if list_merge != "replace" && bv.is_array() => {
                        let bl = bv.as_array().cloned().unwrap_or_default();
                        match list_merge {
                            "keep" => {}
                            "append" => al.extend(bl),
                            "prepend" => {
                                let mut n = bl;
                                n.append(al);
                                *al = n;
                            }
                            "append_rp" => {
                                al.retain(|x| !bl.contains(x));
                                al.extend(bl);
                            }
                            "prepend_rp" => {
                                let mut n = bl.clone();
                                n.extend(al.iter().filter(|x| !bl.contains(x)).cloned());
                                *al = n;
                            }
                            _ => *al = bl,
                        }
                    }
                    _ => {
                        am.insert(k.clone(), bv.clone());
                    }
                }
            }
        }
        (a, b) => *a = b.clone(),
    }
}

fn combine(v: &Value, others: Rest<Value>, kwargs: Kwargs) -> Result<Value, Error> {
    let recursive = kwargs.get::<Option<bool>>("recursive")?.unwrap_or(false);
    let list_merge = kwargs
        .get::<Option<String>>("list_merge")?
        .unwrap_or_else(|| "replace".into());
    kwargs.assert_all_used()?;
    if !["replace", "keep", "append", "prepend", "append_rp", "prepend_rp"].contains(&list_merge.as_str()) {
        return Err(op_err(format!("combine: unknown list_merge {list_merge:?}")));
    }
    let mut dicts = vec![to_json(v)?];
    for o in others.iter() {
        let j = to_json(o)?;
        // `combine(list_of_dicts)` merges every dict of the list.
        match j {
            Json::Array(a) => dicts.extend(a),
            j => dicts.push(j),
        }
    }
    let mut acc = Json::Object(Default::default());
    for d in &dicts {
        if !d.is_object() {
            return Err(op_err(format!("combine expects dictionaries, got {d}")));
        }
        merge(&mut acc, d, recursive, &list_merge);
    }
    Ok(from_json_value(&acc))
}

fn dict2items(v: &Value, kwargs: Kwargs) -> Result<Value, Error> {
    let key_name = kwargs
        .get::<Option<String>>("key_name")?
        .unwrap_or_else(|| "key".into());
    let value_name = kwargs
        .get::<Option<String>>("value_name")?
        .unwrap_or_else(|| "value".into());
    kwargs.assert_all_used()?;
    let Json::Object(m) = to_json(v)? else {
        return Err(op_err("dict2items requires a dictionary"));
    };
    let out: Vec<Json> = m
        .into_iter()
        .map(|(k, v)| {
            let mut e = serde_json::Map::new();
            e.insert(key_name.clone(), Json::String(k));
            e.insert(value_name.clone(), v);
            Json::Object(e)
        })
        .collect();
    Ok(from_json_value(&Json::Array(out)))
}

fn items2dict(v: &Value, kwargs: Kwargs) -> Result<Value, Error> {
    let key_name = kwargs
        .get::<Option<String>>("key_name")?
        .unwrap_or_else(|| "key".into());
    let value_name = kwargs
        .get::<Option<String>>("value_name")?
        .unwrap_or_else(|| "value".into());
    kwargs.assert_all_used()?;
    let Json::Array(a) = to_json(v)? else {
        return Err(op_err("items2dict requires a list"));
    };
    let mut m = serde_json::Map::new();
    for item in a {
        let (Some(k), Some(val)) = (item.get(&key_name), item.get(&value_name)) else {
            return Err(op_err(format!(
                "items2dict: every item needs '{key_name}' and '{value_name}' keys, got {item}"
            )));
        };
        let k = match k {
            Json::String(s) => s.clone(),
            other => other.to_string(),
        };
        m.insert(k, val.clone());
    }
    Ok(from_json_value(&Json::Object(m)))
}

fn unique_push(out: &mut Vec<Value>, v: Value) {
    if !out.contains(&v) {
        out.push(v);
    }
}

fn union(a: &Value, b: &Value) -> Result<Value, Error> {
    let mut out = Vec::new();
    for v in items(a)?.into_iter().chain(items(b)?) {
        unique_push(&mut out, v);
    }
    Ok(Value::from(out))
}

fn intersect(a: &Value, b: &Value) -> Result<Value, Error> {
    let bl = items(b)?;
    let mut out = Vec::new();
    for v in items(a)? {
        if bl.contains(&v) {
            unique_push(&mut out, v);
        }
    }
    Ok(Value::from(out))
}

fn difference(a: &Value, b: &Value) -> Result<Value, Error> {
    let bl = items(b)?;
    let mut out = Vec::new();
    for v in items(a)? {
        if !bl.contains(&v) {
            unique_push(&mut out, v);
        }
    }
    Ok(Value::from(out))
}

fn symmetric_difference(a: &Value, b: &Value) -> Result<Value, Error> {
    let al = items(a)?;
    let bl = items(b)?;
    let mut out = Vec::new();
    for v in al
        .iter()
        .filter(|v| !bl.contains(v))
        .chain(bl.iter().filter(|v| !al.contains(v)))
    {
        unique_push(&mut out, v.clone());
    }
    Ok(Value::from(out))
}

fn flatten_into(out: &mut Vec<Value>, v: &Value, levels: Option<usize>, skip_nulls: bool) -> Result<(), Error> {
    for item in items(v)? {
        if item.kind() == ValueKind::Seq && levels != Some(0) {
            flatten_into(out, &item, levels.map(|l| l - 1), skip_nulls)?;
        } else if !(skip_nulls && item.is_none()) {
            out.push(item);
        }
    }
    Ok(())
}

fn flatten(v: &Value, levels: Option<usize>, kwargs: Kwargs) -> Result<Value, Error> {
    let levels = match levels {
        Some(l) => Some(l),
        None => kwargs.get::<Option<usize>>("levels")?,
    };
    let skip_nulls = kwargs.get::<Option<bool>>("skip_nulls")?.unwrap_or(true);
    kwargs.assert_all_used()?;
    let mut out = Vec::new();
    flatten_into(&mut out, v, levels, skip_nulls)?;
    Ok(Value::from(out))
}

fn zip_longest(v: &Value, others: Rest<Value>, kwargs: Kwargs) -> Result<Value, Error> {
    let fill = kwargs.get::<Option<Value>>("fillvalue")?.unwrap_or(Value::from(()));
    kwargs.assert_all_used()?;
    let mut lists = vec![items(v)?];
    for o in others.iter() {
        lists.push(items(o)?);
    }
    let n = lists.iter().map(Vec::len).max().unwrap_or(0);
    let out: Vec<Value> = (0..n)
        .map(|i| {
            Value::from(
                lists
                    .iter()
                    .map(|l| l.get(i).cloned().unwrap_or(fill.clone()))
                    .collect::<Vec<_>>(),
            )
        })
        .collect();
    Ok(Value::from(out))
}

fn extract(key: &Value, container: &Value, morekeys: Option<Value>) -> Result<Value, Error> {
    check_defined(container)?;
    let mut v = container.get_item(key)?;
    if let Some(more) = morekeys {
        let keys = if more.kind() == ValueKind::Seq {
            items(&more)?
        } else {
            vec![more]
        };
        for k in keys {
            v = v.get_item(&k)?;
        }
    }
    Ok(v)
}

fn subelements(v: &Value, path: String, kwargs: Kwargs) -> Result<Value, Error> {
    let skip_missing = kwargs.get::<Option<bool>>("skip_missing")?.unwrap_or(false);
    kwargs.assert_all_used()?;
    let mut out = Vec::new();
    for item in items(v)? {
        let mut sub = item.clone();
        let mut missing = false;
        for part in path.split('.') {
            sub = sub.get_attr(part)?;
            if sub.is_undefined() {
                missing = true;
                break;
            }
        }
        if missing {
            if skip_missing {
                continue;
            }
            return Err(op_err(format!("subelements: could not find {path:?} in an item")));
        }
        for s in items(&sub)? {
            out.push(Value::from(vec![item.clone(), s]));
        }
    }
    Ok(Value::from(out))
}

fn product(v: &Value, others: Rest<Value>) -> Result<Value, Error> {
    let mut acc: Vec<Vec<Value>> = items(v)?.into_iter().map(|x| vec![x]).collect();
    for o in others.iter() {
        let l = items(o)?;
        acc = acc
            .into_iter()
            .flat_map(|prefix| {
                l.iter().map(move |x| {
                    let mut p = prefix.clone();
                    p.push(x.clone());
                    p
                })
            })
            .collect();
    }
    Ok(Value::from(acc.into_iter().map(Value::from).collect::<Vec<_>>()))
}

// ---------------------------------------------------------------- serialisation

fn to_json_filter(v: &Value, kwargs: Kwargs) -> Result<String, Error> {
    let indent = kwargs.get::<Option<usize>>("indent")?;
    let sort_keys = kwargs.get::<Option<bool>>("sort_keys")?.unwrap_or(false);
    let ensure_ascii = kwargs.get::<Option<bool>>("ensure_ascii")?.unwrap_or(true);
    kwargs.assert_all_used()?;
    Ok(super::pyjson::dumps(&to_json(v)?, indent, sort_keys, ensure_ascii))
}

fn to_nice_json(v: &Value, indent: Option<usize>, kwargs: Kwargs) -> Result<String, Error> {
    let indent = match indent {
        Some(i) => i,
        None => kwargs.get::<Option<usize>>("indent")?.unwrap_or(4),
    };
    let sort_keys = kwargs.get::<Option<bool>>("sort_keys")?.unwrap_or(true);
    let ensure_ascii = kwargs.get::<Option<bool>>("ensure_ascii")?.unwrap_or(true);
    kwargs.assert_all_used()?;
    Ok(super::pyjson::dumps(
        &to_json(v)?,
        Some(indent),
        sort_keys,
        ensure_ascii,
    ))
}

/// `from_json(profile=...)`: Ansible's decoder profiles. `tagless` (the
/// default) reads plain JSON; `legacy` and `inventory_legacy` also turn
/// `{"__ansible_unsafe": text}` into that text (a filter's result is data,
/// never rendered again, so it stays untrusted).
fn from_json(v: &Value, kwargs: Kwargs) -> Result<Value, Error> {
    let profile = kwargs.get::<Option<String>>("profile")?;
    kwargs.assert_all_used()?;
    let s = text(v)?;
    let j: Json = match serde_json::from_str(&s) {
        Ok(j) => j,
        Err(e) => match lone_surrogates_replaced(&s) {
            Some((_, first)) if strict_utf8() => {
                return Err(op_err(format!(
                    "from_json: the JSON text holds a lone UTF-16 surrogate (`{first}`), not valid UTF-8:\n\
                     Refusing to deserialize an invalid UTF8 string value.\n\
                     This check can be disabled with the `MODULE_STRICT_UTF8_RESPONSE` setting."
                )))
            }
            Some((fixed, _)) => {
                serde_json::from_str(&fixed).map_err(|e| op_err(format!("from_json: invalid JSON: {e}")))?
            }
            None => return Err(op_err(format!("from_json: invalid JSON: {e}"))),
        },
    };
    let j = match profile.as_deref() {
        None | Some("tagless") => j,
        Some("legacy" | "inventory_legacy") => unwrap_legacy_unsafe(j),
        Some(other) => return Err(op_err(format!("from_json: Unknown profile name '{other}'"))),
    };
    Ok(from_json_value(&j))
}

/// Ansible's MODULE_STRICT_UTF8_RESPONSE (`ANSIBLE_MODULE_STRICT_UTF8_RESPONSE`,
/// else ansible.cfg's `[defaults] module_strict_utf8_response`; default
/// true): whether its JSON deserializers refuse strings that are not valid
/// UTF-8 (a lone UTF-16 surrogate like `"\udc80"`).
fn strict_utf8() -> bool {
    std::env::var("ANSIBLE_MODULE_STRICT_UTF8_RESPONSE")
        .ok()
        .or_else(|| crate::ansible_cfg::value("defaults", "module_strict_utf8_response"))
        .and_then(|v| crate::kv::parse_bool(&v))
        .unwrap_or(true)
}

/// `text` with each `\uXXXX` escape of a lone UTF-16 surrogate (one not
/// part of a high/low pair) replaced by `?`, what Ansible displays for it,
/// and the first such escape; `None` when there is none.
fn lone_surrogates_replaced(text: &str) -> Option<(String, String)> {
    fn escape_at(b: &[u8], i: usize) -> Option<u16> {
        if b.get(i) != Some(&b'\\') || b.get(i + 1) != Some(&b'u') {
            return None;
        }
        std::str::from_utf8(b.get(i + 2..i + 6)?)
            .ok()
            .and_then(|h| u16::from_str_radix(h, 16).ok())
    }
    let b = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut first = None;
    let (mut i, mut copied) = (0, 0);
    while i < b.len() {
        if b[i] != b'\\' {
            i += 1;
            continue;
        }
        let Some(unit) = escape_at(b, i) else {
            // Another escape (`\\` included): skip its character.
            i += 2;
            continue;
        };
        let high = (0xD800..0xDC00).contains(&unit);
        let paired = high && escape_at(b, i + 6).is_some_and(|u| (0xDC00..0xE000).contains(&u));
        if paired {
            i += 12;
        } else if (0xD800..0xE000).contains(&unit) {
            out.push_str(&text[copied..i]);
            out.push('?');
            first.get_or_insert_with(|| text[i..i + 6].to_string());
            i += 6;
            copied = i;
        } else {
            i += 6;
        }
    }
    let first = first?;
    out.push_str(&text[copied..]);
    Some((out, first))
}

fn unwrap_legacy_unsafe(j: Json) -> Json {
    match j {
        Json::Object(m) if m.len() == 1 && matches!(m.get("__ansible_unsafe"), Some(Json::String(_))) => {
            m.into_iter().next().map(|(_, v)| v).unwrap_or(Json::Null)
        }
        Json::Object(m) => Json::Object(m.into_iter().map(|(k, v)| (k, unwrap_legacy_unsafe(v))).collect()),
        Json::Array(a) => Json::Array(a.into_iter().map(unwrap_legacy_unsafe).collect()),
        other => other,
    }
}

fn to_yaml(v: &Value, kwargs: Kwargs) -> Result<String, Error> {
    let indent = kwargs.get::<Option<usize>>("indent")?.unwrap_or(2);
    let sort_keys = kwargs.get::<Option<bool>>("sort_keys")?.unwrap_or(true);
    let flow = kwargs.get::<Option<Value>>("default_flow_style")?;
    kwargs.assert_all_used()?;
    let flow_leaves = flow.is_none_or(|f| f.is_none() || f.is_true());
    Ok(super::yamlout::dump(&to_json(v)?, indent, sort_keys, flow_leaves))
}

fn to_nice_yaml(v: &Value, indent: Option<usize>, kwargs: Kwargs) -> Result<String, Error> {
    let indent = match indent {
        Some(i) => i,
        None => kwargs.get::<Option<usize>>("indent")?.unwrap_or(4),
    };
    let sort_keys = kwargs.get::<Option<bool>>("sort_keys")?.unwrap_or(true);
    kwargs.assert_all_used()?;
    Ok(super::yamlout::dump(&to_json(v)?, indent.max(1), sort_keys, false))
}

fn from_yaml(v: &Value) -> Result<Value, Error> {
    let s = text(v)?;
    let node = crate::yaml::parse_one(&s, "<from_yaml>").map_err(|e| op_err(format!("from_yaml: {e}")))?;
    Ok(from_json_value(&node.to_json()))
}

fn from_yaml_all(v: &Value) -> Result<Value, Error> {
    let s = text(v)?;
    let docs =
        crate::yaml::parse_documents(&s, "<from_yaml_all>").map_err(|e| op_err(format!("from_yaml_all: {e}")))?;
    Ok(from_json_value(&Json::Array(
        docs.iter().map(|d| d.to_json()).collect(),
    )))
}

// ---------------------------------------------------------------- encoding, hashing

fn b64encode(v: &Value) -> Result<String, Error> {
    Ok(base64::engine::general_purpose::STANDARD.encode(text(v)?.as_bytes()))
}

fn b64decode(v: &Value) -> Result<String, Error> {
    let s = text(v)?;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(s.trim().as_bytes())
        .map_err(|e| op_err(format!("b64decode: invalid base64: {e}")))?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn hash(v: &Value, algo: Option<String>) -> Result<String, Error> {
    use sha2::Digest;
    let s = text(v)?;
    let b = s.as_bytes();
    Ok(match algo.as_deref().unwrap_or("sha1") {
        "sha1" => hex(&sha1::Sha1::digest(b)),
        "sha224" => hex(&sha2::Sha224::digest(b)),
        "sha256" => hex(&sha2::Sha256::digest(b)),
        "sha384" => hex(&sha2::Sha384::digest(b)),
        "sha512" => hex(&sha2::Sha512::digest(b)),
        "md5" => format!("{:x}", md5::compute(b)),
        other => {
            return Err(op_err(format!(
                "hash: unsupported algorithm {other:?} (sha1, sha224, sha256, sha384, sha512, md5)"
            )))
        }
    })
}

fn password_hash(v: &Value, scheme: Option<String>, salt: Option<Value>, kwargs: Kwargs) -> Result<String, Error> {
    let password = text(v)?;
    let salt = match salt {
        Some(s) if !s.is_none() => Some(text(&s)?),
        _ => kwargs.get::<Option<String>>("salt")?,
    };
    let rounds = kwargs.get::<Option<u32>>("rounds")?;
    kwargs.assert_all_used()?;
    let scheme = scheme.unwrap_or_else(|| "sha512".into());
    let scheme = scheme.strip_suffix("_crypt").unwrap_or(&scheme);
    super::crypt::password_hash(&password, scheme, salt.as_deref(), rounds).map_err(|e| op_err(e.to_string()))
}

// ---------------------------------------------------------------- paths and strings

fn basename(v: &Value) -> Result<String, Error> {
    let s = text(v)?;
    Ok(s.rsplit('/').next().unwrap_or("").to_string())
}

fn dirname(v: &Value) -> Result<String, Error> {
    // Python's os.path.dirname: everything before the last slash, with
    // trailing slashes removed unless the result is only slashes.
    let s = text(v)?;
    Ok(match s.rfind('/') {
        None => String::new(),
        Some(i) => {
            let head = &s[..=i];
            let trimmed = head.trim_end_matches('/');
            if trimmed.is_empty() {
                head.to_string()
            } else {
                trimmed.to_string()
            }
        }
    })
}

fn expanduser(v: &Value) -> Result<String, Error> {
    let s = text(v)?;
    let home = std::env::var("HOME").unwrap_or_default();
    Ok(if s == "~" {
        home
    } else if let Some(rest) = s.strip_prefix("~/") {
        format!("{}/{}", home.trim_end_matches('/'), rest)
    } else {
        s
    })
}

fn realpath(v: &Value) -> Result<String, Error> {
    let s = text(v)?;
    let p = std::path::Path::new(&s);
    if let Ok(c) = std::fs::canonicalize(p) {
        return Ok(c.display().to_string());
    }
    // Like Python, a path that does not exist is still made absolute.
    let abs = if p.is_absolute() {
        p.to_path_buf()
    } else {
        std::env::current_dir().map_err(|e| op_err(e.to_string()))?.join(p)
    };
    let mut out = std::path::PathBuf::new();
    for c in abs.components() {
        match c {
            std::path::Component::ParentDir => {
                out.pop();
            }
            std::path::Component::CurDir => {}
            other => out.push(other),
        }
    }
    Ok(out.display().to_string())
}

fn splitext(v: &Value) -> Result<Value, Error> {
    let s = text(v)?;
    let base_start = s.rfind('/').map(|i| i + 1).unwrap_or(0);
    let base = &s[base_start..];
    // A leading dot (".bashrc") is not an extension.
    let lead = base.len() - base.trim_start_matches('.').len();
    let (root, ext) = match base[lead..].rfind('.') {
        Some(i) => {
            let at = base_start + lead + i;
            (&s[..at], &s[at..])
        }
        None => (s.as_str(), ""),
    };
    Ok(Value::from(vec![Value::from(root), Value::from(ext)]))
}

fn path_join(v: &Value) -> Result<String, Error> {
    let parts = if v.kind() == ValueKind::Seq {
        items(v)?
    } else {
        vec![v.clone()]
    };
    let mut out = String::new();
    for p in parts {
        let p = text(&p)?;
        if p.starts_with('/') || out.is_empty() {
            out = p;
        } else {
            if !out.ends_with('/') {
                out.push('/');
            }
            out.push_str(&p);
        }
    }
    Ok(out)
}

/// Python's shlex.quote, through rigger's one shell-quoting helper.
fn quote(v: &Value) -> Result<String, Error> {
    Ok(crate::shell::sh_quote(&text(v)?))
}

fn mandatory(v: &Value, msg: Option<String>) -> Result<Value, Error> {
    if v.is_undefined() {
        return Err(match msg {
            Some(m) => Error::new(ErrorKind::UndefinedError, m),
            None => check_defined(v)
                .err()
                .unwrap_or_else(|| Error::new(ErrorKind::UndefinedError, "mandatory variable not defined")),
        });
    }
    Ok(v.clone())
}

fn ternary(v: &Value, true_val: Value, false_val: Value, none_val: Option<Value>) -> Result<Value, Error> {
    check_defined(v)?;
    if v.is_none() {
        if let Some(n) = none_val {
            return Ok(n);
        }
    }
    Ok(if v.is_true() { true_val } else { false_val })
}

fn comment(v: &Value, style: Option<String>, kwargs: Kwargs) -> Result<String, Error> {
    let text = text(v)?;
    let style = style.unwrap_or_else(|| "plain".into());
    let (mut beginning, mut decoration, mut end) = match style.as_str() {
        "plain" => ("", "# ", ""),
        "erlang" => ("", "% ", ""),
        "c" => ("", "// ", ""),
        "cblock" => ("/*", " * ", " */"),
        "xml" => ("<!--", " - ", "-->"),
        other => return Err(op_err(format!("comment: unknown style {other:?}"))),
    };
    let kb = kwargs.get::<Option<String>>("beginning")?;
    let kd = kwargs.get::<Option<String>>("decoration")?;
    let ke = kwargs.get::<Option<String>>("end")?;
    if let Some(b) = &kb {
        beginning = b;
    }
    if let Some(d) = &kd {
        decoration = d;
    }
    if let Some(e) = &ke {
        end = e;
    }
    let prefix = kwargs
        .get::<Option<String>>("prefix")?
        .unwrap_or_else(|| decoration.trim_end().to_string());
    let postfix = kwargs
        .get::<Option<String>>("postfix")?
        .unwrap_or_else(|| decoration.trim_end().to_string());
    let prefix_count = kwargs.get::<Option<usize>>("prefix_count")?.unwrap_or(1);
    let postfix_count = kwargs.get::<Option<usize>>("postfix_count")?.unwrap_or(1);
    let nl = kwargs.get::<Option<String>>("newline")?.unwrap_or_else(|| "\n".into());
    kwargs.assert_all_used()?;
    // As Ansible's filter composes it: an empty beginning, prefix or end adds nothing (not even its
    // newline); a prefix that is the newline adds just that; the postfix lines each follow a newline,
    // so an empty postfix still ends the text with one.
    let mut out = String::new();
    if !beginning.is_empty() {
        out.push_str(beginning);
        out.push_str(&nl);
    }
    if !prefix.is_empty() {
        for _ in 0..prefix_count {
            if prefix != nl {
                out.push_str(&prefix);
            }
            out.push_str(&nl);
        }
    }
    let body = format!("{decoration}{}", text.replace(&nl, &format!("{nl}{decoration}")));
    let body = body.replace(&format!("{decoration}{nl}"), &format!("{}{nl}", decoration.trim_end()));
    out.push_str(&body);
    for _ in 0..postfix_count {
        out.push_str(&nl);
        out.push_str(&postfix);
    }
    if !end.is_empty() {
        out.push_str(&nl);
        out.push_str(end);
    }
    Ok(out)
}

fn version_compare(
    v: &Value,
    other: &Value,
    op: Option<String>,
    strict: Option<bool>,
    kwargs: Kwargs,
) -> Result<bool, Error> {
    super::jtests::version_test(v, other, op, strict, kwargs)
}

fn type_debug(v: &Value) -> String {
    match v.kind() {
        ValueKind::Undefined => "AnsibleUndefined",
        ValueKind::None => "NoneType",
        ValueKind::Bool => "bool",
        ValueKind::Number if v.is_integer() => "int",
        ValueKind::Number => "float",
        ValueKind::String => "str",
        ValueKind::Bytes => "bytes",
        ValueKind::Seq => "list",
        ValueKind::Map => "dict",
        _ => "object",
    }
    .to_string()
}

fn human_readable(v: &Value, isbits: Option<bool>, unit: Option<String>, kwargs: Kwargs) -> Result<String, Error> {
    // Ansible's `human_readable(size, isbits=False, unit=None)`, by position or name.
    let isbits = match kwargs.get::<Option<bool>>("isbits")? {
        Some(b) => Some(b),
        None => isbits,
    };
    let unit = match kwargs.get::<Option<String>>("unit")? {
        Some(u) => Some(u),
        None => unit,
    };
    kwargs.assert_all_used()?;
    check_defined(v)?;
    // Ansible compares the size with numbers: anything else (a string, even
    // a numeric one) is its TypeError.
    let n = match v.kind() {
        ValueKind::Number => f64::try_from(v.clone())?,
        ValueKind::Bool => f64::from(u8::from(v.is_true())),
        _ => return Err(op_err("human_readable() failed on bad input")),
    };
    let isbits = isbits.unwrap_or(false);
    let suffix = if isbits { "b" } else { "B" };
    let units = ["", "K", "M", "G", "T", "P", "E", "Z", "Y"];
    let idx = match unit {
        Some(u) => units
            .iter()
            .position(|x| !x.is_empty() && u.starts_with(x))
            .ok_or_else(|| op_err(format!("human_readable: unknown unit {u:?}")))?,
        None => {
            let mut i = 0;
            while i + 1 < units.len() && n.abs() >= 1024f64.powi(i as i32 + 1) {
                i += 1;
            }
            i
        }
    };
    let scaled = n / 1024f64.powi(idx as i32);
    let label = if idx == 0 {
        if isbits {
            "bits".to_string()
        } else {
            "Bytes".to_string()
        }
    } else {
        format!("{}{suffix}", units[idx])
    };
    Ok(format!("{scaled:.2} {label}"))
}

/// Ansible's `rekey_on_member(data, key, duplicates='error')`: a dict of
/// the mappings in `data` (a list, or a dict's values), each under its own
/// `key` member, in order; a repeated member is an error, or with
/// `duplicates='overwrite'` the later mapping wins (at the first's place).
fn rekey_on_member(data: &Value, key: &Value, duplicates: Option<String>, kwargs: Kwargs) -> Result<Value, Error> {
    let duplicates = match kwargs.get::<Option<String>>("duplicates")? {
        Some(d) => d,
        None => duplicates.unwrap_or_else(|| "error".into()),
    };
    kwargs.assert_all_used()?;
    check_defined(key)?;
    let quoted = |v: &Value| match v.as_str() {
        Some(s) => format!("'{s}'"),
        None => v.to_string(),
    };
    if !matches!(duplicates.as_str(), "error" | "overwrite") {
        return Err(op_err(format!(
            "duplicates parameter to rekey_on_member has unknown value '{duplicates}'"
        )));
    }
    let items: Vec<Value> = match data.kind() {
        ValueKind::Map => data.try_iter()?.map(|k| data.get_item(&k)).collect::<Result<_, _>>()?,
        ValueKind::Seq | ValueKind::Iterable => data.try_iter()?.collect(),
        _ => return Err(op_err("Type is not a valid list, set, or dict")),
    };
    let mut out: indexmap::IndexMap<Value, Value> = indexmap::IndexMap::new();
    for item in items {
        if item.kind() != ValueKind::Map {
            return Err(op_err("List item is not a valid dict"));
        }
        let elem = item.get_item(key)?;
        if elem.is_undefined() {
            return Err(op_err(format!("Key {} was not found.", quoted(key))));
        }
        if out.contains_key(&elem) && duplicates == "error" {
            return Err(op_err(format!(
                "Key {} is not unique, cannot convert to dict.",
                quoted(&elem)
            )));
        }
        out.insert(elem, item);
    }
    Ok(Value::from_pairs(out))
}

fn human_to_bytes(v: &Value, default_unit: Option<String>, isbits: Option<bool>, kwargs: Kwargs) -> Result<i64, Error> {
    // Ansible's `human_to_bytes(size, default_unit=None, isbits=False)`, by position or name.
    let default_unit = match kwargs.get::<Option<String>>("default_unit")? {
        Some(u) => Some(u),
        None => default_unit,
    };
    let isbits = match kwargs.get::<Option<bool>>("isbits")? {
        Some(b) => Some(b),
        None => isbits,
    };
    kwargs.assert_all_used()?;
    let s = text(v)?;
    let s = s.trim();
    let split = s.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let num: f64 = num
        .parse()
        .map_err(|_| op_err(format!("human_to_bytes: cannot parse {s:?}")))?;
    let unit = unit.trim();
    let unit = if unit.is_empty() {
        default_unit.unwrap_or_default()
    } else {
        unit.to_string()
    };
    let letter = unit.chars().next().map(|c| c.to_ascii_uppercase());
    let power = match letter {
        None | Some('B') => 0,
        Some('K') => 1,
        Some('M') => 2,
        Some('G') => 3,
        Some('T') => 4,
        Some('P') => 5,
        Some('E') => 6,
        Some('Z') => 7,
        Some('Y') => 8,
        Some(_) => return Err(op_err(format!("human_to_bytes: unknown unit {unit:?}"))),
    };
    let _ = isbits;
    Ok((num * 1024f64.powi(power)).round() as i64)
}

// ---------------------------------------------------------------- random

/// A random generator seeded by the host (and an optional seed), so that the
/// same host gets the same value on every run, as Ansible users expect when
/// they write `random(seed=inventory_hostname)`.
fn host_rng(state: &State, seed: Option<&Value>, input: &Value) -> rand::rngs::StdRng {
    let mut h = DefaultHasher::new();
    if let Some(host) = state.lookup("inventory_hostname") {
        host.to_string().hash(&mut h);
    }
    if let Some(s) = seed {
        s.to_string().hash(&mut h);
    }
    input.to_string().hash(&mut h);
    rand::rngs::StdRng::seed_from_u64(h.finish())
}

fn random(state: &State, v: &Value, start: Option<i64>, step: Option<i64>, kwargs: Kwargs) -> Result<Value, Error> {
    check_defined(v)?;
    let seed = kwargs.get::<Option<Value>>("seed")?;
    let start = match start {
        Some(s) => s,
        None => kwargs.get::<Option<i64>>("start")?.unwrap_or(0),
    };
    let step = match step {
        Some(s) => s,
        None => kwargs.get::<Option<i64>>("step")?.unwrap_or(1),
    }
    .max(1);
    kwargs.assert_all_used()?;
    let mut rng = host_rng(state, seed.as_ref(), v);
    if let Some(n) = v.as_i64() {
        if n <= start {
            return Err(op_err(format!("random: end {n} must be greater than start {start}")));
        }
        let count = (n - start + step - 1) / step;
        return Ok(Value::from(start + rng.random_range(0..count) * step));
    }
    let list = items(v)?;
    if list.is_empty() {
        return Err(op_err("random: cannot choose from an empty list"));
    }
    Ok(list[rng.random_range(0..list.len())].clone())
}

fn shuffle(state: &State, v: &Value, kwargs: Kwargs) -> Result<Value, Error> {
    let seed = kwargs.get::<Option<Value>>("seed")?;
    kwargs.assert_all_used()?;
    let mut list = items(v)?;
    let mut rng = host_rng(state, seed.as_ref(), v);
    list.shuffle(&mut rng);
    Ok(Value::from(list))
}

/// Jinja's `map`, which notes why `map(attribute='x')` (without a
/// `default`) gives an undefined value for an item that has no `x`:
/// `object of type 'dict' has no attribute 'x'`, Ansible's message when the
/// result is used (see [`note_undefined`]).
fn map_filter(state: &mut State, value: Value, args: Rest<ValueOrKwargs>) -> Result<Vec<Value>, Error> {
    let values: Vec<Value> = args.0.iter().map(|a| (**a).clone()).collect();
    let kwargs = minijinja::value::from_args::<(&[Value], Kwargs)>(&values)
        .ok()
        .map(|(_, k)| k);
    if let Some(kwargs) = kwargs.filter(|k| !k.has("default")) {
        if let Some(attr) = kwargs.peek::<Option<String>>("attribute").ok().flatten() {
            if let Ok(items) = value.try_iter() {
                for item in items {
                    let found = attr
                        .split('.')
                        .try_fold(item.clone(), |v, key| match key.parse::<usize>() {
                            Ok(i) => v.get_item(&Value::from(i)),
                            Err(_) => v.get_attr(key),
                        });
                    if found.map_or(true, |v| v.is_undefined()) {
                        let key = attr.rsplit('.').next().unwrap_or(&attr);
                        note_undefined(format!(
                            "object of type '{}' has no attribute '{key}'",
                            python_type_name(&item)
                        ));
                        break;
                    }
                }
            }
        }
    }
    minijinja::filters::map(state, value, args)
}

#[cfg(test)]
mod surrogate_tests {
    use super::lone_surrogates_replaced;

    #[test]
    fn lone_surrogate_escapes_are_found_pairs_and_escaped_backslashes_are_not() {
        assert_eq!(
            lone_surrogates_replaced(r#""hi \udc80 mom""#),
            Some((r#""hi ? mom""#.to_string(), r"\udc80".to_string()))
        );
        assert_eq!(lone_surrogates_replaced(r#""\ud83d\ude00""#), None);
        assert_eq!(lone_surrogates_replaced(r#""\\udc80""#), None);
        assert_eq!(
            lone_surrogates_replaced(r#"["\ud83d", "\u00e9"]"#),
            Some((r#"["?", "\u00e9"]"#.to_string(), r"\ud83d".to_string()))
        );
    }
}
