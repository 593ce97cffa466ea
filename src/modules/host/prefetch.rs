//! Check-mode prefetch of file state.
//!
//! In check mode nothing changes on the hosts, so the state the next tasks
//! will query is the state now. Before a run of tasks, the runner asks each
//! host once for the state of every path those tasks name ([`needs`]): one
//! `stat` for all of them, one `stat -L`, one `sha1sum` — three programs
//! instead of two or three per task. The answers go into the connection's
//! [`Memo`] under `pf|` keys; a module's query then takes a path's stat line
//! and checksum from there instead of running `stat`/`sha1sum` itself
//! ([`cached`]), and only in check mode. The runner drops the entries of
//! every host whenever a task runs outside check mode (`check_mode: false`),
//! as that task may change what they say.
//!
//! Only plain cases are cached: a path that is a symbolic link (for the
//! `stat` without `-L`) or whose group of answers did not come back whole is
//! left to the module's own query.

use serde_json::{Map, Value};

use super::paths::STAT_FMT;
use crate::connection::{sh_quote, Memo};
use crate::modules::ModuleCtx;

/// Prefix of every prefetch key in a connection's [`Memo`].
pub const PREFIX: &str = "pf|";

/// One path a task will query.
pub type Need = crate::modules::PathQuery;

fn str_arg<'a>(args: &'a Map<String, Value>, names: &[&str]) -> Option<&'a str> {
    names.iter().find_map(|n| args.get(*n).and_then(Value::as_str))
}

/// A boolean argument, read as the module reads it.
fn bool_arg(args: &Map<String, Value>, name: &str, default: bool) -> bool {
    args.get(name)
        .and_then(crate::modules::values::value_bool)
        .unwrap_or(default)
}

/// The paths a task of `module` (one of the file modules, which answer
/// [`crate::modules::Module::query_hints`] with this) with these rendered
/// arguments will query, as its own query script would.
pub fn needs(module: &str, args: &Map<String, Value>) -> Vec<Need> {
    let module = module.strip_prefix("ansible.builtin.").unwrap_or(module);
    let need = |path: &str, follow: bool, sum: bool| Need {
        path: path.to_string(),
        follow,
        sum,
        content: false,
    };
    let mut out = Vec::new();
    match module {
        "file" => {
            if let Some(p) = str_arg(args, &["path", "dest", "name"]) {
                out.push(need(p, false, false));
            }
        }
        "copy" | "template" => {
            let Some(dest) = str_arg(args, &["dest"]) else {
                return out;
            };
            let follow = bool_arg(args, "follow", false);
            out.push(need(dest, follow, true));
            // Its parent (`[ -d parent ]` follows links).
            out.push(need(&super::paths::parent(dest), true, false));
            // copy of a local file into a directory dest: dest/basename.
            if module == "copy" && !bool_arg(args, "remote_src", false) {
                if let Some(src) = str_arg(args, &["src"]).filter(|s| !s.ends_with('/')) {
                    let inside = format!("{}/{}", dest.trim_end_matches('/'), super::paths::basename(src));
                    out.push(need(&inside, follow, true));
                }
            }
        }
        "lineinfile" | "blockinfile" | "replace" => {
            if let Some(p) = str_arg(args, &["path", "dest", "destfile", "name"]) {
                out.push(Need {
                    content: true,
                    ..need(p, true, false)
                });
                out.push(need(&shell_parent(p), true, false));
            }
        }
        "stat" => {
            let sha1 = str_arg(args, &["checksum_algorithm", "checksum", "checksum_algo"]).is_none_or(|a| a == "sha1");
            if let Some(p) = str_arg(args, &["path", "dest", "name"]) {
                out.push(need(
                    p,
                    bool_arg(args, "follow", false),
                    bool_arg(args, "get_checksum", true) && sha1,
                ));
            }
        }
        _ => {}
    }
    out.retain(|n| !n.path.is_empty() && !n.path.contains('\n'));
    out
}

