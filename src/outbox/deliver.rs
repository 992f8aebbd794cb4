//! Delivery: one task sends the outbox's entries to the authority in order, over the
//! gateway's mTLS client. An entry is removed once the authority answered 2xx (stored, or
//! already held: the authority dedups on gateway, kind and id). A failure to reach it, a
//! timeout, a 5xx, 408 or 429 is retried after the sync follower's jittered, growing pause
//! (0.5 s doubling up to `sync.backoff_max_s`); any other answer is a refusal that retrying
//! cannot change: the entry is logged, counted (`m2mguard_outbox_dropped_total{reason=
//! "refused"}`) and removed, so that it does not hold back the ones after it. Shutdown does
//! not wait for an answer: an entry in flight stays queued and is sent again next time.

use std::sync::Arc;
use std::time::Duration;

use http::StatusCode;
use tokio_util::sync::CancellationToken;

use super::{Entry, Outbox};
use crate::config::SyncConfig;
use crate::sync::client::{Client, ClientError};
use crate::sync::Pause;

/// Sends until `stop`.
pub async fn run(outbox: Arc<Outbox>, config: SyncConfig, stop: CancellationToken) {
    let client = Client::new(&config);
    let mut pause = Pause::new(config.backoff_max);
    loop {
        let next = match outbox.first() {
            Ok(next) => next,
            Err(e) => {
                tracing::error!(error = %e, "outbox: cannot read; retrying");
                if wait(&stop, pause.grow()).await {
                    return;
                }
                continue;
            }
        };
        let Some((position, entry)) = next else {
            tokio::select! {
                () = stop.cancelled() => return,
                () = outbox.pushed() => continue,
            }
        };
        let sent = tokio::select! {
            () = stop.cancelled() => return,
            sent = send(&client, &entry) => sent,
        };
        let retry = match sent {
            Ok(()) => {
                outbox.metrics().delivered.inc();
                false
            }
            Err(e) if retried(&e) => {
                outbox.metrics().retries.inc();
                tracing::warn!(kind = %entry.kind, id = %entry.id, error = %e, "outbox: not delivered; retrying");
                true
            }
            Err(e) => {
                outbox.metrics().dropped("refused");
                tracing::error!(kind = %entry.kind, id = %entry.id, error = %e, "outbox: the authority refused the entry; removed");
                false
            }
        };
        if retry {
            if wait(&stop, pause.grow()).await {
                return;
            }
            continue;
        }
        pause.reset();
        if let Err(e) = outbox.remove(position) {
            tracing::error!(error = %e, "outbox: cannot remove a delivered entry; it will be sent again");
            if wait(&stop, pause.grow()).await {
                return;
            }
        }
    }
}

async fn send(client: &Client, entry: &Entry) -> Result<(), ClientError> {
    let Some(kind) = entry.kind() else {
        return Err(ClientError::Status {
            what: "outbox entry",
            status: StatusCode::NOT_IMPLEMENTED,
            detail: format!("unknown kind {:?}", entry.kind),
        });
    };
    client
        .post(kind.name, kind.path, kind.content_type, entry.body.clone())
        .await
        .map(|_| ())
}

/// Whether trying again may succeed.
fn retried(e: &ClientError) -> bool {
    match e {
        ClientError::Status { status, .. } => {
            status.is_server_error() && *status != StatusCode::NOT_IMPLEMENTED
                || *status == StatusCode::REQUEST_TIMEOUT
                || *status == StatusCode::TOO_MANY_REQUESTS
        }
        _ => true,
    }
}

/// Sleeps `pause`; `true` if `stop` came first.
async fn wait(stop: &CancellationToken, pause: Duration) -> bool {
    tokio::select! {
        () = stop.cancelled() => true,
        () = tokio::time::sleep(pause) => false,
    }
}
