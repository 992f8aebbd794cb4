//! JWS compact serialisation with EdDSA (RFC 7515, RFC 8037), as the feed uses it: a protected
//! header of exactly `alg`, `kid` and `typ`, the signature over `header "." payload`. A verifier
//! trusts one key per type and reads the payload only after the signature verifies.

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine as _;
use serde::{Deserialize, Serialize};

use super::keys::{SigningKey, VerifyingKey};
use super::FeedError;

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Header<'a> {
    alg: &'a str,
    kid: &'a str,
    typ: &'a str,
}

/// Signs `payload` (compact JSON) as a JWS of type `typ`.
pub fn sign(key: &SigningKey, typ: &str, payload: &[u8]) -> String {
    let header = serde_json::to_vec(&Header {
        alg: "EdDSA",
        kid: key.kid(),
        typ,
    })
    .expect("a header serialises");
    let mut out = B64.encode(header);
    out.push('.');
    out.push_str(&B64.encode(payload));
    let signature = key.sign(out.as_bytes());
    out.push('.');
    out.push_str(&B64.encode(signature));
    out
}

/// The payload of `compact` if it is a JWS of type `typ` signed by `key`.
pub fn verify(compact: &str, typ: &str, key: &VerifyingKey) -> Result<Vec<u8>, FeedError> {
    let bad = |detail: &str| FeedError::Signature {
        typ: typ.to_owned(),
        detail: detail.to_owned(),
    };
    let mut parts = compact.split('.');
    let (Some(header), Some(payload), Some(signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(bad("not three base64url parts"));
    };
    let header_bytes = B64
        .decode(header)
        .map_err(|_| bad("header is not base64url"))?;
    let parsed: Header =
        serde_json::from_slice(&header_bytes).map_err(|_| bad("header is not {alg, kid, typ}"))?;
    if parsed.alg != "EdDSA" {
        return Err(bad("alg is not EdDSA"));
    }
    if parsed.typ != typ {
        return Err(bad(&format!("typ is {:?}", parsed.typ)));
    }
    if parsed.kid != key.kid() {
        return Err(bad(&format!("signed by unknown key {:?}", parsed.kid)));
    }
    let signature = B64
        .decode(signature)
        .map_err(|_| bad("signature is not base64url"))?;
    let signed_len = header.len() + 1 + payload.len();
    if !key.verify(&compact.as_bytes()[..signed_len], &signature) {
        return Err(bad("signature does not verify"));
    }
    B64.decode(payload)
        .map_err(|_| bad("payload is not base64url"))
}

/// The `kid` a compact JWS names, unverified: for choosing among several keys (acks).
pub fn kid_of(compact: &str) -> Option<String> {
    let header = B64.decode(compact.split('.').next()?).ok()?;
    let parsed: Header = serde_json::from_slice(&header).ok()?;
    Some(parsed.kid.to_owned())
}
