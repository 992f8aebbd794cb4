//! The writer: one thread that owns the log. It takes entries from the queue, gives each its
//! line in the chain, and writes them in group commits: a batch is written and synced
//! (`fdatasync`) once `flush_records` lines wait or the oldest has waited `flush_interval`.
//! Every `checkpoint_records` lines or `checkpoint_interval` it adds a signed checkpoint, and
//! once that is synced, makes it the anchor. Segments rotate by size; the oldest go by
//! `retain_bytes` and `retain_days`, and the line that says so joins the chain.
//!
//! A failed write is cut back to the last synced length and tried again every [`RETRY`]; the
//! lines already made wait in memory (at most `queue_records` lines or [`MAX_BUFFER`] bytes;
//! what comes after that is counted as lost, and recorded as a gap once the log writes again). While writes fail, the
//! log is unhealthy: with `on_full = "refuse"` the gateway refuses requests.

use std::fs::File;
use std::io::{self, Write};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use crossbeam_channel::{Receiver, RecvTimeoutError};
use serde::Serialize;

use super::checkpoint::Checkpoint;
use super::line::{self, CheckpointLine, Dropped, EventLine, Gap, Own, Request};
use super::segments::{self, Tail};
use super::{Checkpoints, Entry, Shared};
use crate::config::AuditConfig;
use crate::metrics::AuditMetrics;
use crate::record::{Outcome, Refusal};

/// How long after a failed write the next is tried.
pub const RETRY: Duration = Duration::from_millis(250);
/// Bytes of lines that may wait in memory while writes fail.
pub const MAX_BUFFER: usize = 16 * 1024 * 1024;
/// How often, at least, the writer looks at its health when nothing comes.
const IDLE: Duration = Duration::from_secs(1);
/// How long a busy writer sleeps between takes from the queue.
pub const POLL: Duration = Duration::from_millis(5);

pub struct Writer {
    config: AuditConfig,
    shared: Arc<Shared>,
    metrics: AuditMetrics,
    file: File,
    /// The first `seq` of the segment being written, and its synced length.
    segment: u64,
    segment_len: u64,
    /// The next line's `seq`, and the last line's hash.
    seq: u64,
    prev: String,
    buf: Vec<u8>,
    buf_lines: u64,
    /// When the oldest line in `buf` was made.
    oldest: Option<Instant>,
    /// A checkpoint line in `buf`, to become the anchor once synced, with its JWS and count.
    anchor: Option<(Vec<u8>, String, u64)>,
    /// Told of each checkpoint once it is synced.
    checkpoints: Option<Arc<dyn Checkpoints>>,
    since_checkpoint: u64,
    checkpoint_at: Instant,
    retry_at: Option<Instant>,
}

impl Writer {
    /// Opens the log in `config.dir` (which `lock` is held for), recovering from a crash, and
    /// writes its `audit.open` line.
    pub fn open(
        config: AuditConfig,
        shared: Arc<Shared>,
        metrics: AuditMetrics,
        checkpoints: Option<Arc<dyn Checkpoints>>,
    ) -> io::Result<Writer> {
        let dir = config.dir.clone();
        let found = recover(&dir)?;
        let (segment, seq, prev, previous, cut_bytes) = match &found {
            Some((first, tail, cut)) => (
                *first,
                tail.seq + 1,
                tail.hash.clone(),
                if tail.closed { "closed" } else { "unclean" },
                *cut,
            ),
            None => (1, 1, line::GENESIS.to_owned(), "new", 0),
        };
        let missing = anchor_ahead(&dir, found.as_ref().map(|(_, t, _)| t));
        let file = segments::open_for_append(&dir, segment)?;
        let segment_len = file.metadata()?.len();
        let mut writer = Writer {
            config,
            shared,
            metrics,
            file,
            segment,
            segment_len,
            seq,
            prev,
            buf: Vec::new(),
            buf_lines: 0,
            oldest: None,
            anchor: None,
            checkpoints,
            since_checkpoint: 0,
            checkpoint_at: Instant::now(),
            retry_at: None,
        };
        if cut_bytes > 0 || missing.is_some() {
            tracing::warn!(dir = %dir.display(), cut_bytes, ?missing, "audit log: recovered on open");
        }
        writer.push(
            SystemTime::now(),
            "event",
            Own::Open {
                event: "audit.open",
                previous,
                cut_bytes,
                missing,
            },
        );
        writer.flush()?;
        writer.rotate_if_full()?;
        Ok(writer)
    }

