//! A small SFTP (version 3, OpenSSH extensions) client over one SSH channel,
//! for uploads that start no program on the host.
//!
//! A shell upload costs the host several program starts (`head`, `dd`,
//! `chmod`, `mv`); over SFTP the same atomic replace is a few requests to the
//! sshd's SFTP server (`internal-sftp`: no program at all; `sftp-server`: one
//! per connection): create a temp file exclusively, write, fsync, set the
//! mode (and owner), close, rename over the destination
//! (`posix-rename@openssh.com`). Requests are pipelined: every write of a file
//! is sent before the first answer is awaited.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use russh::client;
use russh::{ChannelMsg, ChannelWriteHalf};
use tokio::sync::{oneshot, OwnedSemaphorePermit};

use super::content::temp_tag;
use super::error::ConnError;

const FXP_INIT: u8 = 1;
const FXP_VERSION: u8 = 2;
const FXP_OPEN: u8 = 3;
const FXP_CLOSE: u8 = 4;
const FXP_READ: u8 = 5;
const FXP_WRITE: u8 = 6;
const FXP_LSTAT: u8 = 7;
const FXP_FSTAT: u8 = 8;
const FXP_SETSTAT: u8 = 9;
const FXP_FSETSTAT: u8 = 10;
const FXP_OPENDIR: u8 = 11;
const FXP_READDIR: u8 = 12;
const FXP_REMOVE: u8 = 13;
const FXP_MKDIR: u8 = 14;
const FXP_STAT: u8 = 17;
const FXP_STATUS: u8 = 101;
const FXP_HANDLE: u8 = 102;
const FXP_DATA: u8 = 103;
const FXP_NAME: u8 = 104;
const FXP_ATTRS: u8 = 105;
const FXP_EXTENDED: u8 = 200;
const FXP_EXTENDED_REPLY: u8 = 201;

const FXF_READ: u32 = 0x01;
const FXF_WRITE: u32 = 0x02;
const FXF_CREAT: u32 = 0x08;
const FXF_EXCL: u32 = 0x20;

const ATTR_SIZE: u32 = 0x01;
const ATTR_UIDGID: u32 = 0x02;
const ATTR_PERMISSIONS: u32 = 0x04;
const ATTR_ACMODTIME: u32 = 0x08;

const FX_OK: u32 = 0;
const FX_EOF: u32 = 1;
const FX_NO_SUCH_FILE: u32 = 2;

/// Bytes of file data per write request (OpenSSH accepts up to 255 KiB;
/// 32 KiB is what every SFTP server must take).
const WRITE_CHUNK: usize = 32 * 1024;
/// Write requests in flight at once (a window of 2 MiB).
const WRITE_WINDOW: usize = 64;

/// The attributes of a file: what an upload sets, what LSTAT/STAT tell
/// (SFTP v3 has no inode, ctime or link count).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Attrs {
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    /// Permission bits (with the file type bits, as the server sends them).
    pub perm: Option<u32>,
    pub size: Option<u64>,
    pub atime: Option<u32>,
    pub mtime: Option<u32>,
}

/// An answer of the server.
#[derive(Debug)]
enum Reply {
    Status(u32, String),
    Handle(Vec<u8>),
    Data(Vec<u8>),
    Attrs(Attrs),
    /// The file names of a READDIR answer.
    Names(Vec<Vec<u8>>),
    /// An extension's answer (its payload after the id).
    Extended(Vec<u8>),
    Other(u8),
}

/// The login user's facts an upload needs to do exactly what the shell
/// upload does (see [`put`]).
#[derive(Debug, Clone, Copy)]
pub struct Who {
    pub uid: u32,
    pub gid: u32,
    pub umask: u32,
}

/// One SFTP session (its own channel, held for the life of the connection).
pub struct Sftp {
    write: ChannelWriteHalf<client::Msg>,
    /// Requests waiting for their answer. Once the channel is gone (the
    /// reader set `closed` under this lock and emptied it) no request is
    /// added: every wait for an answer ends.
    pending: Arc<Mutex<HashMap<u32, oneshot::Sender<Reply>>>>,
    closed: Arc<AtomicBool>,
    /// Becomes true with `closed`: ends a write that waits for the host's
    /// window, which nothing opens again once the connection is gone.
    ended: tokio::sync::watch::Receiver<bool>,
    next_id: AtomicU32,
    /// `posix-rename@openssh.com` and `fsync@openssh.com`: both are needed.
    pub complete: bool,
    /// `users-groups-by-id@openssh.com` (OpenSSH 9.1+): owner and group
    /// names of the ids a stat gives ([`Sftp::names`]).
    pub names_by_id: bool,
    /// Directories listed for stale temp files in this session, with the
    /// stale temp files found there and not removed yet (see
    /// [`remove_stale_temps`]): a directory is listed once per connection.
    swept: Mutex<HashMap<String, Vec<String>>>,
    reader: tokio::task::JoinHandle<()>,
    _permit: OwnedSemaphorePermit,
}

