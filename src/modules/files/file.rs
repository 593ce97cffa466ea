//! `file`: manage files, directories, links and their attributes.

use async_trait::async_trait;
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::connection::sh_quote;
use crate::modules::args::{de_opt_mode, Mode};
use crate::modules::host::command::run_checked;
use crate::modules::host::prefetch;
use crate::modules::host::remote_file::{self as remote, attr_commands, predicted, Attrs, Kind, RemoteStat};
use crate::modules::{
    parse_params, Change, Diff, Module, ModuleCtx, ModuleDoc, ModuleError, ModuleOutcome, OptKind, OptionDoc, Plan,
    ReturnDoc,
};

const OPTIONS: &[OptionDoc] = &[
    OptionDoc::new("path", OptKind::Path, "Path to the file being managed.")
        .required()
        .aliases(&["dest", "name"]),
    OptionDoc::new(
        "state",
        OptKind::Str,
        "file: only attributes of an existing file; directory: create (with parents); link/hard: \
symbolic or hard link to `src`; touch: create empty or update times; absent: remove recursively. \
Default: the current state, or `file`.",
    )
    .choices(&["absent", "directory", "file", "hard", "link", "touch"]),
    OptionDoc::new("src", OptKind::Path, "Target of the link (state=link or hard)."),
    OptionDoc::new("owner", OptKind::Str, "Owner name or uid."),
    OptionDoc::new("group", OptKind::Str, "Group name or gid."),
    OptionDoc::new(
        "mode",
        OptKind::Mode,
        "Permissions, octal ('0644') or symbolic ('u=rw,g=r').",
    ),
    OptionDoc::new(
        "recurse",
        OptKind::Bool,
        "Apply owner, group and mode to everything below a directory.",
    )
    .default("no"),
    OptionDoc::new(
        "force",
        OptKind::Bool,
        "Create links even when the source does not exist, or replace a file with a link.",
    )
    .default("no"),
    OptionDoc::new("follow", OptKind::Bool, "Act on the target of a symbolic link.").default("yes"),
    OptionDoc::new(
        "modification_time",
        OptKind::Str,
        "`preserve`, `now`, or a time in modification_time_format.",
    ),
    OptionDoc::new("modification_time_format", OptKind::Str, "Format of modification_time.").default("%Y%m%d%H%M.%S"),
    OptionDoc::new(
        "access_time",
        OptKind::Str,
        "`preserve`, `now`, or a time in access_time_format.",
    ),
    OptionDoc::new("access_time_format", OptKind::Str, "Format of access_time.").default("%Y%m%d%H%M.%S"),
    OptionDoc::new(
        "attributes",
        OptKind::Str,
        "File system attributes (`chattr` flags: `+i`, `-a`, `=e` or `ie`), set with the host's `chattr` when `lsattr` shows other ones, as Ansible.",
    )
    .aliases(&["attr"]),
    OptionDoc::new("unsafe_writes", OptKind::Bool, "Accepted for compatibility.").ignored(),
];

