//! Which files to lint and what each one is: a playbook, a task list
//! (role tasks/handlers, included files), variables (group_vars,
//! host_vars, role vars/defaults, vars_files) or a YAML inventory.

use std::path::{Path, PathBuf};

use crate::yaml::{Node, NodeKind};

/// What a YAML file holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Playbook,
    Tasks,
    Vars,
    Inventory,
}

/// What a file's place in the tree says about it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ByPath {
    Known(Kind),
    /// Not Ansible content (a role's `meta/`).
    Skip,
    /// Decided by what the file holds.
    Content,
}

/// A file's kind from its directory (and the one above, for
/// `group_vars/web/main.yml` and nested task directories).
pub fn kind_by_path(p: &Path) -> ByPath {
    fn name(d: Option<&Path>) -> Option<&str> {
        d.and_then(Path::file_name).and_then(|s| s.to_str())
    }
    let parent = p.parent();
    for dir in [name(parent), name(parent.and_then(Path::parent))] {
        match dir {
            Some("tasks" | "handlers") => return ByPath::Known(Kind::Tasks),
            Some("vars" | "defaults" | "group_vars" | "host_vars") => return ByPath::Known(Kind::Vars),
            Some("meta") => return ByPath::Skip,
            _ => {}
        }
    }
    ByPath::Content
}

/// A file's kind from its first document. `explicit`: the user named the
/// file, so a list of mappings is a task list and a mapping is variables;
/// found by a directory walk, only what looks like Ansible content is.
pub fn kind_by_content(doc: &Node, explicit: bool) -> Option<Kind> {
    match &doc.kind {
        NodeKind::Seq(items) if !items.is_empty() && items.iter().all(|i| i.as_map().is_some()) => {
            if items.iter().all(is_play_like) && items.iter().any(|i| i.get("include").is_none()) {
                Some(Kind::Playbook)
            } else if explicit || items.iter().any(looks_like_task) {
                Some(Kind::Tasks)
            } else {
                None
            }
        }
        NodeKind::Map(_) if is_inventory(doc) => Some(Kind::Inventory),
        NodeKind::Map(_) if explicit => Some(Kind::Vars),
        _ => None,
    }
}

fn is_play_like(n: &Node) -> bool {
    n.get("hosts").is_some() || n.get("include").is_some() || n.map_entries().any(|(k, _, _)| is_import_playbook(&k))
}

pub fn is_import_playbook(k: &str) -> bool {
    matches!(
        k,
        "import_playbook" | "ansible.builtin.import_playbook" | "ansible.legacy.import_playbook"
    )
}

/// A mapping with a module, a block or an include: a task.
fn looks_like_task(n: &Node) -> bool {
    n.map_entries().any(|(k, _, _)| {
        matches!(
            k.as_str(),
            "block"
                | "action"
                | "local_action"
                | "include"
                | "include_tasks"
                | "import_tasks"
                | "include_role"
                | "import_role"
        ) || k.matches('.').count() >= 2
            || crate::modules::registry::lookup(&k).is_some()
            || crate::modules::ansible::is_core_module(&k)
    })
}

/// A YAML inventory: `all:`, or groups with `hosts:`/`children:`.
fn is_inventory(doc: &Node) -> bool {
    doc.get("all").is_some()
        || doc
            .map_entries()
            .any(|(_, _, v)| v.get("hosts").is_some() || v.get("children").is_some())
}

/// Directories a walk does not enter: not Ansible YAML (templates, files,
/// plugins' Python) or not the project's (hidden, virtualenvs).
fn skipped_dir(name: &str) -> bool {
    name.starts_with('.')
        || name.ends_with("_plugins")
        || matches!(
            name,
            "templates" | "files" | "library" | "module_utils" | "node_modules" | "__pycache__" | "venv"
        )
}

pub fn is_yaml(name: &str) -> bool {
    (name.ends_with(".yml") || name.ends_with(".yaml")) && !name.starts_with('.')
}

/// `name` in `dir`, without a `./` in front for the working directory.
pub fn child(dir: &Path, name: impl AsRef<Path>) -> PathBuf {
    if dir == Path::new(".") || dir.as_os_str().is_empty() {
        name.as_ref().to_path_buf()
    } else {
        dir.join(name)
    }
}

/// Every YAML file under `dir` (sorted, so output is stable), with what
/// its place says about it; `meta/` files are left out.
pub fn walk(dir: &Path, out: &mut Vec<(PathBuf, ByPath)>) {
    walk_in(dir, out, &mut std::collections::HashSet::new());
}

/// `seen`: the directories entered, by canonical path (a symbolic link
/// to a parent directory is entered once).
fn walk_in(dir: &Path, out: &mut Vec<(PathBuf, ByPath)>, seen: &mut std::collections::HashSet<PathBuf>) {
    if !seen.insert(std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf())) {
        return;
    }
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut entries: Vec<_> = entries.filter_map(Result::ok).collect();
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let name = e.file_name();
        let Some(name) = name.to_str() else {
            continue;
        };
        let path = child(dir, name);
        // Symbolic links are followed (a role linked into roles/); loops
        // end because each file is linted once (by its canonical path).
        let Ok(meta) = std::fs::metadata(&path) else {
            continue;
        };
        if meta.is_dir() {
            if !skipped_dir(name) {
                walk_in(&path, out, seen);
            }
        } else if is_yaml(name) {
            match kind_by_path(&path) {
                ByPath::Skip => {}
                by => out.push((path, by)),
            }
        }
    }
}
