//! Versioned schemas of the state database, one list per component, the
//! same numbers on both backends. `schema_version` holds the version each
//! component is at; [`migrate`] applies the missing steps in one
//! transaction when a database is opened (on PostgreSQL under an advisory
//! lock, so controllers that start together migrate once). A database newer
//! than this rigger is refused, never written with an older schema.
//!
//! A new step is appended, never edited: databases in the field already
//! ran the old ones.

use super::{params, Conn, Exec, Location, StateError, Tx};

/// A step's SQLite-only part in code.
pub type Fixup = fn(&mut Tx<'_>) -> Result<(), StateError>;

/// Connect (creating a SQLite file) and bring `component`'s schema up to
/// date. `what` names the database in messages ("check history").
pub fn open(
    location: &Location,
    what: &'static str,
    component: &'static str,
    list: &[Migration],
) -> Result<Conn, StateError> {
    let conn = Conn::connect(location, what)?;
    migrate(&conn, component, list)?;
    Ok(conn)
}

pub struct Migration {
    pub version: i64,
    pub sqlite: &'static str,
    pub postgres: &'static str,
    /// SQLite only, after `sqlite`: what plain SQL cannot say (a column
    /// added to files made before version tracking, if missing).
    pub sqlite_fixup: Option<Fixup>,
}

/// The `rigger check` history.
pub const CHECK: &[Migration] = &[
    Migration {
        version: 1,
        // `IF NOT EXISTS`: files made before `schema_version` existed hold
        // these tables already.
        sqlite: "
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
);",
        postgres: "
CREATE TABLE runs (
    id BIGSERIAL PRIMARY KEY,
    check_key TEXT NOT NULL,
    started BIGINT NOT NULL,
    finished BIGINT,
    status TEXT NOT NULL,
    exit_code BIGINT,
    playbook TEXT NOT NULL,
    playbook_sha256 TEXT NOT NULL,
    inventory TEXT NOT NULL,
    hosts BIGINT NOT NULL DEFAULT 0,
    drifted BIGINT NOT NULL DEFAULT 0,
    unreachable BIGINT NOT NULL DEFAULT 0,
    failed BIGINT NOT NULL DEFAULT 0,
    remediated BIGINT NOT NULL DEFAULT 0,
    delivery TEXT
);
CREATE INDEX runs_by_key ON runs (check_key, id);
CREATE TABLE host_results (
    run_id BIGINT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    host TEXT NOT NULL,
    status TEXT NOT NULL,
    msg TEXT,
    PRIMARY KEY (run_id, host)
);
CREATE TABLE task_results (
    run_id BIGINT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    seq BIGINT NOT NULL,
    host TEXT NOT NULL,
    task TEXT NOT NULL,
    location TEXT NOT NULL,
    status TEXT NOT NULL,
    diff TEXT NOT NULL,
    msg TEXT,
    PRIMARY KEY (run_id, seq)
);
CREATE INDEX task_results_drift ON task_results (run_id, status);
CREATE TABLE remediations (
    run_id BIGINT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    host TEXT NOT NULL,
    task TEXT NOT NULL,
    status TEXT NOT NULL
);",
        sqlite_fixup: Some(|tx| {
            // Files made before the delivery column existed.
            let has = tx
                .query_opt(
                    "SELECT 1 FROM pragma_table_info('runs') WHERE name = 'delivery'",
                    params![],
                    |r| r.i64(0),
                )?
                .is_some();
            if !has {
                tx.batch("ALTER TABLE runs ADD COLUMN delivery TEXT")?;
            }
            Ok(())
        }),
    },
    Migration {
        version: 2,
        // Sharded runs (`--shard K/N`): the run id the shards share, and
        // which shard a row is.
        sqlite: "ALTER TABLE runs ADD COLUMN run_key TEXT;
ALTER TABLE runs ADD COLUMN shard TEXT;
CREATE INDEX runs_by_run_key ON runs (run_key);",
        postgres: "ALTER TABLE runs ADD COLUMN run_key TEXT;
ALTER TABLE runs ADD COLUMN shard TEXT;
CREATE INDEX runs_by_run_key ON runs (run_key);",
        sqlite_fixup: None,
    },
];

