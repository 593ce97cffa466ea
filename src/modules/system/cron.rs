//! `cron`: manage `#Ansible: NAME` entries and variables in crontabs and /etc/cron.d files.

use async_trait::async_trait;
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::connection::sh_quote;
use crate::modules::host::command::run_checked;
use crate::modules::host::file_state::read_opt;
use crate::modules::host::file_state::write_text;
use crate::modules::host::opts;
use crate::modules::host::text::join_lines;
use crate::modules::host::text::text_diff;
use crate::modules::{
    parse_params, Change, Module, ModuleCtx, ModuleDoc, ModuleError, ModuleOutcome, OptKind, OptionDoc, Plan, ReturnDoc,
};

const SPECIALS: &[&str] = &["annually", "daily", "hourly", "monthly", "reboot", "weekly", "yearly"];

const OPTIONS: &[OptionDoc] = &[
    OptionDoc::new(
        "name",
        OptKind::Str,
        "Description of the entry (its `#Ansible: NAME` marker), or the variable name with `env`.",
    )
    .required(),
    OptionDoc::new(
        "user",
        OptKind::Str,
        "Whose crontab to edit (default: the remote user). With `cron_file`, the user field of the line (default root).",
    ),
    OptionDoc::new("job", OptKind::Str, "The command to run, or the variable's value with `env`. Shell code by design: cron runs it with the \
shell; rigger only writes it into the crontab, never runs it.")
        .aliases(&["value"]),
    OptionDoc::new("state", OptKind::Str, "Whether the entry should exist.")
        .default("present")
        .choices(&["absent", "present"]),
    OptionDoc::new(
        "cron_file",
        OptKind::Path,
        "Edit this file instead of a user crontab; a relative name is under /etc/cron.d. The file is removed \
when its last entry is.",
    ),
    opts::BACKUP,
    OptionDoc::new("minute", OptKind::Str, "Minute field.").default("*"),
    OptionDoc::new("hour", OptKind::Str, "Hour field.").default("*"),
    OptionDoc::new("day", OptKind::Str, "Day of month field.")
        .default("*")
        .aliases(&["dom"]),
    OptionDoc::new("month", OptKind::Str, "Month field.").default("*"),
    OptionDoc::new("weekday", OptKind::Str, "Day of week field.")
        .default("*")
        .aliases(&["dow"]),
    OptionDoc::new("special_time", OptKind::Str, "Use `@TIME` instead of the five time fields.").choices(SPECIALS),
    OptionDoc::new("disabled", OptKind::Bool, "Keep the job, commented out.").default("no"),
    OptionDoc::new("env", OptKind::Bool, "Manage a `NAME=value` variable line instead of a job.").default("no"),
    OptionDoc::new(
        "insertafter",
        OptKind::Str,
        "With `env`: put a new variable after this variable.",
    ),
    OptionDoc::new(
        "insertbefore",
        OptKind::Str,
        "With `env`: put a new variable before this variable.",
    ),
];

pub(crate) static DOC: ModuleDoc = ModuleDoc {
    name: "cron",
    aliases: &[],
    short: "Manage cron.d and crontab entries",
    description: "Adds, updates or removes crontab entries. Each job is marked by a `#Ansible: NAME` comment \
line above it, so rigger and Ansible manage the same entries. User crontabs are read with `crontab -l` and \
written with `crontab -`; `cron_file` edits a file in /etc/cron.d (with a user field).",
    free_form: false,
    options: OPTIONS,
    examples: "- cron:\n    name: check dirs\n    minute: \"0\"\n    hour: \"5,2\"\n    job: ls -alh > /dev/null\n\n\
- cron:\n    name: PATH\n    env: yes\n    job: /usr/local/bin:/usr/bin:/bin\n\n\
- cron:\n    name: yum autoupdate\n    weekday: \"2\"\n    minute: \"0\"\n    hour: \"12\"\n    user: root\n    job: YUMINTERACTIVE=0 /usr/sbin/yum-autoupdate\n    cron_file: ansible_yum-autoupdate\n",
    returns: &[
        ReturnDoc {
            name: "jobs",
            description: "names of the jobs in the crontab after the change",
        },
        ReturnDoc {
            name: "envs",
            description: "names of the variables in the crontab after the change",
        },
        ReturnDoc {
            name: "backup_file",
            description: "where the old crontab was saved (with `backup`)",
        },
    ],
    controller_only: false,
};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Params {
    name: String,
    #[serde(default)]
    user: Option<String>,
    #[serde(default)]
    job: Option<String>,
    #[serde(default)]
    state: Option<String>,
    #[serde(default)]
    cron_file: Option<String>,
    #[serde(default)]
    backup: bool,
    #[serde(default)]
    minute: Option<String>,
    #[serde(default)]
    hour: Option<String>,
    #[serde(default)]
    day: Option<String>,
    #[serde(default)]
    month: Option<String>,
    #[serde(default)]
    weekday: Option<String>,
    #[serde(default)]
    special_time: Option<String>,
    #[serde(default)]
    disabled: bool,
    #[serde(default)]
    env: bool,
    #[serde(default)]
    insertafter: Option<String>,
    #[serde(default)]
    insertbefore: Option<String>,
}

