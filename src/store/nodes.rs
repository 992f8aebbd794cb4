//! [`Nodes`]: the request path's view of the repository, a moka cache in front of a [`Store`].
//!
//! Lookups that miss and writes are serialised by one lock, so a reader that loaded a record
//! can never put it into the cache after a newer write: a status change is seen by the next
//! request. Unknown ids are cached too, so a flood of made-up originators stays in memory.
//! Every status change is announced on [`Nodes::status_changes`] (the node's id), so that
//! bindings holding long-lived sessions (MQTT) can close those of a node that is no longer
//! active at once.

use std::sync::{Arc, RwLock};
use std::time::{SystemTime, UNIX_EPOCH};

use moka::sync::Cache;
use tokio::sync::broadcast;

use super::bindings::Bindings;
use super::{Batch, Change, Node, NodeSeed, NodeStatus, Standing, Store, StoreError, EVERY_NODE};

pub struct Nodes {
    store: Arc<dyn Store>,
    cache: Cache<String, Option<Arc<Node>>>,
    write: RwLock<()>,
    changes: broadcast::Sender<String>,
    bindings: Bindings,
    standing: Arc<Standing>,
}

/// Status changes buffered per subscriber; one that falls further behind is told it lagged.
const STATUS_CHANGES_BUFFER: usize = 1024;

impl Nodes {
    pub fn new(store: Arc<dyn Store>, capacity: u64) -> Self {
        Nodes {
            store,
            cache: Cache::new(capacity),
            write: RwLock::new(()),
            changes: broadcast::channel(STATUS_CHANGES_BUFFER).0,
            bindings: Bindings::default(),
            standing: Arc::default(),
        }
    }

    /// With the gateway's own standing kept by the sync (see [`Standing`]).
    pub fn with_standing(mut self, standing: Arc<Standing>) -> Self {
        self.standing = standing;
        self
    }

    pub fn standing(&self) -> &Arc<Standing> {
        &self.standing
    }

    /// Sets the gateway's own status (from the feed) and, if it changed, tells every
    /// long-lived session to check its node again ([`EVERY_NODE`]).
    pub fn set_gateway_deactivated(&self, deactivated: bool) {
        if self.standing.set_deactivated(deactivated) {
            self.announce_every_node();
        }
    }

    pub fn set_gateway_removed(&self, removed: bool) {
        if self.standing.set_removed(removed) {
            self.announce_every_node();
        }
    }

    /// Tells every long-lived session to check its node again ([`EVERY_NODE`]): the
    /// gateway's own standing changed.
    pub fn announce_every_node(&self) {
        let _ = self.changes.send(EVERY_NODE.to_owned());
    }

    /// The node with this id, from memory when possible.
    pub fn get(&self, id: &str) -> Result<Option<Arc<Node>>, StoreError> {
        if let Some(hit) = self.cache.get(id) {
            return Ok(hit);
        }
        let _read = self.write.read().unwrap_or_else(|e| e.into_inner());
        let node = self.store.node(id)?.map(Arc::new);
        self.cache.insert(id.to_owned(), node.clone());
        Ok(node)
    }

    /// Reads the repository itself, bypassing the cache: is it answering?
    pub fn probe(&self) -> Result<(), StoreError> {
        self.store.node("").map(|_| ())
    }

    /// How many nodes the cache holds at most.
    pub fn capacity(&self) -> u64 {
        self.cache.policy().max_capacity().unwrap_or(0)
    }

    /// The feed cursor the repository holds (see [`Store::cursor`]).
    pub fn cursor(&self) -> Result<Option<Vec<u8>>, StoreError> {
        self.store.cursor()
    }

    pub fn all(&self) -> Result<Vec<Node>, StoreError> {
        self.store.nodes()
    }

    /// The feed's token issuers the repository holds (see [`Store::issuers`]).
    pub fn issuers(&self) -> Result<Vec<super::FeedIssuer>, StoreError> {
        self.store.issuers()
    }

    /// The node that registered with the certificate identity `identity`, if one is enrolled
    /// (from memory; see [`Bindings`]).
    pub fn bound_to(&self, identity: &str) -> Result<Option<String>, StoreError> {
        self.bindings.get(self.store.as_ref(), identity)
    }

    /// The repository's record itself, for a check made under the write lock of
    /// [`Nodes::apply_with`] (in its `write`).
    pub(super) fn record(&self, id: &str) -> Result<Option<Node>, StoreError> {
        self.store.node(id)
    }

    /// Sets a node's status; `None` when the node is unknown.
    pub fn set_status(&self, id: &str, status: NodeStatus) -> Result<Option<Node>, StoreError> {
        let mut changed = false;
        let node = self.update(id, |node| {
            if node.status != status {
                node.status = status;
                node.status_changed_at = unix_now();
                changed = true;
            }
        })?;
        if changed {
            // Sent after the write is visible: a receiver that looks the node up sees the change.
            let _ = self.changes.send(id.to_owned());
        }
        Ok(node)
    }

    /// The ids of nodes whose status changed from now on, and [`EVERY_NODE`] when the
    /// gateway's own standing changed. A receiver that lags behind gets `RecvError::Lagged`
    /// and should re-check every node it cares about.
    pub fn status_changes(&self) -> broadcast::Receiver<String> {
        self.changes.subscribe()
    }

