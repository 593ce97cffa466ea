use std::process::ExitCode;

use clap::Parser;

use rigger::cli::Cli;
use rigger::exec::runner::{interrupt, interrupted_exit_code};

fn main() -> ExitCode {
    // An unexpected internal error is exit code 250, as ansible-playbook's.
    std::panic::set_hook(Box::new(|info| {
        // A closed stdout/stderr met by a print rigger does not route through
        // its own macros (a dependency's): end as `ls | head` ends `ls`.
        if rigger::stdio::is_broken_pipe_panic(&info.to_string()) {
            rigger::stdio::die_of_sigpipe();
        }
        rigger::stderrln!("rigger: internal error (please report it): {info}");
        std::process::exit(250);
    }));
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let code = match e.kind() {
                clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion => 0,
                _ => 5,
            };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    // Debug output (-vvv, RIGGER_LOG), before anything can log.
    rigger::logging::init(cli.verbose);
    let rt = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            rigger::stderrln!("rigger: cannot start the runtime: {e}");
            return ExitCode::from(250);
        }
    };
    let code = rt.block_on(async {
        // First Ctrl-C or SIGTERM: start no new task, finish running ones,
        // print the recap. Second: stop at once. (`watch` handles SIGTERM
        // itself: a reload/stop of the daemon.)
        tokio::spawn(async {
            while tokio::signal::ctrl_c().await.is_ok() {
                if !interrupt(libc::SIGINT) {
                    rigger::stderrln!("\nrigger: interrupted twice, aborting");
                    abort_now("aborted by a second interrupt (SIGINT)");
                }
                rigger::stderrln!("\nrigger: interrupted; letting running tasks finish (Ctrl-C again to abort)");
            }
        });
        if !matches!(cli.command, rigger::cli::Command::Watch(_)) {
            use tokio::signal::unix::{signal, SignalKind};
            match signal(SignalKind::terminate()) {
                Ok(mut term) => {
                    tokio::spawn(async move {
                        while term.recv().await.is_some() {
                            if !interrupt(libc::SIGTERM) {
                                rigger::stderrln!("\nrigger: terminated twice, aborting");
                                abort_now("aborted by a second SIGTERM");
                            }
                            rigger::stderrln!(
                                "\nrigger: terminated (SIGTERM); letting running tasks finish (SIGTERM again to abort)"
                            );
                        }
                    });
                }
                Err(e) => rigger::stderrln!("rigger: cannot handle SIGTERM: {e}"),
            }
        }
        match rigger::app::run(cli).await {
            Ok(code) => code,
            Err(e) => {
                // Located errors render as `error: file:line:col: ...` themselves;
                // every other one gets the same `error:` lead.
                // A secret of the run (a vault value) never reaches the terminal.
                let text = e.to_string();
                let text = rigger::output::redact::run_secrets().redact_str(&text);
                let text = match e {
                    rigger::error::AppError::Input(_) => text.into_owned(),
                    _ => format!("error: {text}"),
                };
                rigger::output::logfile::record(rigger::output::logfile::Level::Error, &text);
                rigger::stderrln!("{text}");
                e.exit_code()
            }
        }
    });
    rt.shutdown_timeout(std::time::Duration::from_millis(200));
    ExitCode::from(code.clamp(0, 255) as u8)
}

/// Ends the process at once (a second interrupt), after the audit log's
/// last record: the chain ends with a `run_end` that says why.
fn abort_now(why: &str) -> ! {
    let code = interrupted_exit_code();
    rigger::audit::run_end(code, Some(why.to_string()));
    std::process::exit(code)
}
