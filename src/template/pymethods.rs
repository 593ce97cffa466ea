//! Python methods on strings, lists and dicts that templates call
//! (`list.index(x)`, `s.rjust(5)`, `s.partition(':')`, ...) beyond the set
//! minijinja-contrib's pycompat offers; everything else falls through to it.
//! Only the methods that return a new value are here: minijinja's values are
//! immutable, so `list.append(x)` stays an unknown-method error rather than
//! a call that silently changes nothing.

use minijinja::value::{from_args, ValueKind};
use minijinja::{Error, ErrorKind, State, Value};

/// The environment's unknown-method callback.
pub(crate) fn call(state: &mut State, value: &Value, method: &str, args: &[Value]) -> Result<Value, Error> {
    let ours = match value.kind() {
        ValueKind::String => value.as_str().map(|s| string_method(s, method, args)),
        ValueKind::Seq => Some(seq_method(value, method, args)),
        ValueKind::Map => Some(map_method(value, method, args)),
        _ => None,
    };
    match ours {
        Some(Ok(Some(v))) => Ok(v),
        Some(Err(e)) => Err(e),
        _ => minijinja_contrib::pycompat::unknown_method_callback(state, value, method, args),
    }
}

fn value_error(msg: impl Into<String>) -> Error {
    Error::new(ErrorKind::InvalidOperation, format!("ValueError: {}", msg.into()))
}

/// Python's slice-index normalisation for `start`/`end` arguments:
/// negative counts from the end, both clamped to `0..=len`.
fn bounds(len: usize, start: Option<i64>, end: Option<i64>) -> (usize, usize) {
    let norm = |i: i64| -> usize {
        let len = i64::try_from(len).unwrap_or(i64::MAX);
        let i = if i < 0 { (i + len).max(0) } else { i.min(len) };
        usize::try_from(i).unwrap_or(0)
    };
    (norm(start.unwrap_or(0)), end.map_or(len, norm))
}

/// Index (in characters) of `sub` in `chars[start..end]`, from the left or right.
fn find_chars(chars: &[char], sub: &str, start: usize, end: usize, from_right: bool) -> Option<usize> {
    if start > end {
        return None;
    }
    let sub: Vec<char> = sub.chars().collect();
    let hay = &chars[start..end];
    if sub.len() > hay.len() {
        return None;
    }
    let mut positions = 0..=hay.len() - sub.len();
    let hit = |i: &usize| hay[*i..*i + sub.len()] == sub[..];
    let found = if from_right {
        positions.rev().find(hit)
    } else {
        positions.find(hit)
    };
    found.map(|i| i + start)
}

fn pad(s: &str, width: usize, fill: char, left: usize) -> String {
    let len = s.chars().count();
    if width <= len {
        return s.to_string();
    }
    let total = width - len;
    let right = total - left.min(total);
    let mut out: String = std::iter::repeat_n(fill, left.min(total)).collect();
    out.push_str(s);
    out.extend(std::iter::repeat_n(fill, right));
    out
}

fn fill_char(fill: Option<&str>) -> Result<char, Error> {
    let fill = fill.unwrap_or(" ");
    let mut it = fill.chars();
    match (it.next(), it.next()) {
        (Some(c), None) => Ok(c),
        _ => Err(Error::new(
            ErrorKind::InvalidOperation,
            "TypeError: The fill character must be exactly one character long",
        )),
    }
}

fn width(w: i64) -> usize {
    usize::try_from(w).unwrap_or(0)
}

