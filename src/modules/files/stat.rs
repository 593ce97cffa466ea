//! `stat`: facts about a remote path.

use async_trait::async_trait;
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::modules::host::digest::sha1_hex;
use crate::modules::host::prefetch;
use crate::modules::host::remote_file::{self as remote, mode_str, Kind};
use crate::modules::{
    parse_params, Module, ModuleCtx, ModuleDoc, ModuleError, ModuleOutcome, OptKind, OptionDoc, Plan, ReturnDoc,
};

const OPTIONS: &[OptionDoc] = &[
    OptionDoc::new("path", OptKind::Path, "The path to examine.")
        .required()
        .aliases(&["dest", "name"]),
    OptionDoc::new("follow", OptKind::Bool, "Follow symbolic links.").default("no"),
    OptionDoc::new("get_checksum", OptKind::Bool, "Return a checksum of a regular file.").default("yes"),
    OptionDoc::new("checksum_algorithm", OptKind::Str, "Algorithm of the checksum.")
        .default("sha1")
        .choices(&["md5", "sha1", "sha224", "sha256", "sha384", "sha512"])
        .aliases(&["checksum", "checksum_algo"]),
    OptionDoc::new(
        "get_mime",
        OptKind::Bool,
        "Add `mimetype` and `charset` from the host's `file --mime-type --mime-encoding` (`unknown` when it is missing or fails).",
    )
    .default("yes")
    .aliases(&["mime", "mime_type", "mime-type"]),
    OptionDoc::new(
        "get_attributes",
        OptKind::Bool,
        "Add `version`, `attr_flags` and `attributes` (the names of the flags) from the host's `lsattr -vd`.",
    )
    .default("yes")
    .aliases(&["attr", "attributes"]),
];

static DOC: ModuleDoc = ModuleDoc {
    name: "stat",
    aliases: &[],
    short: "Retrieve file or file system status",
    description: "Returns facts about a path (type, mode, owner, size, times, checksum) in the `stat` \
dictionary. `stat.exists` is false when the path does not exist. Never changes anything.",
    free_form: false,
    options: OPTIONS,
    examples: "- stat:\n    path: /etc/foo.conf\n  register: st\n- debug:\n    msg: \"{{ st.stat.mode }}\"\n  when: st.stat.exists\n",
    returns: &[ReturnDoc {
        name: "stat",
        description: "exists, path, mode ('0644'), isdir, isreg, islnk, lnk_source, lnk_target, uid, gid, pw_name, gr_name, size, mtime, atime, ctime, inode, dev, nlink, checksum, permission bits (rusr, wusr, ...)",
    }],
    controller_only: false,
};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Params {
    path: String,
    #[serde(default)]
    follow: bool,
    #[serde(default = "yes")]
    get_checksum: bool,
    #[serde(default)]
    checksum_algorithm: Option<String>,
    #[serde(default = "yes")]
    get_mime: bool,
    #[serde(default = "yes")]
    get_attributes: bool,
}

fn yes() -> bool {
    true
}

pub struct StatModule;

#[async_trait]
impl Module for StatModule {
    fn query_hints(&self, args: &Map<String, Value>) -> Vec<crate::modules::PathQuery> {
        crate::modules::host::prefetch::needs("stat", args)
    }

    fn may_change_users(&self, result: &Map<String, Value>) -> bool {
        crate::modules::host::remote_file::wrote_user_database(result)
    }

