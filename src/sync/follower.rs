//! The follower: one task that keeps the repository in step with the authority's feed.
//!
//! Each round: verify the current head; if it shows records missing, fetch them page by
//! page (or a snapshot, when starting empty or too far behind); then wait for the next
//! record (long-poll). A page is verified record by record and the valid prefix applied with
//! its cursor in one durable step ([`crate::store::Repository::apply`]), then acknowledged.
//! Anything refused changes nothing, is logged with the reason, reported in the next ack's
//! `error`, counted, and retried after a jittered, growing pause. The repository keeps
//! enforcing throughout; [`crate::store::Standing`] says how fresh it is.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use tokio::sync::mpsc::Receiver;
use tokio_util::sync::CancellationToken;

use super::apply::{self, ApplyError, Changes};
use super::client::{Client, ClientError};
use super::mqtt::Message;
use crate::config::{SyncConfig, Transport};
use crate::feed::{Ack, FeedError, GatewayStatus, Head, Position, Signed, Snapshot};
use crate::metrics::Metrics;
use crate::metrics::Via;
use crate::record::{Event, Recorder};
use crate::store::{Repository, StoreError};

/// The least time a round that applied nothing takes.
const MIN_QUIET_ROUND: Duration = Duration::from_millis(250);

/// What the repository stores as its feed cursor.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Cursor {
    pub position: Position,
    /// The gateway's own status as the feed last set it.
    pub gateway: GatewayStatus,
    /// With status `removed`: the public signing key (hex) the removal was applied under. A
    /// gateway that starts with another key has enrolled again and starts over from a
    /// snapshot; with the same key it wipes and stays removed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub removed_key: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error(transparent)]
    Feed(#[from] FeedError),
    #[error(transparent)]
    Client(#[from] ClientError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<ApplyError> for SyncError {
    fn from(e: ApplyError) -> Self {
        match e {
            ApplyError::Feed(e) => SyncError::Feed(e),
            ApplyError::Store(e) => SyncError::Store(e),
            ApplyError::NeedsSnapshot(detail) => SyncError::Feed(FeedError::Sealed { detail }),
        }
    }
}

impl SyncError {
    fn reason(&self) -> &'static str {
        match self {
            SyncError::Feed(FeedError::Signature { .. }) => "signature",
            SyncError::Feed(FeedError::Malformed { .. }) => "malformed",
            SyncError::Feed(FeedError::TooLarge { .. }) => "too_large",
            SyncError::Feed(FeedError::Sealed { .. }) => "sealed",
            SyncError::Feed(FeedError::Chain { .. }) => "chain",
            SyncError::Feed(FeedError::Head { .. }) => "head",
            SyncError::Client(ClientError::TooLarge(_)) => "too_large",
            SyncError::Client(_) => "unreachable",
            SyncError::Store(_) => "repository",
        }
    }
}

pub struct Follower {
    config: SyncConfig,
    client: Client,
    repository: Arc<Repository>,
    metrics: Arc<Metrics>,
    /// Every record applied is an event (the audit log's).
    recorder: Arc<Recorder>,
    cursor: Cursor,
}

impl Follower {
    /// A follower that resumes from the repository's cursor (or starts empty), with the
    /// gateway's standing restored from it.
    pub fn new(
        config: SyncConfig,
        repository: Arc<Repository>,
        metrics: Arc<Metrics>,
        recorder: Arc<Recorder>,
    ) -> Result<Follower, String> {
        let stored = repository.nodes().cursor().map_err(|e| e.to_string())?;
        let cursor = match stored {
            Some(bytes) => serde_json::from_slice::<Cursor>(&bytes)
                .map_err(|e| format!("the repository's feed cursor is unreadable: {e}"))?,
            None => Cursor {
                position: Position::start(&config.feed),
                gateway: GatewayStatus::Active,
                removed_key: None,
            },
        };
        let mut cursor = cursor;
        if cursor.gateway == GatewayStatus::Removed
            && cursor.removed_key.is_some()
            && cursor.removed_key != Some(own_key(&config))
        {
            tracing::warn!(feed = %config.feed, "feed: new credentials after a removal; starting over from a snapshot (refusing until it says active)");
            cursor.position = Position::start(&config.feed);
            cursor.removed_key = None;
        }
        if cursor.position.feed != config.feed {
            return Err(format!(
                "the repository follows feed {:?}, the configuration names {:?} (start over with an empty gateway.data_dir)",
                cursor.position.feed, config.feed
            ));
        }
        let follower = Follower {
            client: Client::new(&config),
            config,
            repository,
            metrics,
            recorder,
            cursor,
        };
        follower.publish_standing();
        Ok(follower)
    }

