//! The state of a remote file for the content-editing modules
//! (`lineinfile`, `blockinfile`, `replace`, `assemble`, ...).
//!
//! They share one shape: one round trip reads the target's
//! stat and content ([`query_file`]), the new content is computed here on the
//! controller, and only a real difference is uploaded atomically
//! ([`write_file`]). Owner/group/mode are compared and applied separately
//! ([`apply_attrs`]) so they count toward `changed` like in Ansible.
//!
//! A `FileState` is the path's [`RemoteStat`] (the one description of a
//! remote path, see [`super::remote_file`]) plus what these modules need
//! besides: the resolved path, the parent's existence, the content and the
//! remote user.

use super::command::run_checked;
use super::remote_file::{self as remote, parse_stat, RemoteStat, RemoteUser, STAT_FMT};
use crate::connection::{sh_quote, FileAttrs};
use crate::modules::{Diff, ModuleCtx, ModuleError};
use crate::shell::split_words;

/// The one description of a path's kind and of its attributes, shared with
/// the whole-file modules; `AttrParams` is the name the content-editing
/// modules know the wanted owner/group/mode by.
pub(crate) use super::remote_file::{Attrs as AttrParams, Kind};

/// The state of one remote path and of the remote user, from one round trip.
#[derive(Debug, Clone)]
pub(crate) struct FileState {
    /// The path's stat, links followed (its size is the link target's);
    /// `None` when it does not exist.
    pub stat: Option<RemoteStat>,
    /// The path with symlinks resolved: writes go there, as Ansible does.
    pub real_path: String,
    /// Whether the parent directory exists (for `create`).
    pub parent_exists: bool,
    pub content: Option<Vec<u8>>,
    /// The remote user: its umask, user and group (new files get these).
    pub user: RemoteUser,
}

impl FileState {
    pub fn exists(&self) -> bool {
        self.stat.is_some()
    }

    /// What the path is (links followed), `None` when absent.
    pub fn kind(&self) -> Option<Kind> {
        self.stat.as_ref().map(|s| s.kind)
    }

    pub fn is_dir(&self) -> bool {
        self.kind() == Some(Kind::Dir)
    }

    fn is_file(&self) -> bool {
        self.kind() == Some(Kind::File)
    }
}

/// Largest file whose content [`query_file`] reads over SFTP (every read
/// request of it is sent at once).
const SFTP_READ_MAX: u64 = 8 * 1024 * 1024;

/// Read the stat (following symlinks) and, for a regular file and when
/// `with_content`, the content of `path`, in one command.
pub(crate) async fn query_file(ctx: &ModuleCtx<'_>, path: &str, with_content: bool) -> Result<FileState, ModuleError> {
    let known = remote::known_whoami(ctx);
    if let Some(st) = prefetched_state(ctx, path, with_content, &known) {
        return st;
    }
    // A regular file's content is read over SFTP after the query (no `cat`
    // started on the host) where the shell would read the same bytes.
    // (Not where the prefetch may answer: see `prefetched_state`.)
    let sftp = match with_content && !super::prefetch::may_answer(ctx) {
        true => crate::connection::sftp_for_reading(ctx.conn, path, ctx.become_).await,
        false => None,
    };
    // With the user known, a regular file or a missing one (and its
    // parent) is asked over SFTP too: no program at all on the host.
    if let (Some(sftp), Some(_)) = (&sftp, &known) {
        if let Some(out) = sftp_state(sftp, path).await {
            let st = parse_query(path, known.clone(), out.as_bytes())?;
            return read_content_over_sftp(ctx, sftp, path, st).await;
        }
    }
    let with_content_here = with_content && sftp.is_none();
    // Only a link itself is resolved (`readlink -f`): writes go to its
    // target; through a linked parent directory the path itself works.
    // In check mode the runner may have prefetched the stat line.
    let (exists, stat) = match super::prefetch::cached(ctx, path, true, false) {
        Some(c) => match c.stat {
            Some(line) => ("true".to_string(), format!("printf '%s\\n' {}", sh_quote(&line))),
            None => ("false".to_string(), ":".to_string()),
        },
        None => (
            "[ -e \"$p\" ]".to_string(),
            format!("stat -L -c '{STAT_FMT}' -- \"$p\" || exit 3"),
        ),
    };
    let script = format!(
        "p={p}; {who}\
         if {exists}; then {stat}; \
         if [ -L \"$p\" ]; then readlink -f -- \"$p\" || echo \"$p\"; else printf '%s\\n' \"$p\"; fi; \
         if [ -f \"$p\" ] && [ {want} = 1 ]; then cat -- \"$p\" || exit 4; fi; \
         else echo ABSENT; case \"$p\" in */*) d=\"${{p%/*}}\"; d=\"${{d:-/}}\";; *) d=.;; esac; \
         if [ -d \"$d\" ]; then echo PARENT; else echo NOPARENT; fi; fi",
        p = sh_quote(path),
        who = if known.is_some() { "" } else { "umask; LC_ALL=C id; " },
        want = u8::from(with_content_here),
    );
    let out = ctx.run(&script).await?;
    if out.status != 0 {
        return Err(ModuleError::Failed(format!(
            "cannot read {path}: {}",
            out.stderr_str().trim()
        )));
    }
    if known.is_none() {
        let mut lines = out.stdout.split(|&b| b == b'\n');
        if let (Some(u), Some(id)) = (lines.next(), lines.next()) {
            remote::remember_whoami(ctx, &String::from_utf8_lossy(u), &String::from_utf8_lossy(id));
        }
    }
    let st = parse_query(path, known, &out.stdout)?;
    match &sftp {
        Some(sftp) => read_content_over_sftp(ctx, sftp, path, st).await,
        None => Ok(st),
    }
}

