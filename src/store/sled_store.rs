//! [`Store`] on sled: a `nodes` tree keyed by originator id with JSON values, and a
//! `sequence_marks` tree keyed by check-value key id with big-endian u64 values.

use std::path::Path;

use super::{Node, Store, StoreError};

pub struct SledStore {
    db: sled::Db,
    nodes: sled::Tree,
    marks: sled::Tree,
}

impl SledStore {
    /// Opens (or creates) the repository under `dir`.
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        let db = sled::Config::new().path(dir.join("repository")).open()?;
        let nodes = db.open_tree("nodes")?;
        let marks = db.open_tree("sequence_marks")?;
        Ok(SledStore { db, nodes, marks })
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

    fn sequence_mark(&self, key_id: &str) -> Result<Option<u64>, StoreError> {
        let Some(value) = self.marks.get(key_id.as_bytes())? else {
            return Ok(None);
        };
        let bytes: [u8; 8] = value.as_ref().try_into().map_err(|_| StoreError::Corrupt {
            key: key_id.to_owned(),
            detail: format!("sequence mark is {} bytes, expected 8", value.len()),
        })?;
        Ok(Some(u64::from_be_bytes(bytes)))
    }

    fn put_sequence_mark(&self, key_id: &str, mark: u64) -> Result<(), StoreError> {
        self.marks.insert(key_id.as_bytes(), &mark.to_be_bytes())?;
        self.db.flush()?;
        Ok(())
    }
}
