//! [`Repository`]: applies a whole [`Batch`] — node records, keys and the feed cursor, as the
//! IN sync receives them — in one durable step, and brings both in-memory views ([`Nodes`],
//! [`Keys`]) in step before returning: the very next request sees all of it, or (after an
//! error) none of it.

use std::sync::Arc;

use super::{Batch, Keys, Nodes, StoreError};

pub struct Repository {
    nodes: Arc<Nodes>,
    keys: Arc<Keys>,
}

impl Repository {
    /// `nodes` and `keys` must sit on the same [`super::Store`].
    pub fn new(nodes: Arc<Nodes>, keys: Arc<Keys>) -> Self {
        Repository { nodes, keys }
    }

    /// Applies `batch`: checked, written and flushed at once, then in force.
    pub fn apply(&self, batch: &Batch) -> Result<(), StoreError> {
        self.nodes.apply_with(batch, || self.keys.apply_all(batch))
    }

    pub fn nodes(&self) -> &Arc<Nodes> {
        &self.nodes
    }

    pub fn keys(&self) -> &Arc<Keys> {
        &self.keys
    }
}
