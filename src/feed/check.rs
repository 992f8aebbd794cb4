//! The value rules of feed payloads (docs/feed.md "Values"), checked right after a payload
//! parses: ids, audiences, the empty feed's hash, the order of snapshot lists. A payload that
//! breaks one is refused as malformed before anything reads it.

use super::record::{Body, Head, IssuerBody, KeyBody, NodeBody, Snapshot, ZERO_HASH};
use super::FeedError;

/// Feed and gateway ids: 1–64 of `A-Za-z0-9._-`.
pub fn is_name(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
}

/// Node ids, registrars, token ids and group names: 1–256 bytes of UTF-8, no control
/// characters (group names also no white space or `"`).
pub fn is_id(id: &str) -> bool {
    (1..=256).contains(&id.len()) && !id.chars().any(char::is_control)
}

fn is_group(g: &str) -> bool {
    is_id(g) && !g.chars().any(|c| c.is_whitespace() || c == '"')
}

pub fn malformed(what: &str, detail: impl Into<String>) -> FeedError {
    FeedError::Malformed {
        what: what.to_owned(),
        detail: detail.into(),
    }
}

/// `["*"]`, or 1–64 distinct gateway ids.
pub fn audience(aud: &[String]) -> Result<(), FeedError> {
    if aud.len() == 1 && aud[0] == "*" {
        return Ok(());
    }
    let distinct = aud.iter().enumerate().all(|(i, a)| !aud[..i].contains(a));
    if (1..=64).contains(&aud.len()) && distinct && aud.iter().all(|a| is_name(a)) {
        Ok(())
    } else {
        Err(malformed(
            "record",
            "aud must be [\"*\"] or 1 to 64 distinct gateway ids",
        ))
    }
}

pub fn body(body: &Body) -> Result<(), FeedError> {
    match body {
        Body::NodePut(n) => node(n),
        Body::NodeRemove(b) => id("node.remove", "id", &b.id),
        Body::KeyPut(k) => key(k),
        Body::KeyRemove(b) => key_id("key.remove", &b.id),
        Body::TokenRevoke(t) => id("token.revoke", "jti", &t.jti),
        Body::GatewayPut(g) => name("gateway.put", "id", &g.id),
        Body::IssuerPut(i) => issuer(i),
        Body::IssuerRemove(i) => id("issuer.remove", "iss", &i.iss),
    }
}

/// An `issuer.put`: `iss` as a node id, `alg` exactly `EdDSA`, `key` 64 lowercase hex
/// digits, `max_uses` `null` or 1 to 2^32 - 1.
pub fn issuer(i: &IssuerBody) -> Result<(), FeedError> {
    id("issuer.put", "iss", &i.iss)?;
    if i.alg != "EdDSA" {
        return Err(malformed("issuer.put", "alg must be \"EdDSA\""));
    }
    let hex = i.key.len() == 64
        && i.key
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    if !hex {
        return Err(malformed(
            "issuer.put",
            "key must be 64 lowercase hex digits (an Ed25519 public key)",
        ));
    }
    if i.max_uses
        .is_some_and(|n| n == 0 || n > u64::from(u32::MAX))
    {
        return Err(malformed(
            "issuer.put",
            "max_uses must be null or 1 to 4294967295",
        ));
    }
    Ok(())
}

pub fn node(n: &NodeBody) -> Result<(), FeedError> {
    id("node.put", "id", &n.id)?;
    if let Some(registrar) = &n.registrar {
        id("node.put", "registrar", registrar)?;
    }
    if n.groups.len() > 256 || !n.groups.iter().all(|g| is_group(g)) {
        return Err(malformed(
            "node.put",
            "groups must be at most 256 names without control characters, white space or quotes",
        ));
    }
    Ok(())
}

pub fn key(k: &KeyBody) -> Result<(), FeedError> {
    key_id("key.put", &k.id)?;
    id("key.put", "node", &k.node)?;
    if k.sealed.keys().all(|g| is_name(g)) {
        Ok(())
    } else {
        Err(malformed(
            "key.put",
            "sealed names a gateway id that is not 1 to 64 of A-Za-z0-9._-",
        ))
    }
}

pub fn head(h: &Head) -> Result<(), FeedError> {
    empty_hash("head", h.seq, &h.hash)?;
    if h.valid_until < h.at {
        return Err(malformed("head", "valid_until is before at"));
    }
    Ok(())
}

/// A snapshot's lists in strictly increasing order of id (nodes, keys) and jti (revoked).
pub fn snapshot(s: &Snapshot) -> Result<(), FeedError> {
    name("snapshot", "gateway", &s.gateway)?;
    empty_hash("snapshot", s.seq, &s.hash)?;
    s.nodes.iter().try_for_each(node)?;
    s.keys.iter().try_for_each(key)?;
    s.revoked
        .iter()
        .try_for_each(|j| id("snapshot", "revoked", j))?;
    s.issuers.iter().try_for_each(issuer)?;
    let ordered = increasing(s.nodes.iter().map(|n| &n.id))
        && increasing(s.keys.iter().map(|k| &k.id))
        && increasing(s.revoked.iter())
        && increasing(s.issuers.iter().map(|i| &i.iss));
    if !ordered {
        return Err(malformed(
            "snapshot",
            "nodes, keys, revoked and issuers must be in strictly increasing order of id",
        ));
    }
    if s.keys
        .iter()
        .any(|k| k.sealed.len() != 1 || !k.sealed.contains_key(&s.gateway))
    {
        return Err(malformed(
            "snapshot",
            "each key must be sealed to the snapshot's gateway only",
        ));
    }
    Ok(())
}

fn increasing<'a>(mut ids: impl Iterator<Item = &'a String>) -> bool {
    let Some(mut last) = ids.next() else {
        return true;
    };
    for id in ids {
        if id.as_bytes() <= last.as_bytes() {
            return false;
        }
        last = id;
    }
    true
}

fn empty_hash(what: &str, seq: u64, hash: &str) -> Result<(), FeedError> {
    if seq == 0 && hash != ZERO_HASH {
        return Err(malformed(
            what,
            "seq 0 (an empty feed) must name the hash of 64 zeros",
        ));
    }
    Ok(())
}

fn id(what: &str, member: &str, value: &str) -> Result<(), FeedError> {
    if is_id(value) {
        Ok(())
    } else {
        Err(malformed(
            what,
            format!("{member} must be 1 to 256 bytes without control characters"),
        ))
    }
}

fn key_id(what: &str, value: &str) -> Result<(), FeedError> {
    if crate::security::is_key_id(value) {
        Ok(())
    } else {
        Err(malformed(what, "key id must be 1 to 64 of A-Za-z0-9_-"))
    }
}

fn name(what: &str, member: &str, value: &str) -> Result<(), FeedError> {
    if is_name(value) {
        Ok(())
    } else {
        Err(malformed(
            what,
            format!("{member} must be a gateway id: 1 to 64 of A-Za-z0-9._-"),
        ))
    }
}
