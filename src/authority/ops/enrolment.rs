//! Enrolment (docs/authority.md "Enrolment"): the operator issues a gateway a one-time code
//! (the authority keeps only its SHA-256 and an expiry); the gateway presents it once with
//! the public keys it made itself, and the authority registers them and signs its client
//! certificate, consuming the code in the same transaction.

use serde::Deserialize;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::input::is_gateway_id;
use super::{one, OpError};
use crate::authority::material::{p256_point, Ca};
use crate::authority::publish::Plan;
use crate::authority::state::{Change, State, StoredCode, StoredGateway};
use crate::feed::keys::{hex, random32};
use crate::feed::GatewayStatus;

/// What a gateway sends to `POST /v1/enrol`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnrolInput {
    pub id: String,
    /// The one-time code, as the operator's file holds it.
    pub code: String,
    /// Ed25519 public key, 64 hex digits.
    pub sign: String,
    /// X25519 public key, 64 hex digits.
    pub seal: String,
    /// The SubjectPublicKeyInfo (DER, hex) of the gateway's TLS client key: ECDSA P-256.
    pub tls: String,
}

/// What an enrolment gives the gateway.
pub struct Enrolled {
    pub cert_pem: String,
}

/// SHA-256 of `text`, hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

/// Issues gateway `id` a fresh code (replacing any pending one); answers the code and when it
/// expires. A gateway that is registered and not removed has its credentials already (409).
pub fn code_issue(
    state: &State,
    id: &str,
    ttl_s: u64,
    now: u64,
) -> Result<(Plan, (String, u64)), OpError> {
    check_id(id)?;
    if let Some(gw) = state.gateway(id)? {
        if gw.status != GatewayStatus::Removed {
            return Err(OpError::Conflict(format!(
                "gateway {id:?} is registered already (remove it first to enrol it again)"
            )));
        }
    }
    let code = hex(&random32());
    let expires_at = now.saturating_add(ttl_s);
    let stored = StoredCode {
        hash: sha256_hex(code.as_bytes()),
        expires_at,
    };
    let plan = one(Vec::new(), vec![Change::PutCode(id.to_owned(), stored)]);
    Ok((plan, (code, expires_at)))
}

/// Checks the code and the keys, signs the client certificate, and plans the gateway's
/// registration together with the code's removal. A wrong, used or expired code is
/// [`OpError::Unauthorized`].
pub fn enrol(
    state: &State,
    input: EnrolInput,
    ca: &Ca,
    now: u64,
) -> Result<(Plan, Enrolled), OpError> {
    check_id(&input.id)?;
    let id = input.id;
    let refused = || {
        OpError::Unauthorized(format!(
            "enrolment code refused for gateway {id:?}: wrong, used already, or never issued"
        ))
    };
    let stored = state.code(&id)?.ok_or_else(refused)?;
    let presented = sha256_hex(input.code.trim().as_bytes());
    if !bool::from(presented.as_bytes().ct_eq(stored.hash.as_bytes())) {
        return Err(refused());
    }
    if now > stored.expires_at {
        return Err(OpError::Unauthorized(format!(
            "enrolment code for gateway {id:?} expired at {} (Unix seconds): ask the operator for a new one",
            stored.expires_at
        )));
    }
    let (sign, seal) = super::gateways::check_keys(&input.sign, &input.seal)?;
    let spki = crate::feed::keys::decode_hex(&input.tls)
        .ok_or_else(|| OpError::Invalid("tls is not hex (a DER SubjectPublicKeyInfo)".into()))?;
    let point = p256_point(&spki).ok_or_else(|| {
        OpError::Invalid(
            "tls is not the SubjectPublicKeyInfo of an ECDSA P-256 public key (DER, hex)".into(),
        )
    })?;
    let cert_pem = ca
        .issue_for(&id, point)
        .map_err(|e| OpError::Invalid(e.to_string()))?;
    let gateway = StoredGateway {
        id: id.clone(),
        sign,
        seal,
        status: GatewayStatus::Active,
        confirmed: None,
        tls: Some(sha256_hex(&spki)),
        removed_at: None,
    };
    let plan = one(
        Vec::new(),
        vec![Change::PutGateway(gateway), Change::RemoveCode(id)],
    );
    Ok((plan, Enrolled { cert_pem }))
}

fn check_id(id: &str) -> Result<(), OpError> {
    if is_gateway_id(id) {
        Ok(())
    } else {
        Err(OpError::Invalid(format!(
            "{id:?} is not a gateway id (expected 1 to 64 of A-Z a-z 0-9 . _ -)"
        )))
    }
}
