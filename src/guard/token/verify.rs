//! Verifying one compact JWT (TS-0003 §7.3.2.6): header, issuer, signature, audience and the
//! claims that do not change from request to request. Pure: no I/O, no clock.
//!
//! In: the token text, the configured issuers, this gateway's CSE-ID. Out: a [`Verified`]
//! token (its holder, validity interval, use limit and [`TokenGrant`]) or a [`TokenError`].
//! Order: size → header (`typ` JWT, no `crit`, `alg` never `none`) → `iss` names a configured
//! issuer → `alg` on that issuer's list → signature under that issuer's key (jsonwebtoken,
//! restricted to the same list, so a key can never be used with another algorithm family) →
//! the signed `iss` again → our CSE-ID in `aud` → `azp`, `exp`, `jti` present → `tkps`.
//! What depends on the request or the clock (holder, time, revocation, uses) is checked per
//! use by the caller.

use std::collections::HashSet;
use std::sync::Arc;

use base64::Engine;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use serde_json::Value;

use super::grant;
use super::trust::Trusted;
use super::{IssuerConfig, IssuerKey, TokenAlgorithm};
use crate::guard::TokenGrant;

/// Longest token text accepted, in bytes.
pub const MAX_TOKEN_BYTES: usize = 8 * 1024;
/// Longest `jti` and `azp` accepted.
pub const MAX_ID_CHARS: usize = 256;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("token is longer than {MAX_TOKEN_BYTES} bytes")]
    TooLarge,
    #[error("token is not a compact JWS: {0}")]
    Malformed(&'static str),
    #[error("typ is {0:?}, expected \"JWT\"")]
    NotJwt(Option<String>),
    #[error("header has crit extensions, which are not understood")]
    Critical,
    #[error("alg none: unsigned tokens are never accepted")]
    Unsigned,
    #[error("issuer {0:?} is not configured")]
    UnknownIssuer(String),
    #[error("issuer {0:?} is both configured and in the feed: refused")]
    IssuerClash(String),
    #[error("token id {0:?} is not known at the authority")]
    UnknownId(String),
    #[error("alg {alg:?} is not on the list of issuer {iss:?}")]
    AlgorithmNotAllowed { alg: String, iss: String },
    #[error("signature does not verify")]
    BadSignature,
    #[error("claims unreadable: {0}")]
    Claims(String),
    #[error("audience does not name this gateway ({0})")]
    WrongAudience(String),
    #[error("claim {0} is missing or empty")]
    Missing(&'static str),
    #[error("permissions: {0}")]
    Permissions(String),
    #[error("expired (exp {exp}, now {now})")]
    Expired { exp: u64, now: u64 },
    #[error("not yet valid (nbf {nbf}, now {now})")]
    NotYetValid { nbf: u64, now: u64 },
    #[error("holder (azp) {holder:?} is not the originator {fr:?}")]
    WrongHolder { holder: String, fr: String },
    #[error("token {0:?} is revoked")]
    Revoked(String),
    #[error("token {jti:?} is used up ({uses} uses, {limit} allowed)")]
    UsedUp { jti: String, uses: u64, limit: u64 },
    #[error("repository: {0}")]
    Repository(String),
}

/// A configured issuer, ready to verify with.
pub struct Issuer {
    pub iss: String,
    algorithms: Vec<TokenAlgorithm>,
    key: DecodingKey,
    validation: Validation,
    pub max_uses: Option<u64>,
}

impl Issuer {
    pub fn new(config: &IssuerConfig) -> Result<Self, String> {
        let key = match &config.key {
            IssuerKey::Ed25519Pem(pem) => DecodingKey::from_ed_pem(pem),
            IssuerKey::Ed25519X(x) => DecodingKey::from_ed_components(x),
            IssuerKey::P256Pem(pem) => DecodingKey::from_ec_pem(pem),
            IssuerKey::Hmac(secret) => Ok(DecodingKey::from_secret(secret.expose())),
        }
        .map_err(|e| format!("issuer {:?}: key unusable: {e}", config.iss))?;
        let algorithms: Vec<Algorithm> = config.algorithms.iter().map(|&a| jws(a)).collect();
        let first = *algorithms
            .first()
            .ok_or_else(|| format!("issuer {:?} has no algorithm", config.iss))?;
        // The library checks only the signature and the algorithm; every claim is ours, with
        // the caller's clock.
        let mut validation = Validation::new(first);
        validation.algorithms = algorithms;
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.validate_aud = false;
        validation.required_spec_claims = HashSet::new();
        Ok(Issuer {
            iss: config.iss.clone(),
            algorithms: config.algorithms.clone(),
            key,
            validation,
            max_uses: config.max_uses,
        })
    }
}

fn jws(a: TokenAlgorithm) -> Algorithm {
    match a {
        TokenAlgorithm::EdDsa => Algorithm::EdDSA,
        TokenAlgorithm::Es256 => Algorithm::ES256,
        TokenAlgorithm::Hs256 => Algorithm::HS256,
    }
}

/// A token whose signature, issuer and audience hold; valid for a holder and an interval.
#[derive(Debug, PartialEq, Eq)]
pub struct Verified {
    pub jti: String,
    /// `azp`: the only originator that may present it.
    pub holder: String,
    pub nbf: Option<u64>,
    pub exp: u64,
    /// The smaller of the token's `tkuc` and its issuer's `max_uses`, if either is set.
    pub max_uses: Option<u64>,
    pub grant: Arc<TokenGrant>,
}

#[derive(Deserialize)]
struct Header {
    alg: String,
    typ: Option<String>,
    crit: Option<Value>,
}

#[derive(Deserialize)]
struct Peek {
    iss: Option<String>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Audience {
    One(String),
    Many(Vec<String>),
}

#[derive(Deserialize)]
struct Claims {
    iss: String,
    aud: Option<Audience>,
    azp: Option<String>,
    exp: Option<u64>,
    nbf: Option<u64>,
    jti: Option<String>,
    tkps: Option<Value>,
    /// Uses allowed (an m2mguard claim; oneM2M defines none), at most the issuer's default.
    tkuc: Option<u64>,
}

/// Verifies everything about `token` that does not depend on the request or the clock.
pub fn verify(token: &str, trusted: &Trusted, audience: &str) -> Result<Verified, TokenError> {
    let issuers = &trusted.issuers;
    if token.len() > MAX_TOKEN_BYTES {
        return Err(TokenError::TooLarge);
    }
    let mut parts = token.split('.');
    let (Some(head), Some(body), Some(_sig), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(TokenError::Malformed("expected three dot-separated parts"));
    };
    let header: Header = json_part(head).ok_or(TokenError::Malformed("header"))?;
    if header.alg.eq_ignore_ascii_case("none") {
        return Err(TokenError::Unsigned);
    }
    if !header
        .typ
        .as_deref()
        .is_some_and(|t| t.eq_ignore_ascii_case("JWT"))
    {
        return Err(TokenError::NotJwt(header.typ));
    }
    if header.crit.is_some() {
        return Err(TokenError::Critical);
    }
    let peek: Peek = json_part(body).ok_or(TokenError::Malformed("payload"))?;
    let iss = peek.iss.unwrap_or_default();
    if trusted.clashes.contains(&iss) {
        return Err(TokenError::IssuerClash(shortened(&iss)));
    }
    let issuer = issuers
        .iter()
        .find(|i| i.iss == iss)
        .ok_or_else(|| TokenError::UnknownIssuer(shortened(&iss)))?;
    if !issuer.algorithms.iter().any(|a| a.as_str() == header.alg) {
        return Err(TokenError::AlgorithmNotAllowed {
            alg: shortened(&header.alg),
            iss,
        });
    }
    let claims = jsonwebtoken::decode::<Claims>(token, &issuer.key, &issuer.validation)
        .map_err(|e| match e.kind() {
            jsonwebtoken::errors::ErrorKind::InvalidSignature => TokenError::BadSignature,
            jsonwebtoken::errors::ErrorKind::InvalidAlgorithm => TokenError::AlgorithmNotAllowed {
                alg: "?".into(),
                iss: iss.clone(),
            },
            _ => TokenError::Claims(e.to_string()),
        })?
        .claims;
    claims_hold(claims, issuer, audience)
}

fn claims_hold(claims: Claims, issuer: &Issuer, audience: &str) -> Result<Verified, TokenError> {
    if claims.iss != issuer.iss {
        return Err(TokenError::UnknownIssuer(shortened(&claims.iss)));
    }
    let ours = match &claims.aud {
        Some(Audience::One(a)) => a == audience,
        Some(Audience::Many(list)) => list.iter().any(|a| a == audience),
        None => false,
    };
    if !ours {
        return Err(TokenError::WrongAudience(match claims.aud {
            None => "no aud".into(),
            Some(_) => format!("expected {audience:?}"),
        }));
    }
    let id = |value: Option<String>, name| {
        value
            .filter(|v| !v.is_empty() && v.len() <= MAX_ID_CHARS && !v.contains(char::is_control))
            .ok_or(TokenError::Missing(name))
    };
    let jti = id(claims.jti, "jti")?;
    let holder = id(claims.azp, "azp")?;
    let exp = claims.exp.ok_or(TokenError::Missing("exp"))?;
    let (resources, operations) =
        grant::permissions(claims.tkps.as_ref(), &holder).map_err(TokenError::Permissions)?;
    let max_uses = match (claims.tkuc, issuer.max_uses) {
        (Some(0), _) => return Err(TokenError::Permissions("tkuc is 0".into())),
        (Some(t), Some(i)) => Some(t.min(i)),
        (t, i) => t.or(i),
    };
    Ok(Verified {
        grant: Arc::new(TokenGrant {
            issuer: issuer.iss.clone(),
            id: jti.clone(),
            resources,
            operations,
        }),
        jti,
        holder,
        nbf: claims.nbf,
        exp,
        max_uses,
    })
}

/// `nbf <= now < exp`, each widened by `skew_s`.
pub fn in_time(v: &Verified, now: u64, skew_s: u64) -> Result<(), TokenError> {
    if let Some(nbf) = v.nbf {
        if now.saturating_add(skew_s) < nbf {
            return Err(TokenError::NotYetValid { nbf, now });
        }
    }
    if now >= v.exp.saturating_add(skew_s) {
        return Err(TokenError::Expired { exp: v.exp, now });
    }
    Ok(())
}

/// At most 64 characters of an untrusted name, for the log.
fn shortened(text: &str) -> String {
    text.chars().take(64).collect()
}

fn json_part<T: serde::de::DeserializeOwned>(part: &str) -> Option<T> {
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(part)
        .ok()?;
    serde_json::from_slice(&bytes).ok()
}
