//! Samples in bounded in-memory rings, and the SQLite state file: downsampled
//! samples (so a restart keeps context), alerts, the notification log,
//! silences and the notification outbox.
//!
//! Memory is what limits how many hosts one controller watches, so a series
//! is kept small: its key and labels share interned strings, and its ring
//! holds (centiseconds since the series' base time as `i32`, `f64` value):
//! 12 bytes a sample, only for as long as a rule needs. A series that a rule
//! watches keeps `history` (at least the longest window of its rules); any
//! other series keeps its newest two samples (for `/metrics` and for rules
//! added by a reload, which then fill up).

use std::collections::{HashMap, HashSet, VecDeque};
use std::path::Path;
use std::sync::Arc;

use crate::error::AppError;
use crate::state::{migrations, params, Conn, Exec, Location, StateError};

use super::config::{Labels, Matcher, WatchConfig};
use super::exposition::{parse_key, series_key, write_key};

/// An interned string.
pub type Sym = Arc<str>;

/// A series' labels, sorted by name, names and values interned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabelSet(Box<[(Sym, Sym)]>);

impl LabelSet {
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .binary_search_by(|(k, _)| (**k).cmp(name))
            .ok()
            .map(|i| &*self.0[i].1)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (&**k, &**v))
    }

    pub fn matches(&self, matchers: &[Matcher]) -> bool {
        matchers.iter().all(|m| m.matches_value(self.get(&m.name)))
    }

    pub fn to_labels(&self) -> Labels {
        self.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }
}

/// How long samples stay in memory, from the configuration.
#[derive(Debug, Clone)]
pub struct Retention {
    /// Collection interval, seconds: turns a window into a number of samples.
    pub interval: f64,
    /// Seconds kept for series that a rule watches.
    pub history: f64,
    /// Upper bound of the samples of any series.
    pub max_points: usize,
    /// Downsampling bucket for SQLite, seconds.
    pub persist_every: f64,
    /// (metric, matchers, window seconds) of every rule.
    pub rules: Vec<(String, Vec<Matcher>, f64)>,
    /// Every series counts as watched (tests, tools).
    pub keep_all: bool,
}

impl Retention {
    pub fn from_config(cfg: &WatchConfig) -> Retention {
        Retention {
            interval: cfg.interval.as_secs_f64(),
            history: cfg.history.as_secs_f64(),
            max_points: cfg.ring_size,
            persist_every: cfg.persist_every.as_secs_f64(),
            rules: cfg
                .rules
                .iter()
                .map(|r| (r.metric.clone(), r.matchers.clone(), r.kind.window().as_secs_f64()))
                .collect(),
            keep_all: false,
        }
    }

    /// Every series keeps up to `points` samples, however old.
    pub fn keep_all(points: usize, persist_every: f64) -> Retention {
        Retention {
            interval: 1.0,
            history: f64::INFINITY,
            max_points: points,
            persist_every,
            rules: Vec::new(),
            keep_all: true,
        }
    }

    /// (seconds, samples) kept for a series; seconds 0 = no time limit.
    fn limits(&self, name: &str, labels: &LabelSet) -> (f64, usize) {
        let max = self.max_points.max(2);
        if self.keep_all {
            return (0.0, max);
        }
        let window = self
            .rules
            .iter()
            .filter(|(m, matchers, _)| m == name && labels.matches(matchers))
            .map(|(_, _, w)| *w)
            .fold(None, |acc: Option<f64>, w| Some(acc.unwrap_or(0.0).max(w)));
        match window {
            Some(w) => {
                let secs = w.max(self.history);
                let n = (secs / self.interval.max(0.001)).ceil() + 2.0;
                (secs, if n.is_finite() { (n as usize).clamp(2, max) } else { max })
            }
            None => (0.0, 2),
        }
    }

    /// Whether a rule watches the series (only those keep `history:` in
    /// memory; the others keep their newest samples).
    pub fn watches(&self, name: &str, labels: &LabelSet) -> bool {
        self.keep_all
            || self
                .rules
                .iter()
                .any(|(m, matchers, _)| m == name && labels.matches(matchers))
    }

    /// How far back persisted samples are useful (to restore the rings).
    pub fn keep_secs(&self) -> f64 {
        let longest = self.rules.iter().map(|r| r.2).fold(self.history, f64::max);
        longest + self.persist_every
    }
}

pub struct Series {
    pub key: Sym,
    pub name: Sym,
    pub labels: LabelSet,
    /// Unix seconds that the timestamps count from.
    base: f64,
    /// Centiseconds since `base`, and values; oldest first.
    t: VecDeque<i32>,
    v: VecDeque<f64>,
    /// Seconds kept (0: no time limit) and samples kept at most.
    window: f64,
    cap: usize,
    /// The downsampling bucket being filled: (start, sum, count).
    bucket: Option<(f64, f64, u32)>,
}

impl Series {
    fn new(key: Sym, name: Sym, labels: LabelSet, (window, cap): (f64, usize)) -> Series {
        Series {
            key,
            name,
            labels,
            base: f64::NAN,
            t: VecDeque::new(),
            v: VecDeque::new(),
            window,
            cap,
            bucket: None,
        }
    }

    fn ts(&self, c: i32) -> f64 {
        self.base + f64::from(c) / 100.0
    }

    pub fn len(&self) -> usize {
        self.t.len()
    }

    pub fn is_empty(&self) -> bool {
        self.t.is_empty()
    }

    pub fn last(&self) -> Option<(f64, f64)> {
        Some((self.ts(*self.t.back()?), *self.v.back()?))
    }

