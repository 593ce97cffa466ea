//! SSH transport with russh.
//!
//! One [`SshConnection`] is one authenticated SSH session to a host (through
//! jump hosts if configured); every [`Connection::spawn`] opens a new session
//! channel on it, so many commands can run at once without reconnecting.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, LazyLock, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use russh::client::{self, AuthResult, Handle};
use russh::keys::agent::client::AgentClient;
use russh::keys::agent::AgentIdentity;
use russh::keys::{HashAlg, PrivateKey, PrivateKeyWithHashAlg, PublicKey, PublicKeyOrCertificate};
use russh::{ChannelMsg, ChannelWriteHalf, Disconnect, MethodSet, Sig};
use tokio::sync::{mpsc, oneshot, watch, OnceCell, OwnedSemaphorePermit, Semaphore};

use super::output::{FrameError, Framed};
use super::{
    home_dir, known_hosts, sh_quote, ConnError, Connection, ExecOutput, HostKeyChecking, OutputLimit, ProcEvent,
    Process, SshTarget,
};

/// Channels open at once on one connection. OpenSSH's default `MaxSessions`
/// is 10; more concurrent commands wait for a free channel instead of failing.
pub const MAX_CONCURRENT_CHANNELS: usize = 10;

/// `RIGGER_DEBUG_ROUNDTRIPS=2` also prints every channel's command as it
/// opens (its first 160 characters; `=3`: whole).
static TRACE_CHANNELS: LazyLock<bool> =
    LazyLock::new(|| std::env::var("RIGGER_DEBUG_ROUNDTRIPS").is_ok_and(|v| v.parse::<u32>().is_ok_and(|n| n >= 2)));
static TRACE_SHOWN: LazyLock<usize> = LazyLock::new(|| {
    match std::env::var("RIGGER_DEBUG_ROUNDTRIPS")
        .ok()
        .and_then(|v| v.parse::<u32>().ok())
    {
        Some(n) if n >= 3 => usize::MAX,
        _ => 160,
    }
});

/// One authenticated SSH connection to a host, shared by every task.
pub struct SshConnection {
    name: String,
    /// "host:port" of the final hop, for messages.
    addr: String,
    handle: Handle<ClientHandler>,
    /// Sessions to the jump hosts, outermost first. They carry `handle`'s
    /// transport, so they must live as long as it does (fields drop in order).
    bastions: Vec<Handle<ClientHandler>>,
    channels: Arc<Semaphore>,
    /// Channels opened so far (see [`Connection::channels_opened`]).
    opened: AtomicUsize,
    /// Commands run in the persistent shell so far.
    pipelined: AtomicUsize,
    /// Run commands through a persistent shell ([`SshTarget::pipelining`]).
    pipelining: bool,
    shell: Mutex<ShellState>,
    memo: super::Memo,
    /// Uploads may use SFTP ([`SshTarget::sftp`]).
    sftp_on: bool,
    /// The SFTP session once asked for (`None` inside: the host has none).
    sftp: OnceCell<Option<Arc<super::sftp::Sftp>>>,
    /// The persistent shell's umask, once it started.
    shell_umask: Mutex<Option<String>>,
    /// [`Connection::login_user`] cannot work on this host.
    login_user_unknowable: AtomicBool,
}

impl SshConnection {
    /// Connect (through jump hosts if any), verify the host key of every hop
    /// and authenticate.
    pub async fn connect(target: &SshTarget) -> Result<SshConnection, ConnError> {
        let hops: Vec<&SshTarget> = target.jump_hosts.iter().chain(std::iter::once(target)).collect();
        let mut handles: Vec<Handle<ClientHandler>> = Vec::with_capacity(hops.len());
        for hop in hops {
            let addr = addr_of(hop);
            let via = handles.last().map(|h| (h, addr_of_prev(target, handles.len())));
            tracing::debug!(
                host = target.name.as_str(),
                addr = addr.as_str(),
                user = hop.user.as_str(),
                via = via.as_ref().map_or("-", |(_, prev)| prev.as_str()),
                pipelining = hop.pipelining,
                sftp = hop.sftp,
                "connecting over SSH"
            );
            let started = std::time::Instant::now();
            let attempt = async {
                let mut handle = open_hop(hop, via).await?;
                authenticate(&mut handle, hop).await?;
                Ok::<_, ConnError>(handle)
            };
            let connected = tokio::time::timeout(hop.connect_timeout, attempt)
                .await
                .unwrap_or_else(|_| {
                    Err(ConnError::Timeout {
                        addr: addr.clone(),
                        secs: hop.connect_timeout.as_secs(),
                    })
                });
            let ms = started.elapsed().as_millis() as u64;
            let handle = match connected {
                Ok(h) => {
                    tracing::debug!(host = target.name.as_str(), addr = addr.as_str(), ms, "connected");
                    h
                }
                Err(e) => {
                    tracing::debug!(host = target.name.as_str(), addr = addr.as_str(), ms, error = %e, "cannot connect");
                    return Err(e);
                }
            };
            handles.push(handle);
        }
        let handle = handles.pop().ok_or_else(|| ConnError::Connect {
            addr: addr_of(target),
            reason: "no hop to connect to".into(),
        })?;
        Ok(SshConnection {
            name: target.name.clone(),
            addr: addr_of(target),
            handle,
            bastions: handles,
            opened: AtomicUsize::new(0),
            pipelined: AtomicUsize::new(0),
            channels: Arc::new(Semaphore::new(MAX_CONCURRENT_CHANNELS)),
            pipelining: target.pipelining,
            shell: Mutex::new(ShellState::Unopened),
            memo: super::Memo::default(),
            sftp_on: target.sftp,
            sftp: OnceCell::new(),
            shell_umask: Mutex::new(None),
            login_user_unknowable: AtomicBool::new(false),
        })
    }

    /// "host:port" of the host this connection ends at.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// True once the transport is gone (dropped or closed).
    pub fn is_closed(&self) -> bool {
        self.handle.is_closed()
    }

