//! Key material and the primitives that use it: [`Secret`] (key bytes, never printed), the
//! [`KeyRing`] of enrolled keys, and [`mac`], the crate's one HMAC implementation.
//!
//! In: key records from the configuration seed and from the repository (see
//! `store::Keys`, which holds the ring in force behind an atomically swappable reference).
//! Out: a validated, immutable [`KeyRing`] snapshot that the request path reads without
//! locking. Invariants: a ring only exists if every key in it is valid (id alphabet, length)
//! and each node has at most one insert key; secrets reach logs only as their length.
//!
//! At rest, key material is stored in the local repository as the configuration gives it
//! (not encrypted): the repository directory is protected by its file mode (0700, owner only),
//! as the key files are (0600). Encryption at rest comes with the IN link, whose records carry
//! secrets encrypted to the gateway's key.

mod keyring;
pub mod mac;
mod secret;

pub use keyring::{is_key_id, CheckKey, EnrolledKey, KeyOrigin, KeyRing, KeyRingError};
pub use secret::{Secret, MIN_KEY_BYTES};
