//! Samples in bounded in-memory rings, and the SQLite state file: downsampled
//! samples (so a restart keeps context), alerts, the notification log,
//! silences and the notification outbox.

use std::collections::{HashMap, VecDeque};
use std::path::Path;

use rusqlite::{params, Connection, OptionalExtension};

use super::config::Labels;

/// `name{a="b",c="d"}` with labels sorted: the identity of a series.
pub fn series_key(name: &str, labels: &Labels) -> String {
    let mut s = String::with_capacity(name.len() + 32);
    s.push_str(name);
    s.push('{');
    for (i, (k, v)) in labels.iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        s.push_str(k);
        s.push_str("=\"");
        s.push_str(&v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n"));
        s.push('"');
    }
    s.push('}');
    s
}

pub struct Series {
    pub name: String,
    pub labels: Labels,
    /// (unix seconds, value), oldest first.
    pub points: VecDeque<(f64, f64)>,
    /// The downsampling bucket being filled: (start, sum, count).
    bucket: Option<(f64, f64, u32)>,
}

impl Series {
    pub fn last(&self) -> Option<(f64, f64)> {
        self.points.back().copied()
    }

    /// Points with a timestamp at or after `since`.
    pub fn since(&self, since: f64) -> impl Iterator<Item = &(f64, f64)> {
        self.points.iter().filter(move |(t, _)| *t >= since)
    }
}

pub struct Store {
    pub series: HashMap<String, Series>,
    ring: usize,
    bucket_secs: f64,
    /// Downsampled points waiting to be written: (key, ts, value).
    pending: Vec<(String, f64, f64)>,
}

impl Store {
    pub fn new(ring: usize, bucket_secs: f64) -> Store {
        Store {
            series: HashMap::new(),
            ring: ring.max(2),
            bucket_secs: bucket_secs.max(0.001),
            pending: Vec::new(),
        }
    }

    pub fn set_limits(&mut self, ring: usize, bucket_secs: f64) {
        self.ring = ring.max(2);
        self.bucket_secs = bucket_secs.max(0.001);
        for s in self.series.values_mut() {
            while s.points.len() > self.ring {
                s.points.pop_front();
            }
        }
    }

    pub fn push(&mut self, name: &str, labels: &Labels, ts: f64, value: f64) {
        let key = series_key(name, labels);
        let ring = self.ring;
        let s = self.series.entry(key.clone()).or_insert_with(|| Series {
            name: name.to_string(),
            labels: labels.clone(),
            points: VecDeque::new(),
            bucket: None,
        });
        if s.points.len() >= ring {
            s.points.pop_front();
        }
        s.points.push_back((ts, value));
        let start = (ts / self.bucket_secs).floor() * self.bucket_secs;
        match &mut s.bucket {
            Some((b, sum, n)) if *b == start => {
                *sum += value;
                *n += 1;
            }
            other => {
                if let Some((b, sum, n)) = other.take() {
                    self.pending.push((key, b, sum / f64::from(n)));
                }
                *other = Some((start, value, 1));
            }
        }
    }

    pub fn take_pending(&mut self) -> Vec<(String, f64, f64)> {
        std::mem::take(&mut self.pending)
    }

    /// Restore rings from persisted (downsampled) points.
    pub fn restore(&mut self, rows: Vec<(String, f64, f64)>) {
        for (key, ts, v) in rows {
            let Some((name, labels)) = parse_key(&key) else {
                continue;
            };
            let ring = self.ring;
            let s = self.series.entry(key).or_insert_with(|| Series {
                name,
                labels,
                points: VecDeque::new(),
                bucket: None,
            });
            if s.points.len() >= ring {
                s.points.pop_front();
            }
            s.points.push_back((ts, v));
        }
    }
}

pub fn parse_key(key: &str) -> Option<(String, Labels)> {
    let samples = super::collect::parse_exposition(std::iter::once(format!("{key} 0").as_str()), "_");
    let s = samples.into_iter().next()?;
    Some((s.name, s.labels))
}

