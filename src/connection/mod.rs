//! The connection layer: how rigger runs commands and moves files on a host.
//!
//! A [`Connection`] only knows how to start a process ([`Process`]) with
//! streamed stdin/stdout/stderr. Everything above that — privilege
//! escalation, environment, atomic file upload, download — is written once
//! in this module on top of that primitive, so the SSH and local transports
//! behave identically.

mod content;
mod error;
pub mod known_hosts;
pub mod local;
mod openssh_key;
pub mod output;
pub mod sftp;
pub mod ssh;
pub mod ssh_config;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

/// What the `RIGGER_DEBUG_ROUNDTRIPS` trace may show of the commands run in
/// a scope. Set by the runner around each module run.
#[derive(Clone)]
pub struct TraceScope {
    /// A `no_log` task: its commands are not shown at all.
    pub no_log: bool,
    /// Masks the run's known secrets (the renderer's secrets registry).
    pub redact: Arc<dyn Fn(&str) -> String + Send + Sync>,
    /// At `-vvv`: shows each command and upload as Ansible's `<host>
    /// EXEC` and `<host> PUT` lines. `None` otherwise, and then nothing is
    /// formatted.
    pub show_exec: Option<ExecDisplay>,
}

/// What `-vvv` shows of the work on a host, as Ansible's connection
/// plugins do.
pub enum TargetAction {
    /// A command, as [`trace_text`] shows it, and the become user.
    Exec { command: String, become_: Option<String> },
    /// An upload: the local file (or the size of the data) and where to.
    Put { source: String, dest: String },
}

/// Where `<host> EXEC` / `PUT` lines go (the run's renderer).
pub type ExecDisplay = Arc<dyn Fn(&str, TargetAction) + Send + Sync>;

/// The `<host> PUT` line of an upload, when the scope asks for one.
fn show_put(conn: &dyn Connection, source: impl FnOnce() -> String, dest: &str) {
    let _ = TRACE_SCOPE.try_with(|s| {
        if let Some(show) = &s.show_exec {
            let action = if s.no_log {
                TargetAction::Put {
                    source: "<hidden: no_log task>".into(),
                    dest: "<hidden: no_log task>".into(),
                }
            } else {
                TargetAction::Put {
                    source: (s.redact)(&source()),
                    dest: (s.redact)(dest),
                }
            };
            show(conn.host(), action);
        }
    });
}

/// The `<host> EXEC` line of a command about to run, when the scope asks
/// for one (`-vvv`): the command masked as [`trace_text`] masks it.
fn show_exec(conn: &dyn Connection, req: &ExecRequest) {
    let _ = TRACE_SCOPE.try_with(|s| {
        if let Some(show) = &s.show_exec {
            let command = if s.no_log {
                "<hidden: no_log task>".to_string()
            } else {
                (s.redact)(&req.cmd)
            };
            let become_ = req.become_.as_ref().map(|b| {
                let method = match b.method {
                    BecomeMethod::Sudo => "sudo",
                    BecomeMethod::Su => "su",
                };
                format!("{method} {}", b.user)
            });
            show(conn.host(), TargetAction::Exec { command, become_ });
        }
    });
}

tokio::task_local! {
    pub static TRACE_SCOPE: TraceScope;
}

/// What a `RIGGER_DEBUG_ROUNDTRIPS` line shows of `text` (a command, or a
/// message that may quote one or its data): nothing for a `no_log` task,
/// secrets masked otherwise, at most `limit` characters.
pub fn trace_text(text: &str, limit: usize) -> String {
    let shown = TRACE_SCOPE
        .try_with(|s| {
            if s.no_log {
                "<hidden: no_log task>".to_string()
            } else {
                (s.redact)(text)
            }
        })
        .unwrap_or_else(|_| text.to_string());
    shown.chars().take(limit).collect()
}

pub use content::{temp_tag, ContentSum};
pub use error::ConnError;
pub use output::{ExecOutput, OutputLimit};

/// One event from a running remote process.
#[derive(Debug)]
pub enum ProcEvent {
    Stdout(Vec<u8>),
    Stderr(Vec<u8>),
    /// The process ended with this status (signals map to 128+N, as a shell does).
    Exit(i32),
}

/// A process started on a host, with streamed I/O.
#[async_trait]
pub trait Process: Send {
    async fn write_stdin(&mut self, data: &[u8]) -> Result<(), ConnError>;
    async fn close_stdin(&mut self) -> Result<(), ConnError>;
    /// The next output or the exit status. `None` once the process is done
    /// and all output was delivered. A dropped transport is an `Err`.
    async fn next_event(&mut self) -> Result<Option<ProcEvent>, ConnError>;
}

/// A transport to one host. Implementations are cheap to share: one
/// connection per host serves every task of a run, several processes at once.
#[async_trait]
pub trait Connection: Send + Sync {
    /// The host name this connection belongs to (inventory name).
    fn host(&self) -> &str;
    /// Start `cmd` under the login user's shell. `pty` requests a terminal
    /// (needed by `su` to read a password).
    async fn spawn(&self, cmd: &str, pty: bool) -> Result<Box<dyn Process>, ConnError>;
    /// Close the transport; later calls fail.
    async fn close(&self) {}
    /// How many remote processes (SSH channels) this connection has started:
    /// the round trips a workload cost, printed by `RIGGER_DEBUG_ROUNDTRIPS=1`.
    fn channels_opened(&self) -> usize {
        0
    }
    /// How many commands ran (on their own channel or in the persistent shell).
    fn commands_run(&self) -> usize {
        self.channels_opened()
    }
    /// True when [`Connection::run_pipelined`] may run commands (the
    /// transport keeps a persistent shell on the host).
    fn pipelining(&self) -> bool {
        false
    }
    /// Run `cmd` to completion in the host's persistent shell with all of
    /// `stdin`, as if on a fresh channel without a terminal (`own_shell`:
    /// not [`ExecRequest::subshell_ok`]), keeping its output within `limit`.
    /// `None` when the transport has no such shell or it is busy with
    /// another command: the caller then uses [`Connection::spawn`]; nothing
    /// was run.
    async fn run_pipelined(
        &self,
        _cmd: &str,
        _stdin: &[u8],
        _own_shell: bool,
        _limit: OutputLimit,
    ) -> Option<Result<ExecOutput, ConnError>> {
        None
    }
    /// Facts about the remote side learnt by earlier commands of this
    /// connection (see [`Memo`]); `None` when the transport keeps none.
    fn memo(&self) -> Option<&Memo> {
        None
    }
    /// The connection's SFTP session for uploads (opened by the first call),
    /// or `None`: the transport has none, the host serves no SFTP (or lacks
    /// the OpenSSH extensions an atomic upload needs), or it is turned off
    /// (`ansible_ssh_transfer_method: piped`).
    async fn sftp(&self) -> Option<std::sync::Arc<sftp::Sftp>> {
        None
    }
    /// The login user's umask and ids in the [`Memo`]'s `whoami` format
    /// (`umask` and `id` lines), learnt without starting a program on the
    /// host: the persistent shell's umask (it prints it when it starts) and
    /// the ids of the SFTP server, a process of the same login, from
    /// `/proc/self/status`, with the names the host gives them. `None`
    /// when the transport cannot tell: the caller runs `id`.
    async fn login_user(&self) -> Option<String> {
        None
    }
}

/// The effective user and group ids in a Linux `/proc/PID/status`
/// (`Uid:` and `Gid:` lines: real, effective, saved, filesystem).
pub fn proc_status_ids(status: &str) -> Option<(u32, u32)> {
    let field = |key: &str| -> Option<u32> {
        let line = status.lines().find_map(|l| l.strip_prefix(key))?;
        line.split_whitespace().nth(1)?.parse().ok()
    };
    Some((field("Uid:")?, field("Gid:")?))
}

/// The [`Memo`]'s `whoami` value: the `umask` line and an `id` line (a
/// name the host does not know shows as the number, as `id` prints it; no
/// `groups=`, which nothing reads).
pub fn whoami_memo(umask: &str, uid: u32, user: &str, gid: u32, group: &str) -> String {
    let named = |id: u32, name: &str| match name {
        "" => id.to_string(),
        n => format!("{id}({n})"),
    };
    format!("{umask}\nuid={} gid={}", named(uid, user), named(gid, group))
}

