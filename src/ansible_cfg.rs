//! ansible.cfg as Ansible reads it: which file (`$ANSIBLE_CONFIG`,
//! `./ansible.cfg`, `~/.ansible.cfg`, `/etc/ansible/ansible.cfg`) and the
//! value of one setting. A leaf: the template engine (`ansible_managed`) and
//! the connection pool (`ssh_args`) read it as well as the configuration.

use std::path::Path;

/// The ansible.cfg Ansible would read: `$ANSIBLE_CONFIG` (a file, or a
/// directory holding ansible.cfg), `./ansible.cfg`, `~/.ansible.cfg`,
/// `/etc/ansible/ansible.cfg` — the first that exists.
pub fn ansible_cfg_path() -> Option<std::path::PathBuf> {
    let mut cands = Vec::new();
    if let Ok(p) = std::env::var("ANSIBLE_CONFIG") {
        let p = std::path::PathBuf::from(p);
        cands.push(if p.is_dir() { p.join("ansible.cfg") } else { p });
    }
    cands.push("ansible.cfg".into());
    if let Ok(home) = std::env::var("HOME") {
        cands.push(Path::new(&home).join(".ansible.cfg"));
    }
    cands.push("/etc/ansible/ansible.cfg".into());
    cands.into_iter().find(|p| p.is_file())
}

/// A setting of the ansible.cfg Ansible would read (see [`ansible_cfg_path`]),
/// read once per run: `[section] key = value` (or `key: value`), `#`/`;`
/// comment lines, ` ;` inline comments, indented continuation lines.
pub fn value(section: &str, key: &str) -> Option<String> {
    located(section, key).map(|(v, _)| v)
}

/// The entries of the ansible.cfg Ansible would read, parsed once per run:
/// (section, key, value, line).
fn entries() -> &'static [(String, String, String, u32)] {
    static CFG: std::sync::OnceLock<Vec<(String, String, String, u32)>> = std::sync::OnceLock::new();
    CFG.get_or_init(|| {
        ansible_cfg_path()
            .and_then(|p| std::fs::read_to_string(p).ok())
            .map(|text| parse_ini_lines(&text))
            .unwrap_or_default()
    })
}

/// [`value`] with the line of ansible.cfg that set it (the file is
/// [`ansible_cfg_path`]).
pub fn located(section: &str, key: &str) -> Option<(String, u32)> {
    let cfg = entries();
    let raw = |section: &str, key: &str| {
        cfg.iter()
            .rev()
            .find(|(s, k, _, _)| (s == section || s == "DEFAULT") && k == key)
            .map(|(_, _, v, line)| (v.clone(), *line))
    };
    raw(section, key).map(|(v, line)| (interpolate(&v, &|name| raw(section, name).map(|(v, _)| v)), line))
}

/// A `path` setting of ansible.cfg as Ansible resolves it: `~` expanded,
/// a relative path taken from the ansible.cfg's own directory.
pub fn path_value(section: &str, key: &str) -> Option<std::path::PathBuf> {
    let v = value(section, key)?;
    let v = v.trim();
    if v.is_empty() {
        return None;
    }
    let p = match (v.strip_prefix("~/"), std::env::var_os("HOME")) {
        (Some(rest), Some(h)) => Path::new(&h).join(rest),
        _ => std::path::PathBuf::from(v),
    };
    if p.is_absolute() {
        return Some(p);
    }
    let base = ansible_cfg_path()
        .and_then(|c| std::fs::canonicalize(c).ok())
        .and_then(|c| c.parent().map(Path::to_path_buf))
        .or_else(|| std::env::current_dir().ok())?;
    Some(base.join(p))
}

