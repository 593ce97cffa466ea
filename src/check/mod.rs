//! `rigger check`: drift detection built for cron.
//!
//! Runs a playbook in check + diff mode (no host is ever changed: modules only
//! query, `command`/`shell` tasks are skipped unless marked `check_mode: false`),
//! classifies every host as in sync, drifted, failed or unreachable, records
//! the run in a SQLite history, prints a report (text, JSON, JUnit), mails it,
//! and optionally remediates the drifted hosts.
//!
//! Exit codes (documented in docs/check-report.md): 0 in sync, 1 error (rigger,
//! playbook, or a task failed), 2 drift, 3 another run of the same check held
//! the lock past `--lock-timeout`, 4 unreachable host(s) without drift, 6
//! drift and unreachable, 5 usage error, 99 interrupted by Ctrl-C (143 by SIGTERM).

pub mod config;
pub mod context;
pub mod history;
pub mod lock;
pub mod logfile;
pub mod mail;
pub mod report;
pub mod schedule;

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

use crate::calendar::{now_unix, rfc3339};
use crate::cli::{CheckAction, CheckArgs, CheckDiffArgs, CheckFormat, CheckHistoryArgs, OutputFormat};
use crate::config::run_options;
use crate::error::AppError;
use crate::exec::runner::Runner;
use crate::output::{Format, Renderer, Status};
use crate::playbook;
use crate::state::Location;
use history::History;
use report::{CheckReport, HostState, PlaybookInfo, Remediation, TaskState};

/// Exit code when another run of the same check holds the lock.
pub const EXIT_LOCKED: i32 = 3;

pub async fn run(a: CheckArgs, verbosity: u8) -> Result<i32, AppError> {
    match &a.action {
        Some(CheckAction::History(h)) => history_cmd(h),
        Some(CheckAction::Diff(d)) => diff_cmd(d),
        None => check(a, verbosity).await,
    }
}

fn sha256_hex(data: &[u8]) -> String {
    Sha256::digest(data).iter().map(|b| format!("{b:02x}")).collect()
}

use context::{absolute, Entry, Resolved};

/// Inventory sources as given, with existing paths made absolute (for the
/// history and for cron, which runs elsewhere).
fn inventory_sources(a: &CheckArgs) -> Vec<String> {
    // The `inventory` setting (rigger.toml, environment, ansible.cfg) when
    // no -i is given: the schedule names it explicitly.
    let configured = &crate::settings::get().inventory;
    let given = if a.target.inventory.is_empty() && configured.origin != crate::settings::Origin::Default {
        &configured.value
    } else {
        &a.target.inventory
    };
    given
        .iter()
        .map(|s| {
            let p = Path::new(s);
            if !s.contains(',') && p.exists() {
                absolute(p).display().to_string()
            } else {
                s.clone()
            }
        })
        .collect()
}

/// What identifies "the same check" for the lock, the history and cron:
/// playbook path, inventory and limit.
fn check_key(playbook: &Path, inventory: &[String], limit: Option<&str>) -> String {
    let id = format!(
        "{}\n{}\n{}",
        playbook.display(),
        inventory.join(":"),
        limit.unwrap_or("")
    );
    sha256_hex(id.as_bytes())[..16].to_string()
}

/// Where the history is: `--db` (`RIGGER_CHECK_DB`), else the `state`
/// setting (`RIGGER_STATE_URL`, rigger.toml's `[defaults] state`), else
/// the default file. The flag says the location came from a rigger.toml
/// (which a schedule reads through `--config`).
fn db_location(db: Option<&Path>) -> Result<(Location, bool), AppError> {
    if let Some(p) = db {
        return Ok((
            match Location::from_path(p) {
                Location::Sqlite(p) => Location::Sqlite(context::absolute(&p)),
                pg => pg,
            },
            false,
        ));
    }
    let s = &crate::settings::get().state;
    match &s.value {
        Some(v) => Ok((
            Location::parse(v),
            matches!(s.origin, crate::settings::Origin::File { .. }),
        )),
        None => Ok((Location::Sqlite(context::absolute(&history::default_path()?)), false)),
    }
}

/// Where run messages go: the log file, else stderr.
struct RunLog {
    file: Option<logfile::LogFile>,
}

impl RunLog {
    fn info(&self, msg: &str) {
        if let Some(f) = &self.file {
            f.line(msg);
        }
    }
    /// Errors and warnings also go to stderr (cron mails it).
    fn warn(&self, msg: &str) {
        self.info(msg);
        stderrln!("rigger check: {msg}");
    }
}