    fn doc(&self) -> &'static ModuleDoc {
        &DOC
    }

    /// Read-only: the whole run is the query.
    async fn query(&self, ctx: &ModuleCtx<'_>, args: Map<String, Value>) -> Result<Plan, ModuleError> {
        let p: Params = parse_params(&DOC, args)?;
        let path = p.path;
        let algo = p.checksum_algorithm.unwrap_or_else(|| "sha1".into());
        // A small regular file's SHA-1 is computed here from its bytes read
        // over SFTP (no program started on the host), after the query,
        // unless the prefetch may answer the query's snippet.
        let sftp = match (
            p.get_checksum && algo == "sha1" && !prefetch::may_answer(ctx),
            path.starts_with('/'),
        ) {
            (true, true) => crate::connection::sftp_for_reading(ctx.conn, &path, ctx.become_).await,
            _ => None,
        };
        let algo_asked = (p.get_checksum && sftp.is_none()).then_some(algo.as_str());
        let q = sh_path(&path);
        let mut script = remote::stat_snippet_for(ctx, "", &path, p.follow, algo_asked);
        script.push_str(&format!(
            "[ -r {q} ] && echo 'R|r'; [ -w {q} ] && echo 'R|w'; [ -x {q} ] && echo 'R|x'; \
             [ -L {q} ] && printf 'P|%s\\n' \"$(readlink -f -- {q} 2>/dev/null)\"; true\n"
        ));
        // As Ansible: `file` and `lsattr` only when installed, their
        // answers only when they succeed (Ansible's arguments; `file -b`
        // leaves the path out, which Ansible cuts off at the last `:`).
        // Only each answer's first line, cut by the shell: a file name with
        // a newline cannot add tagged lines, and no `head` is started.
        if p.get_mime || p.get_attributes {
            script.push_str("nl='\n'\n");
        }
        if p.get_mime {
            script.push_str(&format!(
                "command -v file >/dev/null 2>&1 && m=$(file -b --mime-type --mime-encoding -- {q} 2>/dev/null) && \
                 printf 'M|%s\\n' \"${{m%%\"$nl\"*}}\"; true\n"
            ));
        }
        if p.get_attributes {
            script.push_str(&format!(
                "command -v lsattr >/dev/null 2>&1 && a=$(lsattr -vd -- {q} 2>/dev/null) && \
                 printf 'A|%s\\n' \"${{a%%\"$nl\"*}}\"; true\n"
            ));
        }
        let out = ctx.run(&script).await?;
        let text = out.stdout_str();
        let st = remote::parse_tagged(&text, "")?;
        let Some(st) = st else {
            let mut m = Map::new();
            m.insert("exists".into(), Value::Bool(false));
            return Ok(Plan::Done(ModuleOutcome::ok().with("stat", Value::Object(m))));
        };
        let mut st = st;
        if let Some(sftp) = &sftp {
            // As the query's `[ -f ] && sha1sum <`: a regular file (through
            // a link only on the host: it may lead to a FIFO).
            let read = match st.kind {
                Kind::File => sftp
                    .read_small(&path, super::copy::SFTP_COMPARE_MAX)
                    .await
                    .ok()
                    .flatten(),
                _ => None,
            };
            st.checksum = match read {
                Some(bytes) => Some(sha1_hex(&bytes)),
                None if matches!(st.kind, Kind::File | Kind::Link) => super::copy::remote_sha1(ctx, &path).await?,
                None => None,
            };
        }
        let access: Vec<&str> = text.lines().filter_map(|l| l.strip_prefix("R|")).collect();
        let real = text
            .lines()
            .find_map(|l| l.strip_prefix("P|"))
            .unwrap_or("")
            .to_string();
        let mut m = Map::new();
        let b = |v: bool| Value::Bool(v);
        m.insert("exists".into(), b(true));
        m.insert("path".into(), Value::String(path.clone()));
        m.insert("mode".into(), Value::String(mode_str(st.mode)));
        m.insert("isdir".into(), b(st.kind == Kind::Dir));
        m.insert("isreg".into(), b(st.kind == Kind::File));
        m.insert("islnk".into(), b(st.kind == Kind::Link));
        m.insert("ischr".into(), b(st.type_text == "character special file"));
        m.insert("isblk".into(), b(st.type_text == "block special file"));
        m.insert("isfifo".into(), b(st.type_text == "fifo"));
        m.insert("issock".into(), b(st.type_text == "socket"));
        m.insert("uid".into(), st.uid.into());
        m.insert("gid".into(), st.gid.into());
        m.insert("pw_name".into(), Value::String(st.owner.clone()));
        m.insert("gr_name".into(), Value::String(st.group.clone()));
        m.insert("size".into(), st.size.into());
        m.insert("mtime".into(), st.mtime.into());
        m.insert("atime".into(), st.atime.into());
        m.insert("ctime".into(), st.ctime.into());
        m.insert("inode".into(), st.inode.into());
        m.insert("dev".into(), st.dev.into());
        m.insert("nlink".into(), st.nlink.into());
        for (name, bit) in [
            ("rusr", 0o400),
            ("wusr", 0o200),
            ("xusr", 0o100),
            ("rgrp", 0o040),
            ("wgrp", 0o020),
            ("xgrp", 0o010),
            ("roth", 0o004),
            ("woth", 0o002),
            ("xoth", 0o001),
            ("isuid", 0o4000),
            ("isgid", 0o2000),
        ] {
            m.insert(name.into(), b(st.mode & bit != 0));
        }
        m.insert("readable".into(), b(access.contains(&"r")));
        m.insert("writeable".into(), b(access.contains(&"w")));
        m.insert("executable".into(), b(access.contains(&"x")));
        if st.kind == Kind::Link {
            m.insert("lnk_source".into(), Value::String(real));
            m.insert(
                "lnk_target".into(),
                Value::String(st.link_target.clone().unwrap_or_default()),
            );
        }
        if let Some(c) = &st.checksum {
            m.insert("checksum".into(), Value::String(c.clone()));
        }
        if p.get_mime {
            let (mimetype, charset) = text
                .lines()
                .find_map(|l| l.strip_prefix("M|"))
                .and_then(parse_mime)
                .unwrap_or_else(|| ("unknown".into(), "unknown".into()));
            m.insert("mimetype".into(), Value::String(mimetype));
            m.insert("charset".into(), Value::String(charset));
        }
        if p.get_attributes {
            let lsattr = text.lines().find_map(|l| l.strip_prefix("A|")).and_then(parse_lsattr);
            let (version, flags) = match lsattr {
                Some((v, f)) => (Value::String(v), f),
                None => (Value::Null, String::new()),
            };
            m.insert("version".into(), version);
            m.insert(
                "attributes".into(),
                Value::Array(attribute_names(&flags).into_iter().map(Value::from).collect()),
            );
            m.insert("attr_flags".into(), Value::String(flags));
        }
        Ok(Plan::Done(ModuleOutcome::ok().with("stat", Value::Object(m))))
    }
}

