//! The audit log's metrics (docs/metrics.md): `m2mguard_audit_records_total` (lines written
//! and synced), `m2mguard_audit_lost_total` (records that never reached the log: recorded as
//! gaps), `m2mguard_audit_write_errors_total` (failed writes or syncs),
//! `m2mguard_audit_checkpoints_total` and `m2mguard_audit_healthy` (1 while the log takes
//! records, 0 while it cannot, -1 with no `[audit]`).

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Default)]
pub struct AuditMetrics {
    pub records: Counter,
    pub lost: Counter,
    pub write_errors: Counter,
    pub checkpoints: Counter,
    pub healthy: Gauge,
}

impl AuditMetrics {
    pub fn register(registry: &mut Registry) -> AuditMetrics {
        let m = AuditMetrics::default();
        m.healthy.set(-1);
        registry.register(
            "audit_records",
            "Audit log lines written and synced",
            m.records.clone(),
        );
        registry.register(
            "audit_lost",
            "Records that never reached the audit log (recorded there as gaps)",
            m.lost.clone(),
        );
        registry.register(
            "audit_write_errors",
            "Failed writes or syncs of the audit log",
            m.write_errors.clone(),
        );
        registry.register(
            "audit_checkpoints",
            "Signed audit checkpoints written",
            m.checkpoints.clone(),
        );
        registry.register(
            "audit_healthy",
            "1 while the audit log takes records, 0 while it cannot, -1 without [audit]",
            m.healthy.clone(),
        );
        m
    }
}
