//! Replacing a file on the controller atomically: the data goes into a new
//! temporary file beside the target (created exclusively, never through an
//! existing file or symlink), is synced, and is renamed over the target, so
//! a reader sees the old or the new version, never a part, whatever fails
//! (kill -9, a full disk, a dropped connection mid-transfer).
//!
//! Used for the files rigger writes on the controller as data: `fetch`
//! destinations and `rigger vault`'s outputs. The target's mode is kept when
//! it exists; a new file gets `new_mode` (less the umask).

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// A new file in `dir` named `prefix` + random hex + `suffix`, created with
/// `mode` (less the umask); never an existing file or a symlink's target.
pub fn create_new_in(dir: &Path, prefix: &str, suffix: &str, mode: u32) -> std::io::Result<(PathBuf, File)> {
    let mut last = None;
    for _ in 0..16 {
        let p = dir.join(format!("{prefix}{:016x}{suffix}", rand::random::<u64>()));
        match OpenOptions::new().write(true).create_new(true).mode(mode).open(&p) {
            Ok(f) => return Ok((p, f)),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => last = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last.unwrap_or_else(|| std::io::Error::other("no free temporary name")))
}

/// Replace `path` with `data` atomically (see the module's doc). The
/// directory must exist. On failure the temporary file is removed and the
/// target is untouched.
pub fn replace(path: &Path, data: &[u8], new_mode: u32) -> std::io::Result<()> {
    let existing_mode = std::fs::metadata(path).ok().map(|m| m.permissions().mode() & 0o7777);
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let name = path.file_name().map(|n| n.to_string_lossy()).unwrap_or_default();
    // Private while it is written; the final mode is set before the rename.
    let (tmp, mut f) = create_new_in(dir, &format!(".{name}."), ".tmp", 0o600)?;
    let r = f
        .write_all(data)
        .and_then(|_| f.sync_all())
        .and_then(|_| match existing_mode {
            Some(mode) => std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(mode)),
            None => {
                let umask = current_umask();
                std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(new_mode & !umask))
            }
        })
        .and_then(|_| std::fs::rename(&tmp, path));
    if r.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    r
}

/// The process's umask, read from /proc (Linux ≥ 4.7) so it is not changed
/// even for a moment; 022 when it cannot be read.
fn current_umask() -> u32 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Umask:"))
                .and_then(|v| u32::from_str_radix(v.trim(), 8).ok())
        })
        .unwrap_or(0o022)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replace_keeps_the_mode_new_files_get_theirs_and_nothing_is_left_behind() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("f");
        replace(&p, b"one", 0o600).unwrap();
        assert_eq!(std::fs::metadata(&p).unwrap().permissions().mode() & 0o777, 0o600);
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o640)).unwrap();
        replace(&p, b"two", 0o600).unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"two");
        assert_eq!(std::fs::metadata(&p).unwrap().permissions().mode() & 0o777, 0o640);
        let q = d.path().join("g");
        replace(&q, b"x", 0o666).unwrap();
        let mode = std::fs::metadata(&q).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o666 & !current_umask());
        assert_eq!(
            std::fs::read_dir(d.path()).unwrap().count(),
            2,
            "no temporary file left"
        );
    }

    #[test]
    fn a_failed_replace_leaves_the_old_version_and_no_temporary_file() {
        let d = tempfile::tempdir().unwrap();
        // The target is a directory: the rename fails after the data was written.
        let p = d.path().join("dir");
        std::fs::create_dir(&p).unwrap();
        std::fs::write(p.join("inside"), b"old").unwrap();
        assert!(replace(&p, b"new", 0o600).is_err());
        assert_eq!(std::fs::read(p.join("inside")).unwrap(), b"old");
        assert_eq!(std::fs::read_dir(d.path()).unwrap().count(), 1);
    }

    #[test]
    fn create_new_in_makes_a_fresh_file_with_its_mode() {
        let d = tempfile::tempdir().unwrap();
        let (p, _f) = create_new_in(d.path(), ".x.", "", 0o600).unwrap();
        assert!(p.file_name().unwrap().to_string_lossy().starts_with(".x."));
        assert_eq!(std::fs::metadata(&p).unwrap().permissions().mode() & 0o777, 0o600);
    }
}
