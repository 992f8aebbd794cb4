//! Stage 1, identity binding: where the transport authenticated the sender (a verified client
//! certificate), the originator it claims must be that identity.

use super::{Denial, Stage};
use crate::primitive::Primitive;

pub fn check(p: &Primitive) -> Result<(), Denial> {
    match &p.peer.tls_identity {
        Some(identity) if *identity != p.fr => Err(Denial::new(
            Stage::Identity,
            format!(
                "originator {:?} presented a certificate for {identity:?}",
                p.fr
            ),
        )),
        _ => Ok(()),
    }
}