/// [`query_file`]'s script output (without the user's lines) for a path
/// that is a regular file, not a link (its real path is itself), or that
/// is missing, from SFTP: `None` for anything else or an error.
async fn sftp_state(sftp: &crate::connection::sftp::Sftp, path: &str) -> Option<String> {
    let parent = super::prefetch::shell_parent(path);
    let mut st = remote::sftp_stats(sftp, &[(path, false), (&parent, true)]).await?;
    let parent_dir = st.pop()?.is_some_and(|p| p.kind == Kind::Dir);
    match st.pop()? {
        None if parent_dir => Some("ABSENT\nPARENT\n".into()),
        None => Some("ABSENT\nNOPARENT\n".into()),
        Some(s) if s.kind == Kind::File => Some(format!("{}\n{path}\n", remote::stat_line(&s))),
        Some(_) => None,
    }
}

/// Fill in a regular file's content, read over SFTP.
async fn read_content_over_sftp(
    ctx: &ModuleCtx<'_>,
    sftp: &crate::connection::sftp::Sftp,
    path: &str,
    mut st: FileState,
) -> Result<FileState, ModuleError> {
    if let Some(size) = st.stat.as_ref().filter(|s| s.kind == Kind::File).map(|s| s.size) {
        // `stat -L` said regular file: its real path is no FIFO to block on.
        // A file that grew meanwhile, or one SFTP cannot read: `cat`.
        let read = match size <= SFTP_READ_MAX {
            true => sftp.read_small(&st.real_path, size as usize).await.ok().flatten(),
            false => None,
        };
        st.content = Some(match read {
            Some(bytes) => bytes,
            None => {
                let o = ctx.run(&format!("cat -- {}", sh_quote(&st.real_path))).await?;
                if o.status != 0 {
                    return Err(ModuleError::Failed(format!(
                        "cannot read {path}: {}",
                        o.stderr_str().trim()
                    )));
                }
                o.stdout
            }
        });
    }
    Ok(st)
}

