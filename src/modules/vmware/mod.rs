//! VMware vSphere modules, run on the controller (as community.vmware's
//! are with `delegate_to: localhost`): rigger speaks the vim25 SOAP API over
//! HTTPS itself ([`soap`], [`client`]), so nothing but rigger is needed.
//!
//! Modules: `vmware_guest`, `vmware_guest_info`, `vmware_guest_powerstate`,
//! `vmware_guest_snapshot`; community.vmware's names are aliases. Shared:
//! the connection options ([`conn`]), the VM a task names ([`target`]), the inventory and VM model
//! ([`inventory`]), power operations ([`power`]).

pub mod client;
pub mod conn;
pub mod guest;
pub mod info;
pub mod inventory;
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
    r.add(Arc::new(powerstate::VmwareGuestPowerstateModule));
    r.add(Arc::new(snapshot::VmwareGuestSnapshotModule));
}
