//! The guard: one ordered pipeline of checks that every request passes through, whatever
//! binding it came on.
//!
//! In: a [`Primitive`], the repository ([`Nodes`]), the policy set in force ([`Policies`]) and
//! `now`. Out: a [`Verdict`]. Order, cheapest first: identity binding → node status → message
//! checks (check value, replay, token, plausibility; see [`checks`]) → Cedar policy, which sees
//! what the message checks found. Each stage is a function of its inputs; none does network
//! I/O. Every failure, internal ones included, is a denial: the guard fails closed.
//!
//! A registration (a create of an AE or remoteCSE by an originator the repository does not
//! know, [`crate::registration`]) takes its own path: the registrant's certificate may not be
//! bound already, then the message checks, then Cedar's action `register`; its permit carries
//! what to enrol once the upstream accepted.

pub mod check_value;
pub mod checks;
#[cfg(test)]
mod civil;
mod findings;
mod identity;
mod insert;
mod pattern;
pub mod plausibility;
mod policy;
pub mod reason;
pub mod reason_name;
mod registration;
pub mod replay;
mod status;
pub mod timestamp;
pub mod token;
mod verdict;
pub mod window;

use std::sync::Arc;
use std::time::SystemTime;

use crate::policy::Policies;
use crate::primitive::{Peer, Primitive, TopicRequest};
use crate::store::Nodes;
pub use checks::{ChecksConfig, MessageChecks, Requirement};
pub use findings::{Findings, TokenGrant};
pub use pattern::Pattern;
pub use plausibility::Plausibility;
pub use reason::{ClaimError, Implausibility, Reason, SequenceRefusal};
pub use registration::Admission;
pub use status::{Principal, Unknown};
pub use token::Tokens;
pub use verdict::{Addition, Denial, Permit, Stage, Verdict};

pub struct Guard {
    nodes: Arc<Nodes>,
    policies: Arc<Policies>,
    checks: MessageChecks,
    evaluator: policy::Evaluator,
    unknown: Unknown,
    /// Groups every node that registers through the gateway gets.
    registration_groups: Vec<String>,
}

impl Guard {
    pub fn new(nodes: Arc<Nodes>, policies: Arc<Policies>, checks: MessageChecks) -> Self {
        let nodes_capacity = nodes.capacity();
        let evaluator = policy::Evaluator::new(nodes_capacity, nodes.standing().clone());
        Guard {
            nodes,
            policies,
            checks,
            evaluator,
            unknown: Unknown::Deny,
            registration_groups: Vec::new(),
        }
    }

    /// What to do with originators the repository does not know, and the groups registered
    /// nodes get (`[gateway] unknown_originators`, `registration_groups`).
    pub fn with_enrolment(mut self, unknown: Unknown, registration_groups: Vec<String>) -> Self {
        self.unknown = unknown;
        self.registration_groups = registration_groups;
        self
    }

    /// Decides one request.
    pub fn decide(&self, p: &Primitive, now: SystemTime) -> Verdict {
        match self.run(p, now) {
            Ok(permit) => Verdict::Allow(permit),
            Err(denial) => Verdict::Deny(denial),
        }
    }

    /// The stages that need only the head (identity, status), for bindings to run before they
    /// read a body. [`Guard::decide`] runs them again: a status change in between counts.
    pub fn precheck(&self, p: &Primitive) -> Result<(), Denial> {
        let node = status::lookup(&self.nodes, &p.fr)?;
        if node.is_none() && crate::registration::kind(p).is_some() {
            return identity::check_registrant(&p.fr, &p.peer, &self.nodes);
        }
        identity::check(p, node.as_deref(), &self.nodes)?;
        status::standing(&p.fr, node, self.unknown).map(|_| ())
    }

    /// Decides a request that arrived where the binding knows who must have sent it (e.g. an
    /// MQTT session bound at CONNECT): `fr` must equal each `(what, id)` of `bound`, then as
    /// [`Guard::decide`].
    pub fn decide_bound(
        &self,
        p: &Primitive,
        bound: &[(&'static str, &str)],
        now: SystemTime,
    ) -> Verdict {
        let bound_check = || {
            let node = status::lookup(&self.nodes, &p.fr)?;
            identity::check_bound(&p.fr, bound, node.as_deref(), &self.nodes)
        };
        match bound_check().and_then(|()| self.run(p, now)) {
            Ok(permit) => Verdict::Allow(permit),
            Err(denial) => Verdict::Deny(denial),
        }
    }

    /// Whether `originator` is a known, active node now (for data that keeps flowing to a
    /// node after its request was decided, e.g. CoAP notifications).
    pub fn active(&self, originator: &str) -> bool {
        status::check(&self.nodes, originator).is_ok()
    }

    /// Whether the gateway's own standing refuses `originator` now (stage `gateway`).
    pub fn refused_by_gateway(&self, originator: &str) -> bool {
        matches!(status::lookup(&self.nodes, originator), Err(d) if d.stage == Stage::Gateway)
    }

    /// Node status changes from now on (see [`Nodes::status_changes`]).
    pub fn status_changes(&self) -> tokio::sync::broadcast::Receiver<String> {
        self.nodes.status_changes()
    }

    /// Admits a session (MQTT CONNECT) for `originator` reached through `peer`: identity
    /// binding and node status. An originator the repository does not know is admitted for
    /// registration only (or, with `unknown_originators = "policy"`, as any session, for
    /// Cedar to decide its requests).
    pub fn admit(&self, originator: &str, peer: &Peer) -> Result<Admission, Denial> {
        let node = status::lookup(&self.nodes, originator)?;
        if node.is_none() && self.unknown == Unknown::Deny {
            identity::check_registrant(originator, peer, &self.nodes)?;
            return Ok(Admission::Registrant);
        }
        identity::check_claim(originator, peer, node.as_deref(), &self.nodes)?;
        status::standing(originator, node, self.unknown).map(|_| Admission::Node)
    }

    /// Decides a publish to or a subscription on a topic: identity, node status, Cedar policy
    /// with the action `publish` or `subscribe` on `Topic::"<topic>"`.
    pub fn decide_topic(&self, t: &TopicRequest, now: SystemTime) -> Verdict {
        let run = || {
            let node = status::lookup(&self.nodes, &t.originator)?;
            identity::check_claim(&t.originator, &t.peer, node.as_deref(), &self.nodes)?;
            let principal = status::standing(&t.originator, node, self.unknown)?;
            let bundle = self.policies.current();
            let allowed = self.evaluator.check_topic(&bundle, t, &principal, now)?;
            Ok(Permit::new(allowed.ids, Vec::new()).observing(allowed.would_deny))
        };
        match run() {
            Ok(permit) => Verdict::Allow(permit),
            Err(denial) => Verdict::Deny(denial),
        }
    }

    fn run(&self, p: &Primitive, now: SystemTime) -> Result<Permit, Denial> {
        let node = status::lookup(&self.nodes, &p.fr)?;
        if node.is_none() {
            if let Some(kind) = crate::registration::kind(p) {
                return self.register(p, kind, now);
            }
        }
        identity::check(p, node.as_deref(), &self.nodes)?;
        let principal = status::standing(&p.fr, node, self.unknown)?;
        let findings = self.checks.run(p, &principal.node, now)?;
        let bundle = self.policies.current();
        let allowed = self
            .evaluator
            .check(&bundle, p, &principal, &findings, now)?;
        let follow_up = registration::deregistration(p, &principal);
        let permit = Permit::new(allowed.ids, self.checks.insert(p)?).with_follow_up(follow_up);
        Ok(permit.observing(allowed.would_deny))
    }
}

#[cfg(test)]
mod tests;
