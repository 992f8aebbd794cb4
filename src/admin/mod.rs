//! The admin API, on loopback by default: health, readiness, metrics, node operations and
//! policy reload. It has no authentication of its own, which is why the config refuses a
//! non-loopback address unless told otherwise.
//!
//! `GET /healthz`, `GET /readyz`, `GET /metrics`, `GET /v1/nodes`, `GET /v1/nodes/{id}`,
//! `POST /v1/nodes/{id}/activate`, `POST /v1/nodes/{id}/deactivate`, `POST /v1/reload`.
//! Node ids in paths are percent-encoded.

pub mod client;
mod routes;

use std::convert::Infallible;
use std::sync::Arc;

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::gateway::State;

/// Serves the admin API until `stop` turns true.
pub async fn serve(listener: TcpListener, state: Arc<State>, mut stop: watch::Receiver<bool>) {
    loop {
        let (stream, _) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    tracing::warn!(error = %e, "admin accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = crate::gateway::stopped(&mut stop) => return,
        };
        let state = state.clone();
        let mut stop = stop.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req| {
                let state = state.clone();
                async move { Ok::<_, Infallible>(routes::route(&state, req).await) }
            });
            let conn = http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(std::time::Duration::from_secs(10))
                .serve_connection(TokioIo::new(stream), service);
            tokio::pin!(conn);
            tokio::select! {
                _ = conn.as_mut() => {}
                () = crate::gateway::stopped(&mut stop) => {
                    conn.as_mut().graceful_shutdown();
                    let _ = conn.await;
                }
            }
        });
    }
}
