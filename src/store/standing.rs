//! [`Standing`]: where the gateway itself stands with the infrastructure node — whether the
//! IN has deactivated it (remote transmission control, TS-0003 §7.9) and how fresh its view of
//! the feed is. Written by the sync (`crate::sync`), read by every request's status stage and
//! by Cedar's `context.repository`. Without `[sync]` it never changes: active, not synced.
//!
//! Invariant: a deactivation is visible to the very next request (an atomic, set after the
//! record that says so is on disk), and announced to long-lived sessions through
//! [`super::Nodes::status_changes`] as [`EVERY_NODE`].

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// The id announced on a status change that concerns every node (the gateway's own status):
/// no node has the empty id.
pub const EVERY_NODE: &str = "";

#[derive(Debug, Default)]
pub struct Standing {
    limits: Limits,
    deactivated: AtomicBool,
    /// The authority removed this gateway's credentials: everything is refused.
    removed: AtomicBool,
    /// Unix seconds of the newest verified head the repository caught up with (0: none).
    head_at: AtomicU64,
    /// The last feed record applied.
    seq: AtomicU64,
}

/// How stale a synced view may get before only `group` passes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Limits {
    /// Whether the repository follows the feed at all.
    pub synced: bool,
    /// Seconds since the last verified head after which only `group` passes; 0 for none.
    pub max_age_s: u64,
    pub group: String,
}

/// Why the gateway refuses everyone (or everyone outside the stale group).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refusal {
    Removed,
    Deactivated,
    Stale { age_s: u64, limit_s: u64 },
}

impl Standing {
    pub fn new(limits: Limits) -> Self {
        Standing {
            limits,
            ..Standing::default()
        }
    }

    pub fn synced(&self) -> bool {
        self.limits.synced
    }

    pub fn deactivated(&self) -> bool {
        self.deactivated.load(Ordering::Acquire)
    }

    pub fn removed(&self) -> bool {
        self.removed.load(Ordering::Acquire)
    }

    /// Sets whether the gateway's credentials are removed; whether it changed.
    pub fn set_removed(&self, removed: bool) -> bool {
        self.removed.swap(removed, Ordering::AcqRel) != removed
    }

    /// Sets the gateway's status; whether it changed.
    pub fn set_deactivated(&self, deactivated: bool) -> bool {
        self.deactivated.swap(deactivated, Ordering::AcqRel) != deactivated
    }

    pub fn set_head_at(&self, at: u64) {
        self.head_at.fetch_max(at, Ordering::AcqRel);
    }

    pub fn set_seq(&self, seq: u64) {
        self.seq.store(seq, Ordering::Release);
    }

    pub fn seq(&self) -> u64 {
        self.seq.load(Ordering::Acquire)
    }

    pub fn max_age_s(&self) -> u64 {
        self.limits.max_age_s
    }

    /// Seconds since the last verified head, for a synced repository that has seen one;
    /// `None` otherwise (then Cedar sees 0 and `synced`).
    pub fn age_s(&self, now: u64) -> Option<u64> {
        let at = self.head_at.load(Ordering::Acquire);
        (self.limits.synced && at > 0).then(|| now.saturating_sub(at))
    }

    /// Whether the view is older than `sync.max_age_s` at `now` (never, without a limit).
    pub fn stale(&self, now: u64) -> bool {
        let limit_s = self.limits.max_age_s;
        self.limits.synced && limit_s > 0 && self.age_s(now).is_none_or(|age| age > limit_s)
    }

    /// Whether a request from a node in `groups` may be decided at `now`.
    pub fn admits(&self, groups: &[String], now: u64) -> Result<(), Refusal> {
        if self.removed() {
            return Err(Refusal::Removed);
        }
        if self.deactivated() {
            return Err(Refusal::Deactivated);
        }
        if self.stale(now) && !groups.contains(&self.limits.group) {
            // Never having verified a head counts as infinitely old.
            let age_s = self.age_s(now).unwrap_or(u64::MAX);
            let limit_s = self.limits.max_age_s;
            return Err(Refusal::Stale { age_s, limit_s });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn synced(max_age_s: u64) -> Standing {
        Standing::new(Limits {
            synced: true,
            max_age_s,
            group: "operators".into(),
        })
    }

    #[test]
    fn a_deactivated_gateway_admits_no_one_until_activated() {
        let s = synced(0);
        assert!(s.set_deactivated(true));
        let ops = ["operators".to_owned()];
        assert_eq!(s.admits(&ops, 10), Err(Refusal::Deactivated));
        assert!(!s.set_deactivated(true), "no change");
        assert!(s.set_deactivated(false));
        assert_eq!(s.admits(&[], 10), Ok(()));
    }

    #[test]
    fn past_the_age_limit_only_the_stale_group_passes() {
        let s = synced(60);
        let ops = ["operators".to_owned()];
        assert!(
            matches!(s.admits(&[], 100), Err(Refusal::Stale { .. })),
            "no head yet"
        );
        s.set_head_at(100);
        assert_eq!(s.admits(&[], 160), Ok(()));
        assert_eq!(
            s.admits(&[], 161),
            Err(Refusal::Stale {
                age_s: 61,
                limit_s: 60
            })
        );
        assert_eq!(s.admits(&ops, 161), Ok(()));
        assert_eq!(s.age_s(161), Some(61));
    }

    #[test]
    fn without_sync_nothing_is_ever_stale() {
        let s = Standing::default();
        assert_eq!(s.admits(&[], u64::MAX), Ok(()));
        assert_eq!(s.age_s(5), None);
    }
}
