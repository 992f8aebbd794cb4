//! The authority's state in sled, in its own data directory (`<data_dir>/authority`, 0700):
//! `records` (seq, big-endian `u64` → the record's compact JWS), `nodes` (id → `node.put`
//! body, JSON), `keys` (key id → [`StoredKey`]), `gateways` (id → [`StoredGateway`]) and
//! `revoked` (token jti → Unix seconds, big-endian), `enrol_codes` (gateway id →
//! [`StoredCode`]: the hash of its one-time enrolment code), `issuers` (the token issuers it
//! published: `iss` → `issuer.put` body, JSON), `checkpoints` (gateways' audit
//! checkpoints: [`super::anchors`]) and `das_tokens` (issued tokens: [`super::das`]). Node key secrets are held here in the
//! clear, as the authority must seal them to gateways added later: the directory is its
//! owner's alone.
//!
//! Invariant: [`State::commit`] writes records and the state changes they publish in one sled
//! transaction and flushes before it returns; a record's slot is written once, never again.

use std::fmt;
use std::path::Path;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use sled::transaction::{ConflictableTransactionError, TransactionError};
use sled::Transactional;

use super::anchors::Anchors;
use super::das::IssuedTokens;
use super::reports::Reports;
use crate::feed::record::{hash, ZERO_HASH};
use crate::feed::{GatewayStatus, IssuerBody, NodeBody};

/// Largest page of records read at once, in bytes (lines and their newlines).
pub const MAX_PAGE_BYTES: usize = 8 * 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("authority state I/O failed: {0}")]
    Io(#[from] sled::Error),
    #[error("authority state entry {key:?} is unreadable: {detail}")]
    Corrupt { key: String, detail: String },
    #[error("record {seq} is already written: records are never rewritten")]
    Rewrite { seq: u64 },
}

/// A node's check-value key. `Debug` hides the secret.
#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoredKey {
    pub node: String,
    pub insert: bool,
    /// The secret, lowercase hex.
    pub secret: String,
}

impl fmt::Debug for StoredKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoredKey")
            .field("node", &self.node)
            .field("insert", &self.insert)
            .field("secret", &"<redacted>")
            .finish()
    }
}

/// A gateway the authority knows: its public keys, its status, what it last confirmed.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoredGateway {
    pub id: String,
    /// Ed25519 public key (acks), 64 hex digits.
    pub sign: String,
    /// X25519 public key (sealed secrets), 64 hex digits.
    pub seal: String,
    pub status: GatewayStatus,
    pub confirmed: Option<Confirmed>,
    /// SHA-256 (hex) of the SubjectPublicKeyInfo of the client certificate the authority
    /// signed at enrolment: only that certificate authenticates the gateway. `None` for a
    /// gateway added with its kit (any certificate of the CA with its CN).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<String>,
    /// With status `removed`: the seq of the `gateway.put` that removed it. Its ack of that
    /// record makes the authority forget the gateway.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub removed_at: Option<u64>,
}

/// A gateway's one-time enrolment code, as the authority keeps it: only its hash.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoredCode {
    /// SHA-256 of the code's text, hex.
    pub hash: String,
    /// Unix seconds after which the code is refused.
    pub expires_at: u64,
}

impl StoredGateway {
    /// Its signing key (acks, checkpoints, reports).
    pub fn signing_key(&self) -> Result<crate::feed::VerifyingKey, StateError> {
        crate::feed::keys::parse_hex32(&self.sign, "sign")
            .map(crate::feed::VerifyingKey::new)
            .map_err(|e| StateError::Corrupt {
                key: self.id.clone(),
                detail: e.to_string(),
            })
    }
}

/// The gateway's last verified ack.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Confirmed {
    pub seq: u64,
    pub hash: String,
    /// The ack's `at`: when the gateway applied it.
    pub applied_at: u64,
    pub error: Option<String>,
    /// When the authority received the ack.
    pub received_at: u64,
}

/// One change of state, written with the record that publishes it (or alone: a gateway
/// added, an ack received).
#[derive(Debug)]
pub enum Change {
    PutNode(NodeBody),
    RemoveNode(String),
    PutKey(String, StoredKey),
    RemoveKey(String),
    Revoke(String, u64),
    PutGateway(StoredGateway),
    ForgetGateway(String),
    PutCode(String, StoredCode),
    RemoveCode(String),
    PutIssuer(IssuerBody),
    RemoveIssuer(String),
}

