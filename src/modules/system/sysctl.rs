//! `sysctl`: kernel parameters in a sysctl.conf file and, optionally, live.

use async_trait::async_trait;
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::connection::sh_quote;
use crate::modules::host::command::run_checked;
use crate::modules::host::file_state::read_opt;
use crate::modules::host::file_state::write_text;
use crate::modules::host::text::join_lines;
use crate::modules::host::text::text_diff;
use crate::modules::{
    parse_params, Change, Module, ModuleCtx, ModuleDoc, ModuleError, ModuleOutcome, OptKind, OptionDoc, Plan,
};

const OPTIONS: &[OptionDoc] = &[
    OptionDoc::new("name", OptKind::Str, "The dot-separated key (`net.ipv4.ip_forward`).")
        .required()
        .aliases(&["key"]),
    OptionDoc::new("value", OptKind::Str, "The desired value; required with state=present.").aliases(&["val"]),
    OptionDoc::new("state", OptKind::Str, "Whether the entry should be in the file.")
        .default("present")
        .choices(&["absent", "present"]),
    OptionDoc::new("sysctl_file", OptKind::Path, "The file to edit.").default("/etc/sysctl.conf"),
    OptionDoc::new("reload", OptKind::Bool, "Run `sysctl -p FILE` after the file changed.").default("yes"),
    OptionDoc::new(
        "sysctl_set",
        OptKind::Bool,
        "Check the running value with `sysctl -n` and set it with `sysctl -w` when it differs.",
    )
    .default("no"),
    OptionDoc::new(
        "ignoreerrors",
        OptKind::Bool,
        "Ignore unknown keys when reloading (`sysctl -e`).",
    )
    .default("no"),
];

pub(crate) static DOC: ModuleDoc = ModuleDoc {
    name: "sysctl",
    aliases: &[],
    short: "Manage entries in sysctl.conf",
    description: "Sets a `key=value` line in a sysctl file (replacing an existing line for the key, or \
appending one) or removes it, then reloads the file. With `sysctl_set`, the running kernel value is compared \
and set too, even when the file already holds the value.",
    free_form: false,
    options: OPTIONS,
    examples: "- sysctl:\n    name: vm.swappiness\n    value: '5'\n    state: present\n\n\
- sysctl:\n    name: net.ipv4.ip_forward\n    value: '1'\n    sysctl_set: yes\n    sysctl_file: /etc/sysctl.d/90-forward.conf\n",
    returns: &[],
    controller_only: false,
};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Params {
    name: String,
    #[serde(default)]
    value: Option<String>,
    #[serde(default)]
    state: Option<String>,
    #[serde(default)]
    sysctl_file: Option<String>,
    #[serde(default = "yes")]
    reload: bool,
    #[serde(default)]
    sysctl_set: bool,
    #[serde(default)]
    ignoreerrors: bool,
}

fn yes() -> bool {
    true
}

pub(crate) struct Sysctl;

