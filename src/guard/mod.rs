//! The guard: one ordered pipeline of checks that every request passes through, whatever
//! binding it came on.
//!
//! In: a [`Primitive`], the repository ([`Nodes`]), the policy set in force ([`Policies`]) and
//! `now`. Out: a [`Verdict`]. Order, cheapest first: identity binding → node status → message
//! checks (check value, replay, token, plausibility; see [`checks`]) → Cedar policy, which sees
//! what the message checks found. Each stage is a function of its inputs; none does network
//! I/O.
//! Every failure, internal ones included, is a denial: the guard fails closed.

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
pub use token::Tokens;
pub use verdict::{Addition, Denial, Permit, Stage, Verdict};

pub struct Guard {
    nodes: Arc<Nodes>,
    policies: Arc<Policies>,
    checks: MessageChecks,
    evaluator: policy::Evaluator,
}

impl Guard {
    pub fn new(nodes: Arc<Nodes>, policies: Arc<Policies>, checks: MessageChecks) -> Self {
        let nodes_capacity = nodes.capacity();
        Guard {
            nodes,
            policies,
            checks,
            evaluator: policy::Evaluator::new(nodes_capacity),
        }
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
        identity::check(p)?;
        status::check(&self.nodes, &p.fr).map(|_| ())
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
        match identity::check_bound(&p.fr, bound).and_then(|()| self.run(p, now)) {
            Ok(permit) => Verdict::Allow(permit),
            Err(denial) => Verdict::Deny(denial),
        }
    }

    /// Whether `originator` is a known, active node now (for data that keeps flowing to a
    /// node after its request was decided, e.g. CoAP notifications).
    pub fn active(&self, originator: &str) -> bool {
        status::check(&self.nodes, originator).is_ok()
    }

    /// Admits a session (MQTT CONNECT) for `originator` reached through `peer`: identity
    /// binding and node status.
    pub fn admit(&self, originator: &str, peer: &Peer) -> Result<(), Denial> {
        identity::check_claim(originator, peer)?;
        status::check(&self.nodes, originator).map(|_| ())
    }

    /// Decides a publish to or a subscription on a topic: identity, node status, Cedar policy
    /// with the action `publish` or `subscribe` on `Topic::"<topic>"`.
    pub fn decide_topic(&self, t: &TopicRequest, now: SystemTime) -> Verdict {
        let run = || {
            identity::check_claim(&t.originator, &t.peer)?;
            let node = status::check(&self.nodes, &t.originator)?;
            let bundle = self.policies.current();
            let ids = self.evaluator.check_topic(&bundle, t, &node, now)?;
            Ok(Permit::new(ids, Vec::new()))
        };
        match run() {
            Ok(permit) => Verdict::Allow(permit),
            Err(denial) => Verdict::Deny(denial),
        }
    }

    fn run(&self, p: &Primitive, now: SystemTime) -> Result<Permit, Denial> {
        identity::check(p)?;
        let node = status::check(&self.nodes, &p.fr)?;
        let findings = self.checks.run(p, &node, now)?;
        let bundle = self.policies.current();
        let ids = self.evaluator.check(&bundle, p, &node, &findings, now)?;
        Ok(Permit::new(ids, self.checks.insert(p)?))
    }
}

#[cfg(test)]
mod tests;