    /// Open a session channel in a free slot (waiting for one); `what` says
    /// what it is for in the `RIGGER_DEBUG_ROUNDTRIPS=2` trace.
    async fn open_session(
        &self,
        what: impl FnOnce() -> String,
    ) -> Result<(russh::Channel<client::Msg>, OwnedSemaphorePermit), ConnError> {
        let permit = self
            .channels
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| ConnError::Dropped(format!("connection to {} was closed", self.name)))?;
        let n = self.opened.fetch_add(1, Ordering::Relaxed) + 1;
        if *TRACE_CHANNELS {
            stderrln!("rigger-roundtrips: host={} channel={n} {}", self.name, what());
        }
        let channel = self
            .handle
            .channel_open_session()
            .await
            .map_err(|e| self.dropped("cannot open a channel", russh_reason(&e)))?;
        Ok((channel, permit))
    }

    /// Open a channel (waiting for a free slot) and start `cmd` on it.
    async fn open_channel(
        &self,
        cmd: &str,
        pty: bool,
    ) -> Result<(russh::Channel<client::Msg>, OwnedSemaphorePermit), ConnError> {
        let (channel, permit) = self
            .open_session(|| format!("cmd={:?}", super::trace_text(cmd, *TRACE_SHOWN)))
            .await?;
        if pty {
            channel
                .request_pty(false, "xterm", 200, 50, 0, 0, &[])
                .await
                .map_err(|e| self.dropped("cannot request a terminal", russh_reason(&e)))?;
        }
        channel
            .exec(true, cmd)
            .await
            .map_err(|e| self.dropped("cannot start the command", russh_reason(&e)))?;
        Ok((channel, permit))
    }

    /// Open a channel for the `sftp` subsystem and start the session on it.
    async fn open_sftp(&self) -> Result<Option<super::sftp::Sftp>, ConnError> {
        let (channel, permit) = self.open_session(|| "subsystem=sftp".to_string()).await?;
        channel
            .request_subsystem(true, "sftp")
            .await
            .map_err(|e| self.dropped("cannot start SFTP", russh_reason(&e)))?;
        super::sftp::Sftp::start(channel, permit).await
    }

    /// Start the persistent shell and wait until it is ready for requests.
    async fn open_shell(&self) -> Result<PipeShell, ConnError> {
        let (ch, permit) = self.open_channel(&shell_loop_command(), false).await?;
        let (read, write) = ch.split();
        let mut shell = PipeShell {
            read,
            write: Some(write),
            _permit: permit,
            pending: Vec::new(),
            umask: None,
        };
        let ready = tokio::time::timeout(Duration::from_secs(30), shell.read_until_ready()).await;
        match ready {
            Ok(Ok(())) => {
                *self.shell_umask.lock().unwrap_or_else(|e| e.into_inner()) = shell.umask.clone();
                Ok(shell)
            }
            Ok(Err(e)) => Err(e),
            Err(_) => Err(ConnError::Io(format!(
                "the persistent shell on {} did not start",
                self.name
            ))),
        }
    }

    /// True when the transport is gone or goes within a moment: a channel
    /// learns that the connection ended a little before its handle does.
    async fn closed_soon(&self) -> bool {
        for _ in 0..20 {
            if self.handle.is_closed() {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        self.handle.is_closed()
    }

    fn dropped(&self, what: &str, e: impl std::fmt::Display) -> ConnError {
        if self.handle.is_closed() {
            ConnError::Dropped(format!("connection to {} ({}) is closed", self.name, self.addr))
        } else {
            ConnError::Io(format!("{what} on {} ({}): {e}", self.name, self.addr))
        }
    }
}

/// "host:port", with brackets around IPv6 addresses.
fn addr_of(t: &SshTarget) -> String {
    if t.address.contains(':') {
        format!("[{}]:{}", t.address, t.port)
    } else {
        format!("{}:{}", t.address, t.port)
    }
}

fn addr_of_prev(target: &SshTarget, index: usize) -> String {
    target.jump_hosts.get(index - 1).map(addr_of).unwrap_or_default()
}

fn client_config(hop: &SshTarget) -> Arc<client::Config> {
    let mut preferred = russh::Preferred::default();
    // Ask for a host key type that is already recorded, so a host known by
    // its ECDSA key is not reported as changed because it also has ED25519.
    let recorded = known_hosts::recorded_algorithms(&hop.known_hosts, &hop.address, hop.port);
    if !recorded.is_empty() {
        let mut keys = preferred.key.to_vec();
        keys.sort_by_key(|alg| !recorded.iter().any(|r| key_family(r) == key_family(alg.as_str())));
        preferred.key = keys.into();
    }
    Arc::new(client::Config {
        keepalive_interval: hop.keepalive,
        keepalive_max: hop.keepalive_max,
        inactivity_timeout: None,
        nodelay: true,
        // Large windows keep uploads and downloads streaming without waiting
        // for window adjustments on every round trip.
        window_size: 4 * 1024 * 1024,
        maximum_packet_size: 32 * 1024,
        channel_buffer_size: 256,
        preferred,
        ..Default::default()
    })
}

fn key_family(name: &str) -> &'static str {
    if name.contains("ed25519") {
        "ed25519"
    } else if name.contains("ecdsa") {
        "ecdsa"
    } else if name.contains("rsa") {
        "rsa"
    } else {
        "other"
    }
}

/// Open the SSH transport to `hop`: TCP for the first hop, a direct-tcpip
/// channel through the previous hop otherwise.
async fn open_hop(
    hop: &SshTarget,
    via: Option<(&Handle<ClientHandler>, String)>,
) -> Result<Handle<ClientHandler>, ConnError> {
    let addr = addr_of(hop);
    let handler = ClientHandler {
        name: hop.name.clone(),
        host: hop.address.clone(),
        port: hop.port,
        mode: hop.host_key_checking,
        known_hosts: hop.known_hosts.clone(),
    };
    let config = client_config(hop);
    let result = match via {
        None => {
            let stream = tcp_connect(&hop.address, hop.port).await?;
            client::connect_stream(config, stream, handler).await
        }
        Some((prev, prev_addr)) => {
            let channel = prev
                .channel_open_direct_tcpip(hop.address.clone(), u32::from(hop.port), "127.0.0.1", 0)
                .await
                .map_err(|e| ConnError::Connect {
                    addr: addr.clone(),
                    reason: format!(
                        "jump host {prev_addr} could not open a connection to it: {}",
                        russh_reason(&e)
                    ),
                })?;
            client::connect_stream(config, channel.into_stream(), handler).await
        }
    };
    result.map_err(|e| match e {
        HandlerError::Conn(c) => c,
        HandlerError::Ssh(e) => ConnError::Connect {
            addr,
            reason: format!("SSH handshake failed: {}", russh_reason(&e)),
        },
    })
}

fn russh_reason(e: &russh::Error) -> String {
    match e {
        russh::Error::IO(io) => io.to_string(),
        russh::Error::ChannelOpenFailure(f) => format!("channel open refused ({f:?})"),
        other => other.to_string(),
    }
}

async fn tcp_connect(host: &str, port: u16) -> Result<tokio::net::TcpStream, ConnError> {
    let addr = if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    };
    let addrs: Vec<_> = tokio::net::lookup_host((host, port))
        .await
        .map_err(|e| ConnError::Connect {
            addr: addr.clone(),
            reason: format!("cannot resolve {host}: {e}"),
        })?
        .collect();
    let mut last = String::from("no address found");
    for sa in addrs {
        match tokio::net::TcpStream::connect(sa).await {
            Ok(s) => {
                // Commands are small request/response exchanges: do not let
                // Nagle's algorithm delay them.
                let _ = s.set_nodelay(true);
                return Ok(s);
            }
            Err(e) => last = e.to_string(),
        }
    }
    Err(ConnError::Connect { addr, reason: last })
}

