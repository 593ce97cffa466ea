//! The ansible-vault format, as ansible-core's `ansible/parsing/vault`
//! writes and reads it.
//!
//! An envelope is a header line `$ANSIBLE_VAULT;1.1;AES256` (or
//! `$ANSIBLE_VAULT;1.2;AES256;VAULT_ID`) followed by the vaulttext in lines
//! of 80 characters. The vaulttext is the hexlified
//! `hex(salt) \n hex(hmac) \n hex(ciphertext)`. The keys come from
//! PBKDF2-HMAC-SHA256 (10,000 iterations) of the password and salt: 80 bytes,
//! the first 32 the AES-256 key, the next 32 the HMAC-SHA256 key, the last
//! 16 the initial counter of AES-CTR. The plaintext is PKCS#7-padded to the
//! AES block size before encryption; the HMAC covers the ciphertext.

use aes::cipher::{KeyIvInit, StreamCipher};
use pbkdf2::hmac::{Hmac, KeyInit, Mac};
use pbkdf2::sha2::Sha256;
use subtle::ConstantTimeEq;
use zeroize::{Zeroize, Zeroizing};

type Aes256Ctr = ctr::Ctr128BE<aes::Aes256>;

/// The header every vaulted text starts with.
pub const HEADER: &str = "$ANSIBLE_VAULT";
const ITERATIONS: u32 = 10_000;
const KEY_LEN: usize = 32;
const IV_LEN: usize = 16;
const BLOCK: usize = 16;
/// The vault id Ansible gives a secret or a vaulttext that names none.
pub const DEFAULT_ID: &str = "default";

/// Why a vaulttext could not be read or decrypted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FormatError {
    #[error("not vault-encrypted data (no `$ANSIBLE_VAULT;` header)")]
    NotVaulted,
    #[error("vault envelope format error: {0}")]
    Envelope(String),
    #[error("unsupported vault cipher `{0}` (ansible-vault knows AES256)")]
    Cipher(String),
    #[error("HMAC verification failed (wrong password, or the data was changed)")]
    Mac,
    #[error("invalid padding after decryption")]
    Padding,
}

/// Whether `data` is vault-encrypted: it starts with the header (leading
/// whitespace allowed, as in a YAML block scalar).
pub fn is_encrypted(data: &[u8]) -> bool {
    let start = data.iter().position(|b| !b.is_ascii_whitespace()).unwrap_or(data.len());
    data[start..].starts_with(b"$ANSIBLE_VAULT;")
}

/// A parsed envelope: the header's fields and the (unhexlified once)
/// vaulttext.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    pub version: String,
    pub cipher: String,
    /// The vault id of a 1.2 header; `None` for 1.1.
    pub vault_id: Option<String>,
    salt: Vec<u8>,
    mac: Vec<u8>,
    ciphertext: Vec<u8>,
}

impl Envelope {
    /// Parse `text`, an envelope as ansible-vault writes it.
    pub fn parse(text: &[u8]) -> Result<Envelope, FormatError> {
        let text = std::str::from_utf8(text).map_err(|_| FormatError::Envelope("not ASCII text".into()))?;
        let text = text.trim_start();
        if !text.starts_with("$ANSIBLE_VAULT;") {
            return Err(FormatError::NotVaulted);
        }
        let mut lines = text.lines();
        let header = lines.next().unwrap_or_default();
        let fields: Vec<&str> = header.trim().split(';').map(str::trim).collect();
        if fields.len() < 3 {
            return Err(FormatError::Envelope(format!("header `{header}` has no cipher")));
        }
        let version = fields[1].to_string();
        let cipher = fields[2].to_string();
        let vault_id = fields.get(3).map(|s| s.to_string());
        if cipher != "AES256" {
            return Err(FormatError::Cipher(cipher));
        }
        let body: String = lines.map(str::trim).collect();
        let inner =
            unhex(body.as_bytes()).ok_or_else(|| FormatError::Envelope("the vaulttext is not hexadecimal".into()))?;
        let mut parts = inner.splitn(3, |b| *b == b'\n');
        let (Some(salt), Some(mac), Some(ct)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(FormatError::Envelope(
                "the vaulttext lacks its salt, HMAC or ciphertext".into(),
            ));
        };
        let bad = |what: &str| FormatError::Envelope(format!("the vaulttext's {what} is not hexadecimal"));
        Ok(Envelope {
            version,
            cipher,
            vault_id,
            salt: unhex(salt).ok_or_else(|| bad("salt"))?,
            mac: unhex(mac).ok_or_else(|| bad("HMAC"))?,
            ciphertext: unhex(ct).ok_or_else(|| bad("ciphertext"))?,
        })
    }

