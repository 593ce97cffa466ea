//! The mail report: multipart/alternative (plain text + HTML) over SMTP.

use std::time::Duration;

use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use super::config::SmtpConfig;
use crate::error::AppError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tls {
    None,
    StartTls,
    Tls,
}

impl std::str::FromStr for Tls {
    type Err = AppError;
    fn from_str(s: &str) -> Result<Tls, AppError> {
        match s.to_ascii_lowercase().as_str() {
            "none" | "off" | "plain" => Ok(Tls::None),
            "starttls" => Ok(Tls::StartTls),
            "tls" | "smtps" => Ok(Tls::Tls),
            other => Err(AppError::Usage(format!(
                "unknown SMTP tls mode `{other}` (use none, starttls or tls)"
            ))),
        }
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

pub async fn send(smtp: &SmtpConfig, mail: &Mail) -> Result<(), AppError> {
    let host = smtp.host.clone().unwrap_or_else(|| "localhost".into());
    let tls: Tls = smtp.tls.as_deref().unwrap_or("none").parse()?;
    let err = |e: lettre::transport::smtp::Error| AppError::Other(format!("SMTP {host}: {e}"));
    let mut builder = match tls {
        Tls::None => {
            AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host.as_str()).port(smtp.port.unwrap_or(25))
        }
        Tls::StartTls => AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(&host)
            .map_err(err)?
            .port(smtp.port.unwrap_or(587)),
        Tls::Tls => AsyncSmtpTransport::<Tokio1Executor>::relay(&host)
            .map_err(err)?
            .port(smtp.port.unwrap_or(465)),
    };
    if let Some(user) = &smtp.username {
        builder = builder.credentials(Credentials::new(
            user.clone(),
            smtp.password.clone().unwrap_or_default(),
        ));
    }
    let transport = builder.timeout(Some(Duration::from_secs(30))).build();
    let msg = build(mail)?;
    transport.send(msg).await.map_err(err)?;
    Ok(())
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
        assert!("bogus".parse::<Tls>().is_err());
    }
}
