//! The status endpoint of `rigger watch --listen`: the JSON and Prometheus
//! answers monitoring scrapes (`/health`, `/alerts`, `/metrics`), and a
//! status page for people (`/status`): hosts, per-host charts from the
//! in-memory rings, alerts, silences (created and expired from the page,
//! behind a token) and recent `rigger check` runs.
//!
//! The page is three files embedded in the binary (no build step, nothing
//! fetched from elsewhere). Its script reads the `/api/...` answers and
//! builds the page with `textContent`, never with markup made from data:
//! host names, labels and annotations come from managed hosts and stay text.
//!
//! Who may do what:
//! - the page and its script and style: anyone who reaches the address (they
//!   hold no data);
//! - every answer with data: anyone, or with `--listen-token-file` only
//!   requests carrying `Authorization: Bearer TOKEN` (the read token) or the
//!   write token;
//! - creating and expiring silences (POST): only with the write token
//!   (`--status-token-file`, else the read token); without any token they are
//!   refused. The page sends the token in a header from its script, never as
//!   a cookie, so another site cannot make a browser send it (CSRF); a POST
//!   must also be `application/json` and, when the browser names its
//!   `Origin`, come from this server's own.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use serde::Deserialize;
use serde_json::json;
use tokio::sync::watch as tokio_watch;

use super::alert;
use super::collect::now_secs;
use super::config::{self, WatchConfig};
use super::http::{BearerToken, Request, Response};
use super::silence;
use super::store::{Db, Store};
use crate::check::history::History;

const PAGE: &str = include_str!("status/index.html");
const SCRIPT: &str = include_str!("status/status.js");
const STYLE: &str = include_str!("status/status.css");

/// How many check runs the page lists.
const CHECK_RUNS: usize = 20;
/// Expired silences older than this are not listed.
const EXPIRED_SILENCES_SHOWN_SECS: f64 = 86400.0;

/// What the controller publishes after every round.
#[derive(Default)]
pub struct Shared {
    pub alerts: serde_json::Value,
    pub health: serde_json::Value,
}

/// Everything the endpoint answers from.
#[derive(Clone)]
pub struct StatusServer {
    pub shared: Arc<Mutex<Shared>>,
    pub store: Arc<Mutex<Store>>,
    pub cfg: tokio_watch::Receiver<Arc<WatchConfig>>,
    /// The state file (silences).
    pub state: PathBuf,
    /// The `rigger check` history database, when there is one to show.
    pub check_db: Option<PathBuf>,
    pub read_token: Option<Arc<BearerToken>>,
    pub write_token: Option<Arc<BearerToken>>,
}

/// A silence posted by the page (the same fields as `silence add`).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SilenceForm {
    matchers: Vec<String>,
    #[serde(default = "default_duration")]
    duration: String,
    comment: Option<String>,
    #[serde(default, rename = "createdBy")]
    created_by: Option<String>,
}

fn default_duration() -> String {
    "1h".into()
}

/// A JSON answer: what the endpoints serve never holds a secret of the run
/// (a label, a host's error message, a series a custom metric named).
fn json_answer(code: u16, mut v: serde_json::Value) -> Response {
    crate::output::redact::run_secrets().redact_value(&mut v);
    (code, "application/json", format!("{v}\n"))
}

fn error(code: u16, msg: impl Into<String>) -> Response {
    json_answer(code, json!({ "error": msg.into() }))
}

