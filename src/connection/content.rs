//! The content of an upload: the size and digest it must have when it
//! arrives ([`ContentSum`]), and the tag that names its temp files after the
//! destination ([`temp_tag`]). Shared by the shell and the SFTP uploads.

use std::path::Path;

use super::error::ConnError;

/// What the content of an upload must be when it arrives: the upload
/// script checks both on the host before it renames anything.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContentSum {
    pub size: u64,
    /// SHA-1, lower-case hex (what `sha1sum` prints, GNU and BusyBox alike).
    pub sha1: String,
}

impl ContentSum {
    pub fn of_bytes(data: &[u8]) -> Self {
        use sha1::{Digest, Sha1};
        ContentSum {
            size: data.len() as u64,
            sha1: hex(&Sha1::digest(data)),
        }
    }

    /// The sum of a local file, read once in blocks (blocking: call it
    /// from `spawn_blocking`).
    pub fn of_file(path: &Path) -> std::io::Result<Self> {
        use sha1::{Digest, Sha1};
        use std::io::Read;
        let mut f = std::fs::File::open(path)?;
        let mut hasher = Sha1::new();
        let mut size = 0u64;
        let mut buf = vec![0u8; 256 * 1024];
        loop {
            let n = match f.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            hasher.update(&buf[..n]);
            size += n as u64;
        }
        Ok(ContentSum {
            size,
            sha1: hex(&hasher.finalize()),
        })
    }

    /// [`ContentSum::of_file`] on a blocking thread.
    pub async fn of_file_async(path: &Path) -> Result<Self, ConnError> {
        let owned = path.to_path_buf();
        tokio::task::spawn_blocking(move || ContentSum::of_file(&owned))
            .await
            .map_err(|e| ConnError::Io(format!("hashing {} was interrupted: {e}", path.display())))?
            .map_err(|e| ConnError::Io(format!("cannot read {}: {e}", path.display())))
    }
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes.iter().fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// The prefix of an upload's temp files: `.rigger-tmp-TAG.` followed by 16
/// random hex digits, in the destination's directory. The tag is the
/// destination's file name, so a temp file left by a killed run tells what
/// it was for, and the next upload to the same destination (and only that
/// one: the random part has a fixed length) recognises it as its own and
/// removes it. A name too long to fit in a file name with the prefix is cut
/// and followed by a hash of the whole name.
pub fn temp_tag(dest: &str) -> String {
    let base = dest.rsplit('/').next().unwrap_or(dest);
    if base.len() <= 200 {
        return base.to_string();
    }
    let mut cut = 100;
    while !base.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}~{}", &base[..cut], &ContentSum::of_bytes(base.as_bytes()).sha1[..16])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temp_tags_name_the_destination_and_fit_a_file_name() {
        assert_eq!(temp_tag("/etc/app.conf"), "app.conf");
        assert_eq!(temp_tag("rel"), "rel");
        let long = format!("/srv/{}", "ä".repeat(150));
        let tag = temp_tag(&long);
        assert!(tag.len() < 200 && tag.starts_with('ä') && tag.contains('~'), "{tag}");
        assert_ne!(tag, temp_tag(&format!("/srv/{}b", "ä".repeat(150))));
    }
}
