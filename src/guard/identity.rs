//! Stage 1, identity binding: where the transport authenticated the sender (a verified client
//! certificate), the originator it claims must be that identity; where a binding bound its
//! connection to an originator (MQTT CONNECT, the request topic), `fr` must be that one.

use super::{Denial, Reason, Stage};
use crate::primitive::{Peer, Primitive};

pub fn check(p: &Primitive) -> Result<(), Denial> {
    check_claim(&p.fr, &p.peer)
}

/// `fr` claimed by a sender reached through `peer`.
pub fn check_claim(fr: &str, peer: &Peer) -> Result<(), Denial> {
    match &peer.tls_identity {
        Some(identity) if identity != fr => Err(Denial::new(
            Stage::Identity,
            Reason::CertificateMismatch {
                fr: fr.to_owned(),
                identity: identity.clone(),
            },
        )),
        _ => Ok(()),
    }
}

/// `fr` against what the binding bound the request to: each `(what, id)` must equal `fr`.
pub fn check_bound(fr: &str, bound: &[(&'static str, &str)]) -> Result<(), Denial> {
    match bound.iter().find(|(_, id)| *id != fr) {
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