    /// (unix seconds, value), oldest first.
    pub fn points(&self) -> impl Iterator<Item = (f64, f64)> + '_ {
        self.t.iter().zip(&self.v).map(|(c, v)| (self.ts(*c), *v))
    }

    /// Points with a timestamp at or after `since`.
    pub fn since(&self, since: f64) -> impl Iterator<Item = (f64, f64)> + '_ {
        // Rings are in time order: skip the older part without converting it.
        let skip = self.t.partition_point(|c| self.ts(*c) < since);
        self.points().skip(skip)
    }

    /// Append a point, dropping what falls out of the window or the cap.
    fn add(&mut self, ts: f64, value: f64) {
        if self.base.is_nan() {
            self.base = ts.floor();
        }
        let mut c = ((ts - self.base) * 100.0).round();
        if c > f64::from(i32::MAX) || c < f64::from(i32::MIN) {
            self.rebase(ts.floor());
            c = ((ts - self.base) * 100.0).round();
        }
        let c = c as i32;
        while self.t.len() >= self.cap {
            self.t.pop_front();
            self.v.pop_front();
        }
        if self.window > 0.0 {
            let oldest = ((ts - self.window - self.base) * 100.0).floor();
            while self.t.front().is_some_and(|&f| f64::from(f) < oldest) {
                self.t.pop_front();
                self.v.pop_front();
            }
        }
        // Grow towards the cap without doubling past it.
        if self.t.len() == self.t.capacity() {
            let want = (self.t.len() * 2)
                .max(4)
                .min(self.cap)
                .saturating_sub(self.t.len())
                .max(1);
            self.t.reserve_exact(want);
            self.v.reserve_exact(want);
        }
        self.t.push_back(c);
        self.v.push_back(value);
    }

    /// Count from a new base time; points that no longer fit are dropped
    /// (they are over 248 days older than the newest).
    fn rebase(&mut self, base: f64) {
        let pts: Vec<(f64, f64)> = self.points().collect();
        self.t.clear();
        self.v.clear();
        self.base = base;
        for (t, v) in pts {
            let c = ((t - base) * 100.0).round();
            if c >= f64::from(i32::MIN) && c <= f64::from(i32::MAX) {
                self.t.push_back(c as i32);
                self.v.push_back(v);
            }
        }
    }

    fn set_limits(&mut self, (window, cap): (f64, usize)) {
        self.window = window;
        self.cap = cap;
        while self.t.len() > cap {
            self.t.pop_front();
            self.v.pop_front();
        }
        if let (true, Some(&last)) = (window > 0.0, self.t.back()) {
            let oldest = f64::from(last) - window * 100.0;
            while self.t.front().is_some_and(|&f| f64::from(f) < oldest) {
                self.t.pop_front();
                self.v.pop_front();
            }
        }
        self.t.shrink_to(cap);
        self.v.shrink_to(cap);
    }
}

pub struct Store {
    pub series: HashMap<Sym, Series>,
    symbols: HashSet<Sym>,
    retention: Retention,
    /// Downsampled points waiting to be written: (key, ts, value).
    pending: Vec<(Sym, f64, f64)>,
    key_buf: String,
}

impl Store {
    pub fn new(retention: Retention) -> Store {
        Store {
            series: HashMap::new(),
            symbols: HashSet::new(),
            retention,
            pending: Vec::new(),
            key_buf: String::new(),
        }
    }

    pub fn retention(&self) -> &Retention {
        &self.retention
    }

    /// New limits (a configuration reload): every series is re-sized.
    pub fn set_retention(&mut self, retention: Retention) {
        self.retention = retention;
        for s in self.series.values_mut() {
            s.set_limits(self.retention.limits(&s.name, &s.labels));
        }
    }

    fn intern(symbols: &mut HashSet<Sym>, s: &str) -> Sym {
        if let Some(x) = symbols.get(s) {
            return x.clone();
        }
        let x: Sym = Arc::from(s);
        symbols.insert(x.clone());
        x
    }

    /// The series of `key` (`name{labels}` as [`series_key`] writes it),
    /// created when new. None when the key does not parse.
    fn series_mut(&mut self, key: &str) -> Option<&mut Series> {
        if !self.series.contains_key(key) {
            let (name, labels) = parse_key(key)?;
            // The canonical key, should `key` be spelled differently.
            let canon = series_key(&name, &labels);
            if !self.series.contains_key(canon.as_str()) {
                let name = Self::intern(&mut self.symbols, &name);
                let labels = LabelSet(
                    labels
                        .iter()
                        .map(|(k, v)| (Self::intern(&mut self.symbols, k), Self::intern(&mut self.symbols, v)))
                        .collect(),
                );
                let limits = self.retention.limits(&name, &labels);
                let key: Sym = Arc::from(canon.as_str());
                self.series.insert(key.clone(), Series::new(key, name, labels, limits));
            }
            return self.series.get_mut(canon.as_str());
        }
        self.series.get_mut(key)
    }

    /// Add a sample to the series of `key`.
    pub fn push_key(&mut self, key: &str, ts: f64, value: f64) {
        let bucket_secs = self.retention.persist_every.max(0.001);
        let Some(s) = self.series_mut(key) else { return };
        s.add(ts, value);
        let start = (ts / bucket_secs).floor() * bucket_secs;
        let done = match &mut s.bucket {
            Some((b, sum, n)) if *b == start => {
                *sum += value;
                *n += 1;
                None
            }
            other => other
                .replace((start, value, 1))
                .map(|(b, sum, n)| (b, sum / f64::from(n))),
        };
        if let Some((b, avg)) = done {
            let key = s.key.clone();
            self.pending.push((key, b, avg));
        }
    }

