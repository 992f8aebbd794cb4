//! Deciding and recording in one place, for every binding: [`Decider::decide`] runs the guard
//! and records the outcome once — metrics, the log, and the decision stream (demo, later audit).
//!
//! Denials are logged at info, but at most [`DENIAL_LOG_LINES_PER_SEC`] lines a second: a flood
//! of refused requests must not become a flood of log lines (disk, CPU). What is left out is
//! counted and reported in the next line that is written; the metrics count every request.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use tokio::sync::broadcast;

use crate::guard::{DecisionRecord, Denial, Guard, Verdict};
use crate::metrics::{Metrics, Outcome};
use crate::primitive::{Peer, Primitive, Protocol, TopicRequest};
use crate::target::resolve::Resolver;
use crate::target::Addressing;

pub const DENIAL_LOG_LINES_PER_SEC: u64 = 100;

pub struct Decider {
    guard: Arc<Guard>,
    metrics: Arc<Metrics>,
    decisions: broadcast::Sender<DecisionRecord>,
    denial_log: LogBudget,
    targets: Resolver,
}

impl Decider {
    pub fn new(
        guard: Arc<Guard>,
        metrics: Arc<Metrics>,
        decisions: broadcast::Sender<DecisionRecord>,
        targets: Resolver,
    ) -> Self {
        Decider {
            guard,
            metrics,
            decisions,
            denial_log: LogBudget::new(DENIAL_LOG_LINES_PER_SEC),
            targets,
        }
    }

    /// The names that make a target local, for the bindings' decoders.
    pub fn addressing(&self) -> &Addressing {
        self.targets.addressing()
    }

    /// Replaces a resource-id target with the structured name the CSE knows it by (see
    /// [`crate::target::resolve`]); other targets pass untouched. Identity and status are
    /// checked first, so that unknown senders cannot make the gateway ask the CSE. A target
    /// that cannot be resolved is a denial, recorded here.
    pub async fn resolve(&self, p: &mut Primitive) -> Result<(), Denial> {
        if self.addressing().resource_id(&p.to).is_none() {
            return Ok(());
        }
        self.precheck(p)?;
        let now = SystemTime::now();
        let started = Instant::now();
        match self.targets.resolve(&p.to).await {
            Ok(None) => Ok(()),
            Ok(Some(name)) => {
                let sent = std::mem::replace(&mut p.to, name);
                p.to_as_sent.get_or_insert(sent);
                Ok(())
            }
            Err(unresolved) => {
                let denial = Denial::unresolved(unresolved.to_string());
                self.record(p, &Verdict::Deny(denial.clone()), now, started);
                Err(denial)
            }
        }
    }

    /// The guard's verdict, or a denial for a resource-id target that was never resolved: no
    /// rule that matches names may see one.
    fn verdict(&self, p: &Primitive, run: impl FnOnce() -> Verdict) -> Verdict {
        if self.addressing().resource_id(&p.to).is_some() {
            return Verdict::Deny(Denial::unresolved(
                "resource-id target reached the guard unresolved",
            ));
        }
        run()
    }

    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// Runs the stages that need only the request head; a denial is recorded and returned.
    /// Bindings call this before reading a body, so that unknown or blocked senders cannot
    /// make the gateway buffer theirs.
    pub fn precheck(&self, p: &Primitive) -> Result<(), Denial> {
        let now = SystemTime::now();
        let started = Instant::now();
        let denial = self.guard.precheck(p).err();
        match denial {
            None => Ok(()),
            Some(denial) => {
                self.record(p, &Verdict::Deny(denial.clone()), now, started);
                Err(denial)
            }
        }
    }

    /// Decides `p` now and records the decision.
    pub fn decide(&self, p: &Primitive) -> Verdict {
        let now = SystemTime::now();
        let started = Instant::now();
        let verdict = self.verdict(p, || self.guard.decide(p, now));
        self.record(p, &verdict, now, started);
        verdict
    }

    /// Decides `p`, which must come from each originator in `bound` (see
    /// [`Guard::decide_bound`]), now, and records the decision.
    pub fn decide_bound(&self, p: &Primitive, bound: &[(&str, &str)]) -> Verdict {
        let now = SystemTime::now();
        let started = Instant::now();
        let verdict = self.verdict(p, || self.guard.decide_bound(p, bound, now));
        self.record(p, &verdict, now, started);
        verdict
    }

