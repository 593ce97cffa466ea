//! OpenSSH `known_hosts` files: lookup, verification and learning of host keys.
//!
//! Understood: plain and comma-separated host names, `[host]:port` for ports
//! other than 22, hashed names (`|1|salt|hash`, HMAC-SHA1), wildcard and
//! negated patterns, and `@revoked` lines. `@cert-authority` lines are skipped.

use std::collections::HashSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use base64::Engine;
use hmac::{Hmac, Mac};
use russh::keys::{HashAlg, PublicKey};

use super::ssh_config::host_matches;
use super::{ConnError, HostKeyChecking};

/// The name under which a host is recorded: `host`, or `[host]:port` when the
/// port is not 22.
pub fn host_id(host: &str, port: u16) -> String {
    if port == 22 {
        host.to_string()
    } else {
        format!("[{host}]:{port}")
    }
}

/// OpenSSH's short name of a key type, as in "ED25519 key".
pub fn key_type_label(key: &PublicKey) -> &'static str {
    let alg = key.algorithm();
    let name = alg.as_str();
    if name.contains("ed25519") {
        "ED25519"
    } else if name.starts_with("ecdsa") || name.contains("ecdsa") {
        "ECDSA"
    } else if name.contains("rsa") {
        "RSA"
    } else if name.contains("dss") {
        "DSA"
    } else {
        "unknown"
    }
}

pub fn fingerprint(key: &PublicKey) -> String {
    key.fingerprint(HashAlg::Sha256).to_string()
}

/// The result of looking a host key up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup {
    /// A matching entry exists.
    Known,
    /// No entry names this host.
    Unknown,
    /// The host is recorded with another key; the first such entry.
    Changed {
        file: PathBuf,
        line: usize,
        recorded: String,
    },
    /// The key is listed as `@revoked`.
    Revoked { file: PathBuf, line: usize },
}

enum HostSpec {
    Hashed { salt: Vec<u8>, hash: Vec<u8> },
    Patterns(Vec<String>),
}

impl HostSpec {
    fn parse(field: &str) -> Option<HostSpec> {
        if let Some(rest) = field.strip_prefix("|1|") {
            let (salt, hash) = rest.split_once('|')?;
            let b64 = base64::engine::general_purpose::STANDARD;
            return Some(HostSpec::Hashed {
                salt: b64.decode(salt).ok()?,
                hash: b64.decode(hash).ok()?,
            });
        }
        Some(HostSpec::Patterns(field.split(',').map(str::to_string).collect()))
    }

    fn matches(&self, id: &str) -> bool {
        match self {
            HostSpec::Hashed { salt, hash } => {
                let Ok(mut mac) = Hmac::<sha1::Sha1>::new_from_slice(salt) else {
                    return false;
                };
                mac.update(id.as_bytes());
                mac.verify_slice(hash).is_ok()
            }
            HostSpec::Patterns(p) => host_matches(id, p),
        }
    }
}

/// Hash a host name the way `ssh-keygen -H` does (for tests and tools).
pub fn hash_host(id: &str, salt: &[u8]) -> String {
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut mac = match Hmac::<sha1::Sha1>::new_from_slice(salt) {
        Ok(m) => m,
        // HMAC accepts keys of any length.
        Err(_) => return String::new(),
    };
    mac.update(id.as_bytes());
    format!("|1|{}|{}", b64.encode(salt), b64.encode(mac.finalize().into_bytes()))
}

