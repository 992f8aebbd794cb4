//! `[das]` of `authority.toml`: the authority as dynamic authorization server — its token
//! signing key, the `iss` of its tokens, and the grant rules `[[das.grants]]` that say who may
//! obtain which tokens. Validated into [`DasConfig`]; every error is located at its key.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::guard::Pattern;

/// Operation names a grant may list, as `tkps` `acop` bits (1, 2, 4, 8, 16, 32).
pub const OPERATIONS: [&str; 6] = [
    "create", "retrieve", "update", "delete", "notify", "discover",
];

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileDas {
    issuer: String,
    token_key: String,
    max_issued: Option<u64>,
    #[serde(default)]
    grants: Vec<FileGrant>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileGrant {
    #[serde(default)]
    nodes: Vec<String>,
    #[serde(default)]
    groups: Vec<String>,
    targets: Vec<String>,
    operations: Vec<String>,
    ttl_s: u64,
    uses: Option<u64>,
    aud: Vec<String>,
    #[serde(default)]
    via: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct DasConfig {
    /// The tokens' `iss`.
    pub issuer: String,
    /// The Ed25519 seed file (64 hex digits); created at first start if missing.
    pub token_key: PathBuf,
    /// Issued tokens remembered for `GET /v1/das/tokens/{jti}` (until they expire).
    pub max_issued: u64,
    pub grants: Vec<Grant>,
}

#[derive(Debug, Clone)]
pub struct Grant {
    pub nodes: Vec<String>,
    pub groups: Vec<String>,
    pub targets: Vec<Pattern>,
    /// `acop` bits of the operations it allows.
    pub operations: u64,
    pub ttl_s: u64,
    pub uses: Option<u64>,
    pub aud: Vec<String>,
    /// Gateways that may obtain tokens on the node's behalf.
    pub via: Vec<String>,
}

/// The `acop` bit of an operation name.
pub fn operation_bit(name: &str) -> Option<u64> {
    OPERATIONS.iter().position(|o| *o == name).map(|i| 1 << i)
}

fn printable(text: &str, max: usize) -> bool {
    !text.is_empty() && text.len() <= max && !text.chars().any(char::is_control)
}

pub fn validate(raw: FileDas, base: &Path, err: &mut impl FnMut(String, String)) -> DasConfig {
    if !printable(&raw.issuer, 256) {
        err(
            "das.issuer".into(),
            "expected 1 to 256 printable characters (the tokens' iss)".into(),
        );
    }
    if raw.token_key.is_empty() {
        err(
            "das.token_key".into(),
            "must not be empty (expected a path)".into(),
        );
    }
    let max_issued = raw.max_issued.unwrap_or(100_000);
    if !(16..=10_000_000).contains(&max_issued) {
        err(
            "das.max_issued".into(),
            format!("{max_issued} is out of range (expected 16 to 10000000)"),
        );
    }
    let grants = raw
        .grants
        .into_iter()
        .enumerate()
        .map(|(i, g)| grant(g, &format!("das.grants[{i}]"), err))
        .collect();
    DasConfig {
        issuer: raw.issuer,
        token_key: base.join(raw.token_key),
        max_issued,
        grants,
    }
}

fn grant(g: FileGrant, at: &str, err: &mut impl FnMut(String, String)) -> Grant {
    if g.nodes.is_empty() && g.groups.is_empty() {
        err(
            format!("{at}.nodes"),
            "a grant names at least one node or group".into(),
        );
    }
    if g.nodes.iter().chain(&g.groups).any(|n| !printable(n, 256)) {
        err(
            format!("{at}.nodes"),
            "node ids and groups are 1 to 256 printable characters".into(),
        );
    }
    if g.targets.is_empty() || g.targets.iter().any(|t| !t.starts_with('/') && t != "*") {
        err(
            format!("{at}.targets"),
            "expected at least one target pattern, each starting with / (or \"*\")".into(),
        );
    }
    let mut operations = 0;
    for name in &g.operations {
        match operation_bit(name) {
            Some(bit) => operations |= bit,
            None => err(
                format!("{at}.operations"),
                format!(
                    "{name:?} is not an operation (expected {})",
                    OPERATIONS.join(", ")
                ),
            ),
        }
    }
    if operations == 0 {
        err(
            format!("{at}.operations"),
            "expected at least one operation".into(),
        );
    }
    if !(1..=86_400).contains(&g.ttl_s) {
        err(
            format!("{at}.ttl_s"),
            format!("{} is out of range (expected 1 to 86400)", g.ttl_s),
        );
    }
    if g.uses.is_some_and(|u| u == 0 || u > u64::from(u32::MAX)) {
        err(
            format!("{at}.uses"),
            "expected 1 to 4294967295 (or leave it out: no use limit)".into(),
        );
    }
    let cse_id = |a: &String| a.len() > 1 && a.starts_with('/') && !a[1..].contains('/');
    if g.aud.is_empty() || !g.aud.iter().all(cse_id) {
        err(
            format!("{at}.aud"),
            "expected at least one CSE-ID (\"/\" and a name, e.g. \"/id-mn\")".into(),
        );
    }
    if !g.via.iter().all(|v| crate::feed::check::is_name(v)) {
        err(
            format!("{at}.via"),
            "expected gateway ids (1 to 64 of A-Z a-z 0-9 . _ -)".into(),
        );
    }
    Grant {
        nodes: g.nodes,
        groups: g.groups,
        targets: g.targets.into_iter().map(Pattern::new).collect(),
        operations,
        ttl_s: g.ttl_s,
        uses: g.uses,
        aud: g.aud,
        via: g.via,
    }
}