    /// Admits a session for `originator` (MQTT CONNECT): identity and node status. Recorded
    /// under the operation `connect`.
    /// Whether `originator` is active now; not a decision, so nothing is recorded.
    pub fn active(&self, originator: &str) -> bool {
        self.guard.active(originator)
    }

    pub fn admit(&self, originator: &str, peer: &Peer) -> Result<(), Denial> {
        let now = SystemTime::now();
        let started = Instant::now();
        let verdict = self.guard.admit(originator, peer).err();
        let what = Decision {
            fr: originator,
            op: "connect",
            to: "",
            rqi: "",
            protocol: peer.protocol,
        };
        match verdict {
            None => {
                self.metrics
                    .request(peer.protocol, "connect", Outcome::Allow);
                tracing::debug!(node.id = %originator, proto = %peer.protocol, op = "connect", verdict = "allow", "session admitted");
                Ok(())
            }
            Some(denial) => {
                self.record_denial(&what, &denial, now, started);
                Err(denial)
            }
        }
    }

    /// Whether a session admitted earlier may go on (identity and status now); not recorded.
    pub fn still_admitted(&self, originator: &str, peer: &Peer) -> bool {
        self.guard.admit(originator, peer).is_ok()
    }

    /// Decides a publish or subscription on a topic now and records the decision.
    pub fn decide_topic(&self, t: &TopicRequest) -> Verdict {
        let now = SystemTime::now();
        let started = Instant::now();
        let verdict = self.guard.decide_topic(t, now);
        let what = Decision {
            fr: &t.originator,
            op: t.action.as_str(),
            to: &t.topic,
            rqi: "",
            protocol: t.peer.protocol,
        };
        match &verdict {
            Verdict::Allow(permit) => {
                self.metrics
                    .decision_seconds(what.protocol, started.elapsed().as_secs_f64());
                self.metrics.request(what.protocol, what.op, Outcome::Allow);
                tracing::debug!(
                    node.id = %what.fr, proto = %what.protocol, op = what.op, to = %what.to,
                    verdict = "allow", policy.ids = ?permit.policy_ids(), "topic allowed"
                );
                self.stream(&what, true, None, || {
                    format!("permitted by {}", permit.policy_ids().join(", "))
                });
            }
            Verdict::Deny(denial) => self.record_denial(&what, denial, now, started),
        }
        verdict
    }

    /// Records a refusal a binding made itself, without the guard (an MQTT request for another
    /// receiver, a retained or an undecodable one): counted and logged like a denial.
    pub fn refuse(&self, r: &Refusal<'_>) {
        let (outcome, verdict) = match r.stage {
            Some(stage) => (Outcome::Deny(stage), "deny"),
            None => (Outcome::Malformed, "malformed"),
        };
        self.metrics.request(r.protocol, r.op, outcome);
        let what = Decision {
            fr: r.fr,
            op: r.op,
            to: r.to,
            rqi: r.rqi,
            protocol: r.protocol,
        };
        self.stream(&what, false, None, || r.reason.to_owned());
        let second = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        if let Some(suppressed) = self.denial_log.admit(second) {
            tracing::info!(
                node.id = %r.fr, proto = %r.protocol, op = r.op, to = %r.to, verdict,
                deny.stage = r.stage.unwrap_or(""), reason = %r.reason,
                log.suppressed = suppressed, "request refused"
            );
        }
    }

    fn record_denial(
        &self,
        what: &Decision<'_>,
        denial: &Denial,
        now: SystemTime,
        started: Instant,
    ) {
        self.metrics
            .decision_seconds(what.protocol, started.elapsed().as_secs_f64());
        self.metrics
            .request(what.protocol, what.op, Outcome::Deny(denial.stage.as_str()));
        self.stream(what, false, Some(denial.stage), || denial.reason.clone());
        let second = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        if let Some(suppressed) = self.denial_log.admit(second) {
            tracing::info!(
                node.id = %what.fr, proto = %what.protocol, op = what.op, to = %what.to,
                verdict = "deny", deny.stage = %denial.stage, reason = %denial.reason,
                log.suppressed = suppressed, "request denied"
            );
        }
    }

