//! What a running gateway's operations act on: the node repository, the policy set, the
//! metrics, the token stage and the decision stream. The gateway builds it; the admin API and
//! the SIGHUP handler use it; nothing here knows how the gateway is wired.

use std::sync::Arc;

use crate::guard::Tokens;
use crate::metrics::Metrics;
use crate::policy::{Policies, PolicyError};
use crate::record::{Event, Overflow, Queue, Recorder, Records};
use crate::store::{Keys, Nodes};

/// What the admin API and the gateway share.
pub struct State {
    pub nodes: Arc<Nodes>,
    pub policies: Arc<Policies>,
    pub metrics: Arc<Metrics>,
    /// The token stage, for revocation through the admin API.
    pub tokens: Arc<Tokens>,
    /// The key ring in force, changed through the repository (the IN sync, later).
    pub keys: Arc<Keys>,
    /// Every request's record, for the sinks attached to it (the demo; later the audit log).
    pub recorder: Arc<Recorder>,
}

impl State {
    /// Attaches a queue of `capacity` records named `sink` (its lost records are counted as
    /// `m2mguard_records_lost_total{sink}`) and returns its consumer's end; see
    /// [`crate::record::queue`] for what `overflow` does when it is full.
    pub fn records(&self, sink: &'static str, capacity: usize, overflow: Overflow) -> Records {
        let (queue, records) = Queue::new(capacity, overflow, self.metrics.records_lost(sink));
        self.recorder.attach(Arc::new(queue));
        records
    }

    /// Reloads the policies and records the outcome.
    pub fn reload_policies(&self) -> Result<usize, Vec<PolicyError>> {
        let result = self.policies.reload();
        match &result {
            Ok(count) => tracing::info!(policies = count, "policies reloaded"),
            Err(errors) => {
                tracing::warn!(errors = %policy_errors(errors), "policy reload failed; keeping the policies in force")
            }
        }
        self.metrics
            .policy_reload(result.as_ref().map(|&n| n).map_err(|_| ()));
        let recorded = result.as_ref().map(|&n| n).map_err(|e| policy_errors(e));
        self.recorder.event(Event::PolicyReload(recorded));
        result
    }
}

/// Policy errors, one indented line each.
pub fn policy_errors(errors: &[PolicyError]) -> String {
    errors
        .iter()
        .map(|e| format!("  {e}"))
        .collect::<Vec<_>>()
        .join("\n")
}
