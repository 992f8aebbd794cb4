//! The last accepted position of each node, per rule, in memory and bounded.
//!
//! In: fixes recorded when a request passed the plausibility stage. Out: the previous fix of a
//! node, for the speed check. At most `capacity` nodes per rule are remembered, least recently
//! used evicted first; a node whose fix was evicted (or that was never seen, or whose previous
//! request came before a restart) has no previous fix, so its next position is checked against
//! the region only. Size `capacity` to the number of nodes a rule covers.

use std::time::SystemTime;

use moka::policy::EvictionPolicy;
use moka::sync::Cache;

use super::geo::Point;

/// A position and when it was accepted.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Fix {
    pub point: Point,
    pub at: SystemTime,
}

pub struct Recent {
    fixes: Cache<String, Fix>,
}

impl Recent {
    pub fn new(capacity: u64) -> Self {
        Recent {
            fixes: Cache::builder()
                .max_capacity(capacity)
                .eviction_policy(EvictionPolicy::lru())
                .build(),
        }
    }

    pub fn last(&self, node: &str) -> Option<Fix> {
        self.fixes.get(node)
    }

    pub fn record(&self, node: &str, fix: Fix) {
        self.fixes.insert(node.to_owned(), fix);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembers_the_latest_fix_per_node_within_capacity() {
        let recent = Recent::new(2);
        let at = SystemTime::UNIX_EPOCH;
        let a = Point::new(1.0, 1.0).unwrap();
        let b = Point::new(2.0, 2.0).unwrap();
        recent.record("n1", Fix { point: a, at });
        recent.record("n1", Fix { point: b, at });
        assert_eq!(recent.last("n1").map(|f| f.point), Some(b));
        assert_eq!(recent.last("n2"), None);
        for i in 0..100 {
            recent.record(&format!("x{i}"), Fix { point: a, at });
        }
        recent.fixes.run_pending_tasks();
        assert!(recent.fixes.entry_count() <= 2);
    }
}
