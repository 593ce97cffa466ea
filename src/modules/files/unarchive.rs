//! `unarchive`: unpack a tar or zip archive on the host.

use async_trait::async_trait;
use serde::Deserialize;
use serde_json::{json, Map, Value};

use crate::connection::sh_quote;
use crate::modules::args::{de_opt_mode, de_string_list, exclusive, Mode};
use crate::modules::host::file_state::parse_query;
use crate::modules::host::file_state::AttrParams;
use crate::modules::host::file_state::FileState;
use crate::modules::host::opts::{GROUP_OPT, MODE_OPT, OWNER_OPT, UNSAFE_WRITES_OPT};
use crate::modules::host::remote_file::STAT_FMT;
use crate::modules::{
    parse_params, Change, Module, ModuleCtx, ModuleDoc, ModuleError, ModuleOutcome, OptKind, OptionDoc, Plan, ReturnDoc,
};

const OPTIONS: &[OptionDoc] = &[
    OptionDoc::new(
        "src",
        OptKind::Path,
        "The archive: a controller file (uploaded first), or a host path with `remote_src: yes`.",
    )
    .required(),
    OptionDoc::new("dest", OptKind::Path, "Existing directory on the host to unpack into.").required(),
    OptionDoc::new("remote_src", OptKind::Bool, "`src` is already on the host.").default("no"),
    OptionDoc::new(
        "copy",
        OptKind::Bool,
        "Deprecated opposite of `remote_src`: `copy: no` means the archive is on the host.",
    ),
    OptionDoc::new(
        "creates",
        OptKind::Path,
        "Skip the task when this path exists on the host.",
    ),
    OptionDoc::new(
        "list_files",
        OptKind::Bool,
        "Return the archive's member names in `files`.",
    )
    .default("no"),
    OptionDoc::new("exclude", OptKind::List, "Member names or patterns not to extract."),
    OptionDoc::new("include", OptKind::List, "Only extract these members."),
    OptionDoc::new(
        "keep_newer",
        OptKind::Bool,
        "Do not replace files that are newer than the archive's members (tar only).",
    )
    .default("no"),
    OptionDoc::new(
        "extra_opts",
        OptKind::List,
        "Extra options for `tar` or `unzip`, e.g. `['--strip-components=1']`.",
    ),
    OptionDoc::new(
        "decrypt",
        OptKind::Bool,
        "Accepted for compatibility (vault files are not decrypted).",
    )
    .ignored()
    .default("yes"),
    OptionDoc::new("io_buffer_size", OptKind::Int, "Accepted for compatibility.").ignored(),
    OptionDoc::new(
        "validate_certs",
        OptKind::Bool,
        "Accepted for compatibility (URLs are not downloaded).",
    )
    .ignored(),
    OWNER_OPT,
    GROUP_OPT,
    MODE_OPT,
    UNSAFE_WRITES_OPT,
];