    pub fn cursor(&self) -> &Cursor {
        &self.cursor
    }

    pub fn repository(&self) -> &Arc<Repository> {
        &self.repository
    }

    /// Follows until `stop`.
    pub async fn run(mut self, stop: CancellationToken) {
        if self.wiped_if_removed() {
            return;
        }
        let mut pause = Pause::new(self.config.backoff_max);
        let mut broker = match &self.config.transport {
            Transport::Mqtt { broker, topic } => Some(super::mqtt::subscribe(
                broker,
                topic,
                &self.config.gateway_id,
                stop.child_token(),
            )),
            Transport::Poll => None,
        };
        loop {
            let started = tokio::time::Instant::now();
            let applied = self.cursor.position.seq;
            let round = tokio::select! {
                () = stop.cancelled() => return,
                round = self.round(broker.as_mut()) => round,
            };
            if self.wiped_if_removed() {
                return;
            }
            match round {
                Ok(()) => {
                    pause.reset();
                    // A round that brought nothing and ended early (an authority, or someone
                    // between, answering long-polls at once) waits out the rest of its floor.
                    if self.cursor.position.seq == applied {
                        tokio::select! {
                            () = stop.cancelled() => return,
                            () = tokio::time::sleep_until(started + MIN_QUIET_ROUND) => {}
                        }
                    }
                }
                Err(e) => {
                    self.metrics.sync().refused(e.reason());
                    tracing::warn!(feed = %self.config.feed, seq = self.cursor.position.seq, error = %e, "feed: refused; the repository stays as it is");
                    if !matches!(e, SyncError::Client(_)) {
                        self.ack(Some(e.to_string())).await;
                    }
                    tokio::select! {
                        () = stop.cancelled() => return,
                        () = tokio::time::sleep(pause.grow()) => {}
                    }
                }
            }
        }
    }

    /// One round: head, catch up, then wait for what comes next (a long-poll, or what the
    /// broker delivers, for up to `poll_wait`).
    pub async fn round(&mut self, broker: Option<&mut Receiver<Message>>) -> Result<(), SyncError> {
        let head = Head::verify(&self.client.head().await?, &self.config.feed_key)?;
        self.catch_up(&head).await?;
        match broker {
            Some(broker) => self.listen(broker).await,
            None => {
                let page = self
                    .client
                    .records(self.cursor.position.seq, self.config.poll_wait)
                    .await?;
                if page.is_empty() {
                    Ok(())
                } else {
                    self.apply(&page, Via::Https).await
                }
            }
        }
    }

    /// Applies what the broker delivers until it is quiet for `poll_wait`: the next record
    /// at once, duplicates ignored; a gap, or a head naming records not here, is fetched over
    /// HTTPS.
    async fn listen(&mut self, broker: &mut Receiver<Message>) -> Result<(), SyncError> {
        // One deadline for the whole listen, however much the broker sends: every round asks
        // the authority itself for the head.
        let until = tokio::time::Instant::now() + self.config.poll_wait;
        loop {
            let Ok(Some(message)) = tokio::time::timeout_at(until, broker.recv()).await else {
                return Ok(());
            };
            // Whatever anyone can publish on the broker: a copy that does not verify is
            // counted and skipped, never a reason to stop following.
            match message {
                Message::Record(line) => match Signed::verify(&line, &self.config.feed_key) {
                    Ok(s) if s.record.seq == self.cursor.position.seq + 1 => {
                        self.apply(&[line], Via::Mqtt).await?;
                    }
                    Ok(s) if s.record.seq > self.cursor.position.seq => return Ok(()), // a gap
                    Ok(_) => {} // a duplicate
                    Err(e) => self.skipped(&e.into()),
                },
                Message::Head(compact) => match Head::verify(&compact, &self.config.feed_key) {
                    // Older than a head verified already (the broker's copy arriving after the
                    // one fetched over HTTPS, or replayed): nothing new, like a duplicate record.
                    Ok(head) if head.seq < self.cursor.position.head_seq => {}
                    // Any other head the position refuses (expired, from the future, a fork) is
                    // a bad copy too: skipped, not a failed round (which would back off). Each
                    // round still starts from the head fetched over HTTPS.
                    Ok(head) => match self.cursor.position.clone().observe(&head, unix_now()) {
                        Ok(_) => self.catch_up(&head).await?,
                        Err(e) => self.skipped(&e.into()),
                    },
                    Err(e) => self.skipped(&e.into()),
                },
            }
        }
    }

