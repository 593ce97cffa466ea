//! Where Ansible's modules are: the controller's ansible-core (found once,
//! only when a task names a module rigger has no native implementation for)
//! and the collections, searched in Ansible's order.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

/// The controller's ansible-core.
#[derive(Debug, Clone)]
pub struct Controller {
    /// The Python that has `ansible` importable.
    pub python: PathBuf,
    /// Its `ansible` package directory.
    pub ansible_dir: PathBuf,
    pub version: String,
    /// The Python's `sys.path` entries that hold `ansible_collections`.
    pub site_collections: Vec<PathBuf>,
}

/// Why no ansible-core was found: the Pythons that were asked.
#[derive(Debug, Clone)]
pub struct NoController {
    pub tried: Vec<String>,
}

/// Prints the `ansible` package directory (without importing it) and
/// `sys.path`, as JSON.
const PROBE: &str = "import importlib.util as u, json, sys\n\
s = u.find_spec('ansible')\n\
d = list(s.submodule_search_locations or []) if s else []\n\
print(json.dumps({'ansible': d[0] if d else None, 'path': sys.path}))\n";

/// The Pythons asked for ansible-core, in order: `RIGGER_ANSIBLE_PYTHON`,
/// the interpreter of `ansible-playbook` on `PATH` (its `#!` line), then
/// `python3` on `PATH` and `/usr/bin/python3`.
fn candidates() -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Some(p) = std::env::var_os("RIGGER_ANSIBLE_PYTHON").filter(|p| !p.is_empty()) {
        out.push(PathBuf::from(p));
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    let on_path = |name: &str| std::env::split_paths(&path).map(|d| d.join(name)).find(|p| p.is_file());
    if let Some(ap) = on_path("ansible-playbook") {
        if let Ok(text) = std::fs::read(&ap) {
            let first = text.split(|b| *b == b'\n').next().unwrap_or_default();
            if let Some(rest) = std::str::from_utf8(first).ok().and_then(|l| l.strip_prefix("#!")) {
                let mut words = rest.split_whitespace();
                match (words.next(), words.next()) {
                    (Some(env), Some(py)) if env.ends_with("/env") => {
                        if let Some(p) = on_path(py) {
                            out.push(p);
                        }
                    }
                    (Some(py), _) => out.push(PathBuf::from(py)),
                    _ => {}
                }
            }
        }
    }
    if let Some(p) = on_path("python3") {
        out.push(p);
    }
    out.push(PathBuf::from("/usr/bin/python3"));
    out.dedup();
    out
}

fn probe(python: &Path) -> Option<Controller> {
    let out = std::process::Command::new(python)
        .args(["-c", PROBE])
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
    let ansible_dir = PathBuf::from(v.get("ansible")?.as_str()?);
    let release = std::fs::read_to_string(ansible_dir.join("release.py")).ok()?;
    let version = release
        .lines()
        .find_map(|l| l.strip_prefix("__version__"))
        .and_then(|l| l.split(['\'', '"']).nth(1))
        .unwrap_or("unknown")
        .to_string();
    let site_collections = v
        .get("path")
        .and_then(|p| p.as_array())
        .map(|a| {
            a.iter()
                .filter_map(|p| p.as_str())
                .filter(|p| !p.is_empty())
                .map(PathBuf::from)
                .filter(|p| p.join("ansible_collections").is_dir())
                .collect()
        })
        .unwrap_or_default();
    Some(Controller {
        python: python.to_path_buf(),
        ansible_dir,
        version,
        site_collections,
    })
}

/// `ansible_playbook_python`: the controller's Python, the one rigger runs
/// Ansible's modules with: the first of [`candidates`] that exists (none
/// is started to find it), `/usr/bin/python3` when none does.
pub fn playbook_python() -> &'static Path {
    static P: OnceLock<PathBuf> = OnceLock::new();
    P.get_or_init(|| {
        if let Some(Ok(c)) = CONTROLLER.get() {
            return c.python.clone();
        }
        candidates()
            .into_iter()
            .find(|p| p.is_file())
            .unwrap_or_else(|| PathBuf::from("/usr/bin/python3"))
    })
}

static CONTROLLER: OnceLock<Result<Controller, NoController>> = OnceLock::new();

/// The controller's ansible-core, probed once per run.
pub fn controller() -> &'static Result<Controller, NoController> {
    CONTROLLER.get_or_init(|| {
        let cands = candidates();
        for c in &cands {
            if let Some(found) = probe(c) {
                return Ok(found);
            }
        }
        Err(NoController {
            tried: cands.iter().map(|p| p.display().to_string()).collect(),
        })
    })
}

/// Directories of playbooks loaded in this run (their `collections/` and
/// `module_utils/` are searched, as Ansible does).
fn playbook_dirs() -> &'static Mutex<Vec<PathBuf>> {
    static D: OnceLock<Mutex<Vec<PathBuf>>> = OnceLock::new();
    D.get_or_init(Default::default)
}

