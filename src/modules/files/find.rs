//! `find`: return a list of files matching criteria. Never changes anything.

use async_trait::async_trait;
use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::pyre::{self, Regex, Subject};
use crate::connection::sh_quote;
use crate::modules::args::{choice, de_string_list};
use crate::modules::host::digest::sha1_hex;
use crate::modules::{
    parse_params, Module, ModuleCtx, ModuleDoc, ModuleError, ModuleOutcome, OptKind, OptionDoc, Plan, ReturnDoc,
};

const OPTIONS: &[OptionDoc] = &[
    OptionDoc::new("paths", OptKind::List, "Directories to search.")
        .required()
        .aliases(&["name", "path"]),
    OptionDoc::new(
        "patterns",
        OptKind::List,
        "Patterns the file's base name must match: shell globs, or Python regular expressions with \
`use_regex`. One match is enough.",
    )
    .aliases(&["pattern"]),
    OptionDoc::new(
        "excludes",
        OptKind::List,
        "Patterns of base names to leave out (globs, or regular expressions with `use_regex`).",
    )
    .aliases(&["exclude"]),
    OptionDoc::new(
        "contains",
        OptKind::Str,
        "A regular expression a line of the file must match (from its start); files only.",
    ),
    OptionDoc::new(
        "read_whole_file",
        OptKind::Bool,
        "Search `contains` anywhere in the whole file instead of line by line.",
    )
    .default("no"),
    OptionDoc::new("file_type", OptKind::Str, "Type of object to select.")
        .default("file")
        .choices(&["any", "directory", "file", "link"]),
    OptionDoc::new("recurse", OptKind::Bool, "Descend into subdirectories.").default("no"),
    OptionDoc::new(
        "depth",
        OptKind::Int,
        "With `recurse`, the deepest level to select (1 = the directories' direct children).",
    ),
    OptionDoc::new("hidden", OptKind::Bool, "Include names starting with a dot.").default("no"),
    OptionDoc::new(
        "age",
        OptKind::Str,
        "Select files at least this old, or with a leading `-` at most this old: a number with an \
optional unit s, m, h, d or w (`2d`, `-1w`).",
    ),
    OptionDoc::new("age_stamp", OptKind::Str, "Which timestamp `age` looks at.")
        .default("mtime")
        .choices(&["atime", "ctime", "mtime"]),
    OptionDoc::new(
        "size",
        OptKind::Str,
        "Select files at least this big, or with a leading `-` at most this big: a number with an \
optional unit b, k, m, g or t (`10m`, `-1k`).",
    ),
    OptionDoc::new("follow", OptKind::Bool, "Follow symbolic links to directories.").default("no"),
    OptionDoc::new(
        "get_checksum",
        OptKind::Bool,
        "Return the SHA-1 checksum of each matched regular file.",
    )
    .default("no"),
    OptionDoc::new(
        "use_regex",
        OptKind::Bool,
        "`patterns` and `excludes` are Python regular expressions matched at the start of the name.",
    )
    .default("no"),
];

static DOC: ModuleDoc = ModuleDoc {
    name: "find",
    aliases: &[],
    short: "Return a list of files based on specific criteria",
    description: "Walks the given directories on the host with one `find` command and selects entries by \
name pattern, type, age, size and content. Never reports a change; runs in check mode too.",
    free_form: false,
    options: OPTIONS,
    examples: "- find:\n    paths: /tmp\n    age: 2d\n    recurse: yes\n\n\
- find:\n    paths: /var/log\n    patterns: '*.old,*.log.gz'\n    size: 10m\n  register: old_logs\n",
    returns: &[
        ReturnDoc {
            name: "files",
            description: "the matched entries: path, mode, size, mtime, atime, ctime, isdir, isreg, islnk, uid, gid, pw_name, gr_name, ... (checksum with get_checksum)",
        },
        ReturnDoc {
            name: "matched",
            description: "number of matched entries",
        },
        ReturnDoc {
            name: "examined",
            description: "number of entries looked at",
        },
        ReturnDoc {
            name: "skipped_paths",
            description: "paths that could not be searched, with the reason",
        },
    ],
    controller_only: false,
};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Params {
    #[serde(deserialize_with = "de_string_list")]
    paths: Vec<String>,
    #[serde(default, deserialize_with = "de_string_list")]
    patterns: Vec<String>,
    #[serde(default, deserialize_with = "de_string_list")]
    excludes: Vec<String>,
    #[serde(default)]
    contains: Option<String>,
    #[serde(default)]
    read_whole_file: bool,
    #[serde(default)]
    file_type: Option<String>,
    #[serde(default)]
    recurse: bool,
    #[serde(default)]
    depth: Option<i64>,
    #[serde(default)]
    hidden: bool,
    #[serde(default)]
    age: Option<String>,
    #[serde(default)]
    age_stamp: Option<String>,
    #[serde(default)]
    size: Option<String>,
    #[serde(default)]
    follow: bool,
    #[serde(default)]
    get_checksum: bool,
    #[serde(default)]
    use_regex: bool,
}

