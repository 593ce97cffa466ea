//! Controller-side modules: `debug`, `assert`, `fail`, `set_fact`, ...

use super::Registry;

pub fn register(_r: &mut Registry) {}
