//! Ansible's fact cache: what a run keeps of each host's facts for later
//! runs. `memory` (the default) keeps them for the run only; `jsonfile`
//! writes one JSON file per host, `{fact_caching_connection}/{prefix}{host}`,
//! read back by a later run (unless older than `fact_caching_timeout`).
//! The cached facts are those of the fact layer: gathered facts, facts
//! modules return and `set_fact` values with `cacheable: true`, under
//! Ansible's names (`ansible_nodename`), so a cache directory can be shared
//! with Ansible.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use serde_json::{Map, Value};

/// A file-backed fact cache (`jsonfile`); `memory` is no cache at all.
#[derive(Debug, Clone)]
pub struct FactCache {
    dir: PathBuf,
    prefix: String,
    /// None: entries never expire (`fact_caching_timeout = 0`).
    timeout: Option<Duration>,
}

/// A setting from its environment variable, else ansible.cfg's `[defaults]`.
fn setting(env: &str, key: &str) -> Option<String> {
    std::env::var(env)
        .ok()
        .or_else(|| crate::ansible_cfg::value("defaults", key))
}

impl FactCache {
    /// The cache the settings ask for: ANSIBLE_CACHE_PLUGIN (`fact_caching`),
    /// ANSIBLE_CACHE_PLUGIN_CONNECTION (`fact_caching_connection`, the
    /// directory, created when missing), ANSIBLE_CACHE_PLUGIN_PREFIX
    /// (`fact_caching_prefix`, default `ansible_facts`) and
    /// ANSIBLE_CACHE_PLUGIN_TIMEOUT (`fact_caching_timeout`, seconds,
    /// default 86400, 0 = never expires). `None` for `memory`.
    pub fn configured() -> Result<Option<FactCache>, String> {
        let plugin = setting("ANSIBLE_CACHE_PLUGIN", "fact_caching");
        match plugin.as_deref().map(str::trim) {
            None | Some("" | "memory" | "ansible.builtin.memory") => return Ok(None),
            Some("jsonfile" | "ansible.builtin.jsonfile") => {}
            Some(other) => {
                return Err(format!(
                    "fact cache plugin `{other}` (ANSIBLE_CACHE_PLUGIN or ansible.cfg's fact_caching) is not \
                     supported: rigger has `memory` (facts kept for the run) and `jsonfile`"
                ))
            }
        }
        let dir = setting("ANSIBLE_CACHE_PLUGIN_CONNECTION", "fact_caching_connection")
            .map(|d| d.trim().to_string())
            .filter(|d| !d.is_empty())
            .ok_or_else(|| {
                "error, 'jsonfile' cache plugin requires the 'fact_caching_connection' config option to be set \
                 (to a writeable directory path): ANSIBLE_CACHE_PLUGIN_CONNECTION"
                    .to_string()
            })?;
        let dir = match (dir.strip_prefix("~/"), std::env::var_os("HOME")) {
            (Some(rest), Some(home)) => Path::new(&home).join(rest),
            _ => PathBuf::from(dir),
        };
        let prefix =
            setting("ANSIBLE_CACHE_PLUGIN_PREFIX", "fact_caching_prefix").unwrap_or_else(|| "ansible_facts".into());
        let timeout = match setting("ANSIBLE_CACHE_PLUGIN_TIMEOUT", "fact_caching_timeout") {
            None => Some(Duration::from_secs(86400)),
            Some(t) => {
                let secs: f64 = t
                    .trim()
                    .parse()
                    .ok()
                    .filter(|s: &f64| s.is_finite() && *s >= 0.0)
                    .ok_or_else(|| {
                        format!("ANSIBLE_CACHE_PLUGIN_TIMEOUT (fact_caching_timeout) is `{t}`, not a number of seconds")
                    })?;
                (secs > 0.0).then(|| Duration::from_secs_f64(secs))
            }
        };
        if !dir.exists() {
            std::fs::create_dir_all(&dir).map_err(|e| {
                format!(
                    "Error in 'jsonfile' cache plugin while trying to create cache dir {}: {e}",
                    dir.display()
                )
            })?;
        }
        Ok(Some(FactCache { dir, prefix, timeout }))
    }

