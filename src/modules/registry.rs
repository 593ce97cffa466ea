//! The table of known modules, by every name they answer to.

use std::sync::{Arc, OnceLock};

use super::{Module, Registry};

/// The process-wide registry of built-in modules.
pub fn registry() -> &'static Registry {
    static REG: OnceLock<Registry> = OnceLock::new();
    REG.get_or_init(|| {
        let mut r = Registry::default();
        super::commands::register(&mut r);
        super::control::register(&mut r);
        super::files::register(&mut r);
        super::packages::register(&mut r);
        super::services::register(&mut r);
        super::accounts::register(&mut r);
        super::virt::register(&mut r);
        super::vmware::register(&mut r);
        super::system::register(&mut r);
        super::source_control::register(&mut r);
        super::net::register(&mut r);
        super::storage::register(&mut r);
        super::containers::register(&mut r);
        r.finish();
        r
    })
}

/// Look up a built-in module by any of its names.
pub fn lookup(name: &str) -> Option<&'static Arc<dyn Module>> {
    // `ansible.legacy.NAME`: a user module of that name first (from a
    // `library/`; it may stand in for a native module), as Ansible resolves it.
    if let Some(short) = name.strip_prefix("ansible.legacy.") {
        if let Some(m) = super::external::lookup(short).or_else(|| super::ansible::lookup(name)) {
            return Some(m);
        }
    }
    registry()
        .get(name)
        .or_else(|| super::external::lookup(name))
        .or_else(|| super::ansible::lookup(name))
}
