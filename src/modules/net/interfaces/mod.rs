//! Host network modules: `network_interface` (bridges, bonds, VLANs,
//! ethernet devices; addresses, routes, MTU) written as persistent
//! configuration (ifupdown, netplan or NetworkManager keyfiles) and applied
//! live with `ip`, guarded by a rollback timer so that a change that cuts
//! rigger's own SSH path undoes itself.

mod apply;
mod interface;
mod model;
mod persist;

use std::sync::Arc;

use crate::modules::Registry;

pub fn register(r: &mut Registry) {
    r.add(Arc::new(interface::NetworkInterface));
}
