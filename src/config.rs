//! The configuration layer: turns parsed CLI arguments into the plain
//! values a run needs (run options, the inventory, tag lists, extra vars),
//! with the usage errors of those arguments. The commands (`app`) and
//! `rigger check` both build their runs through here.

use std::io::IsTerminal;
use std::path::Path;
use std::time::Duration;

use serde_json::{Map, Value};

use crate::cli::TargetArgs;
use crate::error::{AppError, LocError};
use crate::exec::conn_pool::ConnDefaults;
use crate::exec::runner::RunOptions;
use crate::inventory::{Inventory, UnparsedPolicy};
use crate::yaml::Loc;

/// Parse `-e` values: `k=v k2=v2`, a YAML/JSON mapping, or `@file`.
pub fn parse_extra_vars(items: &[String]) -> Result<Map<String, Value>, AppError> {
    let mut out = Map::new();
    for item in items {
        let item = item.trim();
        if let Some(file) = item.strip_prefix('@') {
            let n = crate::yaml::load_file(Path::new(file))?;
            match n.to_json() {
                Value::Object(m) => out.extend(m),
                Value::Null => {}
                _ => return Err(LocError::new(n.loc, "extra vars file must be a mapping").into()),
            }
        } else if item.starts_with('{') || item.starts_with("---") {
            let n = crate::yaml::parse_one(item, "<extra vars>")?;
            match n.to_json() {
                Value::Object(m) => out.extend(m),
                _ => return Err(AppError::Usage(format!("-e {item}: expected a mapping"))),
            }
        } else {
            let loc = Loc::synthetic("<extra vars>");
            for (k, v) in crate::modules::args::parse_kv(item, false, &loc)? {
                out.insert(k, Value::String(v));
            }
        }
    }
    Ok(out)
}

/// The inventory sources of a run: the `-i` values, or the `inventory`
/// setting ([`crate::settings`]).
pub fn inventory_sources(sources: &[String]) -> Vec<String> {
    if !sources.is_empty() {
        sources.to_vec()
    } else {
        crate::settings::get().inventory.value.clone()
    }
}

/// The settings the target flags give ([`crate::settings::Settings::with_cli`]).
pub fn cli_values(t: &TargetArgs) -> crate::settings::CliValues {
    crate::settings::CliValues {
        inventory: t.inventory.clone(),
        forks: t.forks,
        remote_user: t.user.clone(),
        private_key_file: t.private_key.clone(),
        host_key_checking: t.host_key_checking.clone(),
        timeout: t.timeout,
        vault_password_file: None,
    }
}

/// Ansible's `unfrackpath(source, follow=False)`: `~` expanded, made
/// absolute against the working directory, `.`/`..` resolved lexically.
fn absolute_source(s: &str) -> String {
    let expanded = match (s.strip_prefix("~/"), std::env::var_os("HOME")) {
        (Some(rest), Some(home)) => Path::new(&home).join(rest),
        _ => Path::new(s).to_path_buf(),
    };
    let joined = std::env::current_dir().map(|d| d.join(&expanded)).unwrap_or(expanded);
    let mut out = std::path::PathBuf::new();
    for c in joined.components() {
        match c {
            std::path::Component::ParentDir => {
                out.pop();
            }
            std::path::Component::CurDir => {}
            other => out.push(other),
        }
    }
    out.display().to_string()
}

/// The inventory of a run, loaded from its `-i` sources as Ansible loads
/// them: a source that cannot be parsed is a warning (printed here, with
/// its location), unless ansible.cfg or the environment make it an error
/// (see [`UnparsedPolicy::from_config`]).
pub fn load_inventory(sources: &[String]) -> Result<Inventory, AppError> {
    let policy = UnparsedPolicy::from_config()?;
    let mut inv = Inventory::load_with(&inventory_sources(sources), policy)?;
    for w in std::mem::take(&mut inv.warnings) {
        let hint = w.hint.as_deref().map(|h| format!(" (hint: {h})")).unwrap_or_default();
        if w.loc.is_synthetic() {
            stderrln!("[WARNING]: {}{hint}", w.msg);
        } else {
            stderrln!("[WARNING]: {}: {}{hint}", w.loc, w.msg);
        }
    }
    Ok(inv)
}

fn become_password(t: &TargetArgs) -> Result<Option<String>, AppError> {
    if let Ok(p) = std::env::var("RIGGER_BECOME_PASSWORD") {
        return Ok(Some(p));
    }
    if !t.ask_become_pass {
        return Ok(None);
    }
    if !std::io::stdin().is_terminal() {
        return Err(AppError::Usage(
            "-K needs a terminal to ask for the password; set RIGGER_BECOME_PASSWORD or ansible_become_password instead".into(),
        ));
    }
    let password = crate::prompt::ask("BECOME password: ", true)
        .map_err(|e| AppError::Other(format!("cannot read the password: {e}")))?;
    Ok(Some(password))
}

