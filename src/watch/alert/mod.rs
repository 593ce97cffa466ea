//! Notifiers and the durable outbox. A notification is first written to the
//! SQLite outbox (one row per receiver channel), then delivered; retryable
//! failures ([`DeliveryError::is_retryable`]: the receiver is down, busy or
//! slow) are retried with exponential backoff, across restarts, until
//! delivered or older than `outbox_max_age` (then reported as expired). A
//! permanent failure (a 5xx SMTP reply, an HTTP 4xx other than 429, settings
//! that cannot work) is reported once and not tried again.

pub mod email;
pub mod webhook;

use std::collections::BTreeMap;
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use super::config::{Labels, WatchConfig};
use super::state::{Alert, AlertState, Notification};
use super::store::Db;
use crate::delivery::DeliveryError;

/// What the outbox stores: the notification and each alert's recent history.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Envelope {
    pub notification: Notification,
    /// fingerprint → (unix seconds, value) points for the chart.
    pub history: BTreeMap<String, Vec<(f64, f64)>>,
}

/// Queue one notification for every channel of its receiver.
pub fn enqueue(db: &Db, cfg: &WatchConfig, env: &Envelope, now: f64) -> Result<Vec<i64>, String> {
    let Some(r) = cfg.receiver(&env.notification.receiver) else {
        return Err(format!("unknown receiver `{}`", env.notification.receiver));
    };
    let payload = serde_json::to_string(env).map_err(|e| e.to_string())?;
    let mut ids = Vec::new();
    if r.email.is_some() {
        ids.push(db.enqueue(&r.name, "email", &payload, now)?);
    }
    if r.webhook.is_some() {
        ids.push(db.enqueue(&r.name, "webhook", &payload, now)?);
    }
    Ok(ids)
}

/// Outcome of one delivery pass, for the log.
#[derive(Debug, Default)]
pub struct DeliveryReport {
    pub delivered: Vec<String>,
    pub failed: Vec<String>,
    pub expired: Vec<String>,
}

/// Try every due outbox row once.
///
/// The database sits behind a mutex that is never held across an await, so
/// the delivery future can run on any worker thread.
pub async fn deliver_due(db: &Mutex<Db>, cfg: &WatchConfig, now: f64) -> DeliveryReport {
    let mut rep = DeliveryReport::default();
    let with_db = |f: &dyn Fn(&Db) -> Result<(), String>| match db.lock() {
        Ok(d) => f(&d),
        Err(_) => Err("the state database lock is poisoned".into()),
    };
    let due = match db
        .lock()
        .map_err(|_| "lock poisoned".to_string())
        .and_then(|d| d.due(now))
    {
        Ok(d) => d,
        Err(e) => {
            rep.failed.push(format!("cannot read the outbox: {e}"));
            return rep;
        }
    };
    for item in due {
        let what = format!("#{} {} to `{}`", item.id, item.kind, item.receiver);
        if now - item.created > cfg.outbox_max_age.as_secs_f64() {
            let _ = with_db(&|d| d.mark(item.id, "expired", now, Some("older than outbox_max_age")));
            rep.expired.push(format!(
                "{what}: not delivered within {}s, dropped",
                cfg.outbox_max_age.as_secs()
            ));
            continue;
        }
        let env: Envelope = match serde_json::from_str(&item.payload) {
            Ok(e) => e,
            Err(e) => {
                let msg = format!("unreadable payload: {e}");
                let _ = with_db(&|d| d.mark(item.id, "expired", now, Some(&msg)));
                rep.expired.push(format!("{what}: unreadable payload: {e}"));
                continue;
            }
        };
        let receiver = cfg.receiver(&item.receiver);
        let result = match (item.kind.as_str(), receiver) {
            ("email", Some(r)) => match &r.email {
                Some(e) => email::send(e, &env).await,
                None => Err(DeliveryError::Config(
                    "the receiver has no email settings any more".into(),
                )),
            },
            ("webhook", Some(r)) => match &r.webhook {
                Some(w) => webhook::send(w, &env).await,
                None => Err(DeliveryError::Config(
                    "the receiver has no webhook settings any more".into(),
                )),
            },
            _ => Err(DeliveryError::Config(format!(
                "receiver `{}` is not configured",
                item.receiver
            ))),
        };
        match result {
            Ok(()) => {
                let _ = with_db(&|d| d.mark(item.id, "delivered", now, None));
                rep.delivered.push(what);
            }
            Err(e) if !e.is_retryable() => {
                // Trying again would only repeat the answer: dropped, said once.
                let msg = e.to_string();
                let _ = with_db(&|d| d.mark(item.id, "failed", now, Some(&msg)));
                rep.failed.push(format!(
                    "{what}: {e} (attempt {}, permanent: not retried)",
                    item.attempts + 1
                ));
            }
            Err(e) => {
                // 1 s, 2 s, 4 s ... capped.
                let backoff = 2f64
                    .powi(item.attempts.clamp(0, 30) as i32)
                    .min(cfg.retry_max_backoff.as_secs_f64().max(1.0));
                let msg = e.to_string();
                let _ = with_db(&|d| d.retry_later(item.id, now + backoff, &msg));
                rep.failed.push(format!(
                    "{what}: {e} (attempt {}, retry in {backoff}s)",
                    item.attempts + 1
                ));
            }
        }
    }
    rep
}

