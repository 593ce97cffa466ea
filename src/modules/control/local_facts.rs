//! Local facts (`ansible_local`): Ansible's `LocalFactCollector`. Every
//! `*.fact` file in the fact path is run when its owner may execute it (its
//! output is the fact) or read otherwise; the text is JSON or, failing that,
//! INI (Python's `ConfigParser`: one dict per section). A file that cannot be
//! used becomes a message under its name, as in Ansible.

use serde_json::{Map, Value};

use crate::connection::sh_quote;

/// Where Ansible reads local facts when `fact_path` is not given.
pub(crate) const DEFAULT_FACT_PATH: &str = "/etc/ansible/facts.d";

/// The shell script that reads the local facts of `fact_path`, for
/// [`crate::exec::facts`]'s gathering script (so that they cost no round
/// trip of their own). It prints records, NUL-separated with byte counts
/// so any content survives: `S path n` stat failed (n bytes of stderr),
/// `F path n` read (n bytes), `X path rc n m` ran (n bytes of stdout, m of
/// stderr); then `E rc`, the end (rc: the script's exit status).
pub(crate) fn script(fact_path: &str) -> String {
    let body = format!(
        "d={}; [ -e \"$d\" ] || exit 0; t=$(mktemp -d) || exit 1; \
         for f in \"$d\"/*.fact; do [ -e \"$f\" ] || [ -L \"$f\" ] || continue; \
         if ! m=$(stat -L -c %a -- \"$f\" 2>\"$t/e\"); then \
         printf 'S\\0%s\\0%s\\0' \"$f\" \"$(wc -c < \"$t/e\")\"; cat \"$t/e\"; continue; fi; \
         if [ $(( 0$m & 0100 )) -eq 0 ]; then : > \"$t/o\"; cat -- \"$f\" > \"$t/o\" 2>/dev/null; \
         printf 'F\\0%s\\0%s\\0' \"$f\" \"$(wc -c < \"$t/o\")\"; cat \"$t/o\"; \
         else \"$f\" > \"$t/o\" 2> \"$t/e\" < /dev/null; rc=$?; \
         printf 'X\\0%s\\0%s\\0%s\\0%s\\0' \"$f\" \"$rc\" \"$(wc -c < \"$t/o\")\" \"$(wc -c < \"$t/e\")\"; \
         cat \"$t/o\" \"$t/e\"; fi; done; rm -rf \"$t\"",
        sh_quote(fact_path)
    );
    format!("( {body} ); printf 'E\\0%s\\0' \"$?\"\n")
}

/// The `ansible_local` dict from what [`script`] printed at the start of
/// `data`: one key per `*.fact` file (its name without `.fact`; an empty
/// dict for a missing fact path), and the bytes after the records. `Err`
/// when the script failed or its answer is not what it prints.
pub(crate) fn parse(data: &[u8], fact_path: &str) -> Result<(Map<String, Value>, usize), String> {
    let (mut records, rc, used) =
        parse_records(data).ok_or_else(|| format!("unexpected answer while reading the local facts in {fact_path}"))?;
    if rc != 0 {
        return Err(format!("cannot read the local facts in {fact_path} (exit status {rc})"));
    }
    // Python's `sorted(glob.glob(...))`: by code point, not the shell's collation.
    records.sort_by(|a, b| a.path.cmp(&b.path));
    let mut local = Map::new();
    for r in records {
        let base = r.path.rsplit('/').next().unwrap_or(&r.path).replace(".fact", "");
        local.insert(base, r.fact());
    }
    Ok((local, used))
}

#[derive(Debug)]
enum Outcome {
    StatFailed(Vec<u8>),
    Read(Vec<u8>),
    Ran { rc: i32, out: Vec<u8>, err: Vec<u8> },
}

#[derive(Debug)]
struct Record {
    path: String,
    outcome: Outcome,
}

impl Record {
    /// The fact for this file, or the message Ansible puts in its place.
    fn fact(self) -> Value {
        let path = self.path;
        let out = match self.outcome {
            Outcome::StatFailed(err) => {
                return Value::String(format!(
                    "Could not stat fact ({path}): {}",
                    String::from_utf8_lossy(&err).trim()
                ))
            }
            Outcome::Ran { rc, err, .. } if rc != 0 => {
                return Value::String(format!(
                    "Failure executing fact script ({path}), rc: {rc}, err: {}",
                    String::from_utf8_lossy(&err)
                ))
            }
            Outcome::Ran { out, .. } | Outcome::Read(out) => out,
        };
        let Ok(text) = String::from_utf8(out) else {
            return Value::String(format!(
                "error loading fact - output of running \"{path}\" was not utf-8"
            ));
        };
        if let Ok(v) = serde_json::from_str::<Value>(&text) {
            return v;
        }
        match parse_ini(&text) {
            Ok(Ok(sections)) => Value::Object(sections),
            Ok(Err(e)) => Value::String(format!(
                "error loading facts as ini - please check content: {path} ({e})"
            )),
            Err(()) => Value::String(format!(
                "error loading facts as JSON or ini - please check content: {path}"
            )),
        }
    }
}

