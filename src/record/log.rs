//! The log as a sink of records: allowed requests at debug, refusals (denied, refused, failed
//! upstream) and would-be denials (`would deny`) at info (warn for upstream failures), at most [`LINES_PER_SEC`] refusal lines a
//! second: a flood of refused requests must not become a flood of log lines (disk, CPU). What is
//! left out is counted and reported in the next line that is written; the metrics count every
//! request. Datagrams refused before they are read (over a source's rate limit, oversize, not
//! CoAP) are logged at debug only: they are the flood, and must not use up the budget.

use std::time::UNIX_EPOCH;

use super::{Forward, Outcome, Record, Refusal, Sink};
use crate::budget::LogBudget;

/// Refusal log lines per second at most.
pub const LINES_PER_SEC: u64 = 100;

pub struct LogSink {
    budget: LogBudget,
}

impl Default for LogSink {
    fn default() -> Self {
        LogSink {
            budget: LogBudget::new(LINES_PER_SEC),
        }
    }
}

impl Sink for LogSink {
    fn record(&self, r: &Record) {
        let a = &r.about;
        let proto = a.protocol.as_str();
        let admit = || {
            let second = r.at.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
            self.budget.admit(second)
        };
        let forward_name = |forward: &Forward| match forward {
            Forward::Answered(_) => "answered",
            Forward::Sent => "sent",
            Forward::Nothing => "none",
            Forward::Abandoned => "abandoned",
        };
        match (&r.outcome, &r.would_deny) {
            (Outcome::Allowed { policies, forward }, Some(denial)) => {
                if let Some(suppressed) = admit() {
                    tracing::info!(
                        node.id = %a.fr, proto, op = a.op, to = %a.to, rqi = %a.rqi,
                        verdict = "would_deny", deny.stage = %denial.stage, reason = %denial.reason,
                        policy.ids = ?policies, forward = forward_name(forward),
                        log.suppressed = suppressed, "would deny"
                    );
                }
            }
            (Outcome::Failed { failure, .. }, Some(denial)) => {
                if let Some(suppressed) = admit() {
                    tracing::warn!(
                        node.id = %a.fr, proto, op = a.op, to = %a.to, rqi = %a.rqi,
                        verdict = "would_deny", deny.stage = %denial.stage, reason = %denial.reason,
                        error = %failure, log.suppressed = suppressed, "upstream failed (would deny)"
                    );
                }
            }
            (Outcome::Allowed { policies, forward }, None) => {
                let forward = forward_name(forward);
                tracing::debug!(
                    node.id = %a.fr, proto, op = a.op, to = %a.to, rqi = %a.rqi,
                    verdict = "allow", policy.ids = ?policies, forward, "request allowed"
                );
            }
            (Outcome::Denied(denial), _) => {
                if let Some(suppressed) = admit() {
                    tracing::info!(
                        node.id = %a.fr, proto, op = a.op, to = %a.to, rqi = %a.rqi,
                        verdict = "deny", deny.stage = %denial.stage, reason = %denial.reason,
                        log.suppressed = suppressed, "request denied"
                    );
                }
            }
            (
                Outcome::Refused(
                    refusal @ (Refusal::RateLimited | Refusal::DatagramTooLarge | Refusal::NotCoap),
                ),
                _,
            ) => {
                tracing::debug!(peer = %a.peer, proto, verdict = "refused", reason = %refusal, "datagram dropped");
            }
            (Outcome::Refused(refusal), _) => {
                if let Some(suppressed) = admit() {
                    tracing::info!(
                        node.id = %a.fr, peer = %a.peer, proto, op = a.op, to = %a.to,
                        rqi = %a.rqi, verdict = "refused", reason = %refusal,
                        log.suppressed = suppressed, "request refused"
                    );
                }
            }
            (Outcome::Failed { failure, .. }, None) => {
                if let Some(suppressed) = admit() {
                    tracing::warn!(
                        node.id = %a.fr, proto, op = a.op, to = %a.to, rqi = %a.rqi,
                        verdict = "allow", error = %failure, log.suppressed = suppressed,
                        "upstream failed"
                    );
                }
            }
        }
    }
}
