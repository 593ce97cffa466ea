//! Storage host modules: NFS exports, iSCSI targets, ZFS, LVM, file systems,
//! partitions.
//!
//! Like every rigger module these run plain POSIX `sh` command lines over the
//! task's connection; a target needs only the storage tools themselves
//! (`zfs`/`zpool`, `tgtadm`, `lvm`, `parted`, `mkfs.*`, `blkid`). Each module
//! queries with one or two commands (`zfs get`, `tgtadm --op show`, `vgs`,
//! `parted -s -m print`, `blkid`, reading a config file), computes the
//! commands that would change the host and returns them as `commands`; the
//! module's [`Change`] runs exactly those (most are [`RunCommands`]), so
//! `--check` shows exactly what a real run would do.
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
pub mod tools;
pub mod zfs;

use std::sync::Arc;

use crate::modules::Registry;

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
