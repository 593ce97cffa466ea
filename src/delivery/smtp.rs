//! The one SMTP sender (lettre over tokio). Callers build the message and
//! turn their own configuration into [`SmtpSettings`]; this module only
//! connects, secures, authenticates and sends.

use std::time::Duration;

use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls as LettreTls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use super::DeliveryError;

/// How the connection to the SMTP server is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tls {
    /// Plain SMTP.
    None,
    /// Plain SMTP upgraded with STARTTLS, which the server must offer.
    StartTls,
    /// TLS from the first byte (SMTPS).
    Tls,
}

impl Tls {
    /// The usual port for this mode: 25, 587 (submission), 465 (submissions).
    pub fn default_port(self) -> u16 {
        match self {
            Tls::None => 25,
            Tls::StartTls => 587,
            Tls::Tls => 465,
        }
    }
}

/// Where and how to send.
#[derive(Debug, Clone)]
pub struct SmtpSettings {
    pub host: String,
    pub port: u16,
    pub tls: Tls,
    /// User name and password for SMTP AUTH.
    pub credentials: Option<(String, String)>,
    /// Send the credentials without TLS (`tls: none`); refused unless set.
    pub insecure_auth: bool,
    /// For connecting. lettre's async transport bounds only the connection,
    /// not the replies: a server that accepts and then says nothing holds
    /// the sender until it closes the connection.
    pub timeout: Duration,
}

/// A password is not sent over a connection without TLS unless the
/// settings say so (`insecure_auth`): anyone on the path would read it.
pub fn plaintext_auth_allowed(s: &SmtpSettings) -> Result<(), DeliveryError> {
    if s.credentials.is_some() && s.tls == Tls::None && !s.insecure_auth {
        return Err(DeliveryError::Config(format!(
            "SMTP {}:{}: refusing to send the password without TLS; use tls: starttls or tls, or set \
             insecure_auth to send it in the clear (e.g. to a relay on this machine)",
            s.host, s.port
        )));
    }
    Ok(())
}

/// Send `msg`. Errors say whether a retry can help
/// ([`DeliveryError::is_retryable`]).
pub async fn send(s: &SmtpSettings, msg: Message) -> Result<(), DeliveryError> {
    plaintext_auth_allowed(s)?;
    let params = || {
        TlsParameters::new(s.host.clone()).map_err(|source| DeliveryError::TlsSetup {
            host: s.host.clone(),
            port: s.port,
            source,
        })
    };
    let tls = match s.tls {
        Tls::None => LettreTls::None,
        Tls::StartTls => LettreTls::Required(params()?),
        Tls::Tls => LettreTls::Wrapper(params()?),
    };
    let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(s.host.as_str())
        .port(s.port)
        .tls(tls)
        .timeout(Some(s.timeout));
    if let Some((user, password)) = &s.credentials {
        builder = builder.credentials(Credentials::new(user.clone(), password.clone()));
    }
    tracing::debug!(host = s.host.as_str(), port = s.port, tls = ?s.tls, "sending mail");
    let res = builder
        .build()
        .send(msg)
        .await
        .map(|_| ())
        .map_err(|source| DeliveryError::Smtp {
            host: s.host.clone(),
            port: s.port,
            source,
        });
    if let Err(e) = &res {
        tracing::debug!(retryable = e.is_retryable(), error = %e, "mail not sent");
    }
    res
}

#[cfg(test)]
mod tests {
    use std::io::{BufRead, BufReader, Write};
    use std::net::{TcpListener, TcpStream};

    use super::*;

    /// A scripted SMTP server on loopback for one session: `greeting` first,
    /// then the reply for each command by its verb (`EHLO`, `MAIL`, `RCPT`,
    /// `DATA`; the message itself is taken with 250). `None` as greeting:
    /// accept and hang up at once.
    fn server(greeting: Option<&'static str>, replies: &'static [(&'static str, &'static str)]) -> u16 {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        std::thread::spawn(move || {
            let Ok((s, _)) = l.accept() else { return };
            let _ = session(s, greeting, replies);
        });
        port
    }

