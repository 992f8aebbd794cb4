//! What every TCP listener shares (HTTP, MQTT, admin, and the authority service to come): one
//! accept loop ([`serve`]), caps on open connections applied as connections are accepted
//! ([`limiter`]), and a bounded life for HTTP connections ([`lifetime`]).
//!
//! In: a bound `TcpListener`, its [`limiter::Limiter`], the [`CancellationToken`] that ends it,
//! and a handler for one connection. Out: one task per accepted connection, each holding an
//! [`limiter::Admission`] that keeps the connection's slot until it is dropped. Connections
//! over a cap are closed before any TLS or HTTP work, counted
//! (`m2mguard_connections_refused_total`) and logged at most [`REFUSAL_LOG_LINES_PER_SEC`]
//! times a second. Shutdown is handed down as the token: once it is cancelled nothing more is
//! accepted, and connections (which get the same token) have a bounded time to finish.

pub mod lifetime;
pub mod limiter;

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

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

/// One accepted connection, within its listener's caps.
#[derive(Debug)]
pub struct Connection {
    pub stream: TcpStream,
    pub peer: SocketAddr,
    /// The connection's slot: held for as long as the handler keeps it.
    pub admission: Admission,
}

/// Accepts connections within `limiter`'s caps until `stop` is cancelled, running
/// `handler(connection, stop)` for each in its own task; then gives the open ones up to
/// `drain` to finish and aborts the rest. Returns when every connection task has ended.
///
/// The handler is called in the accept loop (do only cheap set-up there, such as noting the
/// time of accept) and its future spawned.
pub async fn serve<H, F>(
    tcp: TcpListener,
    limiter: Limiter,
    stop: CancellationToken,
    drain: Duration,
    mut handler: H,
) where
    H: FnMut(Connection, CancellationToken) -> F,
    F: Future<Output = ()> + Send + 'static,
{
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            () = stop.cancelled() => break,
            (stream, peer, admission) = accept(&tcp, &limiter) => {
                let _ = stream.set_nodelay(true);
                let connection = Connection { stream, peer, admission };
                connections.spawn(handler(connection, stop.clone()));
            }
            Some(ended) = connections.join_next(), if !connections.is_empty() => {
                report(limiter.name(), ended);
            }
        }
    }
    drop(tcp);
    let drained = tokio::time::timeout(drain, async {
        while let Some(ended) = connections.join_next().await {
            report(limiter.name(), ended);
        }
    });
    if drained.await.is_err() {
        tracing::warn!(
            listener = limiter.name(),
            open = connections.len(),
            "connections still open after {drain:?}; closing them"
        );
    }
    connections.shutdown().await;
}

/// A connection task that panicked is a bug worth a line; the others ended as they should.
fn report(listener: &'static str, ended: Result<(), tokio::task::JoinError>) {
    if let Err(e) = ended {
        if e.is_panic() {
            tracing::error!(listener, "connection task panicked");
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    use tokio::io::AsyncReadExt;
    use tokio::sync::mpsc;

    use super::*;
    use crate::config::ConnectionLimits;
    use crate::metrics::ConnectionCounters;

    /// A bound listener on a free port, with caps, and counters to look at.
    async fn listener(max: usize) -> (TcpListener, SocketAddr, Limiter, ConnectionCounters) {
        let tcp = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = tcp.local_addr().unwrap();
        let counters = ConnectionCounters::default();
        let limits = ConnectionLimits {
            max_connections: max,
            max_connections_per_source: max,
        };
        (
            tcp,
            addr,
            Limiter::new("test", limits, counters.clone()),
            counters,
        )
    }

    /// Counts drops: a handler's future dropped by an abort drops it too.
    struct Dropped(Arc<AtomicUsize>);

    impl Drop for Dropped {
        fn drop(&mut self) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[tokio::test]
    async fn a_connection_that_outlives_the_drain_is_aborted_and_its_slot_returned() {
        let (tcp, addr, limiter, counters) = listener(4).await;
        let stop = CancellationToken::new();
        let (started, mut on_start) = mpsc::unbounded_channel();
        let aborted = Arc::new(AtomicUsize::new(0));
        let drops = aborted.clone();
        let drain = Duration::from_millis(100);
        let server = tokio::spawn(serve(tcp, limiter, stop.clone(), drain, move |c, _| {
            let (started, dropped) = (started.clone(), Dropped(drops.clone()));
            async move {
                let _held = (c, dropped);
                let _ = started.send(());
                std::future::pending::<()>().await;
            }
        }));
        let _client = TcpStream::connect(addr).await.unwrap();
        on_start.recv().await.unwrap();
        assert_eq!(counters.open.get(), 1);
        stop.cancel();
        let ended = tokio::time::timeout(drain * 20, server).await;
        assert!(ended.is_ok(), "serve returned within its drain bound");
        assert_eq!(
            aborted.load(Ordering::SeqCst),
            1,
            "the stuck handler was aborted"
        );
        assert_eq!(counters.open.get(), 0, "its admission was given back");
        assert!(
            TcpStream::connect(addr).await.is_err(),
            "nothing listens any more"
        );
    }

    #[tokio::test]
    async fn a_connection_that_ends_on_cancel_is_waited_for() {
        let (tcp, addr, limiter, _) = listener(4).await;
        let stop = CancellationToken::new();
        let (started, mut on_start) = mpsc::unbounded_channel();
        let finished = Arc::new(AtomicUsize::new(0));
        let done = finished.clone();
        let drain = Duration::from_secs(60);
        let server = tokio::spawn(serve(tcp, limiter, stop.clone(), drain, move |c, stop| {
            let (started, done) = (started.clone(), done.clone());
            async move {
                let _ = started.send(());
                stop.cancelled().await;
                tokio::task::yield_now().await;
                drop(c);
                done.fetch_add(1, Ordering::SeqCst);
            }
        }));
        let _client = TcpStream::connect(addr).await.unwrap();
        on_start.recv().await.unwrap();
        stop.cancel();
        tokio::time::timeout(Duration::from_secs(5), server)
            .await
            .expect("serve returned long before the drain bound")
            .unwrap();
        assert_eq!(finished.load(Ordering::SeqCst), 1, "the handler finished");
    }

    #[tokio::test]
    async fn a_connection_over_the_cap_is_closed_without_reaching_the_handler() {
        let (tcp, addr, limiter, counters) = listener(1).await;
        let stop = CancellationToken::new();
        let calls = Arc::new(AtomicUsize::new(0));
        let count = calls.clone();
        let server = tokio::spawn(serve(
            tcp,
            limiter,
            stop.clone(),
            Duration::from_millis(100),
            move |c, stop| {
                count.fetch_add(1, Ordering::SeqCst);
                async move {
                    stop.cancelled().await;
                    drop(c);
                }
            },
        ));
        let _first = TcpStream::connect(addr).await.unwrap();
        let mut second = TcpStream::connect(addr).await.unwrap();
        let mut byte = [0u8; 1];
        let read = tokio::time::timeout(Duration::from_secs(5), second.read(&mut byte)).await;
        assert!(
            matches!(read, Ok(Ok(0)) | Ok(Err(_))),
            "the second connection is closed"
        );
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        assert_eq!(counters.open.get(), 1);
        stop.cancel();
        server.await.unwrap();
    }
}
