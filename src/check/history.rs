//! The history of check runs: an embedded SQLite database (WAL journal) by
//! default, or a PostgreSQL database that several controllers share (see
//! [`crate::state`] and docs/state.md).
//!
//! A run is inserted as `running` when it starts (committed at once) and its
//! results are written together with the `done` status in one transaction at
//! the end, so a killed run leaves a `running` row and nothing half-written;
//! the next run of the same check (and shard) marks such rows `interrupted`.
//!
//! Sharded runs (`--shard K/N`) write one row per shard; rows with the same
//! run id (`--run-id`) are one run to `history` and `diff`, shown under the
//! lowest row id of the group.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::report::{HostReport, Remediation, Since, TaskState};
use crate::error::AppError;
use crate::state::{migrations, params, Conn, Exec, Location, StateError};

pub struct History {
    conn: Conn,
}

/// One row of `rigger check history`: a run, all its shards together.
#[derive(Debug, Clone, Serialize)]
pub struct RunRow {
    pub id: i64,
    /// The id the shards of a sharded run share (`--run-id`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub run_id: Option<String>,
    /// How many shards wrote results under this run (1 when not sharded).
    pub shards: i64,
    pub started: String,
    #[serde(skip)]
    pub started_unix: i64,
    pub finished: Option<String>,
    #[serde(skip)]
    pub finished_unix: Option<i64>,
    pub status: String,
    pub exit_code: Option<i32>,
    pub playbook: String,
    pub playbook_sha256: String,
    pub inventory: String,
    pub hosts: i64,
    pub drifted: i64,
    pub unreachable: i64,
    pub failed: i64,
    pub remediated: i64,
    /// The mail report: `mailed`, `mailed after N attempts`, `failed after
    /// N attempt(s): why`; none when no mail was due.
    pub delivery: Option<String>,
}

/// A drift identity: (host, task title).
pub type DriftKey = (String, String);

/// What a run is: which shard of which shared run (none: a whole run).
#[derive(Debug, Clone, Default)]
pub struct RunIdentity {
    /// `--run-id`: the id the shards share.
    pub run_key: Option<String>,
    /// `K/N`.
    pub shard: Option<String>,
}

/// `--run-id`, its `%Y %m %d %H %M` replaced from the run's start (UTC)
/// and `%%` by `%`: `nightly-%Y%m%d` gives every shard that cron starts
/// on one day the same id, a new one the next day.
pub fn expand_run_id(id: &str, started: i64) -> String {
    let t = crate::calendar::rfc3339(started);
    let part = |a: usize, b: usize| t.get(a..b).unwrap_or("");
    let mut out = String::new();
    let mut chars = id.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('Y') => out.push_str(part(0, 4)),
            Some('m') => out.push_str(part(5, 7)),
            Some('d') => out.push_str(part(8, 10)),
            Some('H') => out.push_str(part(11, 13)),
            Some('M') => out.push_str(part(14, 16)),
            Some('%') => out.push('%'),
            Some(other) => {
                out.push('%');
                out.push(other);
            }
            None => out.push('%'),
        }
    }
    out
}

/// `$XDG_STATE_HOME/rigger/check.db`, default `~/.local/state/rigger/check.db`.
pub fn default_path() -> Result<PathBuf, AppError> {
    if let Some(d) = std::env::var_os("XDG_STATE_HOME").filter(|d| !d.is_empty()) {
        return Ok(PathBuf::from(d).join("rigger").join("check.db"));
    }
    match std::env::var_os("HOME").filter(|d| !d.is_empty()) {
        Some(h) => Ok(PathBuf::from(h).join(".local/state/rigger/check.db")),
        None => Err(AppError::Usage(
            "cannot find the state directory: set HOME or XDG_STATE_HOME, or pass --db".into(),
        )),
    }
}

/// The rows of one run group: `id`'s, or those sharing its run id.
const GROUP_OF: &str = "(SELECT g.id FROM runs g, runs r WHERE r.id = ?1 AND \
     (g.id = r.id OR (r.run_key IS NOT NULL AND g.run_key = r.run_key)))";

impl History {
    /// Open (creating it when missing) and migrate.
    pub fn open_at(location: &Location) -> Result<History, AppError> {
        Ok(History {
            conn: migrations::open(location, "check history", "check", migrations::CHECK)?,
        })
    }

    pub fn open(path: &Path) -> Result<History, AppError> {
        History::open_at(&Location::from_path(path))
    }