    fn session(s: TcpStream, greeting: Option<&str>, replies: &[(&str, &str)]) -> std::io::Result<()> {
        let mut w = s.try_clone()?;
        let Some(greeting) = greeting else {
            return Ok(());
        };
        w.write_all(format!("{greeting}\r\n").as_bytes())?;
        let mut r = BufReader::new(s);
        let mut in_data = false;
        loop {
            let mut line = String::new();
            if r.read_line(&mut line)? == 0 {
                return Ok(());
            }
            if in_data {
                if line == ".\r\n" {
                    in_data = false;
                    w.write_all(b"250 queued\r\n")?;
                }
                continue;
            }
            let verb = line.split_whitespace().next().unwrap_or("").to_ascii_uppercase();
            let reply = replies
                .iter()
                .find(|(v, _)| *v == verb)
                .map(|(_, r)| *r)
                .unwrap_or(match verb.as_str() {
                    "EHLO" => "250 localhost",
                    "QUIT" => "221 bye",
                    "DATA" => "354 go ahead",
                    _ => "250 OK",
                });
            w.write_all(format!("{reply}\r\n").as_bytes())?;
            if verb == "DATA" && reply.starts_with("354") {
                in_data = true;
            }
            if verb == "QUIT" {
                return Ok(());
            }
        }
    }

    fn settings(port: u16, tls: Tls) -> SmtpSettings {
        SmtpSettings {
            host: "127.0.0.1".into(),
            port,
            tls,
            credentials: None,
            insecure_auth: false,
            timeout: Duration::from_secs(5),
        }
    }

    fn msg() -> Message {
        Message::builder()
            .from("rigger@example.com".parse().unwrap())
            .to("ops@example.com".parse().unwrap())
            .subject("s")
            .body(String::from("b"))
            .unwrap()
    }

    async fn outcome(s: SmtpSettings) -> Result<(), DeliveryError> {
        send(&s, msg()).await
    }

    #[tokio::test]
    async fn a_willing_server_takes_the_message() {
        let port = server(Some("220 hi"), &[]);
        outcome(settings(port, Tls::None)).await.unwrap();
    }

    #[tokio::test]
    async fn replies_4xx_and_connection_errors_are_retryable() {
        let busy = server(Some("421 too busy, come back later"), &[]);
        let e = outcome(settings(busy, Tls::None)).await.unwrap_err();
        assert!(e.is_retryable(), "{e}");
        assert!(e.to_string().starts_with(&format!("SMTP 127.0.0.1:{busy}: ")), "{e}");

        let full = server(Some("220 hi"), &[("RCPT", "452 mailbox full")]);
        let e = outcome(settings(full, Tls::None)).await.unwrap_err();
        assert!(e.is_retryable(), "{e}");

        // Nothing listens there any more.
        let closed = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let e = outcome(settings(closed, Tls::None)).await.unwrap_err();
        assert!(e.is_retryable(), "{e}");

        // Accepts, then hangs up before the greeting.
        let rude = server(None, &[]);
        let e = outcome(settings(rude, Tls::None)).await.unwrap_err();
        assert!(e.is_retryable(), "{e}");
    }

    #[tokio::test]
    async fn replies_5xx_and_unmet_requirements_are_permanent() {
        let refused = server(Some("220 hi"), &[("RCPT", "550 no such user")]);
        let e = outcome(settings(refused, Tls::None)).await.unwrap_err();
        assert!(!e.is_retryable(), "{e}");
        assert!(e.to_string().contains("550"), "{e}");

        let rejected = server(Some("554 go away"), &[]);
        let e = outcome(settings(rejected, Tls::None)).await.unwrap_err();
        assert!(!e.is_retryable(), "{e}");

        // STARTTLS required, the server does not offer it.
        let plain = server(Some("220 hi"), &[]);
        let e = outcome(settings(plain, Tls::StartTls)).await.unwrap_err();
        assert!(!e.is_retryable(), "{e}");
    }

    #[test]
    fn default_ports() {
        assert_eq!(
            [Tls::None, Tls::StartTls, Tls::Tls].map(Tls::default_port),
            [25, 587, 465]
        );
    }
}
