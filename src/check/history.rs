//! The history of check runs: an embedded SQLite database (WAL journal).
//!
//! A run is inserted as `running` when it starts (committed at once) and its
//! results are written together with the `done` status in one transaction at
//! the end, so a killed run leaves a `running` row and nothing half-written;
//! the next run of the same check marks such rows `interrupted`.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use rusqlite::{params, Connection, OptionalExtension};
use serde::Serialize;

use super::report::{HostReport, Remediation, Since, TaskState};
use crate::error::AppError;

pub struct History {
    conn: Connection,
    path: PathBuf,
}

/// One row of `rigger check history`.
#[derive(Debug, Clone, Serialize)]
pub struct RunRow {
    pub id: i64,
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

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    check_key TEXT NOT NULL,
    started INTEGER NOT NULL,
    finished INTEGER,
    status TEXT NOT NULL,
    exit_code INTEGER,
    playbook TEXT NOT NULL,
    playbook_sha256 TEXT NOT NULL,
    inventory TEXT NOT NULL,
    hosts INTEGER NOT NULL DEFAULT 0,
    drifted INTEGER NOT NULL DEFAULT 0,
    unreachable INTEGER NOT NULL DEFAULT 0,
    failed INTEGER NOT NULL DEFAULT 0,
    remediated INTEGER NOT NULL DEFAULT 0,
    delivery TEXT
);
CREATE INDEX IF NOT EXISTS runs_by_key ON runs (check_key, id);
CREATE TABLE IF NOT EXISTS host_results (
    run_id INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    host TEXT NOT NULL,
    status TEXT NOT NULL,
    msg TEXT,
    PRIMARY KEY (run_id, host)
);
CREATE TABLE IF NOT EXISTS task_results (
    run_id INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    seq INTEGER NOT NULL,
    host TEXT NOT NULL,
    task TEXT NOT NULL,
    location TEXT NOT NULL,
    status TEXT NOT NULL,
    diff TEXT NOT NULL,
    msg TEXT,
    PRIMARY KEY (run_id, seq)
);
CREATE INDEX IF NOT EXISTS task_results_drift ON task_results (run_id, status);
CREATE TABLE IF NOT EXISTS remediations (
    run_id INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    host TEXT NOT NULL,
    task TEXT NOT NULL,
    status TEXT NOT NULL
);
";

