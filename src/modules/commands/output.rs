//! What the command modules return: their output shaped as Ansible's
//! (`stdout`, `stdout_lines`, `rc`, timestamps), within `--max-output`.

use crate::connection::output::human_size;
use crate::modules::{ModuleOutcome, ReturnDoc};
use serde_json::Value;
use std::time::Instant;

pub(super) const COMMON_RETURNS: &[ReturnDoc] = &[
    ReturnDoc {
        name: "rc",
        description: "exit status of the command",
    },
    ReturnDoc {
        name: "stdout",
        description: "standard output, trailing newline removed",
    },
    ReturnDoc {
        name: "stderr",
        description: "standard error, trailing newline removed",
    },
    ReturnDoc {
        name: "stdout_lines",
        description: "stdout split into lines",
    },
    ReturnDoc {
        name: "stderr_lines",
        description: "stderr split into lines",
    },
    ReturnDoc {
        name: "stdout_truncated",
        description: "true when stdout was longer than --max-output (RIGGER_MAX_OUTPUT, default 16M) and only its \
start was kept (also stderr_truncated); a warning is printed",
    },
    ReturnDoc {
        name: "stdout_dropped_bytes",
        description:
            "with stdout_truncated: how many bytes of stdout were read and dropped (also stderr_dropped_bytes)",
    },
    ReturnDoc {
        name: "cmd",
        description: "the command that ran",
    },
    ReturnDoc {
        name: "start",
        description: "start time",
    },
    ReturnDoc {
        name: "end",
        description: "end time",
    },
    ReturnDoc {
        name: "delta",
        description: "duration",
    },
];

/// Now, as the command module's `start`/`end`: Python's `str(datetime)`,
/// `2026-12-07 01:23:45.123456` (UTC: the controller's clock).
pub(super) fn timestamp() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let date_time = crate::calendar::utc_datetime(now.as_secs() as i64).replacen('T', " ", 1);
    format!("{date_time}.{:06}", now.subsec_micros())
}

/// A duration as the command module's `delta`: Python's `str(timedelta)`,
/// `0:00:03.004512` (`N day(s), ` before the hours; no fraction when it is 0).
pub(super) fn py_timedelta(d: std::time::Duration) -> String {
    let secs = d.as_secs();
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let mut s = match days {
        0 => String::new(),
        1 => "1 day, ".to_string(),
        n => format!("{n} days, "),
    };
    s.push_str(&format!("{}:{:02}:{:02}", rem / 3600, rem / 60 % 60, rem % 60));
    if d.subsec_micros() != 0 {
        s.push_str(&format!(".{:06}", d.subsec_micros()));
    }
    s
}

pub(super) fn shape_output(
    display: &str,
    out: crate::connection::ExecOutput,
    strip: bool,
    max_output: usize,
    start: Instant,
    start_ts: String,
) -> ModuleOutcome {
    let failed = out.status != 0;
    let elapsed = start.elapsed();
    let base = ModuleOutcome::changed(true).with("rc", out.status).with("cmd", display);
    let mut o = with_output(base, out, strip, max_output)
        .with("start", start_ts)
        .with("end", timestamp())
        .with("delta", py_timedelta(elapsed));
    if failed {
        o.failed = true;
        o.msg = Some("non-zero return code".into());
    }
    o
}

/// `stdout_lines` holds at most one line per this many bytes of the output
/// limit (2 Mi lines for 16 MiB): each line costs memory beyond its text (a
/// string value of about 100 bytes), so a flood of empty lines kept within
/// the limit cannot grow into gigabytes of list. Output whose lines average
/// 8 bytes or more is never cut by this.
const LIMIT_BYTES_PER_LINE: usize = 8;

