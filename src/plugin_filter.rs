//! Ansible's plugin filter file (`[defaults] plugin_filters_cfg` in
//! ansible.cfg, default `/etc/ansible/plugin_filters.yml`): a YAML mapping
//! with `filter_version: '1.0'` and `module_rejectlist`, the modules (and
//! action plugins, which share the list) that must not run. A rejected
//! module is not found: a task naming it is an error at load. As in
//! Ansible (`_load_plugin_filter` in `ansible/plugins/loader.py`), a file
//! that cannot be used is a warning and filters nothing, and rejecting
//! `stat` stops every run.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::OnceLock;

/// The filter in force.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct PluginFilter {
    /// The file it came from.
    pub file: PathBuf,
    /// `module_rejectlist`: short module names.
    pub modules: BTreeSet<String>,
}

/// What reading the filter file found: the filter, and the warnings Ansible
/// gives for a file it skips.
#[derive(Debug, Default, PartialEq)]
pub struct Loaded {
    pub filter: PluginFilter,
    pub warnings: Vec<String>,
}

/// The file to read: ansible.cfg's `plugin_filters_cfg` (relative to the
/// ansible.cfg's directory, as Ansible resolves `path` settings), and
/// whether the user named it (a missing default file is no warning).
fn configured() -> (PathBuf, bool) {
    match crate::ansible_cfg::path_value("defaults", "plugin_filters_cfg") {
        Some(p) => (p, true),
        None => (PathBuf::from("/etc/ansible/plugin_filters.yml"), false),
    }
}

/// Read a filter file as Ansible does. `Err` only when `stat` is rejected.
pub fn read(file: PathBuf, user_set: bool) -> Result<Loaded, String> {
    let mut out = Loaded {
        filter: PluginFilter {
            file: file.clone(),
            modules: BTreeSet::new(),
        },
        warnings: Vec::new(),
    };
    let shown = file.display().to_string();
    match std::fs::read_to_string(&file) {
        Err(_) if !file.exists() => {
            if user_set {
                out.warnings
                    .push(format!("The plugin filter file, {shown} does not exist. Skipping."));
            }
        }
        Err(e) => out.warnings.push(format!(
            "The plugin filter file, {shown} was not parsable. Skipping: {e}"
        )),
        Ok(text) => match crate::yaml::parse_one(&text, &shown) {
            Err(e) => out.warnings.push(format!(
                "The plugin filter file, {shown} was not parsable. Skipping: {e}"
            )),
            Ok(root) => match root.get("filter_version") {
                None => out
                    .warnings
                    .push(format!("The plugin filter file, {shown} was invalid. Skipping.")),
                Some(v) => {
                    let version = match v.to_json() {
                        serde_json::Value::String(s) => s,
                        other => other.to_string(),
                    };
                    if version.trim() != "1.0" {
                        out.warnings.push(format!(
                            "The plugin filter file, {shown} was a version not recognized by this version of Ansible. Skipping."
                        ));
                    } else {
                        match root.get("module_rejectlist").map(|n| n.to_json()) {
                            Some(serde_json::Value::Array(items)) => {
                                out.filter.modules = items
                                    .iter()
                                    .map(|i| match i {
                                        serde_json::Value::String(s) => s.clone(),
                                        other => other.to_string(),
                                    })
                                    .collect();
                            }
                            // Python's frozenset() of a string is its characters;
                            // of a mapping, its keys: neither names a module list.
                            _ => out.warnings.push(format!(
                                "Unable to parse the plugin filter file {shown} as module_rejectlist is not a list. Skipping."
                            )),
                        }
                    }
                }
            },
        },
    }
    if out.filter.modules.contains("stat") {
        return Err(format!(
            "The stat module was specified in the module reject list file, {shown}, but Ansible will not \
             function without the stat module.  Please remove stat from the reject list."
        ));
    }
    Ok(out)
}

fn cell() -> &'static OnceLock<PluginFilter> {
    static F: OnceLock<PluginFilter> = OnceLock::new();
    &F
}

/// Read the configured filter once, at the start of a run: its warnings
/// are printed, and a rejected `stat` is the run's error.
pub fn install() -> Result<(), String> {
    if cell().get().is_some() {
        return Ok(());
    }
    let (file, user_set) = configured();
    let loaded = read(file, user_set)?;
    for w in &loaded.warnings {
        crate::stdio::warn(w);
    }
    let _ = cell().set(loaded.filter);
    Ok(())
}

/// The filter file that rejects this module (`copy`, `ansible.builtin.copy`
/// and `ansible.legacy.copy` alike), if one does.
pub fn rejects(module: &str) -> Option<&'static PluginFilter> {
    let f = cell().get()?;
    let short = module
        .strip_prefix("ansible.builtin.")
        .or_else(|| module.strip_prefix("ansible.legacy."))
        .unwrap_or(module);
    (f.modules.contains(module) || f.modules.contains(short)).then_some(f)
}

/// The error for a task or ad-hoc command naming a rejected module.
pub fn rejected_message(module: &str, f: &PluginFilter) -> String {
    format!(
        "couldn't resolve module/action '{module}': it is in the module_rejectlist of the plugin filter file {}",
        f.file.display()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(text: &str) -> (tempfile::TempDir, PathBuf) {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("filters.yml");
        std::fs::write(&p, text).unwrap();
        (d, p)
    }

    #[test]
    fn a_version_1_0_file_rejects_its_modules() {
        let (_d, p) = file("---\nfilter_version: 1.0\nmodule_rejectlist:\n  - pause\n  - copy\n");
        let l = read(p, true).unwrap();
        assert!(l.warnings.is_empty(), "{:?}", l.warnings);
        assert_eq!(l.filter.modules.iter().collect::<Vec<_>>(), ["copy", "pause"]);
        let (_d, p) = file("filter_version: '1.0'\nmodule_rejectlist: [tempfile]\n");
        assert_eq!(read(p, true).unwrap().filter.modules.len(), 1);
    }

    #[test]
    fn unusable_files_are_warnings_that_filter_nothing() {
        let (_d, p) = file("filter_version: 1.0\nmodule_rejectlist:\n");
        let l = read(p, true).unwrap();
        assert!(l.filter.modules.is_empty());
        assert!(
            l.warnings[0].contains("module_rejectlist is not a list"),
            "{:?}",
            l.warnings
        );
        let (_d, p) = file("module_rejectlist: [copy]\n");
        let l = read(p, true).unwrap();
        assert!(l.filter.modules.is_empty());
        assert!(l.warnings[0].ends_with("was invalid. Skipping."), "{:?}", l.warnings);
        let (_d, p) = file("filter_version: 2.0\nmodule_rejectlist: [copy]\n");
        let l = read(p, true).unwrap();
        assert!(l.filter.modules.is_empty());
        assert!(l.warnings[0].contains("version not recognized"), "{:?}", l.warnings);
        let l = read(PathBuf::from("/nonexistent/filters.yml"), true).unwrap();
        assert!(l.warnings[0].contains("does not exist"), "{:?}", l.warnings);
        // The default file missing is normal.
        let l = read(PathBuf::from("/nonexistent/filters.yml"), false).unwrap();
        assert!(l.warnings.is_empty());
    }

    #[test]
    fn rejecting_stat_is_an_error() {
        let (_d, p) = file("filter_version: 1.0\nmodule_rejectlist: [stat]\n");
        let e = read(p.clone(), true).unwrap_err();
        assert!(
            e.contains("The stat module was specified in the module reject list file"),
            "{e}"
        );
        assert!(e.contains(&p.display().to_string()), "{e}");
    }
}
