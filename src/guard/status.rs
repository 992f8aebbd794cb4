//! Stage 2, node status: only known, active originators pass. An unreadable repository denies.

use std::sync::Arc;

use super::{Denial, Stage};
use crate::store::{Node, NodeStatus, Nodes};

pub fn check(nodes: &Nodes, fr: &str) -> Result<Arc<Node>, Denial> {
    match nodes.get(fr) {
        Ok(Some(node)) if node.status == NodeStatus::Active => Ok(node),
        Ok(Some(node)) => Err(Denial::new(
            Stage::Status,
            format!("originator {fr:?} is {}", node.status),
        )),
        Ok(None) => Err(Denial::new(
            Stage::Status,
            format!("originator {fr:?} is unknown"),
        )),
        Err(e) => Err(Denial::new(
            Stage::Status,
            format!("repository failed: {e}"),
        )),
    }
}
