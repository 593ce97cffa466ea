//! Option declarations several modules share.

use crate::modules::{OptKind, OptionDoc};

pub const BACKUP: OptionDoc = OptionDoc::new(
    "backup",
    OptKind::Bool,
    "Keep a timestamped copy of the file before it is changed.",
)
.default("no");

/// The names `path` also answers to in the line-editing modules.
pub const PATH_ALIASES: &[&str] = &["dest", "destfile", "name"];

pub const OWNER_OPT: OptionDoc = OptionDoc::new(
    "owner",
    OptKind::Str,
    "Name or uid of the user that should own the file.",
);
pub const GROUP_OPT: OptionDoc = OptionDoc::new(
    "group",
    OptKind::Str,
    "Name or gid of the group that should own the file.",
);
pub const MODE_OPT: OptionDoc = OptionDoc::new(
    "mode",
    OptKind::Mode,
    "Permissions of the file: octal (`'0644'`) or symbolic (`u=rw,g=r,o=r`).",
);
pub const UNSAFE_WRITES_OPT: OptionDoc = OptionDoc::new(
    "unsafe_writes",
    OptKind::Bool,
    "Accepted for compatibility; rigger always writes atomically.",
)
.ignored();
