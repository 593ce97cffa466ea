//! System modules: packages (`package`, `apt`, `dnf`, `yum`), services
//! (`service`, `systemd_service`, `sysvinit`), accounts (`user`, `group`)
//! and `authorized_key`.
//!
//! Like the file modules, each one reads the current state in one shell
//! round trip, decides on the controller what differs, and runs only the
//! commands that change it (none in check mode). Targets need only a POSIX
//! shell and the system's own tools (`dpkg-query`, `systemctl`, `useradd`...).

pub mod authorized_key;
pub mod package;
pub mod service;
pub mod user;

use std::sync::Arc;

use super::{Diff, ModuleCtx, ModuleError, Registry};
use crate::connection::ExecOutput;

pub fn register(r: &mut Registry) {
    r.add(Arc::new(package::AptModule));
    r.add(Arc::new(package::DnfModule));
    r.add(Arc::new(package::YumModule));
    r.add(Arc::new(package::PackageModule));
    r.add(Arc::new(service::ServiceModule));
    r.add(Arc::new(service::SystemdModule));
    r.add(Arc::new(service::SysvinitModule));
    r.add(Arc::new(user::UserModule));
    r.add(Arc::new(user::GroupModule));
    r.add(Arc::new(authorized_key::AuthorizedKeyModule));
}

/// Run `script`; a non-zero exit status fails the task with `what`, the
/// status and the command's stderr (or stdout when stderr is empty).
pub(crate) async fn run_checked(ctx: &ModuleCtx<'_>, script: &str, what: &str) -> Result<ExecOutput, ModuleError> {
    let out = ctx.run(script).await?;
    if out.status != 0 {
        return Err(ModuleError::Failed(failure_text(what, &out)));
    }
    Ok(out)
}

/// `what failed (exit status N): <stderr or stdout>`.
pub(crate) fn failure_text(what: &str, out: &ExecOutput) -> String {
    let err = out.stderr_str();
    let err = if err.trim().is_empty() { out.stdout_str() } else { err };
    let err = err.trim();
    format!(
        "{what} failed (exit status {}){}",
        out.status,
        if err.is_empty() {
            String::new()
        } else {
            format!(": {err}")
        }
    )
}

/// `key: value` lines as a diff side, for modules whose state is a record.
pub(crate) fn record_diff(header: &str, before: &[(String, String)], after: &[(String, String)]) -> Diff {
    let text = |kv: &[(String, String)]| kv.iter().map(|(k, v)| format!("{k}: {v}\n")).collect::<String>();
    Diff {
        before_header: header.to_string(),
        after_header: header.to_string(),
        before: text(before),
        after: text(after),
    }
}

/// Lines of `out` that start with `tag`, with the tag removed.
pub(crate) fn tagged<'a>(out: &'a str, tag: &'a str) -> impl Iterator<Item = &'a str> + 'a {
    out.lines().filter_map(move |l| l.strip_prefix(tag))
}
