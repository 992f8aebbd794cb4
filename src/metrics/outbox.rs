//! The outbox's metrics (docs/metrics.md): `m2mguard_outbox_entries` (entries waiting for
//! the authority), `m2mguard_outbox_delivered_total`, `m2mguard_outbox_retries_total`
//! (attempts that failed and will be tried again) and `m2mguard_outbox_dropped_total{reason}`
//! (`superseded`: an older checkpoint replaced by a newer one; `full`: not queued;
//! `refused`: the authority refused it for good).

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabel {
    reason: &'static str,
}

#[derive(Clone, Debug, Default)]
pub struct OutboxMetrics {
    pub entries: Gauge,
    pub delivered: Counter,
    pub retries: Counter,
    dropped: Family<ReasonLabel, Counter>,
}

impl OutboxMetrics {
    pub fn register(registry: &mut Registry) -> OutboxMetrics {
        let m = OutboxMetrics::default();
        registry.register(
            "outbox_entries",
            "Outbox entries waiting for the authority",
            m.entries.clone(),
        );
        registry.register(
            "outbox_delivered",
            "Outbox entries the authority answered 2xx",
            m.delivered.clone(),
        );
        registry.register(
            "outbox_retries",
            "Outbox deliveries that failed and will be tried again",
            m.retries.clone(),
        );
        registry.register(
            "outbox_dropped",
            "Outbox entries dropped, by reason (superseded, full, refused)",
            m.dropped.clone(),
        );
        m
    }

    pub fn dropped(&self, reason: &'static str) {
        self.dropped.get_or_create(&ReasonLabel { reason }).inc();
    }
}
