//! The operator's input to operations, and the rules for ids, groups and secrets.

use serde::Deserialize;

use super::OpError;
use crate::store::NodeKind;

const MIN_SECRET_BYTES: usize = 16;
const MAX_SECRET_BYTES: usize = 1024;

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

pub(super) fn check_node(input: &NodeInput) -> Result<(), OpError> {
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

pub(super) fn parse_secret(text: &str) -> Result<Vec<u8>, OpError> {
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

pub use crate::feed::keys::decode_hex;
pub(super) use crate::security::is_key_id;

/// Gateway ids: 1–64 of `A-Za-z0-9._-` (a certificate CN and a record audience; never `*`).
pub fn is_gateway_id(id: &str) -> bool {
    crate::feed::check::is_name(id)
}
