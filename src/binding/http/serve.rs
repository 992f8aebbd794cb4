//! Accepting connections: TCP within the listener's caps, optional TLS (client certificates
//! when configured), HTTP/1.1 and HTTP/2 on the same port, graceful shutdown that lets
//! in-flight requests finish and then closes what is left.
//!
//! Every connection must complete its TLS handshake and its first request head within
//! `header_read_timeout` of being accepted, and the next request head within it again after
//! each answer (HTTP/2: while no stream is open); otherwise it is closed ([`lifetime`]).

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;
use tokio::time::Instant;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;

use super::HttpBinding;
use crate::listen::lifetime::{self, Activity, End, Tracked};
use crate::listen::{self, Admission, Connection, Limiter};
use crate::primitive::{Peer, Protocol};
use crate::tls;

/// Concurrent HTTP/2 streams per connection.
const MAX_STREAMS: u32 = 256;

/// A bound listener, ready to serve.
pub struct Listener {
    pub tcp: TcpListener,
    pub tls: Option<TlsAcceptor>,
    /// Client certificates are required: a connection whose certificate names no usable
    /// identity (exactly one subject CN) is closed, never served anonymously.
    pub require_identity: bool,
    /// Limits on the request head and the TLS handshake.
    pub max_header_bytes: usize,
    pub header_read_timeout: Duration,
    /// Caps on open connections.
    pub limiter: Limiter,
}

/// What every connection of one listener shares.
struct Shared {
    tls: Option<TlsAcceptor>,
    require_identity: bool,
    header_read_timeout: Duration,
    builder: auto::Builder<TokioExecutor>,
    binding: Arc<HttpBinding>,
}

/// Serves until `stop` is cancelled, then waits up to `drain` for open connections and
/// closes the rest.
pub async fn serve(
    listener: Listener,
    binding: Arc<HttpBinding>,
    stop: CancellationToken,
    drain: Duration,
) {
    let Listener {
        tcp,
        tls,
        require_identity,
        max_header_bytes,
        header_read_timeout,
        limiter,
    } = listener;
    let shared = Arc::new(Shared {
        tls,
        require_identity,
        header_read_timeout,
        builder: builder(max_header_bytes, header_read_timeout),
        binding,
    });
    listen::serve(tcp, limiter, stop, drain, move |accepted, stop| {
        let shared = shared.clone();
        // Counted from the accept: the TLS handshake counts against the first request.
        let activity = Activity::new(Instant::now());
        async move { connection(&shared, accepted, activity, stop).await }
    })
    .await;
}

fn builder(max_header_bytes: usize, header_read_timeout: Duration) -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(header_read_timeout)
        .max_buf_size((max_header_bytes * 2).max(8192));
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(MAX_STREAMS)
        .keep_alive_interval(header_read_timeout)
        .keep_alive_timeout(header_read_timeout)
        .max_header_list_size(u32::try_from(max_header_bytes * 2).unwrap_or(u32::MAX));
    builder
}

async fn connection(
    shared: &Shared,
    accepted: Connection,
    activity: Arc<Activity>,
    stop: CancellationToken,
) {
    let Connection {
        stream,
        peer: addr,
        admission,
    } = accepted;
    let Some(acceptor) = &shared.tls else {
        let peer = Peer {
            addr,
            protocol: Protocol::Http,
            tls_identity: None,
        };
        let io = TokioIo::new(stream);
        return serve_io(shared, io, peer, (admission, activity), stop).await;
    };
    let deadline = Instant::now() + shared.header_read_timeout;
    let stream = match tokio::time::timeout_at(deadline, acceptor.accept(stream)).await {
        Ok(Ok(stream)) => stream,
        Ok(Err(e)) => return tracing::info!(peer = %addr, error = %e, "TLS handshake failed"),
        Err(_) => {
            admission.timed_out();
            return tracing::info!(peer = %addr, "TLS handshake timed out");
        }
    };
    let tls_identity = tls::peer_identity(stream.get_ref().1);
    if shared.require_identity && tls_identity.is_none() {
        return tracing::info!(
            peer = %addr,
            "client certificate names no usable identity (exactly one subject CN); connection closed"
        );
    }
    let peer = Peer {
        addr,
        protocol: Protocol::Https,
        tls_identity,
    };
    let io = TokioIo::new(stream);
    serve_io(shared, io, peer, (admission, activity), stop).await;
}

async fn serve_io<I>(
    shared: &Shared,
    io: I,
    peer: Peer,
    (admission, activity): (Admission, Arc<Activity>),
    stop: CancellationToken,
) where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let addr = peer.addr;
    let tracker = activity.clone();
    let binding = shared.binding.clone();
    let service = service_fn(move |req| {
        let (binding, peer) = (binding.clone(), peer.clone());
        let in_flight = tracker.begin();
        async move {
            let response = binding.handle(req, peer).await;
            Ok::<_, Infallible>(response.map(|body| Tracked::new(body, in_flight)))
        }
    });
    let conn = shared.builder.serve_connection(io, service);
    match lifetime::drive(conn, &activity, shared.header_read_timeout, stop).await {
        Ok(End::Idle) => {
            admission.timed_out();
            tracing::debug!(peer = %addr, "connection closed: {}", End::Idle);
        }
        Ok(_) => {}
        Err(e) => tracing::debug!(peer = %addr, error = %e, "connection ended with an error"),
    }
}
