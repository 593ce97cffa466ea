//! rigger: fast, agentless infrastructure-as-code automation.
//!
//! Data flows one way: CLI → config → load (inventory, playbook; every node
//! keeps its location) → plan → execute (per-host tasks over one connection
//! per host) → events → one renderer + recap + exit code.

// First: its printing macros are used by every module below.
#[macro_use]
pub mod stdio;

pub mod ansible_cfg;
pub mod app;
pub mod atomic_file;
pub mod audit;
pub mod calendar;
pub mod check;
pub mod cli;
pub mod config;
pub mod connection;
pub mod delivery;
pub mod error;
pub mod exec;
pub mod fact_cache;
pub mod fuzzing;
pub mod inventory;
pub mod inventory_plugins;
pub mod kv;
pub mod lint;
pub mod loc;
pub mod logging;
pub mod manual;
pub mod module_docs;
pub mod modules;
pub mod open_files;
pub mod os_user;
pub mod output;
pub mod playbook;
pub mod plugin_filter;
pub mod private_files;
pub mod prompt;
pub mod pyregex;
pub mod scaffold;
pub mod settings;
pub mod shard;
pub mod shell;
pub mod size;
pub mod state;
pub mod template;
pub mod text;
pub mod vault;
pub mod version;
pub mod watch;
pub mod yaml;