    /// Adds configured nodes that the repository does not have (as active) and refreshes the
    /// kind and groups of those it has, keeping their status.
    pub fn seed(&self, seeds: &[NodeSeed]) -> Result<(), StoreError> {
        for seed in seeds {
            let updated = self.update(&seed.id, |node| {
                node.kind = seed.kind;
                node.groups.clone_from(&seed.groups);
                node.registrar.clone_from(&seed.registrar);
            })?;
            if updated.is_none() {
                let mut node = Node::new(&seed.id, seed.kind, seed.groups.clone(), unix_now());
                node.registrar.clone_from(&seed.registrar);
                self.put(node)?;
            }
        }
        Ok(())
    }

    /// Runs `write` (which applies `batch`) with node writes held off, then brings the cache
    /// in step with the batch's node records and announces the status changes among them (a
    /// removed node counts as changed: it is unknown now).
    pub(super) fn apply_with(
        &self,
        batch: &Batch,
        write: impl FnOnce() -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        let mut changed = Vec::new();
        {
            let _write = self.write.write().unwrap_or_else(|e| e.into_inner());
            let mut before = Vec::new();
            for change in batch.changes() {
                let (id, after) = match change {
                    Change::PutNode(node) => (&node.id, Some(node)),
                    Change::RemoveNode(id) => (id, None),
                    _ => continue,
                };
                let old = self.store.node(id)?;
                if old.is_some() && old.as_ref().map(|n| n.status) != after.map(|n| n.status) {
                    changed.push(id.clone());
                }
                before.push((old, after));
            }
            write()?;
            for (old, after) in &before {
                self.bindings.changed(old.as_ref(), *after);
            }
            for change in batch.changes() {
                match change {
                    Change::PutNode(node) => self
                        .cache
                        .insert(node.id.clone(), Some(Arc::new(node.clone()))),
                    Change::RemoveNode(id) => self.cache.insert(id.clone(), None),
                    _ => {}
                }
            }
        }
        for id in changed {
            // Sent after the write is visible, as in `set_status`.
            let _ = self.changes.send(id);
        }
        Ok(())
    }

    fn put(&self, node: Node) -> Result<(), StoreError> {
        let _write = self.write.write().unwrap_or_else(|e| e.into_inner());
        self.store.put_node(&node)?;
        self.cache.insert(node.id.clone(), Some(Arc::new(node)));
        Ok(())
    }

    fn update(&self, id: &str, change: impl FnOnce(&mut Node)) -> Result<Option<Node>, StoreError> {
        let _write = self.write.write().unwrap_or_else(|e| e.into_inner());
        let Some(mut node) = self.store.node(id)? else {
            return Ok(None);
        };
        let before = node.clone();
        change(&mut node);
        if node != before {
            self.store.put_node(&node)?;
        }
        self.cache
            .insert(id.to_owned(), Some(Arc::new(node.clone())));
        Ok(Some(node))
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{NodeKind, SledStore};

    /// Opens the repository, waiting for a previous handle in this process to let go of it
    /// (sled releases its file lock from a background thread).
    fn open(dir: &std::path::Path) -> SledStore {
        for _ in 0..100 {
            if let Ok(store) = SledStore::open(dir) {
                return store;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        SledStore::open(dir).unwrap()
    }

    fn seeded(dir: &std::path::Path) -> Nodes {
        let nodes = Nodes::new(Arc::new(open(dir)), 100);
        nodes
            .seed(&[NodeSeed {
                id: "Cm".into(),
                kind: NodeKind::Ae,
                groups: vec!["devices".into()],
                registrar: None,
            }])
            .unwrap();
        nodes
    }

    #[test]
    fn status_change_is_seen_by_the_next_lookup() {
        let dir = tempfile::tempdir().unwrap();
        let nodes = seeded(dir.path());
        assert_eq!(nodes.get("Cm").unwrap().unwrap().status, NodeStatus::Active);
        nodes.set_status("Cm", NodeStatus::Deactivated).unwrap();
        assert_eq!(
            nodes.get("Cm").unwrap().unwrap().status,
            NodeStatus::Deactivated
        );
    }

    #[test]
    fn status_survives_reopen_and_reseeding() {
        let dir = tempfile::tempdir().unwrap();
        seeded(dir.path())
            .set_status("Cm", NodeStatus::Deactivated)
            .unwrap();
        let nodes = seeded(dir.path());
        assert_eq!(
            nodes.get("Cm").unwrap().unwrap().status,
            NodeStatus::Deactivated
        );
    }

    #[test]
    fn status_change_is_announced_once() {
        let dir = tempfile::tempdir().unwrap();
        let nodes = seeded(dir.path());
        let mut changes = nodes.status_changes();
        nodes.set_status("Cm", NodeStatus::Deactivated).unwrap();
        nodes.set_status("Cm", NodeStatus::Deactivated).unwrap();
        assert_eq!(changes.try_recv().unwrap(), "Cm");
        assert!(changes.try_recv().is_err());
    }

    #[test]
    fn unknown_node_is_none_and_cannot_be_activated() {
        let dir = tempfile::tempdir().unwrap();
        let nodes = seeded(dir.path());
        assert!(nodes.get("Cx").unwrap().is_none());
        assert!(nodes
            .set_status("Cx", NodeStatus::Active)
            .unwrap()
            .is_none());
        assert!(nodes.get("Cx").unwrap().is_none());
    }
}