pub(crate) struct Find;

/// `2d`, `-1w`, `30` (seconds) → seconds, like Ansible.
fn parse_age(s: &str) -> Option<i64> {
    parse_with_units(s, &[('s', 1), ('m', 60), ('h', 3600), ('d', 86400), ('w', 604800)])
}

/// find's `size`: `10m`, `-1k`, `100` (bytes) → bytes, signed, like Ansible.
fn size_arg(s: &str) -> Option<i64> {
    parse_with_units(
        s,
        &[('b', 1), ('k', 1 << 10), ('m', 1 << 20), ('g', 1 << 30), ('t', 1 << 40)],
    )
}

fn parse_with_units(s: &str, units: &[(char, i64)]) -> Option<i64> {
    let s = s.trim().to_ascii_lowercase();
    let (num, mult) = match s.chars().last() {
        Some(c) if c.is_ascii_alphabetic() => (&s[..s.len() - 1], units.iter().find(|u| u.0 == c)?.1),
        _ => (s.as_str(), 1),
    };
    let digits = num.strip_prefix('-').unwrap_or(num);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    num.parse::<i64>().ok()?.checked_mul(mult)
}

/// Name filters: globs or (anchored) regular expressions.
enum NameMatcher {
    Glob(Vec<glob::Pattern>),
    Regex(Vec<Regex>),
}

impl NameMatcher {
    fn new(pats: &[String], use_regex: bool, what: &'static str) -> Result<NameMatcher, ModuleError> {
        if use_regex {
            pats.iter()
                .map(|p| pyre::compile(what, &format!("^(?:{p})"), Subject::Text, false, false))
                .collect::<Result<_, _>>()
                .map(NameMatcher::Regex)
        } else {
            pats.iter()
                .map(|p| {
                    glob::Pattern::new(p)
                        .map_err(|e| ModuleError::Args(format!("find: invalid pattern in `{what}` ({p}): {e}")))
                })
                .collect::<Result<_, _>>()
                .map(NameMatcher::Glob)
        }
    }

    fn any(&self, name: &str) -> Result<bool, ModuleError> {
        match self {
            NameMatcher::Glob(g) => Ok(g.iter().any(|p| p.matches(name))),
            NameMatcher::Regex(r) => {
                for re in r {
                    if re.is_match(name.as_bytes())? {
                        return Ok(true);
                    }
                }
                Ok(false)
            }
        }
    }
}

/// One entry as printed by the remote `find -printf`.
struct Entry {
    path: String,
    kind: char,
    mode: u32,
    uid: u64,
    gid: u64,
    user: String,
    group: String,
    size: i64,
    inode: u64,
    dev: u64,
    nlink: u64,
    atime: f64,
    mtime: f64,
    ctime: f64,
    depth: i64,
}

const FIELDS: usize = 15;
const PRINTF: &str = "E\\0%p\\0%y\\0%m\\0%U\\0%G\\0%u\\0%g\\0%s\\0%i\\0%D\\0%n\\0%A@\\0%T@\\0%C@\\0%d\\0";

/// Python's `os.path.normpath` for absolute and relative paths.
fn normpath(p: &str) -> String {
    let abs = p.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for c in p.split('/') {
        match c {
            "" | "." => {}
            ".." if parts.last().is_some_and(|l| *l != "..") => {
                parts.pop();
            }
            ".." if abs => {}
            c => parts.push(c),
        }
    }
    let joined = parts.join("/");
    match (abs, joined.is_empty()) {
        (true, _) => format!("/{joined}"),
        (false, true) => ".".into(),
        (false, false) => joined,
    }
}

