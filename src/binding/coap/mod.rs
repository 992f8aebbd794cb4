//! The CoAP binding (TS-0008): a relay on two UDP sockets, one facing clients and one facing
//! the upstream CoAP server. Every request is decoded to a [`crate::primitive::Primitive`] and
//! decided by the shared [`Decider`]; only a [`crate::guard::Permit`] lets it go upstream.
//!
//! In order, for a datagram from a client: rate limit per source (drop) → size (drop) → parse
//! (RST if confirmable, else drop) → deduplication (a retransmission gets the same answer and
//! is never forwarded twice) → address validation by Echo (4.01 + Echo) → decode (4.00 / 4000)
//! → decide (4.03 / 4103) → forward with our own message id and token. Answers from the
//! upstream (piggy-backed, separate, notifications) are mapped back to the client's id and
//! token; an upstream that stays silent past `upstream_timeout_ms` gets the client 4.04 / 5103.
//! Nothing from the network can panic the relay: every datagram is handled on its own.

mod decode;
mod downstream;
mod ended;
mod exchange;
mod limit;
mod reply;
mod table;
mod timeout;
mod upstream;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::UdpSocket;
use tokio_util::sync::CancellationToken;

use crate::config::CoapConfig;
use crate::decision::Decider;
use crate::primitive::Protocol;
pub use decode::{decode, DecodeError, Numbers};
use exchange::Tables;
use limit::{Echo, RateLimit};
pub use reply::answer_to;
use timeout::Deadlines;

/// RFC 7252 §4.8: ACK_TIMEOUT and MAX_RETRANSMIT, for our confirmable messages to clients
/// (and ACK_TIMEOUT as the least gap before a client's retransmission is sent on upstream).
const ACK_TIMEOUT: Duration = Duration::from_secs(2);
const MAX_RETRANSMIT: u32 = 4;
/// Largest datagram read from the upstream.
const MAX_UPSTREAM_DATAGRAM: usize = 65_535;

#[derive(Debug, thiserror::Error)]
pub enum CoapError {
    #[error("cannot bind the upstream socket: {0}")]
    Upstream(std::io::Error),
    #[error("no system randomness for the Echo key")]
    Randomness,
}

pub struct Relay {
    decider: Arc<Decider>,
    numbers: Numbers,
    /// Pass verified token queries upstream (`[coap] forward_tokens`); else they are consumed.
    forward_tokens: bool,
    max_datagram_bytes: usize,
    amplification_factor: usize,
    clients: Arc<UdpSocket>,
    upstream: UdpSocket,
    tables: Tables,
    rate: RateLimit,
    echo: Echo,
    deadlines: Deadlines,
    stop: CancellationToken,
}

impl Relay {
    /// A relay answering on `clients` (already bound) and forwarding to `config.upstream`.
    pub async fn new(
        config: &CoapConfig,
        decider: Arc<Decider>,
        clients: Arc<UdpSocket>,
        stop: CancellationToken,
    ) -> Result<Arc<Relay>, CoapError> {
        // A loopback upstream is reached from loopback only; otherwise the system picks.
        let local = match (
            config.upstream.ip().is_loopback(),
            config.upstream.is_ipv4(),
        ) {
            (true, true) => SocketAddr::from(([127, 0, 0, 1], 0)),
            (true, false) => SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, 0)),
            (false, true) => SocketAddr::from(([0, 0, 0, 0], 0)),
            (false, false) => SocketAddr::from((std::net::Ipv6Addr::UNSPECIFIED, 0)),
        };
        let upstream = UdpSocket::bind(local).await.map_err(CoapError::Upstream)?;
        // Connected: datagrams from anyone but the upstream never reach this socket.
        upstream
            .connect(config.upstream)
            .await
            .map_err(CoapError::Upstream)?;
        Ok(Arc::new(Relay {
            decider,
            numbers: Numbers::new(config.legacy_options),
            forward_tokens: config.forward_tokens,
            max_datagram_bytes: config.max_datagram_bytes,
            amplification_factor: config.amplification_factor,
            clients,
            upstream,
            tables: Tables::new(config),
            rate: RateLimit::new(config),
            echo: Echo::new(config).map_err(|_| CoapError::Randomness)?,
            deadlines: Deadlines::new(config.upstream_timeout, config.max_exchanges),
            stop,
        }))
    }

    fn dropped(&self, reason: &'static str) {
        self.decider.metrics().dropped(Protocol::Coap, reason);
    }

    async fn to_client(&self, bytes: &[u8], client: SocketAddr) {
        if let Err(e) = self.clients.send_to(bytes, client).await {
            tracing::debug!(proto = "coap", peer = %client, error = %e, "send to client failed");
        }
    }

    async fn to_upstream(&self, bytes: &[u8]) {
        if let Err(e) = self.upstream.send(bytes).await {
            tracing::debug!(proto = "coap", error = %e, "send upstream failed");
        }
    }
}

/// Runs the relay until `stop` is cancelled: one task per socket, one for upstream timeouts.
pub async fn serve(relay: Arc<Relay>, stop: CancellationToken) {
    // Two readers share each socket, so that a slow datagram (a Cedar evaluation) does not
    // hold up the next one and both cores can work.
    let tasks = [
        tokio::spawn(client_loop(relay.clone())),
        tokio::spawn(client_loop(relay.clone())),
        tokio::spawn(upstream_loop(relay.clone())),
        tokio::spawn(upstream_loop(relay.clone())),
        tokio::spawn(ended::end_on_status_change(relay.clone())),
        tokio::spawn(timeout_loop(relay)),
    ];
    stop.cancelled().await;
    for task in &tasks {
        task.abort();
    }
    for task in tasks {
        let _ = task.await;
    }
}

async fn timeout_loop(relay: Arc<Relay>) {
    let mut tick = tokio::time::interval(timeout::TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        relay.expire(std::time::Instant::now()).await;
    }
}

async fn client_loop(relay: Arc<Relay>) {
    // One byte more than allowed, so that an oversized datagram is seen as such.
    let mut buf = vec![0u8; relay.max_datagram_bytes + 1];
    loop {
        match relay.clients.recv_from(&mut buf).await {
            Ok((n, source)) => relay.client_datagram(&buf[..n], source).await,
            Err(e) => {
                // ICMP errors for earlier sends surface here on some systems; keep serving.
                tracing::debug!(proto = "coap", error = %e, "receive from clients failed");
            }
        }
    }
}

async fn upstream_loop(relay: Arc<Relay>) {
    let mut buf = vec![0u8; MAX_UPSTREAM_DATAGRAM];
    loop {
        match relay.upstream.recv(&mut buf).await {
            Ok(n) => relay.upstream_datagram(&buf[..n]).await,
            Err(e) => {
                tracing::debug!(proto = "coap", error = %e, "receive from upstream failed");
                // A refused port (upstream down) is reported on every read: do not spin.
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }
}
