//! crypt(3) password hashes for `password_hash`: SHA-512 (`$6$`), SHA-256
//! (`$5$`) per Ulrich Drepper's specification, and MD5 (`$1$`). These are the
//! strings `/etc/shadow` and `openssl passwd -6/-5/-1` use.

use rand::Rng;
use sha2::Digest;

const ALPHABET: &[u8] = b"./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

fn b64_24(out: &mut String, b2: u8, b1: u8, b0: u8, n: usize) {
    let mut w = ((b2 as u32) << 16) | ((b1 as u32) << 8) | b0 as u32;
    for _ in 0..n {
        out.push(ALPHABET[(w & 0x3f) as usize] as char);
        w >>= 6;
    }
}

fn random_salt(len: usize) -> String {
    let mut rng = rand::rng();
    (0..len)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect()
}

/// Why `password_hash` refuses its arguments.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum CryptError {
    #[error("password_hash: invalid character {0:?} in salt (allowed: ./0-9A-Za-z)")]
    SaltChar(char),
    #[error("password_hash: unsupported scheme {0:?} (supported: sha512, sha256, md5)")]
    Scheme(String),
}

pub(crate) fn password_hash(
    password: &str,
    scheme: &str,
    salt: Option<&str>,
    rounds: Option<u32>,
) -> Result<String, CryptError> {
    if let Some(s) = salt {
        if let Some(bad) = s.chars().find(|c| !ALPHABET.contains(&(*c as u8)) || !c.is_ascii()) {
            return Err(CryptError::SaltChar(bad));
        }
    }
    match scheme {
        "sha512" => Ok(sha_crypt::<sha2::Sha512>(password, salt, rounds, "6")),
        "sha256" => Ok(sha_crypt::<sha2::Sha256>(password, salt, rounds, "5")),
        "md5" => Ok(md5_crypt(password, salt)),
        other => Err(CryptError::Scheme(other.to_string())),
    }
}

fn repeat_to<D: AsRef<[u8]>>(digest: D, len: usize) -> Vec<u8> {
    let d = digest.as_ref();
    (0..len).map(|i| d[i % d.len()]).collect()
}

fn sha_crypt<H: Digest + Clone>(password: &str, salt: Option<&str>, rounds: Option<u32>, id: &str) -> String {
    let p = password.as_bytes();
    let salt_owned;
    let salt = match salt {
        Some(s) => s,
        None => {
            salt_owned = random_salt(16);
            &salt_owned
        }
    };
    let s = &salt.as_bytes()[..salt.len().min(16)];
    let rounds_n = rounds.map(|r| r.clamp(1000, 999_999_999)).unwrap_or(5000);

    let b = H::new().chain_update(p).chain_update(s).chain_update(p).finalize();
    let hlen = b.len();
    let mut a = H::new().chain_update(p).chain_update(s);
    let mut n = p.len();
    while n > hlen {
        a.update(&b);
        n -= hlen;
    }
    a.update(&b[..n]);
    let mut n = p.len();
    while n > 0 {
        if n & 1 == 1 {
            a.update(&b);
        } else {
            a.update(p);
        }
        n >>= 1;
    }
    let mut a = a.finalize();

    let mut dp = H::new();
    for _ in 0..p.len() {
        dp.update(p);
    }
    let pp = repeat_to(dp.finalize(), p.len());
    let mut ds = H::new();
    for _ in 0..(16 + a[0] as usize) {
        ds.update(s);
    }
    let sp = repeat_to(ds.finalize(), s.len());

    for i in 0..rounds_n {
        let mut c = H::new();
        if i & 1 == 1 {
            c.update(&pp);
        } else {
            c.update(&a);
        }
        if i % 3 != 0 {
            c.update(&sp);
        }
        if i % 7 != 0 {
            c.update(&pp);
        }
        if i & 1 == 1 {
            c.update(&a);
        } else {
            c.update(&pp);
        }
        a = c.finalize();
    }

    let mut out = format!("${id}$");
    if rounds.is_some() {
        out.push_str(&format!("rounds={rounds_n}$"));
    }
    out.push_str(std::str::from_utf8(s).unwrap_or(""));
    out.push('$');
    if hlen == 64 {
        let mut i = 0;
        let (mut x, mut y, mut z) = (0usize, 21usize, 42usize);
        while i < 21 {
            b64_24(&mut out, a[x], a[y], a[z], 4);
            // The permutation cycles each index by 22 through 0..63.
            let nx = (y + 1) % 63;
            let ny = (z + 1) % 63;
            let nz = (x + 1) % 63;
            x = nx;
            y = ny;
            z = nz;
            i += 1;
        }
        b64_24(&mut out, 0, 0, a[63], 2);
    } else {
        let order: [(usize, usize, usize); 10] = [
            (0, 10, 20),
            (21, 1, 11),
            (12, 22, 2),
            (3, 13, 23),
            (24, 4, 14),
            (15, 25, 5),
            (6, 16, 26),
            (27, 7, 17),
            (18, 28, 8),
            (9, 19, 29),
        ];
        for (x, y, z) in order {
            b64_24(&mut out, a[x], a[y], a[z], 4);
        }
        b64_24(&mut out, 0, a[31], a[30], 3);
    }
    out
}

