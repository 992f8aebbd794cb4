//! A budget of log lines per second: what a flood of refused requests or flagged readings may
//! cost the log (disk, CPU). What is left out is counted and reported in the next line written.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// At most `per_second` admissions in each wall-clock second; counts the rest. Shared by the
/// denial log and the plausibility flag log.
pub struct LogBudget {
    per_second: u64,
    second: AtomicU64,
    used: AtomicU64,
    suppressed: AtomicU64,
}

impl LogBudget {
    pub fn new(per_second: u64) -> Self {
        LogBudget {
            per_second,
            second: AtomicU64::new(0),
            used: AtomicU64::new(0),
            suppressed: AtomicU64::new(0),
        }
    }

    /// `Some(lines left out since the last admitted one)`, or `None` when over budget.
    pub fn admit(&self, second: u64) -> Option<u64> {
        let current = self.second.load(Relaxed);
        if current != second
            && self
                .second
                .compare_exchange(current, second, Relaxed, Relaxed)
                .is_ok()
        {
            self.used.store(0, Relaxed);
        }
        if self.used.fetch_add(1, Relaxed) < self.per_second {
            Some(self.suppressed.swap(0, Relaxed))
        } else {
            self.suppressed.fetch_add(1, Relaxed);
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budget_admits_its_quota_then_reports_what_it_left_out() {
        let budget = LogBudget::new(3);
        let first: Vec<_> = (0..5).map(|_| budget.admit(10)).collect();
        assert_eq!(first, [Some(0), Some(0), Some(0), None, None]);
        assert_eq!(budget.admit(11), Some(2));
        assert_eq!(budget.admit(11), Some(0));
    }
}
