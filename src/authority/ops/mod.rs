//! What the operator can ask of the authority, as plans for [`super::publish::Feed::publish`]:
//! the records each operation publishes and the state changes that go with them. Every
//! operation is checked against the state under the writer's lock; a refusal changes nothing.
//!
//! In: operator input (validated here) and the state. Out: a [`Plan`], or an [`OpError`]
//! that the API turns into 400, 404 or 409.

mod enrolment;
mod gateways;
mod input;
mod keys;
mod nodes;

pub use enrolment::{code_issue, enrol as gateway_enrol, sha256_hex, EnrolInput, Enrolled};
pub use gateways::{gateway_add, gateway_remove, gateway_status};
pub use input::{decode_hex, is_gateway_id, GatewayInput, KeyInput, NodeFields, NodeInput};
pub use keys::{key_add, key_body, key_remove, key_rotate, token_revoke};
pub use nodes::{enrol, remove, set_status, update};

use super::publish::Plan;
use super::state::{Change, StateError};
use crate::feed::Body;

#[derive(Debug, thiserror::Error)]
pub enum OpError {
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    /// A credential that does not authenticate (a wrong, used or expired enrolment code).
    #[error("{0}")]
    Unauthorized(String),
    #[error(transparent)]
    State(#[from] StateError),
}

/// A node to enrol, or the new kind, groups and registrar of one.
/// The audience of every gateway.
const ALL: &str = "*";

fn all() -> Vec<String> {
    vec![ALL.to_owned()]
}

fn one(records: Vec<(Vec<String>, Body)>, changes: Vec<Change>) -> Plan {
    Plan { records, changes }
}
