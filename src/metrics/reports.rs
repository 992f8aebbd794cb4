//! The misbehaviour reports' metrics (docs/metrics.md): `m2mguard_reports_made_total{rule}`
//! (signed and queued in the outbox), `m2mguard_reports_lost_total{reason}` (`queue`: the
//! maker was behind by its whole queue; `outbox`: the outbox did not take it),
//! `m2mguard_reports_untracked_total{reason}` (refusals not counted: `unknown`, an originator
//! the repository does not know; `full`, `reports.max_nodes` nodes counted already) and
//! `m2mguard_reports_nodes` (nodes whose refusals are being counted).

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RuleLabel {
    rule: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabel {
    reason: &'static str,
}

#[derive(Clone, Debug, Default)]
pub struct ReportMetrics {
    made: Family<RuleLabel, Counter>,
    lost: Family<ReasonLabel, Counter>,
    untracked: Family<ReasonLabel, Counter>,
    pub nodes: Gauge,
}

impl ReportMetrics {
    pub fn register(registry: &mut Registry) -> ReportMetrics {
        let m = ReportMetrics::default();
        registry.register(
            "reports_made",
            "Misbehaviour reports signed and queued for the authority, by rule",
            m.made.clone(),
        );
        registry.register(
            "reports_lost",
            "Misbehaviour reports made but not queued, by reason (queue, outbox)",
            m.lost.clone(),
        );
        registry.register(
            "reports_untracked",
            "Refusals not counted for reports, by reason (unknown, full)",
            m.untracked.clone(),
        );
        registry.register(
            "reports_nodes",
            "Nodes whose refusals are counted for reports",
            m.nodes.clone(),
        );
        m
    }

    pub fn made(&self, rule: &str) {
        self.made
            .get_or_create(&RuleLabel {
                rule: rule.to_owned(),
            })
            .inc();
    }

    pub fn lost(&self, reason: &'static str) {
        self.lost.get_or_create(&ReasonLabel { reason }).inc();
    }

    pub fn untracked(&self, reason: &'static str) {
        self.untracked.get_or_create(&ReasonLabel { reason }).inc();
    }
}
