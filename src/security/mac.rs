//! HMAC-SHA256 (RFC 2104), the one MAC of the crate: check values (`guard::check_value`), the
//! CoAP Echo challenges, and — with security associations — session keys. Backed by `ring`,
//! which TLS already links; HS256 tokens are verified inside `jsonwebtoken`, not here.
//!
//! In: a [`Secret`] (any length), message bytes. Out: a 32-byte tag, or whether a tag holds.
//! Verification compares in constant time.

use std::fmt;

use ring::hmac;

use super::Secret;

/// Bytes in an HMAC-SHA256 tag.
pub const TAG_BYTES: usize = 32;

/// A prepared HMAC-SHA256 key: the padded key states are computed once, not per message.
#[derive(Clone)]
pub struct MacKey(hmac::Key);

impl MacKey {
    pub fn new(secret: &Secret) -> Self {
        MacKey(hmac::Key::new(hmac::HMAC_SHA256, secret.expose()))
    }

    /// The tag of `message`.
    pub fn sign(&self, message: &[u8]) -> [u8; TAG_BYTES] {
        self.sign_parts(&[message])
    }

    /// The tag of the concatenation of `parts`.
    pub fn sign_parts(&self, parts: &[&[u8]]) -> [u8; TAG_BYTES] {
        let mut ctx = hmac::Context::with_key(&self.0);
        for part in parts {
            ctx.update(part);
        }
        let mut tag = [0u8; TAG_BYTES];
        tag.copy_from_slice(ctx.sign().as_ref());
        tag
    }

    /// Whether `tag` is the tag of `message`; constant time.
    pub fn verify(&self, message: &[u8], tag: &[u8]) -> bool {
        hmac::verify(&self.0, message, tag).is_ok()
    }
}

impl fmt::Debug for MacKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MacKey(HMAC-SHA256)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(text: &str) -> Vec<u8> {
        (0..text.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
            .collect()
    }

    /// RFC 4231, test case 2.
    #[test]
    fn matches_rfc_4231() {
        let key = MacKey::new(&Secret::new(b"Jefe"));
        let tag = key.sign(b"what do ya want for nothing?");
        let expected = hex("5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
        assert_eq!(tag.as_slice(), expected.as_slice());
        assert_eq!(key.sign_parts(&[b"what do ya ", b"want for nothing?"]), tag);
        assert!(key.verify(b"what do ya want for nothing?", &tag));
        assert!(!key.verify(b"what do ya want for nothing!", &tag));
        assert!(!key.verify(b"what do ya want for nothing?", &tag[..31]));
    }
}
