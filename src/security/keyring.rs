//! [`KeyRing`]: the check-value keys in force, by id and (for insert keys) by node. Built whole
//! from records and never changed after: a new set of keys is a new ring, swapped in by the
//! holder (`store::Keys`). Pairwise keys and token issuer keys join it as further maps.

use std::collections::HashMap;
use std::sync::Arc;

use super::mac::MacKey;
use super::{Secret, MIN_KEY_BYTES};

/// Where a key record came from. Config keys are re-seeded on every start (those no longer in
/// the configuration are removed); keys added at run time through the repository stay.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyOrigin {
    Config,
    Repository,
}

/// A check-value key: HMAC-SHA256 key `id`, enrolled for originator `node`. With `insert`,
/// the gateway signs that node's forwarded requests with it (a legacy device behind the
/// gateway that cannot compute check values itself).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckKey {
    pub id: String,
    pub node: String,
    pub secret: Secret,
    pub insert: bool,
    pub origin: KeyOrigin,
}

impl CheckKey {
    /// A verifying (not inserting) key added through the repository.
    pub fn new(id: &str, node: &str, secret: Secret) -> Self {
        CheckKey {
            id: id.to_owned(),
            node: node.to_owned(),
            secret,
            insert: false,
            origin: KeyOrigin::Repository,
        }
    }

    /// Whether this record may enter a ring on its own (id alphabet, key length).
    pub fn check(&self) -> Result<(), KeyRingError> {
        if !is_key_id(&self.id) {
            return Err(KeyRingError::BadId {
                id: self.id.clone(),
            });
        }
        if self.node.is_empty() {
            return Err(KeyRingError::NoNode {
                id: self.id.clone(),
            });
        }
        if self.secret.len() < MIN_KEY_BYTES {
            return Err(KeyRingError::Short {
                id: self.id.clone(),
                bytes: self.secret.len(),
            });
        }
        Ok(())
    }
}

/// A key in a ring, its MAC key prepared.
#[derive(Debug)]
pub struct EnrolledKey {
    pub record: CheckKey,
    pub mac: MacKey,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyRingError {
    #[error("{id:?} is not a key id (expected 1 to 64 of A-Z a-z 0-9 _ -)")]
    BadId { id: String },
    #[error("key {id:?} names no node")]
    NoNode { id: String },
    #[error("key {id:?} is {bytes} bytes (expected at least {MIN_KEY_BYTES}, 32 recommended)")]
    Short { id: String, bytes: usize },
    #[error("key id {id:?} appears twice")]
    Duplicate { id: String },
    #[error("node {node:?} has two insert keys ({first:?} and {second:?}; expected one)")]
    TwoInsertKeys {
        node: String,
        first: String,
        second: String,
    },
}

/// Enrolled keys by id, and insert keys by node.
#[derive(Debug, Default)]
pub struct KeyRing {
    by_id: HashMap<String, Arc<EnrolledKey>>,
    inserting: HashMap<String, Arc<EnrolledKey>>,
}

impl KeyRing {
    /// A ring of `keys`, or the first reason they cannot form one.
    pub fn new<'a>(keys: impl IntoIterator<Item = &'a CheckKey>) -> Result<Self, KeyRingError> {
        let mut ring = KeyRing::default();
        for key in keys {
            key.check()?;
            let enrolled = Arc::new(EnrolledKey {
                record: key.clone(),
                mac: MacKey::new(&key.secret),
            });
            if ring.by_id.contains_key(&key.id) {
                return Err(KeyRingError::Duplicate { id: key.id.clone() });
            }
            if key.insert {
                if let Some(first) = ring.inserting.get(&key.node) {
                    return Err(KeyRingError::TwoInsertKeys {
                        node: key.node.clone(),
                        first: first.record.id.clone(),
                        second: key.id.clone(),
                    });
                }
                ring.inserting.insert(key.node.clone(), enrolled.clone());
            }
            ring.by_id.insert(key.id.clone(), enrolled);
        }
        Ok(ring)
    }

    /// The key with this id.
    pub fn get(&self, id: &str) -> Option<&EnrolledKey> {
        self.by_id.get(id).map(Arc::as_ref)
    }

    /// The key the gateway signs `node`'s requests with, if it has one.
    pub fn inserting(&self, node: &str) -> Option<&EnrolledKey> {
        self.inserting.get(node).map(Arc::as_ref)
    }

    /// Every key record, in no particular order.
    pub fn records(&self) -> impl Iterator<Item = &CheckKey> {
        self.by_id.values().map(|k| &k.record)
    }

    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }
}

/// Key ids appear inside `aus`, so they are kept to a plain alphabet.
pub fn is_key_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(id: &str, node: &str, insert: bool) -> CheckKey {
        CheckKey {
            insert,
            ..CheckKey::new(id, node, Secret::new(&[1; 32]))
        }
    }

    #[test]
    fn keys_are_found_by_id_and_insert_keys_by_node() {
        let ring = KeyRing::new(&[key("a", "Cm", false), key("b", "Cm", true)]).unwrap();
        assert_eq!(ring.get("a").unwrap().record.node, "Cm");
        assert_eq!(ring.inserting("Cm").unwrap().record.id, "b");
        assert!(ring.get("c").is_none() && ring.inserting("Cx").is_none());
        assert_eq!(ring.len(), 2);
    }

    #[test]
    fn invalid_key_sets_make_no_ring() {
        let short = CheckKey::new("s", "Cm", Secret::new(&[1; 15]));
        let cases = [
            (vec![key("a b", "Cm", false)], "not a key id"),
            (vec![short], "15 bytes"),
            (vec![key("a", "", false)], "names no node"),
            (vec![key("a", "Cm", false), key("a", "Cn", false)], "twice"),
            (
                vec![key("a", "Cm", true), key("b", "Cm", true)],
                "two insert keys",
            ),
        ];
        for (keys, why) in cases {
            let e = KeyRing::new(&keys).unwrap_err();
            assert!(e.to_string().contains(why), "{e}");
        }
    }
}
