//! rigger's settings and where each one comes from: the one place that
//! decides their precedence.
//!
//! From highest to lowest:
//! 1. the command line (`-i`, `-f`, `-u`, `--private-key`, `-T`,
//!    `--host-key-checking`, `--vault-password-file`);
//! 2. the environment: `RIGGER_<KEY>`, then Ansible's `ANSIBLE_<KEY>`;
//! 3. `rigger.toml`'s `[defaults]` (`$RIGGER_CONFIG`, `rigger check
//!    --config`, else `./rigger.toml`, else `~/.config/rigger/rigger.toml`);
//! 4. the `[defaults]` of the ansible.cfg Ansible would read
//!    ([`crate::ansible_cfg::ansible_cfg_path`]), so an Ansible project
//!    works without edits;
//! 5. the default.
//!
//! A relative path in rigger.toml or ansible.cfg is taken from that file's
//! directory (as Ansible does for ansible.cfg); one from the command line
//! or the environment from the working directory. `rigger config dump`
//! prints every value with its origin.
//!
//! ```toml
//! [defaults]
//! inventory = ["inventory"]          # or "inventory/hosts.ini"
//! forks = 20
//! remote_user = "deploy"
//! private_key_file = "~/.ssh/id_ed25519"
//! host_key_checking = "accept-new"   # strict | accept-new | off (or true/false)
//! roles_path = ["roles"]
//! collections_path = ["collections"]
//! vault_password_file = "~/.vault_pass"
//! timeout = 10                       # SSH connection timeout, seconds
//! state = "postgres://rigger@db/rigger"  # shared state (docs/state.md); default: SQLite files
//! ```

use std::fmt;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::{json, Value};

use crate::error::{AppError, LocError};
use crate::loc::Loc;

/// Where a setting's value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    CommandLine,
    Env(&'static str),
    /// A line of rigger.toml or ansible.cfg.
    File {
        path: PathBuf,
        line: u32,
    },
    Default,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::CommandLine => f.write_str("command line"),
            Origin::Env(v) => write!(f, "env {v}"),
            Origin::File { path, line } => write!(f, "{}:{line}", path.display()),
            Origin::Default => f.write_str("default"),
        }
    }
}

/// A value and its origin.
#[derive(Debug, Clone)]
pub struct Setting<T> {
    pub value: T,
    pub origin: Origin,
}

/// Every setting, resolved.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The rigger.toml read, if any.
    pub file: Option<PathBuf>,
    /// The ansible.cfg read, if any.
    pub ansible_cfg: Option<PathBuf>,
    /// Inventory sources (paths or `host1,host2,` lists).
    pub inventory: Setting<Vec<String>>,
    pub forks: Setting<usize>,
    pub remote_user: Setting<Option<String>>,
    pub private_key_file: Setting<Option<PathBuf>>,
    /// `strict`, `accept-new` or `off`.
    pub host_key_checking: Setting<String>,
    pub roles_path: Setting<Vec<PathBuf>>,
    pub collections_path: Setting<Vec<PathBuf>>,
    pub vault_password_file: Setting<Option<PathBuf>>,
    /// SSH connection timeout in seconds.
    pub timeout: Setting<u64>,
    /// Where `rigger check` keeps its history when `--db` is not given: a
    /// SQLite path or a `postgres://` URL (docs/state.md). None: the
    /// default file.
    pub state: Setting<Option<String>>,
}

/// The values the command line gave (`None`/empty: not given).
#[derive(Debug, Clone, Default)]
pub struct CliValues {
    pub inventory: Vec<String>,
    pub forks: Option<usize>,
    pub remote_user: Option<String>,
    pub private_key_file: Option<PathBuf>,
    pub host_key_checking: Option<String>,
    pub timeout: Option<u64>,
    pub vault_password_file: Option<PathBuf>,
}

/// rigger.toml's keys: `[defaults]`, and `[check]`, which `rigger check`
/// reads ([`crate::check::config`]); any other key is an error.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RiggerToml {
    #[serde(default)]
    defaults: TomlDefaults,
    #[serde(default)]
    #[allow(dead_code)] // validated here, used by `rigger check`
    check: crate::check::config::CheckConfig,
    #[serde(default)]
    #[allow(dead_code)] // validated here, used by `rigger lint`
    lint: LintTable,
}