/// [`query_file`]'s answer made from the check-mode prefetch alone (the
/// path is not a link, its content and, when absent, its parent are known).
fn prefetched_state(
    ctx: &ModuleCtx<'_>,
    path: &str,
    with_content: bool,
    known: &Option<(String, String)>,
) -> Option<Result<FileState, ModuleError>> {
    use super::prefetch;
    known.as_ref()?;
    let c = prefetch::cached(ctx, path, true, false)?;
    let mut out = Vec::new();
    match &c.stat {
        None => {
            let parent = prefetch::cached(ctx, &prefetch::shell_parent(path), true, false)?;
            out.extend_from_slice(if parent.is_dir() {
                b"ABSENT\nPARENT\n"
            } else {
                b"ABSENT\nNOPARENT\n"
            });
        }
        Some(line) => {
            out.extend_from_slice(format!("{line}\n{path}\n").as_bytes());
            if c.is_file() && with_content {
                out.extend_from_slice(prefetch::cached_content(ctx, path)?.as_bytes());
            }
        }
    }
    Some(parse_query(path, known.clone(), &out))
}

/// Parse [`query_file`]'s answer; `known` is the umask and `id` lines when
/// the script did not print them.
pub(crate) fn parse_query(path: &str, known: Option<(String, String)>, out: &[u8]) -> Result<FileState, ModuleError> {
    let bad = || ModuleError::Failed(format!("unexpected answer while reading the state of {path}"));
    let mut rest = out;
    let mut next_line = || -> Option<String> {
        let pos = rest.iter().position(|&b| b == b'\n')?;
        let line = String::from_utf8_lossy(&rest[..pos]).into_owned();
        rest = &rest[pos + 1..];
        Some(line)
    };
    let (umask_line, id_line) = match known {
        Some(k) => k,
        None => (next_line().ok_or_else(bad)?, next_line().ok_or_else(bad)?),
    };
    let umask = u32::from_str_radix(umask_line.trim(), 8).map_err(|_| bad())?;
    let (uid, user, gid, group) = parse_id(&id_line).ok_or_else(bad)?;
    let stat = next_line().ok_or_else(bad)?;
    let mut st = FileState {
        stat: None,
        real_path: path.to_string(),
        parent_exists: true,
        content: None,
        user: RemoteUser {
            uid,
            gid,
            user,
            group,
            umask,
        },
    };
    if stat == "ABSENT" {
        st.parent_exists = next_line().as_deref() == Some("PARENT");
        return Ok(st);
    }
    st.stat = Some(parse_stat(&stat).ok_or_else(bad)?);
    st.real_path = next_line().ok_or_else(bad)?;
    if st.is_file() {
        st.content = Some(rest.to_vec());
    }
    Ok(st)
}

/// The effective user and group from one line of `LC_ALL=C id`
/// (`uid=0(root) gid=0(root) groups=...`, with `euid=`/`egid=` when they
/// differ from the real ones): (uid, user, gid, group). A number without a
/// name stands for itself.
pub(crate) fn parse_id(line: &str) -> Option<(u32, String, u32, String)> {
    fn field(line: &str, key: &str) -> Option<(u32, String)> {
        let at = if line.starts_with(key) {
            0
        } else {
            line.find(&format!(" {key}"))? + 1
        };
        let rest = &line[at + key.len()..];
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        let n: u32 = rest[..digits].parse().ok()?;
        let name = rest[digits..]
            .strip_prefix('(')
            .and_then(|r| r.split_once(')'))
            .map_or_else(|| n.to_string(), |(name, _)| name.to_string());
        Some((n, name))
    }
    let (uid, user) = field(line, "euid=").or_else(|| field(line, "uid="))?;
    let (gid, group) = field(line, "egid=").or_else(|| field(line, "gid="))?;
    Some((uid, user, gid, group))
}

/// What the wanted attributes mean for a path's [`FileState`].
impl AttrParams {
    /// Would applying these attributes change the existing path `st`
    /// (links followed)? Names and ids compare as `differ_for_new`'s.
    pub(crate) fn differ(&self, st: &FileState) -> bool {
        // An absent path compares as mode 0, ids 0 and empty names.
        let none = RemoteStat::owned(Kind::Other, 0, 0, 0, String::new(), String::new());
        let st = st.stat.as_ref().unwrap_or(&none);
        let is_dir = st.kind == Kind::Dir;
        let owner_differs = self
            .owner
            .as_ref()
            .is_some_and(|o| *o != st.owner && *o != st.uid.to_string());
        let group_differs = self
            .group
            .as_ref()
            .is_some_and(|g| *g != st.group && *g != st.gid.to_string());
        let mode_differs = self
            .target_mode(st.mode, is_dir)
            .is_some_and(|m| m & 0o7777 != st.mode & 0o7777);
        owner_differs || group_differs || mode_differs
    }

