//! `modprobe`: load or unload kernel modules, and keep them across boots.

use async_trait::async_trait;
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::connection::sh_quote;
use crate::modules::host::command::run_checked;
use crate::modules::host::text::text_diff;
use crate::modules::{
    parse_params, Change, Module, ModuleCtx, ModuleDoc, ModuleError, ModuleOutcome, OptKind, OptionDoc, Plan,
};

const OPTIONS: &[OptionDoc] = &[
    OptionDoc::new("name", OptKind::Str, "The kernel module.").required(),
    OptionDoc::new("state", OptKind::Str, "Whether the module should be loaded.")
        .default("present")
        .choices(&["absent", "present"]),
    OptionDoc::new("params", OptKind::Str, "Module parameters (`numdummies=2`).").default(""),
    OptionDoc::new(
        "persistent",
        OptKind::Str,
        "`present`: load at boot (/etc/modules-load.d/NAME.conf, and `options` in /etc/modprobe.d/NAME.conf \
when `params` are given); `absent`: remove those files; `disabled`: leave boot configuration alone.",
    )
    .default("disabled")
    .choices(&["disabled", "absent", "present"]),
];

pub(crate) static DOC: ModuleDoc = ModuleDoc {
    name: "modprobe",
    aliases: &[],
    short: "Load or unload kernel modules",
    description: "Loads (`modprobe NAME PARAMS`) or unloads (`modprobe -r NAME`) a kernel module when its \
state in /proc/modules or /sys/module differs, and manages the files that load it at boot.",
    free_form: false,
    options: OPTIONS,
    examples: "- modprobe:\n    name: 8021q\n    state: present\n    persistent: present\n\n\
- modprobe:\n    name: dummy\n    params: numdummies=2\n",
    returns: &[],
    controller_only: false,
};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Params {
    name: String,
    #[serde(default)]
    state: Option<String>,
    #[serde(default)]
    params: Option<String>,
    #[serde(default)]
    persistent: Option<String>,
}

pub(crate) struct Modprobe;

const SEP: &str = "\x1e";

#[async_trait]
impl Module for Modprobe {
    fn doc(&self) -> &'static ModuleDoc {
        &DOC
    }

    async fn query(&self, ctx: &ModuleCtx<'_>, args: Map<String, Value>) -> Result<Plan, ModuleError> {
        let p: Params = parse_params(&DOC, args)?;
        let name = p.name.clone();
        if name.is_empty()
            || !name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        {
            return Err(ModuleError::Args(format!(
                "modprobe: `{name}` is not a kernel module name"
            )));
        }
        let present = match p.state.as_deref().unwrap_or("present") {
            "present" => true,
            "absent" => false,
            s => {
                return Err(ModuleError::Args(format!(
                    "modprobe: state must be present or absent, got `{s}`"
                )))
            }
        };
        let persistent = p.persistent.clone().unwrap_or_else(|| "disabled".into());
        if !["disabled", "absent", "present"].contains(&persistent.as_str()) {
            return Err(ModuleError::Args(format!(
                "modprobe: persistent must be disabled, absent or present, got `{persistent}`"
            )));
        }
        let params = p.params.clone().unwrap_or_default().trim().to_string();
        let kname = name.replace('-', "_");
        let load_file = format!("/etc/modules-load.d/{name}.conf");
        let opts_file = format!("/etc/modprobe.d/{name}.conf");

        let q = format!(
            "if [ -d /sys/module/{k} ] || grep -q '^{k} ' /proc/modules 2>/dev/null; then echo loaded; else echo absent; fi; \
             printf '{SEP}'; cat {l} 2>/dev/null; printf '{SEP}'; cat {o} 2>/dev/null; true",
            k = kname,
            l = sh_quote(&load_file),
            o = sh_quote(&opts_file),
        );
        let out = run_checked(ctx, "querying kernel modules", &q).await?;
        let text = out.stdout_str();
        let mut parts = text.split(SEP);
        let loaded = parts.next().unwrap_or_default().trim() == "loaded";
        let load_now = parts.next().unwrap_or_default().to_string();
        let opts_now = parts.next().unwrap_or_default().to_string();

        let want_load = format!("{name}\n");
        let want_opts = if params.is_empty() {
            String::new()
        } else {
            format!("options {name} {params}\n")
        };
        // (file, current, desired); an empty desired content means "no file".
        let mut file_edits: Vec<(String, String, String)> = Vec::new();
        match persistent.as_str() {
            "present" => {
                file_edits.push((load_file.clone(), load_now.clone(), want_load));
                file_edits.push((opts_file.clone(), opts_now.clone(), want_opts));
            }
            "absent" => {
                file_edits.push((load_file.clone(), load_now.clone(), String::new()));
                file_edits.push((opts_file.clone(), opts_now.clone(), String::new()));
            }
            _ => {}
        }
        file_edits.retain(|(_, cur, want)| cur != want);
        let state_change = loaded != present;

        let mut res = ModuleOutcome::changed(state_change || !file_edits.is_empty())
            .with("name", name.clone())
            .with("params", params.clone())
            .with("state", if present { "present" } else { "absent" });
        if !res.changed {
            return Ok(Plan::Done(res));
        }
        if ctx.diff_mode {
            for (f, cur, want) in &file_edits {
                res = res.with_diff(text_diff(f, cur, want));
            }
        }
        let load = state_change.then(|| {
            if present {
                let mut c = format!("modprobe {}", sh_quote(&name));
                for w in params.split_whitespace() {
                    c.push(' ');
                    c.push_str(&sh_quote(w));
                }
                c
            } else {
                format!("modprobe -r {}", sh_quote(&name))
            }
        });
        let files = file_edits.into_iter().map(|(f, _, want)| (f, want)).collect();
        Ok(Plan::change(res, SetModule { load, files }))
    }
}

/// Load or unload the module, then write or remove its boot files.
struct SetModule {
    /// The `modprobe` command line, when the loaded state differs.
    load: Option<String>,
    /// (file, desired content); an empty content removes the file.
    files: Vec<(String, String)>,
}

#[async_trait]
impl Change for SetModule {
    async fn apply(self: Box<Self>, ctx: &ModuleCtx<'_>, planned: ModuleOutcome) -> Result<ModuleOutcome, ModuleError> {
        if let Some(cmd) = &self.load {
            let out = ctx.run(cmd).await?;
            if out.status != 0 {
                let err = out.stderr_str();
                let hint = if out.status == 127 {
                    " (modprobe is not installed: install kmod)"
                } else {
                    ""
                };
                return Err(ModuleError::Failed(format!(
                    "`{cmd}` failed (rc={}): {}{hint}",
                    out.status,
                    err.trim()
                )));
            }
        }
        for (f, want) in &self.files {
            if want.is_empty() {
                run_checked(ctx, &format!("removing {f}"), &format!("rm -f -- {}", sh_quote(f))).await?;
            } else {
                run_checked(
                    ctx,
                    "creating the directory",
                    &format!("mkdir -p -- \"$(dirname -- {})\"", sh_quote(f)),
                )
                .await?;
                crate::modules::host::file_state::write_text(ctx, f, want, Some(0o644)).await?;
            }
        }
        Ok(planned)
    }
}
