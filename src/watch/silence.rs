//! Silences as `rigger watch silence add` and the status page create them:
//! one validation (matchers, duration, a required comment, label names an
//! alert can have), one record in the state file and the audit log.

use std::collections::BTreeSet;

use serde_json::json;

use super::alert;
use super::config::{self, Matcher, WatchConfig};
use super::state::{Alert, AlertState};
use super::store::{Db, Silence};
use crate::error::AppError;

/// A silence that passed validation, not stored yet.
pub struct NewSilence {
    pub silence: Silence,
    pub matchers: Vec<Matcher>,
    /// What is suspicious but allowed (a label no current alert has while a
    /// custom command's text may carry it).
    pub warnings: Vec<String>,
}

/// The alerts in the state file that are not resolved.
pub fn current_alerts(db: &Db) -> Result<Vec<Alert>, AppError> {
    Ok(db
        .load_kv("alerts")?
        .into_iter()
        .filter_map(|(_, d)| serde_json::from_str::<Alert>(&d).ok())
        .filter(|a| a.state != AlertState::Resolved)
        .collect())
}

/// Check a silence as Alertmanager's API does (at least one matcher, each
/// `name=value`, `name!=value`, `name=~re` or `name!~re`; a comment; a
/// duration) and refuse a label name no alert can carry.
pub fn validate(
    cfg: &WatchConfig,
    current: &[Alert],
    matchers: &[String],
    duration: &str,
    comment: Option<&str>,
    author: String,
    now: f64,
) -> Result<NewSilence, AppError> {
    if matchers.is_empty() {
        return Err(AppError::Usage(
            "silence add needs at least one matcher (e.g. host=web1)".into(),
        ));
    }
    let comment = comment.map(str::trim).unwrap_or_default();
    if comment.is_empty() {
        return Err(AppError::Usage(
            "silence add needs --comment: why the alerts are silenced (the author is --author, \
             default the current user)"
                .into(),
        ));
    }
    let parsed: Vec<Matcher> = matchers
        .iter()
        .map(|m| Matcher::parse(m).map_err(|e| AppError::Usage(e.to_string())))
        .collect::<Result<_, _>>()?;
    let known = known_label_names(cfg, current);
    // A custom command's Prometheus text may carry any label: with a rule on
    // one, an unknown name is only suspicious.
    let open = cfg.rules.iter().any(|r| config::builtin_labels(&r.metric).is_none());
    let mut warnings = Vec::new();
    for m in &parsed {
        if !known.contains(m.name.as_str()) {
            let mut msg = format!(
                "silence add: {} the label `{}` (known labels: {})",
                if open {
                    "no current alert and no built-in metric has"
                } else {
                    "no alert can have"
                },
                m.name,
                known.iter().copied().collect::<Vec<_>>().join(", ")
            );
            if let Some(s) = crate::error::did_you_mean(&m.name, known.iter().copied()) {
                msg.push_str(&format!("; did you mean `{s}`?"));
            }
            if !open {
                return Err(AppError::Usage(msg));
            }
            warnings.push(msg);
        }
    }
    let d = config::parse_duration(duration).map_err(|e| AppError::Usage(format!("--duration: {e}")))?;
    Ok(NewSilence {
        silence: Silence {
            id: 0,
            matchers: matchers.to_vec(),
            starts: now,
            ends: now + d.as_secs_f64(),
            comment: comment.to_string(),
            created_by: author,
        },
        matchers: parsed,
        warnings,
    })
}

/// Store the silence and record it in the audit log (`via`: `cli` or
/// `status page`); its id.
pub fn add(db: &Db, s: &Silence, via: &str) -> Result<i64, AppError> {
    let id = db.add_silence(s)?;
    let mut rec = serde_json::Map::new();
    rec.insert("id".into(), id.into());
    rec.insert("matchers".into(), json!(s.matchers));
    rec.insert("ends".into(), alert::rfc3339(s.ends).into());
    rec.insert("comment".into(), s.comment.clone().into());
    rec.insert("created_by".into(), s.created_by.clone().into());
    if via != "cli" {
        rec.insert("via".into(), via.into());
    }
    crate::audit::record_synced("silence_add", rec);
    Ok(id)
}

/// End a silence now (recorded in the audit log); false when there is none with that id.
pub fn expire(db: &Db, id: i64, now: f64, via: &str) -> Result<bool, AppError> {
    if !db.expire_silence(id, now)? {
        return Ok(false);
    }
    let mut rec = serde_json::Map::new();
    rec.insert("id".into(), id.into());
    if via != "cli" {
        rec.insert("via".into(), via.into());
    }
    crate::audit::record_synced("silence_expire", rec);
    Ok(true)
}

/// A silence as `silence list --json` and the status page's API show it.
pub fn to_json(s: &Silence, now: f64) -> serde_json::Value {
    json!({
        "id": s.id,
        "matchers": s.matchers,
        "startsAt": alert::rfc3339(s.starts),
        "endsAt": alert::rfc3339(s.ends),
        "comment": s.comment,
        "createdBy": s.created_by,
        "status": if s.ends <= now { "expired" } else { "active" },
    })
}

/// The label names an alert can carry: the built-in ones, the labels of
/// the series each rule watches, the rules' own labels, and those of the
/// current alerts.
pub fn known_label_names<'a>(cfg: &'a WatchConfig, current: &'a [Alert]) -> BTreeSet<&'a str> {
    let mut known: BTreeSet<&str> = ["alertname", "severity", "host"].into();
    for r in &cfg.rules {
        known.extend(config::builtin_labels(&r.metric).unwrap_or_default());
        known.extend(r.labels.keys().map(String::as_str));
    }
    for a in current {
        known.extend(a.labels.keys().map(String::as_str));
    }
    known
}
