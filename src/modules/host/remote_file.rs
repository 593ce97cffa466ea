//! Remote state queries and attribute changes shared by the file modules.
//!
//! A query is one shell script whose output is tagged lines (`S|...` for a
//! stat, `C|...` for a checksum, `L|...` for a link target), so a module can
//! learn everything it needs about several paths in one round trip.

pub use super::paths::{basename, parent, STAT_FMT};
use serde_json::{Map, Value};

use crate::connection::sh_quote;
use crate::modules::args::Mode;
use crate::modules::{Diff, ModuleCtx, ModuleError};

/// What kind of file a path is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    File,
    Dir,
    Link,
    Other,
}

impl Kind {
    /// Ansible's name for the state of a path of this kind.
    pub fn state_name(self) -> &'static str {
        match self {
            Kind::File => "file",
            Kind::Dir => "directory",
            Kind::Link => "link",
            Kind::Other => "file",
        }
    }
}

/// A remote `stat`.
#[derive(Debug, Clone)]
pub struct RemoteStat {
    pub kind: Kind,
    /// `%F` text (`regular file`, `directory`, `fifo`, ...).
    pub type_text: String,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub owner: String,
    pub group: String,
    pub size: u64,
    pub mtime: i64,
    pub atime: i64,
    pub ctime: i64,
    pub inode: u64,
    pub dev: u64,
    pub nlink: u64,
    pub link_target: Option<String>,
    pub checksum: Option<String>,
}

impl RemoteStat {
    /// A stat with only its kind, mode and owner known (sizes, times and
    /// inode 0, one link): a path this run creates, or one read over SFTP
    /// before the rest is filled in.
    pub fn owned(kind: Kind, mode: u32, uid: u32, gid: u32, owner: String, group: String) -> RemoteStat {
        RemoteStat {
            kind,
            type_text: String::new(),
            mode,
            uid,
            gid,
            owner,
            group,
            size: 0,
            mtime: 0,
            atime: 0,
            ctime: 0,
            inode: 0,
            dev: 0,
            nlink: 1,
            link_target: None,
            checksum: None,
        }
    }

    /// [`RemoteStat::owned`] by the remote user.
    pub fn new_by(kind: Kind, mode: u32, user: &RemoteUser) -> RemoteStat {
        RemoteStat::owned(kind, mode, user.uid, user.gid, user.user.clone(), user.group.clone())
    }
}

/// Shell snippet printing `S|<stat>` (and `L|<target>` for a link, `C|<sum>`
/// for a regular file when `algo` is given) for `path`, or `S|ABSENT`. Every
/// line is prefixed with `tag` so several paths can share one script. The
/// stat line and the checksum output also stay in the shell variables
/// `rg_<tag>_s` and `rg_<tag>_c` (empty when absent), so a change made later
/// in the same script decides on them without running `stat` or the sum
/// again ([`stat_var`], [`sum_var`]).
pub fn stat_snippet(tag: &str, path: &str, follow: bool, algo: Option<&str>) -> String {
    let p = sh_quote(path);
    let l = if follow { "-L " } else { "" };
    let (sv, cv) = (stat_var(tag), sum_var(tag));
    let mut s = format!(
        "{sv}=; {cv}=; if [ -e {p} ] || [ -L {p} ]; then {sv}=$(stat {l}-c '{STAT_FMT}' -- {p} 2>/dev/null) || {sv}=ERR; \
         printf '%s\\n' \"{tag}S|${sv}\"; \
         [ -L {p} ] && printf '{tag}L|%s\\n' \"$(readlink -- {p})\"; "
    );
    if let Some(a) = algo {
        s.push_str(&format!(
            "[ -f {p} ] && {{ {cv}=$({a}sum < {p} 2>/dev/null); printf '%s\\n' \"{tag}C|${cv}\"; }}; "
        ));
    }
    s.push_str(&format!("else echo '{tag}S|ABSENT'; fi\n"));
    s
}

