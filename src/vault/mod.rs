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