type Spanned = toml::Spanned<toml::Value>;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct TomlDefaults {
    inventory: Option<Spanned>,
    forks: Option<Spanned>,
    remote_user: Option<Spanned>,
    private_key_file: Option<Spanned>,
    host_key_checking: Option<Spanned>,
    roles_path: Option<Spanned>,
    collections_path: Option<Spanned>,
    vault_password_file: Option<Spanned>,
    timeout: Option<Spanned>,
    state: Option<Spanned>,
}

/// A value as one layer wrote it.
enum Raw<'a> {
    Text(String),
    Toml(&'a toml::Value),
}

/// One layer's value of a key: the value, its origin, the directory a
/// relative path is taken from (`None`: the working directory).
struct Found<'a> {
    raw: Raw<'a>,
    origin: Origin,
    base: Option<PathBuf>,
}

/// How a key is named in each layer.
struct Key {
    name: &'static str,
    env: &'static [&'static str],
    /// `[defaults]` keys of ansible.cfg (aliases in order).
    cfg: &'static [&'static str],
}

const INVENTORY: Key = Key {
    name: "inventory",
    env: &["RIGGER_INVENTORY", "ANSIBLE_INVENTORY"],
    cfg: &["inventory", "hostfile"],
};
const FORKS: Key = Key {
    name: "forks",
    env: &["RIGGER_FORKS", "ANSIBLE_FORKS"],
    cfg: &["forks"],
};
const REMOTE_USER: Key = Key {
    name: "remote_user",
    env: &["RIGGER_REMOTE_USER", "ANSIBLE_REMOTE_USER"],
    cfg: &["remote_user"],
};
const PRIVATE_KEY_FILE: Key = Key {
    name: "private_key_file",
    env: &["RIGGER_PRIVATE_KEY_FILE", "ANSIBLE_PRIVATE_KEY_FILE"],
    cfg: &["private_key_file"],
};
const HOST_KEY_CHECKING: Key = Key {
    name: "host_key_checking",
    env: &["RIGGER_HOST_KEY_CHECKING", "ANSIBLE_HOST_KEY_CHECKING"],
    cfg: &["host_key_checking"],
};
const ROLES_PATH: Key = Key {
    name: "roles_path",
    env: &["RIGGER_ROLES_PATH", "ANSIBLE_ROLES_PATH"],
    cfg: &["roles_path"],
};
const COLLECTIONS_PATH: Key = Key {
    name: "collections_path",
    env: &[
        "RIGGER_COLLECTIONS_PATH",
        "ANSIBLE_COLLECTIONS_PATH",
        "ANSIBLE_COLLECTIONS_PATHS",
    ],
    cfg: &["collections_path", "collections_paths"],
};
const VAULT_PASSWORD_FILE: Key = Key {
    name: "vault_password_file",
    env: &["RIGGER_VAULT_PASSWORD_FILE", "ANSIBLE_VAULT_PASSWORD_FILE"],
    cfg: &["vault_password_file"],
};
const TIMEOUT: Key = Key {
    name: "timeout",
    env: &["RIGGER_TIMEOUT", "ANSIBLE_TIMEOUT"],
    cfg: &["timeout"],
};

const STATE: Key = Key {
    name: "state",
    env: &["RIGGER_STATE_URL"],
    cfg: &[],
};

/// The loaded files the layers below the environment read.
struct Files {
    toml_path: Option<PathBuf>,
    toml_text: String,
    toml: RiggerToml,
    cfg_path: Option<PathBuf>,
}

impl Files {
    fn load(config: Option<&Path>) -> Result<Files, AppError> {
        let explicit = config.map(Path::to_path_buf).or_else(|| {
            std::env::var_os("RIGGER_CONFIG")
                .filter(|c| !c.is_empty())
                .map(PathBuf::from)
        });
        let toml_path = crate::check::config::locate(explicit.as_deref()).map(|p| std::path::absolute(&p).unwrap_or(p));
        let (toml_text, toml) = match &toml_path {
            None => (String::new(), RiggerToml::default()),
            Some(p) => {
                let text = std::fs::read_to_string(p)
                    .map_err(|e| AppError::Usage(format!("cannot read the config file {}: {e}", p.display())))?;
                let parsed = toml::from_str::<RiggerToml>(&text).map_err(|e| {
                    let (line, col) = e.span().map(|s| line_col(&text, s.start)).unwrap_or((0, 0));
                    LocError::new(
                        Loc::new(p.display().to_string(), line, col),
                        e.message().trim_end().to_string(),
                    )
                })?;
                (text, parsed)
            }
        };
        let cfg_path = crate::ansible_cfg::ansible_cfg_path().map(|p| std::path::absolute(&p).unwrap_or(p));
        Ok(Files {
            toml_path,
            toml_text,
            toml,
            cfg_path,
        })
    }