static DOC: ModuleDoc = ModuleDoc {
    name: "unarchive",
    aliases: &[],
    short: "Unpack an archive after (optionally) copying it from the controller",
    description: "Unpacks tar (plain, gz, bz2, xz, zstd) and zip archives into `dest`. Before unpacking, the \
archive is compared with `dest` (`tar --diff`, or member sizes and times for zip) and nothing is done \
when everything is already there, so a second run reports no change. zip archives need `unzip` on the \
host. owner/group/mode are applied to every unpacked member.",
    free_form: false,
    options: OPTIONS,
    examples: "- unarchive:\n    src: foo.tgz\n    dest: /var/lib/foo\n\n\
- unarchive:\n    src: /tmp/release.zip\n    dest: /opt/app\n    remote_src: yes\n    creates: /opt/app/bin\n",
    returns: &[
        ReturnDoc {
            name: "dest",
            description: "the directory unpacked into",
        },
        ReturnDoc {
            name: "handler",
            description:
                "`TgzArchive`, `TarArchive`, `TarBzipArchive`, `TarXzArchive`, `TarZstdArchive` or `ZipArchive`",
        },
        ReturnDoc {
            name: "files",
            description: "member names, with list_files",
        },
        ReturnDoc {
            name: "extract_results",
            description: "cmd, rc, out, err of the unpack command, when it ran",
        },
    ],
    controller_only: false,
};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Params {
    src: String,
    dest: String,
    #[serde(default)]
    remote_src: Option<bool>,
    #[serde(default)]
    copy: Option<bool>,
    #[serde(default)]
    creates: Option<String>,
    #[serde(default)]
    list_files: bool,
    #[serde(default, deserialize_with = "de_string_list")]
    exclude: Vec<String>,
    #[serde(default, deserialize_with = "de_string_list")]
    include: Vec<String>,
    #[serde(default)]
    keep_newer: bool,
    #[serde(default)]
    extra_opts: Option<Value>,
    #[serde(default)]
    owner: Option<String>,
    #[serde(default)]
    group: Option<String>,
    #[serde(default, deserialize_with = "de_opt_mode")]
    mode: Option<Mode>,
}

pub(crate) struct Unarchive;

#[derive(Debug, Clone, Copy, PartialEq)]
enum Format {
    Zip,
    Tar(&'static str, &'static str),
}

/// Recognize the archive by its first bytes (as hex).
fn detect(magic_hex: &str) -> Format {
    let m = magic_hex.replace([' ', '\n'], "");
    if m.starts_with("504b0304") || m.starts_with("504b0506") {
        Format::Zip
    } else if m.starts_with("1f8b") {
        Format::Tar("-z", "TgzArchive")
    } else if m.starts_with("425a68") {
        Format::Tar("-j", "TarBzipArchive")
    } else if m.starts_with("fd377a585a00") {
        Format::Tar("-J", "TarXzArchive")
    } else if m.starts_with("28b52ffd") {
        Format::Tar("--zstd", "TarZstdArchive")
    } else {
        Format::Tar("", "TarArchive")
    }
}

/// Lines of `tar --diff` that mean something would be extracted
/// (Ansible's TgzArchive.is_unarchived).
fn tar_diff_differs(text: &str, owner_given: bool, group_given: bool, mode_given: bool, root: bool) -> bool {
    text.lines().any(|line| {
        if line.ends_with(": : Warning: Cannot stat: No such file or directory") {
            return false;
        }
        (root && !owner_given && line.ends_with(": Uid differs"))
            || (root && !group_given && line.ends_with(": Gid differs"))
            || (!mode_given && line.ends_with(": Mode differs"))
            || line.ends_with(": Mod time differs")
            || line.ends_with(": Warning: Cannot stat: No such file or directory")
            || line.contains(": Invalid owner")
            || line.contains(": Invalid group")
            || line.ends_with(": Symlink differs")
            || line.ends_with(": Contents differ")
            || line.ends_with(": Size differs")
    })
}

/// One member line of `unzip -Z -T`: (name, size, time as YYYYMMDD.hhmmss).
fn parse_zipinfo_line(line: &str) -> Option<(String, u64, String)> {
    let mut rest = line;
    let mut tokens = Vec::new();
    for _ in 0..7 {
        rest = rest.trim_start();
        let end = rest.find(char::is_whitespace)?;
        tokens.push(&rest[..end]);
        rest = &rest[end..];
    }
    let perms = tokens[0];
    let perm_ok = perms.len() == 10
        && perms.bytes().skip(1).enumerate().all(|(i, c)| match i % 3 {
            0 => c == b'r' || c == b'-',
            1 => c == b'w' || c == b'-',
            _ => b"SsTtx-".contains(&c),
        });
    if !perm_ok {
        return None;
    }
    let name = rest.strip_prefix(' ').unwrap_or(rest).to_string();
    Some((name, tokens[3].parse().ok()?, tokens[6].to_string()))
}

