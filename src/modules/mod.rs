//! Modules: the units of work a task runs on a host, by domain.
//!
//! The contract every module implements is in [`contract`]: a module
//! declares its options once ([`ModuleDoc`]; the playbook loader validates
//! task arguments against it before any host is contacted, `rigger doc`
//! prints it, and [`parse_params`] parses the templated arguments from it),
//! **queries** the host and returns a [`Plan`]: nothing to do, or the change
//! it would make (with its `--diff`). The executor alone decides to apply a
//! change (never in check mode), so check mode and `--diff` cannot drift
//! apart per module.
//!
//! Folders by domain: [`files`], [`packages`], [`services`], [`accounts`],
//! [`system`], [`net`], [`source_control`], [`commands`], [`control`]
//! (controller-side: debug, set_fact, ...), [`storage`], [`virt`], [`containers`], [`vmware`] (vSphere, from
//! the controller); shared
//! helpers in [`host`]; user modules from the library path in [`external`];
//! Ansible's own modules for those rigger does not implement in [`ansible`];
//! every name a module answers to in [`registry`]; argument checks in
//! [`args`].

pub mod accounts;
pub mod ansible;
pub mod args;
pub mod commands;
pub mod containers;
pub mod contract;
pub mod control;
pub mod external;
pub mod files;
pub mod host;
pub mod net;
pub mod packages;
pub mod registry;
pub mod services;
pub mod source_control;
pub mod storage;
pub mod system;
pub mod unsupported;
pub mod validate;
pub mod values;
pub mod virt;
pub mod vmware;

pub use contract::*;
