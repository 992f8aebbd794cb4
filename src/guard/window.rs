//! Replay protection by sequence number (seed 7.6): one RFC 6479 sliding window per
//! check-value key, advanced only after the check value verified.
//!
//! In: a verified (key id, sequence number), the repository for the persisted bound. Out:
//! `Ok(())` at most once per number, or a denial.
//!
//! Restart safety (the lease, as OSCORE does for its sender sequence numbers, RFC 8613
//! §B.1.1): before a key accepts a number above its persisted bound, the bound is raised to
//! that number + `lease` and flushed. So every number ever accepted lies at or below the bound
//! on disk, and after a restart or a SIGKILL the window starts with everything up to the bound
//! already seen. The price: a device must continue above the bound after a gateway restart
//! (up to `lease` numbers above its last one); its refused numbers say so in the log.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};

use super::{Denial, Reason, SequenceRefusal, Stage};
use crate::store::Store;

pub struct Windows {
    size: u64,
    lease: u64,
    store: Arc<dyn Store>,
    keys: RwLock<HashMap<String, Arc<Mutex<Window>>>>,
}

impl Windows {
    /// `size`: a multiple of 64, at least 64.
    pub fn new(size: u64, lease: u64, store: Arc<dyn Store>) -> Self {
        Windows {
            size,
            lease,
            store,
            keys: RwLock::default(),
        }
    }

    /// Accepts `seq` for `key_id` once, or denies it.
    pub fn check(&self, key_id: &str, seq: u64) -> Result<(), Denial> {
        let deny = |reason: Reason| Denial::new(Stage::Replay, reason);
        let window = self.window(key_id)?;
        let mut w = window.lock().unwrap_or_else(|e| e.into_inner());
        w.admissible(seq).map_err(|why| {
            deny(Reason::SequenceRefused {
                key_id: key_id.to_owned(),
                seq,
                why,
            })
        })?;
        if seq > w.bound {
            let bound = seq.saturating_add(self.lease);
            self.store.put_sequence_mark(key_id, bound).map_err(|e| {
                deny(Reason::SequenceBound {
                    write: true,
                    error: e.to_string(),
                })
            })?;
            w.bound = bound;
        }
        w.set(seq);
        Ok(())
    }

    fn window(&self, key_id: &str) -> Result<Arc<Mutex<Window>>, Denial> {
        if let Some(w) = self
            .keys
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(key_id)
        {
            return Ok(w.clone());
        }
        let mark = self.store.sequence_mark(key_id).map_err(|e| {
            Denial::new(
                Stage::Replay,
                Reason::SequenceBound {
                    write: false,
                    error: e.to_string(),
                },
            )
        })?;
        let mut keys = self.keys.write().unwrap_or_else(|e| e.into_inner());
        let w = keys
            .entry(key_id.to_owned())
            .or_insert_with(|| Arc::new(Mutex::new(Window::new(self.size, mark.unwrap_or(0)))));
        Ok(w.clone())
    }
}

/// An RFC 6479 window: `size` bits in `size / 64 + 1` blocks of a ring, so that sliding
/// clears whole blocks. Numbers at or below `floor` are refused outright.
#[derive(Debug, Clone)]
pub struct Window {
    size: u64,
    blocks: Box<[u64]>,
    /// Highest number accepted (or the floor, before any).
    top: u64,
    /// Everything at or below it counts as seen (the bound persisted before a restart; 0 for a
    /// new key, so numbers start at 1).
    floor: u64,
    /// The persisted bound: every accepted number is at or below it.
    bound: u64,
}

impl Window {
    pub fn new(size: u64, floor: u64) -> Self {
        Window {
            size,
            blocks: vec![0; (size / 64 + 1) as usize].into_boxed_slice(),
            top: floor,
            floor,
            bound: floor,
        }
    }

