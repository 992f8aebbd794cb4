//! The sync's metrics (docs/metrics.md): `m2mguard_sync_applied_seq` (the last record
//! applied), `m2mguard_sync_head_age_seconds` (since the newest verified head the repository
//! caught up with; -1 before the first), `m2mguard_sync_records_applied_total{via}` (`https`
//! or `mqtt`: how the records came),
//! `m2mguard_sync_refused_total{reason}` (what the sync refused: `signature`, `malformed`,
//! `sealed`, `chain`, `head`, `too_large`, `unreachable`, `repository`) and
//! `m2mguard_gateway_deactivated` (1 while the authority has deactivated this gateway).

use std::sync::atomic::{AtomicU64, Ordering};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabel {
    reason: &'static str,
}

/// How applied records reached the gateway.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
pub enum Via {
    Https,
    Mqtt,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ViaLabel {
    via: &'static str,
}

#[derive(Debug, Default)]
pub struct SyncMetrics {
    applied_seq: Gauge,
    head_age: Gauge,
    head_at: AtomicU64,
    applied: Family<ViaLabel, Counter>,
    refused: Family<ReasonLabel, Counter>,
    deactivated: Gauge,
}

impl SyncMetrics {
    pub fn register(registry: &mut Registry) -> SyncMetrics {
        let m = SyncMetrics::default();
        m.head_age.set(-1);
        registry.register(
            "sync_applied_seq",
            "Sequence number of the last feed record applied",
            m.applied_seq.clone(),
        );
        registry.register(
            "sync_head_age_seconds",
            "Seconds since the newest verified head the repository caught up with (-1: none yet)",
            m.head_age.clone(),
        );
        registry.register(
            "sync_records_applied",
            "Feed records applied",
            m.applied.clone(),
        );
        registry.register(
            "sync_refused",
            "What the sync refused, by reason",
            m.refused.clone(),
        );
        registry.register(
            "gateway_deactivated",
            "1 while the authority has deactivated this gateway",
            m.deactivated.clone(),
        );
        m
    }

    pub fn applied(&self, seq: u64, records: u64, via: Via) {
        self.applied_seq.set(i64::try_from(seq).unwrap_or(i64::MAX));
        let via = match via {
            Via::Https => "https",
            Via::Mqtt => "mqtt",
        };
        self.applied
            .get_or_create(&ViaLabel { via })
            .inc_by(records);
    }

    pub fn head(&self, at: u64) {
        self.head_at.fetch_max(at, Ordering::AcqRel);
    }

    pub fn refused(&self, reason: &'static str) {
        self.refused.get_or_create(&ReasonLabel { reason }).inc();
    }

    pub fn deactivated(&self, deactivated: bool) {
        self.deactivated.set(i64::from(deactivated));
    }

    /// Brings the age up to `now` (called when the metrics are scraped).
    pub fn refresh(&self, now: u64) {
        let at = self.head_at.load(Ordering::Acquire);
        if at > 0 {
            self.head_age
                .set(i64::try_from(now.saturating_sub(at)).unwrap_or(i64::MAX));
        }
    }
}
