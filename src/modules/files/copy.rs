//! `copy`: copy files and directories to the host.
//!
//! A single file costs one query (stat + checksum of the destination) and,
//! only when the checksum differs, one atomic upload. A directory costs one
//! query for every destination checksum at once and one `tar -x` stream with
//! just the changed files, whatever the number of files.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, Weak};

use async_trait::async_trait;
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::connection::{sh_quote, FileAttrs};
use crate::modules::args::{de_opt_mode, Mode};
use crate::modules::host::command::run_checked;
use crate::modules::host::digest::sha1_hex;
use crate::modules::host::prefetch;
use crate::modules::host::remote_file::{self as remote, mode_str, Attrs, Kind, RemoteStat, RemoteUser};
use crate::modules::{
    parse_params, Change, Diff, Module, ModuleCtx, ModuleDoc, ModuleError, ModuleOutcome, OptKind, OptionDoc, Plan,
    ReturnDoc,
};

const OPTIONS: &[OptionDoc] = &[
    OptionDoc::new(
        "src",
        OptKind::Path,
        "Local file or directory to copy (relative paths are searched in `files/`). A directory \
is copied recursively; with a trailing `/` only its contents are copied.",
    ),
    OptionDoc::new(
        "content",
        OptKind::Raw,
        "Write this text to `dest` instead of copying `src`.",
    ),
    OptionDoc::new(
        "dest",
        OptKind::Path,
        "Remote path; a directory (or a path ending in `/`) receives `src` by name.",
    )
    .required(),
    OptionDoc::new("owner", OptKind::Str, "Owner name or uid."),
    OptionDoc::new("group", OptKind::Str, "Group name or gid."),
    OptionDoc::new(
        "mode",
        OptKind::Mode,
        "Permissions (octal, symbolic, or `preserve` to keep the source's).",
    ),
    OptionDoc::new(
        "directory_mode",
        OptKind::Mode,
        "Permissions of directories created by a recursive copy.",
    ),
    OptionDoc::new("backup", OptKind::Bool, "Keep a timestamped copy of the replaced file.").default("no"),
    OptionDoc::new(
        "force",
        OptKind::Bool,
        "Replace a destination whose content differs; `no` only creates missing files.",
    )
    .default("yes"),
    OptionDoc::new(
        "validate",
        OptKind::Str,
        "Command checking the new file before it replaces `dest`; `%s` is the temporary file. Not shell code: it is split into words like a shell does and each word is passed as one argument, so \
`|`, `;`, `$(...)` and globs are plain characters (as in Ansible).",
    ),
    OptionDoc::new(
        "remote_src",
        OptKind::Bool,
        "`src` is a file on the host, not on the controller.",
    )
    .default("no"),
    OptionDoc::new("follow", OptKind::Bool, "Write through a destination symbolic link.").default("no"),
    OptionDoc::new(
        "local_follow",
        OptKind::Bool,
        "Follow symbolic links in the local source.",
    )
    .default("yes"),
    OptionDoc::new(
        "checksum",
        OptKind::Str,
        "Expected SHA-1 of the source; the task fails when it differs.",
    ),
    OptionDoc::new(
        "decrypt",
        OptKind::Bool,
        "A local `src` encrypted with ansible-vault is copied decrypted (with the run's vault passwords) while this is true; false copies the encrypted file as it is.",
    )
    .default("yes"),
    OptionDoc::new("unsafe_writes", OptKind::Bool, "Accepted for compatibility.").ignored(),
];

static DOC: ModuleDoc = ModuleDoc {
    name: "copy",
    aliases: &[],
    short: "Copy files to remote locations",
    description: "Copies a local file, a local directory (recursively) or inline `content` to the host. \
Files are compared by SHA-1 first and only differing files are sent; uploads are atomic.",
    free_form: false,
    options: OPTIONS,
    examples: "- copy:\n    src: foo.conf\n    dest: /etc/foo.conf\n    owner: root\n    mode: '0644'\n    backup: yes\n\n- copy:\n    content: \"hello\\n\"\n    dest: /etc/motd\n\n- copy:\n    src: /srv/myfiles/sudoers\n    dest: /etc/sudoers\n    validate: /usr/sbin/visudo -csf %s\n",
    returns: &[
        ReturnDoc { name: "dest", description: "destination path" },
        ReturnDoc { name: "src", description: "source path" },
        ReturnDoc { name: "checksum", description: "SHA-1 of the copied file" },
        ReturnDoc { name: "size", description: "size of the destination in bytes" },
        ReturnDoc { name: "mode", description: "permissions, like '0644'" },
        ReturnDoc { name: "owner", description: "owner name" },
        ReturnDoc { name: "group", description: "group name" },
        ReturnDoc { name: "uid", description: "owner id" },
        ReturnDoc { name: "gid", description: "group id" },
        ReturnDoc { name: "backup_file", description: "path of the backup, when one was made" },
    ],
    controller_only: false,
};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Params {
    #[serde(default)]
    src: Option<String>,
    #[serde(default)]
    content: Option<Value>,
    dest: String,
    #[serde(default)]
    owner: Option<String>,
    #[serde(default)]
    group: Option<String>,
    #[serde(default, deserialize_with = "de_opt_mode")]
    mode: Option<Mode>,
    #[serde(default, deserialize_with = "de_opt_mode")]
    directory_mode: Option<Mode>,
    #[serde(default)]
    backup: bool,
    #[serde(default)]
    force: Option<bool>,
    #[serde(default)]
    validate: Option<String>,
    #[serde(default)]
    remote_src: bool,
    #[serde(default)]
    follow: bool,
    #[serde(default)]
    local_follow: Option<bool>,
    #[serde(default)]
    checksum: Option<String>,
    #[serde(default)]
    decrypt: Option<Value>,
}

pub struct CopyModule;

/// Where the bytes of a single-file copy come from.
pub(crate) enum Source {
    Bytes(Bytes),
    Local(PathBuf),
    /// A file on the host (`remote_src`).
    Remote(String),
}

/// One file to put on the host (shared with `template`).
pub(crate) struct OneFile {
    pub source: Source,
    pub dest: String,
    /// Name used when `dest` is a directory (`None`: dest must be a file).
    pub dir_basename: Option<String>,
    pub attrs: Attrs,
    /// Mode of the source, for `mode: preserve`.
    pub src_mode: Option<u32>,
    pub backup: bool,
    pub force: bool,
    pub validate: Option<String>,
    pub follow: bool,
    /// `src` as returned to the user.
    pub src_display: Option<String>,
}

#[async_trait]
impl Module for CopyModule {
    fn query_hints(&self, args: &Map<String, Value>) -> Vec<crate::modules::PathQuery> {
        crate::modules::host::prefetch::needs("copy", args)
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
        let dest = p.dest.clone();
        if dest.is_empty() {
            return Err(ModuleError::Args("copy: `dest` is required".into()));
        }
        let attrs = Attrs {
            owner: p.owner.clone(),
            group: p.group.clone(),
            mode: p.mode.clone(),
        };
        if let Some(v) = &p.validate {
            if !v.contains("%s") {
                return Err(ModuleError::Args(format!("copy: validate must contain %s: {v}")));
            }
            // Refused here (unbalanced quotes), before anything is uploaded.
            crate::modules::host::file_state::validate_command(v, "%s")?;
        }
        let force = p.force.unwrap_or(true);
        let (source, src_mode, dir_basename, src_display) = match (&p.content, &p.src) {
            (Some(_), Some(_)) => return Err(ModuleError::Args("copy: src and content are mutually exclusive".into())),
            (None, None) => return Err(ModuleError::Args("copy: one of src or content is required".into())),
            (Some(c), None) => {
                if matches!(p.mode, Some(Mode::Preserve)) {
                    return Err(ModuleError::Args("copy: mode=preserve needs src, not content".into()));
                }
                let text = match c {
                    Value::String(s) => s.clone(),
                    // Ansible serializes structured content as JSON.
                    other => other.to_string(),
                };
                (Source::Bytes(Arc::new(text.into_bytes())), None, None, None)
            }
            (None, Some(src)) if p.remote_src => (
                Source::Remote(src.clone()),
                None,
                Some(remote::basename(src)),
                Some(src.clone()),
            ),
            (None, Some(src)) => {
                let local = ctx.find_local("files", src)?;
                let meta = std::fs::metadata(&local)
                    .map_err(|e| ModuleError::Failed(format!("cannot read {}: {e}", local.display())))?;
                if meta.is_dir() {
                    return copy_dir(ctx, &p, &local, src, &dest, &attrs, force).await;
                }
                use std::os::unix::fs::PermissionsExt;
                let mode = meta.permissions().mode() & 0o7777;
                let name = remote::basename(src);
                // A vaulted source is copied decrypted; `decrypt: false` asks for it as it is.
                if p.decrypt.as_ref().is_none_or(crate::modules::args::truthy) {
                    if let Some(plain) = decrypted_source(&local)? {
                        let bytes = Source::Bytes(Arc::new(plain));
                        (bytes, Some(mode), Some(name), Some(local.display().to_string()))
                    } else {
                        (
                            Source::Local(local.clone()),
                            Some(mode),
                            Some(name),
                            Some(local.display().to_string()),
                        )
                    }
                } else {
                    (
                        Source::Local(local.clone()),
                        Some(mode),
                        Some(name),
                        Some(local.display().to_string()),
                    )
                }
            }
        };
        let one = OneFile {
            source,
            dest,
            dir_basename,
            attrs,
            src_mode,
            backup: p.backup,
            force,
            validate: p.validate.clone(),
            follow: p.follow,
            src_display,
        };
        if let Some(expected) = &p.checksum {
            if let Source::Local(path) = &one.source {
                if !hash_local_async(path.clone())
                    .await?
                    .sha1
                    .eq_ignore_ascii_case(expected)
                {
                    return Err(ModuleError::Failed(format!(
                        "copy: checksum of {} does not match the expected {expected}",
                        path.display()
                    )));
                }
            }
        }
        put_one(ctx, one).await
    }
}