impl Drop for Sftp {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

fn put_u32(b: &mut Vec<u8>, v: u32) {
    b.extend_from_slice(&v.to_be_bytes());
}

fn put_str(b: &mut Vec<u8>, s: &[u8]) {
    put_u32(b, s.len() as u32);
    b.extend_from_slice(s);
}

fn put_attrs(b: &mut Vec<u8>, a: &Attrs) {
    let mut flags = 0;
    if a.uid.is_some() && a.gid.is_some() {
        flags |= ATTR_UIDGID;
    }
    if a.perm.is_some() {
        flags |= ATTR_PERMISSIONS;
    }
    put_u32(b, flags);
    if let (Some(u), Some(g)) = (a.uid, a.gid) {
        put_u32(b, u);
        put_u32(b, g);
    }
    if let Some(p) = a.perm {
        put_u32(b, p);
    }
}

/// A cursor over a packet's payload.
struct Rd<'a>(&'a [u8]);

impl<'a> Rd<'a> {
    fn u32(&mut self) -> Option<u32> {
        let (h, t) = self.0.split_at_checked(4)?;
        self.0 = t;
        Some(u32::from_be_bytes(h.try_into().ok()?))
    }
    fn u64(&mut self) -> Option<u64> {
        let (h, t) = self.0.split_at_checked(8)?;
        self.0 = t;
        Some(u64::from_be_bytes(h.try_into().ok()?))
    }
    fn bytes(&mut self) -> Option<&'a [u8]> {
        let n = self.u32()? as usize;
        let (h, t) = self.0.split_at_checked(n)?;
        self.0 = t;
        Some(h)
    }
    fn attrs(&mut self) -> Option<Attrs> {
        let flags = self.u32()?;
        let mut a = Attrs::default();
        if flags & ATTR_SIZE != 0 {
            a.size = Some(self.u64()?);
        }
        if flags & ATTR_UIDGID != 0 {
            a.uid = Some(self.u32()?);
            a.gid = Some(self.u32()?);
        }
        if flags & ATTR_PERMISSIONS != 0 {
            a.perm = Some(self.u32()?);
        }
        if flags & ATTR_ACMODTIME != 0 {
            a.atime = Some(self.u32()?);
            a.mtime = Some(self.u32()?);
        }
        Some(a)
    }
}

/// Parse one packet body (type, id, payload) into its id and reply.
fn parse_reply(body: &[u8]) -> Option<(u32, Reply)> {
    let (&kind, rest) = body.split_first()?;
    let mut r = Rd(rest);
    let id = r.u32()?;
    let reply = match kind {
        FXP_STATUS => {
            let code = r.u32()?;
            let msg = r
                .bytes()
                .map(|m| String::from_utf8_lossy(m).into_owned())
                .unwrap_or_default();
            Reply::Status(code, msg)
        }
        FXP_HANDLE => Reply::Handle(r.bytes()?.to_vec()),
        FXP_DATA => Reply::Data(r.bytes()?.to_vec()),
        FXP_ATTRS => Reply::Attrs(r.attrs()?),
        FXP_NAME => {
            let n = r.u32()?;
            let mut names = Vec::new();
            for _ in 0..n {
                names.push(r.bytes()?.to_vec());
                r.bytes()?; // the long name (`ls -l` style)
                r.attrs()?;
            }
            Reply::Names(names)
        }
        FXP_EXTENDED_REPLY => Reply::Extended(r.0.to_vec()),
        other => Reply::Other(other),
    };
    Some((id, reply))
}

/// Take every whole packet off the front of `buf`.
fn packets(buf: &mut Vec<u8>) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut at = 0;
    while let Some(len) = buf.get(at..at + 4) {
        let n = u32::from_be_bytes([len[0], len[1], len[2], len[3]]) as usize;
        let Some(body) = buf.get(at + 4..at + 4 + n) else { break };
        out.push(body.to_vec());
        at += 4 + n;
    }
    buf.drain(..at);
    out
}

/// A failed request: the server's message, or the channel's end.
#[derive(Debug)]
pub struct SftpError {
    pub code: u32,
    pub msg: String,
}

impl std::fmt::Display for SftpError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let msg = self.msg.trim();
        if msg.is_empty() {
            write!(f, "SFTP error {}", self.code)
        } else {
            // OpenSSH sends "Permission denied", "No such file": as strerror.
            let mut c = msg.chars();
            let first = c
                .next()
                .map(|c| c.to_lowercase().collect::<String>())
                .unwrap_or_default();
            write!(f, "{first}{}", c.as_str())
        }
    }
}

fn lost() -> SftpError {
    SftpError {
        code: 7,
        msg: "the SFTP channel closed".into(),
    }
}