    /// Open an existing database only (for `history` and `diff`); a
    /// PostgreSQL database is always there to be asked.
    pub fn open_existing_at(location: &Location) -> Result<History, AppError> {
        if let Location::Sqlite(path) = location {
            if !path.exists() {
                return Err(AppError::Usage(format!(
                    "no check history at {} (run `rigger check PLAYBOOK` first, or pass --db)",
                    path.display()
                )));
            }
        }
        History::open_at(location)
    }

    pub fn open_existing(path: &Path) -> Result<History, AppError> {
        History::open_existing_at(&Location::from_path(path))
    }

    pub fn location(&self) -> &Location {
        self.conn.location()
    }

    /// Record the start of a run; earlier `running` rows of this check and
    /// shard (we hold its lock, so they are dead) become `interrupted`.
    pub fn start_run(
        &mut self,
        check_key: &str,
        started: i64,
        playbook: &str,
        sha256: &str,
        inventory: &str,
    ) -> Result<i64, AppError> {
        self.start_run_as(check_key, started, playbook, sha256, inventory, &RunIdentity::default())
    }

    pub fn start_run_as(
        &mut self,
        check_key: &str,
        started: i64,
        playbook: &str,
        sha256: &str,
        inventory: &str,
        who: &RunIdentity,
    ) -> Result<i64, AppError> {
        let shard = who.shard.as_deref().unwrap_or("");
        let id = self.conn.transaction(|tx| -> Result<i64, StateError> {
            tx.execute(
                "UPDATE runs SET status = 'interrupted' WHERE check_key = ?1 AND status = 'running' \
                 AND COALESCE(shard, '') = ?2",
                params![check_key, shard],
            )?;
            tx.insert_id(
                "INSERT INTO runs (check_key, started, status, playbook, playbook_sha256, inventory, run_key, shard) \
                 VALUES (?1, ?2, 'running', ?3, ?4, ?5, ?6, ?7) RETURNING id",
                params![
                    check_key,
                    started,
                    playbook,
                    sha256,
                    inventory,
                    who.run_key.as_deref(),
                    who.shard.as_deref()
                ],
            )
        })?;
        Ok(id)
    }