/// `YYYYMMDD.hhmmss` as seconds since an arbitrary epoch (for comparing).
fn stamp_seconds(s: &str) -> Option<i64> {
    let (d, t) = s.split_once('.')?;
    // ASCII only: the slices below are byte offsets.
    if d.len() != 8 || t.len() != 6 || !d.is_ascii() || !t.is_ascii() {
        return None;
    }
    let n = |x: &str| x.parse::<i64>().ok();
    let (y, mo, da) = (n(&d[..4])?, n(&d[4..6])?, n(&d[6..])?);
    let (h, mi, se) = (n(&t[..2])?, n(&t[2..4])?, n(&t[4..])?);
    // Days from civil (Howard Hinnant).
    let y2 = if mo <= 2 { y - 1 } else { y };
    let era = y2.div_euclid(400);
    let yoe = y2 - era * 400;
    let doy = (153 * (if mo > 2 { mo - 3 } else { mo + 9 }) + 2) / 5 + da - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146097 + doe;
    Some(days * 86400 + h * 3600 + mi * 60 + se)
}

fn extra_opts(v: &Option<Value>) -> Vec<String> {
    match v {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(a)) => a
            .iter()
            .map(|x| match x {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            })
            .collect(),
        Some(Value::String(s)) => shlex::split(s).unwrap_or_else(|| vec![s.clone()]),
        Some(other) => vec![other.to_string()],
    }
}

fn words(items: &[String]) -> String {
    items.iter().map(|s| format!(" {}", sh_quote(s))).collect()
}

#[async_trait]
impl Module for Unarchive {
    fn may_change_users(&self, result: &Map<String, Value>) -> bool {
        crate::modules::host::remote_file::wrote_user_database(result)
    }

    fn doc(&self) -> &'static ModuleDoc {
        &DOC
    }

    async fn query(&self, ctx: &ModuleCtx<'_>, args: Map<String, Value>) -> Result<Plan, ModuleError> {
        let p: Params = parse_params(&DOC, args)?;
        let src = p.src.clone();
        let dest = p.dest.clone();
        exclusive(
            "unarchive",
            ("copy", p.copy.is_some()),
            ("remote_src", p.remote_src.is_some()),
        )?;
        let remote_src = p.remote_src.unwrap_or(false) || p.copy == Some(false);
        if src.contains("://") {
            return Err(ModuleError::Args(format!(
                "unarchive: downloading `{src}` is not supported; fetch it with get_url first"
            )));
        }
        let opts = extra_opts(&p.extra_opts);
        let attrs = AttrParams {
            owner: p.owner.clone(),
            group: p.group.clone(),
            mode: p.mode.clone(),
        };
        let local = if remote_src {
            None
        } else {
            Some(ctx.find_local("files", &src)?)
        };

        // creates + dest + (remote) src, in one round trip.
        let out = ctx
            .run(&format!(
                "c={}; d={}; s={}; if [ -n \"$c\" ] && [ -e \"$c\" ]; then echo CREATES; exit 0; fi; \
                 [ -d \"$d\" ] || {{ echo NODEST; exit 0; }}; \
                 if [ {remote} = 1 ]; then [ -f \"$s\" ] || {{ echo NOSRC; exit 0; }}; fi; echo OK; id -u",
                sh_quote(p.creates.as_deref().unwrap_or("")),
                sh_quote(&dest),
                sh_quote(&src),
                remote = u8::from(remote_src),
            ))
            .await?;
        let answer = out.stdout_str();
        let mut lines = answer.lines();
        match lines.next() {
            Some("CREATES") => {
                return Ok(Plan::Done(ModuleOutcome {
                    skipped: true,
                    msg: Some(format!("skipped, since {} exists", p.creates.unwrap_or_default())),
                    ..Default::default()
                }))
            }
            Some("NODEST") => return Err(ModuleError::Failed(format!("dest '{dest}' must be an existing dir"))),
            Some("NOSRC") => return Err(ModuleError::Failed(format!("Source '{src}' does not exist"))),
            Some("OK") => {}
            _ => {
                return Err(ModuleError::Failed(format!(
                    "cannot inspect {dest}: {}",
                    out.stderr_str().trim()
                )))
            }
        }
        let is_root = lines.next() == Some("0");

        // A controller archive is uploaded to a temp file first (and again
        // by the extraction: the query leaves nothing behind).
        let archive = match &local {
            None => src.clone(),
            Some(path) => upload(ctx, path).await?,
        };
        let inspected = inspect(ctx, &p, &src, &archive, &dest, &opts, is_root).await;
        if local.is_some() {
            let _ = ctx.run(&format!("rm -f -- {}", sh_quote(&archive))).await;
        }
        let (format, members, unarchived) = inspected?;
        let handler = match format {
            Format::Zip => "ZipArchive",
            Format::Tar(_, h) => h,
        };
        let mut out = ModuleOutcome::changed(!unarchived)
            .with("dest", dest.clone())
            .with("src", src.clone())
            .with("handler", handler);
        let attrs_apply = !attrs.is_empty() && !members.is_empty();
        let mut fix = Vec::new();
        if unarchived && attrs_apply {
            let (to_fix, missing) = members_to_fix(ctx, &dest, &members, &attrs).await?;
            // A member not there yet would be set.
            out.changed = missing || !to_fix.is_empty();
            fix = to_fix;
        }
        if p.list_files {
            out = out.with("files", members.clone());
        }
        if unarchived {
            if !out.changed {
                return Ok(Plan::Done(out));
            }
            return Ok(Plan::change(
                out,
                FixMembers {
                    dest,
                    to_fix: fix,
                    attrs,
                },
            ));
        }
        let extract = Extract {
            local,
            archive,
            format,
            opts,
            keep_newer: p.keep_newer,
            exclude: p.exclude.clone(),
            include: p.include.clone(),
            src,
            dest,
            members: if attrs_apply { members } else { Vec::new() },
            attrs,
        };
        Ok(Plan::change(out, extract))
    }
}