/// Answers of remote queries that hold for the life of a connection (the
/// login user's umask is fixed when the session starts; its ids change only
/// when a task changes users or groups), so a module asks the host once
/// instead of in every task. The runner clears it after any task that may
/// have changed them ([`Memo::clear`]).
#[derive(Debug, Default)]
pub struct Memo(std::sync::Mutex<std::collections::HashMap<String, String>>);

impl Memo {
    fn map(&self) -> std::sync::MutexGuard<'_, std::collections::HashMap<String, String>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
    pub fn get(&self, key: &str) -> Option<String> {
        self.map().get(key).cloned()
    }
    pub fn set(&self, key: &str, value: String) {
        self.map().insert(key.to_string(), value);
    }
    pub fn clear(&self) {
        self.map().clear();
    }
    pub fn clear_prefix(&self, prefix: &str) {
        self.map().retain(|k, _| !k.starts_with(prefix));
    }
}

/// How to reach a host over SSH. Filled from inventory variables
/// (`ansible_host`, `ansible_port`, ...), `~/.ssh/config` and CLI flags.
#[derive(Debug, Clone)]
pub struct SshTarget {
    /// Inventory name, for messages.
    pub name: String,
    /// Address or DNS name to connect to.
    pub address: String,
    pub port: u16,
    pub user: String,
    /// Private key files to try, in order.
    pub identity_files: Vec<PathBuf>,
    /// Passphrase for encrypted keys.
    pub key_passphrase: Option<String>,
    /// Password authentication (bootstrap).
    pub password: Option<String>,
    /// Use `SSH_AUTH_SOCK` when set.
    pub use_agent: bool,
    pub host_key_checking: HostKeyChecking,
    /// known_hosts files; the first one is written by `accept-new`.
    pub known_hosts: Vec<PathBuf>,
    /// Bastions to hop through, outermost first.
    pub jump_hosts: Vec<SshTarget>,
    pub connect_timeout: Duration,
    /// Interval of SSH keepalive requests; `None` disables them.
    pub keepalive: Option<Duration>,
    /// Unanswered keepalives after which the host is unreachable
    /// (OpenSSH's `ServerAliveCountMax`, default 3).
    pub keepalive_max: usize,
    /// Run commands through one persistent remote shell instead of a new
    /// channel (sshd session + login shell) per command.
    pub pipelining: bool,
    /// Upload files over SFTP where it can do what the shell upload does
    /// (see [`sftp::put`]); false: always through the shell.
    pub sftp: bool,
}

impl SshTarget {
    /// A target with defaults for everything but the address.
    pub fn new(name: &str, address: &str) -> Self {
        SshTarget {
            name: name.to_string(),
            address: address.to_string(),
            port: 22,
            user: default_user(),
            identity_files: Vec::new(),
            key_passphrase: None,
            password: None,
            use_agent: true,
            host_key_checking: HostKeyChecking::Strict,
            known_hosts: home_dir().map(|h| vec![h.join(".ssh/known_hosts")]).unwrap_or_default(),
            jump_hosts: Vec::new(),
            connect_timeout: Duration::from_secs(10),
            keepalive: Some(Duration::from_secs(15)),
            keepalive_max: 3,
            pipelining: false,
            sftp: false,
        }
    }
}

/// The current user's name, the default remote user as with OpenSSH.
pub fn default_user() -> String {
    std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .unwrap_or_else(|_| "root".to_string())
}