impl Sftp {
    /// Start the session on a channel that asked for the `sftp` subsystem
    /// (answer not read yet): `Ok(None)` when the server has no SFTP.
    pub async fn start(
        channel: russh::Channel<client::Msg>,
        permit: OwnedSemaphorePermit,
    ) -> Result<Option<Sftp>, ConnError> {
        let (mut read, write) = channel.split();
        // The subsystem request's answer.
        loop {
            match read.wait().await {
                Some(ChannelMsg::Success) => break,
                Some(ChannelMsg::Failure | ChannelMsg::Eof | ChannelMsg::Close | ChannelMsg::ExitStatus { .. })
                | None => return Ok(None),
                Some(_) => {}
            }
        }
        let mut init = Vec::new();
        put_u32(&mut init, 5);
        init.push(FXP_INIT);
        put_u32(&mut init, 3);
        write
            .data_bytes(init)
            .await
            .map_err(|e| ConnError::Io(format!("SFTP: {e}")))?;
        let mut buf = Vec::new();
        let version = loop {
            match read.wait().await {
                Some(ChannelMsg::Data { data }) => {
                    buf.extend_from_slice(&data);
                    if let Some(p) = packets(&mut buf).into_iter().next() {
                        break p;
                    }
                }
                Some(ChannelMsg::Eof | ChannelMsg::Close | ChannelMsg::ExitStatus { .. }) | None => return Ok(None),
                Some(_) => {}
            }
        };
        if version.first() != Some(&FXP_VERSION) {
            return Ok(None);
        }
        let mut r = Rd(&version[1..]);
        if r.u32().is_none_or(|v| v < 3) {
            return Ok(None);
        }
        let mut exts = Vec::new();
        while let (Some(name), Some(_)) = (r.bytes(), r.bytes()) {
            exts.push(String::from_utf8_lossy(name).into_owned());
        }
        let complete = ["posix-rename@openssh.com", "fsync@openssh.com"]
            .iter()
            .all(|e| exts.iter().any(|x| x == e));
        let names_by_id = exts.iter().any(|x| x == "users-groups-by-id@openssh.com");
        let pending: Arc<Mutex<HashMap<u32, oneshot::Sender<Reply>>>> = Arc::default();
        let closed = Arc::new(AtomicBool::new(false));
        let (ended_tx, ended) = tokio::sync::watch::channel(false);
        let reader = {
            let pending = pending.clone();
            let closed = closed.clone();
            tokio::spawn(async move {
                loop {
                    match read.wait().await {
                        Some(ChannelMsg::Data { data }) => {
                            buf.extend_from_slice(&data);
                            for p in packets(&mut buf) {
                                if let Some((id, reply)) = parse_reply(&p) {
                                    let tx = pending.lock().unwrap_or_else(|e| e.into_inner()).remove(&id);
                                    if let Some(tx) = tx {
                                        let _ = tx.send(reply);
                                    }
                                }
                            }
                            if buf.is_empty() {
                                // Idle between requests: hold no buffer.
                                buf = Vec::new();
                            }
                        }
                        Some(ChannelMsg::Eof | ChannelMsg::Close) | None => break,
                        Some(_) => {}
                    }
                }
                // Every waiting request learns that its answer will not
                // come, and no later one waits (see `Batch::push`).
                {
                    let mut p = pending.lock().unwrap_or_else(|e| e.into_inner());
                    closed.store(true, Ordering::SeqCst);
                    p.clear();
                }
                let _ = ended_tx.send(true);
            })
        };
        Ok(Some(Sftp {
            write,
            pending,
            closed,
            ended,
            next_id: AtomicU32::new(1),
            complete,
            names_by_id,
            swept: Mutex::new(HashMap::new()),
            reader,
            _permit: permit,
        }))
    }

