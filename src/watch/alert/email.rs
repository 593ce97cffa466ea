//! Email notifier: plain text plus HTML with a PNG chart of each alert's
//! recent history (a `cid:` image of a `multipart/related` part: mail
//! clients strip inline SVG), sent with the shared SMTP sender
//! ([`crate::delivery::smtp`]).

use lettre::message::header::ContentType;
use lettre::message::header::{HeaderName, HeaderValue};
use lettre::message::{Attachment, Mailbox, MultiPart, SinglePart};
use lettre::Message;

use super::chart::png_chart;
use super::envelope::{common_labels, rfc3339, status_of, ActionRecord, Envelope};
use crate::delivery::smtp::{self, SmtpSettings};
use crate::delivery::DeliveryError;
use crate::text::xml_escape;
use crate::watch::config::EmailConfig;

/// `[FIRING:2] DiskAlmostFull web1 (severity=critical mount=/srv)`: the
/// status and count, the group label values (as Alertmanager's default
/// subject), then the severity and the other labels every alert shares.
pub fn subject(env: &Envelope) -> String {
    let n = &env.notification;
    let firing = n.alerts.iter().filter(|a| status_of(a) == "firing").count();
    let count = if firing > 0 { firing } else { n.alerts.len() };
    let labels: Vec<String> = n.group_labels.values().cloned().collect();
    let mut extra = Vec::new();
    let severities: std::collections::BTreeSet<&str> = n
        .alerts
        .iter()
        .filter_map(|a| a.labels.get("severity").map(String::as_str))
        .collect();
    if !severities.is_empty() && !n.group_labels.contains_key("severity") {
        extra.push(format!(
            "severity={}",
            severities.into_iter().collect::<Vec<_>>().join(",")
        ));
    }
    for (k, v) in common_labels(&n.alerts) {
        if k != "severity" && !n.group_labels.contains_key(&k) {
            extra.push(format!("{k}={v}"));
        }
    }
    let mut s = format!("[{}:{count}] {}", n.status.to_uppercase(), labels.join(" "));
    // An action notice says what the action did first.
    if let [a] = env.actions.as_slice() {
        s = format!(
            "[ACTION #{} {}] {}",
            a.id,
            a.state.replace('_', " ").to_uppercase(),
            labels.join(" ")
        );
    }
    if !extra.is_empty() {
        s.push_str(&format!(" ({})", extra.join(" ")));
    }
    s
}

const CHART_WIDTH: u32 = 360;
const CHART_HEIGHT: u32 = 90;

/// The Content-ID of an alert's chart.
fn chart_cid(fingerprint: &str) -> String {
    format!("chart-{fingerprint}@rigger")
}

/// The Message-ID of the notification `id`, in the sender's domain.
pub fn message_id(id: &str, from: &str) -> String {
    let domain = from
        .rsplit_once('@')
        .map(|(_, d)| d.trim_end_matches('>'))
        .filter(|d| !d.is_empty())
        .unwrap_or("rigger.invalid");
    format!("<rigger.{id}@{domain}>")
}

pub fn text_body(env: &Envelope) -> String {
    let n = &env.notification;
    let mut out = format!("{} alert(s) for {}\n\n", n.alerts.len(), subject(env));
    for a in &n.alerts {
        out.push_str(&format!(
            "[{}] {}\n",
            status_of(a).to_uppercase(),
            a.annotations.get("summary").cloned().unwrap_or_default()
        ));
        if let Some(d) = a.annotations.get("description").filter(|d| !d.is_empty()) {
            out.push_str(&format!("  {d}\n"));
        }
        out.push_str(&format!(
            "  value: {}\n  since: {}\n",
            a.value,
            rfc3339(a.fired_at.max(a.active_since))
        ));
        if a.resolved_at > 0.0 {
            out.push_str(&format!("  resolved: {}\n", rfc3339(a.resolved_at)));
        }
        let labels: Vec<String> = a.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
        out.push_str(&format!("  labels: {}\n\n", labels.join(", ")));
    }
    for x in &env.actions {
        out.push_str(&format!("{}\n", x.headline()));
        for (k, v) in action_lines(x) {
            out.push_str(&format!("  {k}: {v}\n"));
        }
        if let Some(d) = x.diff.as_deref().filter(|d| !d.is_empty()) {
            out.push_str(&format!("  diff:\n{}\n", indent(d)));
        }
        if let Some(o) = x.output.as_deref().filter(|o| !o.is_empty()) {
            out.push_str(&format!("  output:\n{}\n", indent(o)));
        }
        out.push('\n');
    }
    out
}