/// Values compare with runs of whitespace collapsed (`4096\t87380` == `4096 87380`).
fn norm(v: &str) -> String {
    v.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn norm_key(k: &str) -> String {
    k.trim().replace('/', ".")
}

/// The key of a `key = value` line, if it is one.
fn line_key(line: &str) -> Option<String> {
    let t = line.trim();
    if t.is_empty() || t.starts_with('#') || t.starts_with(';') {
        return None;
    }
    let (k, _) = t.split_once('=')?;
    Some(norm_key(k.trim_start_matches('-')))
}

/// The new file lines; a present key's last line is replaced, other duplicates are dropped.
fn edit(lines: &[String], key: &str, value: Option<&str>) -> Vec<String> {
    let mut out = Vec::new();
    let mut done = false;
    for l in lines {
        if line_key(l).as_deref() == Some(key) {
            if let (Some(v), false) = (value, done) {
                out.push(format!("{key}={v}"));
                done = true;
            }
            continue;
        }
        out.push(l.clone());
    }
    if let (Some(v), false) = (value, done) {
        out.push(format!("{key}={v}"));
    }
    out
}

/// The file value of `key` (normalised), if the file sets it.
fn file_value(lines: &[String], key: &str) -> Option<String> {
    lines
        .iter()
        .filter(|l| line_key(l).as_deref() == Some(key))
        .filter_map(|l| l.split_once('=').map(|(_, v)| norm(v)))
        .next_back()
}

#[async_trait]
impl Module for Sysctl {
    fn doc(&self) -> &'static ModuleDoc {
        &DOC
    }

    async fn query(&self, ctx: &ModuleCtx<'_>, args: Map<String, Value>) -> Result<Plan, ModuleError> {
        let p: Params = parse_params(&DOC, args)?;
        let key = norm_key(&p.name);
        if key.is_empty() {
            return Err(ModuleError::Args("sysctl: missing required argument: name".into()));
        }
        let present = match p.state.as_deref().unwrap_or("present") {
            "present" => true,
            "absent" => false,
            s => {
                return Err(ModuleError::Args(format!(
                    "sysctl: state must be present or absent, got `{s}`"
                )))
            }
        };
        let value = p.value.as_deref().map(norm);
        if present && value.as_deref().is_none_or(str::is_empty) {
            return Err(ModuleError::Args(
                "sysctl: `value` is required with state=present".into(),
            ));
        }
        let file = p.sysctl_file.clone().unwrap_or_else(|| "/etc/sysctl.conf".into());

        let before = read_opt(ctx, &file).await?.unwrap_or_default();
        let lines: Vec<String> = before.lines().map(str::to_string).collect();
        let new_lines = edit(&lines, &key, if present { value.as_deref() } else { None });
        let file_changed = file_value(&lines, &key) != file_value(&new_lines, &key) || new_lines.len() != lines.len();
        let after = join_lines(&new_lines);

        let mut set_needed = false;
        if p.sysctl_set && present {
            let out = ctx.run(&format!("sysctl -n -e {}", sh_quote(&key))).await?;
            if out.status == 127 {
                return Err(ModuleError::Failed(
                    "sysctl: the `sysctl` command is missing on the host".into(),
                ));
            }
            let current = norm(&out.stdout_str());
            if out.status != 0 || (current.is_empty() && !out.stderr_str().trim().is_empty()) {
                return Err(ModuleError::Failed(format!(
                    "sysctl: cannot read {key}: {}",
                    out.stderr_str().trim()
                )));
            }
            set_needed = Some(current.as_str()) != value.as_deref();
        }

        let mut out = ModuleOutcome::changed(file_changed || set_needed);
        if !out.changed {
            return Ok(Plan::Done(out));
        }
        if ctx.diff_mode && file_changed {
            out = out.with_diff(text_diff(&file, &before, &after));
        }
        let change = SetSysctl {
            set: set_needed.then(|| format!("{key}={}", value.clone().unwrap_or_default())),
            reload: p.reload && file_changed,
            write: file_changed.then_some(after),
            file,
            key,
            ignoreerrors: p.ignoreerrors,
        };
        Ok(Plan::change(out, change))
    }
}

/// Write the file, set the running value, reload the file: the steps the
/// query found needed, in that order.
struct SetSysctl {
    key: String,
    file: String,
    /// The new file content, when it differs.
    write: Option<String>,
    /// `key=value` for `sysctl -w`, when the running value differs.
    set: Option<String>,
    reload: bool,
    ignoreerrors: bool,
}

#[async_trait]
impl Change for SetSysctl {
    async fn apply(self: Box<Self>, ctx: &ModuleCtx<'_>, planned: ModuleOutcome) -> Result<ModuleOutcome, ModuleError> {
        let key = self.key;
        if let Some(after) = &self.write {
            write_text(ctx, &self.file, after, None).await?;
        }
        if let Some(kv) = &self.set {
            run_checked(ctx, &format!("setting {key}"), &format!("sysctl -w {}", sh_quote(kv))).await?;
        }
        if self.reload {
            let e = if self.ignoreerrors { "-e " } else { "" };
            let res = ctx
                .run(&format!("sysctl {e}-p {} >/dev/null", sh_quote(&self.file)))
                .await?;
            if res.status != 0 && !self.ignoreerrors {
                return Err(ModuleError::Failed(format!(
                    "Failed to reload sysctl: {}",
                    res.stderr_str().trim()
                )));
            }
        }
        let mut out = planned;
        out.msg = None;
        // A real run names the key; check mode never did.
        Ok(out.with("name", key))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replace_append_remove() {
        let l: Vec<String> = ["# c", "a.b = 1", "x/y=2", "a.b=3"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(file_value(&l, "a.b").as_deref(), Some("3"));
        assert_eq!(file_value(&l, "x.y").as_deref(), Some("2"));
        let e = edit(&l, "a.b", Some("9"));
        assert_eq!(e, vec!["# c", "a.b=9", "x/y=2"]);
        let e = edit(&l, "n.k", Some("4  5"));
        assert_eq!(e.last().map(String::as_str), Some("n.k=4  5"));
        let e = edit(&l, "a.b", None);
        assert_eq!(e, vec!["# c", "x/y=2"]);
        assert_eq!(norm("4096\t87380   1"), "4096 87380 1");
    }
}
