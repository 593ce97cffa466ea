//! Inventories: INI, YAML, directories, dynamic scripts; host patterns.

use std::path::Path;

use indexmap::IndexMap;
use serde_json::{Map, Value};

use crate::error::LocError;

#[derive(Debug, Clone, Default)]
pub struct Host {
    pub name: String,
    /// Variables set on the host itself (inventory line, host_vars/).
    pub vars: Map<String, Value>,
}

#[derive(Debug, Clone, Default)]
pub struct Group {
    pub name: String,
    pub vars: Map<String, Value>,
    /// Hosts listed directly in the group.
    pub hosts: Vec<String>,
    pub children: Vec<String>,
}

/// A loaded inventory. `all` and `ungrouped` always exist.
#[derive(Debug, Clone, Default)]
pub struct Inventory {
    pub hosts: IndexMap<String, Host>,
    pub groups: IndexMap<String, Group>,
}

impl Inventory {
    /// Load one or more inventory sources (files, directories, scripts, or
    /// a comma-separated host list like `host1,host2,`).
    pub fn load(_sources: &[String]) -> Result<Inventory, LocError> {
        unimplemented!("inventory loader")
    }

    /// Hosts matching an Ansible pattern, in inventory order.
    pub fn select(&self, _pattern: &str) -> Result<Vec<String>, LocError> {
        unimplemented!("patterns")
    }

    /// A host's variables: group vars from `all` down to the most specific
    /// group (by depth, then name), then the host's own.
    pub fn host_vars(&self, _host: &str) -> Map<String, Value> {
        unimplemented!()
    }

    /// Groups the host belongs to, directly or through children, without `all`, sorted.
    pub fn group_names(&self, _host: &str) -> Vec<String> {
        unimplemented!()
    }

    /// `groups` magic variable: group name -> hosts.
    pub fn groups_map(&self) -> Map<String, Value> {
        unimplemented!()
    }

    /// Add a host at run time (`add_host`).
    pub fn add_host(&mut self, _name: &str, _groups: &[String], _vars: Map<String, Value>) {
        unimplemented!()
    }

    /// Load `group_vars/` and `host_vars/` found in `dir` (the playbook's directory).
    pub fn load_vars_dirs(&mut self, _dir: &Path) -> Result<(), LocError> {
        unimplemented!()
    }

    pub fn to_list_json(&self) -> Value {
        unimplemented!()
    }

    pub fn to_graph(&self, _group: Option<&str>, _with_vars: bool) -> String {
        unimplemented!()
    }

    pub fn host_json(&self, _host: &str) -> Value {
        unimplemented!()
    }
}
