//! Accepting connections: TCP, optional TLS (client certificates when configured), HTTP/1.1
//! and HTTP/2 on the same port, graceful shutdown that lets in-flight requests finish and then
//! closes what is left.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;

use super::HttpBinding;
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
    let graceful = GracefulShutdown::new();
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.tcp.accept() => match accepted {
                Ok((stream, addr)) => {
                    let _ = stream.set_nodelay(true);
                    let (listener, builder, binding) = (listener.clone(), builder.clone(), binding.clone());
                    let watcher = graceful.watcher();
                    connections.spawn(async move {
                        connection(&listener, &builder, stream, addr, binding, watcher).await;
                    });
                    while connections.try_join_next().is_some() {}
                }
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            () = crate::gateway::stopped(&mut shutdown) => break,
        }
    }
    if tokio::time::timeout(drain, graceful.shutdown())
        .await
        .is_err()
    {
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
    stream: TcpStream,
    addr: SocketAddr,
    binding: Arc<HttpBinding>,
    watcher: Watcher,
) {
    let Some(acceptor) = &listener.tls else {
        let peer = Peer {
            addr,
            protocol: Protocol::Http,
            tls_identity: None,
        };
        return serve_io(builder, TokioIo::new(stream), peer, binding, watcher).await;
    };
    let handshake = tokio::time::timeout(listener.header_read_timeout, acceptor.accept(stream));
    let stream = match handshake.await {
        Ok(Ok(stream)) => stream,
        Ok(Err(e)) => return tracing::info!(peer = %addr, error = %e, "TLS handshake failed"),
        Err(_) => return tracing::info!(peer = %addr, "TLS handshake timed out"),
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
    serve_io(builder, TokioIo::new(stream), peer, binding, watcher).await;
}

async fn serve_io<I>(
    builder: &auto::Builder<TokioExecutor>,
    io: I,
    peer: Peer,
    binding: Arc<HttpBinding>,
    watcher: Watcher,
) where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let addr = peer.addr;
    let service = service_fn(move |req| {
        let (binding, peer) = (binding.clone(), peer.clone());
        async move { Ok::<_, Infallible>(binding.handle(req, peer).await) }
    });
    let conn = builder.serve_connection(io, service);
    if let Err(e) = watcher.watch(conn.into_owned()).await {
        tracing::debug!(peer = %addr, error = %e, "connection ended with an error");
    }
}
