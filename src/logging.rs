//! Debug output through `tracing`, on stderr.
//!
//! User-facing output (results, warnings, errors) goes through the renderer
//! and [`crate::stdio`]; this is the developer's view of what rigger does:
//! connections opened, commands run, uploads. Off unless asked for:
//!
//! - `-vvv`: debug events of rigger's own code (Ansible shows connection
//!   details at this level); `-vvvv`: trace events too (whole commands,
//!   not their first 160 characters). `-v` and `-vv` only change the
//!   renderer's output; at `-vvv` the renderer also shows each command and
//!   upload as Ansible's `<host> EXEC` / `<host> PUT` lines (on stdout,
//!   masked the same way).
//! - `RIGGER_LOG`: a filter in tracing-subscriber's `EnvFilter` syntax, which
//!   replaces the one the flags give: `RIGGER_LOG=rigger::connection=debug`,
//!   `RIGGER_LOG=debug` (dependencies too), `RIGGER_LOG=rigger=trace`.
//!
//! Events that show a command show it as the `RIGGER_DEBUG_ROUNDTRIPS` trace
//! does ([`crate::connection::trace_text`]): hidden for a `no_log` task, the
//! run's secrets masked otherwise.

use std::io::Write;

use tracing_subscriber::EnvFilter;

/// The environment variable holding the filter.
pub const ENV: &str = "RIGGER_LOG";

/// The filter the verbosity flags give.
pub fn directives_for(verbosity: u8) -> &'static str {
    match verbosity {
        0..=2 => "rigger=warn",
        3 => "rigger=debug",
        _ => "rigger=trace",
    }
}

/// The filter to use: `RIGGER_LOG` when set and not empty, else the flags'.
/// A filter that does not parse is a warning, and the flags' is used.
fn filter(verbosity: u8, env: Option<&str>) -> (EnvFilter, Option<String>) {
    let flags = || EnvFilter::new(directives_for(verbosity));
    match env.map(str::trim).filter(|s| !s.is_empty()) {
        None => (flags(), None),
        Some(dirs) => match EnvFilter::try_new(dirs) {
            Ok(f) => (f, None),
            Err(e) => (
                flags(),
                Some(format!("{ENV}={dirs:?} is not a valid filter ({e}); ignored")),
            ),
        },
    }
}

/// Install the global subscriber. Call once, before anything logs.
pub fn init(verbosity: u8) {
    let env = std::env::var(ENV).ok();
    // Nothing asked for debug output: no subscriber at all (rigger emits no
    // event above debug), so a run carries none of the filter's machinery.
    if verbosity < 3 && env.as_deref().is_none_or(|e| e.trim().is_empty()) {
        return;
    }
    let (filter, warning) = filter(verbosity, env.as_deref());
    let installed = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(|| Stderr)
        .with_ansi(false)
        .try_init()
        .is_ok();
    if let (true, Some(w)) = (installed, warning) {
        crate::stdio::warn(&w);
    }
}

/// Whether any debug (or trace) event may be written: the progress line
/// stays off then, as the events would cut it up.
pub fn debug_output_on() -> bool {
    tracing::level_filters::LevelFilter::current() >= tracing::level_filters::LevelFilter::DEBUG
}

/// stderr with [`crate::stdio`]'s rule for a closed pipe.
struct Stderr;

impl Write for Stderr {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        // The formatter writes one event at a time: a secret of the run (a
        // script holding a vault value, at -vvvv) is masked whole.
        let secrets = crate::output::redact::run_secrets();
        let masked;
        let out = if secrets.is_empty() {
            buf
        } else {
            let text = String::from_utf8_lossy(buf);
            masked = secrets.redact_str(&text).into_owned();
            masked.as_bytes()
        };
        // Around the progress line, should one be shown (RIGGER_LOG with a
        // filter that lets no debug event through keeps it on).
        match crate::stdio::around_progress(|| std::io::stderr().lock().write_all(out)) {
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => crate::stdio::die_of_sigpipe(),
            // Nowhere left to report any other error.
            _ => Ok(buf.len()),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use tracing::level_filters::LevelFilter;

    use super::*;

    fn max(verbosity: u8, env: Option<&str>) -> Option<LevelFilter> {
        filter(verbosity, env).0.max_level_hint()
    }

    #[test]
    fn flags_and_environment() {
        // -v and -vv are the renderer's; -vvv is debug, -vvvv trace.
        assert_eq!(max(0, None), Some(LevelFilter::WARN));
        assert_eq!(max(2, None), Some(LevelFilter::WARN));
        assert_eq!(max(3, None), Some(LevelFilter::DEBUG));
        assert_eq!(max(4, None), Some(LevelFilter::TRACE));
        // RIGGER_LOG replaces the flags' filter; empty is unset.
        assert_eq!(max(0, Some("rigger::connection=debug")), Some(LevelFilter::DEBUG));
        assert_eq!(max(4, Some("rigger=info")), Some(LevelFilter::INFO));
        assert_eq!(max(3, Some("  ")), Some(LevelFilter::DEBUG));
        // A broken filter: the flags' level and a warning.
        let (f, w) = filter(3, Some("rigger=loud"));
        assert_eq!(f.max_level_hint(), Some(LevelFilter::DEBUG));
        assert!(w.is_some_and(|w| w.contains("RIGGER_LOG=\"rigger=loud\"")));
    }
}
