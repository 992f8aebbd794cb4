//! What the authority does about reports (`[[authority.reports.rules]]`, docs/reports.md
//! "Rules"): after each new report about a node, every rule counts the reports about it
//! received within its `window_s` since the last action a rule took on that node; `reports`
//! of them from at least `gateways` distinct gateways suspend the node — a `node.put` with
//! status `suspended`, published only if the node is `active` (an operator's suspension,
//! deactivation or revocation stands), once per set of reports: the reports that led to one
//! action never count towards another.

use super::ops::{set_status, OpError};
use super::publish::{now_s, Feed};
use super::reports::{Action, Held};
use crate::store::NodeStatus;

/// Most reports about one node a rule looks at: the newest ones within its window. So a
/// rule's `reports` is at most this.
pub const MAX_SEEN: usize = 1000;

/// One rule, validated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReportRule {
    pub name: String,
    /// Reports needed …
    pub reports: u64,
    /// … from at least this many distinct gateways …
    pub gateways: u64,
    /// … received within this many seconds.
    pub window_s: u64,
}

/// Applies `rules` after `held` was stored; the action taken, if any. Blocking.
pub fn apply(feed: &Feed, rules: &[ReportRule], held: &Held) -> Result<Option<Action>, OpError> {
    let reports = feed.state().reports();
    let since = reports.last_action(&held.node)?;
    let now = now_s();
    for rule in rules {
        // Newest first, up to the window's edge and at most MAX_SEEN: a rule's cost per report
        // is bounded, however many reports a gateway sends about one node.
        let recent: Vec<Held> = reports
            .newest(&held.node, since, MAX_SEEN)?
            .into_iter()
            .take_while(|r| r.received_at + rule.window_s >= now)
            .collect();
        let mut gateways: Vec<&str> = recent.iter().map(|r| r.gateway.as_str()).collect();
        gateways.sort_unstable();
        gateways.dedup();
        if (recent.len() as u64) < rule.reports || (gateways.len() as u64) < rule.gateways {
            continue;
        }
        let (seq, _, suspended) = feed.publish(|state| match state.node(&held.node)? {
            Some(node) if node.status == NodeStatus::Active => {
                Ok((set_status(state, &held.node, NodeStatus::Suspended)?, true))
            }
            _ => Ok((Default::default(), false)),
        })?;
        if !suspended {
            tracing::info!(node = %held.node, rule = %rule.name, "report rule matched; the node is not active, left as it is");
            return Ok(None);
        }
        let action = Action {
            rule: rule.name.clone(),
            status: NodeStatus::Suspended.to_string(),
            seq,
            at: now,
        };
        reports.acted(held.pos, action.clone())?;
        tracing::warn!(node = %held.node, rule = %rule.name, reports = recent.len(), gateways = gateways.len(), feed.seq = seq, "node suspended by report rule");
        return Ok(Some(action));
    }
    Ok(None)
}
