//! The guard's answer: [`Verdict`] = `Allow(Permit)` or `Deny(Denial)`.
//!
//! A [`Permit`] can only be made inside the guard module, and forwarding takes one by value
//! (inside a [`crate::decision::Permitted`], with the request it permits): a request that was
//! not allowed has no way to reach the upstream. The one exception is narrow and visible: in
//! observe mode the Decider turns a denial into [`Permit::observed`], a permit that carries the
//! denial, so that what is forwarded anyway is always recorded as a would-be denial.

use std::fmt;

use super::reason::{ClaimError, Reason};
use crate::registration::FollowUp;

/// The stage of the pipeline that decided a denial.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Stage {
    /// `fr` does not match the authenticated transport identity.
    Identity,
    /// The gateway itself may not forward: deactivated by the IN, or its synced repository
    /// is older than `sync.max_age_s` (then only `sync.stale_group` passes).
    Gateway,
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
    /// The audit log cannot take records and `[audit] on_full = "refuse"`: the gateway
    /// forwards nothing it cannot record (decided by the [`crate::decision::Decider`]).
    Audit,
    /// A resource-id target could not be resolved to the structured name the CSE knows it by
    /// (decided before the stages above, by the [`crate::decision::Decider`]).
    Target,
}

impl Stage {
    /// Every stage's name ([`Stage::as_str`]), in the order of the variants.
    pub const NAMES: [&'static str; 10] = [
        "identity",
        "gateway",
        "status",
        "check_value",
        "replay",
        "token",
        "plausibility",
        "policy",
        "audit",
        "target",
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Identity => "identity",
            Stage::Gateway => "gateway",
            Stage::Status => "status",
            Stage::CheckValue => "check_value",
            Stage::Replay => "replay",
            Stage::Token => "token",
            Stage::Plausibility => "plausibility",
            Stage::Policy => "policy",
            Stage::Target => "target",
            Stage::Audit => "audit",
        }
    }

    /// What the sender is told: the class of denial, never the detail.
    pub fn public_message(self) -> &'static str {
        match self {
            Stage::Identity => {
                "access denied: originator does not match the authenticated identity"
            }
            Stage::Gateway => "access denied: gateway deactivated or out of date",
            Stage::Status => "access denied: originator is not active",
            Stage::CheckValue => "access denied: check value missing or invalid",
            Stage::Replay => "access denied: stale or replayed request",
            Stage::Token => "access denied: token missing or invalid",
            Stage::Plausibility => "access denied: implausible request",
            Stage::Policy => "access denied by policy",
            Stage::Target => "access denied: target could not be resolved",
            Stage::Audit => "refused: the gateway cannot write its audit log",
        }
    }
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a request was refused: the stage, and the [`Reason`] (for logs, the audit record and the
/// operator only; the sender learns the stage's class, see [`crate::record::Answer`]).
#[derive(Clone, Debug, PartialEq)]
pub struct Denial {
    pub stage: Stage,
    pub reason: Reason,
}

impl Denial {
    pub(super) fn new(stage: Stage, reason: Reason) -> Self {
        Denial { stage, reason }
    }

    /// A token-stage denial made before the guard: a token id not resolved at the authority
    /// ([`crate::das`]).
    pub fn token(reason: Reason) -> Self {
        Denial::new(Stage::Token, reason)
    }

    /// A target that was not resolved (decided outside the guard: it is no decision on the
    /// request, only the refusal to decide on a name that is not known).
    pub fn unresolved(unresolved: crate::target::resolve::Unresolved) -> Self {
        Denial::new(Stage::Target, Reason::Unresolved(unresolved))
    }

    /// The audit log cannot take records (decided outside the guard, by the decider).
    pub fn audit_unavailable() -> Self {
        Denial::new(Stage::Audit, Reason::AuditUnavailable)
    }

    /// A resource-id target that reached the guard without being resolved.
    pub fn unresolved_at_guard() -> Self {
        Denial::new(Stage::Target, Reason::UnresolvedAtGuard)
    }

    /// An MQTT CONNECT whose claims bind no originator (the identity stage, decided by the
    /// binding, which alone reads CONNECT).
    pub fn session_claims(error: ClaimError) -> Self {
        Denial::new(Stage::Identity, Reason::SessionClaims(error))
    }
}

impl fmt::Display for Denial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.stage, self.reason)
    }
}

/// Something the guard adds to an allowed request on its way out. Each binding applies it to
/// its own wire form.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Addition {
    /// A check value (`aus`) the gateway computed for a legacy device (see
    /// [`super::checks::MessageChecks::insert`]): HTTP header `X-M2M-AS`, CoAP option 339, MQTT
    /// JSON member `aus`.
    CheckValue(String),
    /// An access-control token the gateway obtained for a legacy device ([`crate::das`]):
    /// HTTP `Authorization: Bearer`, CoAP Uri-Query `tkns=`, MQTT member `tkns`.
    Token(String),
}

/// Proof that the guard allowed one request. Not `Clone`: one permit, one forward.
#[derive(Debug, PartialEq)]
pub struct Permit {
    policy_ids: Vec<String>,
    additions: Vec<Addition>,
    /// The denial this request escaped: `@observe` policies that would forbid it, or (observe
    /// mode) the guard's own denial. Boxed: most permits have none.
    would_deny: Option<Box<Denial>>,
    follow_up: Option<FollowUp>,
}

impl Permit {
    pub(super) fn new(policy_ids: Vec<String>, additions: Vec<Addition>) -> Self {
        Permit {
            policy_ids,
            additions,
            follow_up: None,
            would_deny: None,
        }
    }

    /// A request the guard denied, let through in observe mode (only the
    /// [`crate::decision::Decider`] makes these, and only in observe mode): no policy permitted
    /// it and nothing is added to it; it carries `denial`, which its record reports.
    pub(crate) fn observed(denial: Denial) -> Self {
        Permit {
            would_deny: Some(Box::new(denial)),
            ..Permit::new(Vec::new(), Vec::new())
        }
    }

    /// The same permit, recording what `@observe` policies would have denied.
    pub(super) fn observing(mut self, would_deny: Option<Denial>) -> Self {
        self.would_deny = would_deny.map(Box::new);
        self
    }

    /// The denial this request would have had: by `@observe` policies, or in observe mode.
    pub fn would_deny(&self) -> Option<&Denial> {
        self.would_deny.as_deref()
    }

    /// The same permit, with what to do once the upstream answered.
    pub(super) fn with_follow_up(mut self, follow_up: Option<FollowUp>) -> Self {
        self.follow_up = follow_up;
        self
    }

    /// What to do once the upstream answered (enrol a registration, remove a node that
    /// deregistered); taken once, by the binding that forwards.
    pub fn take_follow_up(&mut self) -> Option<FollowUp> {
        self.follow_up.take()
    }

    /// What the guard adds to the request, in order.
    pub fn additions(&self) -> &[Addition] {
        &self.additions
    }

    /// The additions, spending the permit.
    pub fn into_additions(self) -> Vec<Addition> {
        self.additions
    }

    /// The Cedar policies that permitted the request.
    pub fn policy_ids(&self) -> &[String] {
        &self.policy_ids
    }
}

#[derive(Debug, PartialEq)]
pub enum Verdict {
    Allow(Permit),
    Deny(Denial),
}

impl Verdict {
    pub fn is_allow(&self) -> bool {
        matches!(self, Verdict::Allow(_))
    }
}
