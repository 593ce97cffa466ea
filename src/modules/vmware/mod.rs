//! VMware vSphere modules, run on the controller (as community.vmware's
//! are with `delegate_to: localhost`): rigger speaks the vim25 SOAP API over
//! HTTPS itself ([`soap`], [`client`]), so nothing but rigger is needed.
//!
//! Modules: `vmware_guest`, `vmware_guest_info`, `vmware_guest_powerstate`,
//! `vmware_guest_snapshot`, `vmware_guest_disk`, and the facts modules
//! `vmware_datacenter_info`, `vmware_cluster_info`, `vmware_datastore_info`,
//! `vmware_portgroup_info` ([`infra`]); community.vmware's names are aliases. Shared:
//! the connection options ([`conn`]), the VM a task names ([`target`]), the inventory and VM model
//! ([`inventory`]), power operations ([`power`]).

pub mod client;
pub mod cluster_info;
pub mod conn;
pub mod customize;
pub mod datacenter_info;
pub mod datastore_info;
pub mod disk;
pub mod guest;
pub mod info;
pub mod infra;
pub mod inventory;
pub mod portgroup_info;
pub mod power;
pub mod powerstate;
pub mod snapshot;
pub mod soap;
pub mod target;

use std::sync::Arc;

use crate::modules::Registry;

pub fn register(r: &mut Registry) {
    r.add(Arc::new(guest::VmwareGuestModule));
    r.add(Arc::new(info::VmwareGuestInfoModule));
    r.add(Arc::new(disk::VmwareGuestDiskModule));
    r.add(Arc::new(datacenter_info::VmwareDatacenterInfoModule));
    r.add(Arc::new(cluster_info::VmwareClusterInfoModule));
    r.add(Arc::new(datastore_info::VmwareDatastoreInfoModule));
    r.add(Arc::new(portgroup_info::VmwarePortgroupInfoModule));
    r.add(Arc::new(powerstate::VmwareGuestPowerstateModule));
    r.add(Arc::new(snapshot::VmwareGuestSnapshotModule));
}
