//! The watch log (standard output), shared by the controller and the
//! action runner.

/// A line of the watch log: vault values (and what was computed from
/// them) are masked, as in every other output of a run.
pub fn log(msg: impl AsRef<str>) {
    stdoutln!(
        "watch: {}",
        crate::output::redact::run_secrets().redact_str(msg.as_ref())
    );
}