    /// Would a file newly created by the remote user need these attributes applied?
    pub(crate) fn differ_for_new(&self, st: &FileState) -> bool {
        let u = &st.user;
        let default_mode = 0o666 & !u.umask;
        let owner_differs = self
            .owner
            .as_ref()
            .is_some_and(|o| *o != u.user && *o != u.uid.to_string());
        let group_differs = self
            .group
            .as_ref()
            .is_some_and(|g| *g != u.group && *g != u.gid.to_string());
        let mode_differs = self.target_mode(default_mode, false).is_some_and(|m| m != default_mode);
        owner_differs || group_differs || mode_differs
    }

    /// Attributes for an upload replacing `st` (or creating it).
    pub(crate) fn file_attrs(&self, st: &FileState) -> FileAttrs {
        let base = match &st.stat {
            Some(s) => s.mode,
            None => 0o666 & !st.user.umask,
        };
        FileAttrs {
            mode: self.target_mode(base, false),
            owner: self.owner.clone(),
            group: self.group.clone(),
        }
    }
}

/// Apply owner/group/mode to an existing path when they differ (a
/// [`crate::modules::Change`]'s step; queries compare with
/// [`AttrParams::differ`]); returns whether something changed.
pub(crate) async fn apply_attrs(ctx: &ModuleCtx<'_>, st: &FileState, attrs: &AttrParams) -> Result<bool, ModuleError> {
    if !attrs.differ(st) {
        return Ok(false);
    }
    let cmd = attrs.shell_commands(&sh_quote(&st.real_path));
    let out = ctx.run(&cmd).await?;
    if out.status != 0 {
        return Err(ModuleError::Failed(format!(
            "cannot set attributes of {}: {}",
            st.real_path,
            out.stderr_str().trim()
        )));
    }
    Ok(true)
}

/// The [`crate::modules::Change`] of a file-editing module when only owner,
/// group or mode differ.
pub(crate) struct SetAttrs {
    pub st: FileState,
    pub attrs: AttrParams,
}

#[async_trait::async_trait]
impl crate::modules::Change for SetAttrs {
    async fn apply(
        self: Box<Self>,
        ctx: &ModuleCtx<'_>,
        planned: crate::modules::ModuleOutcome,
    ) -> Result<crate::modules::ModuleOutcome, ModuleError> {
        apply_attrs(ctx, &self.st, &self.attrs).await?;
        Ok(planned)
    }
}

/// Append Ansible's attribute message to `msg` (see `check_file_attrs`).
pub(crate) fn attrs_msg(msg: &mut String, content_changed: bool) {
    if content_changed {
        msg.push_str(" and ");
    }
    msg.push_str("ownership, perms or SE linux context changed");
}

/// Copy `path` next to itself as `path.PID.YYYY-MM-DD@HH:MM:SS~` (Ansible's
/// `backup_local`); returns the backup's name.
pub(crate) async fn backup_local(ctx: &ModuleCtx<'_>, path: &str) -> Result<String, ModuleError> {
    let script = remote::backup_script(path);
    let out = ctx.run(&script).await?;
    if out.status != 0 {
        return Err(ModuleError::Failed(format!(
            "cannot back up {path}: {}",
            out.stderr_str().trim()
        )));
    }
    Ok(out.stdout_str())
}

/// Create the parent directories of `path` (Ansible's `create: yes`).
pub(crate) async fn make_parents(ctx: &ModuleCtx<'_>, path: &str) -> Result<(), ModuleError> {
    let out = ctx
        .run(&format!("mkdir -p -- \"$(dirname -- {})\"", sh_quote(path)))
        .await?;
    if out.status != 0 {
        return Err(ModuleError::Failed(format!(
            "Error creating the directory of {path}: {}",
            out.stderr_str().trim()
        )));
    }
    Ok(())
}

