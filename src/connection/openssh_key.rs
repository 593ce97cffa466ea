//! OpenSSH private keys that the `ssh-key` crate rejects but OpenSSH accepts.
//!
//! OpenSSH stores an ECDSA private scalar as a minimal `mpint` (RFC 4251:
//! no unnecessary leading zero bytes). One NIST P-256 key in 256 therefore
//! has a scalar below 2^248, stored in 31 bytes, and `ssh-key` 0.7.0-rc.11 refuses any scalar
//! shorter than 32 bytes ("length invalid"). Such a key works with `ssh`;
//! [`repair_short_ecdsa`] re-encodes it with the scalar zero-padded to the
//! curve's size, which `ssh-key` reads. Nothing else about the key changes,
//! and everything that holds key material is wiped when dropped.

use base64::Engine;
use russh::keys::ssh_key::cipher::Tag;
use russh::keys::PrivateKey;
use zeroize::Zeroizing;

const MAGIC: &[u8] = b"openssh-key-v1\0";

/// A reader of the SSH wire format (RFC 4251 §5).
struct Wire<'a>(&'a [u8]);

impl<'a> Wire<'a> {
    fn u32(&mut self) -> Option<u32> {
        let (head, rest) = self.0.split_first_chunk::<4>()?;
        self.0 = rest;
        Some(u32::from_be_bytes(*head))
    }

    fn string(&mut self) -> Option<&'a [u8]> {
        let len = usize::try_from(self.u32()?).ok()?;
        if len > self.0.len() {
            return None;
        }
        let (s, rest) = self.0.split_at(len);
        self.0 = rest;
        Some(s)
    }
}

fn put_string(out: &mut Vec<u8>, s: &[u8]) {
    out.extend_from_slice(&u32::try_from(s.len()).unwrap_or(u32::MAX).to_be_bytes());
    out.extend_from_slice(s);
}

/// The size in bytes of a scalar on the curve named in an ECDSA key type.
fn field_size(key_type: &[u8]) -> Option<usize> {
    match key_type {
        b"ecdsa-sha2-nistp256" => Some(32),
        b"ecdsa-sha2-nistp384" => Some(48),
        b"ecdsa-sha2-nistp521" => Some(66),
        _ => None,
    }
}

/// The key in `text` (an OpenSSH private key file), read again with a short
/// ECDSA scalar padded to its curve's size. `None` when the key is not an
/// OpenSSH ECDSA key with a short scalar, or when it is encrypted and
/// `passphrase` does not decrypt it: the caller then reports its own error.
pub(crate) fn repair_short_ecdsa(text: &str, passphrase: Option<&str>) -> Option<PrivateKey> {
    let body: String = text
        .lines()
        .map(str::trim)
        .skip_while(|l| *l != "-----BEGIN OPENSSH PRIVATE KEY-----")
        .skip(1)
        .take_while(|l| !l.starts_with("-----END"))
        .collect();
    let blob = Zeroizing::new(base64::engine::general_purpose::STANDARD.decode(body).ok()?);
    let mut r = Wire(blob.strip_prefix(MAGIC)?);
    let cipher_name = r.string()?;
    let _kdf_name = r.string()?;
    let _kdf_options = r.string()?;
    if r.u32()? != 1 {
        return None;
    }
    let public = r.string()?;
    let sealed = r.string()?;
    let tag = r.0;

    let plain = if cipher_name == b"none" {
        Zeroizing::new(sealed.to_vec())
    } else {
        // ssh-key reads an encrypted key's outer part (it leaves the key
        // pair sealed); its cipher and KDF decrypt the private part.
        let key = PrivateKey::from_openssh(text).ok()?;
        let (k, iv) = key.kdf().derive_key_and_iv(key.cipher(), passphrase?).ok()?;
        let tag = if key.cipher().has_tag() {
            Some(Tag::try_from(tag).ok()?)
        } else {
            None
        };
        let mut buf = Zeroizing::new(sealed.to_vec());
        key.cipher().decrypt(&k, &iv, &mut buf, tag).ok()?;
        buf
    };

    let mut p = Wire(&plain);
    let (check1, check2) = (p.u32()?, p.u32()?);
    if check1 != check2 {
        return None; // a wrong passphrase
    }
    let key_type = p.string()?;
    let size = field_size(key_type)?;
    let curve = p.string()?;
    let point = p.string()?;
    let scalar = p.string()?;
    let comment = p.string()?;
    let digits = &scalar[scalar.iter().take_while(|b| **b == 0).count()..];
    if digits.len() >= size {
        return None; // not short: the error is something else
    }

    let mut inner = Zeroizing::new(Vec::with_capacity(plain.len() + size));
    inner.extend_from_slice(&check1.to_be_bytes());
    inner.extend_from_slice(&check2.to_be_bytes());
    put_string(&mut inner, key_type);
    put_string(&mut inner, curve);
    put_string(&mut inner, point);
    // Zero-padded to the full size: its top byte is 0, so the mpint needs
    // no sign byte.
    let mut padded = Zeroizing::new(vec![0u8; size - digits.len()]);
    padded.extend_from_slice(digits);
    put_string(&mut inner, &padded);
    put_string(&mut inner, comment);
    let mut pad = 1u8;
    while inner.len() % 8 != 0 {
        inner.push(pad);
        pad += 1;
    }

    let mut out = Zeroizing::new(Vec::with_capacity(inner.len() + public.len() + 64));
    out.extend_from_slice(MAGIC);
    put_string(&mut out, b"none");
    put_string(&mut out, b"none");
    put_string(&mut out, b"");
    out.extend_from_slice(&1u32.to_be_bytes());
    put_string(&mut out, public);
    put_string(&mut out, &inner);
    PrivateKey::from_bytes(&out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_that_are_not_short_ecdsa_are_left_to_the_caller() {
        assert!(repair_short_ecdsa("not a key", None).is_none());
        assert!(repair_short_ecdsa(
            "-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n-----END OPENSSH PRIVATE KEY-----\n",
            None
        )
        .is_none());
    }
}
