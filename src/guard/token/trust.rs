//! Which issuers the token stage trusts: those of `[[tokens.issuers]]` and those the feed
//! gave (`issuer.put`, kept in the repository), swapped whole when the feed changes them.
//!
//! In: the configured issuers, the repository's feed issuers. Out: one [`Trusted`] set,
//! numbered by `generation` so that a token verified under an older set is verified again.
//! A clash — one `iss` both configured and from the feed — trusts neither key for it: fail
//! closed (two keys for one name is a mistake or an attack, and we do not guess which one
//! is meant); tokens of that `iss` are refused with [`super::TokenError::IssuerClash`] and
//! the clash is logged on every reload. A feed issuer whose key is unusable is left out and
//! logged.

use std::collections::HashSet;
use std::sync::Arc;

use arc_swap::ArcSwap;
use base64::Engine;

use super::verify::Issuer;
use super::{IssuerConfig, IssuerKey};
use crate::store::FeedIssuer;

pub struct Trusted {
    pub issuers: Vec<Issuer>,
    /// `iss` values both configured and from the feed: refused.
    pub clashes: HashSet<String>,
    pub generation: u64,
}

pub struct Trust {
    configured: Vec<IssuerConfig>,
    current: ArcSwap<Trusted>,
}

impl Trust {
    pub fn new(configured: Vec<IssuerConfig>) -> Result<Self, String> {
        let issuers = configured
            .iter()
            .map(Issuer::new)
            .collect::<Result<_, _>>()?;
        Ok(Trust {
            configured,
            current: ArcSwap::from_pointee(Trusted {
                issuers,
                clashes: HashSet::new(),
                generation: 0,
            }),
        })
    }

    pub fn current(&self) -> Arc<Trusted> {
        self.current.load_full()
    }

    /// Puts `feed` in force beside the configured issuers.
    pub fn replace_feed(&self, feed: &[FeedIssuer]) {
        let names: HashSet<&str> = self.configured.iter().map(|i| i.iss.as_str()).collect();
        let clashes: HashSet<String> = feed
            .iter()
            .filter(|f| names.contains(f.iss.as_str()))
            .map(|f| f.iss.clone())
            .collect();
        for iss in &clashes {
            tracing::error!(iss = %iss, "tokens: issuer is both in [[tokens.issuers]] and in the feed; its tokens are refused until one of them goes");
        }
        let mut issuers: Vec<Issuer> = Vec::new();
        for config in self.configured.iter().filter(|c| !clashes.contains(&c.iss)) {
            // Built once in `new` already: cannot fail now.
            issuers.extend(Issuer::new(config).ok());
        }
        for f in feed.iter().filter(|f| !clashes.contains(&f.iss)) {
            match from_feed(f) {
                Ok(issuer) => issuers.push(issuer),
                Err(e) => {
                    tracing::error!(iss = %f.iss, error = %e, "tokens: feed issuer unusable; its tokens are refused")
                }
            }
        }
        let generation = self.current.load().generation + 1;
        self.current.store(Arc::new(Trusted {
            issuers,
            clashes,
            generation,
        }));
    }
}

fn from_feed(f: &FeedIssuer) -> Result<Issuer, String> {
    let raw: [u8; 32] = crate::feed::keys::parse_hex32(&f.key, "key").map_err(|e| e.to_string())?;
    let x = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw);
    Issuer::new(&IssuerConfig::new(
        f.iss.clone(),
        IssuerKey::Ed25519X(x),
        f.max_uses,
    ))
}
