//! `archive`: create a tar/zip archive or a compressed file on the host.

use async_trait::async_trait;
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::connection::sh_quote;
use crate::modules::args::{de_opt_mode, de_string_list, Mode};
use crate::modules::host::file_state::apply_attrs;
use crate::modules::host::file_state::query_file;
use crate::modules::host::file_state::AttrParams;
use crate::modules::host::file_state::FileState;
use crate::modules::host::opts::{GROUP_OPT, MODE_OPT, OWNER_OPT, UNSAFE_WRITES_OPT};
use crate::modules::{
    parse_params, Change, Module, ModuleCtx, ModuleDoc, ModuleError, ModuleOutcome, OptKind, OptionDoc, Plan, ReturnDoc,
};
use crate::shell::sh_quote_glob;

const OPTIONS: &[OptionDoc] = &[
    OptionDoc::new(
        "path",
        OptKind::List,
        "Paths (files, directories or globs) on the host to archive or compress.",
    )
    .required(),
    OptionDoc::new("format", OptKind::Str, "The archive or compression format.")
        .default("gz")
        .choices(&["bz2", "gz", "tar", "xz", "zip"]),
    OptionDoc::new(
        "dest",
        OptKind::Path,
        "The archive to write. Required for several paths, globs or a directory; a single file \
is compressed to `PATH.FORMAT` by default.",
    ),
    OptionDoc::new(
        "exclude_path",
        OptKind::List,
        "Paths (or globs) left out of the archive.",
    ),
    OptionDoc::new(
        "exclusion_patterns",
        OptKind::List,
        "Shell patterns of member names left out of the archive.",
    ),
    OptionDoc::new(
        "force_archive",
        OptKind::Bool,
        "Make an archive even for a single file (instead of compressing it).",
    )
    .default("no"),
    OptionDoc::new("remove", OptKind::Bool, "Remove the sources after archiving them.").default("no"),
    OWNER_OPT,
    GROUP_OPT,
    MODE_OPT,
    UNSAFE_WRITES_OPT,
];

static DOC: ModuleDoc = ModuleDoc {
    name: "archive",
    aliases: &["community.general.archive"],
    short: "Create a compressed archive of one or more files or trees",
    description: "Builds the archive with `tar` (gz, bz2, xz, tar) or `zip` on the host into a temporary \
file, and replaces `dest` only when the member names or their contents differ from the existing \
archive (timestamps inside compressed streams do not count). A single file with a compression format \
is compressed instead of archived.",
    free_form: false,
    options: OPTIONS,
    examples: "- archive:\n    path: /var/www/site\n    dest: /backup/site.tar.bz2\n    format: bz2\n\n\
- archive:\n    path: /var/log/app.log\n    remove: yes\n",
    returns: &[
        ReturnDoc {
            name: "dest_state",
            description: "`archive`, `compress`, `incomplete` (some paths missing) or `absent`",
        },
        ReturnDoc {
            name: "archived",
            description: "paths put in the archive",
        },
        ReturnDoc {
            name: "missing",
            description: "paths that did not exist",
        },
        ReturnDoc {
            name: "expanded_paths",
            description: "the source paths after glob expansion",
        },
        ReturnDoc {
            name: "expanded_exclude_paths",
            description: "the excluded paths after glob expansion",
        },
        ReturnDoc {
            name: "arcroot",
            description: "the directory member names are relative to",
        },
    ],
    controller_only: false,
};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Params {
    #[serde(deserialize_with = "de_string_list")]
    path: Vec<String>,
    #[serde(default)]
    format: Option<String>,
    #[serde(default)]
    dest: Option<String>,
    #[serde(default, deserialize_with = "de_string_list")]
    exclude_path: Vec<String>,
    #[serde(default, deserialize_with = "de_string_list")]
    exclusion_patterns: Vec<String>,
    #[serde(default)]
    force_archive: bool,
    #[serde(default)]
    remove: bool,
    #[serde(default)]
    owner: Option<String>,
    #[serde(default)]
    group: Option<String>,
    #[serde(default, deserialize_with = "de_opt_mode")]
    mode: Option<Mode>,
}

pub(crate) struct Archive;

fn has_glob(s: &str) -> bool {
    s.contains(['*', '?', '['])
}