/// Checks host keys against known_hosts for one hop.
struct ClientHandler {
    name: String,
    host: String,
    port: u16,
    mode: HostKeyChecking,
    known_hosts: Vec<PathBuf>,
}

#[derive(Debug)]
enum HandlerError {
    Ssh(russh::Error),
    Conn(ConnError),
}

impl From<russh::Error> for HandlerError {
    fn from(e: russh::Error) -> Self {
        HandlerError::Ssh(e)
    }
}

impl client::Handler for ClientHandler {
    type Error = HandlerError;

    async fn check_server_key(&mut self, key: &PublicKeyOrCertificate) -> Result<bool, Self::Error> {
        let key = match key {
            PublicKeyOrCertificate::PublicKey { key, .. } => key.clone(),
            // Certificates are checked by the key they certify.
            PublicKeyOrCertificate::Certificate(c) => PublicKey::from(c.public_key().clone()),
        };
        known_hosts::verify(self.mode, &self.known_hosts, &self.name, &self.host, self.port, &key)
            .map_err(HandlerError::Conn)?;
        Ok(true)
    }
}

/// Private keys, decrypted once per run and shared by every connection.
type KeySlot = Arc<OnceCell<Result<Arc<PrivateKey>, ConnError>>>;
type KeyCache = Mutex<HashMap<(PathBuf, Option<String>), KeySlot>>;
static KEY_CACHE: LazyLock<KeyCache> = LazyLock::new(|| Mutex::new(HashMap::new()));

async fn load_key(path: &Path, passphrase: Option<&str>) -> Result<Arc<PrivateKey>, ConnError> {
    let slot = {
        let mut cache = KEY_CACHE.lock().unwrap_or_else(|e| e.into_inner());
        cache
            .entry((path.to_path_buf(), passphrase.map(str::to_string)))
            .or_default()
            .clone()
    };
    let path = path.to_path_buf();
    let passphrase = passphrase.map(str::to_string);
    slot.get_or_init(|| async move {
        // Decrypting a key runs bcrypt: keep it off the async workers.
        let shown = path.display().to_string();
        tokio::task::spawn_blocking(move || load_key_blocking(&path, passphrase.as_deref()).map(Arc::new))
            .await
            .unwrap_or_else(|e| {
                Err(ConnError::Key {
                    path: shown,
                    reason: format!("loading was interrupted: {e}"),
                })
            })
    })
    .await
    .clone()
}

fn load_key_blocking(path: &Path, passphrase: Option<&str>) -> Result<PrivateKey, ConnError> {
    let err = |reason: String| ConnError::Key {
        path: path.display().to_string(),
        reason,
    };
    let text = std::fs::read_to_string(path).map_err(|e| err(format!("cannot read it: {e}")))?;
    match russh::keys::decode_secret_key(&text, passphrase) {
        Ok(k) => Ok(k),
        Err(russh::keys::Error::KeyIsEncrypted) => Err(err(
            "the key is encrypted and no passphrase was given (set ansible_ssh_private_key_passphrase)".into(),
        )),
        Err(e) => {
            if let Some(k) = super::openssh_key::repair_short_ecdsa(&text, passphrase) {
                return Ok(k);
            }
            let encrypted =
                PrivateKey::from_openssh(&text).is_ok_and(|k| k.is_encrypted()) || text.contains("ENCRYPTED");
            if encrypted && passphrase.is_some() {
                Err(err("wrong passphrase: it does not decrypt the key".into()))
            } else if encrypted {
                Err(err("the key is encrypted and no passphrase was given".into()))
            } else {
                Err(err(format!("not a usable private key: {e}")))
            }
        }
    }
}

/// The keys to offer: the configured identity files (each must load), or the
/// default ones that exist (unusable defaults are skipped with a note).
async fn identities(hop: &SshTarget, notes: &mut Vec<String>) -> Result<Vec<(PathBuf, Arc<PrivateKey>)>, ConnError> {
    let passphrase = hop.key_passphrase.as_deref();
    let mut out = Vec::new();
    if !hop.identity_files.is_empty() {
        for p in &hop.identity_files {
            out.push((p.clone(), load_key(p, passphrase).await?));
        }
        return Ok(out);
    }
    let Some(home) = home_dir() else { return Ok(out) };
    for name in ["id_ed25519", "id_ecdsa", "id_rsa"] {
        let p = home.join(".ssh").join(name);
        if !p.exists() {
            continue;
        }
        match load_key(&p, passphrase).await {
            Ok(k) => out.push((p, k)),
            Err(e) => notes.push(e.to_string()),
        }
    }
    Ok(out)
}

fn methods(m: &MethodSet) -> String {
    let v: Vec<&str> = m.iter().map(<&str>::from).collect();
    if v.is_empty() {
        "none".into()
    } else {
        v.join(",")
    }
}