/// Upload a controller archive to a temp file on the host; returns its path.
async fn upload(ctx: &ModuleCtx<'_>, path: &std::path::Path) -> Result<String, ModuleError> {
    let out = ctx.run("mktemp \"${TMPDIR:-/tmp}/.rigger-unarchive-XXXXXXXX\"").await?;
    let tmp = out.stdout_str().trim().to_string();
    if out.status != 0 || tmp.is_empty() {
        return Err(ModuleError::Failed(format!(
            "cannot create a temporary file on the host: {}",
            out.stderr_str().trim()
        )));
    }
    ctx.put_file(path, &tmp, &Default::default()).await?;
    Ok(tmp)
}

/// The archive's format, its members, and whether `dest` holds them already.
async fn inspect(
    ctx: &ModuleCtx<'_>,
    p: &Params,
    src: &str,
    archive: &str,
    dest: &str,
    opts: &[String],
    is_root: bool,
) -> Result<(Format, Vec<String>, bool), ModuleError> {
    let a = sh_quote(archive);
    let d = sh_quote(dest);
    let magic = ctx.run(&format!("od -An -tx1 -N6 -- {a}")).await?;
    let format = detect(&magic.stdout_str());
    let excludes: String = p
        .exclude
        .iter()
        .map(|e| format!(" --exclude={}", sh_quote(e)))
        .collect();
    let includes = words(&p.include);

    // Members, and whether dest already holds them.
    let (members, unarchived) = match format {
        Format::Tar(flag, _) => {
            let list = ctx
                .run(&format!(
                    "LANG=C LC_ALL=C tar -t {flag}{} -f {a}{excludes}{includes}",
                    words(opts)
                ))
                .await?;
            if list.status != 0 {
                return Err(ModuleError::Failed(format!(
                    "Failed to find handler for \"{src}\": tar cannot read it: {}",
                    list.stderr_str().trim()
                )));
            }
            let members: Vec<String> = list.stdout_str().lines().map(String::from).collect();
            let mut cmd = format!("tar --diff -C {d} {flag}");
            if !opts.is_empty() {
                cmd.push_str(" --show-transformed-names");
                cmd.push_str(&words(opts));
            }
            if let Some(o) = &p.owner {
                cmd.push_str(&format!(" --owner={}", sh_quote(o)));
            }
            if let Some(g) = &p.group {
                cmd.push_str(&format!(" --group={}", sh_quote(g)));
            }
            if p.keep_newer {
                cmd.push_str(" --keep-newer-files");
            }
            cmd.push_str(&format!("{excludes} -f {a}{includes}"));
            let diff = ctx.run(&format!("cd {d} && LANG=C LC_ALL=C {cmd}")).await?;
            let text = format!("{}\n{}", diff.stdout_str(), diff.stderr_str());
            let differs = tar_diff_differs(&text, p.owner.is_some(), p.group.is_some(), p.mode.is_some(), is_root);
            (members, !differs)
        }
        Format::Zip => {
            let have = ctx.run("command -v unzip").await?;
            if have.status != 0 {
                return Err(ModuleError::Failed(format!(
                    "Failed to find handler for \"{src}\". Make sure the required command to extract the file \
                     is installed.\nCommand \"unzip\" not found on the host; install the unzip package."
                )));
            }
            let x = if p.exclude.is_empty() {
                String::new()
            } else {
                format!(" -x{}", words(&p.exclude))
            };
            let info = ctx.run(&format!("unzip -Z -T {a}{includes}{x}")).await?;
            if info.status != 0 {
                return Err(ModuleError::Failed(format!(
                    "unzip cannot read {src}: {}",
                    info.stderr_str().trim()
                )));
            }
            let entries: Vec<(String, u64, String)> =
                info.stdout_str().lines().filter_map(parse_zipinfo_line).collect();
            // Size and local modification time of each member in dest.
            let names = entries.iter().map(|e| sh_quote(&e.0)).collect::<Vec<_>>().join(" ");
            let stat = ctx
                .run(&format!(
                    "cd {d} || exit 1; for f in {names}; do if [ -e \"$f\" ]; then \
                     printf '%s %s\\n' \"$(stat -c %s -- \"$f\")\" \"$(date -d @\"$(stat -c %Y -- \"$f\")\" +%Y%m%d.%H%M%S)\"; \
                     else echo MISSING; fi; done"
                ))
                .await?;
            let stat_out = stat.stdout_str();
            let mut stats = stat_out.lines();
            let mut same = stat.status == 0;
            for (name, size, time) in &entries {
                let line = stats.next().unwrap_or("MISSING");
                if line == "MISSING" {
                    same = false;
                    continue;
                }
                if name.ends_with('/') {
                    continue;
                }
                let mut f = line.split(' ');
                let dsize: u64 = f.next().and_then(|s| s.parse().ok()).unwrap_or(u64::MAX);
                let dtime = f.next().and_then(stamp_seconds);
                let ztime = stamp_seconds(time);
                let time_ok = match (dtime, ztime) {
                    (Some(x), Some(y)) => (x - y).abs() <= 2,
                    _ => false,
                };
                if dsize != *size || !time_ok {
                    same = false;
                }
            }
            let members = entries.into_iter().map(|e| e.0).collect();
            (members, same)
        }
    };

    Ok((format, members, unarchived))
}

