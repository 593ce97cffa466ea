//! The storage tools on a host (`StorageHost`: commands in the C locale,
//! install hints for a missing tool) and the planned commands as a Change.

use crate::connection::{sh_quote, ExecOutput};
use crate::modules::host::command::failure;
use crate::modules::host::file_state::{read_opt, write_text};
use crate::modules::{Change, ModuleCtx, ModuleError, ModuleOutcome};
use async_trait::async_trait;

/// Runs a module's commands on the task's host, turning "command not found"
/// into an install hint and failures into messages that name the command.
pub struct StorageHost<'a> {
    pub ctx: &'a ModuleCtx<'a>,
    pub module: &'static str,
    /// What to install when a tool is missing (`zfsutils-linux or zfs-fuse`).
    pub install_hint: &'static str,
}

impl<'a> StorageHost<'a> {
    pub fn new(ctx: &'a ModuleCtx<'a>, module: &'static str, install_hint: &'static str) -> Self {
        StorageHost {
            ctx,
            module,
            install_hint,
        }
    }

    /// Runs `cmd` (with `LC_ALL=C`); a non-zero status is returned, not an
    /// error, except 127 (the tool is missing), which fails with the install hint.
    pub async fn try_run(&self, cmd: &str) -> Result<ExecOutput, ModuleError> {
        let out = self.ctx.run(&format!("export LC_ALL=C; {cmd}")).await?;
        if out.status == 127 {
            let tool = cmd.split_whitespace().next().unwrap_or(cmd);
            return Err(ModuleError::Failed(format!(
                "{}: `{tool}` not found on {}; install {} there",
                self.module, self.ctx.host, self.install_hint
            )));
        }
        Ok(out)
    }

    /// Runs `cmd` and fails the task with its message when it fails.
    pub async fn run(&self, cmd: &str) -> Result<String, ModuleError> {
        let out = self.try_run(cmd).await?;
        if out.status == 0 {
            Ok(out.stdout_str())
        } else {
            Err(self.fail(cmd, &out))
        }
    }

    /// Runs every command in order, stopping at the first failure.
    pub async fn run_all(&self, cmds: &[String]) -> Result<(), ModuleError> {
        for c in cmds {
            self.run(c).await?;
        }
        Ok(())
    }

    /// The shared failure message ([`failure`]) for `cmd`, naming the module and the host.
    pub fn fail(&self, cmd: &str, out: &ExecOutput) -> ModuleError {
        failure(&format!("{}: `{cmd}` on {}", self.module, self.ctx.host), out)
    }

    /// A text file's content, `None` when it does not exist.
    pub async fn read_file(&self, path: &str) -> Result<Option<String>, ModuleError> {
        read_opt(self.ctx, path).await
    }

    /// Writes a file atomically, creating its directory.
    pub async fn write_file(&self, path: &str, text: &str, mode: Option<u32>) -> Result<(), ModuleError> {
        if let Some((dir, _)) = path.rsplit_once('/') {
            if !dir.is_empty() {
                self.run(&format!("mkdir -p {}", sh_quote(dir))).await?;
            }
        }
        write_text(self.ctx, path, text, mode).await
    }

    /// The change that runs `commands` in order on this host (what the
    /// module reports as `commands`).
    pub fn commands(&self, commands: Vec<String>) -> RunCommands {
        RunCommands {
            module: self.module,
            install_hint: self.install_hint,
            commands,
        }
    }
}

/// A storage module's planned commands, run in order, stopping at the first failure.
pub struct RunCommands {
    module: &'static str,
    install_hint: &'static str,
    commands: Vec<String>,
}

#[async_trait]
impl Change for RunCommands {
    async fn apply(self: Box<Self>, ctx: &ModuleCtx<'_>, planned: ModuleOutcome) -> Result<ModuleOutcome, ModuleError> {
        StorageHost::new(ctx, self.module, self.install_hint)
            .run_all(&self.commands)
            .await?;
        Ok(planned)
    }
}
