//! `rigger vault`: ansible-vault's actions (encrypt, decrypt, view, edit,
//! create, rekey, encrypt_string) on the same files and strings.
//!
//! Files are replaced atomically (a temporary file beside them, renamed
//! over), keeping their mode; a new file is 0600. `edit` and `create` put
//! the plaintext only in a 0600 temporary file, which is overwritten and
//! removed whatever happens.

use std::io::{IsTerminal, Read, Write};
use std::path::{Path, PathBuf};

use zeroize::Zeroizing;

use super::format::{encrypt, is_encrypted, DEFAULT_ID};
use super::secrets::{self, Keyring, Secret, Sources};
use crate::cli::{VaultAction, VaultArgs, VaultCommon};
use crate::error::AppError;

fn other(msg: impl std::fmt::Display) -> AppError {
    AppError::Other(msg.to_string())
}

/// Run a `rigger vault` action; the result is the exit code.
pub fn run(a: VaultArgs) -> Result<i32, AppError> {
    match a.action {
        VaultAction::Encrypt { files, output, common } => {
            let (keys, secret) = for_encrypt(&common)?;
            one_output(&files, &output)?;
            for f in inputs(&files) {
                let data = read_input(&f)?;
                if is_encrypted(&data) {
                    return Err(other(format!("{}: input is already encrypted", shown(&f))));
                }
                let text = encrypt(
                    &data,
                    keys.secrets[secret].password(),
                    Some(&keys.secrets[secret].id),
                    None,
                );
                write_output(&f, output.as_deref(), text.as_bytes())?;
            }
            done("Encryption successful");
            Ok(0)
        }
        VaultAction::Decrypt { files, output, common } => {
            let keys = for_decrypt(&common)?;
            one_output(&files, &output)?;
            for f in inputs(&files) {
                let plain = decrypt_file(&keys, &f)?;
                write_output(&f, output.as_deref(), &plain)?;
            }
            done("Decryption successful");
            Ok(0)
        }
        VaultAction::View { files, common } => {
            let keys = for_decrypt(&common)?;
            for f in files {
                let plain = decrypt_file(&keys, &f)?;
                let mut out = std::io::stdout().lock();
                out.write_all(&plain).and_then(|_| out.flush()).map_err(other)?;
            }
            Ok(0)
        }
        VaultAction::Edit { files, common } => {
            let keys = for_decrypt(&common)?;
            for f in files {
                let data = std::fs::read(&f).map_err(|e| other(format!("cannot read {}: {e}", f.display())))?;
                let what = f.display().to_string();
                let env = super::Envelope::parse(&data).map_err(|e| other(format!("{what}: {e}")))?;
                let (plain, id) = keys.decrypt(&data, &what).map_err(other)?;
                // Re-encrypt with the secret that decrypted it, under the file's own vault id.
                let secret = keys
                    .secrets
                    .iter()
                    .find(|s| s.id == id)
                    .ok_or_else(|| other("vault id vanished"))?;
                let label = env.vault_id.clone().unwrap_or_else(|| DEFAULT_ID.to_string());
                edit_file(&f, Some(plain), secret, &label)?;
            }
            Ok(0)
        }
        VaultAction::Create {
            file,
            skip_tty_check,
            common,
        } => {
            let (keys, secret) = for_encrypt(&common)?;
            if file.exists() {
                return Err(other(format!("{} exists, please use 'edit' instead", file.display())));
            }
            if !skip_tty_check && !std::io::stdout().is_terminal() {
                return Err(AppError::Usage(
                    "not a tty, editor cannot be opened (--skip-tty-check opens it anyway)".into(),
                ));
            }
            let s = &keys.secrets[secret];
            edit_file(&file, None, s, &s.id.clone())?;
            Ok(0)
        }
        VaultAction::Rekey {
            files,
            new_vault_password_file,
            new_vault_id,
            common,
        } => {
            let dir = super::rekey::journal_dir(&files);
            if let Some(msg) = super::rekey::locked(&dir, || super::rekey::recover(&dir)).map_err(other)? {
                stderrln!("[WARNING]: {msg}; nothing else was done: run the rekey again if it was not this one");
                return Ok(0);
            }
            let keys = for_decrypt(&common)?;
            let new_sources = Sources {
                vault_ids: new_vault_id.into_iter().collect(),
                password_files: new_vault_password_file.into_iter().collect(),
                ask: false,
            };
            if new_sources.vault_ids.is_empty() && new_sources.password_files.is_empty() {
                return Err(AppError::Usage(
                    "a new vault password is required: --new-vault-password-file FILE or --new-vault-id LABEL@SOURCE"
                        .into(),
                ));
            }
            let new = new_keyring(&new_sources)?;
            let secret = new.for_encrypt(common.encrypt_vault_id.as_deref()).map_err(other)?;
            let report =
                super::rekey::locked(&dir, || super::rekey::rekey(&files, &keys, secret, &dir)).map_err(other)?;
            if report.values > 0 {
                stderrln!(
                    "{} file(s) rekeyed, {} inline `!vault` value(s) among them",
                    report.files,
                    report.values
                );
            }
            for left in &report.leftovers {
                // A backup still opens with the old password.
                stderrln!("[WARNING]: {left}");
            }
            stderrln!("Rekey successful");
            Ok(0)
        }
        VaultAction::Diff { files, common } => {
            let keys = for_decrypt(&common)?;
            let read = |p: &Path| super::textconv::reading(p, &keys).map_err(other);
            match files.len() {
                1 => {
                    let r = read(&files[0])?;
                    let mut out = std::io::stdout().lock();
                    out.write_all(r.as_bytes()).and_then(|_| out.flush()).map_err(other)?;
                    Ok(0)
                }
                2 => {
                    let (a, b) = (read(&files[0])?, read(&files[1])?);
                    let d = super::textconv::diff(&shown(&files[0]), &a, &shown(&files[1]), &b);
                    stdout!("{d}");
                    Ok(if d.is_empty() { 0 } else { 1 })
                }
                7 => {
                    let path = files[0].display().to_string();
                    let (a, b) = (read(&files[1])?, read(&files[4])?);
                    let d = super::textconv::diff(&format!("a/{path}"), &a, &format!("b/{path}"), &b);
                    if !d.is_empty() {
                        stdout!("diff --rigger-vault a/{path} b/{path}\n{d}");
                    }
                    Ok(0)
                }
                n => Err(AppError::Usage(format!(
                    "rigger vault diff takes FILE, OLD NEW, or git's seven external-diff arguments; got {n}"
                ))),
            }
        }
        VaultAction::EncryptString {
            strings,
            names,
            stdin_name,
            prompt,
            output,
            common,
        } => {
            let (keys, secret) = for_encrypt(&common)?;
            let s = &keys.secrets[secret];
            let read_stdin =
                strings.iter().any(|x| x == "-") || stdin_name.is_some() || (strings.is_empty() && !prompt);
            if prompt && read_stdin {
                return Err(AppError::Usage(
                    "--prompt cannot be used while also reading from standard input".into(),
                ));
            }
            let mut items: Vec<(Zeroizing<Vec<u8>>, Option<String>)> = Vec::new();
            if prompt {
                if !std::io::stdin().is_terminal() {
                    return Err(AppError::Usage("--prompt needs a terminal".into()));
                }
                let name = crate::prompt::ask("Variable name (enter for no name): ", false).map_err(other)?;
                let text = Zeroizing::new(crate::prompt::ask("String to encrypt (hidden): ", true).map_err(other)?);
                if text.is_empty() {
                    return Err(AppError::Usage(
                        "the plaintext provided from the prompt was empty, not encrypting".into(),
                    ));
                }
                items.push((
                    Zeroizing::new(text.as_bytes().to_vec()),
                    Some(name).filter(|n| !n.is_empty()),
                ));
            }
            if read_stdin {
                let mut buf = Zeroizing::new(Vec::new());
                std::io::stdin().read_to_end(&mut buf).map_err(other)?;
                if buf.is_empty() {
                    return Err(AppError::Usage("stdin was empty, not encrypting".into()));
                }
                // As ansible-vault: a last newline typed to end the input is not part of the string.
                if buf.ends_with(b"\n") {
                    buf.pop();
                }
                items.push((buf, stdin_name.clone()));
            }
            let mut names = names.into_iter();
            for st in strings.iter().filter(|x| *x != "-") {
                items.push((Zeroizing::new(st.as_bytes().to_vec()), names.next()));
            }
            let many = items.len() > 1;
            let mut out = Vec::new();
            for (i, (plain, name)) in items.iter().enumerate() {
                if many {
                    match name {
                        Some(n) => stderrln!("# The encrypted version of variable (\"{n}\", the string #{}).", i + 1),
                        None => stderrln!("# The encrypted version of the string #{}.", i + 1),
                    }
                }
                out.push(yaml_block(
                    &encrypt(plain, s.password(), Some(&s.id), None),
                    name.as_deref(),
                ));
            }
            let text = out.join("\n") + "\n";
            match output {
                Some(p) if p.as_os_str() != "-" => write_atomic(&p, text.as_bytes())?,
                _ => stdout!("{text}"),
            }
            done("Encryption successful");
            Ok(0)
        }
    }
}