/// Remember the directory of a playbook being loaded.
pub fn add_playbook_dir(dir: &Path) {
    let mut d = playbook_dirs().lock().unwrap_or_else(|p| p.into_inner());
    if !d.iter().any(|x| x == dir) {
        d.push(dir.to_path_buf());
    }
}

/// The directories of the playbooks loaded so far, in load order.
pub fn playbook_dir_list() -> Vec<PathBuf> {
    playbook_dirs().lock().unwrap_or_else(|p| p.into_inner()).clone()
}

/// `module_utils/` directories next to the loaded playbooks.
pub fn playbook_module_utils() -> Vec<PathBuf> {
    let d = playbook_dirs().lock().unwrap_or_else(|p| p.into_inner());
    d.iter()
        .map(|p| p.join("module_utils"))
        .filter(|p| p.is_dir())
        .collect()
}

fn expand_home(p: &str) -> PathBuf {
    match (p.strip_prefix("~/"), std::env::var_os("HOME")) {
        (Some(rest), Some(h)) => PathBuf::from(h).join(rest),
        _ => PathBuf::from(p),
    }
}

/// Collection roots (directories holding `ansible_collections/`), in
/// Ansible's order: `collections/` next to each playbook, then
/// `ANSIBLE_COLLECTIONS_PATH` (or ansible.cfg's `collections_path`, default
/// `~/.ansible/collections:/usr/share/ansible/collections`), then the
/// controller Python's `sys.path`.
pub fn collection_roots(ctl: Option<&Controller>) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = playbook_dirs()
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .iter()
        .map(|d| d.join("collections"))
        .collect();
    // The `collections_path` setting (crate::settings).
    for p in crate::settings::get().collections_path.value.iter().cloned() {
        // A path may name the `ansible_collections` directory itself.
        let p = if p.file_name().is_some_and(|n| n == "ansible_collections") {
            p.parent().map(Path::to_path_buf).unwrap_or(p)
        } else {
            p
        };
        out.push(p);
    }
    if let Some(c) = ctl {
        out.extend(c.site_collections.iter().cloned());
    }
    let mut seen = std::collections::HashSet::new();
    out.retain(|p| seen.insert(p.clone()));
    out
}

/// A module found in ansible-core or a collection.
#[derive(Debug, Clone)]
pub struct Found {
    /// `ansible.builtin.NAME` or `NS.COLL.NAME`.
    pub fqcn: String,
    /// The module's Python name in the payload.
    pub python_name: String,
    pub path: PathBuf,
}

/// `plugin_routing.modules.NAME.redirect` of a runtime.yml.
fn redirect(runtime: &Path, name: &str) -> Option<String> {
    let text = std::fs::read_to_string(runtime).ok()?;
    let root = crate::yaml::parse_one(&text, &runtime.display().to_string()).ok()?;
    root.get("plugin_routing")?
        .get("modules")?
        .get(name)?
        .get("redirect")?
        .scalar_string()
}

/// Find module `name` (bare, `ansible.builtin.`/`ansible.legacy.`, or
/// `NS.COLL.`) where Ansible would, following `runtime.yml` redirects.
pub fn find_module(name: &str, ctl: &Controller, roots: &[PathBuf]) -> Option<Found> {
    let mut name = name.to_string();
    for _ in 0..8 {
        let parts: Vec<&str> = name.split('.').collect();
        let (ns, coll, short) = match parts.as_slice() {
            [short] => ("ansible", "builtin", *short),
            [ns, coll, short] => (*ns, *coll, *short),
            _ => return None,
        };
        if !short.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') || short.is_empty() {
            return None;
        }
        if ns == "ansible" && matches!(coll, "builtin" | "legacy") {
            let path = ctl.ansible_dir.join("modules").join(format!("{short}.py"));
            if path.is_file() {
                return Some(Found {
                    fqcn: format!("ansible.builtin.{short}"),
                    python_name: format!("ansible.modules.{short}"),
                    path,
                });
            }
            name = redirect(&ctl.ansible_dir.join("config/ansible_builtin_runtime.yml"), short)?;
            continue;
        }
        let mut next = None;
        for root in roots {
            let cdir = root.join("ansible_collections").join(ns).join(coll);
            if !cdir.is_dir() {
                continue;
            }
            let path = cdir.join("plugins/modules").join(format!("{short}.py"));
            if path.is_file() {
                return Some(Found {
                    fqcn: format!("{ns}.{coll}.{short}"),
                    python_name: format!("ansible_collections.{ns}.{coll}.plugins.modules.{short}"),
                    path,
                });
            }
            if let Some(r) = redirect(&cdir.join("meta/runtime.yml"), short) {
                next = Some(r);
                break;
            }
        }
        name = next?;
    }
    None
}

