//! Hypervisor modules: libvirt over SSH.
//!
//! rigger reaches libvirt only by running `virsh -c URI` on the hypervisor
//! host over the task's SSH connection (no libvirt client on the controller,
//! no TCP to libvirtd). Every module queries first (`dumpxml`, `vol-info`,
//! `net-dumpxml`, `domstate`, ...), edits the host's own XML document with
//! [`xml::Elem`] and redefines only when the normalized text differs.
//!
//! Modules: `virt_domain` (alias `virt`), `virt_volume`, `virt_pool`,
//! `virt_network` (alias `virt_net`), `virt_info`, `cloud_init_seed`,
//! `virt_install_media`;
//! community.libvirt's names are aliases.

pub mod domain;
pub mod info;
pub mod media;
pub mod network;
pub mod pool;
pub mod seed;
pub mod virsh;
pub mod volume;
pub mod xml;

use std::sync::Arc;

use crate::modules::Registry;

pub fn register(r: &mut Registry) {
    r.add(Arc::new(domain::VirtDomainModule));
    r.add(Arc::new(volume::VirtVolumeModule));
    r.add(Arc::new(pool::VirtPoolModule));
    r.add(Arc::new(network::VirtNetworkModule));
    r.add(Arc::new(info::VirtInfoModule));
    r.add(Arc::new(seed::CloudInitSeedModule));
    r.add(Arc::new(media::VirtInstallMediaModule));
}
