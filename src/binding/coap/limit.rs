//! Per-source defences against flooding and amplification.
//!
//! [`RateLimit`]: a token bucket per source address (IP and port) in a bounded cache; a
//! datagram over the limit is dropped before it is parsed. [`Echo`]: stateless address
//! validation (RFC 9175 §2.4): a challenge is `time ‖ HMAC(key, time ‖ address)[..8]`, valid
//! for [`ECHO_FRESH_SECS`]; a source that returns a fresh one is validated for
//! `echo_validity`. Only validated sources get anything but small answers. A source in
//! `trusted_sources`, and every source with `echo = "off"`, counts as validated without a
//! round trip (the operator's explicit choice; docs/coap.md says what it exposes).

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use moka::sync::Cache;

use crate::config::{CoapConfig, EchoMode};
use crate::guard::plausibility::Cidr;
use crate::security::mac::{MacKey, TAG_BYTES};
use crate::security::Secret;

/// How long an Echo challenge may be answered.
pub const ECHO_FRESH_SECS: u32 = 60;
/// Length of an Echo value: 4 bytes of time, 8 of MAC.
pub const ECHO_BYTES: usize = 12;

struct Bucket {
    tokens: f64,
    at: Instant,
}

pub struct RateLimit {
    buckets: Cache<SocketAddr, Arc<Mutex<Bucket>>>,
    per_sec: f64,
    burst: f64,
}

impl RateLimit {
    pub fn new(config: &CoapConfig) -> Self {
        RateLimit {
            buckets: Cache::builder()
                .max_capacity(config.max_sources)
                .time_to_idle(std::time::Duration::from_secs(60))
                .build(),
            per_sec: f64::from(config.rate_per_sec),
            burst: f64::from(config.rate_burst),
        }
    }