/// Look `key` up for `host:port` in `files` (missing files are skipped).
pub fn lookup(files: &[PathBuf], host: &str, port: u16, key: &PublicKey) -> Lookup {
    let id = host_id(host, port);
    let mut changed: Option<Lookup> = None;
    let mut known = false;
    for file in files {
        let Ok(text) = std::fs::read_to_string(file) else {
            continue;
        };
        for (idx, raw) in text.lines().enumerate() {
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let mut fields = line.split_whitespace();
            let mut first = fields.next().unwrap_or("");
            let marker = if first.starts_with('@') {
                let m = first;
                first = fields.next().unwrap_or("");
                Some(m)
            } else {
                None
            };
            let (Some(_ktype), Some(blob)) = (fields.next(), fields.next()) else {
                continue;
            };
            if marker == Some("@cert-authority") {
                continue;
            }
            let Ok(recorded) = russh::keys::parse_public_key_base64(blob) else {
                continue;
            };
            let same = recorded.key_data() == key.key_data();
            if marker == Some("@revoked") {
                if same {
                    return Lookup::Revoked {
                        file: file.clone(),
                        line: idx + 1,
                    };
                }
                continue;
            }
            if marker.is_some() {
                continue;
            }
            let Some(spec) = HostSpec::parse(first) else {
                continue;
            };
            if !spec.matches(&id) {
                continue;
            }
            if same {
                known = true;
            } else if changed.is_none() {
                changed = Some(Lookup::Changed {
                    file: file.clone(),
                    line: idx + 1,
                    recorded: key_type_label(&recorded).to_string(),
                });
            }
        }
    }
    if known {
        // A revoked line later in the files was already handled above; a
        // matching entry wins over other keys recorded for the host, as
        // hosts have one key per type.
        Lookup::Known
    } else {
        changed.unwrap_or(Lookup::Unknown)
    }
}

/// The key algorithms recorded for a host, so key exchange can prefer them.
pub fn recorded_algorithms(files: &[PathBuf], host: &str, port: u16) -> Vec<String> {
    let id = host_id(host, port);
    let mut out = Vec::new();
    for file in files {
        let Ok(text) = std::fs::read_to_string(file) else {
            continue;
        };
        for raw in text.lines() {
            let mut fields = raw.split_whitespace();
            let (Some(hosts), Some(ktype)) = (fields.next(), fields.next()) else {
                continue;
            };
            if hosts.starts_with('#') || hosts.starts_with('@') {
                continue;
            }
            if HostSpec::parse(hosts).is_some_and(|s| s.matches(&id)) && !out.iter().any(|k| k == ktype) {
                out.push(ktype.to_string());
            }
        }
    }
    out
}

static APPEND_LOCK: Mutex<()> = Mutex::new(());

/// Record `key` for `host:port` at the end of `file`, creating it (and its
/// directory) if needed.
pub fn append(file: &Path, host: &str, port: u16, key: &PublicKey) -> std::io::Result<()> {
    let _guard = APPEND_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(dir) = file.parent() {
        // ~/.ssh is 0700 from its creation on, as ssh makes it.
        crate::private_files::create_dir(dir)?;
    }
    let needs_newline = std::fs::read(file)
        .map(|d| !d.is_empty() && !d.ends_with(b"\n"))
        .unwrap_or(false);
    let openssh = key
        .to_openssh()
        .map_err(|e| std::io::Error::other(format!("cannot encode host key: {e}")))?;
    // `to_openssh` appends the comment, if any; keep only type and blob.
    let mut parts = openssh.split_whitespace();
    let line = format!(
        "{}{} {} {}\n",
        if needs_newline { "\n" } else { "" },
        host_id(host, port),
        parts.next().unwrap_or(""),
        parts.next().unwrap_or("")
    );
    let mut f = std::fs::OpenOptions::new().create(true).append(true).open(file)?;
    f.write_all(line.as_bytes())
}

static WARNED: Mutex<Option<HashSet<String>>> = Mutex::new(None);