/// The plaintext of a source file encrypted with ansible-vault (decrypted
/// with the run's vault passwords), `None` for a plain file: a vaulted
/// source is never copied as its ciphertext by mistake.
fn decrypted_source(path: &Path) -> Result<Option<Vec<u8>>, ModuleError> {
    use std::io::Read;
    let mut head = Vec::with_capacity(64);
    std::fs::File::open(path)
        .and_then(|f| f.take(64).read_to_end(&mut head))
        .map_err(|e| ModuleError::Failed(format!("cannot read {}: {e}", path.display())))?;
    if !crate::vault::is_encrypted(&head) {
        return Ok(None);
    }
    let data = std::fs::read(path).map_err(|e| ModuleError::Failed(format!("cannot read {}: {e}", path.display())))?;
    let plain = crate::yaml::decrypt_vaulted(&data, &path.display().to_string())
        .map(|p| p.map(|p| p.to_vec()))
        .map_err(|e| ModuleError::Failed(e.to_string()))?;
    // Its lines are secrets: a diff or a result shows them.
    if let Some(text) = plain.as_deref().and_then(|p| std::str::from_utf8(p).ok()) {
        crate::output::redact::taint_lines(text);
    }
    Ok(plain)
}

fn read_local(path: &Path) -> Result<Vec<u8>, ModuleError> {
    std::fs::read(path).map_err(|e| ModuleError::Failed(format!("cannot read {}: {e}", path.display())))
}

/// Local files up to this size are read into memory (diff, one-round-trip
/// writes); larger ones are hashed streaming and uploaded streaming, so a
/// multi-gigabyte image never sits in the controller's memory.
const KEEP_LOCAL_BYTES: u64 = 1024 * 1024;

/// The checksum and size of a local file read once, in blocks (also what
/// the host checks a streamed upload against).
type LocalSum = crate::connection::ContentSum;

fn hash_local(path: &Path) -> Result<LocalSum, ModuleError> {
    LocalSum::of_file(path).map_err(|e| ModuleError::Failed(format!("cannot read {}: {e}", path.display())))
}

/// Hashes a local file on a blocking thread (the async workers keep serving other hosts).
async fn hash_local_async(path: PathBuf) -> Result<LocalSum, ModuleError> {
    tokio::task::spawn_blocking(move || hash_local(&path))
        .await
        .map_err(|e| ModuleError::Failed(format!("hashing a local file: {e}")))?
}

/// A small local file's content, or `None` for a large one (hashed and streamed instead).
fn read_local_if_small(path: &Path) -> Result<Option<Bytes>, ModuleError> {
    let meta =
        std::fs::metadata(path).map_err(|e| ModuleError::Failed(format!("cannot read {}: {e}", path.display())))?;
    if meta.is_file() && meta.len() > KEEP_LOCAL_BYTES {
        return Ok(None);
    }
    if !meta.is_file() {
        return read_local(path).map(|b| Some(Arc::new(b)));
    }
    // Every host of a play copies the same file at about the same time: the
    // first reads it, the others share its bytes while any host still holds
    // them (one read and one copy in memory, not one per host). The same
    // file: the same inode, size, and modification and change times (a
    // rewrite in place changes the change time even where the modification
    // time is kept, as `cp -p` does). The lock is not held while reading.
    let key = shared_key(path, &meta);
    static SHARED: Mutex<Vec<(SharedKey, Weak<Vec<u8>>)>> = Mutex::new(Vec::new());
    let find = |shared: &mut Vec<(SharedKey, Weak<Vec<u8>>)>| {
        shared.retain(|(_, w)| w.strong_count() > 0);
        shared.iter().find(|(k, _)| *k == key).and_then(|(_, w)| w.upgrade())
    };
    if let Some(bytes) = find(&mut SHARED.lock().unwrap_or_else(|p| p.into_inner())) {
        return Ok(Some(bytes));
    }
    let bytes = Arc::new(read_local(path)?);
    // Shared only if the file did not change while it was read.
    let unchanged = std::fs::metadata(path).is_ok_and(|m| shared_key(path, &m) == key);
    if unchanged && bytes.len() as u64 == meta.len() {
        let mut shared = SHARED.lock().unwrap_or_else(|p| p.into_inner());
        // Another host may have read it meanwhile: share one of the two.
        if let Some(first) = find(&mut shared) {
            return Ok(Some(first));
        }
        shared.push((key, Arc::downgrade(&bytes)));
    }
    Ok(Some(bytes))
}

/// The content of a small file to copy, shared by the hosts that copy it.
/// (An `Arc<Vec>`, not `Arc<[u8]>`: the cache's weak reference then keeps
/// only the vector's header alive, not its bytes.)
pub(crate) type Bytes = Arc<Vec<u8>>;

/// A local file's path, device, inode, size, modification and change times.
type SharedKey = (PathBuf, u64, u64, u64, (i64, i64), (i64, i64));

fn shared_key(path: &Path, meta: &std::fs::Metadata) -> SharedKey {
    use std::os::unix::fs::MetadataExt;
    (
        path.to_path_buf(),
        meta.dev(),
        meta.ino(),
        meta.len(),
        (meta.mtime(), meta.mtime_nsec()),
        (meta.ctime(), meta.ctime_nsec()),
    )
}

/// Upload the new content of a copy to `to`: the bytes in memory when there
/// are some (rendered content, or a small local file, already read and
/// compared: not opened and read again through tokio's file API, which
/// takes a blocking thread for every open and read, threads that then stay
/// resident), else the local file streamed. A remote source is copied on
/// the host, not uploaded.
async fn upload(
    ctx: &ModuleCtx<'_>,
    source: &Source,
    bytes: Option<&[u8]>,
    sum: Option<&LocalSum>,
    to: &str,
    attrs: &FileAttrs,
) -> Result<(), crate::connection::ConnError> {
    match (source, bytes) {
        (_, Some(b)) => ctx.put_bytes(b, to, attrs).await,
        (Source::Local(p), None) => ctx.put_file_summed(p, to, attrs, sum.cloned()).await,
        _ => Ok(()),
    }
}