pub(crate) struct Cron;

const MARKER: &str = "#Ansible: ";

/// The job line Ansible writes for these parameters.
fn job_line(p: &Params, job: &str, cron_user: Option<&str>) -> String {
    let prefix = if p.disabled { "#" } else { "" };
    let user = cron_user.map(|u| format!("{u} ")).unwrap_or_default();
    match &p.special_time {
        Some(s) => format!("{prefix}@{s} {user}{job}"),
        None => {
            let f = |v: &Option<String>| v.clone().unwrap_or_else(|| "*".into());
            format!(
                "{prefix}{} {} {} {} {} {user}{job}",
                f(&p.minute),
                f(&p.hour),
                f(&p.day),
                f(&p.month),
                f(&p.weekday)
            )
        }
    }
}

fn is_env_line(line: &str) -> Option<&str> {
    let t = line.trim_start();
    if t.starts_with('#') {
        return None;
    }
    let (name, _) = t.split_once('=')?;
    let name = name.trim();
    (!name.is_empty() && !name.contains(char::is_whitespace)).then_some(name)
}

fn job_names(lines: &[String]) -> Vec<String> {
    lines
        .iter()
        .filter_map(|l| l.strip_prefix(MARKER).map(str::to_string))
        .collect()
}

fn env_names(lines: &[String]) -> Vec<String> {
    lines
        .iter()
        .filter_map(|l| is_env_line(l).map(str::to_string))
        .collect()
}

/// Edit `lines` for a job entry; returns whether anything changed.
fn edit_job(lines: &mut Vec<String>, name: &str, line: Option<&str>) -> bool {
    let marker = format!("{MARKER}{name}");
    let pos = lines.iter().position(|l| *l == marker);
    match (pos, line) {
        (Some(i), Some(new)) => {
            if lines.get(i + 1).map(String::as_str) == Some(new) {
                false
            } else {
                if i + 1 < lines.len() {
                    lines[i + 1] = new.to_string();
                } else {
                    lines.push(new.to_string());
                }
                true
            }
        }
        (None, Some(new)) => {
            lines.push(marker);
            lines.push(new.to_string());
            true
        }
        (Some(i), None) => {
            let end = (i + 2).min(lines.len());
            lines.drain(i..end);
            true
        }
        (None, None) => false,
    }
}

/// Edit `lines` for a variable; returns whether anything changed.
fn edit_env(
    lines: &mut Vec<String>,
    name: &str,
    line: Option<&str>,
    after: Option<&str>,
    before: Option<&str>,
) -> bool {
    let pos = lines.iter().position(|l| is_env_line(l) == Some(name));
    match (pos, line) {
        (Some(i), Some(new)) => {
            if lines[i] == new {
                return false;
            }
            lines[i] = new.to_string();
            true
        }
        (None, Some(new)) => {
            let find = |n: &str| lines.iter().position(|l| is_env_line(l) == Some(n));
            let at = match (after, before) {
                (Some(a), _) => find(a).map(|i| i + 1).unwrap_or(0),
                (None, Some(b)) => find(b).unwrap_or(0),
                (None, None) => 0,
            };
            lines.insert(at, new.to_string());
            true
        }
        (Some(i), None) => {
            lines.remove(i);
            true
        }
        (None, None) => false,
    }
}

