//! `rigger vault rekey` of many files in one all-or-nothing step: vaulted
//! files and the inline `!vault` values of YAML files, given one by one or
//! found under directories.
//!
//! Everything is decrypted and re-encrypted in memory first (a value no
//! password opens stops the rekey before a byte is written). Then, under a
//! journal beside the files, each new version is written to a temporary
//! file next to its target and the target is hard-linked to a backup; only
//! then are the new versions renamed over the targets. A rename that fails
//! puts every backup back. A rekey killed part way is finished by the next
//! `rigger vault rekey` of the same directory: rolled forward when every
//! new version had been written, rolled back otherwise; so the files are
//! all under the old password or all under the new one, never a mix, and
//! never a part of a file.

use std::fs::File;
use std::io::Write;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use super::format::{encrypt, is_encrypted};
use super::inline;
use super::secrets::{Keyring, Secret};

/// The journal's name, in the directory of the first path given.
pub const JOURNAL: &str = ".rigger-vault-rekey.journal";

/// A file's new version, before it is committed.
struct Rewrite {
    target: PathBuf,
    data: Vec<u8>,
    /// Inline values rewritten (0 for a vaulted file).
    values: usize,
}

#[derive(Serialize, Deserialize)]
struct Journal {
    /// `preparing` (new versions being written), `prepared` (all written:
    /// roll forward), `rolling-back` (put the backups back).
    state: String,
    entries: Vec<JournalEntry>,
}

#[derive(Serialize, Deserialize, Clone)]
struct JournalEntry {
    target: PathBuf,
    new: PathBuf,
    old: PathBuf,
}

/// What a rekey did.
pub struct Report {
    pub files: usize,
    pub values: usize,
    /// Side files that could not be removed (each with the reason): a
    /// backup still opens with the old password, so the caller says so.
    pub leftovers: Vec<String>,
}

/// Where the journal of a rekey of `paths` lives.
pub fn journal_dir(paths: &[PathBuf]) -> PathBuf {
    match paths.first() {
        Some(p) if p.is_dir() => p.clone(),
        Some(p) => match p.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => PathBuf::from("."),
        },
        None => PathBuf::from("."),
    }
}

/// Hold the directory's lock while `f` runs: two rekeys of one directory
/// never interleave.
pub fn locked<T>(dir: &Path, f: impl FnOnce() -> Result<T, String>) -> Result<T, String> {
    use std::os::fd::AsRawFd;
    let d = File::open(dir).map_err(|e| format!("cannot open {}: {e}", dir.display()))?;
    // SAFETY: flock on a descriptor we own; no memory is involved. The lock
    // goes with the descriptor, when `d` is dropped.
    if unsafe { libc::flock(d.as_raw_fd(), libc::LOCK_EX) } != 0 {
        return Err(format!(
            "cannot lock {}: {}",
            dir.display(),
            std::io::Error::last_os_error()
        ));
    }
    let r = f();
    drop(d);
    r
}