/// Plan one file's copy: query, compare checksums; the [`PutFile`] change
/// uploads if different and fixes attributes.
pub(crate) async fn put_one(ctx: &ModuleCtx<'_>, f: OneFile) -> Result<Plan, ModuleError> {
    let held = match &f.source {
        Source::Bytes(b) => Some(b.clone()),
        Source::Local(p) => read_local_if_small(p)?,
        Source::Remote(_) => None,
    };
    // The content in memory (rendered, or a small local file), if any.
    let local_bytes = held.as_deref().map(Vec::as_slice);
    // A large local file is hashed while the host answers the query below.
    let hashing = match (&f.source, local_bytes) {
        (Source::Local(p), None) => {
            let p = p.clone();
            Some(tokio::task::spawn_blocking(move || hash_local(&p)))
        }
        _ => None,
    };
    // Small content is compared with the destination's over SFTP, which
    // starts no program on the host, instead of by a remote `sha1sum`.
    let sftp_cmp = match local_bytes {
        // (Not where the prefetch may answer the query.)
        Some(b)
            if b.len() <= SFTP_COMPARE_MAX && !prefetch::may_answer(ctx) && !matches!(f.source, Source::Remote(_)) =>
        {
            crate::connection::sftp_for_reading(ctx.conn, &f.dest, ctx.become_).await
        }
        _ => None,
    };
    let algo = if sftp_cmp.is_some() { None } else { Some("sha1") };
    // 1. Query dest (and dest/basename when dest may be a directory) in one round trip.
    let mut script = remote::stat_snippet_for(ctx, "D", &f.dest, f.follow, algo);
    let in_dir = f
        .dir_basename
        .as_ref()
        .map(|b| format!("{}/{}", f.dest.trim_end_matches('/'), b));
    if let Some(p) = &in_dir {
        script.push_str(&remote::stat_snippet_for(ctx, "B", p, f.follow, algo));
    }
    if let Source::Remote(src) = &f.source {
        script.push_str(&remote::stat_snippet_for(ctx, "R", src, true, Some("sha1")));
    }
    script.push_str(&format!(
        "[ -d {} ] && echo 'PD|1'\n",
        sh_quote(&remote::parent(&f.dest))
    ));
    let known = remote::known_user(ctx);
    script.push_str(remote::whoami_unless(&known));
    // The common case (a small local file, plain octal mode or none) also
    // writes in this round trip: the script sends its query first, then puts
    // the content in place itself when it can decide alone (see fast_put).
    // Over SFTP a write costs the host no program start: then the query
    // only asks, and the write (if any) follows over SFTP.
    let sftp_attrs = FileAttrs {
        mode: None,
        owner: f.attrs.owner.clone(),
        group: f.attrs.group.clone(),
    };
    let fast = if crate::connection::sftp_upload_ready(ctx.conn, &f.dest, &sftp_attrs, ctx.become_).await {
        None
    } else {
        fast_put(ctx, &f, local_bytes)
    };
    // Over SFTP the query starts no program on the host.
    let sftp_text = match (&sftp_cmp, local_bytes, &fast) {
        (Some(sftp), Some(local), None) => sftp_query(sftp, &f, in_dir.as_deref(), known.is_some(), local).await,
        _ => None,
    };
    let out = match (&fast, local_bytes) {
        _ if sftp_text.is_some() => Ok(crate::connection::ExecOutput::ok(
            sftp_text.unwrap_or_default().into_bytes(),
        )),
        (Some(fast_script), Some(b)) => {
            script.push_str(fast_script);
            ctx.run_with_stdin(&script, b.to_vec()).await
        }
        // Check mode: everything the query asks may be known from the prefetch.
        _ => match prefetched_query(ctx, &f, in_dir.as_deref(), known.is_some()) {
            Some(out) => Ok(out),
            None => ctx.run(&script).await,
        },
    };
    let large_sum = match hashing {
        Some(h) => Some(
            h.await
                .map_err(|e| ModuleError::Failed(format!("hashing a local file: {e}")))??,
        ),
        None => None,
    };
    let out = out?;
    let text = out.stdout_str();
    if fast.is_some() && out.status != 0 {
        return Err(ModuleError::Failed(format!(
            "cannot write {}: {}",
            f.dest,
            out.stderr_str().trim()
        )));
    }
    let fast_done = fast.is_some() && text.lines().any(|l| l == "FAST|1");
    let user = remote::user_from(ctx, known, &text);
    let dest_st = remote::parse_tagged(&text, "D")?;
    let trailing = f.dest.ends_with('/');
    let (dest, st, parent_ok) = match (&dest_st, &in_dir) {
        (Some(d), Some(p)) if d.kind == Kind::Dir => (p.clone(), remote::parse_tagged(&text, "B")?, true),
        (None, Some(p)) if trailing => (p.clone(), None, false),
        (Some(d), None) if d.kind == Kind::Dir => {
            return Err(ModuleError::Failed(format!(
                "destination {} is a directory; give a file path for content",
                f.dest
            )))
        }
        (_, _) => (f.dest.clone(), dest_st.clone(), text.lines().any(|l| l == "PD|1")),
    };
    if !parent_ok && !trailing && st.is_none() {
        return Err(ModuleError::Failed(format!(
            "Destination directory {} does not exist",
            remote::parent(&dest)
        )));
    }
    let (src_sum, src_size, src_mode) = match (&f.source, local_bytes) {
        (Source::Remote(src), _) => {
            let r = remote::parse_tagged(&text, "R")?
                .ok_or_else(|| ModuleError::Failed(format!("Source {src} not found")))?;
            if r.kind == Kind::Dir {
                return Err(ModuleError::Failed(format!(
                    "remote_src copy of a directory ({src}) is not supported; copy files one by one"
                )));
            }
            (r.checksum.clone().unwrap_or_default(), r.size, Some(r.mode))
        }
        (_, Some(b)) => (sha1_hex(b), b.len() as u64, f.src_mode),
        // A large local file: hashed while the query ran.
        (_, None) => match &large_sum {
            Some(l) => (l.sha1.clone(), l.size, f.src_mode),
            None => return Err(ModuleError::Failed("no source data".into())),
        },
    };
    if let Some(s) = &st {
        if s.kind == Kind::Dir {
            return Err(ModuleError::Failed(format!("destination {dest} is a directory")));
        }
    }
    // The checksum the query would have printed (`[ -f ] && sha1sum <`: of
    // a regular file, through a link): of a regular file from the bytes read
    // over SFTP; through a link (which may lead to a FIFO, whose opening
    // would block), of a bigger file or of one SFTP cannot read, on the host.
    let st = match (st, &sftp_cmp, local_bytes) {
        (Some(mut s), Some(sftp), Some(local)) if matches!(s.kind, Kind::File | Kind::Link) && s.checksum.is_none() => {
            let read = match s.kind {
                Kind::File => sftp.read_small(&dest, SFTP_COMPARE_MAX).await.ok().flatten(),
                _ => None,
            };
            s.checksum = match read {
                Some(remote) if remote == local => Some(src_sum.clone()),
                Some(remote) => Some(sha1_hex(&remote)),
                None => remote_sha1(ctx, &dest).await?,
            };
            Some(s)
        }
        (st, _, _) => st,
    };
    let content_changed = match &st {
        None => true,
        Some(s) => f.force && s.checksum.as_deref() != Some(src_sum.as_str()),
    };
    // 2. Decide attributes.
    let mode_spec = match &f.attrs.mode {
        Some(Mode::Preserve) => src_mode.map(Mode::Octal),
        m => m.clone(),
    };
    let attrs = Attrs {
        mode: mode_spec,
        ..f.attrs.clone()
    };
    let base = st.clone().unwrap_or_else(|| new_file_stat(&user));
    let attr_change = attrs.changes(&base);
    let mut out = ModuleOutcome::changed(content_changed || (st.is_some() && !attr_change.is_empty()));
    // 3. Diff.
    if ctx.diff_mode && out.changed {
        if content_changed {
            let before = match &st {
                Some(s) if s.size <= 1024 * 1024 => ctx.fetch(&dest).await.ok().and_then(|b| remote::diff_text(&b)),
                Some(_) => None,
                None => Some(String::new()),
            };
            let after = local_bytes.and_then(remote::diff_text);
            out.diff.push(Diff {
                before_header: dest.clone(),
                after_header: f.src_display.clone().unwrap_or_else(|| "dynamically generated".into()),
                before: before.unwrap_or_else(|| "(binary or large file)\n".into()),
                after: after.unwrap_or_else(|| "(binary or large file)\n".into()),
            });
        }
        if st.is_some() && !attr_change.is_empty() {
            let s = st.as_ref().unwrap_or(&base);
            let (b, a) = remote::attr_diff_pairs(s, &attr_change);
            out.diff.push(remote::attr_diff(&dest, &b, &a));
        }
    }
    // 4. Returns (the state after the change, predicted from the query).
    let mut after = remote::predicted(&base, &attr_change);
    after.size = if content_changed { src_size } else { base.size };
    out.ret.insert("dest".into(), Value::String(dest.clone()));
    if let Some(s) = &f.src_display {
        out.ret.insert("src".into(), Value::String(s.clone()));
    }
    out.ret.insert(
        "checksum".into(),
        Value::String(if content_changed || st.is_none() {
            src_sum
        } else {
            st.as_ref().and_then(|s| s.checksum.clone()).unwrap_or(src_sum)
        }),
    );
    remote::stat_returns(&mut out.ret, &after);
    out.ret.insert("mode".into(), Value::String(mode_str(after.mode)));
    if !out.changed {
        return Ok(Plan::Done(out));
    }
    let final_mode = attrs.target_mode(base.mode, false).or(st.as_ref().map(|s| s.mode));
    let fattrs = FileAttrs {
        mode: final_mode,
        owner: attrs.owner.clone(),
        group: attrs.group.clone(),
    };
    Ok(Plan::change(
        out,
        PutFile {
            source: f.source,
            held,
            large_sum,
            dest,
            exists: st.is_some(),
            parent_ok,
            content_changed,
            backup: f.backup,
            validate: f.validate,
            fattrs,
            attr_change,
            fast_done,
        },
    ))
}

