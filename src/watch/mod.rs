//! `rigger watch`: collect metrics over persistent SSH, detect, alert.
//!
//! ```text
//! collectors (one remote loop per host) ─▶ Store (rings + SQLite)
//!   ─▶ detectors (rules) ─▶ AlertEngine (life cycle, silences, inhibition, groups)
//!   ─▶ outbox (SQLite) ─▶ delivery task (email, webhook; retried with backoff)
//! ```
//! The controller loop owns the store and the alert engine; the delivery task
//! has its own SQLite connection so a slow SMTP server never delays
//! collection. See docs/watch.md for the configuration and JSON schemas.

pub mod action;
pub mod alert;
pub mod collect;
pub mod config;
pub mod detect;
pub mod exposition;
pub mod group;
pub mod http;
mod journal;
pub mod silence;
pub mod state;
pub mod status;
pub mod store;
pub mod vsphere;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::json;
use tokio::sync::{mpsc, watch as tokio_watch};

use crate::cli::{ActionCommand, SilenceAction, WatchArgs, WatchCommand};
use crate::error::AppError;
use crate::exec::conn_pool::{ConnDefaults, ConnPool};
use crate::template::Templar;
use collect::{now_secs, HostEvent};
use config::{Labels, Matcher, RuleKind, WatchConfig};
use detect::Detectors;
use journal::log;
use state::{ActiveSilence, AlertEngine, AlertState, NlogEntry, Observation, StepOutput};
use status::Shared;
use store::{Db, Retention, Silence, Store};

/// Exit code of `--once` when at least one alert fires.
pub const EXIT_FIRING: i32 = 2;
/// Exit code of `--once` when nothing fires but a condition holds and waits
/// for its rule's `for:` (pending).
pub const EXIT_PENDING: i32 = 3;

fn config_path(a: &WatchArgs) -> Result<PathBuf, AppError> {
    a.config
        .clone()
        .ok_or_else(|| AppError::Usage("rigger watch needs -c/--config FILE (the watch configuration)".into()))
}

fn state_path(a: &WatchArgs, cfg: &WatchConfig) -> PathBuf {
    a.state.clone().unwrap_or_else(|| cfg.state.clone())
}

/// `--listen PORT` (or `:PORT`) listens on loopback only; anything else is
/// taken as given.
fn listen_address(addr: &str) -> String {
    let port = addr.strip_prefix(':').unwrap_or(addr);
    if port.parse::<u16>().is_ok() {
        format!("127.0.0.1:{port}")
    } else {
        addr.to_string()
    }
}

/// The bearer token of `--listen`: from `--listen-token-file` or the
/// `RIGGER_WATCH_TOKEN` environment variable (never a plain command-line
/// value, which every local user sees in `ps`).
fn listen_token(a: &WatchArgs) -> Result<Option<Arc<http::BearerToken>>, AppError> {
    match &a.listen_token_file {
        Some(p) => read_token_file(p, "--listen-token-file").map(Some),
        None => match std::env::var("RIGGER_WATCH_TOKEN") {
            Ok(t) => token_from(&t, "RIGGER_WATCH_TOKEN").map(Some),
            Err(_) => Ok(None),
        },
    }
}

/// A token from a file that should be private (a warning when it is not).
fn read_token_file(p: &Path, flag: &str) -> Result<Arc<http::BearerToken>, AppError> {
    let text = std::fs::read_to_string(p).map_err(|e| AppError::Usage(format!("{flag} {}: {e}", p.display())))?;
    if let Ok(m) = std::fs::metadata(p) {
        use std::os::unix::fs::PermissionsExt;
        if m.permissions().mode() & 0o077 != 0 {
            crate::stdio::warn(&format!(
                "{flag} {}: other users can read the token (mode {:04o}); chmod 600 it",
                p.display(),
                m.permissions().mode() & 0o7777
            ));
        }
    }
    token_from(&text, &format!("{flag} {}", p.display()))
}

fn token_from(token: &str, from: &str) -> Result<Arc<http::BearerToken>, AppError> {
    let token = token.trim();
    if token.is_empty() {
        return Err(AppError::Usage(format!("{from}: the token is empty")));
    }
    if token.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(AppError::Usage(format!(
            "{from}: the token must be one word (no spaces or control characters)"
        )));
    }
    Ok(Arc::new(http::BearerToken::new(token)))
}

/// Mask the run's secrets in what an alert shows: its labels (a `!vault`
/// label of a rule) and annotations (a summary templated from one, a
/// connection error naming a vaulted user or address). Done before the
/// alert engine sees it, so the alert state, the state file, the status
/// endpoint and every notification hold only the mask. The series key is
/// the store's own name for the samples and is masked where it is shown.
fn mask_observation(o: &mut Observation) {
    let secrets = crate::output::redact::run_secrets();
    for v in o.labels.values_mut().chain(o.annotations.values_mut()) {
        if let std::borrow::Cow::Owned(masked) = secrets.redact_str(v) {
            *v = masked;
        }
    }
}

pub async fn run(a: WatchArgs, _verbosity: u8) -> Result<i32, AppError> {
    let path = config_path(&a)?;
    let cfg = WatchConfig::load(&path)?;
    match &a.command {
        Some(WatchCommand::Silence(s)) => return silence(&a, &cfg, &s.action),
        Some(WatchCommand::Action(x)) => return actions(&a, &cfg, &x.action),
        None => {}
    }
    if a.check_config {
        stdoutln!(
            "{}: OK ({} rules, {} receivers, interval {}s)",
            path.display(),
            cfg.rules.len(),
            cfg.receivers.len(),
            cfg.interval.as_secs_f64()
        );
        return Ok(0);
    }
    Controller::start(a, cfg).await
}

fn silence(a: &WatchArgs, cfg: &WatchConfig, action: &SilenceAction) -> Result<i32, AppError> {
    let db = Db::open(&state_path(a, cfg))?;
    let now = now_secs();
    match action {
        SilenceAction::Add {
            matchers,
            duration,
            comment,
            author,
        } => {
            let current = silence::current_alerts(&db)?;
            let author = author.clone().unwrap_or_else(crate::connection::default_user);
            let new = silence::validate(cfg, &current, matchers, duration, comment.as_deref(), author, now)?;
            for w in &new.warnings {
                crate::stdio::warn(w);
            }
            let (parsed, s) = (new.matchers, new.silence);
            let id = silence::add(&db, &s, "cli")?;
            stdoutln!(
                "silence {id} added until {}: {}",
                alert::rfc3339(s.ends),
                matchers.join(", ")
            );
            let matching = current
                .iter()
                .filter(|a| config::matches_all(&parsed, &a.labels))
                .count();
            if matching == 0 {
                crate::stdio::warn(&format!(
                    "silence {id} matches none of the {} current alerts (it still silences future ones)",
                    current.len()
                ));
            } else {
                stdoutln!("silence {id} matches {matching} of {} current alerts", current.len());
            }
        }
        SilenceAction::List { all, json } => {
            let list: Vec<Silence> = db.silences()?.into_iter().filter(|s| *all || s.ends > now).collect();
            if *json {
                let rows: Vec<serde_json::Value> = list.iter().map(|s| silence::to_json(s, now)).collect();
                stdoutln!("{}", serde_json::to_string_pretty(&rows).unwrap_or_default());
            } else if list.is_empty() {
                stdoutln!("no silences");
            } else {
                for s in list {
                    let state = if s.ends <= now { "expired" } else { "active" };
                    stdoutln!(
                        "{:>4}  {:<8} until {}  {}  {}",
                        s.id,
                        state,
                        alert::rfc3339(s.ends),
                        s.matchers.join(","),
                        s.comment
                    );
                }
            }
        }
        SilenceAction::Expire { id } => {
            if !silence::expire(&db, *id, now, "cli")? {
                return Err(AppError::Usage(format!("no silence with id {id}")));
            }
            stdoutln!("silence {id} expired");
        }
    }
    Ok(0)
}