/// Finish a rekey that was interrupted in `dir` (see the module's doc).
/// `Ok(None)` when there was none; else what was done, in words.
pub fn recover(dir: &Path) -> Result<Option<String>, String> {
    let jpath = dir.join(JOURNAL);
    // A journal being written when rigger was killed: its temporary file
    // (paths only, never data) is removed; the rekey had changed nothing.
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.filter_map(Result::ok) {
            let n = e.file_name().to_string_lossy().to_string();
            if n.starts_with(&format!(".{JOURNAL}.")) && n.ends_with(".tmp") {
                if let Some(w) = remove_if_there(&e.path()) {
                    stderrln!("[WARNING]: {w}");
                }
            }
        }
    }
    let text = match std::fs::read_to_string(&jpath) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("cannot read {}: {e}", jpath.display())),
    };
    let j: Journal = serde_json::from_str(&text).map_err(|e| {
        format!(
            "{}: not a rekey journal rigger can read ({e}); move it away by hand",
            jpath.display()
        )
    })?;
    let msg = match j.state.as_str() {
        "prepared" => {
            for e in &j.entries {
                if e.new.exists() {
                    std::fs::rename(&e.new, &e.target).map_err(|err| {
                        format!(
                            "completing the interrupted rekey: cannot rename {} over {}: {err} (journal {})",
                            e.new.display(),
                            e.target.display(),
                            jpath.display()
                        )
                    })?;
                }
            }
            sync_dirs(&j.entries);
            let left = j.entries.iter().filter_map(|e| remove_if_there(&e.old)).collect();
            with_leftovers(
                format!(
                    "an interrupted rekey of {} file(s) in {} was completed: they are under the new password",
                    j.entries.len(),
                    dir.display()
                ),
                left,
            )
        }
        "rolling-back" => with_leftovers(
            format!(
                "an interrupted rekey in {} was rolled back: every file is under the old password",
                dir.display()
            ),
            roll_back(&j.entries)?,
        ),
        _ => with_leftovers(
            format!(
                "an interrupted rekey in {} had changed no file; its temporary files were removed",
                dir.display()
            ),
            remove_side_files(&j.entries),
        ),
    };
    std::fs::remove_file(&jpath).map_err(|e| format!("cannot remove {}: {e}", jpath.display()))?;
    sync_dir(dir);
    Ok(Some(msg))
}

