//! One connection per host for the whole run, opened on first use.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Map, Value};
use tokio::sync::OnceCell;

use crate::connection::local::LocalConnection;
use crate::connection::ssh::SshConnection;
use crate::connection::ssh_config::{apply_ssh_config, ExplicitFields};
use crate::connection::{ConnError, Connection, HostKeyChecking, SshTarget};

/// Connection settings from the command line; inventory variables override them.
#[derive(Debug, Clone)]
pub struct ConnDefaults {
    pub user: Option<String>,
    pub private_key: Option<PathBuf>,
    pub host_key_checking: HostKeyChecking,
    pub known_hosts: Option<PathBuf>,
    pub ssh_config: Option<PathBuf>,
    pub connect_timeout: Duration,
    /// Connection setups tried again after a transient failure (`--retries`);
    /// a host's `ansible_ssh_retries` overrides it.
    pub connect_retries: u32,
    pub password: Option<String>,
    pub key_passphrase: Option<String>,
    /// `local` forces the local connection for every host (`-c local`).
    pub connection: Option<String>,
    /// Run commands through one persistent shell per host (see
    /// [`SshTarget::pipelining`]); `ansible_pipelining` overrides it per host.
    /// The default comes from `RIGGER_PIPELINING` (`1`/`0`).
    pub pipelining: bool,
    /// Upload over SFTP where possible ([`SshTarget::sftp`]); from
    /// `RIGGER_SFTP` (`1`/`0`, default on); `ansible_ssh_transfer_method`
    /// overrides it per host.
    pub sftp: bool,
}

impl Default for ConnDefaults {
    fn default() -> Self {
        ConnDefaults {
            user: None,
            private_key: None,
            host_key_checking: HostKeyChecking::Strict,
            known_hosts: None,
            ssh_config: None,
            connect_timeout: Duration::from_secs(10),
            connect_retries: 0,
            password: None,
            key_passphrase: None,
            connection: None,
            pipelining: std::env::var("RIGGER_PIPELINING")
                .ok()
                .and_then(|v| parse_bool(&v))
                .unwrap_or(DEFAULT_PIPELINING),
            sftp: std::env::var("RIGGER_SFTP")
                .ok()
                .and_then(|v| parse_bool(&v))
                .unwrap_or(true),
        }
    }
}

/// The pause before connection attempt `attempt + 2`, as Ansible's ssh
/// plugin waits between its `retries`: 0, 1, 3, 7, 15, then 30 seconds.
fn retry_pause(attempt: u32) -> Duration {
    Duration::from_secs(((1u64 << attempt.min(5)) - 1).min(30))
}

/// Whether commands go through a persistent shell unless told otherwise.
pub const DEFAULT_PIPELINING: bool = true;

fn parse_bool(v: &str) -> Option<bool> {
    match v.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Some(true),
        "0" | "false" | "no" | "off" | "" => Some(false),
        _ => None,
    }
}

type Slot = Arc<OnceCell<Result<Arc<dyn Connection>, ConnError>>>;

/// Connections by host name. Concurrent first uses of a host share one connect.
pub struct ConnPool {
    defaults: ConnDefaults,
    slots: Mutex<HashMap<String, Slot>>,
}

impl ConnPool {
    pub fn new(defaults: ConnDefaults) -> Self {
        ConnPool {
            defaults,
            slots: Mutex::new(HashMap::new()),
        }
    }

    /// The connection for `host`, whose variables are `vars`.
    pub async fn get(&self, host: &str, vars: &Map<String, Value>) -> Result<Arc<dyn Connection>, ConnError> {
        let slot = {
            let mut slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
            slots.entry(host.to_string()).or_default().clone()
        };
        // Boxed: connecting (key exchange, authentication, jump hosts) takes
        // a large future, needed once per host; inline, every task of every
        // host would carry its space for the whole run.
        slot.get_or_init(|| Box::pin(self.connect(host, vars))).await.clone()
    }

    /// Drop what every connection learnt by a check-mode prefetch
    /// ([`crate::modules::host::prefetch`]).
    pub fn forget_prefetched(&self) {
        let slots: Vec<Slot> = self
            .slots
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .cloned()
            .collect();
        for slot in slots {
            if let Some(Ok(conn)) = slot.get() {
                if let Some(m) = conn.memo() {
                    m.clear_prefix(crate::modules::host::prefetch::PREFIX);
                }
            }
        }
    }