fn actions(a: &WatchArgs, cfg: &WatchConfig, cmd: &ActionCommand) -> Result<i32, AppError> {
    let db = Db::open(&state_path(a, cfg))?;
    let now = now_secs();
    match cmd {
        ActionCommand::List { all, json } => {
            let list = action::list(&db, *all)?;
            if *json {
                stdoutln!("{}", serde_json::to_string_pretty(&list).unwrap_or_default());
            } else if list.is_empty() {
                stdoutln!("no actions");
            } else {
                for r in list {
                    let when = match r.state.as_str() {
                        "awaiting_approval" => format!("expires {}", alert::rfc3339(r.expires.unwrap_or(0.0))),
                        _ => alert::rfc3339(r.finished.or(r.started).unwrap_or(r.created)),
                    };
                    stdoutln!("{:>4}  {:<17} {}  {}", r.id, r.state, when, r.headline());
                }
            }
        }
        ActionCommand::Approve { id, by } | ActionCommand::Reject { id, by } => {
            let approve = matches!(cmd, ActionCommand::Approve { .. });
            let by = by.clone().unwrap_or_else(crate::connection::default_user);
            match action::decide(&db, *id, approve, &by, now) {
                Ok(r) if approve => stdoutln!(
                    "action {id} approved: rigger watch starts {} on {} within one interval",
                    r.playbook,
                    r.host
                ),
                Ok(_) => stdoutln!("action {id} rejected: it will not run"),
                Err(action::DecideError::Store(e)) => return Err(e.into()),
                Err(e) => return Err(AppError::Other(e.to_string())),
            }
        }
    }
    Ok(0)
}

/// The `rigger run` flags that give an action's child run the watch's
/// inventory, connection settings and vault passwords.
fn action_run_args(a: &WatchArgs) -> Vec<String> {
    let mut out = Vec::new();
    for i in &a.inventory {
        out.extend(["-i".to_string(), i.clone()]);
    }
    if let Some(u) = &a.user {
        out.extend(["-u".to_string(), u.clone()]);
    }
    if let Some(k) = &a.private_key {
        out.extend(["--private-key".to_string(), k.display().to_string()]);
    }
    if let Some(t) = a.timeout {
        out.extend(["-T".to_string(), t.to_string()]);
    }
    if let Some(h) = &a.host_key_checking {
        out.extend(["--host-key-checking".to_string(), h.clone()]);
    }
    if let Some(k) = &a.known_hosts {
        out.extend(["--known-hosts".to_string(), k.display().to_string()]);
    }
    for v in &a.vault.vault_id {
        out.extend(["--vault-id".to_string(), v.clone()]);
    }
    for f in &a.vault.vault_password_file {
        out.extend(["--vault-password-file".to_string(), f.display().to_string()]);
    }
    out
}

#[derive(Debug, Clone, Default)]
struct HostState {
    last_seen: f64,
    /// A round arrived since rigger started: until then the host's alerts keep
    /// their restored state instead of resolving on old samples.
    sampled: bool,
    connected: bool,
    last_error: Option<String>,
    /// What the host's samples report as wrong (`collect::block_problems`),
    /// shown on /health.
    problems: Vec<String>,
}

/// This instance's part of a group (see `group.rs`).
struct GroupState {
    membership: group::Membership,
    /// The hosts this instance holds a lease of, hence collects.
    owned: BTreeSet<String>,
    /// When the leases run out by this machine's clock unless renewed.
    valid_until: tokio::time::Instant,
    members: Vec<group::Member>,
    last_error: Option<String>,
}

struct Controller {
    args: WatchArgs,
    cfg: Arc<WatchConfig>,
    db: Db,
    store: Arc<Mutex<Store>>,
    engine: AlertEngine,
    detectors: Detectors,
    templar: Templar,
    hosts: BTreeMap<String, HostState>,
    inventory: crate::inventory::Inventory,
    pool: Arc<ConnPool>,
    /// Connections being set up at once (see [`collect::CONNECTING_AT_ONCE`]).
    connecting: Arc<tokio::sync::Semaphore>,
    collectors: BTreeMap<String, tokio::task::JoinHandle<()>>,
    /// Membership in a group of instances (`group:`), when not `--once`.
    group: Option<GroupState>,
    tx: mpsc::Sender<HostEvent>,
    shared: Arc<Mutex<Shared>>,
    cfg_tx: tokio_watch::Sender<Arc<WatchConfig>>,
    reloads: u64,
    reload_error: Option<String>,
    /// What the last reload ended that the world did not (see `alerts_a_reload_ends`).
    reload_warnings: Vec<String>,
    /// The bytes of the configuration file in effect.
    loaded_text: Option<Vec<u8>>,
    started: f64,
    /// Runs the rules' actions (not with `--once`).
    runner: Option<Arc<action::Runner>>,
}

