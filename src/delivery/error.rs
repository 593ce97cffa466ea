//! Why a notification was not delivered, and whether that is worth a retry.

use lettre::transport::smtp::Error as SmtpError;

/// A failed delivery. [`DeliveryError::is_retryable`] splits the variants
/// into failures that may pass on a later attempt (the receiver is down,
/// busy or slow) and permanent ones (the receiver refused this message, or
/// the settings cannot work), which a retry would only repeat.
#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    /// The notification or its channel's settings cannot work as they are:
    /// an address that does not parse, a URL rigger cannot post to, a
    /// receiver that is no longer configured. Permanent.
    #[error("{0}")]
    Config(String),
    /// No TLS settings can be made for this server name. Permanent.
    #[error("{source}")]
    TlsSetup {
        host: String,
        port: u16,
        #[source]
        source: SmtpError,
    },
    /// The SMTP exchange failed: a 4xx reply, a lost or refused connection,
    /// a timeout (retryable); a 5xx reply, or a server that lacks what the
    /// settings require (STARTTLS, a usable authentication mechanism)
    /// (permanent).
    #[error("SMTP {host}:{port}: {source}")]
    Smtp {
        host: String,
        port: u16,
        #[source]
        source: SmtpError,
    },
    /// The receiver could not be reached, the exchange broke off or timed
    /// out, or its answer was not HTTP. Retryable.
    #[error("{0}")]
    Transport(String),
    /// The HTTP receiver answered with a status other than 2xx: retryable
    /// for 5xx and 429 (Too Many Requests), permanent otherwise.
    #[error("{url} answered HTTP {code}")]
    HttpStatus { url: String, code: u16 },
}

impl DeliveryError {
    /// Whether a later attempt may succeed where this one failed.
    pub fn is_retryable(&self) -> bool {
        match self {
            DeliveryError::Config(_) | DeliveryError::TlsSetup { .. } => false,
            DeliveryError::Transport(_) => true,
            DeliveryError::Smtp { source, .. } => smtp_is_retryable(source),
            DeliveryError::HttpStatus { code, .. } => http_status_is_retryable(*code),
        }
    }
}

/// A 5xx reply (lettre's "permanent") is the server's final word on this
/// message; a client error means the server lacks what the settings ask for
/// (STARTTLS, an authentication mechanism) or the message cannot be sent as
/// it is. Everything else — 4xx replies, connection, network, TLS handshake
/// and timeout errors, an unreadable reply — may pass later.
fn smtp_is_retryable(e: &SmtpError) -> bool {
    !(e.is_permanent() || e.is_client())
}

/// 5xx and 429 may pass later; any other status (4xx, and the 1xx/3xx this
/// client does not follow) will be the same next time, as Alertmanager's
/// webhook notifier decides.
pub fn http_status_is_retryable(code: u16) -> bool {
    (500..600).contains(&code) || code == 429
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_statuses() {
        for code in [500, 502, 503, 504, 599, 429] {
            assert!(http_status_is_retryable(code), "{code}");
        }
        for code in [400, 401, 403, 404, 408, 410, 413, 422, 301, 302, 101, 600] {
            assert!(!http_status_is_retryable(code), "{code}");
        }
        let e = |code| DeliveryError::HttpStatus {
            url: "http://h/x".into(),
            code,
        };
        assert!(e(503).is_retryable());
        assert!(!e(400).is_retryable());
        assert_eq!(e(400).to_string(), "http://h/x answered HTTP 400");
    }

    #[test]
    fn transport_is_retryable_config_is_not() {
        assert!(DeliveryError::Transport("cannot connect to h:1: refused".into()).is_retryable());
        assert!(!DeliveryError::Config("to `x`: invalid".into()).is_retryable());
    }
}
