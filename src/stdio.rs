//! Writing to stdout and stderr from the command line.
//!
//! std's `println!`/`eprintln!` panic when the stream is a closed pipe
//! (`rigger doc --list | head -1`), because Rust ignores SIGPIPE. rigger
//! writes through [`stdout!`]/[`stdoutln!`]/[`stderr!`]/[`stderrln!`]
//! instead: on a closed pipe (EPIPE) they end rigger the way `ls | head`
//! ends `ls` — killed by SIGPIPE, no message (exit status 141 in a shell).
//! `clippy.toml` forbids std's printing macros so no new path can panic.
//!
//! SIGPIPE is not reset to its default for the whole process instead: rigger
//! also writes to the stdin of child processes (local connection, `crontab`,
//! inventory scripts) and to sockets through `writev`, where a peer that went
//! away must be an error of that one task, not the death of the whole run.
//! The run's renderer keeps its output errors to itself: a run whose reader
//! went away finishes its tasks (no change is cut in half) and exits with its
//! usual code.
//!
//! While the run's progress line is on the terminal ([`set_progress`]),
//! every write through these functions hides it, writes, and draws it again
//! (indicatif's `suspend`): no line of output ever lands in the middle of
//! the progress line, whichever part of rigger writes it.

use std::fmt;
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use indicatif::ProgressBar;

/// The progress line on the terminal, if any; [`PROGRESS_ON`] says whether
/// to look (no lock on a write when there is none).
static PROGRESS: Mutex<Option<ProgressBar>> = Mutex::new(None);
static PROGRESS_ON: AtomicBool = AtomicBool::new(false);

/// The progress line every write must step around (`None`: no more).
pub fn set_progress(bar: Option<ProgressBar>) {
    let mut slot = PROGRESS.lock().unwrap_or_else(|p| p.into_inner());
    PROGRESS_ON.store(bar.is_some(), Ordering::SeqCst);
    *slot = bar;
}

/// Run `write` with the progress line (if one is shown) taken off the
/// terminal, and draw it again after.
pub fn around_progress<R>(write: impl FnOnce() -> R) -> R {
    if !PROGRESS_ON.load(Ordering::Relaxed) {
        return write();
    }
    let bar = PROGRESS.lock().unwrap_or_else(|p| p.into_inner()).clone();
    match bar {
        Some(pb) => pb.suspend(write),
        None => write(),
    }
}

/// Write to stdout; see the module doc for a closed pipe.
#[macro_export]
macro_rules! stdout {
    ($($arg:tt)*) => { $crate::stdio::write_stdout(format_args!($($arg)*)) };
}

/// Write a line to stdout; see the module doc for a closed pipe.
#[macro_export]
macro_rules! stdoutln {
    () => { $crate::stdio::write_stdout(format_args!("\n")) };
    ($($arg:tt)*) => { $crate::stdio::write_stdout(format_args!("{}\n", format_args!($($arg)*))) };
}

/// Write to stderr; see the module doc for a closed pipe.
#[macro_export]
macro_rules! stderr {
    ($($arg:tt)*) => { $crate::stdio::write_stderr(format_args!($($arg)*)) };
}

/// Write a line to stderr; see the module doc for a closed pipe.
#[macro_export]
macro_rules! stderrln {
    () => { $crate::stdio::write_stderr(format_args!("\n")) };
    ($($arg:tt)*) => { $crate::stdio::write_stderr(format_args!("{}\n", format_args!($($arg)*))) };
}

pub fn write_stdout(args: fmt::Arguments) {
    around_progress(|| write_stdout_now(args))
}

fn write_stdout_now(args: fmt::Arguments) {
    let mut out = std::io::stdout().lock();
    if let Err(e) = out.write_fmt(args).and_then(|_| out.flush()) {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            die_of_sigpipe();
        }
        // A full disk under a redirection must not pass for a complete answer.
        drop(out);
        write_stderr_now(format_args!("rigger: cannot write to stdout: {e}\n"));
        std::process::exit(1);
    }
}

/// Write a large output to stdout through a buffer as `write` makes it
/// (not held whole in memory first), with the errors of [`stdout!`].
pub fn write_stdout_streamed(write: impl FnOnce(&mut dyn Write) -> std::io::Result<()>) {
    around_progress(|| {
        let mut out = std::io::BufWriter::with_capacity(64 << 10, std::io::stdout().lock());
        if let Err(e) = write(&mut out).and_then(|_| out.flush()) {
            if e.kind() == std::io::ErrorKind::BrokenPipe {
                die_of_sigpipe();
            }
            drop(out);
            write_stderr_now(format_args!("rigger: cannot write to stdout: {e}\n"));
            std::process::exit(1);
        }
    })
}

pub fn write_stderr(args: fmt::Arguments) {
    around_progress(|| write_stderr_now(args))
}

fn write_stderr_now(args: fmt::Arguments) {
    let mut err = std::io::stderr().lock();
    if let Err(e) = err.write_fmt(args) {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            die_of_sigpipe();
        }
        // Any other error: there is nowhere left to report it.
    }
}

/// A `[WARNING]: ...` line on stderr, as the renderer prints warnings.
pub fn warn(msg: &str) {
    use crate::output::color;
    let text = format!("[WARNING]: {msg}\n");
    crate::output::logfile::record(crate::output::logfile::Level::Warning, &text);
    if color::enabled() {
        write_stderr(format_args!("{}", color::paint(color::ansible::WARN, &text)));
    } else {
        write_stderr(format_args!("{text}"));
    }
}

/// Whether a panic message is std's "failed printing to stdout/stderr" on a
/// closed pipe (a dependency's print, or one this module did not replace).
pub fn is_broken_pipe_panic(msg: &str) -> bool {
    msg.contains("failed printing to std") && msg.contains("Broken pipe")
}

/// End the process as the default action of SIGPIPE does.
pub fn die_of_sigpipe() -> ! {
    // SAFETY: resetting a signal disposition and raising it have no memory
    // effects; with the default action the process ends here.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
        libc::raise(libc::SIGPIPE);
    }
    // Not reached; the shell's code for "killed by SIGPIPE" otherwise.
    std::process::exit(128 + libc::SIGPIPE)
}
