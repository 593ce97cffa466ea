//! One run at a time per check: an exclusive `flock` on a lock file next to
//! the history database. The kernel drops the lock when the process dies, so
//! a killed run never blocks the next one.

use std::fs::{File, OpenOptions};
use std::os::fd::AsRawFd;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::error::AppError;

/// Held while the value lives.
#[derive(Debug)]
pub struct CheckLock {
    _file: File,
    pub path: PathBuf,
}

pub enum LockResult {
    Acquired(CheckLock),
    /// Another run held the lock for the whole timeout; its PID when known.
    TimedOut {
        holder: Option<String>,
    },
}

fn try_flock(f: &File) -> std::io::Result<bool> {
    // SAFETY: flock on a file descriptor we own; no memory is involved.
    let rc = unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if rc == 0 {
        return Ok(true);
    }
    let e = std::io::Error::last_os_error();
    match e.raw_os_error() {
        Some(libc::EWOULDBLOCK) | Some(libc::EINTR) => Ok(false),
        _ => Err(e),
    }
}

/// Take the lock at `path`, waiting up to `timeout` (polling; the wait is async).
pub async fn acquire(path: &Path, timeout: Duration) -> Result<LockResult, AppError> {
    let open = || {
        crate::private_files::open(
            path,
            OpenOptions::new().read(true).write(true).create(true).truncate(false),
        )
        .map_err(|e| AppError::Other(format!("cannot open the lock file {}: {e}", path.display())))
    };
    let file = open()?;
    let deadline = Instant::now() + timeout;
    loop {
        let got = try_flock(&file).map_err(|e| AppError::Other(format!("cannot lock {}: {e}", path.display())))?;
        if got {
            // Record who holds it, for the message of a waiting run.
            // Through the locked file itself: the path is not opened again.
            let _ = file.set_len(0);
            let _ = file.write_all_at(format!("{}\n", std::process::id()).as_bytes(), 0);
            return Ok(LockResult::Acquired(CheckLock {
                _file: file,
                path: path.to_path_buf(),
            }));
        }
        if Instant::now() >= deadline {
            let holder = std::fs::read_to_string(path)
                .ok()
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty());
            return Ok(LockResult::TimedOut { holder });
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn second_lock_times_out_until_the_first_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.lock");
        let LockResult::Acquired(first) = acquire(&p, Duration::ZERO).await.unwrap() else {
            panic!("first lock not acquired");
        };
        match acquire(&p, Duration::from_millis(250)).await.unwrap() {
            LockResult::TimedOut { holder } => assert_eq!(holder, Some(std::process::id().to_string())),
            LockResult::Acquired(_) => panic!("lock acquired twice"),
        }
        drop(first);
        assert!(matches!(
            acquire(&p, Duration::ZERO).await.unwrap(),
            LockResult::Acquired(_)
        ));
    }
}
