//! Node operations: each publishes the node's whole record (`node.put`), or its removal.

use super::input::{check_node, NodeInput};
use super::{all, one, OpError};
use crate::authority::publish::Plan;
use crate::authority::state::{Change, State};
use crate::feed::{Body, IdBody, NodeBody};
use crate::store::NodeStatus;

pub fn enrol(state: &State, input: NodeInput) -> Result<Plan, OpError> {
    check_node(&input)?;
    if state.node(&input.id)?.is_some() {
        return Err(OpError::Conflict(format!(
            "node {:?} is enrolled already",
            input.id
        )));
    }
    let node = NodeBody {
        id: input.id,
        kind: input.kind,
        groups: input.groups,
        status: NodeStatus::Active,
        registrar: input.registrar,
    };
    Ok(put_node(node))
}

pub fn update(state: &State, input: NodeInput) -> Result<Plan, OpError> {
    check_node(&input)?;
    let old = existing_node(state, &input.id)?;
    let node = NodeBody {
        id: input.id,
        kind: input.kind,
        groups: input.groups,
        status: old.status,
        registrar: input.registrar,
    };
    Ok(put_node(node))
}

/// Suspend, deactivate, activate or revoke. Revocation is final.
pub fn set_status(state: &State, id: &str, status: NodeStatus) -> Result<Plan, OpError> {
    let mut node = existing_node(state, id)?;
    if node.status == NodeStatus::Revoked && status != NodeStatus::Revoked {
        return Err(OpError::Conflict(format!(
            "node {id:?} is revoked; a revoked node stays revoked (remove it and enrol it anew)"
        )));
    }
    node.status = status;
    Ok(put_node(node))
}

/// `key.remove` for each of the node's keys, then `node.remove`.
pub fn remove(state: &State, id: &str) -> Result<Plan, OpError> {
    existing_node(state, id)?;
    let mut plan = Plan::default();
    for (key_id, key) in state.keys()? {
        if key.node == id {
            plan.records
                .push((all(), Body::KeyRemove(IdBody { id: key_id.clone() })));
            plan.changes.push(Change::RemoveKey(key_id));
        }
    }
    plan.records
        .push((all(), Body::NodeRemove(IdBody { id: id.to_owned() })));
    plan.changes.push(Change::RemoveNode(id.to_owned()));
    Ok(plan)
}

fn put_node(node: NodeBody) -> Plan {
    one(
        vec![(all(), Body::NodePut(node.clone()))],
        vec![Change::PutNode(node)],
    )
}

pub(super) fn existing_node(state: &State, id: &str) -> Result<NodeBody, OpError> {
    state
        .node(id)?
        .ok_or_else(|| OpError::NotFound(format!("no node {id:?}")))
}