    /// Forget a host's connection (after `reboot`, or a dropped link) so the next use reconnects.
    pub fn reset(&self, host: &str) {
        self.slots.lock().unwrap_or_else(|p| p.into_inner()).remove(host);
    }

    async fn connect(&self, host: &str, vars: &Map<String, Value>) -> Result<Arc<dyn Connection>, ConnError> {
        let kind = var_str(vars, "ansible_connection").or_else(|| self.defaults.connection.clone());
        let implicit_local = host == "localhost" && !vars.contains_key("ansible_host") && kind.is_none();
        if kind.as_deref() == Some("local") || implicit_local {
            tracing::debug!(host, "local connection");
            return Ok(Arc::new(LocalConnection::new(host)));
        }
        if let Some(k) = kind.as_deref() {
            if !matches!(k, "ssh" | "smart" | "paramiko") {
                return Err(ConnError::Connect {
                    addr: host.to_string(),
                    reason: format!("unsupported connection type `{k}`"),
                });
            }
        }
        let target = self.target_for(host, vars)?;
        let retries = match var_str(vars, "ansible_ssh_retries") {
            Some(n) => n.trim().parse().map_err(|_| ConnError::Connect {
                addr: target.address.clone(),
                reason: format!("invalid ansible_ssh_retries `{n}`"),
            })?,
            None => self.defaults.connect_retries,
        };
        let mut attempt = 0u32;
        loop {
            match SshConnection::connect(&target).await {
                Ok(conn) => return Ok(Arc::new(conn)),
                Err(e) if attempt < retries && e.is_transient() => {
                    let pause = retry_pause(attempt);
                    attempt += 1;
                    tracing::info!(host, attempt, of = retries, pause_s = pause.as_secs(), error = %e, "connecting again");
                    tokio::time::sleep(pause).await;
                }
                Err(e) if attempt > 0 => return Err(e.after_attempts(attempt + 1)),
                Err(e) => return Err(e),
            }
        }
    }