/// What a check has loaded and resolved before it waits for its lock or
/// touches a host.
struct Prepared {
    config_path: Option<PathBuf>,
    config_text: Option<String>,
    cfg: config::Config,
    smtp: config::SmtpConfig,
    mail_to: Vec<String>,
    mail_from: String,
    book: playbook::Playbook,
    opts: crate::exec::runner::RunOptions,
    inv: crate::inventory::Inventory,
    hosts: Vec<String>,
    db: Location,
    /// `db` came from rigger.toml's `[defaults] state`.
    db_from_file: bool,
}

/// Everything a user can get wrong is checked here, before waiting or touching a host.
fn prepare(a: &CheckArgs, pb_path: &Path, verbosity: u8) -> Result<Prepared, AppError> {
    let config_path = config::locate(a.config.as_deref());
    let config_text = match &config_path {
        Some(p) => Some(
            std::fs::read_to_string(p)
                .map_err(|e| AppError::Usage(format!("cannot read the config file {}: {e}", p.display())))?,
        ),
        None => None,
    };
    let cfg = match (&config_path, &config_text) {
        (Some(p), Some(t)) => config::parse(t, &p.display().to_string())?,
        _ => config::Config::default(),
    };
    let mut smtp = cfg.check.smtp.clone();
    smtp.host = a.smtp_host.clone().or(smtp.host);
    smtp.port = a.smtp_port.or(smtp.port);
    smtp.tls = a.smtp_tls.clone().or(smtp.tls);
    smtp.username = a.smtp_username.clone().or(smtp.username);
    smtp.password = a.smtp_password.clone().or(smtp.password);
    if let Some(t) = &smtp.tls {
        mail::parse_tls(t)?;
    }
    // Settings that cannot be used (a password without TLS) stop the check
    // before it runs, not when the report is sent.
    mail::settings(&smtp)?;
    let mail_to = if a.mail_to.is_empty() {
        cfg.check.mail_to.clone()
    } else {
        a.mail_to.clone()
    };
    let mail_from = a
        .mail_from
        .clone()
        .or(cfg.check.mail_from.clone())
        .unwrap_or_else(|| "rigger@localhost".into());
    if !mail_to.is_empty() {
        // Validates the addresses now rather than after the run.
        mail::build(&mail::Mail {
            from: mail_from.clone(),
            to: mail_to.clone(),
            subject: String::new(),
            plain: String::new(),
            html: String::new(),
        })?;
    }
    let ctx = playbook::LoadCtx {
        extra_vars: crate::config::parse_extra_vars(&a.target.extra_vars)?,
        ..Default::default()
    };
    let book = playbook::load_playbook(pb_path, &ctx);
    ctx.print_warnings();
    let book = book?;
    let mut opts = run_options(&a.target, verbosity, a.task_timeout)?;
    // Never change a host: check mode is forced, whatever -C said.
    opts.check = true;
    opts.diff = true;
    opts.keep_task_records = true;
    opts.tags = crate::config::tag_list("--tags", &a.tags)?;
    opts.skip_tags = crate::config::tag_list("--skip-tags", &a.skip_tags)?;
    // An unattended check must not run against a partial inventory: every
    // source that cannot be parsed is an error here, whatever ansible.cfg says.
    let mut inv = crate::inventory::Inventory::load(&crate::config::inventory_sources(&a.target.inventory))?;
    crate::open_files::raise_or_warn(inv.hosts.len());
    if let Some(dir) = book.path.parent() {
        inv.load_vars_dirs(dir)?;
    }
    let mut hosts: Vec<String> = Vec::new();
    let allowed = match &opts.limit {
        Some(l) => Some(inv.select(l)?),
        None => None,
    };
    for play in &book.plays {
        for h in inv.select(&play.hosts)? {
            if allowed.as_ref().is_none_or(|al| al.contains(&h)) && !hosts.contains(&h) {
                hosts.push(h);
            }
        }
    }
    crate::shard::retain(&mut hosts, opts.shard);
    if a.run_id.is_some() && opts.shard.is_none() {
        return Err(AppError::Usage(
            "--run-id names the run that the shards of a sharded check share: give --shard K/N too".into(),
        ));
    }
    let (db, db_from_file) = db_location(a.db.as_deref())?;
    Ok(Prepared {
        config_path: config_path.map(|p| context::absolute(&p)),
        config_text,
        cfg,
        smtp,
        mail_to,
        mail_from,
        book,
        opts,
        inv,
        hosts,
        db,
        db_from_file,
    })
}

