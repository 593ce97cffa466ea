//! ansible-vault compatibility: the vault format ([`format`]), the run's
//! vault passwords ([`secrets`]) and `rigger vault` ([`command`]).
//!
//! A run's passwords are one process-wide keyring, as ansible-core's
//! `VaultSecretsContext`: set once from the command line before anything
//! is loaded, read by every loader of vaulted data (YAML files and inline
//! `!vault` values, `copy`/`template` sources, the `unvault` lookup).

pub mod command;
pub mod format;
pub mod inline;
pub mod rekey;
pub mod secrets;
pub mod textconv;

pub use format::{encrypt, is_encrypted, Envelope, FormatError};
pub use secrets::{decrypt_if_vaulted, install, keyring, load, Keyring, Secret, Sources, VaultError};

/// The plaintexts of the inline `!vault` values this run decrypted
/// (Ansible's `EncryptedString`s): what the `vault_encrypted` test knows
/// a vaulted value by. rigger keeps no tags on values, so a value is
/// vaulted when it equals one of these texts.
static INLINE_PLAINTEXTS: std::sync::RwLock<Vec<String>> = std::sync::RwLock::new(Vec::new());

/// Remember the plaintext of a decrypted inline `!vault` value.
pub fn remember_inline_plaintext(plain: &str) {
    let mut all = INLINE_PLAINTEXTS.write().unwrap_or_else(|p| p.into_inner());
    if !all.iter().any(|p| p == plain) {
        all.push(plain.to_string());
    }
}

/// Whether `s` is the plaintext of an inline `!vault` value of this run.
pub fn is_inline_plaintext(s: &str) -> bool {
    INLINE_PLAINTEXTS
        .read()
        .unwrap_or_else(|p| p.into_inner())
        .iter()
        .any(|p| p == s)
}