    /// True once the channel is gone.
    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::SeqCst)
    }

    /// Send one request (`kind`, a fresh id, `payload`); the answer comes on
    /// the returned receiver.
    async fn send(&self, kind: u8, payload: &[u8]) -> Result<oneshot::Receiver<Reply>, SftpError> {
        self.send_parts(kind, &[payload]).await
    }

    /// [`Sftp::send`] of a payload in parts, copied once into the packet.
    async fn send_parts(&self, kind: u8, parts: &[&[u8]]) -> Result<oneshot::Receiver<Reply>, SftpError> {
        let mut b = Batch::new(self);
        let rx = b.push(kind, parts)?;
        b.send().await?;
        Ok(rx)
    }

    async fn call(&self, kind: u8, payload: &[u8]) -> Result<Reply, SftpError> {
        self.send(kind, payload).await?.await.map_err(|_| lost())
    }

    /// A request answered by a status: OK or the error.
    async fn status_of(rx: oneshot::Receiver<Reply>) -> Result<(), SftpError> {
        match rx.await.map_err(|_| lost())? {
            Reply::Status(FX_OK, _) => Ok(()),
            Reply::Status(code, msg) => Err(SftpError { code, msg }),
            other => Err(unexpected(&other)),
        }
    }

    /// The OPEN payload that creates `path` exclusively for writing,
    /// private to the user.
    fn create_excl_payload(path: &str) -> Vec<u8> {
        let mut p = Vec::new();
        put_str(&mut p, path.as_bytes());
        put_u32(&mut p, FXF_WRITE | FXF_CREAT | FXF_EXCL);
        put_attrs(
            &mut p,
            &Attrs {
                perm: Some(0o600),
                ..Default::default()
            },
        );
        p
    }

    /// The content of `path` (links followed) when it has at most `max`
    /// bytes; `Ok(None)` when it has more.
    pub async fn read_small(&self, path: &str, max: usize) -> Result<Option<Vec<u8>>, SftpError> {
        let mut p = Vec::new();
        put_str(&mut p, path.as_bytes());
        put_u32(&mut p, FXF_READ);
        put_u32(&mut p, 0);
        let handle = match self.call(FXP_OPEN, &p).await? {
            Reply::Handle(h) => h,
            Reply::Status(code, msg) => return Err(SftpError { code, msg }),
            other => return Err(unexpected(&other)),
        };
        let res = self.read_handle(&handle, max).await;
        if let Ok(rx) = self.handle_call(FXP_CLOSE, &handle, &[]).await {
            let _ = Self::status_of(rx).await;
        }
        res
    }

    fn read_req(offset: usize, len: usize) -> Vec<u8> {
        let mut tail = Vec::with_capacity(12);
        tail.extend_from_slice(&(offset as u64).to_be_bytes());
        put_u32(&mut tail, len as u32);
        tail
    }

    async fn read_handle(&self, handle: &[u8], max: usize) -> Result<Option<Vec<u8>>, SftpError> {
        // Reads of up to `max + 1` bytes (one past tells a bigger file), all
        // sent at once.
        let mut pending = Vec::new();
        let mut offset = 0;
        let mut b = Batch::new(self);
        while offset <= max {
            let len = WRITE_CHUNK.min(max + 1 - offset);
            let mut req = Vec::with_capacity(handle.len() + 16);
            put_str(&mut req, handle);
            req.extend_from_slice(&Self::read_req(offset, len));
            pending.push((offset, b.push(FXP_READ, &[&req])?));
            offset += len;
        }
        b.send().await?;
        let mut data = Vec::new();
        for (at, rx) in pending {
            let reply = rx.await.map_err(|_| lost())?;
            if at != data.len() {
                // After a short read: read on from there below.
                continue;
            }
            match reply {
                Reply::Data(d) => data.extend_from_slice(&d),
                Reply::Status(FX_EOF, _) => return Ok(Some(data)),
                Reply::Status(code, msg) => return Err(SftpError { code, msg }),
                other => return Err(unexpected(&other)),
            }
        }
        loop {
            if data.len() > max {
                return Ok(None);
            }
            let rx = self
                .handle_call(FXP_READ, handle, &Self::read_req(data.len(), WRITE_CHUNK))
                .await?;
            match rx.await.map_err(|_| lost())? {
                Reply::Data(d) if !d.is_empty() => data.extend_from_slice(&d),
                Reply::Data(_) | Reply::Status(FX_EOF, _) => return Ok(Some(data)),
                Reply::Status(code, msg) => return Err(SftpError { code, msg }),
                other => return Err(unexpected(&other)),
            }
        }
    }

    async fn handle_call(&self, kind: u8, handle: &[u8], tail: &[u8]) -> Result<oneshot::Receiver<Reply>, SftpError> {
        let mut p = Vec::with_capacity(handle.len() + 4 + tail.len());
        put_str(&mut p, handle);
        p.extend_from_slice(tail);
        self.send(kind, &p).await
    }

    async fn extended(&self, name: &str, args: &[&[u8]]) -> Result<(), SftpError> {
        let mut p = Vec::new();
        put_str(&mut p, name.as_bytes());
        for a in args {
            put_str(&mut p, a);
        }
        Self::status_of(self.send(FXP_EXTENDED, &p).await?).await
    }

    /// The attributes of each path (`true`: links followed, as STAT; else
    /// LSTAT), all asked in one message; `None` for a path that does not
    /// exist (the server says "no such file" for ENOENT, ENOTDIR and ELOOP,
    /// where `[ -e ]` is false too). Any other error is returned.
    pub async fn stat_many(&self, paths: &[(&str, bool)]) -> Result<Vec<Option<Attrs>>, SftpError> {
        let mut b = Batch::new(self);
        let mut rxs = Vec::with_capacity(paths.len());
        for (path, follow) in paths {
            let mut p = Vec::with_capacity(path.len() + 4);
            put_str(&mut p, path.as_bytes());
            rxs.push(b.push(if *follow { FXP_STAT } else { FXP_LSTAT }, &[&p])?);
        }
        b.send().await?;
        let mut out = Vec::with_capacity(rxs.len());
        for rx in rxs {
            out.push(match rx.await.map_err(|_| lost())? {
                Reply::Attrs(a) => Some(a),
                Reply::Status(FX_NO_SUCH_FILE, _) => None,
                Reply::Status(code, msg) => return Err(SftpError { code, msg }),
                other => return Err(unexpected(&other)),
            });
        }
        Ok(out)
    }

    /// The user names of `uids` and group names of `gids`, in order, as the
    /// host's name service gives them to the SFTP server (an empty name for
    /// an id without one). Needs [`Sftp::names_by_id`].
    pub async fn names(&self, uids: &[u32], gids: &[u32]) -> Result<(Vec<String>, Vec<String>), SftpError> {
        let list = |ids: &[u32]| ids.iter().flat_map(|i| i.to_be_bytes()).collect::<Vec<u8>>();
        let mut p = Vec::new();
        put_str(&mut p, b"users-groups-by-id@openssh.com");
        put_str(&mut p, &list(uids));
        put_str(&mut p, &list(gids));
        let body = match self.call(FXP_EXTENDED, &p).await? {
            Reply::Extended(b) => b,
            Reply::Status(code, msg) => return Err(SftpError { code, msg }),
            other => return Err(unexpected(&other)),
        };
        let bad = || SftpError {
            code: 5,
            msg: "malformed users-groups-by-id answer".into(),
        };
        let mut r = Rd(&body);
        let names = |n: usize, sub: &[u8]| -> Option<Vec<String>> {
            let mut s = Rd(sub);
            let v = (0..n)
                .map(|_| s.bytes().map(|b| String::from_utf8_lossy(b).into_owned()))
                .collect::<Option<Vec<_>>>()?;
            s.0.is_empty().then_some(v)
        };
        let users = r.bytes().ok_or_else(bad)?;
        let groups = r.bytes().ok_or_else(bad)?;
        Ok((
            names(uids.len(), users).ok_or_else(bad)?,
            names(gids.len(), groups).ok_or_else(bad)?,
        ))
    }

    /// Set the permission bits of `path` (links followed, as chmod(2)).
    pub async fn set_mode(&self, path: &str, mode: u32) -> Result<(), SftpError> {
        let mut p = Vec::new();
        put_str(&mut p, path.as_bytes());
        put_attrs(
            &mut p,
            &Attrs {
                perm: Some(mode & 0o7777),
                ..Default::default()
            },
        );
        Self::status_of(self.send(FXP_SETSTAT, &p).await?).await
    }

    /// Make the directory `path` (its parent must exist) with `mode` less
    /// the umask of the SFTP server, 0777 less it when `None` (mkdir(2)).
    pub async fn mkdir(&self, path: &str, mode: Option<u32>) -> Result<(), SftpError> {
        let mut p = Vec::new();
        put_str(&mut p, path.as_bytes());
        put_attrs(
            &mut p,
            &Attrs {
                perm: mode.map(|m| m & 0o7777),
                ..Default::default()
            },
        );
        Self::status_of(self.send(FXP_MKDIR, &p).await?).await
    }

    /// The names in directory `dir` (`.` and `..` included, as the server sends them).
    async fn list_dir(&self, dir: &str) -> Result<Vec<Vec<u8>>, SftpError> {
        let mut p = Vec::new();
        put_str(&mut p, dir.as_bytes());
        let handle = match self.call(FXP_OPENDIR, &p).await? {
            Reply::Handle(h) => h,
            Reply::Status(code, msg) => return Err(SftpError { code, msg }),
            other => return Err(unexpected(&other)),
        };
        let mut names = Vec::new();
        let res = loop {
            let rx = match self.handle_call(FXP_READDIR, &handle, &[]).await {
                Ok(rx) => rx,
                Err(e) => break Err(e),
            };
            match rx.await.map_err(|_| lost()) {
                Ok(Reply::Names(n)) if !n.is_empty() => names.extend(n),
                Ok(Reply::Names(_)) | Ok(Reply::Status(FX_EOF, _)) => break Ok(()),
                Ok(Reply::Status(code, msg)) => break Err(SftpError { code, msg }),
                Ok(other) => break Err(unexpected(&other)),
                Err(e) => break Err(e),
            }
        };
        if let Ok(rx) = self.handle_call(FXP_CLOSE, &handle, &[]).await {
            let _ = Sftp::status_of(rx).await;
        }
        res.map(|()| names)
    }

    async fn remove(&self, path: &str) -> Result<(), SftpError> {
        let mut p = Vec::new();
        put_str(&mut p, path.as_bytes());
        Self::status_of(self.send(FXP_REMOVE, &p).await?).await
    }
}