/// One undelivered (or finished) notification.
#[derive(Debug, Clone)]
pub struct OutboxItem {
    pub id: i64,
    pub receiver: String,
    pub kind: String,
    pub payload: String,
    pub created: f64,
    pub attempts: i64,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct Silence {
    pub id: i64,
    pub matchers: Vec<String>,
    pub starts: f64,
    pub ends: f64,
    pub comment: String,
    pub created_by: String,
}

/// The SQLite state file. Calls are short local writes made from the
/// controller loop, so they run inline rather than on a blocking pool.
pub struct Db {
    conn: Connection,
}

fn err(e: rusqlite::Error) -> String {
    e.to_string()
}

impl Db {
    pub fn open(path: &Path) -> Result<Db, String> {
        if let Some(dir) = path.parent() {
            if !dir.as_os_str().is_empty() {
                std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
            }
        }
        let conn = Connection::open(path).map_err(|e| format!("cannot open the state file {}: {e}", path.display()))?;
        conn.execute_batch(
            "PRAGMA journal_mode=WAL;
             PRAGMA synchronous=NORMAL;
             PRAGMA busy_timeout=5000;
             CREATE TABLE IF NOT EXISTS samples(series TEXT NOT NULL, ts REAL NOT NULL, value REAL NOT NULL);
             CREATE INDEX IF NOT EXISTS samples_series_ts ON samples(series, ts);
             CREATE TABLE IF NOT EXISTS alerts(fingerprint TEXT PRIMARY KEY, data TEXT NOT NULL);
             CREATE TABLE IF NOT EXISTS nlog(group_key TEXT PRIMARY KEY, data TEXT NOT NULL);
             CREATE TABLE IF NOT EXISTS silences(id INTEGER PRIMARY KEY AUTOINCREMENT, matchers TEXT NOT NULL,
                 starts REAL NOT NULL, ends REAL NOT NULL, comment TEXT NOT NULL, created_by TEXT NOT NULL);
             CREATE TABLE IF NOT EXISTS outbox(id INTEGER PRIMARY KEY AUTOINCREMENT, receiver TEXT NOT NULL,
                 kind TEXT NOT NULL, payload TEXT NOT NULL, created REAL NOT NULL, attempts INTEGER NOT NULL DEFAULT 0,
                 next_attempt REAL NOT NULL, last_error TEXT, state TEXT NOT NULL DEFAULT 'pending', done_at REAL);",
        )
        .map_err(|e| format!("cannot initialise the state file {}: {e}", path.display()))?;
        Ok(Db { conn })
    }

    pub fn write_samples(&mut self, rows: &[(String, f64, f64)], keep_since: f64) -> Result<(), String> {
        let tx = self.conn.transaction().map_err(err)?;
        {
            let mut st = tx
                .prepare_cached("INSERT INTO samples(series, ts, value) VALUES (?1, ?2, ?3)")
                .map_err(err)?;
            for (k, t, v) in rows {
                st.execute(params![k, t, v]).map_err(err)?;
            }
        }
        tx.execute("DELETE FROM samples WHERE ts < ?1", params![keep_since])
            .map_err(err)?;
        tx.commit().map_err(err)
    }