/// Check a `validate` command line: it must name the file as `%s`.
pub(crate) fn check_validate(validate: Option<&str>) -> Result<(), ModuleError> {
    match validate {
        Some(v) if !v.contains("%s") => Err(ModuleError::Args(format!("validate must contain %s: {v}"))),
        _ => Ok(()),
    }
}

/// The shell command line of a `validate` check of `file`, run as Ansible's
/// modules run it (`module.run_command(validate % path)`): the command is not
/// shell code but split into words like a shell does (quotes, backslashes);
/// `%s` in a word becomes the file's path and `%%` a `%` (Python's `%`
/// formatting); then, as `run_command` does for every word,
/// `$NAME`/`${NAME}` become the host's environment variable (left as written
/// when it is unset) and a leading `~`/`~user` the home directory. Every
/// other character is quoted, so `$(...)`, backticks, `;`, `|` or globs in a
/// word are plain characters of an argument.
pub(crate) fn validate_command(validate: &str, file: &str) -> Result<String, ModuleError> {
    let words = split_words(validate)
        .ok_or_else(|| ModuleError::Args(format!("validate: unbalanced quotes in `{validate}`")))?;
    if words.is_empty() {
        return Err(ModuleError::Args("validate: empty command".into()));
    }
    Ok(words
        .iter()
        .map(|w| validate_word(w, file))
        .collect::<Vec<_>>()
        .join(" "))
}

/// One word of a `validate` command as shell text (see [`validate_command`]).
fn validate_word(word: &str, file: &str) -> String {
    let mut out = String::new();
    let mut lit = String::new();
    let flush = |lit: &mut String, out: &mut String| {
        if !lit.is_empty() {
            out.push_str(&sh_quote(lit));
            lit.clear();
        }
    };
    let mut rest = word;
    // expanduser: `~` or `~user` up to the first `/`.
    if let Some(after) = rest.strip_prefix('~') {
        let end = after.find('/').unwrap_or(after.len());
        let user = &after[..end];
        if user.is_empty() {
            out.push_str("\"$HOME\"");
            rest = &after[end..];
        } else if user
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
            && !user.starts_with('-')
        {
            // The shell's own tilde expansion (unquoted), unchanged when unknown.
            out.push('~');
            out.push_str(user);
            rest = &after[end..];
        }
    }
    let is_name = |s: &str| {
        let mut c = s.chars();
        matches!(c.next(), Some(ch) if ch.is_ascii_alphabetic() || ch == '_')
            && c.all(|ch| ch.is_ascii_alphanumeric() || ch == '_')
    };
    while let Some(c) = rest.chars().next() {
        match c {
            '%' if rest.starts_with("%s") => {
                lit.push_str(file);
                rest = &rest[2..];
            }
            '%' if rest.starts_with("%%") => {
                lit.push('%');
                rest = &rest[2..];
            }
            '$' => {
                let after = &rest[1..];
                let (name, len) = if let Some(braced) = after.strip_prefix('{') {
                    match braced.find('}') {
                        Some(i) => (&braced[..i], i + 3),
                        None => ("", 0),
                    }
                } else {
                    let n = after
                        .find(|ch: char| !(ch.is_ascii_alphanumeric() || ch == '_'))
                        .unwrap_or(after.len());
                    (&after[..n], n + 1)
                };
                if len > 0 && is_name(name) {
                    flush(&mut lit, &mut out);
                    let written = &rest[..len];
                    out.push_str(&format!(
                        "\"$(if [ -n \"${{{name}+x}}\" ]; then printf %s \"${name}\"; else printf %s {}; fi)\"",
                        sh_quote(written)
                    ));
                    rest = &rest[len..];
                } else {
                    lit.push('$');
                    rest = after;
                }
            }
            _ => {
                lit.push(c);
                rest = &rest[c.len_utf8()..];
            }
        }
    }
    flush(&mut lit, &mut out);
    if out.is_empty() {
        out.push_str("''");
    }
    out
}

/// The extension of `dest` (`.json` of `/etc/app/conf.json`, none of
/// `.bashrc`), which Ansible keeps on the temporary file it validates
/// ("ensure we keep suffix for validate"): validators that go by the
/// extension see the same name.
pub(crate) fn temp_suffix(dest: &str) -> &str {
    let base = dest.rsplit('/').next().unwrap_or(dest);
    let stem_start = base.len() - base.trim_start_matches('.').len();
    match base[stem_start..].rfind('.') {
        Some(i) => &base[stem_start + i..],
        None => "",
    }
}

