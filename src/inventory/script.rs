//! Dynamic inventory scripts: an executable run with `--list` that prints
//! `{"group": {"hosts": [..], "vars": {..}, "children": [..]}, "_meta":
//! {"hostvars": {..}}}`. Without `_meta.hostvars` the script is called again
//! with `--host NAME` for each host.

use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use indexmap::IndexSet;
use serde_json::{Map, Value};

use super::model::Inventory;
use crate::error::LocError;
use crate::yaml::Loc;

pub fn load(inv: &mut Inventory, path: &Path) -> Result<(), LocError> {
    let name = path.display().to_string();
    let loc = Loc::synthetic(&name);
    let (data, stderr) = run_json(path, &["--list"], &loc)?;
    // Ansible's script plugin shows a successful `--list`'s stderr as an
    // error line unless `always_show_stderr` is off.
    if !stderr.is_empty() && always_show_stderr(&loc)? {
        stderr!("[ERROR]: {}", String::from_utf8_lossy(&stderr));
        if !stderr.ends_with(b"\n") {
            stderrln!();
        }
    }
    from_output(inv, data, &loc, |host| {
        run_json(path, &["--host", host], &loc).map(|(v, _)| v)
    })
}

/// The script plugin's `always_show_stderr` option (default true):
/// ANSIBLE_INVENTORY_PLUGIN_SCRIPT_STDERR, else ansible.cfg's
/// `[inventory_plugin_script] always_show_stderr`.
fn always_show_stderr(loc: &Loc) -> Result<bool, LocError> {
    let (raw, origin) = match std::env::var("ANSIBLE_INVENTORY_PLUGIN_SCRIPT_STDERR") {
        Ok(v) => (v, "ANSIBLE_INVENTORY_PLUGIN_SCRIPT_STDERR"),
        Err(_) => match crate::ansible_cfg::value("inventory_plugin_script", "always_show_stderr") {
            Some(v) => (v, "ansible.cfg [inventory_plugin_script] always_show_stderr"),
            None => return Ok(true),
        },
    };
    crate::kv::parse_bool(&raw).ok_or_else(|| {
        LocError::new(loc.clone(), format!("{origin} is `{raw}`, not a boolean"))
            .with_hint("use true/false, yes/no, on/off or 1/0")
    })
}

/// Add what a script printed for `--list` (`data`) to `inv`; `host_vars`
/// asks the script for a host's variables when `_meta.hostvars` is missing.
pub(super) fn from_output(
    inv: &mut Inventory,
    data: Value,
    loc: &Loc,
    mut host_vars: impl FnMut(&str) -> Result<Value, LocError>,
) -> Result<(), LocError> {
    let Value::Object(groups) = data else {
        return Err(
            LocError::new(loc.clone(), "inventory script output for --list must be a JSON object")
                .with_hint("print {\"group\": {\"hosts\": [...]}, \"_meta\": {\"hostvars\": {}}}"),
        );
    };
    let mut meta: Option<Map<String, Value>> = None;
    let mut seen_hosts: IndexSet<String> = IndexSet::new();
    for (group, mut gdata) in groups {
        if group == "_meta" {
            // Taken, not copied: a large fleet's hostvars are most of the output.
            if let Some(hv) = gdata.as_object_mut().and_then(|m| m.remove("hostvars")) {
                match hv {
                    Value::Object(m) => meta = Some(m),
                    _ => {
                        return Err(LocError::new(
                            loc.clone(),
                            "`_meta.hostvars` must be an object of host -> vars",
                        ))
                    }
                }
            }
            continue;
        }
        parse_group(inv, &group, &gdata, &mut seen_hosts, loc)?;
    }
    for host in seen_hosts {
        let vars = match &mut meta {
            Some(m) => m.remove(&host).unwrap_or(Value::Object(Map::new())),
            None => host_vars(&host)?,
        };
        let Value::Object(vars) = vars else {
            return Err(LocError::new(
                loc.clone(),
                format!("variables of host `{host}` must be a JSON object"),
            ));
        };
        for (k, v) in vars {
            super::conn_vars::check_source(&k, &v)
                .map_err(|m| LocError::new(loc.clone(), format!("host `{host}`: {m}")))?;
            inv.set_host_var(&host, &k, v);
        }
    }
    Ok(())
}

