//! [`Store`] on sled: a `nodes` tree keyed by originator id (JSON values); `sequence_marks`
//! (check-value key id → persisted sequence bound), `revoked_tokens` (token id → revocation
//! time) and `token_uses` (token id → uses reserved so far), all three with big-endian `u64` values.
//! Every write is flushed before it returns.

use std::path::Path;

use super::{Node, Store, StoreError};

pub struct SledStore {
    db: sled::Db,
    nodes: sled::Tree,
    marks: sled::Tree,
    revoked_tokens: sled::Tree,
    token_uses: sled::Tree,
}

impl SledStore {
    /// Opens (or creates) the repository under `dir`.
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        let db = sled::Config::new().path(dir.join("repository")).open()?;
        let nodes = db.open_tree("nodes")?;
        let marks = db.open_tree("sequence_marks")?;
        let revoked_tokens = db.open_tree("revoked_tokens")?;
        let token_uses = db.open_tree("token_uses")?;
        Ok(SledStore {
            db,
            nodes,
            marks,
            revoked_tokens,
            token_uses,
        })
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
    fn revoke_token(&self, jti: &str, at_unix_s: u64) -> Result<bool, StoreError> {
        let previous = self
            .revoked_tokens
            .insert(jti.as_bytes(), &at_unix_s.to_be_bytes())?;
        self.db.flush()?;
        Ok(previous.is_none())
    }

    fn token_revoked(&self, jti: &str) -> Result<bool, StoreError> {
        Ok(self.revoked_tokens.contains_key(jti.as_bytes())?)
    }

    fn reserve_token_uses(&self, jti: &str, n: u64) -> Result<u64, StoreError> {
        let counted = self.token_uses.update_and_fetch(jti.as_bytes(), |old| {
            // An unreadable counter counts as used up: fail closed.
            let before = old.map_or(0, |o| be_u64(o).unwrap_or(u64::MAX));
            let uses = before.saturating_add(n);
            Some(uses.to_be_bytes().to_vec())
        })?;
        self.db.flush()?;
        counted
            .as_deref()
            .and_then(be_u64)
            .ok_or_else(|| StoreError::Corrupt {
                key: jti.to_owned(),
                detail: "use count is not an 8-byte counter".into(),
            })
    }
}

fn be_u64(bytes: &[u8]) -> Option<u64> {
    bytes.try_into().ok().map(u64::from_be_bytes)
}