    fn file(&self, host: &str) -> PathBuf {
        self.dir.join(format!("{}{host}", self.prefix))
    }

    /// A host's cached facts; `Ok(None)` when there are none or they
    /// expired. A file that is not a JSON object is removed, as Ansible does.
    pub fn get(&self, host: &str) -> Result<Option<Map<String, Value>>, String> {
        // A host name with a `/` would name a file elsewhere.
        if host.is_empty() || host.contains('/') {
            return Ok(None);
        }
        let path = self.file(host);
        let meta = match std::fs::metadata(&path) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(format!("cannot read the fact cache file {}: {e}", path.display())),
        };
        if let (Some(limit), Ok(modified)) = (self.timeout, meta.modified()) {
            let age = SystemTime::now().duration_since(modified).unwrap_or_default();
            if age > limit {
                return Ok(None);
            }
        }
        let text = std::fs::read_to_string(&path)
            .map_err(|e| format!("cannot read the fact cache file {}: {e}", path.display()))?;
        match serde_json::from_str(&text) {
            Ok(Value::Object(m)) => Ok(Some(m)),
            _ => {
                let _ = std::fs::remove_file(&path);
                Err(format!(
                    "The cache file {} was corrupt, or did not otherwise contain valid data. It has been removed, \
                     so you can re-run your command now.",
                    path.display()
                ))
            }
        }
    }

    /// Replace a host's cached facts atomically (`atomic_file::replace`: a
    /// private temporary file created exclusively, synced, renamed over the
    /// old one; a new file gets 0640), so a reader never sees half a file
    /// and no symlink planted in the cache directory is written through.
    pub fn set(&self, host: &str, facts: &Map<String, Value>) -> Result<(), String> {
        if host.is_empty() || host.contains('/') {
            return Err(format!(
                "the facts of host `{host}` are not cached: its name cannot name a file of the 'jsonfile' cache"
            ));
        }
        let path = self.file(host);
        let text = serde_json::to_string(facts).map_err(|e| e.to_string())?;
        crate::atomic_file::replace(&path, text.as_bytes(), 0o640).map_err(|e| {
            format!(
                "Error in 'jsonfile' cache plugin while trying to write {}: {e}",
                path.display()
            )
        })
    }

    /// Forget a host's cached facts (`meta: clear_facts`, `--flush-cache`);
    /// an entry that is not there is already forgotten.
    pub fn delete(&self, host: &str) -> Result<(), String> {
        if host.is_empty() || host.contains('/') {
            return Ok(());
        }
        let path = self.file(host);
        match std::fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(format!("cannot remove the fact cache file {}: {e}", path.display())),
        }
    }
}

/// The cache entry of a host's fact layer: gathered facts (kept without
/// their `ansible_` prefix) under Ansible's names, then module facts.
pub fn entry_of(facts: &Map<String, Value>, module_facts: &Map<String, Value>) -> Map<String, Value> {
    let mut out: Map<String, Value> = facts.iter().map(|(k, v)| (format!("ansible_{k}"), v.clone())).collect();
    out.extend(module_facts.iter().map(|(k, v)| (k.clone(), v.clone())));
    out
}

/// A cache entry split back into the fact layer: `ansible_X` as the fact
/// `X` (what `ansible_facts.X` and `ansible_X` show), other names as module
/// facts.
pub fn split_entry(entry: Map<String, Value>) -> (Map<String, Value>, Map<String, Value>) {
    let mut facts = Map::new();
    let mut module_facts = Map::new();
    for (k, v) in entry {
        match k.strip_prefix("ansible_") {
            Some(name) if !name.is_empty() => {
                facts.insert(name.to_string(), v);
            }
            _ => {
                module_facts.insert(k, v);
            }
        }
    }
    (facts, module_facts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_keep_ansible_names_and_split_back() {
        let facts = Map::from_iter([("nodename".to_string(), Value::from("n1"))]);
        let module = Map::from_iter([("custom".to_string(), Value::from(1))]);
        let entry = entry_of(&facts, &module);
        assert_eq!(entry.get("ansible_nodename"), Some(&Value::from("n1")));
        assert_eq!(entry.get("custom"), Some(&Value::from(1)));
        assert_eq!(split_entry(entry), (facts, module));
    }
}