impl Prepared {
    /// What `--dry-run` prints and `--install` compares.
    fn resolved(&self, a: &CheckArgs, pb_abs: &Path, inventory: &[String]) -> Result<Resolved, AppError> {
        let pb_bytes =
            std::fs::read(pb_abs).map_err(|e| AppError::Other(format!("cannot read {}: {e}", pb_abs.display())))?;
        let tls = mail::parse_tls(self.smtp.tls.as_deref().unwrap_or("none"))?;
        let known_hosts = match &a.target.known_hosts {
            Some(p) => vec![context::absolute(p).display().to_string()],
            None => crate::connection::home_dir()
                .map(|h| vec![h.join(".ssh/known_hosts").display().to_string()])
                .unwrap_or_default(),
        };
        Ok(Resolved {
            playbook: pb_abs.display().to_string(),
            playbook_sha256: sha256_hex(&pb_bytes),
            inventory: inventory.to_vec(),
            hosts: self.hosts.clone(),
            config: self.config_path.as_ref().map(|p| p.display().to_string()),
            config_sha256: self.config_text.as_ref().map(|t| sha256_hex(t.as_bytes())),
            db: self.db.to_string(),
            known_hosts,
            default_remote_user: a.target.user.clone().unwrap_or_else(crate::connection::default_user),
            mail_to: self.mail_to.clone(),
            mail_from: self.mail_from.clone(),
            smtp_host: self.smtp.host.clone().unwrap_or_else(|| "localhost".into()),
            smtp_port: self.smtp.port.unwrap_or(tls.default_port()),
            smtp_tls: format!("{tls:?}").to_ascii_lowercase(),
            smtp_username: self.smtp.username.clone(),
            smtp_password_set: self.smtp.password.is_some(),
            become_password_set: self.opts.become_password.is_some(),
            log_file: a.log_file.as_ref().map(|p| context::absolute(p).display().to_string()),
            env: context::compared_env(),
        })
    }
}

