//! The relay's bounded tables: what each client exchange became upstream, and back.
//!
//! In: client source + message id (MID) + token; out: the gateway's own upstream MID and token,
//! and the route back. Every table is bounded and its entries expire after the
//! exchange lifetime (observations: after `observe_idle` without a notification), so no
//! sender can grow them without limit; an evicted entry only means an answer is not relayed.
//! The two tables touched by every message (deduplication, routes) are [`Table`]s, the rest
//! moka caches.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU16, AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use bytes::Bytes;
use moka::sync::Cache;

use super::table::Table;
use crate::config::CoapConfig;
use crate::record::SharedPending;

/// A client's message: its source and message id.
pub type Key = (SocketAddr, u16);

/// What became of a client's request, for retransmissions of it (RFC 7252 §4.5).
#[derive(Clone, Debug)]
pub enum Seen {
    /// Forwarded, no answer yet: `upstream` is the datagram we sent (empty while the request
    /// is still being decided), `sent` when; `acked` once the upstream has acknowledged it (a
    /// separate response follows).
    Pending {
        upstream: Bytes,
        sent: std::time::Instant,
        acked: bool,
    },
    /// Answered: the datagram a retransmission gets again.
    Answered(Bytes),
}

/// The way back to the client for one upstream token.
#[derive(Clone, Debug)]
pub struct Route {
    pub client: SocketAddr,
    pub token: Vec<u8>,
    pub mid: u16,
    pub confirmable: bool,
    pub observe: bool,
    /// When the request went upstream.
    pub sent: std::time::Instant,
    /// The request's `rqi` and `rvi` option values, for an answer the gateway makes itself.
    pub rqi: Option<Vec<u8>>,
    pub rvi: Option<Vec<u8>>,
    /// The originator the request was decided for: notifications stop when it is no longer
    /// active.
    pub fr: Option<String>,
    /// The request's record, completed by the upstream's first answer (or its silence).
    pub record: SharedPending,
    /// What the upstream's answer completes (a registration, a deregistration).
    pub follow_up: Option<std::sync::Arc<crate::registration::FollowUp>>,
}

impl Route {
    pub fn key(&self) -> Key {
        (self.client, self.mid)
    }
}

pub struct Tables {
    /// Client message → what became of it (deduplication).
    pub seen: Table<Key, Seen>,
    /// Upstream token → route, for one request/response exchange.
    pub routes: Table<u64, Route>,
    /// Upstream token → route, for an established observation.
    pub observing: Cache<u64, Route>,
    /// Client source + client token → upstream token, so that re-registrations and the
    /// deregistration of an observation reach the upstream with the same token.
    pub observers: Cache<(SocketAddr, Vec<u8>), u64>,
    /// Upstream MID we used → upstream token, to match empty ACKs and RSTs.
    pub upstream_mids: MidRing,
    /// Our confirmable (or observable) message to a client → upstream token, until acknowledged.
    pub to_client: Cache<Key, u64>,
    token_key: u64,
    next_token: AtomicU64,
    next_upstream_mid: AtomicU16,
    next_client_mid: AtomicU16,
}

impl Tables {
    pub fn new(config: &CoapConfig) -> Self {
        let [a, b, c] = random_u64s();
        Tables {
            seen: Table::new(config.max_exchanges, config.exchange_lifetime),
            routes: Table::new(config.max_exchanges, config.exchange_lifetime),
            observing: lru(config.max_observations, Ends::IdleFor(config.observe_idle)),
            observers: lru(config.max_observations, Ends::IdleFor(config.observe_idle)),
            upstream_mids: MidRing::new(),
            to_client: lru(config.max_exchanges, Ends::After(config.exchange_lifetime)),
            token_key: a,
            next_token: AtomicU64::new(b),
            next_upstream_mid: AtomicU16::new(c as u16),
            next_client_mid: AtomicU16::new((c >> 16) as u16),
        }
    }

    /// A fresh upstream token: a counter, scrambled by a bijection so it is not guessable
    /// from the previous one, so unique within 2^64 exchanges.
    pub fn token(&self) -> u64 {
        loop {
            let n = self.next_token.fetch_add(1, Relaxed);
            let token = (n ^ self.token_key).wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ self.token_key;
            // 0 marks an empty slot of the MID ring.
            if token != 0 {
                return token;
            }
        }
    }

    pub fn upstream_mid(&self) -> u16 {
        self.next_upstream_mid.fetch_add(1, Relaxed)
    }

    pub fn client_mid(&self) -> u16 {
        self.next_client_mid.fetch_add(1, Relaxed)
    }

