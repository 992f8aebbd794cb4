//! A bounded queue between the request path and a consumer that must see every record (the
//! demo, the audit log), read at the consumer's own pace.
//!
//! The queue holds at most `capacity` records. What happens when it is full is its
//! [`Overflow`]:
//!
//! - [`Overflow::Wait`]`(bound)`: back-pressure up to a bound. The request path waits for a
//!   free place, at most `bound` per record (the calling thread blocks meanwhile); only a
//!   record that finds no place within `bound` is left out. A durable consumer that keeps up
//!   on average (its spikes shorter than what `capacity` absorbs plus `bound`) loses nothing;
//!   one that stalls for good costs each request at most `bound`.
//! - [`Overflow::Drop`]: the request path never waits; a record that finds the queue full is
//!   left out at once.
//!
//! Either way a record left out is counted (`m2mguard_records_lost_total{sink}`) and the next
//! record the queue accepts says how many went before it ([`Record::lost`]), so a consumer
//! knows where its stream has a gap and how large it is. Once the consumer ([`Records`]) is
//! dropped, the queue takes nothing more and costs the request path a failed send.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use crossbeam_channel::{Receiver, SendTimeoutError, Sender, TrySendError};
use prometheus_client::metrics::counter::Counter;

use super::{Record, Sink};

/// What a full queue does with the next record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Overflow {
    /// Wait at most this long for a place, then leave the record out.
    Wait(Duration),
    /// Leave the record out at once.
    Drop,
}

/// The request path's end: a [`Sink`].
pub struct Queue {
    tx: Sender<Record>,
    overflow: Overflow,
    /// Left out since the last record accepted.
    lost_since: AtomicU64,
    lost: Counter,
}

/// The consumer's end.
pub struct Records {
    rx: Receiver<Record>,
}

impl Queue {
    /// A queue of `capacity` records (at least 1); `lost` counts what it leaves out.
    pub fn new(capacity: usize, overflow: Overflow, lost: Counter) -> (Queue, Records) {
        let (tx, rx) = crossbeam_channel::bounded(capacity.max(1));
        let queue = Queue {
            tx,
            overflow,
            lost_since: AtomicU64::new(0),
            lost,
        };
        (queue, Records { rx })
    }
}

impl Sink for Queue {
    fn record(&self, record: &Record) {
        self.take(record.clone());
    }

    fn take(&self, mut record: Record) {
        // Taken before the send: a concurrent sender that succeeds meanwhile reports 0, and
        // what this one took is put back if its own record is left out; nothing is counted
        // twice or forgotten.
        let before = self.lost_since.swap(0, Relaxed);
        record.lost = before;
        let full = match self.overflow {
            Overflow::Drop => matches!(self.tx.try_send(record), Err(TrySendError::Full(_))),
            Overflow::Wait(bound) => matches!(
                self.tx.send_timeout(record, bound),
                Err(SendTimeoutError::Timeout(_))
            ),
        };
        // A disconnected queue (its consumer dropped) is neither full nor counted.
        if full {
            self.lost_since.fetch_add(before + 1, Relaxed);
            self.lost.inc();
        }
    }
}

impl Records {
    /// The next record, waiting at most `timeout`.
    pub fn recv_timeout(&self, timeout: Duration) -> Option<Record> {
        self.rx.recv_timeout(timeout).ok()
    }

    /// The next record, if one is waiting.
    pub fn try_recv(&self) -> Option<Record> {
        self.rx.try_recv().ok()
    }

    /// Records waiting now.
    pub fn len(&self) -> usize {
        self.rx.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rx.is_empty()
    }
}