/// Try identity files, then the agent, then the password.
async fn authenticate(handle: &mut Handle<ClientHandler>, hop: &SshTarget) -> Result<(), ConnError> {
    let addr = addr_of(hop);
    let user = hop.user.as_str();
    let mut tried: Vec<String> = Vec::new();
    let mut notes: Vec<String> = Vec::new();
    let mut server_methods: Option<MethodSet> = None;
    let auth_err = |e: &dyn std::fmt::Display| ConnError::Auth {
        user: user.to_string(),
        addr: addr.clone(),
        reason: e.to_string(),
    };
    let allows = |m: &Option<MethodSet>, k: russh::MethodKind| m.as_ref().is_none_or(|s| s.contains(&k));

    let keys = identities(hop, &mut notes).await?;
    let mut rsa_hash: Option<Option<HashAlg>> = None;
    for (path, key) in keys {
        if !allows(&server_methods, russh::MethodKind::PublicKey) {
            break;
        }
        let hash = if key.algorithm().is_rsa() {
            rsa_hash_for(handle, &mut rsa_hash).await
        } else {
            None
        };
        tried.push(format!("key {}", path.display()));
        let fingerprint = key.public_key().fingerprint(HashAlg::Sha256).to_string();
        match handle
            .authenticate_publickey(user, PrivateKeyWithHashAlg::new(key, hash))
            .await
            .map_err(|e| auth_err(&russh_reason(&e)))?
        {
            AuthResult::Success => {
                crate::audit::files::note_login(
                    &hop.name,
                    serde_json::json!({"user": user, "method": "publickey", "key": fingerprint, "file": path.display().to_string()}),
                );
                return Ok(());
            }
            AuthResult::Failure { remaining_methods, .. } => server_methods = Some(remaining_methods),
        }
    }

    if hop.use_agent && allows(&server_methods, russh::MethodKind::PublicKey) {
        if let Some(sock) = std::env::var_os("SSH_AUTH_SOCK") {
            match AgentClient::connect_uds(&sock).await {
                Ok(mut agent) => {
                    let ids = agent.request_identities().await.unwrap_or_default();
                    let mut offered = 0;
                    for id in ids {
                        let AgentIdentity::PublicKey { key, .. } = id else {
                            continue;
                        };
                        offered += 1;
                        let hash = if key.algorithm().is_rsa() {
                            rsa_hash_for(handle, &mut rsa_hash).await
                        } else {
                            None
                        };
                        let fingerprint = key.fingerprint(HashAlg::Sha256).to_string();
                        match handle.authenticate_publickey_with(user, key, hash, &mut agent).await {
                            Ok(AuthResult::Success) => {
                                crate::audit::files::note_login(
                                    &hop.name,
                                    serde_json::json!({"user": user, "method": "publickey", "key": fingerprint, "agent": true}),
                                );
                                return Ok(());
                            }
                            Ok(AuthResult::Failure { remaining_methods, .. }) => {
                                server_methods = Some(remaining_methods)
                            }
                            // The agent declined to sign; try the next method.
                            Err(e) => notes.push(format!("ssh-agent could not sign: {e}")),
                        }
                    }
                    tried.push(format!("ssh-agent ({offered} keys)"));
                }
                Err(e) => notes.push(format!("cannot use ssh-agent at {}: {e}", Path::new(&sock).display())),
            }
        }
    }

    if let Some(pw) = &hop.password {
        if allows(&server_methods, russh::MethodKind::Password) {
            tried.push("password".into());
            match handle
                .authenticate_password(user, pw.as_str())
                .await
                .map_err(|e| auth_err(&russh_reason(&e)))?
            {
                AuthResult::Success => {
                    crate::audit::files::note_login(&hop.name, serde_json::json!({"user": user, "method": "password"}));
                    return Ok(());
                }
                AuthResult::Failure { remaining_methods, .. } => server_methods = Some(remaining_methods),
            }
        }
    }

    let mut reason = if tried.is_empty() {
        "no authentication method available (no identity file, ssh-agent or password)".to_string()
    } else {
        format!("tried {}", tried.join(", "))
    };
    if let Some(m) = &server_methods {
        reason.push_str(&format!("; the server accepts {}", methods(m)));
    }
    for n in notes {
        reason.push_str("; ");
        reason.push_str(&n);
    }
    Err(auth_err(&reason))
}

/// The SHA-2 hash for RSA signatures the server accepts (asked once).
async fn rsa_hash_for(handle: &Handle<ClientHandler>, cached: &mut Option<Option<HashAlg>>) -> Option<HashAlg> {
    if let Some(h) = cached {
        return *h;
    }
    let h = match handle.best_supported_rsa_hash().await {
        Ok(Some(h)) => h,
        // No server-sig-algs: every server from the last decade accepts rsa-sha2-256.
        _ => Some(HashAlg::Sha256),
    };
    *cached = Some(h);
    h
}

#[async_trait]
impl Connection for SshConnection {
    fn host(&self) -> &str {
        &self.name
    }

    async fn spawn(&self, cmd: &str, pty: bool) -> Result<Box<dyn Process>, ConnError> {
        let (channel, permit) = self.open_channel(cmd, pty).await?;
        let (read, write) = channel.split();
        let write = Arc::new(write);
        let (tx, rx) = mpsc::unbounded_channel();
        let (cancel_tx, cancel_rx) = oneshot::channel();
        let (done_tx, done_rx) = watch::channel(false);
        tokio::spawn(pump(
            read,
            write.clone(),
            tx,
            cancel_rx,
            done_tx,
            permit,
            format!("{} ({})", self.name, self.addr),
        ));
        Ok(Box::new(SshProcess {
            write,
            rx,
            stdin_open: true,
            done: done_rx,
            _cancel: cancel_tx,
        }))
    }

    fn channels_opened(&self) -> usize {
        self.opened.load(Ordering::Relaxed)
    }

    fn commands_run(&self) -> usize {
        // The persistent shell's own channel runs no command of the workload.
        let shells = usize::from(self.pipelining && self.pipelined.load(Ordering::Relaxed) > 0);
        self.opened.load(Ordering::Relaxed) + self.pipelined.load(Ordering::Relaxed) - shells
    }

    fn pipelining(&self) -> bool {
        self.pipelining
    }

    fn memo(&self) -> Option<&super::Memo> {
        Some(&self.memo)
    }

    async fn sftp(&self) -> Option<Arc<super::sftp::Sftp>> {
        if !self.sftp_on {
            return None;
        }
        let s = self
            .sftp
            .get_or_init(|| async {
                // A server that never answers the subsystem request leaves
                // the transfers to the shell.
                let opened = tokio::time::timeout(Duration::from_secs(30), self.open_sftp())
                    .await
                    .unwrap_or_else(|_| Err(ConnError::Io("no answer to the SFTP request in 30 s".into())));
                match opened {
                    Ok(Some(s)) if s.complete => Some(Arc::new(s)),
                    Ok(Some(_)) => {
                        if *TRACE_CHANNELS {
                            stderrln!(
                                "rigger-roundtrips: host={} SFTP lacks the OpenSSH extensions",
                                self.name
                            );
                        }
                        None
                    }
                    Ok(None) => None,
                    Err(e) => {
                        if *TRACE_CHANNELS {
                            stderrln!(
                                "rigger-roundtrips: host={} no SFTP: {}",
                                self.name,
                                super::trace_text(&e.to_string(), usize::MAX)
                            );
                        }
                        None
                    }
                }
            })
            .await;
        s.as_ref().filter(|s| !s.is_closed()).cloned()
    }

    async fn login_user(&self) -> Option<String> {
        // What this host cannot give (no SFTP or no names extension, no
        // `/proc`) is not asked again by every later file task.
        if self.login_user_unknowable.load(Ordering::Relaxed) {
            return None;
        }
        let unknowable = || {
            self.login_user_unknowable.store(true, Ordering::Relaxed);
            None
        };
        let Some(sftp) = self.sftp().await.filter(|s| s.names_by_id) else {
            return unknowable();
        };
        let known = || self.shell_umask.lock().unwrap_or_else(|e| e.into_inner()).clone();
        if known().is_none() {
            // Start the persistent shell (a builtin: no program), which
            // prints its umask; busy or unusable: ask `id` as before.
            if !matches!(
                self.run_pipelined(":", &[], false, OutputLimit::Unlimited).await,
                Some(Ok(_))
            ) {
                return None;
            }
        }
        let umask = known()?;
        let ids = match sftp.read_small("/proc/self/status", 16 * 1024).await {
            Ok(Some(status)) => super::proc_status_ids(&String::from_utf8_lossy(&status)),
            _ => None,
        };
        let Some((uid, gid)) = ids else {
            return unknowable();
        };
        let (users, groups) = sftp.names(&[uid], &[gid]).await.ok()?;
        Some(super::whoami_memo(&umask, uid, users.first()?, gid, groups.first()?))
    }

