//! Shared test support: real sshd test hosts and a runner for the rigger binary.
//!
//! Not every test uses every helper.
#![allow(dead_code, unused_imports)]

pub mod hosts;
pub mod pkg;
pub mod procs;
pub mod run;

pub use hosts::{down_host, DownHost, HostOpts, TestHosts};
pub use pkg::{build_deb, sysv_init_script};
pub use run::{rigger, rigger_bin, rigger_cmd, run_with_timeout, RunOutput};
