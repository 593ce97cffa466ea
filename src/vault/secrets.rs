//! Vault passwords: where they come from (`--vault-password-file`,
//! `--vault-id label@source`, `--ask-vault-pass`, `ANSIBLE_VAULT_PASSWORD_FILE`,
//! `ANSIBLE_VAULT_IDENTITY_LIST`, ansible.cfg's `vault_password_file` and
//! `vault_identity_list`) and the keyring that decrypts with them, as
//! ansible-core's `VaultLib` does.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use zeroize::Zeroizing;

use super::format::{Envelope, FormatError, DEFAULT_ID};

/// One vault password and the vault id it is for.
pub struct Secret {
    pub id: String,
    password: Zeroizing<Vec<u8>>,
    /// Where it came from (a file, a script, the prompt), for messages.
    pub source: String,
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Secret({}@{})", self.id, self.source)
    }
}

impl Secret {
    pub fn new(id: &str, password: Vec<u8>, source: &str) -> Secret {
        Secret {
            id: id.to_string(),
            password: Zeroizing::new(password),
            source: source.to_string(),
        }
    }

    pub fn password(&self) -> &[u8] {
        &self.password
    }
}

/// Why a vaulted text could not be decrypted: which data and which vault
/// ids were tried.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VaultError {
    #[error("{what} is encrypted with ansible-vault and no vault password was given")]
    NoSecrets { what: String },
    #[error("{what}: {error}")]
    Format { what: String, error: FormatError },
    #[error("decryption of {what} failed: no vault password could decrypt it (tried vault id{} {})",
        if .tried.len() == 1 { "" } else { "s" }, .tried.join(", "))]
    Failed { what: String, tried: Vec<String> },
}

impl VaultError {
    pub fn hint(&self) -> &'static str {
        match self {
            VaultError::NoSecrets { .. } => {
                "give the password with --vault-password-file FILE, --vault-id LABEL@FILE or --ask-vault-pass"
            }
            VaultError::Failed { .. } => "check the vault password (or --vault-id) given for this data",
            VaultError::Format { .. } => "the data is not a valid ansible-vault envelope",
        }
    }
}

/// The vault passwords of a run, in the order given (the first is the one
/// `encrypt` uses unless `--encrypt-vault-id` names another).
#[derive(Debug, Default)]
pub struct Keyring {
    pub secrets: Vec<Secret>,
}

impl Keyring {
    pub fn new(secrets: Vec<Secret>) -> Keyring {
        Keyring { secrets }
    }

    pub fn is_empty(&self) -> bool {
        self.secrets.is_empty()
    }

    /// Decrypt `vaulttext`; `what` names it in errors (a file, or a file's
    /// line and column). As Ansible: the secrets of the envelope's vault id
    /// first, then every other one (vault ids are hints, not checked).
    /// Returns the plaintext and the vault id whose secret decrypted it.
    pub fn decrypt(&self, vaulttext: &[u8], what: &str) -> Result<(Zeroizing<Vec<u8>>, String), VaultError> {
        if self.secrets.is_empty() {
            return Err(VaultError::NoSecrets { what: what.to_string() });
        }
        let env = Envelope::parse(vaulttext).map_err(|error| VaultError::Format {
            what: what.to_string(),
            error,
        })?;
        let id = env.vault_id.as_deref().unwrap_or(DEFAULT_ID);
        let ordered = self
            .secrets
            .iter()
            .filter(|s| s.id == id)
            .chain(self.secrets.iter().filter(|s| s.id != id));
        let mut tried = Vec::new();
        for s in ordered {
            match env.decrypt(s.password()) {
                Ok(p) => return Ok((p, s.id.clone())),
                Err(FormatError::Mac | FormatError::Padding) => tried.push(format!("`{}` ({})", s.id, s.source)),
                Err(error) => {
                    return Err(VaultError::Format {
                        what: what.to_string(),
                        error,
                    })
                }
            }
        }
        Err(VaultError::Failed {
            what: what.to_string(),
            tried,
        })
    }

    /// The secret to encrypt with: the one of `encrypt_id` when given (an
    /// error when there is none), else the first.
    pub fn for_encrypt(&self, encrypt_id: Option<&str>) -> Result<&Secret, String> {
        match encrypt_id {
            Some(id) => self.secrets.iter().find(|s| s.id == id).ok_or_else(|| {
                let known: Vec<&str> = self.secrets.iter().map(|s| s.id.as_str()).collect();
                format!("did not find a match for --encrypt-vault-id={id} in the known vault ids {known:?}")
            }),
            None => self
                .secrets
                .first()
                .ok_or_else(|| "a vault password must be specified to encrypt data".into()),
        }
    }
}

static KEYRING: OnceLock<Keyring> = OnceLock::new();

/// The run's keyring, set once by the command line ([`install`]); empty
/// until then.
pub fn keyring() -> &'static Keyring {
    static EMPTY: Keyring = Keyring { secrets: Vec::new() };
    KEYRING.get().unwrap_or(&EMPTY)
}

