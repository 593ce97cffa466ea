//! Command modules: `command`, `shell`, `raw`, `script`.
//!
//! Their whole behaviour is running something, whose effect no query can
//! predict: the plan is what check mode reports (skipped, or decided by
//! `creates`/`removes`), and the change runs the command and returns its
//! real result.

pub mod script;

use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use serde::Deserialize;
use serde_json::{Map, Value};

use super::{
    parse_params, Change, Module, ModuleCtx, ModuleDoc, ModuleError, ModuleOutcome, OptKind, OptionDoc, Plan, Registry,
    ReturnDoc,
};
use crate::connection::output::human_size;
use crate::connection::sh_quote;
use crate::shell::{sh_quote_command, sh_quote_glob};

pub fn register(r: &mut Registry) {
    r.add(Arc::new(CommandModule { shell: false }));
    r.add(Arc::new(CommandModule { shell: true }));
    r.add(Arc::new(RawModule));
    r.add(Arc::new(script::Script));
}

const COMMON_RETURNS: &[ReturnDoc] = &[
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

const COMMAND_OPTIONS: &[OptionDoc] = &[
    OptionDoc::new(
        "cmd",
        OptKind::Str,
        "The command to run (instead of the free-form text): by design it runs the program it names. It is \
split into words like a shell does and each word is passed as one argument, without a shell (no pipes, \
`;`, `$(...)`; use `shell` for those).",
    ),
    OptionDoc::new(
        "argv",
        OptKind::List,
        "The command as a list of arguments; each element is passed quoted, as one argument.",
    ),
    OptionDoc::new("chdir", OptKind::Path, "Change into this directory before running."),
    OptionDoc::new(
        "creates",
        OptKind::Path,
        "Skip the command when this path exists (glob allowed).",
    ),
    OptionDoc::new(
        "removes",
        OptKind::Path,
        "Run the command only when this path exists (glob allowed).",
    ),
    OptionDoc::new("stdin", OptKind::Str, "Text fed to the command's standard input."),
    OptionDoc::new("stdin_add_newline", OptKind::Bool, "Append a newline to stdin.").default("yes"),
    OptionDoc::new(
        "strip_empty_ends",
        OptKind::Bool,
        "Strip trailing newlines from stdout/stderr.",
    )
    .default("yes"),
    OptionDoc::new(
        "expand_argument_vars",
        OptKind::Bool,
        "Accepted for compatibility; variables are never expanded by `command`.",
    )
    .default("yes"),
];

static COMMAND_DOC: ModuleDoc = ModuleDoc {
    name: "command",
    aliases: &[],
    short: "Run a command on the host, without a shell",
    description: "Runs the command with its arguments split like a shell would split them, but \
without shell features (pipes, redirections, variables). Use `shell` for those. The task \
fails when the exit status is not 0. In check mode the command is skipped unless `creates` \
or `removes` tell what it would do.",
    free_form: true,
    options: COMMAND_OPTIONS,
    examples: "- name: Kernel version\n  command: uname -r\n  register: kernel\n\n- command:\n    argv: [touch, /tmp/a file]\n    creates: /tmp/a file\n",
    returns: COMMON_RETURNS,
    controller_only: false,
};

const SHELL_OPTIONS: &[OptionDoc] = &[
    OptionDoc::new(
        "cmd",
        OptKind::Str,
        "The command line to run (instead of the free-form text): shell code by design, run by `executable`.",
    ),
    OptionDoc::new("chdir", OptKind::Path, "Change into this directory before running."),
    OptionDoc::new(
        "creates",
        OptKind::Path,
        "Skip the command when this path exists (glob allowed).",
    ),
    OptionDoc::new(
        "removes",
        OptKind::Path,
        "Run the command only when this path exists (glob allowed).",
    ),
    OptionDoc::new("stdin", OptKind::Str, "Text fed to the command's standard input."),
    OptionDoc::new("stdin_add_newline", OptKind::Bool, "Append a newline to stdin.").default("yes"),
    OptionDoc::new(
        "strip_empty_ends",
        OptKind::Bool,
        "Strip trailing newlines from stdout/stderr.",
    )
    .default("yes"),
    OptionDoc::new(
        "executable",
        OptKind::Path,
        "Shell to run the command with: the path of a program, passed quoted (not shell code).",
    )
    .default("/bin/sh"),
];

static SHELL_DOC: ModuleDoc = ModuleDoc {
    name: "shell",
    aliases: &[],
    short: "Run a command line through a shell on the host",
    description: "Like `command`, but through `/bin/sh` (or `executable`), so pipes, redirections \
and variables work. In check mode the command is skipped unless `creates` or `removes` tell \
what it would do.",
    free_form: true,
    options: SHELL_OPTIONS,
    examples: "- shell: ps aux | grep -c sshd\n  register: count\n",
    returns: COMMON_RETURNS,
    controller_only: false,
};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CommandParams {
    #[serde(default)]
    _raw_params: Option<String>,
    cmd: Option<String>,
    argv: Option<Vec<Value>>,
    chdir: Option<String>,
    creates: Option<String>,
    removes: Option<String>,
    stdin: Option<String>,
    #[serde(default = "yes")]
    stdin_add_newline: bool,
    #[serde(default = "yes")]
    strip_empty_ends: bool,
    executable: Option<String>,
    #[allow(dead_code)]
    expand_argument_vars: Option<Value>,
}

fn yes() -> bool {
    true
}

struct CommandModule {
    shell: bool,
}

#[async_trait]
impl Module for CommandModule {
    fn doc(&self) -> &'static ModuleDoc {
        if self.shell {
            &SHELL_DOC
        } else {
            &COMMAND_DOC
        }
    }

    async fn query(&self, ctx: &ModuleCtx<'_>, args: Map<String, Value>) -> Result<Plan, ModuleError> {
        let p: CommandParams = parse_params(Module::doc(self), args)?;
        let text = p.cmd.clone().or(p._raw_params.clone());
        let (display, line) = if self.shell {
            let text = text.ok_or_else(|| ModuleError::Args("shell: no command given".into()))?;
            let exe = p.executable.clone().unwrap_or_else(|| "/bin/sh".into());
            (
                text.clone(),
                format!("{} -c {}", sh_quote_command(&exe), sh_quote(&text)),
            )
        } else {
            let argv: Vec<String> = match (&p.argv, &text) {
                (Some(a), None) => a
                    .iter()
                    .map(|v| match v {
                        Value::String(s) => s.clone(),
                        other => other.to_string(),
                    })
                    .collect(),
                (None, Some(t)) => shlex::split(t)
                    .ok_or_else(|| ModuleError::Args(format!("command: cannot split `{t}`: unbalanced quotes")))?,
                (Some(_), Some(_)) => {
                    return Err(ModuleError::Args(
                        "command: give either a command line or argv, not both".into(),
                    ))
                }
                (None, None) => return Err(ModuleError::Args("command: no command given".into())),
            };
            if argv.is_empty() {
                return Err(ModuleError::Args("command: empty command".into()));
            }
            // The first word is the program: never an assignment.
            let line = std::iter::once(sh_quote_command(&argv[0]))
                .chain(argv[1..].iter().map(|a| sh_quote(a)))
                .collect::<Vec<_>>()
                .join(" ");
            (argv.join(" "), line)
        };
        plan_command(ctx, p, display, line).await
    }
}

