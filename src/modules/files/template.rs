//! `template`: render a Jinja template on the controller and copy the result.

use async_trait::async_trait;
use serde::Deserialize;
use serde_json::{Map, Value};

use super::copy::{put_one, OneFile, Source};
use crate::modules::args::{de_opt_mode, Mode};
use crate::modules::host::remote_file::Attrs;
use crate::modules::{parse_params, Module, ModuleCtx, ModuleDoc, ModuleError, OptKind, OptionDoc, Plan, ReturnDoc};

const OPTIONS: &[OptionDoc] = &[
    OptionDoc::new(
        "src",
        OptKind::Path,
        "Template file (relative paths are searched in `templates/`).",
    )
    .required(),
    OptionDoc::new("dest", OptKind::Path, "Where to write the result on the host.").required(),
    OptionDoc::new("owner", OptKind::Str, "Owner name or uid."),
    OptionDoc::new("group", OptKind::Str, "Group name or gid."),
    OptionDoc::new(
        "mode",
        OptKind::Mode,
        "Permissions (octal, symbolic, or `preserve` for the template's).",
    ),
    OptionDoc::new("backup", OptKind::Bool, "Keep a timestamped copy of the replaced file.").default("no"),
    OptionDoc::new("force", OptKind::Bool, "Replace a destination whose content differs.").default("yes"),
    OptionDoc::new(
        "validate",
        OptKind::Str,
        "Command checking the rendered file; `%s` is its temporary path. Not shell code: it is split into words like a shell does and each word is passed as one argument, so \
`|`, `;`, `$(...)` and globs are plain characters (as in Ansible).",
    ),
    OptionDoc::new("newline_sequence", OptKind::Str, "Line ending of the result.")
        .default("\\n")
        .choices(&["\\n", "\\r", "\\r\\n"]),
    OptionDoc::new(
        "trim_blocks",
        OptKind::Bool,
        "Accepted for compatibility (the shared template settings apply).",
    )
    .ignored()
    .default("yes"),
    OptionDoc::new(
        "lstrip_blocks",
        OptKind::Bool,
        "Accepted for compatibility (the shared template settings apply).",
    )
    .ignored()
    .default("no"),
    OptionDoc::new("follow", OptKind::Bool, "Write through a destination symbolic link.").default("no"),
    OptionDoc::new(
        "output_encoding",
        OptKind::Str,
        "Accepted for compatibility; output is UTF-8.",
    )
    .ignored()
    .default("utf-8"),
    OptionDoc::new("unsafe_writes", OptKind::Bool, "Accepted for compatibility.").ignored(),
];

static DOC: ModuleDoc = ModuleDoc {
    name: "template",
    aliases: &[],
    short: "Template a file out to a target host",
    description: "Renders `src` with the task's variables on the controller, then behaves like `copy` \
with inline content: checksum comparison first, atomic upload only when the result differs.",
    free_form: false,
    options: OPTIONS,
    examples: "- template:\n    src: nginx.conf.j2\n    dest: /etc/nginx/nginx.conf\n    mode: '0644'\n    validate: nginx -t -c %s\n",
    returns: &[
        ReturnDoc { name: "dest", description: "destination path" },
        ReturnDoc { name: "src", description: "the template used" },
        ReturnDoc { name: "checksum", description: "SHA-1 of the rendered file" },
        ReturnDoc { name: "mode", description: "permissions, like '0644'" },
        ReturnDoc { name: "backup_file", description: "path of the backup, when one was made" },
    ],
    controller_only: false,
};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Params {
    src: String,
    dest: String,
    #[serde(default)]
    owner: Option<String>,
    #[serde(default)]
    group: Option<String>,
    #[serde(default, deserialize_with = "de_opt_mode")]
    mode: Option<Mode>,
    #[serde(default)]
    backup: bool,
    #[serde(default)]
    force: Option<bool>,
    #[serde(default)]
    validate: Option<String>,
    #[serde(default)]
    newline_sequence: Option<String>,
    #[serde(default)]
    follow: bool,
}

pub struct TemplateModule;

