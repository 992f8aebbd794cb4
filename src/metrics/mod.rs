//! Prometheus metrics shared by the bindings and served by the admin API.
//!
//! `m2mguard_requests_total{protocol, operation, verdict, stage}` counts every request by its
//! outcome (verdict `allow`, `would_deny` (forwarded, but observe mode or `@observe` policies
//! let through what this stage would deny), `deny` or `malformed`; stage empty unless denied or
//! would be); `m2mguard_observed_forbids_total{policy}` counts forwarded requests a forbid
//! policy would have denied;
//! `m2mguard_decision_seconds` and `m2mguard_upstream_seconds` are latency histograms by
//! protocol; `m2mguard_plausibility_flags_total{rule}` counts requests a plausibility rule
//! flagged; `m2mguard_dropped_total{protocol, reason}` counts datagrams dropped before any
//! decision (rate limit, oversize, malformed, unmatched);
//! `m2mguard_connections_refused_total{listener, reason}` counts TCP connections closed at
//! accept (reason `max_connections` or `max_connections_per_source`),
//! `m2mguard_connections_open{listener}` the connections held now and
//! `m2mguard_connections_timed_out_total{listener}` those closed for sending no request head
//! in time (listener `http`, `mqtt` or `admin`);
//! `m2mguard_upstream_failures_total{protocol, reason}` counts allowed requests whose upstream
//! failed (reason `timeout`, `unreachable`, `reset`, `request`; they count as `allow` in the
//! request counter, which counts the guard's verdicts);
//! `m2mguard_records_lost_total{sink}` counts records a full record queue left out (see
//! [`crate::record::queue`]). The counters are fed from the decision records: [`Metrics`] is a
//! [`crate::record::Sink`]. Label values are a small closed set
//! (rule names come from the configuration), so cardinality stays bounded.

mod audit;
mod outbox;
mod reports;
mod sync;

pub use audit::AuditMetrics;
pub use outbox::OutboxMetrics;
pub use reports::ReportMetrics;
/// The media type of `/metrics` answers (the gateway's and the authority's).
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

pub use sync::{SyncMetrics, Via};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

