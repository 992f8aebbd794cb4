//! [`MemoryStore`]: the repository in memory, for tests and for a guard without one. Same
//! contract as [`super::SledStore`] (the shared tests in `store/tests.rs` run against both),
//! minus durability across processes: everything is gone when it is dropped.

use std::collections::BTreeMap;
use std::sync::Mutex;

use super::{Batch, Change, FeedIssuer, Node, Store, StoreError};
use crate::security::CheckKey;

#[derive(Default)]
pub struct MemoryStore {
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    nodes: BTreeMap<String, Node>,
    keys: BTreeMap<String, CheckKey>,
    marks: BTreeMap<String, u64>,
    revoked_tokens: BTreeMap<String, u64>,
    token_uses: BTreeMap<String, u64>,
    issuers: BTreeMap<String, FeedIssuer>,
    cursor: Option<Vec<u8>>,
}

impl MemoryStore {
    fn with<T>(&self, f: impl FnOnce(&mut State) -> T) -> T {
        f(&mut self.state.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

impl Store for MemoryStore {
    fn node(&self, id: &str) -> Result<Option<Node>, StoreError> {
        Ok(self.with(|s| s.nodes.get(id).cloned()))
    }

    fn put_node(&self, node: &Node) -> Result<(), StoreError> {
        self.with(|s| s.nodes.insert(node.id.clone(), node.clone()));
        Ok(())
    }

    fn nodes(&self) -> Result<Vec<Node>, StoreError> {
        Ok(self.with(|s| s.nodes.values().cloned().collect()))
    }

    fn keys(&self) -> Result<Vec<CheckKey>, StoreError> {
        Ok(self.with(|s| s.keys.values().cloned().collect()))
    }

    fn cursor(&self) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.with(|s| s.cursor.clone()))
    }

    fn apply(&self, batch: &Batch) -> Result<(), StoreError> {
        batch.check()?;
        self.with(|s| {
            for change in batch.changes() {
                match change {
                    Change::PutNode(node) => {
                        s.nodes.insert(node.id.clone(), node.clone());
                    }
                    Change::PutKey(key) => {
                        s.keys.insert(key.id.clone(), key.clone());
                    }
                    Change::RemoveKey(id) => {
                        s.keys.remove(id);
                    }
                    Change::RemoveNode(id) => {
                        s.nodes.remove(id);
                    }
                    Change::RevokeToken { jti, at } => {
                        s.revoked_tokens.entry(jti.clone()).or_insert(*at);
                    }
                    Change::PutIssuer(issuer) => {
                        s.issuers.insert(issuer.iss.clone(), issuer.clone());
                    }
                    Change::RemoveIssuer(iss) => {
                        s.issuers.remove(iss);
                    }
                }
            }
            if let Some(cursor) = batch.cursor() {
                s.cursor = Some(cursor.to_vec());
            }
        });
        Ok(())
    }

    fn sequence_mark(&self, key_id: &str) -> Result<Option<u64>, StoreError> {
        Ok(self.with(|s| s.marks.get(key_id).copied()))
    }

    fn put_sequence_mark(&self, key_id: &str, mark: u64) -> Result<(), StoreError> {
        self.with(|s| s.marks.insert(key_id.to_owned(), mark));
        Ok(())
    }

    fn revoke_token(&self, jti: &str, at_unix_s: u64) -> Result<bool, StoreError> {
        Ok(self.with(|s| s.revoked_tokens.insert(jti.to_owned(), at_unix_s).is_none()))
    }

    fn token_revoked(&self, jti: &str) -> Result<bool, StoreError> {
        Ok(self.with(|s| s.revoked_tokens.contains_key(jti)))
    }

    fn reserve_token_uses(&self, jti: &str, n: u64) -> Result<u64, StoreError> {
        Ok(self.with(|s| {
            let uses = s.token_uses.entry(jti.to_owned()).or_default();
            *uses = uses.saturating_add(n);
            *uses
        }))
    }

    fn issuers(&self) -> Result<Vec<FeedIssuer>, StoreError> {
        Ok(self.with(|s| s.issuers.values().cloned().collect()))
    }
}