    async fn run_pipelined(
        &self,
        cmd: &str,
        stdin: &[u8],
        own_shell: bool,
        limit: OutputLimit,
    ) -> Option<Result<ExecOutput, ConnError>> {
        if !self.pipelining || cmd.contains('\0') {
            return None;
        }
        let idle = {
            let mut st = self.shell.lock().unwrap_or_else(|e| e.into_inner());
            match std::mem::replace(&mut *st, ShellState::Busy) {
                ShellState::Idle(s) => Some(s),
                ShellState::Unopened => None,
                other => {
                    // Busy with another command, or unusable on this host.
                    *st = other;
                    return None;
                }
            }
        };
        // Until the command is done the shell is Busy; if this future is
        // dropped (a timeout), the next command opens a new shell.
        let mut guard = ShellGuard {
            state: &self.shell,
            put_back: None,
            unusable: false,
        };
        let mut shell = match idle {
            Some(s) => s,
            None => match self.open_shell().await {
                Ok(s) => s,
                Err(e) => {
                    if *TRACE_CHANNELS {
                        stderrln!(
                            "rigger-roundtrips: host={} no persistent shell: {}",
                            self.name,
                            super::trace_text(&e.to_string(), usize::MAX)
                        );
                    }
                    guard.unusable = true;
                    return None;
                }
            },
        };
        if *TRACE_CHANNELS {
            let shown = super::trace_text(cmd, *TRACE_SHOWN);
            stderrln!("rigger-roundtrips: host={} pipelined cmd={shown:?}", self.name);
        }
        self.pipelined.fetch_add(1, Ordering::Relaxed);
        let res = match shell.run(cmd, stdin, own_shell, limit).await {
            Ok(done) => Ok(done),
            Err(_) if self.closed_soon().await => Err(ConnError::Dropped(format!(
                "connection to {} ({}) is closed",
                self.name, self.addr
            ))),
            Err(e) => Err(ConnError::Io(format!(
                "the persistent shell on {} ({}): {e}",
                self.name, self.addr
            ))),
        };
        if res.is_ok() {
            guard.put_back = Some(shell);
        }
        Some(res)
    }

    async fn close(&self) {
        self.channels.close();
        let _ = self
            .handle
            .disconnect(Disconnect::ByApplication, "rigger is done", "en")
            .await;
        for b in self.bastions.iter().rev() {
            let _ = b.disconnect(Disconnect::ByApplication, "rigger is done", "en").await;
        }
    }
}

/// Why a command through the persistent shell failed. The caller adds the
/// host (or reports the connection as dropped).
#[derive(Debug, thiserror::Error)]
enum ShellError {
    #[error("the shell is closed")]
    Closed,
    /// The reason as [`russh_reason`] words it.
    #[error("cannot send the command: {0}")]
    SendCommand(String),
    #[error("cannot send stdin: {0}")]
    SendStdin(String),
    #[error(transparent)]
    Frame(#[from] FrameError),
    #[error("malformed status line")]
    MalformedStatus,
    #[error("it ended (status {0}) while a command was running")]
    Exited(u32),
    #[error("it ended while a command was running")]
    Ended,
}

/// The persistent shell of a connection.
enum ShellState {
    /// Not started yet (or the last one was given up): the next command starts one.
    Unopened,
    Idle(PipeShell),
    /// Running a command; others use fresh channels meanwhile.
    Busy,
    /// The host's login shell cannot run the loop: always use fresh channels.
    Unusable,
}

/// Puts the shell back (or forgets it) when a pipelined command ends or is dropped.
struct ShellGuard<'a> {
    state: &'a Mutex<ShellState>,
    put_back: Option<PipeShell>,
    unusable: bool,
}

impl Drop for ShellGuard<'_> {
    fn drop(&mut self) {
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        *st = match self.put_back.take() {
            Some(s) => ShellState::Idle(s),
            None if self.unusable => ShellState::Unusable,
            None => ShellState::Unopened,
        };
    }
}

/// The command the persistent shell's channel runs (under the login shell).
/// It reads one request per line and `eval`s it; requests are built by
/// [`request_line`]. A temp dir (0700), made by the first command that has
/// more stdin than fits a pipe, holds such a command's stdin.
const SHELL_LOOP: &str = "__rg_d=; trap '[ -n \"$__rg_d\" ] && rm -rf \"$__rg_d\"' EXIT; trap 'exit 1' HUP TERM; \
__rg_sh=${SHELL:-/bin/sh}; __rg_n='\n'; printf 'RIGGER-UMASK '; umask; echo RIGGER-SHELL-READY; \
while IFS= read -r __rg_l; do eval \"$__rg_l\"; done";

const READY: &[u8] = b"RIGGER-SHELL-READY\n";

/// What login scripts may print before the loop is ready (a banner, a
/// message of the day); more is not held: the host's commands use fresh
/// channels instead.
const LOGIN_NOISE_MAX: usize = 1024 * 1024;

/// What the persistent shell's channel asks the login shell to run: the loop
/// under `/bin/sh`. Every request forks the loop's shell (a subshell, and one
/// fork per program it starts), and forking a small POSIX shell (dash on
/// Debian) costs about half of forking bash, the usual login shell; rigger's
/// scripts are POSIX sh. User commands still start the login shell
/// (`$SHELL -c`), as on a fresh channel.
fn shell_loop_command() -> String {
    format!("exec /bin/sh -c {}", sh_quote(SHELL_LOOP))
}

/// One request for [`SHELL_LOOP`], a single line of shell code: `len` bytes
/// of stdin that follow the line go to a pipe or a file (`head -c` reads no
/// more than asked; see [`PIPE_STDIN_MAX`]), the command runs with that pipe
/// or file (or /dev/null) as stdin and its
/// stdout/stderr straight on the channel's, then the loop prints
/// `token status` on stdout and `token` on stderr. The token is random per
/// request, so output cannot end a frame early short of guessing it.
///
/// A user command (`own_shell`) starts as `$SHELL -c CMD`, as sshd does for a
/// fresh channel (own `$$`, `exec`); rigger's own scripts run in a subshell
/// of the loop (`exit`, `cd`, variables and traps stay inside it), which
/// costs a fork instead of starting a shell program.
fn request_line(token: &str, cmd: &str, len: usize, own_shell: bool) -> String {
    // A newline cannot be in the line: splice it in from a variable.
    let quoted = sh_quote(cmd).replace('\n', "'\"$__rg_n\"'");
    let run = if own_shell {
        format!("\"$__rg_sh\" -c {quoted}")
    } else {
        format!("( eval {quoted} )")
    };
    let input = if len > 0 && len <= PIPE_STDIN_MAX {
        // The reading side drains what the command left unread, so `head`
        // always gets to read and write all its bytes: were the pipe closed
        // early, `head` would die writing (SIGPIPE) with part of the stdin
        // still unread on the loop's input, to be run as the next request.
        // The drain is the shell's own `read` (no program start); it reads
        // nothing when the command took everything.
        format!("head -c {len} | {{ {run}; __rg_s=$?; while IFS= read -r __rg_x; do :; done; exit $__rg_s; }}")
    } else if len > 0 {
        format!(
            "{{ [ -n \"$__rg_d\" ] || __rg_d=$(mktemp -d); }} || exit 97; \
             head -c {len} >\"$__rg_d/i\" || exit 98; {run} <\"$__rg_d/i\""
        )
    } else {
        format!("{run} </dev/null")
    };
    format!("{input}; printf '%s %d\\n' {token} \"$?\"; printf '%s\\n' {token} >&2\n")
}

