//! Where rigger keeps its state (the `rigger check` history and the
//! `rigger watch` state): an embedded SQLite file (the default) or a shared
//! PostgreSQL database, behind one small connection type so that the
//! history and the watch store are written once, with one test suite run
//! against both backends.
//!
//! SQL is written with `?1`, `?2` … placeholders (SQLite's) and rewritten to
//! `$1`, `$2` … for PostgreSQL; the few statements whose dialects differ
//! ask [`Conn::is_postgres`]. Schemas are versioned migrations
//! ([`migrate`]), numbered the same for both backends and recorded in a
//! `schema_version` table, one row per component (`check`, `watch`).
//!
//! The PostgreSQL client is the synchronous `postgres` crate (the
//! maintained rust-postgres project, over `tokio-postgres` 0.7). It runs
//! its own small runtime, so a call made on one of rigger's runtime threads
//! goes through [`off_runtime`]. TLS: `sslmode=require` or `verify-full`
//! in the URL ([`tls`]).

pub mod migrations;
#[cfg(test)]
pub mod testpg;
pub mod tls;

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

/// Where the state lives, parsed from `--db`, `--state`, `state:` or
/// `RIGGER_STATE_URL`: a `postgres://` / `postgresql://` URL, else a path.
#[derive(Clone, PartialEq, Eq)]
pub enum Location {
    Sqlite(PathBuf),
    Postgres(PgUrl),
}

/// A PostgreSQL connection URL. Its password never reaches a message:
/// `Display` and `Debug` show it as `***`.
#[derive(Clone, PartialEq, Eq)]
pub struct PgUrl {
    url: String,
}

impl PgUrl {
    /// The URL with any password replaced by `***`.
    pub fn redacted(&self) -> String {
        redact_url(&self.url)
    }

    /// Whether the URL carries a password.
    pub fn has_password(&self) -> bool {
        redact_url(&self.url) != self.url
    }

    /// The URL as given, password included: only for handing it on to a
    /// child rigger, never for a message.
    pub fn expose(&self) -> &str {
        &self.url
    }
}

impl fmt::Display for PgUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

impl fmt::Debug for PgUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PgUrl({})", self.redacted())
    }
}

impl fmt::Debug for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self}")
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::Sqlite(p) => write!(f, "{}", p.display()),
            Location::Postgres(u) => write!(f, "{u}"),
        }
    }
}

/// `postgres://user:secret@host/db` → `postgres://user:***@host/db`; a
/// `password=` query parameter likewise.
pub fn redact_url(url: &str) -> String {
    let mut out = url.to_string();
    if let Some(scheme_end) = out.find("://") {
        let rest_start = scheme_end + 3;
        let authority_end = out[rest_start..].find(['/', '?']).map_or(out.len(), |i| rest_start + i);
        if let Some(at) = out[rest_start..authority_end].rfind('@') {
            let userinfo = &out[rest_start..rest_start + at];
            if let Some(colon) = userinfo.find(':') {
                out.replace_range(rest_start + colon + 1..rest_start + at, "***");
            }
        }
    }
    if let Some(q) = out.find('?') {
        let (head, query) = out.split_at(q + 1);
        let query: Vec<String> = query
            .split('&')
            .map(|kv| match kv.split_once('=') {
                Some((k, _)) if k.eq_ignore_ascii_case("password") => format!("{k}=***"),
                _ => kv.to_string(),
            })
            .collect();
        out = format!("{head}{}", query.join("&"));
    }
    out
}

impl Location {
    /// A `postgres://` or `postgresql://` URL is PostgreSQL; anything else a
    /// SQLite file.
    pub fn parse(s: &str) -> Location {
        if is_postgres_url(s) {
            Location::Postgres(PgUrl { url: s.to_string() })
        } else {
            Location::Sqlite(PathBuf::from(s))
        }
    }

    pub fn from_path(p: &Path) -> Location {
        match p.to_str() {
            Some(s) if is_postgres_url(s) => Location::parse(s),
            _ => Location::Sqlite(p.to_path_buf()),
        }
    }

    pub fn is_postgres(&self) -> bool {
        matches!(self, Location::Postgres(_))
    }

    pub fn sqlite_path(&self) -> Option<&Path> {
        match self {
            Location::Sqlite(p) => Some(p),
            Location::Postgres(_) => None,
        }
    }
}

