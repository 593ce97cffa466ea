//! What a notification says: the [`Envelope`] the outbox stores, and the
//! helpers that render it (times, shared labels, status, chart). The email
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