async fn check(a: CheckArgs, verbosity: u8) -> Result<i32, AppError> {
    let started_at = Instant::now();
    let Some(pb_path) = a.playbook.clone() else {
        return Err(AppError::Usage("rigger check needs a PLAYBOOK".into()));
    };
    crate::config::playbook_exists(&pb_path)?;
    let pb_abs = absolute(&pb_path);
    let inventory = inventory_sources(&a);
    let key = check_key(&pb_abs, &inventory, a.target.limit.as_deref());

    if a.uninstall {
        return schedule_cmd(&a, &key, None);
    }
    let Prepared {
        config_path: _,
        config_text: _,
        cfg,
        smtp,
        mail_to,
        mail_from,
        book,
        opts,
        inv,
        hosts,
        db,
        db_from_file: _,
    } = {
        let p = prepare(&a, &pb_path, verbosity)?;
        if a.dry_run || a.install {
            let r = p.resolved(&a, &pb_abs, &inventory)?;
            if a.dry_run {
                stdoutln!("{}", serde_json::to_string_pretty(&r).unwrap_or_default());
                return Ok(0);
            }
            if let Location::Postgres(url) = &p.db {
                if url.has_password() && !p.db_from_file {
                    return Err(AppError::Usage(format!(
                        "--install would write the password of {url} into the schedule: put the URL in \
                         rigger.toml's `[defaults] state` (the schedule reads it through --config), or use a \
                         URL without a password"
                    )));
                }
            }
            let entry = scheduled_entry(&a, &pb_abs, &inventory, &p, verbosity);
            return schedule_cmd(&a, &key, Some((entry, r)));
        }
        p
    };

    let log = RunLog {
        file: match &a.log_file {
            Some(p) => Some(logfile::open(p, a.log_max_size)?),
            None => None,
        },
    };
    if a.splay > 0 {
        let delay = rand::random_range(0..=a.splay * 1000);
        log.info(&format!("splay: sleeping {} ms", delay));
        tokio::time::sleep(Duration::from_millis(delay)).await;
    }

    // The lock keeps two runs of one check on this machine apart (with a
    // shared database, beside the default file); shards are apart by their
    // `shard` in the history.
    let lock_file_dir = match &db {
        Location::Sqlite(p) => p.clone(),
        Location::Postgres(_) => history::default_path()?,
    };
    let lock_dir = lock_file_dir
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."));
    crate::private_files::create_dir(&lock_dir)
        .map_err(|e| AppError::Other(format!("cannot create {}: {e}", lock_dir.display())))?;
    // Shards of one check may run on one machine side by side.
    let lock_path = match a.target.shard {
        Some(s) => lock_dir.join(format!("check-{key}-shard-{}-of-{}.lock", s.index, s.count)),
        None => lock_dir.join(format!("check-{key}.lock")),
    };
    let _lock = match lock::acquire(&lock_path, Duration::from_secs(a.lock_timeout)).await? {
        lock::LockResult::Acquired(l) => l,
        lock::LockResult::TimedOut { holder } => {
            let who = holder.map(|p| format!(" (pid {p})")).unwrap_or_default();
            log.warn(&format!(
                "another run of this check{who} holds {} after waiting {} s; not running (exit {EXIT_LOCKED}). \
                 Hint: raise --lock-timeout or space the schedules further apart",
                lock_path.display(),
                a.lock_timeout
            ));
            return Ok(EXIT_LOCKED);
        }
    };

    let mut hist = History::open_at(&db)?;
    let pb_bytes =
        std::fs::read(&pb_path).map_err(|e| AppError::Other(format!("cannot read {}: {e}", pb_path.display())))?;
    let pb_sha = sha256_hex(&pb_bytes);
    let started = now_unix();
    let inv_text = inventory.join(":");
    let who = history::RunIdentity {
        run_key: a.run_id.as_deref().map(|id| history::expand_run_id(id, started)),
        shard: a.target.shard.map(|s| s.to_string()),
    };
    let run_id = hist.start_run_as(&key, started, &pb_abs.display().to_string(), &pb_sha, &inv_text, &who)?;
    log.info(&format!(
        "run {run_id}: checking {} against {} host(s) ({inv_text})",
        pb_abs.display(),
        hosts.len()
    ));

    let out: Box<dyn Write + Send> = match (&log.file, verbosity) {
        (Some(f), _) => Box::new(f.clone()),
        (None, v) if v >= 2 => Box::new(std::io::stderr()),
        _ => Box::new(std::io::sink()),
    };
    let renderer = Arc::new(Renderer::to_writer(Format::Text, verbosity, true, out));
    crate::audit::attach(&renderer);
    // A playbook can read it (`lookup('env', 'RIGGER_SMTP_PASSWORD')`): mask it too.
    if let Some(pw) = &smtp.password {
        renderer.secrets().add(pw);
    }
    let runner = Runner::new(opts.clone(), inv.clone(), renderer.clone());
    let summary = match runner.run_playbook(&book).await {
        Ok(s) => s,
        Err(e) => {
            let _ = hist.abort_run(run_id, now_unix(), 1, "error");
            let text = e.render();
            log.info(&format!(
                "run {run_id}: error: {}",
                crate::output::redact::run_secrets().redact_str(&text)
            ));
            return Err(e.into());
        }
    };
    if summary.interrupted {
        let code = crate::exec::runner::interrupted_exit_code();
        let by = crate::exec::runner::interrupted_by().unwrap_or_else(|| "a signal".into());
        hist.abort_run(run_id, now_unix(), code, "interrupted")?;
        log.warn(&format!("run {run_id}: interrupted by {by}"));
        return Ok(code);
    }

    let mut host_reports = report::build_hosts(&hosts, &summary.task_records);
    let drift: BTreeSet<history::DriftKey> = host_reports
        .iter()
        .flat_map(|h| {
            h.tasks
                .iter()
                .filter(|t| t.status == TaskState::Drifted)
                .map(|t| (h.name.clone(), t.task.clone()))
        })
        .collect();
    let streaks = hist.drift_streaks(&key, run_id, started, &drift)?;
    for h in &mut host_reports {
        for t in &mut h.tasks {
            if t.status == TaskState::Drifted {
                t.since = streaks.get(&(h.name.clone(), t.task.clone())).cloned();
            }
        }
    }
    let summary_counts = report::summarize(&host_reports);
    let code = report::exit_code(&summary_counts);
    let finished = now_unix();
    hist.finish_run(run_id, finished, code, &host_reports)?;
    let mut rep = CheckReport {
        schema_version: report::SCHEMA_VERSION,
        run_id,
        started: rfc3339(started),
        finished: rfc3339(finished),
        duration_ms: started_at.elapsed().as_millis() as u64,
        playbook: PlaybookInfo {
            path: pb_abs.display().to_string(),
            sha256: pb_sha,
        },
        inventory,
        exit_code: code,
        summary: summary_counts,
        hosts: host_reports,
        remediation: None,
    };
    log.info(&format!("run {run_id}: {} (exit {code})", rep.headline()));

    if a.remediate {
        let drifted: Vec<String> = rep
            .hosts
            .iter()
            .filter(|h| h.status == HostState::Drifted)
            .map(|h| h.name.clone())
            .collect();
        if !drifted.is_empty() {
            log.info(&format!("run {run_id}: remediating {}", drifted.join(", ")));
            let mut fix = opts.clone();
            fix.check = false;
            fix.limit = Some(drifted.join(":"));
            let runner = Runner::new(fix, inv.clone(), renderer.clone());
            let fixed = runner.run_playbook(&book).await?;
            let mut r = Remediation {
                hosts: BTreeMap::new(),
                failed: Vec::new(),
            };
            for rec in &fixed.task_records {
                match rec.status {
                    Status::Changed => r.hosts.entry(rec.host.clone()).or_default().push(rec.task.clone()),
                    Status::Failed | Status::Unreachable if !rec.ignored && !r.failed.contains(&rec.host) => {
                        r.failed.push(rec.host.clone());
                    }
                    _ => {}
                }
            }
            hist.record_remediation(run_id, &r)?;
            if !r.failed.is_empty() {
                log.warn(&format!("remediation failed on {}", r.failed.join(", ")));
            }
            rep.remediation = Some(r);
        }
    }

    // The run's one decision (a TTY, NO_COLOR, --color, Ansible's settings).
    let color = crate::output::color::enabled();
    let text = match a.format {
        CheckFormat::Text => rep.to_text(verbosity, finished, color),
        CheckFormat::Json => format!("{}\n", rep.to_json()),
        CheckFormat::Junit => rep.to_junit(),
    };
    let mut stdout = std::io::stdout();
    let _ = stdout.write_all(text.as_bytes());
    let _ = stdout.flush();

    let mut code = code;
    if !mail_to.is_empty() && (code != 0 || a.mail_always) {
        let name = cfg
            .check
            .environment
            .clone()
            .unwrap_or_else(|| rep.inventory.join(", "));
        let remediate = remediate_command(&a, &pb_abs, &rep.inventory);
        let m = mail::Mail {
            from: mail_from,
            to: mail_to.clone(),
            subject: rep.mail_subject(&name),
            plain: rep.to_mail_text(&name, &remediate, finished),
            html: rep.to_html(finished, &remediate),
        };
        let note = |msg: &str| log.warn(msg);
        let delivery = match mail::send(&smtp, &m, &note).await {
            Ok(attempts) => {
                log.info(&format!("run {run_id}: report mailed to {}", mail_to.join(", ")));
                if attempts == 1 {
                    "mailed".to_string()
                } else {
                    format!("mailed after {attempts} attempts")
                }
            }
            Err(e) => {
                // The report did not reach anyone: the exit code says so (+8).
                code |= EXIT_UNDELIVERED;
                log.warn(&format!(
                    "cannot mail the report: {}; exit {code} ({EXIT_UNDELIVERED} added: report not delivered)",
                    e.error
                ));
                format!("failed: {}", e.error)
            }
        };
        hist.record_delivery(run_id, code, &delivery)?;
    }
    Ok(code)
}

