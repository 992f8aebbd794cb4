//! Stage 2, node status: only known, active originators pass — and, with
//! `[gateway] unknown_originators = "policy"`, originators the repository does not know, as
//! unenrolled principals for Cedar to decide. An unreadable repository denies.

use std::sync::Arc;

use super::{Denial, Reason, Stage};
use crate::store::{Node, NodeKind, NodeStatus, Nodes, Refusal};

/// What the guard does with originators the repository does not know.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Unknown {
    /// Refused at this stage (the default).
    #[default]
    Deny,
    /// Decided by Cedar, as a principal with `enrolled == false` and no groups.
    Policy,
}

/// Who Cedar sees: a node record, and whether the repository holds it.
#[derive(Clone, Debug)]
pub struct Principal {
    pub node: Arc<Node>,
    pub enrolled: bool,
}

impl Principal {
    /// An originator the repository does not know: no groups, kind `kind`.
    pub fn unenrolled(fr: &str, kind: NodeKind) -> Principal {
        Principal {
            node: Arc::new(Node::new(fr, kind, Vec::new(), 0)),
            enrolled: false,
        }
    }
}

/// The repository's record of `fr`, if the gateway's own standing lets `fr` through (see
/// [`Standing`](crate::store::Standing)); a repository error denies.
pub fn lookup(nodes: &Nodes, fr: &str) -> Result<Option<Arc<Node>>, Denial> {
    let node = nodes
        .get(fr)
        .map_err(|e| Denial::new(Stage::Status, Reason::Repository(e.to_string())))?;
    let groups = node.as_ref().map_or(&[][..], |n| &n.groups[..]);
    nodes
        .standing()
        .admits(groups, unix_now())
        .map_err(|refusal| {
            let reason = match refusal {
                Refusal::Deactivated => Reason::GatewayDeactivated,
                Refusal::Removed => Reason::GatewayRemoved,
                Refusal::Stale { age_s, limit_s } => Reason::RepositoryStale {
                    fr: fr.to_owned(),
                    age_s,
                    limit_s,
                },
            };
            Denial::new(Stage::Gateway, reason)
        })?;
    Ok(node)
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The stage on a record looked up with [`lookup`].
pub fn standing(fr: &str, node: Option<Arc<Node>>, unknown: Unknown) -> Result<Principal, Denial> {
    match node {
        Some(node) if node.status == NodeStatus::Active => Ok(Principal {
            node,
            enrolled: true,
        }),
        Some(node) => Err(Denial::new(
            Stage::Status,
            Reason::Inactive {
                fr: fr.to_owned(),
                status: node.status,
            },
        )),
        None if unknown == Unknown::Policy => Ok(Principal::unenrolled(fr, kind_of(fr))),
        None => Err(Denial::new(
            Stage::Status,
            Reason::UnknownOriginator { fr: fr.to_owned() },
        )),
    }
}

/// Known and active: the record, or the denial.
pub fn check(nodes: &Nodes, fr: &str) -> Result<Arc<Node>, Denial> {
    standing(fr, lookup(nodes, fr)?, Unknown::Deny).map(|p| p.node)
}

/// A CSE-ID is SP-relative (`/id-mn`); AE-IDs start with `C` or `S`.
fn kind_of(fr: &str) -> NodeKind {
    if fr.starts_with('/') {
        NodeKind::Cse
    } else {
        NodeKind::Ae
    }
}
