//! The local authorization repository: nodes and their status, check-value keys, revoked
//! access-control tokens, token use counts and the IN feed cursor.
//!
//! In: node and key records from the config seed, the admin API and (later) the IN feed, the
//! feed's records as one [`Batch`]. Out: the current [`Node`] for an originator, the key ring
//! in force. [`Store`] is the persistence seam ([`SledStore`] in production, [`MemoryStore`]
//! for tests); [`Nodes`] puts a moka cache in front of it for the request path, [`Keys`] holds
//! the [`KeyRing`](crate::security::KeyRing) built from it. Invariant: a write is durable
//! (flushed) before it is visible, and visible to the very next lookup; a batch is applied
//! whole or not at all.

mod batch;
mod bindings;
mod keys;
mod memory;
mod nodes;
mod repository;
mod sled_store;
mod standing;
#[cfg(test)]
mod tests;

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::security::CheckKey;
pub use batch::{Batch, Change};
pub use keys::Keys;
pub use memory::MemoryStore;
pub use nodes::Nodes;
pub use repository::Repository;
pub use sled_store::{open_db, SledStore};
pub use standing::{Limits, Refusal, Standing, EVERY_NODE};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("repository I/O failed: {0}")]
    Io(#[from] sled::Error),
    #[error("repository record for {key:?} is unreadable: {detail}")]
    Corrupt { key: String, detail: String },
    /// A record refused before anything was written.
    #[error("record {record:?} refused: {detail}")]
    Invalid { record: String, detail: String },
}

/// Where a node stands with the infrastructure node.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NodeStatus {
    Active,
    Suspended,
    Deactivated,
    Revoked,
}

impl NodeStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            NodeStatus::Active => "active",
            NodeStatus::Suspended => "suspended",
            NodeStatus::Deactivated => "deactivated",
            NodeStatus::Revoked => "revoked",
        }
    }
}

impl fmt::Display for NodeStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NodeKind {
    Ae,
    Cse,
}

impl NodeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            NodeKind::Ae => "ae",
            NodeKind::Cse => "cse",
        }
    }
}

/// An originator known to the gateway.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Node {
    pub id: String,
    pub kind: NodeKind,
    pub status: NodeStatus,
    /// Cedar groups: `principal in Group::"<name>"`.
    pub groups: Vec<String>,
    /// Unix seconds of the last status change.
    pub status_changed_at: u64,
    /// For an AE that a CSE forwards for (TS-0001 transit): that CSE's id. A session or
    /// connection authenticated as that CSE may carry this node's requests.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registrar: Option<String>,
    /// Set when the node registered through the gateway (see [`crate::registration`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registered: Option<Registered>,
}

impl Node {
    /// An active node with no registrar and no registration.
    pub fn new(id: &str, kind: NodeKind, groups: Vec<String>, at_unix_s: u64) -> Node {
        Node {
            id: id.to_owned(),
            kind,
            status: NodeStatus::Active,
            groups,
            status_changed_at: at_unix_s,
            registrar: None,
            registered: None,
        }
    }

    /// The certificate identity this node's id is bound to, if it registered with one.
    pub fn bound_identity(&self) -> Option<&str> {
        self.registered.as_ref()?.identity.as_deref()
    }
}

/// How a node registered through the gateway: its provenance, and what a deregistration
/// must name.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Registered {
    /// Unix seconds of the registration.
    pub at: u64,
    /// The registrant's transport source address, `ip:port`.
    pub source: String,
    /// The binding it registered over (`http`, `https`, `coap`, `mqtt`).
    pub protocol: String,
    /// The certificate identity that registered; the id is bound to it from now on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity: Option<String>,
    /// The originator the registrant sent (`C`, `S`, a chosen id, or empty).
    pub requested: String,
    /// The canonical target of its `<AE>` or `<remoteCSE>` resource: a delete of it by the
    /// node itself is its deregistration.
    pub resource: String,
    /// The policies that permitted the registration.
    pub policies: Vec<String>,
}

/// A token issuer the feed trusts (`issuer.put`, docs/feed.md): its `iss`, Ed25519 public
/// key (64 lowercase hex digits) and default use limit. Kept in the `feed` tree as
/// `issuer:<iss>`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FeedIssuer {
    pub iss: String,
    pub key: String,
    pub max_uses: Option<u64>,
}

/// A node as the configuration declares it; its status is the repository's.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeSeed {
    pub id: String,
    pub kind: NodeKind,
    pub groups: Vec<String>,
    /// The CSE an AE is reached through (transit), if any.
    pub registrar: Option<String>,
}

/// Persistence of the repository. Every write is durable before it returns.
pub trait Store: Send + Sync + 'static {
    fn node(&self, id: &str) -> Result<Option<Node>, StoreError>;
    fn put_node(&self, node: &Node) -> Result<(), StoreError>;
    fn nodes(&self) -> Result<Vec<Node>, StoreError>;
    /// Every check-value key record.
    fn keys(&self) -> Result<Vec<CheckKey>, StoreError>;
    /// The feed cursor last applied with a [`Batch`], as the feed gave it.
    fn cursor(&self) -> Result<Option<Vec<u8>>, StoreError>;
    /// Applies every change of `batch` and its cursor in one durable step: after an error
    /// nothing of it is applied, after `Ok` all of it is, on disk. Records are checked first
    /// ([`Batch::check`]).
    fn apply(&self, batch: &Batch) -> Result<(), StoreError>;
    /// The persisted sequence-number bound of a check-value key (see `guard::replay`).
    fn sequence_mark(&self, key_id: &str) -> Result<Option<u64>, StoreError>;
    /// Persists a key's sequence-number bound; durable when this returns.
    fn put_sequence_mark(&self, key_id: &str, mark: u64) -> Result<(), StoreError>;
    /// Marks access-control token `jti` revoked (durably); `false` if it already was.
    fn revoke_token(&self, jti: &str, at_unix_s: u64) -> Result<bool, StoreError>;
    fn token_revoked(&self, jti: &str) -> Result<bool, StoreError>;
    /// Adds `n` to token `jti`'s reserved uses, durably, and returns the new total.
    fn reserve_token_uses(&self, jti: &str, n: u64) -> Result<u64, StoreError>;
    /// The token issuers the feed gave, in byte order of `iss`.
    fn issuers(&self) -> Result<Vec<FeedIssuer>, StoreError>;
}
