//! Email notifier (lettre over SMTP): plain text plus HTML with a small
//! inline SVG chart of each alert's recent history.

use lettre::message::header::{HeaderName, HeaderValue};
use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls as LTls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use super::envelope::{rfc3339, status_of, svg_chart, Envelope};
use crate::watch::config::{EmailConfig, Tls};

pub fn subject(env: &Envelope) -> String {
    let n = &env.notification;
    let firing = n.alerts.iter().filter(|a| status_of(a) == "firing").count();
    let count = if firing > 0 { firing } else { n.alerts.len() };
    let labels: Vec<String> = n.group_labels.values().cloned().collect();
    format!("[{}:{count}] {}", n.status.to_uppercase(), labels.join(" "))
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
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
        html_escape(&subject(env))
    );
    for a in &n.alerts {
        let color = if status_of(a) == "firing" { "#c00" } else { "#080" };
        out.push_str(&format!(
            "\n<div style=\"margin-bottom:16px\"><p><b style=\"color:{color}\">{}</b> {}</p>",
            status_of(a).to_uppercase(),
            html_escape(&a.annotations.get("summary").cloned().unwrap_or_default())
        ));
        if let Some(d) = a.annotations.get("description").filter(|d| !d.is_empty()) {
            out.push_str(&format!("<p>{}</p>", html_escape(d)));
        }
        let points = env.history.get(&a.fingerprint).map(Vec::as_slice).unwrap_or(&[]);
        out.push_str(&svg_chart(points, 360, 90));
        out.push_str("<table style=\"font-size:12px\">");
        for (k, v) in &a.labels {
            out.push_str(&format!(
                "\n<tr><td>{}</td><td>{}</td></tr>",
                html_escape(k),
                html_escape(v)
            ));
        }
        out.push_str("</table></div>");
    }
    out.push_str("</body></html>");
    out
}

pub fn message(cfg: &EmailConfig, env: &Envelope) -> Result<Message, String> {
    let from: Mailbox = cfg.from.parse().map_err(|e| format!("from `{}`: {e}", cfg.from))?;
    let mut b = Message::builder().from(from).subject(subject(env));
    for to in &cfg.to {
        b = b.to(to.parse().map_err(|e| format!("to `{to}`: {e}"))?);
    }
    let mut msg = b
        .multipart(MultiPart::alternative_plain_html(text_body(env), html_body(env)))
        .map_err(|e| e.to_string())?;
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

pub async fn send(cfg: &EmailConfig, env: &Envelope) -> Result<(), String> {
    let msg = message(cfg, env)?;
    let params = || TlsParameters::new(cfg.smarthost.clone()).map_err(|e| e.to_string());
    let tls = match cfg.tls {
        Tls::None => LTls::None,
        Tls::StartTls => LTls::Required(params()?),
        Tls::Tls => LTls::Wrapper(params()?),
    };
    let mut t = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(cfg.smarthost.clone())
        .port(cfg.port)
        .tls(tls)
        .timeout(Some(cfg.timeout));
    if let (Some(u), Some(p)) = (&cfg.username, &cfg.password) {
        t = t.credentials(Credentials::new(u.clone(), p.clone()));
    }
    t.build()
        .send(msg)
        .await
        .map(|_| ())
        .map_err(|e| format!("SMTP {}:{}: {e}", cfg.smarthost, cfg.port))
}