/// Atomically replace `dest` with `data`. With `validate`, the new content is
/// first written to a temp file next to `dest`, checked with the command
/// (`%s` = the temp file), and only renamed into place when it passes.
pub(crate) async fn write_file(
    ctx: &ModuleCtx<'_>,
    dest: &str,
    data: &[u8],
    attrs: &FileAttrs,
    validate: Option<&str>,
) -> Result<(), ModuleError> {
    let Some(validate) = validate else {
        ctx.put_bytes(data, dest, attrs).await?;
        return Ok(());
    };
    let dir = match dest.rfind('/') {
        Some(0) => "/".to_string(),
        Some(i) => dest[..i].to_string(),
        None => ".".to_string(),
    };
    let tmp = format!(
        "{}/.rigger-validate-{:016x}{}",
        dir.trim_end_matches('/'),
        rand::random::<u64>(),
        temp_suffix(dest)
    );
    let cmd = validate_command(validate, &tmp)?;
    // The temp file is new: give it the destination's current mode explicitly.
    let mut tmp_attrs = attrs.clone();
    if tmp_attrs.mode.is_none() {
        let out = ctx
            .run(&format!(
                "d={}; if [ -e \"$d\" ]; then stat -c %a -- \"$d\"; else printf '%o\\n' $(( 0666 & ~$(umask) )); fi",
                sh_quote(dest)
            ))
            .await?;
        tmp_attrs.mode = u32::from_str_radix(out.stdout_str().trim(), 8).ok();
    }
    ctx.put_bytes(data, &tmp, &tmp_attrs).await?;
    let out = ctx.run(&cmd).await?;
    if out.status != 0 {
        let _ = ctx.run(&format!("rm -f -- {}", sh_quote(&tmp))).await;
        return Err(ModuleError::Failed(format!(
            "failed to validate: rc:{} error:{}",
            out.status,
            out.stderr_str().trim()
        )));
    }
    let keep_owner = if attrs.owner.is_none() && attrs.group.is_none() {
        "[ -e \"$d\" ] && chown \"$(stat -c %u:%g -- \"$d\")\" \"$t\" 2>/dev/null; "
    } else {
        ""
    };
    let out = ctx
        .run(&format!(
            "t={}; d={}; {keep_owner}mv -f -- \"$t\" \"$d\" || {{ rm -f -- \"$t\"; exit 1; }}",
            sh_quote(&tmp),
            sh_quote(dest)
        ))
        .await?;
    if out.status != 0 {
        return Err(ModuleError::Failed(format!(
            "cannot write {dest}: {}",
            out.stderr_str().trim()
        )));
    }
    Ok(())
}

/// A full-file content diff, as Ansible's `(content)` diffs.
pub(crate) fn content_diff(path: &str, before: &[u8], after: &[u8]) -> Diff {
    Diff {
        before_header: format!("{path} (content)"),
        after_header: format!("{path} (content)"),
        before: String::from_utf8_lossy(before).into_owned(),
        after: String::from_utf8_lossy(after).into_owned(),
    }
}

/// Split like Python's `bytes.readlines()`: on `\n`, keeping it.
pub(crate) fn readlines(data: &[u8]) -> Vec<Vec<u8>> {
    data.split_inclusive(|&b| b == b'\n').map(<[u8]>::to_vec).collect()
}

/// Split like Python's `bytes.splitlines(True)`: on `\n`, `\r\n` or `\r`, keeping them.
pub(crate) fn splitlines_keepends(data: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut i = 0;
    while i < data.len() {
        match data[i] {
            b'\n' => {
                out.push(data[start..=i].to_vec());
                start = i + 1;
            }
            b'\r' => {
                let end = if data.get(i + 1) == Some(&b'\n') { i + 1 } else { i };
                out.push(data[start..=end].to_vec());
                i = end;
                start = end + 1;
            }
            _ => {}
        }
        i += 1;
    }
    if start < data.len() {
        out.push(data[start..].to_vec());
    }
    out
}