/// What [`put_one`]'s query decided for one file: new content (uploaded,
/// or copied on the host from a remote source, through a temp file when
/// validated), or only new attributes; nothing when the query's own round
/// trip did it already ([`fast_put`]).
struct PutFile {
    source: Source,
    /// The content in memory (rendered, or a small local file), if any.
    held: Option<Bytes>,
    /// A large local file's sum (it is streamed).
    large_sum: Option<LocalSum>,
    /// The file written (dest, or dest/basename).
    dest: String,
    /// The file exists now.
    exists: bool,
    /// Its directory exists.
    parent_ok: bool,
    content_changed: bool,
    backup: bool,
    validate: Option<String>,
    /// The new file's mode, owner and group.
    fattrs: FileAttrs,
    /// The attributes to change when the content is the same.
    attr_change: remote::AttrChange,
    fast_done: bool,
}

#[async_trait]
impl Change for PutFile {
    async fn apply(
        self: Box<Self>,
        ctx: &ModuleCtx<'_>,
        mut planned: ModuleOutcome,
    ) -> Result<ModuleOutcome, ModuleError> {
        let f = *self;
        if f.fast_done {
            return Ok(planned);
        }
        let local_bytes = f.held.as_deref().map(Vec::as_slice);
        let (dest, fattrs) = (&f.dest, &f.fattrs);
        let mut backup_file = None;
        let qd = sh_quote(dest);
        let mut pre = String::new();
        if !f.parent_ok && !f.exists {
            pre.push_str(&format!("mkdir -p -- {} || exit 1\n", sh_quote(&remote::parent(dest))));
        }
        if f.content_changed && f.backup && f.exists {
            pre.push_str(&format!(
                "b={qd}.{n}.$(date +%Y-%m-%d@%H:%M:%S)~; cp -p -- {qd} \"$b\" || exit 1; printf 'BK|%s\\n' \"$b\"\n",
                n = remote::backup_tag()
            ));
        }
        if f.content_changed {
            let needs_temp = f.validate.is_some() || matches!(f.source, Source::Remote(_));
            if needs_temp {
                // Put the new content next to dest, validate it, then move it into place.
                let tmp = format!(
                    "{}/.rigger-new-{:016x}{}",
                    remote::parent(dest),
                    rand::random::<u64>(),
                    crate::modules::host::file_state::temp_suffix(dest)
                );
                let qt = sh_quote(&tmp);
                let mut script = pre.clone();
                pre.clear();
                match (&f.source, local_bytes) {
                    (Source::Remote(src), _) => {
                        script.push_str(&format!("cp -- {} {qt} || exit 1\n", sh_quote(src)));
                        script.push_str(&remote::attr_commands(
                            &tmp,
                            &remote::AttrChange {
                                mode: fattrs.mode,
                                owner: fattrs.owner.clone(),
                                group: fattrs.group.clone(),
                            },
                            false,
                        ));
                    }
                    (Source::Local(_), _) | (_, Some(_)) => {
                        if !script.is_empty() {
                            backup_file = parse_backup(&run_checked(ctx, "copy", &script).await?.stdout_str());
                            script.clear();
                        }
                        upload(ctx, &f.source, local_bytes, f.large_sum.as_ref(), &tmp, fattrs).await?;
                    }
                    (_, None) => {}
                }
                if let Some(v) = &f.validate {
                    let cmd = crate::modules::host::file_state::validate_command(v, &tmp)?;
                    script.push_str(&format!(
                        "if ! ( {cmd} ) >&2; then rm -f -- {qt}; echo 'failed to validate' >&2; exit 1; fi\n"
                    ));
                }
                script.push_str(&format!("mv -f -- {qt} {qd} || {{ rm -f -- {qt}; exit 1; }}\n"));
                let o = run_checked(ctx, &format!("copy to {dest}"), &script)
                    .await?
                    .stdout_str();
                backup_file = backup_file.or_else(|| parse_backup(&o));
            } else {
                if !pre.is_empty() {
                    backup_file = parse_backup(&run_checked(ctx, "copy", &pre).await?.stdout_str());
                }
                upload(ctx, &f.source, local_bytes, f.large_sum.as_ref(), dest, fattrs).await?;
            }
        } else {
            let mut script = pre;
            script.push_str(&remote::attr_commands(dest, &f.attr_change, false));
            run_checked(ctx, &format!("set attributes of {dest}"), &script).await?;
        }
        if let Some(b) = backup_file {
            planned.ret.insert("backup_file".into(), Value::String(b));
        }
        Ok(planned)
    }
}

/// `put_one`'s query answered over SFTP, which starts no program on the
/// host: the lines its script prints for dest (`D`), for dest/basename
/// (`B`) when dest is a directory, the parent check (`PD`), and the
/// checksum (`C`) of the destination's bytes read over SFTP. `None` where
/// only the shell answers exactly — a link or special file on the way, an
/// error other than a missing path, a destination bigger than
/// [`SFTP_COMPARE_MAX`] — and where the copy will write while the user's
/// ids and umask are not known yet: the shell query learns them, for the
/// upload and for the new file's returns.
async fn sftp_query(
    sftp: &crate::connection::sftp::Sftp,
    f: &OneFile,
    in_dir: Option<&str>,
    user_known: bool,
    local: &[u8],
) -> Option<String> {
    let parent = remote::parent(&f.dest);
    let mut st = remote::sftp_stats(sftp, &[(&f.dest, false), (&parent, true)]).await?;
    let parent_dir = st.pop()?.is_some_and(|p| p.kind == Kind::Dir);
    let dest_st = st.pop()?;
    let mut text = String::new();
    let (path, tag, target) = match &dest_st {
        Some(d) if d.kind == Kind::Dir => {
            let p = in_dir?;
            text.push_str(&remote::snippet_lines("D", dest_st.as_ref()));
            (p, "B", remote::sftp_stats(sftp, &[(p, false)]).await?.pop()?)
        }
        _ => (f.dest.as_str(), "D", dest_st),
    };
    let target = match target {
        None if !user_known => return None,
        None => None,
        Some(t) if t.kind != Kind::File => return None,
        Some(mut t) => {
            let remote = sftp.read_small(path, SFTP_COMPARE_MAX).await.ok()??;
            if remote != local && !user_known {
                return None;
            }
            t.checksum = Some(sha1_hex(&remote));
            Some(t)
        }
    };
    text.push_str(&remote::snippet_lines(tag, target.as_ref()));
    if parent_dir {
        text.push_str("PD|1\n");
    }
    Some(text)
}

/// The SHA-1 of `path` on the host if it is a regular file (links followed).
pub(crate) async fn remote_sha1(ctx: &ModuleCtx<'_>, path: &str) -> Result<Option<String>, ModuleError> {
    let p = sh_quote(path);
    let out = ctx.run(&format!("[ -f {p} ] || exit 0; sha1sum < {p}")).await?;
    let sum = out
        .stdout_str()
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_string();
    Ok((out.status == 0 && sum.len() == 40 && sum.bytes().all(|b| b.is_ascii_hexdigit())).then_some(sum))
}

/// Largest content compared with the destination's over SFTP (see `put_one`).
pub(crate) const SFTP_COMPARE_MAX: usize = 64 * 1024;

/// Largest file [`fast_put`] sends along with the query.
const FAST_PUT_MAX: usize = 64 * 1024;