/// `mimetype` and `charset` from `file --mime-type --mime-encoding`'s
/// `PATH: TYPE; charset=CHARSET`, split as Ansible does (after the last `:`).
fn parse_mime(line: &str) -> Option<(String, String)> {
    let rest = line.rsplit_once(':').map_or(line, |(_, rest)| rest);
    let mut parts = rest.split(';');
    let (mimetype, charset) = (parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    let (_, charset) = charset.split_once('=')?;
    Some((
        mimetype.trim().to_string(),
        charset.split('=').next()?.trim().to_string(),
    ))
}

/// The version and the set flags (dashes removed) of `lsattr -vd`'s
/// `VERSION FLAGS PATH`.
fn parse_lsattr(line: &str) -> Option<(String, String)> {
    let mut words = line.split_whitespace();
    let version = words.next()?.to_string();
    let flags = words.next()?.replace('-', "");
    Some((version, flags))
}

/// Ansible's `format_attributes`: the names of the flags it knows, in the
/// flags' order.
pub(crate) fn attribute_names(flags: &str) -> Vec<&'static str> {
    flags.chars().filter_map(attribute_name).collect()
}

/// Ansible's `FILE_ATTRIBUTES`: one `chattr` flag's name.
pub(crate) fn attribute_name(flag: char) -> Option<&'static str> {
    Some(match flag {
        'A' => "noatime",
        'a' => "append",
        'c' => "compressed",
        'C' => "nocow",
        'd' => "nodump",
        'D' => "dirsync",
        'e' => "extents",
        'E' => "encrypted",
        'h' => "blocksize",
        'i' => "immutable",
        'I' => "indexed",
        'j' => "journalled",
        'N' => "inline",
        's' => "zero",
        'S' => "synchronous",
        't' => "notail",
        'T' => "blockroot",
        'u' => "undelete",
        'X' => "compressedraw",
        'Z' => "compresseddirty",
        _ => return None,
    })
}

