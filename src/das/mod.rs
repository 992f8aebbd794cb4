//! The gateway as client of the authority's token service (docs/authority.md "Tokens",
//! docs/message-checks.md "Tokens from the authority"), before the guard decides a request:
//!
//! - [`Das::resolve_ids`]: token ids (`tids`) are fetched from the authority
//!   (`GET /v1/das/tokens/{jti}`), cached, and put beside the request's `tkns`, so that the
//!   token stage verifies them like any presented token. An id the authority does not know is
//!   a token-stage denial; an authority that cannot be asked (down, slow, too many look-ups in
//!   flight) is one too ([`Reason::TokenIdsUnresolvable`]): fail closed.
//! - [`Das::attach`]: for a `[[tokens.obtain]]` node whose request carries no token, a token
//!   obtained on its behalf (`POST /v1/das/tokens` with the gateway's client certificate) is
//!   attached — verified by the token stage first, then written into the forwarded request
//!   ([`crate::guard::Addition::Token`]). Held per node, used until a fifth of its lifetime
//!   is left or its uses are spent, then obtained again. Only for requests whose originator
//!   the transport authenticated (as `insert` does for check values). The authority away: the
//!   request goes on without a token and the upstream decides; a failed attempt is not
//!   repeated for [`RETRY_AFTER`].
//!
//! Bounds: every exchange within `sync.request_timeout_ms`, at most [`MAX_IN_FLIGHT`]
//! look-ups at once, one obtain per node at a time.

mod obtain;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use moka::sync::Cache;
use serde::Deserialize;
use tokio::sync::Semaphore;

use crate::guard::token::{TokenError, Tokens, TokensConfig, MAX_TOKENS};
use crate::guard::{Denial, Reason};
use crate::primitive::Primitive;
use crate::sync::client::{Client, ClientError};
use obtain::Slot;

/// Look-ups and obtains in flight at once, over all requests.
pub const MAX_IN_FLIGHT: usize = 16;
/// After a failed obtain, requests of that node go without a token this long.
pub const RETRY_AFTER: Duration = Duration::from_secs(5);
/// How long a resolved token id is remembered (the token's own `exp` is checked on every use).
const RESOLVED_TTL: Duration = Duration::from_secs(600);

/// The authority's answer to a token request or look-up.
#[derive(Deserialize)]
struct Answer {
    token: String,
    jti: String,
    exp: u64,
    uses: Option<u64>,
}

pub struct Das {
    client: Arc<Client>,
    tokens: Arc<Tokens>,
    resolve_ids: bool,
    resolved: Cache<String, Arc<str>>,
    slots: HashMap<String, Slot>,
    in_flight: Semaphore,
}

impl Das {
    pub fn new(client: Arc<Client>, tokens: Arc<Tokens>, config: &TokensConfig) -> Self {
        Das {
            client,
            tokens,
            resolve_ids: config.resolve_ids,
            resolved: Cache::builder()
                .max_capacity(config.cache_entries)
                .time_to_live(RESOLVED_TTL)
                .build(),
            slots: config
                .obtain
                .iter()
                .map(|o| (o.node.clone(), Slot::new(o.clone())))
                .collect(),
            in_flight: Semaphore::new(MAX_IN_FLIGHT),
        }
    }

    /// Whether `p`'s token ids are resolved here.
    pub fn resolves(&self, p: &Primitive) -> bool {
        self.resolve_ids && !p.security.token_ids.is_empty()
    }

    /// Replaces `p`'s token ids with the tokens they name.
    pub async fn resolve_ids(&self, p: &mut Primitive) -> Result<(), Denial> {
        let deny = Denial::token;
        let presented = p.security.tokens.len();
        if presented + p.security.token_ids.len() > MAX_TOKENS {
            return Err(deny(Reason::TooManyTokens { max: MAX_TOKENS }));
        }
        let mut found = Vec::with_capacity(p.security.token_ids.len());
        for (i, id) in p.security.token_ids.iter().enumerate() {
            let token = self.resolve(id).await.map_err(|e| match e {
                Lookup::Unknown => deny(Reason::Token {
                    index: presented + i,
                    rule: TokenError::UnknownId(id.chars().take(64).collect()),
                }),
                Lookup::Failed(error) => {
                    tracing::warn!(error = %error, "tokens: a token id could not be resolved at the authority");
                    deny(Reason::TokenIdsUnresolvable)
                }
            })?;
            found.push(token.to_string());
        }
        p.security.tokens.extend(found);
        p.security.token_ids.clear();
        Ok(())
    }

    async fn resolve(&self, id: &str) -> Result<Arc<str>, Lookup> {
        if let Some(hit) = self.resolved.get(id) {
            return Ok(hit);
        }
        let _permit = self
            .in_flight
            .try_acquire()
            .map_err(|_| Lookup::Failed("too many look-ups in flight".into()))?;
        let answer = match self.client.token(id).await {
            Ok(text) => text,
            Err(ClientError::Status { status, .. }) if status == http::StatusCode::NOT_FOUND => {
                return Err(Lookup::Unknown)
            }
            Err(e) => return Err(Lookup::Failed(e.to_string())),
        };
        let answer: Answer =
            serde_json::from_str(&answer).map_err(|e| Lookup::Failed(e.to_string()))?;
        if answer.jti != id {
            return Err(Lookup::Failed(format!(
                "the authority answered token {:?} for {:?}",
                answer.jti, id
            )));
        }
        let token: Arc<str> = answer.token.into();
        self.resolved.insert(id.to_owned(), token.clone());
        Ok(token)
    }

    /// Attaches a token obtained on behalf of `p`'s originator, when it is a
    /// `[[tokens.obtain]]` node, authenticated by the transport, and `p` carries none.
    pub async fn attach(&self, p: &mut Primitive) {
        let Some(slot) = self.slots.get(&p.fr) else {
            return;
        };
        let carries = !p.security.tokens.is_empty() || !p.security.token_ids.is_empty();
        if carries || !p.peer.authenticated_as(&p.fr) {
            return;
        }
        if let Some(token) = slot.token(self).await {
            p.security.tokens.push(token.to_string());
            p.security.attached = Some(token.to_string());
        }
    }

    /// A new token for `slot`'s node, checked by the token stage.
    async fn obtain(&self, config: &crate::guard::token::ObtainConfig) -> Result<Answer, String> {
        let _permit = self
            .in_flight
            .try_acquire()
            .map_err(|_| "too many requests to the authority in flight".to_owned())?;
        let body = serde_json::json!({
            "for": config.node,
            "aud": config.aud,
            "ris": config.ris,
            "ops": config.ops,
        });
        let text = self
            .client
            .obtain_token(body.to_string())
            .await
            .map_err(|e| e.to_string())?;
        let answer: Answer = serde_json::from_str(&text).map_err(|e| e.to_string())?;
        self.tokens
            .accepts(&answer.token, &config.node, SystemTime::now())
            .map_err(|e| format!("the obtained token would not pass this gateway: {e}"))?;
        Ok(answer)
    }
}

enum Lookup {
    Unknown,
    Failed(String),
}
