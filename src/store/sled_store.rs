//! [`Store`] on sled: one `nodes` tree keyed by originator id, JSON values.

use std::path::Path;

use super::{Node, Store, StoreError};

pub struct SledStore {
    db: sled::Db,
    nodes: sled::Tree,
}

impl SledStore {
    /// Opens (or creates) the repository under `dir`.
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        let db = sled::Config::new().path(dir.join("repository")).open()?;
        let nodes = db.open_tree("nodes")?;
        Ok(SledStore { db, nodes })
    }
}

fn decode(key: &[u8], value: &[u8]) -> Result<Node, StoreError> {
    serde_json::from_slice(value).map_err(|e| StoreError::Corrupt {
        key: String::from_utf8_lossy(key).into_owned(),
        detail: e.to_string(),
    })
}

impl Store for SledStore {
    fn node(&self, id: &str) -> Result<Option<Node>, StoreError> {
        self.nodes
            .get(id.as_bytes())?
            .map(|v| decode(id.as_bytes(), &v))
            .transpose()
    }

    fn put_node(&self, node: &Node) -> Result<(), StoreError> {
        let value = serde_json::to_vec(node).map_err(|e| StoreError::Corrupt {
            key: node.id.clone(),
            detail: e.to_string(),
        })?;
        self.nodes.insert(node.id.as_bytes(), value)?;
        self.db.flush()?;
        Ok(())
    }

    fn nodes(&self) -> Result<Vec<Node>, StoreError> {
        self.nodes
            .iter()
            .map(|entry| {
                let (k, v) = entry?;
                decode(&k, &v)
            })
            .collect()
    }
}
