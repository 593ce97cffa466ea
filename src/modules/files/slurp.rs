//! `slurp`: read a remote file into the result, base64-encoded.

use async_trait::async_trait;
use base64::Engine;
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::connection::sh_quote;
use crate::modules::{
    parse_params, Module, ModuleCtx, ModuleDoc, ModuleError, ModuleOutcome, OptKind, OptionDoc, Plan, ReturnDoc,
};

const OPTIONS: &[OptionDoc] = &[OptionDoc::new("src", OptKind::Path, "The file on the host to read.")
    .required()
    .aliases(&["path"])];

static DOC: ModuleDoc = ModuleDoc {
    name: "slurp",
    aliases: &[],
    short: "Slurp a file from a remote node",
    description: "Reads a remote file in one round trip and returns its content base64-encoded \
(decode it with the `b64decode` filter). Never changes anything.",
    free_form: false,
    options: OPTIONS,
    examples:
        "- slurp:\n    src: /var/run/sshd.pid\n  register: pid\n- debug:\n    msg: \"{{ pid.content | b64decode }}\"\n",
    returns: &[
        ReturnDoc {
            name: "content",
            description: "the file's content, base64-encoded",
        },
        ReturnDoc {
            name: "encoding",
            description: "always `base64`",
        },
        ReturnDoc {
            name: "source",
            description: "the path read",
        },
    ],
    controller_only: false,
};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Params {
    src: String,
}

pub struct SlurpModule;

#[async_trait]
impl Module for SlurpModule {
    fn doc(&self) -> &'static ModuleDoc {
        &DOC
    }

    /// Read-only: the whole run is the query.
    async fn query(&self, ctx: &ModuleCtx<'_>, args: Map<String, Value>) -> Result<Plan, ModuleError> {
        let Params { src } = parse_params(&DOC, args)?;
        if src.is_empty() {
            return Err(ModuleError::Args("slurp: `src` is required".into()));
        }
        let q = sh_quote(&src);
        let script = format!(
            "[ -e {q} ] || {{ echo 'file not found' >&2; exit 3; }}; \
             [ -d {q} ] && {{ echo 'source is a directory and must be a file' >&2; exit 4; }}; cat -- {q}"
        );
        let out = ctx.run(&script).await?;
        if out.status != 0 {
            return Err(ModuleError::Failed(format!("{}: {src}", out.stderr_str().trim())));
        }
        let content = base64::engine::general_purpose::STANDARD.encode(&out.stdout);
        Ok(Plan::Done(
            ModuleOutcome::ok()
                .with("content", content)
                .with("encoding", "base64")
                .with("source", src),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::modules::files::testutil::TestEnv;
    use serde_json::json;

    #[tokio::test]
    async fn slurp_reads_and_fails_cleanly() {
        let env = TestEnv::new();
        let data: Vec<u8> = (0u8..=255).collect();
        std::fs::write(env.path("bin"), &data).unwrap();
        let r = env
            .run(&SlurpModule, json!({"src": env.path("bin")}), false)
            .await
            .unwrap();
        assert!(!r.changed);
        let back = base64::engine::general_purpose::STANDARD
            .decode(r.ret["content"].as_str().unwrap())
            .unwrap();
        assert_eq!(back, data);
        assert_eq!(r.ret["encoding"], "base64");
        // Check mode reads too (it changes nothing).
        assert!(env
            .run(&SlurpModule, json!({"path": env.path("bin")}), true)
            .await
            .is_ok());
        let e = env.run(&SlurpModule, json!({"src": env.path("nope")}), false).await;
        assert!(matches!(e, Err(ModuleError::Failed(m)) if m.contains("not found")));
        let e = env.run(&SlurpModule, json!({"src": env.path("")}), false).await;
        assert!(matches!(e, Err(ModuleError::Failed(m)) if m.contains("directory")));
        let e = env.run(&SlurpModule, json!({"src": "x", "mode": "0644"}), false).await;
        assert!(matches!(e, Err(ModuleError::Args(_))));
    }
}