/// The parent directory as the modules' scripts compute it with
/// `${p%/*}` (`/` for a top-level path, `.` without a slash).
pub fn shell_parent(p: &str) -> String {
    match p.rfind('/') {
        Some(0) => "/".into(),
        Some(i) => p[..i].to_string(),
        None => ".".into(),
    }
}

fn content_key(become_user: Option<&str>, path: &str) -> String {
    format!("{PREFIX}{}|T|{path}", become_user.unwrap_or(""))
}

fn stat_key(become_user: Option<&str>, follow: bool, path: &str) -> String {
    let how = if follow { "L" } else { "N" };
    format!("{PREFIX}{}|{how}|{path}", become_user.unwrap_or(""))
}

fn sum_key(become_user: Option<&str>, path: &str) -> String {
    format!("{PREFIX}{}|C|{path}", become_user.unwrap_or(""))
}

/// The script answering `needs` in one go: for each group (`stat`, then
/// `stat -L`, then `sha1sum`) the indexes of the paths it covers (`E|i`
/// present, `A|i` absent), then the program's output for the present ones,
/// one line each, in the same order.
pub fn batch_script(needs: &[Need]) -> String {
    let list = |f: &dyn Fn(&Need) -> bool| -> String {
        needs
            .iter()
            .enumerate()
            .filter(|(_, n)| f(n))
            .map(|(i, n)| format!("{i} {}", sh_quote(&n.path)))
            .collect::<Vec<_>>()
            .join(" ")
    };
    let group = |tag: &str, pairs: &str, present: &str, absent: &str, cmd: &str| -> String {
        if pairs.is_empty() {
            return String::new();
        }
        // The pairs are consumed from the front while the present paths
        // are appended at the back: afterwards "$@" holds only those.
        format!(
            "echo '@{tag}'; set -- {pairs}; n=$#; i=0; \
             while [ $i -lt $n ]; do k=$1; p=$2; shift 2; i=$((i + 2)); \
             if {present}; then echo \"E|$k\"; set -- \"$@\" \"$p\"; elif {absent}; then echo \"A|$k\"; fi; done; \
             echo '@{tag}.'; [ $# -gt 0 ] && {cmd} -- \"$@\" 2>/dev/null; echo '@{tag}$'\n"
        )
    };
    let mut s = String::new();
    s.push_str(&group(
        "N",
        &list(&|n| !n.follow),
        "[ -e \"$p\" ] && [ ! -L \"$p\" ]",
        "[ ! -e \"$p\" ] && [ ! -L \"$p\" ]",
        &format!("stat -c '{STAT_FMT}'"),
    ));
    s.push_str(&group(
        "L",
        &list(&|n| n.follow),
        "[ -e \"$p\" ] && [ ! -L \"$p\" ]",
        "[ ! -e \"$p\" ] && [ ! -L \"$p\" ]",
        &format!("stat -L -c '{STAT_FMT}'"),
    ));
    s.push_str(&group(
        "C",
        &list(&|n| n.sum),
        "[ -f \"$p\" ] && [ -r \"$p\" ]",
        "false",
        "sha1sum",
    ));
    // Contents, last and back to back: each file's `stat` size (before and
    // after) frames it, so a file that changed meanwhile spoils the group.
    let contents = list(&|n| n.content);
    if !contents.is_empty() {
        s.push_str(&group(
            "T",
            &contents,
            "[ -f \"$p\" ] && [ -r \"$p\" ] && [ ! -L \"$p\" ]",
            "false",
            "stat -c %s",
        ));
        s.push_str("[ $# -gt 0 ] && { cat -- \"$@\" 2>/dev/null; echo; echo '@T!'; stat -c %s -- \"$@\" 2>/dev/null; }; echo '@T|'\n");
    }
    s.push_str("true\n");
    s
}

