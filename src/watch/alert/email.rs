//! Email notifier: plain text plus HTML with a small inline SVG chart of
//! each alert's recent history, sent with the shared SMTP sender
//! ([`crate::delivery::smtp`]).

use lettre::message::header::{HeaderName, HeaderValue};
use lettre::message::{Mailbox, MultiPart};
use lettre::Message;

use super::envelope::{rfc3339, status_of, svg_chart, Envelope};
use crate::delivery::smtp::{self, SmtpSettings};
use crate::delivery::DeliveryError;
use crate::text::xml_escape;
use crate::watch::config::EmailConfig;

pub fn subject(env: &Envelope) -> String {
    let n = &env.notification;
    let firing = n.alerts.iter().filter(|a| status_of(a) == "firing").count();
    let count = if firing > 0 { firing } else { n.alerts.len() };
    let labels: Vec<String> = n.group_labels.values().cloned().collect();
    format!("[{}:{count}] {}", n.status.to_uppercase(), labels.join(" "))
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
        out.push_str(&svg_chart(points, 360, 90));
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
    let mut b = Message::builder().from(from).subject(subject(env));
    for to in &cfg.to {
        b = b.to(to
            .parse()
            .map_err(|e| DeliveryError::Config(format!("to `{to}`: {e}")))?);
    }
    let mut msg = b
        .multipart(MultiPart::alternative_plain_html(text_body(env), html_body(env)))
        .map_err(|e| DeliveryError::Config(e.to_string()))?;
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
        timeout: cfg.timeout,
    }
}

pub async fn send(cfg: &EmailConfig, env: &Envelope) -> Result<(), DeliveryError> {
    let msg = message(cfg, env)?;
    smtp::send(&settings(cfg), msg).await
}