    /// Build the SSH target of a host from its variables and the defaults.
    pub fn target_for(&self, host: &str, vars: &Map<String, Value>) -> Result<SshTarget, ConnError> {
        let mut explicit = ExplicitFields::default();
        // `ansible_host` equal to the inventory name (tasks see it defaulted
        // to that name, as in Ansible) is no address of its own: ~/.ssh/config's
        // HostName applies to it, as `ssh NAME` would apply it.
        let address = match var_str(vars, "ansible_host").or_else(|| var_str(vars, "ansible_ssh_host")) {
            Some(a) if a != host => {
                explicit.address = true;
                a
            }
            _ => host.to_string(),
        };
        let mut t = SshTarget::new(host, &address);
        if let Some(p) = var_str(vars, "ansible_port").or_else(|| var_str(vars, "ansible_ssh_port")) {
            t.port = p.parse().map_err(|_| ConnError::Connect {
                addr: address.clone(),
                reason: format!("invalid ansible_port `{p}`"),
            })?;
            explicit.port = true;
        }
        if let Some(u) = var_str(vars, "ansible_user")
            .or_else(|| var_str(vars, "ansible_ssh_user"))
            .or_else(|| self.defaults.user.clone())
        {
            t.user = u;
            explicit.user = true;
        }
        if let Some(k) =
            var_str(vars, "ansible_ssh_private_key_file").or_else(|| var_str(vars, "ansible_private_key_file"))
        {
            t.identity_files = vec![expand_tilde(&k)];
            explicit.identity_files = true;
        } else if let Some(k) = &self.defaults.private_key {
            t.identity_files = vec![k.clone()];
            explicit.identity_files = true;
        }
        t.password = var_str(vars, "ansible_password")
            .or_else(|| var_str(vars, "ansible_ssh_pass"))
            .or_else(|| self.defaults.password.clone());
        t.key_passphrase =
            var_str(vars, "ansible_ssh_private_key_passphrase").or_else(|| self.defaults.key_passphrase.clone());
        // The CLI default is strict; only an explicit setting overrides ssh_config.
        t.host_key_checking = self.defaults.host_key_checking;
        explicit.host_key_checking = self.defaults.host_key_checking != HostKeyChecking::Strict;
        if let Some(v) =
            var_str(vars, "ansible_host_key_checking").or_else(|| var_str(vars, "ansible_ssh_host_key_checking"))
        {
            t.host_key_checking = match v.to_ascii_lowercase().as_str() {
                "false" | "no" => HostKeyChecking::Off,
                "true" | "yes" => HostKeyChecking::Strict,
                other => other
                    .parse()
                    .map_err(|e: crate::connection::UnknownHostKeyChecking| ConnError::Connect {
                        addr: address.clone(),
                        reason: e.to_string(),
                    })?,
            };
            explicit.host_key_checking = true;
        }
        if let Some(kh) = &self.defaults.known_hosts {
            t.known_hosts = vec![kh.clone()];
            explicit.known_hosts = true;
        }
        if let Some(kh) = var_str(vars, "ansible_ssh_known_hosts_file") {
            t.known_hosts = vec![expand_tilde(&kh)];
            explicit.known_hosts = true;
        }
        t.pipelining = var_str(vars, "ansible_pipelining")
            .or_else(|| var_str(vars, "ansible_ssh_pipelining"))
            .and_then(|v| parse_bool(&v))
            .unwrap_or(self.defaults.pipelining);
        // Ansible's `ssh_transfer_method`: `piped` sends files through the
        // shell; sftp, scp and smart let rigger use SFTP where it can.
        t.sftp = match var_str(vars, "ansible_ssh_transfer_method") {
            Some(m) => m.trim() != "piped",
            None => self.defaults.sftp,
        };
        t.connect_timeout = self.defaults.connect_timeout;
        if let Some(s) = var_str(vars, "ansible_ssh_timeout").or_else(|| var_str(vars, "ansible_timeout")) {
            t.connect_timeout = Duration::from_secs(s.trim().parse().map_err(|_| ConnError::Connect {
                addr: address.clone(),
                reason: format!("invalid ansible_timeout `{s}`"),
            })?);
            explicit.connect_timeout = true;
        }
        // OpenSSH options given the Ansible way, in the order Ansible puts
        // them on ssh's command line: ssh_args, common args, extra args.
        let ssh_args =
            var_str(vars, "ansible_ssh_args").or_else(|| crate::ansible_cfg::value("ssh_connection", "ssh_args"));
        let args: Vec<String> = ssh_args
            .into_iter()
            .chain(
                ["ansible_ssh_common_args", "ansible_ssh_extra_args"]
                    .iter()
                    .filter_map(|k| var_str(vars, k)),
            )
            .collect();
        let args = args.join(" ");
        if !args.trim().is_empty() {
            apply_ssh_args(&mut t, &mut explicit, &args).map_err(|reason| ConnError::Connect {
                addr: address.clone(),
                reason,
            })?;
            // Bastions: `-o ProxyJump=user@bastion:22` or `-J ...`.
            if let Some(spec) = proxy_jump_arg(&args) {
                for hop in spec.split(',').filter(|h| !h.is_empty()) {
                    let mut j = parse_jump(hop, &t);
                    j.host_key_checking = t.host_key_checking;
                    t.jump_hosts.push(j);
                }
                explicit.jump_hosts = true;
            }
        }
        // ~/.ssh/config fills what the inventory did not set, as with OpenSSH.
        let cfg = self
            .defaults
            .ssh_config
            .clone()
            .or_else(|| crate::connection::home_dir().map(|h| h.join(".ssh/config")));
        if let Some(cfg) = cfg {
            apply_ssh_config(&mut t, &cfg, &explicit)?;
        }
        Ok(t)
    }
}

/// `RIGGER_DEBUG_ROUNDTRIPS=1`: at the end of a run, one line per host on
/// stderr with the SSH channels (remote processes) the run opened on it.
impl Drop for ConnPool {
    fn drop(&mut self) {
        if std::env::var_os("RIGGER_DEBUG_ROUNDTRIPS").is_none_or(|v| v.is_empty() || v == "0") {
            return;
        }
        let slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
        let mut lines: Vec<(String, usize, usize)> = slots
            .iter()
            .filter_map(|(host, slot)| match slot.get() {
                Some(Ok(conn)) => Some((host.clone(), conn.channels_opened(), conn.commands_run())),
                _ => None,
            })
            .collect();
        lines.sort();
        for (host, n, c) in lines {
            stderrln!("rigger-roundtrips: host={host} channels={n} commands={c}");
        }
    }
}

