//! The local authorization repository: nodes and their status, revoked access-control
//! tokens and token use counts.
//!
//! In: node records from the config seed, the admin API and (later) the IN feed. Out: the
//! current [`Node`] for an originator. [`Store`] is the persistence seam (sled in production);
//! [`Nodes`] puts a moka cache in front of it for the request path. Invariant: a write is
//! durable (flushed) before it is visible, and visible to the very next lookup.

mod nodes;
mod sled_store;

use std::fmt;

use serde::{Deserialize, Serialize};

pub use nodes::Nodes;
pub use sled_store::SledStore;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("repository I/O failed: {0}")]
    Io(#[from] sled::Error),
    #[error("repository record for {key:?} is unreadable: {detail}")]
    Corrupt { key: String, detail: String },
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
}

/// A node as the configuration declares it; its status is the repository's.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeSeed {
    pub id: String,
    pub kind: NodeKind,
    pub groups: Vec<String>,
}

/// Persistence of nodes. Implementations must make `put_node` durable before returning.
pub trait Store: Send + Sync + 'static {
    fn node(&self, id: &str) -> Result<Option<Node>, StoreError>;
    fn put_node(&self, node: &Node) -> Result<(), StoreError>;
    fn nodes(&self) -> Result<Vec<Node>, StoreError>;
    /// The persisted sequence-number bound of a check-value key (see `guard::replay`).
    fn sequence_mark(&self, key_id: &str) -> Result<Option<u64>, StoreError>;
    /// Persists a key's sequence-number bound; durable when this returns.
    fn put_sequence_mark(&self, key_id: &str, mark: u64) -> Result<(), StoreError>;
    /// Marks access-control token `jti` revoked (durably); `false` if it already was.
    fn revoke_token(&self, jti: &str, at_unix_s: u64) -> Result<bool, StoreError>;
    fn token_revoked(&self, jti: &str) -> Result<bool, StoreError>;
    /// Adds `n` to token `jti`'s reserved uses, durably, and returns the new total.
    fn reserve_token_uses(&self, jti: &str, n: u64) -> Result<u64, StoreError>;
}
