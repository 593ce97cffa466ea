//! `reboot` and `wait_for_connection`: modules that outlive their connection.

use std::time::{Duration, Instant};

use async_trait::async_trait;
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::connection::ExecOutput;
use crate::modules::{
    fresh_connection, parse_params, Change, Module, ModuleCtx, ModuleDoc, ModuleError, ModuleOutcome, OptKind,
    OptionDoc, Plan, ReturnDoc,
};

// ---------------------------------------------------------------- wait_for_connection

const WFC_OPTIONS: &[OptionDoc] = &[
    OptionDoc::new("timeout", OptKind::Int, "Seconds to keep trying.").default("600"),
    OptionDoc::new("delay", OptKind::Int, "Seconds to wait before the first attempt.").default("0"),
    OptionDoc::new("sleep", OptKind::Int, "Seconds between attempts.").default("1"),
    OptionDoc::new("connect_timeout", OptKind::Int, "Seconds one attempt may take.").default("5"),
];

pub(crate) static WFC_DOC: ModuleDoc = ModuleDoc {
    name: "wait_for_connection",
    aliases: &[],
    short: "Wait until the host is reachable and usable",
    description: "Reconnects to the host (a fresh SSH connection each attempt) and runs a trivial command \
until it succeeds or `timeout` passes. Useful after a host was restarted outside rigger.",
    free_form: false,
    options: WFC_OPTIONS,
    examples: "- wait_for_connection:\n    delay: 5\n    timeout: 120\n",
    returns: &[ReturnDoc {
        name: "elapsed",
        description: "seconds until the host answered",
    }],
    controller_only: false,
};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WfcParams {
    #[serde(default)]
    timeout: Option<i64>,
    #[serde(default)]
    delay: Option<i64>,
    #[serde(default)]
    sleep: Option<i64>,
    #[serde(default)]
    connect_timeout: Option<i64>,
}

pub(crate) struct WaitForConnection;

/// A delay given as any number, in whole seconds: Ansible's reboot takes
/// `int()` of it, which drops the fraction (`-0.5` is 0, `2.9` is 2).
fn whole_secs(v: Option<f64>) -> Option<i64> {
    v.map(|f| f.trunc() as i64)
}

fn secs(v: Option<i64>, default: u64) -> Duration {
    Duration::from_secs(v.map(|v| v.max(0) as u64).unwrap_or(default))
}

/// Try until `probe` succeeds on some connection; the first try uses the task's connection.
async fn until_usable(
    ctx: &ModuleCtx<'_>,
    cmd: &str,
    deadline: Instant,
    sleep: Duration,
    ct: Duration,
    accept: &(dyn Fn(&ExecOutput) -> bool + Sync),
    first_on_current: bool,
) -> Result<(), String> {
    let mut first = first_on_current;
    loop {
        let attempt = if first {
            first = false;
            ctx.run_on(ctx.conn, cmd, ct).await.map_err(|e| e.to_string())
        } else {
            match fresh_connection(ct).await {
                Some(Ok(c)) => ctx.run_on(&*c, cmd, ct).await.map_err(|e| e.to_string()),
                Some(Err(e)) => Err(e.to_string()),
                None => ctx.run_on(ctx.conn, cmd, ct).await.map_err(|e| e.to_string()),
            }
        };
        let last_err = match attempt {
            Ok(out) if accept(&out) => return Ok(()),
            Ok(out) => format!("rc={} {}", out.status, out.stderr_str().trim()),
            Err(e) => e,
        };
        if Instant::now() + sleep >= deadline {
            return Err(last_err);
        }
        tokio::time::sleep(sleep).await;
    }
}

#[async_trait]
impl Module for WaitForConnection {
    fn doc(&self) -> &'static ModuleDoc {
        &WFC_DOC
    }

    /// Waiting is the change: check mode reports the host as reachable
    /// (ok, `elapsed` 0) without trying it.
    async fn query(&self, _ctx: &ModuleCtx<'_>, args: Map<String, Value>) -> Result<Plan, ModuleError> {
        let p: WfcParams = parse_params(&WFC_DOC, args)?;
        Ok(Plan::Change(
            ModuleOutcome::ok().with("elapsed", 0),
            Box::new(WaitUntilUsable(p)),
        ))
    }
}

/// Reconnect until a trivial command succeeds.
struct WaitUntilUsable(WfcParams);