/// Requests sent together in one channel message: fewer messages through
/// russh's queues and fewer SSH packets for the host's sshd to decrypt. The
/// server still answers each in order.
struct Batch<'a> {
    sftp: &'a Sftp,
    buf: Vec<u8>,
    ids: Vec<u32>,
}

impl<'a> Batch<'a> {
    fn new(sftp: &'a Sftp) -> Self {
        Batch {
            sftp,
            buf: Vec::new(),
            ids: Vec::new(),
        }
    }

    /// Add a request (its payload in parts, copied once); its answer comes on
    /// the receiver once the batch is sent.
    fn push(&mut self, kind: u8, parts: &[&[u8]]) -> Result<oneshot::Receiver<Reply>, SftpError> {
        let id = self.sftp.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        {
            // Checked under the lock the reader empties the map under.
            let mut pending = self.sftp.pending.lock().unwrap_or_else(|e| e.into_inner());
            if self.sftp.is_closed() {
                return Err(lost());
            }
            pending.insert(id, tx);
        }
        self.ids.push(id);
        let len: usize = parts.iter().map(|p| p.len()).sum();
        self.buf.reserve(len + 9);
        put_u32(&mut self.buf, len as u32 + 5);
        self.buf.push(kind);
        put_u32(&mut self.buf, id);
        for part in parts {
            self.buf.extend_from_slice(part);
        }
        Ok(rx)
    }