/// What `creates`/`removes` say about a command.
enum Guard {
    /// Skip it, with this message.
    Skip(String),
    /// Run it.
    Run,
}

/// The outcome of a command that `creates`/`removes` skipped.
fn skipped_by_guard(msg: String, display: &str) -> ModuleOutcome {
    ModuleOutcome::ok()
        .with_msg(msg.clone())
        .with("rc", 0)
        .with("stdout", msg)
        .with("cmd", display)
}

/// The `creates`/`removes` guard decides what the command would do: skip
/// ([`Plan::Done`]) or run (reported as "would have run"). Without a guard
/// the command's effect cannot be predicted: the plan reports it skipped,
/// as check mode shows it. Either way [`RunCommand`] runs it for real.
async fn plan_command(
    ctx: &ModuleCtx<'_>,
    p: CommandParams,
    display: String,
    line: String,
) -> Result<Plan, ModuleError> {
    let chdir = p
        .chdir
        .as_deref()
        .map(|d| format!("cd {} || exit 1; ", sh_quote(d)))
        .unwrap_or_default();
    let stdin = p.stdin.as_ref().map(|s| {
        let mut s = s.clone();
        if p.stdin_add_newline {
            s.push('\n');
        }
        s.into_bytes()
    });
    let guarded = p.creates.is_some() || p.removes.is_some();
    let run = RunCommand {
        display: display.clone(),
        line,
        chdir: chdir.clone(),
        stdin,
        strip: p.strip_empty_ends,
        creates: p.creates.clone(),
        removes: p.removes.clone(),
    };
    if !guarded {
        let planned = ModuleOutcome {
            skipped: true,
            msg: Some("skipped in check mode: the command's effect cannot be predicted".into()),
            ..Default::default()
        };
        // Not `Plan::change`: the planned (check mode) outcome is a skip, not a change.
        return Ok(Plan::Change(planned, Box::new(run)));
    }
    let guard = match sftp_guard(ctx, &p).await {
        Some(g) => g,
        None => shell_guard(ctx, &p, &chdir).await?,
    };
    match guard {
        Guard::Skip(msg) => Ok(Plan::Done(skipped_by_guard(msg, &display))),
        Guard::Run => Ok(Plan::change(
            ModuleOutcome::ok()
                .with_msg("command would have run")
                .with("cmd", display),
            run,
        )),
    }
}