fn md5_crypt(password: &str, salt: Option<&str>) -> String {
    let p = password.as_bytes();
    let salt_owned;
    let salt = match salt {
        Some(s) => s,
        None => {
            salt_owned = random_salt(8);
            &salt_owned
        }
    };
    let s = &salt.as_bytes()[..salt.len().min(8)];
    let mut ctx = md5::Context::new();
    ctx.consume(p);
    ctx.consume(b"$1$");
    ctx.consume(s);
    let mut alt = md5::Context::new();
    alt.consume(p);
    alt.consume(s);
    alt.consume(p);
    let alt = alt.finalize().0;
    let mut n = p.len();
    while n > 0 {
        ctx.consume(&alt[..n.min(16)]);
        n = n.saturating_sub(16);
    }
    let mut n = p.len();
    while n > 0 {
        if n & 1 == 1 {
            ctx.consume([0u8]);
        } else {
            ctx.consume(&p[..1]);
        }
        n >>= 1;
    }
    let mut fin = ctx.finalize().0;
    for i in 0..1000 {
        let mut c = md5::Context::new();
        if i & 1 == 1 {
            c.consume(p);
        } else {
            c.consume(fin);
        }
        if i % 3 != 0 {
            c.consume(s);
        }
        if i % 7 != 0 {
            c.consume(p);
        }
        if i & 1 == 1 {
            c.consume(fin);
        } else {
            c.consume(p);
        }
        fin = c.finalize().0;
    }
    let mut out = format!("$1${}$", std::str::from_utf8(s).unwrap_or(""));
    for (x, y, z) in [(0, 6, 12), (1, 7, 13), (2, 8, 14), (3, 9, 15), (4, 10, 5)] {
        b64_24(&mut out, fin[x], fin[y], fin[z], 4);
    }
    b64_24(&mut out, 0, 0, fin[11], 2);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_keep_the_offending_value() {
        let e = password_hash("x", "sha512", Some("bad salt"), None).unwrap_err();
        assert_eq!(e, CryptError::SaltChar(' '));
        assert_eq!(
            e.to_string(),
            "password_hash: invalid character ' ' in salt (allowed: ./0-9A-Za-z)"
        );
        let e = password_hash("x", "bcrypt", None, None).unwrap_err();
        assert_eq!(e, CryptError::Scheme("bcrypt".into()));
        assert_eq!(
            e.to_string(),
            "password_hash: unsupported scheme \"bcrypt\" (supported: sha512, sha256, md5)"
        );
    }
}