/// The `-o Key=Value` (or `-oKey=Value`, `-o "Key Value"`), `-p`, `-l`
/// and `-i` options of an ssh command line, applied to `t` as the ssh
/// client would. OpenSSH takes the first value given for an option, so an
/// option seen twice keeps its first value. Options of OpenSSH that rigger's
/// SSH client has no use for (connection sharing, compression, logging) are
/// dropped; any other is reported once with a warning naming it, as it
/// changes nothing.
fn apply_ssh_args(t: &mut SshTarget, explicit: &mut ExplicitFields, args: &str) -> Result<(), String> {
    let words = shlex::split(args).ok_or_else(|| format!("unbalanced quotes in ssh arguments `{args}`"))?;
    let mut seen: std::collections::HashSet<String> = std::collections::HashSet::new();
    let mut known_hosts: Vec<PathBuf> = Vec::new();
    let mut it = words.iter();
    while let Some(w) = it.next() {
        let (key, value) = match w.as_str() {
            "-o" => {
                let o = it.next().ok_or("`-o` without an option")?;
                split_ssh_option(o)
            }
            "-p" => ("port".to_string(), it.next().cloned().unwrap_or_default()),
            "-l" => ("user".to_string(), it.next().cloned().unwrap_or_default()),
            "-i" => ("identityfile".to_string(), it.next().cloned().unwrap_or_default()),
            "-J" | "-F" => {
                // -J: see `proxy_jump_arg`; -F: rigger reads its own ssh config.
                it.next();
                continue;
            }
            flag if flag.starts_with("-o") => split_ssh_option(&flag[2..]),
            flag if flag.starts_with("-J") => continue,
            // Compression, quiet, verbose, address family, agent/X11/TTY flags.
            flag if flag.starts_with('-') && flag.len() >= 2 && flag[1..].chars().all(|c| "CqvT46Ax".contains(c)) => {
                if flag.contains('A') {
                    warn_ssh_option("-A (agent forwarding)");
                }
                continue;
            }
            other => {
                warn_ssh_option(other);
                continue;
            }
        };
        let written = key;
        let key = written.to_ascii_lowercase();
        let first = seen.insert(key.clone());
        match key.as_str() {
            "userknownhostsfile" | "globalknownhostsfile" => {
                for f in value.split_whitespace() {
                    known_hosts.push(expand_tilde(f));
                }
            }
            _ if !first => {}
            "stricthostkeychecking" => {
                t.host_key_checking = match value.to_ascii_lowercase().as_str() {
                    "ask" => HostKeyChecking::Strict,
                    v => v
                        .parse()
                        .map_err(|e: crate::connection::UnknownHostKeyChecking| e.to_string())?,
                };
                explicit.host_key_checking = true;
            }
            "port" => {
                t.port = value
                    .parse()
                    .map_err(|_| format!("invalid ssh option Port `{value}`"))?;
                explicit.port = true;
            }
            "user" => {
                t.user = value;
                explicit.user = true;
            }
            "identityfile" => {
                t.identity_files = vec![expand_tilde(&value)];
                explicit.identity_files = true;
            }
            "connecttimeout" => {
                let secs = value
                    .parse()
                    .map_err(|_| format!("invalid ssh option ConnectTimeout `{value}`"))?;
                t.connect_timeout = Duration::from_secs(secs);
                explicit.connect_timeout = true;
            }
            "serveraliveinterval" => {
                let secs: u64 = value
                    .parse()
                    .map_err(|_| format!("invalid ssh option ServerAliveInterval `{value}`"))?;
                t.keepalive = (secs > 0).then(|| Duration::from_secs(secs));
                explicit.keepalive = true;
            }
            "serveralivecountmax" => {
                t.keepalive_max = value
                    .parse()
                    .map_err(|_| format!("invalid ssh option ServerAliveCountMax `{value}`"))?;
                explicit.keepalive_max = true;
            }
            // Nothing to do for rigger's client: it keeps one connection per
            // host for the run and always checks the address it connects to.
            "proxyjump" | "controlmaster" | "controlpersist" | "controlpath" | "compression" | "loglevel"
            | "identitiesonly" | "checkhostip" | "hashknownhosts" | "batchmode" | "addkeystoagent"
            | "updatehostkeys" | "visualhostkey" => {}
            _ => warn_ssh_option(&format!("-o {written}")),
        }
    }
    if !known_hosts.is_empty() {
        t.known_hosts = known_hosts;
        explicit.known_hosts = true;
    }
    Ok(())
}

