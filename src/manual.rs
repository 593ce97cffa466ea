//! `rigger completions SHELL` and `rigger man`: shell completion scripts
//! and manual pages generated from the clap definitions in [`crate::cli`],
//! so they cannot drift from the options the binary takes. The Debian
//! package (scripts/deb.sh) generates its copies from the built binary.

use std::path::Path;

use clap::CommandFactory;

use crate::cli::Cli;
use crate::error::AppError;

/// The completion script for `shell`.
pub fn completions(shell: clap_complete::Shell) -> Vec<u8> {
    let mut cmd = Cli::command();
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut cmd, "rigger", &mut out);
    out
}

/// `rigger man`: the top page on standard output, or every page into `dir`.
pub fn man(dir: Option<&Path>) -> Result<i32, AppError> {
    let io = |what: &str, e: std::io::Error| AppError::Other(format!("{what}: {e}"));
    match dir {
        None => {
            let mut out = Vec::new();
            clap_mangen::Man::new(Cli::command())
                .render(&mut out)
                .map_err(|e| io("cannot render the manual page", e))?;
            stdout!("{}", String::from_utf8_lossy(&out));
        }
        Some(dir) => {
            std::fs::create_dir_all(dir).map_err(|e| io(&format!("cannot create {}", dir.display()), e))?;
            clap_mangen::generate_to(Cli::command(), dir)
                .map_err(|e| io(&format!("cannot write the manual pages into {}", dir.display()), e))?;
        }
    }
    Ok(0)
}

/// `rigger completions SHELL`.
pub fn print_completions(shell: clap_complete::Shell) -> Result<i32, AppError> {
    stdout!("{}", String::from_utf8_lossy(&completions(shell)));
    Ok(0)
}
