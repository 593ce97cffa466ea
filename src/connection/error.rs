//! Why talking to a host failed ([`ConnError`]), and the byte sizes its
//! messages (and the output limits') show ([`human_size`]).

/// Why talking to a host failed. `Unreachable`-class errors are reported apart
/// from task failures (Ansible's UNREACHABLE).
#[derive(Debug, Clone, thiserror::Error)]
pub enum ConnError {
    #[error("cannot connect to {addr}: {reason}")]
    Connect { addr: String, reason: String },
    #[error("connection to {addr} timed out after {secs}s")]
    Timeout { addr: String, secs: u64 },
    #[error("authentication failed for {user}@{addr}: {reason}")]
    Auth { user: String, addr: String, reason: String },
    #[error("{0}")]
    HostKey(String),
    #[error("cannot load private key {path}: {reason}")]
    Key { path: String, reason: String },
    #[error("connection lost: {0}")]
    Dropped(String),
    #[error("privilege escalation failed: {0}")]
    Become(String),
    #[error("{0}")]
    Io(String),
    #[error("command timed out after {0}s")]
    CommandTimeout(u64),
    #[error(
        "the command printed more than {} on {stream} (at least {printed} bytes), the most rigger reads \
         to parse it; raise the limit with --max-output or RIGGER_MAX_OUTPUT",
        human_size(*limit as u64)
    )]
    OutputTooLarge {
        stream: &'static str,
        limit: usize,
        printed: u64,
    },
}

impl ConnError {
    /// A failure to set up a connection that another attempt may not meet
    /// (refused, reset, timed out, dropped during the handshake), as
    /// opposed to one that would fail the same way again (the host key,
    /// authentication, a key file).
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            ConnError::Connect { .. } | ConnError::Timeout { .. } | ConnError::Dropped(_)
        )
    }

    /// The error of the last of `n` connection attempts, saying so.
    pub fn after_attempts(self, n: u32) -> ConnError {
        match self {
            ConnError::Connect { addr, reason } => ConnError::Connect {
                addr,
                reason: format!("{reason} (after {n} attempts)"),
            },
            ConnError::Timeout { addr, secs } => ConnError::Connect {
                addr: addr.clone(),
                reason: format!("timed out after {secs}s (after {n} attempts)"),
            },
            ConnError::Dropped(m) => ConnError::Dropped(format!("{m} (after {n} attempts)")),
            other => other,
        }
    }

    /// True when the host itself could not be used (Ansible's "unreachable"),
    /// as opposed to a command on it going wrong.
    pub fn is_unreachable(&self) -> bool {
        matches!(
            self,
            ConnError::Connect { .. }
                | ConnError::Timeout { .. }
                | ConnError::Auth { .. }
                | ConnError::HostKey(_)
                | ConnError::Key { .. }
                | ConnError::Dropped(_)
        )
    }
}

/// A size for messages: `1048576 bytes (1.0 MiB)`.
pub fn human_size(n: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if n < 1024 {
        return format!("{n} bytes");
    }
    let mut v = n as f64 / 1024.0;
    let mut unit = UNITS[0];
    for u in &UNITS[1..] {
        if v < 1024.0 {
            break;
        }
        v /= 1024.0;
        unit = u;
    }
    format!("{n} bytes ({v:.1} {unit})")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_setup_failures_another_attempt_may_pass_are_transient() {
        let refused = ConnError::Connect {
            addr: "a:22".into(),
            reason: "connection refused".into(),
        };
        assert!(refused.is_transient());
        assert!(ConnError::Timeout {
            addr: "a:22".into(),
            secs: 3
        }
        .is_transient());
        assert!(ConnError::Dropped("reset".into()).is_transient());
        assert!(!ConnError::HostKey("mismatch".into()).is_transient());
        let auth = ConnError::Auth {
            user: "u".into(),
            addr: "a:22".into(),
            reason: "denied".into(),
        };
        assert!(!auth.is_transient());
        let last = refused.after_attempts(3).to_string();
        assert!(last.ends_with("connection refused (after 3 attempts)"), "{last}");
    }
}
