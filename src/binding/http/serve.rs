//! Accepting connections: TCP within the listener's caps, optional TLS (client certificates
//! when configured), HTTP/1.1 and HTTP/2 on the same port, graceful shutdown that lets
//! in-flight requests finish and then closes what is left.
//!
//! Every connection must complete its TLS handshake and its first request head within
//! `header_read_timeout` of being accepted, and the next request head within it again after
//! each answer (HTTP/2: while no stream is open); otherwise it is closed ([`lifetime`]).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_rustls::TlsAcceptor;

use super::HttpBinding;
use crate::listen::lifetime::{self, Activity, End, Tracked};
use crate::listen::{self, Admission, Limiter};
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

/// One accepted connection, with what it needs to be served.
struct Accepted {
    stream: TcpStream,
    addr: SocketAddr,
    admission: Admission,
    activity: Arc<Activity>,
}

/// Serves until `shutdown` turns true, then waits up to `drain` for open connections and
/// closes the rest.
pub async fn serve(
    listener: Listener,
    binding: Arc<HttpBinding>,
    mut shutdown: watch::Receiver<bool>,
    drain: Duration,
) {
    let listener = Arc::new(listener);
    let builder = Arc::new(builder(&listener));
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            (stream, addr, admission) = listen::accept(&listener.tcp, &listener.limiter) => {
                let _ = stream.set_nodelay(true);
                let accepted = Accepted { stream, addr, admission, activity: Activity::new(Instant::now()) };
                let (listener, builder, binding) = (listener.clone(), builder.clone(), binding.clone());
                let stop = shutdown.clone();
                connections.spawn(async move {
                    connection(&listener, &builder, accepted, binding, stop).await;
                });
                while connections.try_join_next().is_some() {}
            },
            () = crate::gateway::stopped(&mut shutdown) => break,
        }
    }
    let drained = tokio::time::timeout(drain, async {
        while connections.join_next().await.is_some() {}
    });
    if drained.await.is_err() {
        tracing::warn!("connections still open after {drain:?}; closing them");
    }
    connections.shutdown().await;
}

fn builder(listener: &Listener) -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(listener.header_read_timeout)
        .max_buf_size((listener.max_header_bytes * 2).max(8192));
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(MAX_STREAMS)
        .keep_alive_interval(listener.header_read_timeout)
        .keep_alive_timeout(listener.header_read_timeout)
        .max_header_list_size(u32::try_from(listener.max_header_bytes * 2).unwrap_or(u32::MAX));
    builder
}

async fn connection(
    listener: &Listener,
    builder: &auto::Builder<TokioExecutor>,
    accepted: Accepted,
    binding: Arc<HttpBinding>,
    stop: watch::Receiver<bool>,
) {
    let Accepted {
        stream,
        addr,
        admission,
        activity,
    } = accepted;
    let Some(acceptor) = &listener.tls else {
        let peer = Peer {
            addr,
            protocol: Protocol::Http,
            tls_identity: None,
        };
        let io = TokioIo::new(stream);
        return serve_io(
            listener,
            builder,
            io,
            peer,
            binding,
            (admission, activity),
            stop,
        )
        .await;
    };
    let deadline = Instant::now() + listener.header_read_timeout;
    let stream = match tokio::time::timeout_at(deadline, acceptor.accept(stream)).await {
        Ok(Ok(stream)) => stream,
        Ok(Err(e)) => return tracing::info!(peer = %addr, error = %e, "TLS handshake failed"),
        Err(_) => {
            admission.timed_out();
            return tracing::info!(peer = %addr, "TLS handshake timed out");
        }
    };
    let tls_identity = tls::peer_identity(stream.get_ref().1);
    if listener.require_identity && tls_identity.is_none() {
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
    serve_io(
        listener,
        builder,
        io,
        peer,
        binding,
        (admission, activity),
        stop,
    )
    .await;
}

async fn serve_io<I>(
    listener: &Listener,
    builder: &auto::Builder<TokioExecutor>,
    io: I,
    peer: Peer,
    binding: Arc<HttpBinding>,
    (admission, activity): (Admission, Arc<Activity>),
    stop: watch::Receiver<bool>,
) where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let addr = peer.addr;
    let tracker = activity.clone();
    let service = service_fn(move |req| {
        let (binding, peer) = (binding.clone(), peer.clone());
        let in_flight = tracker.begin();
        async move {
            let response = binding.handle(req, peer).await;
            Ok::<_, Infallible>(response.map(|body| Tracked::new(body, in_flight)))
        }
    });
    let conn = builder.serve_connection(io, service);
    match lifetime::drive(conn, &activity, listener.header_read_timeout, stop).await {
        Ok(End::Idle) => {
            admission.timed_out();
            tracing::debug!(peer = %addr, "connection closed: {}", End::Idle);
        }
        Ok(_) => {}
        Err(e) => tracing::debug!(peer = %addr, error = %e, "connection ended with an error"),
    }
}