/// The records up to the `E` record, its exit status, and how many bytes
/// of `data` they took.
fn parse_records(data: &[u8]) -> Option<(Vec<Record>, i32, usize)> {
    let mut rest = data;
    let field = |rest: &mut &[u8]| -> Option<String> {
        let z = rest.iter().position(|&b| b == 0)?;
        let s = String::from_utf8_lossy(&rest[..z]).into_owned();
        *rest = &rest[z + 1..];
        Some(s)
    };
    let take = |rest: &mut &[u8], n: &str| -> Option<Vec<u8>> {
        let n: usize = n.trim().parse().ok()?;
        let bytes = rest.get(..n)?.to_vec();
        *rest = &rest[n..];
        Some(bytes)
    };
    let mut out = Vec::new();
    loop {
        let kind = field(&mut rest)?;
        if kind == "E" {
            let rc = field(&mut rest)?.trim().parse().ok()?;
            return Some((out, rc, data.len() - rest.len()));
        }
        let path = field(&mut rest)?;
        let outcome = match kind.as_str() {
            "S" => {
                let n = field(&mut rest)?;
                Outcome::StatFailed(take(&mut rest, &n)?)
            }
            "F" => {
                let n = field(&mut rest)?;
                Outcome::Read(take(&mut rest, &n)?)
            }
            "X" => {
                let rc = field(&mut rest)?.trim().parse().ok()?;
                let (n, m) = (field(&mut rest)?, field(&mut rest)?);
                let out = take(&mut rest, &n)?;
                let err = take(&mut rest, &m)?;
                Outcome::Ran { rc, out, err }
            }
            _ => return None,
        };
        out.push(Record { path, outcome });
    }
}

/// Python's `ConfigParser` (default settings) reading `text`, then every
/// section's options with `%` interpolation: `Err(())` when the text does
/// not parse, `Ok(Err(message))` when a value's interpolation fails.
#[allow(clippy::type_complexity)]
fn parse_ini(text: &str) -> Result<Result<Map<String, Value>, String>, ()> {
    // Sections in order, each with its options in order; DEFAULT apart.
    let mut defaults: Vec<(String, Vec<String>)> = Vec::new();
    let mut sections: Vec<(String, Vec<(String, Vec<String>)>)> = Vec::new();
    let mut in_default = false;
    let mut have_section = false;
    // The option being continued and its line's indentation.
    let mut current: Option<usize> = None;
    for line in text.lines() {
        let stripped = line.trim();
        if stripped.is_empty() || stripped.starts_with('#') || stripped.starts_with(';') {
            continue;
        }
        let indent = line.len() - line.trim_start().len();
        let target = if in_default {
            &mut defaults
        } else {
            match sections.last_mut() {
                Some(s) => &mut s.1,
                None => &mut defaults,
            }
        };
        if let Some(level) = current {
            if have_section && indent > level {
                if let Some(last) = target.last_mut() {
                    last.1.push(stripped.to_string());
                    continue;
                }
            }
        }
        if let Some(inner) = stripped.strip_prefix('[') {
            if let Some(end) = inner.rfind(']') {
                let name = &inner[..end];
                if !name.is_empty() {
                    current = None;
                    have_section = true;
                    if name == "DEFAULT" {
                        in_default = true;
                    } else {
                        if sections.iter().any(|(n, _)| n == name) {
                            return Err(());
                        }
                        in_default = false;
                        sections.push((name.to_string(), Vec::new()));
                    }
                    continue;
                }
            }
        }
        if !have_section {
            return Err(());
        }
        let delim = stripped.find(['=', ':']).ok_or(())?;
        let key = stripped[..delim].trim_end().to_lowercase();
        if key.is_empty() {
            return Err(());
        }
        let value = stripped[delim + 1..].trim().to_string();
        let target = if in_default {
            &mut defaults
        } else {
            match sections.last_mut() {
                Some(s) => &mut s.1,
                None => return Err(()),
            }
        };
        if target.iter().any(|(k, _)| *k == key) {
            return Err(());
        }
        target.push((key, vec![value]));
        current = Some(indent);
    }
    let joined = |v: &[String]| v.join("\n").trim_end().to_string();
    let mut out = Map::new();
    for (name, opts) in &sections {
        let mut all: Vec<(String, String)> = opts.iter().map(|(k, v)| (k.clone(), joined(v))).collect();
        for (k, v) in &defaults {
            if !all.iter().any(|(n, _)| n == k) {
                all.push((k.clone(), joined(v)));
            }
        }
        let mut section = Map::new();
        for (k, raw) in &all {
            match interpolate(raw, &all, name, k, 1) {
                Ok(v) => {
                    section.insert(k.clone(), Value::String(v));
                }
                Err(e) => return Ok(Err(e)),
            }
        }
        out.insert(name.clone(), Value::Object(section));
    }
    Ok(Ok(out))
}

