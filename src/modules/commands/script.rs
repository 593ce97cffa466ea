//! `script`: upload a local script and run it on the host.

use std::path::PathBuf;

use async_trait::async_trait;
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::connection::{sh_quote, FileAttrs};
use crate::modules::{
    parse_params, Change, Module, ModuleCtx, ModuleDoc, ModuleError, ModuleOutcome, OptKind, OptionDoc, Plan, ReturnDoc,
};
use crate::shell::{sh_quote_glob, split_words};

const OPTIONS: &[OptionDoc] = &[
    OptionDoc::new(
        "cmd",
        OptKind::Str,
        "The script's local path followed by its arguments (instead of the free-form text). The arguments are \
split like a shell does and each is passed quoted: nothing in them is run.",
    ),
    OptionDoc::new(
        "creates",
        OptKind::Path,
        "Skip the script when this remote path exists (glob allowed).",
    ),
    OptionDoc::new(
        "removes",
        OptKind::Path,
        "Run the script only when this remote path exists (glob allowed).",
    ),
    OptionDoc::new(
        "chdir",
        OptKind::Path,
        "Change into this remote directory before running.",
    ),
    OptionDoc::new(
        "executable",
        OptKind::Str,
        "Run the script with this interpreter (`/bin/bash`, `perl`) instead of its shebang. This is shell code \
by design: it is put unquoted before the script's path, so it may carry options (`bash -x`).",
    ),
    OptionDoc::new(
        "decrypt",
        OptKind::Bool,
        "Accepted for compatibility (no vault-encrypted scripts yet).",
    )
    .ignored()
    .default("yes"),
];

pub(crate) static DOC: ModuleDoc = ModuleDoc {
    name: "script",
    aliases: &[],
    short: "Run a local script on the host after transferring it",
    description: "Finds the script in the role's or playbook's `files/` directories (or the path given), \
uploads it to a private temporary directory on the host, runs it with its arguments and removes it again. \
Fails when the script exits non-zero. In check mode the script does not run: with `creates`/`removes` it is reported \
as changed when they say it would run (skipped otherwise), without them it is skipped (\"Check mode is not supported for \
this task.\"), as in Ansible.",
    free_form: true,
    options: OPTIONS,
    examples: "- script: files/setup.sh --verbose\n\n- script:\n    cmd: report.pl /var/log\n    executable: perl\n    creates: /var/run/report.done\n",
    returns: &[
        ReturnDoc {
            name: "rc",
            description: "exit status of the script",
        },
        ReturnDoc {
            name: "stdout",
            description: "standard output",
        },
        ReturnDoc {
            name: "stderr",
            description: "standard error",
        },
        ReturnDoc {
            name: "stdout_lines",
            description: "stdout split into lines",
        },
        ReturnDoc {
            name: "stderr_lines",
            description: "stderr split into lines",
        },
        ReturnDoc {
            name: "stdout_truncated",
            description: "true when stdout was longer than --max-output (RIGGER_MAX_OUTPUT, default 16M) and only \
its start was kept (also stderr_truncated); a warning is printed",
        },
        ReturnDoc {
            name: "stdout_dropped_bytes",
            description: "with stdout_truncated: how many bytes of stdout were read and dropped (also \
stderr_dropped_bytes)",
        },
    ],
    controller_only: false,
};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Params {
    #[serde(default)]
    _raw_params: Option<String>,
    cmd: Option<String>,
    creates: Option<String>,
    removes: Option<String>,
    chdir: Option<String>,
    executable: Option<String>,
}

pub(crate) struct Script;

