//! [`Store`] on sled: a `nodes` tree keyed by originator id (JSON values); `check_keys`
//! (key id → JSON record, the secret in base64, stored as the configuration or the feed gave
//! it: see [`crate::security`] on protection at rest); `feed` (`cursor` → the feed cursor as
//! given); `sequence_marks` (check-value key id → persisted sequence bound), `revoked_tokens`
//! (token id → revocation time) and `token_uses` (token id → uses reserved so far), all three
//! with big-endian `u64` values; the feed's token issuers are in `feed` too, as
//! `issuer:<iss>` → JSON [`FeedIssuer`]. Every write is flushed before it returns; a [`Batch`] is one
//! sled transaction across `nodes`, `check_keys`, `feed` and `revoked_tokens`. The repository directory is
//! restricted to its owner (0700) when opened.

use std::convert::Infallible;
use std::path::Path;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde::{Deserialize, Serialize};
use sled::transaction::{ConflictableTransactionError, TransactionError};
use sled::Transactional;

use super::{Batch, Change, FeedIssuer, Node, Store, StoreError};
use crate::security::{CheckKey, KeyOrigin, Secret};

const CURSOR: &[u8] = b"cursor";
const ISSUER: &[u8] = b"issuer:";

pub struct SledStore {
    db: sled::Db,
    nodes: sled::Tree,
    keys: sled::Tree,
    feed: sled::Tree,
    marks: sled::Tree,
    revoked_tokens: sled::Tree,
    token_uses: sled::Tree,
}

impl SledStore {
    /// Opens (or creates) the repository under `dir`.
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        let path = dir.join("repository");
        let db = open_db(&path)?;
        owner_only(&path)?;
        Ok(SledStore {
            nodes: db.open_tree("nodes")?,
            keys: db.open_tree("check_keys")?,
            feed: db.open_tree("feed")?,
            marks: db.open_tree("sequence_marks")?,
            revoked_tokens: db.open_tree("revoked_tokens")?,
            token_uses: db.open_tree("token_uses")?,
            db,
        })
    }
}

/// Opens sled at `path`. A repository just closed in this process may still be locked for a
/// moment (sled's flusher thread lets go of it last): a lock held is tried again for up to
/// [`LOCK_WAIT`]; one held by another process stays held, and is then the error.
pub fn open_db(path: &Path) -> Result<sled::Db, sled::Error> {
    let deadline = std::time::Instant::now() + LOCK_WAIT;
    loop {
        match sled::Config::new().path(path).open() {
            Err(sled::Error::Io(e))
                if e.to_string().contains("could not acquire lock")
                    && std::time::Instant::now() < deadline =>
            {
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            opened => return opened,
        }
    }
}

/// How long [`open_db`] waits for a repository's lock.
const LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

/// Key material lies in the repository: no one but its owner may read it.
fn owner_only(path: &Path) -> Result<(), StoreError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o700))
            .map_err(|e| StoreError::Io(e.into()))?;
    }
    let _ = path;
    Ok(())
}