/// Unpack the archive into `dest` (uploading a controller archive again),
/// then set the attributes of the members that differ.
struct Extract {
    /// The controller archive, when `src` is not on the host.
    local: Option<std::path::PathBuf>,
    /// The archive on the host (`src`, for a host archive).
    archive: String,
    format: Format,
    opts: Vec<String>,
    keep_newer: bool,
    exclude: Vec<String>,
    include: Vec<String>,
    src: String,
    dest: String,
    /// Members whose attributes are checked (none without owner/group/mode).
    members: Vec<String>,
    attrs: AttrParams,
}

impl Extract {
    async fn run(
        &self,
        ctx: &ModuleCtx<'_>,
        archive: &str,
        mut out: ModuleOutcome,
    ) -> Result<ModuleOutcome, ModuleError> {
        let (a, d) = (sh_quote(archive), sh_quote(&self.dest));
        let excludes: String = self
            .exclude
            .iter()
            .map(|e| format!(" --exclude={}", sh_quote(e)))
            .collect();
        let includes = words(&self.include);
        let cmd = match self.format {
            Format::Tar(flag, _) => {
                let mut c = format!("tar --extract -C {d} {flag}{}", words(&self.opts));
                if self.keep_newer {
                    c.push_str(" --keep-newer-files");
                }
                c.push_str(&format!("{excludes} -f {a}{includes}"));
                c
            }
            Format::Zip => {
                let x = if self.exclude.is_empty() {
                    String::new()
                } else {
                    format!(" -x{}", words(&self.exclude))
                };
                format!("unzip -o {a}{}{includes}{x} -d {d}", words(&self.opts))
            }
        };
        // `extract_results` comes before `files`, as it always did.
        let files = out.ret.shift_remove("files");
        let res = ctx.run(&format!("cd {d} && LANG=C LC_ALL=C {cmd}")).await?;
        let results = json!({"cmd": cmd, "rc": res.status, "out": res.stdout_str(), "err": res.stderr_str()});
        out = out.with("extract_results", results);
        if res.status != 0 {
            out.failed = true;
            out.msg = Some(format!(
                "failed to unpack {} to {}: {}",
                self.src,
                self.dest,
                res.stderr_str().trim()
            ));
            return Ok(out);
        }
        if !self.members.is_empty() {
            let (to_fix, _) = members_to_fix(ctx, &self.dest, &self.members, &self.attrs).await?;
            fix_members(ctx, &self.dest, &to_fix, &self.attrs).await?;
        }
        if let Some(files) = files {
            out = out.with("files", files);
        }
        Ok(out)
    }
}

