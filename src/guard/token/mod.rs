//! The access-control token stage (TS-0003 §7.2, §7.3.2.6, §7.4.2).
//!
//! In: the tokens a request carries (`tkns`; `tids` too, which cannot be resolved here and so
//! are refused), whether its target requires one, `now`. Out: the first presented token's
//! [`TokenGrant`] for the policy, or a [`Denial`] at [`Stage::Token`].
//!
//! Every presented token must hold — one invalid token denies the request, even beside a valid
//! one: fail closed, and no guessing which token the sender meant. Per token: [`verify`]
//! (signature, issuer, audience, claims; cached by SHA-256 of the token text so a repeated
//! token costs no signature check), then on every use, cached or not: `nbf`/`exp` with the
//! configured skew, holder (`azp`) = `fr`, not revoked in the repository, and — when a limit
//! applies — one more use counted durably ([`uses`]: reserved in flushed blocks) within the
//! limit. Uses are counted only
//! once every token of the request passed the other checks. Revocation is written to the
//! repository and evicts the cached entry at once; the repository is read on every use too,
//! so no verification in flight can put a revoked token back in use.

mod config;
mod grant;
mod trust;
mod uses;
mod verify;

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use moka::sync::Cache;
use sha2::{Digest, Sha256};

use super::{Denial, Reason, Stage, TokenGrant};
use crate::primitive::Primitive;
use crate::store::{Store, StoreError};
pub use config::{IssuerConfig, IssuerKey, ObtainConfig, TokenAlgorithm, TokensConfig};
use trust::Trust;
use uses::{UseError, Uses};
use verify::Verified;
pub use verify::{TokenError, MAX_ID_CHARS, MAX_TOKEN_BYTES};

/// At most this many tokens in one request.
pub const MAX_TOKENS: usize = 8;

/// How long a verified token stays cached at most (its `exp` is checked on every use anyway).
const CACHE_TTL: Duration = Duration::from_secs(3600);

pub struct Tokens {
    trust: Trust,
    audience: String,
    max_skew_s: u64,
    request_info: Option<String>,
    /// Verified tokens with the generation of the trusted issuers they were verified under.
    cache: Cache<[u8; 32], (u64, Arc<Verified>)>,
    /// `None` only for [`Tokens::none`], which has no issuers and so never reaches it.
    store: Option<Arc<dyn Store>>,
    uses: Uses,
}

impl Tokens {
    /// The stage as configured; `audience` is this gateway's CSE-ID.
    pub fn new(
        config: &TokensConfig,
        audience: &str,
        store: Arc<dyn Store>,
    ) -> Result<Self, String> {
        let tokens = Tokens {
            trust: Trust::new(config.issuers.clone())?,
            audience: audience.to_owned(),
            max_skew_s: config.max_skew.as_secs(),
            request_info: config.token_request_info.clone(),
            cache: cache(config.cache_entries),
            store: Some(store),
            uses: Uses::new(config.cache_entries),
        };
        tokens.reload_issuers();
        Ok(tokens)
    }

    /// Reads the feed's token issuers from the repository and trusts exactly those (beside
    /// the configured ones) from the next token on. A repository that cannot be read trusts
    /// no feed issuer (fail closed).
    pub fn reload_issuers(&self) {
        let Some(store) = &self.store else {
            return;
        };
        let feed = store.issuers().unwrap_or_else(|e| {
            tracing::error!(error = %e, "tokens: feed issuers unreadable; none trusted");
            Vec::new()
        });
        self.trust.replace_feed(&feed);
        self.cache.invalidate_all();
    }

    /// Whether `token` would pass the stage for `holder` now, without counting a use: its
    /// `exp` if so. For tokens the gateway obtained itself, before it attaches one.
    pub fn accepts(&self, token: &str, holder: &str, now: SystemTime) -> Result<u64, TokenError> {
        let now_s = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let v = self
            .verified(token)
            .and_then(|v| self.admit(v, holder, now_s))?;
        Ok(v.exp)
    }

    /// No issuers: every presented token is refused (unknown issuer); none is required.
    pub fn none() -> Self {
        Tokens {
            trust: Trust::new(Vec::new()).expect("no issuers"),
            audience: String::new(),
            max_skew_s: 0,
            request_info: None,
            cache: cache(16),
            store: None,
            uses: Uses::new(16),
        }
    }