    fn skipped(&self, e: &SyncError) {
        self.metrics.sync().refused(e.reason());
        tracing::warn!(feed = %self.config.feed, error = %e, "feed: skipped a copy from the MQTT broker");
    }

    /// Brings the repository up to `head`: a snapshot when starting empty or too far behind,
    /// then pages of records.
    async fn catch_up(&mut self, head: &Head) -> Result<(), SyncError> {
        let mut position = self.cursor.position.clone();
        let behind = position.observe(head, unix_now())?.0;
        if behind > 0 && (self.cursor.position.seq == 0 || behind > self.config.snapshot_after) {
            self.snapshot().await?;
        }
        while self.cursor.position.seq < head.seq {
            let page = self
                .client
                .records(self.cursor.position.seq, Duration::ZERO)
                .await?;
            if page.is_empty() {
                return Err(FeedError::Head {
                    detail: format!(
                        "head names record {} but the authority serves none after {}",
                        head.seq, self.cursor.position.seq
                    ),
                }
                .into());
            }
            self.apply(&page, Via::Https).await?;
        }
        self.caught_up(head)
    }

    /// Verifies `page` in order and applies the valid prefix; the first refusal is returned
    /// after the prefix is on disk and acknowledged.
    async fn apply(&mut self, page: &[String], via: Via) -> Result<(), SyncError> {
        let mut next = self.cursor.clone();
        let mut records = Vec::new();
        let mut refused = None;
        for line in page {
            let verified = Signed::verify(line, &self.config.feed_key)
                .and_then(|s| next.position.extend(&s).map(|()| s));
            match verified {
                Ok(signed) => records.push(signed),
                Err(e) => {
                    refused = Some(e);
                    break;
                }
            }
        }
        if records.is_empty() {
            return refused.map_or(Ok(()), |e| Err(e.into()));
        }
        let nodes = self.repository.nodes();
        let mut changes = apply::records(
            &records,
            &self.config.gateway_id,
            &self.config.seal_key,
            nodes,
            unix_now(),
        )?;
        let unapplied = changes.refused.take();
        if changes.covers < records.len() {
            // Only the records before the one that cannot be applied move the cursor.
            next = self.cursor.clone();
            for record in &records[..changes.covers] {
                next.position.extend(record)?;
            }
        }
        let covered = changes.covers as u64;
        if covered > 0 {
            self.commit(next, changes)?;
            for record in records[..covered as usize]
                .iter()
                .filter(|r| r.is_for(&self.config.gateway_id))
            {
                self.recorder.event(Event::FeedRecord {
                    seq: record.record.seq,
                    kind: record.body.kind(),
                    subject: record.body.subject().to_owned(),
                    status: record.body.status(),
                });
            }
            self.metrics
                .sync()
                .applied(self.cursor.position.seq, covered, via);
            self.ack(None).await;
        }
        match (unapplied, refused) {
            (Some(ApplyError::NeedsSnapshot(why)), _) => {
                tracing::info!(feed = %self.config.feed, reason = %why, "feed: fetching a snapshot");
                self.snapshot().await
            }
            (Some(e), _) => Err(e.into()),
            (None, Some(e)) => Err(e.into()),
            (None, None) => Ok(()),
        }
    }

    /// Fetches, verifies and applies a snapshot: never one older than what is applied.
    async fn snapshot(&mut self) -> Result<(), SyncError> {
        let snapshot = Snapshot::verify(&self.client.snapshot().await?, &self.config.feed_key)?;
        let p = &self.cursor.position;
        let refuse = |detail: String| Err(SyncError::Feed(FeedError::Chain { detail }));
        if snapshot.feed != self.config.feed || snapshot.gateway != self.config.gateway_id {
            return refuse(format!(
                "snapshot of feed {:?} for {:?}, not ours",
                snapshot.feed, snapshot.gateway
            ));
        }
        if snapshot.seq < p.seq || (snapshot.seq == p.seq && snapshot.hash != p.hash) {
            return refuse(format!(
                "snapshot at record {} does not extend record {}: rolled back or forked",
                snapshot.seq, p.seq
            ));
        }
        let keys: Vec<_> = self.repository.keys().ring().records().cloned().collect();
        let changes = apply::snapshot(
            &snapshot,
            &self.config.gateway_id,
            &self.config.seal_key,
            self.repository.nodes(),
            &keys,
            unix_now(),
        )?;
        let mut next = self.cursor.clone();
        next.position.seq = snapshot.seq;
        next.position.hash.clone_from(&snapshot.hash);
        // head_seq stays: a snapshot is no head, and the head this round verified may be
        // older than the record the snapshot was taken at.
        self.commit(next, changes)?;
        self.recorder.event(Event::FeedSnapshot {
            seq: snapshot.seq,
            nodes: snapshot.nodes.len(),
            keys: snapshot.keys.len(),
        });
        tracing::info!(feed = %self.config.feed, seq = snapshot.seq, nodes = snapshot.nodes.len(), keys = snapshot.keys.len(), "feed: snapshot applied");
        self.metrics.sync().applied(snapshot.seq, 0, Via::Https);
        self.ack(None).await;
        Ok(())
    }