    /// The newest `per_series` points of every series, oldest first.
    pub fn load_samples(&self, per_series: usize) -> Result<Vec<(String, f64, f64)>, String> {
        let mut st = self
            .conn
            .prepare(
                "SELECT series, ts, value FROM (SELECT series, ts, value, \
                 ROW_NUMBER() OVER (PARTITION BY series ORDER BY ts DESC) AS rn FROM samples) \
                 WHERE rn <= ?1 ORDER BY series, ts",
            )
            .map_err(err)?;
        let rows = st
            .query_map(params![per_series as i64], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .map_err(err)?;
        rows.collect::<Result<Vec<_>, _>>().map_err(err)
    }

    pub fn save_kv(&self, table: &str, key: &str, data: &str) -> Result<(), String> {
        let col = if table == "alerts" { "fingerprint" } else { "group_key" };
        self.conn
            .execute(
                &format!("INSERT INTO {table}({col}, data) VALUES (?1, ?2) ON CONFLICT({col}) DO UPDATE SET data = ?2"),
                params![key, data],
            )
            .map(|_| ())
            .map_err(err)
    }

    pub fn delete_kv(&self, table: &str, key: &str) -> Result<(), String> {
        let col = if table == "alerts" { "fingerprint" } else { "group_key" };
        self.conn
            .execute(&format!("DELETE FROM {table} WHERE {col} = ?1"), params![key])
            .map(|_| ())
            .map_err(err)
    }

    pub fn load_kv(&self, table: &str) -> Result<Vec<(String, String)>, String> {
        let col = if table == "alerts" { "fingerprint" } else { "group_key" };
        let mut st = self
            .conn
            .prepare(&format!("SELECT {col}, data FROM {table}"))
            .map_err(err)?;
        let rows = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?))).map_err(err)?;
        rows.collect::<Result<Vec<_>, _>>().map_err(err)
    }

    pub fn add_silence(&self, s: &Silence) -> Result<i64, String> {
        let m = serde_json::to_string(&s.matchers).map_err(|e| e.to_string())?;
        self.conn
            .execute(
                "INSERT INTO silences(matchers, starts, ends, comment, created_by) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![m, s.starts, s.ends, s.comment, s.created_by],
            )
            .map_err(err)?;
        Ok(self.conn.last_insert_rowid())
    }

    pub fn silences(&self) -> Result<Vec<Silence>, String> {
        let mut st = self
            .conn
            .prepare("SELECT id, matchers, starts, ends, comment, created_by FROM silences ORDER BY id")
            .map_err(err)?;
        let rows = st
            .query_map([], |r| {
                let m: String = r.get(1)?;
                Ok(Silence {
                    id: r.get(0)?,
                    matchers: serde_json::from_str(&m).unwrap_or_default(),
                    starts: r.get(2)?,
                    ends: r.get(3)?,
                    comment: r.get(4)?,
                    created_by: r.get(5)?,
                })
            })
            .map_err(err)?;
        rows.collect::<Result<Vec<_>, _>>().map_err(err)
    }

    /// Make a silence end now. False when there is no such silence.
    pub fn expire_silence(&self, id: i64, now: f64) -> Result<bool, String> {
        let n = self
            .conn
            .execute(
                "UPDATE silences SET ends = MIN(ends, ?2) WHERE id = ?1",
                params![id, now],
            )
            .map_err(err)?;
        Ok(n > 0)
    }

    pub fn enqueue(&self, receiver: &str, kind: &str, payload: &str, now: f64) -> Result<i64, String> {
        self.conn
            .execute(
                "INSERT INTO outbox(receiver, kind, payload, created, next_attempt) VALUES (?1, ?2, ?3, ?4, ?4)",
                params![receiver, kind, payload, now],
            )
            .map_err(err)?;
        Ok(self.conn.last_insert_rowid())
    }

    pub fn due(&self, now: f64) -> Result<Vec<OutboxItem>, String> {
        let mut st = self
            .conn
            .prepare(
                "SELECT id, receiver, kind, payload, created, attempts FROM outbox \
                 WHERE state = 'pending' AND next_attempt <= ?1 ORDER BY id",
            )
            .map_err(err)?;
        let rows = st
            .query_map(params![now], |r| {
                Ok(OutboxItem {
                    id: r.get(0)?,
                    receiver: r.get(1)?,
                    kind: r.get(2)?,
                    payload: r.get(3)?,
                    created: r.get(4)?,
                    attempts: r.get(5)?,
                })
            })
            .map_err(err)?;
        rows.collect::<Result<Vec<_>, _>>().map_err(err)
    }

    pub fn mark(&self, id: i64, state: &str, now: f64, error: Option<&str>) -> Result<(), String> {
        self.conn
            .execute(
                "UPDATE outbox SET state = ?2, done_at = ?3, attempts = attempts + 1, last_error = ?4 WHERE id = ?1",
                params![id, state, now, error],
            )
            .map(|_| ())
            .map_err(err)
    }

    pub fn retry_later(&self, id: i64, next: f64, error: &str) -> Result<(), String> {
        self.conn
            .execute(
                "UPDATE outbox SET attempts = attempts + 1, next_attempt = ?2, last_error = ?3 WHERE id = ?1",
                params![id, next, error],
            )
            .map(|_| ())
            .map_err(err)
    }

    /// (pending, delivered, expired) counts.
    pub fn outbox_counts(&self) -> Result<(i64, i64, i64), String> {
        let q = |s: &str| -> Result<i64, String> {
            self.conn
                .query_row("SELECT COUNT(*) FROM outbox WHERE state = ?1", params![s], |r| r.get(0))
                .optional()
                .map(|o| o.unwrap_or(0))
                .map_err(err)
        };
        Ok((q("pending")?, q("delivered")?, q("expired")?))
    }

    /// Delivered/expired rows are kept a day for inspection, then removed.
    pub fn prune_outbox(&self, before: f64) -> Result<(), String> {
        self.conn
            .execute(
                "DELETE FROM outbox WHERE state != 'pending' AND done_at < ?1",
                params![before],
            )
            .map(|_| ())
            .map_err(err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ring_bound_downsampling_and_persistence() {
        let mut st = Store::new(4, 10.0);
        let mut l = Labels::new();
        l.insert("host".into(), "h\"1".into());
        for i in 0..25 {
            st.push("x", &l, 1000.0 + f64::from(i), f64::from(i));
        }
        let key = series_key("x", &l);
        let s = &st.series[&key];
        assert_eq!(s.points.len(), 4);
        assert_eq!(s.last(), Some((1024.0, 24.0)));
        // Buckets [1000,1010) and [1010,1020) are complete: averages 4.5 and 14.5.
        let p = st.take_pending();
        assert_eq!(p.iter().map(|r| r.2).collect::<Vec<_>>(), vec![4.5, 14.5]);
        assert_eq!(parse_key(&key).unwrap(), ("x".to_string(), l.clone()));

        let dir = tempfile::tempdir().unwrap();
        let mut db = Db::open(&dir.path().join("s.db")).unwrap();
        db.write_samples(&p, 0.0).unwrap();
        let mut st2 = Store::new(4, 10.0);
        st2.restore(db.load_samples(1).unwrap());
        assert_eq!(st2.series[&key].last(), Some((1010.0, 14.5)));

        let id = db.enqueue("ops", "webhook", "{}", 5.0).unwrap();
        assert_eq!(db.due(4.0).unwrap().len(), 0);
        assert_eq!(db.due(5.0).unwrap()[0].id, id);
        db.retry_later(id, 9.0, "refused").unwrap();
        assert!(db.due(6.0).unwrap().is_empty());
        db.mark(id, "delivered", 9.5, None).unwrap();
        assert_eq!(db.outbox_counts().unwrap(), (0, 1, 0));
    }
}