#[async_trait]
impl Change for WaitUntilUsable {
    async fn apply(
        self: Box<Self>,
        ctx: &ModuleCtx<'_>,
        _planned: ModuleOutcome,
    ) -> Result<ModuleOutcome, ModuleError> {
        let p = self.0;
        let start = Instant::now();
        tokio::time::sleep(secs(p.delay, 0)).await;
        let deadline = start + secs(p.timeout, 600);
        let ok = |o: &ExecOutput| o.status == 0;
        match until_usable(
            ctx,
            "true",
            deadline,
            secs(p.sleep, 1),
            secs(p.connect_timeout, 5).max(Duration::from_secs(1)),
            &ok,
            true,
        )
        .await
        {
            Ok(()) => Ok(ModuleOutcome::ok().with("elapsed", start.elapsed().as_secs())),
            Err(e) => Ok(ModuleOutcome::failed(format!(
                "timed out waiting for connection ({}s): {e}",
                start.elapsed().as_secs()
            ))
            .with("elapsed", start.elapsed().as_secs())),
        }
    }
}

// ---------------------------------------------------------------- reboot

const REBOOT_OPTIONS: &[OptionDoc] = &[
    OptionDoc::new(
        "reboot_timeout",
        OptKind::Int,
        "Seconds to wait for the host to come back and pass test_command.",
    )
    .default("600"),
    OptionDoc::new(
        "connect_timeout",
        OptKind::Int,
        "Seconds one connection attempt may take.",
    )
    .default("10"),
    OptionDoc::new(
        "pre_reboot_delay",
        OptKind::Float,
        "Seconds before the reboot (rounded down to minutes for shutdown); a fraction is dropped and a negative value is 0, as Ansible's `int()` of it.",
    )
    .aliases(&["pre_reboot_delay_sec"])
    .default("0"),
    OptionDoc::new(
        "post_reboot_delay",
        OptKind::Float,
        "Seconds to wait after the host is back; a fraction is dropped and a negative value is 0, as Ansible's `int()` of it.",
    )
    .aliases(&["post_reboot_delay_sec"])
    .default("0"),
    OptionDoc::new(
        "test_command",
        OptKind::Str,
        "Command that must succeed on the rebooted host (shell code by design, run as given).",
    )
    .default("whoami"),
    OptionDoc::new("msg", OptKind::Str, "Message broadcast before the reboot.").default("Reboot initiated by rigger"),
    OptionDoc::new(
        "reboot_command",
        OptKind::Str,
        "The command that reboots the host (default `shutdown -r MINUTES MSG`, `msg` quoted). Shell code by \
design, run as given.",
    ),
    OptionDoc::new(
        "boot_time_command",
        OptKind::Str,
        "Command whose output changes on every boot (shell code by design, run as given).",
    )
    .default("cat /proc/sys/kernel/random/boot_id"),
    OptionDoc::new(
        "search_paths",
        OptKind::List,
        "Accepted for compatibility; `shutdown` is found on PATH.",
    )
    .ignored(),
];

pub(crate) static REBOOT_DOC: ModuleDoc = ModuleDoc {
    name: "reboot",
    aliases: &[],
    short: "Reboot a machine and wait for it to come back",
    description: "Records the boot id, issues the reboot command, then reconnects until the boot id changed \
and `test_command` succeeds. Later tasks use the new connection. In check mode nothing happens and the task \
reports changed.",
    free_form: false,
    options: REBOOT_OPTIONS,
    examples: "- reboot:\n\n- reboot:\n    reboot_timeout: 3600\n    test_command: systemctl is-system-running\n",
    returns: &[
        ReturnDoc {
            name: "rebooted",
            description: "true when the host rebooted",
        },
        ReturnDoc {
            name: "elapsed",
            description: "seconds the reboot took",
        },
    ],
    controller_only: false,
};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RebootParams {
    #[serde(default)]
    reboot_timeout: Option<i64>,
    #[serde(default)]
    connect_timeout: Option<i64>,
    #[serde(default)]
    pre_reboot_delay: Option<f64>,
    #[serde(default)]
    post_reboot_delay: Option<f64>,
    #[serde(default)]
    test_command: Option<String>,
    #[serde(default)]
    msg: Option<String>,
    #[serde(default)]
    reboot_command: Option<String>,
    #[serde(default)]
    boot_time_command: Option<String>,
}

pub(crate) struct Reboot;