impl Controller {
    async fn start(mut a: WatchArgs, cfg: WatchConfig) -> Result<i32, AppError> {
        // The flags over the settings (rigger.toml, environment, ansible.cfg).
        let s = crate::settings::get().with_cli(&crate::settings::CliValues {
            remote_user: a.user.clone(),
            private_key_file: a.private_key.clone(),
            host_key_checking: a.host_key_checking.clone(),
            timeout: a.timeout,
            ..Default::default()
        })?;
        if a.inventory.is_empty() && s.inventory.origin != crate::settings::Origin::Default {
            a.inventory = s.inventory.value.clone();
        }
        a.user = s.remote_user.value.clone();
        a.private_key = s.private_key_file.value.clone();
        a.timeout = Some(s.timeout.value);
        a.host_key_checking = Some(s.host_key_checking.value.clone());
        let once = a.once;
        let state = state_path(&a, &cfg);
        let mut db = Db::open(&state)?;
        let membership = match (&cfg.group, once) {
            (Some(g), false) => {
                if !db.location().is_postgres() {
                    return Err(crate::error::LocError::new(
                        g.loc.clone(),
                        format!(
                            "group: instances share hosts through a PostgreSQL state, and {} is a SQLite file",
                            db.location()
                        ),
                    )
                    .with_hint("set `state: postgres://…` (or --state) for every instance of the group")
                    .into());
                }
                let m = group::Membership {
                    group: g.name.clone(),
                    id: g.instance.clone().unwrap_or_else(group::default_instance_id),
                    lease: g.lease,
                };
                db.set_claimant(&m.id);
                Some(m)
            }
            _ => None,
        };
        let inventory = crate::inventory::Inventory::load(&a.inventory)?;
        // A socket per host for as long as the watch runs.
        crate::open_files::raise_or_warn(inventory.hosts.len());
        let retention = Retention::from_config(&cfg);
        let since = now_secs() - retention.keep_secs();
        let mut store = Store::new(retention);
        db.each_sample(since, |k, t, v| store.restore_point(k, t, v))?;
        // In a group, an instance takes the alerts of the hosts it comes to own.
        let alerts = if membership.is_some() {
            Vec::new()
        } else {
            db.load_kv("alerts")?
                .into_iter()
                .filter_map(|(_, d)| serde_json::from_str(&d).ok())
                .collect()
        };
        let nlog: Vec<(String, NlogEntry)> = db
            .load_kv("nlog")?
            .into_iter()
            .filter_map(|(k, d)| serde_json::from_str(&d).ok().map(|e| (k, e)))
            .collect();
        let hkc = s
            .host_key_checking
            .value
            .parse()
            .map_err(|e: crate::connection::UnknownHostKeyChecking| AppError::Usage(e.to_string()))?;
        let pool = Arc::new(ConnPool::new(ConnDefaults {
            user: a.user.clone(),
            private_key: a.private_key.clone(),
            host_key_checking: hkc,
            known_hosts: a.known_hosts.clone(),
            connect_timeout: Duration::from_secs(s.timeout.value.max(1)),
            ..Default::default()
        }));
        let (tx, rx) = mpsc::channel(1024);
        let c_file = cfg.file.clone();
        let cfg = Arc::new(cfg);
        let (cfg_tx, cfg_rx) = tokio_watch::channel(cfg.clone());
        let now = now_secs();
        let mut c = Controller {
            args: a,
            cfg,
            db,
            store: Arc::new(Mutex::new(store)),
            engine: AlertEngine::restore(alerts, nlog),
            detectors: Detectors::default(),
            templar: Templar::new(),
            hosts: BTreeMap::new(),
            inventory,
            pool,
            connecting: Arc::new(tokio::sync::Semaphore::new(collect::CONNECTING_AT_ONCE)),
            collectors: BTreeMap::new(),
            group: membership.map(|m| GroupState {
                membership: m,
                owned: BTreeSet::new(),
                valid_until: tokio::time::Instant::now(),
                members: Vec::new(),
                last_error: None,
            }),
            tx,
            shared: Arc::new(Mutex::new(Shared::default())),
            cfg_tx,
            reloads: 0,
            reload_error: None,
            reload_warnings: Vec::new(),
            loaded_text: std::fs::read(&c_file).ok(),
            started: now,
            runner: None,
        };
        c.restore_down_hosts(None);
        if let Some(g) = &c.group {
            c.engine.split_by_host = true;
            log(format!(
                "instance `{}` of group `{}` (lease {}s)",
                g.membership.id,
                g.membership.group,
                g.membership.lease.as_secs_f64()
            ));
            c.renew_leases()?;
        }
        c.spawn_collectors(if once { 1 } else { 0 })?;
        if once {
            if c.cfg.rules.iter().any(|r| r.action.is_some()) {
                log("actions are not run with --once");
            }
            return c.run_once(rx).await;
        }
        if c.args.vault.ask_vault_pass && c.cfg.rules.iter().any(|r| r.action.is_some()) {
            crate::stdio::warn(
                "--ask-vault-pass: an action's `rigger run` cannot ask; give its playbooks' vault \
                 password with --vault-password-file or --vault-id",
            );
        }
        let exe =
            std::env::current_exe().map_err(|e| AppError::Other(format!("cannot find the rigger binary: {e}")))?;
        let runner = Arc::new(action::Runner {
            exe,
            args: action_run_args(&c.args),
            state: state.clone(),
            cfg: c.cfg_tx.subscribe(),
        });
        // Actions left `running` by a stopped rigger are interrupted; in a
        // group only when no other instance is live (theirs may still run).
        if c.group.as_ref().is_none_or(|g| g.members.len() <= 1) {
            runner.recover(&c.db, now_secs())?;
        }
        c.runner = Some(runner);
        if let Some(addr) = c.args.listen.clone() {
            c.listen(&addr).await?;
        }
        // The delivery task: its own SQLite connection, the newest config.
        let state_file = state.clone();
        let shared = c.shared.clone();
        let claimant = c.group.as_ref().map(|g| g.membership.id.clone());
        tokio::spawn(delivery_loop(state_file, cfg_rx, shared, claimant));
        c.run_forever(rx).await
    }

    /// A host whose `host_down` fired before a restart stays down until it
    /// answers: its last sample is as old as the alert says (`host_down_after`
    /// before the alert became active), not the restart time. Every other
    /// host gets `host_down_after` from the start to answer.
    fn restore_down_hosts(&mut self, only: Option<&BTreeSet<String>>) {
        let after = self.cfg.host_down_after.as_secs_f64();
        for a in self.engine.alerts.values() {
            if a.state != AlertState::Firing || a.labels.get("alertname").map(String::as_str) != Some("host_down") {
                continue;
            }
            if let Some(host) = a.labels.get("host").filter(|h| only.is_none_or(|o| o.contains(*h))) {
                self.hosts.insert(
                    host.clone(),
                    HostState {
                        last_seen: a.active_since - after,
                        last_error: Some("down before rigger watch restarted".into()),
                        ..Default::default()
                    },
                );
            }
        }
    }

    /// The hosts the configuration and `--limit` select (in a group: the
    /// hosts the whole group watches).
    fn configured_hosts(&self) -> Result<Vec<String>, AppError> {
        config::check_vsphere_names(&self.cfg, &self.inventory)?;
        let mut hosts = self.inventory.select(&self.cfg.hosts)?;
        if let Some(l) = &self.args.limit {
            let allowed: BTreeSet<String> = self.inventory.select(l)?.into_iter().collect();
            hosts.retain(|h| allowed.contains(h));
        }
        Ok(hosts)
    }

    /// The hosts this instance collects.
    fn select_hosts(&self) -> Result<Vec<String>, AppError> {
        let mut hosts = self.configured_hosts()?;
        if let Some(g) = &self.group {
            hosts.retain(|h| g.owned.contains(h));
        }
        Ok(hosts)
    }

    /// Renew this instance's leases, and follow what changed: collect the
    /// hosts gained (continuing their alerts where the previous owner left
    /// them), stop the hosts lost (their alerts go on at the new owner).
    /// An instance that cannot reach the database keeps its hosts until its
    /// leases run out, then stops collecting them.
    fn renew_leases(&mut self) -> Result<(), AppError> {
        // The `vsphere:` endpoints are leased like hosts, under their names.
        let mut hosts = self.configured_hosts()?;
        hosts.extend(self.cfg.vsphere.iter().map(|t| t.name.clone()));
        let Some(g) = &mut self.group else { return Ok(()) };
        let started = tokio::time::Instant::now();
        let owned = match g.membership.renew(&self.db, &hosts) {
            Ok(round) => {
                if g.last_error.take().is_some() {
                    log("group: the leases are renewed again");
                }
                g.valid_until = started + g.membership.valid_for();
                g.members = round.members;
                round.owned
            }
            Err(e) => {
                let msg = e.to_string();
                if g.last_error.as_deref() != Some(&msg) {
                    log(format!("group: cannot renew the leases: {msg}"));
                }
                g.last_error = Some(msg);
                if tokio::time::Instant::now() < g.valid_until {
                    return Ok(());
                }
                if !g.owned.is_empty() {
                    log(format!(
                        "group: the leases of {} hosts ran out; not collecting them until renewed",
                        g.owned.len()
                    ));
                }
                BTreeSet::new()
            }
        };
        let gained: BTreeSet<String> = owned.difference(&g.owned).cloned().collect();
        let lost: BTreeSet<String> = g.owned.difference(&owned).cloned().collect();
        g.owned = owned;
        if gained.is_empty() && lost.is_empty() {
            return Ok(());
        }
        log(format!(
            "group: {} hosts owned ({} gained, {} released; {} instances live)",
            g.owned.len(),
            gained.len(),
            lost.len(),
            g.members.len()
        ));
        for h in &lost {
            if let Some(c) = self.collectors.remove(h) {
                c.abort();
            }
            self.hosts.remove(h);
        }
        self.engine
            .release(|a| a.labels.get("host").is_some_and(|h| lost.contains(h)));
        if !gained.is_empty() {
            if let Err(e) = self.take_over(&gained) {
                // Not collected yet: the next renewal (which keeps the
                // leases) tries again.
                if let Some(g) = &mut self.group {
                    g.owned.retain(|h| !gained.contains(h));
                }
                for h in &gained {
                    if let Some(c) = self.collectors.remove(h) {
                        c.abort();
                    }
                    self.hosts.remove(h);
                }
                self.engine
                    .release(|a| a.labels.get("host").is_some_and(|h| gained.contains(h)));
                return Err(e);
            }
        }
        // /health says at once which hosts this instance watches now.
        self.publish(now_secs());
        Ok(())
    }