/// The write half of a one-round-trip copy, appended to the query script
/// (which has printed the state before any change), with the content on
/// stdin. It picks the destination exactly as `put_one` does (dest, or
/// dest/basename when dest is a real directory) and acts only where its
/// decision provably equals `put_one`'s: a missing file or a regular file
/// (not a link) in an existing directory — same checksum: fix the mode if one
/// is given; else an atomic replace as `put_bytes`. Then it prints `FAST|1`.
/// Otherwise it leaves everything alone and `put_one` applies as usual.
/// `None` when the options need the general path (check or diff mode, backup,
/// validate, owner/group, symbolic modes, `follow`, a `dest/` or big data).
fn fast_put(ctx: &ModuleCtx<'_>, f: &OneFile, data: Option<&[u8]>) -> Option<String> {
    let data = data?;
    let mode = match &f.attrs.mode {
        None => None,
        Some(Mode::Octal(m)) => Some(*m),
        Some(_) => return None,
    };
    if !remote::query_may_apply(ctx)
        || ctx.diff_mode
        || f.backup
        || !f.force
        || f.follow
        || f.validate.is_some()
        || f.attrs.owner.is_some()
        || f.attrs.group.is_some()
        || f.dest.ends_with('/')
        || matches!(f.source, Source::Remote(_))
        || data.len() > FAST_PUT_MAX
    {
        return None;
    }
    // The query before this code left the stat and checksum of dest (D) and
    // of dest/basename (B) in shell variables: no second `stat` or sum.
    let mut s = format!(
        "{}a=${}; s=${}\n",
        crate::connection::upload_vars(&f.dest),
        remote::stat_var("D"),
        remote::sum_var("D")
    );
    if let Some(b) = &f.dir_basename {
        s.push_str(&format!(
            "if [ -d \"$d\" ] && [ ! -L \"$d\" ]; then d=\"$d\"/{}; g={}; a=${}; s=${}; fi\n",
            sh_quote(b),
            sh_quote(&crate::connection::temp_tag(b)),
            remote::stat_var("B"),
            remote::sum_var("B")
        ));
    }
    let fix_mode = match mode {
        Some(m) => format!(
            "{}[ \"$m\" = {m:o} ] || chmod {m:o} -- \"$d\" || exit 1; ",
            remote::mode_from_stat_var("a")
        ),
        None => String::new(),
    };
    let sum = crate::connection::ContentSum::of_bytes(data);
    let upload = crate::connection::upload_to_d(
        &FileAttrs {
            mode,
            owner: None,
            group: None,
        },
        &sum,
    );
    // When nothing is written the content on stdin is left unread (the
    // transports allow that).
    s.push_str(&format!(
        "case \"$d\" in */*) p=\"${{d%/*}}\"; p=\"${{p:-/}}\";; *) p=.;; esac\n\
         if [ -d \"$p\" ] && [ ! -L \"$d\" ] && [ ! -d \"$d\" ] && {{ [ ! -e \"$d\" ] || [ -f \"$d\" ]; }}; then\n\
         [ -f \"$d\" ] || s=\n\
         if [ \"${{s%% *}}\" = {sum} ]; then :; {fix_mode}else {upload}; fi\n\
         echo 'FAST|1'\n\
         fi\n",
        sum = sum.sha1,
    ));
    Some(s)
}

/// The answer of `put_one`'s query, made from the check-mode prefetch alone
/// (dest, dest/basename and dest's parent all known, the user too).
fn prefetched_query(
    ctx: &ModuleCtx<'_>,
    f: &OneFile,
    in_dir: Option<&str>,
    user_known: bool,
) -> Option<crate::connection::ExecOutput> {
    if !prefetch::may_answer(ctx) || !user_known || matches!(f.source, Source::Remote(_)) {
        return None;
    }
    let mut text = remote::cached_snippet_output(ctx, "D", &f.dest, f.follow, true)?;
    if let Some(p) = in_dir {
        text.push_str(&remote::cached_snippet_output(ctx, "B", p, f.follow, true)?);
    }
    if crate::modules::host::prefetch::cached(ctx, &remote::parent(&f.dest), true, false)?.is_dir() {
        text.push_str("PD|1\n");
    }
    Some(crate::connection::ExecOutput::ok(text.into_bytes()))
}

fn parse_backup(out: &str) -> Option<String> {
    out.lines().find_map(|l| l.strip_prefix("BK|")).map(str::to_string)
}

fn new_file_stat(user: &RemoteUser) -> RemoteStat {
    RemoteStat {
        type_text: "regular file".into(),
        ..RemoteStat::new_by(Kind::File, 0o666 & !user.umask, user)
    }
}

/// An entry of a local directory tree.
struct LocalEntry {
    rel: String,
    path: PathBuf,
    is_dir: bool,
    mode: u32,
}

fn walk(root: &Path, rel: &str, follow: bool, out: &mut Vec<LocalEntry>) -> Result<(), ModuleError> {
    let dir = if rel.is_empty() {
        root.to_path_buf()
    } else {
        root.join(rel)
    };
    let mut names: Vec<_> = std::fs::read_dir(&dir)
        .map_err(|e| ModuleError::Failed(format!("cannot read {}: {e}", dir.display())))?
        .filter_map(|e| e.ok())
        .collect();
    names.sort_by_key(|e| e.file_name());
    for e in names {
        let name = e.file_name().to_string_lossy().into_owned();
        let r = if rel.is_empty() { name } else { format!("{rel}/{name}") };
        let path = e.path();
        let meta = if follow {
            std::fs::metadata(&path)
        } else {
            std::fs::symlink_metadata(&path)
        }
        .map_err(|err| ModuleError::Failed(format!("cannot read {}: {err}", path.display())))?;
        use std::os::unix::fs::PermissionsExt;
        let mode = meta.permissions().mode() & 0o7777;
        if meta.is_dir() {
            out.push(LocalEntry {
                rel: r.clone(),
                path: path.clone(),
                is_dir: true,
                mode,
            });
            walk(root, &r, follow, out)?;
        } else if meta.is_file() {
            out.push(LocalEntry {
                rel: r,
                path,
                is_dir: false,
                mode,
            });
        }
    }
    Ok(())
}