    async fn send(self) -> Result<(), SftpError> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let mut ended = self.sftp.ended.clone();
        let sent = tokio::select! {
            r = self.sftp.write.data_bytes(self.buf) => r.is_ok(),
            _ = ended.wait_for(|e| *e) => false,
        };
        if !sent {
            let mut pending = self.sftp.pending.lock().unwrap_or_else(|e| e.into_inner());
            for id in &self.ids {
                pending.remove(id);
            }
            return Err(lost());
        }
        Ok(())
    }
}

/// The payload of an FSETSTAT of `handle` to `attrs`.
fn setstat_payload(handle: &[u8], attrs: &Attrs) -> Vec<u8> {
    let mut p = Vec::new();
    put_str(&mut p, handle);
    put_attrs(&mut p, attrs);
    p
}

/// The handle, offset and length of a write (its data follows).
fn write_head(handle: &[u8], offset: u64, len: usize) -> Vec<u8> {
    let mut head = Vec::with_capacity(16 + handle.len());
    put_str(&mut head, handle);
    head.extend_from_slice(&offset.to_be_bytes());
    put_u32(&mut head, len as u32);
    head
}

fn unexpected(r: &Reply) -> SftpError {
    let kind = match r {
        Reply::Status(..) => FXP_STATUS,
        Reply::Handle(_) => FXP_HANDLE,
        Reply::Data(_) => FXP_DATA,
        Reply::Attrs(_) => FXP_ATTRS,
        Reply::Names(_) => FXP_NAME,
        Reply::Extended(_) => FXP_EXTENDED_REPLY,
        Reply::Other(k) => *k,
    };
    SftpError {
        code: 5,
        msg: format!("unexpected SFTP answer (packet type {kind})"),
    }
}

