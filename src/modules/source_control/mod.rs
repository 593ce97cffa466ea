//! Source control modules: `git`.

pub mod git;

use std::sync::Arc;

use super::Registry;

pub fn register(r: &mut Registry) {
    r.add(Arc::new(git::Git));
}
