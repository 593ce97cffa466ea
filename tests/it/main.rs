//! rigger's integration tests: one test binary (links once) with a module per area.
//!
//! `support` starts real OpenSSH test hosts and runs the real rigger binary.

mod support;

mod adhoc;
mod check;
mod differential;
mod engine;
mod engine_errors;
mod faults;
mod fuzz;
mod harness;
mod netmods;
mod provision;
mod secrets;
mod storage;
mod sysmods1;
mod sysmods2;
mod transport;
mod virt;
mod watch;
