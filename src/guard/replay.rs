//! Replay protection by timestamp (seed 7.6): `ot` must lie within `max_age` in the past and
//! `max_skew` in the future, and an (`fr`, `rqi`) pair is accepted once within that time.
//!
//! In: a primitive with `ot`, `now`, `[checks.replay]`. Out: `Ok(())` once per (fr, rqi), or a
//! denial. Memory is bounded: at most `ids_per_node` remembered ids per originator and
//! `ids_total` in all; a full set refuses new ids (fail closed) until old ones expire, so a
//! flooding node locks out only itself. Ids are remembered as keyed 64-bit hashes (SipHash with
//! a per-process random key: a sender cannot aim for collisions), in shards to spread locking.

use std::collections::{HashMap, HashSet, VecDeque};
use std::hash::{BuildHasher, BuildHasherDefault, Hasher, RandomState};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub use super::timestamp::{format_ot, parse_ot};
use super::{Denial, Reason, Stage};
use crate::primitive::Primitive;

/// `[checks.replay]`, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplayConfig {
    /// Oldest `ot` accepted, and how long a request id is remembered.
    pub max_age: Duration,
    /// How far in the future an `ot` may lie.
    pub max_skew: Duration,
    pub ids_per_node: usize,
    pub ids_total: usize,
    /// Sequence-number window, in numbers (RFC 6479; a multiple of 64, at least 1024).
    pub window: u64,
    /// Sequence numbers reserved per persisted high-water mark.
    pub lease: u64,
}

impl Default for ReplayConfig {
    fn default() -> Self {
        ReplayConfig {
            max_age: Duration::from_secs(300),
            max_skew: Duration::from_secs(30),
            ids_per_node: 10_000,
            ids_total: 1_000_000,
            window: 1024,
            lease: 1024,
        }
    }
}

const SHARDS: usize = 16;

pub struct Timestamps {
    config: ReplayConfig,
    hasher: RandomState,
    shards: Box<[Mutex<Shard>]>,
    total: AtomicUsize,
}

/// Keys that are already keyed hashes need no second hash.
#[derive(Default)]
struct Prehashed(u64);

impl Hasher for Prehashed {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Only u64 keys are hashed here; fold anything else in so it still works.
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

type HashedSet = HashSet<u64, BuildHasherDefault<Prehashed>>;
type HashedMap<V> = HashMap<u64, V, BuildHasherDefault<Prehashed>>;

/// Originators by keyed hash of their id (a collision would only merge two senders' id sets).
#[derive(Default)]
struct Shard {
    nodes: HashedMap<Recent>,
}

/// One originator's recent request ids, with expiry times in arrival order.
#[derive(Default)]
struct Recent {
    ids: HashedSet,
    expiry: VecDeque<(u64, u64)>,
}

impl Timestamps {
    pub fn new(config: &ReplayConfig) -> Self {
        Timestamps {
            config: config.clone(),
            hasher: RandomState::new(),
            shards: (0..SHARDS).map(|_| Mutex::default()).collect(),
            total: AtomicUsize::new(0),
        }
    }

    /// Checks `p.ot` and records (fr, rqi). `p.ot` must be present.
    pub fn check(&self, p: &Primitive, now: SystemTime) -> Result<(), Denial> {
        let deny = |reason: Reason| Denial::new(Stage::Replay, reason);
        let ot =
            p.ot.as_deref()
                .ok_or_else(|| deny(Reason::TimestampMissing))?;
        let sent =
            parse_ot(ot).ok_or_else(|| deny(Reason::TimestampUnreadable { ot: ot.to_owned() }))?;
        let now = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let (age, skew) = (
            self.config.max_age.as_secs(),
            self.config.max_skew.as_secs(),
        );
        if sent.saturating_add(age) < now {
            return Err(deny(Reason::TimestampStale {
                ot: ot.to_owned(),
                max_age_s: age,
            }));
        }
        if sent > now.saturating_add(skew) {
            return Err(deny(Reason::TimestampAhead {
                ot: ot.to_owned(),
                max_skew_s: skew,
            }));
        }
        self.remember(&p.fr, &p.rqi, now, now + age + skew)
    }