/// [`stat_snippet`] for a task: in check mode, a path whose state the runner
/// prefetched ([`super::prefetch`]) prints the same lines from the prefetched
/// answer without running `stat` or the checksum program.
pub fn stat_snippet_for(ctx: &ModuleCtx<'_>, tag: &str, path: &str, follow: bool, algo: Option<&str>) -> String {
    let want_sum = algo.is_some();
    if algo.is_none_or(|a| a == "sha1") {
        if let Some(c) = super::prefetch::cached(ctx, path, follow, want_sum) {
            let (sv, cv) = (stat_var(tag), sum_var(tag));
            return match (c.stat, c.sum) {
                // A dangling link is absent to the prefetch but not to the snippet.
                (None, _) => format!(
                    "if [ -L {} ]; then {}else {sv}=; {cv}=; echo '{tag}S|ABSENT'; fi\n",
                    sh_quote(path),
                    stat_snippet(tag, path, follow, algo)
                ),
                (Some(st), sum) => {
                    let mut s = format!("{sv}={}; {cv}=; printf '%s\\n' \"{tag}S|${sv}\"; ", sh_quote(&st));
                    if follow {
                        // As the live snippet: a followed link also reports its target.
                        let p = sh_quote(path);
                        s.push_str(&format!("[ -L {p} ] && printf '{tag}L|%s\\n' \"$(readlink -- {p})\"; "));
                    }
                    if let Some(sum) = sum {
                        s.push_str(&format!("{cv}={}; printf '%s\\n' \"{tag}C|${cv}\"; ", sh_quote(&sum)));
                    }
                    s.push('\n');
                    s
                }
            };
        }
    }
    stat_snippet(tag, path, follow, algo)
}

/// What [`stat_snippet`] would print for `path` (not a link), from the
/// check-mode prefetch alone: the caller can then skip the round trip.
pub fn cached_snippet_output(
    ctx: &ModuleCtx<'_>,
    tag: &str,
    path: &str,
    follow: bool,
    want_sum: bool,
) -> Option<String> {
    let c = super::prefetch::cached(ctx, path, follow, want_sum)?;
    Some(match (c.stat, c.sum) {
        (None, _) => format!("{tag}S|ABSENT\n"),
        (Some(st), sum) => {
            let mut s = format!("{tag}S|{st}\n");
            if let Some(sum) = sum {
                s.push_str(&format!("{tag}C|{sum}\n"));
            }
            s
        }
    })
}

/// The shell variable holding the stat line [`stat_snippet`] printed for `tag`.
pub fn stat_var(tag: &str) -> String {
    format!("rg_{tag}_s")
}

/// The shell variable holding the checksum output (`<sum>  -`) [`stat_snippet`]
/// printed for `tag`.
pub fn sum_var(tag: &str) -> String {
    format!("rg_{tag}_c")
}

/// Shell code setting `m` to the octal mode (`%a`) in the stat line held by
/// the shell variable `var` (builtins only).
pub fn mode_from_stat_var(var: &str) -> String {
    format!("m=${{{var}#*|}}; m=${{m%%|*}}; ")
}

/// Whether a module's query may carry its change in its own round trip
/// (the `file` and `copy` fast paths: one round trip instead of two in a
/// real run): only when the executor will apply the change.
pub fn query_may_apply(ctx: &ModuleCtx<'_>) -> bool {
    // check_mode: the executor alone decides to apply; a query that applies
    // in the same round trip must know that the run applies (never in check
    // mode), or it would change the host where only a report was asked.
    !ctx.check_mode
}

/// The number in a backup file's name (`FILE.NUMBER.DATE~`, where Ansible
/// puts its module's process id): random, as the scripts may share a shell.
pub fn backup_tag() -> u32 {
    rand::random_range(1000..100_000_000)
}

/// Script copying `path` next to itself as `path.NUMBER.YYYY-MM-DD@HH:MM:SS~`
/// (Ansible's backup name) and printing the backup's name.
pub fn backup_script(path: &str) -> String {
    format!(
        "p={}; b=\"$p.{}.$(date +%Y-%m-%d@%H:%M:%S)~\"; cp -p -- \"$p\" \"$b\" && printf %s \"$b\"",
        sh_quote(path),
        backup_tag()
    )
}

/// Parse a `stat -c STAT_FMT` line.
pub fn parse_stat(line: &str) -> Option<RemoteStat> {
    let f: Vec<&str> = line.split('|').collect();
    if f.len() < 13 {
        return None;
    }
    let kind = match f[0] {
        "regular file" | "regular empty file" => Kind::File,
        "directory" => Kind::Dir,
        "symbolic link" => Kind::Link,
        _ => Kind::Other,
    };
    Some(RemoteStat {
        kind,
        type_text: f[0].to_string(),
        mode: u32::from_str_radix(f[1], 8).ok()?,
        uid: f[2].parse().ok()?,
        gid: f[3].parse().ok()?,
        owner: f[4].to_string(),
        group: f[5].to_string(),
        size: f[6].parse().ok()?,
        mtime: f[7].parse().ok()?,
        atime: f[8].parse().ok()?,
        ctime: f[9].parse().ok()?,
        inode: f[10].parse().ok()?,
        dev: f[11].parse().ok()?,
        nlink: f[12].parse().ok()?,
        link_target: None,
        checksum: None,
    })
}