/// A vaulttext as a YAML `!vault` value, as ansible-vault encrypt_string
/// prints it: `[name: ]!vault |` and the envelope indented 10 spaces.
pub fn yaml_block(vaulttext: &str, name: Option<&str>) -> String {
    let mut lines = vec![match name {
        Some(n) => format!("{n}: !vault |"),
        None => "!vault |".to_string(),
    }];
    lines.extend(vaulttext.lines().map(|l| format!("{:10}{l}", "")));
    lines.join("\n")
}

fn done(msg: &str) {
    if std::io::stdout().is_terminal() {
        stderrln!("{msg}");
    }
}

fn new_keyring(sources: &Sources) -> Result<Keyring, AppError> {
    // Only the sources given: the environment's and ansible.cfg's defaults
    // belong to the old password.
    let mut secrets_ = Vec::new();
    for spec in &sources.vault_ids {
        let (id, src) = spec.split_once('@').unwrap_or((DEFAULT_ID, spec));
        secrets_.push(secrets::from_file(id, Path::new(src)).map_err(other)?);
    }
    for f in &sources.password_files {
        secrets_.push(secrets::from_file(DEFAULT_ID, f).map_err(other)?);
    }
    Ok(Keyring::new(secrets_))
}

fn for_decrypt(c: &VaultCommon) -> Result<Keyring, AppError> {
    let keys = secrets::load(&c.passwords.sources()).map_err(other)?;
    if keys.is_empty() {
        return Err(AppError::Usage(
            "a vault password is required: --vault-password-file FILE, --vault-id LABEL@SOURCE or --ask-vault-pass"
                .into(),
        ));
    }
    Ok(keys)
}

