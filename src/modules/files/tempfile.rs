//! `tempfile`: create a temporary file or directory on the host.

use async_trait::async_trait;
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::connection::sh_quote;
use crate::modules::args::choice;
use crate::modules::{
    parse_params, Change, Module, ModuleCtx, ModuleDoc, ModuleError, ModuleOutcome, OptKind, OptionDoc, Plan, ReturnDoc,
};

const OPTIONS: &[OptionDoc] = &[
    OptionDoc::new("state", OptKind::Str, "Whether to create a file or a directory.")
        .default("file")
        .choices(&["directory", "file"]),
    OptionDoc::new(
        "path",
        OptKind::Path,
        "Directory to create it in; defaults to `$TMPDIR` or `/tmp` on the host.",
    ),
    OptionDoc::new("prefix", OptKind::Str, "Start of the name.").default("ansible."),
    OptionDoc::new("suffix", OptKind::Str, "End of the name.").default(""),
];

static DOC: ModuleDoc = ModuleDoc {
    name: "tempfile",
    aliases: &[],
    short: "Create a temporary file or directory",
    description: "Creates a uniquely named file (mode 0600) or directory (mode 0700) and returns its path. \
Always reports a change. In check mode nothing is created and the returned path is the name a real run \
could have used.",
    free_form: false,
    options: OPTIONS,
    examples: "- tempfile:\n    state: directory\n    suffix: build\n  register: build_dir\n",
    returns: &[ReturnDoc {
        name: "path",
        description: "path of the created file or directory",
    }],
    controller_only: false,
};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Params {
    #[serde(default)]
    state: Option<String>,
    #[serde(default)]
    path: Option<String>,
    #[serde(default)]
    prefix: Option<String>,
    #[serde(default)]
    suffix: Option<String>,
}

pub(crate) struct TempFile;

/// Eight characters from Python's `tempfile` alphabet.
fn random_name() -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789_";
    (0..8)
        .map(|_| char::from(ALPHABET[rand::random_range(0..ALPHABET.len())]))
        .collect()
}

#[async_trait]
impl Module for TempFile {
    fn may_change_users(&self, result: &Map<String, Value>) -> bool {
        crate::modules::host::remote_file::wrote_user_database(result)
    }

    fn doc(&self) -> &'static ModuleDoc {
        &DOC
    }

    async fn query(&self, ctx: &ModuleCtx<'_>, args: Map<String, Value>) -> Result<Plan, ModuleError> {
        let p: Params = parse_params(&DOC, args)?;
        let dir_state = choice(
            "tempfile",
            "state",
            p.state.as_deref().unwrap_or("file"),
            &["directory", "file"],
        )? == "directory";
        let prefix = p.prefix.clone().unwrap_or_else(|| "ansible.".into());
        let suffix = p.suffix.clone().unwrap_or_default();
        // Ansible's check: each must be its own basename.
        for (name, v) in [("prefix", &prefix), ("suffix", &suffix)] {
            if v.contains('/') {
                return Err(ModuleError::Failed(format!(
                    "{name} must be a valid file name component, got '{v}'"
                )));
            }
        }
        let dir_word = match &p.path {
            Some(d) => sh_quote(d),
            None => "\"${TMPDIR:-/tmp}\"".to_string(),
        };
        // Names are drawn here; the host creates exclusively (noclobber /
        // mkdir) and the loop retries on a collision. The query predicts
        // the first unused one, which the creation then takes.
        let names: Vec<String> = (0..10)
            .map(|_| sh_quote(&format!("{prefix}{}{suffix}", random_name())))
            .collect();
        let create = CreateTemp {
            dir_state,
            dir_word,
            names,
        };
        let path = create
            .run(
                ctx,
                "[ -d \"$d\" ] || { echo \"directory $d does not exist\" >&2; exit 1; }; \
                 if [ ! -e \"$d/$n\" ]; then printf %s \"$d/$n\"; exit 0; fi",
            )
            .await?;
        Ok(Plan::change(ModuleOutcome::ok().with("path", path), create))
    }
}

/// Create the temporary file or directory under one of the drawn names.
struct CreateTemp {
    dir_state: bool,
    /// The directory, as a shell word.
    dir_word: String,
    /// Candidate names, quoted.
    names: Vec<String>,
}

