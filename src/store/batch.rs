//! [`Batch`]: several repository records (nodes, keys, token revocations) and an opaque feed cursor, applied by
//! [`Store::apply`](super::Store::apply) in one atomic, durable step — what the IN sync
//! needs to apply a page of the feed and remember where it stopped, all or nothing.

use super::{FeedIssuer, Node, StoreError};
use crate::security::CheckKey;

/// One change to the repository.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Change {
    /// Adds or replaces the node with this id.
    PutNode(Node),
    /// Adds or replaces the key with this id.
    PutKey(CheckKey),
    /// Removes the node with this id (nothing if there is none): it is unknown from now on.
    RemoveNode(String),
    /// Removes the key with this id (nothing if there is none). Its sequence-number bounds
    /// stay, so the id can never accept an old number again.
    RemoveKey(String),
    /// Revokes access-control token `jti` (at Unix seconds `at`); already revoked stays so.
    RevokeToken { jti: String, at: u64 },
    /// Adds or replaces the token issuer with this `iss` (from the feed).
    PutIssuer(FeedIssuer),
    /// Removes the token issuer with this `iss` (nothing if there is none).
    RemoveIssuer(String),
}

/// Changes applied in order (a later change to the same record wins), then the cursor.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Batch {
    changes: Vec<Change>,
    cursor: Option<Vec<u8>>,
}

impl Batch {
    pub fn new() -> Self {
        Batch::default()
    }

    pub fn put_node(mut self, node: Node) -> Self {
        self.changes.push(Change::PutNode(node));
        self
    }

    pub fn remove_node(mut self, id: &str) -> Self {
        self.changes.push(Change::RemoveNode(id.to_owned()));
        self
    }

    pub fn put_key(mut self, key: CheckKey) -> Self {
        self.changes.push(Change::PutKey(key));
        self
    }

    pub fn remove_key(mut self, id: &str) -> Self {
        self.changes.push(Change::RemoveKey(id.to_owned()));
        self
    }

    pub fn revoke_token(mut self, jti: &str, at: u64) -> Self {
        self.changes.push(Change::RevokeToken {
            jti: jti.to_owned(),
            at,
        });
        self
    }

    pub fn put_issuer(mut self, issuer: FeedIssuer) -> Self {
        self.changes.push(Change::PutIssuer(issuer));
        self
    }

    pub fn remove_issuer(mut self, iss: &str) -> Self {
        self.changes.push(Change::RemoveIssuer(iss.to_owned()));
        self
    }

    /// Whether the batch changes the feed's token issuers.
    pub fn touches_issuers(&self) -> bool {
        self.changes
            .iter()
            .any(|c| matches!(c, Change::PutIssuer(_) | Change::RemoveIssuer(_)))
    }

    /// The feed position this batch brings the repository to.
    pub fn with_cursor(mut self, cursor: &[u8]) -> Self {
        self.cursor = Some(cursor.to_vec());
        self
    }

    pub fn changes(&self) -> &[Change] {
        &self.changes
    }

    pub fn cursor(&self) -> Option<&[u8]> {
        self.cursor.as_deref()
    }

    pub fn is_empty(&self) -> bool {
        self.changes.is_empty() && self.cursor.is_none()
    }

    /// Whether every record may be written on its own: node ids as the configuration allows
    /// them, keys with a valid id, a node and at least the minimum length. Invariants across
    /// records (one insert key per node) are the key ring's, checked by [`super::Keys`].
    pub fn check(&self) -> Result<(), StoreError> {
        for change in &self.changes {
            match change {
                Change::PutNode(node) if !is_node_id(&node.id) => {
                    return Err(StoreError::Invalid {
                        record: format!("node {:?}", node.id),
                        detail:
                            "expected a non-empty originator id of at most 256 printable characters"
                                .into(),
                    });
                }
                Change::PutKey(key) => key.check().map_err(|e| StoreError::Invalid {
                    record: format!("key {:?}", key.id),
                    detail: e.to_string(),
                })?,
                _ => {}
            }
        }
        Ok(())
    }
}

fn is_node_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 256 && !id.chars().any(char::is_control)
}
