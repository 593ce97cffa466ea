//! What a notification says: the [`Envelope`] the outbox stores, and the
//! helpers that render it (times, shared labels, status). The email
//! and webhook notifiers read it; the outbox (`mod.rs`) queues and delivers it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::watch::config::Labels;
use crate::watch::state::{Alert, AlertState, Notification};

/// What the outbox stores: the notification and each alert's recent history.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Envelope {
    pub notification: Notification,
    /// fingerprint → (unix seconds, value) points for the chart.
    pub history: BTreeMap<String, Vec<(f64, f64)>>,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times() {
        assert_eq!(rfc3339(0.0), "0001-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_700_000_000.25), "2023-11-14T22:13:20.250Z");
        assert_eq!(rfc3339(951_782_400.0), "2000-02-29T00:00:00.000Z");
    }
}