    pub fn push(&mut self, name: &str, labels: &Labels, ts: f64, value: f64) {
        let mut buf = std::mem::take(&mut self.key_buf);
        buf.clear();
        write_key(&mut buf, name, labels.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        self.push_key(&buf, ts, value);
        self.key_buf = buf;
    }

    /// Add a sample; `labels` sorted by name.
    pub fn push_sorted(&mut self, name: &str, labels: &[(&str, &str)], ts: f64, value: f64) {
        let mut buf = std::mem::take(&mut self.key_buf);
        buf.clear();
        write_key(&mut buf, name, labels.iter().copied());
        self.push_key(&buf, ts, value);
        self.key_buf = buf;
    }

    pub fn push_samples(&mut self, samples: &super::collect::Samples, ts: f64) {
        for (k, v) in samples.iter() {
            self.push_key(k, ts, v);
        }
    }

    pub fn take_pending(&mut self) -> Vec<(Sym, f64, f64)> {
        std::mem::take(&mut self.pending)
    }

    /// Forget series without a sample since `before` (an unmounted file
    /// system, a removed interface or host). Returns how many.
    pub fn prune(&mut self, before: f64) -> usize {
        let n = self.series.len();
        self.series.retain(|_, s| s.last().is_some_and(|(t, _)| t >= before));
        let removed = n - self.series.len();
        if removed > 0 {
            // Symbols only the removed series used.
            self.symbols.retain(|x| Arc::strong_count(x) > 1);
        }
        removed
    }

    /// Restore rings from persisted (downsampled) points, oldest first.
    pub fn restore(&mut self, rows: Vec<(String, f64, f64)>) {
        for (key, ts, v) in rows {
            self.restore_point(&key, ts, v);
        }
    }

    /// Add a persisted point (not downsampled again).
    pub fn restore_point(&mut self, key: &str, ts: f64, v: f64) {
        if let Some(s) = self.series_mut(key) {
            s.add(ts, v);
        }
    }

    /// Prometheus text exposition of the newest sample of every series.
    pub fn exposition(&self) -> String {
        let mut by_name: HashMap<&str, Vec<(&str, f64, f64)>> = HashMap::new();
        for (k, s) in &self.series {
            if let Some((t, v)) = s.last() {
                by_name.entry(&s.name).or_default().push((k, t, v));
            }
        }
        let mut names: Vec<&&str> = by_name.keys().collect();
        names.sort();
        let mut out = String::new();
        for name in names {
            out.push_str(&format!("# TYPE {name} gauge\n"));
            let mut rows = by_name[*name].clone();
            rows.sort_by(|a, b| a.0.cmp(b.0));
            for (k, t, v) in rows {
                let key = k.strip_suffix("{}").unwrap_or(k);
                out.push_str(&format!("{key} {v} {}\n", (t * 1000.0) as i64));
            }
        }
        out
    }

    /// Samples held in memory (all series).
    pub fn sample_count(&self) -> usize {
        self.series.values().map(Series::len).sum()
    }
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

/// The state database: a SQLite file by default, or PostgreSQL (`state:
/// postgres://…`, see docs/state.md). Calls are short writes made from the
/// controller loop, so they run inline rather than on a blocking pool.
pub struct Db {
    pub(super) conn: Conn,
    /// Who claims outbox rows through this connection (PostgreSQL).
    claimant: String,
}

/// How long a claimed outbox row stays with its claimer: longer than any
/// delivery attempt takes (an SMTP or webhook timeout), so that two
/// instances never send one row at once; a row whose claimer died is sent
/// by another instance after it.
pub const CLAIM_SECS: f64 = 120.0;

/// Errors of the state database. Opening errors keep the file's path (or
/// the URL without its password).
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(transparent)]
    State(#[from] StateError),
    #[error(transparent)]
    Json(#[from] serde_json::Error),
    /// A thread panicked while it held the database mutex.
    #[error("lock poisoned")]
    Poisoned,
}

impl StoreError {
    /// Exit code when this error ends `rigger watch` (see README "Exit codes").
    pub fn exit_code(&self) -> i32 {
        1
    }
}

impl From<StoreError> for AppError {
    fn from(e: StoreError) -> AppError {
        AppError::Other(e.to_string())
    }
}

/// The key column of the key/value tables.
fn kv_column(table: &str) -> Result<&'static str, StoreError> {
    match table {
        "alerts" => Ok("fingerprint"),
        "nlog" => Ok("group_key"),
        // Table names are the code's, never input: this is a bug.
        other => Err(StoreError::Json(serde::de::Error::custom(format!(
            "no key/value table `{other}`"
        )))),
    }
}

impl Db {
    pub fn open(path: &Path) -> Result<Db, StoreError> {
        Db::open_at(&Location::from_path(path))
    }

    pub fn open_at(location: &Location) -> Result<Db, StoreError> {
        let conn = migrations::open(location, "the watch state", "watch", migrations::WATCH)?;
        if !conn.is_postgres() {
            conn.lock()
                .batch("PRAGMA busy_timeout=5000; PRAGMA cache_size=-1024;")?;
        }
        Ok(Db {
            conn,
            claimant: format!("pid:{}", std::process::id()),
        })
    }

    pub fn location(&self) -> &Location {
        self.conn.location()
    }

    /// Name the claims of this connection (the group instance's id).
    pub fn set_claimant(&mut self, id: &str) {
        self.claimant = id.to_string();
    }

    /// Write downsampled points in one transaction and drop those older
    /// than `keep_since` (an indexed range delete).
    pub fn write_samples(&mut self, rows: &[(Sym, f64, f64)], keep_since: f64) -> Result<(), StoreError> {
        self.conn.transaction(|tx| -> Result<(), StoreError> {
            for (k, t, v) in rows {
                tx.execute(
                    "INSERT INTO samples(series, ts, value) VALUES (?1, ?2, ?3)",
                    params![&**k, *t, *v],
                )?;
            }
            tx.execute("DELETE FROM samples WHERE ts < ?1", params![keep_since])?;
            Ok(())
        })
    }

    /// The points since `since`, oldest first, streamed to `f` (a restart
    /// reads hundreds of thousands: none is collected in between). The only
    /// index is on `ts`: rows arrive and leave in time order, so writes touch
    /// the ends of the B-trees instead of a page per series.
    pub fn each_sample(&self, since: f64, mut f: impl FnMut(&str, f64, f64)) -> Result<usize, StoreError> {
        Ok(self.conn.for_each(
            "SELECT series, ts, value FROM samples WHERE ts >= ?1 ORDER BY ts",
            params![since],
            |r| {
                f(&r.text(0)?, r.f64(1)?, r.f64(2)?);
                Ok(())
            },
        )?)
    }

    /// The points since `since` of series whose key may name one of
    /// `hosts` (PostgreSQL; a superset: the caller checks the label), for
    /// an instance of a group that takes hosts over.
    pub fn each_sample_of_hosts(
        &self,
        since: f64,
        hosts: &[&str],
        mut f: impl FnMut(&str, f64, f64),
    ) -> Result<usize, StoreError> {
        let list = hosts.join("\n");
        Ok(self.conn.for_each(
            "SELECT series, ts, value FROM samples WHERE ts >= ?1 AND series LIKE ANY \
             (SELECT '%host=\"' || h || '\"%' FROM unnest(string_to_array(?2, chr(10))) AS h) ORDER BY ts",
            params![since, &list],
            |r| {
                f(&r.text(0)?, r.f64(1)?, r.f64(2)?);
                Ok(())
            },
        )?)
    }