    /// Records that the repository holds everything `head` names.
    fn caught_up(&mut self, head: &Head) -> Result<(), SyncError> {
        let mut next = self.cursor.clone();
        next.position.observe(head, unix_now())?;
        if next != self.cursor {
            self.commit(next, Changes::nothing())?;
        }
        Ok(())
    }

    /// Applies `changes` with `next` as the cursor, durably; then it is in force.
    fn commit(&mut self, mut next: Cursor, changes: Changes) -> Result<(), SyncError> {
        if let Some(status) = changes.gateway {
            if status == GatewayStatus::Removed && next.removed_key.is_none() {
                next.removed_key = Some(own_key(&self.config));
            }
            next.gateway = status;
        }
        let bytes = serde_json::to_vec(&next).expect("a cursor serialises");
        self.repository.apply(&changes.batch.with_cursor(&bytes))?;
        self.cursor = next;
        self.publish_standing();
        Ok(())
    }

    /// Once the removal is applied (and acknowledged: the round that applied it sent the ack),
    /// wipes the secrets and stops following: whether it did.
    fn wiped_if_removed(&self) -> bool {
        if self.cursor.gateway != GatewayStatus::Removed || self.cursor.removed_key.is_none() {
            return false;
        }
        super::removal::wipe(&self.repository, &self.config.private_files);
        tracing::error!(feed = %self.config.feed, "feed: this gateway's credentials are removed by the authority; refusing every request until `m2mguard enrol` and a restart");
        true
    }

    /// Puts the cursor's gateway status and head time in force for the request path.
    fn publish_standing(&self) {
        let removed = self.cursor.gateway == GatewayStatus::Removed;
        self.repository.nodes().set_gateway_removed(removed);
        let deactivated = self.cursor.gateway == GatewayStatus::Deactivated;
        let nodes = self.repository.nodes();
        let was = nodes.standing().deactivated();
        nodes.set_gateway_deactivated(deactivated);
        if was != deactivated {
            tracing::warn!(feed = %self.config.feed, status = self.cursor.gateway.as_str(), "feed: the authority set this gateway's status");
        }
        nodes.standing().set_head_at(self.cursor.position.head_at);
        nodes.standing().set_seq(self.cursor.position.seq);
        self.metrics.sync().head(self.cursor.position.head_at);
        self.metrics.sync().deactivated(deactivated);
    }

    /// Tells the authority what is applied (and what was refused); failures are logged only.
    async fn ack(&self, error: Option<String>) {
        let ack = Ack {
            feed: self.config.feed.clone(),
            gateway: self.config.gateway_id.clone(),
            seq: self.cursor.position.seq,
            hash: self.cursor.position.hash.clone(),
            at: unix_now(),
            error,
        };
        if let Err(e) = self.client.ack(&ack.sign(&self.config.sign_key)).await {
            tracing::warn!(feed = %self.config.feed, seq = ack.seq, error = %e, "feed: ack not delivered");
        }
    }
}

/// Growing pauses between failed rounds, each drawn from its upper half (jitter), so that
/// gateways that lost the authority together do not come back together.
pub struct Pause {
    next: Duration,
    max: Duration,
}

impl Pause {
    const FIRST: Duration = Duration::from_millis(500);

    pub fn new(max: Duration) -> Self {
        Pause {
            next: Self::FIRST,
            max,
        }
    }

    pub fn reset(&mut self) {
        self.next = Self::FIRST;
    }

    pub fn grow(&mut self) -> Duration {
        let full = self.next.min(self.max);
        self.next = (self.next * 2).min(self.max);
        let random = u64::from(crate::feed::keys::random32()[0]);
        full / 2 + full / 2 * u32::try_from(random).unwrap_or(0) / 255
    }
}

/// This gateway's public signing key, hex.
fn own_key(config: &SyncConfig) -> String {
    crate::feed::keys::hex(config.sign_key.public().raw())
}

pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
