//! The guard's answer: [`Verdict`] = `Allow(Permit)` or `Deny(Denial)`.
//!
//! A [`Permit`] can only be made inside the guard module, and forwarding takes one by value:
//! a request that was not allowed has no way to reach the upstream.

use std::fmt;

/// The stage of the pipeline that decided a denial.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Stage {
    /// `fr` does not match the authenticated transport identity.
    Identity,
    /// Originator unknown, suspended, deactivated or revoked (or the repository failed).
    Status,
    /// Check value (`aus`) missing where required, unknown key id, or wrong value.
    CheckValue,
    /// Timestamp outside the window, request id or sequence number already seen.
    Replay,
    /// Access-control token missing where required, or invalid.
    Token,
    /// The request's data or circumstances fail a plausibility rule set to deny.
    Plausibility,
    /// No Cedar policy permits, a policy forbids, or evaluation failed.
    Policy,
    /// A resource-id target could not be resolved to the structured name the CSE knows it by
    /// (decided before the stages above, by the [`crate::decision::Decider`]).
    Target,
}

impl Stage {
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Identity => "identity",
            Stage::Status => "status",
            Stage::CheckValue => "check_value",
            Stage::Replay => "replay",
            Stage::Token => "token",
            Stage::Plausibility => "plausibility",
            Stage::Policy => "policy",
            Stage::Target => "target",
        }
    }

    /// What the sender is told: the class of denial, never the detail.
    pub fn public_message(self) -> &'static str {
        match self {
            Stage::Identity => {
                "access denied: originator does not match the authenticated identity"
            }
            Stage::Status => "access denied: originator is not active",
            Stage::CheckValue => "access denied: check value missing or invalid",
            Stage::Replay => "access denied: stale or replayed request",
            Stage::Token => "access denied: token missing or invalid",
            Stage::Plausibility => "access denied: implausible request",
            Stage::Policy => "access denied by policy",
            Stage::Target => "access denied: target could not be resolved",
        }
    }
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a request was refused. `reason` is for logs, the audit trail and the operator only.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Denial {
    pub stage: Stage,
    pub reason: String,
}

impl Denial {
    pub(super) fn new(stage: Stage, reason: impl Into<String>) -> Self {
        Denial {
            stage,
            reason: reason.into(),
        }
    }

    /// A target that was not resolved (the only denial made outside the guard: it is no
    /// decision on the request, only the refusal to decide on a name that is not known).
    pub fn unresolved(reason: impl Into<String>) -> Self {
        Denial::new(Stage::Target, reason)
    }
}

/// Proof that the guard allowed one request. Not `Clone`: one permit, one forward.
#[derive(Debug, PartialEq, Eq)]
pub struct Permit {
    policy_ids: Vec<String>,
    check_value: Option<String>,
}

impl Permit {
    pub(super) fn new(policy_ids: Vec<String>, check_value: Option<String>) -> Self {
        Permit {
            policy_ids,
            check_value,
        }
    }

    /// A check value (`aus`) the gateway inserted for a legacy device: bindings put it on the
    /// forwarded request (HTTP `X-M2M-AS`, CoAP option 339, JSON `aus`).
    pub fn check_value(&self) -> Option<&str> {
        self.check_value.as_deref()
    }

    /// The Cedar policies that permitted the request.
    pub fn policy_ids(&self) -> &[String] {
        &self.policy_ids
    }
}

#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    Allow(Permit),
    Deny(Denial),
}

impl Verdict {
    pub fn is_allow(&self) -> bool {
        matches!(self, Verdict::Allow(_))
    }
}

/// One decision as the operator sees it: for the log stream of the demo, and later the audit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DecisionRecord {
    pub rqi: String,
    pub fr: String,
    pub op: &'static str,
    pub to: String,
    pub allowed: bool,
    /// The denying stage, if denied.
    pub stage: Option<Stage>,
    /// The denial's reason, or the permitting policies.
    pub why: String,
}

impl DecisionRecord {
    pub fn new(p: &crate::primitive::Primitive, verdict: &Verdict) -> Self {
        let (allowed, stage, why) = match verdict {
            Verdict::Allow(permit) => (
                true,
                None,
                format!("permitted by {}", permit.policy_ids.join(", ")),
            ),
            Verdict::Deny(denial) => (false, Some(denial.stage), denial.reason.clone()),
        };
        DecisionRecord {
            rqi: p.rqi.clone(),
            fr: p.fr.clone(),
            op: p.op.as_str(),
            to: p.to.clone(),
            allowed,
            stage,
            why,
        }
    }
}
