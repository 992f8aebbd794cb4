//! Issuing a token (docs/authority.md "Issued tokens"): a TS-0003 JWT signed with the token
//! key — header `{"alg":"EdDSA","kid":"<token key kid>","typ":"JWT"}`, claims in this order
//! `iss`, `aud`, `azp`, `jti`, `nbf`, `exp`, `tkps`, and `tkuc` when the grant limits uses —
//! and remembering it (jti → token until its `exp`) for `GET /v1/das/tokens/{jti}`.

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::config::Grant;
use super::grant::Ask;
use crate::authority::state::StateError;
use crate::feed::keys::hex;
use crate::feed::SigningKey;

/// An issued token, as answered and as remembered.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Issued {
    pub token: String,
    pub jti: String,
    pub exp: u64,
    pub uses: Option<u64>,
}

/// The claims of a token for `ask`, allowed by `grant`, at `now`; `jti` 32 hex digits.
pub fn claims(issuer: &str, ask: &Ask, mask: u64, grant: &Grant, jti: &str, now: u64) -> Value {
    let mut claims = json!({
        "iss": issuer,
        "aud": ask.aud,
        "azp": ask.node,
        "jti": jti,
        "nbf": now,
        "exp": now + grant.ttl_s,
        "tkps": [{"ris": ask.ris, "pv": {"acr": [{"acop": mask}]}}],
    });
    if let Some(uses) = grant.uses {
        claims["tkuc"] = json!(uses);
    }
    claims
}

/// The compact JWT of `claims` signed with `key`.
pub fn sign(key: &SigningKey, claims: &Value) -> String {
    let header = format!(r#"{{"alg":"EdDSA","kid":"{}","typ":"JWT"}}"#, key.kid());
    let signing = format!(
        "{}.{}",
        B64.encode(header),
        B64.encode(serde_json::to_vec(claims).expect("JSON"))
    );
    let signature = key.sign(signing.as_bytes());
    format!("{signing}.{}", B64.encode(signature))
}

/// A fresh token id: 16 random bytes in hex.
pub fn new_jti() -> String {
    hex(&crate::feed::keys::random32()[..16])
}

/// The `das_tokens` tree: jti → [`Issued`] (JSON), at most `max` entries; expired ones are
/// dropped when room is needed and never answered.
pub struct IssuedTokens {
    tree: sled::Tree,
}

impl IssuedTokens {
    pub fn open(db: &sled::Db) -> Result<Self, StateError> {
        Ok(IssuedTokens {
            tree: db.open_tree("das_tokens")?,
        })
    }

    /// Remembers `issued`, durably; `Ok(false)` when `max` unexpired tokens are held.
    pub fn put(&self, issued: &Issued, max: u64, now: u64) -> Result<bool, StateError> {
        if self.tree.len() as u64 >= max {
            for entry in self.tree.iter() {
                let (k, v) = entry?;
                let expired = serde_json::from_slice::<Issued>(&v).map_or(true, |i| i.exp <= now);
                if expired {
                    self.tree.remove(k)?;
                }
            }
            if self.tree.len() as u64 >= max {
                return Ok(false);
            }
        }
        let value = serde_json::to_vec(issued).expect("JSON");
        self.tree.insert(issued.jti.as_bytes(), value)?;
        self.tree.flush()?;
        Ok(true)
    }

    /// The unexpired token `jti`.
    pub fn get(&self, jti: &str, now: u64) -> Result<Option<Issued>, StateError> {
        let Some(v) = self.tree.get(jti.as_bytes())? else {
            return Ok(None);
        };
        let issued: Issued = serde_json::from_slice(&v).map_err(|e| StateError::Corrupt {
            key: jti.to_owned(),
            detail: e.to_string(),
        })?;
        Ok((issued.exp > now).then_some(issued))
    }
}