/// Ansible's DEFAULT_HASH_BEHAVIOUR (`$ANSIBLE_HASH_BEHAVIOUR`, else
/// `[defaults] hash_behaviour`): whether a variable's mapping is merged
/// recursively into the one a lower layer gave it (`merge`) instead of
/// replacing it (`replace`, the default). `Err` for any other value.
pub fn hash_behaviour_merge() -> Result<bool, String> {
    let v = std::env::var("ANSIBLE_HASH_BEHAVIOUR")
        .ok()
        .or_else(|| value("defaults", "hash_behaviour"));
    match v.as_deref().map(str::trim) {
        None | Some("" | "replace") => Ok(false),
        Some("merge") => Ok(true),
        Some(other) => Err(format!(
            "hash_behaviour (ANSIBLE_HASH_BEHAVIOUR or ansible.cfg) must be `replace` or `merge`, not `{other}`"
        )),
    }
}

/// Ansible's DEFAULT_GATHERING: when a play gathers facts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gathering {
    /// Every play gathers unless it says `gather_facts: false` (the default).
    Implicit,
    /// Only plays that say `gather_facts: true` gather.
    Explicit,
    /// As implicit, but a host whose facts were gathered earlier in the
    /// run is not gathered again.
    Smart,
}

impl Gathering {
    /// Whether a play whose `gather_facts` is `play` gathers on a host
    /// (`gathered`: the host's facts were gathered earlier in the run):
    /// Ansible's `PlayIterator` rule.
    pub fn gathers(self, play: Option<bool>, gathered: bool) -> bool {
        let implied = play.unwrap_or(true);
        match self {
            Gathering::Implicit => implied,
            Gathering::Explicit => play == Some(true),
            Gathering::Smart => implied && !gathered,
        }
    }
}

/// The gathering policy: `$ANSIBLE_GATHERING`, else `[defaults] gathering`,
/// else `implicit`. `Err` for anything but implicit, explicit or smart.
pub fn gathering_policy() -> Result<Gathering, String> {
    let v = std::env::var("ANSIBLE_GATHERING")
        .ok()
        .or_else(|| value("defaults", "gathering"));
    match v.as_deref().map(str::trim) {
        None | Some("" | "implicit") => Ok(Gathering::Implicit),
        Some("explicit") => Ok(Gathering::Explicit),
        Some("smart") => Ok(Gathering::Smart),
        Some(other) => Err(format!(
            "gathering (ANSIBLE_GATHERING or ansible.cfg) must be `implicit`, `explicit` or `smart`, not `{other}`"
        )),
    }
}

/// [`gathering_policy`], read once per run (a bad value was refused when
/// the run started).
pub fn gathering() -> Gathering {
    static G: std::sync::OnceLock<Gathering> = std::sync::OnceLock::new();
    *G.get_or_init(|| gathering_policy().unwrap_or(Gathering::Implicit))
}

/// Where local facts (`ansible_local`) are read: `$ANSIBLE_FACT_PATH`,
/// else `[defaults] fact_path`, else `/etc/ansible/facts.d` (the `setup`
/// module's default).
pub fn fact_path() -> String {
    std::env::var("ANSIBLE_FACT_PATH")
        .ok()
        .filter(|p| !p.is_empty())
        .or_else(|| value("defaults", "fact_path"))
        .unwrap_or_else(|| "/etc/ansible/facts.d".into())
}

/// Whether the recap shows `set_stats`' custom stats (the default
/// callback's `show_custom_stats`): `$ANSIBLE_SHOW_CUSTOM_STATS`, else
/// `[defaults] show_custom_stats`, else false. Ansible's `boolean`: a word
/// that is not true is false.
pub fn show_custom_stats() -> bool {
    std::env::var("ANSIBLE_SHOW_CUSTOM_STATS")
        .ok()
        .or_else(|| value("defaults", "show_custom_stats"))
        .and_then(|v| crate::kv::parse_bool(&v))
        .unwrap_or(false)
}

/// [`hash_behaviour_merge`], read once per run (a bad value was refused
/// when the run started and counts as `replace` here).
pub fn hash_merge() -> bool {
    static MERGE: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *MERGE.get_or_init(|| hash_behaviour_merge().unwrap_or(false))
}

