//! Service modules: `service`, `systemd_service` (`systemd`), `sysvinit`.
//!
//! One round trip reads a unit's state (`systemctl show`, init scripts);
//! only the start/stop/enable commands that change it run.

pub mod service;

use std::sync::Arc;

use super::Registry;

pub fn register(r: &mut Registry) {
    r.add(Arc::new(service::ServiceModule));
    r.add(Arc::new(service::SystemdModule));
    r.add(Arc::new(service::SysvinitModule));
}
