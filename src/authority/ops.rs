//! What the operator can ask of the authority, as plans for [`super::publish::Feed::publish`]:
//! the records each operation publishes and the state changes that go with them. Every
//! operation is checked against the state under the writer's lock; a refusal changes nothing.
//!
//! In: operator input (validated here) and the state. Out: a [`Plan`], or an [`OpError`]
//! that the API turns into 400, 404 or 409.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::publish::{now_s, Plan};
use super::state::{Change, State, StateError, StoredGateway, StoredKey};
use crate::feed::keys::{hex, parse_hex32, random32};
use crate::feed::seal::{self, Randomness};
use crate::feed::{Body, GatewayBody, GatewayStatus, IdBody, KeyBody, NodeBody, TokenBody};
use crate::store::{NodeKind, NodeStatus};

#[derive(Debug, thiserror::Error)]
pub enum OpError {
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error(transparent)]
    State(#[from] StateError),
}

/// A node to enrol, or the new kind, groups and registrar of one.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeInput {
    pub id: String,
    #[serde(default = "ae")]
    pub kind: NodeKind,
    #[serde(default)]
    pub groups: Vec<String>,
    #[serde(default)]
    pub registrar: Option<String>,
}

/// A node's new kind, groups and registrar (`PUT /v1/nodes/{id}`): the whole node but its
/// id and status.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeFields {
    #[serde(default = "ae")]
    pub kind: NodeKind,
    #[serde(default)]
    pub groups: Vec<String>,
    #[serde(default)]
    pub registrar: Option<String>,
}

impl NodeFields {
    pub fn with_id(self, id: &str) -> NodeInput {
        NodeInput {
            id: id.to_owned(),
            kind: self.kind,
            groups: self.groups,
            registrar: self.registrar,
        }
    }
}

fn ae() -> NodeKind {
    NodeKind::Ae
}

/// A key to add; without `secret` (hex), 32 random bytes.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyInput {
    pub id: String,
    pub node: String,
    #[serde(default)]
    pub insert: bool,
    #[serde(default)]
    pub secret: Option<String>,
}

/// A gateway to add: its id and both public keys (64 hex digits each).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GatewayInput {
    pub id: String,
    pub sign: String,
    pub seal: String,
}

const ALL: &str = "*";
const MIN_SECRET_BYTES: usize = 16;
const MAX_SECRET_BYTES: usize = 1024;

fn all() -> Vec<String> {
    vec![ALL.to_owned()]
}

fn one(plan_records: Vec<(Vec<String>, Body)>, changes: Vec<Change>) -> Plan {
    Plan {
        records: plan_records,
        changes,
    }
}

pub fn enrol(state: &State, input: NodeInput) -> Result<Plan, OpError> {
    check_node(&input)?;
    if state.node(&input.id)?.is_some() {
        return Err(OpError::Conflict(format!(
            "node {:?} is enrolled already",
            input.id
        )));
    }
    let node = NodeBody {
        id: input.id,
        kind: input.kind,
        groups: input.groups,
        status: NodeStatus::Active,
        registrar: input.registrar,
    };
    Ok(put_node(node))
}

pub fn update(state: &State, input: NodeInput) -> Result<Plan, OpError> {
    check_node(&input)?;
    let old = existing_node(state, &input.id)?;
    let node = NodeBody {
        id: input.id,
        kind: input.kind,
        groups: input.groups,
        status: old.status,
        registrar: input.registrar,
    };
    Ok(put_node(node))
}

/// Suspend, deactivate, activate or revoke. Revocation is final.
pub fn set_status(state: &State, id: &str, status: NodeStatus) -> Result<Plan, OpError> {
    let mut node = existing_node(state, id)?;
    if node.status == NodeStatus::Revoked && status != NodeStatus::Revoked {
        return Err(OpError::Conflict(format!(
            "node {id:?} is revoked; a revoked node stays revoked (remove it and enrol it anew)"
        )));
    }
    node.status = status;
    Ok(put_node(node))
}

/// `key.remove` for each of the node's keys, then `node.remove`.
pub fn remove(state: &State, id: &str) -> Result<Plan, OpError> {
    existing_node(state, id)?;
    let mut plan = Plan::default();
    for (key_id, key) in state.keys()? {
        if key.node == id {
            plan.records
                .push((all(), Body::KeyRemove(IdBody { id: key_id.clone() })));
            plan.changes.push(Change::RemoveKey(key_id));
        }
    }
    plan.records
        .push((all(), Body::NodeRemove(IdBody { id: id.to_owned() })));
    plan.changes.push(Change::RemoveNode(id.to_owned()));
    Ok(plan)
}

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

