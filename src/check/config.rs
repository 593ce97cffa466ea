//! `rigger.toml`, the settings of `rigger check` that do not belong on a
//! cron command line (SMTP credentials):
//!
//! ```toml
//! [check]
//! environment = "production"   # names the checked inventory in mail subjects
//! mail_to = ["ops@example.com"]
//! mail_from = "rigger@example.com"
//!
//! [check.smtp]
//! host = "smtp.example.com"
//! port = 587
//! tls = "starttls"        # none | starttls | tls
//! username = "rigger"
//! password = "secret"
//! insecure_auth = false   # true: send the password even with tls = "none"
//! retries = 3             # further attempts after a failure a retry can help
//! retry_delay = 10        # seconds before the first retry, doubled for each next one
//! ```

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::error::{AppError, LocError};
use crate::loc::Loc;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub check: CheckConfig,
    /// The run's settings ([`crate::settings`] reads and checks them).
    #[serde(default)]
    pub defaults: Option<serde::de::IgnoredAny>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckConfig {
    /// A name for what the inventory describes ("production"): the mail
    /// subject names it instead of the inventory path.
    pub environment: Option<String>,
    #[serde(default)]
    pub mail_to: Vec<String>,
    pub mail_from: Option<String>,
    #[serde(default)]
    pub smtp: SmtpConfig,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmtpConfig {
    pub host: Option<String>,
    pub port: Option<u16>,
    pub tls: Option<String>,
    pub username: Option<String>,
    pub password: Option<String>,
    /// Send the password without TLS (`tls = "none"`); refused otherwise.
    pub insecure_auth: Option<bool>,
    /// Further attempts after a delivery failure that may pass later
    /// ([`crate::delivery::DeliveryError::is_retryable`]); default 3.
    pub retries: Option<u32>,
    /// Seconds before the first retry, doubled for each next one; default 10.
    pub retry_delay: Option<u64>,
}

/// The file to read: `--config`, else `./rigger.toml`, else `$XDG_CONFIG_HOME/rigger/rigger.toml`
/// (`~/.config/...`); `None` when there is none.
pub fn locate(explicit: Option<&Path>) -> Option<PathBuf> {
    if let Some(p) = explicit {
        return Some(p.to_path_buf());
    }
    let local = PathBuf::from("rigger.toml");
    if local.is_file() {
        return Some(local);
    }
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))?;
    let p = base.join("rigger").join("rigger.toml");
    p.is_file().then_some(p)
}

pub fn load(explicit: Option<&Path>) -> Result<Config, AppError> {
    let Some(path) = locate(explicit) else {
        return Ok(Config::default());
    };
    let text = std::fs::read_to_string(&path)
        .map_err(|e| AppError::Usage(format!("cannot read the config file {}: {e}", path.display())))?;
    parse(&text, &path.display().to_string())
}

pub fn parse(text: &str, file: &str) -> Result<Config, AppError> {
    toml::from_str(text).map_err(|e| {
        let (line, col) = e.span().map(|s| line_col(text, s.start)).unwrap_or((0, 0));
        LocError::new(Loc::new(file, line, col), e.message().to_string()).into()
    })
}

fn line_col(text: &str, offset: usize) -> (u32, u32) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() as u32 + 1;
    let col = before.rsplit('\n').next().map(|l| l.chars().count()).unwrap_or(0) as u32 + 1;
    (line, col)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_smtp_and_points_at_unknown_keys() {
        let c = parse(
            "[check]\nmail_to = [\"a@b\"]\n[check.smtp]\nhost = \"127.0.0.1\"\nport = 2525\ntls = \"none\"\n",
            "rigger.toml",
        )
        .unwrap();
        assert_eq!(c.check.smtp.port, Some(2525));
        assert_eq!(c.check.mail_to, ["a@b"]);
        let e = parse("[check.smtp]\nhost = \"x\"\nhots = 1\n", "rigger.toml").unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains("rigger.toml:3:1"), "{msg}");
        assert!(msg.contains("hots"), "{msg}");
    }
}