impl CreateTemp {
    /// Run `step` for each name in turn (it exits 0 having printed the
    /// path it chose); returns that path.
    async fn run(&self, ctx: &ModuleCtx<'_>, step: &str) -> Result<String, ModuleError> {
        let script = format!(
            "d={}; d=\"${{d%/}}\"; [ -n \"$d\" ] || d=/; for n in {}; do {step}; done; \
             echo 'no unused name found' >&2; exit 1",
            self.dir_word,
            self.names.join(" ")
        );
        let out = ctx.run(&script).await?;
        if out.status != 0 {
            return Err(ModuleError::Failed(format!(
                "cannot create a temporary {}: {}",
                if self.dir_state { "directory" } else { "file" },
                out.stderr_str().trim()
            )));
        }
        Ok(out.stdout_str())
    }
}

#[async_trait]
impl Change for CreateTemp {
    async fn apply(self: Box<Self>, ctx: &ModuleCtx<'_>, planned: ModuleOutcome) -> Result<ModuleOutcome, ModuleError> {
        let create = if self.dir_state {
            "if mkdir -m 700 -- \"$d/$n\" 2>/dev/null; then printf %s \"$d/$n\"; exit 0; fi; \
             [ -d \"$d\" ] || { echo \"directory $d does not exist\" >&2; exit 1; }"
        } else {
            "if (umask 077; set -C; : > \"$d/$n\") 2>/dev/null; then printf %s \"$d/$n\"; exit 0; fi; \
             [ -d \"$d\" ] || { echo \"directory $d does not exist\" >&2; exit 1; }"
        };
        let path = self.run(ctx, create).await?;
        let mut out = planned.with("path", path.clone());
        crate::modules::host::remote_file::add_path_info(ctx, &path, &mut out.ret).await?;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::modules::host::file_state::testutil::{mode_of, Harness};

    #[tokio::test]
    async fn creates_and_predicts() {
        let h = Harness::new();
        let dir = tempfile::tempdir().unwrap();
        let ds = dir.path().to_str().unwrap();
        let o = h
            .run(
                &TempFile,
                false,
                json!({"path": ds, "prefix": "pre.", "suffix": ".txt"}),
            )
            .await
            .unwrap();
        assert!(o.changed);
        let p = std::path::PathBuf::from(o.ret["path"].as_str().unwrap());
        assert!(p.is_file());
        assert_eq!(mode_of(&p), 0o600);
        let name = p.file_name().unwrap().to_str().unwrap();
        assert!(name.starts_with("pre.") && name.ends_with(".txt") && name.len() == 4 + 8 + 4);
        // Every run makes a new one.
        let o2 = h
            .run(&TempFile, false, json!({"path": ds, "state": "directory"}))
            .await
            .unwrap();
        let d = std::path::PathBuf::from(o2.ret["path"].as_str().unwrap());
        assert!(d.is_dir());
        assert_eq!(mode_of(&d), 0o700);
        // Ansible's path info of what was made.
        assert_eq!(o.ret["state"], "file");
        assert_eq!(o.ret["mode"], "0600");
        assert_eq!(o2.ret["state"], "directory");
        assert!(d.file_name().unwrap().to_str().unwrap().starts_with("ansible."));
        // Check mode: a name, a change, nothing created.
        let before = std::fs::read_dir(ds).unwrap().count();
        let o = h.run(&TempFile, true, json!({"path": ds})).await.unwrap();
        assert!(o.changed);
        assert!(o.ret["path"].as_str().unwrap().starts_with(ds));
        assert_eq!(std::fs::read_dir(ds).unwrap().count(), before);
        // A missing directory fails clearly.
        let r = h.run(&TempFile, false, json!({"path": format!("{ds}/missing")})).await;
        assert!(matches!(r, Err(ModuleError::Failed(m)) if m.contains("does not exist")));
        // A prefix or suffix that is not a file name fails as in Ansible.
        for (k, v) in [("prefix", "../../nested"), ("suffix", "../world")] {
            let r = h.run(&TempFile, false, json!({"path": ds, k: v})).await;
            let want = format!("{k} must be a valid file name component, got '{v}'");
            assert!(matches!(&r, Err(ModuleError::Failed(m)) if *m == want), "{r:?}");
        }
        for bad in [json!({"state": "pipe"}), json!({"dir": "/tmp"})] {
            let r = h.run(&TempFile, false, bad.clone()).await;
            assert!(matches!(r, Err(ModuleError::Args(_))), "{bad}");
        }
    }
}