    /// Takes entries until told to stop (or every sender is gone), then closes the log.
    ///
    /// While records keep coming the writer does not wait on the queue (a sender would have
    /// to wake it for every record): it sleeps [`POLL`] at a time and takes what came. Once a
    /// poll finds nothing, it waits on the queue again, so an idle gateway costs no wake-ups.
    pub fn run(mut self, rx: &Receiver<Entry>) {
        let (mut stop, mut busy) = (false, false);
        while !stop {
            let wait = self.deadline().saturating_duration_since(Instant::now());
            if busy {
                std::thread::sleep(wait.min(POLL));
            } else {
                match rx.recv_timeout(wait) {
                    Ok(Entry::Stop) | Err(RecvTimeoutError::Disconnected) => stop = true,
                    Ok(entry) => self.take(entry),
                    Err(RecvTimeoutError::Timeout) => {}
                }
            }
            busy = false;
            while !stop && self.buf_lines < self.config.flush_records as u64 {
                match rx.try_recv() {
                    Ok(Entry::Stop) => stop = true,
                    Ok(entry) => {
                        self.take(entry);
                        busy = true;
                    }
                    Err(crossbeam_channel::TryRecvError::Disconnected) => stop = true,
                    Err(crossbeam_channel::TryRecvError::Empty) => break,
                }
            }
            self.tick(rx.len());
        }
        self.close();
    }

    /// When the writer must act next: the oldest waiting line's flush, a retry, a checkpoint.
    fn deadline(&self) -> Instant {
        let now = Instant::now();
        if let Some(at) = self.retry_at {
            return at;
        }
        if let Some(oldest) = self.oldest {
            return oldest + self.config.flush_interval;
        }
        if self.since_checkpoint > 0 {
            return (self.checkpoint_at + self.config.checkpoint_interval).min(now + IDLE);
        }
        now + IDLE
    }

    fn take(&mut self, entry: Entry) {
        if self.retry_at.is_none() && self.buf.len() >= MAX_BUFFER {
            let _ = self.flush();
        }
        if self.buffer_full() {
            if let Entry::Record(record) = &entry {
                self.shared
                    .queued_bytes
                    .fetch_sub(super::weight(record), Relaxed);
            }
            self.shared.lost.fetch_add(1, Relaxed);
            self.metrics.lost.inc();
            return;
        }
        match entry {
            Entry::Record(record) => {
                self.shared
                    .queued_bytes
                    .fetch_sub(super::weight(&record), Relaxed);
                let at = record.at;
                self.push(at, "request", Request::of(&record));
            }
            Entry::Event(happened) => {
                self.push(happened.at, "event", EventLine::of(&happened.event));
            }
            Entry::Stop => {}
        }
    }

    /// Flushes what is due, adds what the counters hold, checkpoints when due, and says
    /// whether the log is healthy.
    fn tick(&mut self, waiting: usize) {
        let now = Instant::now();
        if self.retry_at.is_none_or(|at| now >= at) {
            self.counted();
            if self.since_checkpoint >= self.config.checkpoint_records
                || (self.since_checkpoint > 0
                    && now >= self.checkpoint_at + self.config.checkpoint_interval)
            {
                self.checkpoint();
            }
            let due = self.buf_lines >= self.config.flush_records as u64
                || self
                    .oldest
                    .is_some_and(|oldest| now >= oldest + self.config.flush_interval);
            if due || self.retry_at.is_some() {
                let _ = self.flush().and_then(|()| self.rotate_if_full());
            }
        }
        let healthy = self.retry_at.is_none() && self.shared.healthy(waiting);
        self.metrics.healthy.set(i64::from(healthy));
    }

