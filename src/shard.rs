//! `--shard K/N`: split an inventory's hosts between N runs (cron on several
//! controllers, Kubernetes Indexed Jobs, Nomad batch jobs) so that each host
//! is in exactly one shard, whichever machine computes it and whatever the
//! order or the other hosts of the inventory: a host is in shard
//! `1 + (first 8 bytes of SHA-256(name), big-endian) mod N`. The hash is
//! fixed (not Rust's per-process randomized one), so every controller and
//! every later run agrees; adding a host never moves another.

use std::fmt;
use std::str::FromStr;

use sha2::{Digest, Sha256};

/// Shard `index` (1-based) of `count`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    pub index: u32,
    pub count: u32,
}

impl FromStr for Shard {
    type Err = String;

    fn from_str(s: &str) -> Result<Shard, String> {
        let bad = || format!("`{s}` is not a shard: expected K/N with 1 <= K <= N, such as 2/4");
        let (k, n) = s.split_once('/').ok_or_else(bad)?;
        let index: u32 = k.trim().parse().map_err(|_| bad())?;
        let count: u32 = n.trim().parse().map_err(|_| bad())?;
        if index == 0 || count == 0 || index > count {
            return Err(bad());
        }
        Ok(Shard { index, count })
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

/// The shard (1-based) of `host` among `count`.
pub fn shard_of(host: &str, count: u32) -> u32 {
    let d = Sha256::digest(host.as_bytes());
    let mut b = [0u8; 8];
    b.copy_from_slice(&d[..8]);
    (u64::from_be_bytes(b) % u64::from(count.max(1))) as u32 + 1
}

impl Shard {
    pub fn contains(&self, host: &str) -> bool {
        shard_of(host, self.count) == self.index
    }
}

/// Keep the hosts of `shard` (all when none).
pub fn retain(hosts: &mut Vec<String>, shard: Option<Shard>) {
    if let Some(s) = shard {
        hosts.retain(|h| s.contains(h));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_host_is_in_exactly_one_shard() {
        let hosts: Vec<String> = (1..=1000).map(|i| format!("web{i}.example.org")).collect();
        for n in 1..=7u32 {
            let shards: Vec<Shard> = (1..=n).map(|k| format!("{k}/{n}").parse().unwrap()).collect();
            let mut sizes = vec![0usize; n as usize];
            for h in &hosts {
                let owners: Vec<&Shard> = shards.iter().filter(|s| s.contains(h)).collect();
                assert_eq!(owners.len(), 1, "{h} in {owners:?} of {n}");
                sizes[owners[0].index as usize - 1] += 1;
            }
            // Even enough: each within 25 % of the mean.
            let mean = 1000 / n as usize;
            assert!(
                sizes.iter().all(|&s| s * 4 >= mean * 3 && s * 4 <= mean * 5),
                "{n}: {sizes:?}"
            );
        }
        // Fixed across processes, versions and machines (values from
        // Python's hashlib, the same definition).
        assert_eq!(shard_of("web1.example.org", 4), 2);
        assert_eq!(
            (1..=8).map(|i| shard_of(&format!("h{i}"), 3)).collect::<Vec<_>>(),
            [1, 2, 1, 3, 2, 3, 1, 3]
        );
    }

    #[test]
    fn shard_syntax() {
        assert_eq!("2/4".parse::<Shard>().unwrap(), Shard { index: 2, count: 4 });
        assert_eq!("1/1".parse::<Shard>().unwrap().to_string(), "1/1");
        for bad in ["0/3", "4/3", "1/0", "2", "a/b", "1/-2", ""] {
            let e = bad.parse::<Shard>().unwrap_err();
            assert!(e.contains("expected K/N"), "{bad}: {e}");
        }
    }
}