/// Stdin up to this size goes to the command through a pipe whose reading
/// side drains whatever the command leaves unread, so `head` always reads
/// exactly its bytes and ends (whatever the pipe's capacity: one page on
/// kernels before 5.14 for a user over the pipe-buffer limit), and the loop
/// waits for it before the next request. Bigger stdin goes through a file
/// in the loop's temp dir (draining a big unread stdin with the shell's
/// byte-at-a-time `read` would be slow). The pipe saves the `mktemp`/`rm`
/// of that dir on hosts where no command sends more.
const PIPE_STDIN_MAX: usize = 8192;

/// A persistent `SHELL_LOOP` channel, used by one command at a time.
struct PipeShell {
    read: russh::ChannelReadHalf,
    /// `None` once dropped (see `Drop`).
    write: Option<ChannelWriteHalf<client::Msg>>,
    /// It occupies one of the connection's channel slots.
    _permit: OwnedSemaphorePermit,
    /// Output read past the ready line (there should be none).
    pending: Vec<u8>,
    /// The loop's umask, as it printed it before the ready line.
    umask: Option<String>,
}

/// The umask the loop printed (`RIGGER-UMASK 0022`) before its ready line;
/// whatever a login script printed before is ignored.
fn umask_line(before_ready: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(before_ready);
    let u = text.lines().rev().find_map(|l| l.strip_prefix("RIGGER-UMASK "))?.trim();
    (u.len() <= 4 && u32::from_str_radix(u, 8).is_ok()).then(|| u.to_string())
}

impl Drop for PipeShell {
    fn drop(&mut self) {
        // Closing the channel ends the loop (its stdin reaches EOF) and the
        // command it may be running loses its output channel.
        if let Some(w) = self.write.take() {
            if let Ok(rt) = tokio::runtime::Handle::try_current() {
                rt.spawn(async move {
                    let _ = w.close().await;
                });
            }
        }
    }
}

impl PipeShell {
    async fn read_until_ready(&mut self) -> Result<(), ConnError> {
        let mut out = Vec::new();
        let mut err = Vec::new();
        loop {
            match self.read.wait().await {
                Some(ChannelMsg::Data { data }) => {
                    out.extend_from_slice(&data);
                    if let Some(p) = find(&out, READY) {
                        self.pending = out.split_off(p + READY.len());
                        self.umask = umask_line(&out[..p]);
                        return Ok(());
                    }
                    if out.len() > LOGIN_NOISE_MAX {
                        return Err(ConnError::Io(format!(
                            "the login shell printed more than {} before the command loop started",
                            super::output::human_size(LOGIN_NOISE_MAX as u64)
                        )));
                    }
                }
                Some(ChannelMsg::ExtendedData { data, .. }) => {
                    // Only the start of it is shown in the error.
                    OutputLimit::Keep(4096).keep(&mut err, &mut 0, &data)
                }
                Some(ChannelMsg::ExitStatus { .. } | ChannelMsg::Eof | ChannelMsg::Close) | None => {
                    return Err(ConnError::Io(format!(
                        "the login shell cannot run the command loop: {}",
                        String::from_utf8_lossy(&err).trim()
                    )))
                }
                Some(_) => {}
            }
        }
    }