    /// `tqf`: where clients obtain tokens, for the answer to a token denial.
    pub fn request_info(&self) -> Option<&str> {
        self.request_info.as_deref()
    }

    /// The stage: `Ok(None)` when no token was presented and none is required.
    pub fn check(
        &self,
        p: &Primitive,
        required: bool,
        now: SystemTime,
    ) -> Result<Option<Arc<TokenGrant>>, Denial> {
        let deny = |reason: Reason| Denial::new(Stage::Token, reason);
        let broke = |index: usize| move |rule: TokenError| deny(Reason::Token { index, rule });
        let tokens = &p.security.tokens;
        if !p.security.token_ids.is_empty() {
            return Err(deny(Reason::TokenIdsUnresolvable));
        }
        if tokens.is_empty() {
            return if required {
                Err(deny(Reason::TokenRequired {
                    target: p.to.clone(),
                }))
            } else {
                Ok(None)
            };
        }
        if tokens.len() > MAX_TOKENS {
            return Err(deny(Reason::TooManyTokens { max: MAX_TOKENS }));
        }
        let now_s = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let mut admitted = Vec::with_capacity(tokens.len());
        for (i, token) in tokens.iter().enumerate() {
            let checked = self
                .verified(token)
                .and_then(|v| self.admit(v, &p.fr, now_s));
            admitted.push(checked.map_err(broke(i))?);
        }
        for (i, v) in admitted.iter().enumerate() {
            self.count_use(v).map_err(broke(i))?;
        }
        Ok(admitted.first().map(|v| v.grant.clone()))
    }

    /// Revokes token `jti` in the repository and drops it from the cache; `Ok(false)` if it
    /// was revoked already.
    pub fn revoke(&self, jti: &str, now: SystemTime) -> Result<bool, StoreError> {
        let at = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let fresh = match &self.store {
            Some(store) => store.revoke_token(jti, at)?,
            None => false,
        };
        let jti = jti.to_owned();
        // Registered with support_invalidation_closures: cannot fail.
        let _ = self
            .cache
            .invalidate_entries_if(move |_, (_, v)| v.jti == jti);
        Ok(fresh)
    }

    fn verified(&self, token: &str) -> Result<Arc<Verified>, TokenError> {
        if token.len() > MAX_TOKEN_BYTES {
            return Err(TokenError::TooLarge);
        }
        let key: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        let trusted = self.trust.current();
        match self.cache.get(&key) {
            Some((generation, hit)) if generation == trusted.generation => return Ok(hit),
            _ => {}
        }
        let verified = Arc::new(verify::verify(token, &trusted, &self.audience)?);
        self.cache
            .insert(key, (trusted.generation, verified.clone()));
        Ok(verified)
    }

    /// The per-use checks except counting.
    fn admit(&self, v: Arc<Verified>, fr: &str, now_s: u64) -> Result<Arc<Verified>, TokenError> {
        verify::in_time(&v, now_s, self.max_skew_s)?;
        if v.holder != fr {
            return Err(TokenError::WrongHolder {
                holder: v.holder.clone(),
                fr: fr.to_owned(),
            });
        }
        if self.store()?.token_revoked(&v.jti).map_err(repository)? {
            return Err(TokenError::Revoked(v.jti.clone()));
        }
        Ok(v)
    }

    fn count_use(&self, v: &Verified) -> Result<(), TokenError> {
        let Some(limit) = v.max_uses else {
            return Ok(());
        };
        match self.uses.count(self.store()?, &v.jti, limit) {
            Ok(_) => Ok(()),
            Err(UseError::UsedUp { uses }) => Err(TokenError::UsedUp {
                jti: v.jti.clone(),
                uses,
                limit,
            }),
            Err(UseError::Repository(e)) => Err(repository(e)),
        }
    }

    fn store(&self) -> Result<&dyn Store, TokenError> {
        self.store
            .as_deref()
            .ok_or_else(|| TokenError::Repository("no repository".into()))
    }
}

fn repository(e: StoreError) -> TokenError {
    TokenError::Repository(e.to_string())
}

fn cache(entries: u64) -> Cache<[u8; 32], (u64, Arc<Verified>)> {
    Cache::builder()
        .max_capacity(entries)
        .time_to_live(CACHE_TTL)
        .support_invalidation_closures()
        .build()
}

#[cfg(test)]
mod tests;
