//! `rigger watch` instances in a group (`group:` in the configuration, a
//! PostgreSQL state): each instance heartbeats in `watch_instances` and
//! owns hosts through rows of `watch_leases` (owner, expiry), renewed every
//! quarter of the lease period. A host belongs to the live instance that
//! rendezvous hashing picks for it (the highest hash of instance id and host
//! name), so the hosts spread evenly and a joining or leaving instance moves
//! only its share. An instance claims a host only when the host's lease is
//! free, expired or its own: a rebalanced host passes when its old owner
//! releases it (at that owner's next renewal), a dead owner's hosts when its
//! leases expire.
//!
//! Timing (L = lease): renewals every L/4; a lease is valid for L/2 after
//! its renewal and an instance is live while its heartbeat is younger than
//! L/2. A dead instance's last renewal was at most L/4 before it died, its
//! leases expire at most L/2 after that, and the next renewal of a
//! survivor (at most L/4 later) claims them: within 3L/4 of the death,
//! which leaves a quarter of the lease for renewals that run late on a
//! loaded machine. An instance that cannot renew stops collecting a host
//! when its own lease of it runs out, before anyone else may claim it.
//!
//! Times are the database server's clock (`clock_timestamp()`), so the
//! instances' clocks need not agree.

use std::collections::BTreeSet;
use std::time::Duration;

use sha2::{Digest, Sha256};

use super::store::{Db, StoreError};
use crate::state::{params, Exec};

/// One instance as the group sees it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Member {
    pub id: String,
    /// Seconds since its last heartbeat.
    pub heartbeat_age: f64,
    /// Hosts it holds an unexpired lease of.
    pub hosts: i64,
}

/// What one renewal found.
#[derive(Debug, Clone, Default)]
pub struct Round {
    /// The hosts this instance holds a valid lease of.
    pub owned: BTreeSet<String>,
    /// The live instances (this one included), by id.
    pub members: Vec<Member>,
    /// Database time of the renewal.
    pub now: f64,
}

pub struct Membership {
    pub group: String,
    pub id: String,
    pub lease: Duration,
}

/// The default instance id: host name, process id and start time (unique
/// on a machine and over restarts).
pub fn default_instance_id() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "localhost".into());
    format!("{host}:{}:{}", std::process::id(), super::collect::now_secs() as u64)
}

/// Rendezvous (highest random weight) hashing: the instance of `live` that
/// owns `host`.
pub fn owner_of<'a>(host: &str, live: &'a [String]) -> Option<&'a String> {
    live.iter().max_by_key(|id| {
        let mut h = Sha256::new();
        h.update(id.as_bytes());
        h.update([0]);
        h.update(host.as_bytes());
        let d = h.finalize();
        (
            u64::from_be_bytes([d[0], d[1], d[2], d[3], d[4], d[5], d[6], d[7]]),
            (*id).clone(),
        )
    })
}

impl Membership {
    fn valid(&self) -> f64 {
        self.lease.as_secs_f64() / 2.0
    }

