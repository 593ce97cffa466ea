//! `--log-file`: an append-only log with simple size rotation
//! (`check.log` -> `check.log.1` -> ... -> `check.log.3`).

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use crate::error::AppError;

const KEEP: u32 = 3;

/// A shared, thread-safe log writer (also the sink of the task-by-task output).
#[derive(Clone)]
pub struct LogFile {
    inner: Arc<Mutex<File>>,
}

/// Rotate `path` when it is larger than `max_size`, then open it for appending.
pub fn open(path: &Path, max_size: u64) -> Result<LogFile, AppError> {
    let err = |e: std::io::Error| AppError::Other(format!("log file {}: {e}", path.display()));
    // Private (0600 in a new 0700 directory): the task output holds diffs.
    crate::private_files::create_parent(path).map_err(err)?;
    if std::fs::metadata(path)
        .map(|m| m.is_file() && m.len() > max_size)
        .unwrap_or(false)
    {
        rotate(path).map_err(err)?;
    }
    for n in 1..=KEEP {
        crate::private_files::tighten(&numbered(path, n));
    }
    let f = crate::private_files::open(path, OpenOptions::new().create(true).append(true)).map_err(err)?;
    Ok(LogFile {
        inner: Arc::new(Mutex::new(f)),
    })
}

fn numbered(path: &Path, n: u32) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(format!(".{n}"));
    PathBuf::from(s)
}

fn rotate(path: &Path) -> std::io::Result<()> {
    for n in (1..KEEP).rev() {
        let from = numbered(path, n);
        if from.exists() {
            std::fs::rename(&from, numbered(path, n + 1))?;
        }
    }
    std::fs::rename(path, numbered(path, 1))
}

impl LogFile {
    /// One timestamped line.
    pub fn line(&self, msg: &str) {
        let now = crate::calendar::now_unix();
        let mut f = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let _ = writeln!(
            f,
            "{} rigger[{}]: {msg}",
            crate::calendar::rfc3339(now),
            std::process::id()
        );
    }
}

impl Write for LogFile {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner()).write(buf)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner()).flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotates_beyond_max_size_and_keeps_three() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("check.log");
        for i in 0..6 {
            let log = open(&p, 10).unwrap();
            log.line(&format!("run {i} with a line longer than ten bytes"));
        }
        let current = std::fs::read_to_string(&p).unwrap();
        assert!(current.contains("run 5"), "{current}");
        assert!(std::fs::read_to_string(numbered(&p, 1)).unwrap().contains("run 4"));
        assert!(std::fs::read_to_string(numbered(&p, 3)).unwrap().contains("run 2"));
        assert!(!numbered(&p, 4).exists());
    }
}
