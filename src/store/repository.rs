//! [`Repository`]: applies a whole [`Batch`] — node records, keys and the feed cursor, as the
//! IN sync receives them — in one durable step, and brings both in-memory views ([`Nodes`],
//! [`Keys`]) in step before returning: the very next request sees all of it, or (after an
//! error) none of it.

use std::sync::Arc;

use super::{Batch, Keys, Node, Nodes, StoreError};

pub struct Repository {
    nodes: Arc<Nodes>,
    keys: Arc<Keys>,
    /// Told after a batch that changed the feed's token issuers was applied.
    on_issuers: Option<Box<dyn Fn() + Send + Sync>>,
}

impl Repository {
    /// `nodes` and `keys` must sit on the same [`super::Store`].
    pub fn new(nodes: Arc<Nodes>, keys: Arc<Keys>) -> Self {
        Repository {
            nodes,
            keys,
            on_issuers: None,
        }
    }

    /// Calls `reload` after every batch that changes the feed's token issuers, so that the
    /// token stage trusts exactly what is on disk before `apply` returns.
    pub fn on_issuers(mut self, reload: impl Fn() + Send + Sync + 'static) -> Self {
        self.on_issuers = Some(Box::new(reload));
        self
    }

    /// Applies `batch`: checked, written and flushed at once, then in force.
    pub fn apply(&self, batch: &Batch) -> Result<(), StoreError> {
        self.nodes
            .apply_with(batch, || self.keys.apply_all(batch))?;
        if batch.touches_issuers() {
            if let Some(reload) = &self.on_issuers {
                reload();
            }
        }
        Ok(())
    }

    /// Puts `node` into the repository only if `allowed` says so of what holds its id and
    /// its certificate identity now (the node record, the id the identity is bound to): the
    /// check and the write are one step, so two registrations cannot both pass it.
    pub fn put_node_if(
        &self,
        node: Node,
        allowed: impl FnOnce(Option<&Node>, Option<&str>) -> Result<(), String>,
    ) -> Result<(), StoreError> {
        let id = node.id.clone();
        let identity = node.bound_identity().map(str::to_owned);
        let batch = Batch::new().put_node(node);
        self.nodes.apply_with(&batch, || {
            let existing = self.nodes.record(&id)?;
            let bound = match &identity {
                Some(identity) => self.nodes.bound_to(identity)?,
                None => None,
            };
            allowed(existing.as_ref(), bound.as_deref()).map_err(|detail| StoreError::Invalid {
                record: format!("node {id:?}"),
                detail,
            })?;
            self.keys.apply_all(&batch)
        })
    }

    pub fn nodes(&self) -> &Arc<Nodes> {
        &self.nodes
    }

    pub fn keys(&self) -> &Arc<Keys> {
        &self.keys
    }
}
