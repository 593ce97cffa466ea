//! `group_vars/` and `host_vars/` directories, read as Ansible's
//! `host_group_vars` plugin does: for an entity NAME the first of `NAME`,
//! `NAME.yml`, `NAME.yaml`, `NAME.json` that exists is used; when it is a
//! directory, every file inside (recursively, sorted, skipping hidden files,
//! `*~` backups and other extensions) is read and merged in order.

use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use super::model::VarsLayer;
use crate::error::LocError;
use crate::yaml::{load_file, Loc, NodeKind};

const EXTENSIONS: [&str; 4] = ["", ".yml", ".yaml", ".json"];

/// Reload the vars of `groups` and `hosts` from every directory of `layer`.
pub(super) fn load_layer(layer: &mut VarsLayer, groups: &[String], hosts: &[String]) -> Result<(), LocError> {
    for (sub, names, is_group) in [("group_vars", groups, true), ("host_vars", hosts, false)] {
        for name in names {
            let mut merged = Map::new();
            for dir in &layer.dirs {
                let base = dir.join(sub);
                if !base.is_dir() {
                    continue;
                }
                for file in find_vars_files(&base, name) {
                    for (k, v) in load_vars_file(&file)? {
                        merged.insert(k, v);
                    }
                }
            }
            let map = if is_group { &mut layer.groups } else { &mut layer.hosts };
            if merged.is_empty() {
                map.remove(name);
            } else {
                map.insert(name.clone(), merged);
            }
        }
    }
    Ok(())
}

fn find_vars_files(base: &Path, name: &str) -> Vec<PathBuf> {
    if name.is_empty() || name.contains('/') || name.contains('\\') || name == "." || name == ".." {
        return vec![];
    }
    for ext in EXTENSIONS {
        let candidate = base.join(format!("{name}{ext}"));
        if candidate.is_dir() {
            let mut found = Vec::new();
            dir_files(&candidate, &mut found, 0);
            return found;
        }
        if candidate.is_file() {
            return vec![candidate];
        }
    }
    vec![]
}

fn dir_files(dir: &Path, found: &mut Vec<PathBuf>, depth: usize) {
    if depth > 32 {
        return;
    }
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    let mut names: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    names.sort();
    for p in names {
        let Some(fname) = p.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        if fname.starts_with('.') || fname.ends_with('~') {
            continue;
        }
        let ext = p
            .extension()
            .and_then(|e| e.to_str())
            .map(|e| format!(".{e}"))
            .unwrap_or_default();
        if p.is_dir() && ext.is_empty() {
            dir_files(&p, found, depth + 1);
        } else if p.is_file() && EXTENSIONS.contains(&ext.as_str()) {
            found.push(p);
        }
    }
}

fn load_vars_file(path: &Path) -> Result<Map<String, Value>, LocError> {
    let node = load_file(path)?;
    match node.kind {
        NodeKind::Null => Ok(Map::new()),
        NodeKind::Map(_) => {
            for (k, _, v) in node.map_entries() {
                super::conn_vars::check_source(&k, &v.to_json()).map_err(|m| {
                    let loc = if v.loc.is_synthetic() {
                        Loc::new(path.display().to_string(), 1, 1)
                    } else {
                        v.loc.clone()
                    };
                    LocError::new(loc, m)
                })?;
            }
            match node.to_json() {
                Value::Object(m) => Ok(m),
                _ => Ok(Map::new()),
            }
        }
        _ => Err(LocError::new(
            if node.loc.is_synthetic() {
                Loc::new(path.display().to_string(), 1, 1)
            } else {
                node.loc.clone()
            },
            format!("variables file must be a mapping, found a {}", node.type_name()),
        )
        .with_hint("write `name: value` lines")),
    }
}
