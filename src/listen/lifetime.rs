//! A bounded life for one HTTP connection (HTTP/1.1 or HTTP/2, served by hyper).
//!
//! hyper bounds the time a request head takes once its first byte arrives; nothing bounds a
//! connection that sends no byte, a partial HTTP/2 preface, or nothing after its last answer.
//! Here the connection is *idle* while no request is in progress (from the moment its head is
//! complete until its answer has been sent), and a connection idle for `idle` — counted from
//! when it was accepted, so a TLS handshake counts against its first request — is shut down
//! gracefully (HTTP/2: GOAWAY) and dropped if it does not end within `idle` more.

use std::fmt;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use hyper::body::{Body, Frame, SizeHint};
use hyper_util::server::graceful::GracefulConnection;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// Requests in progress on one connection, and since when it has been idle.
#[derive(Debug)]
pub struct Activity(Mutex<State>);

#[derive(Debug)]
struct State {
    in_flight: usize,
    idle_since: Instant,
}

impl Activity {
    /// A connection accepted at `accepted`, idle since then.
    pub fn new(accepted: Instant) -> Arc<Activity> {
        Arc::new(Activity(Mutex::new(State {
            in_flight: 0,
            idle_since: accepted,
        })))
    }

    /// A request head is complete: the connection is busy until the returned guard (carried
    /// by the answer's body, see [`Tracked`]) is dropped.
    pub fn begin(self: &Arc<Self>) -> InFlight {
        self.state().in_flight += 1;
        InFlight(self.clone())
    }

    /// When the connection may be closed as idle: `None` while a request is in progress.
    fn idle_deadline(&self, idle: Duration) -> Option<Instant> {
        let state = self.state();
        (state.in_flight == 0).then(|| state.idle_since + idle)
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// One request in progress; dropping it marks the end of the request.
#[derive(Debug)]
pub struct InFlight(Arc<Activity>);

impl Drop for InFlight {
    fn drop(&mut self) {
        let mut state = self.0.state();
        state.in_flight = state.in_flight.saturating_sub(1);
        state.idle_since = Instant::now();
    }
}

/// An answer's body that keeps its request in progress until hyper has sent it and drops it.
#[derive(Debug)]
pub struct Tracked<B> {
    body: B,
    _in_flight: InFlight,
}

impl<B> Tracked<B> {
    pub fn new(body: B, in_flight: InFlight) -> Self {
        Tracked {
            body,
            _in_flight: in_flight,
        }
    }
}

impl<B: Body + Unpin> Body for Tracked<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.get_mut().body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

/// How a connection ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    /// The client closed it, or hyper did (an error, `Connection: close`, its own timeouts).
    Closed,
    /// Idle for too long: no request head in time after it was accepted or after its last answer.
    Idle,
    /// The gateway is shutting down.
    Shutdown,
}

impl fmt::Display for End {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            End::Closed => "closed",
            End::Idle => "idle for too long (no request head in time)",
            End::Shutdown => "gateway shutting down",
        })
    }
}

/// Drives `conn` until it ends: closed by either side, idle for `idle` (see the module doc),
/// or `stop` cancelled (then it is shut down gracefully and awaited; the caller bounds that).
pub async fn drive<C>(
    conn: C,
    activity: &Activity,
    idle: Duration,
    stop: CancellationToken,
) -> Result<End, C::Error>
where
    C: GracefulConnection,
{
    tokio::pin!(conn);
    let stopped = stop.cancelled();
    tokio::pin!(stopped);
    let deadline = tokio::time::sleep(idle);
    tokio::pin!(deadline);
    deadline.as_mut().reset(
        activity
            .idle_deadline(idle)
            .unwrap_or(Instant::now() + idle),
    );
    let end = loop {
        tokio::select! {
            result = conn.as_mut() => return result.map(|()| End::Closed),
            () = &mut stopped => break End::Shutdown,
            () = &mut deadline => match activity.idle_deadline(idle) {
                Some(at) if at <= Instant::now() => break End::Idle,
                Some(at) => deadline.as_mut().reset(at),
                None => deadline.as_mut().reset(Instant::now() + idle),
            },
        }
    };
    conn.as_mut().graceful_shutdown();
    match end {
        End::Idle => {
            // Whatever the goodbye gives (an idle auto connection ends with "cancelled"), the
            // connection ended for being idle.
            let _ = tokio::time::timeout(idle, conn.as_mut()).await;
            Ok(End::Idle)
        }
        _ => conn.await.map(|()| end),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_connection_is_idle_from_accept_and_again_after_each_answer() {
        let idle = Duration::from_millis(300);
        let accepted = Instant::now();
        let activity = Activity::new(accepted);
        assert_eq!(activity.idle_deadline(idle), Some(accepted + idle));
        let first = activity.begin();
        let second = activity.begin();
        assert_eq!(activity.idle_deadline(idle), None, "busy");
        drop(first);
        assert_eq!(activity.idle_deadline(idle), None, "one still in progress");
        let before = Instant::now();
        drop(second);
        let deadline = activity.idle_deadline(idle).unwrap();
        assert!(deadline >= before + idle, "counted from the last answer");
    }
}