    /// Forgets an observation (deregistered, refused, or cancelled by the client).
    pub fn end_observation(&self, token: u64) {
        if let Some(route) = self.observing.remove(&token) {
            self.observers.invalidate(&(route.client, route.token));
        }
    }
}

/// Our upstream message ids are a 16-bit counter, so the table from MID to token is one slot
/// per MID, overwritten when the counter comes round: bounded by construction, no hashing.
pub struct MidRing {
    slots: Box<[AtomicU64]>,
}

impl MidRing {
    fn new() -> Self {
        MidRing {
            slots: (0..=u16::MAX).map(|_| AtomicU64::new(0)).collect(),
        }
    }

    pub fn insert(&self, mid: u16, token: u64) {
        if let Some(slot) = self.slots.get(usize::from(mid)) {
            slot.store(token, Relaxed);
        }
    }

    pub fn get(&self, mid: &u16) -> Option<u64> {
        let token = self.slots.get(usize::from(*mid))?.load(Relaxed);
        (token != 0).then_some(token)
    }
}

/// When an entry of an [`lru`] table ends, if it is not evicted before.
enum Ends {
    /// This long after it was made (an exchange: the exchange lifetime).
    After(Duration),
    /// Once unused this long (an observation: `observe_idle`).
    IdleFor(Duration),
}

/// Exchange and observation tables forget the oldest entries first (LRU): for deduplication,
/// matching and notifications, the newest exchanges are the ones that matter.
fn lru<K, V>(capacity: u64, ends: Ends) -> Cache<K, V>
where
    K: std::hash::Hash + Eq + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    let tables = Cache::builder()
        .max_capacity(capacity)
        .eviction_policy(moka::policy::EvictionPolicy::lru());
    match ends {
        Ends::After(lifetime) => tables.time_to_live(lifetime),
        Ends::IdleFor(idle) => tables.time_to_idle(idle),
    }
    .build()
}

/// The token as our own 8-byte tokens are written, or `None` for any other.
pub fn token_of(bytes: &[u8]) -> Option<u64> {
    <[u8; 8]>::try_from(bytes).ok().map(u64::from_be_bytes)
}

fn random_u64s() -> [u64; 3] {
    use ring::rand::{SecureRandom, SystemRandom};
    let mut bytes = [0u8; 24];
    // Without randomness the counters still work; they are only easier to guess.
    let _ = SystemRandom::new().fill(&mut bytes);
    let word = |i: usize| {
        let mut w = [0u8; 8];
        w.copy_from_slice(&bytes[i * 8..i * 8 + 8]);
        u64::from_be_bytes(w)
    };
    [word(0), word(1), word(2)]
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    #[test]
    fn tokens_do_not_repeat_and_round_trip() {
        let tables = Tables::new(&test_config());
        let tokens: std::collections::HashSet<u64> = (0..10_000).map(|_| tables.token()).collect();
        assert_eq!(tokens.len(), 10_000);
        let t = tables.token();
        assert_eq!(token_of(&t.to_be_bytes()), Some(t));
        assert_eq!(token_of(&[1, 2, 3]), None);
    }

    #[test]
    fn mid_ring_keeps_the_latest_token_per_mid() {
        let ring = MidRing::new();
        assert_eq!(ring.get(&7), None);
        ring.insert(7, 42);
        ring.insert(7, 43);
        ring.insert(u16::MAX, 1);
        assert_eq!((ring.get(&7), ring.get(&u16::MAX)), (Some(43), Some(1)));
    }

    #[test]
    fn a_full_dedup_table_keeps_the_newest_exchanges() {
        let mut config = test_config();
        config.max_exchanges = 100;
        let tables = Tables::new(&config);
        let addr = SocketAddr::from(([127, 0, 0, 1], 1));
        for mid in 0..1000u16 {
            tables
                .seen
                .insert((addr, mid), Seen::Answered(Bytes::new()));
        }
        assert!(tables.seen.get(&(addr, 999)).is_some());
        assert!(tables.seen.get(&(addr, 0)).is_none());
    }

    pub(crate) fn test_config() -> CoapConfig {
        CoapConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            upstream: SocketAddr::from(([127, 0, 0, 1], 5683)),
            legacy_options: false,
            forward_tokens: false,
            exchange_lifetime: std::time::Duration::from_secs(247),
            max_datagram_bytes: 1152,
            max_exchanges: 1000,
            max_observations: 100,
            observe_idle: std::time::Duration::from_secs(3600),
            rate_per_sec: 100,
            rate_burst: 100,
            max_sources: 100,
            amplification_factor: 3,
            echo_validity: std::time::Duration::from_secs(300),
            echo: crate::config::EchoMode::Require,
            trusted_sources: Vec::new(),
            upstream_timeout: std::time::Duration::from_secs(5),
        }
    }
}