/// The `creates`/`removes` guard asked of the shell in one round trip
/// (globs are expanded by the shell).
async fn shell_guard(ctx: &ModuleCtx<'_>, p: &CommandParams, chdir: &str) -> Result<Guard, ModuleError> {
    let mut test = String::from("set +f; ");
    test.push_str(chdir);
    if let Some(c) = &p.creates {
        test.push_str(&format!(
            "for f in {}; do [ -e \"$f\" ] && {{ echo CREATES; break; }}; done; ",
            sh_quote_glob(c)
        ));
    }
    if let Some(r) = &p.removes {
        test.push_str(&format!(
            "for f in {}; do [ -e \"$f\" ] && {{ echo REMOVES; break; }}; done; ",
            sh_quote_glob(r)
        ));
    }
    test.push_str("true");
    let out = ctx.run(&test).await?;
    let s = out.stdout_str();
    if let Some(c) = &p.creates {
        if s.contains("CREATES") {
            return Ok(Guard::Skip(format!("skipped, since {c} exists")));
        }
    }
    if let Some(r) = &p.removes {
        if !s.contains("REMOVES") {
            return Ok(Guard::Skip(format!("skipped, since {r} does not exist")));
        }
    }
    Ok(Guard::Run)
}

/// The `creates`/`removes` guard answered over SFTP, which starts no
/// program on the host (no channel, no shell): plain absolute paths (no
/// glob, no `chdir` needed), as the login user, links followed as `[ -e ]`
/// does. `None` when only the shell can tell (a glob, become, an error such
/// as a denied directory): [`shell_guard`] decides.
async fn sftp_guard(ctx: &ModuleCtx<'_>, p: &CommandParams) -> Option<Guard> {
    let plain = |s: &str| s.starts_with('/') && !s.contains(['*', '?', '[']);
    let paths: Vec<(&str, bool)> = [p.creates.as_deref(), p.removes.as_deref()]
        .into_iter()
        .flatten()
        .map(|s| (s, true))
        .collect();
    if paths.is_empty() || paths.iter().any(|(s, _)| !plain(s)) {
        return None;
    }
    let sftp = crate::connection::sftp_for_reading(ctx.conn, paths[0].0, ctx.become_).await?;
    let found = sftp.stat_many(&paths).await.ok()?;
    if let Some(c) = &p.creates {
        if found[0].is_some() {
            return Some(Guard::Skip(format!("skipped, since {c} exists")));
        }
    }
    match &p.removes {
        Some(r) if found.last()?.is_none() => Some(Guard::Skip(format!("skipped, since {r} does not exist"))),
        _ => Some(Guard::Run),
    }
}

/// Run a `command`/`shell` line; with `creates`/`removes`, the shell checks
/// the guard again in the same round trip (the host may have changed since
/// the query) and skips the command when it says so.
struct RunCommand {
    display: String,
    /// The quoted command line, run with `exec`.
    line: String,
    /// `cd DIR || exit 1; ` or empty.
    chdir: String,
    stdin: Option<Vec<u8>>,
    strip: bool,
    creates: Option<String>,
    removes: Option<String>,
}

