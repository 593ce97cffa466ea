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

use super::remote::STAT_FMT;
use crate::connection::{sh_quote, Memo};
use crate::modules::ModuleCtx;

/// Prefix of every prefetch key in a connection's [`Memo`].
pub const PREFIX: &str = "pf|";

/// One path a task will query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Need {
    pub path: String,
    /// `stat -L` (follow links) rather than `stat`.
    pub follow: bool,
    /// Its sha1 checksum too (regular files).
    pub sum: bool,
}

fn str_arg<'a>(args: &'a Map<String, Value>, names: &[&str]) -> Option<&'a str> {
    names.iter().find_map(|n| args.get(*n).and_then(Value::as_str))
}

fn bool_arg(args: &Map<String, Value>, name: &str, default: bool) -> bool {
    match args.get(name) {
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) => matches!(s.to_ascii_lowercase().as_str(), "yes" | "true" | "on" | "1"),
        _ => default,
    }
}

/// The paths a task of `module` with these rendered arguments will query,
/// as its module's own query script would (empty when unknown).
pub fn needs(module: &str, args: &Map<String, Value>) -> Vec<Need> {
    let module = module.strip_prefix("ansible.builtin.").unwrap_or(module);
    let need = |path: &str, follow: bool, sum: bool| Need {
        path: path.to_string(),
        follow,
        sum,
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
            // copy of a local file into a directory dest: dest/basename.
            if module == "copy" && !bool_arg(args, "remote_src", false) {
                if let Some(src) = str_arg(args, &["src"]).filter(|s| !s.ends_with('/')) {
                    let inside = format!("{}/{}", dest.trim_end_matches('/'), super::remote::basename(src));
                    out.push(need(&inside, follow, true));
                }
            }
        }
        "lineinfile" | "blockinfile" | "replace" => {
            if let Some(p) = str_arg(args, &["path", "dest", "destfile", "name"]) {
                out.push(need(p, true, false));
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
        "[ -e \"$p\" ]",
        "[ ! -e \"$p\" ]",
        &format!("stat -L -c '{STAT_FMT}'"),
    ));
    s.push_str(&group(
        "C",
        &list(&|n| n.sum),
        "[ -f \"$p\" ] && [ -r \"$p\" ]",
        "false",
        "sha1sum",
    ));
    s.push_str("true\n");
    s
}

/// Parse [`batch_script`]'s answer into the memo; returns how many answers
/// were kept. A group whose output does not line up with its list is
/// dropped whole.
pub fn store(memo: &Memo, become_user: Option<&str>, needs: &[Need], out: &str) -> usize {
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

/// The prefetched state of `path` for this task, if any: only in check mode,
/// and with a checksum when `want_sum` (for a regular file).
pub fn cached(ctx: &ModuleCtx<'_>, path: &str, follow: bool, want_sum: bool) -> Option<Cached> {
    if !ctx.check_mode {
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
        }
    }

    #[test]
    fn needs_follow_each_modules_query() {
        assert_eq!(
            needs("copy", &obj(json!({"src": "files/a.conf", "dest": "/etc/app/"}))),
            vec![need("/etc/app/", false, true), need("/etc/app/a.conf", false, true)]
        );
        assert_eq!(
            needs(
                "ansible.builtin.lineinfile",
                &obj(json!({"path": "/etc/x", "line": "a"}))
            ),
            vec![need("/etc/x", true, false)]
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
        let list = vec![
            need(&p("a file"), false, true),
            need(&p("missing"), false, true),
            need(&p("link"), false, false),
            need(&p("d"), false, false),
            need(&p("it's"), true, true),
            need(&p("link"), true, false),
            need(&p("missing/deeper"), true, false),
        ];
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(batch_script(&list))
            .output()
            .unwrap();
        let out = String::from_utf8_lossy(&out.stdout).into_owned();
        let memo = Memo::default();
        let stored = store(&memo, None, &list, &out);
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
            get(stat_key(None, true, &p("link"))).unwrap(),
            single(&["stat", "-L", &fmt, &p("link")])
        );
        assert_eq!(get(stat_key(None, true, &p("missing/deeper"))).unwrap(), "ABSENT");
        assert_eq!(stored, 8);
        // A group whose answers do not line up is dropped whole.
        let memo = Memo::default();
        store(&memo, None, &list, &out.replace("@N.\n", "@N.\nextra line\n"));
        assert_eq!(memo.get(&stat_key(None, false, &p("d"))), None);
        assert!(memo.get(&stat_key(None, true, &p("it's"))).is_some());
    }
}
