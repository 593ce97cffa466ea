//! System and network modules: `cron`, `sysctl`, `hostname`, `mount`,
//! `modprobe`, `known_hosts`, `git`, `get_url`, `uri`, `wait_for`,
//! `wait_for_connection`, `reboot`, `script`.
//!
//! Targets have only a POSIX shell and coreutils (plus the tool a module is
//! about: `crontab`, `sysctl`, `git`, `curl`, ...). Each module reads the
//! current state in one round trip where it can, computes the new state here
//! on the controller and writes only a real difference.

mod cron;
mod git;
mod hostname;
mod known_hosts;
mod modprobe;
mod mount;
mod net;
mod reboot;
mod script;
mod sysctl;

use std::sync::Arc;

use super::{Diff, ModuleCtx, ModuleError, Registry};
use crate::connection::{sh_quote, ExecOutput, FileAttrs};

pub fn register(r: &mut Registry) {
    r.add(Arc::new(cron::Cron));
    r.add(Arc::new(sysctl::Sysctl));
    r.add(Arc::new(hostname::Hostname));
    r.add(Arc::new(mount::Mount));
    r.add(Arc::new(modprobe::Modprobe));
    r.add(Arc::new(known_hosts::KnownHosts));
    r.add(Arc::new(git::Git));
    r.add(Arc::new(net::GetUrl));
    r.add(Arc::new(net::Uri));
    r.add(Arc::new(net::WaitFor));
    r.add(Arc::new(reboot::WaitForConnection));
    r.add(Arc::new(reboot::Reboot));
    r.add(Arc::new(script::Script));
}

/// Run `cmd` and turn a non-zero exit status into a failure that says what failed.
pub(crate) async fn run_ok(ctx: &ModuleCtx<'_>, what: &str, cmd: &str) -> Result<ExecOutput, ModuleError> {
    let out = ctx.run(cmd).await?;
    if out.status != 0 {
        return Err(cmd_failed(what, &out));
    }
    Ok(out)
}

pub(crate) fn cmd_failed(what: &str, out: &ExecOutput) -> ModuleError {
    let err = out.stderr_str();
    let err = err.trim();
    let text = if err.is_empty() {
        out.stdout_str()
    } else {
        err.to_string()
    };
    ModuleError::Failed(format!("{what} failed (rc={}): {}", out.status, text.trim()))
}

/// The content of a remote file, or `None` when it does not exist.
pub(crate) async fn read_opt(ctx: &ModuleCtx<'_>, path: &str) -> Result<Option<String>, ModuleError> {
    let cmd = format!(
        "p={}; if [ -e \"$p\" ]; then printf y; cat -- \"$p\" || exit 1; else printf n; fi",
        sh_quote(path)
    );
    let out = run_ok(ctx, &format!("reading {path}"), &cmd).await?;
    let text = out.stdout_str();
    Ok(text.strip_prefix('y').map(str::to_string))
}

/// Atomically replace a remote file's content (keeping an existing file's mode).
pub(crate) async fn write_text(
    ctx: &ModuleCtx<'_>,
    path: &str,
    text: &str,
    mode: Option<u32>,
) -> Result<(), ModuleError> {
    let attrs = FileAttrs {
        mode,
        ..Default::default()
    };
    ctx.put_bytes(text.as_bytes(), path, &attrs).await?;
    Ok(())
}

/// Copy `path` to a timestamped backup next to it; returns the backup's name.
pub(crate) async fn backup_file(ctx: &ModuleCtx<'_>, path: &str) -> Result<String, ModuleError> {
    let cmd = crate::modules::files::remote::backup_script(path);
    Ok(run_ok(ctx, &format!("backing up {path}"), &cmd).await?.stdout_str())
}

pub(crate) fn text_diff(header: &str, before: &str, after: &str) -> Diff {
    Diff {
        before_header: header.to_string(),
        after_header: header.to_string(),
        before: before.to_string(),
        after: after.to_string(),
    }
}

/// Join lines the way Ansible writes line-based files: one `\n` after each line.
pub(crate) fn join_lines(lines: &[String]) -> String {
    let mut s = String::new();
    for l in lines {
        s.push_str(l);
        s.push('\n');
    }
    s
}

/// Options used by several modules.
pub(crate) mod opts {
    use super::super::{OptKind, OptionDoc};
    pub const BACKUP: OptionDoc = OptionDoc::new(
        "backup",
        OptKind::Bool,
        "Keep a timestamped copy of the file before it is changed.",
    )
    .default("no");
}
