//! Storage host modules: NFS exports, iSCSI targets, ZFS, LVM, file systems,
//! partitions.
//!
//! Like every rigger module these run plain POSIX `sh` command lines over the
//! task's connection; a target needs only the storage tools themselves
//! (`zfs`/`zpool`, `tgtadm`, `lvm`, `parted`, `mkfs.*`, `blkid`). Each module
//! queries with one or two commands (`zfs get`, `tgtadm --op show`, `vgs`,
//! `parted -s -m print`, `blkid`, reading a config file), computes the
//! commands that would change the host, and runs them only outside check mode.
//! The computed commands are returned as `commands`, so `--check` shows
//! exactly what a real run would do.
//!
//! Modules: `nfs_export`, `iscsi_target`, `zfs`, `zpool`, `lvg`, `lvol`,
//! `filesystem`, `parted`, `mount` (community.general and ansible.posix
//! names are aliases).

pub mod filesystem;
pub mod iscsi;
pub mod lvm;
pub mod mount;
pub mod nfs;
pub mod parted;
pub mod zfs;

use std::sync::Arc;

use crate::connection::{sh_quote, FileAttrs};
use crate::modules::{ModuleCtx, ModuleError, Registry};

pub fn register(r: &mut Registry) {
    r.add(Arc::new(nfs::NfsExportModule));
    r.add(Arc::new(iscsi::IscsiTargetModule));
    r.add(Arc::new(zfs::ZfsModule));
    r.add(Arc::new(zfs::ZpoolModule));
    r.add(Arc::new(lvm::LvgModule));
    r.add(Arc::new(lvm::LvolModule));
    r.add(Arc::new(filesystem::FilesystemModule));
    r.add(Arc::new(parted::PartedModule));
    r.add(Arc::new(mount::Mount));
}

/// The result of one command on the host.
pub struct CmdOut {
    pub status: i32,
    pub stdout: String,
    pub stderr: String,
}

impl CmdOut {
    pub fn ok(&self) -> bool {
        self.status == 0
    }
}

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

    /// Runs `cmd` (with `LC_ALL=C`); a non-zero status is returned, not an error.
    pub async fn try_run(&self, cmd: &str) -> Result<CmdOut, ModuleError> {
        let out = self.ctx.run(&format!("export LC_ALL=C; {cmd}")).await?;
        if out.status == 127 {
            let tool = cmd.split_whitespace().next().unwrap_or(cmd);
            return Err(ModuleError::Failed(format!(
                "{}: `{tool}` not found on {}; install {} there",
                self.module, self.ctx.host, self.install_hint
            )));
        }
        Ok(CmdOut {
            status: out.status,
            stdout: out.stdout_str(),
            stderr: out.stderr_str(),
        })
    }

    /// Runs `cmd` and fails the task with its message when it fails.
    pub async fn run(&self, cmd: &str) -> Result<String, ModuleError> {
        let out = self.try_run(cmd).await?;
        if out.ok() {
            Ok(out.stdout)
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

    pub fn fail(&self, cmd: &str, out: &CmdOut) -> ModuleError {
        let msg = if out.stderr.trim().is_empty() {
            out.stdout.trim()
        } else {
            out.stderr.trim()
        };
        ModuleError::Failed(format!(
            "{}: `{cmd}` failed on {} (exit {}): {msg}",
            self.module, self.ctx.host, out.status
        ))
    }

    /// A text file's content, `None` when it does not exist.
    pub async fn read_file(&self, path: &str) -> Result<Option<String>, ModuleError> {
        let q = sh_quote(path);
        let out = self
            .ctx
            .run(&format!("if [ -e {q} ]; then cat {q}; else exit 3; fi"))
            .await?;
        match out.status {
            0 => Ok(Some(out.stdout_str())),
            3 => Ok(None),
            s => Err(ModuleError::Failed(format!(
                "{}: cannot read {path} on {} (exit {s}): {}",
                self.module,
                self.ctx.host,
                out.stderr_str().trim()
            ))),
        }
    }

    /// Writes a file atomically, creating its directory.
    pub async fn write_file(&self, path: &str, text: &str, mode: Option<u32>) -> Result<(), ModuleError> {
        if let Some((dir, _)) = path.rsplit_once('/') {
            if !dir.is_empty() {
                self.run(&format!("mkdir -p {}", sh_quote(dir))).await?;
            }
        }
        let attrs = FileAttrs {
            mode,
            ..Default::default()
        };
        self.ctx.put_bytes(text.as_bytes(), path, &attrs).await?;
        Ok(())
    }
}
