//! Stage 2, node status: only known, active originators pass. An unreadable repository denies.

use std::sync::Arc;

use super::{Denial, Reason, Stage};
use crate::store::{Node, NodeStatus, Nodes};

pub fn check(nodes: &Nodes, fr: &str) -> Result<Arc<Node>, Denial> {
    match nodes.get(fr) {
        Ok(Some(node)) if node.status == NodeStatus::Active => Ok(node),
        Ok(Some(node)) => Err(Denial::new(
            Stage::Status,
            Reason::Inactive {
                fr: fr.to_owned(),
                status: node.status,
            },
        )),
        Ok(None) => Err(Denial::new(
            Stage::Status,
            Reason::UnknownOriginator { fr: fr.to_owned() },
        )),
        Err(e) => Err(Denial::new(
            Stage::Status,
            Reason::Repository(e.to_string()),
        )),
    }
}