pub fn is_postgres_url(s: &str) -> bool {
    s.starts_with("postgres://") || s.starts_with("postgresql://")
}

/// Errors of the state database; they name the database (a PostgreSQL URL
/// without its password).
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("cannot create the state file {}: {source}", path.display())]
    Create { path: PathBuf, source: std::io::Error },
    #[error("cannot open {what} {location}: {message}")]
    Open {
        what: &'static str,
        location: Location,
        message: String,
    },
    #[error("{what} {location}: {message}")]
    Sql {
        what: &'static str,
        location: Location,
        message: String,
    },
    #[error(
        "{what} {location} is at schema version {found} of `{component}`, newer than this rigger knows \
         ({known}): upgrade rigger, or point it at another database"
    )]
    TooNew {
        what: &'static str,
        location: Location,
        component: &'static str,
        found: i64,
        known: i64,
    },
    /// A column that did not hold the type the code reads.
    #[error("{what} {location}: column {column} is not {wanted}")]
    Type {
        what: &'static str,
        location: Location,
        column: usize,
        wanted: &'static str,
    },
}

impl From<StateError> for crate::error::AppError {
    fn from(e: StateError) -> crate::error::AppError {
        crate::error::AppError::Other(e.to_string())
    }
}

/// A statement parameter.
#[derive(Debug, Clone, Copy)]
pub enum P<'a> {
    Null,
    Int(i64),
    Real(f64),
    Text(&'a str),
}

impl From<i64> for P<'_> {
    fn from(v: i64) -> Self {
        P::Int(v)
    }
}
impl From<i32> for P<'_> {
    fn from(v: i32) -> Self {
        P::Int(i64::from(v))
    }
}
impl From<f64> for P<'_> {
    fn from(v: f64) -> Self {
        P::Real(v)
    }
}
impl<'a> From<&'a str> for P<'a> {
    fn from(v: &'a str) -> Self {
        P::Text(v)
    }
}
impl<'a> From<&'a String> for P<'a> {
    fn from(v: &'a String) -> Self {
        P::Text(v)
    }
}
impl<'a, T: Into<P<'a>>> From<Option<T>> for P<'a> {
    fn from(v: Option<T>) -> Self {
        v.map_or(P::Null, Into::into)
    }
}

/// Parameters: `params![a, b, c]`.
#[macro_export]
macro_rules! state_params {
    ($($v:expr),* $(,)?) => { &[$($crate::state::P::from($v)),*][..] };
}
pub use crate::state_params as params;

impl rusqlite::ToSql for P<'_> {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        use rusqlite::types::{ToSqlOutput, Value, ValueRef};
        Ok(match *self {
            P::Null => ToSqlOutput::Owned(Value::Null),
            P::Int(v) => ToSqlOutput::Owned(Value::Integer(v)),
            P::Real(v) => ToSqlOutput::Owned(Value::Real(v)),
            P::Text(s) => ToSqlOutput::Borrowed(ValueRef::Text(s.as_bytes())),
        })
    }
}

impl postgres::types::ToSql for P<'_> {
    fn to_sql(
        &self,
        ty: &postgres::types::Type,
        out: &mut bytes::BytesMut,
    ) -> Result<postgres::types::IsNull, Box<dyn std::error::Error + Sync + Send>> {
        use postgres::types::Type;
        match *self {
            P::Null => Ok(postgres::types::IsNull::Yes),
            P::Int(v) if *ty == Type::INT4 => i32::try_from(v)?.to_sql(ty, out),
            P::Int(v) if *ty == Type::FLOAT8 => (v as f64).to_sql(ty, out),
            P::Int(v) => v.to_sql(ty, out),
            P::Real(v) => v.to_sql(ty, out),
            P::Text(s) => s.to_sql(ty, out),
        }
    }

    fn accepts(ty: &postgres::types::Type) -> bool {
        use postgres::types::Type;
        [Type::INT8, Type::INT4, Type::FLOAT8, Type::TEXT, Type::VARCHAR].contains(ty)
    }

    postgres::types::to_sql_checked!();
}

/// A column value read back.
#[derive(Debug, Clone, PartialEq)]
pub enum V {
    Null,
    Int(i64),
    Real(f64),
    Text(String),
}

/// One result row, owned.
#[derive(Debug, Clone)]
pub struct Row(Vec<V>);

