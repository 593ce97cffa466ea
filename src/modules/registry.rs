//! The table of known modules, by every name they answer to.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use super::Module;

/// Modules by name (`copy`, `ansible.builtin.copy`, aliases).
pub struct Registry {
    by_name: HashMap<String, Arc<dyn Module>>,
    /// Canonical names, sorted, for `rigger doc --list`.
    names: Vec<&'static str>,
}

impl Registry {
    fn new() -> Self {
        Registry {
            by_name: HashMap::new(),
            names: Vec::new(),
        }
    }

    /// Register a module under its name, its aliases, and their
    /// `ansible.builtin.` / `ansible.legacy.` forms.
    pub fn add(&mut self, m: Arc<dyn Module>) {
        let doc = m.doc();
        self.names.push(doc.name);
        for name in std::iter::once(&doc.name).chain(doc.aliases.iter()) {
            for full in [
                name.to_string(),
                format!("ansible.builtin.{name}"),
                format!("ansible.legacy.{name}"),
            ] {
                self.by_name.entry(full).or_insert_with(|| m.clone());
            }
        }
    }

    pub fn get(&self, name: &str) -> Option<&Arc<dyn Module>> {
        self.by_name.get(name)
    }

    /// Every name a module answers to (for "did you mean" hints).
    pub fn all_names(&self) -> impl Iterator<Item = &str> {
        self.by_name.keys().map(String::as_str)
    }

    /// Canonical module names, sorted.
    pub fn names(&self) -> &[&'static str] {
        &self.names
    }
}

/// The process-wide registry of built-in modules.
pub fn registry() -> &'static Registry {
    static REG: OnceLock<Registry> = OnceLock::new();
    REG.get_or_init(|| {
        let mut r = Registry::new();
        super::commands::register(&mut r);
        super::control::register(&mut r);
        super::files::register(&mut r);
        super::packages::register(&mut r);
        super::services::register(&mut r);
        super::accounts::register(&mut r);
        super::virt::register(&mut r);
        super::system::register(&mut r);
        super::source_control::register(&mut r);
        super::net::register(&mut r);
        super::storage::register(&mut r);
        r.names.sort_unstable();
        r.names.dedup();
        r
    })
}

/// Look up a built-in module by any of its names.
pub fn lookup(name: &str) -> Option<&'static Arc<dyn Module>> {
    registry().get(name).or_else(|| super::external::lookup(name))
}