    /// Decrypt with `password`: the HMAC is checked in constant time before
    /// anything is decrypted.
    pub fn decrypt(&self, password: &[u8]) -> Result<Zeroizing<Vec<u8>>, FormatError> {
        let keys = derive(password, &self.salt);
        let (k1, k2, iv) = split(&keys);
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(k2).map_err(|_| FormatError::Mac)?;
        mac.update(&self.ciphertext);
        let expected = mac.finalize().into_bytes();
        if !bool::from(expected.as_slice().ct_eq(&self.mac)) {
            return Err(FormatError::Mac);
        }
        let mut buf = Zeroizing::new(self.ciphertext.clone());
        let mut cipher = Aes256Ctr::new_from_slices(k1, iv).map_err(|_| FormatError::Mac)?;
        cipher.apply_keystream(&mut buf);
        let pad = *buf.last().ok_or(FormatError::Padding)? as usize;
        if pad == 0 || pad > BLOCK || pad > buf.len() || !buf[buf.len() - pad..].iter().all(|b| *b as usize == pad) {
            return Err(FormatError::Padding);
        }
        let n = buf.len() - pad;
        buf[n..].zeroize();
        buf.truncate(n);
        Ok(buf)
    }
}

/// Encrypt `plaintext` with `password` into an envelope. A `vault_id`
/// other than `default` makes it a 1.2 envelope naming that id; `salt` is
/// random (32 bytes) unless given (the `vault` filter's `salt=`).
pub fn encrypt(plaintext: &[u8], password: &[u8], vault_id: Option<&str>, salt: Option<&[u8]>) -> String {
    let salt: Vec<u8> = match salt {
        Some(s) if !s.is_empty() => s.to_vec(),
        _ => {
            let mut s = vec![0u8; 32];
            rand::fill(&mut s[..]);
            s
        }
    };
    let keys = derive(password, &salt);
    let (k1, k2, iv) = split(&keys);
    let pad = BLOCK - plaintext.len() % BLOCK;
    let mut buf = Zeroizing::new(Vec::with_capacity(plaintext.len() + pad));
    buf.extend_from_slice(plaintext);
    buf.extend(std::iter::repeat_n(pad as u8, pad));
    // Key and IV lengths are fixed by `derive`, so these cannot fail.
    if let Ok(mut cipher) = Aes256Ctr::new_from_slices(k1, iv) {
        cipher.apply_keystream(&mut buf);
    }
    let mac = match <Hmac<Sha256> as KeyInit>::new_from_slice(k2) {
        Ok(mut m) => {
            m.update(&buf);
            m.finalize().into_bytes().to_vec()
        }
        Err(_) => Vec::new(),
    };
    let inner = format!("{}\n{}\n{}", hex(&salt), hex(&mac), hex(&buf));
    let body = hex(inner.as_bytes());
    let mut out = match vault_id {
        Some(id) if !id.is_empty() && id != DEFAULT_ID => format!("{HEADER};1.2;AES256;{id}\n"),
        _ => format!("{HEADER};1.1;AES256\n"),
    };
    for chunk in body.as_bytes().chunks(80) {
        out.push_str(std::str::from_utf8(chunk).unwrap_or_default());
        out.push('\n');
    }
    out
}

fn derive(password: &[u8], salt: &[u8]) -> Zeroizing<[u8; 2 * KEY_LEN + IV_LEN]> {
    let mut out = Zeroizing::new([0u8; 2 * KEY_LEN + IV_LEN]);
    pbkdf2::pbkdf2_hmac::<Sha256>(password, salt, ITERATIONS, &mut out[..]);
    out
}

fn split(keys: &[u8; 2 * KEY_LEN + IV_LEN]) -> (&[u8], &[u8], &[u8]) {
    (&keys[..KEY_LEN], &keys[KEY_LEN..2 * KEY_LEN], &keys[2 * KEY_LEN..])
}

