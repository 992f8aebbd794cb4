//! The audit writer's end of the outbox: every checkpoint synced in the log is queued for the
//! authority (kind [`CHECKPOINT`], id = its count). Runs on the writer's thread: a push is
//! one sled write and flush.

use std::sync::Arc;

use super::{Outbox, CHECKPOINT};
use crate::audit::Checkpoints;

pub struct Queued(pub Arc<Outbox>);

impl Checkpoints for Queued {
    fn synced(&self, jws: &str, count: u64) {
        if let Err(e) = self.0.push(CHECKPOINT, &count.to_string(), jws) {
            tracing::error!(error = %e, count, "audit: checkpoint not queued for the authority");
        }
    }
}
