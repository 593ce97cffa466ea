//! Guarded actions: a rule's `action:` runs a playbook on the alert's host
//! when the alert fires (and, with `on_resolve`, when it resolves).
//!
//! ```text
//! alert transition ─▶ guards (silenced, loop guard, cooldown, circuit breaker)
//!   ─▶ actions table (awaiting_approval | queued | skipped)
//!   ─▶ claim (queued → running, one UPDATE) ─▶ child `rigger run` ─▶ succeeded | failed
//!   ─▶ a notification about the alert that carries the run (recap, diff)
//! ```
//!
//! Every action is a row of the state file before anything runs, and a row
//! is moved from `queued` to `running` by one UPDATE before the child is
//! started: a restart resumes what was queued (or awaits approval) and
//! reports what was running as interrupted; nothing runs twice.
//!
//! The playbook runs as a child `rigger run`, not in this process: the run
//! engine's process-wide state (the interrupt flag that SIGTERM sets, the
//! output renderer, the secrets to mask) stays the run's own; a playbook
//! that hangs is killed at its timeout without touching collection; the
//! child's pid goes into the row. Values from the alert (labels, summary,
//! host) reach the playbook as `!unsafe` extra vars: never templated.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};
use tokio::sync::watch as tokio_watch;

use super::alert::{self, ActionRecord, Envelope};
use super::config::{ActionConfig, Labels, WatchConfig};
use super::journal::log;
use super::state::{self, Alert, AlertState, Notification};
use super::store::{Db, StoreError};
use crate::state::{params, RowReader, StateError, P};

/// The states of an action that count as a run (for the breaker and the
/// cooldown): everything but skipped, rejected and expired.
const RUN_STATES: &str = "('awaiting_approval','queued','running','succeeded','failed','interrupted')";

const COLUMNS: &str = "id, rule, host, fingerprint, trigger, playbook, state, reason, dry_run, created, \
     expires, started, finished, pid, exit_code, changed, recap, diff, output, approved_by, alert";

fn from_row(r: &RowReader<'_>) -> Result<(ActionRecord, String), StateError> {
    let recap = r.opt_text(16)?;
    Ok((
        ActionRecord {
            id: r.i64(0)?,
            rule: r.text(1)?,
            host: r.text(2)?,
            fingerprint: r.text(3)?,
            trigger: r.text(4)?,
            playbook: r.text(5)?,
            state: r.text(6)?,
            reason: r.opt_text(7)?,
            dry_run: r.i64(8)? != 0,
            created: r.f64(9)?,
            expires: r.opt_f64(10)?,
            started: r.opt_f64(11)?,
            finished: r.opt_f64(12)?,
            pid: r.opt_i64(13)?,
            exit_code: r.opt_i64(14)?,
            changed: r.opt_i64(15)?,
            recap: recap.and_then(|s| serde_json::from_str(&s).ok()),
            diff: r.opt_text(17)?,
            output: r.opt_text(18)?,
            approved_by: r.opt_text(19)?,
        },
        r.text(20)?,
    ))
}

fn insert(db: &Db, rec: &ActionRecord, alert: &Alert) -> Result<i64, StoreError> {
    let alert = serde_json::to_string(alert)?;
    Ok(db.conn.insert_id(
        "INSERT INTO actions(rule, host, fingerprint, trigger, playbook, state, reason, dry_run, created, expires, alert)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11) RETURNING id",
        params![
            &rec.rule,
            &rec.host,
            &rec.fingerprint,
            &rec.trigger,
            &rec.playbook,
            &rec.state,
            rec.reason.as_ref(),
            i64::from(rec.dry_run),
            rec.created,
            rec.expires,
            &alert
        ],
    )?)
}

/// One action and the alert it was made for.
pub fn get(db: &Db, id: i64) -> Result<Option<(ActionRecord, Alert)>, StoreError> {
    let row = db.conn.query_opt(
        &format!("SELECT {COLUMNS} FROM actions WHERE id = ?1"),
        params![id],
        from_row,
    )?;
    Ok(match row {
        Some((rec, a)) => Some((rec, serde_json::from_str(&a)?)),
        None => None,
    })
}

