//! Delivery of notifications, shared by `rigger check` (the mailed report)
//! and `rigger watch` (alert emails and webhooks).
//!
//! - [`smtp`]: the one SMTP sender: settings (host, port, [`smtp::Tls`],
//!   credentials, timeout) and `send` for a built message. Each caller keeps
//!   its own configuration syntax and builds its own message.
//! - [`DeliveryError`]: why a delivery failed and whether trying again can
//!   help (as Alertmanager's notifiers answer with `retry bool`): watch's
//!   outbox retries the retryable ones and drops the permanent ones.
//!
//! This layer knows nothing of checks or alerts; it sits below both.

mod error;
pub mod smtp;

pub use error::{http_status_is_retryable, DeliveryError};