    fn remember(&self, fr: &str, rqi: &str, now: u64, expires: u64) -> Result<(), Denial> {
        let node = self.hasher.hash_one(fr);
        let id = self.hasher.hash_one((fr, rqi));
        let mut shard = self.shards[(node as usize) % SHARDS]
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let recent = shard.nodes.entry(node).or_default();
        let expired = recent.prune(now);
        self.total.fetch_sub(expired, Ordering::Relaxed);
        if recent.ids.contains(&id) {
            return Err(Denial::new(
                Stage::Replay,
                Reason::RequestIdSeen {
                    fr: fr.to_owned(),
                    rqi: rqi.to_owned(),
                },
            ));
        }
        if recent.ids.len() >= self.config.ids_per_node {
            return Err(Denial::new(
                Stage::Replay,
                Reason::ReplayNodeFull {
                    fr: fr.to_owned(),
                    ids: recent.ids.len(),
                },
            ));
        }
        if self.total.fetch_add(1, Ordering::Relaxed) >= self.config.ids_total {
            self.total.fetch_sub(1, Ordering::Relaxed);
            return Err(Denial::new(Stage::Replay, Reason::ReplayFull));
        }
        recent.ids.insert(id);
        recent.expiry.push_back((expires, id));
        Ok(())
    }

    /// Ids remembered now, in all (for tests and metrics).
    pub fn remembered(&self) -> usize {
        self.total.load(Ordering::Relaxed)
    }
}

impl Recent {
    /// Forgets ids whose time is up; returns how many.
    fn prune(&mut self, now: u64) -> usize {
        let mut n = 0;
        while let Some(&(expires, id)) = self.expiry.front() {
            // Kept through its last second: at `expires` an `ot` from the same first sighting
            // can still be just fresh enough.
            if expires >= now {
                break;
            }
            self.expiry.pop_front();
            self.ids.remove(&id);
            n += 1;
        }
        n
    }
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;
    use std::time::Duration;

    use proptest::prelude::*;

    use super::*;
    use crate::primitive::{Operation, Peer, Protocol};

    const NOW: u64 = 1_795_000_000;

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    fn request(fr: &str, rqi: &str, ot: Option<String>) -> Primitive {
        let peer = Peer::unauthenticated(SocketAddr::from(([127, 0, 0, 1], 1)), Protocol::Http);
        Primitive {
            rvi: None,
            ot,
            ..Primitive::new(Operation::Retrieve, "/id-in/cse-in", fr, rqi, peer)
        }
    }

    fn config(per_node: usize, total: usize) -> ReplayConfig {
        ReplayConfig {
            ids_per_node: per_node,
            ids_total: total,
            ..ReplayConfig::default()
        }
    }

    #[test]
    fn timestamps_round_trip_and_reject_nonsense() {
        assert_eq!(parse_ot("19700101T000000"), Some(0));
        assert_eq!(parse_ot("20000229T235959,5"), Some(951_868_799));
        assert_eq!(format_ot(951_868_799), "20000229T235959");
        assert_eq!(parse_ot(&format_ot(NOW)), Some(NOW));
        for bad in [
            "",
            "2026-11-28T12:00:00",
            "20261128 120000",
            "20260230T000000",
            "20261128T240000",
            "19691231T235959",
            "20261128T120000,",
            "20261128T12000x",
        ] {
            assert_eq!(parse_ot(bad), None, "{bad}");
        }
    }

