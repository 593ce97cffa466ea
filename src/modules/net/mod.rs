//! Network modules: HTTP from the host (`get_url`, `uri`), waiting for a
//! port, file or connection state (`wait_for`), and the host's own network
//! interfaces ([`interfaces`]: `network_interface`).
//!
//! (libvirt's virtual networks are in [`crate::modules::virt`].)

pub mod http;
pub mod interfaces;
pub mod wait_for;

use std::sync::Arc;

use super::Registry;

pub fn register(r: &mut Registry) {
    r.add(Arc::new(http::GetUrl));
    r.add(Arc::new(http::Uri));
    r.add(Arc::new(wait_for::WaitFor));
    interfaces::register(r);
}
