//! The decision record: one typed [`Record`] for every outcome of every request on every
//! binding, made by one call ([`Recorder::record`]) and handed to every [`Sink`].
//!
//! Outcomes ([`Outcome`]): allowed (and how the forward ended), denied by a guard stage
//! (including `target`), refused by the binding itself ([`Refusal`]: malformed, oversize,
//! rate-limited, retained, wrong receiver), or failed upstream ([`UpstreamFailure`]). A request
//! the guard allowed is recorded once its forward has ended (the [`Pending`] record travels
//! with the permitted request), so that an allowed request whose upstream is down is one
//! record, not two. What the sender is told is built from the same outcome, in one place
//! ([`Answer`]). An allowed request that would have been denied (observe mode, `@observe`
//! policies) carries that denial in [`Record::would_deny`]; the sinks count and log it as such.
//!
//! Sinks: the metrics and the log are sinks of every record, called on the request path; a
//! consumer that must see every record (the demo, the audit log) attaches a bounded [`Queue`]
//! and reads it at its own pace. What a full queue does is the queue's [`Overflow`]: see
//! [`queue`].

mod answer;
mod event;
mod log;
mod metrics;
pub mod queue;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use arc_swap::ArcSwap;
use bytes::Bytes;

use crate::guard::Denial;
use crate::primitive::{Peer, Primitive, Protocol};
pub use answer::Answer;
pub use event::{By, Event, Happened};
pub use log::LogSink;
pub use queue::{Overflow, Queue, Records};

/// Something every record is handed to, on the request path: it must not block for long (a
/// slow consumer sits behind a [`Queue`]).
pub trait Sink: Send + Sync {
    fn record(&self, record: &Record);

    /// The record, given to the last sink: one that keeps records (a queue) takes it
    /// without a copy.
    fn take(&self, record: Record) {
        self.record(&record);
    }

    /// An administrative event; most sinks ignore them.
    fn event(&self, _event: &Happened) {}
}

/// A vector behind a lock keeps every record it is handed, in order, for whoever looks at them
/// afterwards (tests, tools); it grows without bound, so a gateway in service attaches a
/// [`Queue`] instead.
impl Sink for Mutex<Vec<Record>> {
    fn record(&self, record: &Record) {
        let mut records = self
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        records.push(record.clone());
    }
}

/// Who asked for what, on which binding: as far as the binding could read it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct About {
    pub protocol: Protocol,
    /// The transport's source address.
    pub peer: SocketAddr,
    /// The identity the transport authenticated (TLS client certificate), if any.
    pub identity: Option<String>,
    /// The originator as claimed (`fr`) or bound (an MQTT session's); empty where unread.
    pub fr: String,
    /// The operation (`create` … `notify`, `connect`, `publish`, `subscribe`), or `unknown`.
    pub op: &'static str,
    /// The target (or topic), as far as it could be read.
    pub to: String,
    pub rqi: String,
    /// The resource type (`ty`) of a create.
    pub ty: Option<u16>,
    /// The content as it arrived (shared, not copied): the audit log records its digest,
    /// never the content itself.
    pub content: Bytes,
}

impl About {
    /// A request from `peer` of which nothing has been read yet.
    pub fn peer(peer: &Peer) -> About {
        About {
            identity: peer.tls_identity.clone(),
            ..About::source(peer.protocol, peer.addr)
        }
    }

    /// A datagram from `addr` on `protocol`, before anything of it was read.
    pub fn source(protocol: Protocol, addr: SocketAddr) -> About {
        About {
            protocol,
            peer: addr,
            identity: None,
            fr: String::new(),
            op: "unknown",
            to: String::new(),
            rqi: String::new(),
            ty: None,
            content: Bytes::new(),
        }
    }

    pub fn of(p: &Primitive) -> About {
        About {
            fr: p.fr.clone(),
            op: p.op.as_str(),
            to: p.to.clone(),
            rqi: p.rqi.clone(),
            ty: p.ty,
            content: p.content.clone(),
            ..About::peer(&p.peer)
        }
    }

    pub fn fr(mut self, fr: &str) -> About {
        fr.clone_into(&mut self.fr);
        self
    }

    pub fn op(mut self, op: &'static str) -> About {
        self.op = op;
        self
    }

    pub fn to(mut self, to: &str) -> About {
        to.clone_into(&mut self.to);
        self
    }

    pub fn rqi(mut self, rqi: &str) -> About {
        rqi.clone_into(&mut self.rqi);
        self
    }
}

