//! Which names hold secrets, and which values are written in plain text.

use crate::yaml::{Node, NodeKind, UNSAFE_KEY, VAULT_KEY};

/// What a variable or argument name says about its value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SecretName {
    /// The become (sudo/su) password.
    Become,
    /// Some other secret.
    Other,
}

/// The become password variables (current and removed spellings).
const BECOME_PASSWORDS: &[&str] = &[
    "ansible_become_pass",
    "ansible_become_password",
    "ansible_sudo_pass",
    "ansible_sudo_password",
    "ansible_su_pass",
    "ansible_su_password",
];

/// Words that make a name a secret's.
const SECRET_WORDS: &[&str] = &[
    "password",
    "passwd",
    "passphrase",
    "pass",
    "pw",
    "secret",
    "secrets",
    "token",
    "apikey",
    "credential",
    "credentials",
];

/// Words before `key` that make it a secret key (`api_key`, `private_key`).
const KEY_QUALIFIERS: &[&str] = &[
    "api",
    "private",
    "secret",
    "access",
    "auth",
    "encryption",
    "signing",
    "master",
    "client",
    "license",
];

/// Last words that say the value is about the secret, not the secret
/// (`password_file`, `token_url`, `secret_name`, `password_length`).
const NOT_THE_SECRET: &[&str] = &[
    "file",
    "files",
    "path",
    "dir",
    "directory",
    "url",
    "uri",
    "endpoint",
    "name",
    "names",
    "user",
    "username",
    "owner",
    "group",
    "length",
    "len",
    "min",
    "max",
    "size",
    "bits",
    "type",
    "ttl",
    "timeout",
    "expire",
    "expires",
    "expiry",
    "age",
    "days",
    "policy",
    "enabled",
    "enable",
    "disabled",
    "required",
    "mode",
    "format",
    "method",
    "algorithm",
    "hash",
    "salt",
    "prefix",
    "suffix",
    "var",
    "variable",
    "env",
    "header",
    "command",
    "cmd",
    "location",
    "host",
    "port",
    "regex",
    "pattern",
    "hint",
    "prompt",
    "lock",
    "locked",
    "id",
    "ids",
    "label",
    "version",
    "store",
    "backend",
    "provider",
    "source",
    "src",
    "dest",
    "option",
    "options",
    "scheme",
    "field",
    "scope",
    "scopes",
    "role",
    "roles",
    "audience",
    "issuer",
    "realm",
    "kind",
    "count",
    "retries",
    "interval",
    "authentication",
    "auth",
    "login",
    "change",
    "reset",
    "complexity",
    "history",
    "warn",
    "warning",
    "check",
    "quality",
    "strength",
    "rotation",
    "encryption",
    "cipher",
    "ciphers",
    "digest",
    "mechanism",
    "plugin",
    "manager",
    "generator",
    "generate",
    "create",
    "rules",
];

/// Option names that contain a secret word but take a choice
/// (`update_password: on_create`).
const NOT_SECRET_NAMES: &[&str] = &["update_password", "password_update", "pass_through", "passthrough"];

/// Whether `name` (a variable or argument name) holds a secret.
pub fn secret_name(name: &str) -> Option<SecretName> {
    let lower = name.to_ascii_lowercase();
    if BECOME_PASSWORDS.contains(&lower.as_str()) {
        return Some(SecretName::Become);
    }
    if NOT_SECRET_NAMES.contains(&lower.as_str()) {
        return None;
    }
    let words: Vec<&str> = lower
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
        .collect();
    let last = *words.last()?;
    if NOT_THE_SECRET.contains(&last) {
        return None;
    }
    let secret = words
        .iter()
        .enumerate()
        .any(|(i, w)| SECRET_WORDS.contains(w) || (*w == "key" && i > 0 && KEY_QUALIFIERS.contains(&words[i - 1])))
        || words.iter().any(|w| w.ends_with("password") || w.ends_with("passwd"));
    secret.then_some(SecretName::Other)
}

/// The literal text of `value` when it is written in plain text: a
/// non-empty string (or number) that is not a template, not vaulted, not
/// a crypt hash and not a locked-password marker.
pub fn plaintext(value: &Node) -> Option<String> {
    let text = match &value.kind {
        NodeKind::Str(s) => s.clone(),
        NodeKind::Int(i) => i.to_string(),
        // `!unsafe` text is still written in the file.
        NodeKind::Map(m) if m.len() == 1 && m[0].0.as_str() == Some(UNSAFE_KEY) => m[0].1.as_str()?.to_string(),
        _ => return None,
    };
    let t = text.trim();
    if t.is_empty()
        || t.contains("{{")
        || t.contains("{%")
        || t.starts_with("$ANSIBLE_VAULT;")
        || matches!(t, "!" | "*" | "!!" | "x")
        || is_crypt_hash(t)
        // `password_authentication: "no"`: a setting, not a password.
        || crate::template::parse_bool(t).is_some()
    {
        return None;
    }
    Some(text)
}

/// Whether `value` is an inline `!vault` value.
pub fn is_vaulted(value: &Node) -> bool {
    value.get(VAULT_KEY).is_some()
}

/// `$6$salt$hash`, `$2b$12$...`, `$y$...`: the form the `user` module takes.
fn is_crypt_hash(t: &str) -> bool {
    let Some(rest) = t.strip_prefix('$') else {
        return false;
    };
    let mut parts = rest.split('$');
    let id = parts.next().unwrap_or("");
    !id.is_empty() && id.len() <= 4 && id.chars().all(|c| c.is_ascii_alphanumeric()) && parts.count() >= 2
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_names() {
        for n in [
            "db_password",
            "mysql_root_password",
            "DB_PASS",
            "api_token",
            "aws_secret_access_key",
            "AWS_SECRET_ACCESS_KEY",
            "private_key",
            "ssl_key_passphrase",
            "github_apikey",
            "client_secret",
            "vault_pw",
            "adminPassword",
        ] {
            assert_eq!(secret_name(n), Some(SecretName::Other), "{n}");
        }
        assert_eq!(secret_name("ansible_become_password"), Some(SecretName::Become));
        assert_eq!(secret_name("ansible_sudo_pass"), Some(SecretName::Become));
        for n in [
            "password_file",
            "vault_password_file",
            "ssh_key_path",
            "token_url",
            "password_length",
            "update_password",
            "api_key_name",
            "bypass",
            "passenger_root",
            "ssh_key",
            "sort_key",
            "keyserver",
            "ssh_password_authentication",
            "postgresql_password_encryption",
            "github_token_scope",
        ] {
            assert_eq!(secret_name(n), None, "{n}");
        }
    }

    #[test]
    fn crypt_hashes_are_not_plaintext() {
        assert!(is_crypt_hash("$6$rounds=5000$salt$abcdef"));
        assert!(is_crypt_hash("$y$j9T$abc$def"));
        assert!(!is_crypt_hash("$ecret"));
    }
}