    /// Write all results of a run and mark it done, in one transaction.
    pub fn finish_run(
        &mut self,
        run_id: i64,
        finished: i64,
        exit_code: i32,
        hosts: &[HostReport],
    ) -> Result<(), AppError> {
        self.conn.transaction(|tx| -> Result<(), StateError> {
            let mut counts = [0i64; 3];
            let mut seq = 0i64;
            for h in hosts {
                match h.status {
                    super::report::HostState::Drifted => counts[0] += 1,
                    super::report::HostState::Unreachable => counts[1] += 1,
                    super::report::HostState::Failed => counts[2] += 1,
                    super::report::HostState::InSync => {}
                }
                tx.execute(
                    "INSERT INTO host_results (run_id, host, status, msg) VALUES (?1, ?2, ?3, ?4)",
                    params![run_id, &h.name, h.status.as_str(), h.msg.as_deref()],
                )?;
                for t in &h.tasks {
                    let diff = serde_json::to_string(&t.diff).unwrap_or_else(|_| "[]".into());
                    tx.execute(
                        "INSERT INTO task_results (run_id, seq, host, task, location, status, diff, msg) \
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                        params![
                            run_id,
                            seq,
                            &h.name,
                            &t.task,
                            &t.location,
                            t.status.as_str(),
                            &diff,
                            t.msg.as_deref()
                        ],
                    )?;
                    seq += 1;
                }
            }
            tx.execute(
                "UPDATE runs SET finished = ?2, status = 'done', exit_code = ?3, hosts = ?4, drifted = ?5, \
                 unreachable = ?6, failed = ?7 WHERE id = ?1",
                params![
                    run_id,
                    finished,
                    exit_code,
                    hosts.len() as i64,
                    counts[0],
                    counts[1],
                    counts[2]
                ],
            )?;
            Ok(())
        })?;
        Ok(())
    }

    /// Mark a run that ended without results (an error before or during the run).
    pub fn abort_run(&mut self, run_id: i64, finished: i64, exit_code: i32, status: &str) -> Result<(), AppError> {
        self.conn.execute(
            "UPDATE runs SET finished = ?2, status = ?4, exit_code = ?3 WHERE id = ?1",
            params![run_id, finished, exit_code, status],
        )?;
        Ok(())
    }

    /// Record how the mail report went, and the run's final exit code
    /// (which a failed delivery changes).
    pub fn record_delivery(&mut self, run_id: i64, exit_code: i32, delivery: &str) -> Result<(), AppError> {
        self.conn.execute(
            "UPDATE runs SET delivery = ?2, exit_code = ?3 WHERE id = ?1",
            params![run_id, delivery, exit_code],
        )?;
        Ok(())
    }

    pub fn record_remediation(&mut self, run_id: i64, r: &Remediation) -> Result<(), AppError> {
        self.conn.transaction(|tx| -> Result<(), StateError> {
            for (host, tasks) in &r.hosts {
                for t in tasks {
                    tx.execute(
                        "INSERT INTO remediations (run_id, host, task, status) VALUES (?1, ?2, ?3, 'fixed')",
                        params![run_id, host, t],
                    )?;
                }
            }
            for host in &r.failed {
                tx.execute(
                    "INSERT INTO remediations (run_id, host, task, status) VALUES (?1, ?2, '', 'failed')",
                    params![run_id, host],
                )?;
            }
            tx.execute(
                "UPDATE runs SET remediated = ?2 WHERE id = ?1",
                params![run_id, r.hosts.len() as i64],
            )?;
            Ok(())
        })?;
        Ok(())
    }

    /// For each drift of the current run: how many consecutive completed runs
    /// of this check and shard (the current one included) had it, and since when.
    pub fn drift_streaks(
        &self,
        check_key: &str,
        current_run: i64,
        current_started: i64,
        current: &BTreeSet<DriftKey>,
    ) -> Result<HashMap<DriftKey, Since>, AppError> {
        let mut out: HashMap<DriftKey, Since> = current
            .iter()
            .map(|k| {
                (
                    k.clone(),
                    Since {
                        runs: 1,
                        first_run_id: current_run,
                        first_seen_unix: current_started,
                        first_seen: crate::calendar::rfc3339(current_started),
                    },
                )
            })
            .collect();
        let runs: Vec<(i64, i64)> = self.conn.query_map(
            "SELECT id, started FROM runs WHERE check_key = ?1 AND status = 'done' AND id < ?2 \
             AND COALESCE(shard, '') = (SELECT COALESCE(shard, '') FROM runs WHERE id = ?2) \
             ORDER BY id DESC LIMIT 1000",
            params![check_key, current_run],
            |r| Ok((r.i64(0)?, r.i64(1)?)),
        )?;
        let mut open: BTreeSet<DriftKey> = current.clone();
        for (id, started) in runs {
            if open.is_empty() {
                break;
            }
            let drift = self.drift_of_row(id)?;
            open.retain(|k| {
                if drift.contains(k) {
                    if let Some(s) = out.get_mut(k) {
                        s.runs += 1;
                        s.first_run_id = id;
                        s.first_seen_unix = started;
                        s.first_seen = crate::calendar::rfc3339(started);
                    }
                    true
                } else {
                    false
                }
            });
        }
        Ok(out)
    }

    /// The drifted (host, task) pairs of one row (one shard).
    fn drift_of_row(&self, row: i64) -> Result<BTreeSet<DriftKey>, AppError> {
        let v = self.conn.query_map(
            "SELECT host, task FROM task_results WHERE run_id = ?1 AND status = 'drifted'",
            params![row],
            |r| Ok((r.text(0)?, r.text(1)?)),
        )?;
        Ok(v.into_iter().collect())
    }

    /// The drifted (host, task) pairs of a run (all its shards).
    pub fn drift_of(&self, run_id: i64) -> Result<BTreeSet<DriftKey>, AppError> {
        let v = self.conn.query_map(
            &format!("SELECT host, task FROM task_results WHERE run_id IN {GROUP_OF} AND status = 'drifted'"),
            params![run_id],
            |r| Ok((r.text(0)?, r.text(1)?)),
        )?;
        Ok(v.into_iter().collect())
    }

    /// Host states of a run (all its shards): host -> status.
    pub fn host_states(&self, run_id: i64) -> Result<Vec<(String, String)>, AppError> {
        Ok(self.conn.query_map(
            &format!("SELECT host, status FROM host_results WHERE run_id IN {GROUP_OF} ORDER BY host"),
            params![run_id],
            |r| Ok((r.text(0)?, r.text(1)?)),
        )?)
    }

    /// The diff of a drifted task in a run (JSON list of diff dicts).
    pub fn task_diff(&self, run_id: i64, host: &str, task: &str) -> Result<Vec<serde_json::Value>, AppError> {
        let text: Option<String> = self.conn.query_opt(
            &format!(
                "SELECT diff FROM task_results WHERE run_id IN {GROUP_OF} AND host = ?2 AND task = ?3 \
                 AND status = ?4 ORDER BY run_id, seq LIMIT 1"
            ),
            params![run_id, host, task, TaskState::Drifted.as_str()],
            |r| r.text(0),
        )?;
        Ok(text.and_then(|t| serde_json::from_str(&t).ok()).unwrap_or_default())
    }

    /// The run (all shards of it) that row `id` belongs to.
    pub fn run(&self, id: i64) -> Result<Option<RunRow>, AppError> {
        let rows = self.query_rows(&format!("WHERE id IN {GROUP_OF} ORDER BY id"), params![id])?;
        Ok(group(rows).pop())
    }

    /// The last `last` runs, newest first, the shards of a run together.
    pub fn runs(&self, last: usize) -> Result<Vec<RunRow>, AppError> {
        // The newest `last` groups: their keys, then all their rows.
        let rows = self.query_rows(
            "WHERE COALESCE(run_key, CAST(id AS TEXT)) IN (SELECT k FROM (SELECT COALESCE(run_key, CAST(id AS TEXT)) \
             AS k, MAX(id) AS m FROM runs GROUP BY COALESCE(run_key, CAST(id AS TEXT)) ORDER BY m DESC LIMIT ?1) \
             AS newest) ORDER BY id",
            params![last as i64],
        )?;
        let mut runs = group(rows);
        runs.sort_by_key(|r| std::cmp::Reverse(r.id));
        Ok(runs)
    }

    fn query_rows(&self, tail: &str, p: &[crate::state::P<'_>]) -> Result<Vec<RunRow>, AppError> {
        let sql = format!(
            "SELECT id, started, finished, status, exit_code, playbook, playbook_sha256, inventory, hosts, \
             drifted, unreachable, failed, remediated, delivery, run_key FROM runs {tail}"
        );
        Ok(self.conn.query_map(&sql, p, |r| {
            let started = r.i64(1)?;
            let finished = r.opt_i64(2)?;
            Ok(RunRow {
                id: r.i64(0)?,
                run_id: r.opt_text(14)?,
                shards: 1,
                started: crate::calendar::rfc3339(started),
                started_unix: started,
                finished: finished.map(crate::calendar::rfc3339),
                finished_unix: finished,
                status: r.text(3)?,
                exit_code: r.opt_i64(4)?.map(|c| c as i32),
                playbook: r.text(5)?,
                playbook_sha256: r.text(6)?,
                inventory: r.text(7)?,
                hosts: r.i64(8)?,
                drifted: r.i64(9)?,
                unreachable: r.i64(10)?,
                failed: r.i64(11)?,
                remediated: r.i64(12)?,
                delivery: r.opt_text(13)?,
            })
        })?)
    }
}

