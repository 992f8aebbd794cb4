//! Why a stage denied: one variant per rule, with the facts that decided it as fields (which
//! key id, which token rule, which plausibility rule, how far and how fast, which policies).
//!
//! A [`Reason`] is for the log, the audit record and the operator; it is rendered to text only
//! there (`Display`). What the sender is told is the class of the denial, from its
//! [`super::Stage`] (see [`crate::record::Answer`]). Tests match variants, not text.

use std::net::IpAddr;

use super::token::TokenError;
use crate::store::NodeStatus;

#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum Reason {
    // Identity.
    #[error("originator {fr:?} presented a certificate for {identity:?}")]
    CertificateMismatch { fr: String, identity: String },
    #[error(
        "originator {fr:?} is bound to the certificate for {identity:?}, which it did not present"
    )]
    CertificateRequired { fr: String, identity: String },
    #[error("the certificate for {identity:?} registered as {id:?} and acts as that id only")]
    CertificateBound { identity: String, id: String },
    #[error("originator {fr:?} sent where the {what} is {id:?}")]
    Unbound {
        fr: String,
        /// What the binding bound the request to (`"session's originator"`, ...).
        what: &'static str,
        id: String,
    },
    #[error("{0}")]
    SessionClaims(ClaimError),

    // The gateway's own standing.
    #[error("this gateway is deactivated by the authority")]
    GatewayDeactivated,
    #[error("this gateway's credentials are removed by the authority: it must enrol again")]
    GatewayRemoved,
    #[error(
        "the repository is {age_s} s old (limit {limit_s} s) and {fr:?} is not in the stale group"
    )]
    RepositoryStale {
        fr: String,
        age_s: u64,
        limit_s: u64,
    },

    // The audit log.
    #[error("the audit log cannot take records (on_full = \"refuse\")")]
    AuditUnavailable,

    // Node status.
    #[error("originator {fr:?} is {status}")]
    Inactive { fr: String, status: NodeStatus },
    #[error("originator {fr:?} is unknown")]
    UnknownOriginator { fr: String },
    #[error("{fr:?} is not a node yet and may only register, not {what}")]
    RegistrantOnly { fr: String, what: String },
    #[error("repository failed: {0}")]
    Repository(String),

    // Check value.
    #[error("a check value (aus) is required for {target}")]
    CheckValueRequired { target: String },
    #[error("check value is malformed (expected <key id>.<sequence>.<mac>)")]
    CheckValueMalformed,
    #[error("unknown check-value key id {key_id:?}")]
    UnknownKey { key_id: String },
    #[error("key {key_id:?} is not enrolled for originator {fr:?}")]
    KeyNotEnrolled { key_id: String, fr: String },
    #[error("check value MAC is not base64url")]
    MacNotBase64,
    #[error("check value does not verify under key {key_id:?}")]
    CheckValueMismatch { key_id: String },
    #[error("cannot issue a sequence number for key {key_id:?}: {error}")]
    SequenceUnavailable { key_id: String, error: String },

    // Replay.
    #[error("originating timestamp (ot) is missing")]
    TimestampMissing,
    #[error("originating timestamp {ot:?} is not YYYYMMDDTHHMMSS")]
    TimestampUnreadable { ot: String },
    #[error("originating timestamp {ot} is older than {max_age_s} s")]
    TimestampStale { ot: String, max_age_s: u64 },
    #[error("originating timestamp {ot} is more than {max_skew_s} s ahead")]
    TimestampAhead { ot: String, max_skew_s: u64 },
    #[error("request id {rqi:?} from {fr:?} was already seen")]
    RequestIdSeen { fr: String, rqi: String },
    #[error("{fr:?} has {ids} request ids in the replay window (ids_per_node); refusing new ones until they expire")]
    ReplayNodeFull { fr: String, ids: usize },
    #[error(
        "the replay window is full (ids_total); refusing new request ids until old ones expire"
    )]
    ReplayFull,
    #[error("no repository for sequence numbers")]
    NoSequenceRepository,
    #[error("sequence number {seq} of key {key_id:?} {why}")]
    SequenceRefused {
        key_id: String,
        seq: u64,
        why: SequenceRefusal,
    },
    #[error("cannot {} the sequence bound: {error}", if *.write { "persist" } else { "read" })]
    SequenceBound { write: bool, error: String },

    // Token.
    #[error("token ids (tids) cannot be resolved by the gateway; present the tokens (tkns)")]
    TokenIdsUnresolvable,
    #[error("{target} requires a token; none presented")]
    TokenRequired { target: String },
    #[error("more than {max} tokens")]
    TooManyTokens { max: usize },
    /// Token `index` (0-based, in the order presented) broke `rule`.
    #[error("token {index}: {rule}")]
    Token { index: usize, rule: TokenError },

    // Plausibility.
    #[error("rule {rule:?}: {why}")]
    Implausible { rule: String, why: Implausibility },
    #[error("rule {rule:?} cannot be evaluated: {why}")]
    Unevaluable { rule: String, why: String },

    // Policy.
    #[error("no policy permits {action} {resource} by {principal}")]
    NoPolicyPermits {
        action: &'static str,
        /// The target, or the topic (quoted) of a topic request.
        resource: String,
        principal: String,
    },
    #[error("forbidden by {}", .policies.join(", "))]
    Forbidden { policies: Vec<String> },
    #[error("policy evaluation failed: {0}")]
    PolicyEvaluation(String),
    /// The Cedar request could not be built (an entity or context the engine refused).
    #[error("{0}")]
    PolicyRequest(String),

    // Target.
    #[error("{0}")]
    Unresolved(crate::target::resolve::Unresolved),
    #[error("resource-id target reached the guard unresolved")]
    UnresolvedAtGuard,
}

/// Why a sequence number was refused by its window.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SequenceRefusal {
    #[error("is at or below the persisted bound (already seen, or before a restart)")]
    AtOrBelowBound,
    #[error("is older than the window")]
    TooOld,
    #[error("was already seen")]
    Seen,
}

/// Which condition of a plausibility rule failed.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum Implausibility {
    #[error("source {peer} is outside the allowed ranges")]
    Source { peer: IpAddr },
    #[error("outside the allowed time windows")]
    OutsideWindows,
    #[error("position outside the region")]
    OutsideRegion,
    #[error("moved {:.1} km in {:.0} s ({:.0} km/h, at most {} km/h)", .km, .seconds, .kmh, .max_kmh)]
    Speed {
        km: f64,
        seconds: f64,
        kmh: f64,
        max_kmh: f64,
    },
}

/// Why a session's CONNECT binds no originator (TS-0010 §6.3).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ClaimError {
    #[error(
        "CONNECT names no originator (client id A::<id> or C::<id>, username, or certificate)"
    )]
    NoClaim,
    #[error("client id {0:?} has an empty id")]
    EmptyId(String),
    /// The claims as (what, id), in the order read.
    #[error("CONNECT claims disagree: {}", .0.iter().map(|(k, v)| format!("{k} {v:?}")).collect::<Vec<_>>().join(", "))]
    Disagree(Vec<(&'static str, String)>),
}