#[async_trait]
impl Change for RunCommand {
    async fn apply(
        self: Box<Self>,
        ctx: &ModuleCtx<'_>,
        _planned: ModuleOutcome,
    ) -> Result<ModuleOutcome, ModuleError> {
        let RunCommand {
            display,
            line,
            chdir,
            stdin,
            strip,
            creates,
            removes,
        } = *self;
        if creates.is_none() && removes.is_none() {
            let start = Instant::now();
            let start_ts = timestamp();
            let full = format!("{chdir}exec {line}");
            let out = ctx.run_user(&full, stdin).await?;
            return Ok(shape_output(&display, out, strip, ctx.max_output, start, start_ts));
        }
        // Guard and command in one round trip: the shell tests the paths
        // (expanding globs) and prints a random token instead of running the
        // command when the guard says skip.
        let token = format!("RIGGER-SKIP-{:016x}", rand::random::<u64>());
        let mut script = format!("{chdir}set +f; ");
        if let Some(c) = &creates {
            script.push_str(&format!(
                "for f in {}; do [ -e \"$f\" ] && {{ echo {token}-C; exit 0; }}; done; ",
                sh_quote_glob(c)
            ));
        }
        if let Some(r) = &removes {
            script.push_str(&format!(
                "rigger_r=; for f in {}; do [ -e \"$f\" ] && {{ rigger_r=1; break; }}; done; \
                 [ -n \"$rigger_r\" ] || {{ echo {token}-R; exit 0; }}; ",
                sh_quote_glob(r)
            ));
        }
        script.push_str("exec ");
        script.push_str(&line);
        let start = Instant::now();
        let start_ts = timestamp();
        let out = ctx.run_user(&script, stdin).await?;
        if out.status == 0 {
            let s = out.stdout_str();
            let skipped = match s.trim_end() {
                t if t == format!("{token}-C") => creates.as_ref().map(|c| format!("skipped, since {c} exists")),
                t if t == format!("{token}-R") => {
                    removes.as_ref().map(|r| format!("skipped, since {r} does not exist"))
                }
                _ => None,
            };
            if let Some(msg) = skipped {
                return Ok(skipped_by_guard(msg, &display));
            }
        }
        Ok(shape_output(&display, out, strip, ctx.max_output, start, start_ts))
    }
}

fn timestamp() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    format!("{}.{:06}", now.as_secs(), now.subsec_micros())
}

fn shape_output(
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
        .with("delta", format!("{}.{:06}", elapsed.as_secs(), elapsed.subsec_micros()));
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

static RAW_DOC: ModuleDoc = ModuleDoc {
    name: "raw",
    aliases: &[],
    short: "Run a command line over the connection as it is",
    description: "Sends the text to the host's login shell without any processing. Useful to \
bootstrap hosts. Skipped in check mode.",
    free_form: true,
    options: &[OptionDoc::new(
        "executable",
        OptKind::Path,
        "Shell to run the command with: the path of a program, passed quoted. The command itself (the \
free-form text) is shell code by design.",
    )],
    examples: "- raw: test -e /usr/bin/python3 || apt-get install -y python3-minimal\n",
    returns: COMMON_RETURNS,
    controller_only: false,
};

struct RawModule;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawParams {
    #[serde(default)]
    _raw_params: Option<String>,
    executable: Option<String>,
}

#[async_trait]
impl Module for RawModule {
    fn doc(&self) -> &'static ModuleDoc {
        &RAW_DOC
    }

    /// Nothing tells what the text does: the plan reports it skipped (as
    /// check mode shows it) and [`RunRaw`] runs it.
    async fn query(&self, _ctx: &ModuleCtx<'_>, args: Map<String, Value>) -> Result<Plan, ModuleError> {
        let p: RawParams = parse_params(&RAW_DOC, args)?;
        let text = p
            ._raw_params
            .ok_or_else(|| ModuleError::Args("raw: no command given".into()))?;
        let line = match &p.executable {
            Some(exe) => format!("{} -c {}", sh_quote_command(exe), sh_quote(&text)),
            None => text.clone(),
        };
        let planned = ModuleOutcome {
            skipped: true,
            msg: Some("skipped in check mode".into()),
            ..Default::default()
        };
        // Not `Plan::change`: the planned (check mode) outcome is a skip, not a change.
        Ok(Plan::Change(planned, Box::new(RunRaw { text, line })))
    }
}

/// Send a `raw` command line.
struct RunRaw {
    /// The text as given (the result's `cmd`).
    text: String,
    /// What is sent: the text, or `EXECUTABLE -c TEXT`.
    line: String,
}