    /// The points since `since`, per series oldest first.
    pub fn load_samples(&self, since: f64) -> Result<Vec<(String, f64, f64)>, StoreError> {
        let mut out = Vec::new();
        self.each_sample(since, |k, t, v| out.push((k.to_string(), t, v)))?;
        Ok(out)
    }

    pub fn save_kv(&self, table: &str, key: &str, data: &str) -> Result<(), StoreError> {
        let col = kv_column(table)?;
        self.conn.execute(
            &format!("INSERT INTO {table}({col}, data) VALUES (?1, ?2) ON CONFLICT({col}) DO UPDATE SET data = ?2"),
            params![key, data],
        )?;
        Ok(())
    }

    pub fn delete_kv(&self, table: &str, key: &str) -> Result<(), StoreError> {
        let col = kv_column(table)?;
        self.conn
            .execute(&format!("DELETE FROM {table} WHERE {col} = ?1"), params![key])?;
        Ok(())
    }

    pub fn load_kv(&self, table: &str) -> Result<Vec<(String, String)>, StoreError> {
        let col = kv_column(table)?;
        Ok(self.conn.query_map(
            &format!("SELECT {col}, data FROM {table} ORDER BY {col}"),
            params![],
            |r| Ok((r.text(0)?, r.text(1)?)),
        )?)
    }

    pub fn add_silence(&self, s: &Silence) -> Result<i64, StoreError> {
        let m = serde_json::to_string(&s.matchers)?;
        Ok(self.conn.insert_id(
            "INSERT INTO silences(matchers, starts, ends, comment, created_by) VALUES (?1, ?2, ?3, ?4, ?5) \
             RETURNING id",
            params![&m, s.starts, s.ends, &s.comment, &s.created_by],
        )?)
    }

    pub fn silences(&self) -> Result<Vec<Silence>, StoreError> {
        Ok(self.conn.query_map(
            "SELECT id, matchers, starts, ends, comment, created_by FROM silences ORDER BY id",
            params![],
            |r| {
                Ok(Silence {
                    id: r.i64(0)?,
                    matchers: serde_json::from_str(&r.text(1)?).unwrap_or_default(),
                    starts: r.f64(2)?,
                    ends: r.f64(3)?,
                    comment: r.text(4)?,
                    created_by: r.text(5)?,
                })
            },
        )?)
    }

    /// Make a silence end now. False when there is no such silence.
    pub fn expire_silence(&self, id: i64, now: f64) -> Result<bool, StoreError> {
        // SQLite's two-argument MIN is PostgreSQL's LEAST.
        let least = if self.conn.is_postgres() { "LEAST" } else { "MIN" };
        let n = self.conn.execute(
            &format!("UPDATE silences SET ends = {least}(ends, ?2) WHERE id = ?1"),
            params![id, now],
        )?;
        Ok(n > 0)
    }

    pub fn enqueue(&self, receiver: &str, kind: &str, payload: &str, now: f64) -> Result<i64, StoreError> {
        Ok(self.conn.insert_id(
            "INSERT INTO outbox(receiver, kind, payload, created, next_attempt) VALUES (?1, ?2, ?3, ?4, ?4) \
             RETURNING id",
            params![receiver, kind, payload, now],
        )?)
    }

    /// Queue a row under an idempotent notification key: `None` when a row
    /// with that key is (or was) in the outbox already, so an instance that
    /// took over a host and derived the same notification again never
    /// queues it twice.
    pub fn enqueue_keyed(
        &self,
        receiver: &str,
        kind: &str,
        payload: &str,
        now: f64,
        nkey: &str,
    ) -> Result<Option<i64>, StoreError> {
        Ok(self.conn.query_opt(
            "INSERT INTO outbox(receiver, kind, payload, created, next_attempt, nkey) \
             VALUES (?1, ?2, ?3, ?4, ?4, ?5) ON CONFLICT (nkey) DO NOTHING RETURNING id",
            params![receiver, kind, payload, now, nkey],
            |r| r.i64(0),
        )?)
    }

    /// The rows due for delivery. On PostgreSQL they are claimed for
    /// [`CLAIM_SECS`] (`FOR UPDATE SKIP LOCKED`: instances that look at
    /// once take disjoint rows, none waits), so each row is sent by one
    /// instance of a group.
    pub fn due(&self, now: f64) -> Result<Vec<OutboxItem>, StoreError> {
        let read = |r: &crate::state::RowReader<'_>| {
            Ok(OutboxItem {
                id: r.i64(0)?,
                receiver: r.text(1)?,
                kind: r.text(2)?,
                payload: r.text(3)?,
                created: r.f64(4)?,
                attempts: r.i64(5)?,
            })
        };
        if !self.conn.is_postgres() {
            return Ok(self.conn.query_map(
                "SELECT id, receiver, kind, payload, created, attempts FROM outbox \
                 WHERE state = 'pending' AND next_attempt <= ?1 ORDER BY id",
                params![now],
                read,
            )?);
        }
        let mut rows = self.conn.query_map(
            "UPDATE outbox SET claimed_by = ?2, claimed_until = ?3 WHERE id IN (\
             SELECT id FROM outbox WHERE state = 'pending' AND next_attempt <= ?1 \
             AND (claimed_until IS NULL OR claimed_until <= ?1 OR claimed_by = ?2) \
             ORDER BY id LIMIT 100 FOR UPDATE SKIP LOCKED) \
             RETURNING id, receiver, kind, payload, created, attempts",
            params![now, self.claimant.as_str(), now + CLAIM_SECS],
            read,
        )?;
        rows.sort_by_key(|o| o.id);
        Ok(rows)
    }

    pub fn mark(&self, id: i64, state: &str, now: f64, error: Option<&str>) -> Result<(), StoreError> {
        self.conn.execute(
            "UPDATE outbox SET state = ?2, done_at = ?3, attempts = attempts + 1, last_error = ?4 WHERE id = ?1",
            params![id, state, now, error],
        )?;
        Ok(())
    }

    pub fn retry_later(&self, id: i64, next: f64, error: &str) -> Result<(), StoreError> {
        self.conn.execute(
            "UPDATE outbox SET attempts = attempts + 1, next_attempt = ?2, last_error = ?3, claimed_by = NULL, \
             claimed_until = NULL WHERE id = ?1",
            params![id, next, error],
        )?;
        Ok(())
    }