use crate::primitive::Protocol;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    protocol: &'static str,
    operation: &'static str,
    verdict: &'static str,
    stage: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ProtocolLabel {
    protocol: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RuleLabel {
    rule: String,
}

/// Counts flags by plausibility rule; a handle the guard's plausibility stage holds. The
/// default is not registered anywhere (for tests and benches).
#[derive(Clone, Debug, Default)]
pub struct FlagCounter(Family<RuleLabel, Counter>);

impl FlagCounter {
    pub fn inc(&self, rule: &str) {
        self.0
            .get_or_create(&RuleLabel {
                rule: rule.to_owned(),
            })
            .inc();
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ListenerLabel {
    listener: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RefusedLabels {
    listener: &'static str,
    reason: &'static str,
}

/// One listener's connection counters; a handle its accept loop holds. The default is not
/// registered anywhere (for tests).
#[derive(Clone, Debug, Default)]
pub struct ConnectionCounters {
    listener: &'static str,
    refused: Family<RefusedLabels, Counter>,
    /// Connections held now.
    pub open: Gauge,
    /// Connections closed for sending no request head within the timeout.
    pub timed_out: Counter,
}

impl ConnectionCounters {
    /// One connection closed as it was accepted, because of the cap named by `reason`.
    pub fn refused(&self, reason: &'static str) {
        self.refused
            .get_or_create(&RefusedLabels {
                listener: self.listener,
                reason,
            })
            .inc();
    }
}

type Latency = Family<ProtocolLabel, Histogram, fn() -> Histogram>;

/// How a request ended, for the request counter.
#[derive(Clone, Copy, Debug)]
pub enum Outcome {
    Allow,
    /// Forwarded, but this stage would have denied it.
    WouldDeny(&'static str),
    Deny(&'static str),
    Malformed,
}

pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    decision: Latency,
    upstream: Latency,
    policy_reloads: Family<ReloadLabel, Counter>,
    policies: Gauge,
    plausibility_flags: FlagCounter,
    dropped: Family<DropLabels, Counter>,
    connections_refused: Family<RefusedLabels, Counter>,
    connections_open: Family<ListenerLabel, Gauge>,
    connections_timed_out: Family<ListenerLabel, Counter>,
    upstream_failures: Family<DropLabels, Counter>,
    records_lost: Family<SinkLabel, Counter>,
    observed_forbids: Family<PolicyLabel, Counter>,
    registrations: Family<RegistrationLabels, Counter>,
    sync: sync::SyncMetrics,
    audit: audit::AuditMetrics,
    outbox: outbox::OutboxMetrics,
    reports: reports::ReportMetrics,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PolicyLabel {
    policy: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SinkLabel {
    sink: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DropLabels {
    protocol: &'static str,
    reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RegistrationLabels {
    protocol: &'static str,
    result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReloadLabel {
    result: &'static str,
}

fn decision_buckets() -> Histogram {
    Histogram::new(exponential_buckets(1e-6, 2.0, 20))
}

fn upstream_buckets() -> Histogram {
    Histogram::new(exponential_buckets(1e-4, 2.0, 18))
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("m2mguard");
        let requests = Family::<RequestLabels, Counter>::default();
        let decision: Latency = Family::new_with_constructor(decision_buckets);
        let upstream: Latency = Family::new_with_constructor(upstream_buckets);
        let policy_reloads = Family::<ReloadLabel, Counter>::default();
        let policies = Gauge::default();
        registry.register(
            "requests",
            "Requests by protocol, operation and verdict",
            requests.clone(),
        );
        registry.register(
            "decision_seconds",
            "Time the guard took to decide",
            decision.clone(),
        );
        registry.register(
            "upstream_seconds",
            "Time until the upstream's response headers",
            upstream.clone(),
        );
        registry.register(
            "policy_reloads",
            "Policy reloads by result",
            policy_reloads.clone(),
        );
        registry.register("policies", "Cedar policies in force", policies.clone());
        let plausibility_flags = FlagCounter::default();
        registry.register(
            "plausibility_flags",
            "Requests flagged by a plausibility rule, by rule",
            plausibility_flags.0.clone(),
        );
        let registrations = Family::<RegistrationLabels, Counter>::default();
        registry.register(
            "registrations",
            "Registrations through the gateway the upstream accepted, and deregistrations, by protocol and result",
            registrations.clone(),
        );
        let dropped = Family::<DropLabels, Counter>::default();
        registry.register(
            "dropped",
            "Datagrams dropped before a decision, by reason",
            dropped.clone(),
        );
        let connections_refused = Family::<RefusedLabels, Counter>::default();
        registry.register(
            "connections_refused",
            "TCP connections closed at accept, by listener and the cap they hit",
            connections_refused.clone(),
        );
        let connections_open = Family::<ListenerLabel, Gauge>::default();
        registry.register(
            "connections_open",
            "TCP connections held, by listener",
            connections_open.clone(),
        );
        let connections_timed_out = Family::<ListenerLabel, Counter>::default();
        registry.register(
            "connections_timed_out",
            "Connections closed for sending no request head in time, by listener",
            connections_timed_out.clone(),
        );
        let upstream_failures = Family::<DropLabels, Counter>::default();
        registry.register(
            "upstream_failures",
            "Allowed requests whose upstream failed, by reason",
            upstream_failures.clone(),
        );
        let records_lost = Family::<SinkLabel, Counter>::default();
        registry.register(
            "records_lost",
            "Decision records a full record queue left out, by sink",
            records_lost.clone(),
        );
        let observed_forbids = Family::<PolicyLabel, Counter>::default();
        registry.register(
            "observed_forbids",
            "Forwarded requests a forbid policy would have denied (@observe, or observe mode), by policy",
            observed_forbids.clone(),
        );
        let sync = sync::SyncMetrics::register(&mut registry);
        let audit = audit::AuditMetrics::register(&mut registry);
        let outbox = outbox::OutboxMetrics::register(&mut registry);
        let reports = reports::ReportMetrics::register(&mut registry);
        Metrics {
            reports,
            audit,
            outbox,
            registry,
            observed_forbids,
            upstream_failures,
            records_lost,
            registrations,
            sync,
            requests,
            decision,
            upstream,
            policy_reloads,
            policies,
            plausibility_flags,
            dropped,
            connections_refused,
            connections_open,
            connections_timed_out,
        }
    }

    /// The connection counters of `listener` (`http`, `mqtt`, `admin`), for its accept loop.
    pub fn connections(&self, listener: &'static str) -> ConnectionCounters {
        let label = ListenerLabel { listener };
        ConnectionCounters {
            listener,
            refused: self.connections_refused.clone(),
            open: self.connections_open.get_or_create(&label).clone(),
            timed_out: self.connections_timed_out.get_or_create(&label).clone(),
        }
    }

    /// The flag counter, for the plausibility stage.
    pub fn plausibility_flags(&self) -> FlagCounter {
        self.plausibility_flags.clone()
    }

    /// The counter of records the queue `sink` leaves out.
    pub fn records_lost(&self, sink: &'static str) -> Counter {
        self.records_lost.get_or_create(&SinkLabel { sink }).clone()
    }

    /// One allowed request whose upstream failed, for `reason`.
    pub fn upstream_failure(&self, protocol: Protocol, reason: &'static str) {
        self.upstream_failures
            .get_or_create(&DropLabels {
                protocol: protocol.as_str(),
                reason,
            })
            .inc();
    }

    /// One datagram dropped unanswered before any decision.
    /// A registration or deregistration completed: `result` is `enrolled`, `removed` or
    /// `failed` (accepted upstream, not recorded).
    pub fn registration(&self, protocol: Protocol, result: &'static str) {
        self.registrations
            .get_or_create(&RegistrationLabels {
                protocol: protocol.as_str(),
                result,
            })
            .inc();
    }

    pub fn dropped(&self, protocol: Protocol, reason: &'static str) {
        self.dropped
            .get_or_create(&DropLabels {
                protocol: protocol.as_str(),
                reason,
            })
            .inc();
    }

    pub fn request(&self, protocol: Protocol, operation: &'static str, outcome: Outcome) {
        let (verdict, stage) = match outcome {
            Outcome::Allow => ("allow", ""),
            Outcome::WouldDeny(stage) => ("would_deny", stage),
            Outcome::Deny(stage) => ("deny", stage),
            Outcome::Malformed => ("malformed", ""),
        };
        self.requests
            .get_or_create(&RequestLabels {
                protocol: protocol.as_str(),
                operation,
                verdict,
                stage,
            })
            .inc();
    }

    /// One forwarded request the forbid policy `policy` would have denied.
    pub fn observed_forbid(&self, policy: &str) {
        self.observed_forbids
            .get_or_create(&PolicyLabel {
                policy: policy.to_owned(),
            })
            .inc();
    }

    pub fn decision_seconds(&self, protocol: Protocol, secs: f64) {
        self.decision
            .get_or_create(&ProtocolLabel {
                protocol: protocol.as_str(),
            })
            .observe(secs);
    }

    pub fn upstream_seconds(&self, protocol: Protocol, secs: f64) {
        self.upstream
            .get_or_create(&ProtocolLabel {
                protocol: protocol.as_str(),
            })
            .observe(secs);
    }

    pub fn policy_reload(&self, result: Result<usize, ()>) {
        let label = if let Ok(count) = result {
            self.policies.set(i64::try_from(count).unwrap_or(i64::MAX));
            "ok"
        } else {
            "failed"
        };
        self.policy_reloads
            .get_or_create(&ReloadLabel { result: label })
            .inc();
    }

    /// The Prometheus text exposition of everything registered.
    /// The status-feed sync's metrics.
    pub fn sync(&self) -> &sync::SyncMetrics {
        &self.sync
    }

    /// The audit log's metrics.
    pub fn audit(&self) -> &audit::AuditMetrics {
        &self.audit
    }

    /// The outbox's metrics.
    pub fn outbox(&self) -> &outbox::OutboxMetrics {
        &self.outbox
    }

    pub fn reports(&self) -> &reports::ReportMetrics {
        &self.reports
    }

    pub fn encode(&self) -> String {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        self.sync.refresh(now);
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}