    /// The state of `gained` hosts as the group left it in the database:
    /// their alerts (a pending alert's `for:` goes on from when it started),
    /// the notification log, their recent samples.
    fn take_over(&mut self, gained: &BTreeSet<String>) -> Result<(), AppError> {
        let of_gained = |a: &state::Alert| a.labels.get("host").is_some_and(|h| gained.contains(h));
        let alerts: Vec<state::Alert> = self
            .db
            .load_kv("alerts")?
            .into_iter()
            .filter_map(|(_, d)| serde_json::from_str::<state::Alert>(&d).ok())
            .filter(|a| of_gained(a))
            .collect();
        let nlog: Vec<(String, NlogEntry)> = self
            .db
            .load_kv("nlog")?
            .into_iter()
            .filter_map(|(k, d)| serde_json::from_str(&d).ok().map(|e| (k, e)))
            .collect();
        self.engine.adopt(alerts, nlog);
        if let Ok(mut store) = self.store.lock() {
            let since = now_secs() - store.retention().keep_secs();
            let marks: Vec<String> = gained.iter().map(|h| format!("host=\"{h}\"")).collect();
            let names: Vec<&str> = gained.iter().map(String::as_str).collect();
            self.db.each_sample_of_hosts(since, &names, |k, t, v| {
                let mine = marks.iter().any(|m| {
                    k.match_indices(m.as_str())
                        .any(|(i, _)| i > 0 && matches!(k.as_bytes()[i - 1], b'{' | b','))
                });
                let newer = store
                    .series
                    .get(k)
                    .and_then(|s| s.last())
                    .is_none_or(|(last, _)| t > last);
                if mine && newer {
                    store.restore_point(k, t, v);
                }
            })?;
        }
        self.restore_down_hosts(Some(gained));
        let now = now_secs();
        for h in gained {
            let prev = self.hosts.get(h).cloned().unwrap_or(HostState {
                last_seen: now,
                ..Default::default()
            });
            self.spawn_one(h, 0);
            self.hosts.insert(h.clone(), prev);
        }
        Ok(())
    }

    /// Start (or restart) the collector of `h`: an inventory host over SSH,
    /// or a `vsphere:` endpoint by its name.
    fn spawn_one(&mut self, h: &str, rounds: u32) {
        if let Some(t) = self.cfg.vsphere.iter().find(|t| t.name == h) {
            let task = tokio::spawn(vsphere::run_endpoint(
                t.clone(),
                self.cfg.clone(),
                self.tx.clone(),
                rounds,
            ));
            if let Some(old) = self.collectors.insert(h.to_string(), task) {
                old.abort();
            }
            return;
        }
        let vars = self.inventory.host_vars(h);
        self.pool.reset(h);
        let task = tokio::spawn(collect::run_host(
            h.to_string(),
            vars,
            self.pool.clone(),
            self.connecting.clone(),
            self.cfg.clone(),
            self.tx.clone(),
            rounds,
        ));
        if let Some(old) = self.collectors.insert(h.to_string(), task) {
            old.abort();
        }
    }

    fn spawn_collectors(&mut self, rounds: u32) -> Result<(), AppError> {
        for (_, h) in std::mem::take(&mut self.collectors) {
            h.abort();
        }
        let hosts = self.select_hosts()?;
        if hosts.is_empty() && self.group.is_none() {
            log(format!("no hosts match `{}`", self.cfg.hosts));
        }
        let now = now_secs();
        let mut states = BTreeMap::new();
        for h in hosts {
            let prev = self.hosts.get(&h).cloned().unwrap_or(HostState {
                last_seen: now,
                ..Default::default()
            });
            self.spawn_one(&h, rounds);
            states.insert(h, prev);
        }
        // vSphere endpoints are watched like hosts, under their names (in a
        // group, by the instance that holds the endpoint's lease).
        let endpoints: Vec<String> = self
            .cfg
            .vsphere
            .iter()
            .map(|t| t.name.clone())
            .filter(|n| self.group.as_ref().is_none_or(|g| g.owned.contains(n)))
            .collect();
        for name in endpoints {
            let prev = self.hosts.get(&name).cloned().unwrap_or(HostState {
                last_seen: now,
                ..Default::default()
            });
            self.spawn_one(&name, rounds);
            states.insert(name, prev);
        }
        self.hosts = states;
        Ok(())
    }

    async fn listen(&self, addr: &str) -> Result<(), AppError> {
        let token = listen_token(&self.args)?;
        let bind = listen_address(addr);
        let listener = tokio::net::TcpListener::bind(&bind)
            .await
            .map_err(|e| AppError::Other(format!("--listen {addr}: {e}")))?;
        let local = listener
            .local_addr()
            .map_err(|e| AppError::Other(format!("--listen {addr}: {e}")))?;
        log(format!(
            "status endpoint on http://{local}/ (/health, /alerts, /metrics){}",
            if token.is_some() { ", bearer token required" } else { "" }
        ));
        if token.is_none() && !local.ip().is_loopback() {
            crate::stdio::warn(&format!(
                "--listen {addr}: /health, /alerts and /metrics are open to anyone who can reach {local} \
                 (alerts name hosts, mounts and services); set a token with --listen-token-file or \
                 RIGGER_WATCH_TOKEN, or listen on 127.0.0.1"
            ));
        }
        let write_token = match &self.args.status_token_file {
            Some(p) => Some(read_token_file(p, "--status-token-file")?),
            None => token.clone(),
        };
        log(format!(
            "status page on http://{local}/status ({})",
            if write_token.is_some() {
                "silences can be created and expired with the status token"
            } else {
                "read-only: --status-token-file lets it create and expire silences"
            }
        ));
        let check_db = match &self.args.check_db {
            Some(p) => Some(p.clone()),
            None => crate::settings::get()
                .state
                .value
                .clone()
                .map(PathBuf::from)
                .or_else(|| crate::check::history::default_path().ok()),
        };
        let server = status::StatusServer {
            shared: self.shared.clone(),
            store: self.store.clone(),
            cfg: self.cfg_tx.subscribe(),
            state: state_path(&self.args, &self.cfg),
            check_db,
            read_token: token,
            write_token,
        };
        tokio::spawn(http::serve(listener, move |req: &http::Request| server.handle(req)));
        Ok(())
    }

    fn handle(&mut self, ev: HostEvent) {
        let now = now_secs();
        match ev {
            HostEvent::Samples { host, samples } => {
                // A round that was under way when the host was released.
                if self.group.is_some() && !self.hosts.contains_key(&host) {
                    return;
                }
                if let Ok(mut st) = self.store.lock() {
                    st.push_samples(&samples, now);
                    st.push_sorted("up", &[("host", &host)], now, 1.0);
                }
                if let Some(h) = self.hosts.get_mut(&host) {
                    h.last_seen = now;
                    h.sampled = true;
                    h.connected = true;
                    h.last_error = None;
                }
            }
            HostEvent::Connected { host } => {
                log(format!("{host}: connected"));
            }
            HostEvent::Lost { host, reason } => {
                if let Some(h) = self.hosts.get_mut(&host) {
                    if h.connected || h.last_error.as_deref() != Some(&reason) {
                        log(format!("{host}: collector lost: {reason}"));
                    }
                    h.connected = false;
                    h.last_error = Some(reason);
                }
            }
            HostEvent::Problems { host, problems } => {
                if let Some(h) = self.hosts.get_mut(&host) {
                    for p in problems.iter().filter(|p| !h.problems.contains(p)) {
                        log(format!("{host}: warning: {p}"));
                    }
                    for p in h.problems.iter().filter(|p| !problems.contains(p)) {
                        log(format!("{host}: no longer: {p}"));
                    }
                    h.problems = problems;
                }
            }
        }
    }