    /// Rows in `state`: `pending`, `delivered`, `expired` (not delivered in
    /// `outbox_max_age`) or `failed` (a permanent failure, not retried).
    pub fn outbox_count(&self, state: &str) -> Result<i64, StoreError> {
        Ok(self
            .conn
            .query_opt("SELECT COUNT(*) FROM outbox WHERE state = ?1", params![state], |r| {
                r.i64(0)
            })?
            .unwrap_or(0))
    }

    /// (pending, delivered, expired) counts.
    pub fn outbox_counts(&self) -> Result<(i64, i64, i64), StoreError> {
        let q = |s: &str| self.outbox_count(s);
        Ok((q("pending")?, q("delivered")?, q("expired")?))
    }

    /// Delivered, expired and failed rows are kept a day for inspection, then removed.
    pub fn prune_outbox(&self, before: f64) -> Result<(), StoreError> {
        self.conn.execute(
            "DELETE FROM outbox WHERE state != 'pending' AND done_at < ?1",
            params![before],
        )?;
        Ok(())
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::watch::config::{Exclude, Matcher};

    #[test]
    fn open_error_keeps_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("f");
        std::fs::write(&file, "").unwrap();
        // The parent "directory" is a plain file: the state file cannot be created.
        let path = file.join("s.db");
        let e = Db::open(&path).err().unwrap();
        match &e {
            StoreError::State(StateError::Create { path: p, .. }) => assert_eq!(p, &path),
            other => panic!("unexpected {other:?}"),
        }
        assert!(e
            .to_string()
            .starts_with(&format!("cannot create the state file {}: ", path.display())));
        assert_eq!(e.exit_code(), 1);
        assert_eq!(StoreError::Poisoned.to_string(), "lock poisoned");
    }

    #[test]
    fn ring_bound_downsampling_and_persistence() {
        let mut st = Store::new(Retention::keep_all(4, 10.0));
        let mut l = Labels::new();
        l.insert("host".into(), "h\"1".into());
        for i in 0..25 {
            st.push("x", &l, 1000.0 + f64::from(i), f64::from(i));
        }
        let key = series_key("x", &l);
        let s = &st.series[key.as_str()];
        assert_eq!(s.len(), 4);
        assert_eq!(s.last(), Some((1024.0, 24.0)));
        assert_eq!(
            s.points().map(|p| p.1).collect::<Vec<_>>(),
            vec![21.0, 22.0, 23.0, 24.0]
        );
        assert_eq!(s.labels.get("host"), Some("h\"1"));
        // Buckets [1000,1010) and [1010,1020) are complete: averages 4.5 and 14.5.
        let p = st.take_pending();
        assert_eq!(p.iter().map(|r| r.2).collect::<Vec<_>>(), vec![4.5, 14.5]);
        assert_eq!(parse_key(&key).unwrap(), ("x".to_string(), l.clone()));

        let dir = tempfile::tempdir().unwrap();
        let mut db = Db::open(&dir.path().join("s.db")).unwrap();
        db.write_samples(&p, 0.0).unwrap();
        let mut st2 = Store::new(Retention::keep_all(4, 10.0));
        st2.restore(db.load_samples(1005.0).unwrap());
        assert_eq!(st2.series[key.as_str()].len(), 1);
        assert_eq!(st2.series[key.as_str()].last(), Some((1010.0, 14.5)));
        // Older rows are deleted on write.
        db.write_samples(&[], 1005.0).unwrap();
        assert_eq!(db.load_samples(0.0).unwrap().len(), 1);

        let id = db.enqueue("ops", "webhook", "{}", 5.0).unwrap();
        assert_eq!(db.due(4.0).unwrap().len(), 0);
        assert_eq!(db.due(5.0).unwrap()[0].id, id);
        db.retry_later(id, 9.0, "refused").unwrap();
        assert!(db.due(6.0).unwrap().is_empty());
        db.mark(id, "delivered", 9.5, None).unwrap();
        assert_eq!(db.outbox_counts().unwrap(), (0, 1, 0));
    }

