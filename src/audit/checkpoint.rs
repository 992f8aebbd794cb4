//! Checkpoints: the gateway's signature over the chain so far. A checkpoint line's `jws` is a
//! compact JWS (EdDSA, `typ` [`TYP`], as the feed's, see docs/feed.md) over
//! `{"log":…,"count":…,"head":…,"at":…}`: the log's name, how many lines come before the
//! checkpoint, the hash of the last of them (the checkpoint line's own `prev`), and the
//! checkpoint line's `at`. Since each line's hash covers the one before, a checkpoint pins
//! every line before it.

use serde::{Deserialize, Serialize};

use crate::feed::{jws, SigningKey, VerifyingKey};

pub const TYP: &str = "m2mguard-audit-checkpoint";

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Checkpoint {
    pub log: String,
    pub count: u64,
    pub head: String,
    pub at: String,
}

impl Checkpoint {
    pub fn sign(&self, key: &SigningKey) -> String {
        let payload = serde_json::to_vec(self).expect("a checkpoint serialises");
        jws::sign(key, TYP, &payload)
    }

    /// The checkpoint `compact` signs, if `key` signed it.
    pub fn verify(compact: &str, key: &VerifyingKey) -> Result<Checkpoint, String> {
        let payload = jws::verify(compact, TYP, key).map_err(|e| e.to_string())?;
        serde_json::from_slice(&payload).map_err(|e| format!("checkpoint payload: {e}"))
    }
}