pub struct State {
    db: sled::Db,
    records: sled::Tree,
    nodes: sled::Tree,
    keys: sled::Tree,
    gateways: sled::Tree,
    revoked: sled::Tree,
    codes: sled::Tree,
    issuers: sled::Tree,
    anchors: Anchors,
    reports: Reports,
    issued: IssuedTokens,
}

impl State {
    /// Opens (or creates) the state under `data_dir`.
    pub fn open(data_dir: &Path) -> Result<State, StateError> {
        let path = data_dir.join("authority");
        let db = sled::Config::new().path(&path).open()?;
        owner_only(&path)?;
        Ok(State {
            records: db.open_tree("records")?,
            nodes: db.open_tree("nodes")?,
            keys: db.open_tree("keys")?,
            gateways: db.open_tree("gateways")?,
            revoked: db.open_tree("revoked")?,
            codes: db.open_tree("enrol_codes")?,
            issuers: db.open_tree("issuers")?,
            anchors: Anchors::open(&db)?,
            reports: Reports::open(&db)?,
            issued: IssuedTokens::open(&db)?,
            db,
        })
    }

    /// The audit checkpoints gateways anchored here.
    pub fn anchors(&self) -> &Anchors {
        &self.anchors
    }

    /// The misbehaviour reports gateways sent.
    pub fn reports(&self) -> &Reports {
        &self.reports
    }

    /// The tokens the authority issued as DAS.
    pub fn issued(&self) -> &IssuedTokens {
        &self.issued
    }

    /// The token issuers published, in byte order of `iss`.
    pub fn issuers(&self) -> Result<Vec<IssuerBody>, StateError> {
        all(&self.issuers)
    }

    /// The last record's seq and hash (0 and 64 zeros for an empty feed).
    pub fn tip(&self) -> Result<(u64, String), StateError> {
        match self.records.last()? {
            None => Ok((0, ZERO_HASH.to_owned())),
            Some((k, v)) => Ok((seq_of(&k)?, hash(&text(&k, &v)?))),
        }
    }

    /// Up to `limit` records after `after`, in order, and no more than [`MAX_PAGE_BYTES`] of
    /// them (but always the first).
    pub fn records_after(&self, after: u64, limit: usize) -> Result<Vec<String>, StateError> {
        let start = after.saturating_add(1).to_be_bytes();
        let mut out = Vec::new();
        let mut bytes = 0;
        for entry in self.records.range(start..).take(limit) {
            let (k, v) = entry?;
            bytes += v.len() + 1;
            if bytes > MAX_PAGE_BYTES && !out.is_empty() {
                break;
            }
            out.push(text(&k, &v)?);
        }
        Ok(out)
    }

    /// The record `seq`, if the feed has it.
    pub fn record(&self, seq: u64) -> Result<Option<String>, StateError> {
        let key = seq.to_be_bytes();
        match self.records.get(key)? {
            None => Ok(None),
            Some(v) => text(&key, &v).map(Some),
        }
    }

    pub fn node(&self, id: &str) -> Result<Option<NodeBody>, StateError> {
        get(&self.nodes, id)
    }

    pub fn nodes(&self) -> Result<Vec<NodeBody>, StateError> {
        all(&self.nodes)
    }

    pub fn key(&self, id: &str) -> Result<Option<StoredKey>, StateError> {
        get(&self.keys, id)
    }

    /// Every key as (id, key).
    pub fn keys(&self) -> Result<Vec<(String, StoredKey)>, StateError> {
        self.keys
            .iter()
            .map(|entry| {
                let (k, v) = entry?;
                Ok((text(&k, &k)?, parse(&k, &v)?))
            })
            .collect()
    }

    pub fn gateway(&self, id: &str) -> Result<Option<StoredGateway>, StateError> {
        get(&self.gateways, id)
    }

    pub fn gateways(&self) -> Result<Vec<StoredGateway>, StateError> {
        all(&self.gateways)
    }