/// Registers a gateway (no record: it starts from a snapshot).
pub fn gateway_add(state: &State, input: GatewayInput) -> Result<Plan, OpError> {
    if !is_gateway_id(&input.id) {
        return Err(OpError::Invalid(format!(
            "{:?} is not a gateway id (expected 1 to 64 of A-Z a-z 0-9 . _ -)",
            input.id
        )));
    }
    for (what, value) in [("sign", &input.sign), ("seal", &input.seal)] {
        parse_hex32(value, what).map_err(|_| {
            OpError::Invalid(format!(
                "{what} is not 64 hex digits (a 32-byte public key)"
            ))
        })?;
    }
    if state.gateway(&input.id)?.is_some() {
        return Err(OpError::Conflict(format!(
            "gateway {:?} exists already",
            input.id
        )));
    }
    let gateway = StoredGateway {
        id: input.id,
        sign: input.sign.to_ascii_lowercase(),
        seal: input.seal.to_ascii_lowercase(),
        status: GatewayStatus::Active,
        confirmed: None,
    };
    Ok(one(Vec::new(), vec![Change::PutGateway(gateway)]))
}

/// `gateway.put` for that gateway alone.
pub fn gateway_status(state: &State, id: &str, status: GatewayStatus) -> Result<Plan, OpError> {
    let mut gateway = state
        .gateway(id)?
        .ok_or_else(|| OpError::NotFound(format!("no gateway {id:?}")))?;
    gateway.status = status;
    Ok(one(
        vec![(
            vec![id.to_owned()],
            Body::GatewayPut(GatewayBody {
                id: id.to_owned(),
                status,
            }),
        )],
        vec![Change::PutGateway(gateway)],
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
    let gateways = state.gateways()?;
    let body = key_body(id, &key, &gateways)?;
    Ok(one(
        vec![(all(), Body::KeyPut(body))],
        vec![Change::PutKey(id.to_owned(), key)],
    ))
}

fn put_node(node: NodeBody) -> Plan {
    one(
        vec![(all(), Body::NodePut(node.clone()))],
        vec![Change::PutNode(node)],
    )
}

fn existing_node(state: &State, id: &str) -> Result<NodeBody, OpError> {
    state
        .node(id)?
        .ok_or_else(|| OpError::NotFound(format!("no node {id:?}")))
}

fn check_node(input: &NodeInput) -> Result<(), OpError> {
    let id = &input.id;
    if id.is_empty() || id.len() > 256 || id.chars().any(char::is_control) {
        return Err(OpError::Invalid(
            "expected a node id of 1 to 256 printable characters".into(),
        ));
    }
    for g in &input.groups {
        if g.is_empty()
            || g.chars()
                .any(|c| c.is_control() || c == '"' || c.is_whitespace())
        {
            return Err(OpError::Invalid(format!(
                "{g:?} is not a group name (expected non-empty, no quotes or white space)"
            )));
        }
    }
    if let Some(r) = &input.registrar {
        let ok = r
            .strip_prefix('/')
            .is_some_and(|rest| !rest.is_empty() && !rest.contains('/'));
        if !ok {
            return Err(OpError::Invalid(format!(
                "registrar {r:?} is not a CSE-ID (expected \"/\" followed by a name, e.g. \"/id-mn\")"
            )));
        }
    }
    Ok(())
}

fn parse_secret(text: &str) -> Result<Vec<u8>, OpError> {
    let bytes = decode_hex(text).ok_or_else(|| {
        OpError::Invalid("secret is not hex (an even number of hex digits)".into())
    })?;
    if !(MIN_SECRET_BYTES..=MAX_SECRET_BYTES).contains(&bytes.len()) {
        return Err(OpError::Invalid(format!(
            "secret is {} bytes (expected {MIN_SECRET_BYTES} to {MAX_SECRET_BYTES}, 32 recommended)",
            bytes.len()
        )));
    }
    Ok(bytes)
}

pub fn decode_hex(text: &str) -> Option<Vec<u8>> {
    if text.len() % 2 != 0 || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).ok())
        .collect()
}

fn is_key_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// Gateway ids: 1–64 of `A-Za-z0-9._-` (a certificate CN and a record audience; never `*`).
pub fn is_gateway_id(id: &str) -> bool {
    crate::feed::record::check_feed_id(id).is_ok()
}