/// A path for the shell, with a leading `~` expanded by it.
fn shell_path(p: &str) -> String {
    if p == "~" {
        "\"$HOME\"".into()
    } else if let Some(rest) = p.strip_prefix("~/") {
        format!("\"$HOME\"/{}", sh_quote(rest))
    } else {
        sh_quote(p)
    }
}

impl Entry {
    fn to_json(&self, checksum: Option<String>) -> Value {
        let m = self.mode;
        let mut v = json!({
            "path": normpath(&self.path),
            "mode": format!("{:04o}", m & 0o7777),
            "isdir": self.kind == 'd',
            "ischr": self.kind == 'c',
            "isblk": self.kind == 'b',
            "isreg": self.kind == 'f',
            "isfifo": self.kind == 'p',
            "islnk": self.kind == 'l',
            "issock": self.kind == 's',
            "uid": self.uid,
            "gid": self.gid,
            "size": self.size,
            "inode": self.inode,
            "dev": self.dev,
            "nlink": self.nlink,
            "atime": self.atime,
            "mtime": self.mtime,
            "ctime": self.ctime,
            "gr_name": self.group,
            "pw_name": self.user,
            "wusr": m & 0o200 != 0,
            "rusr": m & 0o400 != 0,
            "xusr": m & 0o100 != 0,
            "wgrp": m & 0o020 != 0,
            "rgrp": m & 0o040 != 0,
            "xgrp": m & 0o010 != 0,
            "woth": m & 0o002 != 0,
            "roth": m & 0o004 != 0,
            "xoth": m & 0o001 != 0,
            "isuid": m & 0o4000 != 0,
            "isgid": m & 0o2000 != 0,
        });
        if let (Some(c), Some(o)) = (checksum, v.as_object_mut()) {
            o.insert("checksum".into(), Value::String(c));
        }
        v
    }
}

/// Per searched path: its entries, or why it could not be searched.
type Walked = Vec<(String, Result<Vec<Entry>, String>)>;

/// Parse the NUL-separated walk output: (now, per path: Ok(entries) or Err(reason)).
fn parse_walk(out: &[u8]) -> Result<(f64, Walked), ModuleError> {
    let bad = |what: &str| ModuleError::Failed(format!("find: unexpected output from the host ({what})"));
    let fields: Vec<String> = out
        .split(|&b| b == 0)
        .map(|f| String::from_utf8_lossy(f).into_owned())
        .collect();
    let mut it = fields.into_iter().peekable();
    if it.next().as_deref() != Some("T") {
        return Err(bad("no time"));
    }
    let now: f64 = it
        .next()
        .and_then(|t| t.trim().parse().ok())
        .ok_or_else(|| bad("time"))?;
    let mut result: Walked = Vec::new();
    while let Some(tag) = it.next() {
        match tag.as_str() {
            "P" => {
                let p = it.next().ok_or_else(|| bad("path"))?;
                result.push((p, Ok(Vec::new())));
            }
            "N" => {
                if let Some(last) = result.last_mut() {
                    last.1 = Err(format!("'{}' is not a directory", last.0));
                }
            }
            "E" => {
                let f: Vec<String> = it.by_ref().take(FIELDS).collect();
                if f.len() != FIELDS {
                    return Err(bad("short entry"));
                }
                let num = |i: usize| f[i].parse::<u64>().unwrap_or(0);
                let float = |i: usize| f[i].parse::<f64>().unwrap_or(0.0);
                let e = Entry {
                    path: f[0].clone(),
                    kind: f[1].chars().next().unwrap_or('U'),
                    mode: u32::from_str_radix(&f[2], 8).unwrap_or(0),
                    uid: num(3),
                    gid: num(4),
                    user: f[5].clone(),
                    group: f[6].clone(),
                    size: f[7].parse().unwrap_or(0),
                    inode: num(8),
                    dev: num(9),
                    nlink: num(10),
                    atime: float(11),
                    mtime: float(12),
                    ctime: float(13),
                    depth: f[14].parse().unwrap_or(0),
                };
                if let Some((_, Ok(v))) = result.last_mut() {
                    v.push(e);
                }
            }
            "" if it.peek().is_none() => break,
            _ => return Err(bad("unknown record")),
        }
    }
    Ok((now, result))
}

