//! What every TCP listener shares (HTTP, MQTT, admin): caps on open connections, applied as
//! connections are accepted ([`limiter`]), and a bounded life for HTTP connections
//! ([`lifetime`]).
//!
//! In: a bound `TcpListener` and its [`limiter::Limiter`]. Out: accepted streams, each with an
//! [`limiter::Admission`] that holds the connection's slot until it is dropped. Connections
//! over a cap are closed before any TLS or HTTP work, counted
//! (`m2mguard_connections_refused_total`) and logged at most [`REFUSAL_LOG_LINES_PER_SEC`]
//! times a second.

pub mod lifetime;
pub mod limiter;

use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};

pub use limiter::{Admission, Limiter, Refused};

/// Refusal log lines per second and listener; the rest are counted in the next line.
pub const REFUSAL_LOG_LINES_PER_SEC: u64 = 10;

/// Pause after a failed `accept` (e.g. out of file descriptors) before trying again.
const ACCEPT_RETRY: Duration = Duration::from_millis(50);

/// The next connection within `limiter`'s caps; connections over them are closed and counted
/// on the way. Cancel-safe: a connection is either returned or was never taken.
pub async fn accept(tcp: &TcpListener, limiter: &Limiter) -> (TcpStream, SocketAddr, Admission) {
    loop {
        match tcp.accept().await {
            Ok((stream, addr)) => match limiter.admit(addr) {
                Ok(admission) => return (stream, addr, admission),
                Err(_refused) => drop(stream),
            },
            Err(e) => {
                tracing::warn!(listener = limiter.name(), error = %e, "accept failed");
                tokio::time::sleep(ACCEPT_RETRY).await;
            }
        }
    }
}