/// Python's `BasicInterpolation`: `%%` is `%`, `%(name)s` the option
/// `name` of the section (or DEFAULT), any other `%` an error.
fn interpolate(
    value: &str,
    opts: &[(String, String)],
    section: &str,
    option: &str,
    depth: u32,
) -> Result<String, String> {
    if depth > 10 {
        return Err(format!(
            "Recursion limit exceeded in value substitution: option '{option}' in section '{section}' contains an interpolation key which cannot be substituted in 10 steps. Raw value: '{value}'"
        ));
    }
    let mut acc = String::new();
    let mut rest = value;
    while let Some(p) = rest.find('%') {
        acc.push_str(&rest[..p]);
        rest = &rest[p..];
        match rest[1..].chars().next() {
            Some('%') => {
                acc.push('%');
                rest = &rest[2..];
            }
            Some('(') => {
                let close = rest.find(')').filter(|&c| c > 2 && rest[c + 1..].starts_with('s'));
                let Some(close) = close else {
                    return Err(format!("bad interpolation variable reference '{rest}'"));
                };
                let var = rest[2..close].to_lowercase();
                rest = &rest[close + 2..];
                let Some((_, v)) = opts.iter().find(|(k, _)| *k == var) else {
                    return Err(format!(
                        "Bad value substitution: option '{option}' in section '{section}' contains an interpolation key '{var}' which is not a valid option name. Raw value: '{value}'"
                    ));
                };
                if v.contains('%') {
                    acc.push_str(&interpolate(v, opts, section, &var, depth + 1)?);
                } else {
                    acc.push_str(v);
                }
            }
            _ => return Err(format!("'%' must be followed by '%' or '(', found: '{rest}'")),
        }
    }
    acc.push_str(rest);
    Ok(acc)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn ini_as_python_configparser() {
        let v = parse_ini("[general]\nBar=loaded\n# c\n[x]\nk : v\n  more\n")
            .unwrap()
            .unwrap();
        assert_eq!(
            Value::Object(v),
            json!({"general": {"bar": "loaded"}, "x": {"k": "v\nmore"}})
        );
        let v = parse_ini("[DEFAULT]\nroot=/r\n[s]\np=%(root)s/x 100%%\n")
            .unwrap()
            .unwrap();
        assert_eq!(Value::Object(v), json!({"s": {"p": "/r/x 100%", "root": "/r"}}));
        let e = parse_ini("[bad fact]\nvalue = this is a % bad % fact\n")
            .unwrap()
            .unwrap_err();
        assert_eq!(e, "'%' must be followed by '%' or '(', found: '% bad % fact'");
        assert!(parse_ini("wontbeseen=ever\n").is_err(), "no section header");
        assert!(parse_ini("[a]\nnodelimiter\n").is_err());
        assert!(parse_ini("[a]\nk=1\nk=2\n").is_err(), "duplicate option");
        assert_eq!(parse_ini("").unwrap().unwrap(), Map::new());
    }

    #[test]
    fn records_become_facts_or_messages() {
        assert!(parse_records(b"Q\0/d/x.fact\0E\x000\0").is_none());
        assert!(parse_records(b"F\0/d/a.fact\x001\0x").is_none(), "no end record");
        let data = b"F\0/d/a.fact\x008\0[s]\nk=v\nX\0/d/b.fact\x000\x0014\x000\0{\"ran\": true}\nX\0/d/c.fact\x001\x000\x003\0errS\0/d/dead.fact\x002\0noE\x000\0@@platform";
        let (recs, rc, used) = parse_records(data).unwrap();
        assert_eq!((rc, &data[used..]), (0, &b"@@platform"[..]));
        let facts: Vec<Value> = recs.into_iter().map(Record::fact).collect();
        assert_eq!(facts[0], json!({"s": {"k": "v"}}));
        assert_eq!(facts[1], json!({"ran": true}));
        assert_eq!(
            facts[2],
            json!("Failure executing fact script (/d/c.fact), rc: 1, err: err")
        );
        assert_eq!(facts[3], json!("Could not stat fact (/d/dead.fact): no"));
    }
}