fn sh_path(p: &str) -> String {
    crate::connection::sh_quote(p)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::modules::files::testutil::TestEnv;
    use serde_json::json;

    #[tokio::test]
    async fn stat_file_link_and_absent() {
        let env = TestEnv::new();
        let f = env.path("a.txt");
        std::fs::write(&f, b"hello\n").unwrap();
        std::os::unix::fs::symlink(&f, env.path("l")).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o640)).unwrap();
        let r = env.run(&StatModule, json!({"path": f}), false).await.unwrap();
        assert!(!r.changed);
        let s = &r.ret["stat"];
        assert_eq!(s["exists"], true);
        assert_eq!(s["mode"], "0640");
        assert_eq!(s["isreg"], true);
        assert_eq!(s["size"], 6);
        assert_eq!(s["checksum"], sha1_hex(b"hello\n"));
        let r = env
            .run(
                &StatModule,
                json!({"path": env.path("l"), "checksum_algorithm": "sha256"}),
                false,
            )
            .await
            .unwrap();
        assert_eq!(r.ret["stat"]["islnk"], true);
        assert_eq!(r.ret["stat"]["lnk_target"], f.as_str());
        let r = env
            .run(
                &StatModule,
                json!({"path": env.path("l"), "follow": true, "checksum_algorithm": "sha256"}),
                false,
            )
            .await
            .unwrap();
        assert_eq!(r.ret["stat"]["isreg"], true);
        use sha2::Digest;
        assert_eq!(
            r.ret["stat"]["checksum"],
            crate::modules::host::digest::hex(&sha2::Sha256::digest(b"hello\n"))
        );
        let r = env
            .run(&StatModule, json!({"path": env.path("nope")}), false)
            .await
            .unwrap();
        assert_eq!(r.ret["stat"]["exists"], false);
        let e = env.run(&StatModule, json!({"path": f, "bogus": 1}), false).await;
        assert!(matches!(e, Err(ModuleError::Args(_))));
        // MIME type and charset from the host's `file`, as Ansible reads them.
        let colon = env.path("foo:bar.txt");
        std::fs::write(&colon, b"hello world").unwrap();
        let r = env.run(&StatModule, json!({"path": colon}), false).await.unwrap();
        assert_eq!(r.ret["stat"]["mimetype"], "text/plain");
        assert_eq!(r.ret["stat"]["charset"], "us-ascii");
        assert!(r.ret["stat"]["attributes"].is_array());
        // A name whose second line looks like one of the script's tagged
        // answers adds nothing: only each answer's first line is read.
        let tricky = env.path("x\nP|evil");
        std::fs::write(&tricky, b"hello world").unwrap();
        let r = env.run(&StatModule, json!({"path": tricky}), false).await.unwrap();
        assert_eq!(r.ret["stat"]["mimetype"], "text/plain");
        assert!(r.ret["stat"].get("lnk_source").is_none());
        assert!(r.ret["stat"]["version"].is_string());
        let r = env
            .run(
                &StatModule,
                json!({"path": colon, "get_mime": false, "attr": false}),
                false,
            )
            .await
            .unwrap();
        assert!(r.ret["stat"].get("mimetype").is_none());
        assert!(r.ret["stat"].get("attr_flags").is_none());
        assert_eq!(
            parse_mime("/a:b: application/pdf; charset=binary"),
            Some(("application/pdf".into(), "binary".into()))
        );
        assert_eq!(
            parse_mime("text/x-shellscript; charset=utf-8"),
            Some(("text/x-shellscript".into(), "utf-8".into()))
        );
        assert_eq!(parse_mime("garbage"), None);
        assert_eq!(
            parse_lsattr("3141 --S-i---------e------- /x"),
            Some(("3141".into(), "Sie".into()))
        );
        assert_eq!(attribute_names("Sie"), vec!["synchronous", "immutable", "extents"]);
        let e = env.run(&StatModule, json!({"path": f, "bogus": 1}), false).await;
        assert!(matches!(e, Err(ModuleError::Args(_))));
    }
}
