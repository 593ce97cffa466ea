//! The `local` connection: runs commands on the controller itself.

use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::process::{Child, ChildStdin, Command};
use tokio::sync::mpsc;

use super::{ConnError, Connection, ProcEvent, Process};

pub struct LocalConnection {
    host: String,
    memo: super::Memo,
}

impl LocalConnection {
    pub fn new(host: &str) -> Self {
        LocalConnection {
            host: host.to_string(),
            memo: super::Memo::default(),
        }
    }
}

#[async_trait]
impl Connection for LocalConnection {
    fn host(&self) -> &str {
        &self.host
    }

    fn memo(&self) -> Option<&super::Memo> {
        Some(&self.memo)
    }

    async fn spawn(&self, cmd: &str, pty: bool) -> Result<Box<dyn Process>, ConnError> {
        if pty {
            return Err(ConnError::Become(
                "`su` with a password needs a terminal, which the local connection does not provide; use sudo".into(),
            ));
        }
        let mut child = Command::new("/bin/sh")
            .arg("-c")
            .arg(cmd)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| ConnError::Io(format!("cannot start /bin/sh: {e}")))?;
        let (tx, rx) = mpsc::channel(64);
        let mut stdout = child.stdout.take().ok_or_else(|| ConnError::Io("no stdout".into()))?;
        let mut stderr = child.stderr.take().ok_or_else(|| ConnError::Io("no stderr".into()))?;
        // Bumped on every read, so that the wait below can tell output
        // still coming from output that a background process holds open.
        let activity = Arc::new(AtomicU64::new(0));
        let tx_out = tx.clone();
        let seen = activity.clone();
        let out_task = tokio::spawn(async move {
            let mut buf = vec![0u8; 64 * 1024];
            while let Ok(n) = stdout.read(&mut buf).await {
                seen.fetch_add(1, Ordering::Relaxed);
                if n == 0 || tx_out.send(ProcEvent::Stdout(buf[..n].to_vec())).await.is_err() {
                    break;
                }
            }
        });
        let tx_err = tx.clone();
        let seen = activity.clone();
        let err_task = tokio::spawn(async move {
            let mut buf = vec![0u8; 64 * 1024];
            while let Ok(n) = stderr.read(&mut buf).await {
                seen.fetch_add(1, Ordering::Relaxed);
                if n == 0 || tx_err.send(ProcEvent::Stderr(buf[..n].to_vec())).await.is_err() {
                    break;
                }
            }
        });
        let stdin = child.stdin.take();
        tokio::spawn(wait_child(child, out_task, err_task, activity, tx));
        Ok(Box::new(LocalProcess { stdin, rx }))
    }
}

/// How long the output of a command that has exited is still read when
/// nothing arrives: Ansible's run_command stops after one quiet second of
/// its `select(1)` once the process is gone.
const QUIET_AFTER_EXIT: Duration = Duration::from_secs(1);

async fn wait_child(
    mut child: Child,
    mut out_task: tokio::task::JoinHandle<()>,
    mut err_task: tokio::task::JoinHandle<()>,
    activity: Arc<AtomicU64>,
    tx: mpsc::Sender<ProcEvent>,
) {
    let status = child.wait().await;
    // All output first, then the status, as with an SSH channel. A process
    // the command left in the background (`cmd &`) may hold the output
    // open: as in Ansible, the command is done once it has exited and its
    // output has been quiet for a second, not when the background ends.
    loop {
        let before = activity.load(Ordering::Relaxed);
        let both = async {
            let _ = (&mut out_task).await;
            let _ = (&mut err_task).await;
        };
        if tokio::time::timeout(QUIET_AFTER_EXIT, both).await.is_ok() {
            break;
        }
        if activity.load(Ordering::Relaxed) == before {
            out_task.abort();
            err_task.abort();
            break;
        }
    }
    let code = match status {
        Ok(s) => s.code().unwrap_or_else(|| {
            use std::os::unix::process::ExitStatusExt;
            128 + s.signal().unwrap_or(0)
        }),
        Err(_) => 255,
    };
    let _ = tx.send(ProcEvent::Exit(code)).await;
}

struct LocalProcess {
    stdin: Option<ChildStdin>,
    rx: mpsc::Receiver<ProcEvent>,
}

#[async_trait]
impl Process for LocalProcess {
    async fn write_stdin(&mut self, data: &[u8]) -> Result<(), ConnError> {
        match &mut self.stdin {
            // A process that exits without reading its stdin is not an error
            // of the transport; its status tells what happened.
            Some(s) => {
                let _ = s.write_all(data).await;
                Ok(())
            }
            None => Err(ConnError::Io("stdin already closed".into())),
        }
    }

    async fn close_stdin(&mut self) -> Result<(), ConnError> {
        if let Some(mut s) = self.stdin.take() {
            let _ = s.shutdown().await;
        }
        Ok(())
    }

    async fn next_event(&mut self) -> Result<Option<ProcEvent>, ConnError> {
        Ok(self.rx.recv().await)
    }
}
