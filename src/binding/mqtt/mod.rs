//! The MQTT binding (TS-0010): an MQTT-aware proxy in front of a real broker. Each client gets
//! its own broker connection; every packet is decoded and re-encoded (rumqttc `mqttbytes::v4`,
//! MQTT 3.1.1), and only what the guard allowed reaches the broker.
//!
//! In: client connections (plain or TLS; with client certificates the CN is the identity).
//! Out: relayed sessions ([`session`]). CONNECT binds the originator ([`connect`]) and is
//! admitted by identity and node status; oneM2M requests on `/oneM2M/req/…` and registrations
//! on `/oneM2M/reg_req/…` are decoded
//! ([`decode`]) and decided like any binding's, refusals answered on the response topic
//! ([`reply`]); other publishes and subscriptions are decided on their topic ([`topic`]).
//! Sessions of a node that stops being active are closed at once.

mod admission;
mod connect;
mod decode;
mod forward;
mod registrant;
mod reply;
mod session;
mod topic;
mod wire;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;

use crate::config::MqttConfig;
use crate::decision::Decider;
use crate::listen::{self, Connection, Limiter};
use crate::primitive::{Peer, Protocol};
use crate::store::Nodes;
pub use session::End;

pub struct MqttBinding {
    decider: Arc<Decider>,
    nodes: Arc<Nodes>,
    cse_id: String,
    config: MqttConfig,
}

impl MqttBinding {
    pub fn new(
        config: &MqttConfig,
        cse_id: &str,
        decider: Arc<Decider>,
        nodes: Arc<Nodes>,
    ) -> Self {
        MqttBinding {
            decider,
            nodes,
            cse_id: cse_id.to_owned(),
            config: config.clone(),
        }
    }
}

/// The bound MQTT listener.
pub struct Listener {
    pub tcp: TcpListener,
    pub tls: Option<TlsAcceptor>,
    /// Clients must present a certificate naming their identity.
    pub require_identity: bool,
    /// Caps on open connections.
    pub limiter: Limiter,
}

/// How long sessions may take to close after shutdown begins.
const CLOSE: Duration = Duration::from_secs(5);

/// Accepts clients until `stop` is cancelled; then every session ends, and they are waited
/// for (at most [`CLOSE`]).
pub async fn serve(listener: Listener, binding: Arc<MqttBinding>, stop: CancellationToken) {
    let Listener {
        tcp,
        tls,
        require_identity,
        limiter,
    } = listener;
    listen::serve(tcp, limiter, stop, CLOSE, move |accepted, stop| {
        let (binding, tls) = (binding.clone(), tls.clone());
        async move {
            let Connection {
                stream,
                peer,
                admission,
            } = accepted;
            connection(&binding, stream, peer, tls, require_identity, stop).await;
            drop(admission);
        }
    })
    .await;
}

async fn connection(
    b: &MqttBinding,
    tcp: TcpStream,
    addr: SocketAddr,
    tls: Option<TlsAcceptor>,
    require_identity: bool,
    stop: CancellationToken,
) {
    let mut peer = Peer {
        addr,
        protocol: Protocol::Mqtt,
        tls_identity: None,
    };
    let end = match tls {
        None => session::run(b, tcp, peer, stop).await,
        Some(acceptor) => {
            match tokio::time::timeout(b.config.connect_timeout, acceptor.accept(tcp)).await {
                Ok(Ok(stream)) => {
                    peer.tls_identity = crate::tls::peer_identity(stream.get_ref().1);
                    if require_identity && peer.tls_identity.is_none() {
                        tracing::info!(proto = "mqtt", peer = %addr, "client certificate names no identity (one subject CN)");
                        return;
                    }
                    session::run(b, stream, peer, stop).await
                }
                Ok(Err(e)) => {
                    tracing::debug!(proto = "mqtt", peer = %addr, error = %e, "TLS handshake failed");
                    return;
                }
                Err(_) => return,
            }
        }
    };
    match &end {
        End::Disconnected | End::Shutdown => {
            tracing::debug!(proto = "mqtt", peer = %addr, "session ended: {end}")
        }
        _ => tracing::info!(proto = "mqtt", peer = %addr, "session ended: {end}"),
    }
}