/// Make `k` the run's keyring (the first call wins, as a run has one).
pub fn install(k: Keyring) {
    // A run with vault passwords tracks what its vault values taint.
    if !k.secrets.is_empty() {
        crate::output::redact::track();
    }
    let _ = KEYRING.set(k);
}

/// Decrypt `data` with the run's keyring when it is vaulted; otherwise
/// return it as it is.
pub fn decrypt_if_vaulted(data: Vec<u8>, what: &str) -> Result<Zeroizing<Vec<u8>>, VaultError> {
    if super::format::is_encrypted(&data) {
        return keyring().decrypt(&data, what).map(|(p, _)| p);
    }
    Ok(Zeroizing::new(data))
}

/// The password sources given on the command line.
#[derive(Debug, Clone, Default)]
pub struct Sources {
    /// `--vault-id` values (`label@source` or `source`), in order.
    pub vault_ids: Vec<String>,
    /// `--vault-password-file` values.
    pub password_files: Vec<PathBuf>,
    pub ask: bool,
}

/// Build the keyring from the command line's sources, then the
/// environment's and ansible.cfg's defaults, as Ansible's
/// `CLI.setup_vault_secrets` does: `ANSIBLE_VAULT_IDENTITY_LIST` /
/// `vault_identity_list` come first, then `--vault-id`, then the password
/// files (`ANSIBLE_VAULT_PASSWORD_FILE` / `vault_password_file` when none is
/// given), then `--ask-vault-pass`. A source `prompt` asks on the terminal.
pub fn load(sources: &Sources) -> Result<Keyring, String> {
    let mut ids: Vec<String> = Vec::new();
    let cfg_list = std::env::var("ANSIBLE_VAULT_IDENTITY_LIST")
        .ok()
        .or_else(|| crate::ansible_cfg::value("defaults", "vault_identity_list"));
    if let Some(list) = cfg_list {
        ids.extend(
            list.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(String::from),
        );
    }
    ids.extend(sources.vault_ids.iter().cloned());
    let mut files: Vec<String> = sources.password_files.iter().map(|p| p.display().to_string()).collect();
    if files.is_empty() {
        // The `vault_password_file` setting (RIGGER_/ANSIBLE_VAULT_PASSWORD_FILE,
        // rigger.toml, ansible.cfg).
        if let Some(f) = &crate::settings::get().vault_password_file.value {
            files.push(f.display().to_string());
        }
    }
    let default_id = std::env::var("ANSIBLE_VAULT_IDENTITY")
        .ok()
        .or_else(|| crate::ansible_cfg::value("defaults", "vault_identity"))
        .unwrap_or_else(|| DEFAULT_ID.to_string());
    let mut secrets = Vec::new();
    let mut prompted = false;
    for spec in ids {
        let (id, source) = match spec.split_once('@') {
            Some((id, src)) => (id.to_string(), src.to_string()),
            None => (default_id.clone(), spec.clone()),
        };
        if source == "prompt" || source == "prompt_ask_vault_pass" {
            secrets.push(ask(&id)?);
            prompted = true;
        } else {
            secrets.push(from_file(&id, Path::new(&expand_home(&source)))?);
        }
    }
    for f in files {
        secrets.push(from_file(&default_id, Path::new(&f))?);
    }
    if sources.ask && !prompted {
        secrets.push(ask(&default_id)?);
    }
    Ok(Keyring::new(secrets))
}

fn expand_home(p: &str) -> String {
    match (p.strip_prefix("~/"), std::env::var("HOME")) {
        (Some(rest), Ok(home)) => format!("{home}/{rest}"),
        _ => p.to_string(),
    }
}

fn ask(id: &str) -> Result<Secret, String> {
    use std::io::IsTerminal;
    if !std::io::stdin().is_terminal() {
        return Err(
            "--ask-vault-pass needs a terminal to ask for the vault password; use --vault-password-file".into(),
        );
    }
    let q = if id == DEFAULT_ID {
        "Vault password: ".to_string()
    } else {
        format!("Vault password ({id}): ")
    };
    let p = crate::prompt::ask(&q, true).map_err(|e| format!("cannot read the vault password: {e}"))?;
    if p.is_empty() {
        return Err("an empty vault password was given".into());
    }
    Ok(Secret::new(id, p.into_bytes(), "prompt"))
}