/// One outcome of one request.
#[derive(Clone, Debug, PartialEq)]
pub struct Record {
    /// When it was decided (or refused).
    pub at: SystemTime,
    pub about: About,
    pub outcome: Outcome,
    /// How long the guard took, where it ran.
    pub decided_in: Option<Duration>,
    /// For an allowed request (`Allowed`, `Failed`): the denial it escaped, because the
    /// gateway is in observe mode or because the policies that would deny it are `@observe`.
    pub would_deny: Option<Denial>,
    /// What the gateway added to an allowed request on its way out (by id, never by value).
    pub added: Vec<Added>,
    /// Records left out just before this one by the queue it came through (0 outside queues;
    /// see [`Overflow`]).
    pub lost: u64,
}

/// Something the gateway added to a forwarded request, named without its value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Added {
    /// A check value (`aus`) computed with this key, for this sequence number.
    CheckValue { kid: String, seq: u64 },
}

#[derive(Clone, Debug, PartialEq)]
pub enum Outcome {
    /// The guard allowed it (these policies permitted), and this became of the forward.
    Allowed {
        policies: Vec<String>,
        forward: Forward,
    },
    /// A guard stage denied it.
    Denied(Denial),
    /// The binding refused it before (or without) the guard.
    Refused(Refusal),
    /// The guard allowed it (these policies permitted), the upstream failed.
    Failed {
        policies: Vec<String>,
        failure: UpstreamFailure,
    },
}

/// How the forward of an allowed request ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Forward {
    /// The upstream answered (HTTP: the response head; CoAP: the response or the empty ACK
    /// of a separate one).
    Answered(Answered),
    /// Handed to the upstream connection, no answer awaited (MQTT: to the broker).
    Sent,
    /// Nothing to forward: the decision was all (a session admitted, a will's topic allowed).
    Nothing,
    /// Ended before its outcome was seen (the client went away mid-forward, the exchange was
    /// evicted from a full table).
    Abandoned,
}

/// The upstream's first answer to a forwarded request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Answered {
    /// How long after the forward began.
    pub after: Duration,
    /// The binding's status: HTTP's status code; CoAP's code as `class * 100 + detail`
    /// (2.01 is 201); `None` for an empty ACK.
    pub status: Option<u16>,
    /// The oneM2M response status code, where the answer carried one.
    pub rsc: Option<u16>,
}

impl Answered {
    pub fn new(after: Duration, status: Option<u16>, rsc: Option<u16>) -> Answered {
        Answered { after, status, rsc }
    }
}

/// A request the binding refused itself.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// Not a oneM2M request the binding can read (the decoder's reason; told to the sender).
    #[error("{0}")]
    Malformed(String),
    #[error("request header too large")]
    HeaderTooLarge,
    #[error("request body too large")]
    BodyTooLarge,
    #[error("request body unreadable")]
    BodyUnreadable,
    /// An MQTT packet over `max_packet_bytes` (the session ends).
    #[error("packet of {0} bytes is over the limit")]
    PacketTooLarge(usize),
    /// A CoAP datagram over `max_datagram_bytes` (dropped).
    #[error("datagram over max_datagram_bytes")]
    DatagramTooLarge,
    /// A datagram that is not CoAP 1 (dropped, or rejected with RST).
    #[error("datagram is not CoAP")]
    NotCoap,
    /// Over the source's rate limit (dropped before parsing).
    #[error("over the source's rate limit")]
    RateLimited,
    /// A retained MQTT request: it would be delivered again at every subscription.
    #[error("retained oneM2M request")]
    Retained,
    /// An MQTT subscription beyond the session's limit of filters.
    #[error("more than {0} subscriptions in one session")]
    TooManySubscriptions(usize),
    /// An MQTT registration or deregistration beyond the session's limit awaiting answers.
    #[error("more than {0} registrations awaiting their answer in one session")]
    TooManyInFlight(usize),
    /// An MQTT client publishing on a response topic as the gateway's CSE.
    #[error("only the CSE publishes answers as the CSE")]
    AnswersAsCse,
    /// An MQTT request for a receiver other than this gateway's CSE.
    #[error("request for another receiver {receiver:?}")]
    WrongReceiver { receiver: String },
}

/// Why an allowed request did not reach the upstream, or got no answer.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum UpstreamFailure {
    #[error("upstream did not answer within {0:?}")]
    Timeout(Duration),
    #[error("upstream unreachable: {0}")]
    Unreachable(String),
    /// The upstream rejected the message (CoAP RST).
    #[error("upstream rejected the request (reset)")]
    Reset,
    #[error("cannot build the upstream request: {0}")]
    Request(String),
}