/// The options of a run from the target arguments shared by `run`, `adhoc`
/// and `check`.
pub fn run_options(t: &TargetArgs, verbosity: u8, task_timeout: u64) -> Result<RunOptions, AppError> {
    let s = crate::settings::get().with_cli(&cli_values(t))?;
    // Normalized by the settings (ANSIBLE_HOST_KEY_CHECKING=False is "off").
    let host_key_checking = s
        .host_key_checking
        .value
        .parse()
        .map_err(|e: crate::connection::UnknownHostKeyChecking| AppError::Usage(e.to_string()))?;
    if let Some(m) = &t.become_method {
        m.parse::<crate::connection::BecomeMethod>()
            .map_err(|e| AppError::Usage(e.to_string()))?;
    }
    if let Some(c) = &t.connection {
        if !matches!(c.as_str(), "ssh" | "local" | "smart") {
            return Err(AppError::Usage(format!(
                "unsupported connection `{c}` (use ssh or local)"
            )));
        }
    }
    Ok(RunOptions {
        inventory_sources: s
            .inventory
            .value
            .iter()
            .cloned()
            .map(|s| if s.contains(',') { s } else { absolute_source(&s) })
            .collect(),
        max_output: max_output(&t.max_output)?,
        forks: s.forks.value.max(1),
        check: t.check,
        diff: t.diff,
        limit: match &t.limit {
            Some(l) => read_limit(l)?,
            None => None,
        },
        shard: t.shard,
        extra_vars: parse_extra_vars(&t.extra_vars)?,
        task_timeout: (task_timeout > 0).then(|| Duration::from_secs(task_timeout)),
        run_timeout: t.run_timeout,
        become_: t.become_.then_some(true),
        become_user: t.become_user.clone(),
        become_method: t.become_method.clone(),
        become_password: become_password(t)?,
        verbosity,
        conn: ConnDefaults {
            user: s.remote_user.value.clone(),
            private_key: s.private_key_file.value.clone(),
            host_key_checking,
            known_hosts: t.known_hosts.clone(),
            connect_timeout: Duration::from_secs(s.timeout.value.max(1)),
            connect_retries: connect_retries(t)?,
            connection: t.connection.clone(),
            ..Default::default()
        },
        ..Default::default()
    })
}

/// `--retries`/`ANSIBLE_SSH_RETRIES`, else ansible.cfg's `[ssh_connection]
/// retries`, else 0.
fn connect_retries(t: &TargetArgs) -> Result<u32, AppError> {
    if let Some(n) = t.retries {
        return Ok(n);
    }
    match crate::ansible_cfg::value("ssh_connection", "retries") {
        Some(v) => v.trim().parse().map_err(|_| {
            AppError::Usage(format!(
                "ansible.cfg: [ssh_connection] retries must be a whole number, not `{v}`"
            ))
        }),
        None => Ok(0),
    }
}

/// `--max-output SIZE` in bytes: a size of at least one byte.
fn max_output(given: &str) -> Result<usize, AppError> {
    let n = crate::size::parse_size(given)
        .map_err(|e| AppError::Usage(format!("--max-output (RIGGER_MAX_OUTPUT): {e}")))?;
    match usize::try_from(n) {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(AppError::Usage(format!(
            "--max-output (RIGGER_MAX_OUTPUT): `{given}` is not a size of at least one byte"
        ))),
    }
}

/// `--limit @file` reads one pattern per line.
/// `--limit`: a pattern, or `@file` with one pattern per line (Ansible's
/// `subset`). An empty file limits nothing.
fn read_limit(l: &str) -> Result<Option<String>, AppError> {
    match l.strip_prefix('@') {
        Some(f) => {
            let path = Path::new(f);
            if path.is_dir() {
                return Err(AppError::Usage(format!(
                    "Limit starting with \"@\" must be a file, not a directory: {f}"
                )));
            }
            if !path.exists() {
                return Err(AppError::Usage(format!("Unable to find limit file {f}")));
            }
            let text = std::fs::read_to_string(f).map_err(|e| AppError::Usage(format!("--limit @{f}: {e}")))?;
            let patterns: Vec<&str> = text.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
            Ok((!patterns.is_empty()).then(|| patterns.join(":")))
        }
        None => Ok(Some(l.to_string())),
    }
}

/// The tag names of `--tags a,b` (trimmed): `--tags ''` or `--tags ,` is a
/// usage error rather than a run in which no task matches.
pub fn tag_list(flag: &str, given: &[String]) -> Result<Vec<String>, AppError> {
    let tags: Vec<String> = given
        .iter()
        .map(|t| t.trim())
        .filter(|t| !t.is_empty())
        .map(str::to_string)
        .collect();
    if tags.is_empty() && !given.is_empty() {
        return Err(AppError::Usage(format!(
            "{flag} needs at least one tag name (e.g. {flag} web,db)"
        )));
    }
    Ok(tags)
}

/// A usage error unless `p` is a playbook file (a directory is named as such).
pub fn playbook_exists(p: &Path) -> Result<(), AppError> {
    if p.is_file() {
        return Ok(());
    }
    Err(AppError::Usage(if p.is_dir() {
        format!(
            "the playbook {} is a directory; give the playbook file in it",
            p.display()
        )
    } else {
        format!("the playbook {} could not be found", p.display())
    }))
}