#[async_trait]
impl Module for Cron {
    fn doc(&self) -> &'static ModuleDoc {
        &DOC
    }

    async fn query(&self, ctx: &ModuleCtx<'_>, args: Map<String, Value>) -> Result<Plan, ModuleError> {
        let p: Params = parse_params(&DOC, args)?;
        let name = p.name.clone();
        let present = match p.state.as_deref().unwrap_or("present") {
            "present" => true,
            "absent" => false,
            s => {
                return Err(ModuleError::Args(format!(
                    "cron: state must be present or absent, got `{s}`"
                )))
            }
        };
        if present && p.job.is_none() {
            return Err(ModuleError::Args("cron: `job` is required with state=present".into()));
        }
        if p.special_time.is_some()
            && [&p.minute, &p.hour, &p.day, &p.month, &p.weekday]
                .iter()
                .any(|f| f.as_deref().is_some_and(|v| v != "*"))
        {
            return Err(ModuleError::Args(
                "cron: special_time cannot be combined with minute/hour/day/month/weekday".into(),
            ));
        }
        if name.contains('\n') || p.job.as_deref().is_some_and(|j| j.contains('\n')) {
            return Err(ModuleError::Args("cron: name and job must be single lines".into()));
        }
        let cron_file = p.cron_file.as_deref().map(|f| {
            if f.starts_with('/') {
                f.to_string()
            } else {
                format!("/etc/cron.d/{f}")
            }
        });
        let user_flag = p
            .user
            .as_deref()
            .map(|u| format!(" -u {}", sh_quote(u)))
            .unwrap_or_default();

        // Query.
        let before = match &cron_file {
            Some(f) => read_opt(ctx, f).await?,
            None => {
                let out = ctx.run(&format!("crontab{user_flag} -l")).await?;
                if out.status == 0 {
                    Some(out.stdout_str())
                } else if out.stderr_str().contains("no crontab") {
                    None
                } else if out.status == 127 {
                    return Err(ModuleError::Failed(
                        "cron: `crontab` not found on the host (install the cron package)".into(),
                    ));
                } else {
                    return Err(crate::modules::host::command::failure("crontab -l", &out));
                }
            }
        };
        let before_text = before.clone().unwrap_or_default();
        let mut lines: Vec<String> = before_text.lines().map(str::to_string).collect();

        let changed = if p.env {
            let line = p.job.as_deref().map(|j| format!("{name}={j}"));
            let line = if present { line } else { None };
            edit_env(
                &mut lines,
                &name,
                line.as_deref(),
                p.insertafter.as_deref(),
                p.insertbefore.as_deref(),
            )
        } else {
            let cron_user = cron_file
                .as_ref()
                .map(|_| p.user.clone().unwrap_or_else(|| "root".into()));
            let line = p
                .job
                .as_deref()
                .filter(|_| present)
                .map(|j| job_line(&p, j, cron_user.as_deref()));
            edit_job(&mut lines, &name, line.as_deref())
        };
        let after_text = join_lines(&lines);
        let remove_file = cron_file.is_some() && lines.is_empty() && before.is_some();
        let mut out = ModuleOutcome::changed(changed || remove_file)
            .with("jobs", job_names(&lines))
            .with("envs", env_names(&lines));
        if let Some(f) = &cron_file {
            out = out.with("cron_file", f.clone());
        }
        if !out.changed {
            return Ok(Plan::Done(out));
        }
        if ctx.diff_mode {
            let header = cron_file.clone().unwrap_or_else(|| "crontab".into());
            out = out.with_diff(text_diff(
                &header,
                &before_text,
                if remove_file { "" } else { &after_text },
            ));
        }
        let target = match cron_file {
            Some(f) if remove_file => CronTarget::RemoveFile(f),
            Some(f) => CronTarget::File {
                mode: if before.is_none() { Some(0o644) } else { None },
                path: f,
            },
            None => CronTarget::Crontab { user_flag },
        };
        let change = WriteCron {
            backup: (p.backup && before.is_some()).then(|| before_text.clone()),
            after: after_text,
            target,
        };
        Ok(Plan::change(out, change))
    }
}