/// The `rigger watch` state.
pub const WATCH: &[Migration] = &[
    Migration {
        version: 1,
        sqlite: "
CREATE TABLE IF NOT EXISTS samples(series TEXT NOT NULL, ts REAL NOT NULL, value REAL NOT NULL);
DROP INDEX IF EXISTS samples_series_ts;
CREATE INDEX IF NOT EXISTS samples_ts ON samples(ts);
CREATE TABLE IF NOT EXISTS alerts(fingerprint TEXT PRIMARY KEY, data TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS nlog(group_key TEXT PRIMARY KEY, data TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS silences(id INTEGER PRIMARY KEY AUTOINCREMENT, matchers TEXT NOT NULL,
    starts REAL NOT NULL, ends REAL NOT NULL, comment TEXT NOT NULL, created_by TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS outbox(id INTEGER PRIMARY KEY AUTOINCREMENT, receiver TEXT NOT NULL,
    kind TEXT NOT NULL, payload TEXT NOT NULL, created REAL NOT NULL, attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt REAL NOT NULL, last_error TEXT, state TEXT NOT NULL DEFAULT 'pending', done_at REAL);",
        postgres: "
CREATE TABLE samples(series TEXT NOT NULL, ts DOUBLE PRECISION NOT NULL, value DOUBLE PRECISION NOT NULL);
CREATE INDEX samples_ts ON samples(ts);
CREATE TABLE alerts(fingerprint TEXT PRIMARY KEY, data TEXT NOT NULL);
CREATE TABLE nlog(group_key TEXT PRIMARY KEY, data TEXT NOT NULL);
CREATE TABLE silences(id BIGSERIAL PRIMARY KEY, matchers TEXT NOT NULL,
    starts DOUBLE PRECISION NOT NULL, ends DOUBLE PRECISION NOT NULL, comment TEXT NOT NULL,
    created_by TEXT NOT NULL);
CREATE TABLE outbox(id BIGSERIAL PRIMARY KEY, receiver TEXT NOT NULL,
    kind TEXT NOT NULL, payload TEXT NOT NULL, created DOUBLE PRECISION NOT NULL,
    attempts BIGINT NOT NULL DEFAULT 0, next_attempt DOUBLE PRECISION NOT NULL, last_error TEXT,
    state TEXT NOT NULL DEFAULT 'pending', done_at DOUBLE PRECISION);",
        sqlite_fixup: None,
    },
    Migration {
        version: 2,
        // Guarded actions (`action:` of a rule). `IF NOT EXISTS` on SQLite:
        // files made before `schema_version` existed may hold the table.
        sqlite: "
CREATE TABLE IF NOT EXISTS actions(id INTEGER PRIMARY KEY AUTOINCREMENT, rule TEXT NOT NULL,
    host TEXT NOT NULL, fingerprint TEXT NOT NULL, trigger TEXT NOT NULL, playbook TEXT NOT NULL,
    state TEXT NOT NULL, reason TEXT, dry_run INTEGER NOT NULL, created REAL NOT NULL,
    expires REAL, started REAL, finished REAL, pid INTEGER, exit_code INTEGER, changed INTEGER,
    alert TEXT NOT NULL, recap TEXT, diff TEXT, output TEXT, approved_by TEXT);
CREATE INDEX IF NOT EXISTS actions_rule ON actions(rule, created);",
        postgres: "
CREATE TABLE actions(id BIGSERIAL PRIMARY KEY, rule TEXT NOT NULL,
    host TEXT NOT NULL, fingerprint TEXT NOT NULL, trigger TEXT NOT NULL, playbook TEXT NOT NULL,
    state TEXT NOT NULL, reason TEXT, dry_run BIGINT NOT NULL, created DOUBLE PRECISION NOT NULL,
    expires DOUBLE PRECISION, started DOUBLE PRECISION, finished DOUBLE PRECISION, pid BIGINT,
    exit_code BIGINT, changed BIGINT, alert TEXT NOT NULL, recap TEXT, diff TEXT, output TEXT,
    approved_by TEXT);
CREATE INDEX actions_rule ON actions(rule, created);",
        sqlite_fixup: None,
    },
    Migration {
        version: 3,
        // Instances in a group (docs/watch.md "Several instances"): who is
        // alive, who owns which host until when; the outbox's idempotent
        // notification key and its claims.
        sqlite: "
CREATE TABLE watch_instances(grp TEXT NOT NULL, id TEXT NOT NULL, heartbeat REAL NOT NULL,
    started REAL NOT NULL, PRIMARY KEY(grp, id));
CREATE TABLE watch_leases(grp TEXT NOT NULL, host TEXT NOT NULL, owner TEXT NOT NULL,
    expires REAL NOT NULL, PRIMARY KEY(grp, host));
ALTER TABLE outbox ADD COLUMN nkey TEXT;
ALTER TABLE outbox ADD COLUMN claimed_by TEXT;
ALTER TABLE outbox ADD COLUMN claimed_until REAL;
CREATE UNIQUE INDEX outbox_nkey ON outbox(nkey);",
        postgres: "
CREATE TABLE watch_instances(grp TEXT NOT NULL, id TEXT NOT NULL, heartbeat DOUBLE PRECISION NOT NULL,
    started DOUBLE PRECISION NOT NULL, PRIMARY KEY(grp, id));
CREATE TABLE watch_leases(grp TEXT NOT NULL, host TEXT NOT NULL, owner TEXT NOT NULL,
    expires DOUBLE PRECISION NOT NULL, PRIMARY KEY(grp, host));
ALTER TABLE outbox ADD COLUMN nkey TEXT;
ALTER TABLE outbox ADD COLUMN claimed_by TEXT;
ALTER TABLE outbox ADD COLUMN claimed_until DOUBLE PRECISION;
CREATE UNIQUE INDEX outbox_nkey ON outbox(nkey);",
        sqlite_fixup: None,
    },
];

/// Bring `component` up to the last step of `list`.
pub fn migrate(conn: &Conn, component: &'static str, list: &[Migration]) -> Result<(), StateError> {
    let known = list.last().map_or(0, |m| m.version);
    let pg = conn.is_postgres();
    conn.transaction(|tx| {
        if pg {
            // One arbitrary key for "rigger's schema"; released at commit.
            tx.batch("SELECT pg_advisory_xact_lock(7306853541220577536)")?;
        }
        tx.batch(
            "CREATE TABLE IF NOT EXISTS schema_version (component TEXT PRIMARY KEY, version BIGINT NOT NULL, \
             applied BIGINT NOT NULL)",
        )?;
        let found = tx
            .query_opt(
                "SELECT version FROM schema_version WHERE component = ?1",
                params![component],
                |r| r.i64(0),
            )?
            .unwrap_or(0);
        if found > known {
            return Err(StateError::TooNew {
                what: conn.what,
                location: conn.location.clone(),
                component,
                found,
                known,
            });
        }
        for m in list.iter().filter(|m| m.version > found) {
            if pg {
                tx.batch(m.postgres)?;
            } else {
                tx.batch(m.sqlite)?;
                if let Some(fix) = m.sqlite_fixup {
                    fix(tx)?;
                }
            }
        }
        if found < known {
            tx.execute(
                "INSERT INTO schema_version (component, version, applied) VALUES (?1, ?2, ?3) \
                 ON CONFLICT (component) DO UPDATE SET version = ?2, applied = ?3",
                params![component, known, crate::calendar::now_unix()],
            )?;
        }
        Ok(())
    })
}

/// The version `component` is at (0: none).
pub fn version(conn: &Conn, component: &str) -> Result<i64, StateError> {
    Ok(conn
        .query_opt(
            "SELECT version FROM schema_version WHERE component = ?1",
            params![component],
            |r| r.i64(0),
        )?
        .unwrap_or(0))
}
