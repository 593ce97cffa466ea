//! Applying a network change without locking rigger out.
//!
//! Before anything changes, the host gets a rollback script (previous config
//! files, inverse `ip` commands) and a detached guard process:
//! `sleep TIMEOUT; mv rollback.sh rollback.run && sh rollback.run`. The change
//! itself runs detached too (`setsid`), so a dropped SSH session cannot stop
//! it half-way. rigger then opens a *fresh* connection and cancels the guard
//! by renaming the rollback script away; the rename is the lock, so exactly
//! one of "confirm" and "roll back" wins. When no fresh connection gets
//! through before the timer, the guard restores the previous state and rigger,
//! once it can reconnect, reports the change as failed and rolled back.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::connection::{sh_quote, ConnError, ExecOutput, FileAttrs};
use crate::modules::{fresh_connection, ModuleCtx, ModuleError};

use super::persist::ConfFile;

/// Where guard state lives on the host (tmpfs: a reboot clears it).
const STATE_DIR: &str = "/run/rigger-net";

/// Everything one task changes on the host.
#[derive(Debug, Default)]
pub struct Edits {
    pub write: Vec<ConfFile>,
    pub remove: Vec<String>,
    /// Paths among `write`/`remove` that exist now (backed up for the rollback).
    pub existing: Vec<String>,
    pub live: Vec<String>,
    /// The `ip` commands that undo `live`.
    pub undo: Vec<String>,
}

/// How a guarded change ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Applied {
    /// Applied, and a fresh connection confirmed the host is still reachable.
    Confirmed,
    /// A live command failed; the previous state was restored at once.
    Failed { log: String },
    /// No fresh connection got through: the guard restored the previous state.
    RolledBack { log: String },
}

/// Run `cmd` over a fresh connection (or the task's own outside a runner).
async fn on_fresh(ctx: &ModuleCtx<'_>, cmd: &str, limit: Duration) -> Result<ExecOutput, String> {
    match fresh_connection(limit).await {
        Some(Ok(c)) => ctx.run_on(&*c, cmd, limit).await.map_err(|e| e.to_string()),
        Some(Err(e)) => Err(e.to_string()),
        None => ctx.run_on(ctx.conn, cmd, limit).await.map_err(|e| e.to_string()),
    }
}

fn check(what: &str, out: &ExecOutput) -> Result<(), ModuleError> {
    if out.status == 0 {
        return Ok(());
    }
    Err(ModuleError::Failed(format!(
        "network_interface: {what} failed (rc={}): {}",
        out.status,
        out.stderr_str().trim()
    )))
}

/// A script that stops at the first failing command and says which one.
fn script(cmds: &[String], stop_on_error: bool) -> String {
    let mut s = String::from("#!/bin/sh\n");
    for c in cmds {
        if stop_on_error {
            s.push_str(&format!(
                "{c} || {{ echo {} >&2; exit 1; }}\n",
                sh_quote(&format!("command failed: {c}"))
            ));
        } else {
            s.push_str(&format!(
                "{c} || echo {} >&2\n",
                sh_quote(&format!("rollback command failed: {c}"))
            ));
        }
    }
    s
}

/// Write/remove the configuration files (no guard): for changes that cannot cut the connection.
pub async fn write_files(ctx: &ModuleCtx<'_>, ch: &Edits) -> Result<(), ModuleError> {
    let mut prep = String::from("set -e\n");
    for f in &ch.write {
        if let Some((dir, _)) = f.path.rsplit_once('/') {
            prep.push_str(&format!("mkdir -p {}\n", sh_quote(dir)));
        }
    }
    for r in &ch.remove {
        prep.push_str(&format!("rm -f -- {}\n", sh_quote(r)));
    }
    let out = ctx.run(&prep).await?;
    check("preparing configuration directories", &out)?;
    for f in &ch.write {
        let attrs = FileAttrs {
            mode: Some(f.mode),
            ..Default::default()
        };
        ctx.put_bytes(f.content.as_bytes(), &f.path, &attrs).await?;
    }
    Ok(())
}