    /// Send one request and read its frame, holding no more of its output
    /// than `limit` (the rest is read and dropped; the frame's end is still found).
    async fn run(
        &mut self,
        cmd: &str,
        stdin: &[u8],
        own_shell: bool,
        limit: OutputLimit,
    ) -> Result<ExecOutput, ShellError> {
        let token = format!("RIGGER-END-{:032x}", rand::random::<u128>());
        let line = request_line(&token, cmd, stdin.len(), own_shell);
        let write = self.write.as_ref().ok_or(ShellError::Closed)?;
        // The request and its stdin are sent while the channel is read: a
        // write waits for the host's window, which nothing opens again once
        // the connection or the channel is gone, and then only the read side
        // learns it (issue #18: an upload through the persistent shell hung
        // forever on a dropped connection).
        let send = async {
            write
                .data_bytes(line.into_bytes())
                .await
                .map_err(|e| ShellError::SendCommand(russh_reason(&e)))?;
            for chunk in stdin.chunks(256 * 1024) {
                write
                    .data_bytes(chunk.to_vec())
                    .await
                    .map_err(|e| ShellError::SendStdin(russh_reason(&e)))?;
            }
            Ok::<(), ShellError>(())
        };
        tokio::pin!(send);
        let mut sent = false;
        // stdout ends with `token status`, stderr with `token`.
        let mut out = Framed::new(&format!("{token} "), limit);
        let mut err = Framed::new(&token, limit);
        out.push(&std::mem::take(&mut self.pending))?;
        loop {
            if let (true, Some(status), Some(_)) = (sent, out.trailer(), err.trailer()) {
                let code = std::str::from_utf8(status)
                    .ok()
                    .and_then(|t| t.trim().parse().ok())
                    .ok_or(ShellError::MalformedStatus)?;
                return Ok(ExecOutput {
                    status: code,
                    stdout: out.kept,
                    stderr: err.kept,
                    stdout_dropped: out.dropped,
                    stderr_dropped: err.dropped,
                });
            }
            let msg = tokio::select! {
                r = &mut send, if !sent => {
                    r?;
                    sent = true;
                    continue;
                }
                m = self.read.wait() => m,
            };
            match msg {
                Some(ChannelMsg::Data { data }) => out.push(&data)?,
                Some(ChannelMsg::ExtendedData { data, ext: 1 }) => err.push(&data)?,
                Some(ChannelMsg::ExitStatus { exit_status }) => return Err(ShellError::Exited(exit_status)),
                Some(ChannelMsg::Eof | ChannelMsg::Close) | None => return Err(ShellError::Ended),
                Some(_) => {}
            }
        }
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() || hay.len() < needle.len() {
        return None;
    }
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Linux signal numbers, for the 128+N exit status of a killed command.
fn signal_number(sig: &Sig) -> i32 {
    match sig {
        Sig::HUP => 1,
        Sig::INT => 2,
        Sig::QUIT => 3,
        Sig::ILL => 4,
        Sig::ABRT => 6,
        Sig::FPE => 8,
        Sig::KILL => 9,
        Sig::USR1 => 10,
        Sig::SEGV => 11,
        Sig::PIPE => 13,
        Sig::ALRM => 14,
        Sig::TERM => 15,
        Sig::Custom(name) => match name.as_str() {
            "BUS" => 7,
            "USR2" => 12,
            "STKFLT" => 16,
            "CHLD" => 17,
            "CONT" => 18,
            "STOP" => 19,
            "TSTP" => 20,
            "TTIN" => 21,
            "TTOU" => 22,
            "URG" => 23,
            "XCPU" => 24,
            "XFSZ" => 25,
            "VTALRM" => 26,
            "PROF" => 27,
            "WINCH" => 28,
            "IO" => 29,
            "PWR" => 30,
            "SYS" => 31,
            _ => 0,
        },
    }
}

type Event = Result<ProcEvent, ConnError>;

/// Drain one channel into an unbounded queue. russh stalls the whole
/// connection when a channel's buffer is full, so a command whose output is
/// not read yet (its stdin is still being written) must never block the others.
/// The exit status is held back until the channel closes so it comes after all output.
async fn pump(
    mut read: russh::ChannelReadHalf,
    write: Arc<ChannelWriteHalf<client::Msg>>,
    tx: mpsc::UnboundedSender<Event>,
    mut cancel: oneshot::Receiver<()>,
    done: watch::Sender<bool>,
    _permit: OwnedSemaphorePermit,
    who: String,
) {
    let mut exit: Option<i32> = None;
    let mut closed = false;
    let mut cancelled = false;
    loop {
        let msg = if cancelled {
            // The process handle was dropped: wait (briefly) for the close to
            // be acknowledged so the channel slot is really free.
            match tokio::time::timeout(Duration::from_secs(5), read.wait()).await {
                Ok(m) => m,
                Err(_) => break,
            }
        } else {
            tokio::select! {
                m = read.wait() => m,
                _ = &mut cancel => {
                    cancelled = true;
                    let _ = write.close().await;
                    continue;
                }
            }
        };
        match msg {
            Some(ChannelMsg::Data { data }) => {
                let _ = tx.send(Ok(ProcEvent::Stdout(Vec::from(data))));
            }
            Some(ChannelMsg::ExtendedData { data, ext: 1 }) => {
                let _ = tx.send(Ok(ProcEvent::Stderr(Vec::from(data))));
            }
            Some(ChannelMsg::ExitStatus { exit_status }) => exit = Some(exit_status as i32),
            Some(ChannelMsg::ExitSignal { signal_name, .. }) => exit = Some(128 + signal_number(&signal_name)),
            Some(ChannelMsg::Failure) => {
                let _ = tx.send(Err(ConnError::Io(format!("{who} refused to run the command"))));
                let _ = write.close().await;
            }
            Some(ChannelMsg::Close) => {
                closed = true;
                break;
            }
            Some(_) => {}
            None => break,
        }
    }
    let _ = done.send(true);
    match exit {
        Some(code) => {
            let _ = tx.send(Ok(ProcEvent::Exit(code)));
        }
        None if !closed && !cancelled => {
            let _ = tx.send(Err(ConnError::Dropped(format!(
                "the connection to {who} broke while a command was running"
            ))));
        }
        None => {}
    }
}

struct SshProcess {
    write: Arc<ChannelWriteHalf<client::Msg>>,
    rx: mpsc::UnboundedReceiver<Event>,
    stdin_open: bool,
    /// Becomes true when the channel is finished.
    done: watch::Receiver<bool>,
    /// Dropping the process tells the pump to close the channel.
    _cancel: oneshot::Sender<()>,
}

#[async_trait]
impl Process for SshProcess {
    async fn write_stdin(&mut self, data: &[u8]) -> Result<(), ConnError> {
        if !self.stdin_open {
            return Err(ConnError::Io("stdin already closed".into()));
        }
        let mut done = self.done.clone();
        tokio::select! {
            // A command that exits without reading its stdin is not a
            // transport error: its status tells what happened. A broken
            // connection is reported by `next_event`.
            _ = self.write.data_bytes(data.to_vec()) => Ok(()),
            _ = done.wait_for(|d| *d) => Ok(()),
        }
    }

    async fn close_stdin(&mut self) -> Result<(), ConnError> {
        if std::mem::replace(&mut self.stdin_open, false) {
            let _ = self.write.eof().await;
        }
        Ok(())
    }

    async fn next_event(&mut self) -> Result<Option<ProcEvent>, ConnError> {
        match self.rx.recv().await {
            Some(Ok(ev)) => Ok(Some(ev)),
            Some(Err(e)) => Err(e),
            None => Ok(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_loops_umask_is_the_line_before_ready() {
        assert_eq!(umask_line(b"motd junk\nRIGGER-UMASK 0027\n"), Some("0027".into()));
        assert_eq!(umask_line(b"RIGGER-UMASK 0022\n"), Some("0022".into()));
        assert_eq!(umask_line(b"RIGGER-UMASK u=rwx\n"), None);
        assert_eq!(umask_line(b"hello\n"), None);
    }

    /// (command, stdin, expected stdout, expected status)
    type LoopCase<'a> = (&'a str, Vec<u8>, Vec<u8>, i32);

    /// Runs the request loop under /bin/sh (with `path_first` ahead of PATH)
    /// on `cases` the way a connection does, one request at a time (the
    /// next is sent when the last one's frame has ended), each request's
    /// stdin written in pieces of at most `piece` bytes with a pause before
    /// each, and checks that every frame holds exactly its command's output
    /// and status, and that nothing follows. Returns the number of entries
    /// left in the loop's TMPDIR after it ended.
    fn drive_loop(cases: &[LoopCase], piece: Option<usize>, path_first: Option<&std::path::Path>) -> usize {
        use std::io::{Read, Write};
        use std::process::{Command, Stdio};
        let tmp = tempfile::tempdir().unwrap();
        let mut path = std::env::var("PATH").unwrap_or_default();
        if let Some(p) = path_first {
            path = format!("{}:{path}", p.display());
        }
        let mut child = Command::new("/bin/sh")
            .arg("-c")
            .arg(SHELL_LOOP)
            .env("TMPDIR", tmp.path())
            .env("PATH", path)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        let mut stdout = child.stdout.take().unwrap();
        let mut out = Vec::new();
        let mut read_until = |end: &[u8], what: &str| -> Vec<u8> {
            let mut buf = [0u8; 8192];
            loop {
                if let Some(at) = find(&out, end) {
                    let frame = out[..at].to_vec();
                    out.drain(..at + end.len());
                    return frame;
                }
                let n = stdout.read(&mut buf).unwrap();
                assert!(
                    n > 0,
                    "{what}: no end {:?} before the loop's output ended: {:?}",
                    String::from_utf8_lossy(end),
                    String::from_utf8_lossy(&out)
                );
                out.extend_from_slice(&buf[..n]);
            }
        };
        // The loop prints its umask, then that it is ready.
        let umask = String::from_utf8(read_until(READY, "start")).unwrap();
        assert!(umask_line(umask.as_bytes()).is_some(), "{umask:?}");
        for (i, (cmd, input, want, status)) in cases.iter().enumerate() {
            let token = format!("RIGGER-END-TEST{i:02}");
            stdin
                .write_all(request_line(&token, cmd, input.len(), false).as_bytes())
                .unwrap();
            stdin.flush().unwrap();
            // The loop may be done with this request (and closed nothing)
            // before its stdin is all written: writing never fails here.
            let pieces: Vec<&[u8]> = match piece {
                Some(n) => input.chunks(n).collect(),
                None => vec![&input[..]],
            };
            for p in pieces {
                if piece.is_some() {
                    // Let the command start (and maybe end) before the
                    // rest of its stdin arrives.
                    std::thread::sleep(std::time::Duration::from_millis(60));
                }
                stdin.write_all(p).unwrap();
                stdin.flush().unwrap();
            }
            let end = format!("{token} {status}\n").into_bytes();
            let frame = read_until(&end, &format!("frame {i} ({cmd})"));
            assert_eq!(frame, &want[..], "frame {i} ({cmd})");
        }
        drop(stdin);
        let mut rest = Vec::new();
        stdout.read_to_end(&mut rest).unwrap();
        out.extend_from_slice(&rest);
        let status = child.wait().unwrap();
        let mut err = String::new();
        child.stderr.take().unwrap().read_to_string(&mut err).unwrap();
        assert!(status.success(), "{err}");
        assert!(
            out.is_empty(),
            "output after the last frame: {:?}",
            String::from_utf8_lossy(&out)
        );
        std::fs::read_dir(tmp.path()).unwrap().count()
    }

    /// The request loop under /bin/sh, fed requests with stdin of every kind
    /// (none, piped, through a file) whose commands read all, part or none of
    /// it: each frame holds exactly its command's output and status, and the
    /// temp dir is made only for the big stdin and removed at the end.
    #[test]
    fn request_loop_keeps_frames_whatever_a_command_reads() {
        let big: Vec<u8> = (0..20_000u32).map(|i| (i % 251) as u8).collect();
        let exact: Vec<u8> = (0..PIPE_STDIN_MAX as u32).map(|i| (i % 253) as u8).collect();
        let cases: Vec<LoopCase> = vec![
            ("echo no-stdin", vec![], b"no-stdin\n".to_vec(), 0),
            ("cat", b"abc\0def".to_vec(), b"abc\0def".to_vec(), 0),
            ("exit 3", b"left unread".to_vec(), vec![], 3),
            ("head -c 2", b"partly read".to_vec(), b"pa".to_vec(), 0),
            ("true", exact.clone(), vec![], 0),
            ("cat", exact.clone(), exact.clone(), 0),
            ("echo dir=${__rg_d:-none}", vec![], b"dir=none\n".to_vec(), 0),
            ("true", big.clone(), vec![], 0),
            ("cat", big.clone(), big.clone(), 0),
            ("echo after", vec![], b"after\n".to_vec(), 0),
        ];
        // The big stdin made the temp dir in TMPDIR; the loop removed it at its end.
        assert_eq!(drive_loop(&cases, None, None), 0);
    }

    /// Piped stdin that arrives in pieces after its command has already
    /// ended without reading it (or read only part) is still consumed by
    /// the request, never run as the next one: with GNU head and with
    /// BusyBox head (which writes as it reads).
    #[test]
    fn piped_stdin_arriving_after_its_command_ended_stays_in_its_request() {
        // Lines of shell code: were any left on the loop's input, the loop
        // would run them and print "LEAKED".
        let code: Vec<u8> = b"echo LEAKED\n".repeat(PIPE_STDIN_MAX / 12);
        let cases: Vec<LoopCase> = vec![
            ("exit 3", code.clone(), vec![], 3),
            ("head -c 5; exit 4", code.clone(), b"echo ".to_vec(), 4),
            ("echo next", vec![], b"next\n".to_vec(), 0),
            ("wc -c", code.clone(), format!("{}\n", code.len()).into_bytes(), 0),
        ];
        drive_loop(&cases, Some(3000), None);
        let busybox = ["/bin/busybox", "/usr/bin/busybox"]
            .into_iter()
            .find(|p| std::path::Path::new(p).exists())
            .expect("busybox (package busybox-static, scripts/test-deps.sh installs it)");
        let dir = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(busybox, dir.path().join("head")).unwrap();
        drive_loop(&cases, Some(3000), Some(dir.path()));
    }

    #[test]
    fn signals_map_to_shell_statuses() {
        assert_eq!(128 + signal_number(&Sig::KILL), 137);
        assert_eq!(128 + signal_number(&Sig::TERM), 143);
        assert_eq!(signal_number(&Sig::Custom("USR2".into())), 12);
    }

    #[test]
    fn addresses() {
        let mut t = SshTarget::new("h", "127.0.0.1");
        t.port = 2222;
        assert_eq!(addr_of(&t), "127.0.0.1:2222");
        t.address = "::1".into();
        assert_eq!(addr_of(&t), "[::1]:2222");
    }

    #[test]
    fn key_errors_name_the_file() {
        let d = tempfile::tempdir().unwrap();
        let missing = d.path().join("nope");
        match load_key_blocking(&missing, None) {
            Err(ConnError::Key { path, reason }) => {
                assert_eq!(path, missing.display().to_string());
                assert!(reason.contains("cannot read"), "{reason}");
            }
            other => panic!("unexpected {other:?}"),
        }
        let junk = d.path().join("junk");
        std::fs::write(&junk, "not a key").unwrap();
        assert!(matches!(load_key_blocking(&junk, None), Err(ConnError::Key { .. })));
    }

    #[tokio::test]
    async fn refused_port_is_a_connect_error() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        drop(l);
        let mut t = SshTarget::new("h", "127.0.0.1");
        t.port = port;
        match SshConnection::connect(&t).await {
            Err(ConnError::Connect { addr, .. }) => assert_eq!(addr, format!("127.0.0.1:{port}")),
            Err(other) => panic!("unexpected {other:?}"),
            Ok(_) => panic!("connected to a closed port"),
        }
    }
}