/// Ansible's `common_path`: the directory of the common string prefix, with a slash.
fn arcroot(paths: &[String]) -> String {
    let Some(first) = paths.first() else {
        return "/".into();
    };
    let mut prefix_len = first.len();
    for p in &paths[1..] {
        prefix_len = first
            .bytes()
            .zip(p.bytes())
            .take(prefix_len)
            .take_while(|(a, b)| a == b)
            .count();
    }
    let prefix = &first[..prefix_len];
    match prefix.rfind('/') {
        Some(0) => "/".into(),
        Some(i) => format!("{}/", &prefix[..i]),
        None => String::new(),
    }
}

/// Expand globs on the host: (existing paths, missing paths).
async fn expand(ctx: &ModuleCtx<'_>, paths: &[String]) -> Result<(Vec<String>, Vec<String>), ModuleError> {
    let mut script = String::from("set +f; ");
    for p in paths {
        let word = if has_glob(p) { sh_quote_glob(p) } else { sh_quote(p) };
        script.push_str(&format!(
            "for f in {word}; do if [ -e \"$f\" ] || [ -L \"$f\" ]; then printf 'E\\0%s\\0' \"$f\"; \
             else printf 'M\\0%s\\0' \"$f\"; fi; done; "
        ));
    }
    let out = ctx.run(&script).await?;
    let fields: Vec<String> = out
        .stdout
        .split(|&b| b == 0)
        .map(|f| String::from_utf8_lossy(f).into_owned())
        .collect();
    let (mut found, mut missing) = (Vec::new(), Vec::new());
    let mut it = fields.chunks_exact(2);
    for pair in it.by_ref() {
        let path = pair[1].trim_end_matches('/').to_string();
        let path = if path.is_empty() { "/".to_string() } else { path };
        match pair[0].as_str() {
            "E" => found.push(path),
            // An unmatched glob expands to nothing, as in Python's glob.
            _ if has_glob(&pair[1]) => {}
            _ => missing.push(path),
        }
    }
    Ok((found, missing))
}

#[async_trait]
impl Module for Archive {
    fn may_change_users(&self, result: &Map<String, Value>) -> bool {
        crate::modules::host::remote_file::wrote_user_database(result)
    }