    /// One evaluation round: rules → alert engine → outbox.
    fn evaluate(&mut self, now: f64, once: bool) {
        let cfg = self.cfg.clone();
        let down_after = if once { 0.0 } else { cfg.host_down_after.as_secs_f64() };
        let down: BTreeSet<String> = self
            .hosts
            .iter()
            .filter(|(_, h)| {
                if once {
                    !h.connected
                } else {
                    now - h.last_seen > down_after
                }
            })
            .map(|(n, _)| n.clone())
            .collect();
        let frozen_hosts: BTreeSet<String> = self
            .hosts
            .iter()
            .filter(|(n, h)| down.contains(*n) || !h.sampled)
            .map(|(n, _)| n.clone())
            .collect();
        let mut obs = Vec::new();
        {
            let Ok(store) = self.store.lock() else { return };
            for rule in &cfg.rules {
                for (key, s) in store.series.iter().filter(|(_, s)| *s.name == *rule.metric) {
                    if !s.labels.matches(&rule.matchers) {
                        continue;
                    }
                    let host = s.labels.get("host").unwrap_or_default();
                    // In a group the store still holds the recent samples
                    // of hosts released to another instance: their alerts
                    // are that instance's now.
                    if self.group.is_some() && !self.hosts.contains_key(host) {
                        continue;
                    }
                    let stale = s
                        .last()
                        .is_none_or(|(t, _)| now - t > cfg.host_down_after.as_secs_f64());
                    let is_absent = matches!(rule.kind, RuleKind::Absent(_));
                    if (!is_absent || !self.hosts.get(host).is_some_and(|h| h.sampled))
                        && (frozen_hosts.contains(host) || (stale && !once))
                    {
                        continue;
                    }
                    if is_absent && !self.hosts.contains_key(host) {
                        continue;
                    }
                    let Some(v) = self.detectors.eval(&rule.name, &rule.kind, s, now) else {
                        continue;
                    };
                    let mut labels = s.labels.to_labels();
                    labels.extend(rule.labels.clone());
                    labels.insert("alertname".into(), rule.name.clone());
                    labels.insert("severity".into(), rule.severity.clone());
                    // An inactive verdict only matters to an alert in progress:
                    // skip the templating (the bulk of a round) for the rest.
                    if !v.active
                        && self
                            .engine
                            .alerts
                            .get(&state::fingerprint(&labels))
                            .is_none_or(|a| a.state == AlertState::Resolved)
                    {
                        continue;
                    }
                    let ctx = minijinja::Value::from(minijinja::value::Serde(json!({
                        "labels": labels,
                        "value": v.value,
                        "zscore": v.zscore,
                        "baseline": v.baseline.map(|b| b.0),
                        "stddev": v.baseline.map(|b| b.1),
                        "alertname": rule.name,
                        "metric": rule.metric,
                        "host": host,
                        "severity": rule.severity,
                    })));
                    let mut annotations = BTreeMap::new();
                    for (k, t) in [("summary", &rule.summary), ("description", &rule.description)] {
                        let text = self
                            .templar
                            .render_string(t, &ctx, &rule.loc)
                            .unwrap_or_else(|e| format!("({k} template failed: {e})"));
                        annotations.insert(k.to_string(), text);
                    }
                    obs.push(Observation {
                        labels,
                        annotations,
                        value: v.value,
                        active: v.active,
                        series: key.to_string(),
                        for_secs: rule.for_.as_secs_f64(),
                        keep_firing_secs: rule.keep_firing_for.as_secs_f64(),
                    });
                }
            }
        }
        for (name, h) in &self.hosts {
            let mut labels = Labels::new();
            labels.insert("alertname".into(), "host_down".into());
            labels.insert("host".into(), name.clone());
            labels.insert("severity".into(), "critical".into());
            let mut ann = BTreeMap::new();
            let age = now - h.last_seen;
            ann.insert(
                "summary".into(),
                format!(
                    "{name} is unreachable: no samples for {:.0}s{}",
                    age,
                    h.last_error.as_ref().map(|e| format!(" ({e})")).unwrap_or_default()
                ),
            );
            ann.insert("description".into(), String::new());
            obs.push(Observation {
                labels,
                annotations: ann,
                value: age,
                active: down.contains(name),
                series: format!("up{{host=\"{name}\"}}"),
                for_secs: 0.0,
                keep_firing_secs: 0.0,
            });
        }
        // Alerts of a down host keep their state (inhibited) rather than resolving.
        let mut owned: BTreeSet<String> = cfg.rules.iter().map(|r| r.name.clone()).collect();
        owned.insert("host_down".into());
        let mut out = StepOutput::default();
        let frozen: Vec<state::Alert> = self
            .engine
            .alerts
            .values()
            .filter(|a| a.labels.get("host").is_some_and(|h| frozen_hosts.contains(h)))
            .filter(|a| a.labels.get("alertname").map(String::as_str) != Some("host_down"))
            .cloned()
            .collect();
        let mut covered: BTreeSet<String> = obs.iter().map(|o| state::fingerprint(&o.labels)).collect();
        for a in frozen {
            if covered.insert(a.fingerprint.clone()) && a.state != AlertState::Resolved {
                obs.push(Observation {
                    labels: a.labels.clone(),
                    annotations: a.annotations.clone(),
                    value: a.value,
                    active: true,
                    series: a.series.clone(),
                    for_secs: f64::INFINITY,
                    keep_firing_secs: 0.0,
                });
            }
        }
        if crate::output::redact::tracking() {
            obs.iter_mut().for_each(mask_observation);
        }
        self.engine.observe(obs, &owned, now, &mut out);
        let silences: Vec<ActiveSilence> = self
            .db
            .silences()
            .unwrap_or_default()
            .into_iter()
            .filter(|s| s.starts <= now && now < s.ends)
            .map(|s| ActiveSilence {
                id: s.id,
                matchers: s.matchers.iter().filter_map(|m| Matcher::parse(m).ok()).collect(),
            })
            .collect();
        self.engine.suppress(&silences, &cfg.inhibit);
        let route = if once {
            zero_waits(&cfg.route)
        } else {
            cfg.route.clone()
        };
        self.engine.dispatch(&route, now, &mut out);
        self.persist(now, out);
    }