/// `a` with `b` merged in recursively: Ansible's `merge_hash` (mappings
/// merge key by key, anything else in `b` replaces).
pub fn merge_hash(a: &serde_json::Value, b: &serde_json::Value) -> serde_json::Value {
    use serde_json::Value;
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let mut m = x.clone();
            for (k, v) in y {
                let merged = match m.get(k) {
                    Some(old) => merge_hash(old, v),
                    None => v.clone(),
                };
                m.insert(k.clone(), merged);
            }
            Value::Object(m)
        }
        _ => b.clone(),
    }
}

/// Ansible's `combine_vars`: `b`'s variables over `a`'s, a mapping merged
/// into the mapping it overrides when hashes merge ([`hash_merge`]).
pub fn combine_vars(a: &mut serde_json::Map<String, serde_json::Value>, b: serde_json::Map<String, serde_json::Value>) {
    let merge = hash_merge();
    for (k, v) in b {
        let v = match a.get(&k) {
            Some(old) if merge => merge_hash(old, &v),
            _ => v,
        };
        a.insert(k, v);
    }
}

/// configparser's basic interpolation, which Ansible's reader uses: `%%` is
/// a `%` and `%(name)s` the value of `name` in the same section (one level).
fn interpolate(v: &str, lookup: &dyn Fn(&str) -> Option<String>) -> String {
    let mut out = String::new();
    let mut rest = v;
    while let Some(i) = rest.find('%') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        if let Some(r) = after.strip_prefix('%') {
            out.push('%');
            rest = r;
        } else if let Some((name, r)) = after.strip_prefix('(').and_then(|a| a.split_once(")s")) {
            out.push_str(&lookup(&name.to_lowercase()).unwrap_or_default());
            rest = r;
        } else {
            out.push('%');
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

/// (section, key, value) triples of an INI text, as Python's configparser reads them.
#[cfg(test)]
fn parse_ini(text: &str) -> Vec<(String, String, String)> {
    parse_ini_lines(text)
        .into_iter()
        .map(|(s, k, v, _)| (s, k, v))
        .collect()
}

/// (section, key, value, line) of an INI text, as Python's configparser
/// reads them; the line is where the key is.
fn parse_ini_lines(text: &str) -> Vec<(String, String, String, u32)> {
    let mut out: Vec<(String, String, String, u32)> = Vec::new();
    let mut section = String::new();
    for (n, line) in text.lines().enumerate() {
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') || trimmed.starts_with(';') {
            continue;
        }
        let value_of = |v: &str| match v.find(" ;").or_else(|| v.find("\t;")) {
            Some(i) => v[..i].trim().to_string(),
            None => v.trim().to_string(),
        };
        if line.starts_with([' ', '\t']) {
            if let Some(last) = out.last_mut() {
                last.2.push('\n');
                last.2.push_str(&value_of(trimmed));
            }
            continue;
        }
        if let Some(name) = trimmed.strip_prefix('[').and_then(|s| s.strip_suffix(']')) {
            section = name.trim().to_string();
            continue;
        }
        let split = trimmed.find(['=', ':']);
        let (k, v) = match split {
            Some(i) => (&trimmed[..i], &trimmed[i + 1..]),
            None => (trimmed, ""),
        };
        out.push((section.clone(), k.trim().to_lowercase(), value_of(v), n as u32 + 1));
    }
    out
}

#[cfg(test)]
mod ini_tests {
    use super::parse_ini;

    #[test]
    fn ini_interpolation() {
        let look = |n: &str| (n == "base").then(|| "/srv".to_string());
        assert_eq!(super::interpolate("%%Y %(base)s/x %Z", &look), "%Y /srv/x %Z");
    }

    #[test]
    fn ini_sections_comments_and_continuations() {
        let got = parse_ini(
            "# c\n[defaults]\nansible_managed = Managed by {uid} ; note\nRoles_Path: a:b\n  c\n[ssh_connection]\nssh_args=-o X=1\n",
        );
        assert_eq!(
            got,
            vec![
                ("defaults".into(), "ansible_managed".into(), "Managed by {uid}".into()),
                ("defaults".into(), "roles_path".into(), "a:b\nc".into()),
                ("ssh_connection".into(), "ssh_args".into(), "-o X=1".into()),
            ]
        );
    }
}