fn select(db: &Db, filter: &str, args: &[P<'_>]) -> Result<Vec<(ActionRecord, Alert)>, StoreError> {
    let rows = db.conn.query_map(
        &format!("SELECT {COLUMNS} FROM actions WHERE {filter} ORDER BY id"),
        args,
        from_row,
    )?;
    rows.into_iter()
        .map(|(r, a)| Ok((r, serde_json::from_str(&a)?)))
        .collect()
}

/// The actions awaiting approval, queued or running, then (with `all`) the
/// 200 newest others.
pub fn list(db: &Db, all: bool) -> Result<Vec<ActionRecord>, StoreError> {
    let mut out: Vec<ActionRecord> = select(db, "state IN ('awaiting_approval','queued','running')", params![])?
        .into_iter()
        .map(|(r, _)| r)
        .collect();
    if all {
        let done = select(
            db,
            "state NOT IN ('awaiting_approval','queued','running') AND id IN \
             (SELECT id FROM actions ORDER BY id DESC LIMIT 200)",
            params![],
        )?;
        out.extend(done.into_iter().map(|(r, _)| r));
        out.sort_by_key(|r| r.id);
    }
    Ok(out)
}

/// What the guards decided for one transition.
#[derive(Debug, PartialEq)]
enum Verdict {
    Run,
    Skip { reason: String, notify: bool },
}

/// A one-row aggregate (`MAX(...)`): NULL when no row matched.
fn scalar_f64(db: &Db, sql: &str, args: &[P<'_>]) -> Result<Option<f64>, StoreError> {
    Ok(db.conn.query_opt(sql, args, |r| r.opt_f64(0))?.flatten())
}

/// The guards, in order: a suppressed alert, the loop guard, the cooldown,
/// the circuit breaker.
fn guards(
    db: &Db,
    ac: &ActionConfig,
    rule: &str,
    host: &str,
    trigger: &str,
    suppressed: Option<&str>,
    now: f64,
) -> Result<Verdict, StoreError> {
    if let Some(why) = suppressed {
        return Ok(Verdict::Skip {
            reason: format!("the alert is {why}"),
            notify: false,
        });
    }
    if trigger == "firing" {
        // The newest run on this host that changed something: an alert that
        // fires again soon after it is taken as that run's doing.
        let last: Option<(i64, f64)> = db.conn.query_opt(
            "SELECT id, finished FROM actions WHERE rule = ?1 AND host = ?2 AND state = 'succeeded'
             AND dry_run = 0 AND changed > 0 ORDER BY id DESC LIMIT 1",
            params![rule, host],
            |r| Ok((r.i64(0)?, r.opt_f64(1)?.unwrap_or(0.0))),
        )?;
        if let Some((id, finished)) = last {
            if now - finished < ac.loop_window.as_secs_f64() {
                // Said once per run that started the loop.
                let said = scalar_f64(
                    db,
                    "SELECT MAX(created) FROM actions WHERE rule = ?1 AND host = ?2 AND state = 'skipped'
                     AND reason LIKE 'loop guard%' AND created >= ?3",
                    params![rule, host, finished],
                )?
                .is_some();
                return Ok(Verdict::Skip {
                    reason: format!(
                        "loop guard: the alert fired again {:.0}s after action #{id} changed the host; \
                         no action of this rule on {host} until {}s after that run",
                        now - finished,
                        ac.loop_window.as_secs()
                    ),
                    notify: !said,
                });
            }
        }
    }
    let cooldown = ac.cooldown.as_secs_f64();
    if cooldown > 0.0 {
        let last = scalar_f64(
            db,
            &format!(
                "SELECT MAX(created) FROM actions WHERE rule = ?1 AND host = ?2 AND trigger = ?3 AND state IN {RUN_STATES}"
            ),
            params![rule, host, trigger],
        )?;
        if let Some(t) = last.filter(|t| now - t < cooldown) {
            return Ok(Verdict::Skip {
                reason: format!(
                    "cooldown: the last action of this rule on {host} was {:.0}s ago (cooldown {}s)",
                    now - t,
                    ac.cooldown.as_secs()
                ),
                notify: false,
            });
        }
    }
    let window = ac.window.as_secs_f64();
    let runs: i64 = db
        .conn
        .query_opt(
            &format!("SELECT COUNT(*) FROM actions WHERE rule = ?1 AND created >= ?2 AND state IN {RUN_STATES}"),
            params![rule, now - window],
            |r| r.i64(0),
        )?
        .unwrap_or(0);
    if runs >= ac.max_runs as i64 {
        // Said once per opening: when no breaker notice is in the window yet.
        let said = scalar_f64(
            db,
            "SELECT MAX(created) FROM actions WHERE rule = ?1 AND state = 'skipped'
             AND reason LIKE 'circuit breaker%' AND created >= ?2",
            params![rule, now - window],
        )?
        .is_some();
        return Ok(Verdict::Skip {
            reason: format!(
                "circuit breaker open: {runs} actions of rule {rule} in the last {}s (max_runs {}); \
                 its actions stop until fewer ran in the window",
                ac.window.as_secs(),
                ac.max_runs
            ),
            notify: !said,
        });
    }
    Ok(Verdict::Run)
}

/// An alert's transition: record the action it asks for (or why none runs).
/// Returns the new row and whether it is to be notified now.
pub fn on_transition(
    db: &Db,
    ac: &ActionConfig,
    rule: &str,
    alert: &Alert,
    before: AlertState,
    now: f64,
) -> Result<Option<(ActionRecord, bool)>, StoreError> {
    let trigger = match (before, alert.state) {
        (AlertState::Pending, AlertState::Firing) => "firing",
        (AlertState::Firing, AlertState::Resolved) if ac.on_resolve => "resolved",
        _ => return Ok(None),
    };
    let host = alert.labels.get("host").cloned().unwrap_or_default();
    let mut rec = ActionRecord {
        rule: rule.to_string(),
        host: host.clone(),
        fingerprint: alert.fingerprint.clone(),
        trigger: trigger.into(),
        playbook: ac.playbook.display().to_string(),
        dry_run: ac.dry_run,
        created: now,
        ..Default::default()
    };
    let mut notify = false;
    if host.is_empty() {
        rec.state = "skipped".into();
        rec.reason = Some("the alert has no host label to limit the run to".into());
        notify = true;
    } else {
        match guards(db, ac, rule, &host, trigger, alert.suppressed.as_deref(), now)? {
            Verdict::Skip { reason, notify: n } => {
                rec.state = "skipped".into();
                rec.reason = Some(reason);
                notify = n;
            }
            Verdict::Run if ac.approval => {
                rec.state = "awaiting_approval".into();
                rec.expires = Some(now + ac.approval_expires.as_secs_f64());
                notify = true;
            }
            Verdict::Run => rec.state = "queued".into(),
        }
    }
    rec.id = insert(db, &rec, alert)?;
    Ok(Some((rec, notify)))
}

/// Queue a notification about `alert` that carries the action `rec`, to
/// the receivers the alert routes to.
pub fn notify(db: &Db, cfg: &WatchConfig, rec: &ActionRecord, alert: &Alert, now: f64) {
    let group_labels: Labels = ["alertname", "host"]
        .iter()
        .filter_map(|k| alert.labels.get(*k).map(|v| (k.to_string(), v.clone())))
        .collect();
    for receiver in state::receivers_for(&cfg.route, &alert.labels) {
        let key = format!("action:{}:{}:{receiver}", rec.id, rec.state);
        let env = Envelope {
            notification: Notification {
                receiver: receiver.clone(),
                group_key: key.clone(),
                status: alert::status_of(alert).into(),
                group_labels: group_labels.clone(),
                alerts: vec![alert.clone()],
                created: now,
                id: state::notification_id(&key, now),
                thread: None,
                dedup_key: None,
            },
            history: BTreeMap::new(),
            actions: vec![rec.clone()],
        };
        match alert::enqueue(db, cfg, &env, now) {
            Ok(ids) => log(format!(
                "action #{} notice queued for `{receiver}`: outbox {ids:?}",
                rec.id
            )),
            Err(e) => log(format!("cannot queue the notice of action #{}: {e}", rec.id)),
        }
    }
    let mut m = serde_json::Map::new();
    if let Value::Object(o) = json!(rec) {
        m = o;
    }
    crate::audit::record_synced("watch_action", m);
}

/// Why an approval (or a rejection) did not happen.
#[derive(Debug, thiserror::Error)]
pub enum DecideError {
    #[error("no action with id {0}")]
    Unknown(i64),
    #[error("action #{id} is {state}, not awaiting approval")]
    NotAwaiting { id: i64, state: String },
    #[error("action #{0} expired before it was approved")]
    Expired(i64),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// `rigger watch action approve ID`: the action is queued for the running
/// `rigger watch` (which starts it within one interval). `approve: false`
/// rejects it.
pub fn decide(db: &Db, id: i64, approve: bool, by: &str, now: f64) -> Result<ActionRecord, DecideError> {
    let state = if approve { "queued" } else { "rejected" };
    let n = db
        .conn
        .execute(
            "UPDATE actions SET state = ?1, approved_by = ?2, finished = CASE WHEN ?1 = 'rejected' THEN ?3 END
             WHERE id = ?4 AND state = 'awaiting_approval' AND expires > ?3",
            params![state, by, now, id],
        )
        .map_err(StoreError::from)?;
    let rec = get(db, id)?.map(|(r, _)| r).ok_or(DecideError::Unknown(id))?;
    if n == 1 {
        return Ok(rec);
    }
    if rec.state == "awaiting_approval" {
        return Err(DecideError::Expired(id));
    }
    Err(DecideError::NotAwaiting { id, state: rec.state })
}

/// What a child `rigger run` needs besides the playbook: the watch's
/// inventory and connection settings, and the state file for its row.
pub struct Runner {
    pub exe: PathBuf,
    pub args: Vec<String>,
    pub state: PathBuf,
    pub cfg: tokio_watch::Receiver<Arc<WatchConfig>>,
}

impl Runner {
    /// After a restart: what was running is reported as interrupted (the
    /// child may have finished or not; it is never started again).
    pub fn recover(&self, db: &Db, now: f64) -> Result<(), StoreError> {
        let running = select(db, "state = 'running'", params![])?;
        for (mut rec, alert) in running {
            db.conn.execute(
                "UPDATE actions SET state = 'interrupted', finished = ?1, reason = ?2 WHERE id = ?3",
                params![now, INTERRUPTED, rec.id],
            )?;
            rec.state = "interrupted".into();
            rec.finished = Some(now);
            rec.reason = Some(INTERRUPTED.into());
            log(rec.headline());
            notify(db, &self.cfg.borrow(), &rec, &alert, now);
        }
        Ok(())
    }

    /// Expire what waited too long for approval and start what is queued.
    pub fn drive(self: &Arc<Self>, db: &Db, now: f64) -> Result<(), StoreError> {
        for (mut rec, alert) in select(db, "state = 'awaiting_approval' AND expires <= ?1", params![now])? {
            let n = db.conn.execute(
                "UPDATE actions SET state = 'expired', finished = ?1 WHERE id = ?2 AND state = 'awaiting_approval'",
                params![now, rec.id],
            )?;
            if n == 1 {
                rec.state = "expired".into();
                rec.finished = Some(now);
                rec.reason = Some("not approved in time".into());
                log(rec.headline());
                notify(db, &self.cfg.borrow(), &rec, &alert, now);
            }
        }
        for (mut rec, alert) in select(db, "state = 'queued'", params![])? {
            // The claim: whoever moves the row to running runs it.
            let n = db.conn.execute(
                "UPDATE actions SET state = 'running', started = ?1 WHERE id = ?2 AND state = 'queued'",
                params![now, rec.id],
            )?;
            if n != 1 {
                continue;
            }
            rec.state = "running".into();
            rec.started = Some(now);
            log(format!(
                "action #{} started: {} on {} ({} {})",
                rec.id, rec.playbook, rec.host, rec.rule, rec.trigger
            ));
            let me = self.clone();
            tokio::spawn(async move { me.execute(rec, alert).await });
        }
        Ok(())
    }

    async fn execute(self: Arc<Self>, mut rec: ActionRecord, alert: Alert) {
        let outcome = self.run_child(&rec, &alert).await;
        let now = super::collect::now_secs();
        rec.finished = Some(now);
        rec.state = if outcome.ok { "succeeded" } else { "failed" }.into();
        rec.exit_code = outcome.exit_code;
        rec.changed = outcome.changed;
        rec.recap = outcome.recap;
        rec.diff = outcome.diff;
        rec.output = outcome.output;
        rec.reason = outcome.reason;
        log(rec.headline());
        let db = match Db::open(&self.state) {
            Ok(d) => d,
            Err(e) => {
                log(format!("cannot record the result of action #{}: {e}", rec.id));
                return;
            }
        };
        let recap = rec.recap.as_ref().map(Value::to_string);
        let saved = db.conn.execute(
            "UPDATE actions SET state = ?1, finished = ?2, exit_code = ?3, changed = ?4, recap = ?5, diff = ?6,
             output = ?7, reason = ?8 WHERE id = ?9",
            params![
                &rec.state,
                now,
                rec.exit_code,
                rec.changed,
                recap.as_ref(),
                rec.diff.as_ref(),
                rec.output.as_ref(),
                rec.reason.as_ref(),
                rec.id
            ],
        );
        if let Err(e) = saved {
            log(format!("cannot record the result of action #{}: {e}", rec.id));
        }
        let cfg = self.cfg.borrow().clone();
        notify(&db, &cfg, &rec, &alert, now);
    }

    async fn run_child(&self, rec: &ActionRecord, alert: &Alert) -> Outcome {
        let fail = |reason: String| Outcome {
            reason: Some(reason),
            ..Default::default()
        };
        // Next to the state file; with PostgreSQL state, the temp directory.
        let location = crate::state::Location::from_path(&self.state);
        let tmp = std::env::temp_dir();
        let dir = match location.sqlite_path() {
            Some(p) => p
                .parent()
                .filter(|d| !d.as_os_str().is_empty())
                .unwrap_or(Path::new(".")),
            None => tmp.as_path(),
        };
        let vars = match crate::atomic_file::create_new_in(dir, ".rigger-action-", ".yml", 0o600) {
            Ok((path, mut f)) => {
                use std::io::Write;
                let text = extra_vars(rec, alert);
                if let Err(e) = f.write_all(text.as_bytes()).and_then(|_| f.sync_all()) {
                    let _ = std::fs::remove_file(&path);
                    return fail(format!("cannot write the extra vars file {}: {e}", path.display()));
                }
                path
            }
            Err(e) => return fail(format!("cannot create the extra vars file in {}: {e}", dir.display())),
        };
        let timeout = self
            .cfg
            .borrow()
            .rules
            .iter()
            .find(|r| r.name == rec.rule)
            .and_then(|r| r.action.as_ref())
            .map(|a| a.timeout)
            .unwrap_or(Duration::from_secs(600));
        let mut cmd = tokio::process::Command::new(&self.exe);
        cmd.arg("run")
            .arg(&rec.playbook)
            .args(&self.args)
            .arg("--limit")
            .arg(&rec.host)
            .arg("-e")
            .arg(format!("@{}", vars.display()))
            .args(["--output", "json"])
            .arg("--run-timeout")
            .arg(format!("{}s", timeout.as_secs().max(1)));
        if rec.dry_run {
            cmd.args(["--check", "--diff"]);
        }
        cmd.stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true);
        crate::open_files::restore_in_child(&mut cmd);
        let child = match cmd.spawn() {
            Ok(c) => c,
            Err(e) => {
                let _ = std::fs::remove_file(&vars);
                return fail(format!("cannot start {}: {e}", self.exe.display()));
            }
        };
        if let (Some(pid), Ok(db)) = (child.id(), Db::open(&self.state)) {
            if let Err(e) = db.conn.execute(
                "UPDATE actions SET pid = ?1 WHERE id = ?2",
                params![i64::from(pid), rec.id],
            ) {
                log(format!("cannot record the pid of action #{}: {e}", rec.id));
            }
        }
        // The run's own --run-timeout ends it; this is the backstop.
        let waited = tokio::time::timeout(timeout + Duration::from_secs(30), child.wait_with_output()).await;
        let _ = std::fs::remove_file(&vars);
        match waited {
            Err(_) => fail(format!("killed: no end {}s after its run timeout", 30)),
            Ok(Err(e)) => fail(format!("cannot wait for the run: {e}")),
            Ok(Ok(out)) => parse_run(&out.stdout, &out.stderr, out.status.code()),
        }
    }
}

const INTERRUPTED: &str = "rigger watch stopped while it ran; its result is unknown and it is not run again";

#[derive(Debug, Default)]
struct Outcome {
    ok: bool,
    exit_code: Option<i64>,
    changed: Option<i64>,
    recap: Option<Value>,
    diff: Option<String>,
    output: Option<String>,
    reason: Option<String>,
}

/// Bounds what a row keeps of a run's diff and output.
const KEEP: usize = 16 * 1024;

fn bounded(mut s: String) -> String {
    if s.len() > KEEP {
        let mut cut = s.len() - KEEP;
        while !s.is_char_boundary(cut) {
            cut += 1;
        }
        s = format!("[... {cut} bytes left out]\n{}", &s[cut..]);
    }
    s
}

/// The result of a child `rigger run --output json`: its recap, diffs and
/// failures.
fn parse_run(stdout: &[u8], stderr: &[u8], code: Option<i32>) -> Outcome {
    let mut recap = None;
    let mut diff = String::new();
    let mut failures = String::new();
    for line in String::from_utf8_lossy(stdout).lines() {
        let Ok(ev) = serde_json::from_str::<Value>(line) else {
            continue;
        };
        match ev.get("event").and_then(Value::as_str) {
            Some("recap") => recap = ev.get("hosts").cloned(),
            Some("host_result") => {
                let host = ev.get("host").and_then(Value::as_str).unwrap_or("?");
                let task = ev.get("task").and_then(Value::as_str).unwrap_or("?");
                let status = ev.get("status").and_then(Value::as_str).unwrap_or("");
                if let Some(Value::Object(result)) = ev.get("result") {
                    if status == "changed" {
                        for d in crate::output::diffs_of(result) {
                            diff.push_str(&format!("--- {host}: {task}\n{}", crate::output::render_diff(d)));
                        }
                    }
                    let ignored = ev.get("ignored").and_then(Value::as_bool).unwrap_or(false);
                    if (status == "failed" || status == "unreachable") && !ignored {
                        let msg = result.get("msg").and_then(Value::as_str).unwrap_or("");
                        failures.push_str(&format!("{host}: {task}: {status}: {msg}\n"));
                    }
                }
            }
            _ => {}
        }
    }
    let err = String::from_utf8_lossy(stderr);
    if !err.trim().is_empty() {
        failures.push_str(&err);
    }
    let changed = recap.as_ref().and_then(Value::as_object).map(|hosts| {
        hosts
            .values()
            .map(|h| h.get("changed").and_then(Value::as_i64).unwrap_or(0))
            .sum()
    });
    let ok = code == Some(0) && recap.is_some();
    let reason = match (code, &recap) {
        (Some(0), Some(_)) => None,
        (Some(0), None) => Some("the run printed no recap".to_string()),
        (Some(c), _) => Some(format!("rigger run exited with {c}")),
        (None, _) => Some("rigger run was killed by a signal".to_string()),
    };
    Outcome {
        ok,
        exit_code: code.map(i64::from),
        changed,
        recap,
        diff: (!diff.is_empty()).then(|| bounded(diff)),
        output: (!failures.is_empty()).then(|| bounded(failures)),
        reason,
    }
}

/// YAML text that is never templated: `!unsafe` and a JSON string.
fn unsafe_str(s: &str) -> String {
    format!("!unsafe {}", Value::String(s.to_string()))
}

/// The extra vars of a run: `watch_alert`, every value from a host marked
/// `!unsafe` (a label or summary holding `{{ ... }}` stays that text).
fn extra_vars(rec: &ActionRecord, alert: &Alert) -> String {
    let mut y = String::from("watch_alert:\n");
    y.push_str(&format!("  action_id: {}\n", rec.id));
    y.push_str(&format!("  rule: {}\n", unsafe_str(&rec.rule)));
    y.push_str(&format!("  alertname: {}\n", unsafe_str(&rec.rule)));
    y.push_str(&format!("  status: {}\n", alert::status_of(alert)));
    y.push_str(&format!("  trigger: {}\n", rec.trigger));
    y.push_str(&format!("  dry_run: {}\n", rec.dry_run));
    y.push_str(&format!("  host: {}\n", unsafe_str(&rec.host)));
    y.push_str(&format!("  fingerprint: {}\n", unsafe_str(&alert.fingerprint)));
    let value = if alert.value.is_finite() {
        Value::from(alert.value).to_string()
    } else {
        "null".into()
    };
    y.push_str(&format!("  value: {value}\n"));
    y.push_str("  labels:\n");
    for (k, v) in &alert.labels {
        y.push_str(&format!("    {}: {}\n", Value::String(k.clone()), unsafe_str(v)));
    }
    y.push_str("  annotations:\n");
    for (k, v) in &alert.annotations {
        y.push_str(&format!("    {}: {}\n", Value::String(k.clone()), unsafe_str(v)));
    }
    if alert.labels.is_empty() {
        y = y.replace("  labels:\n", "  labels: {}\n");
    }
    if alert.annotations.is_empty() {
        y = y.replace("  annotations:\n", "  annotations: {}\n");
    }
    y
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alert(labels: &[(&str, &str)]) -> Alert {
        let labels: Labels = labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Alert {
            fingerprint: state::fingerprint(&labels),
            labels,
            annotations: BTreeMap::new(),
            state: AlertState::Firing,
            active_since: 1.0,
            fired_at: 1.0,
            last_active: 1.0,
            resolved_at: 0.0,
            value: 9.5,
            series: String::new(),
            suppressed: None,
        }
    }

    fn action() -> ActionConfig {
        ActionConfig {
            playbook: "/x/fix.yml".into(),
            loc: crate::yaml::Loc::synthetic("t"),
            on_resolve: false,
            cooldown: Duration::from_secs(10),
            max_runs: 2,
            window: Duration::from_secs(100),
            loop_window: Duration::from_secs(20),
            dry_run: false,
            approval: false,
            approval_expires: Duration::from_secs(5),
            timeout: Duration::from_secs(60),
        }
    }

    fn finish(db: &Db, id: i64, changed: i64, at: f64) {
        db.conn
            .execute(
                "UPDATE actions SET state = 'succeeded', changed = ?1, finished = ?2 WHERE id = ?3",
                params![changed, at, id],
            )
            .unwrap();
    }

    #[test]
    fn guards_cooldown_breaker_loop_and_approval() {
        let dir = tempfile::tempdir().unwrap();
        guards_suite(&Db::open(&dir.path().join("w.db")).unwrap());
    }

    #[test]
    fn guards_on_postgres() {
        let pg = crate::state::testpg::TestPg::start();
        let url = pg.create_db("actions");
        let db = Db::open_at(&crate::state::Location::parse(&url)).unwrap();
        guards_suite(&db);
        // The claim and the result, as `drive` and `execute` write them.
        let (r, _) = on_transition(
            &db,
            &action(),
            "P",
            &alert(&[("alertname", "P"), ("host", "h9")]),
            AlertState::Pending,
            5000.0,
        )
        .unwrap()
        .unwrap();
        let claim = "UPDATE actions SET state = 'running', started = ?1 WHERE id = ?2 AND state = 'queued'";
        assert_eq!(db.conn.execute(claim, params![5001.0, r.id]).unwrap(), 1);
        assert_eq!(
            db.conn.execute(claim, params![5002.0, r.id]).unwrap(),
            0,
            "claimed once"
        );
        db.conn
            .execute(
                "UPDATE actions SET pid = ?1, exit_code = ?2, changed = ?3, recap = ?4 WHERE id = ?5",
                params![i64::from(4242u32), 0i64, 2i64, Some("{\"h9\":{\"changed\":2}}"), r.id],
            )
            .unwrap();
        let (got, a) = get(&db, r.id).unwrap().unwrap();
        assert_eq!(
            (got.state.as_str(), got.started, got.pid, got.changed),
            ("running", Some(5001.0), Some(4242), Some(2))
        );
        assert_eq!(got.recap.unwrap()["h9"]["changed"], 2);
        assert_eq!(got.expires, None);
        assert_eq!(a.labels["host"], "h9");
        assert_eq!(crate::state::migrations::version(&db.conn, "watch").unwrap(), 3);
    }

    fn guards_suite(db: &Db) {
        let ac = action();
        let h1 = alert(&[("alertname", "A"), ("host", "h1")]);
        let h2 = alert(&[("alertname", "A"), ("host", "h2")]);
        let fire = |a: &Alert, ac: &ActionConfig, now: f64| {
            on_transition(db, ac, "A", a, AlertState::Pending, now)
                .unwrap()
                .unwrap()
        };
        let (r, n) = fire(&h1, &ac, 100.0);
        assert_eq!((r.state.as_str(), n), ("queued", false));
        finish(db, r.id, 0, 101.0);
        // Cooldown per rule and host: h1 waits, h2 does not.
        let (r, _) = fire(&h1, &ac, 105.0);
        assert_eq!(r.state, "skipped");
        assert!(r.reason.unwrap().starts_with("cooldown"));
        let (r, _) = fire(&h2, &ac, 106.0);
        assert_eq!(r.state, "queued");
        finish(db, r.id, 0, 107.0);
        // Two runs in the window: the breaker opens, said once.
        let (r, n) = fire(&h1, &ac, 120.0);
        assert_eq!((r.state.as_str(), n), ("skipped", true));
        assert!(r.reason.unwrap().starts_with("circuit breaker open: 2 actions"));
        let (_, n) = fire(&h2, &ac, 130.0);
        assert!(!n, "the open breaker is notified once");
        // After the window it closes.
        let (r, _) = fire(&h1, &ac, 210.0);
        assert_eq!(r.state, "queued");
        // A run that changed the host, then the alert fires again: loop guard.
        finish(db, r.id, 1, 215.0);
        let (r, n) = fire(&h1, &ac, 226.0);
        assert_eq!((r.state.as_str(), n), ("skipped", true));
        assert!(r.reason.unwrap().starts_with("loop guard"));
        let (r, n) = fire(&h1, &ac, 230.0);
        assert_eq!((r.state.as_str(), n), ("skipped", false));
        // Resolving does not trigger without on_resolve; a silenced alert runs nothing.
        let mut resolved = h1.clone();
        resolved.state = AlertState::Resolved;
        assert!(on_transition(db, &ac, "A", &resolved, AlertState::Firing, 240.0)
            .unwrap()
            .is_none());
        let mut on_resolve = action();
        on_resolve.on_resolve = true;
        let (r, _) = on_transition(db, &on_resolve, "R", &resolved, AlertState::Firing, 240.0)
            .unwrap()
            .unwrap();
        assert_eq!((r.trigger.as_str(), r.state.as_str()), ("resolved", "queued"));
        let mut silenced = alert(&[("alertname", "A"), ("host", "h3")]);
        silenced.suppressed = Some("silenced by silence 1".into());
        assert_eq!(fire(&silenced, &ac, 240.0).0.state, "skipped");
        // Approval: awaiting, approved once, expiry refuses.
        let mut ap = action();
        ap.approval = true;
        ap.max_runs = 100;
        let (r, n) = fire(&alert(&[("alertname", "A"), ("host", "h4")]), &ap, 1000.0);
        assert_eq!((r.state.as_str(), n), ("awaiting_approval", true));
        assert_eq!(decide(db, r.id, true, "me", 1001.0).unwrap().state, "queued");
        assert!(matches!(
            decide(db, r.id, true, "me", 1001.0),
            Err(DecideError::NotAwaiting { .. })
        ));
        let (r, _) = fire(&alert(&[("alertname", "A"), ("host", "h5")]), &ap, 1000.0);
        assert!(matches!(
            decide(db, r.id, true, "me", 1006.0),
            Err(DecideError::Expired(_))
        ));
        assert!(matches!(
            decide(db, 999, true, "me", 1006.0),
            Err(DecideError::Unknown(999))
        ));
        assert_eq!(
            list(db, false).unwrap().len(),
            3,
            "queued (resolved, approved) + awaiting"
        );
    }

    #[test]
    fn extra_vars_are_unsafe_text() {
        let mut a = alert(&[("alertname", "A"), ("host", "h1"), ("tag", "{{ 7 * 6 }}\"\n")]);
        a.annotations
            .insert("summary".into(), "{{ lookup('pipe', 'id') }}".into());
        let rec = ActionRecord {
            id: 4,
            rule: "A".into(),
            host: "h1".into(),
            trigger: "firing".into(),
            ..Default::default()
        };
        let text = extra_vars(&rec, &a);
        let n = crate::yaml::parse_one(&text, "vars").unwrap();
        let v = n.to_json();
        assert_eq!(v["watch_alert"]["value"], 9.5);
        assert_eq!(v["watch_alert"]["action_id"], 4);
        assert_eq!(
            v["watch_alert"]["labels"]["tag"][crate::yaml::UNSAFE_KEY],
            "{{ 7 * 6 }}\"\n"
        );
        assert_eq!(
            v["watch_alert"]["annotations"]["summary"][crate::yaml::UNSAFE_KEY],
            "{{ lookup('pipe', 'id') }}"
        );
    }

    #[test]
    fn run_output_is_read() {
        let out = br#"{"event":"host_result","host":"h1","task":"write","status":"changed","ignored":false,"result":{"changed":true,"diff":[{"before":"a\n","after":"b\n","before_header":"f","after_header":"f"}]}}
{"event":"recap","hosts":{"h1":{"ok":2,"changed":1,"unreachable":0,"failed":0,"skipped":0,"rescued":0,"ignored":0}}}
"#;
        let o = parse_run(out, b"", Some(0));
        assert!(o.ok);
        assert_eq!(o.changed, Some(1));
        let d = o.diff.unwrap();
        assert!(d.contains("-a") && d.contains("+b"), "{d}");
        let o = parse_run(b"", b"boom", Some(4));
        assert!(!o.ok);
        assert_eq!(o.reason.as_deref(), Some("rigger run exited with 4"));
        assert_eq!(o.output.as_deref(), Some("boom"));
    }
}