#[async_trait]
impl Change for RunRaw {
    async fn apply(
        self: Box<Self>,
        ctx: &ModuleCtx<'_>,
        _planned: ModuleOutcome,
    ) -> Result<ModuleOutcome, ModuleError> {
        let start = Instant::now();
        let ts = timestamp();
        let out = ctx.run_user(&self.line, None).await?;
        // raw keeps stdout as is (no stripping), like Ansible.
        Ok(shape_output(&self.text, out, false, ctx.max_output, start, ts))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exec::task::execute;
    use crate::modules::files::testutil::TestEnv;
    use serde_json::json;

    #[tokio::test]
    async fn creates_and_removes_guard_in_one_round_trip() {
        let env = TestEnv::new();
        let cmd = CommandModule { shell: false };
        let marker = env.path("m a*rk");
        let args = json!({"argv": ["touch", marker], "creates": marker});
        // Check mode predicts a run and touches nothing.
        let r = env.run(&cmd, args.clone(), true).await.unwrap();
        assert!(r.changed && !std::path::Path::new(&marker).exists());
        let r = env.run(&cmd, args.clone(), false).await.unwrap();
        assert!(r.changed, "{r:?}");
        assert!(std::path::Path::new(&marker).exists());
        let r = env.run(&cmd, args, false).await.unwrap();
        assert!(!r.changed);
        assert_eq!(r.ret["stdout"], format!("skipped, since {marker} exists"));
        // A glob in `creates` matches; `removes` skips when nothing matches.
        let sh = CommandModule { shell: true };
        let glob = format!("{}/m*", env.dir.path().display());
        let r = env
            .run(&sh, json!({"cmd": "echo ran", "creates": glob}), false)
            .await
            .unwrap();
        assert!(!r.changed);
        let gone = env.path("gone");
        let r = env
            .run(&sh, json!({"cmd": "echo ran", "removes": gone}), false)
            .await
            .unwrap();
        assert!(!r.changed);
        assert_eq!(r.ret["stdout"], format!("skipped, since {gone} does not exist"));
        // The command's own output, status and chdir come through unchanged.
        let r = env
            .run(
                &sh,
                json!({"cmd": "pwd; exit 3", "removes": marker, "chdir": "/"}),
                false,
            )
            .await
            .unwrap();
        assert_eq!((r.ret["rc"].clone(), r.ret["stdout"].clone()), (json!(3), json!("/")));
    }

    /// Output over the limit: the head is kept, the cut is stated in the
    /// result with the bytes dropped and in a warning; stderr has its own limit.
    #[tokio::test]
    async fn output_over_the_limit_is_cut_and_said_so() {
        let env = TestEnv::new();
        let sh = CommandModule { shell: true };
        let mut ctx = env.ctx(false, true);
        ctx.max_output = 1000;
        let args = |cmd: &str| match json!({ "cmd": cmd }) {
            Value::Object(m) => m,
            _ => unreachable!(),
        };
        // 300 lines of 9 bytes on stdout, 5 bytes on stderr.
        let r = execute(&sh, &ctx, args("seq 10000001 10000300; echo oops >&2"))
            .await
            .unwrap();
        let stdout = r.ret["stdout"].as_str().unwrap();
        assert_eq!(stdout.len(), 1000);
        assert!(
            stdout.starts_with("10000001\n10000002\n") && stdout.ends_with("\n1"),
            "{stdout}"
        );
        assert_eq!(r.ret["stdout_truncated"], json!(true));
        assert_eq!(r.ret["stdout_dropped_bytes"], json!(2700 - 1000));
        assert_eq!(r.ret["stdout_lines"].as_array().unwrap().len(), 112);
        assert_eq!(r.ret["stderr"], json!("oops"));
        assert!(r.ret.get("stderr_truncated").is_none(), "{:?}", r.ret);
        let w = r.ret["warnings"].as_array().unwrap();
        assert_eq!(w.len(), 1, "{w:?}");
        let w = w[0].as_str().unwrap();
        assert!(
            w.starts_with("stdout was cut to its first 1000 bytes; 1700 more bytes were read and dropped"),
            "{w}"
        );
        assert!(w.contains("--max-output"), "{w}");
        // Within the limit: exactly as before, no extra keys.
        let r = execute(&sh, &ctx, args("echo hi")).await.unwrap();
        assert_eq!(r.ret["stdout"], json!("hi"));
        assert!(r.ret.get("warnings").is_none() && r.ret.get("stdout_truncated").is_none());
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