/// The stat of each path read over SFTP (`true`: links followed), with
/// owner and group names from the host's name service, as `stat %U %G`
/// gives them; `None` for an absent path. SFTP v3 gives no inode, device,
/// ctime or link count (0, 0, 0 and 1 here): only for callers that use
/// none of them (kind, mode, ids, names, size, times). `None` overall when
/// SFTP cannot answer exactly (an error other than a missing path, a server
/// without the names extension or attributes): the caller asks the shell.
pub async fn sftp_stats(
    sftp: &crate::connection::sftp::Sftp,
    paths: &[(&str, bool)],
) -> Option<Vec<Option<RemoteStat>>> {
    if !sftp.names_by_id {
        return None;
    }
    let attrs = sftp.stat_many(paths).await.ok()?;
    let found: Vec<_> = attrs.iter().flatten().collect();
    let mut names = (Vec::new(), Vec::new());
    if !found.is_empty() {
        let uids: Vec<u32> = found.iter().map(|a| a.uid).collect::<Option<_>>()?;
        let gids: Vec<u32> = found.iter().map(|a| a.gid).collect::<Option<_>>()?;
        names = sftp.names(&uids, &gids).await.ok()?;
    }
    let mut at = 0;
    attrs
        .iter()
        .map(|a| {
            let Some(a) = a else { return Some(None) };
            let (owner, group) = (&names.0[at], &names.1[at]);
            at += 1;
            let perm = a.perm?;
            let size = a.size?;
            let (kind, type_text) = match perm & 0o170000 {
                0o100000 if size == 0 => (Kind::File, "regular empty file"),
                0o100000 => (Kind::File, "regular file"),
                0o040000 => (Kind::Dir, "directory"),
                0o120000 => (Kind::Link, "symbolic link"),
                0o010000 => (Kind::Other, "fifo"),
                0o140000 => (Kind::Other, "socket"),
                0o020000 => (Kind::Other, "character special file"),
                0o060000 => (Kind::Other, "block special file"),
                _ => return None,
            };
            let name = |n: &String| if n.is_empty() { "UNKNOWN".to_string() } else { n.clone() };
            Some(Some(RemoteStat {
                type_text: type_text.into(),
                size,
                mtime: i64::from(a.mtime?),
                atime: i64::from(a.atime?),
                ..RemoteStat::owned(kind, perm & 0o7777, a.uid?, a.gid?, name(owner), name(group))
            }))
        })
        .collect()
}

/// `stat -c STAT_FMT`'s line for `s`.
pub fn stat_line(s: &RemoteStat) -> String {
    format!(
        "{}|{:o}|{}|{}|{}|{}|{}|{}|{}|{}|{}|{}|{}",
        s.type_text, s.mode, s.uid, s.gid, s.owner, s.group, s.size, s.mtime, s.atime, s.ctime, s.inode, s.dev, s.nlink
    )
}

/// The lines [`stat_snippet`] prints for `tag` (no link target) when the
/// stat is known otherwise (see [`sftp_stats`]).
pub fn snippet_lines(tag: &str, st: Option<&RemoteStat>) -> String {
    let Some(s) = st else {
        return format!("{tag}S|ABSENT\n");
    };
    let mut out = format!("{tag}S|{}\n", stat_line(s));
    if let Some(c) = &s.checksum {
        out.push_str(&format!("{tag}C|{c}  -\n"));
    }
    out
}