#[async_trait]
impl Module for Script {
    fn doc(&self) -> &'static ModuleDoc {
        &DOC
    }

    async fn query(&self, ctx: &ModuleCtx<'_>, args: Map<String, Value>) -> Result<Plan, ModuleError> {
        let p: Params = parse_params(&DOC, args)?;
        let text = p
            .cmd
            .clone()
            .or(p._raw_params.clone())
            // Ansible's argument spec: `required_one_of: [_raw_params, cmd]`.
            .ok_or_else(|| ModuleError::Args("one of the following is required: _raw_params, cmd".into()))?;
        let words =
            split_words(&text).ok_or_else(|| ModuleError::Args(format!("script: unbalanced quotes in `{text}`")))?;
        let Some((script, script_args)) = words.split_first() else {
            return Err(ModuleError::Args("script: no script given".into()));
        };
        let local = ctx.find_local("files", script)?;

        // creates/removes decide in one round trip each.
        for (path, want) in [(&p.creates, true), (&p.removes, false)] {
            if let Some(path) = path {
                // Only the glob characters stay active, so the shell expands
                // the pattern and nothing else in it.
                let cmd = format!(
                    "set +f; for f in {}; do [ -e \"$f\" ] && exit 0; done; exit 1",
                    sh_quote_glob(path)
                );
                let exists = ctx.run(&cmd).await?.status == 0;
                if exists == want {
                    // Ansible's script action skips the task (AnsibleActionSkip).
                    let why = if want {
                        format!("{path} exists, matching creates option")
                    } else {
                        format!("{path} does not exist, matching removes option")
                    };
                    let mut skipped = ModuleOutcome::ok().with_msg(why);
                    skipped.skipped = true;
                    return Ok(Plan::Done(skipped));
                }
            }
        }
        let run = RunScript {
            local,
            args: script_args.to_vec(),
            chdir: p.chdir,
            executable: p.executable,
        };
        // As Ansible's script action: in check mode a guarded script that
        // would run is a change; an unguarded one is skipped (what it would
        // change cannot be told).
        if p.creates.is_some() || p.removes.is_some() {
            return Ok(Plan::change(ModuleOutcome::ok(), run));
        }
        let planned = ModuleOutcome {
            skipped: true,
            msg: Some("Check mode is not supported for this task.".into()),
            ..Default::default()
        };
        // Not `Plan::change`: the planned (check mode) outcome is a skip.
        Ok(Plan::Change(planned, Box::new(run)))
    }
}

/// Upload the script to a private temporary directory, run it, remove it.
struct RunScript {
    local: PathBuf,
    args: Vec<String>,
    chdir: Option<String>,
    /// Shell code by design (an interpreter with its options).
    executable: Option<String>,
}

#[async_trait]
impl Change for RunScript {
    async fn apply(
        self: Box<Self>,
        ctx: &ModuleCtx<'_>,
        _planned: ModuleOutcome,
    ) -> Result<ModuleOutcome, ModuleError> {
        let out = crate::modules::host::command::run_checked(
            ctx,
            "creating a temporary directory",
            "mktemp -d \"${TMPDIR:-/tmp}/rigger-script.XXXXXXXX\"",
        )
        .await?;
        let dir = out.stdout_str().trim().to_string();
        let base = self
            .local
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "script".into());
        let remote = format!("{dir}/{base}");
        let attrs = FileAttrs {
            mode: Some(0o700),
            ..Default::default()
        };
        let upload = ctx.put_file(&self.local, &remote, &attrs).await;
        let result = match upload {
            Ok(()) => {
                let mut line = String::new();
                if let Some(d) = &self.chdir {
                    line.push_str(&format!("cd -- {} || exit 1; ", sh_quote(d)));
                }
                if let Some(e) = &self.executable {
                    line.push_str(e);
                    line.push(' ');
                }
                line.push_str(&sh_quote(&remote));
                for a in &self.args {
                    line.push(' ');
                    line.push_str(&sh_quote(a));
                }
                // A user's program: on a channel of its own, its output kept within the limit.
                ctx.run_user(&line, None).await
            }
            Err(e) => Err(e),
        };
        // Always clean up, whatever happened.
        let _ = ctx.run(&format!("rm -rf -- {}", sh_quote(&dir))).await;
        let out = result?;
        let status = out.status;
        // stdout as printed, trailing newline kept (as before).
        let mut o =
            crate::modules::commands::output::with_output(ModuleOutcome::changed(true), out, false, ctx.max_output);
        if status != 0 {
            o.failed = true;
            o.msg = Some("non-zero return code".into());
        }
        Ok(o)
    }
}