#[async_trait]
impl Module for TemplateModule {
    fn query_hints(&self, args: &Map<String, Value>) -> Vec<crate::modules::PathQuery> {
        crate::modules::host::prefetch::needs("template", args)
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

    /// Renders on the controller; the rest is `copy`'s query and change.
    async fn query(&self, ctx: &ModuleCtx<'_>, args: Map<String, Value>) -> Result<Plan, ModuleError> {
        let p: Params = parse_params(&DOC, args)?;
        let (src, dest) = (p.src, p.dest);
        for (name, v) in [("src", &src), ("dest", &dest)] {
            if v.is_empty() {
                return Err(ModuleError::Args(format!("template: `{name}` is required")));
            }
        }
        let newline = match p.newline_sequence.as_deref().unwrap_or("\\n") {
            "\\n" | "\n" => "\n",
            "\\r" | "\r" => "\r",
            "\\r\\n" | "\r\n" => "\r\n",
            other => {
                return Err(ModuleError::Args(format!(
                    "template: newline_sequence must be one of \\n, \\r, \\r\\n; got `{other}`"
                )))
            }
        };
        if let Some(v) = &p.validate {
            if !v.contains("%s") {
                return Err(ModuleError::Args(format!("template: validate must contain %s: {v}")));
            }
        }
        let path = ctx.find_local("templates", &src)?;
        // render_file keeps the template's trailing newlines as Ansible does.
        let mut text = ctx
            .templar
            .render_file(&path, Some(&dest), ctx.vars)
            .map_err(|e| ModuleError::Failed(e.to_string()))?;
        if newline != "\n" {
            text = text.replace("\r\n", "\n").replace('\n', newline);
        }
        use std::os::unix::fs::PermissionsExt;
        let src_mode = std::fs::metadata(&path).ok().map(|m| m.permissions().mode() & 0o7777);
        let one = OneFile {
            source: Source::Bytes(std::sync::Arc::new(text.into_bytes())),
            dest,
            dir_basename: None,
            attrs: Attrs {
                owner: p.owner,
                group: p.group,
                mode: p.mode,
            },
            src_mode,
            backup: p.backup,
            force: p.force.unwrap_or(true),
            validate: p.validate,
            follow: p.follow,
            src_display: Some(path.display().to_string()),
        };
        put_one(ctx, one).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::modules::files::testutil::TestEnv;
    use serde_json::json;

    #[tokio::test]
    async fn renders_and_is_idempotent() {
        let mut env = TestEnv::new();
        std::fs::create_dir(env.path("templates")).unwrap();
        std::fs::write(env.path("templates/app.j2"), "port={{ port }}\nname={{ name }}\n").unwrap();
        env.vars = minijinja::Value::from_pairs([
            ("port", minijinja::Value::from(8080)),
            ("name", minijinja::Value::from("web")),
        ]);
        let d = env.path("app.conf");
        let args = json!({"src": "app.j2", "dest": d, "mode": "0644"});
        let r = env.run(&TemplateModule, args.clone(), true).await.unwrap();
        assert!(r.changed);
        assert_eq!(r.diff[0].after, "port=8080\nname=web\n");
        assert!(!std::path::Path::new(&d).exists());
        assert!(env.run(&TemplateModule, args.clone(), false).await.unwrap().changed);
        assert_eq!(std::fs::read_to_string(&d).unwrap(), "port=8080\nname=web\n");
        assert!(!env.run(&TemplateModule, args.clone(), false).await.unwrap().changed);
        // A changed variable changes the file.
        env.vars = minijinja::Value::from_pairs([
            ("port", minijinja::Value::from(9090)),
            ("name", minijinja::Value::from("web")),
        ]);
        let r = env.run(&TemplateModule, args.clone(), true).await.unwrap();
        assert!(r.changed);
        assert_eq!(r.diff[0].before, "port=8080\nname=web\n");
        assert!(env.run(&TemplateModule, args.clone(), false).await.unwrap().changed);
        assert_eq!(std::fs::read_to_string(&d).unwrap(), "port=9090\nname=web\n");
        // CRLF output.
        let crlf = json!({"src": "app.j2", "dest": d, "newline_sequence": "\\r\\n"});
        assert!(env.run(&TemplateModule, crlf, false).await.unwrap().changed);
        assert_eq!(std::fs::read_to_string(&d).unwrap(), "port=9090\r\nname=web\r\n");
        // Errors.
        let e = env
            .run(&TemplateModule, json!({"src": "missing.j2", "dest": d}), false)
            .await;
        assert!(matches!(e, Err(ModuleError::Failed(_))));
        let e = env
            .run(
                &TemplateModule,
                json!({"src": "app.j2", "dest": d, "bogus": true}),
                false,
            )
            .await;
        assert!(matches!(e, Err(ModuleError::Args(_))));
        std::fs::write(env.path("templates/bad.j2"), "{{ undefined_var }}\n").unwrap();
        let e = env
            .run(&TemplateModule, json!({"src": "bad.j2", "dest": d}), false)
            .await;
        assert!(matches!(e, Err(ModuleError::Failed(_))));
    }
}