/// The result of [`stat_snippet`] for one tag: `None` when the path is absent.
pub fn parse_tagged(out: &str, tag: &str) -> Result<Option<RemoteStat>, ModuleError> {
    let mut st: Option<RemoteStat> = None;
    let mut seen = false;
    for line in out.lines() {
        let Some(rest) = line.strip_prefix(tag) else { continue };
        if let Some(s) = rest.strip_prefix("S|") {
            seen = true;
            if s == "ABSENT" {
                return Ok(None);
            }
            st = Some(parse_stat(s).ok_or_else(|| ModuleError::Failed(format!("cannot parse remote stat `{s}`")))?);
        } else if let Some(t) = rest.strip_prefix("L|") {
            if let Some(s) = st.as_mut() {
                s.link_target = Some(t.to_string());
            }
        } else if let Some(c) = rest.strip_prefix("C|") {
            if let Some(s) = st.as_mut() {
                // `<sum>  -` straight from sha1sum (no `cut` process).
                if let Some(sum) = c.split_whitespace().next() {
                    s.checksum = Some(sum.to_string());
                }
            }
        }
    }
    if !seen {
        return Err(ModuleError::Failed(format!("remote query gave no answer for `{tag}`")));
    }
    Ok(st)
}

/// Facts about the remote user, printed by [`whoami_snippet`].
#[derive(Debug, Clone, Default)]
pub struct RemoteUser {
    pub uid: u32,
    pub gid: u32,
    pub user: String,
    pub group: String,
    pub umask: u32,
}

/// The login user and umask: builtins and a single `id` (no subshells).
pub fn whoami_snippet() -> &'static str {
    "printf 'U|'; umask; printf 'I|'; LC_ALL=C id\n"
}

/// The memo key of the remote user under `become_`.
pub fn whoami_memo_key(become_: Option<&crate::connection::Become>) -> String {
    match become_ {
        Some(b) => format!("whoami {:?} {}", b.method, b.user),
        None => "whoami".to_string(),
    }
}

/// Remember the user printed by [`whoami_snippet`] in `out` (for a script
/// run outside a module, like the check-mode prefetch).
pub fn remember_whoami_in(memo: &crate::connection::Memo, become_: Option<&crate::connection::Become>, out: &str) {
    let umask = out.lines().find_map(|l| l.strip_prefix("U|")).unwrap_or("");
    let id = out.lines().find_map(|l| l.strip_prefix("I|")).unwrap_or("");
    remember_lines(memo, become_, umask, id);
}

/// Store a umask line and an `id` line, when both look like answers.
fn remember_lines(memo: &crate::connection::Memo, become_: Option<&crate::connection::Become>, umask: &str, id: &str) {
    if !umask.trim().is_empty() && id.starts_with("uid=") {
        memo.set(&whoami_memo_key(become_), format!("{}\n{}", umask.trim(), id.trim()));
    }
}

/// The umask line and the `id` line of the remote user under this task's
/// become, when an earlier command of the connection learnt them.
pub fn known_whoami(ctx: &ModuleCtx<'_>) -> Option<(String, String)> {
    let v = ctx.conn.memo()?.get(&whoami_memo_key(ctx.become_))?;
    let (umask, id) = v.split_once('\n')?;
    Some((umask.to_string(), id.to_string()))
}

/// Remember the umask and `id` lines for the next tasks of the connection.
pub fn remember_whoami(ctx: &ModuleCtx<'_>, umask: &str, id: &str) {
    if let Some(m) = ctx.conn.memo() {
        remember_lines(m, ctx.become_, umask, id);
    }
}

/// [`whoami_snippet`], or nothing when the user is known (`known`, from
/// [`known_user`]).
pub fn whoami_unless(known: &Option<RemoteUser>) -> &'static str {
    if known.is_some() {
        ""
    } else {
        whoami_snippet()
    }
}

/// True when the names in a memo of the login user (`umask` and `id`
/// lines) are still the names of its ids, as the SFTP server finds them
/// now; false when they differ or SFTP cannot tell.
pub async fn names_still_match(conn: &dyn crate::connection::Connection, memo: &str) -> bool {
    let u = parse_whoami(&format!("U|{}", memo.replacen('\n', "\nI|", 1)));
    let Some(sftp) = conn.sftp().await.filter(|s| s.names_by_id) else {
        return false;
    };
    let Ok((users, groups)) = sftp.names(&[u.uid], &[u.gid]).await else {
        return false;
    };
    // `id` shows a number for an id without a name.
    let shown = |names: &[String], id: u32| match names.first() {
        Some(n) if !n.is_empty() => n.clone(),
        _ => id.to_string(),
    };
    shown(&users, u.uid) == u.user && shown(&groups, u.gid) == u.group
}

/// The remote user from the connection's memo, if an earlier task asked.
pub fn known_user(ctx: &ModuleCtx<'_>) -> Option<RemoteUser> {
    known_whoami(ctx).map(|(u, id)| parse_whoami(&format!("U|{u}\nI|{id}\n")))
}

