//! The audit log (docs/audit.md): every request's record and every administrative event,
//! as hash-chained JSON lines in segment files, with signed checkpoints, written off the
//! request path in group commits.
//!
//! In: records and events from the [`Recorder`](crate::record::Recorder) (this is one of its
//! sinks: [`AuditSink`]). Out: the log in `[audit] dir`, and the [`Gate`] the decider asks
//! before it lets a request through (`on_full = "refuse"`).
//!
//! The request path only clones the record into a bounded queue ([`AuditSink`]); the
//! [`writer`] thread serialises, hashes, writes and syncs. A full queue never blocks a
//! request: the record is counted as lost and the log gets a gap line saying how many.
//! Datagrams dropped before they are read (over a source's rate limit, oversize, not CoAP)
//! are counted, not recorded one by one: they are what a flood is made of.

mod checkpoint;
pub mod line;
pub mod read;
mod segments;
pub mod verify;
mod writer;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel::{Sender, TrySendError};

use crate::config::{AuditConfig, OnFull};
use crate::metrics::AuditMetrics;
use crate::record::{Happened, Record, Sink};
pub use checkpoint::{Checkpoint, TYP as CHECKPOINT_TYP};
pub use segments::{first_seq, list as list_segments, ANCHOR};

/// Bytes the queue may hold (what its records carry: content, target, ids), whatever their
/// number: records beyond are lost (a gap), and the log is unhealthy from half of it.
pub const MAX_QUEUED_BYTES: usize = 64 * 1024 * 1024;

/// What a queued record holds beyond its fixed size.
fn weight(record: &Record) -> usize {
    let a = &record.about;
    a.content.len() + a.fr.len() + a.to.len() + a.rqi.len() + 256
}

/// How long an event may wait for a place in a full queue before it is counted as lost.
const EVENT_WAIT: Duration = Duration::from_millis(100);

/// What the queue carries; boxed, so that the queue's slots (allocated up front, one per
/// `queue_records`) stay small.
enum Entry {
    Record(Box<Record>),
    Event(Box<Happened>),
    Stop,
}

/// Where a checkpoint goes besides the log, once it is synced there (with `[sync]`: the
/// outbox to the authority). Called on the writer's thread: it must not block for long.
pub trait Checkpoints: Send + Sync {
    /// `jws` is the checkpoint's compact JWS; it signs the chain of the `count` lines before it.
    fn synced(&self, jws: &str, count: u64);
}

/// What the request path and the writer share.
struct Shared {
    /// The last write failed; the writer retries.
    failing: AtomicBool,
    /// Records the queue could not take, since the writer last looked.
    lost: AtomicU64,
    /// Datagrams dropped unread, by kind (rate-limited, oversize, not CoAP).
    dropped: [AtomicU64; 3],
    /// What the queued records weigh ([`weight`]), at most [`MAX_QUEUED_BYTES`].
    queued_bytes: std::sync::atomic::AtomicUsize,
    capacity: usize,
}

impl Shared {
    /// Writes succeed, and the queue is less than half full by count and by bytes.
    fn healthy(&self, waiting: usize) -> bool {
        !self.failing.load(Relaxed)
            && waiting < self.capacity / 2
            && self.queued_bytes.load(Relaxed) < MAX_QUEUED_BYTES / 2
    }
}

/// Held by the writer's thread: should it ever panic, the log is marked failing for good, so
/// that with `on_full = "refuse"` nothing passes unrecorded.
struct FailsIfItDies(Arc<Shared>);

impl Drop for FailsIfItDies {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.0.failing.store(true, Relaxed);
            tracing::error!("audit log: the writer failed; the log takes nothing more");
        }
    }
}

/// The request path's end of the log.
pub struct AuditSink {
    tx: Sender<Entry>,
    shared: Arc<Shared>,
    metrics: AuditMetrics,
}

