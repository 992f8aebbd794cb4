//! What the message checks established about one request, for the policy stage.
//!
//! In: the results of the check-value, replay, token and plausibility stages. Out:
//! [`Findings`], which the policy stage turns into Cedar context (`context.checks`,
//! `context.token`, `context.flags`) and into its decision-cache key, so that operators can
//! require a check in policy as well as in `[checks]`.

use std::sync::Arc;

/// The verified contents of an access-control token, as the policy sees them.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct TokenGrant {
    /// `iss`, exactly as configured for the issuer.
    pub issuer: String,
    /// `jti`, the token id.
    pub id: String,
    /// Resource ids the token's permissions (`tkps`) name, in order, without duplicates.
    pub resources: Vec<String>,
    /// Operations the token's permissions allow (`create` … `notify`), without duplicates.
    pub operations: Vec<String>,
}

/// Outcome of the message checks that passed. Every field is `false`/empty when a check did
/// not run because nothing required it and the request carried nothing to check.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Findings {
    /// A check value verified under the originator's key (and its sequence number was fresh).
    pub check_value: bool,
    /// `ot` lay within the window and the (`fr`, `rqi`) pair was new.
    pub timestamp: bool,
    /// The verified token, if one was presented.
    pub token: Option<Arc<TokenGrant>>,
    /// Names of plausibility rules that flagged the request without denying it.
    pub flags: Vec<String>,
}
