//! The mail report: multipart/alternative (plain text + HTML), sent with the
//! shared SMTP sender ([`crate::delivery::smtp`]).

use std::time::Duration;

use lettre::message::{Mailbox, MultiPart};
use lettre::Message;

use super::config::SmtpConfig;
use crate::delivery::smtp::{self, SmtpSettings, Tls};
use crate::delivery::DeliveryError;
use crate::error::AppError;

/// `tls` as `rigger check` spells it (`--smtp-tls`, `[check.smtp] tls`):
/// any case, with the aliases `off`/`plain` and `smtps`.
pub fn parse_tls(s: &str) -> Result<Tls, AppError> {
    match s.to_ascii_lowercase().as_str() {
        "none" | "off" | "plain" => Ok(Tls::None),
        "starttls" => Ok(Tls::StartTls),
        "tls" | "smtps" => Ok(Tls::Tls),
        other => Err(AppError::Usage(format!(
            "unknown SMTP tls mode `{other}` (use none, starttls or tls)"
        ))),
    }
}

pub struct Mail {
    pub from: String,
    pub to: Vec<String>,
    pub subject: String,
    pub plain: String,
    pub html: String,
}

fn mailbox(s: &str, what: &str) -> Result<Mailbox, AppError> {
    s.parse()
        .map_err(|e| AppError::Usage(format!("{what} `{s}` is not a valid mail address: {e}")))
}

/// Build the message (separate from sending, so it can be checked without a server).
pub fn build(mail: &Mail) -> Result<Message, AppError> {
    let mut b = Message::builder()
        .from(mailbox(&mail.from, "--mail-from")?)
        .subject(mail.subject.clone())
        .header(lettre::message::header::UserAgent::from(format!(
            "rigger/{}",
            env!("CARGO_PKG_VERSION")
        )));
    for to in &mail.to {
        b = b.to(mailbox(to, "--mail-to")?);
    }
    b.multipart(MultiPart::alternative_plain_html(mail.plain.clone(), mail.html.clone()))
        .map_err(|e| AppError::Other(format!("cannot build the mail report: {e}")))
}

/// The sender's settings for check's SMTP configuration: `localhost`, the
/// TLS mode's usual port, a user name with an empty password when only the
/// name is given, 30 s.
pub fn settings(smtp: &SmtpConfig) -> Result<SmtpSettings, AppError> {
    let tls = parse_tls(smtp.tls.as_deref().unwrap_or("none"))?;
    let s = SmtpSettings {
        host: smtp.host.clone().unwrap_or_else(|| "localhost".into()),
        port: smtp.port.unwrap_or(tls.default_port()),
        tls,
        credentials: smtp
            .username
            .as_ref()
            .map(|user| (user.clone(), smtp.password.clone().unwrap_or_default())),
        insecure_auth: smtp.insecure_auth.unwrap_or(false),
        timeout: Duration::from_secs(30),
    };
    smtp::plaintext_auth_allowed(&s).map_err(|e| AppError::Usage(e.to_string()))?;
    Ok(s)
}

/// A failed delivery in check's words: the host only (the port and the TLS
/// mode are the user's own settings).
fn describe(e: &DeliveryError) -> String {
    match e {
        DeliveryError::Smtp { host, source, .. } | DeliveryError::TlsSetup { host, source, .. } => {
            format!("SMTP {host}: {source}")
        }
        other => other.to_string(),
    }
}

/// Why the report was not delivered, after how many attempts.
#[derive(Debug)]
pub struct Undelivered {
    pub attempts: u32,
    pub error: String,
}

/// Send the report; a failure that may pass later (the server is down,
/// busy, or answered 4xx) is retried `[check.smtp] retries` times (default
/// 3), `retry_delay` seconds apart (default 10, doubled each time). `note`
/// hears of each failed attempt. Returns the number of attempts made.
pub async fn send(smtp: &SmtpConfig, mail: &Mail, note: &dyn Fn(&str)) -> Result<u32, Undelivered> {
    let fail = |attempts, error| Undelivered { attempts, error };
    let settings = settings(smtp).map_err(|e| fail(0, e.to_string()))?;
    let msg = build(mail).map_err(|e| fail(0, e.to_string()))?;
    let retries = smtp.retries.unwrap_or(3);
    let mut delay = Duration::from_secs(smtp.retry_delay.unwrap_or(10));
    let mut attempt = 0;
    loop {
        attempt += 1;
        match smtp::send(&settings, msg.clone()).await {
            Ok(()) => return Ok(attempt),
            Err(e) if e.is_retryable() && attempt <= retries => {
                note(&format!(
                    "mail attempt {attempt} of {} failed: {}; retrying in {} s",
                    retries + 1,
                    describe(&e),
                    delay.as_secs()
                ));
                tokio::time::sleep(delay).await;
                delay *= 2;
            }
            Err(e) => {
                let why = if e.is_retryable() {
                    "giving up"
                } else {
                    "permanent failure, not retried"
                };
                return Err(fail(
                    attempt,
                    format!("{} ({why} after {attempt} attempt(s))", describe(&e)),
                ));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_multipart_alternative() {
        let m = build(&Mail {
            from: "rigger@example.com".into(),
            to: vec!["ops@example.com".into(), "b@example.com".into()],
            subject: "rigger check: 1 drifted of 2 hosts".into(),
            plain: "host1: DRIFTED".into(),
            html: "<p>host1</p>".into(),
        })
        .unwrap();
        let raw = String::from_utf8(m.formatted()).unwrap();
        assert!(raw.contains("multipart/alternative"), "{raw}");
        assert!(raw.contains("text/plain") && raw.contains("text/html"), "{raw}");
        assert!(build(&Mail {
            from: "not an address".into(),
            to: vec![],
            subject: String::new(),
            plain: String::new(),
            html: String::new(),
        })
        .is_err());
        assert!(parse_tls("bogus").is_err());
    }

    #[test]
    fn settings_from_check_config() {
        let s = settings(&SmtpConfig {
            tls: Some("SMTPS".into()),
            username: Some("u".into()),
            ..Default::default()
        })
        .unwrap();
        assert_eq!((s.host.as_str(), s.port, s.tls), ("localhost", 465, Tls::Tls));
        assert_eq!(s.credentials, Some(("u".into(), String::new())));
        let s = settings(&SmtpConfig {
            port: Some(2525),
            tls: Some("starttls".into()),
            ..Default::default()
        })
        .unwrap();
        assert_eq!((s.port, s.tls, s.credentials), (2525, Tls::StartTls, None));
        assert_eq!(parse_tls("Off").unwrap(), Tls::None);
        // A password without TLS only when asked for.
        let plain = SmtpConfig {
            username: Some("u".into()),
            password: Some("p".into()),
            ..Default::default()
        };
        let e = settings(&plain).unwrap_err().to_string();
        assert!(e.contains("refusing to send the password without TLS"), "{e}");
        let s = settings(&SmtpConfig {
            insecure_auth: Some(true),
            ..plain
        })
        .unwrap();
        assert!(s.insecure_auth);
    }
}