/// `Key=Value` or `Key Value` → (key as written, value).
fn split_ssh_option(o: &str) -> (String, String) {
    let o = o.trim();
    let (k, v) = o.split_once(['=', ' ', '\t']).unwrap_or((o, ""));
    (
        k.trim().to_string(),
        v.trim().trim_start_matches('=').trim().to_string(),
    )
}

/// Warn once per run about an ssh option rigger does not apply.
fn warn_ssh_option(option: &str) {
    static WARNED: Mutex<Option<std::collections::HashSet<String>>> = Mutex::new(None);
    let mut warned = WARNED.lock().unwrap_or_else(|p| p.into_inner());
    if warned.get_or_insert_with(Default::default).insert(option.to_string()) {
        stderrln!("[WARNING]: ssh option `{option}` (from ansible_ssh_args/ssh_common_args/ssh_extra_args) is not supported by rigger's SSH client and is ignored");
    }
}

fn proxy_jump_arg(args: &str) -> Option<String> {
    let words = shlex::split(args)?;
    let mut it = words.iter().peekable();
    while let Some(w) = it.next() {
        if w == "-J" {
            return it.next().cloned();
        }
        if let Some(rest) = w.strip_prefix("-J") {
            return Some(rest.to_string());
        }
        let opt = if w == "-o" {
            it.next().cloned()
        } else {
            w.strip_prefix("-o").map(str::to_string)
        };
        if let Some(o) = opt {
            let (k, v) = o.split_once(['=', ' ']).unwrap_or((&o, ""));
            if k.eq_ignore_ascii_case("ProxyJump") {
                return Some(v.trim().to_string());
            }
        }
    }
    None
}

/// `[user@]host[:port]` → a target inheriting keys and known_hosts from `base`.
fn parse_jump(spec: &str, base: &SshTarget) -> SshTarget {
    let (user, rest) = match spec.split_once('@') {
        Some((u, r)) => (Some(u.to_string()), r),
        None => (None, spec),
    };
    let (host, port) = match rest.rsplit_once(':') {
        Some((h, p)) if p.parse::<u16>().is_ok() => (h.trim_matches(['[', ']']).to_string(), p.parse().unwrap_or(22)),
        _ => (rest.to_string(), 22),
    };
    let mut j = SshTarget::new(&host, &host);
    j.port = port;
    j.user = user.unwrap_or_else(|| base.user.clone());
    j.identity_files = base.identity_files.clone();
    j.known_hosts = base.known_hosts.clone();
    j.key_passphrase = base.key_passphrase.clone();
    j.connect_timeout = base.connect_timeout;
    j
}

