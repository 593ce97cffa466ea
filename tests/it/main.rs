//! rigger's integration tests: one test binary (links once) with a module per area.
//!
//! `support` starts real OpenSSH test hosts and runs the real rigger binary.

mod support;

mod adhoc;
mod harness;
mod transport;