/// Added to the exit code when the mail report could not be delivered.
pub const EXIT_UNDELIVERED: i32 = 8;

/// `rigger run` with this check's playbook, inventory, limit and target
/// settings: what converges the drifted hosts.
fn remediate_command(a: &CheckArgs, pb_abs: &Path, inventory: &[String]) -> String {
    let mut c = vec!["rigger".to_string(), "run".into(), pb_abs.display().to_string()];
    for i in inventory {
        c.extend(["-i".into(), i.clone()]);
    }
    target_flags(a, &mut c);
    if !a.tags.is_empty() {
        c.extend(["--tags".into(), a.tags.join(",")]);
    }
    if !a.skip_tags.is_empty() {
        c.extend(["--skip-tags".into(), a.skip_tags.join(",")]);
    }
    c.iter().map(|w| context::sh_word(w)).collect::<Vec<_>>().join(" ")
}

/// The connection and target flags of a check, paths absolute.
fn target_flags(a: &CheckArgs, c: &mut Vec<String>) {
    let t = &a.target;
    let opt = |c: &mut Vec<String>, flag: &str, v: &Option<String>| {
        if let Some(v) = v {
            c.extend([flag.to_string(), v.clone()]);
        }
    };
    opt(c, "--limit", &t.limit);
    opt(c, "--shard", &t.shard.map(|s| s.to_string()));
    opt(c, "--user", &t.user);
    opt(
        c,
        "--private-key",
        &t.private_key.as_ref().map(|p| absolute(p).display().to_string()),
    );
    opt(
        c,
        "--known-hosts",
        &t.known_hosts.as_ref().map(|p| absolute(p).display().to_string()),
    );
    opt(c, "--connection", &t.connection);
    // A setting from the environment is made explicit (cron has none);
    // rigger.toml is named by the schedule itself.
    let s = crate::settings::get().with_cli(&crate::config::cli_values(t)).ok();
    let explicit = |o: &crate::settings::Origin| {
        matches!(
            o,
            crate::settings::Origin::CommandLine | crate::settings::Origin::Env(_)
        )
    };
    if let Some(s) = &s {
        if explicit(&s.host_key_checking.origin) && s.host_key_checking.value != "strict" {
            c.extend(["--host-key-checking".into(), s.host_key_checking.value.clone()]);
        }
    }
    if t.become_ {
        c.push("--become".into());
    }
    opt(c, "--become-user", &t.become_user);
    opt(c, "--become-method", &t.become_method);
    for e in &t.extra_vars {
        // `@file` is read relative to the working directory: made absolute.
        let e = match e.strip_prefix('@') {
            Some(f) => format!("@{}", absolute(Path::new(f)).display()),
            None => e.clone(),
        };
        c.extend(["-e".into(), e]);
    }
    if let Some(s) = &s {
        if explicit(&s.forks.origin) && s.forks.value != 50 {
            c.extend(["--forks".into(), s.forks.value.to_string()]);
        }
        if explicit(&s.timeout.origin) && s.timeout.value != 10 {
            c.extend(["--timeout".into(), s.timeout.value.to_string()]);
        }
    }
    if let Some(n) = t.retries {
        c.extend(["--retries".into(), n.to_string()]);
    }
    if let Some(limit) = t.run_timeout {
        c.extend(["--run-timeout".into(), crate::exec::runner::human_duration(limit)]);
    }
    if t.max_output != "16M" {
        c.extend(["--max-output".into(), t.max_output.clone()]);
    }
}