    /// Lines for what was only counted: records lost before the writer saw them, datagrams
    /// dropped unread.
    fn counted(&mut self) {
        if self.buffer_full() {
            return;
        }
        let lost = self.shared.lost.swap(0, Relaxed);
        if lost > 0 {
            let why = if self.retry_at.is_some() {
                "write_failed"
            } else {
                "queue_full"
            };
            self.push(SystemTime::now(), "gap", Gap { lost, why });
        }
        let [a, b, c] = &self.shared.dropped;
        let dropped = Dropped {
            rate_limited: a.swap(0, Relaxed),
            oversize: b.swap(0, Relaxed),
            not_coap: c.swap(0, Relaxed),
        };
        if dropped.rate_limited + dropped.oversize + dropped.not_coap > 0 {
            self.push(SystemTime::now(), "dropped", dropped);
        }
    }

    /// Whether lines must wait no more in memory: [`MAX_BUFFER`] bytes, or while writes fail,
    /// `queue_records` lines.
    fn buffer_full(&self) -> bool {
        self.buf.len() >= MAX_BUFFER
            || (self.retry_at.is_some() && self.buf_lines >= self.shared.capacity as u64)
    }

    /// Gives `body` the next line of the chain, in the buffer.
    fn push<T: Serialize>(&mut self, at: SystemTime, kind: &'static str, body: T) {
        let at = line::timestamp(at);
        let start = self.buf.len();
        line::encode_into(&mut self.buf, self.seq, &self.prev, &at, kind, body);
        self.prev = line::hash(&self.buf[start..]);
        self.buf.push(b'\n');
        self.seq += 1;
        self.since_checkpoint += 1;
        self.buf_lines += 1;
        self.oldest.get_or_insert_with(Instant::now);
    }

    fn checkpoint(&mut self) {
        let at = SystemTime::now();
        let checkpoint = Checkpoint {
            log: self.config.log_id.clone(),
            count: self.seq - 1,
            head: self.prev.clone(),
            at: line::timestamp(at),
        };
        let jws = checkpoint.sign(&self.config.key);
        let start = self.buf.len();
        self.push(at, "checkpoint", CheckpointLine { jws: &jws });
        let line = self.buf[start..self.buf.len() - 1].to_vec();
        self.anchor = Some((line, jws, checkpoint.count));
        self.since_checkpoint = 0;
        self.checkpoint_at = Instant::now();
        self.metrics.checkpoints.inc();
    }

    /// Writes and syncs the buffer; on failure cuts the segment back to its synced length
    /// and keeps the buffer for the next try.
    fn flush(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let written = self
            .file
            .write_all(&self.buf)
            .and_then(|()| self.file.sync_data());
        match written {
            Ok(()) => {
                self.segment_len += self.buf.len() as u64;
                self.metrics.records.inc_by(self.buf_lines);
                self.buf.clear();
                self.buf_lines = 0;
                self.oldest = None;
                if self.retry_at.take().is_some() {
                    self.shared.failing.store(false, Relaxed);
                    tracing::info!(dir = %self.config.dir.display(), "audit log: writing again");
                }
                if let Some((line, jws, count)) = self.anchor.take() {
                    segments::write_anchor(&self.config.dir, &line)?;
                    if let Some(checkpoints) = &self.checkpoints {
                        checkpoints.synced(&jws, count);
                    }
                }
                Ok(())
            }
            Err(e) => {
                let _ = self.file.set_len(self.segment_len);
                self.metrics.write_errors.inc();
                if self.retry_at.is_none() {
                    tracing::error!(dir = %self.config.dir.display(), error = %e, on_full = ?self.config.on_full, "audit log: cannot write");
                }
                self.shared.failing.store(true, Relaxed);
                self.retry_at = Some(Instant::now() + RETRY);
                Err(e)
            }
        }
    }

    /// Starts a new segment once the current one is full, then applies retention.
    fn rotate_if_full(&mut self) -> io::Result<()> {
        if self.segment_len < self.config.segment_bytes || !self.buf.is_empty() {
            return Ok(());
        }
        self.file = segments::open_for_append(&self.config.dir, self.seq)?;
        self.segment = self.seq;
        self.segment_len = 0;
        self.retain()
    }

