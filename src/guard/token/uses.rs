//! Durable use counting for tokens with a use limit, without a disk flush per use.
//!
//! In: a token id, its limit, the repository. Out: `Ok(uses so far)` or "used up". Uses are
//! reserved in blocks: before a use beyond the reservation, the repository's count is raised
//! by a block (up to the limit) and flushed; uses inside the block are counted in memory. The
//! count on disk is therefore never below the uses made, and a crash or restart only forfeits
//! the unused rest of a block (fail closed: those uses are lost, never given back). Blocks are
//! 1/16 of the limit, between 1 and 64 uses, so a token with a small limit still flushes on
//! every use and loses nothing in a crash.

use std::sync::{Arc, Mutex};

use moka::sync::Cache;

use crate::store::{Store, StoreError};

pub struct Uses {
    leases: Cache<String, Arc<Mutex<Lease>>>,
}

/// `used` of `reserved` uses; `reserved` is what the repository holds for this process.
#[derive(Default)]
struct Lease {
    used: u64,
    reserved: u64,
}

/// Why a use was not granted.
#[derive(Debug)]
pub enum UseError {
    UsedUp { uses: u64 },
    Repository(StoreError),
}

impl Uses {
    pub fn new(capacity: u64) -> Self {
        Uses {
            leases: Cache::new(capacity),
        }
    }

    /// Counts one use of `jti` against `limit`; returns the uses so far, this one included.
    pub fn count(&self, store: &dyn Store, jti: &str, limit: u64) -> Result<u64, UseError> {
        let lease = self.leases.get_with_by_ref(jti, Arc::default);
        let mut lease = lease.lock().unwrap_or_else(|e| e.into_inner());
        if lease.used >= lease.reserved {
            if lease.reserved != 0 && lease.used >= limit {
                return Err(UseError::UsedUp {
                    uses: lease.used + 1,
                });
            }
            let block = (limit / 16)
                .clamp(1, 64)
                .min(limit.saturating_sub(lease.used).max(1));
            let total = store
                .reserve_token_uses(jti, block)
                .map_err(UseError::Repository)?;
            // Another process (or a count from before a restart) may hold uses we never saw.
            lease.used = total - block;
            lease.reserved = total;
        }
        lease.used += 1;
        if lease.used > limit {
            return Err(UseError::UsedUp { uses: lease.used });
        }
        Ok(lease.used)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::SledStore;

    #[test]
    fn uses_are_reserved_in_blocks_and_a_restart_never_gives_one_back() {
        let dir = tempfile::tempdir().unwrap();
        let store = SledStore::open(dir.path()).unwrap();
        let uses = Uses::new(10);
        // Limit 160: blocks of 10.
        for n in 1..=3 {
            assert_eq!(uses.count(&store, "t1", 160).unwrap(), n);
        }
        assert_eq!(
            store.reserve_token_uses("t1", 0).unwrap(),
            10,
            "one block on disk"
        );
        // A restart: the 7 reserved but unused uses are forfeit, none reused.
        let again = Uses::new(10);
        assert_eq!(again.count(&store, "t1", 160).unwrap(), 11);
        // Limit 3: every use is written before it is granted; the 4th is refused.
        for n in 1..=3 {
            assert_eq!(again.count(&store, "t2", 3).unwrap(), n);
            assert_eq!(store.reserve_token_uses("t2", 0).unwrap(), n);
        }
        assert!(matches!(
            again.count(&store, "t2", 3),
            Err(UseError::UsedUp { uses: 4 })
        ));
        assert!(matches!(
            Uses::new(10).count(&store, "t2", 3),
            Err(UseError::UsedUp { .. })
        ));
        // Legitimate: another token is unaffected.
        assert_eq!(again.count(&store, "t3", 3).unwrap(), 1);
    }
}