/// Recursive copy of a local directory.
async fn copy_dir(
    ctx: &ModuleCtx<'_>,
    p: &Params,
    local: &Path,
    src: &str,
    dest: &str,
    attrs: &Attrs,
    force: bool,
) -> Result<Plan, ModuleError> {
    let root = if src.ends_with('/') {
        dest.trim_end_matches('/').to_string()
    } else {
        format!("{}/{}", dest.trim_end_matches('/'), remote::basename(src))
    };
    let root = if root.is_empty() { "/".to_string() } else { root };
    let mut entries = Vec::new();
    walk(local, "", p.local_follow.unwrap_or(true), &mut entries)?;
    let mut sums = Vec::with_capacity(entries.len());
    for e in &entries {
        sums.push(if e.is_dir {
            String::new()
        } else {
            sha1_hex(&read_local(&e.path)?)
        });
    }
    // One query: the stat and checksum of every destination entry.
    let list: String = entries.iter().map(|e| format!("./{}\n", e.rel)).collect();
    let known = remote::known_user(ctx);
    let script = format!(
        "{}cd {} 2>/dev/null || {{ echo NOROOT; exit 0; }}\nL=$(cat)\n\
         printf '%s\\n' \"$L\" | tr '\\n' '\\0' | xargs -0 stat -c 'E|{}|%n' 2>/dev/null\n\
         printf '%s\\n' \"$L\" | tr '\\n' '\\0' | xargs -0 sha1sum 2>/dev/null | sed 's/^/H|/'\ntrue\n",
        remote::whoami_unless(&known),
        sh_quote(&root),
        remote::STAT_FMT
    );
    let out = ctx.run_with_stdin(&script, list.into_bytes()).await?;
    let text = out.stdout_str();
    let user = remote::user_from(ctx, known, &text);
    let mut remote_st: std::collections::HashMap<String, RemoteStat> = std::collections::HashMap::new();
    let mut remote_sum: std::collections::HashMap<String, String> = std::collections::HashMap::new();
    for line in text.lines() {
        if let Some(e) = line.strip_prefix("E|") {
            let fields: Vec<&str> = e.splitn(14, '|').collect();
            if fields.len() == 14 {
                if let Some(st) = remote::parse_stat(&fields[..13].join("|")) {
                    remote_st.insert(fields[13].trim_start_matches("./").to_string(), st);
                }
            }
        } else if let Some(h) = line.strip_prefix("H|") {
            if let Some((sum, name)) = h.split_once("  ") {
                remote_sum.insert(name.trim_start_matches("./").to_string(), sum.to_string());
            }
        }
    }
    let dir_mode = p
        .directory_mode
        .as_ref()
        .and_then(|m| m.apply_to(0o777 & !user.umask, true));
    let mut tar = TarWriter::default();
    let mut fixups = String::new();
    let mut changed_files = Vec::new();
    for (e, sum) in entries.iter().zip(&sums) {
        let rst = remote_st.get(&e.rel);
        if e.is_dir {
            match rst {
                None => {
                    let mode = dir_mode.unwrap_or(0o777 & !user.umask);
                    tar.dir(
                        &e.rel,
                        mode,
                        owner_for(attrs, None, &user),
                        group_for(attrs, None, &user),
                    );
                    changed_files.push(format!("{}/", e.rel));
                }
                Some(s) if s.kind != Kind::Dir => {
                    return Err(ModuleError::Failed(format!(
                        "{root}/{} exists and is not a directory",
                        e.rel
                    )))
                }
                Some(_) => {}
            }
            continue;
        }
        let file_attrs = Attrs {
            mode: match &attrs.mode {
                Some(Mode::Preserve) => Some(Mode::Octal(e.mode)),
                m => m.clone(),
            },
            ..attrs.clone()
        };
        match rst {
            Some(s) if s.kind == Kind::Dir => {
                return Err(ModuleError::Failed(format!("{root}/{} is a directory", e.rel)))
            }
            Some(s) if !force || remote_sum.get(&e.rel) == Some(sum) => {
                let c = file_attrs.changes(s);
                if !c.is_empty() {
                    fixups.push_str(&remote::attr_commands(&format!("./{}", e.rel), &c, false));
                    changed_files.push(e.rel.clone());
                }
            }
            _ => {
                let base = rst.cloned().unwrap_or_else(|| new_file_stat(&user));
                let mode = file_attrs.target_mode(base.mode, false).unwrap_or(base.mode);
                let data = read_local(&e.path)?;
                tar.file(
                    &e.rel,
                    mode,
                    owner_for(attrs, rst, &user),
                    group_for(attrs, rst, &user),
                    &data,
                );
                changed_files.push(e.rel.clone());
            }
        }
    }
    let changed = !changed_files.is_empty();
    let mut out = ModuleOutcome::changed(changed);
    if ctx.diff_mode && changed {
        out.diff.push(Diff {
            before_header: root.clone(),
            after_header: local.display().to_string(),
            before: String::new(),
            after: changed_files.iter().map(|f| format!("{f}\n")).collect(),
        });
    }
    out.ret
        .insert("dest".into(), Value::String(format!("{}/", root.trim_end_matches('/'))));
    out.ret.insert("src".into(), Value::String(local.display().to_string()));
    if !changed {
        return Ok(Plan::Done(out));
    }
    let as_root = user.uid == 0;
    Ok(Plan::change(
        out,
        PutDir {
            root,
            tar,
            fixups,
            as_root,
        },
    ))
}

/// What [`copy_dir`]'s query decided: the new and changed files in one
/// `tar` stream, then the attribute fixes of the others.
struct PutDir {
    root: String,
    tar: TarWriter,
    /// Shell commands (run in `root`) fixing attributes.
    fixups: String,
    /// The remote user is root (tar then keeps the archive's owners).
    as_root: bool,
}

#[async_trait]
impl Change for PutDir {
    async fn apply(self: Box<Self>, ctx: &ModuleCtx<'_>, planned: ModuleOutcome) -> Result<ModuleOutcome, ModuleError> {
        let PutDir {
            root,
            tar,
            mut fixups,
            as_root,
        } = *self;
        let qr = sh_quote(&root);
        if !tar.is_empty() {
            let no_owner = if as_root { "" } else { "o" };
            let mut cmd = format!("mkdir -p -- {qr} && cd {qr} && tar -xp{no_owner}f - || exit 1\n");
            if fixups.len() < 60 * 1024 {
                cmd.push_str(&std::mem::take(&mut fixups));
            }
            let o = ctx.run_with_whole_stdin(&cmd, tar.finish()).await?;
            if o.status != 0 {
                return Err(ModuleError::Failed(format!(
                    "copy to {root} failed: {}",
                    o.stderr_str().trim()
                )));
            }
        }
        if !fixups.is_empty() {
            run_checked(ctx, &format!("copy to {root}"), &format!("cd {qr} || exit 1\n{fixups}")).await?;
        }
        Ok(planned)
    }
}

fn owner_for<'a>(attrs: &'a Attrs, st: Option<&'a RemoteStat>, user: &'a RemoteUser) -> &'a str {
    attrs
        .owner
        .as_deref()
        .or(st.map(|s| s.owner.as_str()))
        .unwrap_or(user.user.as_str())
}

fn group_for<'a>(attrs: &'a Attrs, st: Option<&'a RemoteStat>, user: &'a RemoteUser) -> &'a str {
    attrs
        .group
        .as_deref()
        .or(st.map(|s| s.group.as_str()))
        .unwrap_or(user.group.as_str())
}

/// A minimal ustar writer (GNU long names for paths that do not fit).
#[derive(Default)]
struct TarWriter {
    buf: Vec<u8>,
}

impl TarWriter {
    fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    fn header(&mut self, name: &str, mode: u32, size: u64, kind: u8, owner: &str, group: &str) {
        let bytes = name.as_bytes();
        let (prefix, short): (&[u8], &[u8]) = if bytes.len() <= 100 {
            (b"", bytes)
        } else {
            // Split at a '/' so the name fits ustar's prefix (155) + name (100).
            match (0..bytes.len()).rfind(|&i| bytes[i] == b'/' && i <= 155 && bytes.len() - i - 1 <= 100 && i > 0) {
                Some(i) => (&bytes[..i], &bytes[i + 1..]),
                None => {
                    let mut long = bytes.to_vec();
                    long.push(0);
                    self.header("././@LongLink", 0, long.len() as u64, b'L', "root", "root");
                    self.data(&long);
                    (b"", &bytes[..100])
                }
            }
        };
        let mut h = [0u8; 512];
        let put = |h: &mut [u8; 512], off: usize, len: usize, v: &[u8]| {
            let n = v.len().min(len);
            h[off..off + n].copy_from_slice(&v[..n]);
        };
        put(&mut h, 0, 100, short);
        put(&mut h, 100, 8, format!("{:07o}\0", mode & 0o7777).as_bytes());
        put(&mut h, 108, 8, b"0000000\0");
        put(&mut h, 116, 8, b"0000000\0");
        put(&mut h, 124, 12, format!("{:011o}\0", size).as_bytes());
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        put(&mut h, 136, 12, format!("{:011o}\0", now).as_bytes());
        h[148..156].copy_from_slice(b"        ");
        h[156] = kind;
        put(&mut h, 257, 6, b"ustar\0");
        put(&mut h, 263, 2, b"00");
        put(&mut h, 265, 32, owner.as_bytes());
        put(&mut h, 297, 32, group.as_bytes());
        put(&mut h, 345, 155, prefix);
        let sum: u32 = h.iter().map(|&b| b as u32).sum();
        put(&mut h, 148, 8, format!("{:06o}\0 ", sum).as_bytes());
        self.buf.extend_from_slice(&h);
    }

    fn data(&mut self, d: &[u8]) {
        self.buf.extend_from_slice(d);
        let pad = (512 - d.len() % 512) % 512;
        self.buf.extend(std::iter::repeat_n(0u8, pad));
    }

    fn dir(&mut self, name: &str, mode: u32, owner: &str, group: &str) {
        self.header(&format!("{name}/"), mode, 0, b'5', owner, group);
    }

    fn file(&mut self, name: &str, mode: u32, owner: &str, group: &str, data: &[u8]) {
        self.header(name, mode, data.len() as u64, b'0', owner, group);
        self.data(data);
    }