/// The remote user: `known`, or else parsed from the output of a script
/// that ran [`whoami_snippet`] (and remembered for the next tasks).
pub fn user_from(ctx: &ModuleCtx<'_>, known: Option<RemoteUser>, out: &str) -> RemoteUser {
    if let Some(u) = known {
        return u;
    }
    if let Some(m) = ctx.conn.memo() {
        remember_whoami_in(m, ctx.become_, out);
    }
    parse_whoami(out)
}

/// Parse [`whoami_snippet`]'s `U|0022` and `I|uid=0(root) gid=0(root) ...` lines.
pub fn parse_whoami(out: &str) -> RemoteUser {
    let mut user = RemoteUser {
        umask: 0o022,
        ..Default::default()
    };
    // `uid=1000(ops)` → (1000, "ops"); without a name (no passwd entry) the name is the number.
    let id_field = |tok: &str, key: &str| -> Option<(u32, String)> {
        let rest = tok.strip_prefix(key)?;
        let (num, name) = match rest.split_once('(') {
            Some((n, name)) => (n, name.trim_end_matches(')').to_string()),
            None => (rest, rest.to_string()),
        };
        Some((num.parse().ok()?, name))
    };
    for line in out.lines() {
        if let Some(m) = line.strip_prefix("U|") {
            user.umask = u32::from_str_radix(m.trim(), 8).unwrap_or(0o022);
        } else if let Some(id) = line.strip_prefix("I|") {
            for tok in id.split_whitespace() {
                if let Some((n, name)) = id_field(tok, "uid=") {
                    (user.uid, user.user) = (n, name);
                } else if let Some((n, name)) = id_field(tok, "gid=") {
                    (user.gid, user.group) = (n, name);
                }
            }
        }
    }
    user
}

/// Run a script on the host; a non-zero status is a module failure with
/// the script's stderr.
pub async fn run_ok(ctx: &ModuleCtx<'_>, script: &str, what: &str) -> Result<String, ModuleError> {
    // Long scripts go on stdin: a single argument is limited to 128 KiB on Linux.
    let out = if script.len() > 64 * 1024 {
        ctx.run_with_whole_stdin("/bin/sh -s", script.as_bytes().to_vec())
            .await?
    } else {
        ctx.run(script).await?
    };
    if out.status != 0 {
        let err = out.stderr_str();
        let err = err.trim();
        return Err(ModuleError::Failed(format!(
            "{what} failed (exit status {}){}",
            out.status,
            if err.is_empty() {
                String::new()
            } else {
                format!(": {err}")
            }
        )));
    }
    Ok(out.stdout_str())
}

/// Desired ownership and permissions (the `owner`, `group` and `mode`
/// options of the file modules).
#[derive(Debug, Clone, Default)]
pub struct Attrs {
    pub owner: Option<String>,
    pub group: Option<String>,
    pub mode: Option<Mode>,
}

/// What must change on an existing path to match [`Attrs`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AttrChange {
    pub mode: Option<u32>,
    pub owner: Option<String>,
    pub group: Option<String>,
}

impl AttrChange {
    pub fn is_empty(&self) -> bool {
        self.mode.is_none() && self.owner.is_none() && self.group.is_none()
    }
}

fn name_matches(want: &str, name: &str, id: u32) -> bool {
    if want.bytes().all(|b| b.is_ascii_digit()) && !want.is_empty() {
        want.parse::<u32>().ok() == Some(id)
    } else {
        want == name
    }
}

impl Attrs {
    /// The final mode of a path currently at `current` (None: leave alone).
    pub fn target_mode(&self, current: u32, is_dir: bool) -> Option<u32> {
        self.mode.as_ref().and_then(|m| m.apply_to(current, is_dir))
    }

    pub fn changes(&self, st: &RemoteStat) -> AttrChange {
        let mut c = AttrChange::default();
        if st.kind != Kind::Link {
            if let Some(m) = self.target_mode(st.mode, st.kind == Kind::Dir) {
                if m & 0o7777 != st.mode & 0o7777 {
                    c.mode = Some(m);
                }
            }
        }
        if let Some(o) = &self.owner {
            if !name_matches(o, &st.owner, st.uid) {
                c.owner = Some(o.clone());
            }
        }
        if let Some(g) = &self.group {
            if !name_matches(g, &st.group, st.gid) {
                c.group = Some(g.clone());
            }
        }
        c
    }