    fn doc(&self) -> &'static ModuleDoc {
        &DOC
    }

    async fn query(&self, ctx: &ModuleCtx<'_>, args: Map<String, Value>) -> Result<Plan, ModuleError> {
        let p: Params = parse_params(&DOC, args)?;
        if p.path.is_empty() {
            return Err(ModuleError::Args("archive: missing required argument: path".into()));
        }
        let format = p.format.clone().unwrap_or_else(|| "gz".into());
        let (tar_flag, decompress) = match format.as_str() {
            "gz" => ("z", "gzip -dc"),
            "bz2" => ("j", "bzip2 -dc"),
            "xz" => ("J", "xz -dc"),
            "tar" => ("", "cat"),
            "zip" => ("", ""),
            other => {
                return Err(ModuleError::Args(format!(
                    "archive: format must be one of: bz2, gz, tar, xz, zip; got {other}"
                )))
            }
        };
        let attrs = AttrParams {
            owner: p.owner.clone(),
            group: p.group.clone(),
            mode: p.mode.clone(),
        };
        let (paths, missing) = expand(ctx, &p.path).await?;
        let (excluded, _) = expand(ctx, &p.exclude_path).await?;
        let any_glob = p.path.iter().any(|x| has_glob(x));
        let first_is_dir = match paths.first() {
            Some(f) => ctx.run(&format!("[ -d {} ]", sh_quote(f))).await?.status == 0,
            None => false,
        };
        let must_archive = p.force_archive || any_glob || paths.len() > 1 || p.path.len() > 1 || first_is_dir;
        let compress = !must_archive && format != "zip" && format != "tar";
        let dest = match &p.dest {
            Some(d) => d.clone(),
            None if !must_archive && !p.path.is_empty() => format!("{}.{format}", p.path[0]),
            None => {
                return Err(ModuleError::Failed(
                    "Error, must specify \"dest\" when archiving multiple files or trees".into(),
                ))
            }
        };
        let root = arcroot(&paths);
        let members: Vec<String> = paths
            .iter()
            .filter(|x| !excluded.contains(x) && **x != dest)
            .map(|x| {
                let rel = x.strip_prefix(&root).unwrap_or(x);
                if rel.is_empty() {
                    ".".to_string()
                } else {
                    rel.to_string()
                }
            })
            .collect();
        let mut out = ModuleOutcome::changed(false)
            .with("dest", dest.clone())
            .with("arcroot", root.clone())
            .with("expanded_paths", paths.clone())
            .with("expanded_exclude_paths", excluded.clone())
            .with("missing", missing.clone());
        let dest_state = if compress { "compress" } else { "archive" };

        if members.is_empty() {
            let st = query_file(ctx, &dest, false).await?;
            if st.exists() {
                let out = out
                    .with("dest_state", dest_state)
                    .with("state", dest_state)
                    .with("archived", Vec::<String>::new());
                if !attrs.differ(&st) {
                    return Ok(Plan::Done(out));
                }
                let change = MakeArchive {
                    build: None,
                    attrs,
                    attrs_of: Some(st),
                    remove: Vec::new(),
                };
                return Ok(Plan::change(out, change));
            }
            return Ok(Plan::Done(
                ModuleOutcome::failed(format!("Error, no source paths were found: {}", p.path.join(", ")))
                    .with("missing", missing),
            ));
        }

        // Build the new archive next to dest (or in /tmp when its directory
        // does not exist yet) and fingerprint old and new by content.
        let d = sh_quote(&dest);
        let quoted_members = members.iter().map(|m| sh_quote(m)).collect::<Vec<_>>().join(" ");
        let build = if compress {
            let src = sh_quote(&paths[0]);
            let tool = match format.as_str() {
                "gz" => "gzip -9 -c",
                "bz2" => "bzip2 -9 -c",
                _ => "xz -c",
            };
            format!(
                "n=\"$w/new\"; {tool} < {src} > \"$n\" || exit 1; new=$(sha1sum < {src}); \
                     old=$( [ -f {d} ] && {decompress} < {d} 2>/dev/null | sha1sum ); echo; "
            )
        } else if format == "zip" {
            let mut excl = String::new();
            for e in &excluded {
                if let Some(rel) = e.strip_prefix(&root) {
                    excl.push_str(&format!(" {} {}", sh_quote(rel), sh_quote(&format!("{rel}/*"))));
                }
            }
            for pat in &p.exclusion_patterns {
                excl.push_str(&format!(" {}", sh_quote(pat)));
            }
            let excl = if excl.is_empty() {
                String::new()
            } else {
                format!(" -x{excl}")
            };
            format!(
                "command -v zip >/dev/null || {{ echo 'the zip command is needed on the host for format=zip' >&2; exit 1; }}; \
                 n=\"$w/new.zip\"; (cd {} && zip -q -r -y \"$n\" {quoted_members}{excl}) || exit 1; \
                 fp() {{ {{ unzip -Z1 \"$1\"; unzip -p \"$1\"; }} 2>/dev/null | sha1sum; }}; \
                 new=$(fp \"$n\"); old=$( [ -f {d} ] && fp {d} ); unzip -Z1 \"$n\"; ",
                sh_quote(&root)
            )
        } else {
            let mut excl = String::new();
            for pat in &p.exclusion_patterns {
                excl.push_str(&format!(" --exclude={}", sh_quote(pat)));
            }
            let rel_excl: Vec<String> = excluded
                .iter()
                .filter_map(|e| e.strip_prefix(&root))
                .map(|rel| format!(" --exclude={}", sh_quote(rel)))
                .collect();
            if !rel_excl.is_empty() {
                excl.push_str(" --anchored");
                excl.push_str(&rel_excl.concat());
            }
            format!(
                "n=\"$w/new.tar\"; tar -c{tar_flag}f \"$n\" -C {}{excl} {quoted_members} || exit 1; \
                 fp() {{ {{ tar -tf \"$1\"; tar -xOf \"$1\"; }} 2>/dev/null | sha1sum; }}; \
                 new=$(fp \"$n\"); old=$( [ -f {d} ] && fp {d} ); tar -tf \"$n\"; ",
                sh_quote(&root)
            )
        };
        let script = |apply: bool| {
            format!(
                "dd=$(dirname -- {d}); if [ -d \"$dd\" ] && [ -w \"$dd\" ]; then w=$(mktemp -d \"$dd/.rigger-archive-XXXXXXXX\"); \
                 else w=$(mktemp -d \"${{TMPDIR:-/tmp}}/.rigger-archive-XXXXXXXX\"); fi || exit 1; \
                 trap 'rm -rf \"$w\"' EXIT; {{ {build} }} > \"$w/list\" || exit 1; \
                 printf '%s\\n%s\\n' \"$new\" \"$old\"; cat \"$w/list\"; \
                 if [ \"$new\" != \"$old\" ] && [ {apply} = 1 ]; then mkdir -p -- \"$dd\" && mv -f -- \"$n\" {d} || exit 1; fi",
                apply = u8::from(apply),
            )
        };
        let built = Built {
            script: script(true),
            dest: dest.clone(),
            listed_as: compress.then(|| paths[0].clone()),
            root: root.clone(),
        };
        let (content_changed, listed) = built.run(ctx, &script(false)).await?;
        out.changed = content_changed;

        // Only an archive left as it is keeps the state read here: a new
        // one is looked at again once in place.
        let mut attrs_of = None;
        if !content_changed {
            let st = query_file(ctx, &dest, false).await?;
            if st.exists() && attrs.differ(&st) {
                out.changed = true;
                attrs_of = Some(st);
            }
        }
        let mut remove = Vec::new();
        if p.remove {
            let targets: Vec<String> = paths
                .iter()
                .filter(|x| !excluded.contains(x) && **x != dest)
                .cloned()
                .collect();
            if !targets.is_empty() {
                out.changed = true;
                remove = targets;
            }
        }
        let state = if missing.is_empty() { dest_state } else { "incomplete" };
        let out = out
            .with("archived", listed)
            .with("dest_state", state)
            .with("state", state);
        if !out.changed {
            return Ok(Plan::Done(out));
        }
        let change = MakeArchive {
            build: content_changed.then_some(built),
            attrs,
            attrs_of,
            remove,
        };
        Ok(Plan::change(out, change))
    }
}

