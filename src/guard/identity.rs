//! Stage 1, identity binding: where the transport authenticated the sender (a verified client
//! certificate), the originator it claims must be that identity — or the id that certificate
//! registered as, or an AE whose registrar is the CSE the certificate names (transit). An id
//! that registered with a certificate is bound to it: without that certificate it is refused.
//! Where a binding bound its connection to an originator (MQTT CONNECT, the request topic),
//! `fr` must be that one, or an AE whose registrar it is.

use super::{status, Denial, Reason, Stage};
use crate::primitive::{Peer, Primitive};
use crate::store::{Node, NodeKind, Nodes};

/// `p.fr` as claimed through `p.peer`; `node` is fr's record.
pub fn check(p: &Primitive, node: Option<&Node>, nodes: &Nodes) -> Result<(), Denial> {
    check_claim(&p.fr, &p.peer, node, nodes)
}

/// `fr` claimed by a sender reached through `peer`; `node` is fr's record.
pub fn check_claim(
    fr: &str,
    peer: &Peer,
    node: Option<&Node>,
    nodes: &Nodes,
) -> Result<(), Denial> {
    let bound = node.and_then(Node::bound_identity);
    let refused = |reason| Err(Denial::new(Stage::Identity, reason));
    match (peer.tls_identity.as_deref(), bound) {
        (None, None) => Ok(()),
        (Some(identity), None) if identity == fr => Ok(()),
        (Some(identity), Some(b)) if identity == b => Ok(()),
        (Some(identity), _) if through_registrar(node, identity, nodes) => Ok(()),
        (None, Some(b)) => refused(Reason::CertificateRequired {
            fr: fr.to_owned(),
            identity: b.to_owned(),
        }),
        (Some(identity), _) => refused(Reason::CertificateMismatch {
            fr: fr.to_owned(),
            identity: identity.to_owned(),
        }),
    }
}

/// A registrant presenting a certificate: it may not already be bound to an enrolled node
/// (that certificate acts as that id only).
pub fn check_registrant(peer: &Peer, nodes: &Nodes) -> Result<(), Denial> {
    let Some(identity) = peer.tls_identity.as_deref() else {
        return Ok(());
    };
    match nodes.bound_to(identity) {
        Ok(None) => Ok(()),
        Ok(Some(id)) => Err(Denial::new(
            Stage::Identity,
            Reason::CertificateBound {
                identity: identity.to_owned(),
                id,
            },
        )),
        Err(e) => Err(Denial::new(
            Stage::Status,
            Reason::Repository(e.to_string()),
        )),
    }
}

/// `fr` against what the binding bound the request to: each `(what, id)` must equal `fr`, or
/// be the registrar of fr's node.
pub fn check_bound(
    fr: &str,
    bound: &[(&'static str, &str)],
    node: Option<&Node>,
    nodes: &Nodes,
) -> Result<(), Denial> {
    let unbound = bound
        .iter()
        .find(|(_, id)| *id != fr && !through_registrar(node, id, nodes));
    match unbound {
        Some((what, id)) => Err(Denial::new(
            Stage::Identity,
            Reason::Unbound {
                fr: fr.to_owned(),
                what,
                id: (*id).to_owned(),
            },
        )),
        None => Ok(()),
    }
}

/// Whether `via` is the registrar of `node` and an active CSE.
pub fn through_registrar(node: Option<&Node>, via: &str, nodes: &Nodes) -> bool {
    node.and_then(|n| n.registrar.as_deref()) == Some(via)
        && status::check(nodes, via).is_ok_and(|cse| cse.kind == NodeKind::Cse)
}