fn string_method(s: &str, method: &str, args: &[Value]) -> Result<Option<Value>, Error> {
    let v = match method {
        "index" | "rindex" => {
            let (sub, start, end): (&str, Option<i64>, Option<i64>) = from_args(args)?;
            let chars: Vec<char> = s.chars().collect();
            let (a, b) = bounds(chars.len(), start, end);
            match find_chars(&chars, sub, a, b, method == "rindex") {
                Some(i) => Value::from(i),
                None => return Err(value_error("substring not found")),
            }
        }
        "istitle" => {
            let () = from_args(args)?;
            // Python: uppercase letters only after uncased characters,
            // lowercase only after cased ones, and at least one cased letter.
            let (mut prev_cased, mut any) = (false, false);
            for c in s.chars() {
                if c.is_uppercase() {
                    if prev_cased {
                        return Ok(Some(Value::from(false)));
                    }
                    prev_cased = true;
                    any = true;
                } else if c.is_lowercase() {
                    if !prev_cased {
                        return Ok(Some(Value::from(false)));
                    }
                    prev_cased = true;
                    any = true;
                } else {
                    prev_cased = false;
                }
            }
            Value::from(any)
        }
        "center" | "ljust" | "rjust" => {
            let (w, fill): (i64, Option<&str>) = from_args(args)?;
            let fill = fill_char(fill)?;
            let total = width(w).saturating_sub(s.chars().count());
            let left = match method {
                "ljust" => 0,
                "rjust" => total,
                // CPython's centre puts the odd extra space on the left only when
                // both the padding and the width are odd.
                _ => total / 2 + (total & width(w) & 1),
            };
            Value::from(pad(s, width(w), fill, left))
        }
        "zfill" => {
            let (w,): (i64,) = from_args(args)?;
            let (sign, digits) = match s.strip_prefix(['+', '-']) {
                Some(rest) => (&s[..1], rest),
                None => ("", s),
            };
            let zeros = width(w).saturating_sub(s.chars().count());
            Value::from(format!("{sign}{}{digits}", "0".repeat(zeros)))
        }
        "partition" | "rpartition" => {
            let (sep,): (&str,) = from_args(args)?;
            if sep.is_empty() {
                return Err(value_error("empty separator"));
            }
            let split = if method == "partition" {
                s.split_once(sep)
            } else {
                s.rsplit_once(sep)
            };
            let parts = match (split, method) {
                (Some((a, b)), _) => [a, sep, b],
                (None, "partition") => [s, "", ""],
                (None, _) => ["", "", s],
            };
            Value::from(parts.iter().map(|p| Value::from(*p)).collect::<Vec<_>>())
        }
        "rsplit" => {
            let (sep, maxsplit): (Option<&str>, Option<i64>) = from_args(args)?;
            let max = maxsplit.filter(|m| *m >= 0).map(width);
            let mut parts: Vec<String> = match sep {
                Some("") => return Err(value_error("empty separator")),
                Some(sep) => match max {
                    Some(m) => s.rsplitn(m + 1, sep).map(str::to_string).collect(),
                    None => s.rsplit(sep).map(str::to_string).collect(),
                },
                None => {
                    // Whitespace runs; leftover text keeps its inner whitespace.
                    let mut out = Vec::new();
                    let mut rest = s.trim_end();
                    while !rest.is_empty() {
                        if max.is_some_and(|m| out.len() == m) {
                            out.push(rest.to_string());
                            break;
                        }
                        match rest.rfind(char::is_whitespace) {
                            Some(i) => {
                                let ws = rest[i..].chars().next().map_or(1, char::len_utf8);
                                out.push(rest[i + ws..].to_string());
                                rest = rest[..i].trim_end();
                            }
                            None => {
                                out.push(rest.to_string());
                                rest = "";
                            }
                        }
                    }
                    out
                }
            };
            parts.reverse();
            Value::from(parts)
        }
        "swapcase" => {
            let () = from_args(args)?;
            Value::from(
                s.chars()
                    .flat_map(|c| {
                        if c.is_uppercase() {
                            c.to_lowercase().collect::<Vec<_>>()
                        } else {
                            c.to_uppercase().collect()
                        }
                    })
                    .collect::<String>(),
            )
        }
        "casefold" => {
            let () = from_args(args)?;
            Value::from(s.to_lowercase())
        }
        "removeprefix" => {
            let (p,): (&str,) = from_args(args)?;
            Value::from(s.strip_prefix(p).unwrap_or(s))
        }
        "removesuffix" => {
            let (p,): (&str,) = from_args(args)?;
            Value::from(s.strip_suffix(p).unwrap_or(s))
        }
        "expandtabs" => {
            let (size,): (Option<i64>,) = from_args(args)?;
            let size = width(size.unwrap_or(8));
            let mut out = String::new();
            let mut col = 0;
            for c in s.chars() {
                match c {
                    '\t' => {
                        let n = if size == 0 { 0 } else { size - col % size };
                        out.extend(std::iter::repeat_n(' ', n));
                        col += n;
                    }
                    '\n' | '\r' => {
                        out.push(c);
                        col = 0;
                    }
                    _ => {
                        out.push(c);
                        col += 1;
                    }
                }
            }
            Value::from(out)
        }
        _ => return Ok(None),
    };
    Ok(Some(v))
}

fn seq_method(value: &Value, method: &str, args: &[Value]) -> Result<Option<Value>, Error> {
    let v = match method {
        "index" => {
            let (what, start, end): (&Value, Option<i64>, Option<i64>) = from_args(args)?;
            let items: Vec<Value> = value.try_iter()?.collect();
            let (a, b) = bounds(items.len(), start, end);
            match (a..b).find(|i| items[*i] == *what) {
                Some(i) => Value::from(i),
                None => return Err(value_error(format!("{} is not in list", py_repr(what)))),
            }
        }
        "copy" => {
            let () = from_args(args)?;
            Value::from(value.try_iter()?.collect::<Vec<_>>())
        }
        _ => return Ok(None),
    };
    Ok(Some(v))
}

fn map_method(value: &Value, method: &str, args: &[Value]) -> Result<Option<Value>, Error> {
    let v = match method {
        "copy" => {
            let () = from_args(args)?;
            Value::from_object(
                map_pairs(value)?
                    .into_iter()
                    .collect::<indexmap::IndexMap<Value, Value>>(),
            )
        }
        _ => return Ok(None),
    };
    Ok(Some(v))
}

fn map_pairs(value: &Value) -> Result<Vec<(Value, Value)>, Error> {
    value
        .try_iter()?
        .map(|k| {
            let v = value.get_item(&k)?;
            Ok((k, v))
        })
        .collect()
}

fn py_repr(v: &Value) -> String {
    match v.as_str() {
        Some(s) => format!("'{s}'"),
        None => v.to_string(),
    }
}