fn indent(s: &str) -> String {
    s.lines().map(|l| format!("    {l}")).collect::<Vec<_>>().join("\n")
}

/// The facts of an action run shown in both bodies: times and recap.
fn action_lines(x: &ActionRecord) -> Vec<(&'static str, String)> {
    let mut out = vec![("created", rfc3339(x.created))];
    if let Some(t) = x
        .expires
        .filter(|_| x.state == "awaiting_approval" || x.state == "expired")
    {
        out.push(("expires", rfc3339(t)));
    }
    if x.state == "awaiting_approval" {
        out.push(("approve with", format!("rigger watch action approve {}", x.id)));
    }
    if let Some(t) = x.started {
        out.push(("started", rfc3339(t)));
    }
    if let Some(t) = x.finished {
        out.push(("finished", rfc3339(t)));
    }
    if let Some(by) = &x.approved_by {
        out.push(("approved by", by.clone()));
    }
    if let Some(c) = x.exit_code {
        out.push(("exit code", c.to_string()));
    }
    if let Some(serde_json::Value::Object(hosts)) = &x.recap {
        for (h, st) in hosts {
            let n = |k: &str| st.get(k).and_then(serde_json::Value::as_u64).unwrap_or(0);
            out.push((
                "recap",
                format!(
                    "{h} ok={} changed={} unreachable={} failed={} skipped={}",
                    n("ok"),
                    n("changed"),
                    n("unreachable"),
                    n("failed"),
                    n("skipped")
                ),
            ));
        }
    }
    out
}

pub fn html_body(env: &Envelope) -> String {
    let n = &env.notification;
    let mut out = format!(
        "<html><body style=\"font-family:sans-serif\"><h3>{}</h3>",
        xml_escape(&subject(env))
    );
    for a in &n.alerts {
        let color = if status_of(a) == "firing" { "#c00" } else { "#080" };
        out.push_str(&format!(
            "\n<div style=\"margin-bottom:16px\"><p><b style=\"color:{color}\">{}</b> {}</p>",
            status_of(a).to_uppercase(),
            xml_escape(&a.annotations.get("summary").cloned().unwrap_or_default())
        ));
        if let Some(d) = a.annotations.get("description").filter(|d| !d.is_empty()) {
            out.push_str(&format!("<p>{}</p>", xml_escape(d)));
        }
        let points = env.history.get(&a.fingerprint).map(Vec::as_slice).unwrap_or(&[]);
        if points.len() >= 2 {
            let lo = points.iter().map(|p| p.1).fold(f64::INFINITY, f64::min);
            let hi = points.iter().map(|p| p.1).fold(f64::NEG_INFINITY, f64::max);
            out.push_str(&format!(
                "<p><img src=\"cid:{}\" width=\"{CHART_WIDTH}\" height=\"{CHART_HEIGHT}\" alt=\"chart\"><br>\
<span style=\"font-size:11px;color:#555\">min {lo:.2} max {hi:.2} last {:.2} ({} samples since {})</span></p>",
                chart_cid(&a.fingerprint),
                points[points.len() - 1].1,
                points.len(),
                rfc3339(points[0].0)
            ));
        }
        out.push_str("<table style=\"font-size:12px\">");
        for (k, v) in &a.labels {
            out.push_str(&format!(
                "\n<tr><td>{}</td><td>{}</td></tr>",
                xml_escape(k),
                xml_escape(v)
            ));
        }
        out.push_str("</table></div>");
    }
    for x in &env.actions {
        out.push_str(&format!(
            "\n<div><p><b>{}</b></p><table style=\"font-size:12px\">",
            xml_escape(&x.headline())
        ));
        for (k, v) in action_lines(x) {
            out.push_str(&format!("\n<tr><td>{}</td><td>{}</td></tr>", k, xml_escape(&v)));
        }
        out.push_str("</table>");
        for (what, text) in [("diff", &x.diff), ("output", &x.output)] {
            if let Some(t) = text.as_deref().filter(|t| !t.is_empty()) {
                out.push_str(&format!("<p>{what}:</p><pre>{}</pre>", xml_escape(t)));
            }
        }
        out.push_str("</div>");
    }
    out.push_str("</body></html>");
    out
}