    /// Takes one token from `source`'s bucket; `false` when it is empty.
    pub fn admit(&self, source: SocketAddr, now: Instant) -> bool {
        let burst = self.burst;
        let bucket = self.buckets.get_with(source, || {
            Arc::new(Mutex::new(Bucket {
                tokens: burst,
                at: now,
            }))
        });
        let Ok(mut b) = bucket.lock() else {
            return false;
        };
        let elapsed = now.saturating_duration_since(b.at).as_secs_f64();
        b.tokens = (b.tokens + elapsed * self.per_sec).min(self.burst);
        b.at = now;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

pub struct Echo {
    key: MacKey,
    validated: Cache<SocketAddr, ()>,
    off: bool,
    trusted: Vec<Cidr>,
}

impl Echo {
    /// A validator with a fresh random key; fails only when the system has no randomness.
    pub fn new(config: &CoapConfig) -> Result<Self, ring::error::Unspecified> {
        use ring::rand::{SecureRandom, SystemRandom};
        let mut secret = [0u8; 32];
        SystemRandom::new().fill(&mut secret)?;
        Ok(Echo {
            key: MacKey::new(&Secret::new(&secret)),
            validated: Cache::builder()
                .max_capacity(config.max_sources)
                .time_to_live(config.echo_validity)
                .build(),
            off: config.echo == EchoMode::Off,
            trusted: config.trusted_sources.clone(),
        })
    }

    /// Whether `source` may get full answers and have its requests decided: Echo is off, the
    /// source lies in a trusted range, or it returned a challenge within `echo_validity`.
    pub fn is_validated(&self, source: SocketAddr) -> bool {
        self.off
            || self.validated.contains_key(&source)
            || self.trusted.iter().any(|range| range.contains(source.ip()))
    }

    /// A fresh challenge for `source`.
    pub fn challenge(&self, source: SocketAddr) -> [u8; ECHO_BYTES] {
        self.challenge_at(source, unix_secs())
    }

    /// Checks `value` against `source`; a fresh, matching value validates the source.
    pub fn answer(&self, source: SocketAddr, value: &[u8]) -> bool {
        let ok = self.verify_at(source, value, unix_secs());
        if ok {
            self.validated.insert(source, ());
        }
        ok
    }

    fn challenge_at(&self, source: SocketAddr, now: u32) -> [u8; ECHO_BYTES] {
        let mut value = [0u8; ECHO_BYTES];
        value[..4].copy_from_slice(&now.to_be_bytes());
        let tag = self.tag(source, now);
        value[4..].copy_from_slice(&tag[..ECHO_BYTES - 4]);
        value
    }

    fn verify_at(&self, source: SocketAddr, value: &[u8], now: u32) -> bool {
        let Ok(value) = <[u8; ECHO_BYTES]>::try_from(value) else {
            return false;
        };
        let sent = u32::from_be_bytes([value[0], value[1], value[2], value[3]]);
        if sent > now || now - sent > ECHO_FRESH_SECS {
            return false;
        }
        let expected = self.challenge_at(source, sent);
        // Constant time: the comparison does not stop at the first difference.
        expected
            .iter()
            .zip(value.iter())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
    }

    fn tag(&self, source: SocketAddr, time: u32) -> [u8; TAG_BYTES] {
        self.key
            .sign_parts(&[&time.to_be_bytes(), source.to_string().as_bytes()])
    }
}

fn unix_secs() -> u32 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u32::try_from(d.as_secs()).unwrap_or(u32::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::binding::coap::exchange::tests::test_config;

    fn addr(port: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], port))
    }

    #[test]
    fn bucket_admits_its_burst_then_refills_at_its_rate() {
        let mut config = test_config();
        config.rate_burst = 3;
        config.rate_per_sec = 10;
        let limit = RateLimit::new(&config);
        let t0 = Instant::now();
        let admitted = (0..5).filter(|_| limit.admit(addr(1), t0)).count();
        assert_eq!(admitted, 3);
        assert!(
            limit.admit(addr(2), t0),
            "another source has its own bucket"
        );
        assert!(!limit.admit(addr(1), t0));
        assert!(limit.admit(addr(1), t0 + std::time::Duration::from_millis(100)));
    }

    #[test]
    fn echo_is_bound_to_the_source_and_expires() {
        let echo = Echo::new(&test_config()).unwrap();
        let value = echo.challenge_at(addr(1), 1000);
        assert!(echo.verify_at(addr(1), &value, 1000 + ECHO_FRESH_SECS));
        assert!(!echo.verify_at(addr(2), &value, 1000), "other source");
        assert!(
            !echo.verify_at(addr(1), &value, 1001 + ECHO_FRESH_SECS),
            "stale"
        );
        assert!(!echo.verify_at(addr(1), &value, 999), "from the future");
        let mut forged = value;
        forged[11] ^= 1;
        assert!(!echo.verify_at(addr(1), &forged, 1000));
        assert!(!echo.verify_at(addr(1), &value[..11], 1000));
    }

    #[test]
    fn a_fresh_answer_validates_the_source() {
        let echo = Echo::new(&test_config()).unwrap();
        assert!(!echo.is_validated(addr(1)));
        let value = echo.challenge(addr(1));
        assert!(echo.answer(addr(1), &value));
        assert!(echo.is_validated(addr(1)));
        assert!(!echo.is_validated(addr(2)));
    }

    #[test]
    fn trusted_ranges_are_validated_without_echo_and_others_are_not() {
        let mut config = test_config();
        config.trusted_sources = vec![Cidr::parse("127.0.0.0/24").unwrap()];
        let echo = Echo::new(&config).unwrap();
        assert!(echo.is_validated(addr(1)));
        assert!(echo.is_validated(SocketAddr::from(([127, 0, 0, 255], 9))));
        assert!(!echo.is_validated(SocketAddr::from(([127, 0, 1, 1], 9))));
        assert!(!echo.is_validated(SocketAddr::from(([10, 0, 0, 1], 9))));
        let mapped: SocketAddr = "[::ffff:127.0.0.7]:9".parse().unwrap();
        assert!(
            echo.is_validated(mapped),
            "an IPv4-mapped peer is its IPv4 address"
        );
    }

    #[test]
    fn with_echo_off_every_source_is_validated() {
        let mut config = test_config();
        config.echo = EchoMode::Off;
        let echo = Echo::new(&config).unwrap();
        assert!(echo.is_validated(addr(1)));
        assert!(echo.is_validated(SocketAddr::from(([10, 0, 0, 1], 9))));
    }
}
