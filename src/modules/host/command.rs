//! Running a module's own scripts on the host.

use crate::connection::ExecOutput;
use crate::modules::{ModuleCtx, ModuleError};

/// Run `script` on the host with the task's become and environment; a
/// non-zero exit status fails the task with [`failure`]. Scripts over 64 KiB
/// go on stdin (a single argument is limited to 128 KiB on Linux).
pub async fn run_checked(ctx: &ModuleCtx<'_>, what: &str, script: &str) -> Result<ExecOutput, ModuleError> {
    let out = if script.len() > 64 * 1024 {
        ctx.run_with_whole_stdin("/bin/sh -s", script.as_bytes().to_vec())
            .await?
    } else {
        ctx.run(script).await?
    };
    if out.status != 0 {
        return Err(failure(what, &out));
    }
    Ok(out)
}

/// `WHAT failed (rc=N): TEXT`, TEXT being the command's stderr, or its
/// stdout when stderr is empty.
pub fn failure(what: &str, out: &ExecOutput) -> ModuleError {
    ModuleError::Failed(failure_text(what, out))
}

/// The text of [`failure`].
pub fn failure_text(what: &str, out: &ExecOutput) -> String {
    let err = out.stderr_str();
    let err = if err.trim().is_empty() { out.stdout_str() } else { err };
    let err = err.trim();
    if err.is_empty() {
        format!("{what} failed (rc={})", out.status)
    } else {
        format!("{what} failed (rc={}): {err}", out.status)
    }
}