/// Parse [`batch_script`]'s answer into the memo; returns how many answers
/// were kept. A group whose output does not line up with its list is
/// dropped whole.
pub fn store(memo: &Memo, become_user: Option<&str>, needs: &[Need], raw: &[u8]) -> usize {
    let text_end = find(raw, b"@T$\n").map_or(raw.len(), |i| i + 4);
    let out = String::from_utf8_lossy(&raw[..text_end]);
    let out = out.as_ref();
    let mut stored = 0;
    for tag in ["N", "L", "C"] {
        let (Some(a), Some(b), Some(c)) = (
            out.find(&format!("@{tag}\n")),
            out.find(&format!("@{tag}.\n")),
            out.find(&format!("@{tag}$\n")),
        ) else {
            continue;
        };
        if !(a < b && b < c) {
            continue;
        }
        let listed = &out[a + tag.len() + 2..b];
        let answers: Vec<&str> = out[b + tag.len() + 3..c].lines().collect();
        let mut present = Vec::new();
        let mut absent = Vec::new();
        for l in listed.lines() {
            let n = l
                .get(2..)
                .and_then(|i| i.parse::<usize>().ok())
                .and_then(|i| needs.get(i));
            match (l.get(..2), n) {
                (Some("E|"), Some(n)) => present.push(n),
                (Some("A|"), Some(n)) => absent.push(n),
                _ => {}
            }
        }
        if present.len() != answers.len() {
            continue;
        }
        for (n, line) in present.iter().zip(&answers) {
            if tag == "C" {
                // `sha1sum -- path` prints `<sum>  <path>`; the module's `sha1sum < path` prints `<sum>  -`.
                let Some(sum) = line.get(..40).filter(|s| s.bytes().all(|b| b.is_ascii_hexdigit())) else {
                    continue;
                };
                memo.set(&sum_key(become_user, &n.path), format!("{sum}  -"));
            } else {
                if line.split('|').count() != 13 {
                    continue;
                }
                memo.set(&stat_key(become_user, tag == "L", &n.path), line.to_string());
            }
            stored += 1;
        }
        if tag != "C" {
            for n in absent {
                memo.set(&stat_key(become_user, tag == "L", &n.path), "ABSENT".into());
                stored += 1;
            }
        }
    }
    stored + store_contents(memo, become_user, needs, raw)
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// The `T` group: sizes, then the contents back to back, then the sizes
/// again; kept only when both size lists agree and add up (UTF-8 text only:
/// the memo holds strings).
fn store_contents(memo: &Memo, become_user: Option<&str>, needs: &[Need], raw: &[u8]) -> usize {
    let (Some(a), Some(b), Some(c)) = (find(raw, b"@T\n"), find(raw, b"@T.\n"), find(raw, b"@T$\n")) else {
        return 0;
    };
    if !(a < b && b < c) {
        return 0;
    }
    let listed = String::from_utf8_lossy(&raw[a + 3..b]);
    let files: Vec<&Need> = listed
        .lines()
        .filter_map(|l| l.strip_prefix("E|")?.parse::<usize>().ok())
        .filter_map(|i| needs.get(i))
        .collect();
    let sizes =
        |s: &[u8]| -> Option<Vec<usize>> { String::from_utf8_lossy(s).lines().map(|l| l.parse().ok()).collect() };
    let Some(before) = sizes(&raw[b + 4..c]) else { return 0 };
    let data = &raw[c + 4..];
    let total: usize = before.iter().sum();
    if before.len() != files.len() || data.len() < total + 1 || data[total] != b'\n' {
        return 0;
    }
    let Some(after) = data[total + 1..].strip_prefix(b"@T!\n") else {
        return 0;
    };
    let Some(end) = find(after, b"@T|\n") else { return 0 };
    if sizes(&after[..end]).as_ref() != Some(&before) {
        return 0;
    }
    let mut at = 0;
    let mut stored = 0;
    for (n, size) in files.iter().zip(&before) {
        let chunk = &data[at..at + size];
        at += size;
        if let Ok(text) = std::str::from_utf8(chunk) {
            memo.set(&content_key(become_user, &n.path), text.to_string());
            stored += 1;
        }
    }
    stored
}

/// A prefetched answer for one path.
#[derive(Debug, Clone)]
pub struct Cached {
    /// The `stat -c STAT_FMT` line, or `None` when the path is absent.
    pub stat: Option<String>,
    /// `<sum>  -` when asked for and the path is a regular file.
    pub sum: Option<String>,
}

impl Cached {
    pub fn is_dir(&self) -> bool {
        self.stat.as_deref().is_some_and(|s| s.starts_with("directory|"))
    }
    pub fn is_file(&self) -> bool {
        self.stat
            .as_deref()
            .is_some_and(|s| s.starts_with("regular file|") || s.starts_with("regular empty file|"))
    }
}

/// Whether the prefetch may answer this task's queries. A module that can
/// learn a path's state either from a shell snippet (which the prefetch
/// stands in for, see [`super::remote_file::stat_snippet_for`]) or over
/// SFTP asks the snippet when this is true.
pub fn may_answer(ctx: &ModuleCtx<'_>) -> bool {
    // check_mode: the prefetch is infrastructure, not a module: its answers
    // are valid only in check mode, where no task changes the host after
    // the batch read it.
    ctx.check_mode
}

/// The prefetched content of a regular file (check mode only).
pub fn cached_content(ctx: &ModuleCtx<'_>, path: &str) -> Option<String> {
    if !may_answer(ctx) {
        return None;
    }
    ctx.conn
        .memo()?
        .get(&content_key(ctx.become_.map(|b| b.user.as_str()), path))
}

/// The prefetched state of `path` for this task, if any: only in check mode,
/// and with a checksum when `want_sum` (for a regular file).
pub fn cached(ctx: &ModuleCtx<'_>, path: &str, follow: bool, want_sum: bool) -> Option<Cached> {
    if !may_answer(ctx) {
        return None;
    }
    let memo = ctx.conn.memo()?;
    let user = ctx.become_.map(|b| b.user.as_str());
    let stat = memo.get(&stat_key(user, follow, path))?;
    if stat == "ABSENT" {
        return Some(Cached { stat: None, sum: None });
    }
    let is_file = stat.starts_with("regular file|") || stat.starts_with("regular empty file|");
    let sum = if want_sum && is_file {
        Some(memo.get(&sum_key(user, path))?)
    } else {
        None
    };
    Some(Cached { stat: Some(stat), sum })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => unreachable!(),
        }
    }

    fn need(path: &str, follow: bool, sum: bool) -> Need {
        Need {
            path: path.into(),
            follow,
            sum,
            content: false,
        }
    }

    #[test]
    fn needs_follow_each_modules_query() {
        assert_eq!(
            needs("copy", &obj(json!({"src": "files/a.conf", "dest": "/etc/app/"}))),
            vec![
                need("/etc/app/", false, true),
                need("/etc", true, false),
                need("/etc/app/a.conf", false, true)
            ]
        );
        assert_eq!(
            needs(
                "ansible.builtin.lineinfile",
                &obj(json!({"path": "/etc/x", "line": "a"}))
            ),
            vec![
                Need {
                    content: true,
                    ..need("/etc/x", true, false)
                },
                need("/etc", true, false)
            ]
        );
        assert_eq!(
            needs("stat", &obj(json!({"path": "/etc/x", "checksum_algorithm": "sha256"}))),
            vec![need("/etc/x", false, false)]
        );
        assert!(needs("command", &obj(json!({"cmd": "true"}))).is_empty());
    }

    /// The batch script on this machine: present, absent, a link, a
    /// directory, an empty file with a quote in its name; every answer equals
    /// what `stat`/`sha1sum` print for that path alone.
    #[test]
    fn batch_answers_match_single_queries() {
        let dir = tempfile::tempdir().unwrap();
        let p = |n: &str| dir.path().join(n).display().to_string();
        std::fs::write(p("a file"), "hello\n").unwrap();
        std::fs::write(p("it's"), "").unwrap();
        std::fs::create_dir(p("d")).unwrap();
        std::os::unix::fs::symlink(p("a file"), p("link")).unwrap();
        // Read once now: under relatime the first read after a write moves
        // the access time (a stat field), and the batch reads contents; on a
        // loaded machine its read and the single stat below could fall in
        // different seconds.
        for f in ["a file", "it's"] {
            std::fs::read(p(f)).unwrap();
        }
        let list = vec![
            need(&p("a file"), false, true),
            need(&p("missing"), false, true),
            need(&p("link"), false, false),
            need(&p("d"), false, false),
            Need {
                content: true,
                ..need(&p("it's"), true, true)
            },
            Need {
                content: true,
                ..need(&p("a file"), true, false)
            },
            need(&p("link"), true, false),
            need(&p("missing/deeper"), true, false),
        ];
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(batch_script(&list))
            .output()
            .unwrap();
        let raw = out.stdout;
        let out = String::from_utf8_lossy(&raw).into_owned();
        let memo = Memo::default();
        let stored = store(&memo, None, &list, &raw);
        let single = |args: &[&str]| {
            let o = std::process::Command::new(args[0]).args(&args[1..]).output().unwrap();
            String::from_utf8_lossy(&o.stdout).trim_end().to_string()
        };
        let fmt = format!("--format={STAT_FMT}");
        let get = |k: String| memo.get(&k);
        assert_eq!(
            get(stat_key(None, false, &p("a file"))).unwrap(),
            single(&["stat", &fmt, &p("a file")])
        );
        let sum = single(&["sha1sum", &p("a file")]);
        assert_eq!(get(sum_key(None, &p("a file"))).unwrap(), format!("{}  -", &sum[..40]));
        assert_eq!(get(stat_key(None, false, &p("missing"))).unwrap(), "ABSENT");
        assert_eq!(
            get(stat_key(None, false, &p("link"))),
            None,
            "a link is left to the module"
        );
        assert_eq!(
            get(stat_key(None, false, &p("d"))).unwrap(),
            single(&["stat", &fmt, &p("d")])
        );
        assert_eq!(
            get(stat_key(None, true, &p("it's"))).unwrap(),
            single(&["stat", "-L", &fmt, &p("it's")])
        );
        assert!(get(sum_key(None, &p("it's"))).unwrap().starts_with("da39a3ee"));
        assert_eq!(
            get(stat_key(None, true, &p("link"))),
            None,
            "links are always left to the module"
        );
        assert_eq!(get(stat_key(None, true, &p("missing/deeper"))).unwrap(), "ABSENT");
        assert_eq!(get(content_key(None, &p("a file"))).unwrap(), "hello\n");
        assert_eq!(get(content_key(None, &p("it's"))).unwrap(), "");
        assert_eq!(stored, 10);
        // A group whose answers do not line up is dropped whole.
        let memo = Memo::default();
        store(&memo, None, &list, out.replace("@N.\n", "@N.\nextra line\n").as_bytes());
        assert_eq!(memo.get(&stat_key(None, false, &p("d"))), None);
        assert!(memo.get(&stat_key(None, true, &p("it's"))).is_some());
    }

    /// Prefetch (into a cleared `memo`) what a `module` task with `args`
    /// needs on this machine, with the login user, as the runner does on a
    /// host; returns how many answers were kept.
    fn prefetch_here(memo: &Memo, module: &str, args: &Map<String, Value>) -> usize {
        let list = needs(module, args);
        assert!(!list.is_empty(), "{module}");
        let script = format!(
            "{}{}",
            crate::modules::host::remote_file::whoami_snippet(),
            batch_script(&list)
        );
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(&script)
            .output()
            .unwrap();
        memo.clear();
        let kept = store(memo, None, &list, &out.stdout);
        crate::modules::host::remote_file::remember_whoami_in(memo, None, &String::from_utf8_lossy(&out.stdout));
        kept
    }

    /// Every module that uses the prefetch reports exactly the same in check
    /// mode with it as without it (outcome, diff, returns), over files that
    /// are present, absent, different, in a missing directory, or a directory.
    #[tokio::test]
    async fn modules_report_the_same_with_and_without_the_prefetch() {
        use crate::connection::Connection;
        use crate::modules::files::testutil::TestEnv;
        use crate::modules::Module;
        let env = TestEnv::new();
        let p = |n: &str| env.path(n);
        std::fs::create_dir(p("etc")).unwrap();
        std::fs::create_dir(p("templates")).unwrap();
        std::fs::write(p("templates/t.j2"), "hello {{ 1 + 1 }}\n").unwrap();
        std::fs::write(p("etc/same"), "a\n").unwrap();
        std::fs::write(p("etc/other"), "b\n").unwrap();
        std::fs::write(p("etc/conf"), "x=1\ny=2\n").unwrap();
        std::fs::write(p("etc/tpl"), "hello 2\n").unwrap();
        let file = crate::modules::files::file::FileModule;
        let copy = crate::modules::files::copy::CopyModule;
        let template = crate::modules::files::template::TemplateModule;
        let line = crate::modules::registry::lookup("lineinfile").unwrap();
        let block = crate::modules::registry::lookup("blockinfile").unwrap();
        let cases: Vec<(&dyn Module, &str, Value)> = vec![
            (
                &copy,
                "copy",
                json!({"content": "a\n", "dest": p("etc/same"), "mode": "0644"}),
            ),
            (&copy, "copy", json!({"content": "a\n", "dest": p("etc/other")})),
            (&copy, "copy", json!({"content": "a\n", "dest": p("etc/new")})),
            (&copy, "copy", json!({"content": "a\n", "dest": p("nodir/new")})),
            (
                &template,
                "template",
                json!({"src": "t.j2", "dest": p("etc/tpl"), "mode": "0600"}),
            ),
            (&template, "template", json!({"src": "t.j2", "dest": p("etc/tpl2")})),
            (
                &file,
                "file",
                json!({"path": p("etc"), "state": "directory", "mode": "0755"}),
            ),
            (&file, "file", json!({"path": p("etc/sub"), "state": "directory"})),
            (&file, "file", json!({"path": p("etc/same"), "mode": "0600"})),
            (
                &**line,
                "lineinfile",
                json!({"path": p("etc/conf"), "line": "y=3", "regexp": "^y="}),
            ),
            (&**line, "lineinfile", json!({"path": p("etc/conf"), "line": "x=1"})),
            (
                &**line,
                "lineinfile",
                json!({"path": p("etc/none"), "line": "z", "create": true}),
            ),
            (
                &**line,
                "lineinfile",
                json!({"path": p("nodir/none"), "line": "z", "create": true}),
            ),
            (&**block, "blockinfile", json!({"path": p("etc/conf"), "block": "k=v"})),
        ];
        for (m, name, args) in cases {
            let Value::Object(map) = args.clone() else {
                unreachable!()
            };
            let memo = env.conn.memo().unwrap();
            memo.clear();
            let live = env.run(m, args.clone(), true).await;
            // Prefetch as the runner does (with the user), then run again.
            assert!(prefetch_here(memo, name, &map) > 0, "{name} {args}");
            let cached = env.run(m, args.clone(), true).await;
            let show = |r: &Result<crate::modules::ModuleOutcome, crate::modules::ModuleError>| match r {
                Ok(o) => format!(
                    "changed={} failed={} msg={:?} diff={:?} ret={:?}",
                    o.changed, o.failed, o.msg, o.diff, o.ret
                ),
                Err(e) => format!("error: {e}"),
            };
            assert_eq!(show(&cached), show(&live), "{name} {args}");
        }
        // The prefetch is what answered: a planted checksum turns an
        // unchanged copy into a predicted change.
        let memo = env.conn.memo().unwrap();
        let args = json!({"content": "a\n", "dest": p("etc/same"), "mode": "0644"});
        let Value::Object(map) = args.clone() else {
            unreachable!()
        };
        prefetch_here(memo, "copy", &map);
        assert!(!env.run(&copy, args.clone(), true).await.unwrap().changed);
        memo.set(&sum_key(None, &p("etc/same")), format!("{}  -", "0".repeat(40)));
        assert!(env.run(&copy, args, true).await.unwrap().changed);
    }
}
