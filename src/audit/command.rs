//! `rigger audit verify` and `rigger audit show`.

use std::collections::HashMap;
use std::path::PathBuf;

use serde_json::Value;

use crate::cli::{AuditAction, AuditArgs};
use crate::error::AppError;

fn log_path(given: Option<&PathBuf>) -> Result<PathBuf, AppError> {
    given
        .cloned()
        .or_else(|| std::env::var_os(super::ENV).map(PathBuf::from))
        .ok_or_else(|| AppError::Usage(format!("which audit log? give --audit-log FILE or set {}", super::ENV)))
}

pub fn run(a: AuditArgs, global_log: Option<&PathBuf>) -> Result<i32, AppError> {
    let path = log_path(global_log)?;
    let bytes = std::fs::read(&path).map_err(|e| AppError::Usage(format!("audit log {}: {e}", path.display())))?;
    match a.action {
        AuditAction::Verify { head } => match super::chain::verify(&bytes, head.as_deref()) {
            Ok(v) => {
                stdoutln!("{}: OK, {} records, head sha256:{}", path.display(), v.records, v.head);
                Ok(0)
            }
            Err(e) => {
                stderrln!("{}: BROKEN: {e}", path.display());
                Ok(1)
            }
        },
        AuditAction::Show {
            host,
            user,
            since,
            until,
            kind,
            json,
        } => {
            let since = since.as_deref().map(parse_time).transpose().map_err(AppError::Usage)?;
            let until = until.as_deref().map(parse_time).transpose().map_err(AppError::Usage)?;
            let text = String::from_utf8_lossy(&bytes);
            let records: Vec<Value> = text
                .lines()
                .filter_map(|l| serde_json::from_str::<Value>(l).ok())
                .collect();
            // The user of a run is in its run_start record.
            let users: HashMap<String, String> = records
                .iter()
                .filter(|r| r["kind"] == "run_start")
                .filter_map(|r| Some((r["run"].as_str()?.to_string(), r["user"].as_str()?.to_string())))
                .collect();
            let user_of = |r: &Value| r["run"].as_str().and_then(|id| users.get(id)).cloned();
            let mut shown = 0;
            for r in &records {
                let t = r["time"].as_str().and_then(|t| parse_time(t).ok());
                if since.is_some_and(|s| t.is_none_or(|t| t < s)) || until.is_some_and(|u| t.is_none_or(|t| t > u)) {
                    continue;
                }
                if let Some(h) = &host {
                    // A run's records without a host (start, end) go with
                    // the host filter only through their task records.
                    let hosts_of = r["hosts"].as_array();
                    let matches = r["host"].as_str() == Some(h.as_str())
                        || hosts_of.is_some_and(|a| a.iter().any(|x| x.as_str() == Some(h.as_str())));
                    if !matches {
                        continue;
                    }
                }
                if let Some(u) = &user {
                    if user_of(r).as_deref() != Some(u.as_str()) {
                        continue;
                    }
                }
                if let Some(k) = &kind {
                    if r["kind"].as_str() != Some(k.as_str()) {
                        continue;
                    }
                }
                shown += 1;
                if json {
                    stdoutln!("{r}");
                } else {
                    stdoutln!("{}", line(r, user_of(r).as_deref()));
                }
            }
            if !json && shown == 0 {
                stderrln!("no record matches");
            }
            Ok(0)
        }
    }
}

/// One record as a line of text.
fn line(r: &Value, user: Option<&str>) -> String {
    let s = |k: &str| r[k].as_str().unwrap_or("").to_string();
    let kind = s("kind");
    let what = match kind.as_str() {
        "run_start" => format!(
            "{} {}",
            s("command"),
            r["argv"]
                .as_array()
                .map(|a| a.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(" "))
                .unwrap_or_default()
        ),
        "run_end" => format!("exit {}", r["exit_code"]),
        "task" => {
            let mut t = format!("{} {} {}", s("host"), s("status"), s("task"));
            if let Some(d) = r["diff"].as_array() {
                for p in d {
                    t.push_str(&format!(
                        " [{} +{} -{}]",
                        p["path"].as_str().unwrap_or("-"),
                        p["added"],
                        p["removed"]
                    ));
                }
            }
            t
        }
        "playbook_start" => s("playbook"),
        "play_start" => s("play"),
        "warning" => s("message"),
        _ => {
            let mut m = r.as_object().cloned().unwrap_or_default();
            for k in ["seq", "time", "kind", "run", "prev"] {
                m.remove(k);
            }
            Value::Object(m).to_string()
        }
    };
    format!("{}  {:<10} {:<14} {what}", s("time"), user.unwrap_or("-"), kind)
}

/// Unix seconds of `2026-12-07T03:00:00Z` (with or without fraction and
/// `Z`), `2026-12-07 03:00`, `2026-12-07`, or a duration ago (`30m`, `2h`,
/// `7d`).
pub fn parse_time(s: &str) -> Result<f64, String> {
    let s = s.trim();
    let bad = || format!("cannot read the time `{s}` (use 2026-12-07T03:00:00Z, 2026-12-07 or 2h for two hours ago)");
    if let Some(n) = s.strip_suffix(['s', 'm', 'h', 'd']) {
        if let Ok(n) = n.parse::<f64>() {
            let unit = match s.as_bytes()[s.len() - 1] {
                b's' => 1.0,
                b'm' => 60.0,
                b'h' => 3600.0,
                _ => 86400.0,
            };
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs_f64())
                .unwrap_or(0.0);
            return Ok(now - n * unit);
        }
    }
    let s2 = s.trim_end_matches('Z');
    let (date, time) = match s2.split_once(['T', ' ']) {
        Some((d, t)) => (d, t),
        None => (s2, "00:00:00"),
    };
    let d: Vec<&str> = date.split('-').collect();
    let [y, mo, da] = d.as_slice() else { return Err(bad()) };
    let (y, mo, da) = (
        y.parse::<i64>().map_err(|_| bad())?,
        mo.parse::<u32>().map_err(|_| bad())?,
        da.parse::<u32>().map_err(|_| bad())?,
    );
    if !(1..=12).contains(&mo) || !(1..=31).contains(&da) {
        return Err(bad());
    }
    let mut parts = time.split(':');
    let h = parts.next().unwrap_or("0").parse::<f64>().map_err(|_| bad())?;
    let mi = parts.next().unwrap_or("0").parse::<f64>().map_err(|_| bad())?;
    let se = parts.next().unwrap_or("0").parse::<f64>().map_err(|_| bad())?;
    let days = crate::calendar::days_from_civil(y, mo, da);
    Ok(days as f64 * 86400.0 + h * 3600.0 + mi * 60.0 + se)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times() {
        assert_eq!(parse_time("1970-01-02").unwrap(), 86400.0);
        assert_eq!(parse_time("2024-05-01T03:01:01Z").unwrap(), 1_714_532_461.0);
        assert_eq!(parse_time("2024-05-01T03:01:01.250Z").unwrap(), 1_714_532_461.25);
        assert_eq!(parse_time("2024-05-01 03:01").unwrap(), 1_714_532_460.0);
        assert!(parse_time("yesterday").is_err());
        let ago = parse_time("2h").unwrap();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs_f64();
        assert!((now - 7200.0 - ago).abs() < 5.0);
    }
}
