//! The optional `[audit]` table: the tamper-evident audit log (docs/audit.md).
//!
//! In: [`FileAudit`] as written. Out: [`AuditConfig`] with its signing key read, or errors
//! located at their keys. With `[sync]`, the checkpoint key defaults to `sync.sign_key` (the
//! key the authority already knows this gateway by), so that the authority can check the
//! checkpoints it is sent.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;

use super::Validator;
use crate::feed::SigningKey;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileAudit {
    pub dir: String,
    pub key: Option<String>,
    pub on_full: Option<String>,
    pub flush_interval_ms: Option<u64>,
    pub flush_records: Option<u64>,
    pub checkpoint_records: Option<u64>,
    pub checkpoint_interval_s: Option<u64>,
    pub segment_bytes: Option<u64>,
    pub retain_bytes: Option<u64>,
    pub retain_days: Option<u64>,
    pub queue_records: Option<u64>,
}

/// What the gateway does while the log cannot take records (`on_full`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OnFull {
    /// Fail closed: requests are refused (rsc 5000) until the log writes again.
    Refuse,
    /// Requests pass; what is lost is counted and recorded as a gap.
    Drop,
}

#[derive(Clone, Debug)]
pub struct AuditConfig {
    pub dir: PathBuf,
    /// Signs checkpoints.
    pub key: Arc<SigningKey>,
    /// The log's name in its checkpoints: `sync.gateway_id`, else `gateway.cse_id`.
    pub log_id: String,
    pub on_full: OnFull,
    /// A record is written and synced at most this long after the writer takes it...
    pub flush_interval: Duration,
    /// ... or as soon as this many wait.
    pub flush_records: usize,
    /// A checkpoint after this many records ...
    pub checkpoint_records: u64,
    /// ... or this long after the last one, whichever comes first (if records came since).
    pub checkpoint_interval: Duration,
    /// A segment is closed once it holds this many bytes.
    pub segment_bytes: u64,
    /// The oldest segments go once all hold more than this ...
    pub retain_bytes: u64,
    /// ... or once their last record is older than this many days (0: kept by size only).
    pub retain_days: u64,
    /// Records waiting for the writer, at most.
    pub queue_records: usize,
}

const MIB: u64 = 1024 * 1024;
const FLUSH_INTERVAL_MS: u64 = 100;
const FLUSH_RECORDS: u64 = 1000;
const CHECKPOINT_RECORDS: u64 = 10_000;
const CHECKPOINT_INTERVAL_S: u64 = 10;
const SEGMENT_BYTES: u64 = 64 * MIB;
const RETAIN_BYTES: u64 = 1024 * MIB;
const RETAIN_DAYS: u64 = 90;
const QUEUE_RECORDS: u64 = 65_536;

impl AuditConfig {
    /// A log in `dir` signed with `key` under `log_id`, every other key at its default.
    pub fn new(dir: PathBuf, key: Arc<SigningKey>, log_id: &str) -> AuditConfig {
        AuditConfig {
            dir,
            key,
            log_id: log_id.to_owned(),
            on_full: OnFull::Refuse,
            flush_interval: Duration::from_millis(FLUSH_INTERVAL_MS),
            flush_records: FLUSH_RECORDS as usize,
            checkpoint_records: CHECKPOINT_RECORDS,
            checkpoint_interval: Duration::from_secs(CHECKPOINT_INTERVAL_S),
            segment_bytes: SEGMENT_BYTES,
            retain_bytes: RETAIN_BYTES,
            retain_days: RETAIN_DAYS,
            queue_records: QUEUE_RECORDS as usize,
        }
    }
}

impl Validator {
    pub(super) fn audit(
        &mut self,
        a: FileAudit,
        sync_key: Option<&Arc<SigningKey>>,
        log_id: &str,
    ) -> Option<AuditConfig> {
        if a.dir.is_empty() {
            self.err(
                "audit.dir",
                "is empty (expected the directory the log is written to)",
            );
        }
        let key = match (&a.key, sync_key) {
            (Some(path), _) => SigningKey::load(std::path::Path::new(path))
                .map(Arc::new)
                .map_err(|e| self.err("audit.key", e.to_string()))
                .ok(),
            (None, Some(key)) => Some(key.clone()),
            (None, None) => {
                self.err("audit.key", "is missing (expected the Ed25519 key file that signs checkpoints: `m2mguard audit key --out FILE` makes one; with [sync] it defaults to sync.sign_key)");
                None
            }
        };
        let on_full = match a.on_full.as_deref() {
            None | Some("refuse") => OnFull::Refuse,
            Some("drop") => OnFull::Drop,
            Some(other) => {
                self.err(
                    "audit.on_full",
                    format!("{other:?} is not a choice (expected \"refuse\" or \"drop\")"),
                );
                OnFull::Refuse
            }
        };
        let segment_bytes = self.range(
            "audit.segment_bytes",
            a.segment_bytes,
            SEGMENT_BYTES,
            64 * 1024..=4096 * MIB,
        );
        let retain_bytes = self.range(
            "audit.retain_bytes",
            a.retain_bytes,
            RETAIN_BYTES,
            128 * 1024..=u64::MAX,
        );
        if retain_bytes < 2 * segment_bytes {
            self.err(
                "audit.retain_bytes",
                format!("{retain_bytes} is less than twice audit.segment_bytes ({segment_bytes}): the log would not hold one closed segment"),
            );
        }
        Some(AuditConfig {
            dir: PathBuf::from(&a.dir),
            key: key?,
            log_id: log_id.to_owned(),
            on_full,
            flush_interval: Duration::from_millis(self.range(
                "audit.flush_interval_ms",
                a.flush_interval_ms,
                FLUSH_INTERVAL_MS,
                1..=10_000,
            )),
            flush_records: self.range(
                "audit.flush_records",
                a.flush_records,
                FLUSH_RECORDS,
                1..=100_000,
            ) as usize,
            checkpoint_records: self.range(
                "audit.checkpoint_records",
                a.checkpoint_records,
                CHECKPOINT_RECORDS,
                1..=100_000_000,
            ),
            checkpoint_interval: Duration::from_secs(self.range(
                "audit.checkpoint_interval_s",
                a.checkpoint_interval_s,
                CHECKPOINT_INTERVAL_S,
                1..=86_400,
            )),
            segment_bytes,
            retain_bytes,
            retain_days: self.range("audit.retain_days", a.retain_days, RETAIN_DAYS, 0..=36_500),
            queue_records: self.range(
                "audit.queue_records",
                a.queue_records,
                QUEUE_RECORDS,
                16..=16_777_216,
            ) as usize,
        })
    }
}
