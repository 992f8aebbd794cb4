//! The authority as dynamic authorization server (TS-0003 §7.2.1–7.2.2, docs/authority.md
//! "Tokens"): it issues access-control tokens (JWTs, EdDSA) to enrolled nodes that sign their
//! request with one of their check-value keys ([`request`]), or to a gateway on a node's
//! behalf where a grant names that gateway in `via`, for what its `[[das.grants]]` allow
//! ([`grant`]). The token key's public half goes to every gateway through the feed
//! (`issuer.put`, [`issuer_plan`]); issued tokens are remembered until they expire
//! ([`issue::IssuedTokens`]) so that gateways can resolve `tids`.

pub mod config;
pub mod grant;
pub mod issue;
pub mod request;

use std::path::Path;

pub use config::{DasConfig, FileDas, Grant};
pub use grant::Ask;
pub use issue::{Issued, IssuedTokens};
pub use request::{Nonces, RequestError};

use super::ops::OpError;
use super::publish::Plan;
use super::state::{Change, State};
use crate::feed::keys::{hex, random32};
use crate::feed::{Body, IssuerBody, IssuerIdBody, SigningKey};
use crate::store::NodeStatus;

pub struct Das {
    config: DasConfig,
    key: SigningKey,
    nonces: Nonces,
}

/// Why no token was issued, with the HTTP status it is answered with.
#[derive(Debug, thiserror::Error)]
pub enum DasError {
    #[error(transparent)]
    Request(#[from] RequestError),
    /// 403: authenticated, but nothing is granted (or the node may not obtain tokens).
    #[error("{0}")]
    Forbidden(String),
    /// 503: too many tokens remembered.
    #[error("{0}")]
    Busy(String),
    #[error(transparent)]
    State(#[from] super::state::StateError),
}

impl Das {
    /// Reads the token key, creating it (0600) when the file does not exist.
    pub fn load(config: DasConfig, started: u64) -> Result<Das, String> {
        let key = load_or_create(&config.token_key)?;
        Ok(Das {
            config,
            key,
            nonces: Nonces::new(started),
        })
    }

    pub fn issuer(&self) -> &str {
        &self.config.issuer
    }

    /// The `issuer.put` body of the token key.
    pub fn issuer_body(&self) -> IssuerBody {
        IssuerBody {
            iss: self.config.issuer.clone(),
            alg: "EdDSA".into(),
            key: hex(self.key.public().raw()),
            max_uses: None,
        }
    }

    /// A token for a node's own signed request.
    pub fn for_node(&self, state: &State, text: &str, now: u64) -> Result<Issued, DasError> {
        let ask = request::verify(text, state, &self.nonces, now)?;
        self.issue(state, &ask, None, now)
    }

    /// A token for `ask`, asked by the node itself (`via` none) or by gateway `via`.
    pub fn issue(
        &self,
        state: &State,
        ask: &Ask,
        via: Option<&str>,
        now: u64,
    ) -> Result<Issued, DasError> {
        let mask = ask.mask().map_err(RequestError::Malformed)?;
        let node = state
            .node(&ask.node)?
            .filter(|n| n.status == NodeStatus::Active)
            .ok_or_else(|| {
                DasError::Forbidden(format!("{:?} is not an active node", short(&ask.node)))
            })?;
        let Some(grant) = grant::find(&self.config.grants, &node, ask, mask, via) else {
            return Err(DasError::Forbidden(format!(
                "no grant allows {:?} {} on {} for {}{}",
                short(&ask.node),
                ask.ops.join(","),
                ask.ris
                    .iter()
                    .map(|r| short(r))
                    .collect::<Vec<_>>()
                    .join(","),
                ask.aud.join(","),
                via.map(|g| format!(" via gateway {g:?}"))
                    .unwrap_or_default(),
            )));
        };
        let jti = issue::new_jti();
        let claims = issue::claims(&self.config.issuer, ask, mask, grant, &jti, now);
        let issued = Issued {
            token: issue::sign(&self.key, &claims),
            jti,
            exp: now + grant.ttl_s,
            uses: grant.uses,
        };
        if !state.issued().put(&issued, self.config.max_issued, now)? {
            return Err(DasError::Busy(format!(
                "{} unexpired tokens are held (das.max_issued); try again later",
                self.config.max_issued
            )));
        }
        tracing::info!(node = %ask.node, jti = %issued.jti, exp = issued.exp, via = via.unwrap_or("-"), "token issued");
        Ok(issued)
    }
}

/// The records that bring the published issuers in line with `das`: `issuer.remove` for
/// every published `iss` that is not the current one, `issuer.put` when the current one is
/// not published with this key (a new or rotated key). Empty when nothing changed.
pub fn issuer_plan(state: &State, das: Option<&Das>) -> Result<Plan, OpError> {
    let current = das.map(Das::issuer_body);
    let mut plan = Plan::default();
    for old in state.issuers()? {
        if current.as_ref().is_some_and(|c| c.iss == old.iss) {
            continue;
        }
        plan.records.push((
            vec!["*".into()],
            Body::IssuerRemove(IssuerIdBody {
                iss: old.iss.clone(),
            }),
        ));
        plan.changes.push(Change::RemoveIssuer(old.iss));
    }
    if let Some(body) = current {
        let published = state.issuers()?.into_iter().find(|i| i.iss == body.iss);
        if published.as_ref() != Some(&body) {
            plan.records
                .push((vec!["*".into()], Body::IssuerPut(body.clone())));
            plan.changes.push(Change::PutIssuer(body));
        }
    }
    Ok(plan)
}

fn short(text: &str) -> String {
    text.chars().take(64).collect()
}

fn load_or_create(path: &Path) -> Result<SigningKey, String> {
    if !path.exists() {
        let seed = format!("{}\n", hex(&random32()));
        crate::authority::material::write_new(path, &seed, true)
            .map_err(|e| format!("das.token_key: cannot create the token key: {e}"))?;
        tracing::warn!(path = %path.display(), "das: token key created (first start with [das])");
    }
    SigningKey::load(path).map_err(|e| format!("das.token_key: {e}"))
}
#[cfg(test)]
mod tests;