/// The entry cron/systemd will run: this check without the scheduling
/// flags, with everything it found through the current directory and the
/// environment made explicit (see [`context`]).
fn scheduled_entry(a: &CheckArgs, pb_abs: &Path, inventory: &[String], p: &Prepared, verbosity: u8) -> Entry {
    let exe = std::env::current_exe()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|_| "rigger".into());
    let mut c = vec![exe, "check".into(), pb_abs.display().to_string()];
    for i in inventory {
        c.extend(["-i".into(), i.clone()]);
    }
    target_flags(a, &mut c);
    if a.target.known_hosts.is_none() {
        // The default (~/.ssh/known_hosts), named: the entry does not depend on HOME for it.
        if let Some(kh) = crate::connection::home_dir().map(|h| h.join(".ssh/known_hosts")) {
            c.extend(["--known-hosts".into(), kh.display().to_string()]);
        }
    }
    if !a.tags.is_empty() {
        c.extend(["--tags".into(), a.tags.join(",")]);
    }
    if !a.skip_tags.is_empty() {
        c.extend(["--skip-tags".into(), a.skip_tags.join(",")]);
    }
    if a.format != CheckFormat::Text {
        let f = if a.format == CheckFormat::Json { "json" } else { "junit" };
        c.extend(["--format".into(), f.into()]);
    }
    if let Some(id) = &a.run_id {
        c.extend(["--run-id".into(), id.clone()]);
    }
    match &p.db {
        Location::Sqlite(path) => c.extend(["--db".into(), path.display().to_string()]),
        // From rigger.toml, which the entry names with --config: the
        // password stays in that file.
        Location::Postgres(_) if p.db_from_file => {}
        // Checked by `check_schedulable`: no password in it.
        Location::Postgres(url) => c.extend(["--db".into(), url.expose().to_string()]),
    }
    if let Some(cfg) = &p.config_path {
        c.extend(["--config".into(), cfg.display().to_string()]);
    }
    if let Some(l) = &a.log_file {
        c.extend(["--log-file".into(), absolute(l).display().to_string()]);
        if a.log_max_size != 10 * 1024 * 1024 {
            c.extend(["--log-max-size".into(), a.log_max_size.to_string()]);
        }
    }
    let opt = |c: &mut Vec<String>, flag: &str, v: &Option<String>| {
        if let Some(v) = v {
            c.extend([flag.to_string(), v.clone()]);
        }
    };
    for m in &a.mail_to {
        c.extend(["--mail-to".into(), m.clone()]);
    }
    opt(&mut c, "--mail-from", &a.mail_from);
    if a.mail_always {
        c.push("--mail-always".into());
    }
    opt(&mut c, "--smtp-host", &a.smtp_host);
    opt(&mut c, "--smtp-port", &a.smtp_port.map(|p| p.to_string()));
    opt(&mut c, "--smtp-tls", &a.smtp_tls);
    opt(&mut c, "--smtp-username", &a.smtp_username);
    if a.lock_timeout > 0 {
        c.extend(["--lock-timeout".into(), a.lock_timeout.to_string()]);
    }
    if a.splay > 0 {
        c.extend(["--splay".into(), a.splay.to_string()]);
    }
    if a.remediate {
        c.push("--remediate".into());
    }
    if a.task_timeout > 0 {
        c.extend(["--task-timeout".into(), a.task_timeout.to_string()]);
    }
    if verbosity > 0 {
        c.push(format!("-{}", "v".repeat(verbosity as usize)));
    }
    Entry {
        cwd: std::env::current_dir().unwrap_or_else(|_| PathBuf::from("/")),
        env: context::current_env().into_iter().collect(),
        argv: c,
    }
}

