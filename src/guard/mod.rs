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
mod findings;
mod identity;
mod insert;
mod pattern;
pub mod plausibility;
mod policy;
pub mod replay;
mod status;
pub mod token;
mod verdict;
pub mod window;

use std::sync::Arc;
use std::time::SystemTime;

use crate::policy::Policies;
use crate::primitive::Primitive;
use crate::store::Nodes;
pub use checks::MessageChecks;
pub use findings::{Findings, TokenGrant};
pub use pattern::Pattern;
pub use plausibility::Plausibility;
pub use token::Tokens;
pub use verdict::{DecisionRecord, Denial, Permit, Stage, Verdict};

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