/// The variables that choose and configure a host's connection and
/// privilege escalation (`ansible_host`, `ansible_port`, `ansible_user`,
/// `ansible_ssh_*`, `ansible_become*`, ...): what [`ConnPool::get`] and the
/// runner's `become_for` read.
pub fn connection_vars(vars: &Map<String, Value>) -> Map<String, Value> {
    vars.iter()
        .filter(|(k, _)| is_connection_var(k))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// Whether `name` is a connection or become variable (`ansible_host`,
/// `ansible_become_password`, ...).
pub fn is_connection_var(name: &str) -> bool {
    const KEYS: &[&str] = &[
        "connection",
        "host",
        "port",
        "user",
        "ssh_",
        "password",
        "private_key",
        "become",
        "pipelining",
        "timeout",
    ];
    name.strip_prefix("ansible_")
        .is_some_and(|rest| KEYS.iter().any(|p| rest.starts_with(p)))
}

pub fn var_str(vars: &Map<String, Value>, key: &str) -> Option<String> {
    match vars.get(key)? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

pub fn expand_tilde(p: &str) -> PathBuf {
    match (p.strip_prefix("~/"), crate::connection::home_dir()) {
        (Some(rest), Some(home)) => home.join(rest),
        _ => PathBuf::from(p),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Ansible's ssh `retries` pauses: 2**attempt - 1 seconds, at most 30.
    #[test]
    fn retry_pauses_grow_as_ansibles_and_stop_at_30_seconds() {
        let secs: Vec<u64> = (0..8).map(|a| retry_pause(a).as_secs()).collect();
        assert_eq!(secs, [0, 1, 3, 7, 15, 30, 30, 30]);
    }

    #[test]
    fn server_alive_count_max_from_ssh_args() {
        let pool = ConnPool::new(ConnDefaults::default());
        let vars: Map<String, Value> = serde_json::from_value(serde_json::json!({
            "ansible_ssh_common_args": "-o ServerAliveInterval=2 -o ServerAliveCountMax=5",
        }))
        .unwrap();
        let t = pool.target_for("h", &vars).unwrap();
        assert_eq!(t.keepalive, Some(Duration::from_secs(2)));
        assert_eq!(t.keepalive_max, 5);
        let bad: Map<String, Value> =
            serde_json::from_value(serde_json::json!({"ansible_ssh_common_args": "-o ServerAliveCountMax=x"})).unwrap();
        assert!(pool.target_for("h", &bad).is_err());
    }

    #[test]
    fn connection_vars_keep_only_connection_and_become_settings() {
        let vars: Map<String, Value> = serde_json::from_value(serde_json::json!({
            "ansible_host": "127.0.0.1", "ansible_port": 2222, "ansible_user": "root",
            "ansible_ssh_private_key_file": "/k", "ansible_ssh_common_args": "-J j",
            "ansible_become": true, "ansible_become_password": "pw", "ansible_connection": "ssh",
            "ansible_password": "p", "ansible_private_key_file": "/k2", "ansible_pipelining": false,
            "ansible_timeout": 5,
            "ansible_play_hosts": ["a", "b"], "ansible_facts": {"x": 1}, "groups": {"all": ["a"]},
            "app_port": 80
        }))
        .unwrap();
        let kept = connection_vars(&vars);
        let mut keys: Vec<&str> = kept.keys().map(String::as_str).collect();
        keys.sort();
        assert_eq!(
            keys,
            [
                "ansible_become",
                "ansible_become_password",
                "ansible_connection",
                "ansible_host",
                "ansible_password",
                "ansible_pipelining",
                "ansible_port",
                "ansible_private_key_file",
                "ansible_ssh_common_args",
                "ansible_ssh_private_key_file",
                "ansible_timeout",
                "ansible_user",
            ]
        );
        assert_eq!(kept["ansible_port"], 2222);
    }

    #[test]
    fn proxy_jump_forms() {
        assert_eq!(proxy_jump_arg("-o ProxyJump=a@b:2222").as_deref(), Some("a@b:2222"));
        assert_eq!(proxy_jump_arg("-J bastion").as_deref(), Some("bastion"));
        assert_eq!(proxy_jump_arg("-o StrictHostKeyChecking=no"), None);
        let base = SshTarget::new("h", "h");
        let j = parse_jump("ops@10.0.0.1:2200", &base);
        assert_eq!((j.user.as_str(), j.address.as_str(), j.port), ("ops", "10.0.0.1", 2200));
    }

    #[test]
    fn target_from_inventory_vars() {
        let pool = ConnPool::new(ConnDefaults::default());
        let vars: Map<String, Value> = serde_json::from_str(
            r#"{"ansible_host":"127.0.1.5","ansible_port":2222,"ansible_user":"deploy","ansible_ssh_private_key_file":"/k"}"#,
        )
        .unwrap();
        let t = pool.target_for("web1", &vars).unwrap();
        assert_eq!(
            (t.address.as_str(), t.port, t.user.as_str()),
            ("127.0.1.5", 2222, "deploy")
        );
        assert_eq!(t.identity_files, vec![PathBuf::from("/k")]);
    }
}