/// RFC 3339 in UTC with millisecond precision.
pub fn rfc3339(ts: f64) -> String {
    if ts <= 0.0 {
        return "0001-01-01T00:00:00Z".into();
    }
    let secs = ts.floor() as i64;
    let ms = ((ts - ts.floor()) * 1000.0) as i64;
    format!("{}.{ms:03}Z", crate::calendar::utc_datetime(secs))
}

/// Labels every alert of the notification shares.
pub fn common_labels(alerts: &[Alert]) -> Labels {
    let Some(first) = alerts.first() else {
        return Labels::new();
    };
    first
        .labels
        .iter()
        .filter(|(k, v)| alerts.iter().all(|a| a.labels.get(*k) == Some(v)))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

pub fn status_of(a: &Alert) -> &'static str {
    if a.state == AlertState::Resolved {
        "resolved"
    } else {
        "firing"
    }
}

/// A small SVG line chart of `points` (no external resources).
pub fn svg_chart(points: &[(f64, f64)], width: u32, height: u32) -> String {
    let (w, h) = (f64::from(width), f64::from(height));
    let pad = 4.0;
    if points.len() < 2 {
        return format!(
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\"><text x=\"4\" y=\"14\" font-size=\"11\">not enough data</text></svg>"
        );
    }
    let (t0, t1) = (points[0].0, points[points.len() - 1].0);
    let lo = points.iter().map(|p| p.1).fold(f64::INFINITY, f64::min);
    let hi = points.iter().map(|p| p.1).fold(f64::NEG_INFINITY, f64::max);
    let span_v = if hi > lo { hi - lo } else { 1.0 };
    let span_t = if t1 > t0 { t1 - t0 } else { 1.0 };
    let coords: Vec<String> = points
        .iter()
        .map(|(t, v)| {
            let x = pad + (t - t0) / span_t * (w - 2.0 * pad);
            let y = h - pad - (v - lo) / span_v * (h - 2.0 * pad - 12.0);
            format!("{x:.1},{y:.1}")
        })
        .collect();
    format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\" viewBox=\"0 0 {width} {height}\">\
<rect width=\"{width}\" height=\"{height}\" fill=\"#f8f8f8\" stroke=\"#ccc\"/>\
<text x=\"4\" y=\"11\" font-size=\"10\" fill=\"#555\">min {lo:.2} max {hi:.2} last {last:.2}</text>\
<polyline fill=\"none\" stroke=\"#d33\" stroke-width=\"1.5\" points=\"{}\"/></svg>",
        // Short lines keep the HTML part 7-bit clean for every mail transport.
        coords.chunks(8).map(|c| c.join(" ")).collect::<Vec<_>>().join("\n"),
        last = points[points.len() - 1].1
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_and_chart() {
        assert_eq!(rfc3339(0.0), "0001-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_700_000_000.25), "2023-11-14T22:13:20.250Z");
        assert_eq!(rfc3339(951_782_400.0), "2000-02-29T00:00:00.000Z");
        let svg = svg_chart(&[(0.0, 1.0), (10.0, 3.0), (20.0, 2.0)], 200, 60);
        assert!(svg.starts_with("<svg") && svg.contains("<polyline"));
        assert!(svg.contains("max 3.00"));
        assert_eq!(svg.matches(',').count(), 3, "three points: {svg}");
        let many: Vec<(f64, f64)> = (0..100).map(|i| (f64::from(i), f64::from(i % 7))).collect();
        assert!(svg_chart(&many, 200, 60).lines().all(|l| l.len() < 400));
    }
}