fn schedule_cmd(a: &CheckArgs, key: &str, install: Option<(Entry, Resolved)>) -> Result<i32, AppError> {
    let use_systemd = match a.scheduler.as_str() {
        "auto" => schedule::systemd_running(),
        "systemd" => true,
        "cron" => false,
        other => {
            return Err(AppError::Usage(format!(
                "--scheduler {other}: use auto, cron or systemd"
            )))
        }
    };
    let Some((entry, here)) = install else {
        let removed = if use_systemd {
            schedule::uninstall_systemd(key)?
        } else {
            schedule::uninstall_cron(key)?
        };
        if removed {
            stdoutln!("removed the scheduled check {key}");
        } else {
            stdoutln!("no scheduled check {key} was installed");
        }
        return Ok(0);
    };
    let Some(expr) = &a.cron else {
        return Err(AppError::Usage(
            "--install needs --cron \"MIN HOUR DOM MON DOW\"".into(),
        ));
    };
    schedule::validate_cron(expr)?;
    let calendar = if use_systemd {
        Some(schedule::on_calendar(expr)?)
    } else {
        None
    };
    // Run the entry once as the scheduler will, connecting nowhere, and
    // install it only when it would check the same thing the same way.
    let scheduler = if use_systemd {
        context::Scheduler::Systemd
    } else {
        context::Scheduler::Cron
    };
    let scheduled = context::probe(&entry, scheduler)?;
    let diffs = here.differences(&scheduled);
    if !diffs.is_empty() {
        let mut hints = Vec::new();
        if here.smtp_password_set && !scheduled.smtp_password_set {
            hints.push(
                "the SMTP password is never written into a schedule: put it in rigger.toml [check.smtp] password",
            );
        }
        if here.become_password_set && !scheduled.become_password_set {
            hints.push("RIGGER_BECOME_PASSWORD is never written into a schedule: set ansible_become_password in the inventory (vault-encrypted)");
        }
        let hints: String = hints.iter().map(|h| format!("\nhint: {h}")).collect();
        return Err(AppError::Other(format!(
            "not installed: run as {} runs it, this check would behave differently:\n  {}{hints}",
            if use_systemd { "systemd" } else { "cron" },
            diffs.join("\n  ")
        )));
    }
    if std::env::var_os("SSH_AUTH_SOCK").is_some() {
        stderrln!(
            "rigger check: warning: the scheduled check runs without your ssh agent (SSH_AUTH_SOCK); \
             hosts must accept a key file (--private-key or ansible_ssh_private_key_file)"
        );
    }
    match calendar {
        Some(cal) => {
            let path = schedule::install_systemd(key, &cal, &entry)?;
            stdoutln!("installed {} (OnCalendar={cal})", path.display());
        }
        None => {
            let line = schedule::cron_line(expr, &entry);
            schedule::install_cron(key, &line)?;
            stdoutln!("installed crontab entry:\n{line}");
        }
    }
    Ok(0)
}

