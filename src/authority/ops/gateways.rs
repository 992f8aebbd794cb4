//! Gateway operations: registering one (no record), its status and its removal
//! (`gateway.put` to it alone).

use super::input::{is_gateway_id, GatewayInput};
use super::{one, OpError};
use crate::authority::publish::Plan;
use crate::authority::state::{Change, State, StoredGateway};
use crate::feed::keys::parse_hex32;
use crate::feed::{Body, GatewayBody, GatewayStatus};

/// Registers a gateway (no record: it starts from a snapshot).
pub fn gateway_add(state: &State, input: GatewayInput) -> Result<Plan, OpError> {
    if !is_gateway_id(&input.id) {
        return Err(OpError::Invalid(format!(
            "{:?} is not a gateway id (expected 1 to 64 of A-Z a-z 0-9 . _ -)",
            input.id
        )));
    }
    let (sign, seal) = check_keys(&input.sign, &input.seal)?;
    if state.gateway(&input.id)?.is_some() {
        return Err(OpError::Conflict(format!(
            "gateway {:?} exists already",
            input.id
        )));
    }
    let gateway = StoredGateway {
        id: input.id,
        sign,
        seal,
        status: GatewayStatus::Active,
        confirmed: None,
        tls: None,
        removed_at: None,
    };
    Ok(one(Vec::new(), vec![Change::PutGateway(gateway)]))
}

/// A gateway's public keys, checked (64 hex digits each; a sealing key that can be sealed
/// to) and lowercased.
pub(super) fn check_keys(sign: &str, seal: &str) -> Result<(String, String), OpError> {
    for (what, value) in [("sign", sign), ("seal", seal)] {
        parse_hex32(value, what).map_err(|_| {
            OpError::Invalid(format!(
                "{what} is not 64 hex digits (a 32-byte public key)"
            ))
        })?;
    }
    // A low-order X25519 point would make every later key.put fail to seal.
    let point = parse_hex32(seal, "seal").map_err(|_| OpError::Invalid("seal".into()))?;
    let probe = crate::feed::SealingKey::from_scalar(crate::feed::keys::random32());
    if probe.agree(&point).is_none() {
        return Err(OpError::Invalid(
            "seal is a low-order X25519 point: nothing could be sealed to it".into(),
        ));
    }
    Ok((sign.to_ascii_lowercase(), seal.to_ascii_lowercase()))
}

/// `gateway.put` for that gateway alone.
pub fn gateway_status(state: &State, id: &str, status: GatewayStatus) -> Result<Plan, OpError> {
    let mut gateway = state
        .gateway(id)?
        .ok_or_else(|| OpError::NotFound(format!("no gateway {id:?}")))?;
    if gateway.status == GatewayStatus::Removed {
        return Err(OpError::Conflict(format!(
            "gateway {id:?} is removed: it must enrol again"
        )));
    }
    gateway.status = status;
    Ok(one(
        vec![(
            vec![id.to_owned()],
            Body::GatewayPut(GatewayBody {
                id: id.to_owned(),
                status,
            }),
        )],
        vec![Change::PutGateway(gateway)],
    ))
}

/// Removes a gateway's credentials: `gateway.put` status `removed` to it alone. It is
/// forgotten when it acks that record; no secret is sealed to it from now on.
pub fn gateway_remove(state: &State, id: &str) -> Result<Plan, OpError> {
    let mut gateway = state
        .gateway(id)?
        .ok_or_else(|| OpError::NotFound(format!("no gateway {id:?}")))?;
    if gateway.status == GatewayStatus::Removed {
        return Err(OpError::Conflict(format!(
            "gateway {id:?} is removed already"
        )));
    }
    // Planned under the writer's lock: the record goes right after the tip.
    let (tip, _) = state.tip()?;
    gateway.status = GatewayStatus::Removed;
    gateway.removed_at = Some(tip + 1);
    Ok(one(
        vec![(
            vec![id.to_owned()],
            Body::GatewayPut(GatewayBody {
                id: id.to_owned(),
                status: GatewayStatus::Removed,
            }),
        )],
        vec![Change::PutGateway(gateway)],
    ))
}