    /// Removes the oldest segments beyond `retain_bytes` or older than `retain_days` (never
    /// the one being written), and says so in the log.
    fn retain(&mut self) -> io::Result<()> {
        let dir = &self.config.dir;
        let mut all = segments::list(dir)?;
        all.retain(|(first, _)| *first < self.segment);
        let mut total: u64 = all
            .iter()
            .filter_map(|(_, p)| p.metadata().ok())
            .map(|m| m.len())
            .sum();
        let max_age = Duration::from_secs(self.config.retain_days * 86_400);
        let mut removed = false;
        for (_, path) in &all {
            let meta = path.metadata()?;
            let old = self.config.retain_days > 0
                && meta
                    .modified()
                    .ok()
                    .and_then(|m| m.elapsed().ok())
                    .is_some_and(|age| age > max_age);
            if total + self.segment_len <= self.config.retain_bytes && !old {
                break;
            }
            std::fs::remove_file(path)?;
            total -= meta.len();
            removed = true;
        }
        if removed {
            segments::sync_dir(dir)?;
            let oldest = segments::list(dir)?.into_iter().next();
            if let Some((first, path)) = oldest {
                let head = segments::first_line(&path)?
                    .and_then(|l| serde_json::from_str::<serde_json::Value>(&l).ok())
                    .and_then(|v| v.get("prev")?.as_str().map(str::to_owned))
                    .unwrap_or_default();
                let retention = Own::Retention {
                    event: "audit.retention",
                    removed_through: first - 1,
                    head: &head,
                };
                self.push(SystemTime::now(), "event", retention);
                // At once under a checkpoint: a verifier believes only a signed retention line.
                self.checkpoint();
            }
        }
        Ok(())
    }

    /// The log's last lines: `audit.close` and a checkpoint, synced.
    fn close(mut self) {
        self.counted();
        self.push(
            SystemTime::now(),
            "event",
            Own::Close {
                event: "audit.close",
            },
        );
        self.checkpoint();
        for _ in 0..3 {
            if self.flush().is_ok() {
                self.metrics.healthy.set(-1);
                return;
            }
            std::thread::sleep(RETRY);
        }
        tracing::error!(dir = %self.config.dir.display(), "audit log: closed with its last lines unwritten");
    }
}

/// The newest segment holding a whole line: its first `seq`, its tail, and how many bytes
/// after the tail were cut off (a torn line). Segments with no whole line are removed.
fn recover(dir: &std::path::Path) -> io::Result<Option<(u64, Tail, u64)>> {
    for (first, path) in segments::list(dir)?.into_iter().rev() {
        let len = path.metadata()?.len();
        match segments::tail(&path)? {
            Some(tail) => {
                if tail.len < len {
                    std::fs::OpenOptions::new()
                        .write(true)
                        .open(&path)?
                        .set_len(tail.len)?;
                }
                let cut = len - tail.len;
                return Ok(Some((first, tail, cut)));
            }
            None => {
                std::fs::remove_file(&path)?;
                segments::sync_dir(dir)?;
            }
        }
    }
    Ok(None)
}

/// What the anchor says the log held, when that is more than was found: lines were removed
/// while no writer ran.
fn anchor_ahead(dir: &std::path::Path, tail: Option<&Tail>) -> Option<line::Missing> {
    let text = std::fs::read_to_string(dir.join(segments::ANCHOR)).ok()?;
    let anchored = serde_json::from_str::<serde_json::Value>(text.trim_end()).ok()?;
    let anchor_seq = anchored.get("seq")?.as_u64()?;
    let found_seq = tail.map_or(0, |t| t.seq);
    (anchor_seq > found_seq).then_some(line::Missing {
        anchor_seq,
        found_seq,
    })
}

/// Whether a refusal is one of those only counted (datagrams dropped before they are read),
/// and which counter it goes to.
pub fn counted_only(outcome: &Outcome) -> Option<usize> {
    match outcome {
        Outcome::Refused(Refusal::RateLimited) => Some(0),
        Outcome::Refused(Refusal::DatagramTooLarge) => Some(1),
        Outcome::Refused(Refusal::NotCoap) => Some(2),
        _ => None,
    }
}
