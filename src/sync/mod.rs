//! Following the authority's status feed (`[sync]`, docs/sync.md): the gateway's side of
//! the IN link (TS-0003 §7.2.3, §7.2.4, §7.9).
//!
//! In: the feed over HTTPS (`client`), verified with [`crate::feed`]. Out: the repository
//! brought in step ([`crate::store::Repository`]), the gateway's own standing
//! ([`crate::store::Standing`]), signed acks to the authority, and metrics. `apply` turns
//! records into a batch; `follower` runs the rounds. With `[sync]` the feed owns nodes and
//! keys; the repository keeps enforcing from what it holds whenever the authority is away.

pub mod apply;
pub mod client;
pub mod follower;
mod metrics;
pub mod mqtt;
#[cfg(test)]
mod tests;

pub use follower::{Cursor, Follower, SyncError};
pub use metrics::SyncMetrics;