#[async_trait]
impl Change for Extract {
    async fn apply(self: Box<Self>, ctx: &ModuleCtx<'_>, planned: ModuleOutcome) -> Result<ModuleOutcome, ModuleError> {
        let archive = match &self.local {
            None => self.archive.clone(),
            Some(path) => upload(ctx, path).await?,
        };
        let result = self.run(ctx, &archive, planned).await;
        if self.local.is_some() {
            let _ = ctx.run(&format!("rm -f -- {}", sh_quote(&archive))).await;
        }
        result
    }
}

/// Set owner/group/mode of the members in `dest` that differ.
struct FixMembers {
    dest: String,
    to_fix: Vec<String>,
    attrs: AttrParams,
}

#[async_trait]
impl Change for FixMembers {
    async fn apply(self: Box<Self>, ctx: &ModuleCtx<'_>, planned: ModuleOutcome) -> Result<ModuleOutcome, ModuleError> {
        fix_members(ctx, &self.dest, &self.to_fix, &self.attrs).await?;
        Ok(planned)
    }
}

/// The members whose owner/group/mode differ from `attrs`, and whether some
/// member is missing from `dest`.
async fn members_to_fix(
    ctx: &ModuleCtx<'_>,
    dest: &str,
    members: &[String],
    attrs: &AttrParams,
) -> Result<(Vec<String>, bool), ModuleError> {
    let names = members.iter().map(|m| sh_quote(m)).collect::<Vec<_>>().join(" ");
    let out = ctx
        .run(&format!(
            "cd {} || exit 1; for f in {names}; do if [ -e \"$f\" ]; then stat -c '{STAT_FMT}' -- \"$f\"; \
             else echo MISSING; fi; done",
            sh_quote(dest)
        ))
        .await?;
    let text = out.stdout_str();
    let mut to_fix = Vec::new();
    let mut missing = false;
    for (member, line) in members.iter().zip(text.lines()) {
        if line == "MISSING" {
            missing = true;
            continue;
        }
        let fake = format!("0022\nuid=0(x) gid=0(x)\n{line}\n{member}\n");
        let st: FileState = parse_query(member, None, fake.as_bytes())?;
        if attrs.differ(&st) {
            to_fix.push(member.clone());
        }
    }
    Ok((to_fix, missing))
}

