//! Check values (seed 7.5): an HMAC-SHA256 over a canonical byte form of the primitive, keyed
//! by the originator's enrolled key, carried in `aus` as `<key id>.<sequence>.<mac>`.
//!
//! In: a primitive, the key ring in force (seeded from `[[checks.keys]]`, changed at run time
//! through the repository). Out: the verified key id and sequence
//! number (for the replay window), or a denial. Also the signing side, for the gateway's own
//! check values on forwarded requests and for tests.
//!
//! Canonical form v2 (docs/wire-formats.md "Check values" has test vectors; `scripts/check_value.py` is an
//! independent implementation):
//!
//! ```text
//! "m2mguard-cv2" ‖ f(op) ‖ f(to) ‖ f(fr) ‖ f(rqi) ‖ f(ot) ‖ f(ty) ‖ f(rqet) ‖ f(rvi)
//!                ‖ f(query) ‖ f(key id) ‖ f(seq) ‖ SHA-256(content)
//! f(x) = u32 big-endian byte length of x ‖ x (UTF-8)
//! ```
//!
//! `op` and `ty` are decimal (`ty` empty when absent), `ot`, `rqet` and `rvi` as sent (empty
//! when absent), `query` as [`Primitive::query`] defines it per binding, `seq` decimal without
//! leading zeros. Length prefixes make the encoding injective: no two
//! different field lists give the same bytes.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use sha2::{Digest, Sha256};

use super::{Denial, Reason, Stage};
use crate::primitive::Primitive;
use crate::security::mac::MacKey;
use crate::security::{is_key_id, KeyRing, Secret};

const DOMAIN: &[u8] = b"m2mguard-cv2";

/// A verified check value: whose key, and which sequence number it signed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verified {
    pub key_id: String,
    pub seq: u64,
}

/// `aus` split into its parts; the MAC still encoded.
#[derive(Debug, PartialEq, Eq)]
struct Aus<'a> {
    key_id: &'a str,
    seq: u64,
    mac: &'a str,
}

/// Verifies `p.security.aus` under the keys of `ring`: `Ok(None)` when there is none.
pub fn verify(ring: &KeyRing, p: &Primitive) -> Result<Option<Verified>, Denial> {
    let Some(text) = p.security.aus.as_deref() else {
        return Ok(None);
    };
    let deny = |reason: Reason| Denial::new(Stage::CheckValue, reason);
    let aus = parse(text).ok_or_else(|| deny(Reason::CheckValueMalformed))?;
    let key = ring.get(aus.key_id).ok_or_else(|| {
        deny(Reason::UnknownKey {
            key_id: aus.key_id.to_owned(),
        })
    })?;
    if key.record.node != p.fr {
        return Err(deny(Reason::KeyNotEnrolled {
            key_id: aus.key_id.to_owned(),
            fr: p.fr.clone(),
        }));
    }
    let mac = URL_SAFE_NO_PAD
        .decode(aus.mac)
        .map_err(|_| deny(Reason::MacNotBase64))?;
    // Compared in constant time.
    if !key.mac.verify(&canonical(p, aus.key_id, aus.seq), &mac) {
        return Err(deny(Reason::CheckValueMismatch {
            key_id: aus.key_id.to_owned(),
        }));
    }
    Ok(Some(Verified {
        key_id: aus.key_id.to_owned(),
        seq: aus.seq,
    }))
}

/// The `aus` value for `p` signed with `secret` under `key_id` at `seq`.
pub fn sign(p: &Primitive, key_id: &str, secret: &Secret, seq: u64) -> String {
    sign_with(p, key_id, &MacKey::new(secret), seq)
}

/// As [`sign`], with a prepared key.
pub fn sign_with(p: &Primitive, key_id: &str, key: &MacKey, seq: u64) -> String {
    let mac = URL_SAFE_NO_PAD.encode(key.sign(&canonical(p, key_id, seq)));
    format!("{key_id}.{seq}.{mac}")
}

/// The canonical bytes that a check value signs.
pub fn canonical(p: &Primitive, key_id: &str, seq: u64) -> Vec<u8> {
    let op = p.op.code().to_string();
    let ty = p.ty.map(|t| t.to_string()).unwrap_or_default();
    let seq = seq.to_string();
    let fields: [&[u8]; 11] = [
        op.as_bytes(),
        p.target_as_sent().as_bytes(),
        p.fr.as_bytes(),
        p.rqi.as_bytes(),
        text(&p.ot),
        ty.as_bytes(),
        text(&p.rqet),
        text(&p.rvi),
        p.query.as_bytes(),
        key_id.as_bytes(),
        seq.as_bytes(),
    ];
    let len = DOMAIN.len() + fields.iter().map(|f| 4 + f.len()).sum::<usize>() + 32;
    let mut out = Vec::with_capacity(len);
    out.extend_from_slice(DOMAIN);
    for field in fields {
        // Fields longer than 4 GiB cannot occur: bindings cap heads and bodies far below.
        out.extend_from_slice(&u32::try_from(field.len()).unwrap_or(u32::MAX).to_be_bytes());
        out.extend_from_slice(field);
    }
    out.extend_from_slice(&Sha256::digest(&p.content));
    out
}

fn text(v: &Option<String>) -> &[u8] {
    v.as_deref().unwrap_or("").as_bytes()
}

/// The key id and sequence number of a well-formed check value, the MAC left out (what a
/// record of an inserted check value says).
pub fn named(aus: &str) -> Option<Verified> {
    parse(aus).map(|a| Verified {
        key_id: a.key_id.to_owned(),
        seq: a.seq,
    })
}

/// `<key id>.<seq>.<mac>`; seq decimal, 1 or more, no leading zeros.
fn parse(text: &str) -> Option<Aus<'_>> {
    let mut parts = text.split('.');
    let (key_id, seq, mac) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || !is_key_id(key_id) || mac.is_empty() {
        return None;
    }
    if seq.is_empty()
        || seq.len() > 20
        || seq.starts_with('0')
        || !seq.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    Some(Aus {
        key_id,
        seq: seq.parse().ok()?,
        mac,
    })
}

#[cfg(test)]
mod tests;