fn parse_group(
    inv: &mut Inventory,
    group: &str,
    data: &Value,
    seen_hosts: &mut IndexSet<String>,
    loc: &Loc,
) -> Result<(), LocError> {
    inv.ensure_group(group);
    let bad = |what: &str| LocError::new(loc.clone(), format!("group `{group}` has invalid {what}: {data}"));
    let simplified_hosts = Value::Array(vec![Value::String(group.to_string())]);
    let (hosts, vars, children) = match data {
        // `"group": ["h1", "h2"]`
        Value::Array(_) => (Some(data), None, None),
        // Ansible's simplified form: a host named like the group, with these vars.
        Value::Object(m) if !["hosts", "vars", "children"].iter().any(|k| m.contains_key(*k)) => {
            (Some(&simplified_hosts), Some(data), None)
        }
        Value::Object(m) => (m.get("hosts"), m.get("vars"), m.get("children")),
        _ => return Err(bad("data")),
    };
    if let Some(h) = hosts {
        let Value::Array(list) = h else {
            return Err(bad("host list"));
        };
        for host in list {
            let Value::String(host) = host else {
                return Err(bad("host list"));
            };
            seen_hosts.insert(host.clone());
            inv.add_host_to(host, Some(group));
        }
    }
    if let Some(v) = vars {
        let Value::Object(vars) = v else {
            return Err(bad("variables"));
        };
        for (k, v) in vars {
            super::conn_vars::check_source(k, v)
                .map_err(|m| LocError::new(loc.clone(), format!("group `{group}`: {m}")))?;
            inv.set_group_var(group, k, v.clone())
                .map_err(|m| LocError::new(loc.clone(), m.to_string()))?;
        }
    }
    if let Some(c) = children {
        let Value::Array(list) = c else {
            return Err(bad("children"));
        };
        for child in list {
            let Value::String(child) = child else {
                return Err(bad("children"));
            };
            inv.add_child(group, child)
                .map_err(|m| LocError::new(loc.clone(), m.to_string()))?;
        }
    }
    Ok(())
}

/// Default of `RIGGER_INVENTORY_SCRIPT_TIMEOUT`, in seconds.
const DEFAULT_TIMEOUT_SECS: u64 = 60;
/// Default of `RIGGER_INVENTORY_SCRIPT_MAX_OUTPUT`.
const DEFAULT_MAX_OUTPUT: u64 = 64 << 20;
/// What is kept of a script's stderr for the error message.
const STDERR_KEPT: usize = 64 << 10;

/// How long an inventory script may run and how much it may print on
/// stdout: a hung or runaway script (a cloud API that never answers) must
/// not hang or exhaust the controller.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Limits {
    /// `None`: no limit (`RIGGER_INVENTORY_SCRIPT_TIMEOUT=0`).
    timeout: Option<Duration>,
    max_output: u64,
}

/// An unusable limit in the environment; each keeps the value as given.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
enum LimitsError {
    #[error("RIGGER_INVENTORY_SCRIPT_TIMEOUT=`{0}` is not a number of seconds (0 = no limit)")]
    Timeout(String),
    #[error("RIGGER_INVENTORY_SCRIPT_MAX_OUTPUT=`{0}` is not a size like 64M or 1G")]
    MaxOutput(String),
}

impl Limits {
    fn from_env(loc: &Loc) -> Result<Limits, LocError> {
        Self::parse(
            std::env::var("RIGGER_INVENTORY_SCRIPT_TIMEOUT").ok().as_deref(),
            std::env::var("RIGGER_INVENTORY_SCRIPT_MAX_OUTPUT").ok().as_deref(),
        )
        .map_err(|e| LocError::new(loc.clone(), e.to_string()))
    }

    fn parse(timeout: Option<&str>, max_output: Option<&str>) -> Result<Limits, LimitsError> {
        let secs = match timeout.map(str::trim).filter(|s| !s.is_empty()) {
            None => DEFAULT_TIMEOUT_SECS as f64,
            Some(t) => t
                .parse::<f64>()
                .ok()
                .filter(|n| n.is_finite() && *n >= 0.0)
                .ok_or_else(|| LimitsError::Timeout(t.to_string()))?,
        };
        let max_output = match max_output.map(str::trim).filter(|s| !s.is_empty()) {
            None => DEFAULT_MAX_OUTPUT,
            Some(m) => crate::size::parse_size(m)
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| LimitsError::MaxOutput(m.to_string()))?,
        };
        Ok(Limits {
            timeout: (secs > 0.0).then(|| Duration::from_secs_f64(secs)),
            max_output,
        })
    }
}

/// Read at most `max` bytes of `pipe`; `Err` when it has more.
fn read_capped(mut pipe: impl Read, max: u64) -> Result<Vec<u8>, ()> {
    let mut out = Vec::new();
    let n = (&mut pipe).take(max + 1).read_to_end(&mut out).unwrap_or(0);
    if n as u64 > max {
        return Err(());
    }
    Ok(out)
}

/// The first [`STDERR_KEPT`] bytes of `pipe`; the rest is read and dropped
/// so that the script never blocks on a full pipe.
fn read_head(mut pipe: impl Read) -> Vec<u8> {
    let mut out = Vec::new();
    let _ = (&mut pipe).take(STDERR_KEPT as u64).read_to_end(&mut out);
    let _ = std::io::copy(&mut pipe, &mut std::io::sink());
    out
}