impl StatusServer {
    pub fn handle(&self, req: &Request) -> Response {
        let method = req.method.as_str();
        let path = req.path.as_str();
        // The page holds no data: served to anyone, so a browser can load it
        // and then send the token from its script.
        match (method, path) {
            ("GET" | "HEAD", "/status" | "/status/") => return (200, "text/html; charset=utf-8", PAGE.into()),
            ("GET" | "HEAD", "/") if wants_html(req) => return (200, "text/html; charset=utf-8", PAGE.into()),
            ("GET" | "HEAD", "/status.js") => return (200, "text/javascript; charset=utf-8", SCRIPT.into()),
            ("GET" | "HEAD", "/status.css") => return (200, "text/css; charset=utf-8", STYLE.into()),
            _ => {}
        }
        if method == "POST" {
            return self.write(req);
        }
        if method != "GET" && method != "HEAD" {
            return (405, "text/plain", "method not allowed\n".into());
        }
        if !self.may_read(req) {
            return (
                401,
                "text/plain",
                "unauthorized: send `Authorization: Bearer TOKEN`\n".into(),
            );
        }
        match path {
            "/health" | "/" => json_answer(200, self.health()),
            "/alerts" | "/api/alerts" => json_answer(200, self.alerts()),
            "/metrics" => {
                let text = self.store.lock().map(|s| s.exposition()).unwrap_or_default();
                let text = crate::output::redact::run_secrets().redact_str(&text).into_owned();
                (200, "text/plain; version=0.0.4", text)
            }
            "/api/hosts" => json_answer(200, self.hosts()),
            "/api/series" => match req.query_param("host") {
                Some(h) => json_answer(200, self.series(&h)),
                None => error(400, "/api/series needs ?host=NAME"),
            },
            "/api/silences" => match self.silences() {
                Ok(v) => json_answer(200, v),
                Err(e) => error(500, e),
            },
            "/api/checks" => json_answer(200, self.checks()),
            "/api/actions" => match Db::open(&self.state).and_then(|db| super::action::list(&db, true)) {
                Ok(list) => json_answer(200, json!({ "actions": list })),
                Err(e) => error(500, e.to_string()),
            },
            _ => (
                404,
                "text/plain",
                "not found: try /status, /health, /alerts, /metrics or /api/{hosts,series,alerts,silences,checks}\n"
                    .into(),
            ),
        }
    }

    fn may_read(&self, req: &Request) -> bool {
        match &self.read_token {
            None => true,
            Some(t) => t.allows(&req.head) || self.write_token.as_ref().is_some_and(|w| w.allows(&req.head)),
        }
    }

    fn health(&self) -> serde_json::Value {
        self.shared.lock().map(|s| s.health.clone()).unwrap_or_default()
    }

    fn alerts(&self) -> serde_json::Value {
        self.shared.lock().map(|s| s.alerts.clone()).unwrap_or_default()
    }

    /// Each watched host: up or down, its last sample, its last error, and
    /// the names of the metrics it has series of.
    fn hosts(&self) -> serde_json::Value {
        let health = self.health();
        let mut metrics: std::collections::BTreeMap<String, std::collections::BTreeSet<String>> = Default::default();
        if let Ok(st) = self.store.lock() {
            for s in st.series.values() {
                if let Some(h) = s.labels.get("host") {
                    metrics.entry(h.to_string()).or_default().insert(s.name.to_string());
                }
            }
        }
        let hosts: Vec<serde_json::Value> = health
            .get("hosts")
            .and_then(|h| h.as_object())
            .map(|m| {
                m.iter()
                    .map(|(name, h)| {
                        let mut h = h.clone();
                        if let Some(o) = h.as_object_mut() {
                            o.insert("name".into(), name.clone().into());
                            o.insert("metrics".into(), json!(metrics.get(name).cloned().unwrap_or_default()));
                        }
                        h
                    })
                    .collect()
            })
            .unwrap_or_default();
        json!({ "hosts": hosts })
    }