    fn toml_value(&self, key: &Key) -> Option<&Spanned> {
        let d = &self.toml.defaults;
        match key.name {
            "inventory" => d.inventory.as_ref(),
            "forks" => d.forks.as_ref(),
            "remote_user" => d.remote_user.as_ref(),
            "private_key_file" => d.private_key_file.as_ref(),
            "host_key_checking" => d.host_key_checking.as_ref(),
            "roles_path" => d.roles_path.as_ref(),
            "collections_path" => d.collections_path.as_ref(),
            "vault_password_file" => d.vault_password_file.as_ref(),
            "timeout" => d.timeout.as_ref(),
            "state" => d.state.as_ref(),
            _ => None,
        }
    }

    /// The highest layer below the command line that sets `key`.
    fn find(&self, key: &Key) -> Option<Found<'_>> {
        for var in key.env {
            if let Some(v) = std::env::var(var).ok().filter(|v| !v.is_empty()) {
                return Some(Found {
                    raw: Raw::Text(v),
                    origin: Origin::Env(var),
                    base: None,
                });
            }
        }
        if let (Some(v), Some(path)) = (self.toml_value(key), &self.toml_path) {
            return Some(Found {
                raw: Raw::Toml(v.get_ref()),
                origin: Origin::File {
                    path: path.clone(),
                    line: line_col(&self.toml_text, v.span().start).0,
                },
                base: path.parent().map(Path::to_path_buf),
            });
        }
        if let Some(path) = &self.cfg_path {
            for k in key.cfg {
                if let Some((v, line)) = crate::ansible_cfg::located("defaults", k) {
                    return Some(Found {
                        raw: Raw::Text(v),
                        origin: Origin::File {
                            path: path.clone(),
                            line,
                        },
                        base: path.parent().map(Path::to_path_buf),
                    });
                }
            }
        }
        None
    }
}

/// A value of the wrong form in some layer: an error naming the layer.
fn bad(key: &Key, origin: &Origin, msg: impl fmt::Display) -> AppError {
    match origin {
        Origin::File { path, line } => LocError::new(
            Loc::new(path.display().to_string(), *line, 1),
            format!("{}: {msg}", key.name),
        )
        .into(),
        Origin::Env(v) => AppError::Usage(format!("{v}: {msg}")),
        Origin::CommandLine | Origin::Default => AppError::Usage(format!("{}: {msg}", key.name)),
    }
}

fn expand_home(p: &str) -> PathBuf {
    match (p.strip_prefix("~/"), std::env::var_os("HOME")) {
        (Some(rest), Some(h)) => Path::new(&h).join(rest),
        _ if p == "~" => std::env::var_os("HOME").map(PathBuf::from).unwrap_or_else(|| p.into()),
        _ => PathBuf::from(p),
    }
}

fn path_from(p: &str, base: Option<&Path>) -> PathBuf {
    let p = expand_home(p.trim());
    match base {
        Some(b) if p.is_relative() => b.join(p),
        _ => p,
    }
}

/// The strings of a value: a TOML string or array of strings, or text
/// split at `sep`.
fn strings(key: &Key, f: &Found<'_>, sep: char) -> Result<Vec<String>, AppError> {
    let out: Vec<String> = match &f.raw {
        Raw::Text(t) => t.split(sep).map(str::trim).map(String::from).collect(),
        Raw::Toml(toml::Value::String(s)) => vec![s.clone()],
        Raw::Toml(toml::Value::Array(a)) => a
            .iter()
            .map(|v| match v {
                toml::Value::String(s) => Ok(s.clone()),
                other => Err(bad(
                    key,
                    &f.origin,
                    format!("expected strings, found {}", other.type_str()),
                )),
            })
            .collect::<Result<_, _>>()?,
        Raw::Toml(other) => {
            return Err(bad(
                key,
                &f.origin,
                format!("expected a string or an array of strings, found {}", other.type_str()),
            ))
        }
    };
    Ok(out.into_iter().filter(|s| !s.is_empty()).collect())
}