/// The keyring and the index of the secret to encrypt with: the one of
/// `--encrypt-vault-id`, else the only one (several need the option).
fn for_encrypt(c: &VaultCommon) -> Result<(Keyring, usize), AppError> {
    let keys = for_decrypt(c)?;
    if keys.secrets.len() > 1 && c.encrypt_vault_id.is_none() {
        let ids: Vec<&str> = keys.secrets.iter().map(|s| s.id.as_str()).collect();
        return Err(AppError::Usage(format!(
            "the vault ids {} are available to encrypt: choose one with --encrypt-vault-id",
            ids.join(",")
        )));
    }
    let chosen = keys
        .for_encrypt(c.encrypt_vault_id.as_deref())
        .map_err(other)?
        .id
        .clone();
    let i = keys.secrets.iter().position(|s| s.id == chosen).unwrap_or(0);
    Ok((keys, i))
}

fn one_output(files: &[PathBuf], output: &Option<PathBuf>) -> Result<(), AppError> {
    if output.is_some() && files.len() > 1 {
        return Err(AppError::Usage(
            "at most one input file may be used with --output".into(),
        ));
    }
    Ok(())
}

/// The inputs: the files, or `-` (standard input) when none is given.
fn inputs(files: &[PathBuf]) -> Vec<PathBuf> {
    if files.is_empty() {
        vec![PathBuf::from("-")]
    } else {
        files.to_vec()
    }
}

fn shown(p: &Path) -> String {
    if p.as_os_str() == "-" {
        "standard input".into()
    } else {
        p.display().to_string()
    }
}

fn read_input(p: &Path) -> Result<Zeroizing<Vec<u8>>, AppError> {
    let mut buf = Zeroizing::new(Vec::new());
    if p.as_os_str() == "-" {
        std::io::stdin().read_to_end(&mut buf).map_err(other)?;
    } else {
        std::fs::File::open(p)
            .and_then(|mut f| f.read_to_end(&mut buf))
            .map_err(|e| other(format!("cannot read {}: {e}", p.display())))?;
    }
    Ok(buf)
}

fn decrypt_file(keys: &Keyring, f: &Path) -> Result<Zeroizing<Vec<u8>>, AppError> {
    let data = read_input(f)?;
    if !is_encrypted(&data) {
        return Err(other(format!("{} is not a vault encrypted file", shown(f))));
    }
    keys.decrypt(&data, &shown(f)).map(|(p, _)| p).map_err(other)
}