    /// The in-memory ring of every series of `host`: `[[unix_seconds, value], ...]`;
    /// `watched` when a rule watches it (it keeps `history:`; the others keep
    /// their newest samples only).
    fn series(&self, host: &str) -> serde_json::Value {
        let Ok(st) = self.store.lock() else {
            return json!({ "host": host, "series": [] });
        };
        let retention = st.retention();
        let mut rows: Vec<(bool, &str, serde_json::Value)> = st
            .series
            .values()
            .filter(|s| s.labels.get("host") == Some(host))
            .map(|s| {
                let points: Vec<[f64; 2]> = s
                    .points()
                    .filter(|(_, v)| v.is_finite())
                    .map(|(t, v)| [(t * 1000.0).round() / 1000.0, v])
                    .collect();
                let labels: serde_json::Map<String, serde_json::Value> = s
                    .labels
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string().into()))
                    .collect();
                let watched = retention.watches(&s.name, &s.labels);
                (
                    watched,
                    &*s.key,
                    json!({ "key": &*s.key, "name": &*s.name, "labels": labels, "watched": watched, "points": points }),
                )
            })
            .collect();
        // The series rules watch (with their history) first.
        rows.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(b.1)));
        json!({ "host": host, "series": rows.into_iter().map(|r| r.2).collect::<Vec<_>>() })
    }

    fn silences(&self) -> Result<serde_json::Value, String> {
        let db = Db::open(&self.state).map_err(|e| e.to_string())?;
        let now = now_secs();
        let list: Vec<serde_json::Value> = db
            .silences()
            .map_err(|e| e.to_string())?
            .iter()
            .rev()
            .filter(|s| s.ends > now - EXPIRED_SILENCES_SHOWN_SECS)
            .map(|s| silence::to_json(s, now))
            .collect();
        Ok(json!({ "silences": list, "writable": self.write_token.is_some() }))
    }

    fn checks(&self) -> serde_json::Value {
        let Some(path) = &self.check_db else {
            return json!({ "database": null, "runs": [] });
        };
        let location = crate::state::Location::from_path(path);
        // A PostgreSQL URL without its password.
        let shown = location.to_string();
        if location.sqlite_path().is_some_and(|p| !p.exists()) {
            return json!({ "database": shown, "runs": [], "error": "no check history yet" });
        }
        match History::open_at(&location).and_then(|h| h.runs(CHECK_RUNS)) {
            Ok(runs) => json!({ "database": shown, "runs": runs }),
            Err(e) => json!({ "database": shown, "runs": [], "error": e.to_string() }),
        }
    }

    /// POST /api/silences (create) and /api/silences/ID/expire.
    fn write(&self, req: &Request) -> Response {
        let Some(token) = &self.write_token else {
            return error(
                403,
                "silences cannot be changed from the status page: start rigger watch with \
                 --status-token-file FILE (or --listen-token-file)",
            );
        };
        if !token.allows(&req.head) {
            return error(
                401,
                "unauthorized: send `Authorization: Bearer TOKEN` (the status token)",
            );
        }
        if let Some(origin) = req.header("origin") {
            let host = req.header("host").unwrap_or_default();
            let same = origin
                .strip_prefix("http://")
                .or_else(|| origin.strip_prefix("https://"))
                .is_some_and(|o| o.eq_ignore_ascii_case(host));
            if !same {
                return error(403, format!("cross-origin request from {origin} refused"));
            }
        }
        let json_body = req.header("content-type").is_some_and(|c| {
            c.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .eq_ignore_ascii_case("application/json")
        });
        if !json_body {
            return error(415, "send the request as Content-Type: application/json");
        }
        let now = now_secs();
        let db = match Db::open(&self.state) {
            Ok(db) => db,
            Err(e) => return error(500, e.to_string()),
        };
        if let Some(rest) = req.path.strip_prefix("/api/actions/") {
            let (id, approve) = match (rest.strip_suffix("/approve"), rest.strip_suffix("/reject")) {
                (Some(id), _) => (id, true),
                (None, Some(id)) => (id, false),
                _ => return error(404, "POST /api/actions/ID/approve or /api/actions/ID/reject"),
            };
            let Ok(id) = id.parse::<i64>() else {
                return error(404, format!("`{id}` is not an action id"));
            };
            return match super::action::decide(&db, id, approve, "status page", now) {
                Ok(r) => json_answer(200, json!({ "id": id, "state": r.state })),
                Err(super::action::DecideError::Unknown(_)) => error(404, format!("no action with id {id}")),
                Err(super::action::DecideError::Store(e)) => error(500, e.to_string()),
                Err(e) => error(409, e.to_string()),
            };
        }
        if req.path == "/api/silences" {
            let form: SilenceForm = match serde_json::from_slice(&req.body) {
                Ok(f) => f,
                Err(e) => return error(400, format!("bad silence: {e}")),
            };
            let current = match silence::current_alerts(&db) {
                Ok(c) => c,
                Err(e) => return error(500, e.to_string()),
            };
            let cfg = self.cfg.borrow().clone();
            let author = form
                .created_by
                .map(|a| a.trim().to_string())
                .filter(|a| !a.is_empty())
                .unwrap_or_else(|| "status page".into());
            let new = match silence::validate(
                &cfg,
                &current,
                &form.matchers,
                &form.duration,
                form.comment.as_deref(),
                author,
                now,
            ) {
                Ok(n) => n,
                Err(e) => return error(400, e.to_string()),
            };
            let matching = current
                .iter()
                .filter(|a| config::matches_all(&new.matchers, &a.labels))
                .count();
            return match silence::add(&db, &new.silence, "status page") {
                Ok(id) => {
                    tracing::info!(id, "silence added from the status page");
                    json_answer(
                        201,
                        json!({
                            "id": id,
                            "endsAt": alert::rfc3339(new.silence.ends),
                            "matchingAlerts": matching,
                            "warnings": new.warnings,
                        }),
                    )
                }
                Err(e) => error(500, e.to_string()),
            };
        }
        let id = req
            .path
            .strip_prefix("/api/silences/")
            .and_then(|r| r.strip_suffix("/expire"))
            .and_then(|id| id.parse::<i64>().ok());
        match id {
            Some(id) => match silence::expire(&db, id, now, "status page") {
                Ok(true) => json_answer(200, json!({ "id": id, "status": "expired" })),
                Ok(false) => error(404, format!("no silence with id {id}")),
                Err(e) => error(500, e.to_string()),
            },
            None => error(404, "POST /api/silences or /api/silences/ID/expire"),
        }
    }
}