#[async_trait]
impl Module for Find {
    fn doc(&self) -> &'static ModuleDoc {
        &DOC
    }

    async fn query(&self, ctx: &ModuleCtx<'_>, args: Map<String, Value>) -> Result<Plan, ModuleError> {
        let p: Params = parse_params(&DOC, args)?;
        if p.paths.is_empty() {
            return Err(ModuleError::Args("find: missing required argument: paths".into()));
        }
        let file_type = choice(
            "find",
            "file_type",
            p.file_type.as_deref().unwrap_or("file"),
            &["any", "directory", "file", "link"],
        )?
        .to_string();
        let age_stamp = choice(
            "find",
            "age_stamp",
            p.age_stamp.as_deref().unwrap_or("mtime"),
            &["atime", "ctime", "mtime"],
        )?
        .to_string();
        let age = p
            .age
            .as_deref()
            .map(|a| parse_age(a).ok_or_else(|| ModuleError::Args(format!("failed to process age: {a}"))))
            .transpose()?;
        let size = p
            .size
            .as_deref()
            .map(|s| size_arg(s).ok_or_else(|| ModuleError::Args(format!("failed to process size: {s}"))))
            .transpose()?;
        let patterns = if p.patterns.is_empty() {
            vec![if p.use_regex { ".*".to_string() } else { "*".to_string() }]
        } else {
            p.patterns.clone()
        };
        let pats = NameMatcher::new(&patterns, p.use_regex, "patterns")?;
        let excl = NameMatcher::new(&p.excludes, p.use_regex, "excludes")?;
        let contains = p
            .contains
            .as_deref()
            .map(|c| pyre::compile("contains", c, Subject::Text, false, false))
            .transpose()?;
        let depth = p.depth.filter(|d| *d != 0);

        // One command walks every path.
        let maxdepth = if !p.recurse {
            Some(1)
        } else {
            depth.map(|d| d.max(0) + 1)
        };
        let mut script = String::from("printf 'T\\0%s\\0' \"$(date +%s)\"; ");
        for path in &p.paths {
            script.push_str(&format!(
                "p={}; printf 'P\\0%s\\0' \"$p\"; if [ -d \"$p\" ]; then find {}\"$p\" -mindepth 1 {}-printf '{PRINTF}'; \
                 else printf 'N\\0'; fi; ",
                shell_path(path),
                if p.follow { "-L " } else { "" },
                maxdepth.map(|d| format!("-maxdepth {d} ")).unwrap_or_default(),
            ));
        }
        let out = ctx.run(&script).await?;
        let (now, walked) = parse_walk(&out.stdout)?;
        let mut skipped = Map::new();
        for line in out.stderr_str().lines() {
            // GNU find: "find: 'PATH': Permission denied"
            if let Some(rest) = line.strip_prefix("find: ") {
                let (what, why) = rest.rsplit_once(": ").unwrap_or((rest, "error"));
                let what = what.trim_matches(|c| c == '\'' || c == '‘' || c == '’');
                skipped.insert(what.to_string(), Value::String(why.to_string()));
            }
        }

        let mut examined = 0usize;
        let mut candidates: Vec<&Entry> = Vec::new();
        for (path, entries) in &walked {
            let entries = match entries {
                Ok(e) => e,
                Err(why) => {
                    skipped.insert(path.clone(), Value::String(why.clone()));
                    continue;
                }
            };
            examined += entries.len();
            for e in entries {
                if depth.is_some_and(|d| e.depth > d) {
                    continue;
                }
                let name = e.path.rsplit('/').next().unwrap_or(&e.path);
                if name.starts_with('.') && !p.hidden {
                    continue;
                }
                if !pats.any(name)? || excl.any(name)? {
                    continue;
                }
                let stamp = match age_stamp.as_str() {
                    "atime" => e.atime,
                    "ctime" => e.ctime,
                    _ => e.mtime,
                };
                let age_ok = match age {
                    None => true,
                    Some(a) if a >= 0 => now - stamp >= a as f64,
                    Some(a) => now - stamp <= a.unsigned_abs() as f64,
                };
                if !age_ok {
                    continue;
                }
                let size_ok = match size {
                    None => true,
                    Some(s) if s >= 0 => e.size >= s,
                    Some(s) => e.size <= s.abs(),
                };
                let selected = match file_type.as_str() {
                    "any" => e.kind != 'f' || size_ok,
                    "directory" => e.kind == 'd',
                    "link" => e.kind == 'l',
                    _ => e.kind == 'f' && size_ok,
                };
                if selected {
                    candidates.push(e);
                }
            }
        }

        // Content and checksums need the files themselves: one more round trip.
        let need_content = contains.is_some() && file_type == "file";
        let regular: Vec<&Entry> = candidates.iter().copied().filter(|e| e.kind == 'f').collect();
        let mut extra: std::collections::HashMap<String, (bool, Option<String>)> = Default::default();
        if (need_content || p.get_checksum) && !regular.is_empty() {
            let files = regular.iter().map(|e| sh_quote(&e.path)).collect::<Vec<_>>().join(" ");
            let per_file = if need_content {
                "printf '%s\\0' \"$(wc -c < \"$f\" 2>/dev/null || echo -1)\"; cat -- \"$f\" 2>/dev/null"
            } else {
                "printf '%s\\0' \"$(sha1sum < \"$f\" 2>/dev/null | cut -c1-40)\""
            };
            let out = ctx.run(&format!("for f in {files}; do {per_file}; done")).await?;
            let mut rest: &[u8] = &out.stdout;
            for e in &regular {
                let Some(pos) = rest.iter().position(|&b| b == 0) else {
                    break;
                };
                let head = String::from_utf8_lossy(&rest[..pos]).trim().to_string();
                rest = &rest[pos + 1..];
                if need_content {
                    let n: i64 = head.parse().unwrap_or(-1);
                    let n = usize::try_from(n).unwrap_or(0).min(rest.len());
                    let data = &rest[..n];
                    rest = &rest[n..];
                    let found = match &contains {
                        Some(re) => content_matches(re, data, p.read_whole_file)?,
                        None => false,
                    };
                    let sum = p.get_checksum.then(|| sha1_hex(data));
                    extra.insert(e.path.clone(), (found, sum));
                } else {
                    extra.insert(e.path.clone(), (true, (!head.is_empty()).then_some(head)));
                }
            }
        }
        let mut files = Vec::new();
        for e in candidates {
            let (found, sum) = extra.get(&e.path).cloned().unwrap_or((!need_content, None));
            if need_content && !found {
                continue;
            }
            files.push(e.to_json(if p.get_checksum { sum } else { None }));
        }
        let mut out = ModuleOutcome::changed(false)
            .with("matched", files.len())
            .with("examined", examined)
            .with("files", files)
            .with("skipped_paths", Value::Object(skipped.clone()));
        if !skipped.is_empty() {
            out = out.with_msg("Not all paths examined, check warnings for details");
        }
        Ok(Plan::Done(out))
    }
}