fn string(key: &Key, f: &Found<'_>) -> Result<String, AppError> {
    match &f.raw {
        Raw::Text(t) => Ok(t.trim().to_string()),
        Raw::Toml(toml::Value::String(s)) => Ok(s.clone()),
        Raw::Toml(other) => Err(bad(
            key,
            &f.origin,
            format!("expected a string, found {}", other.type_str()),
        )),
    }
}

/// A whole number of at least 1.
fn count(key: &Key, f: &Found<'_>) -> Result<u64, AppError> {
    let n = match &f.raw {
        Raw::Text(t) => t.trim().parse::<i64>().ok(),
        Raw::Toml(toml::Value::Integer(i)) => Some(*i),
        Raw::Toml(_) => None,
    };
    match n {
        Some(n) if n >= 1 => Ok(n as u64),
        _ => Err(bad(key, &f.origin, "expected a whole number of at least 1")),
    }
}

/// `strict`, `accept-new` or `off`, from those or Ansible's booleans.
pub fn host_key_checking_of(v: &str) -> Result<String, String> {
    match v.trim().to_ascii_lowercase().as_str() {
        "strict" | "true" | "yes" | "on" | "1" => Ok("strict".into()),
        "accept-new" => Ok("accept-new".into()),
        "off" | "false" | "no" | "0" => Ok("off".into()),
        other => Err(format!(
            "unknown host key checking `{other}` (use strict, accept-new or off; true/false as Ansible's)"
        )),
    }
}

fn host_key_checking(key: &Key, f: &Found<'_>) -> Result<String, AppError> {
    let text = match &f.raw {
        Raw::Toml(toml::Value::Boolean(b)) => b.to_string(),
        _ => string(key, f)?,
    };
    host_key_checking_of(&text).map_err(|e| bad(key, &f.origin, e))
}

/// Ansible's defaults for the two search paths.
const DEFAULT_ROLES_PATH: &str = "~/.ansible/roles:/usr/share/ansible/roles:/etc/ansible/roles";
const DEFAULT_COLLECTIONS_PATH: &str = "~/.ansible/collections:/usr/share/ansible/collections";

impl Settings {
    /// Resolve every setting: `cli` over the environment over rigger.toml
    /// (`config`, else `$RIGGER_CONFIG`, else found) over ansible.cfg over
    /// the default.
    pub fn load(cli: &CliValues, config: Option<&Path>) -> Result<Settings, AppError> {
        Settings::below_cli(config)?.with_cli(cli)
    }

    /// These settings with the command line's values over them.
    pub fn with_cli(&self, cli: &CliValues) -> Result<Settings, AppError> {
        fn over<T: Clone>(s: &Setting<T>, cli: Option<T>) -> Setting<T> {
            match cli {
                Some(value) => Setting {
                    value,
                    origin: Origin::CommandLine,
                },
                None => s.clone(),
            }
        }
        let hkc = match &cli.host_key_checking {
            Some(v) => Some(host_key_checking_of(v).map_err(|e| AppError::Usage(format!("--host-key-checking: {e}")))?),
            None => None,
        };
        Ok(Settings {
            inventory: over(
                &self.inventory,
                (!cli.inventory.is_empty()).then(|| cli.inventory.clone()),
            ),
            forks: over(&self.forks, cli.forks),
            remote_user: over(&self.remote_user, cli.remote_user.clone().map(Some)),
            private_key_file: over(&self.private_key_file, cli.private_key_file.clone().map(Some)),
            host_key_checking: over(&self.host_key_checking, hkc),
            timeout: over(&self.timeout, cli.timeout),
            vault_password_file: over(&self.vault_password_file, cli.vault_password_file.clone().map(Some)),
            ..self.clone()
        })
    }