/// Where the edited entries go.
enum CronTarget {
    /// The cron file lost its last entry.
    RemoveFile(String),
    File {
        path: String,
        mode: Option<u32>,
    },
    /// A user crontab, through `crontab{user_flag} -`.
    Crontab {
        user_flag: String,
    },
}

/// Save a backup of the old crontab (with `backup`), then write the new one.
struct WriteCron {
    /// The old content to back up.
    backup: Option<String>,
    after: String,
    target: CronTarget,
}

#[async_trait]
impl Change for WriteCron {
    async fn apply(self: Box<Self>, ctx: &ModuleCtx<'_>, planned: ModuleOutcome) -> Result<ModuleOutcome, ModuleError> {
        let mut out = planned;
        if let Some(before_text) = self.backup {
            let cmd = "t=$(mktemp \"${TMPDIR:-/tmp}/crontab.XXXXXXXX\") && cat > \"$t\" && printf %s \"$t\"";
            let saved = ctx.run_with_whole_stdin(cmd, before_text.into_bytes()).await?;
            if saved.status != 0 {
                return Err(crate::modules::host::command::failure(
                    "saving the crontab backup",
                    &saved,
                ));
            }
            out = out.with("backup_file", saved.stdout_str());
        }
        match &self.target {
            CronTarget::RemoveFile(f) => {
                run_checked(ctx, &format!("removing {f}"), &format!("rm -f -- {}", sh_quote(f))).await?;
            }
            CronTarget::File { path, mode } => write_text(ctx, path, &self.after, *mode).await?,
            CronTarget::Crontab { user_flag } => {
                let res = ctx
                    .run_with_whole_stdin(&format!("crontab{user_flag} -"), self.after.into_bytes())
                    .await?;
                if res.status != 0 {
                    return Err(crate::modules::host::command::failure("crontab -", &res));
                }
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(s: &str) -> Vec<String> {
        s.lines().map(str::to_string).collect()
    }

    #[test]
    fn job_added_updated_removed() {
        let mut l = lines("MAILTO=x\n");
        assert!(edit_job(&mut l, "a", Some("* * * * * true")));
        assert_eq!(join_lines(&l), "MAILTO=x\n#Ansible: a\n* * * * * true\n");
        assert!(!edit_job(&mut l, "a", Some("* * * * * true")));
        assert!(edit_job(&mut l, "a", Some("0 * * * * true")));
        assert_eq!(l[2], "0 * * * * true");
        assert!(edit_job(&mut l, "a", None));
        assert_eq!(l, vec!["MAILTO=x".to_string()]);
        assert!(!edit_job(&mut l, "a", None));
        assert_eq!(job_names(&lines("#Ansible: x\n1 2 3 4 5 y\n")), vec!["x"]);
    }

    #[test]
    fn env_lines_go_to_the_top_or_after_a_variable() {
        let mut l = lines("A=1\n#Ansible: j\n* * * * * x\n");
        assert!(edit_env(&mut l, "B", Some("B=2"), Some("A"), None));
        assert_eq!(l[1], "B=2");
        assert!(edit_env(&mut l, "C", Some("C=3"), None, None));
        assert_eq!(l[0], "C=3");
        assert!(!edit_env(&mut l, "C", Some("C=3"), None, None));
        assert_eq!(env_names(&l), vec!["C", "A", "B"]);
        assert!(edit_env(&mut l, "A", None, None, None));
        assert_eq!(env_names(&l), vec!["C", "B"]);
    }

    #[test]
    fn job_line_formats() {
        let p: Params =
            serde_json::from_value(serde_json::json!({"name": "j", "minute": "5", "disabled": true})).unwrap();
        assert_eq!(job_line(&p, "ls", None), "#5 * * * * ls");
        let p: Params = serde_json::from_value(serde_json::json!({"name": "j", "special_time": "reboot"})).unwrap();
        assert_eq!(job_line(&p, "ls", Some("root")), "@reboot root ls");
    }
}