/// The script that builds the archive next to `dest`, compares it with the
/// existing one by content and (when told to) moves it into place.
struct Built {
    /// The script that moves a differing archive into place.
    script: String,
    dest: String,
    /// A compressed file's one member (an archive lists its own).
    listed_as: Option<String>,
    root: String,
}

impl Built {
    /// Run `script` (this one or the one that only compares): whether the
    /// content differs, and the members.
    async fn run(&self, ctx: &ModuleCtx<'_>, script: &str) -> Result<(bool, Vec<String>), ModuleError> {
        let res = ctx.run(script).await?;
        if res.status != 0 {
            return Err(ModuleError::Failed(format!(
                "cannot create {}: {}",
                self.dest,
                res.stderr_str().trim()
            )));
        }
        let text = res.stdout_str();
        let mut lines = text.lines();
        let new = lines.next().unwrap_or_default().to_string();
        let old = lines.next().unwrap_or_default().to_string();
        let listed: Vec<String> = match &self.listed_as {
            Some(path) => vec![path.clone()],
            None => lines
                .filter(|l| !l.is_empty())
                .map(|l| format!("{}{}", self.root, l.trim_end_matches('/')))
                .collect(),
        };
        Ok((new != old, listed))
    }
}

/// What `archive` changes: the archive (built again, now moved into place),
/// its attributes, the archived sources.
struct MakeArchive {
    build: Option<Built>,
    attrs: AttrParams,
    /// The state of an existing archive left as it is whose attributes differ.
    attrs_of: Option<FileState>,
    /// Sources to remove.
    remove: Vec<String>,
}