    /// Every layer but the command line.
    fn below_cli(config: Option<&Path>) -> Result<Settings, AppError> {
        let files = Files::load(config)?;
        fn pick<T>(
            key: &Key,
            files: &Files,
            parse: impl Fn(&Key, &Found<'_>) -> Result<T, AppError>,
            default: impl FnOnce() -> T,
        ) -> Result<Setting<T>, AppError> {
            match files.find(key) {
                Some(f) => Ok(Setting {
                    value: parse(key, &f)?,
                    origin: f.origin,
                }),
                None => Ok(Setting {
                    value: default(),
                    origin: Origin::Default,
                }),
            }
        }
        let paths = |sep: char| {
            move |k: &Key, f: &Found<'_>| -> Result<Vec<PathBuf>, AppError> {
                Ok(strings(k, f, sep)?
                    .iter()
                    .map(|s| path_from(s, f.base.as_deref()))
                    .collect())
            }
        };
        let path = |k: &Key, f: &Found<'_>| -> Result<Option<PathBuf>, AppError> {
            let s = string(k, f)?;
            Ok((!s.is_empty()).then(|| path_from(&s, f.base.as_deref())))
        };
        Ok(Settings {
            inventory: pick(
                &INVENTORY,
                &files,
                |k, f| {
                    // ansible.cfg's inventory is a comma-separated list of
                    // paths (Ansible's `pathlist`); the environment's is
                    // split at `:` as `-i` values are.
                    let list = match &f.raw {
                        Raw::Text(t) if f.base.is_none() => {
                            t.split(':').map(str::to_string).filter(|s| !s.is_empty()).collect()
                        }
                        _ => strings(k, f, ',')?,
                    };
                    Ok(list
                        .into_iter()
                        .map(|s| {
                            if s.contains(',') {
                                s
                            } else {
                                path_from(&s, f.base.as_deref()).display().to_string()
                            }
                        })
                        .collect())
                },
                default_inventory,
            )?,
            forks: pick(&FORKS, &files, |k, f| Ok(count(k, f)? as usize), || 50)?,
            remote_user: pick(
                &REMOTE_USER,
                &files,
                |k, f| Ok(Some(string(k, f)?).filter(|s| !s.is_empty())),
                || None,
            )?,
            private_key_file: pick(&PRIVATE_KEY_FILE, &files, path, || None)?,
            host_key_checking: pick(&HOST_KEY_CHECKING, &files, host_key_checking, || "strict".into())?,
            roles_path: pick(&ROLES_PATH, &files, paths(':'), || {
                DEFAULT_ROLES_PATH.split(':').map(expand_home).collect()
            })?,
            collections_path: pick(&COLLECTIONS_PATH, &files, paths(':'), || {
                DEFAULT_COLLECTIONS_PATH.split(':').map(expand_home).collect()
            })?,
            vault_password_file: pick(&VAULT_PASSWORD_FILE, &files, path, || None)?,
            timeout: pick(&TIMEOUT, &files, count, || 10)?,
            state: pick(
                &STATE,
                &files,
                |k, f| {
                    let s = string(k, f)?;
                    Ok(if s.is_empty() || crate::state::is_postgres_url(&s) {
                        Some(s).filter(|s| !s.is_empty())
                    } else {
                        Some(path_from(&s, f.base.as_deref()).display().to_string())
                    })
                },
                || None,
            )?,
            file: files.toml_path,
            ansible_cfg: files.cfg_path,
        })
    }

    /// Each setting as `(name, value, origin)`, for `rigger config dump`.
    pub fn entries(&self) -> Vec<(&'static str, Value, &Origin)> {
        let paths = |p: &[PathBuf]| json!(p.iter().map(|p| p.display().to_string()).collect::<Vec<_>>());
        let opt_path = |p: &Option<PathBuf>| p.as_ref().map_or(Value::Null, |p| json!(p.display().to_string()));
        vec![
            ("inventory", json!(self.inventory.value), &self.inventory.origin),
            ("forks", json!(self.forks.value), &self.forks.origin),
            ("remote_user", json!(self.remote_user.value), &self.remote_user.origin),
            (
                "private_key_file",
                opt_path(&self.private_key_file.value),
                &self.private_key_file.origin,
            ),
            (
                "host_key_checking",
                json!(self.host_key_checking.value),
                &self.host_key_checking.origin,
            ),
            ("roles_path", paths(&self.roles_path.value), &self.roles_path.origin),
            (
                "collections_path",
                paths(&self.collections_path.value),
                &self.collections_path.origin,
            ),
            (
                "vault_password_file",
                opt_path(&self.vault_password_file.value),
                &self.vault_password_file.origin,
            ),
            ("timeout", json!(self.timeout.value), &self.timeout.origin),
            (
                "state",
                // A PostgreSQL URL's password is never printed.
                self.state
                    .value
                    .as_deref()
                    .map_or(Value::Null, |s| json!(crate::state::redact_url(s))),
                &self.state.origin,
            ),
        ]
    }
}

static INSTALLED: std::sync::OnceLock<Settings> = std::sync::OnceLock::new();

