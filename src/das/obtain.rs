//! One `[[tokens.obtain]]` node's token: held while it is fresh — more than a fifth of its
//! lifetime left and uses left by the gateway's own count — and obtained again otherwise.

use std::sync::Arc;
use std::time::Instant;

use tokio::sync::Mutex;

use super::{Das, RETRY_AFTER};
use crate::guard::token::ObtainConfig;

pub struct Slot {
    config: ObtainConfig,
    held: Mutex<Held>,
}

#[derive(Default)]
struct Held {
    token: Option<Arc<str>>,
    /// When it was obtained and when it expires (Unix seconds).
    from: u64,
    exp: u64,
    uses: Option<u64>,
    used: u64,
    /// No new attempt before this, after a failed one.
    quiet_until: Option<Instant>,
}

impl Held {
    fn fresh(&self, now: u64) -> bool {
        let margin = (self.exp.saturating_sub(self.from) / 5).max(1);
        self.token.is_some()
            && now.saturating_add(margin) < self.exp
            && self.uses.is_none_or(|u| self.used < u)
    }
}

impl Slot {
    pub fn new(config: ObtainConfig) -> Self {
        Slot {
            config,
            held: Mutex::new(Held::default()),
        }
    }

    /// The token to attach to one more request, or none (the authority is away).
    pub async fn token(&self, das: &Das) -> Option<Arc<str>> {
        let mut held = self.held.lock().await;
        let now = crate::sync::follower::unix_now();
        if !held.fresh(now) {
            if held.quiet_until.is_some_and(|t| Instant::now() < t) {
                return None;
            }
            match das.obtain(&self.config).await {
                Ok(answer) => {
                    tracing::info!(node = %self.config.node, jti = %answer.jti, exp = answer.exp, "tokens: obtained a token on the node's behalf");
                    *held = Held {
                        token: Some(answer.token.into()),
                        from: now,
                        exp: answer.exp,
                        uses: answer.uses,
                        used: 0,
                        quiet_until: None,
                    };
                }
                Err(e) => {
                    tracing::warn!(node = %self.config.node, error = %e, "tokens: no token obtained; the request goes on without");
                    held.quiet_until = Some(Instant::now() + RETRY_AFTER);
                    return None;
                }
            }
        }
        held.used += 1;
        held.token.clone()
    }
}
