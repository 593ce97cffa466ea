//! `fetch`: copy a file from the host to the controller.

use std::path::PathBuf;

use async_trait::async_trait;
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::modules::host::digest::sha1_hex;
use crate::modules::host::remote_file::{self as remote, Kind};
use crate::modules::{
    parse_params, Change, Diff, Module, ModuleCtx, ModuleDoc, ModuleError, ModuleOutcome, OptKind, OptionDoc, Plan,
    ReturnDoc,
};

const OPTIONS: &[OptionDoc] = &[
    OptionDoc::new("src", OptKind::Path, "The file on the host to fetch (not a directory).").required(),
    OptionDoc::new(
        "dest",
        OptKind::Path,
        "Local directory; the file is saved as `dest/<inventory_hostname>/<src>` unless `flat`.",
    )
    .required(),
    OptionDoc::new(
        "flat",
        OptKind::Bool,
        "Save to `dest` itself (or `dest/<basename>` when dest ends with `/`).",
    )
    .default("no"),
    OptionDoc::new(
        "fail_on_missing",
        OptKind::Bool,
        "Fail when the remote file is missing.",
    )
    .default("yes"),
    OptionDoc::new(
        "validate_checksum",
        OptKind::Bool,
        "Verify the downloaded file's SHA-1.",
    )
    .default("yes"),
];

static DOC: ModuleDoc = ModuleDoc {
    name: "fetch",
    aliases: &[],
    short: "Fetch files from remote nodes",
    description: "Downloads a remote file to the controller. The remote SHA-1 is compared with \
the local copy first; the file is only transferred (and the task changed) when they differ.",
    free_form: false,
    options: OPTIONS,
    examples: "- fetch:\n    src: /etc/ssh/sshd_config\n    dest: backups/\n\n- fetch:\n    src: /tmp/report.txt\n    dest: reports/{{ inventory_hostname }}.txt\n    flat: yes\n",
    returns: &[
        ReturnDoc { name: "dest", description: "local path of the fetched file" },
        ReturnDoc { name: "checksum", description: "SHA-1 of the file" },
        ReturnDoc { name: "remote_checksum", description: "SHA-1 of the remote file" },
        ReturnDoc { name: "file", description: "the remote path" },
    ],
    controller_only: false,
};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Params {
    src: String,
    dest: String,
    #[serde(default)]
    flat: bool,
    #[serde(default)]
    fail_on_missing: Option<bool>,
    #[serde(default)]
    validate_checksum: Option<bool>,
}

pub struct FetchModule;

#[async_trait]
impl Module for FetchModule {
    fn may_change_users(&self, result: &Map<String, Value>) -> bool {
        crate::modules::host::remote_file::wrote_user_database(result)
    }

    fn doc(&self) -> &'static ModuleDoc {
        &DOC
    }

    async fn query(&self, ctx: &ModuleCtx<'_>, args: Map<String, Value>) -> Result<Plan, ModuleError> {
        let p: Params = parse_params(&DOC, args)?;
        let (src, dest) = (p.src, p.dest);
        for (name, v) in [("src", &src), ("dest", &dest)] {
            if v.is_empty() {
                return Err(ModuleError::Args(format!("fetch: `{name}` is required")));
            }
        }
        let local = local_path(&dest, ctx.host, &src, p.flat)?;
        let script = remote::stat_snippet_for(ctx, "F", &src, true, Some("sha1"));
        let out = ctx.run(&script).await?;
        let st = remote::parse_tagged(&out.stdout_str(), "F")?;
        let Some(st) = st else {
            let msg = format!("the remote file does not exist: {src}");
            if p.fail_on_missing.unwrap_or(true) {
                return Err(ModuleError::Failed(msg));
            }
            return Ok(Plan::Done(ModuleOutcome::ok().with_msg(msg).with("file", src)));
        };
        if st.kind == Kind::Dir {
            return Err(ModuleError::Failed(format!(
                "remote file is a directory, fetch cannot work on directories: {src}"
            )));
        }
        let remote_sum = st.checksum.clone().unwrap_or_default();
        let local_sum = std::fs::read(&local).ok().map(|b| sha1_hex(&b));
        let changed = local_sum.as_deref() != Some(remote_sum.as_str());
        let mut outcome = ModuleOutcome::changed(changed);
        if changed && ctx.diff_mode {
            outcome.diff.push(Diff {
                before_header: local.display().to_string(),
                after_header: format!("{}:{src}", ctx.host),
                before: if local_sum.is_some() {
                    "(local copy differs)\n".into()
                } else {
                    String::new()
                },
                after: format!("(remote file, sha1 {remote_sum})\n"),
            });
        }
        let outcome = outcome
            .with("dest", local.display().to_string())
            .with("file", src.clone())
            .with("checksum", remote_sum.clone())
            .with("remote_checksum", remote_sum.clone());
        if !changed {
            return Ok(Plan::Done(outcome));
        }
        let validate = p.validate_checksum.unwrap_or(true);
        Ok(Plan::change(
            outcome,
            Download {
                src,
                local,
                remote_sum,
                validate,
            },
        ))
    }
}

/// Download the remote file over the local copy (or where none is).
struct Download {
    src: String,
    local: PathBuf,
    /// The remote file's SHA-1 the query saw.
    remote_sum: String,
    /// Check the downloaded bytes against it.
    validate: bool,
}

#[async_trait]
impl Change for Download {
    async fn apply(self: Box<Self>, ctx: &ModuleCtx<'_>, planned: ModuleOutcome) -> Result<ModuleOutcome, ModuleError> {
        let Download {
            src,
            local,
            remote_sum,
            validate,
        } = *self;
        let data = ctx.fetch(&src).await?;
        let got = sha1_hex(&data);
        if validate && got != remote_sum {
            return Err(ModuleError::Failed(format!(
                "checksum mismatch after download of {src}: remote {remote_sum}, got {got}"
            )));
        }
        write_local_atomic(&local, &data)?;
        Ok(planned)
    }
}