static DOC: ModuleDoc = ModuleDoc {
    name: "file",
    aliases: &[],
    short: "Manage files and file properties",
    description: "Sets attributes of files, directories and links, or creates/removes them. \
The state is queried in one round trip and only differing attributes are changed.",
    free_form: false,
    options: OPTIONS,
    examples: "- file:\n    path: /etc/foo.conf\n    owner: foo\n    group: foo\n    mode: '0644'\n\n- file:\n    path: /srv/app\n    state: directory\n    mode: u=rwx,g=rx,o=rx\n\n- file:\n    src: /file/to/link/to\n    dest: /path/to/symlink\n    state: link\n",
    returns: &[
        ReturnDoc {
            name: "path",
            description: "the managed path",
        },
        ReturnDoc {
            name: "state",
            description: "state of the path after the task",
        },
        ReturnDoc {
            name: "mode",
            description: "permissions, like '0644'",
        },
        ReturnDoc {
            name: "owner",
            description: "owner name",
        },
        ReturnDoc {
            name: "group",
            description: "group name",
        },
    ],
    controller_only: false,
};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Params {
    path: String,
    #[serde(default)]
    state: Option<String>,
    #[serde(default)]
    src: Option<String>,
    #[serde(default)]
    owner: Option<String>,
    #[serde(default)]
    group: Option<String>,
    #[serde(default, deserialize_with = "de_opt_mode")]
    mode: Option<Mode>,
    #[serde(default)]
    recurse: bool,
    #[serde(default)]
    force: bool,
    #[serde(default)]
    follow: Option<bool>,
    #[serde(default)]
    modification_time: Option<String>,
    #[serde(default)]
    modification_time_format: Option<String>,
    #[serde(default)]
    access_time: Option<String>,
    #[serde(default)]
    access_time_format: Option<String>,
    #[serde(default)]
    attributes: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum TimeSpec {
    Preserve,
    Now,
    /// `[[CC]YY]MMDDhhmm[.ss]`, as `touch -t` takes it.
    At(String),
}

fn time_spec(v: Option<&str>, format: Option<&str>, default: TimeSpec, what: &str) -> Result<TimeSpec, ModuleError> {
    let Some(v) = v else { return Ok(default) };
    match v {
        "preserve" => Ok(TimeSpec::Preserve),
        "now" => Ok(TimeSpec::Now),
        t => {
            let fmt = format.unwrap_or("%Y%m%d%H%M.%S");
            if fmt != "%Y%m%d%H%M.%S" {
                return Err(ModuleError::Args(format!(
                    "file: only the default {what}_format `%Y%m%d%H%M.%S` is supported, not `{fmt}`"
                )));
            }
            let ok = t.len() == 15
                && t.as_bytes()[12] == b'.'
                && t.bytes().enumerate().all(|(i, c)| i == 12 || c.is_ascii_digit());
            if !ok {
                return Err(ModuleError::Args(format!(
                    "file: {what} `{t}` does not match the format YYYYmmddHHMM.SS"
                )));
            }
            Ok(TimeSpec::At(t.to_string()))
        }
    }
}

pub struct FileModule;

/// What the query told about the path, its link target and `src`.
struct Query {
    path: Option<RemoteStat>,
    /// Stat of the link target when `path` is a link and `follow` is on.
    target: Option<RemoteStat>,
    src: Option<RemoteStat>,
    /// `src` resolves (relative to the link's directory) to an existing path.
    src_exists: bool,
    user: remote::RemoteUser,
    mtime_fmt: String,
    atime_fmt: String,
    /// `(relative kind, stat, path)` of everything below a directory (recurse).
    entries: Vec<(RemoteStat, String)>,
    /// The query's script also applied the change ([`fast_apply`]).
    fast_done: bool,
}

#[async_trait]
impl Module for FileModule {
    fn query_hints(&self, args: &Map<String, Value>) -> Vec<crate::modules::PathQuery> {
        crate::modules::host::prefetch::needs("file", args)
    }

    fn creates_files(&self) -> bool {
        true
    }

    fn may_change_users(&self, result: &Map<String, Value>) -> bool {
        crate::modules::host::remote_file::wrote_user_database(result)
    }

    fn doc(&self) -> &'static ModuleDoc {
        &DOC
    }

    async fn query(&self, ctx: &ModuleCtx<'_>, args: Map<String, Value>) -> Result<Plan, ModuleError> {
        let p: Params = parse_params(&DOC, args)?;
        let path = p.path.clone();
        if matches!(p.mode, Some(Mode::Preserve)) {
            return Err(ModuleError::Args(
                "file: mode `preserve` is only valid for copy and template".into(),
            ));
        }
        let follow = p.follow.unwrap_or(true);
        // Over SFTP a directory's query, a mode change and a new directory
        // start no program on the host; the change then follows the query
        // instead of riding in its script (not where the prefetch may answer).
        let sftp = match !prefetch::may_answer(ctx)
            && p.attributes.is_none()
            && p.src.is_none()
            && !p.recurse
            && p.modification_time.is_none()
            && p.access_time.is_none()
        {
            true => crate::connection::sftp_for_reading(ctx.conn, &path, ctx.become_).await,
            false => None,
        };
        let fast = match sftp {
            Some(_) => None,
            None => fast_apply(ctx, &p, &path),
        };
        let q = query(ctx, &p, &path, follow, fast.as_deref(), sftp.as_deref()).await?;
        let state = match p.state.as_deref() {
            Some(s) => s.to_string(),
            None => match &q.path {
                Some(st) if st.kind == Kind::Dir => "directory".into(),
                Some(st) if st.kind == Kind::Link => "link".into(),
                Some(st) if st.nlink > 1 && st.kind == Kind::File && p.src.is_some() => "hard".into(),
                Some(_) => "file".into(),
                None if p.recurse => "directory".into(),
                None => "file".into(),
            },
        };
        if p.recurse && state != "directory" {
            return Err(ModuleError::Args("file: recurse requires state=directory".into()));
        }
        let default_time = if state == "touch" {
            TimeSpec::Now
        } else {
            TimeSpec::Preserve
        };
        let mtime = time_spec(
            p.modification_time.as_deref(),
            p.modification_time_format.as_deref(),
            default_time.clone(),
            "modification_time",
        )?;
        let atime = time_spec(
            p.access_time.as_deref(),
            p.access_time_format.as_deref(),
            default_time,
            "access_time",
        )?;
        let attrs = Attrs {
            owner: p.owner.clone(),
            group: p.group.clone(),
            mode: p.mode.clone(),
        };
        let mut plan = plan(&p, &path, &state, &q, &attrs, follow, &mtime, &atime)?;
        let chattr = match (&p.attributes, state.as_str()) {
            (Some(a), s) if s != "absent" => chattr_change(ctx, &path, q.path.is_some(), a).await?,
            _ => None,
        };
        let mut out = ModuleOutcome::changed(!plan.script.is_empty() || chattr.is_some());
        if ctx.diff_mode && !plan.script.is_empty() {
            out.diff.push(plan.diff.clone());
        }
        if let Some(c) = &chattr {
            if ctx.diff_mode {
                out.diff.push(c.diff.clone());
            }
            plan.script.push_str(&c.script);
        }
        out.ret.insert("path".into(), Value::String(path.clone()));
        match &plan.after {
            Some(st) => remote::stat_returns(&mut out.ret, st),
            None => {
                out.ret.insert("state".into(), Value::String("absent".into()));
            }
        }
        if matches!(state.as_str(), "link" | "hard" | "touch") {
            out.ret.insert("dest".into(), Value::String(path.clone()));
        }
        if let Some(src) = &p.src {
            if matches!(state.as_str(), "link" | "hard") {
                out.ret.insert("src".into(), Value::String(src.clone()));
                if let Some(st) = &plan.after {
                    if state == "hard" {
                        out.ret.insert("state".into(), Value::String("hard".into()));
                    } else if st.kind == Kind::Link {
                        out.ret.insert("state".into(), Value::String("link".into()));
                    }
                }
            }
        }
        if !out.changed {
            return Ok(Plan::Done(out));
        }
        let octal = match &p.mode {
            Some(Mode::Octal(m)) => Some(*m),
            _ => None,
        };
        Ok(Plan::change(
            out,
            ApplyFile {
                path,
                script: plan.script,
                octal,
                sftp,
                fast_done: q.fast_done,
            },
        ))
    }
}