/// Write the result of an action on `input`: to `output` when given (`-`
/// is standard output), else over the input (standard input's result goes
/// to standard output).
fn write_output(input: &Path, output: Option<&Path>, data: &[u8]) -> Result<(), AppError> {
    let target = output.unwrap_or(input);
    if target.as_os_str() == "-" {
        let mut out = std::io::stdout().lock();
        return out.write_all(data).and_then(|_| out.flush()).map_err(other);
    }
    write_atomic(target, data)
}

/// Replace `path` with `data` atomically, keeping its mode; a new file is
/// 0600, as ansible-vault makes it.
fn write_atomic(path: &Path, data: &[u8]) -> Result<(), AppError> {
    crate::atomic_file::replace(path, data, 0o600).map_err(|e| other(format!("cannot write {}: {e}", path.display())))
}

/// A new file in `dir` named `prefix` + random, created 0600 (never an
/// existing file or a symlink's target).
fn create_private(dir: &Path, prefix: &str, suffix: &str) -> Result<(PathBuf, std::fs::File), AppError> {
    crate::atomic_file::create_new_in(dir, prefix, suffix, 0o600)
        .map_err(|e| other(format!("cannot create a temporary file in {}: {e}", dir.display())))
}

/// The plaintext's temporary file: overwritten with zeros and removed when
/// dropped, whatever happened.
struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        if let Ok(m) = std::fs::metadata(&self.0) {
            if let Ok(mut f) = std::fs::OpenOptions::new().write(true).open(&self.0) {
                let _ = f.write_all(&vec![0u8; m.len() as usize]).and_then(|_| f.sync_all());
            }
        }
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Open the plaintext (`existing`, or nothing for `create`) in the user's
/// editor (`$EDITOR`, else `vi`) in a 0600 temporary file, then encrypt
/// what was saved into `file` with `secret` under `label` (only when it
/// changed, or for a new file).
fn edit_file(file: &Path, existing: Option<Zeroizing<Vec<u8>>>, secret: &Secret, label: &str) -> Result<(), AppError> {
    let tmpdir = std::env::var_os("TMPDIR")
        .map(PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    let ext = file
        .extension()
        .map(|e| format!(".{}", e.to_string_lossy()))
        .unwrap_or_default();
    // The file's extension is kept: an editor picks its syntax from it.
    let (path, mut f) = create_private(&tmpdir, "rigger-vault-", &ext)?;
    let guard = Scratch(path.clone());
    if let Some(data) = &existing {
        f.write_all(data).and_then(|_| f.sync_all()).map_err(other)?;
    }
    drop(f);
    let editor = std::env::var("EDITOR")
        .ok()
        .filter(|e| !e.trim().is_empty())
        .unwrap_or_else(|| "vi".into());
    let mut argv = shlex::split(&editor).ok_or_else(|| AppError::Usage(format!("cannot parse EDITOR `{editor}`")))?;
    if argv.is_empty() {
        argv.push("vi".into());
    }
    let status = std::process::Command::new(&argv[0])
        .args(&argv[1..])
        .arg(&path)
        .status()
        .map_err(|e| other(format!("unable to execute the editor `{editor}`: {e}")))?;
    if !status.success() {
        return Err(other(format!(
            "the editor `{editor}` exited with {status}; {} left unchanged",
            file.display()
        )));
    }
    let edited = read_input(&path)?;
    if existing.as_ref().is_none_or(|e| e[..] != edited[..]) {
        let text = encrypt(&edited, secret.password(), Some(label), None);
        write_atomic(file, text.as_bytes())?;
    }
    drop(guard);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn yaml_block_is_ansible_vaults() {
        let b = yaml_block("$ANSIBLE_VAULT;1.1;AES256\n6162\n", Some("pw"));
        assert_eq!(b, "pw: !vault |\n          $ANSIBLE_VAULT;1.1;AES256\n          6162");
        assert!(yaml_block("$ANSIBLE_VAULT;1.1;AES256\n", None).starts_with("!vault |\n"));
    }

    #[test]
    fn atomic_write_keeps_the_mode_and_a_new_file_is_private() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("f");
        write_atomic(&p, b"one").unwrap();
        assert_eq!(std::fs::metadata(&p).unwrap().permissions().mode() & 0o777, 0o600);
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o640)).unwrap();
        write_atomic(&p, b"two").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"two");
        assert_eq!(std::fs::metadata(&p).unwrap().permissions().mode() & 0o777, 0o640);
        assert_eq!(
            std::fs::read_dir(d.path()).unwrap().count(),
            1,
            "no temporary file left"
        );
    }
}