    fn persist(&mut self, now: f64, out: StepOutput) {
        for (a, before) in &out.transitions {
            log(format!(
                "alert {} {} ({:?} -> {:?}){}",
                a.labels.get("alertname").map(String::as_str).unwrap_or("?"),
                exposition::series_key("", &a.labels),
                before,
                a.state,
                a.annotations
                    .get("summary")
                    .map(|s| format!(": {s}"))
                    .unwrap_or_default()
            ));
        }
        self.trigger_actions(&out.transitions, now);
        // Queued before the alerts and the notification log record it: an
        // instance that dies in between leaves the notification to be
        // derived again by the host's next owner, whose copy the outbox's
        // idempotent key drops (never lost, never twice).
        for n in out.notifications {
            let history = match self.store.lock() {
                Ok(st) => n
                    .alerts
                    .iter()
                    .filter_map(|a| {
                        st.series
                            .get(a.series.as_str())
                            .map(|s| (a.fingerprint.clone(), s.points().collect()))
                    })
                    .collect(),
                Err(_) => BTreeMap::new(),
            };
            let names: Vec<String> = n
                .alerts
                .iter()
                .map(|a| {
                    format!(
                        "{}[{}]",
                        a.labels.get("alertname").cloned().unwrap_or_default(),
                        alert::status_of(a)
                    )
                })
                .collect();
            let env = alert::Envelope {
                notification: n,
                history,
                actions: Vec::new(),
            };
            crate::audit::record_synced(
                "watch_notification",
                match serde_json::json!({
                    "receiver": env.notification.receiver,
                    "status": env.notification.status,
                    "alerts": names,
                }) {
                    serde_json::Value::Object(m) => m,
                    _ => serde_json::Map::new(),
                },
            );
            match alert::enqueue(&self.db, &self.cfg, &env, now) {
                Ok(ids) if ids.is_empty() => log(format!(
                    "notification for `{}` ({}): {} already queued (by the previous owner of the host)",
                    env.notification.receiver,
                    env.notification.status,
                    names.join(" ")
                )),
                Ok(ids) => log(format!(
                    "notification queued for `{}` ({}): {} outbox {:?}",
                    env.notification.receiver,
                    env.notification.status,
                    names.join(" "),
                    ids
                )),
                Err(e) => log(format!("cannot queue a notification: {e}")),
            }
        }
        for a in &out.changed_alerts {
            if self.engine.alerts.contains_key(&a.fingerprint) {
                if let Ok(d) = serde_json::to_string(a) {
                    let _ = self.db.save_kv("alerts", &a.fingerprint, &d);
                }
            }
        }
        for fp in &out.removed_alerts {
            let _ = self.db.delete_kv("alerts", fp);
        }
        for (k, e) in &out.nlog_updates {
            if let Ok(d) = serde_json::to_string(e) {
                let _ = self.db.save_kv("nlog", k, &d);
            }
        }
        let (pending, keep) = match self.store.lock() {
            Ok(mut s) => {
                let keep = s.retention().keep_secs();
                // Series without a sample for a day (or longer than any
                // window): an unmounted file system, a removed interface.
                let pruned = s.prune(now - (keep * 2.0).max(86400.0));
                if pruned > 0 {
                    let st = &*s;
                    self.detectors.retain_series(|k| st.series.contains_key(k));
                }
                (s.take_pending(), keep)
            }
            Err(_) => (Vec::new(), 0.0),
        };
        if !pending.is_empty() {
            if let Err(e) = self.db.write_samples(&pending, now - keep) {
                log(format!("cannot persist samples: {e}"));
            }
        }
        if let Some(r) = &self.runner {
            if let Err(e) = r.drive(&self.db, now) {
                log(format!("cannot start the queued actions: {e}"));
            }
        }
        self.publish(now);
    }

    /// The actions the alerts' transitions ask for, each recorded (queued,
    /// awaiting approval, or skipped with the guard's reason).
    fn trigger_actions(&self, transitions: &[(state::Alert, AlertState)], now: f64) {
        if self.runner.is_none() {
            return;
        }
        for (a, before) in transitions {
            let Some(name) = a.labels.get("alertname") else {
                continue;
            };
            let Some(ac) = self
                .cfg
                .rules
                .iter()
                .find(|r| &r.name == name)
                .and_then(|r| r.action.as_ref())
            else {
                continue;
            };
            // The engine's copy: it knows whether a silence covers the alert.
            let current = self
                .engine
                .alerts
                .get(&a.fingerprint)
                .cloned()
                .unwrap_or_else(|| a.clone());
            match action::on_transition(&self.db, ac, name, &current, *before, now) {
                Ok(Some((rec, notify))) => {
                    log(rec.headline());
                    if notify {
                        action::notify(&self.db, &self.cfg, &rec, &current, now);
                    }
                }
                Ok(None) => {}
                Err(e) => log(format!("cannot record the action of alert {name}: {e}")),
            }
        }
    }

    fn publish(&self, now: f64) {
        let alerts: Vec<serde_json::Value> = self
            .engine
            .alerts
            .values()
            .map(|a| {
                json!({
                    "fingerprint": a.fingerprint,
                    "state": a.state,
                    "labels": a.labels,
                    "annotations": a.annotations,
                    "value": if a.value.is_finite() { json!(a.value) } else { serde_json::Value::Null },
                    "activeSince": alert::rfc3339(a.active_since),
                    "firedAt": alert::rfc3339(a.fired_at),
                    "resolvedAt": (a.state == AlertState::Resolved).then(|| alert::rfc3339(a.resolved_at)),
                    "suppressed": a.suppressed,
                })
            })
            .collect();
        let hosts: serde_json::Map<String, serde_json::Value> = self
            .hosts
            .iter()
            .map(|(n, h)| {
                (
                    n.clone(),
                    json!({
                        "up": now - h.last_seen <= self.cfg.host_down_after.as_secs_f64(),
                        "connected": h.connected,
                        "lastSeen": alert::rfc3339(h.last_seen),
                        "error": h.last_error,
                        "warnings": h.problems,
                    }),
                )
            })
            .collect();
        let (series, samples) = self
            .store
            .lock()
            .map(|s| (s.series.len(), s.sample_count()))
            .unwrap_or_default();
        let group = match &self.group {
            Some(g) => json!({
                "name": g.membership.group,
                "instance": g.membership.id,
                "leaseSeconds": g.membership.lease.as_secs_f64(),
                "owned": g.owned.len(),
                "error": g.last_error,
                "instances": g.members.iter().map(|m| json!({
                    "id": m.id,
                    "hosts": m.hosts,
                    "heartbeatAgeSeconds": m.heartbeat_age,
                })).collect::<Vec<_>>(),
            }),
            None => serde_json::Value::Null,
        };
        if let Ok(mut s) = self.shared.lock() {
            s.alerts = serde_json::Value::Array(alerts);
            let outbox = s.health.get("outbox").cloned().unwrap_or(serde_json::Value::Null);
            s.health = json!({
                "status": "ok",
                "config": self.cfg.file.display().to_string(),
                "uptimeSeconds": now - self.started,
                "reloads": self.reloads,
                "lastReloadError": self.reload_error,
                "lastReloadWarnings": self.reload_warnings,
                "hosts": hosts,
                "store": {"series": series, "samples": samples},
                "outbox": outbox,
                "group": group,
            });
        }
    }

    fn reload(&mut self) {
        let path = self.cfg.file.clone();
        // Editors (and `>` redirections) write a file in several steps, each
        // an event: a second event for the same content is not a reload, and
        // must not replace what the first one reported.
        let text = std::fs::read(&path).ok();
        if text.is_some() && text == self.loaded_text {
            // (A rejected edit reverted: what is in effect is the file again.)
            self.reload_error = None;
            return;
        }
        match WatchConfig::load(&path) {
            Err(e) => {
                log(format!(
                    "configuration reload rejected; the previous configuration stays active:\n{}",
                    e.render()
                ));
                self.reload_error = Some(e.to_string());
            }
            Ok(new) => {
                if new.state != self.cfg.state && self.args.state.is_none() {
                    log("the state file cannot change on reload; keeping the current one");
                }
                let group_of =
                    |g: &Option<config::GroupConfig>| g.as_ref().map(|g| (g.name.clone(), g.lease, g.instance.clone()));
                if group_of(&new.group) != group_of(&self.cfg.group) {
                    crate::stdio::warn(
                        "watch: reload: `group:` changes only when rigger watch restarts; the instance keeps its \
                         current group, lease and id",
                    );
                }
                let restart = new.collection_key() != self.cfg.collection_key();
                let new = Arc::new(new);
                if let Ok(mut st) = self.store.lock() {
                    st.set_retention(Retention::from_config(&new));
                }
                self.loaded_text = text;
                self.reload_warnings = self.alerts_a_reload_ends(&new);
                for w in &self.reload_warnings {
                    crate::stdio::warn(&format!("watch: reload: {w}"));
                }
                let names: Vec<String> = new.rules.iter().map(|r| r.name.clone()).collect();
                self.detectors.retain_rules(&names);
                self.cfg = new.clone();
                let _ = self.cfg_tx.send(new);
                self.reloads += 1;
                self.reload_error = None;
                if restart {
                    if let Err(e) = self.spawn_collectors(0) {
                        log(format!("cannot restart collectors: {e}"));
                    }
                }
                log(format!(
                    "configuration reloaded ({} rules{})",
                    self.cfg.rules.len(),
                    if restart { ", collectors restarted" } else { "" }
                ));
            }
        }
    }

