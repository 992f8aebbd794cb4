//! Following the feed: where a gateway stands ([`Position`]), whether the next record extends
//! it, and what a head says about it. Pure: no I/O, the clock passed in. Everything that is
//! refused here leaves the position as it was.

use serde::{Deserialize, Serialize};

use super::record::{Head, Signed, ZERO_HASH};
use super::FeedError;

/// Heads signed further in the future than this are refused.
pub const MAX_CLOCK_AHEAD_S: u64 = 60;

/// What a gateway has applied and verified, persisted with every batch as the repository's
/// cursor.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Position {
    pub feed: String,
    /// The last record applied (0: none).
    pub seq: u64,
    pub hash: String,
    /// The highest head `seq` verified: a lower one is a rollback.
    pub head_seq: u64,
    /// The `at` of the newest head verified while caught up (0: never).
    pub head_at: u64,
}

impl Position {
    /// Before the first record.
    pub fn start(feed: &str) -> Position {
        Position {
            feed: feed.to_owned(),
            seq: 0,
            hash: ZERO_HASH.to_owned(),
            head_seq: 0,
            head_at: 0,
        }
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a position serialises")
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<Position, FeedError> {
        serde_json::from_slice(bytes).map_err(|e| FeedError::Malformed {
            what: "stored feed cursor".into(),
            detail: e.to_string(),
        })
    }

    /// Moves past `record` if it is the next one of this feed.
    pub fn extend(&mut self, record: &Signed) -> Result<(), FeedError> {
        let r = &record.record;
        if r.feed != self.feed {
            return Err(chain(format!(
                "record of feed {:?}, following {:?}",
                r.feed, self.feed
            )));
        }
        if r.seq <= self.seq {
            return Err(chain(format!(
                "record {} is old (applied up to {}): replayed or rolled back",
                r.seq, self.seq
            )));
        }
        if r.seq != self.seq + 1 {
            return Err(chain(format!(
                "record {} after {}: records are missing",
                r.seq, self.seq
            )));
        }
        if r.prev != self.hash {
            return Err(chain(format!(
                "record {} does not follow record {} (prev {}, have {}): a fork",
                r.seq, self.seq, r.prev, self.hash
            )));
        }
        self.seq = r.seq;
        self.hash.clone_from(&record.hash);
        Ok(())
    }

    /// Judges a verified head at time `now`: refused, or how far behind it shows us to be.
    /// Accepting it raises `head_seq`, and `head_at` when we hold everything it names.
    pub fn observe(&mut self, head: &Head, now: u64) -> Result<Behind, FeedError> {
        if head.feed != self.feed {
            return Err(stale(format!(
                "head of feed {:?}, following {:?}",
                head.feed, self.feed
            )));
        }
        if head.valid_until < now {
            return Err(stale(format!(
                "head {} expired {} s ago: the feed is frozen or withheld",
                head.seq,
                now - head.valid_until
            )));
        }
        if head.at > now + MAX_CLOCK_AHEAD_S {
            return Err(stale(format!(
                "head {} signed {} s in the future",
                head.seq,
                head.at - now
            )));
        }
        if head.seq < self.head_seq {
            return Err(stale(format!(
                "head {} after head {}: rolled back",
                head.seq, self.head_seq
            )));
        }
        if head.seq == self.seq && head.hash != self.hash {
            return Err(stale(format!(
                "head {} names hash {}, record {} has {}: a fork",
                head.seq, head.hash, self.seq, self.hash
            )));
        }
        self.head_seq = head.seq;
        if head.seq <= self.seq {
            self.head_at = self.head_at.max(head.at);
            Ok(Behind(0))
        } else {
            Ok(Behind(head.seq - self.seq))
        }
    }

    /// Seconds since the newest head verified while caught up; `None` before the first.
    pub fn age(&self, now: u64) -> Option<u64> {
        (self.head_at > 0).then(|| now.saturating_sub(self.head_at))
    }
}

/// How many records a head shows to be missing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Behind(pub u64);

fn chain(detail: String) -> FeedError {
    FeedError::Chain { detail }
}

fn stale(detail: String) -> FeedError {
    FeedError::Head { detail }
}