/// A check-value key as stored.
#[derive(Serialize, Deserialize)]
struct StoredKey {
    node: String,
    /// The key bytes, standard base64.
    secret: String,
    insert: bool,
    origin: StoredOrigin,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
enum StoredOrigin {
    Config,
    Repository,
}

fn encode_key(key: &CheckKey) -> Result<Vec<u8>, StoreError> {
    let stored = StoredKey {
        node: key.node.clone(),
        secret: STANDARD.encode(key.secret.expose()),
        insert: key.insert,
        origin: match key.origin {
            KeyOrigin::Config => StoredOrigin::Config,
            KeyOrigin::Repository => StoredOrigin::Repository,
        },
    };
    serde_json::to_vec(&stored).map_err(|e| StoreError::Corrupt {
        key: key.id.clone(),
        detail: e.to_string(),
    })
}

fn decode_key(id: &[u8], value: &[u8]) -> Result<CheckKey, StoreError> {
    let id = String::from_utf8_lossy(id).into_owned();
    let corrupt = |detail: String| StoreError::Corrupt {
        key: id.clone(),
        detail,
    };
    let stored: StoredKey = serde_json::from_slice(value).map_err(|e| corrupt(e.to_string()))?;
    let secret = STANDARD
        .decode(&stored.secret)
        .map_err(|e| corrupt(format!("key bytes: {e}")))?;
    Ok(CheckKey {
        node: stored.node,
        secret: Secret::new(&secret),
        insert: stored.insert,
        origin: match stored.origin {
            StoredOrigin::Config => KeyOrigin::Config,
            StoredOrigin::Repository => KeyOrigin::Repository,
        },
        id,
    })
}

fn encode_node(node: &Node) -> Result<Vec<u8>, StoreError> {
    serde_json::to_vec(node).map_err(|e| StoreError::Corrupt {
        key: node.id.clone(),
        detail: e.to_string(),
    })
}

/// A batch change as the bytes it writes: (tree, key, value or removal).
enum Write {
    Node(Vec<u8>, Vec<u8>),
    Key(Vec<u8>, Vec<u8>),
    RemoveKey(Vec<u8>),
    RemoveNode(Vec<u8>),
    Revoke(Vec<u8>, [u8; 8]),
    Feed(Vec<u8>, Option<Vec<u8>>),
}

fn encode(batch: &Batch) -> Result<Vec<Write>, StoreError> {
    batch
        .changes()
        .iter()
        .map(|change| {
            Ok(match change {
                Change::PutNode(n) => Write::Node(n.id.clone().into_bytes(), encode_node(n)?),
                Change::PutKey(k) => Write::Key(k.id.clone().into_bytes(), encode_key(k)?),
                Change::RemoveKey(id) => Write::RemoveKey(id.clone().into_bytes()),
                Change::RemoveNode(id) => Write::RemoveNode(id.clone().into_bytes()),
                Change::RevokeToken { jti, at } => {
                    Write::Revoke(jti.clone().into_bytes(), at.to_be_bytes())
                }
                Change::PutIssuer(i) => Write::Feed(
                    issuer_key(&i.iss),
                    Some(serde_json::to_vec(i).map_err(|e| StoreError::Corrupt {
                        key: i.iss.clone(),
                        detail: e.to_string(),
                    })?),
                ),
                Change::RemoveIssuer(iss) => Write::Feed(issuer_key(iss), None),
            })
        })
        .collect()
}

fn issuer_key(iss: &str) -> Vec<u8> {
    [ISSUER, iss.as_bytes()].concat()
}

fn decode<T: serde::de::DeserializeOwned>(key: &[u8], value: &[u8]) -> Result<T, StoreError> {
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
        self.nodes.insert(node.id.as_bytes(), encode_node(node)?)?;
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

    fn keys(&self) -> Result<Vec<CheckKey>, StoreError> {
        self.keys
            .iter()
            .map(|entry| {
                let (k, v) = entry?;
                decode_key(&k, &v)
            })
            .collect()
    }

    fn cursor(&self) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.feed.get(CURSOR)?.map(|v| v.to_vec()))
    }

    fn apply(&self, batch: &Batch) -> Result<(), StoreError> {
        batch.check()?;
        let writes = encode(batch)?;
        let cursor = batch.cursor();
        (&self.nodes, &self.keys, &self.feed, &self.revoked_tokens)
            .transaction(|(nodes, keys, feed, revoked)| {
                for write in &writes {
                    match write {
                        Write::Node(k, v) => nodes.insert(k.as_slice(), v.as_slice())?,
                        Write::Key(k, v) => keys.insert(k.as_slice(), v.as_slice())?,
                        Write::RemoveKey(k) => keys.remove(k.as_slice())?,
                        Write::RemoveNode(k) => nodes.remove(k.as_slice())?,
                        Write::Revoke(k, at) => match revoked.get(k.as_slice())? {
                            Some(first) => Some(first),
                            None => revoked.insert(k.as_slice(), &at[..])?,
                        },
                        Write::Feed(k, Some(v)) => feed.insert(k.as_slice(), v.as_slice())?,
                        Write::Feed(k, None) => feed.remove(k.as_slice())?,
                    };
                }
                if let Some(cursor) = cursor {
                    feed.insert(CURSOR, cursor)?;
                }
                Ok::<(), ConflictableTransactionError<Infallible>>(())
            })
            .map_err(|e| match e {
                TransactionError::Storage(e) => StoreError::Io(e),
                TransactionError::Abort(never) => match never {},
            })?;
        self.db.flush()?;
        Ok(())
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

    fn issuers(&self) -> Result<Vec<FeedIssuer>, StoreError> {
        self.feed
            .scan_prefix(ISSUER)
            .map(|entry| {
                let (k, v) = entry?;
                decode(&k, &v)
            })
            .collect()
    }
}

fn be_u64(bytes: &[u8]) -> Option<u64> {
    bytes.try_into().ok().map(u64::from_be_bytes)
}
