//! Caps on a listener's open connections: at most `max_connections` in all (a semaphore) and
//! `max_connections_per_source` from one source (a counter map), a source being an IPv4
//! address or an IPv6 /64 prefix (one host usually holds a whole /64).
//!
//! An [`Admission`] holds one slot of each and gives both back when dropped, so a connection
//! cannot leak its slot whichever way it ends. The map holds only sources with an open
//! connection, so it never has more than `max_connections` entries.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{SystemTime, UNIX_EPOCH};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::budget::LogBudget;
use crate::config::ConnectionLimits;
use crate::metrics::ConnectionCounters;

/// Why a connection was closed as it was accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    #[error("the listener holds max_connections ({max}) connections")]
    Total { max: usize },
    #[error("the source holds max_connections_per_source ({max}) connections")]
    PerSource { max: usize },
}

impl Refused {
    /// The metric's `reason` label: the configuration key of the cap.
    pub fn reason(self) -> &'static str {
        match self {
            Refused::Total { .. } => "max_connections",
            Refused::PerSource { .. } => "max_connections_per_source",
        }
    }
}

type Sources = Arc<Mutex<HashMap<IpAddr, usize>>>;

/// One listener's caps; shared by its accept loop and every [`Admission`] it hands out.
pub struct Limiter {
    name: &'static str,
    total: Arc<Semaphore>,
    limits: ConnectionLimits,
    sources: Sources,
    counters: ConnectionCounters,
    log: LogBudget,
}

/// One connection's slots. Dropping it gives them back.
#[derive(Debug)]
pub struct Admission {
    _total: OwnedSemaphorePermit,
    source: IpAddr,
    sources: Sources,
    counters: ConnectionCounters,
}

impl Admission {
    /// The connection is being closed for sending no request head in time.
    pub fn timed_out(&self) {
        self.counters.timed_out.inc();
    }
}

impl Drop for Admission {
    fn drop(&mut self) {
        let mut sources = self.sources.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(open) = sources.get_mut(&self.source) {
            *open = open.saturating_sub(1);
            if *open == 0 {
                sources.remove(&self.source);
            }
        }
        self.counters.open.dec();
    }
}

impl Limiter {
    /// `name` labels the metrics and log lines (`http`, `mqtt`, `admin`).
    pub fn new(name: &'static str, limits: ConnectionLimits, counters: ConnectionCounters) -> Self {
        Limiter {
            name,
            total: Arc::new(Semaphore::new(limits.max_connections)),
            limits,
            sources: Arc::default(),
            counters,
            log: LogBudget::new(super::REFUSAL_LOG_LINES_PER_SEC),
        }
    }

    pub fn name(&self) -> &'static str {
        self.name
    }

    /// Takes a slot for a connection from `peer`, or counts and logs the refusal.
    pub fn admit(&self, peer: SocketAddr) -> Result<Admission, Refused> {
        let admitted = self.try_admit(source(peer.ip()));
        if let Err(refused) = admitted {
            self.counters.refused(refused.reason());
            let second = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_secs());
            if let Some(suppressed) = self.log.admit(second) {
                tracing::info!(
                    listener = self.name, peer = %peer, reason = %refused,
                    log.suppressed = suppressed, "connection refused"
                );
            }
        }
        admitted
    }

    fn try_admit(&self, source: IpAddr) -> Result<Admission, Refused> {
        let total = self
            .total
            .clone()
            .try_acquire_owned()
            .map_err(|_| Refused::Total {
                max: self.limits.max_connections,
            })?;
        let mut sources = self.sources.lock().unwrap_or_else(PoisonError::into_inner);
        let open = sources.entry(source).or_insert(0);
        if *open >= self.limits.max_connections_per_source {
            return Err(Refused::PerSource {
                max: self.limits.max_connections_per_source,
            });
        }
        *open += 1;
        drop(sources);
        self.counters.open.inc();
        Ok(Admission {
            _total: total,
            source,
            sources: self.sources.clone(),
            counters: self.counters.clone(),
        })
    }
}

/// The unit counted per source: an IPv4 address (also when mapped into IPv6), or the /64
/// prefix of an IPv6 address.
fn source(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(Ipv6Addr::from_bits(v6.to_bits() & (!0u128 << 64))),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limiter(total: usize, per_source: usize) -> Limiter {
        let limits = ConnectionLimits {
            max_connections: total,
            max_connections_per_source: per_source,
        };
        Limiter::new("test", limits, ConnectionCounters::default())
    }

    fn peer(ip: &str) -> SocketAddr {
        SocketAddr::new(ip.parse().unwrap(), 40000)
    }

    #[test]
    fn a_source_over_its_cap_is_refused_until_one_of_its_connections_ends() {
        let limiter = limiter(10, 2);
        let first = limiter.admit(peer("10.0.0.1")).unwrap();
        let _second = limiter.admit(peer("10.0.0.1")).unwrap();
        assert_eq!(
            limiter.admit(peer("10.0.0.1")).unwrap_err(),
            Refused::PerSource { max: 2 }
        );
        assert!(limiter.admit(peer("10.0.0.2")).is_ok(), "others unaffected");
        drop(first);
        assert!(limiter.admit(peer("10.0.0.1")).is_ok());
    }

    #[test]
    fn the_listener_over_its_cap_is_refused_and_slots_come_back_on_drop() {
        let limiter = limiter(2, 2);
        let held: Vec<_> = ["10.0.0.1", "10.0.0.2"]
            .iter()
            .map(|ip| limiter.admit(peer(ip)).unwrap())
            .collect();
        assert_eq!(
            limiter.admit(peer("10.0.0.3")).unwrap_err(),
            Refused::Total { max: 2 }
        );
        drop(held);
        assert!(limiter.sources.lock().unwrap().is_empty(), "map emptied");
        assert!(limiter.admit(peer("10.0.0.3")).is_ok());
    }

    #[test]
    fn one_ipv6_64_is_one_source_and_mapped_ipv4_counts_as_ipv4() {
        let limiter = limiter(10, 1);
        let _a = limiter.admit(peer("2001:db8:1:2::1")).unwrap();
        assert!(limiter.admit(peer("2001:db8:1:2:ffff::9")).is_err());
        assert!(limiter.admit(peer("2001:db8:1:3::1")).is_ok());
        let _b = limiter.admit(peer("192.0.2.7")).unwrap();
        assert!(limiter.admit(peer("::ffff:192.0.2.7")).is_err());
    }

    #[test]
    fn open_connections_are_tracked_until_dropped() {
        let limiter = limiter(1, 1);
        let held = limiter.admit(peer("10.0.0.1")).unwrap();
        assert_eq!(limiter.counters.open.get(), 1);
        let _ = limiter.admit(peer("10.0.0.1"));
        drop(held);
        assert_eq!(limiter.counters.open.get(), 0);
    }
}