    /// Whether `seq` may be accepted now, without accepting it.
    pub fn admissible(&self, seq: u64) -> Result<(), SequenceRefusal> {
        if seq <= self.floor {
            return Err(SequenceRefusal::AtOrBelowBound);
        }
        if seq > self.top {
            return Ok(());
        }
        if self.top - seq >= self.size {
            return Err(SequenceRefusal::TooOld);
        }
        let (block, bit) = self.position(seq);
        if self.blocks[block] & bit != 0 {
            return Err(SequenceRefusal::Seen);
        }
        Ok(())
    }

    /// Marks `seq` seen, sliding the window if it is the new top. Call after `admissible`.
    pub fn set(&mut self, seq: u64) {
        if seq > self.top {
            let n = self.blocks.len() as u64;
            let (old, new) = (self.top / 64, seq / 64);
            // Clear the blocks the window slides over (all of them for a long jump).
            for b in (old + 1)..=new.min(old + n) {
                self.blocks[(b % n) as usize] = 0;
            }
            self.top = seq;
        }
        let (block, bit) = self.position(seq);
        self.blocks[block] |= bit;
    }

    /// Accepts `seq` once: `admissible` then `set`.
    pub fn accept(&mut self, seq: u64) -> bool {
        let ok = self.admissible(seq).is_ok();
        if ok {
            self.set(seq);
        }
        ok
    }

    fn position(&self, seq: u64) -> (usize, u64) {
        let n = self.blocks.len() as u64;
        (((seq / 64) % n) as usize, 1 << (seq % 64))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use proptest::prelude::*;

    use super::*;
    use crate::store::SledStore;

    #[test]
    fn rfc6479_window_accepts_once_in_any_order_and_refuses_the_too_old() {
        let mut w = Window::new(1024, 0);
        assert!(!w.accept(0), "numbers start at 1");
        assert!(w.accept(5));
        assert!(w.accept(3));
        assert!(!w.accept(5));
        assert!(w.accept(2000));
        assert!(!w.accept(976), "2000 - 976 = 1024: outside");
        assert!(w.accept(977));
        assert!(!w.accept(977));
        assert!(w.accept(1_000_000));
        assert!(!w.accept(2000));
        assert!(w.accept(999_999));
    }

    #[test]
    fn the_persisted_bound_survives_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store: Arc<dyn Store> = Arc::new(SledStore::open(dir.path()).unwrap());
            let w = Windows::new(1024, 100, store.clone());
            w.check("k1", 1).unwrap();
            w.check("k1", 7).unwrap();
            assert_eq!(store.sequence_mark("k1").unwrap(), Some(101));
            w.check("k1", 150).unwrap();
            assert_eq!(store.sequence_mark("k1").unwrap(), Some(250));
        }
        let store: Arc<dyn Store> = Arc::new(SledStore::open(dir.path()).unwrap());
        let w = Windows::new(1024, 100, store.clone());
        for seen_or_leased in [1, 7, 150, 149, 250] {
            let denial = w.check("k1", seen_or_leased).unwrap_err();
            assert_eq!(denial.stage, Stage::Replay);
        }
        // Legitimate: above the bound.
        w.check("k1", 251).unwrap();
        assert_eq!(store.sequence_mark("k1").unwrap(), Some(351));
    }

    proptest! {
        #[test]
        fn a_number_is_accepted_at_most_once_and_never_below_the_floor(
            floor in 0u64..3000,
            seqs in prop::collection::vec(0u64..6000, 1..400),
        ) {
            let mut w = Window::new(1024, floor);
            let mut accepted = std::collections::HashSet::new();
            let mut top = floor;
            for seq in seqs {
                let fresh = seq > floor && !accepted.contains(&seq) && (seq > top || top - seq < 1024);
                let ok = w.accept(seq);
                prop_assert_eq!(ok, fresh, "seq {} top {}", seq, top);
                if ok {
                    accepted.insert(seq);
                    top = top.max(seq);
                }
            }
        }
    }
}