/// Ansible's `contentfilter`: a line must match from its start (or the
/// whole file is searched); text that is not UTF-8 never matches.
fn content_matches(re: &Regex, data: &[u8], whole: bool) -> Result<bool, ModuleError> {
    if std::str::from_utf8(data).is_err() {
        return Ok(false);
    }
    if whole {
        return re.is_match(data);
    }
    for line in data.split_inclusive(|&b| b == b'\n') {
        let text = line.strip_suffix(b"\n").unwrap_or(line);
        // Leftmost-first: a match starting at 0, if any, is the one found.
        if re.find(text)?.is_some_and(|(start, _)| start == 0) {
            return Ok(true);
        }
    }
    Ok(false)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::modules::host::file_state::testutil::Harness;

    #[test]
    fn units_and_paths() {
        assert_eq!(parse_age("2d"), Some(172800));
        assert_eq!(parse_age("-1w"), Some(-604800));
        assert_eq!(parse_age("30"), Some(30));
        assert_eq!(parse_age("1y"), None);
        assert_eq!(size_arg("10m"), Some(10 << 20));
        assert_eq!(size_arg("-1k"), Some(-1024));
        assert_eq!(size_arg("k"), None);
        assert_eq!(normpath("/tmp//a/./b/"), "/tmp/a/b");
        assert_eq!(normpath("a/../b"), "b");
    }

    fn paths(o: &ModuleOutcome) -> Vec<String> {
        let mut v: Vec<String> = o.ret["files"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["path"].as_str().unwrap().rsplit('/').next().unwrap().to_string())
            .collect();
        v.sort();
        v
    }

    #[tokio::test]
    async fn finds_like_ansible() {
        let h = Harness::new();
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::write(d.join("a.log"), "x".repeat(2048)).unwrap();
        std::fs::write(d.join("b.txt"), "hello\nport = 22\n").unwrap();
        std::fs::write(d.join(".hidden.log"), "").unwrap();
        std::fs::create_dir_all(d.join("sub/deeper")).unwrap();
        std::fs::write(d.join("sub/c.log"), "c").unwrap();
        std::fs::write(d.join("sub/deeper/d.log"), "d").unwrap();
        std::os::unix::fs::symlink(d.join("b.txt"), d.join("link.txt")).unwrap();
        let ds = d.to_str().unwrap();

        let o = h.run(&Find, false, json!({"paths": ds})).await.unwrap();
        assert!(!o.changed);
        assert_eq!(paths(&o), vec!["a.log", "b.txt"]);
        assert_eq!(o.ret["examined"], 5);
        let o = h
            .run(
                &Find,
                true,
                json!({"paths": ds, "patterns": "*.log", "recurse": true, "hidden": true}),
            )
            .await
            .unwrap();
        assert_eq!(paths(&o), vec![".hidden.log", "a.log", "c.log", "d.log"]);
        let o = h
            .run(
                &Find,
                false,
                json!({"paths": [ds], "patterns": ["*.log"], "recurse": true, "depth": 2}),
            )
            .await
            .unwrap();
        assert_eq!(paths(&o), vec!["a.log", "c.log"]);
        let o = h
            .run(
                &Find,
                false,
                json!({"paths": ds, "patterns": ["^[ab]\\."], "use_regex": true, "excludes": "b.*"}),
            )
            .await
            .unwrap();
        assert_eq!(paths(&o), vec!["a.log"]);
        let o = h.run(&Find, false, json!({"paths": ds, "size": "1k"})).await.unwrap();
        assert_eq!(paths(&o), vec!["a.log"]);
        let o = h.run(&Find, false, json!({"paths": ds, "size": "-1k"})).await.unwrap();
        assert_eq!(paths(&o), vec!["b.txt"]);
        let o = h.run(&Find, false, json!({"paths": ds, "age": "1d"})).await.unwrap();
        assert_eq!(o.ret["matched"], 0);
        let o = h.run(&Find, false, json!({"paths": ds, "age": "-1d"})).await.unwrap();
        assert_eq!(o.ret["matched"], 2);
        let o = h
            .run(
                &Find,
                false,
                json!({"paths": ds, "contains": "port", "get_checksum": true}),
            )
            .await
            .unwrap();
        assert_eq!(paths(&o), vec!["b.txt"]);
        assert_eq!(o.ret["files"][0]["checksum"], sha1_hex(b"hello\nport = 22\n"));
        let o = h
            .run(&Find, false, json!({"paths": ds, "contains": "ort"}))
            .await
            .unwrap();
        assert_eq!(o.ret["matched"], 0, "contains matches from the line start");
        let o = h
            .run(&Find, false, json!({"paths": ds, "file_type": "directory"}))
            .await
            .unwrap();
        assert_eq!(paths(&o), vec!["sub"]);
        assert_eq!(o.ret["files"][0]["isdir"], true);
        let o = h
            .run(&Find, false, json!({"paths": ds, "file_type": "link"}))
            .await
            .unwrap();
        assert_eq!(paths(&o), vec!["link.txt"]);
        let o = h
            .run(&Find, false, json!({"paths": ds, "get_checksum": true}))
            .await
            .unwrap();
        let a = o.ret["files"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["size"] == 2048)
            .unwrap();
        assert_eq!(a["checksum"], sha1_hex("x".repeat(2048).as_bytes()));
        assert_eq!(a["mode"].as_str().unwrap().len(), 4);
        // A path that is not a directory is skipped, not fatal.
        let missing = format!("{ds}/nope");
        let o = h
            .run(&Find, false, json!({"paths": [missing.clone(), ds]}))
            .await
            .unwrap();
        assert!(o.ret["skipped_paths"].get(&missing).is_some());
        assert_eq!(o.ret["matched"], 2);

        for bad in [
            json!({"paths": ds, "age": "2y"}),
            json!({"paths": ds, "size": "big"}),
            json!({"paths": ds, "file_type": "socket"}),
            json!({"paths": ds, "patterns": "(", "use_regex": true}),
            json!({"paths": ds, "recursive": true}),
            json!({"patterns": "*"}),
        ] {
            let r = h.run(&Find, false, bad.clone()).await;
            assert!(matches!(r, Err(ModuleError::Args(_))), "{bad}");
        }
    }
}