    fn finish(mut self) -> Vec<u8> {
        self.buf.extend(std::iter::repeat_n(0u8, 1024));
        self.buf
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::modules::files::testutil::TestEnv;
    use serde_json::json;
    use std::os::unix::fs::PermissionsExt;

    fn mode_of(p: &str) -> u32 {
        std::fs::metadata(p).unwrap().permissions().mode() & 0o7777
    }

    #[test]
    fn hosts_copying_a_small_file_at_once_share_its_bytes() {
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("conf");
        std::fs::write(&f, b"one\n").unwrap();
        let a = read_local_if_small(&f).unwrap().unwrap();
        let b = read_local_if_small(&f).unwrap().unwrap();
        assert!(Arc::ptr_eq(&a, &b), "read once while held");
        // Rewritten in place, same size, modification time kept (`cp -p`):
        // the change time tells.
        let mtime = std::fs::metadata(&f).unwrap().modified().unwrap();
        std::thread::sleep(std::time::Duration::from_millis(10));
        let file = std::fs::OpenOptions::new().write(true).open(&f).unwrap();
        std::io::Write::write_all(&mut &file, b"uno\n").unwrap();
        file.set_modified(mtime).unwrap();
        drop(file);
        assert_eq!(std::fs::metadata(&f).unwrap().modified().unwrap(), mtime);
        let kept = read_local_if_small(&f).unwrap().unwrap();
        assert_eq!(&kept[..], b"uno\n");
        assert_eq!(&a[..], b"one\n");
        // Changed (other size, and other inode as an editor's save gives): read again.
        let tmp = d.path().join("conf.new");
        std::fs::write(&tmp, b"two, longer\n").unwrap();
        std::fs::rename(&tmp, &f).unwrap();
        let c = read_local_if_small(&f).unwrap().unwrap();
        assert_eq!(&c[..], b"two, longer\n");
        assert_eq!(&a[..], b"one\n", "who holds the old bytes keeps them");
        // Nobody holds them any more: read again, not kept.
        drop((a, b));
        let weak = Arc::downgrade(&c);
        drop(c);
        assert!(weak.upgrade().is_none());
        assert_eq!(&read_local_if_small(&f).unwrap().unwrap()[..], b"two, longer\n");
    }

    #[test]
    fn local_files_are_hashed_streaming() {
        let d = tempfile::tempdir().unwrap();
        let small = d.path().join("small");
        std::fs::write(&small, b"one\n").unwrap();
        let l = hash_local(&small).unwrap();
        assert_eq!((l.sha1.as_str(), l.size), (sha1_hex(b"one\n").as_str(), 4));
        assert_eq!(
            read_local_if_small(&small).unwrap().as_deref().map(Vec::as_slice),
            Some(&b"one\n"[..])
        );
        let big = d.path().join("big");
        let data: Vec<u8> = (0..(KEEP_LOCAL_BYTES as usize + 300_000))
            .map(|i| (i % 251) as u8)
            .collect();
        std::fs::write(&big, &data).unwrap();
        let l = hash_local(&big).unwrap();
        assert_eq!((l.sha1, l.size), (sha1_hex(&data), data.len() as u64));
        assert_eq!(read_local_if_small(&big).unwrap(), None);
        let e = hash_local(&d.path().join("missing")).err().unwrap();
        assert!(e.to_string().contains("missing"), "{e}");
    }

    #[tokio::test]
    async fn large_local_file_with_validate_is_streamed_to_the_temp_file() {
        let env = TestEnv::new();
        let src = env.path("big.src");
        let data: Vec<u8> = (0..(KEEP_LOCAL_BYTES as usize * 2)).map(|i| (i % 253) as u8).collect();
        std::fs::write(&src, &data).unwrap();
        let dest = env.path("big.dest");
        let args = json!({"src": src, "dest": dest, "validate": "test -s %s"});
        let r = env.run(&CopyModule, args.clone(), false).await.unwrap();
        assert!(r.changed);
        assert_eq!(std::fs::read(&dest).unwrap(), data);
        let r = env.run(&CopyModule, args, false).await.unwrap();
        assert!(!r.changed);
        // Without validate: streamed straight to dest; a changed byte is noticed.
        let mut data2 = data.clone();
        data2[KEEP_LOCAL_BYTES as usize + 7] ^= 0xff;
        std::fs::write(&src, &data2).unwrap();
        let args = json!({"src": src, "dest": dest});
        assert!(env.run(&CopyModule, args.clone(), false).await.unwrap().changed);
        assert_eq!(std::fs::read(&dest).unwrap(), data2);
        assert!(!env.run(&CopyModule, args, false).await.unwrap().changed);
    }

    #[tokio::test]
    async fn content_copy_check_diff_backup_and_idempotence() {
        let env = TestEnv::new();
        let d = env.path("out.txt");
        let args = json!({"content": "one\n", "dest": d, "mode": "0640"});
        let r = env.run(&CopyModule, args.clone(), true).await.unwrap();
        assert!(r.changed);
        assert!(!std::path::Path::new(&d).exists());
        let r = env.run(&CopyModule, args.clone(), false).await.unwrap();
        assert!(r.changed);
        assert_eq!(std::fs::read_to_string(&d).unwrap(), "one\n");
        assert_eq!(mode_of(&d), 0o640);
        assert_eq!(r.ret["checksum"], sha1_hex(b"one\n"));
        assert_eq!(r.ret["mode"], "0640");
        assert!(!env.run(&CopyModule, args, false).await.unwrap().changed);
        // Changed content: check mode shows the diff and leaves the file.
        let args = json!({"content": "two\n", "dest": d, "backup": true});
        let r = env.run(&CopyModule, args.clone(), true).await.unwrap();
        assert!(r.changed);
        assert_eq!(r.diff[0].before, "one\n");
        assert_eq!(r.diff[0].after, "two\n");
        assert_eq!(std::fs::read_to_string(&d).unwrap(), "one\n");
        let r = env.run(&CopyModule, args.clone(), false).await.unwrap();
        assert!(r.changed);
        assert_eq!(std::fs::read_to_string(&d).unwrap(), "two\n");
        assert_eq!(mode_of(&d), 0o640, "mode of the replaced file is kept");
        let b = r.ret["backup_file"].as_str().unwrap();
        assert_eq!(std::fs::read_to_string(b).unwrap(), "one\n");
        assert!(!env.run(&CopyModule, args, false).await.unwrap().changed);
        // Attribute-only change.
        let args = json!({"content": "two\n", "dest": d, "mode": "u=rw,g=,o="});
        let r = env.run(&CopyModule, args.clone(), true).await.unwrap();
        assert!(r.changed && mode_of(&d) == 0o640);
        assert!(env.run(&CopyModule, args.clone(), false).await.unwrap().changed);
        assert_eq!(mode_of(&d), 0o600);
        assert!(!env.run(&CopyModule, args, false).await.unwrap().changed);
        // force=no leaves differing content alone.
        let r = env
            .run(
                &CopyModule,
                json!({"content": "three\n", "dest": d, "force": false}),
                false,
            )
            .await
            .unwrap();
        assert!(!r.changed);
    }

    #[tokio::test]
    async fn src_file_into_directory_and_validate() {
        let env = TestEnv::new();
        std::fs::create_dir(env.path("files")).unwrap();
        std::fs::write(env.path("files/app.conf"), "x=1\n").unwrap();
        std::fs::create_dir(env.path("etc")).unwrap();
        let args = json!({"src": "app.conf", "dest": format!("{}/", env.path("etc"))});
        let r = env.run(&CopyModule, args.clone(), false).await.unwrap();
        assert!(r.changed);
        assert_eq!(std::fs::read_to_string(env.path("etc/app.conf")).unwrap(), "x=1\n");
        assert_eq!(r.ret["dest"], env.path("etc/app.conf"));
        assert!(!env.run(&CopyModule, args, false).await.unwrap().changed);
        // Validation failure keeps the old file.
        let d = env.path("etc/app.conf");
        let e = env
            .run(
                &CopyModule,
                json!({"content": "bad\n", "dest": d, "validate": "grep -q good %s"}),
                false,
            )
            .await;
        assert!(matches!(e, Err(ModuleError::Failed(_))), "{e:?}");
        assert_eq!(std::fs::read_to_string(&d).unwrap(), "x=1\n");
        let r = env
            .run(
                &CopyModule,
                json!({"content": "good\n", "dest": d, "validate": "grep -q good %s"}),
                false,
            )
            .await
            .unwrap();
        assert!(r.changed);
        assert_eq!(std::fs::read_to_string(&d).unwrap(), "good\n");
        assert_eq!(
            std::fs::read_dir(env.path("etc")).unwrap().count(),
            1,
            "no temp files left"
        );
        // Bad arguments.
        let e = env.run(&CopyModule, json!({"dest": d}), false).await;
        assert!(matches!(e, Err(ModuleError::Args(_))));
        let e = env
            .run(&CopyModule, json!({"content": "a", "dest": d, "bogus": 1}), false)
            .await;
        assert!(matches!(e, Err(ModuleError::Args(_))));
        let e = env
            .run(
                &CopyModule,
                json!({"content": "a", "dest": env.path("missing/dir/f")}),
                false,
            )
            .await;
        assert!(matches!(e, Err(ModuleError::Failed(m)) if m.contains("does not exist")));
    }

    #[tokio::test]
    async fn remote_src_copy() {
        let env = TestEnv::new();
        std::fs::write(env.path("a"), "remote\n").unwrap();
        let args = json!({"src": env.path("a"), "dest": env.path("b"), "remote_src": true, "mode": "0600"});
        assert!(env.run(&CopyModule, args.clone(), true).await.unwrap().changed);
        assert!(!std::path::Path::new(&env.path("b")).exists());
        assert!(env.run(&CopyModule, args.clone(), false).await.unwrap().changed);
        assert_eq!(std::fs::read_to_string(env.path("b")).unwrap(), "remote\n");
        assert_eq!(mode_of(&env.path("b")), 0o600);
        assert!(!env.run(&CopyModule, args, false).await.unwrap().changed);
    }

    #[tokio::test]
    async fn directory_copy_in_one_stream() {
        let env = TestEnv::new();
        let src = env.path("tree");
        for i in 0..1000 {
            let d = format!("{src}/d{}", i % 10);
            std::fs::create_dir_all(&d).unwrap();
            std::fs::write(format!("{d}/f{i}.txt"), format!("file {i}\n")).unwrap();
        }
        let long = format!("{src}/{}/{}", "a".repeat(90), "b".repeat(90));
        std::fs::create_dir_all(&long).unwrap();
        std::fs::write(format!("{long}/{}", "c".repeat(60)), "deep\n").unwrap();
        let dest = env.path("dest");
        std::fs::create_dir(&dest).unwrap();
        // Without a trailing slash the directory itself is copied.
        let args = json!({"src": src, "dest": dest});
        let r = env.run(&CopyModule, args.clone(), true).await.unwrap();
        assert!(r.changed);
        assert!(!std::path::Path::new(&format!("{dest}/tree")).exists());
        let r = env.run(&CopyModule, args.clone(), false).await.unwrap();
        assert!(r.changed);
        assert_eq!(
            std::fs::read_to_string(format!("{dest}/tree/d7/f517.txt")).unwrap(),
            "file 517\n"
        );
        let deep = format!("{dest}/tree/{}/{}/{}", "a".repeat(90), "b".repeat(90), "c".repeat(60));
        assert_eq!(std::fs::read_to_string(deep).unwrap(), "deep\n");
        assert!(!env.run(&CopyModule, args.clone(), false).await.unwrap().changed);
        // One changed file: only it is reported and rewritten.
        std::fs::write(format!("{src}/d3/f3.txt"), "changed\n").unwrap();
        let r = env.run(&CopyModule, args.clone(), true).await.unwrap();
        assert!(r.changed);
        assert_eq!(r.diff[0].after, "d3/f3.txt\n");
        assert_eq!(
            std::fs::read_to_string(format!("{dest}/tree/d3/f3.txt")).unwrap(),
            "file 3\n"
        );
        assert!(env.run(&CopyModule, args.clone(), false).await.unwrap().changed);
        assert_eq!(
            std::fs::read_to_string(format!("{dest}/tree/d3/f3.txt")).unwrap(),
            "changed\n"
        );
        assert!(!env.run(&CopyModule, args, false).await.unwrap().changed);
        // Trailing slash: contents only, with a mode.
        let args = json!({"src": format!("{src}/d1/"), "dest": env.path("flat"), "mode": "0600"});
        assert!(env.run(&CopyModule, args.clone(), false).await.unwrap().changed);
        assert_eq!(mode_of(&env.path("flat/f1.txt")), 0o600);
        assert!(!env.run(&CopyModule, args, false).await.unwrap().changed);
        let args = json!({"src": format!("{src}/d1/"), "dest": env.path("flat"), "mode": "0644"});
        assert!(env.run(&CopyModule, args.clone(), false).await.unwrap().changed);
        assert_eq!(mode_of(&env.path("flat/f1.txt")), 0o644);
        assert!(!env.run(&CopyModule, args, false).await.unwrap().changed);
    }

    /// The login user is asked once per connection: later tasks take it from
    /// the connection's memo (a planted user shows up in the predicted owner
    /// of a new file) until the memo is cleared.
    #[tokio::test]
    async fn remote_user_comes_from_the_connection_memo() {
        use crate::connection::Connection;
        let env = TestEnv::new();
        let args = json!({"content": "x\n", "dest": env.path("new.txt")});
        let owner = |r: &ModuleOutcome| r.ret.get("owner").and_then(|v| v.as_str()).unwrap_or("").to_string();
        let me = String::from_utf8_lossy(&std::process::Command::new("id").arg("-un").output().unwrap().stdout)
            .trim()
            .to_string();
        let r = env.run(&CopyModule, args.clone(), true).await.unwrap();
        assert_eq!(owner(&r), me);
        let memo = env.conn.memo().unwrap();
        let learnt = memo.get("whoami").expect("the first query remembers the user");
        assert!(learnt.contains(&format!("({me})")), "{learnt}");
        memo.set(
            "whoami",
            "0022\nuid=4242(ghost) gid=4242(ghosts) groups=4242(ghosts)".into(),
        );
        let r = env.run(&CopyModule, args.clone(), true).await.unwrap();
        assert_eq!(owner(&r), "ghost");
        memo.clear();
        let r = env.run(&CopyModule, args, true).await.unwrap();
        assert_eq!(owner(&r), me);
    }

    /// The one-round-trip path (no diff mode): same results as the general one.
    #[tokio::test]
    async fn fast_put_matches_the_general_path() {
        use std::os::unix::fs::MetadataExt;
        let env = TestEnv::new();
        let run = |args: serde_json::Value| {
            let ctx = env.ctx(false, false);
            let serde_json::Value::Object(map) = args else {
                unreachable!()
            };
            async move { crate::exec::task::execute(&CopyModule, &ctx, map).await }
        };
        std::fs::create_dir(env.path("files")).unwrap();
        std::fs::write(env.path("files/a.bin"), "abc\n").unwrap();
        let d = env.path("a.txt");
        // New file with a mode; then nothing to do (same inode, same mtime).
        let args = json!({"src": "a.bin", "dest": d, "mode": "0640"});
        assert!(run(args.clone()).await.unwrap().changed);
        assert_eq!(
            (std::fs::read_to_string(&d).unwrap().as_str(), mode_of(&d)),
            ("abc\n", 0o640)
        );
        let before = std::fs::metadata(&d).unwrap();
        let r = run(args.clone()).await.unwrap();
        assert!(!r.changed);
        let after = std::fs::metadata(&d).unwrap();
        assert_eq!((before.ino(), before.mtime_nsec()), (after.ino(), after.mtime_nsec()));
        // Same content, other mode: only the mode changes.
        let r = run(json!({"src": "a.bin", "dest": d, "mode": "0600"})).await.unwrap();
        assert!(r.changed);
        assert_eq!(
            (mode_of(&d), std::fs::metadata(&d).unwrap().ino()),
            (0o600, before.ino())
        );
        // New content without a mode keeps the file's mode.
        let r = run(json!({"content": "new\n", "dest": d})).await.unwrap();
        assert!(r.changed);
        assert_eq!(
            (std::fs::read_to_string(&d).unwrap().as_str(), mode_of(&d)),
            ("new\n", 0o600)
        );
        // A directory dest receives dest/basename; a missing parent is an error.
        std::fs::create_dir(env.path("etc")).unwrap();
        let r = run(json!({"src": "a.bin", "dest": env.path("etc")})).await.unwrap();
        assert!(r.changed);
        assert_eq!(std::fs::read_to_string(env.path("etc/a.bin")).unwrap(), "abc\n");
        assert!(run(json!({"src": "a.bin", "dest": env.path("nope/x")})).await.is_err());
        // A symlink dest goes the general way and is replaced by a file, as before.
        std::os::unix::fs::symlink(env.path("etc/a.bin"), env.path("link")).unwrap();
        let r = run(json!({"content": "via link\n", "dest": env.path("link")}))
            .await
            .unwrap();
        assert!(r.changed);
        assert!(!std::fs::symlink_metadata(env.path("link"))
            .unwrap()
            .file_type()
            .is_symlink());
        assert_eq!(std::fs::read_to_string(env.path("etc/a.bin")).unwrap(), "abc\n");
        // Nothing else was left behind (no temp files).
        let mut names: Vec<String> = std::fs::read_dir(env.dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(names, ["a.txt", "etc", "files", "link"]);
    }
}