/// The message for `env`. Its errors (an address that does not parse) are
/// permanent: the configuration was checked when it was loaded, so only a
/// stale outbox row can meet them.
pub fn message(cfg: &EmailConfig, env: &Envelope) -> Result<Message, DeliveryError> {
    let from: Mailbox = cfg
        .from
        .parse()
        .map_err(|e| DeliveryError::Config(format!("from `{}`: {e}", cfg.from)))?;
    let n = &env.notification;
    let created = std::time::UNIX_EPOCH + std::time::Duration::from_secs_f64(n.created.max(0.0));
    let mut b = Message::builder().from(from).subject(subject(env)).date(created);
    // Ids are stored with the notification, so a retry (even after a
    // restart) sends the same message and later notices of the group's
    // episode thread under its first one.
    b = if n.id.is_empty() {
        b.message_id(None)
    } else {
        b.message_id(Some(message_id(&n.id, &cfg.from)))
    };
    if let Some(root) = &n.thread {
        let root = message_id(root, &cfg.from);
        b = b.in_reply_to(root.clone()).references(root);
    }
    for to in &cfg.to {
        b = b.to(to
            .parse()
            .map_err(|e| DeliveryError::Config(format!("to `{to}`: {e}")))?);
    }
    let mut related = MultiPart::related().singlepart(SinglePart::html(html_body(env)));
    let png = ContentType::parse("image/png").map_err(|e| DeliveryError::Config(e.to_string()))?;
    for a in &n.alerts {
        let points = env.history.get(&a.fingerprint).map(Vec::as_slice).unwrap_or(&[]);
        if points.len() < 2 {
            continue;
        }
        let image =
            png_chart(points, CHART_WIDTH, CHART_HEIGHT).map_err(|e| DeliveryError::Config(format!("chart: {e}")))?;
        related = related.singlepart(Attachment::new_inline(chart_cid(&a.fingerprint)).body(image, png.clone()));
    }
    let body = MultiPart::alternative()
        .singlepart(SinglePart::plain(text_body(env)))
        .multipart(related);
    let mut msg = b.multipart(body).map_err(|e| DeliveryError::Config(e.to_string()))?;
    msg.headers_mut().insert_raw(HeaderValue::new(
        HeaderName::new_from_ascii_str("X-Rigger-Group-Key"),
        env.notification.group_key.clone(),
    ));
    msg.headers_mut().insert_raw(HeaderValue::new(
        HeaderName::new_from_ascii_str("X-Rigger-Status"),
        env.notification.status.clone(),
    ));
    Ok(msg)
}

/// The sender's settings for a receiver's `email:` block: credentials only
/// when both the user name and the password are set.
fn settings(cfg: &EmailConfig) -> SmtpSettings {
    SmtpSettings {
        host: cfg.smarthost.clone(),
        port: cfg.port,
        tls: cfg.tls,
        credentials: cfg.username.clone().zip(cfg.password.clone()),
        insecure_auth: cfg.insecure_auth,
        timeout: cfg.timeout,
    }
}

pub async fn send(cfg: &EmailConfig, env: &Envelope) -> Result<(), DeliveryError> {
    let msg = message(cfg, env)?;
    smtp::send(&settings(cfg), msg).await
}
