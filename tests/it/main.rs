//! rigger's integration tests: one test binary (links once) with a module per area.
//!
//! `support` starts real OpenSSH test hosts and runs the real rigger binary.

#![allow(clippy::disallowed_macros)] // tests and build scripts print with std's macros

mod support;

mod adhoc;
mod ansible_modules;
mod audit;
mod autoscale;
mod check;
mod compat;
mod compat_async;
mod compat_cli;
mod compat_cli2;
mod compat_exec;
mod compat_exec2;
mod compat_exec3;
mod compat_exec4;
mod compat_exec5;
mod compat_exec6;
mod compat_facts;
mod compat_files;
mod compat_inventory;
mod compat_inventory2;
mod compat_keywords;
mod compat_lookups;
mod compat_lookups2;
mod compat_modfacts;
mod compat_modules;
mod compat_params;
mod compat_plugins;
mod compat_realroles;
mod compat_roles;
mod compat_roles2;
mod compat_templating;
mod compat_trust;
mod compat_vars;
mod compat_vars2;
mod containers;
mod ctlsec;
mod differential;
mod docker;
mod docs;
mod ecosystem;
mod engine;
mod engine_errors;
mod faults;
mod faults2;
mod fuzz;
mod galaxy_roles;
mod harness;
mod lint;
mod modules;
mod output_limits;
mod output_polish;
mod provision;
mod quoting;
mod secrets;
mod state;
mod stdlib;
mod storage;
mod taint;
mod transport;
mod trust;
mod unsafe_data;
mod vault;
mod vault_rekey;
mod virt;
mod vmware;
mod watch;
mod watch_actions;
mod watch_group;
mod watch_taint;
mod webhook_tls;
mod webstatus;