#[async_trait]
impl Change for MakeArchive {
    async fn apply(
        self: Box<Self>,
        ctx: &ModuleCtx<'_>,
        mut planned: ModuleOutcome,
    ) -> Result<ModuleOutcome, ModuleError> {
        if let Some(built) = &self.build {
            let (_, listed) = built.run(ctx, &built.script).await?;
            planned = planned.with("archived", listed);
            let st = query_file(ctx, &built.dest, false).await?;
            if st.exists() {
                apply_attrs(ctx, &st, &self.attrs).await?;
            }
        } else if let Some(st) = &self.attrs_of {
            apply_attrs(ctx, st, &self.attrs).await?;
        }
        if !self.remove.is_empty() {
            let list = self.remove.iter().map(|t| sh_quote(t)).collect::<Vec<_>>().join(" ");
            let r = ctx.run(&format!("rm -rf -- {list}")).await?;
            if r.status != 0 {
                return Err(ModuleError::Failed(format!(
                    "cannot remove the archived sources: {}",
                    r.stderr_str().trim()
                )));
            }
        }
        Ok(planned)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::modules::host::file_state::testutil::{mode_of, Harness};

    #[test]
    fn roots_and_globs() {
        assert_eq!(arcroot(&["/tmp/a".into()]), "/tmp/");
        assert_eq!(arcroot(&["/tmp/a/x".into(), "/tmp/a/y".into()]), "/tmp/a/");
        assert_eq!(arcroot(&["/tmp/ab".into(), "/tmp/ac".into()]), "/tmp/");
        assert_eq!(sh_quote_glob("/a b/*.log"), "'/a b/'*.log");
    }

    fn tar_list(p: &std::path::Path) -> Vec<String> {
        let out = std::process::Command::new("tar").arg("-tf").arg(p).output().unwrap();
        let mut v: Vec<String> = String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .map(String::from)
            .collect();
        v.sort();
        v
    }

    #[tokio::test]
    async fn archive_idempotent_and_check_mode() {
        let h = Harness::new();
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("site");
        std::fs::create_dir_all(src.join("sub")).unwrap();
        std::fs::write(src.join("index.html"), "hi\n").unwrap();
        std::fs::write(src.join("sub/x.txt"), "x\n").unwrap();
        std::fs::write(src.join("skip.tmp"), "tmp\n").unwrap();
        let dest = dir.path().join("site.tar.gz");
        let args = json!({"path": src.to_str().unwrap(), "dest": dest.to_str().unwrap(),
                          "exclude_path": [src.join("skip.tmp").to_str().unwrap()], "mode": "0600"});
        let o = h.run(&Archive, true, args.clone()).await.unwrap();
        assert!(o.changed);
        assert!(!dest.exists());
        let o = h.run(&Archive, false, args.clone()).await.unwrap();
        assert!(o.changed, "{:?}", o.msg);
        assert_eq!(o.ret["dest_state"], "archive");
        assert_eq!(
            tar_list(&dest),
            vec!["site/", "site/index.html", "site/sub/", "site/sub/x.txt"]
        );
        assert_eq!(mode_of(&dest), 0o600);
        // Same content again (gzip header times differ): no change.
        let o = h.run(&Archive, false, args.clone()).await.unwrap();
        assert!(!o.changed);
        // A changed source: check predicts, run applies.
        std::fs::write(src.join("index.html"), "hello\n").unwrap();
        let o = h.run(&Archive, true, args.clone()).await.unwrap();
        assert!(o.changed);
        let o = h.run(&Archive, false, args.clone()).await.unwrap();
        assert!(o.changed);
        let o = h.run(&Archive, false, args).await.unwrap();
        assert!(!o.changed);

        // zip of a glob.
        let zdest = dir.path().join("logs.zip");
        let zargs = json!({"path": format!("{}/*.html", src.to_str().unwrap()), "dest": zdest.to_str().unwrap(), "format": "zip"});
        let o = h.run(&Archive, false, zargs.clone()).await.unwrap();
        assert!(o.changed);
        let list = std::process::Command::new("unzip")
            .arg("-Z1")
            .arg(&zdest)
            .output()
            .unwrap();
        assert_eq!(String::from_utf8(list.stdout).unwrap(), "index.html\n");
        assert!(!h.run(&Archive, false, zargs).await.unwrap().changed);

        // Single file: compressed to PATH.gz, then removed.
        let log = dir.path().join("app.log");
        std::fs::write(&log, "line\n").unwrap();
        let o = h
            .run(&Archive, false, json!({"path": log.to_str().unwrap(), "remove": true}))
            .await
            .unwrap();
        assert!(o.changed);
        assert_eq!(o.ret["dest_state"], "compress");
        assert!(!log.exists());
        let gz = dir.path().join("app.log.gz");
        let out = std::process::Command::new("gzip").arg("-dc").arg(&gz).output().unwrap();
        assert_eq!(out.stdout, b"line\n");
        // Sources gone, archive there: nothing to do.
        let o = h
            .run(&Archive, false, json!({"path": log.to_str().unwrap(), "remove": true}))
            .await
            .unwrap();
        assert!(!o.changed);

        for bad in [
            json!({"path": "/x", "format": "rar"}),
            json!({"dest": "/x.tgz"}),
            json!({"path": "/x", "compression": "gz"}),
        ] {
            let r = h.run(&Archive, false, bad.clone()).await;
            assert!(matches!(r, Err(ModuleError::Args(_))), "{bad}");
        }
    }
}
