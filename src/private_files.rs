//! Files rigger keeps on the controller for itself: the check history
//! database, its lock files, `--log-file`, watch's state file. They hold full
//! diffs of configuration files (passwords included), so they are created
//! 0600 and their missing directories 0700 whatever the umask, and an
//! existing one that group or others can read is tightened (when rigger's
//! user owns it) with a visible warning.
//!
//! Files a user asks for by name as data (a `fetch` destination, the
//! quickstart directory, a report redirected from stdout) follow the umask,
//! as Ansible's do.

use std::fs::{DirBuilder, File, OpenOptions};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Mode of a private file.
pub const FILE_MODE: u32 = 0o600;
/// Mode of a directory rigger creates for its private files.
pub const DIR_MODE: u32 = 0o700;

/// Create `dir` and its missing parents 0700 (the XDG base directory rule);
/// directories that exist already are left as they are (a user's own choice,
/// e.g. the project directory a `--db` names).
pub fn create_dir(dir: &Path) -> std::io::Result<()> {
    if dir.as_os_str().is_empty() || dir.is_dir() {
        return Ok(());
    }
    DirBuilder::new().recursive(true).mode(DIR_MODE).create(dir)
}

/// Create the parent directory of `path` (see [`create_dir`]).
pub fn create_parent(path: &Path) -> std::io::Result<()> {
    match path.parent() {
        Some(dir) => create_dir(dir),
        None => Ok(()),
    }
}

/// Open (creating it 0600) `path` with `opts`, then tighten it if it existed
/// with a looser mode.
pub fn open(path: &Path, opts: &mut OpenOptions) -> std::io::Result<File> {
    let f = opts.mode(FILE_MODE).open(path)?;
    if let Ok(meta) = f.metadata() {
        // fchmod on the open file: no race with a rename of the path.
        tighten_with(path, &meta, |mode| {
            f.set_permissions(std::fs::Permissions::from_mode(mode))
        });
    }
    Ok(f)
}

/// Make sure the SQLite database `db` exists 0600 before SQLite opens it.
///
/// SQLite creates a new database with 0644 (not the umask alone: it
/// `fchmod`s the new file), and gives its `-wal`, `-shm` and `-journal`
/// files the mode of the database file. So a database created here 0600
/// keeps every side file 0600 too, on every later open. Side files left
/// from older runs with a looser mode are tightened.
pub fn prepare_sqlite(db: &Path) -> std::io::Result<()> {
    create_parent(db)?;
    open(
        db,
        OpenOptions::new().read(true).write(true).create(true).truncate(false),
    )?;
    for side in sqlite_side_files(db) {
        tighten(&side);
    }
    Ok(())
}

/// The files SQLite keeps next to a database.
pub fn sqlite_side_files(db: &Path) -> [PathBuf; 3] {
    let with = |suffix: &str| {
        let mut s = db.as_os_str().to_owned();
        s.push(suffix);
        PathBuf::from(s)
    };
    [with("-wal"), with("-shm"), with("-journal")]
}

/// Tighten an existing regular file at `path` (not following a symbolic
/// link) that group or others may access; nothing when it does not exist.
pub fn tighten(path: &Path) {
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        return;
    };
    tighten_with(path, &meta, |mode| {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
    });
}

fn tighten_with(path: &Path, meta: &std::fs::Metadata, chmod: impl FnOnce(u32) -> std::io::Result<()>) {
    // Only regular files: `--log-file /dev/stderr` must not chmod a device.
    if !meta.is_file() {
        return;
    }
    let mode = meta.mode() & 0o7777;
    if mode & 0o077 == 0 {
        return;
    }
    // SAFETY: geteuid has no preconditions and cannot fail.
    let euid = unsafe { libc::geteuid() };
    let msg = if meta.uid() != euid {
        format!(
            "{} can be read by other users (mode {mode:04o}) and is not owned by this user, so it \
             was not changed; it holds rigger's state (diffs may contain secrets): chmod 600 it",
            path.display()
        )
    } else {
        match chmod(mode & 0o700) {
            Ok(()) => format!(
                "{} could be read by other users (mode {mode:04o}); rigger's state files may hold \
                 secrets, so it is now {:04o}",
                path.display(),
                mode & 0o700
            ),
            Err(e) => format!(
                "{} can be read by other users (mode {mode:04o}) and cannot be changed ({e}); it \
                 holds rigger's state (diffs may contain secrets): chmod 600 it",
                path.display()
            ),
        }
    };
    crate::stdio::warn(&msg);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(p: &Path) -> u32 {
        std::fs::metadata(p).unwrap().permissions().mode() & 0o7777
    }

    /// The process umask is shared by every test thread: these tests only
    /// rely on modes set explicitly, which the umask cannot loosen.
    #[test]
    fn new_files_and_dirs_are_private_and_loose_ones_tightened() {
        let d = tempfile::tempdir().unwrap();
        let db = d.path().join("a/b/state.db");
        prepare_sqlite(&db).unwrap();
        assert_eq!(mode(&db), 0o600);
        assert_eq!(mode(&d.path().join("a/b")), 0o700);
        assert_eq!(mode(&d.path().join("a")), 0o700);

        // An existing world-readable database and WAL are tightened.
        std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o644)).unwrap();
        let wal = sqlite_side_files(&db)[0].clone();
        std::fs::write(&wal, "").unwrap();
        std::fs::set_permissions(&wal, std::fs::Permissions::from_mode(0o664)).unwrap();
        prepare_sqlite(&db).unwrap();
        assert_eq!(mode(&db), 0o600);
        assert_eq!(mode(&wal), 0o600);

        // SQLite's own side files follow the database's mode.
        let conn = rusqlite::Connection::open(&db).unwrap();
        conn.pragma_update(None, "journal_mode", "WAL").unwrap();
        conn.execute_batch("CREATE TABLE t(x); INSERT INTO t VALUES (1);")
            .unwrap();
        for side in &sqlite_side_files(&db)[..2] {
            assert_eq!(mode(side), 0o600, "{}", side.display());
        }
    }

    #[test]
    fn appending_keeps_content_and_tightens() {
        let d = tempfile::tempdir().unwrap();
        let log = d.path().join("x.log");
        std::fs::write(&log, "old\n").unwrap();
        std::fs::set_permissions(&log, std::fs::Permissions::from_mode(0o644)).unwrap();
        let mut f = open(&log, OpenOptions::new().create(true).append(true)).unwrap();
        std::io::Write::write_all(&mut f, b"new\n").unwrap();
        assert_eq!(std::fs::read_to_string(&log).unwrap(), "old\nnew\n");
        assert_eq!(mode(&log), 0o600);
    }

    #[test]
    fn devices_and_existing_dirs_are_left_alone() {
        // /dev/null is not a regular file: never chmod'ed (it would break the system).
        let before = mode(Path::new("/dev/null"));
        open(Path::new("/dev/null"), OpenOptions::new().append(true)).unwrap();
        assert_eq!(mode(Path::new("/dev/null")), before);
        let d = tempfile::tempdir().unwrap();
        std::fs::set_permissions(d.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        create_dir(d.path()).unwrap();
        assert_eq!(mode(d.path()), 0o755);
    }
}