#[async_trait]
impl Module for Reboot {
    fn doc(&self) -> &'static ModuleDoc {
        &REBOOT_DOC
    }

    /// Rebooting is the change: check mode reports it (changed, not
    /// rebooted) without reading the boot id.
    async fn query(&self, _ctx: &ModuleCtx<'_>, args: Map<String, Value>) -> Result<Plan, ModuleError> {
        let p: RebootParams = parse_params(&REBOOT_DOC, args)?;
        Ok(Plan::change(
            ModuleOutcome::changed(true).with("rebooted", false).with("elapsed", 0),
            RebootAndWait(p),
        ))
    }
}

/// Record the boot id, reboot, and reconnect until the boot id changed and
/// `test_command` succeeds.
struct RebootAndWait(RebootParams);

#[async_trait]
impl Change for RebootAndWait {
    async fn apply(
        self: Box<Self>,
        ctx: &ModuleCtx<'_>,
        _planned: ModuleOutcome,
    ) -> Result<ModuleOutcome, ModuleError> {
        let p = self.0;
        let start = Instant::now();
        let ct = secs(p.connect_timeout, 10).max(Duration::from_secs(1));
        let boot_cmd = p
            .boot_time_command
            .clone()
            .unwrap_or_else(|| "cat /proc/sys/kernel/random/boot_id".into());
        let before = ctx.run_on(ctx.conn, &boot_cmd, ct).await?;
        if before.status != 0 {
            return Err(crate::modules::host::command::failure("boot_time_command", &before));
        }
        let before_id = before.stdout_str().trim().to_string();
        let delay = whole_secs(p.pre_reboot_delay).unwrap_or(0).max(0);
        let msg = p.msg.clone().unwrap_or_else(|| "Reboot initiated by rigger".into());
        let cmd = p
            .reboot_command
            .clone()
            .unwrap_or_else(|| format!("shutdown -r {} {}", delay / 60, crate::connection::sh_quote(&msg)));
        if p.reboot_command.is_some() && delay > 0 {
            tokio::time::sleep(Duration::from_secs(delay as u64)).await;
        }
        // The connection may drop while the command runs: that is the reboot working.
        match ctx.run_on(ctx.conn, &cmd, ct).await {
            Ok(out) if out.status != 0 => {
                return Err(ModuleError::Failed(format!(
                    "Reboot command failed (rc={}): {}",
                    out.status,
                    out.stderr_str().trim()
                )))
            }
            _ => {}
        }
        let deadline = Instant::now() + secs(p.reboot_timeout, 600);
        let changed_boot = move |o: &ExecOutput| o.status == 0 && o.stdout_str().trim() != before_id;
        if let Err(e) = until_usable(
            ctx,
            &boot_cmd,
            deadline,
            Duration::from_secs(1),
            ct,
            &changed_boot,
            false,
        )
        .await
        {
            return Ok(ModuleOutcome::failed(format!(
                "Timed out waiting for the host to reboot (boot id unchanged or host unreachable): {e}"
            ))
            .with("rebooted", true)
            .with("elapsed", start.elapsed().as_secs()));
        }
        let test = p.test_command.clone().unwrap_or_else(|| "whoami".into());
        let ok = |o: &ExecOutput| o.status == 0;
        if let Err(e) = until_usable(ctx, &test, deadline, Duration::from_secs(1), ct, &ok, false).await {
            return Ok(
                ModuleOutcome::failed(format!("test_command `{test}` did not succeed after the reboot: {e}"))
                    .with("rebooted", true)
                    .with("elapsed", start.elapsed().as_secs()),
            );
        }
        tokio::time::sleep(secs(whole_secs(p.post_reboot_delay), 0)).await;
        Ok(ModuleOutcome::changed(true)
            .with("rebooted", true)
            .with("elapsed", start.elapsed().as_secs()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_take_any_number_as_ansibles_int_does() {
        let p: RebootParams = serde_json::from_value(serde_json::json!({
            "post_reboot_delay": -0.5,
            "pre_reboot_delay": 61.9,
        }))
        .unwrap();
        assert_eq!(whole_secs(p.post_reboot_delay), Some(0));
        assert_eq!(whole_secs(p.pre_reboot_delay), Some(61));
        assert_eq!(secs(whole_secs(Some(-3.0)), 7), Duration::from_secs(0));
        assert_eq!(secs(whole_secs(None), 7), Duration::from_secs(7));
    }
}
