//! Publishing: one writer at a time builds the next records (seq, prev, at, aud, kind, body),
//! signs them with the feed key, commits them with the state changes they publish, and only
//! then moves the feed's [`Current`] position on (waking long-polls and the MQTT publisher)
//! and answers. Heads are signed after every publish and on every heartbeat.
//!
//! In: a plan made under the writer's lock from the state as it is. Out: the last record's
//! seq and hash. Invariant: `Current` never names a record that is not on disk.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{SystemTime, UNIX_EPOCH};

use tokio::sync::watch;

use super::ops::OpError;
use super::state::{Change, State, StateError};
use crate::feed::record::Record;
use crate::feed::{Body, Head, Signed, SigningKey};

/// The feed's position and its newest signed head.
#[derive(Clone, Debug)]
pub struct Current {
    pub seq: u64,
    pub hash: String,
    /// The compact JWS of the newest head.
    pub head: Arc<str>,
}

/// What one operation publishes: records (audience and body, in order) and state changes,
/// committed together.
#[derive(Debug, Default)]
pub struct Plan {
    pub records: Vec<(Vec<String>, Body)>,
    pub changes: Vec<Change>,
}

/// The feed: its state, its key, and the one writer.
pub struct Feed {
    pub id: String,
    state: State,
    key: SigningKey,
    head_valid_s: u64,
    writer: Mutex<()>,
    current: watch::Sender<Current>,
}

pub fn now_s() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl Feed {
    pub fn new(
        id: String,
        state: State,
        key: SigningKey,
        head_valid_s: u64,
    ) -> Result<Feed, StateError> {
        let (seq, hash) = state.tip()?;
        let head = sign_head(&key, &id, seq, &hash, head_valid_s);
        let (current, _) = watch::channel(Current { seq, hash, head });
        Ok(Feed {
            id,
            state,
            key,
            head_valid_s,
            writer: Mutex::new(()),
            current,
        })
    }

    /// The state for reads that need no consistency with the feed's position.
    pub fn state(&self) -> &State {
        &self.state
    }

    pub fn key(&self) -> &SigningKey {
        &self.key
    }

    pub fn current(&self) -> Current {
        self.current.borrow().clone()
    }

    pub fn subscribe(&self) -> watch::Receiver<Current> {
        self.current.subscribe()
    }

    /// Reads the state under the writer's lock: consistent with [`Feed::current`].
    pub fn read<T>(&self, f: impl FnOnce(&State, &Current) -> T) -> T {
        let _writer = self.writer.lock().unwrap_or_else(PoisonError::into_inner);
        f(&self.state, &self.current.borrow())
    }

    /// Plans under the writer's lock, publishes the plan, and answers the last record's seq
    /// and hash (the feed's position when the plan has no record) with what the plan gave.
    pub fn publish<T>(
        &self,
        plan: impl FnOnce(&State) -> Result<(Plan, T), OpError>,
    ) -> Result<(u64, String, T), OpError> {
        let _writer = self.writer.lock().unwrap_or_else(PoisonError::into_inner);
        let (plan, extra) = plan(&self.state)?;
        let Current {
            mut seq, mut hash, ..
        } = self.current();
        let at = now_s();
        let mut records = Vec::with_capacity(plan.records.len());
        let mut kinds = Vec::with_capacity(plan.records.len());
        for (aud, body) in plan.records {
            let header = Record {
                feed: self.id.clone(),
                seq: seq + 1,
                prev: hash.clone(),
                at,
                aud,
                kind: String::new(),
                body: serde_json::Value::Null,
            };
            let signed = Signed::sign(&self.key, header, body);
            // Nothing is published that a gateway would refuse: it could never get past it.
            if signed.compact.len() > crate::feed::record::MAX_RECORD {
                return Err(OpError::Invalid(format!(
                    "the record would be {} bytes, more than a record may be",
                    signed.compact.len()
                )));
            }
            Signed::verify(&signed.compact, &self.key.public()).map_err(|e| {
                OpError::Invalid(format!("the record would be refused by gateways: {e}"))
            })?;
            seq += 1;
            hash.clone_from(&signed.hash);
            kinds.push(signed.body.kind());
            records.push((seq, signed.compact));
        }
        self.state.commit(&records, &plan.changes)?;
        for ((seq, _), kind) in records.iter().zip(&kinds) {
            tracing::info!(feed.seq = seq, feed.kind = kind, "published");
        }
        if !records.is_empty() {
            self.move_to(seq, hash.clone());
        }
        Ok((seq, hash, extra))
    }

    /// Signs a fresh head for the current position (the heartbeat).
    pub fn refresh_head(&self) {
        let _writer = self.writer.lock().unwrap_or_else(PoisonError::into_inner);
        let Current { seq, hash, .. } = self.current();
        self.move_to(seq, hash);
    }

    fn move_to(&self, seq: u64, hash: String) {
        let head = sign_head(&self.key, &self.id, seq, &hash, self.head_valid_s);
        self.current.send_replace(Current { seq, hash, head });
    }
}

fn sign_head(key: &SigningKey, feed: &str, seq: u64, hash: &str, valid_s: u64) -> Arc<str> {
    let at = now_s();
    let head = Head {
        feed: feed.to_owned(),
        seq,
        hash: hash.to_owned(),
        at,
        valid_until: at + valid_s,
    };
    head.sign(key).into()
}
