//! `command` and `shell`: run a command line on the host, without or with a shell.

use std::time::Instant;

use async_trait::async_trait;
use serde::Deserialize;
use serde_json::{Map, Value};

use super::output::{shape_output, timestamp, COMMON_RETURNS};
use crate::connection::sh_quote;
use crate::modules::{
    parse_params, Change, DetachedJob, Module, ModuleCtx, ModuleDoc, ModuleError, ModuleOutcome, OptKind, OptionDoc,
    Plan,
};
use crate::shell::{sh_expand_word, sh_quote_command, sh_quote_glob};

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
        "Expand `$NAME`, `${NAME}` and a leading `~` or `~user` in each argument on the host, from the \
command's environment (as Ansible does with Python's `expanduser(expandvars(arg))`; an unset variable \
stays as written); nothing else is shell syntax.",
    )
    .default("yes"),
    OptionDoc::new(
        "executable",
        OptKind::Path,
        "Not used (as in Ansible since 2.4): the result carries a warning saying so. Use `shell` to run \
a command line through another shell.",
    ),
];

static COMMAND_DOC: ModuleDoc = ModuleDoc {
    name: "command",
    aliases: &[],
    short: "Run a command on the host, without a shell",
    description: "Runs the command with its arguments split like a shell would split them, but \
without shell features (pipes, redirections, `;`); only `$VAR` and `~` in arguments are \
expanded (see `expand_argument_vars`). Use `shell` for the rest. The task \
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
    #[serde(default = "yes")]
    expand_argument_vars: bool,
    executable: Option<String>,
}

fn yes() -> bool {
    true
}

pub(super) struct CommandModule {
    pub(super) shell: bool,
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
            let word = |a: &String| {
                if p.expand_argument_vars {
                    sh_expand_word(a)
                } else {
                    sh_quote(a)
                }
            };
            let program = match word(&argv[0]) {
                w if w == sh_quote(&argv[0]) => sh_quote_command(&argv[0]),
                w => w,
            };
            let line = std::iter::once(program)
                .chain(argv[1..].iter().map(word))
                .collect::<Vec<_>>()
                .join(" ");
            (argv.join(" "), line)
        };
        // Ansible's command module ignores `executable`, and says so.
        let warnings: Vec<String> = match (&p.executable, self.shell) {
            (Some(exe), false) => vec![format!(
                "As of Ansible 2.4, the parameter 'executable' is no longer supported with the 'command' \
                 module. Not using '{exe}'."
            )],
            _ => Vec::new(),
        };
        let plan = plan_command(ctx, p, display, line, warnings.clone()).await?;
        Ok(match plan {
            Plan::Done(o) => Plan::Done(with_warnings(o, &warnings)),
            Plan::Change(o, c) => Plan::Change(with_warnings(o, &warnings), c),
        })
    }
}