/// Fold the rows of each run id into one run (rows in id order): counts
/// add up, it started with its first shard and finished with its last, its
/// status is `done` only when every shard's is, its exit code the worst.
fn group(rows: Vec<RunRow>) -> Vec<RunRow> {
    let mut out: Vec<RunRow> = Vec::new();
    let mut index: HashMap<String, usize> = HashMap::new();
    for r in rows {
        let Some(key) = r.run_id.clone() else {
            out.push(r);
            continue;
        };
        match index.get(&key) {
            None => {
                index.insert(key, out.len());
                out.push(r);
            }
            Some(&i) => {
                let g = &mut out[i];
                g.shards += 1;
                g.started_unix = g.started_unix.min(r.started_unix);
                g.started = crate::calendar::rfc3339(g.started_unix);
                g.finished_unix = match (g.finished_unix, r.finished_unix) {
                    (Some(a), Some(b)) => Some(a.max(b)),
                    _ => None,
                };
                g.finished = g.finished_unix.map(crate::calendar::rfc3339);
                if g.status == "done" || r.status == "running" {
                    g.status = r.status.clone();
                }
                g.exit_code = match (g.exit_code, r.exit_code) {
                    (Some(a), Some(b)) => Some(a.max(b)),
                    _ => None,
                };
                g.hosts += r.hosts;
                g.drifted += r.drifted;
                g.unreachable += r.unreachable;
                g.failed += r.failed;
                g.remediated += r.remediated;
                if g.delivery.is_none() {
                    g.delivery = r.delivery;
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::report::{HostState, TaskReport};
    use super::*;

    fn host(name: &str, drifted: &[&str]) -> HostReport {
        HostReport {
            name: name.into(),
            status: if drifted.is_empty() {
                HostState::InSync
            } else {
                HostState::Drifted
            },
            msg: None,
            tasks: drifted
                .iter()
                .map(|t| TaskReport {
                    task: t.to_string(),
                    location: "x.yml:1:3".into(),
                    status: TaskState::Drifted,
                    diff: vec![serde_json::json!({"before": "a", "after": "b"})],
                    msg: None,
                    since: None,
                })
                .collect(),
        }
    }

    /// The history's behaviour, run on each backend.
    fn suite(loc: &Location) {
        let mut h = History::open_at(loc).unwrap();
        let r1 = h.start_run("k", 100, "p.yml", "sha", "inv").unwrap();
        h.finish_run(r1, 101, 2, &[host("a", &["t1"]), host("b", &[])]).unwrap();
        let r2 = h.start_run("k", 200, "p.yml", "sha", "inv").unwrap();
        h.finish_run(r2, 201, 2, &[host("a", &["t1", "t2"])]).unwrap();
        // A run that dies without finishing.
        let dead = h.start_run("k", 250, "p.yml", "sha", "inv").unwrap();
        let r3 = h.start_run("k", 300, "p.yml", "sha", "inv").unwrap();
        assert_eq!(h.run(dead).unwrap().unwrap().status, "interrupted");
        let current: BTreeSet<DriftKey> = [("a".to_string(), "t1".to_string()), ("a".into(), "t2".into())].into();
        let s = h.drift_streaks("k", r3, 300, &current).unwrap();
        assert_eq!(s[&("a".to_string(), "t1".to_string())].runs, 3);
        assert_eq!(s[&("a".to_string(), "t1".to_string())].first_seen_unix, 100);
        assert_eq!(s[&("a".to_string(), "t2".to_string())].runs, 2);
        // Other checks do not count.
        assert_eq!(
            h.drift_streaks("other", r3, 300, &current).unwrap()[&current.first().unwrap().clone()].runs,
            1
        );
        assert_eq!(h.drift_of(r2).unwrap().len(), 2);
        assert_eq!(h.runs(10).unwrap().len(), 4);
        assert_eq!(h.task_diff(r1, "a", "t1").unwrap().len(), 1);
        h.record_delivery(r1, 5, "failed after 3 attempt(s): refused").unwrap();
        let row = h.run(r1).unwrap().unwrap();
        assert_eq!(
            (row.exit_code, row.delivery.as_deref()),
            (Some(5), Some("failed after 3 attempt(s): refused"))
        );
        assert_eq!((row.hosts, row.drifted, row.shards), (2, 1, 1));
        h.abort_run(r3, 301, 1, "error").unwrap();
        assert_eq!(h.run(r3).unwrap().unwrap().status, "error");

        // Three shards of one run (two controllers may write them): one
        // run to `history` and `diff`, each shard's streak its own.
        let who = |k: u32| RunIdentity {
            run_key: Some("nightly-1".into()),
            shard: Some(format!("{k}/3")),
        };
        let s1 = h.start_run_as("k", 400, "p.yml", "sha", "inv", &who(1)).unwrap();
        let s2 = h.start_run_as("k", 401, "p.yml", "sha", "inv", &who(2)).unwrap();
        // Shard 2 starting did not mark shard 1 interrupted.
        assert_eq!(h.run(s1).unwrap().unwrap().status, "running");
        let s3 = h.start_run_as("k", 402, "p.yml", "sha", "inv", &who(3)).unwrap();
        h.finish_run(s2, 410, 0, &[host("c", &[])]).unwrap();
        h.finish_run(s1, 405, 2, &[host("a", &["t1"]), host("d", &[])]).unwrap();
        let grouped = h.run(s3).unwrap().unwrap();
        assert_eq!(grouped.status, "running", "one shard still runs");
        h.finish_run(s3, 420, 0, &[host("e", &[]), host("f", &[])]).unwrap();
        let runs = h.runs(2).unwrap();
        assert_eq!(runs.len(), 2, "{runs:?}");
        let g = &runs[0];
        assert_eq!(g.id, s1);
        assert_eq!(g.run_id.as_deref(), Some("nightly-1"));
        assert_eq!((g.shards, g.hosts, g.drifted), (3, 5, 1));
        assert_eq!(
            (g.started_unix, g.finished_unix, g.exit_code),
            (400, Some(420), Some(2))
        );
        assert_eq!(g.status, "done");
        assert_eq!(runs[1].id, r3);
        assert_eq!(h.drift_of(s3).unwrap(), [("a".to_string(), "t1".to_string())].into());
        assert_eq!(h.host_states(s2).unwrap().len(), 5);
        assert_eq!(h.task_diff(s2, "a", "t1").unwrap().len(), 1);
        // The shard's streak counts earlier runs of the same shard only.
        let s4 = h.start_run_as("k", 500, "p.yml", "sha", "inv", &who(1)).unwrap();
        let one: BTreeSet<DriftKey> = [("a".to_string(), "t1".to_string())].into();
        assert_eq!(
            h.drift_streaks("k", s4, 500, &one).unwrap()[&one.first().unwrap().clone()].runs,
            2
        );
        drop(h);
        // Opening again finds the schema current.
        let h = History::open_at(loc).unwrap();
        assert_eq!(
            crate::state::migrations::version(&h.conn, "check").unwrap(),
            crate::state::migrations::CHECK.len() as i64
        );
    }

    #[test]
    fn run_ids_take_the_start_time() {
        // 2024-05-01T03:04:05Z
        assert_eq!(
            expand_run_id("nightly-%Y%m%d-%H%M", 1714532645),
            "nightly-20240501-0304"
        );
        assert_eq!(expand_run_id("job-7 100%% %q", 0), "job-7 100% %q");
    }

    #[test]
    fn history_on_sqlite() {
        let dir = tempfile::tempdir().unwrap();
        suite(&Location::Sqlite(dir.path().join("sub/check.db")));
    }

    #[test]
    fn history_on_postgres() {
        let pg = crate::state::testpg::TestPg::start();
        let url = pg.create_db("history");
        suite(&Location::parse(&url));
        // A refused login names the database, never the password.
        let wrong = url.replace(crate::state::testpg::PASSWORD, "Wrong-Pass-91");
        let e = History::open_at(&Location::parse(&wrong)).err().unwrap().to_string();
        assert!(e.contains("password authentication failed"), "{e}");
        assert!(e.contains("postgres://rigger:***@127.0.0.1:"), "{e}");
        assert!(!e.contains("Wrong-Pass-91"), "{e}");
    }

    /// A file made before schema versions (and before the delivery column)
    /// is taken over, its runs kept.
    #[test]
    fn a_file_from_before_schema_versions_is_migrated() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("check.db");
        let old = rusqlite::Connection::open(&path).unwrap();
        old.execute_batch(
            "CREATE TABLE runs (id INTEGER PRIMARY KEY AUTOINCREMENT, check_key TEXT NOT NULL, started INTEGER NOT NULL,
             finished INTEGER, status TEXT NOT NULL, exit_code INTEGER, playbook TEXT NOT NULL,
             playbook_sha256 TEXT NOT NULL, inventory TEXT NOT NULL, hosts INTEGER NOT NULL DEFAULT 0,
             drifted INTEGER NOT NULL DEFAULT 0, unreachable INTEGER NOT NULL DEFAULT 0,
             failed INTEGER NOT NULL DEFAULT 0, remediated INTEGER NOT NULL DEFAULT 0);
             INSERT INTO runs (check_key, started, status, playbook, playbook_sha256, inventory)
             VALUES ('k', 5, 'done', 'p.yml', 'sha', 'inv');",
        )
        .unwrap();
        drop(old);
        let mut h = History::open(&path).unwrap();
        assert_eq!(h.runs(5).unwrap().len(), 1);
        let r = h.start_run("k", 6, "p.yml", "sha", "inv").unwrap();
        h.record_delivery(r, 0, "mailed").unwrap();
        assert_eq!(h.runs(5).unwrap()[0].delivery.as_deref(), Some("mailed"));
        // A database from a newer rigger is refused, not written.
        drop(h);
        let c = rusqlite::Connection::open(&path).unwrap();
        c.execute("UPDATE schema_version SET version = 99 WHERE component = 'check'", [])
            .unwrap();
        drop(c);
        let e = History::open(&path).err().unwrap().to_string();
        assert!(e.contains("schema version 99"), "{e}");
    }
}