/// Every module of ansible-core and of the collections (for `rigger doc
/// --list`): (fqcn, file), sorted; a collection found in several roots
/// counts where it is found first.
pub fn all_modules(ctl: &Controller, roots: &[PathBuf]) -> Vec<(String, PathBuf)> {
    let mut out = Vec::new();
    let py_files = |dir: &Path| -> Vec<(String, PathBuf)> {
        let mut v: Vec<(String, PathBuf)> = std::fs::read_dir(dir)
            .into_iter()
            .flatten()
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter_map(|p| {
                let stem = p.file_stem()?.to_str()?.to_string();
                (p.extension()? == "py" && !stem.starts_with('_')).then_some((stem, p))
            })
            .collect();
        v.sort();
        v
    };
    for (stem, p) in py_files(&ctl.ansible_dir.join("modules")) {
        out.push((format!("ansible.builtin.{stem}"), p));
    }
    let mut seen = std::collections::HashSet::new();
    for root in roots {
        let ac = root.join("ansible_collections");
        let mut colls: Vec<(String, PathBuf)> = Vec::new();
        for ns in std::fs::read_dir(&ac).into_iter().flatten().filter_map(Result::ok) {
            for coll in std::fs::read_dir(ns.path())
                .into_iter()
                .flatten()
                .filter_map(Result::ok)
            {
                let key = format!(
                    "{}.{}",
                    ns.file_name().to_string_lossy(),
                    coll.file_name().to_string_lossy()
                );
                if coll.path().join("plugins/modules").is_dir() && seen.insert(key.clone()) {
                    colls.push((key, coll.path()));
                }
            }
        }
        colls.sort();
        for (key, dir) in colls {
            for (stem, p) in py_files(&dir.join("plugins/modules")) {
                out.push((format!("{key}.{stem}"), p));
            }
        }
    }
    out
}

/// The action plugin `name` where Ansible would find one: `action_plugins/`
/// beside each of `dirs` (a task file's directory and the one above it: a
/// role, a playbook), `ANSIBLE_ACTION_PLUGINS`, and for `NS.COLL.NAME` the
/// collection's `plugins/action/`. rigger runs it on the controller
/// through the plugin bridge (see `action.rs`).
pub fn find_action_plugin(name: &str, dirs: &[&Path]) -> Option<PathBuf> {
    let parts: Vec<&str> = name.split('.').collect();
    let (coll, short) = match parts.as_slice() {
        [short] => (None, *short),
        ["ansible", "builtin" | "legacy", short] => (None, *short),
        [ns, coll, short] => (Some((*ns, *coll)), *short),
        _ => return None,
    };
    if short.is_empty() || !short.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return None;
    }
    let file = format!("{short}.py");
    match coll {
        None => {
            let mut search: Vec<PathBuf> = dirs.iter().map(|d| d.join("action_plugins")).collect();
            search.extend(
                playbook_dirs()
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .iter()
                    .map(|d| d.join("action_plugins")),
            );
            if let Ok(v) = std::env::var("ANSIBLE_ACTION_PLUGINS") {
                search.extend(v.split(':').filter(|s| !s.is_empty()).map(expand_home));
            }
            search.into_iter().map(|d| d.join(&file)).find(|p| p.is_file())
        }
        Some((ns, coll)) => collection_roots(controller().as_ref().ok())
            .into_iter()
            .map(|r| {
                r.join("ansible_collections")
                    .join(ns)
                    .join(coll)
                    .join("plugins/action")
                    .join(&file)
            })
            .find(|p| p.is_file()),
    }
}

/// The ansible-core action an action plugin file only re-exports (`from
/// ansible.plugins.action.debug import ActionModule`, nothing else but
/// `from __future__` imports, `assert ActionModule` and comments): such a
/// plugin is that action under another name, which rigger can run
/// natively. Read as text, never run.
pub fn reexported_action(path: &Path) -> Option<String> {
    let text = std::fs::read_to_string(path).ok()?;
    let mut found = None;
    for line in text.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') || line.starts_with("from __future__ import ") {
            continue;
        }
        if line == "assert ActionModule" {
            continue;
        }
        let action = line
            .strip_prefix("from ansible.plugins.action.")
            .and_then(|rest| rest.strip_suffix(" import ActionModule"))
            .filter(|a| !a.is_empty() && a.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))?;
        if found.replace(action.to_string()).is_some() {
            return None;
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_bare_re_export_is_an_alias() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.py");
        let write = |t: &str| std::fs::write(&p, t).unwrap();
        write("from __future__ import annotations\n\n# c\nfrom ansible.plugins.action.debug import ActionModule\n\nassert ActionModule\n");
        assert_eq!(reexported_action(&p).as_deref(), Some("debug"));
        write("from ansible.plugins.action.debug import ActionModule\nimport os\n");
        assert_eq!(reexported_action(&p), None);
        write("from ansible.plugins.action import ActionBase\n");
        assert_eq!(reexported_action(&p), None);
        write("from ansible.plugins.action.debug import ActionModule\nfrom ansible.plugins.action.fail import ActionModule\n");
        assert_eq!(reexported_action(&p), None);
    }
}
