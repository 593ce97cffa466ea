//! System modules: `cron`, `getent`, `sysctl`, `hostname`, `modprobe`, `reboot`,
//! `wait_for_connection`.
//!
//! Targets have only a POSIX shell and coreutils (plus the tool a module is
//! about: `crontab`, `sysctl`, ...). Each module reads the current state in
//! one round trip where it can, computes the new state here on the
//! controller and writes only a real difference.

pub mod cron;
pub mod getent;
pub mod hostname;
pub mod modprobe;
pub mod reboot;
pub mod sysctl;

use std::sync::Arc;

use super::Registry;

pub fn register(r: &mut Registry) {
    r.add(Arc::new(cron::Cron));
    r.add(Arc::new(getent::Getent));
    r.add(Arc::new(sysctl::Sysctl));
    r.add(Arc::new(hostname::Hostname));
    r.add(Arc::new(modprobe::Modprobe));
    r.add(Arc::new(reboot::WaitForConnection));
    r.add(Arc::new(reboot::Reboot));
}
