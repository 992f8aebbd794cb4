//! The durable outbox (docs/audit.md "Anchored at the authority"): what the gateway must tell
//! the authority, kept on disk until the authority has answered 2xx. Entries have a kind
//! (`audit.checkpoint`, `misbehaviour.report`) and an id unique within the kind (for a
//! checkpoint, its count), which the authority dedups on: an entry sent again after a crash
//! is stored once.
//!
//! Its own sled database in `<gateway.data_dir>/outbox` (0700), next to the repository and
//! apart from it: the repository holds what the gateway enforces, this what it owes. Tree
//! `entries`: a big-endian `u64` position (the order of delivery) → the entry as JSON.
//!
//! Bounds: at most [`MAX_ENTRIES`] entries. A kind is either [`Keep::Latest`] (a newer entry
//! replaces the undelivered older ones: the newest checkpoint pins every line before it) or
//! [`Keep::All`] (every entry is delivered; a push into a full outbox is refused, and the
//! caller counts the loss). Every push and removal is flushed before it returns.
//!
//! [`deliver`] is the task that sends them in order; [`checkpoints`] the audit writer's end,
//! [`reports`] the report maker's.

pub mod anchored;
pub mod checkpoints;
pub mod deliver;
pub mod reports;

use std::path::Path;
use std::sync::Mutex;

use serde::{Deserialize, Serialize};
use tokio::sync::Notify;

use crate::metrics::OutboxMetrics;

/// Most entries the outbox holds.
pub const MAX_ENTRIES: usize = 1000;

/// What a newer entry of a kind does to the older undelivered ones.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Keep {
    /// Replaces them.
    Latest,
    /// Leaves them: every entry is delivered.
    All,
}

/// Where an entry goes and what it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Kind {
    pub name: &'static str,
    /// The authority's route it is POSTed to.
    pub path: &'static str,
    pub content_type: &'static str,
    pub keep: Keep,
}

/// An audit checkpoint's compact JWS, id = its count.
pub const CHECKPOINT: Kind = Kind {
    name: "audit.checkpoint",
    path: "/v1/audit/checkpoints",
    content_type: "application/jose",
    keep: Keep::Latest,
};

/// A misbehaviour report's compact JWS, id = the report's id (docs/reports.md).
pub const REPORT: Kind = Kind {
    name: "misbehaviour.report",
    path: "/v1/reports",
    content_type: "application/jose",
    keep: Keep::All,
};

const KINDS: [Kind; 2] = [CHECKPOINT, REPORT];

/// One entry, as stored.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    pub kind: String,
    pub id: String,
    pub body: String,
}

impl Entry {
    /// Its kind, if this build knows it.
    pub fn kind(&self) -> Option<Kind> {
        KINDS.iter().copied().find(|k| k.name == self.kind)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum OutboxError {
    #[error("outbox I/O failed: {0}")]
    Io(#[from] sled::Error),
    #[error("the outbox holds {MAX_ENTRIES} entries: {0} {1} not queued")]
    Full(&'static str, String),
    #[error("outbox entry {0} is unreadable: {1}")]
    Corrupt(u64, String),
}

pub struct Outbox {
    db: sled::Db,
    entries: sled::Tree,
    /// Pushes one at a time (position, replacement and bound are read-modify-write).
    writer: Mutex<()>,
    /// Woken on every push.
    pushed: Notify,
    metrics: OutboxMetrics,
}

impl Outbox {
    /// Opens (or creates) the outbox under `data_dir`.
    pub fn open(data_dir: &Path, metrics: OutboxMetrics) -> Result<Outbox, OutboxError> {
        let path = data_dir.join("outbox");
        let db = crate::store::open_db(&path)?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o700))
                .map_err(|e| OutboxError::Io(e.into()))?;
        }
        let outbox = Outbox {
            entries: db.open_tree("entries")?,
            db,
            writer: Mutex::new(()),
            pushed: Notify::new(),
            metrics,
        };
        outbox.metrics.entries.set(outbox.entries.len() as i64);
        Ok(outbox)
    }

    /// Queues an entry, durably; `false` if one of that kind and id is already queued.
    pub fn push(&self, kind: Kind, id: &str, body: &str) -> Result<bool, OutboxError> {
        let _writing = self.writer.lock().unwrap_or_else(|p| p.into_inner());
        let mut superseded = Vec::new();
        for item in self.entries.iter() {
            let (key, value) = item?;
            let entry = parse(&key, &value)?;
            if entry.kind == kind.name {
                if entry.id == id {
                    return Ok(false);
                }
                superseded.push(key);
            }
        }
        // The older entries go in the same atomic batch as the newer one comes: a crash
        // leaves one or the other, never neither.
        let mut batch = sled::Batch::default();
        let replaced = if kind.keep == Keep::Latest {
            superseded.len()
        } else {
            0
        };
        for key in superseded.iter().take(replaced) {
            batch.remove(key.clone());
        }
        if self.entries.len() - replaced >= MAX_ENTRIES {
            self.metrics.dropped("full");
            return Err(OutboxError::Full(kind.name, id.to_owned()));
        }
        let next = match self.entries.last()? {
            Some((key, _)) => position(&key)? + 1,
            None => 1,
        };
        let entry = Entry {
            kind: kind.name.to_owned(),
            id: id.to_owned(),
            body: body.to_owned(),
        };
        let json = serde_json::to_vec(&entry).expect("an outbox entry serialises");
        batch.insert(next.to_be_bytes().to_vec(), json);
        self.entries.apply_batch(batch)?;
        for _ in 0..replaced {
            self.metrics.dropped("superseded");
        }
        self.db.flush()?;
        self.metrics.entries.set(self.entries.len() as i64);
        self.pushed.notify_one();
        Ok(true)
    }

    /// The oldest entry and its position.
    pub fn first(&self) -> Result<Option<(u64, Entry)>, OutboxError> {
        match self.entries.first()? {
            None => Ok(None),
            Some((key, value)) => Ok(Some((position(&key)?, parse(&key, &value)?))),
        }
    }

    /// Removes the entry at `position` (delivered, or refused for good), durably.
    pub fn remove(&self, position: u64) -> Result<(), OutboxError> {
        let _writing = self.writer.lock().unwrap_or_else(|p| p.into_inner());
        self.entries.remove(position.to_be_bytes())?;
        self.db.flush()?;
        self.metrics.entries.set(self.entries.len() as i64);
        Ok(())
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Waits for the next push (one that came since the last wait returns at once).
    pub async fn pushed(&self) {
        self.pushed.notified().await;
    }

    pub fn metrics(&self) -> &OutboxMetrics {
        &self.metrics
    }
}

fn position(key: &[u8]) -> Result<u64, OutboxError> {
    let bytes: [u8; 8] = key
        .try_into()
        .map_err(|_| OutboxError::Corrupt(0, "not a position".into()))?;
    Ok(u64::from_be_bytes(bytes))
}

fn parse(key: &[u8], value: &[u8]) -> Result<Entry, OutboxError> {
    serde_json::from_slice(value)
        .map_err(|e| OutboxError::Corrupt(position(key).unwrap_or(0), e.to_string()))
}

#[cfg(test)]
mod tests;