/// Kill the script and everything it started (its own process group).
fn kill_group(child: &mut Child) {
    if let Ok(pgid) = i32::try_from(child.id()) {
        // SAFETY: killpg has no memory effects; the group is the script's own
        // (process_group(0) at spawn), so nothing else is signalled.
        unsafe {
            libc::killpg(pgid, libc::SIGKILL);
        }
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// What the script printed on stdout, parsed, and the head of its stderr.
fn run_json(path: &Path, args: &[&str], loc: &Loc) -> Result<(Value, Vec<u8>), LocError> {
    let limits = Limits::from_env(loc)?;
    let shown = args.join(" ");
    // A bare name (`-i hosts.sh`) is a file in the current directory, not a
    // program to look up in PATH.
    let path = if path.parent().is_some_and(|d| d.as_os_str().is_empty()) {
        Path::new(".").join(path)
    } else {
        path.to_path_buf()
    };
    let mut child = Command::new(&path)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // Its own process group: a timeout kills what it started too.
        .process_group(0)
        .spawn()
        .map_err(|e| {
            LocError::new(loc.clone(), format!("cannot run inventory script: {e}"))
                .with_hint("check the script's #! line, or remove its executable bit if it is a static inventory")
        })?;
    let max = limits.max_output;
    let stdout = child
        .stdout
        .take()
        .map(|p| std::thread::spawn(move || read_capped(p, max)));
    let stderr = child.stderr.take().map(|p| std::thread::spawn(move || read_head(p)));
    let deadline = limits.timeout.map(|t| Instant::now() + t);
    let timed_out = |child: &mut Child| {
        kill_group(child);
        let secs = limits.timeout.map(|t| t.as_secs_f64()).unwrap_or(0.0);
        LocError::new(
            loc.clone(),
            format!("inventory script did not finish `{shown}` within {secs} s; killed it and its process group"),
        )
        .with_hint(
            "make the script answer faster (cache its data), or raise RIGGER_INVENTORY_SCRIPT_TIMEOUT \
             (seconds; 0 = no limit)",
        )
    };
    let past_deadline = || deadline.is_some_and(|d| Instant::now() >= d);
    // First its whole stdout (or the limit), then its exit and stderr.
    while stdout.as_ref().is_some_and(|h| !h.is_finished()) {
        if past_deadline() {
            return Err(timed_out(&mut child));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let out = match stdout.map(|h| h.join()) {
        Some(Ok(Ok(out))) => out,
        Some(Ok(Err(()))) => {
            kill_group(&mut child);
            return Err(too_much(loc, &shown, max));
        }
        Some(Err(_)) | None => Vec::new(),
    };
    let status = loop {
        let status = child.try_wait().map_err(|e| {
            LocError::new(
                loc.clone(),
                format!("waiting for the inventory script (`{shown}`): {e}"),
            )
        })?;
        match status {
            Some(s) if stderr.as_ref().is_none_or(|h| h.is_finished()) => break s,
            _ if past_deadline() => return Err(timed_out(&mut child)),
            _ => std::thread::sleep(Duration::from_millis(10)),
        }
    };
    let err = stderr.and_then(|h| h.join().ok()).unwrap_or_default();
    if !status.success() {
        let stderr = String::from_utf8_lossy(&err);
        return Err(LocError::new(
            loc.clone(),
            format!("inventory script failed ({status}) for `{shown}`: {}", stderr.trim()),
        ));
    }
    let data = serde_json::from_slice(&out).map_err(|e| {
        LocError::new(
            loc.clone(),
            format!(
                "inventory script printed invalid JSON for `{shown}` (output line {}, column {}): {e}",
                e.line(),
                e.column()
            ),
        )
        .with_hint("an executable file is run as a dynamic inventory script; chmod -x a static inventory")
    })?;
    Ok((data, err))
}

fn too_much(loc: &Loc, shown: &str, max: u64) -> LocError {
    LocError::new(
        loc.clone(),
        format!("inventory script printed more than {max} bytes for `{shown}`; stopped reading and killed it"),
    )
    .with_hint("raise RIGGER_INVENTORY_SCRIPT_MAX_OUTPUT (a size like 256M) if the inventory is really that large")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_default_and_from_values() {
        let d = Limits::parse(None, None).unwrap();
        assert_eq!(d.timeout, Some(Duration::from_secs(60)));
        assert_eq!(d.max_output, 64 << 20);
        let l = Limits::parse(Some("0.5"), Some("1K")).unwrap();
        assert_eq!(l.timeout, Some(Duration::from_millis(500)));
        assert_eq!(l.max_output, 1024);
        assert_eq!(Limits::parse(Some("0"), None).unwrap().timeout, None);
        assert!(Limits::parse(Some("soon"), None)
            .unwrap_err()
            .to_string()
            .contains("RIGGER_INVENTORY_SCRIPT_TIMEOUT"));
        assert_eq!(
            Limits::parse(None, Some("lots")).unwrap_err(),
            LimitsError::MaxOutput("lots".into())
        );
        assert!(Limits::parse(None, Some("lots"))
            .unwrap_err()
            .to_string()
            .contains("RIGGER_INVENTORY_SCRIPT_MAX_OUTPUT"));
    }
}