fn db_err(path: &Path, e: rusqlite::Error) -> AppError {
    AppError::Other(format!("check history {}: {e}", path.display()))
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

impl History {
    pub fn open(path: &Path) -> Result<History, AppError> {
        // 0600 before SQLite opens it: its -wal/-shm/-journal files take
        // the database's mode (see private_files::prepare_sqlite).
        crate::private_files::prepare_sqlite(path)
            .map_err(|e| AppError::Other(format!("check history {}: {e}", path.display())))?;
        let conn = Connection::open(path).map_err(|e| db_err(path, e))?;
        let setup = || -> rusqlite::Result<()> {
            conn.busy_timeout(std::time::Duration::from_secs(30))?;
            conn.pragma_update(None, "journal_mode", "WAL")?;
            conn.pragma_update(None, "synchronous", "NORMAL")?;
            conn.pragma_update(None, "foreign_keys", "ON")?;
            conn.execute_batch(SCHEMA)?;
            // Databases made before the delivery column existed.
            let has_delivery: bool = conn
                .prepare("SELECT 1 FROM pragma_table_info('runs') WHERE name = 'delivery'")?
                .exists([])?;
            if !has_delivery {
                conn.execute_batch("ALTER TABLE runs ADD COLUMN delivery TEXT")?;
            }
            Ok(())
        };
        setup().map_err(|e| db_err(path, e))?;
        Ok(History {
            conn,
            path: path.to_path_buf(),
        })
    }

    /// Open an existing database only (for `history` and `diff`).
    pub fn open_existing(path: &Path) -> Result<History, AppError> {
        if !path.exists() {
            return Err(AppError::Usage(format!(
                "no check history at {} (run `rigger check PLAYBOOK` first, or pass --db)",
                path.display()
            )));
        }
        History::open(path)
    }

    fn err(&self, e: rusqlite::Error) -> AppError {
        db_err(&self.path, e)
    }

    /// Record the start of a run; earlier `running` rows of this check (we hold
    /// its lock, so they are dead) become `interrupted`.
    pub fn start_run(
        &mut self,
        check_key: &str,
        started: i64,
        playbook: &str,
        sha256: &str,
        inventory: &str,
    ) -> Result<i64, AppError> {
        let tx = self.conn.transaction().map_err(|e| db_err(&self.path, e))?;
        tx.execute(
            "UPDATE runs SET status = 'interrupted' WHERE check_key = ?1 AND status = 'running'",
            params![check_key],
        )
        .map_err(|e| db_err(&self.path, e))?;
        tx.execute(
            "INSERT INTO runs (check_key, started, status, playbook, playbook_sha256, inventory) \
             VALUES (?1, ?2, 'running', ?3, ?4, ?5)",
            params![check_key, started, playbook, sha256, inventory],
        )
        .map_err(|e| db_err(&self.path, e))?;
        let id = tx.last_insert_rowid();
        tx.commit().map_err(|e| db_err(&self.path, e))?;
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
        let path = self.path.clone();
        let e = |e| db_err(&path, e);
        let tx = self.conn.transaction().map_err(e)?;
        let mut counts = [0i64; 3];
        {
            let mut host_stmt = tx
                .prepare("INSERT INTO host_results (run_id, host, status, msg) VALUES (?1, ?2, ?3, ?4)")
                .map_err(e)?;
            let mut task_stmt = tx
                .prepare(
                    "INSERT INTO task_results (run_id, seq, host, task, location, status, diff, msg) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                )
                .map_err(e)?;
            let mut seq = 0i64;
            for h in hosts {
                match h.status {
                    super::report::HostState::Drifted => counts[0] += 1,
                    super::report::HostState::Unreachable => counts[1] += 1,
                    super::report::HostState::Failed => counts[2] += 1,
                    super::report::HostState::InSync => {}
                }
                host_stmt
                    .execute(params![run_id, h.name, h.status.as_str(), h.msg])
                    .map_err(e)?;
                for t in &h.tasks {
                    let diff = serde_json::to_string(&t.diff).unwrap_or_else(|_| "[]".into());
                    task_stmt
                        .execute(params![
                            run_id,
                            seq,
                            h.name,
                            t.task,
                            t.location,
                            t.status.as_str(),
                            diff,
                            t.msg
                        ])
                        .map_err(e)?;
                    seq += 1;
                }
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
        )
        .map_err(e)?;
        tx.commit().map_err(e)
    }

    /// Mark a run that ended without results (an error before or during the run).
    pub fn abort_run(&mut self, run_id: i64, finished: i64, exit_code: i32, status: &str) -> Result<(), AppError> {
        self.conn
            .execute(
                "UPDATE runs SET finished = ?2, status = ?4, exit_code = ?3 WHERE id = ?1",
                params![run_id, finished, exit_code, status],
            )
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// Record how the mail report went, and the run's final exit code
    /// (which a failed delivery changes).
    pub fn record_delivery(&mut self, run_id: i64, exit_code: i32, delivery: &str) -> Result<(), AppError> {
        self.conn
            .execute(
                "UPDATE runs SET delivery = ?2, exit_code = ?3 WHERE id = ?1",
                params![run_id, delivery, exit_code],
            )
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    pub fn record_remediation(&mut self, run_id: i64, r: &Remediation) -> Result<(), AppError> {
        let path = self.path.clone();
        let e = |e| db_err(&path, e);
        let tx = self.conn.transaction().map_err(e)?;
        for (host, tasks) in &r.hosts {
            for t in tasks {
                tx.execute(
                    "INSERT INTO remediations (run_id, host, task, status) VALUES (?1, ?2, ?3, 'fixed')",
                    params![run_id, host, t],
                )
                .map_err(e)?;
            }
        }
        for host in &r.failed {
            tx.execute(
                "INSERT INTO remediations (run_id, host, task, status) VALUES (?1, ?2, '', 'failed')",
                params![run_id, host],
            )
            .map_err(e)?;
        }
        tx.execute(
            "UPDATE runs SET remediated = ?2 WHERE id = ?1",
            params![run_id, r.hosts.len() as i64],
        )
        .map_err(e)?;
        tx.commit().map_err(e)
    }

    /// For each drift of the current run: how many consecutive completed runs
    /// of this check (the current one included) had it, and since when.
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
        let runs: Vec<(i64, i64)> = {
            let mut stmt = self
                .conn
                .prepare(
                    "SELECT id, started FROM runs WHERE check_key = ?1 AND status = 'done' AND id < ?2 \
                     ORDER BY id DESC LIMIT 1000",
                )
                .map_err(|e| self.err(e))?;
            let rows = stmt
                .query_map(params![check_key, current_run], |r| Ok((r.get(0)?, r.get(1)?)))
                .map_err(|e| self.err(e))?;
            rows.collect::<Result<_, _>>().map_err(|e| self.err(e))?
        };
        let mut open: BTreeSet<DriftKey> = current.clone();
        for (id, started) in runs {
            if open.is_empty() {
                break;
            }
            let drift = self.drift_of(id)?;
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

    /// The drifted (host, task) pairs of a run.
    pub fn drift_of(&self, run_id: i64) -> Result<BTreeSet<DriftKey>, AppError> {
        let mut stmt = self
            .conn
            .prepare("SELECT host, task FROM task_results WHERE run_id = ?1 AND status = 'drifted'")
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map(params![run_id], |r| Ok((r.get(0)?, r.get(1)?)))
            .map_err(|e| self.err(e))?;
        rows.collect::<Result<_, _>>().map_err(|e| self.err(e))
    }

    /// Host states of a run: host -> status.
    pub fn host_states(&self, run_id: i64) -> Result<Vec<(String, String)>, AppError> {
        let mut stmt = self
            .conn
            .prepare("SELECT host, status FROM host_results WHERE run_id = ?1 ORDER BY host")
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map(params![run_id], |r| Ok((r.get(0)?, r.get(1)?)))
            .map_err(|e| self.err(e))?;
        rows.collect::<Result<_, _>>().map_err(|e| self.err(e))
    }

    /// The diff of a drifted task in a run (JSON list of diff dicts).
    pub fn task_diff(&self, run_id: i64, host: &str, task: &str) -> Result<Vec<serde_json::Value>, AppError> {
        let text: Option<String> = self
            .conn
            .query_row(
                "SELECT diff FROM task_results WHERE run_id = ?1 AND host = ?2 AND task = ?3 AND status = ?4 \
                 ORDER BY seq LIMIT 1",
                params![run_id, host, task, TaskState::Drifted.as_str()],
                |r| r.get(0),
            )
            .optional()
            .map_err(|e| self.err(e))?;
        Ok(text.and_then(|t| serde_json::from_str(&t).ok()).unwrap_or_default())
    }

    pub fn run(&self, id: i64) -> Result<Option<RunRow>, AppError> {
        let mut rows = self.query_runs("WHERE id = ?1", params![id])?;
        Ok(rows.pop())
    }

    pub fn runs(&self, last: usize) -> Result<Vec<RunRow>, AppError> {
        self.query_runs("ORDER BY id DESC LIMIT ?1", params![last as i64])
    }

    fn query_runs(&self, tail: &str, p: impl rusqlite::Params) -> Result<Vec<RunRow>, AppError> {
        let sql = format!(
            "SELECT id, started, finished, status, exit_code, playbook, playbook_sha256, inventory, hosts, \
             drifted, unreachable, failed, remediated, delivery FROM runs {tail}"
        );
        let mut stmt = self.conn.prepare(&sql).map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map(p, |r| {
                let started: i64 = r.get(1)?;
                let finished: Option<i64> = r.get(2)?;
                Ok(RunRow {
                    id: r.get(0)?,
                    started: crate::calendar::rfc3339(started),
                    started_unix: started,
                    finished: finished.map(crate::calendar::rfc3339),
                    finished_unix: finished,
                    status: r.get(3)?,
                    exit_code: r.get(4)?,
                    playbook: r.get(5)?,
                    playbook_sha256: r.get(6)?,
                    inventory: r.get(7)?,
                    hosts: r.get(8)?,
                    drifted: r.get(9)?,
                    unreachable: r.get(10)?,
                    failed: r.get(11)?,
                    remediated: r.get(12)?,
                    delivery: r.get(13)?,
                })
            })
            .map_err(|e| self.err(e))?;
        rows.collect::<Result<_, _>>().map_err(|e| self.err(e))
    }
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

    #[test]
    fn streaks_count_consecutive_runs_and_interrupted_runs_are_marked() {
        let dir = tempfile::tempdir().unwrap();
        let mut h = History::open(&dir.path().join("sub/check.db")).unwrap();
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
    }
}
