//! The message checks between node status and policy, in order: check value → replay
//! (timestamp, request id, then the sequence number, only once the check value holds) →
//! token → plausibility. A check value or token runs when its target requires it
//! (`[[checks.require]]`) or when the request carries one (a credential that does not verify is
//! refused, required or not); the timestamp check runs where required (legacy clients send all
//! sorts of `ot`). What passed goes to the policy as [`Findings`].
//!
//! In: the primitive, its node record, `now`, and the state built from `[checks]`. Out:
//! [`Findings`] or the [`Denial`] of the first check that failed.

use std::sync::Arc;
use std::time::SystemTime;

use super::check_value;
use super::insert::Inserter;
use super::plausibility::Plausibility;
use super::replay::{ReplayConfig, Timestamps};
use super::token::Tokens;
use super::window::Windows;
use super::{Addition, Denial, Findings, Pattern, Reason, Stage};
use crate::primitive::Primitive;
use crate::security::CheckKey;
use crate::store::{Keys, Node, Store, StoreError};

/// `[checks]`, validated: where checks are required, the replay window, and the configured
/// check-value keys (which seed the repository; the stage reads the ring in force from
/// [`Keys`]).
#[derive(Debug, Clone, Default)]
pub struct ChecksConfig {
    pub require: Vec<Requirement>,
    pub replay: ReplayConfig,
    pub keys: Vec<CheckKey>,
}

/// Checks required for targets matching `path`. Requirements of all matching rules add up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Requirement {
    pub path: Pattern,
    pub check_value: bool,
    pub timestamp: bool,
    pub token: bool,
}

/// The checks a target requires: the union of every matching `[[checks.require]]` rule.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Required {
    pub check_value: bool,
    pub timestamp: bool,
    pub token: bool,
}

pub struct MessageChecks {
    require: Vec<Requirement>,
    /// The key ring in force, read per request: a key changed at run time counts at once.
    keys: Arc<Keys>,
    timestamps: Timestamps,
    /// Sequence windows; `None` without a repository (then there are no keys either).
    windows: Option<Windows>,
    inserter: Inserter,
    tokens: Arc<Tokens>,
    plausibility: Plausibility,
}

impl MessageChecks {
    /// No requirements, keys or token issuers: requests that carry nothing to check pass
    /// through; a check value cannot verify (no keys) and a presented token is refused
    /// (unknown issuer); timestamps are checked with the default window where required.
    pub fn off() -> Self {
        MessageChecks {
            require: Vec::new(),
            keys: Arc::new(Keys::empty()),
            timestamps: Timestamps::new(&Default::default()),
            windows: None,
            inserter: Inserter::new(1, None),
            tokens: Arc::new(Tokens::none()),
            plausibility: Plausibility::off(),
        }
    }

    /// `keys` is the ring in force (seeded from `config.keys` by the caller); `tokens` is
    /// shared with the admin API, which revokes through it.
    pub fn new(
        config: &ChecksConfig,
        keys: Arc<Keys>,
        tokens: Arc<Tokens>,
        store: Arc<dyn Store>,
    ) -> Result<Self, StoreError> {
        let r = &config.replay;
        Ok(MessageChecks {
            require: config.require.clone(),
            keys,
            timestamps: Timestamps::new(r),
            windows: Some(Windows::new(r.window, r.lease, store.clone())),
            inserter: Inserter::new(r.lease, Some(store)),
            tokens,
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

    /// What to add to an allowed request: the token the gateway attached, if it did; a check
    /// value, if its node has an insert key.
    pub fn insert(&self, p: &Primitive) -> Result<Vec<Addition>, Denial> {
        let token = p.security.attached.clone().map(Addition::Token);
        let aus = self.inserter.aus(p, &self.keys.ring())?;
        Ok(token
            .into_iter()
            .chain(aus.map(Addition::CheckValue))
            .collect())
    }

    pub fn run(&self, p: &Primitive, node: &Node, now: SystemTime) -> Result<Findings, Denial> {
        let required = self.required(&p.to);
        let mut findings = Findings::default();
        let verified = check_value::verify(&self.keys.ring(), p)?;
        if verified.is_none() && required.check_value {
            return Err(Denial::new(
                Stage::CheckValue,
                Reason::CheckValueRequired {
                    target: p.to.clone(),
                },
            ));
        }
        if required.timestamp {
            self.timestamps.check(p, now)?;
            findings.timestamp = true;
        }
        if let Some(v) = verified {
            let windows = self
                .windows
                .as_ref()
                .ok_or_else(|| Denial::new(Stage::Replay, Reason::NoSequenceRepository))?;
            windows.check(&v.key_id, v.seq)?;
            findings.check_value = true;
        }
        findings.token = self.tokens.check(p, required.token, now)?;
        self.plausibility.run(p, node, now, &mut findings)?;
        Ok(findings)
    }
}