/// Where the content of an upload comes from.
pub enum Content<'a> {
    Bytes(&'a [u8]),
    File(tokio::fs::File, &'a std::path::Path),
}

/// What [`put`] does to the new file besides its content.
#[derive(Debug, Clone, Copy, Default)]
pub struct PutAttrs {
    /// The mode to set; `None`: the mode of the file it replaces, or for a new
    /// file `0666` less the user's umask (what a shell's `>` gives).
    pub mode: Option<u32>,
}

/// Replace `dest` (an absolute path) atomically with `content`, exactly as
/// the shell upload (`upload_to_d` in the parent module) does: a temp file
/// next to it, created exclusively, written, fsynced, given the mode (and,
/// when `dest` exists and is not the user's own, its owner; failing that is
/// not an error, as with `chown` there), renamed over `dest` only once every
/// write was acknowledged and the server holds as many bytes as were sent. On
/// failure `dest` is untouched and the temp file is removed; when the
/// connection itself is gone (or rigger was killed) it cannot be, and the
/// next upload to `dest` that writes removes it: over SFTP after its rename
/// (see [`remove_stale_temps`]), through the shell before it writes (same
/// naming, [`temp_tag`]).
pub async fn put(sftp: &Sftp, content: Content<'_>, dest: &str, attrs: PutAttrs, who: Who) -> Result<(), ConnError> {
    let fail = |what: &str, e: SftpError| ConnError::Io(format!("cannot write {dest}: {what}: {e}"));
    let parent = match dest.rfind('/') {
        Some(0) => "/",
        Some(i) => &dest[..i],
        None => ".",
    };
    // Named as the shell upload names its temp files, so a shell upload to
    // the same destination removes one a killed run left.
    let tmp = format!(
        "{}/.rigger-tmp-{}.{:016x}",
        parent.trim_end_matches('/'),
        temp_tag(dest),
        rand::random::<u64>()
    );
    // The file it replaces (links followed, as `[ -e ]`/`chmod --reference`)
    // and the temp file, asked together.
    let mut stat_req = Vec::new();
    put_str(&mut stat_req, dest.as_bytes());
    let open_req = Sftp::create_excl_payload(&tmp);
    let mut b = Batch::new(sftp);
    let stat_rx = b.push(FXP_STAT, &[&stat_req]).map_err(|e| fail("stat", e))?;
    let open_rx = b.push(FXP_OPEN, &[&open_req]).map_err(|e| fail("stat", e))?;
    b.send().await.map_err(|e| fail("stat", e))?;
    // `Ok(None)`: no such file.
    let old = match stat_rx.await.map_err(|_| lost()) {
        Ok(Reply::Attrs(a)) => Ok(Some(a)),
        Ok(Reply::Status(FX_NO_SUCH_FILE, _)) => Ok(None),
        Ok(Reply::Status(code, msg)) => Err(SftpError { code, msg }),
        Ok(other) => Err(unexpected(&other)),
        Err(e) => Err(e),
    };
    let create = format!("create {tmp}");
    let handle = match open_rx.await.map_err(|_| lost()) {
        Ok(Reply::Handle(h)) => h,
        Ok(Reply::Status(code, msg)) => return Err(fail(&create, SftpError { code, msg })),
        Ok(other) => return Err(fail(&create, unexpected(&other))),
        Err(e) => return Err(fail(&create, e)),
    };
    let old = match old {
        Ok(o) => o,
        Err(e) => {
            let _ = sftp.handle_call(FXP_CLOSE, &handle, &[]).await;
            let _ = sftp.remove(&tmp).await;
            return Err(fail("stat", e));
        }
    };
    let mode = attrs.mode.or(old.and_then(|a| a.perm)).unwrap_or(0o666 & !who.umask) & 0o7777;
    // Everything up to the close goes out before any answer is awaited;
    // small content in the same message as the rest.
    let mut close_sent = false;
    let res = async {
        let mut b = Batch::new(sftp);
        let (mut answers, written) = match content {
            Content::Bytes(data) if data.len() <= BATCH_WRITE_MAX => {
                let mut answers = std::collections::VecDeque::new();
                let mut offset = 0u64;
                for chunk in data.chunks(WRITE_CHUNK) {
                    let head = write_head(&handle, offset, chunk.len());
                    answers.push_back(b.push(FXP_WRITE, &[&head, chunk])?);
                    offset += chunk.len() as u64;
                }
                (answers, offset)
            }
            other => write_all(sftp, &handle, other).await?,
        };
        // The same order as the shell's chmod, then chown.
        let setmode = setstat_payload(
            &handle,
            &Attrs {
                perm: Some(mode),
                ..Default::default()
            },
        );
        answers.push_back(b.push(FXP_FSETSTAT, &[&setmode])?);
        let mut chown = None;
        if let Some(Attrs {
            uid: Some(u),
            gid: Some(g),
            ..
        }) = old
        {
            if u != who.uid || g != who.gid {
                let own = setstat_payload(
                    &handle,
                    &Attrs {
                        uid: Some(u),
                        gid: Some(g),
                        ..Default::default()
                    },
                );
                chown = Some(b.push(FXP_FSETSTAT, &[&own])?);
            }
        }
        let mut fsync = Vec::new();
        put_str(&mut fsync, b"fsync@openssh.com");
        put_str(&mut fsync, &handle);
        let fsync = b.push(FXP_EXTENDED, &[&fsync])?;
        // What the server holds after every write: the rename waits for
        // this to be what was sent.
        let mut fstat = Vec::new();
        put_str(&mut fstat, &handle);
        let fstat = b.push(FXP_FSTAT, &[&fstat])?;
        let mut close = Vec::new();
        put_str(&mut close, &handle);
        let close = b.push(FXP_CLOSE, &[&close])?;
        b.send().await?;
        close_sent = true;
        let mut first_err = None;
        for rx in answers {
            if let Err(e) = Sftp::status_of(rx).await {
                first_err.get_or_insert(e);
            }
        }
        if let Some(rx) = chown {
            // Not an error, as with the shell's `chown ... 2>/dev/null`.
            let _ = Sftp::status_of(rx).await;
        }
        if let Err(e) = Sftp::status_of(fsync).await {
            first_err.get_or_insert(e);
        }
        let size = match fstat.await.map_err(|_| lost()) {
            Ok(Reply::Attrs(a)) => Ok(a.size),
            Ok(Reply::Status(code, msg)) => Err(SftpError { code, msg }),
            Ok(other) => Err(unexpected(&other)),
            Err(e) => Err(e),
        };
        match size {
            Ok(Some(n)) if n == written => {}
            Ok(n) => {
                first_err.get_or_insert(SftpError {
                    code: 4,
                    msg: format!(
                        "incomplete upload: {} of {written} bytes arrived",
                        n.map_or("an unknown number".to_string(), |n| n.to_string())
                    ),
                });
            }
            Err(e) => {
                first_err.get_or_insert(e);
            }
        }
        if let Err(e) = Sftp::status_of(close).await {
            first_err.get_or_insert(e);
        }
        first_err.map_or(Ok(()), Err)
    }
    .await;
    if !close_sent {
        // The handle is closed in every case.
        if let Ok(rx) = sftp.handle_call(FXP_CLOSE, &handle, &[]).await {
            let _ = Sftp::status_of(rx).await;
        }
    }
    let res = match res {
        Ok(()) => sftp
            .extended("posix-rename@openssh.com", &[tmp.as_bytes(), dest.as_bytes()])
            .await
            .map_err(|e| ("rename", e)),
        Err(e) => Err(("write", e)),
    };
    if let Err((what, e)) = res {
        if !sftp.is_closed() {
            let _ = sftp.remove(&tmp).await;
        }
        return Err(fail(what, e));
    }
    remove_stale_temps(sftp, parent, dest).await;
    Ok(())
}

/// Removes the temp files an earlier, killed upload left for `dest`
/// (`.rigger-tmp-<tag>.<16 hex digits>` in its directory; never another
/// file's). After this upload's rename, so a write that changes nothing
/// costs nothing, and best effort: the upload itself is done. An upload to
/// the same file running at this moment loses its temp file and fails
/// cleanly at its rename, as through the shell. A directory is listed once
/// per connection: the stale files of the others found there are kept for
/// their own uploads (no new ones appear while this run holds the
/// connection: its own uploads remove theirs).
async fn remove_stale_temps(sftp: &Sftp, parent: &str, dest: &str) {
    let known = sftp
        .swept
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get(parent)
        .cloned();
    let stale = match known {
        Some(stale) => stale,
        None => {
            let Ok(names) = sftp.list_dir(parent).await else {
                return;
            };
            let stale: Vec<String> = names
                .into_iter()
                .filter_map(|n| String::from_utf8(n).ok())
                .filter(|n| {
                    n.strip_prefix(".rigger-tmp-")
                        .and_then(|rest| rest.rsplit_once('.'))
                        .is_some_and(|(_, hex)| hex.len() == 16 && hex.bytes().all(|b| b.is_ascii_hexdigit()))
                })
                .collect();
            stale
        }
    };
    let prefix = format!(".rigger-tmp-{}.", temp_tag(dest));
    let (mine, others): (Vec<String>, Vec<String>) = stale.into_iter().partition(|n| {
        n.strip_prefix(&prefix)
            .is_some_and(|hex| hex.len() == 16 && hex.bytes().all(|b| b.is_ascii_hexdigit()))
    });
    sftp.swept
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(parent.to_string(), others);
    for name in mine {
        let _ = sftp.remove(&format!("{}/{name}", parent.trim_end_matches('/'))).await;
    }
}

/// Content up to this size goes out in one message with the requests that
/// follow it; bigger content is streamed with a window of writes in flight.
const BATCH_WRITE_MAX: usize = 256 * 1024;

/// Send every write of `content`, a window of them in flight: the answers
/// not yet checked are returned, and the number of bytes sent.
async fn write_all(
    sftp: &Sftp,
    handle: &[u8],
    content: Content<'_>,
) -> Result<(std::collections::VecDeque<oneshot::Receiver<Reply>>, u64), SftpError> {
    use tokio::io::AsyncReadExt;
    let mut inflight = std::collections::VecDeque::new();
    let mut offset: u64 = 0;
    async fn send(
        sftp: &Sftp,
        handle: &[u8],
        chunk: &[u8],
        offset: u64,
    ) -> Result<oneshot::Receiver<Reply>, SftpError> {
        // The data itself is copied once, into the packet.
        let head = write_head(handle, offset, chunk.len());
        sftp.send_parts(FXP_WRITE, &[&head, chunk]).await
    }
    match content {
        Content::Bytes(b) => {
            for chunk in b.chunks(WRITE_CHUNK) {
                if inflight.len() >= WRITE_WINDOW {
                    Sftp::status_of(inflight.pop_front().expect("in flight")).await?;
                }
                inflight.push_back(send(sftp, handle, chunk, offset).await?);
                offset += chunk.len() as u64;
            }
        }
        Content::File(mut f, path) => {
            let mut buf = vec![0u8; WRITE_CHUNK];
            loop {
                let n = f.read(&mut buf).await.map_err(|e| SftpError {
                    code: 4,
                    msg: format!("cannot read {}: {e}", path.display()),
                })?;
                if n == 0 {
                    break;
                }
                if inflight.len() >= WRITE_WINDOW {
                    Sftp::status_of(inflight.pop_front().expect("in flight")).await?;
                }
                inflight.push_back(send(sftp, handle, &buf[..n], offset).await?);
                offset += n as u64;
            }
        }
    }
    Ok((inflight, offset))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packets_are_split_whole_and_replies_parsed() {
        let mut buf = Vec::new();
        // STATUS id 7: code 3 "Permission denied"
        let mut body = vec![FXP_STATUS];
        put_u32(&mut body, 7);
        put_u32(&mut body, 3);
        put_str(&mut body, b"Permission denied");
        put_str(&mut body, b"");
        put_u32(&mut buf, body.len() as u32);
        buf.extend_from_slice(&body);
        // ATTRS id 8: size, uid/gid, perms and times (as LSTAT answers);
        // then half of a third packet.
        let mut body2 = vec![FXP_ATTRS];
        put_u32(&mut body2, 8);
        put_u32(&mut body2, ATTR_SIZE | ATTR_UIDGID | ATTR_PERMISSIONS | ATTR_ACMODTIME);
        body2.extend_from_slice(&4096u64.to_be_bytes());
        for v in [1000, 100, 0o100644, 1_700_000_000, 1_700_000_123] {
            put_u32(&mut body2, v);
        }
        put_u32(&mut buf, body2.len() as u32);
        buf.extend_from_slice(&body2);
        buf.extend_from_slice(&[0, 0, 0, 9, FXP_HANDLE]);
        let got = packets(&mut buf);
        assert_eq!(got.len(), 2);
        assert_eq!(buf, vec![0, 0, 0, 9, FXP_HANDLE], "the partial packet stays");
        match parse_reply(&got[0]) {
            Some((7, Reply::Status(3, m))) => assert_eq!(m, "Permission denied"),
            other => panic!("{other:?}"),
        }
        match parse_reply(&got[1]) {
            Some((8, Reply::Attrs(a))) => assert_eq!(
                a,
                Attrs {
                    uid: Some(1000),
                    gid: Some(100),
                    perm: Some(0o100644),
                    size: Some(4096),
                    atime: Some(1_700_000_000),
                    mtime: Some(1_700_000_123),
                }
            ),
            other => panic!("{other:?}"),
        }
        // A truncated body is no reply, not a panic.
        assert!(parse_reply(&[FXP_STATUS, 0, 0]).is_none());
        let e = SftpError {
            code: 3,
            msg: "Permission denied".into(),
        };
        assert_eq!(e.to_string(), "permission denied");
    }
}