/// A `chattr` the `attributes` option needs.
struct Chattr {
    script: String,
    diff: Diff,
}

/// Ansible's `set_attributes_if_different`: `attributes` (`+flags`,
/// `-flags`, `=flags` or `flags`, which means `=`) need `chattr` when the
/// path's flags (`lsattr -d`) are not exactly these flags, or always to
/// remove some; a path not there yet (check mode) needs it too.
async fn chattr_change(
    ctx: &ModuleCtx<'_>,
    path: &str,
    exists: bool,
    attributes: &str,
) -> Result<Option<Chattr>, ModuleError> {
    let (op, flags) = match attributes.chars().next() {
        Some(c @ ('+' | '-')) => (c, &attributes[1..]),
        _ => ('=', attributes),
    };
    if flags.is_empty() {
        return Ok(None);
    }
    let q = sh_quote(path);
    let existing = if exists {
        let out = ctx.run(&format!("lsattr -d -- {q} 2>/dev/null")).await?;
        let text = out.stdout_str();
        (out.status == 0).then(|| text.split_whitespace().next().unwrap_or("").replace('-', ""))
    } else {
        None
    };
    if existing.as_deref() == Some(flags) && op != '-' {
        return Ok(None);
    }
    let arg = sh_quote(&format!("{op}{flags}"));
    let script = format!(
        "e=$(chattr {arg} {q} 2>&1) && [ -z \"$e\" ] || {{ printf 'chattr failed: Error while setting attributes: %s\\n' \"$e\" >&2; exit 1; }}\n"
    );
    let side = |v: String| format!("path: {path}\nattributes: {v}\n");
    Ok(Some(Chattr {
        script,
        diff: Diff {
            before_header: path.to_string(),
            after_header: path.to_string(),
            before: side(existing.unwrap_or_default()),
            after: side(format!("{op}{flags}")),
        },
    }))
}

/// The script [`plan`] made for the path, or nothing when the query's own
/// round trip applied it already ([`fast_apply`]).
struct ApplyFile {
    path: String,
    script: String,
    /// The task's octal mode (a new directory's, over SFTP).
    octal: Option<u32>,
    /// SFTP, when the query found it usable: [`apply_over_sftp`] first.
    sftp: Option<std::sync::Arc<crate::connection::sftp::Sftp>>,
    fast_done: bool,
}

#[async_trait]
impl Change for ApplyFile {
    async fn apply(self: Box<Self>, ctx: &ModuleCtx<'_>, planned: ModuleOutcome) -> Result<ModuleOutcome, ModuleError> {
        if self.fast_done {
            return Ok(planned);
        }
        let done = match &self.sftp {
            Some(sftp) => apply_over_sftp(sftp, &self.path, &self.script, self.octal).await,
            None => false,
        };
        if !done {
            run_checked(ctx, &format!("file {}", self.path), &self.script).await?;
        }
        Ok(planned)
    }
}

/// For the common `state: directory` / `state: file` with an octal mode (or
/// none), the change `plan` would make, done in the query's own round trip
/// after the query printed the state before it: create a missing directory,
/// fix the mode of a real directory or regular file (never through a link),
/// then print `FAST|1`. In every other situation the script does nothing and
/// `plan` applies as usual; its decisions are the same for these cases, so
/// the reported change and the returns do not differ.
fn fast_apply(ctx: &ModuleCtx<'_>, p: &Params, path: &str) -> Option<String> {
    let mode = match &p.mode {
        None => None,
        Some(Mode::Octal(m)) => Some(*m),
        Some(_) => return None,
    };
    if !remote::query_may_apply(ctx)
        || ctx.diff_mode
        || p.recurse
        || p.src.is_some()
        || p.owner.is_some()
        || p.group.is_some()
        || p.modification_time.is_some()
        || p.access_time.is_some()
        || p.attributes.is_some()
    {
        return None;
    }
    let q = sh_quote(path);
    // The query before this code left the path's stat line in a variable.
    let chmod = match mode {
        Some(m) => format!(
            "{}[ \"$m\" = {m:o} ] || chmod {m:o} -- {q} || exit 1; ",
            remote::mode_from_stat_var(&remote::stat_var("P"))
        ),
        None => String::new(),
    };
    // A new directory gets its mode as it is made (`mkdir -m` is not
    // subject to the umask; parents get the default).
    let mkdir = match mode {
        Some(m) => format!("mkdir -p -m {m:o} -- {q} || exit 1; "),
        None => format!("mkdir -p -- {q} || exit 1; "),
    };
    match p.state.as_deref() {
        Some("directory") => Some(format!(
            "if [ ! -e {q} ] && [ ! -L {q} ]; then {mkdir}echo 'FAST|1'; \
             elif [ -d {q} ] && [ ! -L {q} ]; then {chmod}echo 'FAST|1'; fi\n"
        )),
        Some("file") => Some(format!(
            "if [ -f {q} ] && [ ! -L {q} ]; then {chmod}echo 'FAST|1'; fi\n"
        )),
        // No state: an existing regular file or directory keeps its kind.
        None => Some(format!(
            "if {{ [ -f {q} ] || [ -d {q} ]; }} && [ ! -L {q} ]; then {chmod}echo 'FAST|1'; fi\n"
        )),
        _ => None,
    }
}

