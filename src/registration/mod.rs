//! Registration through the gateway (TS-0001 §10.1.1.2): a create of an `<AE>` (ty 2) or a
//! `<remoteCSE>` (ty 16) by an originator the repository does not know — `fr` absent, empty,
//! `C`, `S`, or an id the registrant chose — is a registration. The guard decides it (Cedar
//! action `register`, see [`crate::guard`]); this module reads what the registrant asks for,
//! and, when the upstream accepts (2001), enrols the id the CSE assigned as a node, durably,
//! before the answer goes back. A delete of its own resource by a node that registered here
//! (2002) removes it again.
//!
//! In: the request content (JSON) and, after the forward, the upstream's `rsc` and content.
//! Out: [`Registration`] (what to enrol), [`FollowUp`] (what a permitted request leaves to do
//! once the upstream answered), and [`Registrar::complete`], which writes the repository.

mod content;

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::primitive::{Operation, Peer, Primitive};
use crate::store::{Batch, Node, NodeKind, Registered, Repository, StoreError};
pub use content::{Asked, Assigned};

/// oneM2M resource types that are registrations when an unenrolled originator creates them.
pub const TY_AE: u16 = 2;
pub const TY_REMOTE_CSE: u16 = 16;

/// The kind of node a create of `p` registers, if `p` is a create of an AE or remoteCSE.
pub fn kind(p: &Primitive) -> Option<NodeKind> {
    match (p.op, p.ty) {
        (Operation::Create, Some(TY_AE)) => Some(NodeKind::Ae),
        (Operation::Create, Some(TY_REMOTE_CSE)) => Some(NodeKind::Cse),
        _ => None,
    }
}

/// Whether a request may come without an originator: only a create of an AE or remoteCSE
/// (TS-0004: an AE may register without `fr`; the CSE assigns the AE-ID). Decoders read an
/// absent `fr` there as empty.
pub fn may_omit_originator(op: Operation, ty: Option<u16>) -> bool {
    op == Operation::Create && matches!(ty, Some(TY_AE | TY_REMOTE_CSE))
}

/// A registration the guard permitted: what the gateway enrols if the upstream accepts it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Registration {
    pub kind: NodeKind,
    /// `fr` as the registrant sent it.
    pub requested: String,
    /// The canonical target: where the new resource is created.
    pub parent: String,
    pub peer: Peer,
    /// The groups the new node gets: `[gateway] registration_groups` and the permitting
    /// policies' `@groups` annotations.
    pub groups: Vec<String>,
    pub policies: Vec<String>,
    /// The enrolled CSE the registration came through (its certificate), for a transit AE.
    pub registrar: Option<String>,
}

/// What a permitted request leaves to do once the upstream has answered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FollowUp {
    /// Enrol the assigned id on 2001.
    Register(Registration),
    /// Remove this node on 2002: it deleted its own resource.
    Deregister(String),
}

/// What became of a follow-up.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Completed {
    /// The upstream did not accept; nothing changed.
    Nothing,
    /// This node was enrolled.
    Enrolled(String),
    /// This node was removed.
    Removed(String),
}

#[derive(Debug, thiserror::Error)]
pub enum RegistrationError {
    #[error("the CSE accepted the registration but its answer names no {0}")]
    NoAssignedId(&'static str),
    #[error("the CSE assigned {0:?}, which the repository holds as a configured node")]
    Taken(String),
    #[error("the repository could not record the registration: {0}")]
    Store(#[from] StoreError),
}

/// Writes registrations and deregistrations to the repository.
pub struct Registrar {
    repository: Arc<Repository>,
}

impl Registrar {
    pub fn new(repository: Arc<Repository>) -> Self {
        Registrar { repository }
    }

    /// Completes `follow_up` now that the upstream answered `rsc` with `content`. An error
    /// means the upstream accepted a registration that the gateway could not record: the
    /// registrant must not be told it succeeded.
    pub fn complete(
        &self,
        follow_up: &FollowUp,
        rsc: Option<u16>,
        content: &[u8],
    ) -> Result<Completed, RegistrationError> {
        match follow_up {
            FollowUp::Register(r) if rsc == Some(2001) => self.enrol(r, content),
            FollowUp::Deregister(id) if rsc == Some(2002) => {
                self.repository.apply(&Batch::new().remove_node(id))?;
                Ok(Completed::Removed(id.clone()))
            }
            _ => Ok(Completed::Nothing),
        }
    }

    fn enrol(&self, r: &Registration, content: &[u8]) -> Result<Completed, RegistrationError> {
        let assigned = Assigned::read(r.kind, content)
            .ok_or(RegistrationError::NoAssignedId(content::id_member(r.kind)))?;
        let nodes = self.repository.nodes();
        if nodes
            .get(&assigned.id)?
            .is_some_and(|n| n.registered.is_none())
        {
            return Err(RegistrationError::Taken(assigned.id));
        }
        let mut node = Node::new(&assigned.id, r.kind, r.groups.clone(), unix_now());
        node.registrar.clone_from(&r.registrar);
        node.registered = Some(Registered {
            at: unix_now(),
            source: r.peer.addr.to_string(),
            protocol: r.peer.protocol.as_str().to_owned(),
            identity: r.peer.tls_identity.clone(),
            requested: r.requested.clone(),
            resource: format!("{}/{}", r.parent, assigned.rn),
            policies: r.policies.clone(),
        });
        self.repository.apply(&Batch::new().put_node(node))?;
        Ok(Completed::Enrolled(assigned.id))
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests;