/// Apply `ch` with a rollback guard of `timeout` seconds.
pub async fn guarded(ctx: &ModuleCtx<'_>, ch: &Edits, name: &str, timeout: u64) -> Result<Applied, ModuleError> {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let dir = format!("{STATE_DIR}/{name}-{nanos}");
    let d = sh_quote(&dir);

    // The rollback: previous files back (or new ones away), then the inverse ip commands.
    let mut undo_files = Vec::new();
    for (i, p) in ch.existing.iter().enumerate() {
        undo_files.push(format!("cp -p -- {d}/backup/{i} {}", sh_quote(p)));
    }
    for f in &ch.write {
        if !ch.existing.contains(&f.path) {
            undo_files.push(format!("rm -f -- {}", sh_quote(&f.path)));
        }
    }
    undo_files.extend(ch.undo.iter().cloned());
    let rollback = script(&undo_files, false);
    let apply = script(&ch.live, true);

    let mut prep = format!("set -e\nmkdir -p {d}/backup\n");
    for (i, p) in ch.existing.iter().enumerate() {
        prep.push_str(&format!("cp -p -- {} {d}/backup/{i}\n", sh_quote(p)));
    }
    for (file, text) in [("rollback.sh", &rollback), ("apply.sh", &apply)] {
        prep.push_str(&format!("cat > {d}/{file} <<'RIGGER_NET_EOF'\n{text}RIGGER_NET_EOF\n"));
    }
    // The guard: its own session (immune to the SSH session's hangup), killed as a group on confirm.
    let guard = format!(
        "sleep {timeout}; if mv {d}/rollback.sh {d}/rollback.run 2>/dev/null; then \
         sh {d}/rollback.run > {d}/rollback.log 2>&1; echo done > {d}/rolledback; fi"
    );
    prep.push_str(&format!(
        "setsid sh -c {} </dev/null >/dev/null 2>&1 &\necho $! > {d}/guard.pid\n",
        sh_quote(&guard)
    ));
    let started = Instant::now();
    let out = ctx.run(&prep).await?;
    check("setting up the rollback guard", &out)?;

    // Files first (the guard already covers them), then the live change.
    let files = write_files(ctx, ch).await;
    let live_result = match files {
        Err(e) => Err(e.to_string()),
        Ok(()) if ch.live.is_empty() => Ok(()),
        Ok(()) => {
            let cmd = format!(
                "setsid sh {d}/apply.sh > {d}/apply.log 2>&1 < /dev/null; rc=$?; cat {d}/apply.log >&2; exit $rc"
            );
            let limit = Duration::from_secs(timeout.clamp(5, 60));
            match ctx.run_on(ctx.conn, &cmd, limit).await {
                Ok(o) if o.status == 0 => Ok(()),
                Ok(o) => Err(o.stderr_str().trim().to_string()),
                // The session may die with the change: the confirmation below tells.
                Err(_) => Ok(()),
            }
        }
    };
    if let Err(log) = live_result {
        let cmd = format!(
            "if mv {d}/rollback.sh {d}/rollback.run 2>/dev/null; then kill -- -\"$(cat {d}/guard.pid)\" 2>/dev/null; \
             sh {d}/rollback.run >&2; fi; rm -rf {d}"
        );
        let out = ctx.run_on(ctx.conn, &cmd, Duration::from_secs(30)).await?;
        let extra = out.stderr_str();
        let log = if extra.trim().is_empty() {
            log
        } else {
            format!("{log}\n{}", extra.trim())
        };
        return Ok(Applied::Failed { log });
    }

    // Confirm over a fresh connection, before the guard fires.
    let confirm = format!(
        "if mv {d}/rollback.sh {d}/rollback.cancelled 2>/dev/null; then \
         kill -- -\"$(cat {d}/guard.pid)\" 2>/dev/null; rm -rf {d}; echo confirmed; else echo too-late; fi"
    );
    let deadline = started + Duration::from_secs(timeout);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left < Duration::from_millis(500) {
            break;
        }
        let limit = left.min(Duration::from_secs(5));
        match on_fresh(ctx, &confirm, limit).await {
            Ok(o) if o.status == 0 && o.stdout_str().trim() == "confirmed" => return Ok(Applied::Confirmed),
            Ok(o) if o.status == 0 => break,
            _ => tokio::time::sleep(Duration::from_millis(500).min(left)).await,
        }
    }

    // Lost: wait for the guard, then find out what it did.
    let fired = deadline + Duration::from_secs(2);
    tokio::time::sleep(fired.saturating_duration_since(Instant::now())).await;
    let report =
        format!("cat {d}/rolledback 2>/dev/null; echo ---; cat {d}/rollback.log {d}/apply.log 2>/dev/null; rm -rf {d}");
    let give_up = Instant::now() + Duration::from_secs(30);
    let mut last = String::new();
    while Instant::now() < give_up {
        match on_fresh(ctx, &report, Duration::from_secs(5)).await {
            Ok(o) => {
                let text = o.stdout_str();
                let (mark, log) = text.split_once("---").unwrap_or((&text, ""));
                if mark.trim() == "done" {
                    return Ok(Applied::RolledBack {
                        log: log.trim().to_string(),
                    });
                }
                return Err(ModuleError::Failed(format!(
                    "network_interface: could not confirm the change over a new connection, and the rollback \
                     guard did not run (state dir {dir}): {}",
                    log.trim()
                )));
            }
            Err(e) => last = e,
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    Err(ModuleError::Conn(ConnError::Dropped(format!(
        "host unreachable after the network change and after its rollback timer ({timeout}s): {last}"
    ))))
}

#[cfg(test)]
mod tests {
    #[test]
    fn scripts_stop_or_continue() {
        let cmds = vec![
            "ip link add name br0 type bridge".to_string(),
            "ip link set dev br0 up".to_string(),
        ];
        let s = super::script(&cmds, true);
        assert!(s.contains("ip link add name br0 type bridge || { echo 'command failed: ip link add name br0 type bridge' >&2; exit 1; }\n"), "{s}");
        let r = super::script(&cmds, false);
        assert!(!r.contains("exit 1") && r.contains("rollback command failed"), "{r}");
    }
}