    fn stream(
        &self,
        what: &Decision<'_>,
        allowed: bool,
        stage: Option<crate::guard::Stage>,
        why: impl FnOnce() -> String,
    ) {
        if self.decisions.receiver_count() > 0 {
            let _ = self.decisions.send(DecisionRecord {
                rqi: what.rqi.to_owned(),
                fr: what.fr.to_owned(),
                op: what.op,
                to: what.to.to_owned(),
                allowed,
                stage,
                why: why(),
            });
        }
    }

    fn record(&self, p: &Primitive, verdict: &Verdict, now: SystemTime, started: Instant) {
        let protocol = p.peer.protocol;
        self.metrics
            .decision_seconds(protocol, started.elapsed().as_secs_f64());
        if self.decisions.receiver_count() > 0 {
            let _ = self.decisions.send(DecisionRecord::new(p, verdict));
        }
        let op = p.op.as_str();
        match verdict {
            Verdict::Allow(permit) => {
                self.metrics.request(protocol, op, Outcome::Allow);
                tracing::debug!(
                    node.id = %p.fr, proto = %protocol, op, to = %p.to,
                    verdict = "allow", policy.ids = ?permit.policy_ids(), "request allowed"
                );
            }
            Verdict::Deny(denial) => {
                self.metrics
                    .request(protocol, op, Outcome::Deny(denial.stage.as_str()));
                let second = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
                if let Some(suppressed) = self.denial_log.admit(second) {
                    tracing::info!(
                        node.id = %p.fr, proto = %protocol, op, to = %p.to,
                        verdict = "deny", deny.stage = %denial.stage, reason = %denial.reason,
                        log.suppressed = suppressed, "request denied"
                    );
                }
            }
        }
    }
}

/// A request a binding refused itself, as [`Decider::refuse`] records it.
pub struct Refusal<'a> {
    pub protocol: Protocol,
    /// The sender as the binding knows it (MQTT: the session's bound originator).
    pub fr: &'a str,
    /// The operation's name, or `"unknown"` where it could not be read.
    pub op: &'static str,
    /// The target or topic, as far as it could be read.
    pub to: &'a str,
    pub rqi: &'a str,
    /// The refusing stage (metrics verdict `deny`), or `None` for a malformed request
    /// (verdict `malformed`).
    pub stage: Option<&'static str>,
    /// For the log only; never sent.
    pub reason: &'a str,
}

/// A decision that is not about a [`Primitive`] (session admission, topics), as recorded.
struct Decision<'a> {
    fr: &'a str,
    op: &'static str,
    to: &'a str,
    rqi: &'a str,
    protocol: Protocol,
}

/// At most `per_second` admissions in each wall-clock second; counts the rest. Shared by the
/// denial log and the plausibility flag log.
pub(crate) struct LogBudget {
    per_second: u64,
    second: AtomicU64,
    used: AtomicU64,
    suppressed: AtomicU64,
}

impl LogBudget {
    pub(crate) fn new(per_second: u64) -> Self {
        LogBudget {
            per_second,
            second: AtomicU64::new(0),
            used: AtomicU64::new(0),
            suppressed: AtomicU64::new(0),
        }
    }

    /// `Some(lines left out since the last admitted one)`, or `None` when over budget.
    pub(crate) fn admit(&self, second: u64) -> Option<u64> {
        let current = self.second.load(Relaxed);
        if current != second
            && self
                .second
                .compare_exchange(current, second, Relaxed, Relaxed)
                .is_ok()
        {
            self.used.store(0, Relaxed);
        }
        if self.used.fetch_add(1, Relaxed) < self.per_second {
            Some(self.suppressed.swap(0, Relaxed))
        } else {
            self.suppressed.fetch_add(1, Relaxed);
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budget_admits_its_quota_then_reports_what_it_left_out() {
        let budget = LogBudget::new(3);
        let first: Vec<_> = (0..5).map(|_| budget.admit(10)).collect();
        assert_eq!(first, [Some(0), Some(0), Some(0), None, None]);
        assert_eq!(budget.admit(11), Some(2));
        assert_eq!(budget.admit(11), Some(0));
    }
}