    /// Heartbeat, then release what another live instance should own,
    /// renew and claim what this one should, all in one transaction.
    pub fn renew(&self, db: &Db, hosts: &[String]) -> Result<Round, StoreError> {
        let valid = self.valid();
        let (g, me) = (self.group.as_str(), self.id.as_str());
        db.conn.transaction(|tx| -> Result<Round, StoreError> {
            let now = tx
                .query_opt("SELECT EXTRACT(EPOCH FROM clock_timestamp())::float8", params![], |r| {
                    r.f64(0)
                })?
                .unwrap_or(0.0);
            tx.execute(
                "INSERT INTO watch_instances(grp, id, heartbeat, started) VALUES (?1, ?2, ?3, ?3) \
                 ON CONFLICT (grp, id) DO UPDATE SET heartbeat = ?3",
                params![g, me, now],
            )?;
            // Long-dead instances and leases of hosts nobody watches any more.
            let gone = now - 10.0 * self.lease.as_secs_f64();
            tx.execute(
                "DELETE FROM watch_instances WHERE grp = ?1 AND heartbeat < ?2",
                params![g, gone],
            )?;
            tx.execute(
                "DELETE FROM watch_leases WHERE grp = ?1 AND expires < ?2",
                params![g, gone],
            )?;
            let live: Vec<String> = tx.query_map(
                "SELECT id FROM watch_instances WHERE grp = ?1 AND heartbeat >= ?2 ORDER BY id",
                params![g, now - valid],
                |r| r.text(0),
            )?;
            let mine: Vec<&str> = hosts
                .iter()
                .filter(|h| owner_of(h, &live).is_some_and(|o| o == me))
                .map(String::as_str)
                .collect();
            let mine = mine.join("\n");
            // Host names hold no newline (inventory names are one word).
            tx.execute(
                "DELETE FROM watch_leases WHERE grp = ?1 AND owner = ?2 \
                 AND NOT (host = ANY(string_to_array(?3, chr(10))))",
                params![g, me, &mine],
            )?;
            tx.execute(
                "INSERT INTO watch_leases(grp, host, owner, expires) \
                 SELECT ?1, h, ?2, ?4 FROM unnest(string_to_array(?3, chr(10))) AS h \
                 ON CONFLICT (grp, host) DO UPDATE SET owner = EXCLUDED.owner, expires = EXCLUDED.expires \
                 WHERE watch_leases.owner = EXCLUDED.owner OR watch_leases.expires < ?5",
                params![g, me, &mine, now + valid, now],
            )?;
            let owned = tx
                .query_map(
                    "SELECT host FROM watch_leases WHERE grp = ?1 AND owner = ?2 AND expires > ?3",
                    params![g, me, now],
                    |r| r.text(0),
                )?
                .into_iter()
                .collect();
            let members = tx.query_map(
                "SELECT i.id, ?3 - i.heartbeat, \
                 (SELECT COUNT(*) FROM watch_leases l WHERE l.grp = i.grp AND l.owner = i.id AND l.expires > ?3) \
                 FROM watch_instances i WHERE i.grp = ?1 AND i.heartbeat >= ?2 ORDER BY i.id",
                params![g, now - valid, now],
                |r| {
                    Ok(Member {
                        id: r.text(0)?,
                        heartbeat_age: r.f64(1)?,
                        hosts: r.i64(2)?,
                    })
                },
            )?;
            Ok(Round { owned, members, now })
        })
    }

    /// Leave the group (a clean stop): the hosts pass to the others at
    /// their next renewal instead of after the lease.
    pub fn leave(&self, db: &Db) -> Result<(), StoreError> {
        let (g, me) = (self.group.as_str(), self.id.as_str());
        db.conn.transaction(|tx| -> Result<(), StoreError> {
            tx.execute("DELETE FROM watch_leases WHERE grp = ?1 AND owner = ?2", params![g, me])?;
            tx.execute("DELETE FROM watch_instances WHERE grp = ?1 AND id = ?2", params![g, me])?;
            Ok(())
        })
    }

    /// How long an owned host may be collected after a renewal that
    /// succeeded, by this machine's clock.
    pub fn valid_for(&self) -> Duration {
        self.lease / 2
    }

    /// The renewal period.
    pub fn period(&self) -> Duration {
        self.lease / 4
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rendezvous_spreads_hosts_and_moves_only_a_leavers_share() {
        let hosts: Vec<String> = (0..300).map(|i| format!("web{i:03}")).collect();
        let three: Vec<String> = ["a", "b", "c"].iter().map(|s| s.to_string()).collect();
        let two: Vec<String> = ["a", "b"].iter().map(|s| s.to_string()).collect();
        let mut counts = std::collections::BTreeMap::new();
        for h in &hosts {
            *counts.entry(owner_of(h, &three).unwrap().clone()).or_insert(0) += 1;
        }
        // Balanced: each of the three holds roughly a third.
        for n in counts.values() {
            assert!((70..=130).contains(n), "{counts:?}");
        }
        // When c leaves, only c's hosts move.
        for h in &hosts {
            let before = owner_of(h, &three).unwrap();
            let after = owner_of(h, &two).unwrap();
            if before != "c" {
                assert_eq!(before, after, "{h}");
            }
        }
        assert_eq!(owner_of("x", &[]), None);
    }
}