/// A line without its trailing `\r`/`\n` characters (Python's `rstrip(b'\r\n')`).
pub(crate) fn rstrip_eol(line: &[u8]) -> &[u8] {
    let mut end = line.len();
    while end > 0 && matches!(line[end - 1], b'\r' | b'\n') {
        end -= 1;
    }
    &line[..end]
}

/// Reject a path that is a directory, with Ansible's message.
pub(crate) fn not_a_dir(st: &FileState, path: &str) -> Result<(), ModuleError> {
    if st.is_dir() {
        return Err(ModuleError::Failed(format!("Path {path} is a directory !")));
    }
    Ok(())
}

/// The content of a remote file, or `None` when it does not exist.
pub async fn read_opt(ctx: &ModuleCtx<'_>, path: &str) -> Result<Option<String>, ModuleError> {
    let cmd = format!(
        "p={}; if [ -e \"$p\" ]; then printf y; cat -- \"$p\" || exit 1; else printf n; fi",
        sh_quote(path)
    );
    let out = run_checked(ctx, &format!("reading {path}"), &cmd).await?;
    let text = out.stdout_str();
    Ok(text.strip_prefix('y').map(str::to_string))
}

/// Atomically replace a remote file's content (keeping an existing file's mode).
pub async fn write_text(ctx: &ModuleCtx<'_>, path: &str, text: &str, mode: Option<u32>) -> Result<(), ModuleError> {
    let attrs = FileAttrs {
        mode,
        ..Default::default()
    };
    ctx.put_bytes(text.as_bytes(), path, &attrs).await?;
    Ok(())
}

/// Copy `path` to a timestamped backup next to it; returns the backup's name.
pub async fn backup_file(ctx: &ModuleCtx<'_>, path: &str) -> Result<String, ModuleError> {
    let cmd = super::remote_file::backup_script(path);
    Ok(run_checked(ctx, &format!("backing up {path}"), &cmd)
        .await?
        .stdout_str())
}

#[cfg(test)]
pub(crate) mod testutil {
    //! A `ModuleCtx` over the local connection, for the modules' tests.

    use std::path::PathBuf;

    use serde_json::{Map, Value};

    use crate::connection::local::LocalConnection;
    use crate::modules::{Module, ModuleCtx, ModuleError, ModuleOutcome};
    use crate::template::Templar;
    use crate::yaml::Loc;

    pub struct Harness {
        pub conn: LocalConnection,
        pub templar: Templar,
        pub vars: minijinja::Value,
        pub loc: Loc,
        pub search: Vec<PathBuf>,
    }

    impl Harness {
        pub fn new() -> Self {
            Harness {
                conn: LocalConnection::new("localhost"),
                templar: Templar::new(),
                vars: minijinja::Value::UNDEFINED,
                loc: Loc::synthetic("test"),
                search: Vec::new(),
            }
        }

        pub fn ctx(&self, check: bool) -> ModuleCtx<'_> {
            ModuleCtx {
                conn: &self.conn,
                host: "localhost",
                check_mode: check,
                diff_mode: true,
                become_: None,
                env: &[],
                templar: &self.templar,
                vars: &self.vars,
                search_paths: &self.search,
                loc: &self.loc,
                max_output: crate::connection::output::DEFAULT_MAX_OUTPUT,
                no_log: false,
                rlimit_nofile: None,
            }
        }

