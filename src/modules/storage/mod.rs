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
//! `filesystem`, `parted` (community.general names are aliases).

pub mod filesystem;
pub mod iscsi;
pub mod lvm;
pub mod nfs;
pub mod parted;
pub mod zfs;

use std::sync::Arc;

use crate::connection::{sh_quote, FileAttrs};
use crate::modules::{Diff, ModuleCtx, ModuleError, Registry};

pub fn register(r: &mut Registry) {
    r.add(Arc::new(nfs::NfsExportModule));
    r.add(Arc::new(iscsi::IscsiTargetModule));
    r.add(Arc::new(zfs::ZfsModule));
    r.add(Arc::new(zfs::ZpoolModule));
    r.add(Arc::new(lvm::LvgModule));
    r.add(Arc::new(lvm::LvolModule));
    r.add(Arc::new(filesystem::FilesystemModule));
    r.add(Arc::new(parted::PartedModule));
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

/// A `--diff` entry for a text (file content or a state summary).
pub fn text_diff(what: &str, before: &str, after: &str) -> Diff {
    Diff {
        before_header: format!("{what} (before)"),
        after_header: format!("{what} (after)"),
        before: before.to_string(),
        after: after.to_string(),
    }
}

/// A `--diff` entry for the commands a task runs (or would run).
pub fn commands_diff(what: &str, cmds: &[String]) -> Diff {
    Diff {
        before_header: what.to_string(),
        after_header: format!("{what}: commands"),
        before: String::new(),
        after: cmds.iter().map(|c| format!("{c}\n")).collect(),
    }
}

/// A size given as `10G`, `512M`, `1.5T`, `4096` (bytes) or `4096B`, in bytes.
/// Units are binary (K = 1024), as LVM, ZFS and parted print them.
pub fn parse_size(s: &str) -> Option<u64> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit() && c != '.').unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: f64 = num.parse().ok()?;
    let mult: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        "t" | "tb" | "tib" => 1 << 40,
        "p" | "pb" | "pib" => 1 << 50,
        _ => return None,
    };
    Some((n * mult as f64).round() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_command_lines() {
        assert_eq!(parse_size("10M"), Some(10 << 20));
        assert_eq!(parse_size("1.5G"), Some(3 << 29));
        assert_eq!(parse_size("4096"), Some(4096));
        assert_eq!(parse_size("4096B"), Some(4096));
        assert_eq!(parse_size("none"), None);
        assert_eq!(parse_size("3 parsecs"), None);
        assert_eq!(
            crate::shell::sh_quote_words(["zfs", "set", "a b=c", "x"]),
            "zfs set 'a b=c' x"
        );
    }
}