fn hex(b: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(b.len() * 2);
    for x in b {
        s.push(DIGITS[(x >> 4) as usize] as char);
        s.push(DIGITS[(x & 15) as usize] as char);
    }
    s
}

fn unhex(s: &[u8]) -> Option<Vec<u8>> {
    if s.len() % 2 != 0 {
        return None;
    }
    let digit = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
    s.chunks(2).map(|p| Some((digit(p[0])? << 4) | digit(p[1])?)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Made by ansible-core: `'secret' | vault('test', vault_id='filter_default', salt=7)`
    /// (its test target filter_encryption).
    const WITH_ID: &str = "$ANSIBLE_VAULT;1.2;AES256;filter_default
33370a34333734353636633035656232613935353432656132646533346233326431346232616261
6133383034376566366261316365633931356133633337396363370a376664386236313834326561
6338373864623763613165366636633031303739
";

    #[test]
    fn decrypts_what_ansible_vault_wrote() {
        let env = Envelope::parse(WITH_ID.as_bytes()).unwrap();
        assert_eq!(env.vault_id.as_deref(), Some("filter_default"));
        assert_eq!(env.version, "1.2");
        assert_eq!(&env.decrypt(b"test").unwrap()[..], b"secret");
        assert_eq!(env.decrypt(b"wrong"), Err(FormatError::Mac));
    }

    #[test]
    fn encrypts_as_ansible_vault_does_with_a_given_salt() {
        // Same password, salt and id: the same bytes as ansible-core's.
        assert_eq!(encrypt(b"secret", b"test", Some("filter_default"), Some(b"7")), WITH_ID);
    }

    #[test]
    fn round_trip_1_1_and_80_columns() {
        let text = encrypt(b"foo: bar\n", b"pw", None, None);
        assert!(text.starts_with("$ANSIBLE_VAULT;1.1;AES256\n"), "{text}");
        assert!(text.lines().skip(1).all(|l| l.len() <= 80));
        let env = Envelope::parse(text.as_bytes()).unwrap();
        assert_eq!(env.vault_id, None);
        assert_eq!(&env.decrypt(b"pw").unwrap()[..], b"foo: bar\n");
        // `default` is no id: a 1.1 envelope.
        assert!(encrypt(b"x", b"pw", Some("default"), None).starts_with("$ANSIBLE_VAULT;1.1;AES256\n"));
        // A block-sized plaintext gets a whole block of padding.
        let t = encrypt(&[b'a'; 16], b"pw", None, None);
        assert_eq!(
            &Envelope::parse(t.as_bytes()).unwrap().decrypt(b"pw").unwrap()[..],
            &[b'a'; 16]
        );
    }

    #[test]
    fn a_changed_byte_fails_the_mac() {
        let text = encrypt(b"hello", b"pw", None, None);
        let (header, body) = text.split_once('\n').unwrap();
        // Flip one hex digit of the ciphertext inside the vaulttext (and
        // hexlify again), so the envelope still parses.
        let inner = String::from_utf8(unhex(body.replace('\n', "").as_bytes()).unwrap()).unwrap();
        let mut inner: Vec<u8> = inner.into_bytes();
        let last = inner.last_mut().unwrap();
        *last = if *last == b'0' { b'1' } else { b'0' };
        let changed = format!("{header}\n{}", hex(&inner));
        assert_eq!(
            Envelope::parse(changed.as_bytes()).unwrap().decrypt(b"pw"),
            Err(FormatError::Mac)
        );
    }

    #[test]
    fn bad_envelopes() {
        assert_eq!(Envelope::parse(b"hello"), Err(FormatError::NotVaulted));
        assert!(matches!(
            Envelope::parse(b"$ANSIBLE_VAULT;1.1;AES256\nzz\n"),
            Err(FormatError::Envelope(_))
        ));
        assert!(matches!(
            Envelope::parse(b"$ANSIBLE_VAULT;1.1;AES\n00\n"),
            Err(FormatError::Cipher(_))
        ));
        assert!(is_encrypted(b"  $ANSIBLE_VAULT;1.1;AES256\n"));
        assert!(!is_encrypted(b"ANSIBLE_VAULT"));
    }
}