/// `o` with the module's own `warnings` added to any it has.
fn with_warnings(mut o: ModuleOutcome, warnings: &[String]) -> ModuleOutcome {
    if warnings.is_empty() {
        return o;
    }
    let entry = o.ret.entry("warnings").or_insert_with(|| Value::Array(Vec::new()));
    if let Value::Array(list) = entry {
        let own = warnings.iter().cloned().map(Value::String);
        // The module's warnings come first, as Ansible's do.
        let rest = std::mem::take(list);
        list.extend(own);
        list.extend(rest);
    }
    o
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
/// ([`Plan::Done`]) or run (reported as "would have run"; when only the
/// shell can tell, a real run leaves the guard to [`RunCommand`]'s script,
/// which skips the command in the same round trip). Without a guard
/// the command's effect cannot be predicted: the plan reports it skipped,
/// as check mode shows it. Either way [`RunCommand`] runs it for real.
async fn plan_command(
    ctx: &ModuleCtx<'_>,
    p: CommandParams,
    display: String,
    line: String,
    warnings: Vec<String>,
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
        warnings,
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
        // Outside check mode the change's script tests the guard in the same
        // round trip as the command (and skips it): asking the shell here
        // first would cost a second round trip on every guarded command.
        None if !ctx.check_mode => Guard::Run, // check_mode: only check mode reports the shell's answer
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
    /// The module's own warnings (an `executable` given to `command`).
    warnings: Vec<String>,
}

#[async_trait]
impl Change for RunCommand {
    /// `async:` runs the command (behind its guard) detached on the host.
    fn detached(&self) -> Option<DetachedJob> {
        let token = format!("RIGGER-SKIP-{:016x}", rand::random::<u64>());
        let mut skips = Vec::new();
        if let Some(c) = &self.creates {
            skips.push((format!("{token}-C"), format!("skipped, since {c} exists")));
        }
        if let Some(r) = &self.removes {
            skips.push((format!("{token}-R"), format!("skipped, since {r} does not exist")));
        }
        let script = if skips.is_empty() {
            format!("{}exec {}", self.chdir, self.line)
        } else {
            guarded_script(
                &self.chdir,
                &self.line,
                self.creates.as_deref(),
                self.removes.as_deref(),
                &token,
            )
        };
        Some(DetachedJob {
            script,
            stdin: self.stdin.clone(),
            display: self.display.clone(),
            strip: self.strip,
            skips,
        })
    }

    async fn apply(
        mut self: Box<Self>,
        ctx: &ModuleCtx<'_>,
        _planned: ModuleOutcome,
    ) -> Result<ModuleOutcome, ModuleError> {
        let warnings = std::mem::take(&mut self.warnings);
        self.run(ctx).await.map(|o| with_warnings(o, &warnings))
    }
}

impl RunCommand {
    async fn run(self: Box<Self>, ctx: &ModuleCtx<'_>) -> Result<ModuleOutcome, ModuleError> {
        let RunCommand {
            display,
            line,
            chdir,
            stdin,
            strip,
            creates,
            removes,
            warnings: _,
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
        let script = guarded_script(&chdir, &line, creates.as_deref(), removes.as_deref(), &token);
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

/// The command behind its `creates`/`removes` guard: the shell tests the
/// paths (expanding globs) and prints `{token}-C` (`creates` exists) or
/// `{token}-R` (`removes` does not) instead of running the command.
fn guarded_script(chdir: &str, line: &str, creates: Option<&str>, removes: Option<&str>, token: &str) -> String {
    let mut script = format!("{chdir}set +f; ");
    if let Some(c) = creates {
        script.push_str(&format!(
            "for f in {}; do [ -e \"$f\" ] && {{ echo {token}-C; exit 0; }}; done; ",
            sh_quote_glob(c)
        ));
    }
    if let Some(r) = removes {
        script.push_str(&format!(
            "rigger_r=; for f in {}; do [ -e \"$f\" ] && {{ rigger_r=1; break; }}; done; \
             [ -n \"$rigger_r\" ] || {{ echo {token}-R; exit 0; }}; ",
            sh_quote_glob(r)
        ));
    }
    script.push_str("exec ");
    script.push_str(line);
    script
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exec::task::execute;
    use crate::modules::files::testutil::TestEnv;
    use serde_json::json;

    #[tokio::test]
    async fn command_ignores_executable_with_ansibles_warning() {
        let env = TestEnv::new();
        let cmd = CommandModule { shell: false };
        let args = json!({"_raw_params": "ls /dev/null", "executable": "/bogus"});
        let r = env.run(&cmd, args, false).await.unwrap();
        assert_eq!(r.ret["stdout"], "/dev/null", "{r:?}");
        let w = r.ret["warnings"].as_array().unwrap();
        assert_eq!(w.len(), 1);
        assert!(w[0].as_str().unwrap().contains("no longer supported"), "{w:?}");
        assert!(w[0].as_str().unwrap().contains("Not using '/bogus'"), "{w:?}");
        // `shell` runs its command line with the executable given.
        let sh = CommandModule { shell: true };
        let r = env
            .run(&sh, json!({"_raw_params": "echo $0", "executable": "/bin/bash"}), false)
            .await
            .unwrap();
        assert_eq!(r.ret["stdout"], "/bin/bash");
        assert!(r.ret.get("warnings").is_none());
    }

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
}