    /// chmod/chown arguments as shell commands for `path` (`"$f"` or a quoted path).
    pub fn shell_commands(&self, target: &str) -> String {
        let mut s = String::new();
        match (&self.owner, &self.group) {
            (Some(o), Some(g)) => s.push_str(&format!(
                "chown {}:{} -- {target} || exit 1; ",
                sh_quote(o),
                sh_quote(g)
            )),
            (Some(o), None) => s.push_str(&format!("chown {} -- {target} || exit 1; ", sh_quote(o))),
            (None, Some(g)) => s.push_str(&format!("chgrp {} -- {target} || exit 1; ", sh_quote(g))),
            (None, None) => {}
        }
        match &self.mode {
            Some(Mode::Octal(m)) => s.push_str(&format!("chmod {m:o} -- {target} || exit 1; ")),
            Some(Mode::Symbolic(m)) => s.push_str(&format!("chmod {} -- {target} || exit 1; ", sh_quote(m))),
            Some(Mode::Preserve) | None => {}
        }
        s
    }

    /// Nothing to apply (no owner, no group, no mode other than `preserve`).
    pub fn is_empty(&self) -> bool {
        self.owner.is_none() && self.group.is_none() && !matches!(self.mode, Some(Mode::Octal(_) | Mode::Symbolic(_)))
    }
}

/// Shell commands applying `c` to `path` (`-h`: act on a link itself).
pub fn attr_commands(path: &str, c: &AttrChange, link: bool) -> String {
    let p = sh_quote(path);
    let h = if link { "-h " } else { "" };
    let mut s = String::new();
    match (&c.owner, &c.group) {
        (Some(o), Some(g)) => s.push_str(&format!("chown {h}{}:{} -- {p} || exit 1\n", sh_quote(o), sh_quote(g))),
        (Some(o), None) => s.push_str(&format!("chown {h}{} -- {p} || exit 1\n", sh_quote(o))),
        (None, Some(g)) => s.push_str(&format!("chgrp {h}{} -- {p} || exit 1\n", sh_quote(g))),
        (None, None) => {}
    }
    if let Some(m) = c.mode {
        s.push_str(&format!("chmod {:04o} -- {p} || exit 1\n", m));
    }
    s
}

/// `0644`-style mode text, as Ansible returns it.
pub fn mode_str(m: u32) -> String {
    format!("{:04o}", m & 0o7777)
}

/// YAML-ish `key: value` lines for an attribute diff.
pub fn attr_diff(path: &str, before: &[(&str, String)], after: &[(&str, String)]) -> Diff {
    let text = |kv: &[(&str, String)]| {
        let mut s = format!("path: {path}\n");
        for (k, v) in kv {
            s.push_str(&format!("{k}: {v}\n"));
        }
        s
    };
    Diff {
        before_header: path.to_string(),
        after_header: path.to_string(),
        before: text(before),
        after: text(after),
    }
}

