//! Notifiers and the durable outbox. A notification is first written to the
//! SQLite outbox (one row per receiver channel), then delivered; retryable
//! failures ([`DeliveryError::is_retryable`]: the receiver is down, busy or
//! slow) are retried with exponential backoff, across restarts, until
//! delivered or older than `outbox_max_age` (then reported as expired). A
//! permanent failure (a 5xx SMTP reply, an HTTP 4xx other than 429, settings
//! that cannot work) is reported once and not tried again.

mod chart;
pub mod email;
mod envelope;
pub mod webhook;

use std::sync::Mutex;

use super::config::WatchConfig;
use super::store::{Db, StoreError};
use crate::delivery::DeliveryError;

pub use chart::png_chart;
pub use envelope::{common_labels, rfc3339, status_of, ActionRecord, Envelope};

/// Why a notification could not be queued.
#[derive(Debug, thiserror::Error)]
pub enum EnqueueError {
    /// The notification names a receiver the configuration does not have.
    #[error("unknown receiver `{0}`")]
    UnknownReceiver(String),
    #[error(transparent)]
    Payload(#[from] serde_json::Error),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Queue one notification for every channel of its receiver. A channel
/// whose row was queued before under the notification's idempotent key
/// ([`Notification::dedup_key`](super::state::Notification)) is left out:
/// the ids returned are the rows queued now.
pub fn enqueue(db: &Db, cfg: &WatchConfig, env: &Envelope, now: f64) -> Result<Vec<i64>, EnqueueError> {
    let Some(r) = cfg.receiver(&env.notification.receiver) else {
        return Err(EnqueueError::UnknownReceiver(env.notification.receiver.clone()));
    };
    // The outbox and what is sent from it never hold a secret of the run
    // (a vault value in the configuration, in a label or annotation).
    let mut payload = serde_json::to_value(env)?;
    crate::output::redact::run_secrets().redact_value(&mut payload);
    let payload = serde_json::to_string(&payload)?;
    let mut ids = Vec::new();
    let channels = [("email", r.email.is_some()), ("webhook", r.webhook.is_some())];
    for (kind, _) in channels.iter().filter(|(_, on)| *on) {
        match &env.notification.dedup_key {
            Some(k) => {
                let nkey = format!("{}:{kind}:{k}", r.name);
                if let Some(id) = db.enqueue_keyed(&r.name, kind, &payload, now, &nkey)? {
                    ids.push(id);
                }
            }
            None => ids.push(db.enqueue(&r.name, kind, &payload, now)?),
        }
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
    // The outcome of a bookkeeping write is not reported: the row is tried
    // again on the next pass.
    let with_db = |f: &dyn Fn(&Db) -> Result<(), StoreError>| match db.lock() {
        Ok(d) => f(&d),
        Err(_) => Err(StoreError::Poisoned),
    };
    let due = match db.lock().map_err(|_| StoreError::Poisoned).and_then(|d| d.due(now)) {
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