/// A browser's navigation asks for HTML; a scrape or curl does not, and
/// keeps getting the health JSON at `/`.
fn wants_html(req: &Request) -> bool {
    req.header("accept").is_some_and(|a| a.contains("text/html"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server(read: Option<&str>, write: Option<&str>) -> (StatusServer, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let cfg_path = dir.path().join("w.yml");
        std::fs::write(
            &cfg_path,
            "rules: []\nreceivers:\n  - name: h\n    webhook: {url: 'http://127.0.0.1:1/'}\n",
        )
        .unwrap();
        let cfg = WatchConfig::load(&cfg_path).unwrap();
        let (_tx, rx) = tokio_watch::channel(Arc::new(cfg));
        let s = StatusServer {
            shared: Default::default(),
            store: Arc::new(Mutex::new(Store::new(super::super::store::Retention::keep_all(
                10, 60.0,
            )))),
            cfg: rx,
            state: dir.path().join("state.db"),
            check_db: None,
            read_token: read.map(|t| Arc::new(BearerToken::new(t))),
            write_token: write.map(|t| Arc::new(BearerToken::new(t))),
        };
        (s, dir)
    }

    fn req(method: &str, path: &str, headers: &[&str], body: &str) -> Request {
        let mut head = format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:9\r\n");
        for h in headers {
            head.push_str(h);
            head.push_str("\r\n");
        }
        head.push_str("\r\n");
        Request {
            method: method.into(),
            path: path.into(),
            query: String::new(),
            head,
            body: body.as_bytes().to_vec(),
        }
    }

    const SILENCE: &str = r#"{"matchers":["host=web1"],"duration":"1h","comment":"maintenance"}"#;

    #[test]
    fn actions_are_listed_and_approved_with_the_write_token() {
        use super::super::config::ActionConfig;
        use super::super::state::{Alert, AlertState};
        let (s, _d) = server(None, Some("w-token"));
        let db = Db::open(&s.state).unwrap();
        let labels: config::Labels = [("alertname", "A"), ("host", "h1")]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let alert = Alert {
            fingerprint: "f".into(),
            labels,
            annotations: Default::default(),
            state: AlertState::Firing,
            active_since: 1.0,
            fired_at: 1.0,
            last_active: 1.0,
            resolved_at: 0.0,
            value: 1.0,
            series: String::new(),
            suppressed: None,
        };
        let ac = ActionConfig {
            playbook: "/x/fix.yml".into(),
            loc: crate::yaml::Loc::synthetic("t"),
            on_resolve: false,
            cooldown: std::time::Duration::ZERO,
            max_runs: 5,
            window: std::time::Duration::from_secs(3600),
            loop_window: std::time::Duration::ZERO,
            dry_run: false,
            approval: true,
            approval_expires: std::time::Duration::from_secs(3600),
            timeout: std::time::Duration::from_secs(60),
        };
        let (rec, _) = super::super::action::on_transition(&db, &ac, "A", &alert, AlertState::Pending, now_secs())
            .unwrap()
            .unwrap();
        assert_eq!(rec.state, "awaiting_approval");
        let (code, _, body) = s.handle(&req("GET", "/api/actions", &[], ""));
        assert_eq!(code, 200);
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["actions"][0]["state"], "awaiting_approval");
        assert_eq!(v["actions"][0]["host"], "h1");
        let json = "Content-Type: application/json";
        let auth = "Authorization: Bearer w-token";
        let path = format!("/api/actions/{}/approve", rec.id);
        assert_eq!(s.handle(&req("POST", &path, &[json], "")).0, 401);
        let (code, _, body) = s.handle(&req("POST", &path, &[json, auth], ""));
        assert_eq!((code, body.contains(r#""state":"queued""#)), (200, true), "{body}");
        let (code, _, body) = s.handle(&req("POST", &path, &[json, auth], ""));
        assert_eq!(code, 409, "{body}");
        assert!(body.contains("is queued, not awaiting approval"), "{body}");
        assert_eq!(
            s.handle(&req("POST", "/api/actions/99/reject", &[json, auth], "")).0,
            404
        );
        assert_eq!(s.handle(&req("POST", "/api/actions/1/run", &[json, auth], "")).0, 404);
    }

    #[test]
    fn writes_need_the_write_token_json_and_the_same_origin() {
        let (s, _d) = server(None, Some("w-token"));
        let json = "Content-Type: application/json";
        let auth = "Authorization: Bearer w-token";
        assert_eq!(s.handle(&req("POST", "/api/silences", &[json], SILENCE)).0, 401);
        let wrong = "Authorization: Bearer other";
        assert_eq!(s.handle(&req("POST", "/api/silences", &[json, wrong], SILENCE)).0, 401);
        // A form post from another site: no JSON, another origin.
        assert_eq!(s.handle(&req("POST", "/api/silences", &[auth], SILENCE)).0, 415);
        let evil = "Origin: http://evil.example";
        assert_eq!(
            s.handle(&req("POST", "/api/silences", &[json, auth, evil], SILENCE)).0,
            403
        );
        let own = "Origin: http://127.0.0.1:9";
        let (code, _, body) = s.handle(&req("POST", "/api/silences", &[json, auth, own], SILENCE));
        assert_eq!(code, 201, "{body}");
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["id"], 1);
        let list = s.handle(&req("GET", "/api/silences", &[], ""));
        assert!(
            list.2.contains(r#""comment":"maintenance""#) && list.2.contains(r#""status":"active""#),
            "{}",
            list.2
        );
        assert_eq!(s.handle(&req("POST", "/api/silences/1/expire", &[json], "")).0, 401);
        assert_eq!(
            s.handle(&req("POST", "/api/silences/1/expire", &[json, auth], "")).0,
            200
        );
        assert_eq!(
            s.handle(&req("POST", "/api/silences/7/expire", &[json, auth], "")).0,
            404
        );
        let list = s.handle(&req("GET", "/api/silences", &[], ""));
        assert!(list.2.contains(r#""status":"expired""#), "{}", list.2);
        // The same validation as `silence add`: a comment is required.
        let bad = r#"{"matchers":["host=web1"],"comment":" "}"#;
        let (code, _, body) = s.handle(&req("POST", "/api/silences", &[json, auth], bad));
        assert_eq!(code, 400);
        assert!(body.contains("needs --comment"), "{body}");
    }

    #[test]
    fn without_a_token_nothing_is_written_and_reads_follow_the_read_token() {
        let (s, _d) = server(None, None);
        let json = "Content-Type: application/json";
        assert_eq!(s.handle(&req("POST", "/api/silences", &[json], SILENCE)).0, 403);
        assert_eq!(s.handle(&req("GET", "/api/alerts", &[], "")).0, 200);

        let (s, _d) = server(Some("r-token"), Some("w-token"));
        assert_eq!(s.handle(&req("GET", "/api/alerts", &[], "")).0, 401);
        assert_eq!(
            s.handle(&req("GET", "/api/alerts", &["Authorization: Bearer r-token"], ""))
                .0,
            200
        );
        assert_eq!(
            s.handle(&req("GET", "/api/alerts", &["Authorization: Bearer w-token"], ""))
                .0,
            200
        );
        // The page itself holds no data.
        assert_eq!(s.handle(&req("GET", "/status", &[], "")).0, 200);
        assert_eq!(s.handle(&req("GET", "/status.js", &[], "")).0, 200);
        // `/` stays the health JSON for scrapes, and is the page for browsers.
        assert_eq!(s.handle(&req("GET", "/", &[], "")).0, 401);
        let page = s.handle(&req("GET", "/", &["Accept: text/html,*/*"], ""));
        assert_eq!((page.0, page.1), (200, "text/html; charset=utf-8"));
    }

    #[test]
    fn the_script_never_renders_markup() {
        // Data is text: the page's script builds elements and sets textContent only.
        for bad in [
            "innerHTML",
            "outerHTML",
            "insertAdjacentHTML",
            "document.write",
            "eval(",
        ] {
            assert!(!SCRIPT.contains(bad), "status.js uses {bad}");
        }
        assert!(!PAGE.contains("<script>"), "no inline script (the CSP forbids it)");
    }
}
