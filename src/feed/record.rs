//! The feed's payloads — records and their bodies, heads, snapshots, acks — and their signed
//! forms. Producers write the members in the documented order (struct order, compact JSON);
//! readers refuse unknown, missing and mistyped members. See docs/feed.md.

use std::collections::BTreeMap;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::keys::{hex, SigningKey, VerifyingKey};
use super::{check, jws, FeedError};
use crate::store::{NodeKind, NodeStatus};

pub const RECORD_TYP: &str = "m2mguard-record";
pub const HEAD_TYP: &str = "m2mguard-head";
pub const SNAPSHOT_TYP: &str = "m2mguard-snapshot";
pub const ACK_TYP: &str = "m2mguard-ack";

/// Compact-form limits, in bytes.
pub const MAX_RECORD: usize = 64 * 1024;
pub const MAX_HEAD: usize = 4 * 1024;
pub const MAX_SNAPSHOT: usize = 256 * 1024 * 1024;

/// The `prev` of record 1 and the hash of an empty feed.
pub const ZERO_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// A record's payload.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Record {
    pub feed: String,
    pub seq: u64,
    pub prev: String,
    pub at: u64,
    pub aud: Vec<String>,
    pub kind: String,
    pub body: Value,
}

/// What a record says, typed.
#[derive(Clone, Debug, PartialEq)]
pub enum Body {
    NodePut(NodeBody),
    NodeRemove(IdBody),
    KeyPut(KeyBody),
    KeyRemove(IdBody),
    TokenRevoke(TokenBody),
    GatewayPut(GatewayBody),
    IssuerPut(IssuerBody),
    IssuerRemove(IssuerIdBody),
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeBody {
    pub id: String,
    pub kind: NodeKind,
    pub groups: Vec<String>,
    pub status: NodeStatus,
    /// Present, `null` or a string: a missing member is refused like any other.
    #[serde(deserialize_with = "required")]
    pub registrar: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyBody {
    pub id: String,
    pub node: String,
    pub insert: bool,
    /// Gateway id → sealed secret, written in gateway-id order.
    pub sealed: BTreeMap<String, String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IdBody {
    pub id: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenBody {
    pub jti: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum GatewayStatus {
    Active,
    Deactivated,
    /// The gateway's credentials are removed: it wipes its secrets and refuses everything
    /// until it enrols again.
    Removed,
}

impl GatewayStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            GatewayStatus::Active => "active",
            GatewayStatus::Deactivated => "deactivated",
            GatewayStatus::Removed => "removed",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GatewayBody {
    pub id: String,
    pub status: GatewayStatus,
}

/// A token issuer the gateways' token stage trusts (the authority as DAS, docs/feed.md).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IssuerBody {
    /// The tokens' `iss`.
    pub iss: String,
    /// `"EdDSA"`: the only algorithm the feed carries.
    pub alg: String,
    /// The Ed25519 public key, 64 lowercase hex digits.
    pub key: String,
    /// Uses per token when the token says fewer or nothing; `null`: no default limit.
    #[serde(deserialize_with = "required")]
    pub max_uses: Option<u64>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IssuerIdBody {
    pub iss: String,
}

impl Body {
    pub fn kind(&self) -> &'static str {
        match self {
            Body::NodePut(_) => "node.put",
            Body::NodeRemove(_) => "node.remove",
            Body::KeyPut(_) => "key.put",
            Body::KeyRemove(_) => "key.remove",
            Body::TokenRevoke(_) => "token.revoke",
            Body::GatewayPut(_) => "gateway.put",
            Body::IssuerPut(_) => "issuer.put",
            Body::IssuerRemove(_) => "issuer.remove",
        }
    }

    /// The id the record is about: a node's, a key's (never its secret), a token's `jti`, a
    /// gateway's.
    pub fn subject(&self) -> &str {
        match self {
            Body::NodePut(b) => &b.id,
            Body::NodeRemove(b) | Body::KeyRemove(b) => &b.id,
            Body::KeyPut(b) => &b.id,
            Body::TokenRevoke(b) => &b.jti,
            Body::GatewayPut(b) => &b.id,
            Body::IssuerPut(b) => &b.iss,
            Body::IssuerRemove(b) => &b.iss,
        }
    }

    /// The status a `node.put` or `gateway.put` sets; `None` for the other kinds.
    pub fn status(&self) -> Option<&'static str> {
        match self {
            Body::NodePut(b) => Some(b.status.as_str()),
            Body::GatewayPut(b) => Some(b.status.as_str()),
            _ => None,
        }
    }

    pub fn to_value(&self) -> Value {
        let value = match self {
            Body::NodePut(b) => serde_json::to_value(b),
            Body::NodeRemove(b) | Body::KeyRemove(b) => serde_json::to_value(b),
            Body::KeyPut(b) => serde_json::to_value(b),
            Body::TokenRevoke(b) => serde_json::to_value(b),
            Body::GatewayPut(b) => serde_json::to_value(b),
            Body::IssuerPut(b) => serde_json::to_value(b),
            Body::IssuerRemove(b) => serde_json::to_value(b),
        };
        value.expect("a body serialises")
    }

    pub fn parse(kind: &str, body: &Value) -> Result<Body, FeedError> {
        fn typed<T: DeserializeOwned>(kind: &str, body: &Value) -> Result<T, FeedError> {
            T::deserialize(body).map_err(|e| FeedError::Malformed {
                what: format!("{kind} body"),
                detail: e.to_string(),
            })
        }
        Ok(match kind {
            "node.put" => Body::NodePut(typed(kind, body)?),
            "node.remove" => Body::NodeRemove(typed(kind, body)?),
            "key.put" => Body::KeyPut(typed(kind, body)?),
            "key.remove" => Body::KeyRemove(typed(kind, body)?),
            "token.revoke" => Body::TokenRevoke(typed(kind, body)?),
            "gateway.put" => Body::GatewayPut(typed(kind, body)?),
            "issuer.put" => Body::IssuerPut(typed(kind, body)?),
            "issuer.remove" => Body::IssuerRemove(typed(kind, body)?),
            other => {
                return Err(FeedError::Malformed {
                    what: "record".into(),
                    detail: format!("unknown kind {other:?}"),
                })
            }
        })
    }
}

/// A record as published: its compact JWS, its hash, and what it says.
#[derive(Clone, Debug, PartialEq)]
pub struct Signed {
    pub compact: String,
    pub hash: String,
    pub record: Record,
    pub body: Body,
}

impl Signed {
    /// Signs a record of `body`.
    pub fn sign(key: &SigningKey, header: Record, body: Body) -> Signed {
        let record = Record {
            kind: body.kind().into(),
            body: body.to_value(),
            ..header
        };
        let compact = jws::sign(key, RECORD_TYP, &to_json(&record));
        Signed {
            hash: hash(&compact),
            compact,
            record,
            body,
        }
    }

    /// Verifies one record line: signed by `key`, well formed. Its place in the chain is
    /// [`super::follow`]'s to check.
    pub fn verify(compact: &str, key: &VerifyingKey) -> Result<Signed, FeedError> {
        let record: Record = verified(compact, RECORD_TYP, key, MAX_RECORD)?;
        check_feed_id(&record.feed)?;
        check_hash("prev", &record.prev)?;
        if record.seq == 0 {
            return Err(malformed("record", "seq 0 (records start at 1)"));
        }
        check::audience(&record.aud)?;
        let body = Body::parse(&record.kind, &record.body)?;
        check::body(&body)?;
        Ok(Signed {
            hash: hash(compact),
            compact: compact.to_owned(),
            record,
            body,
        })
    }

    /// Whether this record is for `gateway`.
    pub fn is_for(&self, gateway: &str) -> bool {
        self.record.aud.iter().any(|a| a == "*" || a == gateway)
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Head {
    pub feed: String,
    pub seq: u64,
    pub hash: String,
    pub at: u64,
    pub valid_until: u64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Snapshot {
    pub feed: String,
    pub gateway: String,
    pub seq: u64,
    pub hash: String,
    pub at: u64,
    pub status: GatewayStatus,
    pub nodes: Vec<NodeBody>,
    pub keys: Vec<KeyBody>,
    pub revoked: Vec<String>,
    /// `issuer.put` bodies, in byte order of `iss`.
    pub issuers: Vec<IssuerBody>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Ack {
    pub feed: String,
    pub gateway: String,
    pub seq: u64,
    pub hash: String,
    pub at: u64,
    #[serde(deserialize_with = "required")]
    pub error: Option<String>,
}

impl Head {
    pub fn sign(&self, key: &SigningKey) -> String {
        jws::sign(key, HEAD_TYP, &to_json(self))
    }

    pub fn verify(compact: &str, key: &VerifyingKey) -> Result<Head, FeedError> {
        let head: Head = verified(compact, HEAD_TYP, key, MAX_HEAD)?;
        check_feed_id(&head.feed)?;
        check_hash("hash", &head.hash)?;
        check::head(&head)?;
        Ok(head)
    }
}

impl Snapshot {
    pub fn sign(&self, key: &SigningKey) -> String {
        jws::sign(key, SNAPSHOT_TYP, &to_json(self))
    }

    pub fn verify(compact: &str, key: &VerifyingKey) -> Result<Snapshot, FeedError> {
        let snapshot: Snapshot = verified(compact, SNAPSHOT_TYP, key, MAX_SNAPSHOT)?;
        check_feed_id(&snapshot.feed)?;
        check_hash("hash", &snapshot.hash)?;
        check::snapshot(&snapshot)?;
        Ok(snapshot)
    }
}

impl Ack {
    pub fn sign(&self, key: &SigningKey) -> String {
        jws::sign(key, ACK_TYP, &to_json(self))
    }

    pub fn verify(compact: &str, key: &VerifyingKey) -> Result<Ack, FeedError> {
        let ack: Ack = verified(compact, ACK_TYP, key, MAX_HEAD)?;
        check_feed_id(&ack.feed)?;
        check_hash("hash", &ack.hash)?;
        if !check::is_name(&ack.gateway) {
            return Err(malformed("ack", "gateway must be 1 to 64 of A-Za-z0-9._-"));
        }
        Ok(ack)
    }
}

/// A nullable member that must be present (serde lets an `Option` be missing otherwise).
fn required<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d)
}

/// The lowercase hex SHA-256 of a compact JWS.
pub fn hash(compact: &str) -> String {
    hex(&Sha256::digest(compact.as_bytes()))
}

fn to_json<T: Serialize>(value: &T) -> Vec<u8> {
    serde_json::to_vec(value).expect("a payload serialises")
}

fn verified<T: DeserializeOwned>(
    compact: &str,
    typ: &str,
    key: &VerifyingKey,
    max: usize,
) -> Result<T, FeedError> {
    if compact.len() > max {
        return Err(FeedError::TooLarge {
            what: typ.to_owned(),
            limit: max,
        });
    }
    let payload = jws::verify(compact, typ, key)?;
    serde_json::from_slice(&payload).map_err(|e| malformed(typ, &e.to_string()))
}

/// Feed ids: 1–64 of `A-Za-z0-9._-`.
pub fn check_feed_id(feed: &str) -> Result<(), FeedError> {
    if check::is_name(feed) {
        Ok(())
    } else {
        Err(malformed("feed id", "expected 1 to 64 of A-Za-z0-9._-"))
    }
}

fn check_hash(what: &str, value: &str) -> Result<(), FeedError> {
    let ok = value.len() == 64
        && value
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    if ok {
        Ok(())
    } else {
        Err(malformed(what, "expected 64 lowercase hex digits"))
    }
}

fn malformed(what: &str, detail: &str) -> FeedError {
    FeedError::Malformed {
        what: what.to_owned(),
        detail: detail.to_owned(),
    }
}