/// `plan`'s script done over SFTP when it is one of: make the directory
/// `path` (its parent existing; `mkdir -p`), then give it its mode (the
/// script's `chmod`, else the task's octal `mode`: set explicitly, as the
/// SFTP server's umask may not be the shell's); change the mode of `path`
/// (links followed, as `chmod`). False when the script is something else
/// or SFTP refuses (nothing done, or only what the script repeats safely:
/// `mkdir -p` of an existing directory): the caller runs the script.
async fn apply_over_sftp(sftp: &crate::connection::sftp::Sftp, path: &str, script: &str, mode: Option<u32>) -> bool {
    let qp = sh_quote(path);
    let (mkdir, rest) = match script.strip_prefix(&format!("mkdir -p -- {qp} || exit 1\n")) {
        Some(rest) => (true, rest),
        None => (false, script),
    };
    let chmod = match rest {
        "" => None,
        _ => {
            let Some(m) = rest
                .strip_prefix("chmod ")
                .and_then(|r| r.get(..4))
                .and_then(|m| u32::from_str_radix(m, 8).ok())
            else {
                return false;
            };
            if rest != format!("chmod {m:04o} -- {qp} || exit 1\n") {
                return false;
            }
            Some(m)
        }
    };
    match (mkdir, chmod.or(if mkdir { mode } else { None })) {
        (true, Some(m)) => sftp.mkdir(path, Some(m)).await.is_ok() && sftp.set_mode(path, m).await.is_ok(),
        (false, Some(m)) => sftp.set_mode(path, m).await.is_ok(),
        _ => false,
    }
}

/// The query's answer over SFTP for a directory (its stat, names
/// included), a missing path when the user is known, or a regular file
/// when its link count makes no difference (`file_ok`): `None` for
/// anything else (a link's target) or an error — the shell answers. SFTP
/// gives no link count, and a regular file with more than one is a hard
/// link to Ansible: that changes only an error's wording for
/// `state=directory`, the `state` shown in a diff, and the hard/link
/// states, which have a `src` and never come here.
async fn sftp_query(
    sftp: &crate::connection::sftp::Sftp,
    path: &str,
    user_known: bool,
    file_ok: bool,
) -> Option<String> {
    let st = remote::sftp_stats(sftp, &[(path, false)]).await?.pop()?;
    match &st {
        Some(s) if s.kind == Kind::Dir => {}
        Some(s) if s.kind == Kind::File && file_ok => {}
        None if user_known => {}
        _ => return None,
    }
    Some(remote::snippet_lines("P", st.as_ref()))
}

async fn query(
    ctx: &ModuleCtx<'_>,
    p: &Params,
    path: &str,
    follow: bool,
    fast: Option<&str>,
    sftp: Option<&crate::connection::sftp::Sftp>,
) -> Result<Query, ModuleError> {
    let mut script = remote::stat_snippet_for(ctx, "P", path, false, None);
    if follow {
        script.push_str(&format!(
            "[ -L {} ] && {{ {} }}\n",
            sh_quote(path),
            remote::stat_snippet_for(ctx, "F", path, true, None)
        ));
    }
    let known = remote::known_user(ctx);
    script.push_str(remote::whoami_unless(&known));
    if let Some(src) = &p.src {
        script.push_str(&remote::stat_snippet_for(ctx, "S", src, false, None));
        // A relative symlink target is resolved from the link's directory.
        script.push_str(&format!(
            "(cd {} 2>/dev/null && [ -e {} ]) && echo 'X|1'\n",
            sh_quote(&remote::parent(path)),
            sh_quote(src)
        ));
    }
    let q = sh_quote(path);
    if p.modification_time.is_some() || p.access_time.is_some() {
        script.push_str(&format!(
            "[ -e {q} ] && printf 'T|%s|%s\\n' \"$(date -r {q} +%Y%m%d%H%M.%S)\" \"$(date -d @$(stat -L -c %X {q}) +%Y%m%d%H%M.%S)\"\n"
        ));
    }
    if p.recurse {
        script.push_str(&format!(
            "[ -d {q} ] && find {q} -mindepth 1 ! -type l -exec stat -c 'E|{}|%n' {{}} +\n",
            remote::STAT_FMT
        ));
    }
    script.push_str("true\n");
    if let Some(f) = fast {
        script.push_str(f);
    }
    // Check mode with the path's state prefetched (and not a link, so no
    // target to follow): the query's answer is known without a round trip.
    let plain = fast.is_none()
        && known.is_some()
        && p.src.is_none()
        && !p.recurse
        && p.modification_time.is_none()
        && p.access_time.is_none();
    let mut text = plain
        .then(|| remote::cached_snippet_output(ctx, "P", path, false, false))
        .flatten();
    if let (None, Some(sftp)) = (&text, sftp) {
        let file_ok = !ctx.diff_mode && matches!(p.state.as_deref(), None | Some("file"));
        text = sftp_query(sftp, path, known.is_some(), file_ok).await;
    }
    let out = match text {
        Some(text) => crate::connection::ExecOutput::ok(text.into_bytes()),
        None => ctx.run(&script).await?,
    };
    if out.status != 0 {
        return Err(ModuleError::Failed(format!(
            "cannot query {path}: {}",
            out.stderr_str().trim()
        )));
    }
    let text = out.stdout_str();
    let path_st = remote::parse_tagged(&text, "P")?;
    let target = if text.lines().any(|l| l.starts_with("FS|")) {
        remote::parse_tagged(&text, "F")?
    } else {
        None
    };
    let src = if p.src.is_some() {
        remote::parse_tagged(&text, "S")?
    } else {
        None
    };
    let (mut mtime_fmt, mut atime_fmt) = (String::new(), String::new());
    let mut entries = Vec::new();
    for line in text.lines() {
        if let Some(t) = line.strip_prefix("T|") {
            let mut it = t.split('|');
            mtime_fmt = it.next().unwrap_or("").to_string();
            atime_fmt = it.next().unwrap_or("").to_string();
        } else if let Some(e) = line.strip_prefix("E|") {
            // 13 stat fields, then the name (which may contain '|').
            let fields: Vec<&str> = e.splitn(14, '|').collect();
            if fields.len() == 14 {
                if let Some(st) = remote::parse_stat(&fields[..13].join("|")) {
                    entries.push((st, fields[13].to_string()));
                }
            }
        }
    }
    Ok(Query {
        path: path_st,
        target,
        src,
        src_exists: text.lines().any(|l| l == "X|1"),
        user: remote::user_from(ctx, known, &text),
        mtime_fmt,
        atime_fmt,
        entries,
        fast_done: fast.is_some() && text.lines().any(|l| l == "FAST|1"),
    })
}