    /// The pending enrolment code of gateway `id`.
    pub fn code(&self, id: &str) -> Result<Option<StoredCode>, StateError> {
        get(&self.codes, id)
    }

    pub fn is_revoked(&self, jti: &str) -> Result<bool, StateError> {
        Ok(self.revoked.contains_key(jti)?)
    }

    pub fn revoked(&self) -> Result<Vec<String>, StateError> {
        self.revoked
            .iter()
            .map(|entry| {
                let (k, _) = entry?;
                text(&k, &k)
            })
            .collect()
    }

    /// Writes `records` (seq, compact) and `changes` in one transaction, then flushes.
    pub fn commit(&self, records: &[(u64, String)], changes: &[Change]) -> Result<(), StateError> {
        let trees = (
            &self.records,
            &self.nodes,
            &self.keys,
            &self.gateways,
            &self.revoked,
            &self.codes,
            &self.issuers,
        );
        let result = trees.transaction(|(r, n, k, g, v, c, i)| {
            for (seq, compact) in records {
                if r.insert(&seq.to_be_bytes(), compact.as_bytes())?.is_some() {
                    return Err(ConflictableTransactionError::Abort(*seq));
                }
            }
            for change in changes {
                match change {
                    Change::PutNode(node) => n.insert(node.id.as_bytes(), json(node))?,
                    Change::RemoveNode(id) => n.remove(id.as_bytes())?,
                    Change::PutKey(id, key) => k.insert(id.as_bytes(), json(key))?,
                    Change::RemoveKey(id) => k.remove(id.as_bytes())?,
                    Change::Revoke(jti, at) => v.insert(jti.as_bytes(), &at.to_be_bytes())?,
                    Change::PutGateway(gw) => g.insert(gw.id.as_bytes(), json(gw))?,
                    Change::ForgetGateway(id) => g.remove(id.as_bytes())?,
                    Change::PutCode(id, code) => c.insert(id.as_bytes(), json(code))?,
                    Change::RemoveCode(id) => c.remove(id.as_bytes())?,
                    Change::PutIssuer(body) => i.insert(body.iss.as_bytes(), json(body))?,
                    Change::RemoveIssuer(iss) => i.remove(iss.as_bytes())?,
                };
            }
            Ok(())
        });
        match result {
            Ok(()) => {}
            Err(TransactionError::Abort(seq)) => return Err(StateError::Rewrite { seq }),
            Err(TransactionError::Storage(e)) => return Err(e.into()),
        }
        self.db.flush()?;
        Ok(())
    }
}

fn json<T: Serialize>(value: &T) -> Vec<u8> {
    serde_json::to_vec(value).expect("a state entry serialises")
}

fn corrupt(key: &[u8], detail: impl ToString) -> StateError {
    StateError::Corrupt {
        key: String::from_utf8_lossy(key).into_owned(),
        detail: detail.to_string(),
    }
}

fn text(key: &[u8], value: &[u8]) -> Result<String, StateError> {
    String::from_utf8(value.to_vec()).map_err(|e| corrupt(key, e))
}

fn seq_of(key: &[u8]) -> Result<u64, StateError> {
    let bytes: [u8; 8] = key.try_into().map_err(|_| corrupt(key, "not a seq"))?;
    Ok(u64::from_be_bytes(bytes))
}

fn parse<T: DeserializeOwned>(key: &[u8], value: &[u8]) -> Result<T, StateError> {
    serde_json::from_slice(value).map_err(|e| corrupt(key, e))
}

fn get<T: DeserializeOwned>(tree: &sled::Tree, id: &str) -> Result<Option<T>, StateError> {
    match tree.get(id.as_bytes())? {
        None => Ok(None),
        Some(v) => parse(id.as_bytes(), &v).map(Some),
    }
}

fn all<T: DeserializeOwned>(tree: &sled::Tree) -> Result<Vec<T>, StateError> {
    tree.iter()
        .map(|entry| {
            let (k, v) = entry?;
            parse(&k, &v)
        })
        .collect()
}

/// The state holds node secrets: no one but its owner may read it.
fn owner_only(path: &Path) -> Result<(), StateError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o700))
            .map_err(|e| StateError::Io(e.into()))?;
    }
    let _ = path;
    Ok(())
}