/// Rekey every vaulted file and inline value under `paths` from `old` to
/// `new`, all or nothing. `journal` is [`journal_dir`]'s answer (locked by
/// the caller).
pub fn rekey(paths: &[PathBuf], old: &Keyring, new: &Secret, journal: &Path) -> Result<Report, String> {
    let mut files = Vec::new();
    for p in paths {
        if p.is_dir() {
            walk(p, &mut files)?;
        } else {
            files.push((p.clone(), true));
        }
    }
    let mut rewrites = Vec::new();
    for (f, explicit) in files {
        if let Some(r) = rewrite(&f, old, new, explicit)? {
            rewrites.push(r);
        }
    }
    if rewrites.is_empty() {
        return Err(format!(
            "no vaulted file or `!vault` value found in {}",
            paths
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    Ok(Report {
        files: rewrites.len(),
        values: rewrites.iter().map(|r| r.values).sum(),
        leftovers: commit(&rewrites, journal)?,
    })
}

/// The files under `dir` (sorted; `.git` and symlinks left aside) that may
/// hold vaulted data: every file (a vaulted file has any name) — inline
/// values are looked for in YAML files only.
fn walk(dir: &Path, out: &mut Vec<(PathBuf, bool)>) -> Result<(), String> {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .map_err(|e| format!("cannot read {}: {e}", dir.display()))?
        .filter_map(Result::ok)
        .collect();
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let name = e.file_name().to_string_lossy().to_string();
        if name == ".git" || name == JOURNAL || name.contains(".rigger-rekey-") {
            continue;
        }
        let ft = e.file_type().map_err(|err| format!("{}: {err}", e.path().display()))?;
        if ft.is_dir() {
            walk(&e.path(), out)?;
        } else if ft.is_file() {
            out.push((e.path(), false));
        }
    }
    Ok(())
}

fn is_yaml_name(p: &Path) -> bool {
    match p.extension().and_then(|e| e.to_str()) {
        None => true,
        Some(e) => matches!(e, "yml" | "yaml"),
    }
}

/// The new version of `f`, or `None` when it holds nothing vaulted (an
/// error for a file named on the command line, as ansible-vault's).
fn rewrite(f: &Path, old: &Keyring, new: &Secret, explicit: bool) -> Result<Option<Rewrite>, String> {
    let what = f.display().to_string();
    let data = Zeroizing::new(std::fs::read(f).map_err(|e| format!("cannot read {what}: {e}"))?);
    if is_encrypted(&data) {
        let (plain, _) = old.decrypt(&data, &what).map_err(|e| e.to_string())?;
        let text = encrypt(&plain, new.password(), Some(&new.id), None);
        check(&text, &plain, new, &what)?;
        return Ok(Some(Rewrite {
            target: f.to_path_buf(),
            data: text.into_bytes(),
            values: 0,
        }));
    }
    let text = match std::str::from_utf8(&data) {
        Ok(t) if (explicit || is_yaml_name(f)) && t.contains("!vault") => t,
        _ if explicit => {
            return Err(format!(
                "{what} is not a vault encrypted file and has no `!vault` value"
            ))
        }
        _ => return Ok(None),
    };
    let blocks = inline::find(text, &what)?;
    if blocks.is_empty() {
        return if explicit {
            Err(format!(
                "{what} is not a vault encrypted file and has no `!vault` value"
            ))
        } else {
            Ok(None)
        };
    }
    let mut plains = Vec::new();
    for b in &blocks {
        let at = format!("the `!vault` value at {what}:{}", b.line);
        plains.push(old.decrypt(b.envelope.as_bytes(), &at).map_err(|e| e.to_string())?.0);
    }
    let mut fresh = plains
        .iter()
        .map(|p| encrypt(p, new.password(), Some(&new.id), None))
        .collect::<Vec<_>>()
        .into_iter();
    let out = inline::replace(text, &blocks, |_| fresh.next().unwrap_or_default());
    // Read back: the same values, each opened by the new password alone.
    let again = inline::find(&out, &what)?;
    if again.len() != blocks.len() {
        return Err(format!(
            "{what}: the rewritten file does not read back (a bug); nothing was changed"
        ));
    }
    for (b, p) in again.iter().zip(&plains) {
        check(&b.envelope, p, new, &what)?;
    }
    Ok(Some(Rewrite {
        target: f.to_path_buf(),
        data: out.into_bytes(),
        values: blocks.len(),
    }))
}

fn check(vaulttext: &str, plain: &[u8], new: &Secret, what: &str) -> Result<(), String> {
    let ring = Keyring::new(vec![Secret::new(&new.id, new.password().to_vec(), &new.source)]);
    match ring.decrypt(vaulttext.as_bytes(), what) {
        Ok((p, _)) if p.as_slice() == plain => Ok(()),
        _ => Err(format!(
            "{what}: the re-encrypted data does not read back (a bug); nothing was changed"
        )),
    }
}

fn side_file(target: &Path, tag: &str, kind: &str) -> PathBuf {
    let name = target
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default();
    target.with_file_name(format!(".{name}.rigger-rekey-{tag}.{kind}"))
}

fn write_journal(dir: &Path, j: &Journal) -> Result<(), String> {
    let text = serde_json::to_vec_pretty(j).map_err(|e| e.to_string())?;
    let path = dir.join(JOURNAL);
    crate::atomic_file::replace(&path, &text, 0o600).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    sync_dir(dir);
    Ok(())
}

/// Write, then rename, every new version (see the module's doc). The
/// answer lists the backups that could not be removed afterwards.
fn commit(rewrites: &[Rewrite], dir: &Path) -> Result<Vec<String>, String> {
    let tag = format!("{:012x}", rand::random::<u64>() & 0xffff_ffff_ffff);
    let entries: Vec<JournalEntry> = rewrites
        .iter()
        .map(|r| JournalEntry {
            target: r.target.clone(),
            new: side_file(&r.target, &tag, "new"),
            old: side_file(&r.target, &tag, "old"),
        })
        .collect();
    let mut journal = Journal {
        state: "preparing".into(),
        entries: entries.clone(),
    };
    write_journal(dir, &journal)?;
    let prepared = (|| {
        for (r, e) in rewrites.iter().zip(&entries) {
            write_new(&r.target, &e.new, &r.data)?;
            std::fs::hard_link(&r.target, &e.old)
                .map_err(|err| format!("cannot keep a backup of {}: {err}", r.target.display()))?;
        }
        sync_dirs(&entries);
        Ok::<(), String>(())
    })();
    if let Err(e) = prepared {
        let mut left = remove_side_files(&entries);
        left.extend(remove_if_there(&dir.join(JOURNAL)));
        return Err(with_leftovers(format!("{e}; no file was changed"), left));
    }
    journal.state = "prepared".into();
    write_journal(dir, &journal)?;
    for (i, e) in entries.iter().enumerate() {
        if let Err(err) = std::fs::rename(&e.new, &e.target) {
            let why = format!("cannot replace {}: {err}", e.target.display());
            journal.state = "rolling-back".into();
            write_journal(dir, &journal)?;
            let undone = roll_back(&entries[..=i]).and_then(|mut left| {
                left.extend(entries[i..].iter().filter_map(|en| remove_if_there(&en.new)));
                std::fs::remove_file(dir.join(JOURNAL)).map_err(|e| e.to_string())?;
                Ok(left)
            });
            return Err(match undone {
                Ok(left) => with_leftovers(format!("{why}; every file was put back under the old password"), left),
                Err(e2) => format!(
                    "{why}; putting the old versions back failed too ({e2}): run the same rekey again to finish it"
                ),
            });
        }
    }
    sync_dirs(&entries);
    let left = entries.iter().filter_map(|e| remove_if_there(&e.old)).collect();
    std::fs::remove_file(dir.join(JOURNAL)).map_err(|e| format!("cannot remove the journal: {e}"))?;
    sync_dir(dir);
    Ok(left)
}

/// A new version beside `target`, with its mode and owner (a rekey that
/// cannot keep the owner stops before any file is changed).
fn write_new(target: &Path, path: &Path, data: &[u8]) -> Result<(), String> {
    let meta = std::fs::metadata(target).map_err(|e| format!("cannot read {}: {e}", target.display()))?;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .map_err(|e| format!("cannot create {}: {e}", path.display()))?;
    f.write_all(data)
        .and_then(|_| f.set_permissions(std::fs::Permissions::from_mode(meta.mode() & 0o7777)))
        .and_then(|_| f.sync_all())
        .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    let made = f
        .metadata()
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    if (made.uid(), made.gid()) != (meta.uid(), meta.gid()) {
        std::os::unix::fs::chown(path, Some(meta.uid()), Some(meta.gid())).map_err(|e| {
            format!(
                "cannot give the new version of {} its owner {}:{}: {e}",
                target.display(),
                meta.uid(),
                meta.gid()
            )
        })?;
    }
    Ok(())
}

/// Put each entry's backup back over its target; the new versions that
/// could not be removed are listed.
fn roll_back(entries: &[JournalEntry]) -> Result<Vec<String>, String> {
    let mut left = Vec::new();
    for e in entries {
        if e.old.exists() {
            std::fs::rename(&e.old, &e.target)
                .map_err(|err| format!("cannot put {} back: {err}", e.target.display()))?;
        }
        left.extend(remove_if_there(&e.new));
    }
    sync_dirs(entries);
    Ok(left)
}

/// Remove every entry's new version and backup; those that could not be.
fn remove_side_files(entries: &[JournalEntry]) -> Vec<String> {
    entries
        .iter()
        .flat_map(|e| [remove_if_there(&e.new), remove_if_there(&e.old)])
        .flatten()
        .collect()
}

/// Remove `p`; a file already gone is fine, any other failure is the
/// answer (the file stays, and the caller says so).
fn remove_if_there(p: &Path) -> Option<String> {
    match std::fs::remove_file(p) {
        Ok(()) => None,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => Some(format!("{} was left behind ({e}): remove it by hand", p.display())),
    }
}

fn with_leftovers(msg: String, left: Vec<String>) -> String {
    if left.is_empty() {
        msg
    } else {
        format!("{msg}; {}", left.join("; "))
    }
}

fn sync_dir(dir: &Path) {
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
}

fn sync_dirs(entries: &[JournalEntry]) {
    let mut dirs: Vec<PathBuf> = entries
        .iter()
        .filter_map(|e| e.target.parent().map(Path::to_path_buf))
        .collect();
    dirs.sort();
    dirs.dedup();
    for d in dirs {
        sync_dir(if d.as_os_str().is_empty() { Path::new(".") } else { &d });
    }
}
