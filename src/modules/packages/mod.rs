//! Package modules: `package`, `apt`, `dnf`, `yum`.
//!
//! One round trip reads what is installed (`dpkg-query`, `rpm`), the
//! controller decides what differs, and only the commands that change it
//! run. Targets need only a POSIX shell and the system's package tools.

pub mod package;

use std::sync::Arc;

use super::Registry;

pub fn register(r: &mut Registry) {
    r.add(Arc::new(package::AptModule));
    r.add(Arc::new(package::DnfModule));
    r.add(Arc::new(package::YumModule));
    r.add(Arc::new(package::PackageModule));
}