    #[test]
    fn stale_future_and_repeated_requests_are_denied() {
        let t = Timestamps::new(&ReplayConfig::default());
        let fresh = request("C1", "r1", Some(format_ot(NOW)));
        assert!(t.check(&fresh, at(NOW)).is_ok());
        assert!(matches!(
            t.check(&fresh, at(NOW)).unwrap_err().reason,
            Reason::RequestIdSeen { .. }
        ));
        let stale = request("C1", "r2", Some(format_ot(NOW - 301)));
        assert!(matches!(
            t.check(&stale, at(NOW)).unwrap_err().reason,
            Reason::TimestampStale { max_age_s: 300, .. }
        ));
        let future = request("C1", "r3", Some(format_ot(NOW + 31)));
        assert!(matches!(
            t.check(&future, at(NOW)).unwrap_err().reason,
            Reason::TimestampAhead { max_skew_s: 30, .. }
        ));
        // Same rqi, another originator: a different request.
        assert!(t
            .check(&request("C2", "r1", Some(format_ot(NOW))), at(NOW))
            .is_ok());
        // The edge second: an ot sent ahead by the full skew, replayed exactly when it turns
        // stale-but-not-yet, is still remembered.
        let ahead = request("C4", "edge", Some(format_ot(NOW + 30)));
        assert!(t.check(&ahead, at(NOW)).is_ok());
        assert!(matches!(
            t.check(&ahead, at(NOW + 330)).unwrap_err().reason,
            Reason::RequestIdSeen { .. }
        ));
        // Legitimate: a new id at the edge of the window.
        assert!(t
            .check(&request("C1", "r4", Some(format_ot(NOW - 300))), at(NOW))
            .is_ok());
    }

    #[test]
    fn ids_expire_after_the_window_and_caps_hold() {
        let t = Timestamps::new(&config(2, 3));
        let ot = Some(format_ot(NOW));
        assert!(t.check(&request("C1", "a", ot.clone()), at(NOW)).is_ok());
        assert!(t.check(&request("C1", "b", ot.clone()), at(NOW)).is_ok());
        // Per-node cap: C1 is full, C2 still served.
        assert!(matches!(
            t.check(&request("C1", "c", ot.clone()), at(NOW))
                .unwrap_err()
                .reason,
            Reason::ReplayNodeFull { ids: 2, .. }
        ));
        assert!(t.check(&request("C2", "a", ot.clone()), at(NOW)).is_ok());
        // Global cap.
        assert_eq!(
            t.check(&request("C3", "a", ot.clone()), at(NOW))
                .unwrap_err()
                .reason,
            Reason::ReplayFull
        );
        assert_eq!(t.remembered(), 3);
        // After max_age + max_skew everything is forgotten, and C1 is served again.
        let later = NOW + 331;
        assert!(t
            .check(&request("C1", "c", Some(format_ot(later))), at(later))
            .is_ok());
        assert_eq!(t.remembered(), 2);
    }

    #[test]
    fn concurrent_senders_get_one_acceptance_per_id() {
        let t = std::sync::Arc::new(Timestamps::new(&ReplayConfig::default()));
        let accepted: usize = std::thread::scope(|s| {
            let handles: Vec<_> = (0..4)
                .map(|_| {
                    let t = t.clone();
                    s.spawn(move || {
                        (0..500)
                            .filter(|i| {
                                t.check(
                                    &request("C1", &format!("r{i}"), Some(format_ot(NOW))),
                                    at(NOW),
                                )
                                .is_ok()
                            })
                            .count()
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).sum()
        });
        assert_eq!(accepted, 500);
    }

    proptest! {
        #[test]
        fn an_id_is_accepted_at_most_once(ids in prop::collection::vec((0u8..3, 0u8..20), 1..200)) {
            let t = Timestamps::new(&ReplayConfig::default());
            let mut accepted = std::collections::HashSet::new();
            for (fr, rqi) in ids {
                let p = request(&format!("C{fr}"), &format!("r{rqi}"), Some(format_ot(NOW)));
                let ok = t.check(&p, at(NOW)).is_ok();
                prop_assert_eq!(ok, accepted.insert((fr, rqi)));
            }
        }

        #[test]
        fn the_timestamp_parser_never_panics(text in "\\PC{0,24}") {
            let _ = parse_ot(&text);
        }
    }
}