/// A secret from a file, or from the standard output of the file when it is
/// executable: a script named `*-client` (or `*-client.EXT`) is run with
/// `--vault-id ID`, as Ansible runs client scripts; its exit status 2 means
/// it knows no such id. Surrounding line endings are stripped.
pub fn from_file(id: &str, path: &Path) -> Result<Secret, String> {
    use std::os::unix::fs::PermissionsExt;
    // As Ansible: the path is made absolute, so a script named without a
    // directory runs from where it is, not from $PATH.
    let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    let path = absolute.as_path();
    let shown = path.display().to_string();
    let meta = std::fs::metadata(path).map_err(|_| format!("the vault password file {shown} was not found"))?;
    if meta.is_dir() {
        return Err(format!("the vault password file {shown} is a directory"));
    }
    let raw = if meta.permissions().mode() & 0o111 != 0 {
        let stem = path
            .file_stem()
            .map(|s| s.to_string_lossy().to_string())
            .unwrap_or_default();
        let client = stem.ends_with("-client");
        let mut cmd = std::process::Command::new(path);
        if client {
            cmd.args(["--vault-id", id]);
        }
        // stderr stays the terminal's, so a script can prompt there.
        cmd.stdin(std::process::Stdio::inherit());
        let out = cmd.output().map_err(|e| {
            format!("problem running vault password script {shown} ({e}); if this is not a script, remove its executable bit")
        })?;
        if client && out.status.code() == Some(2) {
            return Err(format!(
                "vault password client script {shown} did not find a secret for vault-id={id}: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        if !out.status.success() {
            return Err(format!(
                "vault password script {shown} returned non-zero ({}): {}",
                out.status.code().unwrap_or(-1),
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        Zeroizing::new(out.stdout)
    } else {
        let bytes = Zeroizing::new(
            std::fs::read(path).map_err(|e| format!("could not read vault password file {shown}: {e}"))?,
        );
        // Ansible strips all surrounding whitespace of a password file.
        Zeroizing::new(bytes.trim_ascii().to_vec())
    };
    let trimmed: &[u8] = {
        let mut s: &[u8] = &raw;
        while let [rest @ .., b'\r' | b'\n'] = s {
            s = rest;
        }
        while let [b'\r' | b'\n', rest @ ..] = s {
            s = rest;
        }
        s
    };
    if trimmed.is_empty() {
        return Err(format!(
            "invalid vault password was provided from {shown} (it is empty)"
        ));
    }
    Ok(Secret::new(id, trimmed.to_vec(), &shown))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vault::format::encrypt;

    #[test]
    fn tries_the_envelope_id_first_then_the_others_and_names_what_failed() {
        let k = Keyring::new(vec![
            Secret::new("dev", b"devpw".to_vec(), "a"),
            Secret::new("prod", b"prodpw".to_vec(), "b"),
        ]);
        let t = encrypt(b"p", b"prodpw", Some("prod"), None);
        assert_eq!(k.decrypt(t.as_bytes(), "x.yml").unwrap().1, "prod");
        // The id in the envelope is only a hint: a mislabelled one still decrypts.
        let t = encrypt(b"p", b"devpw", Some("prod"), None);
        assert_eq!(k.decrypt(t.as_bytes(), "x.yml").unwrap().1, "dev");
        let t = encrypt(b"p", b"other", None, None);
        let e = k.decrypt(t.as_bytes(), "group_vars/all.yml").unwrap_err().to_string();
        assert!(
            e.contains("group_vars/all.yml") && e.contains("`dev`") && e.contains("`prod`"),
            "{e}"
        );
        let e = Keyring::default().decrypt(t.as_bytes(), "f").unwrap_err();
        assert!(matches!(e, VaultError::NoSecrets { .. }));
    }

    #[test]
    fn password_files_and_scripts() {
        use std::os::unix::fs::PermissionsExt;
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("pw");
        std::fs::write(&f, "  hunter2\n\n").unwrap();
        assert_eq!(from_file("default", &f).unwrap().password(), b"hunter2");
        let s = d.path().join("pw.sh");
        std::fs::write(&s, "#!/bin/sh\necho fromscript\n").unwrap();
        std::fs::set_permissions(&s, std::fs::Permissions::from_mode(0o755)).unwrap();
        assert_eq!(from_file("default", &s).unwrap().password(), b"fromscript");
        let c = d.path().join("keys-client.sh");
        std::fs::write(
            &c,
            "#!/bin/sh\n[ \"$1 $2\" = '--vault-id prod' ] && echo prodpw && exit 0\necho unknown >&2; exit 2\n",
        )
        .unwrap();
        std::fs::set_permissions(&c, std::fs::Permissions::from_mode(0o755)).unwrap();
        assert_eq!(from_file("prod", &c).unwrap().password(), b"prodpw");
        let e = from_file("dev", &c).unwrap_err();
        assert!(e.contains("did not find a secret for vault-id=dev"), "{e}");
        std::fs::write(d.path().join("empty"), "\n").unwrap();
        assert!(from_file("default", &d.path().join("empty"))
            .unwrap_err()
            .contains("empty"));
        assert!(from_file("default", &d.path().join("nope"))
            .unwrap_err()
            .contains("not found"));
    }

    #[test]
    fn vault_ids_from_the_command_line() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("a"), "apw\n").unwrap();
        std::fs::write(d.path().join("b"), "bpw\n").unwrap();
        let sources = Sources {
            vault_ids: vec![format!("dev@{}", d.path().join("a").display())],
            password_files: vec![d.path().join("b")],
            ask: false,
        };
        let k = load(&sources).unwrap();
        let ids: Vec<&str> = k.secrets.iter().map(|s| s.id.as_str()).collect();
        assert_eq!(ids, ["dev", "default"]);
        assert_eq!(k.for_encrypt(None).unwrap().id, "dev");
        assert_eq!(k.for_encrypt(Some("default")).unwrap().password(), b"bpw");
        assert!(k.for_encrypt(Some("x")).is_err());
    }
}
