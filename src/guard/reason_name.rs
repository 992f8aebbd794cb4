//! The fixed vocabulary of reason names: one `snake_case` name per [`Reason`] variant, with
//! none of the variant's facts. Misbehaviour reports carry these names (docs/reports.md), so
//! that nothing a device sent (an id it claimed, a target, a timestamp) leaves the gateway in
//! one; [`NAMES`] is the whole list a reader accepts.

use super::reason::Reason;

/// Every reason name, in the order of [`Reason`]'s variants.
pub const NAMES: [&str; 42] = [
    "certificate_mismatch",
    "certificate_required",
    "certificate_bound",
    "unbound",
    "session_claims",
    "gateway_deactivated",
    "repository_stale",
    "audit_unavailable",
    "inactive",
    "unknown_originator",
    "registrant_only",
    "repository",
    "check_value_required",
    "check_value_malformed",
    "unknown_key",
    "key_not_enrolled",
    "mac_not_base64",
    "check_value_mismatch",
    "sequence_unavailable",
    "timestamp_missing",
    "timestamp_unreadable",
    "timestamp_stale",
    "timestamp_ahead",
    "request_id_seen",
    "replay_node_full",
    "replay_full",
    "no_sequence_repository",
    "sequence_refused",
    "sequence_bound",
    "token_ids_unresolvable",
    "token_required",
    "too_many_tokens",
    "token_invalid",
    "implausible",
    "unevaluable",
    "no_policy_permits",
    "forbidden",
    "policy_evaluation",
    "policy_request",
    "unresolved",
    "unresolved_at_guard",
    "gateway_removed",
];

impl Reason {
    /// The reason's name in the fixed vocabulary ([`NAMES`]).
    pub fn name(&self) -> &'static str {
        NAMES[self.index()]
    }

    fn index(&self) -> usize {
        match self {
            Reason::CertificateMismatch { .. } => 0,
            Reason::CertificateRequired { .. } => 1,
            Reason::CertificateBound { .. } => 2,
            Reason::Unbound { .. } => 3,
            Reason::SessionClaims(_) => 4,
            Reason::GatewayDeactivated => 5,
            Reason::RepositoryStale { .. } => 6,
            Reason::AuditUnavailable => 7,
            Reason::Inactive { .. } => 8,
            Reason::UnknownOriginator { .. } => 9,
            Reason::RegistrantOnly { .. } => 10,
            Reason::Repository(_) => 11,
            Reason::CheckValueRequired { .. } => 12,
            Reason::CheckValueMalformed => 13,
            Reason::UnknownKey { .. } => 14,
            Reason::KeyNotEnrolled { .. } => 15,
            Reason::MacNotBase64 => 16,
            Reason::CheckValueMismatch { .. } => 17,
            Reason::SequenceUnavailable { .. } => 18,
            Reason::TimestampMissing => 19,
            Reason::TimestampUnreadable { .. } => 20,
            Reason::TimestampStale { .. } => 21,
            Reason::TimestampAhead { .. } => 22,
            Reason::RequestIdSeen { .. } => 23,
            Reason::ReplayNodeFull { .. } => 24,
            Reason::ReplayFull => 25,
            Reason::NoSequenceRepository => 26,
            Reason::SequenceRefused { .. } => 27,
            Reason::SequenceBound { .. } => 28,
            Reason::TokenIdsUnresolvable => 29,
            Reason::TokenRequired { .. } => 30,
            Reason::TooManyTokens { .. } => 31,
            Reason::Token { .. } => 32,
            Reason::Implausible { .. } => 33,
            Reason::Unevaluable { .. } => 34,
            Reason::NoPolicyPermits { .. } => 35,
            Reason::Forbidden { .. } => 36,
            Reason::PolicyEvaluation(_) => 37,
            Reason::PolicyRequest(_) => 38,
            Reason::Unresolved(_) => 39,
            Reason::UnresolvedAtGuard => 40,
            Reason::GatewayRemoved => 41,
        }
    }
}

/// Whether `name` is in the vocabulary.
pub fn is_name(name: &str) -> bool {
    NAMES.contains(&name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_distinct_snake_case() {
        let mut seen = std::collections::HashSet::new();
        for name in NAMES {
            assert!(seen.insert(name), "{name} twice");
            assert!(
                name.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'),
                "{name}"
            );
        }
        assert_eq!(Reason::UnresolvedAtGuard.name(), "unresolved_at_guard");
        assert_eq!(Reason::MacNotBase64.name(), "mac_not_base64");
        use crate::guard::Stage::*;
        let stages = [
            Identity,
            Gateway,
            Status,
            CheckValue,
            Replay,
            Token,
            Plausibility,
            Policy,
            Audit,
            Target,
        ];
        let names: Vec<&str> = stages.iter().map(|s| s.as_str()).collect();
        assert_eq!(names, crate::guard::Stage::NAMES);
    }
}
