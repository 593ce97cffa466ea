//! Playbooks: YAML to a typed AST where every node keeps its location.
//!
//! Loading is strict: an unknown keyword, an unknown module, a missing
//! required module argument or a wrong literal type is an error here, before
//! any host is contacted (`rigger run --syntax-check` stops after this).
//!
//! `ast.rs` holds the tree (plays, blocks, tasks, includes); `parse.rs`
//! builds it from YAML nodes.

mod ast;
mod parse;

pub use ast::*;
pub use parse::{
    load_included_role, load_playbook, load_task_file, module_defaults_key, parse_tasks, resolve, LoadCtx,
};
