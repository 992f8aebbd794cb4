//! Administrative events: what changed the gateway's rules or standing, as opposed to what a
//! request met. Made where the change is made ([`super::Recorder::event`]) and handed to every
//! sink; the audit log records each one.

use std::time::SystemTime;

/// Who made a change.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum By {
    /// An operator, through the admin API.
    Admin,
    /// The status feed from the authority.
    Feed,
    /// A registration or deregistration through the gateway.
    Registration,
    /// The configuration, at start or on reload.
    Config,
}

impl By {
    pub fn as_str(self) -> &'static str {
        match self {
            By::Admin => "admin",
            By::Feed => "feed",
            By::Registration => "registration",
            By::Config => "config",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// The gateway started serving: its version, and how many check-value keys it holds.
    Started { version: &'static str, keys: usize },
    /// The gateway began to stop.
    Stopping,
    /// The policies were reloaded: how many are in force, or why the set in force was kept.
    PolicyReload(Result<usize, String>),
    /// A node's status was set (`active`, `suspended`, …).
    NodeStatus {
        node: String,
        status: &'static str,
        by: By,
    },
    /// A node was enrolled.
    NodeEnrolled { node: String, by: By },
    /// A node was removed from the repository.
    NodeRemoved { node: String, by: By },
    /// A token was revoked (by its `jti`).
    TokenRevoked { jti: String, by: By },
    /// A feed record was applied: its sequence number, kind (`node.put`, `key.remove`, …),
    /// the id it is about (a key by id, never its secret) and the status it sets (`node.put`,
    /// `gateway.put`).
    FeedRecord {
        seq: u64,
        kind: &'static str,
        subject: String,
        status: Option<&'static str>,
    },
    /// A feed snapshot replaced what the feed had given: its sequence number and size.
    FeedSnapshot { seq: u64, nodes: usize, keys: usize },
    /// A misbehaviour report was made and queued for the authority: its id, the node and
    /// the rule (docs/reports.md).
    ReportMade {
        id: String,
        node: String,
        rule: String,
    },
}

impl Event {
    /// The event's name in the audit log and the log (`node.status`, `feed.record`, …).
    pub fn name(&self) -> &'static str {
        match self {
            Event::Started { .. } => "start",
            Event::Stopping => "stop",
            Event::PolicyReload(_) => "policy.reload",
            Event::NodeStatus { .. } => "node.status",
            Event::NodeEnrolled { .. } => "node.enrolled",
            Event::NodeRemoved { .. } => "node.removed",
            Event::TokenRevoked { .. } => "token.revoked",
            Event::FeedRecord { .. } => "feed.record",
            Event::FeedSnapshot { .. } => "feed.snapshot",
            Event::ReportMade { .. } => "report.made",
        }
    }
}

/// An event and when it happened.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Happened {
    pub at: SystemTime,
    pub event: Event,
}