/// Check a server's host key according to `mode`. `name` is the inventory
/// name, for messages.
pub fn verify(
    mode: HostKeyChecking,
    files: &[PathBuf],
    name: &str,
    host: &str,
    port: u16,
    key: &PublicKey,
) -> Result<(), ConnError> {
    let id = host_id(host, port);
    let status = lookup(files, host, port, key);
    match status {
        Lookup::Known => return Ok(()),
        Lookup::Revoked { file, line } => {
            return Err(ConnError::HostKey(format!(
                "the {} host key of {id} ({}) is REVOKED in {}:{line}; refusing to connect",
                key_type_label(key),
                fingerprint(key),
                file.display()
            )))
        }
        Lookup::Changed { file, line, recorded } if mode != HostKeyChecking::Off => {
            return Err(ConnError::HostKey(format!(
                "REMOTE HOST IDENTIFICATION HAS CHANGED for {id}: it now offers {} key {}; Offending {recorded} key \
                 in {}:{line} (if the change is expected, remove it with `ssh-keygen -R '{id}' -f {}`)",
                key_type_label(key),
                fingerprint(key),
                file.display(),
                file.display()
            )))
        }
        _ => {}
    }
    match mode {
        HostKeyChecking::Off => {
            let mut warned = WARNED.lock().unwrap_or_else(|e| e.into_inner());
            if warned.get_or_insert_with(HashSet::new).insert(id.clone()) {
                stderrln!(
                    "warning: host key checking is off: not verifying {} key {} of {name} ({id})",
                    key_type_label(key),
                    fingerprint(key)
                );
            }
            Ok(())
        }
        HostKeyChecking::AcceptNew => {
            let Some(file) = files.first() else {
                return Err(ConnError::HostKey(format!(
                    "cannot learn the host key of {id}: no known_hosts file is configured"
                )));
            };
            append(file, host, port, key).map_err(|e| {
                ConnError::HostKey(format!("cannot record the host key of {id} in {}: {e}", file.display()))
            })
        }
        HostKeyChecking::Strict => {
            let file = files
                .first()
                .map(|f| f.display().to_string())
                .unwrap_or_else(|| "~/.ssh/known_hosts".into());
            let scan = if port == 22 {
                format!("ssh-keyscan {host} >> {file}")
            } else {
                format!("ssh-keyscan -p {port} {host} >> {file}")
            };
            Err(ConnError::HostKey(format!(
                "host key of {name} ({id}, {} {}) is unknown: not in {}; verify it and add it with `{scan}`, \
                 or use --host-key-checking accept-new",
                key_type_label(key),
                fingerprint(key),
                if files.is_empty() {
                    "any known_hosts file".to_string()
                } else {
                    files
                        .iter()
                        .map(|f| f.display().to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                }
            )))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY_A: &str = "AAAAC3NzaC1lZDI1NTE5AAAAIJdD7y3aLq454yWBdwLWbieU1ebz9/cu7/QEXn9OIeZJ";
    const KEY_B: &str = "AAAAC3NzaC1lZDI1NTE5AAAAIA6rWI3G1sz07DnfFlrouTcysQlj2P+jpNSOEWD9OJ3X";

    fn key(b: &str) -> PublicKey {
        russh::keys::parse_public_key_base64(b).unwrap()
    }

    fn write(dir: &Path, text: &str) -> PathBuf {
        let p = dir.join("known_hosts");
        std::fs::write(&p, text).unwrap();
        p
    }

    #[test]
    fn plain_port_and_list_forms() {
        let d = tempfile::tempdir().unwrap();
        let f = write(
            d.path(),
            &format!(
                "# comment\nalpha,beta ssh-ed25519 {KEY_A}\n[gamma]:2222 ssh-ed25519 {KEY_A} c\nweb* ssh-ed25519 {KEY_A}\n"
            ),
        );
        let files = vec![f];
        let a = key(KEY_A);
        assert_eq!(lookup(&files, "alpha", 22, &a), Lookup::Known);
        assert_eq!(lookup(&files, "beta", 22, &a), Lookup::Known);
        assert_eq!(lookup(&files, "beta", 2222, &a), Lookup::Unknown);
        assert_eq!(lookup(&files, "gamma", 2222, &a), Lookup::Known);
        assert_eq!(lookup(&files, "gamma", 22, &a), Lookup::Unknown);
        assert_eq!(lookup(&files, "web7", 22, &a), Lookup::Known);
        assert_eq!(lookup(&files, "delta", 22, &a), Lookup::Unknown);
    }

    #[test]
    fn changed_key_names_file_and_line() {
        let d = tempfile::tempdir().unwrap();
        let f = write(
            d.path(),
            &format!("other ssh-ed25519 {KEY_B}\n\n[h]:2200 ssh-ed25519 {KEY_A}\n"),
        );
        let files = vec![f.clone()];
        assert_eq!(
            lookup(&files, "h", 2200, &key(KEY_B)),
            Lookup::Changed {
                file: f.clone(),
                line: 3,
                recorded: "ED25519".into()
            }
        );
        for mode in [HostKeyChecking::Strict, HostKeyChecking::AcceptNew] {
            let e = verify(mode, &files, "h", "h", 2200, &key(KEY_B))
                .unwrap_err()
                .to_string();
            assert!(
                e.contains(&format!("Offending ED25519 key in {}:3", f.display())),
                "{e}"
            );
        }
    }

    #[test]
    fn hashed_entries() {
        let d = tempfile::tempdir().unwrap();
        let salt = b"0123456789abcdefghij";
        let f = write(
            d.path(),
            &format!(
                "{} ssh-ed25519 {KEY_A}\n{} ssh-ed25519 {KEY_A}\n",
                hash_host("[127.0.0.1]:2222", salt),
                hash_host("example", salt)
            ),
        );
        let files = vec![f];
        assert_eq!(lookup(&files, "127.0.0.1", 2222, &key(KEY_A)), Lookup::Known);
        assert_eq!(lookup(&files, "example", 22, &key(KEY_A)), Lookup::Known);
        assert_eq!(lookup(&files, "127.0.0.1", 22, &key(KEY_A)), Lookup::Unknown);
        assert!(matches!(
            lookup(&files, "example", 22, &key(KEY_B)),
            Lookup::Changed { line: 2, .. }
        ));
    }

    #[test]
    fn openssh_hashed_lines() {
        // Written by `ssh-keygen -H` for "localhost" and "[127.0.0.1]:2222".
        let d = tempfile::tempdir().unwrap();
        let f = write(
            d.path(),
            &format!(
                "|1|+3LnkGc5qX7wzkaU83BOMCmQOBk=|cP/cbJj2q91zDAaw+gRfAICEvSM= ssh-ed25519 {KEY_A}\n\
                 |1|Kp9JeTwq1GKzPCPN4Rkxv7IuzyE=|jErIydmq20JwDcEIitzq8gEv4Nk= ssh-ed25519 {KEY_A}\n"
            ),
        );
        let files = vec![f];
        assert_eq!(lookup(&files, "localhost", 22, &key(KEY_A)), Lookup::Known);
        assert_eq!(lookup(&files, "127.0.0.1", 2222, &key(KEY_A)), Lookup::Known);
        assert_eq!(lookup(&files, "127.0.0.2", 2222, &key(KEY_A)), Lookup::Unknown);
    }

    #[test]
    fn revoked_keys_are_refused() {
        let d = tempfile::tempdir().unwrap();
        let f = write(
            d.path(),
            &format!("h ssh-ed25519 {KEY_A}\n@revoked * ssh-ed25519 {KEY_A}\n"),
        );
        let files = vec![f];
        assert!(matches!(
            lookup(&files, "h", 22, &key(KEY_A)),
            Lookup::Revoked { line: 2, .. }
        ));
        let e = verify(HostKeyChecking::Off, &files, "h", "h", 22, &key(KEY_A)).unwrap_err();
        assert!(e.to_string().contains("REVOKED"));
    }

    #[test]
    fn accept_new_learns_then_enforces() {
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("sub/dir/known_hosts");
        let files = vec![f.clone()];
        let e = verify(HostKeyChecking::Strict, &files, "n", "127.0.0.1", 2022, &key(KEY_A)).unwrap_err();
        let msg = e.to_string();
        assert!(
            msg.contains(&format!("ssh-keyscan -p 2022 127.0.0.1 >> {}", f.display())),
            "{msg}"
        );
        verify(HostKeyChecking::AcceptNew, &files, "n", "127.0.0.1", 2022, &key(KEY_A)).unwrap();
        let text = std::fs::read_to_string(&f).unwrap();
        assert_eq!(text, format!("[127.0.0.1]:2022 ssh-ed25519 {KEY_A}\n"));
        verify(HostKeyChecking::Strict, &files, "n", "127.0.0.1", 2022, &key(KEY_A)).unwrap();
        assert!(verify(HostKeyChecking::AcceptNew, &files, "n", "127.0.0.1", 2022, &key(KEY_B)).is_err());
        assert_eq!(
            recorded_algorithms(&files, "127.0.0.1", 2022),
            vec!["ssh-ed25519".to_string()]
        );
    }

    #[test]
    fn append_adds_missing_newline() {
        let d = tempfile::tempdir().unwrap();
        let f = write(d.path(), &format!("x ssh-ed25519 {KEY_B}"));
        append(&f, "y", 22, &key(KEY_A)).unwrap();
        let files = vec![f];
        assert_eq!(lookup(&files, "x", 22, &key(KEY_B)), Lookup::Known);
        assert_eq!(lookup(&files, "y", 22, &key(KEY_A)), Lookup::Known);
    }
}