/// Apply owner/group/mode to these members of `dest`.
async fn fix_members(
    ctx: &ModuleCtx<'_>,
    dest: &str,
    to_fix: &[String],
    attrs: &AttrParams,
) -> Result<(), ModuleError> {
    if to_fix.is_empty() {
        return Ok(());
    }
    let list = to_fix.iter().map(|m| sh_quote(m)).collect::<Vec<_>>().join(" ");
    let cmds = attrs.shell_commands("\"$f\"");
    let res = ctx
        .run(&format!(
            "cd {} || exit 1; for f in {list}; do {cmds}done",
            sh_quote(dest)
        ))
        .await?;
    if res.status != 0 {
        return Err(ModuleError::Failed(format!(
            "cannot set attributes in {dest}: {}",
            res.stderr_str().trim()
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::modules::host::file_state::testutil::{mode_of, Harness};

    #[test]
    fn helpers() {
        assert_eq!(detect(" 1f 8b 08 00 00 00\n"), Format::Tar("-z", "TgzArchive"));
        assert_eq!(detect("50 4b 03 04 0a 00"), Format::Zip);
        assert_eq!(detect("61 2f 00 00 00 00"), Format::Tar("", "TarArchive"));
        let l = "-rw-r--r--  3.0 unx        3 tx stor 20240102.030405 dir/a b.txt";
        assert_eq!(
            parse_zipinfo_line(l),
            Some(("dir/a b.txt".into(), 3, "20240102.030405".into()))
        );
        assert_eq!(parse_zipinfo_line("Archive:  x.zip"), None);
        // Non-ASCII where ASCII is expected is not a member line (no bad slice).
        assert_eq!(
            parse_zipinfo_line("érw-r--r-  3.0 unx 3 tx stor 20240102.030405 a"),
            None
        );
        assert_eq!(stamp_seconds("2024é102.030405"), None);
        assert_eq!(stamp_seconds("20240102.03é405"), None);
        assert_eq!(
            stamp_seconds("19700102.000001").unwrap() - stamp_seconds("19700101.000000").unwrap(),
            86401
        );
        assert!(tar_diff_differs(
            "a.txt: Mod time differs\n",
            false,
            false,
            false,
            false
        ));
        assert!(!tar_diff_differs("a.txt: Mode differs\n", false, false, true, false));
        assert!(!tar_diff_differs("a.txt: Uid differs\n", false, false, false, false));
        assert!(!tar_diff_differs("", false, false, false, false));
    }

    fn sh(cmd: &str) {
        let st = std::process::Command::new("sh").arg("-c").arg(cmd).status().unwrap();
        assert!(st.success(), "{cmd}");
    }

    #[tokio::test]
    async fn tar_and_zip_roundtrips() {
        let h = Harness::new();
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let r = root.to_str().unwrap();
        std::fs::create_dir_all(root.join("src/pkg")).unwrap();
        std::fs::write(root.join("src/pkg/a.txt"), "alpha\n").unwrap();
        std::fs::write(root.join("src/pkg/b.txt"), "beta\n").unwrap();
        sh(&format!(
            "cd {r}/src && tar czf {r}/pkg.tgz pkg && zip -qr {r}/pkg.zip pkg"
        ));
        std::fs::create_dir(root.join("out")).unwrap();
        let out = root.join("out");

        // Controller-side tgz.
        let args = json!({"src": format!("{r}/pkg.tgz"), "dest": out.to_str().unwrap(), "list_files": true, "mode": "u=rwX,g=rX,o="});
        let o = h.run(&Unarchive, true, args.clone()).await.unwrap();
        assert!(o.changed);
        assert!(!out.join("pkg").exists());
        let o = h.run(&Unarchive, false, args.clone()).await.unwrap();
        assert!(o.changed, "{:?}", o.msg);
        assert_eq!(o.ret["handler"], "TgzArchive");
        assert_eq!(std::fs::read_to_string(out.join("pkg/a.txt")).unwrap(), "alpha\n");
        assert_eq!(mode_of(&out.join("pkg/a.txt")), 0o640);
        assert_eq!(mode_of(&out.join("pkg")), 0o750);
        let files = o.ret["files"].as_array().unwrap();
        assert!(files.iter().any(|f| f == "pkg/b.txt"));
        let o = h.run(&Unarchive, false, args.clone()).await.unwrap();
        assert!(!o.changed, "{:?}", o.ret);
        // A modified file in dest: predicted, then restored.
        std::fs::write(out.join("pkg/a.txt"), "changed!\n").unwrap();
        let o = h.run(&Unarchive, true, args.clone()).await.unwrap();
        assert!(o.changed);
        assert_eq!(std::fs::read_to_string(out.join("pkg/a.txt")).unwrap(), "changed!\n");
        let o = h.run(&Unarchive, false, args.clone()).await.unwrap();
        assert!(o.changed);
        assert_eq!(std::fs::read_to_string(out.join("pkg/a.txt")).unwrap(), "alpha\n");
        assert!(!h.run(&Unarchive, false, args).await.unwrap().changed);

        // Remote zip with exclude.
        let zout = root.join("zout");
        std::fs::create_dir(&zout).unwrap();
        let zargs = json!({"src": format!("{r}/pkg.zip"), "dest": zout.to_str().unwrap(), "remote_src": true, "exclude": ["pkg/b.txt"]});
        let o = h.run(&Unarchive, false, zargs.clone()).await.unwrap();
        assert!(o.changed, "{:?}", o.msg);
        assert_eq!(o.ret["handler"], "ZipArchive");
        assert_eq!(std::fs::read_to_string(zout.join("pkg/a.txt")).unwrap(), "alpha\n");
        assert!(!zout.join("pkg/b.txt").exists());
        let o = h.run(&Unarchive, false, zargs.clone()).await.unwrap();
        assert!(!o.changed);
        std::fs::remove_file(zout.join("pkg/a.txt")).unwrap();
        assert!(h.run(&Unarchive, true, zargs.clone()).await.unwrap().changed);
        assert!(!zout.join("pkg/a.txt").exists());

        // creates skips.
        let o = h
            .run(&Unarchive, false, json!({"src": format!("{r}/pkg.zip"), "dest": zout.to_str().unwrap(), "remote_src": true, "creates": zout.to_str().unwrap()}))
            .await
            .unwrap();
        assert!(o.skipped);
        // dest must exist.
        let e = h
            .run(
                &Unarchive,
                false,
                json!({"src": format!("{r}/pkg.zip"), "dest": format!("{r}/nope"), "remote_src": true}),
            )
            .await;
        assert!(matches!(e, Err(ModuleError::Failed(m)) if m.contains("must be an existing dir")));
        for bad in [
            json!({"src": "x.tgz"}),
            json!({"src": "x.tgz", "dest": "/tmp", "remote_src": true, "copy": false}),
            json!({"src": "x.tgz", "dest": "/tmp", "keep_newer": "sometimes"}),
            json!({"src": "x.tgz", "dest": "/tmp", "strip": 1}),
        ] {
            let r = h.run(&Unarchive, false, bad.clone()).await;
            assert!(matches!(r, Err(ModuleError::Args(_))), "{bad}");
        }
    }
}