/// `key: value` pairs of a diff side.
pub type DiffPairs = Vec<(&'static str, String)>;

/// Before/after pairs for the attributes in `c`.
pub fn attr_diff_pairs(st: &RemoteStat, c: &AttrChange) -> (DiffPairs, DiffPairs) {
    let mut b = Vec::new();
    let mut a = Vec::new();
    if let Some(m) = c.mode {
        b.push(("mode", format!("'{}'", mode_str(st.mode))));
        a.push(("mode", format!("'{}'", mode_str(m))));
    }
    if let Some(o) = &c.owner {
        b.push(("owner", st.owner.clone()));
        a.push(("owner", o.clone()));
    }
    if let Some(g) = &c.group {
        b.push(("group", st.group.clone()));
        a.push(("group", g.clone()));
    }
    (b, a)
}

/// Common return values describing a path (`mode`, `owner`, `uid`, ...).
pub fn stat_returns(ret: &mut Map<String, Value>, st: &RemoteStat) {
    ret.insert("mode".into(), Value::String(mode_str(st.mode)));
    ret.insert("owner".into(), Value::String(st.owner.clone()));
    ret.insert("group".into(), Value::String(st.group.clone()));
    ret.insert("uid".into(), st.uid.into());
    ret.insert("gid".into(), st.gid.into());
    ret.insert("size".into(), st.size.into());
    ret.insert("state".into(), Value::String(st.kind.state_name().into()));
}

/// Ansible's `add_path_info`: what every module that returns a `path` or
/// `dest` reports about it after it ran (`uid`, `gid`, `owner`, `group`,
/// `mode`, `state`, `size`; `state: absent` when it does not exist), read
/// from the host now (not from a prefetch made before the task).
pub async fn add_path_info(ctx: &ModuleCtx<'_>, path: &str, ret: &mut Map<String, Value>) -> Result<(), ModuleError> {
    let out = ctx.run(&stat_snippet("", path, false, None)).await?;
    match parse_tagged(&out.stdout_str(), "")? {
        Some(st) => {
            stat_returns(ret, &st);
            // A regular file with more than one name is `hard`, as Ansible
            // (which counts the links of the file a link leads to).
            if st.kind != Kind::Link && st.kind != Kind::Dir && st.nlink > 1 {
                ret.insert("state".into(), Value::String("hard".into()));
            }
        }
        None => {
            ret.insert("state".into(), Value::String("absent".into()));
        }
    }
    Ok(())
}

/// The stat a path will have after `c` is applied (for check mode and to
/// avoid a second query after applying).
pub fn predicted(st: &RemoteStat, c: &AttrChange) -> RemoteStat {
    let mut n = st.clone();
    if let Some(m) = c.mode {
        n.mode = m;
    }
    if let Some(o) = &c.owner {
        match o.parse::<u32>() {
            Ok(id) => n.uid = id,
            Err(_) => n.owner = o.clone(),
        }
    }
    if let Some(g) = &c.group {
        match g.parse::<u32>() {
            Ok(id) => n.gid = id,
            Err(_) => n.group = g.clone(),
        }
    }
    n
}

/// Text for a content diff: `None` for binary or very large content.
pub fn diff_text(data: &[u8]) -> Option<String> {
    if data.len() > 1024 * 1024 || data.contains(&0) {
        return None;
    }
    String::from_utf8(data.to_vec()).ok()
}

/// Whether a file module's changed result may have changed the remote users
/// or groups (so the connection's [`crate::connection::Memo`] of `id` is
/// stale): when it wrote a user or group database or the configuration
/// naming users.
pub fn wrote_user_database(result: &serde_json::Map<String, serde_json::Value>) -> bool {
    let path = ["dest", "path"]
        .iter()
        .find_map(|k| result.get(*k).and_then(serde_json::Value::as_str))
        .unwrap_or("/");
    ["passwd", "group", "shadow", "nsswitch", "sssd", "login.defs", "ldap"]
        .iter()
        .any(|w| path.contains(w))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_lines() {
        let st = parse_stat("regular file|644|0|0|root|root|12|1700000000|1700000001|1700000002|42|2049|1").unwrap();
        assert_eq!(st.kind, Kind::File);
        assert_eq!(st.mode, 0o644);
        assert_eq!(st.size, 12);
        assert!(parse_stat("garbage").is_none());
        let attrs = Attrs {
            mode: Some(Mode::Symbolic("u+x".into())),
            owner: Some("0".into()),
            group: Some("wheel".into()),
        };
        let c = attrs.changes(&st);
        assert_eq!(c.mode, Some(0o744));
        assert_eq!(c.owner, None);
        assert_eq!(c.group, Some("wheel".into()));
        assert_eq!(parent("/a/b/"), "/a");
        assert_eq!(parent("/a"), "/");
        assert_eq!(basename("/a/b/"), "b");
    }

    #[test]
    fn whoami_parses_id_and_umask() {
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(whoami_snippet())
            .output()
            .unwrap();
        let u = parse_whoami(&String::from_utf8_lossy(&out.stdout));
        let id = |flag: &str| {
            let o = std::process::Command::new("id").arg(flag).output().unwrap();
            String::from_utf8_lossy(&o.stdout).trim().to_string()
        };
        assert_eq!(u.uid.to_string(), id("-u"));
        assert_eq!(u.gid.to_string(), id("-g"));
        assert_eq!(
            (u.user.as_str(), u.group.as_str()),
            (id("-un").as_str(), id("-gn").as_str())
        );
        let u = parse_whoami("U|0077\nI|uid=1234 gid=50(staff) groups=50(staff)\n");
        assert_eq!(
            (u.uid, u.user.as_str(), u.gid, u.group.as_str(), u.umask),
            (1234, "1234", 50, "staff", 0o077)
        );
    }
}
