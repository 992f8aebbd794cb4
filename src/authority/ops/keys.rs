//! Key operations (`key.put` with the secret sealed to every gateway, `key.remove`) and token
//! revocations.

use std::collections::BTreeMap;

use super::input::{decode_hex, is_key_id, parse_secret, KeyInput};
use super::nodes::existing_node;
use super::{all, one, OpError};
use crate::authority::publish::{now_s, Plan};
use crate::authority::state::{Change, State, StoredGateway, StoredKey};
use crate::feed::keys::{hex, parse_hex32, random32};
use crate::feed::seal::{self, Randomness};
use crate::feed::{Body, IdBody, KeyBody, TokenBody};

/// Adds a key; answers its secret (hex).
pub fn key_add(state: &State, input: KeyInput) -> Result<(Plan, String), OpError> {
    if !is_key_id(&input.id) {
        return Err(OpError::Invalid(format!(
            "{:?} is not a key id (expected 1 to 64 of A-Z a-z 0-9 _ -)",
            input.id
        )));
    }
    existing_node(state, &input.node)?;
    if state.key(&input.id)?.is_some() {
        return Err(OpError::Conflict(format!(
            "key {:?} exists already (rotate it instead)",
            input.id
        )));
    }
    if input.insert {
        if let Some((other, _)) = state
            .keys()?
            .into_iter()
            .find(|(_, k)| k.node == input.node && k.insert)
        {
            return Err(OpError::Conflict(format!(
                "node {:?} already has an insert key ({other:?}); one per node",
                input.node
            )));
        }
    }
    let secret = match &input.secret {
        Some(text) => parse_secret(text)?,
        None => random32().to_vec(),
    };
    let key = StoredKey {
        node: input.node,
        insert: input.insert,
        secret: hex(&secret),
    };
    Ok((put_key(state, &input.id, key)?, hex(&secret)))
}

/// The same key id with a new random secret; answers it (hex).
pub fn key_rotate(state: &State, id: &str) -> Result<(Plan, String), OpError> {
    let old = state
        .key(id)?
        .ok_or_else(|| OpError::NotFound(format!("no key {id:?}")))?;
    let secret = hex(&random32());
    let key = StoredKey {
        secret: secret.clone(),
        ..old
    };
    Ok((put_key(state, id, key)?, secret))
}

pub fn key_remove(state: &State, id: &str) -> Result<Plan, OpError> {
    if state.key(id)?.is_none() {
        return Err(OpError::NotFound(format!("no key {id:?}")));
    }
    Ok(one(
        vec![(all(), Body::KeyRemove(IdBody { id: id.to_owned() }))],
        vec![Change::RemoveKey(id.to_owned())],
    ))
}

pub fn token_revoke(state: &State, jti: &str) -> Result<Plan, OpError> {
    if jti.is_empty() || jti.len() > 256 || jti.chars().any(char::is_control) {
        return Err(OpError::Invalid(
            "expected a token id (jti) of 1 to 256 printable characters".into(),
        ));
    }
    if state.is_revoked(jti)? {
        return Err(OpError::Conflict(format!(
            "token {jti:?} is revoked already"
        )));
    }
    Ok(one(
        vec![(
            all(),
            Body::TokenRevoke(TokenBody {
                jti: jti.to_owned(),
            }),
        )],
        vec![Change::Revoke(jti.to_owned(), now_s())],
    ))
}

/// The `key.put` body of `key`, its secret sealed to each of `gateways`.
pub fn key_body<'a>(
    id: &str,
    key: &StoredKey,
    gateways: impl IntoIterator<Item = &'a StoredGateway>,
) -> Result<KeyBody, OpError> {
    let secret = decode_hex(&key.secret)
        .ok_or_else(|| OpError::Invalid(format!("stored secret of key {id:?} is not hex")))?;
    let mut sealed = BTreeMap::new();
    for gateway in gateways {
        let to = parse_hex32(&gateway.seal, "seal").map_err(|_| {
            OpError::Invalid(format!("gateway {:?} has a bad seal key", gateway.id))
        })?;
        let jwe = seal::seal(&secret, &to, &Randomness::fresh())
            .map_err(|e| OpError::Invalid(format!("gateway {:?}: {e}", gateway.id)))?;
        sealed.insert(gateway.id.clone(), jwe);
    }
    Ok(KeyBody {
        id: id.to_owned(),
        node: key.node.clone(),
        insert: key.insert,
        sealed,
    })
}

fn put_key(state: &State, id: &str, key: StoredKey) -> Result<Plan, OpError> {
    // A removed gateway gets no secret any more.
    let gateways: Vec<StoredGateway> = state
        .gateways()?
        .into_iter()
        .filter(|g| g.status != crate::feed::GatewayStatus::Removed)
        .collect();
    let body = key_body(id, &key, &gateways)?;
    Ok(one(
        vec![(all(), Body::KeyPut(body))],
        vec![Change::PutKey(id.to_owned(), key)],
    ))
}