impl UpstreamFailure {
    /// A short name, for metrics labels.
    pub fn kind(&self) -> &'static str {
        match self {
            UpstreamFailure::Timeout(_) => "timeout",
            UpstreamFailure::Unreachable(_) => "unreachable",
            UpstreamFailure::Reset => "reset",
            UpstreamFailure::Request(_) => "request",
        }
    }
}

/// Hands every record to every sink: the fixed ones (metrics, log) first, then those attached
/// at run time.
pub struct Recorder {
    fixed: Vec<Arc<dyn Sink>>,
    attached: ArcSwap<Vec<Arc<dyn Sink>>>,
}

impl Recorder {
    pub fn new(fixed: Vec<Arc<dyn Sink>>) -> Self {
        Recorder {
            fixed,
            attached: ArcSwap::from_pointee(Vec::new()),
        }
    }

    /// The one recording call: every outcome of every request comes through here, once. The
    /// last sink takes the record itself.
    pub fn record(&self, record: Record) {
        let attached = self.attached.load();
        let mut sinks = self.fixed.iter().chain(attached.iter());
        let Some(mut sink) = sinks.next() else {
            return;
        };
        for next in sinks {
            sink.record(&record);
            sink = next;
        }
        sink.take(record);
    }

    /// The one call for administrative events, as [`Recorder::record`] is for requests.
    pub fn event(&self, event: Event) {
        let happened = Happened {
            at: SystemTime::now(),
            event,
        };
        for sink in self.fixed.iter().chain(self.attached.load().iter()) {
            sink.event(&happened);
        }
    }

    /// Adds `sink` for every record from now on.
    pub fn attach(&self, sink: Arc<dyn Sink>) {
        self.attached.rcu(|sinks| {
            let mut sinks = Vec::clone(sinks);
            sinks.push(sink.clone());
            sinks
        });
    }

    /// A record for an allowed request, made when its forward ends: see [`Pending`].
    pub fn pending(self: &Arc<Self>, record: Record) -> Pending {
        Pending {
            recorder: self.clone(),
            record: Some(Box::new(record)),
        }
    }
}

/// The record of an allowed request whose forward has not ended yet. Completing it records it
/// ([`Pending::forwarded`], [`Pending::failed`]); dropping it uncompleted records it as
/// [`Forward::Abandoned`]: either way, exactly once.
pub struct Pending {
    recorder: Arc<Recorder>,
    /// `Some` until recorded; its outcome is `Allowed`. Boxed: it travels with the request.
    record: Option<Box<Record>>,
}

impl Pending {
    /// The forward ended as `forward`.
    pub fn forwarded(mut self, forward: Forward) {
        if let Some(mut record) = self.record.take() {
            if let Outcome::Allowed { forward: f, .. } = &mut record.outcome {
                *f = forward;
            }
            self.recorder.record(*record);
        }
    }

    /// The upstream failed.
    pub fn failed(mut self, failure: UpstreamFailure) {
        if let Some(mut record) = self.record.take() {
            if let Outcome::Allowed { policies, .. } = &mut record.outcome {
                let policies = std::mem::take(policies);
                record.outcome = Outcome::Failed { policies, failure };
            }
            self.recorder.record(*record);
        }
    }

    /// What the record is about.
    pub fn about(&self) -> Option<&About> {
        self.record.as_ref().map(|r| &r.about)
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        if let Some(mut record) = self.record.take() {
            if let Outcome::Allowed { forward, .. } = &mut record.outcome {
                *forward = Forward::Abandoned;
            }
            self.recorder.record(*record);
        }
    }
}

impl std::fmt::Debug for Pending {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pending")
            .field("about", &self.about())
            .finish()
    }
}

/// A [`Pending`] record shared by the copies of one exchange's state (the CoAP relay's
/// tables): the first to complete it records it; the last copy to go records it abandoned.
#[derive(Clone, Debug, Default)]
pub struct SharedPending(Arc<Mutex<Option<Pending>>>);

impl SharedPending {
    pub fn new(pending: Pending) -> Self {
        SharedPending(Arc::new(Mutex::new(Some(pending))))
    }

    /// The pending record, if no copy has taken it yet.
    pub fn take(&self) -> Option<Pending> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).take()
    }
}

#[cfg(test)]
mod tests;