pub fn home_dir() -> Option<PathBuf> {
    std::env::var_os("HOME").map(PathBuf::from)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostKeyChecking {
    /// Unknown or changed keys are errors.
    Strict,
    /// Unknown keys are learned (written to known_hosts); changed keys are errors.
    AcceptNew,
    /// No checking; a warning is printed once per host.
    Off,
}

/// A host key checking mode that is not one of the known names (kept as given).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("host key checking must be strict, accept-new or off, not `{0}`")]
pub struct UnknownHostKeyChecking(pub String);

impl std::str::FromStr for HostKeyChecking {
    type Err = UnknownHostKeyChecking;
    fn from_str(s: &str) -> Result<Self, UnknownHostKeyChecking> {
        match s.to_ascii_lowercase().as_str() {
            "strict" | "yes" | "true" => Ok(HostKeyChecking::Strict),
            "accept-new" | "accept_new" => Ok(HostKeyChecking::AcceptNew),
            "off" | "no" | "false" => Ok(HostKeyChecking::Off),
            _ => Err(UnknownHostKeyChecking(s.to_string())),
        }
    }
}

/// Privilege escalation for one command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Become {
    pub method: BecomeMethod,
    pub user: String,
    /// Sent on stdin (sudo) or to the terminal (su), never on a command line.
    pub password: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BecomeMethod {
    Sudo,
    Su,
}

/// A become method rigger does not support (kept as given).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unsupported become method `{0}` (supported: sudo, su)")]
pub struct UnknownBecomeMethod(pub String);

impl std::str::FromStr for BecomeMethod {
    type Err = UnknownBecomeMethod;
    fn from_str(s: &str) -> Result<Self, UnknownBecomeMethod> {
        match s {
            "sudo" => Ok(BecomeMethod::Sudo),
            "su" => Ok(BecomeMethod::Su),
            _ => Err(UnknownBecomeMethod(s.to_string())),
        }
    }
}

/// A command to run, with what surrounds it.
#[derive(Debug, Clone, Default)]
pub struct ExecRequest {
    /// Shell command line (run by `/bin/sh -c`).
    pub cmd: String,
    pub stdin: Option<Vec<u8>>,
    pub become_: Option<Become>,
    /// Environment variables exported before the command.
    pub env: Vec<(String, String)>,
    pub timeout: Option<Duration>,
    /// The command is one of rigger's own scripts, which may run in a
    /// subshell of the persistent shell (a fork, no new program started):
    /// it does not rely on its own `$$` or on `exec` replacing its shell.
    /// False (the default) runs it as its own shell process, exactly as on
    /// a fresh channel: user commands.
    pub subshell_ok: bool,
    /// Run on an SSH channel of its own, never in the persistent shell: a
    /// user's command, whose background children may keep its output open.
    /// On a channel of its own that output cannot mix with the next
    /// command's; rigger waits for it to close, as Ansible does.
    pub own_channel: bool,
    /// How much of the output to hold (see [`OutputLimit`]).
    pub output_limit: OutputLimit,
    /// The soft limit of open files the command runs with (Ansible's
    /// `ansible_python_module_rlimit_nofile`), at most the hard limit.
    pub rlimit_nofile: Option<u64>,
}

impl ExecRequest {
    pub fn new(cmd: impl Into<String>) -> Self {
        ExecRequest {
            cmd: cmd.into(),
            ..Default::default()
        }
    }
}

/// The one shell-quoting helper ([`crate::shell`]), here for the modules.
pub use crate::shell::sh_quote;

/// A POSIX shell variable name: `[A-Za-z_][A-Za-z0-9_]*`.
pub fn is_env_name(k: &str) -> bool {
    let mut b = k.bytes();
    matches!(b.next(), Some(c) if c.is_ascii_alphabetic() || c == b'_')
        && b.all(|c| c.is_ascii_alphanumeric() || c == b'_')
}

const BECOME_PROMPT: &str = "[rigger-become-password]:";

/// Run a command with optional become, env and stdin, and collect its output.
pub async fn exec(conn: &dyn Connection, req: &ExecRequest) -> Result<ExecOutput, ConnError> {
    show_exec(conn, req);
    let started = log_exec_start(conn, req);
    let fut = exec_inner(conn, req);
    let res = match req.timeout {
        Some(t) => match tokio::time::timeout(t, fut).await {
            Ok(res) => res,
            Err(_) => Err(ConnError::CommandTimeout(t.as_secs())),
        },
        None => fut.await,
    };
    if let Some(started) = started {
        log_exec_end(conn, &res, started);
    }
    res
}

/// How much of a command the debug events show: the first 160 characters
/// at debug (as `RIGGER_DEBUG_ROUNDTRIPS=2` does), all of it at trace.
fn logged_command_limit() -> usize {
    if tracing::enabled!(tracing::Level::TRACE) {
        usize::MAX
    } else {
        160
    }
}

/// The debug event of a command about to run (see [`crate::logging`]): the
/// command as [`trace_text`] shows it (nothing of a `no_log` task's, the
/// run's secrets masked), the become user, the names of the variables set,
/// never their values, stdin or a password. `None` when debug is off.
fn log_exec_start(conn: &dyn Connection, req: &ExecRequest) -> Option<std::time::Instant> {
    if !tracing::enabled!(tracing::Level::DEBUG) {
        return None;
    }
    let become_ = req.become_.as_ref().map(|b| {
        let method = match b.method {
            BecomeMethod::Sudo => "sudo",
            BecomeMethod::Su => "su",
        };
        format!("{method} {}", b.user)
    });
    let env: Vec<&str> = req.env.iter().map(|(k, _)| k.as_str()).collect();
    tracing::debug!(
        host = conn.host(),
        "become" = become_.as_deref().unwrap_or("-"),
        env = ?env,
        stdin_bytes = req.stdin.as_ref().map_or(0, Vec::len),
        cmd = ?trace_text(&req.cmd, logged_command_limit()),
        "exec"
    );
    Some(std::time::Instant::now())
}

/// The debug event of a finished command: its status and output sizes,
/// never the output (a `no_log` task's may hold its secrets).
fn log_exec_end(conn: &dyn Connection, res: &Result<ExecOutput, ConnError>, started: std::time::Instant) {
    let ms = started.elapsed().as_millis() as u64;
    match res {
        Ok(out) => tracing::debug!(
            host = conn.host(),
            status = out.status,
            stdout_bytes = out.stdout.len() as u64 + out.stdout_dropped,
            stderr_bytes = out.stderr.len() as u64 + out.stderr_dropped,
            ms,
            "exec done"
        ),
        Err(e) => tracing::debug!(
            host = conn.host(),
            ms,
            error = %trace_text(&e.to_string(), usize::MAX),
            "exec failed"
        ),
    }
}

async fn exec_inner(conn: &dyn Connection, req: &ExecRequest) -> Result<ExecOutput, ConnError> {
    // A NUL byte cannot travel in a command line (the shell drops it or
    // the kernel cuts the argument there): refuse rather than run
    // something other than what was quoted.
    if req.cmd.contains('\0') || req.env.iter().any(|(k, v)| k.contains('\0') || v.contains('\0')) {
        return Err(ConnError::Io(
            "a command or environment value contains a NUL byte, which a shell command line cannot carry".into(),
        ));
    }
    let mut script = String::new();
    for (k, v) in &req.env {
        // The name is shell syntax (`NAME=value`), not a value that quoting could protect.
        if !is_env_name(k) {
            return Err(ConnError::Io(format!(
                "environment variable name {k:?} is not valid: use letters, digits and `_`, not starting with a digit"
            )));
        }
        script.push_str(&format!("{}={}; export {}; ", k, sh_quote(v), k));
    }
    if let Some(n) = req.rlimit_nofile {
        // As Ansible's module wrapper: the requested soft limit, capped at the hard one.
        script.push_str(&format!(
            "{{ ulimit -S -n {n} || ulimit -S -n \"$(ulimit -H -n)\"; }} 2>/dev/null; "
        ));
    }
    script.push_str(&req.cmd);
    let marker = format!("RIGGER-BECOME-OK-{:016x}", rand::random::<u64>());
    let (cmdline, handshake, pty) = wrap_become(&script, req.become_.as_ref(), &marker);
    // The persistent shell serves everything but a terminal or a password
    // dialogue; `sudo -n` only prints the marker, checked on the replayed output.
    let password = req.become_.as_ref().and_then(|b| b.password.as_ref());
    if !req.own_channel && !pty && (!handshake || password.is_none()) {
        let stdin = req.stdin.as_deref().unwrap_or_default();
        // The `sudo` marker line comes first on stdout and is not the command's.
        let limit = match handshake {
            true => req.output_limit.plus(marker.len() + 2),
            false => req.output_limit,
        };
        if let Some(res) = conn.run_pipelined(&cmdline, stdin, !req.subshell_ok, limit).await {
            let done = res?;
            if !handshake {
                req.output_limit.check(&done)?;
                return Ok(done);
            }
            let mut out = ExecOutput {
                stdout_dropped: done.stdout_dropped,
                stderr_dropped: done.stderr_dropped,
                ..Default::default()
            };
            let mut replay = Replay::of(done);
            become_handshake(&mut replay, &marker, "", &mut out).await?;
            collect(&mut replay, &mut out, req.output_limit).await?;
            return Ok(out);
        }
    }
    let mut proc = conn.spawn(&cmdline, pty).await?;
    let mut out = ExecOutput::default();
    if handshake {
        let password = req
            .become_
            .as_ref()
            .and_then(|b| b.password.clone())
            .unwrap_or_default();
        become_handshake(&mut *proc, &marker, &password, &mut out).await?;
    }
    if let Some(data) = &req.stdin {
        // Write stdin concurrently with reading output so large inputs cannot
        // deadlock against a full output pipe: interleave in chunks.
        for chunk in data.chunks(64 * 1024) {
            proc.write_stdin(chunk).await?;
        }
    }
    proc.close_stdin().await?;
    collect(&mut *proc, &mut out, req.output_limit).await?;
    Ok(out)
}

/// The collected output of a finished command, handed out again as events
/// (stdout, stderr, exit) so the `sudo -n` marker check works on it.
struct Replay {
    events: std::collections::VecDeque<ProcEvent>,
}

impl Replay {
    fn of(out: ExecOutput) -> Self {
        let mut events = std::collections::VecDeque::with_capacity(3);
        events.push_back(ProcEvent::Stdout(out.stdout));
        events.push_back(ProcEvent::Stderr(out.stderr));
        events.push_back(ProcEvent::Exit(out.status));
        Replay { events }
    }
}

#[async_trait]
impl Process for Replay {
    /// The command already ran with all its input; nothing more can reach it.
    async fn write_stdin(&mut self, _data: &[u8]) -> Result<(), ConnError> {
        Ok(())
    }
    async fn close_stdin(&mut self) -> Result<(), ConnError> {
        Ok(())
    }
    async fn next_event(&mut self) -> Result<Option<ProcEvent>, ConnError> {
        Ok(self.events.pop_front())
    }
}

/// What an upload script's output is read for: its error message.
const UPLOAD_MESSAGES_MAX: usize = 64 * 1024;

/// Files up to this size are uploaded through the persistent shell (they are
/// read into memory); larger ones stream over their own channel.
const PIPELINED_UPLOAD_MAX: u64 = 8 * 1024 * 1024;

/// Build the command line for `become`. Returns (command, needs password handshake, needs pty).
fn wrap_become(script: &str, become_: Option<&Become>, marker: &str) -> (String, bool, bool) {
    let Some(b) = become_ else {
        return (script.to_string(), false, false);
    };
    match (b.method, &b.password) {
        (BecomeMethod::Sudo, None) => {
            // -n: fail instead of prompting. The marker tells sudo's own refusal
            // ("a password is required") apart from a failure of the command.
            let inner = format!("echo {marker}; {script}");
            (
                format!("sudo -H -n -u {} -- /bin/sh -c {}", sh_quote(&b.user), sh_quote(&inner)),
                true,
                false,
            )
        }
        (BecomeMethod::Sudo, Some(_)) => {
            // -k forgets cached credentials so the prompt (or the marker, with
            // NOPASSWD) always comes first and stdin is never confused with it.
            let inner = format!("echo {marker}; {script}");
            (
                format!(
                    "sudo -H -S -k -p {} -u {} -- /bin/sh -c {}",
                    sh_quote(BECOME_PROMPT),
                    sh_quote(&b.user),
                    sh_quote(&inner)
                ),
                true,
                false,
            )
        }
        (BecomeMethod::Su, None) => (
            format!("su {} -s /bin/sh -c {}", sh_quote(&b.user), sh_quote(script)),
            false,
            false,
        ),
        (BecomeMethod::Su, Some(_)) => {
            let inner = format!("echo {marker}; {script}");
            (
                format!("su {} -s /bin/sh -c {}", sh_quote(&b.user), sh_quote(&inner)),
                true,
                true,
            )
        }
    }
}

/// Output of `sudo`/`su` read at most before their success marker.
const BECOME_ANSWER_MAX: usize = 1024 * 1024;

/// Wait for the password prompt or the success marker; answer the prompt.
async fn become_handshake(
    proc: &mut dyn Process,
    marker: &str,
    password: &str,
    out: &mut ExecOutput,
) -> Result<(), ConnError> {
    let mut seen_out: Vec<u8> = Vec::new();
    let mut seen_err: Vec<u8> = Vec::new();
    let mut sent = false;
    loop {
        let ev = proc.next_event().await?;
        match ev {
            Some(ProcEvent::Stdout(d)) => seen_out.extend_from_slice(&d),
            Some(ProcEvent::Stderr(d)) => seen_err.extend_from_slice(&d),
            Some(ProcEvent::Exit(code)) => {
                let err = String::from_utf8_lossy(&seen_err).replace(BECOME_PROMPT, "");
                let text = if err.trim().is_empty() {
                    String::from_utf8_lossy(&seen_out).into_owned()
                } else {
                    err
                };
                // One line: sudo may warn first ("unable to resolve host").
                let lines: Vec<&str> = text.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
                let mut msg = format!("exit status {code}: {}", lines.join("; "));
                if password.is_empty() && text.contains("password is required") {
                    msg.push_str(" (give it with -K, RIGGER_BECOME_PASSWORD or ansible_become_password)");
                }
                return Err(ConnError::Become(msg));
            }
            None => return Err(ConnError::Become("process ended during privilege escalation".into())),
        }
        if let Some(pos) = find(&seen_out, marker.as_bytes()) {
            // Everything after the marker line is the command's own output.
            let mut rest = seen_out.split_off(pos + marker.len());
            if rest.first() == Some(&b'\r') {
                rest.remove(0);
            }
            if rest.first() == Some(&b'\n') {
                rest.remove(0);
            }
            out.stdout.extend_from_slice(&rest);
            // stderr before the marker is sudo's prompt noise; drop the prompt text.
            let err = String::from_utf8_lossy(&seen_err).replace(BECOME_PROMPT, "");
            out.stderr.extend_from_slice(err.trim_start().as_bytes());
            return Ok(());
        }
        if seen_out.len() + seen_err.len() > BECOME_ANSWER_MAX {
            // sudo and su say little before the command starts.
            return Err(ConnError::Become(format!(
                "no answer from sudo or su in the first {} of output",
                output::human_size(BECOME_ANSWER_MAX as u64)
            )));
        }
        let prompt_seen = find(&seen_err, BECOME_PROMPT.as_bytes()).is_some() || find(&seen_out, b"assword").is_some();
        if prompt_seen {
            if sent {
                // A second prompt means the password was wrong.
                if count(&seen_err, BECOME_PROMPT.as_bytes()) > 1 || count(&seen_out, b"assword") > 1 {
                    return Err(ConnError::Become("incorrect become password".into()));
                }
            } else {
                proc.write_stdin(format!("{password}\n").as_bytes()).await?;
                sent = true;
            }
        }
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn count(hay: &[u8], needle: &[u8]) -> usize {
    hay.windows(needle.len()).filter(|w| *w == needle).count()
}

/// Read a process's output to its end, holding no more than `limit` of each
/// stream (the rest is read and dropped, so the command is never blocked).
/// Output over a [`OutputLimit::Refuse`] limit is an error at once: the
/// caller drops the process, which closes its channel.
async fn collect(proc: &mut dyn Process, out: &mut ExecOutput, limit: OutputLimit) -> Result<(), ConnError> {
    // What the become handshake passed on arrived before the limit applied.
    limit.trim(&mut out.stdout, &mut out.stdout_dropped);
    limit.trim(&mut out.stderr, &mut out.stderr_dropped);
    let mut status = None;
    while let Some(ev) = proc.next_event().await? {
        match ev {
            ProcEvent::Stdout(d) => limit.keep(&mut out.stdout, &mut out.stdout_dropped, &d),
            ProcEvent::Stderr(d) => limit.keep(&mut out.stderr, &mut out.stderr_dropped, &d),
            ProcEvent::Exit(c) => status = Some(c),
        }
        limit.check(out)?;
    }
    match status {
        Some(s) => {
            out.status = s;
            Ok(())
        }
        None => Err(ConnError::Dropped("the command ended without an exit status".into())),
    }
}

/// Mode and ownership for an uploaded file. `None` keeps an existing file's
/// value, or uses the umask default for a new file.
#[derive(Debug, Clone, Default)]
pub struct FileAttrs {
    pub mode: Option<u32>,
    pub owner: Option<String>,
    pub group: Option<String>,
}

/// The shell variables [`upload_to_d`] takes: the destination `d` and its
/// temp file tag `g` ([`temp_tag`]).
pub fn upload_vars(dest: &str) -> String {
    format!("d={}; g={}; ", sh_quote(dest), sh_quote(&temp_tag(dest)))
}

/// The remote half of an atomic upload: data arrives on stdin, is written to a
/// private temp file in the destination directory, fsynced, checked against
/// `sum`, given its attributes and renamed over the destination. An
/// interrupted or corrupted upload leaves `dest` untouched.
fn upload_script(dest: &str, attrs: &FileAttrs, sum: &ContentSum) -> String {
    format!("{}{}", upload_vars(dest), upload_to_d(attrs, sum))
}

/// [`upload_script`] for a destination already in the shell variable `d`
/// and its temp tag in `g` (see [`upload_vars`]).
///
/// Temp files that an earlier, killed upload to the same destination left
/// (`.rigger-tmp-TAG.` and 16 hex digits) are removed first; those of other
/// destinations are left alone. The temp file gets a random name from here
/// and is created exclusively (`conv=excl`: never through an existing file or
/// link) and private (`umask 077`: nobody else can read what is written, a
/// `mode: 0600` secret included), written and fsynced by one GNU `dd`. `dd`,
/// `head` and `cat` end without an error when their input ends early (a
/// dropped connection, a killed rigger), so nothing is renamed before the
/// size and the SHA-1 of the temp file are those of `sum`; otherwise the temp
/// file is removed and the script fails saying what arrived. Then the mode:
/// the given one, an existing file's, or for a new file the umask default (what
/// it would have been created with). An existing file's owner is copied only
/// when it is not the login user's own. Where `dd` or `chmod`/`chown` lack
/// those GNU options (BusyBox), the same is done the portable way: `set -C`
/// (exclusive create) and `cat`, `sync`, `stat -c`.
pub fn upload_to_d(attrs: &FileAttrs, sum: &ContentSum) -> String {
    let mut s = format!(
        "case \"$d\" in */*) p=\"${{d%/*}}\"; p=\"${{p:-/}}\";; *) p=.;; esac; \
         for o in \"$p/.rigger-tmp-$g\".{any16}; do \
         if [ -f \"$o\" ] || [ -L \"$o\" ]; then rm -f -- \"$o\"; fi; done; \
         t=\"$p/.rigger-tmp-$g.{rnd:016x}\"; \
         trap 'rm -f -- \"$t\"' EXIT; trap 'exit 1' HUP INT TERM PIPE; \
         if e=$(umask 077; exec dd of=\"$t\" bs=64k conv=excl,fsync status=none 2>&1); then :; \
         elif [ -e \"$t\" ] || [ -L \"$t\" ]; then printf '%s\\n' \"$e\" >&2; exit 1; \
         else (umask 077; set -C; exec cat > \"$t\") || exit 1; sync \"$t\" 2>/dev/null; fi; {check}",
        any16 = "[0-9a-f]".repeat(16),
        rnd = rand::random::<u64>(),
        check = check_sum("t", sum, "upload", "$d is unchanged"),
    );
    match attrs.mode {
        Some(m) => s.push_str(&format!("chmod {:o} \"$t\" || exit 1; ", m)),
        None => s.push_str(
            "if [ -e \"$d\" ]; then chmod --reference=\"$d\" \"$t\" 2>/dev/null || \
             chmod \"$(stat -c %a \"$d\")\" \"$t\" || exit 1; \
             else chmod \"$(printf %o $(( 0666 & ~$(umask) )))\" \"$t\" || exit 1; fi; ",
        ),
    }
    match (&attrs.owner, &attrs.group) {
        (Some(o), Some(g)) => s.push_str(&format!("chown {}:{} \"$t\" || exit 1; ", sh_quote(o), sh_quote(g))),
        (Some(o), None) => s.push_str(&format!("chown {} \"$t\" || exit 1; ", sh_quote(o))),
        (None, Some(g)) => s.push_str(&format!("chgrp {} \"$t\" || exit 1; ", sh_quote(g))),
        (None, None) => s.push_str(
            "if [ -e \"$d\" ] && ! { [ -O \"$d\" ] && [ -G \"$d\" ]; }; then \
             chown --reference=\"$d\" \"$t\" 2>/dev/null || chown \"$(stat -c %u:%g \"$d\")\" \"$t\" 2>/dev/null; fi; ",
        ),
    }
    s.push_str("mv -f \"$t\" \"$d\" || exit 1; trap - EXIT HUP INT TERM PIPE");
    s
}

/// `cmd` run with its stdin only once all of it arrived: the content
/// (`sum`) is first received into a private temp file and its size and
/// SHA-1 checked; a short read (a dropped connection, a killed rigger)
/// fails before `cmd` runs, saying what arrived. For scripts that write
/// or install what they read (a tar to extract, a crontab, a script for
/// `sh`, a request body): read straight from the channel, they would act on
/// the part that arrived, as `dd`/`cat` in an upload did.
pub fn with_whole_stdin(cmd: &str, sum: &ContentSum) -> String {
    format!(
        "__rgw_i=$(umask 077; mktemp \"${{TMPDIR:-/tmp}}/.rigger-stdin.XXXXXXXX\") || exit 1; \
         trap 'rm -f -- \"$__rgw_i\"' EXIT; trap 'exit 1' HUP INT TERM PIPE; \
         cat > \"$__rgw_i\" || exit 1; {check}\n\
         ( {cmd}\n) < \"$__rgw_i\"",
        check = check_sum("__rgw_i", sum, "input", "nothing was done"),
    )
}

/// Shell that fails unless the file named by the shell variable `file`
/// holds `sum` (its size, then its SHA-1), saying what arrived: "incomplete
/// WHAT: N of M bytes arrived ...; UNCHANGED" or "corrupted WHAT: ...".
fn check_sum(file: &str, sum: &ContentSum, what: &str, unchanged: &str) -> String {
    format!(
        "__rgw_n=$(wc -c < \"${file}\") || exit 1; \
         if [ $((__rgw_n)) -ne {size} ]; then \
         echo \"incomplete {what}: $((__rgw_n)) of {size} bytes arrived (the connection broke?); {unchanged}\" >&2; exit 1; fi; \
         __rgw_h=$(sha1sum < \"${file}\") || exit 1; \
         if [ \"${{__rgw_h%% *}}\" != {sha1} ]; then \
         echo \"corrupted {what}: SHA-1 ${{__rgw_h%% *}} arrived, {sha1} was sent; {unchanged}\" >&2; exit 1; fi; ",
        size = sum.size,
        sha1 = sh_quote(&sum.sha1),
    )
}

/// The SFTP session and the login user's facts when an upload to `dest`
/// can go over SFTP with exactly the shell upload's result: as the login
/// user (no become), no owner or group to set by name, an absolute path,
/// and the user's ids and umask known from an earlier query (the [`Memo`]).
async fn sftp_for(
    conn: &dyn Connection,
    dest: &str,
    attrs: &FileAttrs,
    become_: Option<&Become>,
) -> Option<(std::sync::Arc<sftp::Sftp>, sftp::Who)> {
    if !sftp_allowed(dest, attrs, become_) {
        return None;
    }
    let who = conn.memo()?.get("whoami").and_then(|m| parse_who(&m))?;
    let s = conn.sftp().await?;
    Some((s, who))
}

/// True when an upload to `dest` with `attrs` would go over SFTP now (see
/// [`sftp_for`]): a module that could write through its query script
/// instead (which costs the host `head`, `dd`, `chmod` and `mv`) leaves the
/// write to SFTP.
/// The user's ids and umask need not be known yet: a module's query learns
/// them (see `remote::whoami_unless`).
pub async fn sftp_upload_ready(conn: &dyn Connection, dest: &str, attrs: &FileAttrs, become_: Option<&Become>) -> bool {
    sftp_allowed(dest, attrs, become_) && conn.sftp().await.is_some()
}

/// The SFTP session when a file at `path` may be read over it with what the
/// shell would read: as the login user (no become), an absolute path.
pub async fn sftp_for_reading(
    conn: &dyn Connection,
    path: &str,
    become_: Option<&Become>,
) -> Option<std::sync::Arc<sftp::Sftp>> {
    if become_.is_some() || !path.starts_with('/') {
        return None;
    }
    conn.sftp().await
}

fn sftp_allowed(dest: &str, attrs: &FileAttrs, become_: Option<&Become>) -> bool {
    become_.is_none() && attrs.owner.is_none() && attrs.group.is_none() && dest.starts_with('/')
}

/// An SFTP upload failed (its temp file removed, `dest` untouched): the
/// shell upload is tried next. It reports the precise reason when it fails
/// too (SFTP servers say only "Failure" for a full disk or a quota), and
/// succeeds where the failure was SFTP's own.
fn sftp_failed(conn: &dyn Connection, e: &ConnError) {
    tracing::debug!(
        host = conn.host(),
        error = %trace_text(&e.to_string(), usize::MAX),
        "SFTP upload failed, using the shell"
    );
    if std::env::var("RIGGER_DEBUG_ROUNDTRIPS").is_ok_and(|v| !v.is_empty() && v != "0") {
        stderrln!(
            "rigger-roundtrips: host={} SFTP upload failed, using the shell: {}",
            conn.host(),
            trace_text(&e.to_string(), usize::MAX)
        );
    }
}

/// The memo's `umask` and `id` lines (see `remote::whoami_snippet`).
fn parse_who(memo: &str) -> Option<sftp::Who> {
    let (umask, id) = memo.split_once('\n')?;
    let num = |key: &str| -> Option<u32> {
        let tok = id.split_whitespace().find_map(|t| t.strip_prefix(key))?;
        tok.split('(').next()?.parse().ok()
    };
    Some(sftp::Who {
        uid: num("uid=")?,
        gid: num("gid=")?,
        umask: u32::from_str_radix(umask.trim(), 8).ok()?,
    })
}

/// Write `data` to `dest` atomically (see [`upload_script`]; over SFTP when
/// [`sftp_for`] allows).
pub async fn put_bytes(
    conn: &dyn Connection,
    data: &[u8],
    dest: &str,
    attrs: &FileAttrs,
    become_: Option<&Become>,
) -> Result<(), ConnError> {
    show_put(conn, || format!("({} bytes)", data.len()), dest);
    tracing::debug!(
        host = conn.host(),
        dest = ?trace_text(dest, usize::MAX),
        bytes = data.len(),
        "upload"
    );
    if let Some((s, who)) = sftp_for(conn, dest, attrs, become_).await {
        let a = sftp::PutAttrs { mode: attrs.mode };
        match sftp::put(&s, sftp::Content::Bytes(data), dest, a, who).await {
            Ok(()) => {
                tracing::trace!(host = conn.host(), "uploaded over SFTP");
                return Ok(());
            }
            Err(e) => sftp_failed(conn, &e),
        }
    }
    put_bytes_shell(conn, data, dest, attrs, become_).await
}

/// [`put_bytes`] through the shell.
async fn put_bytes_shell(
    conn: &dyn Connection,
    data: &[u8],
    dest: &str,
    attrs: &FileAttrs,
    become_: Option<&Become>,
) -> Result<(), ConnError> {
    let req = ExecRequest {
        cmd: upload_script(dest, attrs, &ContentSum::of_bytes(data)),
        subshell_ok: true,
        stdin: Some(data.to_vec()),
        become_: become_.cloned(),
        ..Default::default()
    };
    let out = exec(conn, &req).await?;
    if out.status != 0 {
        return Err(ConnError::Io(format!(
            "cannot write {dest}: {}",
            out.stderr_str().trim()
        )));
    }
    Ok(())
}

/// Stream a local file to `dest` atomically without loading it into memory.
pub async fn put_file(
    conn: &dyn Connection,
    local: &Path,
    dest: &str,
    attrs: &FileAttrs,
    become_: Option<&Become>,
) -> Result<(), ConnError> {
    put_file_summed(conn, local, dest, attrs, become_, None).await
}

/// [`put_file`] of a file whose [`ContentSum`] the caller knows already
/// (`None`: it is computed when the upload goes through the shell, which
/// checks it on the host before the rename). A file that changes while it
/// is sent does not match its sum: the upload fails and `dest` is untouched.
pub async fn put_file_summed(
    conn: &dyn Connection,
    local: &Path,
    dest: &str,
    attrs: &FileAttrs,
    become_: Option<&Become>,
    sum: Option<ContentSum>,
) -> Result<(), ConnError> {
    use tokio::io::AsyncReadExt;
    show_put(conn, || local.display().to_string(), dest);
    tracing::debug!(
        host = conn.host(),
        dest = ?trace_text(dest, usize::MAX),
        local = ?trace_text(&local.display().to_string(), usize::MAX),
        "upload"
    );
    let mut f = tokio::fs::File::open(local)
        .await
        .map_err(|e| ConnError::Io(format!("cannot read {}: {e}", local.display())))?;
    if let Some((s, who)) = sftp_for(conn, dest, attrs, become_).await {
        let a = sftp::PutAttrs { mode: attrs.mode };
        match sftp::put(&s, sftp::Content::File(f, local), dest, a, who).await {
            Ok(()) => {
                tracing::trace!(host = conn.host(), "uploaded over SFTP");
                return Ok(());
            }
            Err(e) => sftp_failed(conn, &e),
        }
        f = tokio::fs::File::open(local)
            .await
            .map_err(|e| ConnError::Io(format!("cannot read {}: {e}", local.display())))?;
    }
    let small = conn.pipelining()
        && f.metadata()
            .await
            .is_ok_and(|m| m.is_file() && m.len() <= PIPELINED_UPLOAD_MAX);
    if become_.is_some_and(|b| b.password.is_some()) || small {
        // The handshake needs the collected-exec path; files under a password
        // become (and small files, for the persistent shell) are read into memory.
        let mut data = Vec::new();
        f.read_to_end(&mut data)
            .await
            .map_err(|e| ConnError::Io(e.to_string()))?;
        return put_bytes_shell(conn, &data, dest, attrs, become_).await;
    }
    let sum = match sum {
        Some(s) => s,
        None => ContentSum::of_file_async(local).await?,
    };
    let script = upload_script(dest, attrs, &sum);
    let marker = format!("RIGGER-BECOME-OK-{:016x}", rand::random::<u64>());
    let (cmdline, handshake, pty) = wrap_become(&script, become_, &marker);
    let mut proc = conn.spawn(&cmdline, pty).await?;
    let mut out = ExecOutput::default();
    if handshake {
        // sudo -n: only the marker, never a prompt (password cases returned above).
        become_handshake(&mut *proc, &marker, "", &mut out).await?;
    }
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = f
            .read(&mut buf)
            .await
            .map_err(|e| ConnError::Io(format!("cannot read {}: {e}", local.display())))?;
        if n == 0 {
            break;
        }
        proc.write_stdin(&buf[..n]).await?;
    }
    proc.close_stdin().await?;
    collect(&mut *proc, &mut out, OutputLimit::Keep(UPLOAD_MESSAGES_MAX)).await?;
    if out.status != 0 {
        return Err(ConnError::Io(format!(
            "cannot write {dest}: {}",
            out.stderr_str().trim()
        )));
    }
    Ok(())
}

/// Read a remote file.
pub async fn fetch(conn: &dyn Connection, src: &str, become_: Option<&Become>) -> Result<Vec<u8>, ConnError> {
    let req = ExecRequest {
        cmd: format!("cat -- {}", sh_quote(src)),
        subshell_ok: true,
        become_: become_.cloned(),
        ..Default::default()
    };
    let out = exec(conn, &req).await?;
    if out.status != 0 {
        return Err(ConnError::Io(format!("cannot read {src}: {}", out.stderr_str().trim())));
    }
    Ok(out.stdout)
}

/// A shared connection handle.
pub type SharedConnection = Arc<dyn Connection>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn login_user_from_proc_status_reads_like_id() {
        let status = "Name:\tsshd\nUmask:\t0022\nState:\tS (sleeping)\nUid:\t1000\t1001\t1001\t1001\n\
                      Gid:\t100\t27\t27\t27\nGroups:\t27 100\n";
        // The effective ids, as `id` shows them.
        assert_eq!(proc_status_ids(status), Some((1001, 27)));
        assert_eq!(proc_status_ids("Name:\tx\nUid:\t5\n"), None);
        let memo = whoami_memo("0027", 1001, "ops", 27, "");
        assert_eq!(memo, "0027\nuid=1001(ops) gid=27");
        let who = parse_who(&memo).unwrap();
        assert_eq!((who.uid, who.gid, who.umask), (1001, 27, 0o027));
        let u = crate::modules::host::remote_file::parse_whoami(&format!("U|0027\nI|{}", memo.lines().nth(1).unwrap()));
        assert_eq!(
            (u.uid, u.user.as_str(), u.gid, u.group.as_str(), u.umask),
            (1001, "ops", 27, "27", 0o027)
        );
    }

    #[test]
    fn sftp_uploads_need_the_users_ids_and_umask() {
        let who = parse_who("0027\nuid=1000(ops) gid=100(users) groups=100(users),27(sudo)").unwrap();
        assert_eq!((who.uid, who.gid, who.umask), (1000, 100, 0o027));
        // A user without a passwd entry is a bare number.
        let who = parse_who("0022\nuid=4242 gid=4242 groups=4242").unwrap();
        assert_eq!((who.uid, who.gid), (4242, 4242));
        assert!(parse_who("uid=0(root) gid=0(root)").is_none());
        assert!(parse_who("0022\nnot id output").is_none());
        // Only as the login user, to an absolute path, with no owner or group by name.
        let plain = FileAttrs::default();
        assert!(sftp_allowed("/srv/a", &plain, None));
        assert!(!sftp_allowed("srv/a", &plain, None));
        let owned = FileAttrs {
            owner: Some("web".into()),
            ..Default::default()
        };
        assert!(!sftp_allowed("/srv/a", &owned, None));
        let sudo = Become {
            method: BecomeMethod::Sudo,
            user: "root".into(),
            password: None,
        };
        assert!(!sftp_allowed("/srv/a", &plain, Some(&sudo)));
    }

    /// `sh -c SCRIPT` with `PATH` set to `path` (BusyBox applets) when given.
    fn script_cmd(path: &Option<String>, script: &str) -> std::process::Command {
        let mut cmd = match path {
            Some(p) => {
                let mut c = std::process::Command::new(format!("{p}/sh"));
                c.env("PATH", p);
                c
            }
            None => std::process::Command::new("/bin/sh"),
        };
        cmd.arg("-c").arg(script);
        cmd
    }

    /// Runs the upload script for `dest` with `input` on stdin (the
    /// announced content is `sum`); returns (success, stderr).
    fn run_upload(
        path: &Option<String>,
        dest: &str,
        attrs: &FileAttrs,
        sum: &ContentSum,
        input: &[u8],
    ) -> (bool, String) {
        use std::io::Write;
        let mut child = script_cmd(path, &upload_script(dest, attrs, sum))
            .stdin(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        // The script may fail before it reads everything.
        let _ = child.stdin.take().unwrap().write_all(input);
        let out = child.wait_with_output().unwrap();
        (out.status.success(), String::from_utf8_lossy(&out.stderr).into_owned())
    }

    /// The system's shell, and BusyBox alone (its applets only on PATH) when installed.
    fn shells() -> (tempfile::TempDir, Vec<(&'static str, Option<String>)>) {
        let busybox = ["/bin/busybox", "/usr/bin/busybox"]
            .into_iter()
            .find(|p| std::path::Path::new(p).exists());
        let bin = tempfile::tempdir().unwrap();
        let mut shells: Vec<(&str, Option<String>)> = vec![("sh", None)];
        if let Some(bb) = busybox {
            for a in [
                "sh", "dd", "cat", "chmod", "chown", "chgrp", "mv", "rm", "stat", "sync", "printf", "[", "wc",
                "sha1sum",
            ] {
                std::os::unix::fs::symlink(bb, bin.path().join(a)).unwrap();
            }
            shells.push(("busybox", Some(bin.path().display().to_string())));
        }
        (bin, shells)
    }

    fn names_in(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    /// The upload script writes the bytes, mode and nothing else, with GNU
    /// coreutils (`dd conv=excl`, `chmod --reference`) and with BusyBox
    /// alone (no such options: the portable way).
    #[test]
    fn upload_script_works_with_gnu_and_busybox_tools() {
        use std::os::unix::fs::PermissionsExt;
        let (_bin, shells) = shells();
        let data: Vec<u8> = (0..70_000u32).map(|i| (i % 251) as u8).collect();
        let sum = ContentSum::of_bytes(&data);
        for (name, path) in shells {
            let dir = tempfile::tempdir().unwrap();
            let dest = dir.path().join("f").display().to_string();
            let run = |attrs: &FileAttrs| {
                let (ok, err) = run_upload(&path, &dest, attrs, &sum, &data);
                assert!(ok, "{name}: {err}");
            };
            run(&FileAttrs {
                mode: Some(0o640),
                ..Default::default()
            });
            let mode = |p: &str| std::fs::metadata(p).unwrap().permissions().mode() & 0o7777;
            assert_eq!(
                (std::fs::read(&dest).unwrap() == data, mode(&dest)),
                (true, 0o640),
                "{name}"
            );
            // No mode: an existing file keeps its mode.
            std::fs::set_permissions(&dest, std::fs::Permissions::from_mode(0o600)).unwrap();
            run(&FileAttrs::default());
            assert_eq!(mode(&dest), 0o600, "{name}");
            assert_eq!(names_in(dir.path()), ["f"], "{name}: temp files left");
            // No mode, a new file: the umask default, as a shell's `>` gives
            // (the temp file itself was private while it was written).
            let new = dir.path().join("g").display().to_string();
            let mut cmd = script_cmd(
                &path,
                &format!("umask 027; {}", upload_script(&new, &FileAttrs::default(), &sum)),
            );
            let mut child = cmd.stdin(std::process::Stdio::piped()).spawn().unwrap();
            std::io::Write::write_all(&mut child.stdin.take().unwrap(), &data).unwrap();
            assert!(child.wait().unwrap().success(), "{name}");
            assert_eq!(mode(&new), 0o640, "{name}");
        }
    }

    /// Issue #18 (2): `dd`/`cat` succeed on a short read, so a dropped
    /// connection used to install the part that arrived. Fed fewer bytes than
    /// announced, or other bytes of the announced length, the script fails
    /// saying why, the destination keeps its old content and mode, and no temp
    /// file is left; with GNU tools and with BusyBox.
    #[test]
    fn upload_script_refuses_a_short_or_corrupted_upload() {
        use std::os::unix::fs::PermissionsExt;
        let (_bin, shells) = shells();
        let data: Vec<u8> = (0..300_000u32).map(|i| (i % 253) as u8).collect();
        let sum = ContentSum::of_bytes(&data);
        for (name, path) in shells {
            let dir = tempfile::tempdir().unwrap();
            let dest = dir.path().join("f");
            std::fs::write(&dest, b"old content").unwrap();
            std::fs::set_permissions(&dest, std::fs::Permissions::from_mode(0o640)).unwrap();
            let d = dest.display().to_string();
            let attrs = FileAttrs {
                mode: Some(0o600),
                ..Default::default()
            };
            // A third of the content, then end of input.
            let (ok, err) = run_upload(&path, &d, &attrs, &sum, &data[..100_000]);
            assert!(!ok, "{name}: a short read succeeded");
            assert!(
                err.contains("incomplete upload: 100000 of 300000 bytes"),
                "{name}: {err}"
            );
            // Nothing at all.
            let (ok, err) = run_upload(&path, &d, &attrs, &sum, b"");
            assert!(!ok && err.contains("0 of 300000"), "{name}: {err}");
            // The right length, other bytes.
            let mut bad = data.clone();
            bad[150_000] ^= 1;
            let (ok, err) = run_upload(&path, &d, &attrs, &sum, &bad);
            assert!(!ok, "{name}: a corrupted upload succeeded");
            assert!(
                err.contains("corrupted upload") && err.contains(&sum.sha1),
                "{name}: {err}"
            );
            assert_eq!(std::fs::read(&dest).unwrap(), b"old content", "{name}");
            assert_eq!(
                std::fs::metadata(&dest).unwrap().permissions().mode() & 0o7777,
                0o640,
                "{name}"
            );
            assert_eq!(names_in(dir.path()), ["f"], "{name}: temp files left");
        }
    }

    /// Temp files a killed upload left for the same destination are removed
    /// by the next upload to it; another destination's (even one whose name
    /// starts the same) are not. The temp file is created private, whatever
    /// the final mode (observed by a script that stands in for `dd`).
    #[test]
    fn upload_script_removes_its_own_stale_temp_files_only() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("app.conf");
        let mine = [
            ".rigger-tmp-app.conf.0123456789abcdef",
            ".rigger-tmp-app.conf.fedcba9876543210",
        ];
        let others = [
            ".rigger-tmp-app.conf.old.0123456789abcdef",
            ".rigger-tmp-app.0123456789abcdef",
            ".rigger-tmp-app.conf.0123",
            ".rigger-tmp-other.0123456789abcdef",
        ];
        for n in mine.iter().chain(&others) {
            std::fs::write(dir.path().join(n), b"partial").unwrap();
        }
        let data = b"new content\n";
        let attrs = FileAttrs {
            mode: Some(0o644),
            ..Default::default()
        };
        let (ok, err) = run_upload(
            &None,
            &dest.display().to_string(),
            &attrs,
            &ContentSum::of_bytes(data),
            data,
        );
        assert!(ok, "{err}");
        let mut want: Vec<String> = others.iter().map(|s| s.to_string()).collect();
        want.push("app.conf".into());
        want.sort();
        assert_eq!(names_in(dir.path()), want);
        // A `dd` that records the mode of the file it writes, then fails.
        let bin = tempfile::tempdir().unwrap();
        let fake = bin.path().join("dd");
        std::fs::write(
            &fake,
            "#!/bin/sh\nfor a; do case $a in of=*) f=${a#of=};; esac; done\n: > \"$f\"; stat -c %a \"$f\" > \"$f.mode\"; exit 1\n",
        )
        .unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
        let script = upload_script(&dest.display().to_string(), &attrs, &ContentSum::of_bytes(data));
        let out = std::process::Command::new("/bin/sh")
            .arg("-c")
            .arg(format!("umask 022; {script}"))
            .env("PATH", format!("{}:/usr/bin:/bin", bin.path().display()))
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap();
        assert!(!out.status.success());
        let modes: Vec<String> = names_in(dir.path())
            .into_iter()
            .filter(|n| n.ends_with(".mode"))
            .map(|n| std::fs::read_to_string(dir.path().join(n)).unwrap().trim().to_string())
            .collect();
        assert_eq!(modes, ["600"]);
    }

    /// A script that installs what it reads runs only on the whole input:
    /// fed a part, nothing runs and the status says why; the whole runs it
    /// with exactly that input, its status kept, and no temp file is left.
    #[test]
    fn whole_stdin_runs_nothing_on_a_short_read() {
        use std::io::Write;
        let dir = tempfile::tempdir().unwrap();
        let tmp = tempfile::tempdir().unwrap();
        let out = dir.path().join("installed");
        let data: Vec<u8> = (0..200_000u32).map(|i| (i % 241) as u8).collect();
        let cmd = format!("cat > {}; exit 7", sh_quote(&out.display().to_string()));
        let script = with_whole_stdin(&cmd, &ContentSum::of_bytes(&data));
        let run = |input: &[u8]| {
            let mut child = std::process::Command::new("/bin/sh")
                .arg("-c")
                .arg(&script)
                .env("TMPDIR", tmp.path())
                .stdin(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap();
            let _ = child.stdin.take().unwrap().write_all(input);
            let o = child.wait_with_output().unwrap();
            (o.status.code(), String::from_utf8_lossy(&o.stderr).into_owned())
        };
        let (code, err) = run(&data[..50_000]);
        assert_eq!(code, Some(1), "{err}");
        assert!(err.contains("incomplete input: 50000 of 200000 bytes"), "{err}");
        assert!(!out.exists(), "the command ran on a part of its input");
        let mut bad = data.clone();
        bad[7] ^= 0x20;
        let (code, err) = run(&bad);
        assert!(code == Some(1) && err.contains("corrupted input"), "{err}");
        assert!(!out.exists());
        let (code, err) = run(&data);
        assert_eq!(code, Some(7), "{err}");
        assert!(std::fs::read(&out).unwrap() == data);
        assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 0, "temp files left");
    }

    #[test]
    fn sudo_is_wrapped_with_a_marker_and_never_prompts_without_password() {
        let b = Become {
            method: BecomeMethod::Sudo,
            user: "root".into(),
            password: None,
        };
        let (cmd, handshake, pty) = wrap_become("id", Some(&b), "MARK");
        assert!(cmd.starts_with("sudo -H -n -u root -- /bin/sh -c "), "{cmd}");
        assert!(cmd.contains("echo MARK; id"), "{cmd}");
        assert!(handshake && !pty);
        let b = Become {
            password: Some("secret".into()),
            ..b
        };
        let (cmd, handshake, _) = wrap_become("id", Some(&b), "MARK");
        assert!(handshake && cmd.contains(" -S ") && !cmd.contains("secret"), "{cmd}");
    }

    #[tokio::test]
    async fn become_refusal_is_one_line_with_a_hint() {
        let conn = local::LocalConnection::new("localhost");
        // A stand-in for sudo -n refusing: warnings then the refusal, no marker.
        let out = exec_inner_with_script(
            &conn,
            "echo 'sudo: unable to resolve host h' >&2; echo 'sudo: a password is required' >&2; exit 1",
        )
        .await;
        match out {
            Err(ConnError::Become(msg)) => {
                assert!(!msg.contains('\n'), "{msg}");
                assert!(
                    msg.contains("unable to resolve host h; sudo: a password is required"),
                    "{msg}"
                );
                assert!(msg.contains("RIGGER_BECOME_PASSWORD"), "{msg}");
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    /// Runs `script` and then the become handshake, as `exec` does for sudo.
    async fn exec_inner_with_script(conn: &dyn Connection, script: &str) -> Result<ExecOutput, ConnError> {
        let mut proc = conn.spawn(script, false).await?;
        let mut out = ExecOutput::default();
        become_handshake(&mut *proc, "NEVER-PRINTED", "", &mut out).await?;
        Ok(out)
    }

    #[tokio::test]
    async fn environment_names_and_nul_bytes_are_refused_before_anything_runs() {
        let conn = local::LocalConnection::new("localhost");
        let dir = tempfile::tempdir().unwrap();
        let marker = dir.path().join("PWNED");
        let m = marker.display().to_string();
        for env in [
            vec![(format!("X; touch {m}; Y"), "1".to_string())],
            vec![(format!("X=$(touch {m})"), "1".to_string())],
            vec![("1X".to_string(), "1".to_string())],
            vec![(String::new(), "1".to_string())],
            vec![("OK".to_string(), "a\0b".to_string())],
        ] {
            let req = ExecRequest {
                env: env.clone(),
                ..ExecRequest::new("true")
            };
            assert!(matches!(exec(&conn, &req).await, Err(ConnError::Io(_))), "{env:?}");
        }
        let nul = ExecRequest::new(format!("true '\0'; touch {m}"));
        assert!(matches!(exec(&conn, &nul).await, Err(ConnError::Io(_))));
        assert!(!marker.exists());
        // Good names work, and values are data.
        let req = ExecRequest {
            env: vec![("_A1".into(), "$(touch x) ' \n".into())],
            ..ExecRequest::new("printf '%s' \"$_A1\"")
        };
        let out = exec(&conn, &req).await.unwrap();
        assert_eq!(out.stdout, b"$(touch x) ' \n");
        assert!(is_env_name("PATH") && is_env_name("_x9") && !is_env_name("9x") && !is_env_name("a-b"));
    }

    #[tokio::test]
    async fn local_exec_and_atomic_upload() {
        let conn = local::LocalConnection::new("localhost");
        let out = exec(&conn, &ExecRequest::new("echo hi; echo err >&2; exit 3"))
            .await
            .unwrap();
        assert_eq!(out.stdout_str(), "hi\n");
        assert_eq!(out.stderr_str(), "err\n");
        assert_eq!(out.status, 3);

        let mut req = ExecRequest::new("cat");
        req.stdin = Some(b"piped".to_vec());
        req.env = vec![("X".into(), "a b".into())];
        assert_eq!(exec(&conn, &req).await.unwrap().stdout_str(), "piped");

        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("f.txt");
        let attrs = FileAttrs {
            mode: Some(0o640),
            ..Default::default()
        };
        put_bytes(&conn, b"content", dest.to_str().unwrap(), &attrs, None)
            .await
            .unwrap();
        assert_eq!(std::fs::read(&dest).unwrap(), b"content");
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&dest).unwrap().permissions().mode() & 0o777, 0o640);
        // Mode is kept when not given.
        put_bytes(&conn, b"new", dest.to_str().unwrap(), &FileAttrs::default(), None)
            .await
            .unwrap();
        assert_eq!(std::fs::metadata(&dest).unwrap().permissions().mode() & 0o777, 0o640);
        assert_eq!(fetch(&conn, dest.to_str().unwrap(), None).await.unwrap(), b"new");
        // No temp files left behind.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    /// The limit applies where the bytes arrive: a command printing far
    /// more keeps only the head of each stream and runs to its end (it is not
    /// blocked); output rigger parses is refused instead.
    #[tokio::test]
    async fn output_is_kept_within_the_limit_as_it_arrives() {
        let conn = local::LocalConnection::new("localhost");
        let mut req = ExecRequest::new("head -c 3000000 /dev/zero; head -c 5000 /dev/zero >&2; echo done >&2; exit 4");
        req.output_limit = OutputLimit::Keep(1000);
        let out = exec(&conn, &req).await.unwrap();
        assert_eq!((out.status, out.stdout.len(), out.stdout_dropped), (4, 1000, 2_999_000));
        assert_eq!((out.stderr.len(), out.stderr_dropped), (1000, 4005));
        // Refused: an error naming the stream and the limit.
        req.output_limit = OutputLimit::Refuse(1000);
        match exec(&conn, &req).await {
            Err(e @ ConnError::OutputTooLarge { stream: "stdout", .. }) => {
                assert!(e.to_string().contains("more than 1000 bytes on stdout"), "{e}");
                assert!(!e.is_unreachable());
            }
            other => panic!("unexpected {other:?}"),
        }
        req.output_limit = OutputLimit::Unlimited;
        assert_eq!(exec(&conn, &req).await.unwrap().stdout.len(), 3_000_000);
    }
}