/// The settings without command-line values, resolved once per run (see
/// [`install`]); a command's flags go over them with [`Settings::with_cli`].
pub fn get() -> &'static Settings {
    // Not installed (a library caller): resolved here; a broken rigger.toml
    // then counts as absent.
    INSTALLED.get_or_init(|| Settings::below_cli(None).unwrap_or_else(|_| Settings::defaults()))
}

/// Resolve the settings at the start of a command (`config`: the rigger.toml
/// `rigger check --config` names), so that a bad rigger.toml, environment
/// variable or ansible.cfg value stops it with a located error before
/// anything runs.
pub fn install(config: Option<&Path>) -> Result<&'static Settings, AppError> {
    let s = Settings::below_cli(config)?;
    Ok(INSTALLED.get_or_init(|| s))
}

impl Settings {
    /// Every setting at its default.
    fn defaults() -> Settings {
        fn d<T>(value: T) -> Setting<T> {
            Setting {
                value,
                origin: Origin::Default,
            }
        }
        Settings {
            file: None,
            ansible_cfg: None,
            inventory: d(default_inventory()),
            forks: d(50),
            remote_user: d(None),
            private_key_file: d(None),
            host_key_checking: d("strict".into()),
            roles_path: d(DEFAULT_ROLES_PATH.split(':').map(expand_home).collect()),
            collections_path: d(DEFAULT_COLLECTIONS_PATH.split(':').map(expand_home).collect()),
            vault_password_file: d(None),
            timeout: d(10),
            state: d(None),
        }
    }
}

/// Ansible's default inventory, else this machine.
fn default_inventory() -> Vec<String> {
    if Path::new("/etc/ansible/hosts").exists() {
        vec!["/etc/ansible/hosts".to_string()]
    } else {
        vec!["localhost,".to_string()]
    }
}

/// `rigger config dump`: every setting, its value and its origin; TOML
/// (pasteable into rigger.toml's `[defaults]`) or JSON.
pub fn dump(json_output: bool) -> Result<i32, AppError> {
    let s = get();
    if json_output {
        let mut m = serde_json::Map::new();
        for (name, value, origin) in s.entries() {
            m.insert(name.to_string(), json!({"value": value, "origin": origin.to_string()}));
        }
        let out = json!({
            "rigger_toml": s.file.as_ref().map(|p| p.display().to_string()),
            "ansible_cfg": s.ansible_cfg.as_ref().map(|p| p.display().to_string()),
            "settings": m,
        });
        stdoutln!("{}", serde_json::to_string_pretty(&out).unwrap_or_default());
        return Ok(0);
    }
    let shown = |p: &Option<PathBuf>| p.as_ref().map_or("(none)".to_string(), |p| p.display().to_string());
    stdoutln!("# precedence: command line > RIGGER_*/ANSIBLE_* environment > rigger.toml > ansible.cfg > default");
    stdoutln!("# rigger.toml: {}", shown(&s.file));
    stdoutln!("# ansible.cfg: {}", shown(&s.ansible_cfg));
    stdoutln!("[defaults]");
    for (name, value, origin) in s.entries() {
        match value {
            Value::Null => stdoutln!("# {name} = (not set)  # {origin}"),
            v => stdoutln!("{name} = {}  # {origin}", toml_of(&v)),
        }
    }
    Ok(0)
}

/// A JSON scalar or array of strings written as TOML.
fn toml_of(v: &Value) -> String {
    match v {
        Value::String(s) => toml_string(s),
        Value::Array(a) => format!("[{}]", a.iter().map(toml_of).collect::<Vec<_>>().join(", ")),
        other => other.to_string(),
    }
}

fn toml_string(s: &str) -> String {
    // JSON string escapes are valid TOML basic-string escapes.
    serde_json::to_string(s).unwrap_or_default()
}

fn line_col(text: &str, offset: usize) -> (u32, u32) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() as u32 + 1;
    let col = before.rsplit('\n').next().map(|l| l.chars().count()).unwrap_or(0) as u32 + 1;
    (line, col)
}

/// The lint settings of `.rigger-lint.toml` and rigger.toml's `[lint]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LintTable {
    /// Rules not checked (rigger or ansible-lint ids).
    #[serde(default)]
    pub skip: Vec<toml::Spanned<String>>,
    /// Rules whose findings are warnings (exit 0).
    #[serde(default)]
    pub warn: Vec<toml::Spanned<String>>,
}