/// Typed access to a [`Row`]; errors name the database.
pub struct RowReader<'r> {
    row: &'r Row,
    what: &'static str,
    location: &'r Location,
}

impl RowReader<'_> {
    fn bad(&self, column: usize, wanted: &'static str) -> StateError {
        StateError::Type {
            what: self.what,
            location: self.location.clone(),
            column,
            wanted,
        }
    }

    pub fn opt_i64(&self, i: usize) -> Result<Option<i64>, StateError> {
        match self.row.0.get(i) {
            Some(V::Int(v)) => Ok(Some(*v)),
            Some(V::Null) => Ok(None),
            _ => Err(self.bad(i, "an integer")),
        }
    }
    pub fn i64(&self, i: usize) -> Result<i64, StateError> {
        self.opt_i64(i)?.ok_or_else(|| self.bad(i, "an integer"))
    }
    pub fn opt_f64(&self, i: usize) -> Result<Option<f64>, StateError> {
        match self.row.0.get(i) {
            Some(V::Real(v)) => Ok(Some(*v)),
            Some(V::Int(v)) => Ok(Some(*v as f64)),
            Some(V::Null) => Ok(None),
            _ => Err(self.bad(i, "a number")),
        }
    }
    pub fn f64(&self, i: usize) -> Result<f64, StateError> {
        match self.row.0.get(i) {
            Some(V::Real(v)) => Ok(*v),
            Some(V::Int(v)) => Ok(*v as f64),
            _ => Err(self.bad(i, "a number")),
        }
    }
    pub fn opt_text(&self, i: usize) -> Result<Option<String>, StateError> {
        match self.row.0.get(i) {
            Some(V::Text(s)) => Ok(Some(s.clone())),
            Some(V::Null) => Ok(None),
            _ => Err(self.bad(i, "text")),
        }
    }
    pub fn text(&self, i: usize) -> Result<String, StateError> {
        self.opt_text(i)?.ok_or_else(|| self.bad(i, "text"))
    }
}

/// The open connection of a [`Conn`].
pub enum Backend {
    Sqlite(rusqlite::Connection),
    Postgres(Box<postgres::Client>),
    /// Dropped (see `Drop for Conn`).
    Closed,
}

/// One connection to the state database. Methods take `&self` (an inner
/// mutex): the watch loop, the status page and the notifier share one.
pub struct Conn {
    inner: Mutex<Backend>,
    location: Location,
    what: &'static str,
}

/// A transaction in progress (see [`Conn::transaction`]).
pub struct Tx<'c> {
    backend: MutexGuard<'c, Backend>,
    conn: &'c Conn,
}

/// Run a blocking PostgreSQL call: the client drives its own runtime, which
/// may not start on a thread that runs one of rigger's async tasks.
fn off_runtime<T: Send>(f: impl FnOnce() -> T + Send) -> T {
    use tokio::runtime::{Handle, RuntimeFlavor};
    match Handle::try_current() {
        Ok(h) if h.runtime_flavor() == RuntimeFlavor::MultiThread => tokio::task::block_in_place(f),
        Ok(_) => std::thread::scope(|s| match s.spawn(f).join() {
            Ok(v) => v,
            Err(panic) => std::panic::resume_unwind(panic),
        }),
        Err(_) => f(),
    }
}

/// `?1` → `$1` (the statements here hold no `?` in string literals).
fn pg_sql(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len());
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '?' && chars.peek().is_some_and(char::is_ascii_digit) {
            out.push('$');
        } else {
            out.push(c);
        }
    }
    out
}

fn pg_row(r: &postgres::Row) -> Result<Row, postgres::Error> {
    use postgres::types::Type;
    let mut out = Vec::with_capacity(r.len());
    for (i, col) in r.columns().iter().enumerate() {
        let ty = col.type_();
        let v = if *ty == Type::INT8 {
            r.try_get::<_, Option<i64>>(i)?.map_or(V::Null, V::Int)
        } else if *ty == Type::INT4 {
            r.try_get::<_, Option<i32>>(i)?
                .map_or(V::Null, |v| V::Int(i64::from(v)))
        } else if *ty == Type::INT2 {
            r.try_get::<_, Option<i16>>(i)?
                .map_or(V::Null, |v| V::Int(i64::from(v)))
        } else if *ty == Type::BOOL {
            r.try_get::<_, Option<bool>>(i)?
                .map_or(V::Null, |v| V::Int(i64::from(v)))
        } else if *ty == Type::FLOAT8 {
            r.try_get::<_, Option<f64>>(i)?.map_or(V::Null, V::Real)
        } else if *ty == Type::FLOAT4 {
            r.try_get::<_, Option<f32>>(i)?
                .map_or(V::Null, |v| V::Real(f64::from(v)))
        } else {
            r.try_get::<_, Option<String>>(i)?.map_or(V::Null, V::Text)
        };
        out.push(v);
    }
    Ok(Row(out))
}