impl AuditSink {
    /// Counts a datagram dropped unread (not recorded one by one); `false` for any other.
    fn take_counted(&self, record: &Record) -> bool {
        match writer::counted_only(&record.outcome) {
            Some(kind) => {
                self.shared.dropped[kind].fetch_add(1, Relaxed);
                true
            }
            None => false,
        }
    }

    fn lose(&self) {
        self.shared.lost.fetch_add(1, Relaxed);
        self.metrics.lost.inc();
    }
}

impl Sink for AuditSink {
    fn record(&self, record: &Record) {
        if writer::counted_only(&record.outcome).is_none() {
            self.take(record.clone());
        } else {
            self.take_counted(record);
        }
    }

    fn take(&self, record: Record) {
        if self.take_counted(&record) {
            return;
        }
        let bytes = weight(&record);
        if self.shared.queued_bytes.fetch_add(bytes, Relaxed) + bytes > MAX_QUEUED_BYTES {
            self.shared.queued_bytes.fetch_sub(bytes, Relaxed);
            return self.lose();
        }
        match self.tx.try_send(Entry::Record(Box::new(record))) {
            Ok(()) => {}
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                self.shared.queued_bytes.fetch_sub(bytes, Relaxed);
                self.lose();
            }
        }
    }

    fn event(&self, event: &Happened) {
        if self
            .tx
            .send_timeout(Entry::Event(Box::new(event.clone())), EVENT_WAIT)
            .is_err()
        {
            self.lose();
        }
    }
}

/// Whether the log takes records now: its writes succeed and its queue is less than half
/// full. With `on_full = "refuse"`, the decider refuses requests while it does not.
pub struct Gate {
    tx: Sender<Entry>,
    shared: Arc<Shared>,
}

impl Gate {
    pub fn open(&self) -> bool {
        self.shared.healthy(self.tx.len())
    }
}

/// A running audit log.
pub struct Audit {
    sink: Arc<AuditSink>,
    on_full: OnFull,
    writer: Option<JoinHandle<()>>,
}

impl Audit {
    /// Opens the log (taking its directory's lock, recovering from a crash) and starts the
    /// writer.
    pub fn start(
        config: AuditConfig,
        metrics: AuditMetrics,
        checkpoints: Option<Arc<dyn Checkpoints>>,
    ) -> std::io::Result<Audit> {
        segments::create_dir(&config.dir)?;
        let lock = segments::lock(&config.dir)?;
        let capacity = config.queue_records;
        let shared = Arc::new(Shared {
            failing: AtomicBool::new(false),
            lost: AtomicU64::new(0),
            dropped: Default::default(),
            queued_bytes: Default::default(),
            capacity,
        });
        let on_full = config.on_full;
        let writer = writer::Writer::open(config, shared.clone(), metrics.clone(), checkpoints)?;
        let (tx, rx) = crossbeam_channel::bounded(capacity);
        let watched = FailsIfItDies(shared.clone());
        let thread = std::thread::Builder::new()
            .name("audit-writer".into())
            .spawn(move || {
                let _lock = lock;
                let _watched = watched;
                writer.run(&rx);
            })?;
        Ok(Audit {
            sink: Arc::new(AuditSink {
                tx,
                shared,
                metrics,
            }),
            on_full,
            writer: Some(thread),
        })
    }

    pub fn sink(&self) -> Arc<dyn Sink> {
        self.sink.clone()
    }

    /// The gate requests must pass, with `on_full = "refuse"`.
    pub fn gate(&self) -> Option<Gate> {
        (self.on_full == OnFull::Refuse).then(|| Gate {
            tx: self.sink.tx.clone(),
            shared: self.sink.shared.clone(),
        })
    }

    /// Writes what waits, closes the log with a checkpoint, and waits for the writer. Blocks:
    /// call it off the async runtime's threads.
    pub fn close(mut self) {
        let _ = self.sink.tx.send(Entry::Stop);
        if let Some(writer) = self.writer.take() {
            let _ = writer.join();
        }
    }
}