    /// The state database's behaviour, run on each backend.
    fn db_suite(loc: &Location) {
        let mut db = Db::open_at(loc).unwrap();
        let k1: Sym = Arc::from(r#"disk{host="a",mount="/"}"#);
        let k2: Sym = Arc::from(r#"load1{host="b"}"#);
        db.write_samples(&[(k1.clone(), 100.0, 1.5), (k2.clone(), 110.0, 2.0)], 0.0)
            .unwrap();
        db.write_samples(&[(k1.clone(), 160.0, 3.25)], 105.0).unwrap();
        let mut seen = Vec::new();
        assert_eq!(
            db.each_sample(0.0, |k, t, v| seen.push((k.to_string(), t, v))).unwrap(),
            2
        );
        assert_eq!(
            seen,
            vec![(k2.to_string(), 110.0, 2.0), (k1.to_string(), 160.0, 3.25)],
            "older rows deleted, time order"
        );

        db.save_kv("alerts", "fp1", "{\"a\":1}").unwrap();
        db.save_kv("alerts", "fp1", "{\"a\":2}").unwrap();
        db.save_kv("nlog", "g1", "{}").unwrap();
        assert_eq!(db.load_kv("alerts").unwrap(), vec![("fp1".into(), "{\"a\":2}".into())]);
        db.delete_kv("alerts", "fp1").unwrap();
        assert!(db.load_kv("alerts").unwrap().is_empty());
        assert_eq!(db.load_kv("nlog").unwrap().len(), 1);
        assert!(db.save_kv("samples", "x", "y").is_err(), "only the key/value tables");

        let s = Silence {
            id: 0,
            matchers: vec!["host=\"a\"".into()],
            starts: 10.0,
            ends: 1000.0,
            comment: "maintenance".into(),
            created_by: "ops".into(),
        };
        let id = db.add_silence(&s).unwrap();
        let id2 = db.add_silence(&s).unwrap();
        assert!(id2 > id);
        assert!(db.expire_silence(id, 50.0).unwrap());
        assert!(!db.expire_silence(id2 + 100, 50.0).unwrap());
        let list = db.silences().unwrap();
        assert_eq!((list[0].ends, list[1].ends), (50.0, 1000.0));
        assert_eq!(list[0].matchers, vec!["host=\"a\"".to_string()]);
        // Expiring never lengthens one.
        assert!(db.expire_silence(id, 70.0).unwrap());
        assert_eq!(db.silences().unwrap()[0].ends, 50.0);

        let o1 = db.enqueue("ops", "email", "{}", 5.0).unwrap();
        let o2 = db.enqueue("ops", "webhook", "{\"x\":1}", 6.0).unwrap();
        assert_eq!(db.due(5.5).unwrap().iter().map(|o| o.id).collect::<Vec<_>>(), vec![o1]);
        db.retry_later(o1, 9.0, "refused").unwrap();
        assert_eq!(db.due(7.0).unwrap().iter().map(|o| o.id).collect::<Vec<_>>(), vec![o2]);
        let due = db.due(9.0).unwrap();
        assert_eq!((due[0].id, due[0].attempts, due[0].kind.as_str()), (o1, 1, "email"));
        db.mark(o1, "delivered", 9.5, None).unwrap();
        db.mark(o2, "failed", 9.6, Some("400 Bad Request")).unwrap();
        assert_eq!(db.outbox_counts().unwrap(), (0, 1, 0));
        assert_eq!(db.outbox_count("failed").unwrap(), 1);
        db.prune_outbox(9.55).unwrap();
        assert_eq!(db.outbox_counts().unwrap(), (0, 0, 0));
        assert_eq!(db.outbox_count("failed").unwrap(), 1);
        // One row per idempotent notification key, however often it is queued.
        let k1 = db.enqueue_keyed("ops", "email", "{}", 10.0, "ops:email:abc").unwrap();
        assert!(k1.is_some());
        assert_eq!(
            db.enqueue_keyed("ops", "email", "{\"y\":1}", 11.0, "ops:email:abc")
                .unwrap(),
            None
        );
        assert!(db
            .enqueue_keyed("ops", "webhook", "{}", 11.0, "ops:webhook:abc")
            .unwrap()
            .is_some());
        assert_eq!(db.outbox_count("pending").unwrap(), 2);
        drop(db);
        let db = Db::open_at(loc).unwrap();
        assert_eq!(db.silences().unwrap().len(), 2, "kept across opens");
        assert_eq!(
            crate::state::migrations::version(&db.conn, "watch").unwrap(),
            crate::state::migrations::WATCH.len() as i64
        );
    }

    #[test]
    fn watch_state_on_sqlite() {
        let dir = tempfile::tempdir().unwrap();
        db_suite(&Location::Sqlite(dir.path().join("w/state.db")));
    }

    #[test]
    fn watch_state_on_postgres() {
        let pg = crate::state::testpg::TestPg::start();
        let url = pg.create_db("watch");
        db_suite(&Location::parse(&url));
        // The check history and the watch state share one database.
        let h = crate::check::history::History::open_at(&Location::parse(&url)).unwrap();
        assert!(h.runs(1).unwrap().is_empty());
        assert_eq!(
            Db::open_at(&Location::parse(&url)).unwrap().silences().unwrap().len(),
            2
        );
        // Instances claim disjoint outbox rows; a claim lasts CLAIM_SECS.
        let (mut a, mut b) = (
            Db::open_at(&Location::parse(&url)).unwrap(),
            Db::open_at(&Location::parse(&url)).unwrap(),
        );
        a.set_claimant("a");
        b.set_claimant("b");
        let ids: Vec<i64> = a.due(100.0).unwrap().iter().map(|o| o.id).collect();
        assert_eq!(ids.len(), 2, "the two keyed rows of db_suite");
        assert!(b.due(100.0).unwrap().is_empty(), "claimed by a");
        assert_eq!(a.due(101.0).unwrap().len(), 2, "a's own claim");
        let late: Vec<i64> = b.due(101.0 + CLAIM_SECS).unwrap().iter().map(|o| o.id).collect();
        assert_eq!(late, ids, "a's claim ran out (a died): b sends them");
        assert!(a.due(102.0 + CLAIM_SECS).unwrap().is_empty());
    }

    #[test]
    fn group_leases_on_postgres() {
        use crate::watch::group::Membership;
        let pg = crate::state::testpg::TestPg::start();
        let url = pg.create_db("group_leases");
        let mut db = Db::open_at(&Location::parse(&url)).unwrap();
        // The samples of hosts taken over, read by host.
        let rows: Vec<(Sym, f64, f64)> = [
            r#"load1{host="h_1"}"#,
            r#"disk{dev="x",host="h2"}"#,
            r#"load1{host="hx1"}"#,
        ]
        .iter()
        .enumerate()
        .map(|(i, k)| (Arc::from(*k), 100.0 + i as f64, 1.0))
        .collect();
        db.write_samples(&rows, 0.0).unwrap();
        let mut got = Vec::new();
        db.each_sample_of_hosts(50.0, &["h2", "h_1"], |k, _, _| got.push(k.to_string()))
            .unwrap();
        // `_` is LIKE's any character: a superset, which the caller narrows.
        assert_eq!(
            got,
            vec![
                r#"load1{host="h_1"}"#,
                r#"disk{dev="x",host="h2"}"#,
                r#"load1{host="hx1"}"#
            ]
        );
        got.clear();
        db.each_sample_of_hosts(50.0, &["h2"], |k, _, _| got.push(k.to_string()))
            .unwrap();
        assert_eq!(got, vec![r#"disk{dev="x",host="h2"}"#]);
        let hosts: Vec<String> = (0..40).map(|i| format!("h{i}")).collect();
        let m = |id: &str| Membership {
            group: "g".into(),
            id: id.into(),
            lease: std::time::Duration::from_secs(3),
        };
        let (m1, m2) = (m("one"), m("two"));
        let r = m1.renew(&db, &hosts).unwrap();
        assert_eq!(r.owned.len(), 40, "alone: every host");
        // Two joins: it claims nothing while one holds the leases...
        let r = m2.renew(&db, &hosts).unwrap();
        assert!(r.owned.is_empty(), "{:?}", r.owned);
        assert_eq!(r.members.len(), 2);
        // ... one releases two's share at its next renewal, two claims it.
        let r1 = m1.renew(&db, &hosts).unwrap();
        let r2 = m2.renew(&db, &hosts).unwrap();
        assert!(!r1.owned.is_empty() && !r2.owned.is_empty());
        assert!(r1.owned.is_disjoint(&r2.owned));
        assert_eq!(r1.owned.len() + r2.owned.len(), 40);
        // Another group on the same database is apart.
        let other = Membership {
            group: "g2".into(),
            ..m("one")
        };
        assert_eq!(other.renew(&db, &hosts).unwrap().owned.len(), 40);
        // A clean leave hands everything over at once.
        m1.leave(&db).unwrap();
        let r2 = m2.renew(&db, &hosts).unwrap();
        assert_eq!(r2.owned.len(), 40);
        assert_eq!(r2.members.len(), 1);
        assert_eq!(r2.members[0].hosts, 40);
        // A dead instance (no renewals): its leases run out after 2/3 lease.
        let r1 = m1.renew(&db, &hosts).unwrap();
        assert!(r1.owned.is_empty(), "two holds them");
        let r2 = m2.renew(&db, &hosts).unwrap();
        assert!(r2.owned.len() < 40, "released one's share");
        let r1 = m1.renew(&db, &hosts).unwrap();
        assert_eq!(r1.owned.len() + r2.owned.len(), 40);
        std::thread::sleep(std::time::Duration::from_millis(2100));
        let r1 = m1.renew(&db, &hosts).unwrap();
        assert_eq!(r1.owned.len(), 40, "two died: one has all after its leases ran out");
        assert_eq!(r1.members.len(), 1);
    }

    fn retention(rules: Vec<(&str, Vec<Matcher>, f64)>) -> Retention {
        Retention {
            interval: 10.0,
            history: 60.0,
            max_points: 720,
            persist_every: 60.0,
            rules: rules.into_iter().map(|(m, v, w)| (m.to_string(), v, w)).collect(),
            keep_all: false,
        }
    }

    #[test]
    fn rings_sized_by_the_rules_that_watch_them() {
        // A predict rule over 120 s on the root file system only.
        let mut st = Store::new(retention(vec![("disk", vec![Matcher::eq("mount", "/")], 120.0)]));
        for i in 0..100 {
            let t = 1_700_000_000.25 + f64::from(i) * 10.0;
            st.push_sorted("disk", &[("host", "h1"), ("mount", "/")], t, f64::from(i));
            st.push_sorted("disk", &[("host", "h1"), ("mount", "/boot")], t, f64::from(i));
            st.push_sorted("load", &[("host", "h1")], t, 0.5);
        }
        let root = &st.series[r#"disk{host="h1",mount="/"}"#];
        let now = 1_700_000_000.25 + 990.0;
        // 120 s at 10 s: the points of the last 120 s (13 of them), exact timestamps.
        assert_eq!(root.len(), 13);
        assert_eq!(root.points().next(), Some((now - 120.0, 87.0)));
        assert_eq!(root.last(), Some((now, 99.0)));
        assert_eq!(
            root.since(now - 25.0).map(|p| p.1).collect::<Vec<_>>(),
            vec![97.0, 98.0, 99.0]
        );
        // Unwatched series keep their newest two samples.
        assert_eq!(st.series[r#"disk{host="h1",mount="/boot"}"#].len(), 2);
        assert_eq!(st.series[r#"load{host="h1"}"#].len(), 2);
        assert_eq!(st.sample_count(), 17);
        // Label names and values are shared between series.
        let a = &st.series[r#"disk{host="h1",mount="/"}"#].labels;
        let b = &st.series[r#"load{host="h1"}"#].labels;
        assert!(Arc::ptr_eq(&a.0[0].1, &b.0[0].1), "host value interned");

        // A reload that drops the rule shrinks the ring; one on load grows it.
        st.set_retention(retention(vec![("load", vec![], 0.0)]));
        assert_eq!(st.series[r#"disk{host="h1",mount="/"}"#].len(), 2);
        for i in 100..120 {
            st.push_sorted("load", &[("host", "h1")], 1_700_000_000.25 + f64::from(i) * 10.0, 1.0);
        }
        // history (60 s) at 10 s.
        assert_eq!(st.series[r#"load{host="h1"}"#].len(), 7);

        // Series that stopped reporting are forgotten.
        assert_eq!(st.prune(now + 1.0), 2);
        assert_eq!(st.series.len(), 1);
        assert_eq!(st.retention().keep_secs(), 120.0);
    }

    #[test]
    fn timestamps_survive_a_rebase() {
        let mut st = Store::new(Retention::keep_all(10, 60.0));
        let t0 = 1_000_000.5;
        st.push_sorted("x", &[], t0, 1.0);
        // 300 days later: beyond the i32 centisecond range of the first base.
        let t1 = t0 + 300.0 * 86400.0;
        st.push_sorted("x", &[], t1, 2.0);
        st.push_sorted("x", &[], t1 + 0.37, 3.0);
        let s = &st.series["x{}"];
        assert_eq!(s.points().collect::<Vec<_>>(), vec![(t1, 2.0), (t1 + 0.37, 3.0)]);
    }

    /// Counts this thread's heap bytes, for the memory benchmark below.
    mod counting {
        use std::alloc::{GlobalAlloc, Layout, System};
        use std::cell::Cell;

        pub struct Counting;
        thread_local! {
            pub static NET: Cell<isize> = const { Cell::new(0) };
        }
        fn add(n: isize) {
            let _ = NET.try_with(|c| c.set(c.get() + n));
        }
        // SAFETY: forwards to the system allocator; only counts.
        unsafe impl GlobalAlloc for Counting {
            unsafe fn alloc(&self, l: Layout) -> *mut u8 {
                add(l.size() as isize);
                unsafe { System.alloc(l) }
            }
            unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
                add(-(l.size() as isize));
                unsafe { System.dealloc(p, l) }
            }
            unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
                add(new as isize - l.size() as isize);
                unsafe { System.realloc(p, l, new) }
            }
        }
        #[global_allocator]
        static A: Counting = Counting;

        pub fn net() -> isize {
            NET.with(|c| c.get())
        }
    }

    /// One collector block of a typical host, with the pseudo file systems,
    /// virtual interfaces and partitions that the default exclusions drop.
    pub(crate) fn typical_block(round: u64) -> String {
        let c = round * 1000;
        let mut b = String::from("@@ begin\n");
        b += &format!(
            "@@ stat\ncpu  {} 0 {} {} {} 0 0 0 0 0\n",
            100 + c,
            50 + c / 2,
            800 + c * 3,
            c / 10
        );
        b += &format!("@@ loadavg\n0.{} 0.20 0.10 1/100 123\n", round % 10);
        b += "@@ meminfo\nMemTotal: 8000000 kB\nMemFree: 1000000 kB\n";
        b += &format!(
            "MemAvailable: {} kB\nSwapTotal: 1000000 kB\nSwapFree: 900000 kB\n",
            4000000 + round
        );
        let mounts = [
            ("/dev/vda1", "ext4", "/"),
            ("/dev/vda2", "ext4", "/var"),
            ("/dev/vdb1", "xfs", "/srv/data"),
            ("tmpfs", "tmpfs", "/tmp"),
            ("udev", "devtmpfs", "/dev"),
            ("tmpfs", "tmpfs", "/dev/shm"),
            ("tmpfs", "tmpfs", "/run"),
            ("tmpfs", "tmpfs", "/run/lock"),
            ("tmpfs", "tmpfs", "/run/user/1000"),
            ("overlay", "overlay", "/var/lib/docker/overlay2/abc/merged"),
            ("tmpfs", "tmpfs", "/sys/fs/cgroup"),
        ];
        for (sec, unit) in [("df", "1024-blocks"), ("dfi", "Inodes")] {
            b += &format!("@@ {sec}\nFilesystem Type {unit} Used Available Capacity Mounted on\n");
            for (dev, t, m) in mounts {
                b += &format!("{dev} {t} 1000000 {} 500000 50% {m}\n", 400000 + round);
            }
        }
        b += "@@ diskstats\n";
        for d in ["vda", "vda1", "vda2", "vdb", "vdb1", "loop0", "loop1", "sr0"] {
            b += &format!("   8 0 {d} 10 0 {} 0 20 0 {} 0 0 0 0\n", c, c * 2);
        }
        b += "@@ netdev\nInter-|   Receive\n face |bytes\n";
        for i in ["lo", "eth0", "eth1", "docker0", "veth1a2b", "veth3c4d", "veth5e6f"] {
            b += &format!("  {i}: {} 10 0 0 0 0 0 0 {} 20 0 0 0 0 0 0\n", c * 7, c * 3);
        }
        b += "@@ procs\n120\n@@ storage\nrpcbind 1\n@@ svc sshd\nactive\n@@ end\n";
        b
    }

    /// The table that `--check-config` checks rules against names every
    /// metric the collector produces, with every label its series carry.
    #[test]
    fn builtin_metric_table_covers_what_the_collector_produces() {
        let exclude = Exclude::default();
        let mut c = crate::watch::collect::Counters::default();
        let mut names = std::collections::BTreeSet::new();
        for round in 0..3 {
            let samples =
                crate::watch::collect::parse_block("h", &typical_block(round), 100.0 + round as f64, &mut c, &exclude);
            for s in samples.decode() {
                let labels = crate::watch::config::builtin_labels(&s.name)
                    .unwrap_or_else(|| panic!("`{}` is not in BUILTIN_METRICS", s.name));
                for k in s.labels.keys() {
                    assert!(labels.contains(&k.as_str()), "`{}` has label `{k}`: {labels:?}", s.name);
                }
                names.insert(s.name.clone());
            }
        }
        assert!(names.len() > 25, "{names:?}");
    }

    /// The steady state of watching 100 hosts at 10 s with the rules of
    /// bench/watch.sh: every ring full (an hour of samples). Prints the bytes
    /// the store holds; the issue's budget for the whole controller is 50 MB.
    #[test]
    #[allow(clippy::disallowed_macros)]
    fn memory_of_100_hosts_with_full_rings() {
        let rules = vec![
            ("disk_used_pct", vec![], 0.0),
            ("disk_used_pct", vec![], 1800.0),
            ("load1", vec![], 0.0),
            ("mem_used_pct", vec![], 0.0),
        ];
        let mut r = retention(rules);
        r.history = 3600.0;
        let exclude = Exclude::default();
        let before = counting::net();
        let mut st = Store::new(r);
        let mut counters: Vec<crate::watch::collect::Counters> = vec![Default::default(); 100];
        let hosts: Vec<String> = (1..=100).map(|i| format!("host{i}.example.org")).collect();
        // 400 rounds of 10 s: more than the hour the rings hold.
        let mut unfiltered = 0;
        for round in 0..400u64 {
            let block = typical_block(round);
            let t = 1_700_000_000.0 + round as f64 * 10.0;
            for (h, c) in hosts.iter().zip(counters.iter_mut()) {
                let samples = crate::watch::collect::parse_block(h, &block, t, c, &exclude);
                st.push_samples(&samples, t);
                st.push_sorted("up", &[("host", h)], t, 1.0);
            }
            if round == 399 {
                let mut c = Default::default();
                let none = Exclude {
                    fs_types: vec![],
                    mounts: None,
                    interfaces: None,
                    devices: None,
                };
                crate::watch::collect::parse_block("h", &block, t, &mut c, &none);
                unfiltered = crate::watch::collect::parse_block("h", &block, t + 10.0, &mut c, &none).len();
            }
            st.take_pending();
        }
        let held = counting::net() - before;
        let watched = st.series.values().filter(|s| s.len() > 2).count();
        let per_host = st.series.len() / 100;
        // The test harness captures eprintln! (not rigger's own stderr writes).
        eprintln!(
            "100 hosts: {} series ({per_host} per host; {unfiltered} without the exclusions), {watched} with full \
             rings, {} samples, store {:.2} MB ({:.0} B/series)",
            st.series.len(),
            st.sample_count(),
            held as f64 / 1e6,
            held as f64 / st.series.len() as f64
        );
        assert!(
            per_host < unfiltered,
            "{per_host} series per host, {unfiltered} unfiltered"
        );
        // disk_used_pct on 4 real mounts + load1 + mem_used_pct, an hour at 10 s.
        assert_eq!(watched, 600);
        assert!(st.series.values().all(|s| s.len() <= 362));
        assert!(held < 8_000_000, "the store of 100 full hosts holds {held} bytes");
        drop(counters);
    }
}
