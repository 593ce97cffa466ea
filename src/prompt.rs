//! Asking the user a question on the terminal (`-K`, `vars_prompt`).

use std::io::{BufRead, Write};

/// Writes `question` to stderr and reads one line from stdin, without its
/// line ending. With `hidden`, the terminal does not echo what is typed
/// (`stty -echo` for the duration of the read; a newline is written after
/// it, since the user's Enter was not echoed either).
pub fn ask(question: &str, hidden: bool) -> std::io::Result<String> {
    stderr!("{question}");
    let _ = std::io::stderr().flush();
    if hidden {
        let _ = std::process::Command::new("stty").arg("-echo").status();
    }
    let mut line = String::new();
    let r = std::io::stdin().lock().read_line(&mut line);
    if hidden {
        let _ = std::process::Command::new("stty").arg("echo").status();
        stderrln!();
    }
    r?;
    Ok(line.trim_end_matches(['\n', '\r']).to_string())
}
