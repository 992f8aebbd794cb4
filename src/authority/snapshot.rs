//! A gateway's snapshot (docs/feed.md "Snapshots"): every node, every key sealed to that
//! gateway alone, the revoked tokens, the token issuers and its own status, at the feed's current position,
//! read under the writer's lock so that it is the state of exactly that record.

use super::ops::{key_body, OpError};
use super::publish::{now_s, Feed};
use crate::feed::Snapshot;

/// The signed snapshot for `gateway`. The state is read under the writer's lock; the
/// sealing (one X25519 agreement per key) is done after it is released.
pub fn for_gateway(feed: &Feed, gateway: &str) -> Result<String, OpError> {
    let (gw, keys, mut snapshot) = feed.read(|state, current| {
        let gw = state
            .gateway(gateway)?
            .ok_or_else(|| OpError::NotFound(format!("no gateway {gateway:?}")))?;
        let snapshot = Snapshot {
            feed: feed.id.clone(),
            gateway: gateway.to_owned(),
            seq: current.seq,
            hash: current.hash.clone(),
            at: now_s(),
            status: gw.status,
            nodes: state.nodes()?,
            keys: Vec::new(),
            revoked: state.revoked()?,
            issuers: state.issuers()?,
        };
        Ok::<_, OpError>((gw, state.keys()?, snapshot))
    })?;
    // A removed gateway's snapshot holds no secret.
    let keys = if gw.status == crate::feed::GatewayStatus::Removed {
        Vec::new()
    } else {
        keys
    };
    snapshot.keys = keys
        .iter()
        .map(|(id, key)| key_body(id, key, [&gw]))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(snapshot.sign(feed.key()))
}