        pub async fn run(&self, m: &dyn Module, check: bool, args: Value) -> Result<ModuleOutcome, ModuleError> {
            let map: Map<String, Value> = match args {
                Value::Object(m) => m,
                _ => Map::new(),
            };
            crate::exec::task::execute(m, &self.ctx(check), map).await
        }
    }

    pub fn mode_of(p: &std::path::Path) -> u32 {
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(p)
            .map(|m| m.permissions().mode() & 0o7777)
            .unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The arguments the validate command line passes, as `sh` runs it.
    fn validate_argv(validate: &str, file: &str) -> Vec<String> {
        let cmd = validate_command(validate, file).unwrap();
        let out = std::process::Command::new("/bin/sh")
            .arg("-c")
            .arg(format!("set -- {cmd}; for a; do printf '%s\\0' \"$a\"; done"))
            .env("RIGQ_SET", "val ue")
            .env_remove("RIGQ_UNSET")
            .env("HOME", "/home/rq")
            .output()
            .unwrap();
        String::from_utf8(out.stdout)
            .unwrap()
            .split_terminator('\0')
            .map(str::to_string)
            .collect()
    }

    #[test]
    fn validate_runs_like_ansibles_run_command() {
        assert_eq!(
            validate_argv("check -f %s --fmt=%%Y '%s x'", "/d/.t.json"),
            ["check", "-f", "/d/.t.json", "--fmt=%Y", "/d/.t.json x"]
        );
        // expandvars (unset stays as written), then expanduser.
        assert_eq!(
            validate_argv("t $RIGQ_SET ${RIGQ_SET}/a $RIGQ_UNSET ${RIGQ_UNSET} ~/b ~ %s", "f"),
            [
                "t",
                "val ue",
                "val ue/a",
                "$RIGQ_UNSET",
                "${RIGQ_UNSET}",
                "/home/rq/b",
                "/home/rq",
                "f"
            ]
        );
        // Not shell code: substitutions and operators stay characters.
        assert_eq!(
            validate_argv("t $(id) `id` ${X:-$(id)} ; | * %s", "f"),
            ["t", "$(id)", "`id`", "${X:-$(id)}", ";", "|", "*", "f"]
        );
    }

    #[test]
    fn temp_file_keeps_the_extension() {
        assert_eq!(temp_suffix("/etc/app/conf.json"), ".json");
        assert_eq!(temp_suffix("/etc/app.d/conf"), "");
        assert_eq!(temp_suffix("/root/.bashrc"), "");
        assert_eq!(temp_suffix("/etc/x.tar.gz"), ".gz");
    }

    #[test]
    fn line_splitting_matches_python() {
        assert_eq!(readlines(b"a\nb"), vec![b"a\n".to_vec(), b"b".to_vec()]);
        assert!(readlines(b"").is_empty());
        assert_eq!(
            splitlines_keepends(b"a\r\nb\rc\n"),
            vec![b"a\r\n".to_vec(), b"b\r".to_vec(), b"c\n".to_vec()]
        );
        assert_eq!(rstrip_eol(b"x\r\n"), b"x");
    }

    #[test]
    fn query_parsing() {
        let out = b"0022\nuid=1000(me) gid=1000(us) groups=1000(us)\nregular file|644|0|0|root|root|6|1|1|1|2|3|1\n/etc/x\nhello\n";
        let st = parse_query("/etc/x", None, out).unwrap();
        assert_eq!(st.kind(), Some(Kind::File));
        assert_eq!(st.stat.as_ref().map(|s| s.mode), Some(0o644));
        assert_eq!(st.content.as_deref(), Some(&b"hello\n"[..]));
        let st = parse_query(
            "/x",
            None,
            b"0022\nuid=0(root) gid=0(root) groups=0(root)\nABSENT\nNOPARENT\n",
        )
        .unwrap();
        assert!(!st.exists());
        assert!(!st.parent_exists);
        assert!(parse_query("/x", None, b"garbage").is_err());
        let short = b"0022\nuid=0(root) gid=0(root)\nregular file|644|0|0|root|root\n/x\n";
        assert!(parse_query("/x", None, short).is_err());
    }

    #[test]
    fn id_parsing() {
        let p = parse_id;
        assert_eq!(
            p("uid=1000(me) gid=100(users) groups=100(users),27(sudo)"),
            Some((1000, "me".into(), 100, "users".into()))
        );
        // Effective ids win over real ones.
        assert_eq!(
            p("uid=1000(me) gid=1000(me) euid=0(root) egid=0(root) groups=1000(me)"),
            Some((0, "root".into(), 0, "root".into()))
        );
        // No name for the id: the number stands for it.
        assert_eq!(
            p("uid=4242 gid=4242 groups=4242"),
            Some((4242, "4242".into(), 4242, "4242".into()))
        );
        assert_eq!(p("garbage"), None);
    }
}