fn sqlite_row(r: &rusqlite::Row<'_>, n: usize) -> rusqlite::Result<Row> {
    use rusqlite::types::ValueRef;
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        out.push(match r.get_ref(i)? {
            ValueRef::Null => V::Null,
            ValueRef::Integer(v) => V::Int(v),
            ValueRef::Real(v) => V::Real(v),
            ValueRef::Text(t) | ValueRef::Blob(t) => V::Text(String::from_utf8_lossy(t).into_owned()),
        });
    }
    Ok(Row(out))
}

/// The error text of a PostgreSQL error: the server's message and detail
/// when there is one (its `Display` alone says only "db error").
fn pg_message(e: &postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => {
            let mut s = format!("{}: {}", db.severity(), db.message());
            if let Some(d) = db.detail() {
                s.push_str(&format!(" ({d})"));
            }
            s
        }
        None => {
            let mut s = e.to_string();
            let mut src = std::error::Error::source(e);
            while let Some(x) = src {
                s.push_str(&format!(": {x}"));
                src = x.source();
            }
            s
        }
    }
}

const CLOSED: &str = "the connection is closed";

impl Backend {
    fn execute(&mut self, sql: &str, p: &[P<'_>]) -> Result<u64, String> {
        match self {
            Backend::Sqlite(c) => c
                .prepare_cached(sql)
                .and_then(|mut st| st.execute(rusqlite::params_from_iter(p.iter())))
                .map(|n| n as u64)
                .map_err(|e| e.to_string()),
            Backend::Postgres(c) => {
                let sql = pg_sql(sql);
                let refs: Vec<&(dyn postgres::types::ToSql + Sync)> =
                    p.iter().map(|x| x as &(dyn postgres::types::ToSql + Sync)).collect();
                off_runtime(|| c.execute(sql.as_str(), &refs)).map_err(|e| pg_message(&e))
            }
            Backend::Closed => Err(CLOSED.into()),
        }
    }

    fn query(&mut self, sql: &str, p: &[P<'_>]) -> Result<Vec<Row>, String> {
        match self {
            Backend::Sqlite(c) => {
                let mut st = c.prepare_cached(sql).map_err(|e| e.to_string())?;
                let n = st.column_count();
                let rows = st
                    .query_map(rusqlite::params_from_iter(p.iter()), |r| sqlite_row(r, n))
                    .map_err(|e| e.to_string())?;
                rows.collect::<Result<Vec<_>, _>>().map_err(|e| e.to_string())
            }
            Backend::Postgres(c) => {
                let sql = pg_sql(sql);
                let refs: Vec<&(dyn postgres::types::ToSql + Sync)> =
                    p.iter().map(|x| x as &(dyn postgres::types::ToSql + Sync)).collect();
                let rows = off_runtime(|| c.query(sql.as_str(), &refs)).map_err(|e| pg_message(&e))?;
                rows.iter()
                    .map(pg_row)
                    .collect::<Result<_, _>>()
                    .map_err(|e| pg_message(&e))
            }
            Backend::Closed => Err(CLOSED.into()),
        }
    }

    fn batch(&mut self, sql: &str) -> Result<(), String> {
        match self {
            Backend::Sqlite(c) => c.execute_batch(sql).map_err(|e| e.to_string()),
            Backend::Postgres(c) => off_runtime(|| c.batch_execute(sql)).map_err(|e| pg_message(&e)),
            Backend::Closed => Err(CLOSED.into()),
        }
    }
}

impl Drop for Conn {
    fn drop(&mut self) {
        // The PostgreSQL client says goodbye to the server on its own
        // runtime when dropped: not on one of rigger's runtime threads.
        let backend = match self.inner.get_mut() {
            Ok(b) => std::mem::replace(b, Backend::Closed),
            Err(p) => std::mem::replace(p.into_inner(), Backend::Closed),
        };
        if let Backend::Postgres(client) = backend {
            off_runtime(move || drop(client));
        }
    }
}

/// The shared statements of [`Conn`] and [`Tx`].
pub trait Exec {
    #[doc(hidden)]
    fn backend(&mut self) -> &mut Backend;
    #[doc(hidden)]
    fn conn(&self) -> &Conn;

    fn execute(&mut self, sql: &str, p: &[P<'_>]) -> Result<u64, StateError> {
        let r = self.backend().execute(sql, p);
        r.map_err(|m| self.conn().err(m))
    }

    fn query(&mut self, sql: &str, p: &[P<'_>]) -> Result<Vec<Row>, StateError> {
        let r = self.backend().query(sql, p);
        r.map_err(|m| self.conn().err(m))
    }

    /// Run `f` on each row.
    fn query_map<T>(
        &mut self,
        sql: &str,
        p: &[P<'_>],
        mut f: impl FnMut(&RowReader<'_>) -> Result<T, StateError>,
    ) -> Result<Vec<T>, StateError> {
        let rows = self.query(sql, p)?;
        let conn = self.conn();
        rows.iter()
            .map(|row| {
                f(&RowReader {
                    row,
                    what: conn.what,
                    location: &conn.location,
                })
            })
            .collect()
    }

    /// The first row's value, if any row.
    fn query_opt<T>(
        &mut self,
        sql: &str,
        p: &[P<'_>],
        f: impl FnMut(&RowReader<'_>) -> Result<T, StateError>,
    ) -> Result<Option<T>, StateError> {
        Ok(self.query_map(sql, p, f)?.into_iter().next())
    }

    /// An `INSERT … RETURNING id`.
    fn insert_id(&mut self, sql: &str, p: &[P<'_>]) -> Result<i64, StateError> {
        let conn_err = |c: &Conn| c.err("the insert returned no id".into());
        match self.query_opt(sql, p, |r| r.i64(0))? {
            Some(id) => Ok(id),
            None => Err(conn_err(self.conn())),
        }
    }

    fn batch(&mut self, sql: &str) -> Result<(), StateError> {
        let r = self.backend().batch(sql);
        r.map_err(|m| self.conn().err(m))
    }
}

impl Exec for Tx<'_> {
    fn backend(&mut self) -> &mut Backend {
        &mut self.backend
    }
    fn conn(&self) -> &Conn {
        self.conn
    }
}

/// A locked connection outside a transaction.
pub struct Locked<'c>(Tx<'c>);

impl Exec for Locked<'_> {
    fn backend(&mut self) -> &mut Backend {
        &mut self.0.backend
    }
    fn conn(&self) -> &Conn {
        self.0.conn
    }
}

impl Conn {
    /// Connect (creating a SQLite file 0600, with its directory); see
    /// [`migrations::open`], which also brings the schema up to date.
    /// `what` names the database in messages ("check history").
    pub fn connect(location: &Location, what: &'static str) -> Result<Conn, StateError> {
        let backend = match location {
            Location::Sqlite(path) => {
                // 0600 before SQLite opens it: its -wal/-shm/-journal files
                // take the database's mode (see private_files::prepare_sqlite).
                crate::private_files::prepare_sqlite(path).map_err(|source| StateError::Create {
                    path: path.clone(),
                    source,
                })?;
                let open = || -> rusqlite::Result<rusqlite::Connection> {
                    let c = rusqlite::Connection::open(path)?;
                    c.busy_timeout(std::time::Duration::from_secs(30))?;
                    c.pragma_update(None, "journal_mode", "WAL")?;
                    c.pragma_update(None, "synchronous", "NORMAL")?;
                    c.pragma_update(None, "foreign_keys", "ON")?;
                    Ok(c)
                };
                Backend::Sqlite(open().map_err(|e| StateError::Open {
                    what,
                    location: location.clone(),
                    message: e.to_string(),
                })?)
            }
            Location::Postgres(url) => {
                let open_err = |message: String| StateError::Open {
                    what,
                    location: location.clone(),
                    message,
                };
                let (plain_url, tls) = tls::split(&url.url).map_err(open_err)?;
                let mut config: postgres::Config = plain_url
                    .parse()
                    .map_err(|e: postgres::Error| open_err(pg_message(&e)))?;
                let client = if tls == tls::PgTls::Off {
                    config.ssl_mode(postgres::config::SslMode::Disable);
                    off_runtime(|| config.connect(postgres::NoTls))
                } else {
                    let rustls = tls::client_config(&tls).map_err(open_err)?;
                    config.ssl_mode(postgres::config::SslMode::Require);
                    let make = tokio_postgres_rustls::MakeRustlsConnect::new(rustls);
                    off_runtime(|| config.connect(make))
                }
                .map_err(|e| open_err(pg_message(&e)))?;
                Backend::Postgres(Box::new(client))
            }
        };
        Ok(Conn {
            inner: Mutex::new(backend),
            location: location.clone(),
            what,
        })
    }

    pub fn location(&self) -> &Location {
        &self.location
    }

    pub fn is_postgres(&self) -> bool {
        self.location.is_postgres()
    }

    fn err(&self, message: String) -> StateError {
        StateError::Sql {
            what: self.what,
            location: self.location.clone(),
            message,
        }
    }

    fn guard(&self) -> MutexGuard<'_, Backend> {
        // A panic while holding it leaves the connection usable: statements
        // are atomic and an open transaction is rolled back by `transaction`.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The connection, locked for a few statements (no transaction).
    pub fn lock(&self) -> Locked<'_> {
        Locked(Tx {
            backend: self.guard(),
            conn: self,
        })
    }

    pub fn execute(&self, sql: &str, p: &[P<'_>]) -> Result<u64, StateError> {
        self.lock().execute(sql, p)
    }

    pub fn query_map<T>(
        &self,
        sql: &str,
        p: &[P<'_>],
        f: impl FnMut(&RowReader<'_>) -> Result<T, StateError>,
    ) -> Result<Vec<T>, StateError> {
        self.lock().query_map(sql, p, f)
    }

    pub fn query_opt<T>(
        &self,
        sql: &str,
        p: &[P<'_>],
        f: impl FnMut(&RowReader<'_>) -> Result<T, StateError>,
    ) -> Result<Option<T>, StateError> {
        self.lock().query_opt(sql, p, f)
    }

    pub fn insert_id(&self, sql: &str, p: &[P<'_>]) -> Result<i64, StateError> {
        self.lock().insert_id(sql, p)
    }

    /// Hand each row to `f` as it is read, none kept (a restart of the
    /// watch reads hundreds of thousands of samples). PostgreSQL rows come
    /// in batches of 10,000 through a cursor-less portal.
    pub fn for_each(
        &self,
        sql: &str,
        p: &[P<'_>],
        mut f: impl FnMut(&RowReader<'_>) -> Result<(), StateError>,
    ) -> Result<usize, StateError> {
        let mut guard = self.guard();
        let mut n = 0;
        let mut each = |row: &Row| -> Result<(), StateError> {
            n += 1;
            f(&RowReader {
                row,
                what: self.what,
                location: &self.location,
            })
        };
        match &mut *guard {
            Backend::Sqlite(c) => {
                let mut st = c.prepare_cached(sql).map_err(|e| self.err(e.to_string()))?;
                let cols = st.column_count();
                let mut rows = st
                    .query(rusqlite::params_from_iter(p.iter()))
                    .map_err(|e| self.err(e.to_string()))?;
                while let Some(r) = rows.next().map_err(|e| self.err(e.to_string()))? {
                    each(&sqlite_row(r, cols).map_err(|e| self.err(e.to_string()))?)?;
                }
            }
            Backend::Postgres(c) => {
                let sql = pg_sql(sql);
                let refs: Vec<&(dyn postgres::types::ToSql + Sync)> =
                    p.iter().map(|x| x as &(dyn postgres::types::ToSql + Sync)).collect();
                // Each call leaves the runtime on its own: `f` need not be Send.
                let mut tx = off_runtime(|| c.transaction()).map_err(|e| self.err(pg_message(&e)))?;
                let mut result = Ok(());
                match off_runtime(|| tx.bind(sql.as_str(), &refs)) {
                    Err(e) => result = Err(self.err(pg_message(&e))),
                    Ok(portal) => 'fetch: loop {
                        let rows = match off_runtime(|| tx.query_portal(&portal, 10_000)) {
                            Ok(rows) if rows.is_empty() => break,
                            Ok(rows) => rows,
                            Err(e) => {
                                result = Err(self.err(pg_message(&e)));
                                break;
                            }
                        };
                        for r in &rows {
                            if let Err(e) = pg_row(r)
                                .map_err(|e| self.err(pg_message(&e)))
                                .and_then(|row| each(&row))
                            {
                                result = Err(e);
                                break 'fetch;
                            }
                        }
                    },
                }
                // Ended here, not by the transaction's drop (which would
                // block on this thread).
                let ok = result.is_ok();
                let end = off_runtime(move || if ok { tx.commit() } else { tx.rollback() });
                result?;
                end.map_err(|e| self.err(pg_message(&e)))?;
            }
            Backend::Closed => return Err(self.err(CLOSED.into())),
        }
        Ok(n)
    }

    /// Run `f` in one transaction: committed when it returns `Ok`, rolled
    /// back otherwise. SQLite takes its write lock at the start
    /// (`BEGIN IMMEDIATE`), so two writers queue instead of failing later.
    pub fn transaction<T, E: From<StateError>>(&self, f: impl FnOnce(&mut Tx<'_>) -> Result<T, E>) -> Result<T, E> {
        let mut tx = Tx {
            backend: self.guard(),
            conn: self,
        };
        let begin = if self.is_postgres() { "BEGIN" } else { "BEGIN IMMEDIATE" };
        tx.batch(begin)?;
        match f(&mut tx) {
            Ok(v) => {
                tx.batch("COMMIT")?;
                Ok(v)
            }
            Err(e) => {
                // The original error is what matters; a failed rollback
                // leaves the connection to be dropped by the caller.
                let _ = tx.batch("ROLLBACK");
                Err(e)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_told_from_paths_and_passwords_never_shown() {
        let l = Location::parse("postgres://rigger:s3cret@db.example:5432/rigger?password=x2&application_name=a");
        assert!(l.is_postgres());
        let shown = l.to_string();
        assert_eq!(
            shown,
            "postgres://rigger:***@db.example:5432/rigger?password=***&application_name=a"
        );
        assert!(!format!("{l:?}").contains("s3cret"));
        assert_eq!(redact_url("postgresql://u@h/d"), "postgresql://u@h/d");
        assert_eq!(redact_url("postgresql://u:p@h"), "postgresql://u:***@h");
        assert!(!Location::parse("/var/lib/rigger/check.db").is_postgres());
        assert!(!Location::parse("postgres.db").is_postgres());
        assert_eq!(pg_sql("SELECT ?1, ?12 WHERE a = ?2"), "SELECT $1, $12 WHERE a = $2");
    }

    /// Whether this connection is encrypted (pg_stat_ssl).
    fn encrypted(c: &Conn) -> bool {
        c.query_opt(
            "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
            params![],
            |r| r.i64(0),
        )
        .unwrap()
            == Some(1)
    }

    #[test]
    fn tls_to_postgres_require_and_verify_full() {
        let (pg, ca, _certs) = testpg::TestPg::start_tls();
        let url = pg.create_db("tls");
        let at = |q: &str| Location::parse(&format!("{url}{q}"));
        let plain = Conn::connect(&at(""), "check history").unwrap();
        assert!(!encrypted(&plain));
        let req = Conn::connect(&at("?sslmode=require"), "check history").unwrap();
        assert!(encrypted(&req));
        let q = format!("?sslmode=verify-full&sslrootcert={}", ca.display());
        let full = Conn::connect(&at(&q), "check history").unwrap();
        assert!(encrypted(&full));
        // Another CA, or the platform's roots: the server is not trusted.
        let other = tempfile::tempdir().unwrap();
        let out = std::process::Command::new("openssl")
            .args([
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
                "-nodes",
            ])
            .args(["-keyout", "k", "-out", "ca.pem", "-days", "1", "-subj", "/CN=other"])
            .current_dir(other.path())
            .output()
            .unwrap();
        assert!(out.status.success());
        let q = format!(
            "?sslmode=verify-full&sslrootcert={}",
            other.path().join("ca.pem").display()
        );
        let e = Conn::connect(&at(&q), "check history").err().unwrap().to_string();
        assert!(e.contains("certificate"), "{e}");
        assert!(!e.contains(testpg::PASSWORD), "{e}");
        let e = Conn::connect(&at("?sslmode=verify-full"), "check history")
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("certificate"), "{e}");
        let e = Conn::connect(&at("?sslmode=verify-ca"), "check history")
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("use sslmode=verify-full"), "{e}");
    }
}
