//! Command modules: `command`, `shell`, `raw`, `script`.
//!
//! Their whole behaviour is running something, whose effect no query can
//! predict: the plan is what check mode reports (skipped, or decided by
//! `creates`/`removes`), and the change runs the command and returns its
//! real result.

mod command;
pub mod output;
mod raw;
pub mod script;

use std::sync::Arc;

use super::Registry;

pub fn register(r: &mut Registry) {
    r.add(Arc::new(command::CommandModule { shell: false }));
    r.add(Arc::new(command::CommandModule { shell: true }));
    r.add(Arc::new(raw::RawModule));
    r.add(Arc::new(script::Script));
}
