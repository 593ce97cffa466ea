//! Sizes as users write them (`10G`, `512MiB`, `1.5T`), for module options,
//! command-line flags and inventory settings alike.

/// Why a size cannot be read; both keep the text as given.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SizeError {
    #[error("invalid size `{0}`")]
    Number(String),
    /// `unit` is lower-cased, as the parser compares it.
    #[error("invalid size unit `{unit}` in `{input}` (use K, M, G, T or P)")]
    Unit { unit: String, input: String },
}

/// A size given as `10G`, `512M`, `1.5T`, `2GiB`, `4096` (bytes) or
/// `4096B`, in bytes, rounded to the nearest byte. Units are binary
/// (K = 1024), as LVM, ZFS, parted and libvirt print them.
pub fn parse_size(s: &str) -> Result<u64, SizeError> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit() && c != '.').unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: f64 = num.parse().map_err(|_| SizeError::Number(s.to_string()))?;
    let mult: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        "t" | "tb" | "tib" => 1 << 40,
        "p" | "pb" | "pib" => 1 << 50,
        other => {
            return Err(SizeError::Unit {
                unit: other.to_string(),
                input: s.to_string(),
            })
        }
    };
    Ok((n * mult as f64).round() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("10M"), Ok(10 << 20));
        assert_eq!(parse_size("1.5G"), Ok(3 << 29));
        assert_eq!(parse_size("512MiB"), Ok(512 << 20));
        assert_eq!(parse_size("1.5K"), Ok(1536));
        assert_eq!(parse_size("4096"), Ok(4096));
        assert_eq!(parse_size("4096B"), Ok(4096));
        assert_eq!(parse_size("2P"), Ok(2 << 50));
        assert!(parse_size("none").is_err());
        assert!(parse_size("3 parsecs").is_err());
    }

    #[test]
    fn errors_keep_the_input() {
        assert_eq!(parse_size("none"), Err(SizeError::Number("none".into())));
        assert_eq!(parse_size("none").unwrap_err().to_string(), "invalid size `none`");
        let e = parse_size(" 3 Parsecs").unwrap_err();
        assert_eq!(
            e,
            SizeError::Unit {
                unit: "parsecs".into(),
                input: " 3 Parsecs".into()
            }
        );
        assert_eq!(
            e.to_string(),
            "invalid size unit `parsecs` in ` 3 Parsecs` (use K, M, G, T or P)"
        );
    }
}
