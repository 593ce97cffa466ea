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
    /// The action runs this notification reports (`watch::action`): an
    /// alert's action notice carries its run, result, recap and diff.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub actions: Vec<ActionRecord>,
}

/// One action of a rule (a row of the state file's `actions` table): what
/// triggered it, the guards' verdict, and the run's result.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ActionRecord {
    pub id: i64,
    pub rule: String,
    pub host: String,
    pub fingerprint: String,
    /// `firing` or `resolved`: the alert transition that asked for it.
    pub trigger: String,
    pub playbook: String,
    /// awaiting_approval, queued, running, succeeded, failed, interrupted,
    /// expired, rejected, skipped.
    pub state: String,
    /// Why it was skipped, failed or interrupted.
    pub reason: Option<String>,
    pub dry_run: bool,
    pub created: f64,
    /// When an action awaiting approval expires.
    pub expires: Option<f64>,
    pub started: Option<f64>,
    pub finished: Option<f64>,
    pub pid: Option<i64>,
    pub exit_code: Option<i64>,
    /// Tasks changed (or that would change, in a dry run), all hosts.
    pub changed: Option<i64>,
    /// The run's recap: host → ok, changed, unreachable, failed, skipped...
    pub recap: Option<serde_json::Value>,
    /// The diff of a dry run (or of a run's changes).
    pub diff: Option<String>,
    /// The failures and the end of the run's error output.
    pub output: Option<String>,
    pub approved_by: Option<String>,
}

impl ActionRecord {
    /// `action #3 (fix.yml on host1, firing): succeeded, 1 changed`.
    pub fn headline(&self) -> String {
        let mut s = format!(
            "action #{} ({}{} on {}, {}): {}",
            self.id,
            self.playbook,
            if self.dry_run { " in check mode" } else { "" },
            self.host,
            self.trigger,
            self.state.replace('_', " ")
        );
        if let Some(c) = self.changed {
            s.push_str(&format!(
                ", {c} {}",
                if self.dry_run { "would change" } else { "changed" }
            ));
        }
        if let Some(r) = &self.reason {
            s.push_str(&format!(" ({r})"));
        }
        s
    }
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
