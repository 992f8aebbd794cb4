//! The metrics as a sink of records: every record is counted (see [`crate::metrics`]).

use super::{Forward, Outcome, Record, Refusal, Sink};
use crate::guard::Reason;
use crate::metrics::{Metrics, Outcome as Counted};

/// Every record is counted: guard verdicts in the request counter (`allow`, `would_deny` and
/// `deny` by stage; the forbid policies of a would-be denial in the observed-forbid counter),
/// binding refusals as `malformed` requests, `deny` with the refusal's name (`retained`,
/// `receiver`), or, for datagrams dropped before they are read, in the drop counter.
impl Sink for Metrics {
    fn record(&self, r: &Record) {
        let (protocol, op) = (r.about.protocol, r.about.op);
        if let Some(took) = r.decided_in {
            self.decision_seconds(protocol, took.as_secs_f64());
        }
        match &r.outcome {
            Outcome::Allowed { forward, .. } => {
                self.request(protocol, op, allowed(self, r));
                if let Forward::Answered(answered) = forward {
                    self.upstream_seconds(protocol, answered.after.as_secs_f64());
                }
            }
            Outcome::Failed { failure, .. } => {
                self.request(protocol, op, allowed(self, r));
                self.upstream_failure(protocol, failure.kind());
            }
            Outcome::Denied(denial) => {
                self.request(protocol, op, Counted::Deny(denial.stage.as_str()))
            }
            Outcome::Refused(refusal) => match refusal {
                Refusal::Malformed(_)
                | Refusal::HeaderTooLarge
                | Refusal::BodyTooLarge
                | Refusal::BodyUnreadable
                | Refusal::PacketTooLarge(_) => self.request(protocol, op, Counted::Malformed),
                Refusal::Retained => self.request(protocol, op, Counted::Deny("retained")),
                Refusal::TooManySubscriptions(_) => {
                    self.request(protocol, op, Counted::Deny("subscriptions"))
                }
                Refusal::TooManyInFlight(_) => {
                    self.request(protocol, op, Counted::Deny("in_flight"))
                }
                Refusal::AnswersAsCse => {
                    self.request(protocol, op, Counted::Deny("answers_as_cse"))
                }
                Refusal::WrongReceiver { .. } => {
                    self.request(protocol, op, Counted::Deny("receiver"))
                }
                Refusal::RateLimited => self.dropped(protocol, "rate_limit"),
                Refusal::DatagramTooLarge => self.dropped(protocol, "oversize"),
                Refusal::NotCoap => self.dropped(protocol, "malformed"),
            },
        }
    }
}

/// How an allowed request is counted: `allow`, or `would_deny` at the stage it escaped (and
/// each forbid policy that would have denied it).
fn allowed(metrics: &Metrics, r: &Record) -> Counted {
    let Some(denial) = &r.would_deny else {
        return Counted::Allow;
    };
    if let Reason::Forbidden { policies } = &denial.reason {
        for policy in policies {
            metrics.observed_forbid(policy);
        }
    }
    Counted::WouldDeny(denial.stage.as_str())
}