/// A user command's output in its result, as Ansible returns it: `rc`,
/// `stdout`, `stderr`, `stdout_lines`, `stderr_lines` (`strip`: without
/// trailing newlines). When the output limit (`max_output`, see
/// [`crate::connection::OutputLimit::Keep`]) dropped part of a stream, its
/// result says so (`stdout_truncated: true`, `stdout_dropped_bytes`) and a
/// warning is added, which the run prints: the output is never cut silently.
/// `stdout_lines` is always `stdout` split into lines.
pub(crate) fn with_output(
    o: ModuleOutcome,
    out: crate::connection::ExecOutput,
    strip: bool,
    max_output: usize,
) -> ModuleOutcome {
    let max_lines = (max_output / LIMIT_BYTES_PER_LINE).max(1);
    let mut o = o.with("rc", out.status);
    let mut streams = Vec::new();
    for (name, bytes, dropped) in [
        ("stdout", out.stdout, out.stdout_dropped),
        ("stderr", out.stderr, out.stderr_dropped),
    ] {
        let mut text = String::from_utf8(bytes).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned());
        let mut dropped = dropped;
        if let Some((nl, _)) = text.match_indices('\n').nth(max_lines - 1) {
            if nl + 1 < text.len() {
                dropped += (text.len() - nl - 1) as u64;
                text.truncate(nl + 1);
            }
        }
        let kept = text.len();
        if strip {
            while text.ends_with('\n') || text.ends_with('\r') {
                text.pop();
            }
        }
        let lines: Vec<Value> = text.lines().map(|l| Value::String(l.to_string())).collect();
        streams.push((name, text, lines, kept, dropped));
    }
    // Ansible's order of the keys.
    for (name, _, lines, _, _) in &mut streams {
        o = o.with(&format!("{name}_lines"), std::mem::take(lines));
    }
    let mut warnings = Vec::new();
    for (name, text, _, kept, dropped) in streams {
        o = o.with(name, text);
        if dropped > 0 {
            o = o
                .with(&format!("{name}_truncated"), true)
                .with(&format!("{name}_dropped_bytes"), dropped);
            warnings.push(Value::String(format!(
                "{name} was cut to its first {} bytes; {dropped} more bytes were read and dropped (the limit \
                 per stream is {} and {max_lines} lines: --max-output or RIGGER_MAX_OUTPUT)",
                kept,
                human_size(max_output as u64),
            )));
        }
    }
    if !warnings.is_empty() {
        o = o.with("warnings", warnings);
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn times_are_shaped_as_pythons_datetime_and_timedelta() {
        use std::time::Duration;
        assert_eq!(py_timedelta(Duration::from_micros(3_004_512)), "0:00:03.004512");
        assert_eq!(py_timedelta(Duration::from_secs(3)), "0:00:03");
        assert_eq!(py_timedelta(Duration::from_secs(86_400 + 3_723)), "1 day, 1:02:03");
        assert_eq!(py_timedelta(Duration::from_secs(2 * 86_400)), "2 days, 0:00:00");
        let ts = timestamp();
        let shape = |c: char| if c.is_ascii_digit() { '9' } else { c };
        assert_eq!(
            ts.chars().map(shape).collect::<String>(),
            "9999-99-99 99:99:99.999999",
            "{ts}"
        );
    }

    /// Each line of `stdout_lines` costs memory beyond its text: a flood of
    /// short lines within the byte limit is cut by lines, and `stdout_lines`
    /// is still `stdout` split into lines.
    #[test]
    fn many_short_lines_are_cut_by_count_too() {
        let out = crate::connection::ExecOutput {
            stdout: b"\n".repeat(1000),
            stderr: b"a\r\nb\n".to_vec(),
            ..Default::default()
        };
        let o = with_output(ModuleOutcome::ok(), out, false, 800);
        let lines = o.ret["stdout_lines"].as_array().unwrap();
        assert_eq!(lines.len(), 800 / LIMIT_BYTES_PER_LINE);
        assert_eq!(o.ret["stdout"].as_str().unwrap().len(), 100);
        assert_eq!(o.ret["stdout_dropped_bytes"], json!(900));
        assert_eq!(o.ret["stderr_lines"], json!(["a", "b"]));
        assert_eq!(o.ret["stderr"], json!("a\r\nb\n"));
        // Not UTF-8: replaced, never an error.
        let out = crate::connection::ExecOutput {
            stdout: vec![0xff, b'x'],
            ..Default::default()
        };
        let o = with_output(ModuleOutcome::ok(), out, true, 100);
        assert_eq!(o.ret["stdout"], json!("\u{fffd}x"));
    }
}
