//! `rigger vault diff`: what changed in vaulted files, for reviewers, without
//! a decrypted copy on disk.
//!
//! - `rigger vault diff FILE` prints FILE as a reviewer reads it (git's
//!   `textconv`): a vaulted file's plaintext; a YAML file with each inline
//!   `!vault` value's plaintext in its place (marked `!vault (decrypted)`);
//!   any other file as it is.
//! - `rigger vault diff OLD NEW` prints a unified diff of the two readings
//!   (exit 1 when they differ, as diff(1)).
//! - With git's seven external-diff arguments (`PATH OLD-FILE OLD-HEX
//!   OLD-MODE NEW-FILE NEW-HEX NEW-MODE`) it prints the diff labelled
//!   `a/PATH` `b/PATH` and exits 0, as git expects of a `diff.<driver>.command`.
//!
//! Everything goes to standard output only; git must not be told to cache
//! textconv output (`diff.<driver>.cachetextconv`), which would store the
//! plaintext in the repository's notes.

use std::path::Path;

use zeroize::Zeroizing;

use super::format::is_encrypted;
use super::inline;
use super::secrets::Keyring;

/// FILE as a reviewer reads it (see the module's doc).
pub fn reading(path: &Path, keys: &Keyring) -> Result<Zeroizing<String>, String> {
    let what = path.display().to_string();
    if path.as_os_str() == "/dev/null" {
        return Ok(Zeroizing::new(String::new()));
    }
    let data = Zeroizing::new(std::fs::read(path).map_err(|e| format!("cannot read {what}: {e}"))?);
    if is_encrypted(&data) {
        let (plain, _) = keys.decrypt(&data, &what).map_err(|e| e.to_string())?;
        return Ok(Zeroizing::new(String::from_utf8_lossy(&plain).into_owned()));
    }
    let Ok(text) = std::str::from_utf8(&data) else {
        return Ok(Zeroizing::new(String::from_utf8_lossy(&data).into_owned()));
    };
    if !text.contains("!vault") {
        return Ok(Zeroizing::new(text.to_string()));
    }
    // A file that is not YAML (a README quoting `!vault`) reads as it is.
    let Ok(blocks) = inline::find(text, &what) else {
        return Ok(Zeroizing::new(text.to_string()));
    };
    let mut plains = Vec::new();
    for b in &blocks {
        let at = format!("the `!vault` value at {what}:{}", b.line);
        let (p, _) = keys.decrypt(b.envelope.as_bytes(), &at).map_err(|e| e.to_string())?;
        plains.push(Zeroizing::new(String::from_utf8_lossy(&p).into_owned()));
    }
    let mut it = plains.iter();
    let out = inline::replace(text, &blocks, |_| {
        it.next().map(|p| p.as_str().to_string()).unwrap_or_default()
    });
    // Mark the decrypted values on their tag's line.
    let marked = mark_tags(&out, &blocks);
    Ok(Zeroizing::new(marked))
}

fn mark_tags(text: &str, blocks: &[inline::Block]) -> String {
    let lines: std::collections::BTreeSet<usize> = blocks.iter().map(|b| b.line).collect();
    let mut out = String::with_capacity(text.len() + 16 * blocks.len());
    for (i, l) in text.split_inclusive('\n').enumerate() {
        if lines.contains(&(i + 1)) {
            if let Some(p) = l.rfind("!vault") {
                let rest = &l[p + "!vault".len()..];
                let rest = rest.strip_prefix("-encrypted").unwrap_or(rest);
                out.push_str(&l[..p]);
                out.push_str("!vault (decrypted)");
                out.push_str(rest);
                continue;
            }
        }
        out.push_str(l);
    }
    out
}

/// A unified diff of two readings, labelled; empty when they are equal.
pub fn diff(old_label: &str, old: &str, new_label: &str, new: &str) -> String {
    if old == new {
        return String::new();
    }
    let d = similar::TextDiff::from_lines(old, new);
    let mut s = d
        .unified_diff()
        .context_radius(3)
        .header(old_label, new_label)
        .to_string();
    if !s.ends_with('\n') {
        s.push('\n');
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vault::{encrypt, Secret};

    #[test]
    fn inline_values_read_decrypted_in_place_and_diff_shows_only_changes() {
        let d = tempfile::tempdir().unwrap();
        let keys = Keyring::new(vec![Secret::new("default", b"pw".to_vec(), "test")]);
        let value = |s: &str| {
            encrypt(s.as_bytes(), b"pw", None, None)
                .lines()
                .map(|l| format!("  {l}"))
                .collect::<Vec<_>>()
                .join("\n")
        };
        let a = d.path().join("a.yml");
        let b = d.path().join("b.yml");
        std::fs::write(
            &a,
            format!("user: app\npw: !vault |\n{}\nport: 1\n", value("old secret")),
        )
        .unwrap();
        std::fs::write(
            &b,
            format!("user: app\npw: !vault |\n{}\nport: 1\n", value("new secret")),
        )
        .unwrap();
        let ra = reading(&a, &keys).unwrap();
        assert_eq!(
            ra.as_str(),
            "user: app\npw: !vault (decrypted) |\n  old secret\nport: 1\n"
        );
        let rb = reading(&b, &keys).unwrap();
        let out = diff("a/x.yml", &ra, "b/x.yml", &rb);
        assert!(out.contains("-  old secret\n+  new secret\n"), "{out}");
        assert!(!out.contains("-user"), "{out}");
        // The ciphertexts differ anyway (random salts); equal plaintexts give no diff.
        std::fs::write(
            &b,
            format!("user: app\npw: !vault |\n{}\nport: 1\n", value("old secret")),
        )
        .unwrap();
        assert_eq!(diff("a", &ra, "b", &reading(&b, &keys).unwrap()), "");
        // A wrong password names the value.
        let wrong = Keyring::new(vec![Secret::new("default", b"nope".to_vec(), "test")]);
        let e = reading(&a, &wrong).unwrap_err();
        assert!(e.contains("a.yml:2"), "{e}");
    }
}
