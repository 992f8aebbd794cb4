//! The status feed (docs/feed.md): the signed, append-only sequence of records by which the
//! authority (the IN side) tells gateways which nodes, keys and tokens to trust, and whether
//! the gateway itself may forward (TS-0003 §7.2.3, §7.2.4, §7.9).
//!
//! In: compact JWS records, heads, snapshots and acks, from any transport. Out: verified,
//! typed values, or a [`FeedError`] that says what was wrong. `keys` holds the key material,
//! `jws` the signatures, `seal` the secrets sealed to one gateway, `record` the payloads, and
//! `follow` the chain a gateway extends. Nothing here does I/O; the authority and the
//! gateway's sync build on it.

pub mod check;
pub mod follow;
pub mod jws;
pub mod keys;
pub mod record;
pub mod seal;
#[cfg(test)]
mod tests;

pub use follow::{Behind, Position};
pub use keys::{SealingKey, SigningKey, VerifyingKey};
pub use record::{
    Ack, Body, GatewayBody, GatewayStatus, Head, IdBody, IssuerBody, IssuerIdBody, KeyBody,
    NodeBody, Record, Signed, Snapshot, TokenBody,
};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FeedError {
    #[error("{typ} refused: {detail}")]
    Signature { typ: String, detail: String },
    #[error("{what} malformed: {detail}")]
    Malformed { what: String, detail: String },
    #[error("{what} larger than {limit} bytes")]
    TooLarge { what: String, limit: usize },
    #[error("sealed secret refused: {detail}")]
    Sealed { detail: String },
    #[error("chain broken: {detail}")]
    Chain { detail: String },
    #[error("head refused: {detail}")]
    Head { detail: String },
}