    /// Firing alerts that `new` resolves only because their rule was
    /// renamed, removed, or now watches another metric or other series: the
    /// world did not change, the configuration did, and an operator must be
    /// told before the resolved notices reach the on-call.
    fn alerts_a_reload_ends(&self, new: &WatchConfig) -> Vec<String> {
        let mut by_rule: BTreeMap<&str, Vec<&state::Alert>> = BTreeMap::new();
        for a in self.engine.alerts.values().filter(|a| a.state == AlertState::Firing) {
            if let Some(n) = a.labels.get("alertname") {
                by_rule.entry(n.as_str()).or_default().push(a);
            }
        }
        let mut out = Vec::new();
        for (name, alerts) in by_rule {
            let Some(old) = self.cfg.rules.iter().find(|r| r.name == name) else {
                continue;
            };
            let what = format!(
                "{} firing alert(s) of rule `{name}` ({}) will resolve",
                alerts.len(),
                alerts
                    .iter()
                    .map(|a| exposition::series_key("", &a.labels))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            match new.rules.iter().find(|r| r.name == name) {
                None => {
                    let renamed = new
                        .rules
                        .iter()
                        .find(|r| r.metric == old.metric && !self.cfg.rules.iter().any(|o| o.name == r.name));
                    out.push(match renamed {
                        Some(r) => format!(
                            "{what} because the rule was renamed to `{}` (its alerts start over as new alerts)",
                            r.name
                        ),
                        None => format!("{what} because the rule is no longer in the configuration"),
                    });
                }
                Some(r) if r.metric != old.metric => out.push(format!(
                    "{what} because the rule now watches `{}` instead of `{}`",
                    r.metric, old.metric
                )),
                Some(r) => {
                    let gone: Vec<&&state::Alert> = alerts
                        .iter()
                        .filter(|a| {
                            let series =
                                self.store.lock().ok().and_then(|st| {
                                    st.series.get(a.series.as_str()).map(|s| s.labels.matches(&r.matchers))
                                });
                            series == Some(false)
                        })
                        .collect();
                    if !gone.is_empty() {
                        out.push(format!(
                            "{} firing alert(s) of rule `{name}` will resolve because its matchers no longer select their series",
                            gone.len()
                        ));
                    }
                }
            }
        }
        out
    }

    async fn run_forever(mut self, mut rx: mpsc::Receiver<HostEvent>) -> Result<i32, AppError> {
        let (reload_tx, mut reload_rx) = mpsc::channel::<&'static str>(8);
        let _watcher = watch_file(&self.cfg.file, reload_tx.clone());
        let mut hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
            .map_err(|e| AppError::Other(format!("cannot handle SIGHUP: {e}")))?;
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .map_err(|e| AppError::Other(format!("cannot handle SIGTERM: {e}")))?;
        log(format!(
            "watching {} hosts every {}s ({} rules)",
            self.hosts.len(),
            self.cfg.interval.as_secs_f64(),
            self.cfg.rules.len()
        ));
        let mut tick = tokio::time::interval(self.cfg.interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut period = self.cfg.interval;
        // Lease renewals (a group); without one the timer never fires.
        let renew_every = self
            .group
            .as_ref()
            .map_or(Duration::from_secs(86400 * 365), |g| g.membership.period());
        let mut renew = tokio::time::interval_at(tokio::time::Instant::now() + renew_every, renew_every);
        renew.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                ev = rx.recv() => {
                    if let Some(ev) = ev { self.handle(ev) }
                }
                _ = tick.tick() => {
                    if crate::exec::runner::INTERRUPTED.load(Ordering::SeqCst) {
                        break;
                    }
                    self.evaluate(now_secs(), false);
                }
                Some(why) = reload_rx.recv() => {
                    // Editors write in several steps: let the file settle.
                    tokio::time::sleep(Duration::from_millis(150)).await;
                    while reload_rx.try_recv().is_ok() {}
                    log(format!("reloading the configuration ({why})"));
                    self.reload();
                    if self.cfg.interval != period {
                        period = self.cfg.interval;
                        tick = tokio::time::interval(period);
                        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                    }
                }
                _ = renew.tick() => {
                    if let Err(e) = self.renew_leases() {
                        log(format!("group: {e}"));
                    }
                }
                _ = hup.recv() => { let _ = reload_tx.try_send("SIGHUP"); }
                _ = term.recv() => break,
            }
        }
        log("stopping");
        if let Some(g) = &self.group {
            match g.membership.leave(&self.db) {
                Ok(()) => log(format!(
                    "group: left `{}`; its hosts pass to the others",
                    g.membership.group
                )),
                Err(e) => log(format!(
                    "group: cannot release the leases ({e}); the others take the hosts when they run out"
                )),
            }
        }
        let (pending, keep) = self
            .store
            .lock()
            .map(|mut s| (s.take_pending(), s.retention().keep_secs()))
            .unwrap_or_default();
        let _ = self.db.write_samples(&pending, now_secs() - keep);
        Ok(0)
    }

    async fn run_once(mut self, mut rx: mpsc::Receiver<HostEvent>) -> Result<i32, AppError> {
        let mut waiting: BTreeSet<String> = self.hosts.keys().cloned().collect();
        let deadline = tokio::time::Instant::now()
            + Duration::from_secs(self.args.timeout.unwrap_or(10).max(1))
            + self.cfg.interval * 3;
        while !waiting.is_empty() {
            let ev = match tokio::time::timeout_at(deadline, rx.recv()).await {
                Ok(Some(ev)) => ev,
                _ => break,
            };
            match &ev {
                HostEvent::Samples { host, .. } | HostEvent::Lost { host, .. } => {
                    waiting.remove(host);
                }
                HostEvent::Connected { .. } | HostEvent::Problems { .. } => {}
            }
            self.handle(ev);
        }
        for h in waiting {
            if let Some(s) = self.hosts.get_mut(&h) {
                s.connected = false;
                s.last_error.get_or_insert_with(|| "no answer in time".into());
            }
        }
        self.evaluate(now_secs(), true);
        let db = Mutex::new(Db::open(&state_path(&self.args, &self.cfg))?);
        let rep = alert::deliver_due(&db, &self.cfg, now_secs()).await;
        report_delivery(&rep);
        let firing: Vec<&state::Alert> = self
            .engine
            .alerts
            .values()
            .filter(|a| a.state == AlertState::Firing)
            .collect();
        for a in &firing {
            stdoutln!(
                "FIRING {} {}{}",
                a.labels.get("alertname").map(String::as_str).unwrap_or("?"),
                exposition::series_key("", &a.labels),
                a.suppressed.as_ref().map(|s| format!(" ({s})")).unwrap_or_default()
            );
        }
        // A crossed threshold that waits for its rule's `for:` is not firing
        // yet, but a probe must not call it healthy.
        let pending: Vec<&state::Alert> = self
            .engine
            .alerts
            .values()
            .filter(|a| a.state == AlertState::Pending)
            .collect();
        for a in &pending {
            let name = a.labels.get("alertname").map(String::as_str).unwrap_or("?");
            let for_ = self
                .cfg
                .rules
                .iter()
                .find(|r| r.name == name)
                .map(|r| r.for_.as_secs_f64())
                .unwrap_or(0.0);
            stdoutln!(
                "PENDING {} {} (active since {}, fires after for: {}s; value {})",
                name,
                exposition::series_key("", &a.labels),
                alert::rfc3339(a.active_since),
                for_,
                a.value
            );
        }
        Ok(if !firing.is_empty() {
            EXIT_FIRING
        } else if !pending.is_empty() {
            EXIT_PENDING
        } else {
            0
        })
    }
}

