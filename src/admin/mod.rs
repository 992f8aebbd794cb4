//! The admin API, on loopback by default: health, readiness, metrics, node operations and
//! policy reload. It has no authentication of its own, which is why the config refuses a
//! non-loopback address unless told otherwise.
//!
//! `GET /healthz`, `GET /readyz`, `GET /metrics`, `GET /v1/nodes`, `GET /v1/nodes/{id}`,
//! `POST /v1/nodes/{id}/activate`, `POST /v1/nodes/{id}/deactivate`, `POST /v1/reload`.
//! Node ids in paths are percent-encoded.
//!
//! Every request must carry exactly one `Host` naming an IP address or `localhost` and an
//! origin-form target, and no `Origin` ([`routes`]): a DNS-rebinding and cross-site defence.
//! At most [`MAX_CONNECTIONS`] connections at once; each must send a request head within
//! [`HEADER_READ_TIMEOUT`] of being accepted or of its last answer. What the operations act on
//! is [`State`], which the gateway builds and hands in.

pub mod client;
mod routes;
mod state;

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::config::ConnectionLimits;
use crate::listen::lifetime::{self, Activity, End, Tracked};
use crate::listen::{self, Connection, Limiter};
pub use state::{policy_errors, State};

/// Time for each request head; a connection idle this long (no request in progress) is closed.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// Open admin connections at once; its clients are local tools, all from one source.
pub const MAX_CONNECTIONS: usize = 64;

/// How long open admin requests may take to finish once shutdown begins.
const DRAIN: Duration = Duration::from_secs(5);

/// Serves the admin API until `stop` is cancelled.
pub async fn serve(listener: TcpListener, state: Arc<State>, stop: CancellationToken) {
    let limits = ConnectionLimits {
        max_connections: MAX_CONNECTIONS,
        max_connections_per_source: MAX_CONNECTIONS,
    };
    let limiter = Limiter::new("admin", limits, state.metrics.connections("admin"));
    listen::serve(listener, limiter, stop, DRAIN, move |accepted, stop| {
        let activity = Activity::new(Instant::now());
        connection(state.clone(), accepted, activity, stop)
    })
    .await;
}

async fn connection(
    state: Arc<State>,
    accepted: Connection,
    activity: Arc<Activity>,
    stop: CancellationToken,
) {
    let tracker = activity.clone();
    let service = service_fn(move |req| {
        let state = state.clone();
        let in_flight = tracker.begin();
        async move {
            let response = routes::route(&state, req).await;
            Ok::<_, Infallible>(response.map(|body| Tracked::new(body, in_flight)))
        }
    });
    let conn = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .serve_connection(TokioIo::new(accepted.stream), service);
    if let Ok(End::Idle) = lifetime::drive(conn, &activity, HEADER_READ_TIMEOUT, stop).await {
        accepted.admission.timed_out();
    }
}
