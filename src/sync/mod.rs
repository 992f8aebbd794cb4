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
pub mod mqtt;
pub mod removal;
#[cfg(test)]
mod tests;

pub use follower::{Cursor, Follower, Pause, SyncError};

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::config::SyncConfig;
use crate::metrics::Metrics;
use crate::record::Recorder;
use crate::store::Repository;

/// Follows the feed until `stop`, starting with `first`. A follower that fails (it can only
/// panic: a bug) is logged and started again from the repository's cursor a second later,
/// so the gateway never silently stops following.
pub async fn follow(
    first: Follower,
    config: SyncConfig,
    repository: Arc<Repository>,
    metrics: Arc<Metrics>,
    recorder: Arc<Recorder>,
    stop: CancellationToken,
) {
    let mut next = Some(first);
    loop {
        let follower = match next.take() {
            Some(f) => f,
            None => match Follower::new(
                config.clone(),
                repository.clone(),
                metrics.clone(),
                recorder.clone(),
            ) {
                Ok(f) => f,
                Err(e) => {
                    tracing::error!(error = %e, "feed: cannot restart the sync; retrying");
                    if pause(&stop).await {
                        return;
                    }
                    continue;
                }
            },
        };
        match tokio::spawn(follower.run(stop.clone())).await {
            Ok(()) => return,
            Err(e) => {
                tracing::error!(error = %e, "feed: the sync task failed; restarting it from the repository's cursor");
                if pause(&stop).await {
                    return;
                }
            }
        }
    }
}

/// A second's pause; `true` if `stop` came first.
async fn pause(stop: &CancellationToken) -> bool {
    tokio::select! {
        () = stop.cancelled() => true,
        () = tokio::time::sleep(Duration::from_secs(1)) => false,
    }
}

/// Announces to long-lived sessions each time the view crosses `sync.max_age_s` (checked
/// every second), so that MQTT sessions and CoAP observations of nodes outside the stale group
/// end once it goes stale, as their requests are refused.
pub async fn watch_staleness(nodes: Arc<crate::store::Nodes>, stop: CancellationToken) {
    let mut stale = false;
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            _ = tick.tick() => {}
        }
        let now = follower::unix_now();
        if nodes.standing().stale(now) != stale {
            stale = !stale;
            if stale {
                tracing::warn!(
                    max_age_s = nodes.standing().max_age_s(),
                    "feed: the view is too old; only the stale group passes"
                );
            } else {
                tracing::info!("feed: the view is fresh again");
            }
            nodes.announce_every_node();
        }
    }
}
