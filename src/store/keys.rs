//! [`Keys`]: the key ring in force, loaded from the repository and swapped whole on every
//! change, so the very next request verifies against it. Readers never block (arc-swap, as the
//! policy set); writers are serialised, write the repository first (durably), then swap.
//!
//! In: key records from the configuration seed ([`Keys::seed`]) and at run time from the IN
//! sync or the admin API ([`Keys::put`], [`Keys::remove`], [`Keys::apply`]). Out: the current
//! [`KeyRing`]. Invariant: the ring in force is always one that validated in full; a change
//! that would break it (a short key, a second insert key for a node) is refused and leaves
//! both the repository and the ring as they were.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;

use super::{Batch, Change, MemoryStore, Store, StoreError};
use crate::security::{CheckKey, KeyOrigin, KeyRing};

pub struct Keys {
    store: Arc<dyn Store>,
    ring: ArcSwap<KeyRing>,
    write: Mutex<()>,
}

impl Keys {
    /// The keys the repository holds.
    pub fn load(store: Arc<dyn Store>) -> Result<Self, StoreError> {
        let records = store.keys()?;
        let ring = KeyRing::new(&records).map_err(|e| StoreError::Corrupt {
            key: "check_keys".into(),
            detail: e.to_string(),
        })?;
        Ok(Keys {
            store,
            ring: ArcSwap::from_pointee(ring),
            write: Mutex::new(()),
        })
    }

    /// No keys, and an in-memory repository to add them to.
    pub fn empty() -> Self {
        Keys {
            store: Arc::new(MemoryStore::default()),
            ring: ArcSwap::from_pointee(KeyRing::default()),
            write: Mutex::new(()),
        }
    }

    /// The ring in force now.
    pub fn ring(&self) -> Arc<KeyRing> {
        self.ring.load_full()
    }

    /// Brings the configured keys into the repository: each is written as configured (the
    /// file is the authority on its keys), and keys seeded from an earlier configuration that
    /// this one no longer lists are removed. Keys added at run time stay.
    pub fn seed(&self, configured: &[CheckKey]) -> Result<(), StoreError> {
        let current = self.ring();
        let stale = current
            .records()
            .filter(|k| k.origin == KeyOrigin::Config)
            .filter(|k| !configured.iter().any(|c| c.id == k.id));
        let mut batch = Batch::new();
        for key in stale {
            batch = batch.remove_key(&key.id);
        }
        for key in configured {
            batch = batch.put_key(CheckKey {
                origin: KeyOrigin::Config,
                ..key.clone()
            });
        }
        self.apply(&batch)
    }

    /// Adds or replaces one key.
    pub fn put(&self, key: CheckKey) -> Result<(), StoreError> {
        self.apply(&Batch::new().put_key(key))
    }

    /// Removes one key; the very next request under it is refused.
    pub fn remove(&self, id: &str) -> Result<(), StoreError> {
        self.apply(&Batch::new().remove_key(id))
    }

    /// Applies a batch of key changes (and a cursor) to the repository in one durable step,
    /// then puts them in force. A batch whose keys would not form a valid ring applies
    /// nothing. Node records go through [`super::Repository::apply`], which keeps the node
    /// cache in step; here they are refused.
    pub fn apply(&self, batch: &Batch) -> Result<(), StoreError> {
        if let Some(id) = batch.changes().iter().find_map(|c| match c {
            Change::PutNode(node) => Some(&node.id),
            Change::RemoveNode(id) => Some(id),
            _ => None,
        }) {
            return Err(StoreError::Invalid {
                record: format!("node {id:?}"),
                detail: "node records are applied through the Repository".into(),
            });
        }
        self.apply_all(batch)
    }

    /// As [`Keys::apply`], node records included (the caller updates the node cache).
    pub(super) fn apply_all(&self, batch: &Batch) -> Result<(), StoreError> {
        let _write = self.write.lock().unwrap_or_else(|e| e.into_inner());
        batch.check()?;
        let next = next_ring(&self.ring(), batch)?;
        self.store.apply(batch)?;
        if let Some(next) = next {
            self.ring.store(Arc::new(next));
        }
        Ok(())
    }
}

/// The ring after `batch`, or `None` when it changes no key.
fn next_ring(current: &KeyRing, batch: &Batch) -> Result<Option<KeyRing>, StoreError> {
    let mut records: BTreeMap<&str, &CheckKey> =
        current.records().map(|k| (k.id.as_str(), k)).collect();
    let mut changed = false;
    for change in batch.changes() {
        match change {
            Change::PutKey(key) => {
                records.insert(&key.id, key);
                changed = true;
            }
            Change::RemoveKey(id) => changed |= records.remove(id.as_str()).is_some(),
            Change::PutNode(_)
            | Change::RemoveNode(_)
            | Change::RevokeToken { .. }
            | Change::PutIssuer(_)
            | Change::RemoveIssuer(_) => {}
        }
    }
    if !changed {
        return Ok(None);
    }
    KeyRing::new(records.into_values())
        .map(Some)
        .map_err(|e| StoreError::Invalid {
            record: "key ring".into(),
            detail: e.to_string(),
        })
}
