//! A node's own token request (docs/authority.md "Token requests"): a compact JWS, HS256
//! under one of the node's check-value keys, header exactly
//! `{"alg":"HS256","kid":"<key id>","typ":"m2mguard-das-request"}`, payload exactly
//! `{"or","aud","ris","ops","at","nonce"}`.
//!
//! In: the request text, the state (the key's secret and its node), the clock. Out: the
//! [`Ask`] it makes, or why it is refused. Replays are refused by [`Nonces`]: `at` within
//! [`WINDOW_S`] of now and not before the authority started, and each (key id, nonce) once
//! within twice that window (so a nonce is remembered for as long as its request could be
//! accepted). The signature is checked before the nonce is remembered, so that forged
//! requests cannot fill the memory.

use std::collections::HashMap;
use std::sync::Mutex;

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use serde::Deserialize;

use super::grant::Ask;
use crate::authority::state::State;

pub const REQUEST_TYP: &str = "m2mguard-das-request";
/// How far `at` may lie from the authority's clock, in seconds.
pub const WINDOW_S: u64 = 60;
/// Longest request, in bytes.
pub const MAX_REQUEST: usize = 8 * 1024;
/// At most this many nonces are remembered; beyond it requests are refused (503) until the
/// oldest age out.
pub const MAX_NONCES: usize = 100_000;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Header {
    alg: String,
    kid: String,
    typ: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Payload {
    or: String,
    aud: Vec<String>,
    ris: Vec<String>,
    ops: Vec<String>,
    at: u64,
    nonce: String,
}

/// Why a node's request was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RequestError {
    /// 400: not a request of this form.
    #[error("{0}")]
    Malformed(String),
    /// 401: the signature, key, time or nonce do not hold.
    #[error("{0}")]
    Unauthenticated(String),
    /// 503: too many nonces remembered.
    #[error("too many token requests in the last {} s; try again later", 2 * WINDOW_S)]
    Busy,
}

/// Verifies `text` as a node's request at `now`; remembers its nonce.
pub fn verify(text: &str, state: &State, nonces: &Nonces, now: u64) -> Result<Ask, RequestError> {
    let malformed = |what: &str| RequestError::Malformed(format!("token request: {what}"));
    let denied = |what: String| RequestError::Unauthenticated(format!("token request: {what}"));
    if text.len() > MAX_REQUEST {
        return Err(malformed("longer than 8192 bytes"));
    }
    let mut parts = text.split('.');
    let (Some(h), Some(p), Some(s), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(malformed("expected a compact JWS (three base64url parts)"));
    };
    let decode = |part: &str| {
        // No padding and no non-zero trailing bits: one encoding per request.
        B64.decode(part)
            .map_err(|_| malformed("not canonical base64url"))
    };
    let header: Header =
        serde_json::from_slice(&decode(h)?).map_err(|e| malformed(&format!("header: {e}")))?;
    if header.alg != "HS256" || header.typ != REQUEST_TYP {
        return Err(malformed(
            "header must be {\"alg\":\"HS256\",\"kid\":<key id>,\"typ\":\"m2mguard-das-request\"}",
        ));
    }
    let signature = decode(s)?;
    let key = state
        .key(&header.kid)
        .map_err(|e| RequestError::Malformed(e.to_string()))?
        .ok_or_else(|| denied(format!("no key {:?}", shorten(&header.kid))))?;
    let secret = crate::feed::keys::decode_hex(&key.secret)
        .ok_or_else(|| denied("the key's secret is unreadable".into()))?;
    let mac = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &secret);
    let signed = &text[..h.len() + 1 + p.len()];
    ring::hmac::verify(&mac, signed.as_bytes(), &signature)
        .map_err(|_| denied("signature does not verify".into()))?;
    let payload: Payload =
        serde_json::from_slice(&decode(p)?).map_err(|e| malformed(&format!("payload: {e}")))?;
    if payload.or != key.node {
        return Err(denied(format!(
            "key {:?} belongs to another node than {:?}",
            header.kid,
            shorten(&payload.or)
        )));
    }
    if payload.at.abs_diff(now) > WINDOW_S {
        return Err(denied(format!(
            "at {} is more than {WINDOW_S} s from the authority's clock ({now})",
            payload.at
        )));
    }
    let nonce_ok = (16..=64).contains(&payload.nonce.len())
        && payload
            .nonce
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if !nonce_ok {
        return Err(malformed("nonce must be 16 to 64 of A-Z a-z 0-9 - _"));
    }
    nonces.remember(&header.kid, &payload.nonce, payload.at, now)?;
    Ok(Ask {
        node: payload.or,
        aud: payload.aud,
        ris: payload.ris,
        ops: payload.ops,
    })
}

fn shorten(text: &str) -> String {
    text.chars().take(64).collect()
}

/// The nonces of accepted requests, each kept until its request's `at` is out of the window.
pub struct Nonces {
    started: u64,
    seen: Mutex<HashMap<String, u64>>,
}

impl Nonces {
    /// Requests signed before `started` (the authority's start, Unix seconds) are refused:
    /// nonces do not survive a restart, so neither may the requests they guarded.
    pub fn new(started: u64) -> Self {
        Nonces {
            started,
            seen: Mutex::new(HashMap::new()),
        }
    }

    fn remember(&self, kid: &str, nonce: &str, at: u64, now: u64) -> Result<(), RequestError> {
        if at < self.started {
            return Err(RequestError::Unauthenticated(
                "token request: signed before the authority started; sign a fresh one".into(),
            ));
        }
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        let id = format!("{kid}\0{nonce}");
        if seen.contains_key(&id) {
            return Err(RequestError::Unauthenticated(
                "token request: nonce used already (a replay)".into(),
            ));
        }
        if seen.len() >= MAX_NONCES {
            seen.retain(|_, expires| *expires > now);
            if seen.len() >= MAX_NONCES {
                return Err(RequestError::Busy);
            }
        }
        seen.insert(id, at + WINDOW_S + 1);
        Ok(())
    }
}

/// Signs a token request as a node does (for tests, the docs' vectors and operator tools).
pub fn sign(kid: &str, secret: &[u8], payload: &serde_json::Value) -> String {
    let header = format!(r#"{{"alg":"HS256","kid":"{kid}","typ":"{REQUEST_TYP}"}}"#);
    let signing = format!(
        "{}.{}",
        B64.encode(header),
        B64.encode(serde_json::to_vec(payload).expect("JSON"))
    );
    let mac = ring::hmac::sign(
        &ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret),
        signing.as_bytes(),
    );
    format!("{signing}.{}", B64.encode(mac.as_ref()))
}
