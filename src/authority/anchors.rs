//! Audit checkpoints gateways anchor at the authority (docs/authority.md "Audit
//! checkpoints"): verified with the gateway's signing key, kept in the state's `checkpoints`
//! tree (gateway id, a zero byte, the count as big-endian `u64` → [`Held`] as JSON), at most
//! [`MAX_PER_GATEWAY`] per gateway (the oldest pruned: the newest pins every line before
//! it), each written once: the same checkpoint again is a duplicate, another one at the same
//! count a conflict (the gateway signed two histories).

use serde::{Deserialize, Serialize};

use super::ops::OpError;
use super::publish::now_s;
use super::state::{StateError, StoredGateway};
use crate::audit::Checkpoint;

/// Checkpoints kept per gateway.
pub const MAX_PER_GATEWAY: usize = 1000;

/// A checkpoint as the authority holds it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Held {
    pub count: u64,
    pub head: String,
    pub at: String,
    pub jws: String,
    /// When the authority received it (Unix seconds).
    pub received_at: u64,
}

/// What storing a checkpoint came to.
#[derive(Debug, PartialEq, Eq)]
pub enum Stored {
    New,
    Duplicate,
}

pub struct Anchors {
    db: sled::Db,
    tree: sled::Tree,
}

impl Anchors {
    pub fn open(db: &sled::Db) -> Result<Anchors, StateError> {
        Ok(Anchors {
            tree: db.open_tree("checkpoints")?,
            db: db.clone(),
        })
    }

    /// Verifies `compact` as `gateway`'s checkpoint of its own log and stores it durably.
    pub fn put(&self, gateway: &StoredGateway, compact: &str) -> Result<(Stored, Held), OpError> {
        let signing = gateway.signing_key()?;
        let checkpoint = Checkpoint::verify(compact, &signing).map_err(|e| {
            OpError::Invalid(format!(
                "checkpoint does not verify with gateway {:?}'s signing key: {e}",
                gateway.id
            ))
        })?;
        if checkpoint.log != gateway.id {
            return Err(OpError::Invalid(format!(
                "checkpoint is for log {:?}, not gateway {:?}'s",
                checkpoint.log, gateway.id
            )));
        }
        let held = Held {
            count: checkpoint.count,
            head: checkpoint.head,
            at: checkpoint.at,
            jws: compact.to_owned(),
            received_at: now_s(),
        };
        let key = key(&gateway.id, held.count);
        let value = serde_json::to_vec(&held).expect("a checkpoint serialises");
        let swapped = self
            .tree
            .compare_and_swap(&key, None as Option<&[u8]>, Some(value))
            .map_err(|e| OpError::State(e.into()))?;
        if let Err(existing) = swapped {
            let before: Option<Held> = existing
                .current
                .and_then(|v| serde_json::from_slice(&v).ok());
            return match before {
                Some(before) if before.jws == held.jws => Ok((Stored::Duplicate, before)),
                _ => Err(OpError::Conflict(format!(
                    "gateway {:?} already anchored another checkpoint over {} lines: its log was rewritten",
                    gateway.id, held.count
                ))),
            };
        }
        self.prune(&gateway.id).map_err(OpError::State)?;
        self.db.flush().map_err(|e| OpError::State(e.into()))?;
        Ok((Stored::New, held))
    }

    /// The gateway's checkpoints, oldest first.
    pub fn list(&self, gateway: &str) -> Result<Vec<Held>, StateError> {
        self.tree
            .scan_prefix(prefix(gateway))
            .map(|item| {
                let (k, v) = item?;
                serde_json::from_slice(&v).map_err(|e| StateError::Corrupt {
                    key: String::from_utf8_lossy(&k).into_owned(),
                    detail: e.to_string(),
                })
            })
            .collect()
    }

    fn prune(&self, gateway: &str) -> Result<(), StateError> {
        let keys: Vec<sled::IVec> = self
            .tree
            .scan_prefix(prefix(gateway))
            .keys()
            .collect::<Result<_, _>>()?;
        for k in keys.iter().take(keys.len().saturating_sub(MAX_PER_GATEWAY)) {
            self.tree.remove(k)?;
        }
        Ok(())
    }
}

fn prefix(gateway: &str) -> Vec<u8> {
    let mut out = gateway.as_bytes().to_vec();
    out.push(0);
    out
}

fn key(gateway: &str, count: u64) -> Vec<u8> {
    let mut out = prefix(gateway);
    out.extend_from_slice(&count.to_be_bytes());
    out
}