struct FilePlan {
    script: String,
    diff: Diff,
    /// The path's stat after the change (None: absent).
    after: Option<RemoteStat>,
}

/// A stat for a path this run creates.
fn new_stat(kind: Kind, user: &remote::RemoteUser) -> RemoteStat {
    let base = if kind == Kind::Dir { 0o777 } else { 0o666 };
    let mode = if kind == Kind::Link { 0o777 } else { base & !user.umask };
    RemoteStat::new_by(kind, mode, user)
}

#[allow(clippy::too_many_arguments)]
fn plan(
    p: &Params,
    path: &str,
    state: &str,
    q: &Query,
    attrs: &Attrs,
    follow: bool,
    mtime: &TimeSpec,
    atime: &TimeSpec,
) -> Result<FilePlan, ModuleError> {
    let qp = sh_quote(path);
    let prev_state = match &q.path {
        None => "absent",
        Some(st) if st.kind == Kind::File && st.nlink > 1 => "hard",
        Some(st) => st.kind.state_name(),
    };
    let mut script = String::new();
    let mut before: Vec<(&str, String)> = vec![("state", prev_state.to_string())];
    let mut after_kv: Vec<(&str, String)> = vec![("state", state.to_string())];
    let mut after: Option<RemoteStat> = q.path.clone();
    // The path attributes apply to: a link's target when following it.
    let attr_target = path;
    let mut attr_stat = q.path.clone();
    let mut link_attrs = false;
    match state {
        "absent" => {
            if q.path.is_some() {
                script.push_str(&format!("rm -rf -- {qp} || exit 1\n"));
            }
            after = None;
            return Ok(FilePlan {
                diff: remote::attr_diff(path, &before, &after_kv),
                script,
                after,
            });
        }
        "file" => match &q.path {
            None => return Err(ModuleError::Failed(format!("file ({path}) is absent, cannot continue"))),
            Some(st) if st.kind == Kind::Link && follow => match &q.target {
                Some(t) if t.kind != Kind::Dir => attr_stat = Some(t.clone()),
                Some(_) => {
                    return Err(ModuleError::Failed(format!(
                        "file ({path}) is a link to a directory, cannot continue"
                    )))
                }
                None => {
                    return Err(ModuleError::Failed(format!(
                        "file ({path}) is a broken link, cannot continue"
                    )))
                }
            },
            Some(st) if st.kind == Kind::Dir => {
                return Err(ModuleError::Failed(format!(
                    "file ({path}) is directory, cannot continue"
                )))
            }
            Some(st) if st.kind == Kind::Link => link_attrs = true,
            Some(_) => {}
        },
        "directory" => match &q.path {
            None => {
                script.push_str(&format!("mkdir -p -- {qp} || exit 1\n"));
                attr_stat = Some(new_stat(Kind::Dir, &q.user));
                after = attr_stat.clone();
            }
            Some(st) if st.kind == Kind::Dir => {}
            Some(st) if st.kind == Kind::Link && follow && q.target.as_ref().is_some_and(|t| t.kind == Kind::Dir) => {
                attr_stat = q.target.clone();
            }
            Some(_) => {
                return Err(ModuleError::Failed(format!(
                    "{path} already exists as a {}",
                    prev_state
                )))
            }
        },
        "link" => {
            let src = p
                .src
                .as_deref()
                .ok_or_else(|| ModuleError::Args("file: src is required for state=link".into()))?;
            if !p.force && !q.src_exists {
                return Err(ModuleError::Failed(format!(
                    "src file does not exist, use \"force=yes\" if you really want to create the link: {src}"
                )));
            }
            link_attrs = true;
            match &q.path {
                Some(st) if st.kind == Kind::Link && st.link_target.as_deref() == Some(src) => {}
                Some(st) if st.kind == Kind::Link || p.force && st.kind != Kind::Dir => {
                    before.push(("src", st.link_target.clone().unwrap_or_default()));
                    after_kv.push(("src", src.to_string()));
                    script.push_str(&format!("rm -f -- {qp} && ln -s -- {} {qp} || exit 1\n", sh_quote(src)));
                    after = Some(new_stat(Kind::Link, &q.user));
                }
                Some(st) if st.kind == Kind::Dir && p.force => {
                    script.push_str(&format!("rmdir -- {qp} && ln -s -- {} {qp} || exit 1\n", sh_quote(src)));
                    after = Some(new_stat(Kind::Link, &q.user));
                }
                Some(_) => {
                    return Err(ModuleError::Failed(format!(
                        "refusing to convert from {prev_state} to symlink for {path}"
                    )))
                }
                None => {
                    after_kv.push(("src", src.to_string()));
                    script.push_str(&format!("ln -s -- {} {qp} || exit 1\n", sh_quote(src)));
                    after = Some(new_stat(Kind::Link, &q.user));
                }
            }
            attr_stat = after.clone();
        }
        "hard" => {
            let src = p
                .src
                .as_deref()
                .ok_or_else(|| ModuleError::Args("file: src is required for state=hard".into()))?;
            let Some(s) = &q.src else {
                return Err(ModuleError::Failed(format!("src does not exist: {src}")));
            };
            match &q.path {
                Some(st) if st.inode == s.inode && st.dev == s.dev => {}
                Some(st) if st.kind == Kind::Dir => {
                    return Err(ModuleError::Failed(format!(
                        "refusing to convert from directory to hard link for {path}"
                    )))
                }
                Some(st) if !p.force && (st.kind != Kind::File || st.nlink <= 1) && st.kind != Kind::Link => {
                    return Err(ModuleError::Failed(format!(
                        "cannot link: {path} exists as a {prev_state} (use force=yes to replace it)"
                    )))
                }
                _ => {
                    after_kv.push(("src", src.to_string()));
                    script.push_str(&format!("ln -f -- {} {qp} || exit 1\n", sh_quote(src)));
                    after = Some(s.clone());
                }
            }
            attr_stat = after.clone();
        }
        "touch" => {
            if q.path.is_none() {
                script.push_str(&format!("touch -- {qp} || exit 1\n"));
                attr_stat = Some(new_stat(Kind::File, &q.user));
                after = attr_stat.clone();
            } else if let (Some(st), true) = (&q.path, follow) {
                if st.kind == Kind::Link {
                    if let Some(t) = &q.target {
                        attr_stat = Some(t.clone());
                    }
                }
            }
        }
        other => return Err(ModuleError::Args(format!("file: invalid state `{other}`"))),
    }
    // Attributes.
    if let Some(st) = &attr_stat {
        let mut c = attrs.changes(st);
        if link_attrs {
            c.mode = None;
        }
        if !c.is_empty() {
            let (b, a) = remote::attr_diff_pairs(st, &c);
            before.extend(b);
            after_kv.extend(a);
            script.push_str(&attr_commands(attr_target, &c, link_attrs));
            let n = predicted(st, &c);
            if link_attrs || q.target.is_none() || state == "directory" && q.path.is_none() {
                after = Some(n);
            } else if let Some(a) = after.as_mut() {
                a.mode = n.mode;
            }
        }
    }
    // Times (touch, or explicit values).
    let exists_before = q.path.is_some();
    let mut touch_time = |spec: &TimeSpec, flag: &str, current: &str, key: &'static str| match spec {
        TimeSpec::Preserve => {}
        TimeSpec::Now => {
            script.push_str(&format!("touch -{flag} -- {qp} || exit 1\n"));
            after_kv.push((key, "now".into()));
        }
        TimeSpec::At(t) => {
            if !exists_before || current != t {
                script.push_str(&format!("touch -{flag} -t {t} -- {qp} || exit 1\n"));
                before.push((key, current.to_string()));
                after_kv.push((key, t.clone()));
            }
        }
    };
    if state != "absent" && state != "link" && state != "hard" {
        touch_time(mtime, "m", &q.mtime_fmt, "mtime");
        touch_time(atime, "a", &q.atime_fmt, "atime");
    }
    // Recursion below a directory.
    if p.recurse {
        let mut n = 0;
        for (st, name) in &q.entries {
            let c = attrs.changes(st);
            if !c.is_empty() {
                script.push_str(&attr_commands(name, &c, false));
                n += 1;
            }
        }
        if n > 0 {
            after_kv.push(("recursed_changes", n.to_string()));
        }
    }
    if prev_state == state && script.is_empty() {
        return Ok(FilePlan {
            diff: Diff::default(),
            script,
            after,
        });
    }
    Ok(FilePlan {
        diff: remote::attr_diff(path, &before, &after_kv),
        script,
        after,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::modules::files::testutil::TestEnv;
    use serde_json::json;
    use std::os::unix::fs::PermissionsExt;

    fn mode_of(p: &str) -> u32 {
        std::fs::symlink_metadata(p).unwrap().permissions().mode() & 0o7777
    }

    /// `attributes` as Ansible's `set_attributes_if_different`: `=` flags
    /// compare exactly with `lsattr`'s, `-` always runs `chattr`, check
    /// mode predicts without changing.
    #[tokio::test]
    async fn attributes_set_with_chattr() {
        let env = TestEnv::new();
        let f = env.path("attr.txt");
        std::fs::write(&f, "x").unwrap();
        let flags = || {
            let out = std::process::Command::new("lsattr").args(["-d", &f]).output();
            out.ok().filter(|o| o.status.success()).map(|o| {
                String::from_utf8_lossy(&o.stdout)
                    .split_whitespace()
                    .next()
                    .unwrap_or("")
                    .replace('-', "")
            })
        };
        // Only where the file system has attributes (ext4 has `e`).
        if flags().is_none_or(|f| f != "e") {
            return;
        }
        let set = json!({"path": f, "attributes": "Ae"});
        let r = env.run(&FileModule, set.clone(), false).await.unwrap();
        assert!(r.changed);
        assert_eq!(flags().as_deref(), Some("Ae"));
        assert!(!env.run(&FileModule, set, false).await.unwrap().changed);
        let unset = json!({"path": f, "attr": "-A"});
        let r = env.run(&FileModule, unset.clone(), true).await.unwrap();
        assert!(r.changed);
        assert!(r.diff.iter().any(|d| d.after.contains("attributes: -A")));
        assert_eq!(flags().as_deref(), Some("Ae"));
        assert!(env.run(&FileModule, unset, false).await.unwrap().changed);
        assert_eq!(flags().as_deref(), Some("e"));
        // A flag chattr refuses fails loudly.
        let r = env
            .run(&FileModule, json!({"path": f, "attributes": "+E"}), false)
            .await;
        assert!(
            matches!(&r, Err(ModuleError::Failed(m)) if m.contains("chattr failed")),
            "{r:?}"
        );
    }

    #[tokio::test]
    async fn directory_apply_idempotent_and_check_mode() {
        let env = TestEnv::new();
        let d = env.path("a/b");
        let args = json!({"path": d, "state": "directory", "mode": "0750"});
        // Check mode on a missing directory predicts a change and creates nothing.
        let r = env.run(&FileModule, args.clone(), true).await.unwrap();
        assert!(r.changed);
        assert!(!std::path::Path::new(&d).exists());
        let r = env.run(&FileModule, args.clone(), false).await.unwrap();
        assert!(r.changed);
        assert_eq!(mode_of(&d), 0o750);
        assert_eq!(r.ret["mode"], "0750");
        assert_eq!(r.ret["state"], "directory");
        let r = env.run(&FileModule, args.clone(), false).await.unwrap();
        assert!(!r.changed);
        // Symbolic mode change: check mode predicts, leaves it, real run applies.
        let args = json!({"path": d, "state": "directory", "mode": "g+w,o+rx"});
        let r = env.run(&FileModule, args.clone(), true).await.unwrap();
        assert!(r.changed);
        assert!(r.diff[0].before.contains("mode: '0750'") && r.diff[0].after.contains("mode: '0775'"));
        assert_eq!(mode_of(&d), 0o750);
        let r = env.run(&FileModule, args.clone(), false).await.unwrap();
        assert!(r.changed);
        assert_eq!(mode_of(&d), 0o775);
        assert!(!env.run(&FileModule, args, false).await.unwrap().changed);
    }

    #[tokio::test]
    async fn file_state_attrs_and_errors() {
        let env = TestEnv::new();
        let f = env.path("f");
        let e = env.run(&FileModule, json!({"path": f, "mode": "0600"}), false).await;
        assert!(matches!(e, Err(ModuleError::Failed(m)) if m.contains("absent")));
        std::fs::write(&f, "x").unwrap();
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o644)).unwrap();
        let args = json!({"path": f, "mode": "0600"});
        assert!(env.run(&FileModule, args.clone(), true).await.unwrap().changed);
        assert_eq!(mode_of(&f), 0o644);
        assert!(env.run(&FileModule, args.clone(), false).await.unwrap().changed);
        assert_eq!(mode_of(&f), 0o600);
        assert!(!env.run(&FileModule, args, false).await.unwrap().changed);
        // Owner given as the current user's name or uid is no change.
        let me = String::from_utf8(std::process::Command::new("id").arg("-un").output().unwrap().stdout).unwrap();
        let r = env
            .run(&FileModule, json!({"path": f, "owner": me.trim()}), false)
            .await
            .unwrap();
        assert!(!r.changed);
        let e = env.run(&FileModule, json!({"path": f, "state": "bogus"}), false).await;
        assert!(matches!(e, Err(ModuleError::Args(_))));
        let e = env.run(&FileModule, json!({"path": f, "mode": "xyz"}), false).await;
        assert!(matches!(e, Err(ModuleError::Args(_))));
    }

    #[tokio::test]
    async fn links_touch_and_absent() {
        let env = TestEnv::new();
        let target = env.path("t");
        std::fs::write(&target, "t").unwrap();
        let l = env.path("l");
        let args = json!({"path": l, "src": target, "state": "link"});
        assert!(env.run(&FileModule, args.clone(), true).await.unwrap().changed);
        assert!(std::fs::symlink_metadata(&l).is_err());
        assert!(env.run(&FileModule, args.clone(), false).await.unwrap().changed);
        assert_eq!(std::fs::read_link(&l).unwrap().display().to_string(), target);
        assert!(!env.run(&FileModule, args, false).await.unwrap().changed);
        // Missing src without force fails; with force the link is made.
        let e = env
            .run(
                &FileModule,
                json!({"path": env.path("l2"), "src": "missing", "state": "link"}),
                false,
            )
            .await;
        assert!(matches!(e, Err(ModuleError::Failed(_))));
        let r = env
            .run(
                &FileModule,
                json!({"path": env.path("l2"), "src": "missing", "state": "link", "force": true}),
                false,
            )
            .await
            .unwrap();
        assert!(r.changed);
        // Hard link.
        let h = env.path("h");
        let args = json!({"path": h, "src": target, "state": "hard"});
        assert!(env.run(&FileModule, args.clone(), false).await.unwrap().changed);
        assert!(!env.run(&FileModule, args, false).await.unwrap().changed);
        // Touch: creates, always changes with "now", not with preserve.
        let t = env.path("touched");
        let r = env
            .run(&FileModule, json!({"path": t, "state": "touch", "mode": "0600"}), false)
            .await
            .unwrap();
        assert!(r.changed);
        assert_eq!(mode_of(&t), 0o600);
        let pres = json!({"path": t, "state": "touch", "modification_time": "preserve", "access_time": "preserve"});
        assert!(!env.run(&FileModule, pres, false).await.unwrap().changed);
        let at =
            json!({"path": t, "state": "touch", "modification_time": "202001021530.00", "access_time": "preserve"});
        assert!(env.run(&FileModule, at.clone(), false).await.unwrap().changed);
        assert!(!env.run(&FileModule, at, false).await.unwrap().changed);
        // Absent.
        let args = json!({"path": env.path("l"), "state": "absent"});
        assert!(env.run(&FileModule, args.clone(), true).await.unwrap().changed);
        assert!(std::fs::symlink_metadata(env.path("l")).is_ok());
        assert!(env.run(&FileModule, args.clone(), false).await.unwrap().changed);
        assert!(std::fs::symlink_metadata(env.path("l")).is_err());
        assert!(!env.run(&FileModule, args, false).await.unwrap().changed);
    }

    #[tokio::test]
    async fn recurse_sets_modes_below() {
        let env = TestEnv::new();
        let d = env.path("tree");
        std::fs::create_dir_all(format!("{d}/sub")).unwrap();
        std::fs::write(format!("{d}/sub/f"), "x").unwrap();
        std::fs::set_permissions(format!("{d}/sub/f"), std::fs::Permissions::from_mode(0o600)).unwrap();
        let args = json!({"path": d, "state": "directory", "recurse": true, "mode": "u=rwX,g=rX,o=rX"});
        assert!(env.run(&FileModule, args.clone(), true).await.unwrap().changed);
        assert_eq!(mode_of(&format!("{d}/sub/f")), 0o600);
        assert!(env.run(&FileModule, args.clone(), false).await.unwrap().changed);
        assert_eq!(mode_of(&format!("{d}/sub/f")), 0o644);
        assert_eq!(mode_of(&format!("{d}/sub")), 0o755);
        assert!(!env.run(&FileModule, args, false).await.unwrap().changed);
    }

    /// The one-round-trip path (no diff mode) reports and does what the general one does.
    #[tokio::test]
    async fn fast_apply_directory_and_file_modes() {
        let env = TestEnv::new();
        let run = |args: serde_json::Value| {
            let ctx = env.ctx(false, false);
            let serde_json::Value::Object(map) = args else {
                unreachable!()
            };
            async move { crate::exec::task::execute(&FileModule, &ctx, map).await }
        };
        let d = env.path("x/y");
        let args = json!({"path": d, "state": "directory", "mode": "0750"});
        let r = run(args.clone()).await.unwrap();
        assert!(r.changed);
        assert_eq!((mode_of(&d), r.ret["mode"].clone()), (0o750, json!("0750")));
        assert!(!run(args).await.unwrap().changed);
        let r = run(json!({"path": d, "state": "directory", "mode": "0700"}))
            .await
            .unwrap();
        assert!(r.changed && mode_of(&d) == 0o700);
        // state=file: a mode change on a regular file; a missing file is an error.
        let f = env.path("x/f");
        std::fs::write(&f, "x").unwrap();
        let args = json!({"path": f, "state": "file", "mode": "0600"});
        assert!(run(args.clone()).await.unwrap().changed);
        assert_eq!(mode_of(&f), 0o600);
        assert!(!run(args).await.unwrap().changed);
        assert!(
            run(json!({"path": env.path("x/none"), "state": "file", "mode": "0600"}))
                .await
                .is_err()
        );
        // Without a state, an existing file or directory just gets the mode; a missing one is an error.
        let r = run(json!({"path": f, "mode": "0604"})).await.unwrap();
        assert!(r.changed && mode_of(&f) == 0o604 && r.ret["state"] == "file");
        assert!(!run(json!({"path": f, "mode": "0604"})).await.unwrap().changed);
        let r = run(json!({"path": d, "mode": "0711"})).await.unwrap();
        assert!(r.changed && mode_of(&d) == 0o711 && r.ret["state"] == "directory");
        assert!(run(json!({"path": env.path("x/none"), "mode": "0600"})).await.is_err());
        std::fs::set_permissions(&f, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
        // A file where a directory is wanted is an error and stays a file.
        assert!(run(json!({"path": f, "state": "directory"})).await.is_err());
        assert!(std::path::Path::new(&f).is_file());
        // Through a symlink the general path follows it, as before.
        std::os::unix::fs::symlink(&f, env.path("x/l")).unwrap();
        let r = run(json!({"path": env.path("x/l"), "state": "file", "mode": "0640"}))
            .await
            .unwrap();
        assert!(r.changed && mode_of(&f) == 0o640);
    }
}
