//! The report maker's end of the outbox: every report is queued (kind [`REPORT`], id = the
//! report's id, [`super::Keep::All`]: each one is delivered). A full outbox refuses it; the
//! maker counts the loss.

use std::sync::Arc;

use super::{Outbox, REPORT};
use crate::report::maker::Queue;

pub struct Queued(pub Arc<Outbox>);

impl Queue for Queued {
    fn queue(&self, id: &str, jws: &str) -> Result<(), String> {
        self.0
            .push(REPORT, id, jws)
            .map(|_| ())
            .map_err(|e| e.to_string())
    }
}