fn history_cmd(h: &CheckHistoryArgs) -> Result<i32, AppError> {
    let (db, _) = db_location(h.db.as_deref())?;
    let hist = History::open_existing_at(&db)?;
    let runs = hist.runs(h.last)?;
    if h.format == OutputFormat::Json {
        let v = serde_json::json!({"schema_version": report::SCHEMA_VERSION, "runs": runs});
        stdoutln!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
        return Ok(0);
    }
    stdoutln!(
        "{:>5}  {:<20}  {:>6}  {:<11}  {:>4}  {:>5}  {:>7}  {:>7}  {:>6}  PLAYBOOK",
        "RUN",
        "STARTED",
        "SECS",
        "STATUS",
        "EXIT",
        "HOSTS",
        "DRIFTED",
        "UNREACH",
        "FAILED"
    );
    for r in &runs {
        let dur = r
            .finished_unix
            .map(|f| (f - r.started_unix).to_string())
            .unwrap_or_else(|| "-".into());
        stdoutln!(
            "{:>5}  {:<20}  {:>6}  {:<11}  {:>4}  {:>5}  {:>7}  {:>7}  {:>6}  {}",
            r.id,
            r.started,
            dur,
            r.status,
            r.exit_code.map(|c| c.to_string()).unwrap_or_else(|| "-".into()),
            r.hosts,
            r.drifted,
            r.unreachable,
            r.failed,
            match &r.run_id {
                Some(id) => format!("{} (run {id}, {} shard(s))", r.playbook, r.shards),
                None => r.playbook.clone(),
            }
        );
    }
    Ok(0)
}

fn diff_cmd(d: &CheckDiffArgs) -> Result<i32, AppError> {
    let (db, _) = db_location(d.db.as_deref())?;
    let hist = History::open_existing_at(&db)?;
    for id in [d.run1, d.run2] {
        match hist.run(id)? {
            Some(r) if r.status == "done" => {}
            Some(r) => {
                return Err(AppError::Usage(format!(
                    "run {id} has no results (status {}); see `rigger check history`",
                    r.status
                )))
            }
            None => {
                return Err(AppError::Usage(format!(
                    "there is no run {id} in {db}; see `rigger check history`"
                )))
            }
        }
    }
    let (a, b) = (hist.drift_of(d.run1)?, hist.drift_of(d.run2)?);
    let entry = |run: i64, k: &history::DriftKey| -> Result<serde_json::Value, AppError> {
        Ok(serde_json::json!({"host": k.0, "task": k.1, "diff": hist.task_diff(run, &k.0, &k.1)?}))
    };
    let new: Vec<_> = b.difference(&a).collect();
    let resolved: Vec<_> = a.difference(&b).collect();
    let still: Vec<_> = a.intersection(&b).collect();
    if d.format == OutputFormat::Json {
        let v = serde_json::json!({
            "schema_version": report::SCHEMA_VERSION,
            "run1": d.run1,
            "run2": d.run2,
            "new": new.iter().map(|k| entry(d.run2, k)).collect::<Result<Vec<_>, _>>()?,
            "resolved": resolved.iter().map(|k| entry(d.run1, k)).collect::<Result<Vec<_>, _>>()?,
            "unchanged": still.iter().map(|k| entry(d.run2, k)).collect::<Result<Vec<_>, _>>()?,
        });
        stdoutln!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
        return Ok(0);
    }
    stdoutln!("drift from run {} to run {}:", d.run1, d.run2);
    let section = |title: &str, keys: &[&history::DriftKey], run: i64, show_diff: bool| -> Result<(), AppError> {
        stdoutln!("\n{title} ({}):", keys.len());
        for k in keys {
            stdoutln!("  {} [{}]", k.0, k.1);
            if show_diff {
                for line in report::diff_text(&hist.task_diff(run, &k.0, &k.1)?)
                    .lines()
                    .filter(|l| !l.is_empty())
                {
                    stdoutln!("      {line}");
                }
            }
        }
        Ok(())
    };
    section("new drift", &new, d.run2, true)?;
    section("resolved drift", &resolved, d.run1, false)?;
    section("still drifted", &still, d.run2, false)?;
    // Hosts whose reachability changed are worth a line too.
    let (ha, hb): (BTreeMap<_, _>, BTreeMap<_, _>) = (
        hist.host_states(d.run1)?.into_iter().collect(),
        hist.host_states(d.run2)?.into_iter().collect(),
    );
    for (host, sb) in &hb {
        if let Some(sa) = ha.get(host) {
            if sa != sb && (sa == "unreachable" || sb == "unreachable" || sa == "failed" || sb == "failed") {
                stdoutln!("\n{host}: {sa} -> {sb}");
            }
        }
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_key_depends_on_playbook_inventory_and_limit() {
        let p = Path::new("/srv/site.yml");
        let k = check_key(p, &["inv".into()], None);
        assert_eq!(k.len(), 16);
        assert_eq!(k, check_key(p, &["inv".into()], None));
        assert_ne!(k, check_key(p, &["inv2".into()], None));
        assert_ne!(k, check_key(p, &["inv".into()], Some("web")));
        assert_ne!(k, check_key(Path::new("/srv/other.yml"), &["inv".into()], None));
    }
}
