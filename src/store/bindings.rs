//! [`Bindings`]: which node each client-certificate identity registered as (see
//! [`super::Node::bound_identity`]), in memory, so that admitting a registrant does not read
//! the whole repository. Built from the repository on first use, then kept in step by every
//! node write that goes through [`super::Nodes`].

use std::collections::HashMap;
use std::sync::RwLock;

use super::{Node, Store, StoreError};

#[derive(Default)]
pub struct Bindings {
    /// Identity → node id; `None` until first read.
    map: RwLock<Option<HashMap<String, String>>>,
}

impl Bindings {
    /// The node `identity` is bound to.
    pub fn get(&self, store: &dyn Store, identity: &str) -> Result<Option<String>, StoreError> {
        if let Some(map) = self.map.read().unwrap_or_else(|e| e.into_inner()).as_ref() {
            return Ok(map.get(identity).cloned());
        }
        let mut map = self.map.write().unwrap_or_else(|e| e.into_inner());
        if map.is_none() {
            let built = store
                .nodes()?
                .into_iter()
                .filter_map(|n| Some((n.bound_identity()?.to_owned(), n.id)))
                .collect();
            *map = Some(built);
        }
        Ok(map.as_ref().and_then(|m| m.get(identity).cloned()))
    }

    /// A node record changed from `before` to `after` (`None`: absent).
    pub fn changed(&self, before: Option<&Node>, after: Option<&Node>) {
        let mut guard = self.map.write().unwrap_or_else(|e| e.into_inner());
        let Some(map) = guard.as_mut() else {
            return;
        };
        if let Some(old) = before.and_then(Node::bound_identity) {
            map.remove(old);
        }
        if let Some(node) = after {
            if let Some(identity) = node.bound_identity() {
                map.insert(identity.to_owned(), node.id.clone());
            }
        }
    }
}
