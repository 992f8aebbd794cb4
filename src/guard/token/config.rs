//! The token stage's validated settings, built by `config` from `[tokens]`: clock skew, the
//! verified-token cache, the token request information, and the trusted issuers with their
//! algorithms and keys.

use std::time::Duration;

use crate::security::Secret;

#[derive(Debug, Clone)]
pub struct TokensConfig {
    /// How far `nbf` may lie in the future and `exp` in the past.
    pub max_skew: Duration,
    /// Verified tokens held in memory (by SHA-256 of the token text).
    pub cache_entries: u64,
    /// `tqf`: where clients obtain tokens, sent with a token denial.
    pub token_request_info: Option<String>,
    /// Token ids (`tids`) are resolved at the authority (with `[sync]`).
    pub resolve_ids: bool,
    /// Tokens the gateway obtains on behalf of legacy devices.
    pub obtain: Vec<ObtainConfig>,
    pub issuers: Vec<IssuerConfig>,
}

impl Default for TokensConfig {
    fn default() -> Self {
        TokensConfig {
            max_skew: Duration::from_secs(30),
            cache_entries: 10_000,
            token_request_info: None,
            resolve_ids: true,
            obtain: Vec::new(),
            issuers: Vec::new(),
        }
    }
}

/// The JWS algorithms a token may be signed with. There is no `none`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TokenAlgorithm {
    EdDsa,
    Es256,
    Hs256,
}

impl TokenAlgorithm {
    /// The `alg` header value (RFC 7518 / RFC 8037).
    pub fn as_str(self) -> &'static str {
        match self {
            TokenAlgorithm::EdDsa => "EdDSA",
            TokenAlgorithm::Es256 => "ES256",
            TokenAlgorithm::Hs256 => "HS256",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        [Self::EdDsa, Self::Es256, Self::Hs256]
            .into_iter()
            .find(|a| a.as_str() == text)
    }
}

/// An issuer's verification key, as read from its file.
#[derive(Debug, Clone)]
pub enum IssuerKey {
    /// An Ed25519 public key, SubjectPublicKeyInfo PEM.
    Ed25519Pem(Vec<u8>),
    /// An Ed25519 public key as the JWK `x`: base64url of the raw 32 bytes (from the feed).
    Ed25519X(String),
    /// A P-256 public key, SubjectPublicKeyInfo PEM.
    P256Pem(Vec<u8>),
    /// The shared HMAC secret.
    Hmac(Secret),
}

impl IssuerKey {
    /// The one algorithm this key verifies.
    pub fn algorithm(&self) -> TokenAlgorithm {
        match self {
            IssuerKey::Ed25519Pem(_) | IssuerKey::Ed25519X(_) => TokenAlgorithm::EdDsa,
            IssuerKey::P256Pem(_) => TokenAlgorithm::Es256,
            IssuerKey::Hmac(_) => TokenAlgorithm::Hs256,
        }
    }
}

#[derive(Debug, Clone)]
pub struct IssuerConfig {
    /// `iss`, matched exactly.
    pub iss: String,
    pub algorithms: Vec<TokenAlgorithm>,
    pub key: IssuerKey,
    /// Uses allowed per token when the token does not say (`tkuc` lowers it, never raises).
    pub max_uses: Option<u64>,
}

impl IssuerConfig {
    /// The issuer `iss` with `key`, verified with the key's algorithm, allowing `max_uses`.
    pub fn new(iss: impl Into<String>, key: IssuerKey, max_uses: Option<u64>) -> Self {
        IssuerConfig {
            iss: iss.into(),
            algorithms: vec![key.algorithm()],
            key,
            max_uses,
        }
    }
}

/// One `[[tokens.obtain]]`: the gateway obtains tokens for `node` from the authority and
/// attaches one to the node's requests that carry none.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObtainConfig {
    pub node: String,
    /// The audience to ask for: this gateway's CSE-ID and the upstream's.
    pub aud: Vec<String>,
    /// The resources the token is for (`tkps` `ris`), as the policy sees `resource.path`.
    pub ris: Vec<String>,
    /// Operation names (`create`, `retrieve`, ...).
    pub ops: Vec<String>,
}