/// Where a fetched file goes on the controller: `dest/HOST/SRC`, or with
/// `flat` `dest` itself (or `dest/BASENAME` when `dest` ends with `/`). The
/// source path and the host name may come from a managed host: neither may
/// lead out of `dest` (Ansible's CVE-2019-3828), so a `..` component, or a
/// `/` in the host name, is an error rather than a path elsewhere on the
/// controller.
fn local_path(dest: &str, host: &str, src: &str, flat: bool) -> Result<PathBuf, ModuleError> {
    use std::path::Component;
    let leaves = |what: &str, value: &str| {
        ModuleError::Failed(format!(
            "fetch: the {what} `{value}` would lead out of `{dest}` on the controller; refused"
        ))
    };
    if flat {
        if !dest.ends_with('/') {
            return Ok(PathBuf::from(dest));
        }
        let name = remote::basename(src);
        if name.is_empty() || name == "." || name == ".." {
            return Err(leaves("source file name", &name));
        }
        return Ok(PathBuf::from(dest).join(name));
    }
    if host.is_empty() || host == "." || host == ".." || host.contains('/') {
        return Err(leaves("host name", host));
    }
    let mut local = PathBuf::from(dest).join(host);
    for c in std::path::Path::new(src).components() {
        match c {
            Component::Normal(part) => local.push(part),
            Component::RootDir | Component::CurDir => {}
            Component::ParentDir | Component::Prefix(_) => return Err(leaves("source path", src)),
        }
    }
    Ok(local)
}

/// Write a controller-side file atomically (see [`crate::atomic_file`]),
/// making its parents; a new file follows the umask, as Ansible's do.
fn write_local_atomic(path: &std::path::Path, data: &[u8]) -> Result<(), ModuleError> {
    let err = |e: std::io::Error| ModuleError::Failed(format!("cannot write {}: {e}", path.display()));
    if let Some(dir) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(err)?;
    }
    crate::atomic_file::replace(path, data, 0o666).map_err(err)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::modules::files::testutil::TestEnv;
    use serde_json::json;

    #[test]
    fn a_fetched_file_never_leaves_dest() {
        let ok = local_path("/b", "h1", "/etc/app/x.conf", false).unwrap();
        assert_eq!(ok, PathBuf::from("/b/h1/etc/app/x.conf"));
        assert_eq!(
            local_path("/b/", "h1", "/x/./y", false).unwrap(),
            PathBuf::from("/b/h1/x/y")
        );
        assert_eq!(
            local_path("/b/", "h1", "/etc/x.conf", true).unwrap(),
            PathBuf::from("/b/x.conf")
        );
        assert_eq!(
            local_path("/b/f", "h1", "/etc/x.conf", true).unwrap(),
            PathBuf::from("/b/f")
        );
        for (host, src, flat) in [
            ("h1", "/data/lnk/../../../../etc/cron.d/x", false),
            ("h1", "../x", false),
            ("../../etc", "/x", false),
            ("a/b", "/x", false),
            ("..", "/x", false),
            ("h1", "/x/..", true),
        ] {
            let e = local_path("/b/", host, src, flat).unwrap_err().to_string();
            assert!(e.contains("would lead out of"), "{host} {src}: {e}");
        }
    }

    #[tokio::test]
    async fn fetch_layout_idempotence_and_errors() {
        let env = TestEnv::new();
        let src = env.path("remote.txt");
        std::fs::write(&src, "v1\n").unwrap();
        let dest = env.path("backups");
        let args = json!({"src": src, "dest": dest});
        let expected = PathBuf::from(&dest).join("testhost").join(src.trim_start_matches('/'));
        let r = env.run(&FetchModule, args.clone(), true).await.unwrap();
        assert!(r.changed);
        assert!(!expected.exists());
        let r = env.run(&FetchModule, args.clone(), false).await.unwrap();
        assert!(r.changed);
        assert_eq!(r.ret["dest"], expected.display().to_string());
        assert_eq!(std::fs::read_to_string(&expected).unwrap(), "v1\n");
        assert!(!env.run(&FetchModule, args.clone(), false).await.unwrap().changed);
        std::fs::write(&src, "v2\n").unwrap();
        assert!(env.run(&FetchModule, args.clone(), true).await.unwrap().changed);
        assert_eq!(std::fs::read_to_string(&expected).unwrap(), "v1\n");
        assert!(env.run(&FetchModule, args, false).await.unwrap().changed);
        assert_eq!(std::fs::read_to_string(&expected).unwrap(), "v2\n");
        // flat with a trailing slash.
        let r = env
            .run(
                &FetchModule,
                json!({"src": src, "dest": format!("{}/", env.path("flat")), "flat": true}),
                false,
            )
            .await
            .unwrap();
        assert_eq!(r.ret["dest"], env.path("flat/remote.txt"));
        assert!(std::path::Path::new(&env.path("flat/remote.txt")).exists());
        // Missing file.
        let e = env
            .run(&FetchModule, json!({"src": env.path("nope"), "dest": dest}), false)
            .await;
        assert!(matches!(e, Err(ModuleError::Failed(_))));
        let r = env
            .run(
                &FetchModule,
                json!({"src": env.path("nope"), "dest": dest, "fail_on_missing": false}),
                false,
            )
            .await
            .unwrap();
        assert!(!r.changed);
        let e = env.run(&FetchModule, json!({"src": src}), false).await;
        assert!(matches!(e, Err(ModuleError::Args(_))));
    }
}