fn zero_waits(r: &config::Route) -> config::Route {
    let mut r = r.clone();
    r.group_wait = Duration::ZERO;
    r.routes = r.routes.iter().map(zero_waits).collect();
    r
}

fn report_delivery(rep: &alert::DeliveryReport) {
    if !(rep.delivered.is_empty() && rep.failed.is_empty() && rep.expired.is_empty()) {
        let mut m = serde_json::Map::new();
        m.insert("delivered".into(), json!(rep.delivered));
        m.insert("failed".into(), json!(rep.failed));
        m.insert("expired".into(), json!(rep.expired));
        crate::audit::record_synced("watch_delivery", m);
    }
    for d in &rep.delivered {
        log(format!("delivered {d}"));
    }
    for f in &rep.failed {
        log(format!("delivery failed {f}"));
    }
    for x in &rep.expired {
        log(format!("EXPIRED {x}"));
    }
}

async fn delivery_loop(
    state: PathBuf,
    mut cfg_rx: tokio_watch::Receiver<Arc<WatchConfig>>,
    shared: Arc<Mutex<Shared>>,
    claimant: Option<String>,
) {
    let db = match Db::open(&state) {
        Ok(mut db) => {
            if let Some(c) = &claimant {
                db.set_claimant(c);
            }
            Mutex::new(db)
        }
        Err(e) => {
            log(format!("delivery disabled: {e}"));
            return;
        }
    };
    let mut last_prune = 0.0;
    loop {
        let cfg = cfg_rx.borrow_and_update().clone();
        let now = now_secs();
        let rep = alert::deliver_due(&db, &cfg, now).await;
        report_delivery(&rep);
        let counts = match db.lock() {
            Ok(d) => {
                if now - last_prune > 3600.0 {
                    let _ = d.prune_outbox(now - 86400.0);
                    last_prune = now;
                }
                d.outbox_counts()
                    .and_then(|(p, d2, x)| Ok((p, d2, x, d.outbox_count("failed")?)))
            }
            Err(_) => Err(store::StoreError::Poisoned),
        };
        if let (Ok((p, d, x, f)), Ok(mut s)) = (counts, shared.lock()) {
            let outbox = json!({"pending": p, "delivered": d, "expired": x, "failed": f});
            if let Some(obj) = s.health.as_object_mut() {
                obj.insert("outbox".into(), outbox);
            } else {
                s.health = json!({ "outbox": outbox });
            }
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Watch the configuration file by polling its path once a second (its
/// modification time and a hash of its contents), not by inotify on its
/// directory: editors replace files by rename, which only a directory
/// watch sees, and the state file (`watch.db` and its WAL) is by default in
/// that directory, so a directory watch woke on every SQLite write (13 %
/// of the controller's CPU at 1,000 hosts). A stat and a read of a small
/// file a second cost nothing; a change is seen within a second, by
/// contents even within the same second of modification time.
fn watch_file(path: &Path, tx: mpsc::Sender<&'static str>) -> Option<notify::PollWatcher> {
    use notify::{EventKind, RecursiveMode, Watcher};
    let config = notify::Config::default()
        .with_poll_interval(Duration::from_secs(1))
        .with_compare_contents(true);
    // An error (the file's directory unreadable) is logged when it starts
    // or changes, not at every poll.
    let mut last_error: Option<String> = None;
    let mut w = notify::PollWatcher::new(
        move |res: notify::Result<notify::Event>| match res {
            Ok(ev) => {
                last_error = None;
                if matches!(ev.kind, EventKind::Create(_) | EventKind::Modify(_)) {
                    let _ = tx.try_send("file changed");
                }
            }
            Err(e) => {
                let e = e.to_string();
                if last_error.as_deref() != Some(e.as_str()) {
                    log(format!("cannot watch the configuration file: {e}"));
                    last_error = Some(e);
                }
            }
        },
        config,
    )
    .map_err(|e| log(format!("configuration file watching disabled: {e}")))
    .ok()?;
    if let Err(e) = w.watch(path, RecursiveMode::NonRecursive) {
        log(format!("configuration file watching disabled: {e}"));
        return None;
    }
    Some(w)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The configuration file's watcher sees an edit in place, a
    /// replacement by rename (as editors save), and a rewrite of the same
    /// size within the same second (by contents); it stays quiet while
    /// nothing changes, whatever else is written in the same directory (the
    /// state file's SQLite writes).
    #[tokio::test]
    async fn the_configuration_file_is_watched_through_edits_renames_and_same_second_rewrites() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = dir.path().join("watch.yml");
        std::fs::write(&cfg, "interval: 10s\n").unwrap();
        let (tx, mut rx) = mpsc::channel(16);
        let _w = watch_file(&cfg, tx).expect("watching");
        async fn next(rx: &mut mpsc::Receiver<&'static str>, secs: u64) -> Option<&'static str> {
            tokio::time::timeout(Duration::from_secs(secs), rx.recv())
                .await
                .ok()
                .flatten()
        }
        let drain = |rx: &mut mpsc::Receiver<&'static str>| while rx.try_recv().is_ok() {};
        // Quiet: another file of the directory written many times.
        tokio::time::sleep(Duration::from_millis(1200)).await;
        let other = dir.path().join("watch.db-wal");
        for i in 0..200 {
            std::fs::write(&other, format!("{i}")).unwrap();
        }
        assert_eq!(next(&mut rx, 3).await, None, "no event without a change");

        std::fs::write(&cfg, "interval: 20s\n").unwrap();
        assert_eq!(next(&mut rx, 5).await, Some("file changed"), "edit in place");
        tokio::time::sleep(Duration::from_millis(1200)).await;
        drain(&mut rx);

        let tmp = dir.path().join(".watch.yml.swp");
        std::fs::write(&tmp, "interval: 30s\n").unwrap();
        std::fs::rename(&tmp, &cfg).unwrap();
        assert_eq!(next(&mut rx, 5).await, Some("file changed"), "replaced by rename");
        tokio::time::sleep(Duration::from_millis(1200)).await;
        drain(&mut rx);

        // Same size, same second as the last write: only the contents differ.
        std::fs::write(&cfg, "interval: 40s\n").unwrap();
        std::fs::write(&cfg, "interval: 50s\n").unwrap();
        assert_eq!(next(&mut rx, 5).await, Some("file changed"), "rewrite");
        tokio::time::sleep(Duration::from_millis(1200)).await;
        drain(&mut rx);
        let mtime = std::fs::metadata(&cfg).unwrap().modified().unwrap();
        std::fs::write(&cfg, "interval: 60s\n").unwrap();
        std::fs::File::options()
            .write(true)
            .open(&cfg)
            .unwrap()
            .set_modified(mtime)
            .unwrap();
        assert_eq!(
            next(&mut rx, 5).await,
            Some("file changed"),
            "new contents under the old modification time"
        );
    }

    #[test]
    fn a_bare_port_listens_on_loopback_only() {
        assert_eq!(listen_address("9464"), "127.0.0.1:9464");
        assert_eq!(listen_address(":9464"), "127.0.0.1:9464");
        assert_eq!(listen_address("0.0.0.0:9464"), "0.0.0.0:9464");
        assert_eq!(listen_address("[::1]:9464"), "[::1]:9464");
        assert_eq!(listen_address("localhost:9464"), "localhost:9464");
    }
}
