//! The feed's key material: the authority's Ed25519 feed key, a gateway's Ed25519 signing key
//! and X25519 sealing key. Files hold 64 hex digits (the 32-byte seed or scalar; public keys
//! the raw 32 bytes) and may end in one newline. A key's kid is the first 16 hex digits of
//! SHA-256 over its raw public key. Private keys never print: their `Debug` is redacted.

use std::fmt;
use std::path::Path;

use ring::signature::{Ed25519KeyPair, KeyPair as _, UnparsedPublicKey, ED25519};
use sha2::{Digest, Sha256};

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{what} is not 64 hex digits (a 32-byte key)")]
    NotHex { what: String },
}

/// The kid of a raw 32-byte public key.
pub fn kid(public: &[u8; 32]) -> String {
    hex(&Sha256::digest(public)[..8])
}

/// Lowercase hex digits of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0xf)]));
    }
    out
}

/// Hex digits (either case) as bytes; `None` for an odd count or anything else.
pub fn decode_hex(text: &str) -> Option<Vec<u8>> {
    if text.len() % 2 != 0 || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).ok())
        .collect()
}

/// 64 hex digits as 32 bytes; `what` names the value in the error.
pub fn parse_hex32(text: &str, what: &str) -> Result<[u8; 32], KeyError> {
    let text = text.strip_suffix('\n').unwrap_or(text);
    decode_hex(text)
        .and_then(|bytes| bytes.try_into().ok())
        .ok_or_else(|| KeyError::NotHex { what: what.into() })
}

/// Reads a file of 64 hex digits.
pub fn read_hex32(path: &Path) -> Result<[u8; 32], KeyError> {
    let text = std::fs::read_to_string(path).map_err(|source| KeyError::Read {
        path: path.display().to_string(),
        source,
    })?;
    parse_hex32(&text, &path.display().to_string())
}

/// An Ed25519 private key: the authority's feed key or a gateway's signing key.
pub struct SigningKey {
    pair: Ed25519KeyPair,
    kid: String,
}

impl SigningKey {
    pub fn from_seed(seed: &[u8; 32]) -> Self {
        // A 32-byte seed is always a valid Ed25519 private key.
        let pair = Ed25519KeyPair::from_seed_unchecked(seed).expect("32-byte Ed25519 seed");
        let kid = kid(&public_of(&pair));
        SigningKey { pair, kid }
    }

    pub fn load(path: &Path) -> Result<Self, KeyError> {
        Ok(SigningKey::from_seed(&read_hex32(path)?))
    }

    pub fn kid(&self) -> &str {
        &self.kid
    }

    pub fn public(&self) -> VerifyingKey {
        VerifyingKey::new(public_of(&self.pair))
    }

    pub fn sign(&self, message: &[u8]) -> Vec<u8> {
        self.pair.sign(message).as_ref().to_vec()
    }
}

fn public_of(pair: &Ed25519KeyPair) -> [u8; 32] {
    let mut out = [0u8; 32];
    out.copy_from_slice(pair.public_key().as_ref());
    out
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SigningKey({} <redacted>)", self.kid)
    }
}

/// An Ed25519 public key and its kid.
#[derive(Clone, PartialEq, Eq)]
pub struct VerifyingKey {
    raw: [u8; 32],
    kid: String,
}

impl VerifyingKey {
    pub fn new(raw: [u8; 32]) -> Self {
        VerifyingKey {
            kid: kid(&raw),
            raw,
        }
    }

    pub fn load(path: &Path) -> Result<Self, KeyError> {
        Ok(VerifyingKey::new(read_hex32(path)?))
    }

    pub fn kid(&self) -> &str {
        &self.kid
    }

    pub fn raw(&self) -> &[u8; 32] {
        &self.raw
    }

    pub fn verify(&self, message: &[u8], signature: &[u8]) -> bool {
        UnparsedPublicKey::new(&ED25519, &self.raw)
            .verify(message, signature)
            .is_ok()
    }
}

impl fmt::Debug for VerifyingKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "VerifyingKey({})", hex(&self.raw))
    }
}

/// A gateway's X25519 private key, to which the authority seals secrets.
#[derive(Clone)]
pub struct SealingKey {
    secret: x25519_dalek::StaticSecret,
    public: [u8; 32],
    kid: String,
}

impl SealingKey {
    pub fn from_scalar(scalar: [u8; 32]) -> Self {
        let secret = x25519_dalek::StaticSecret::from(scalar);
        let public = x25519_dalek::PublicKey::from(&secret).to_bytes();
        SealingKey {
            secret,
            kid: kid(&public),
            public,
        }
    }

    pub fn load(path: &Path) -> Result<Self, KeyError> {
        Ok(SealingKey::from_scalar(read_hex32(path)?))
    }

    pub fn kid(&self) -> &str {
        &self.kid
    }

    pub fn public(&self) -> &[u8; 32] {
        &self.public
    }

    /// X25519 with a peer's public key; `None` for a non-contributory (all-zero) result.
    pub fn agree(&self, peer: &[u8; 32]) -> Option<[u8; 32]> {
        let shared = self
            .secret
            .diffie_hellman(&x25519_dalek::PublicKey::from(*peer));
        shared.was_contributory().then(|| shared.to_bytes())
    }
}

impl fmt::Debug for SealingKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SealingKey({} <redacted>)", self.kid)
    }
}

/// 32 random bytes from the system's generator.
pub fn random32() -> [u8; 32] {
    let mut out = [0u8; 32];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut out)
        .expect("the system random generator works");
    out
}
