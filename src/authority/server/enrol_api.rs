//! `POST /v1/enrol` (docs/authority.md "Enrolment"): no client certificate and no bearer, the
//! one-time code authenticates. Failed attempts draw from one bucket of
//! [`GUESS_BURST`] refilled one every [`GUESS_REFILL`]: while it is empty every attempt is
//! answered 429 before its code is looked at, so codes cannot be guessed faster than that.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use http::{HeaderValue, StatusCode};
use serde_json::json;
use tokio::time::Instant;

use super::reply::{error, json, op_error, read_json, Answer};
use super::Context;
use crate::authority::ops::{self, EnrolInput, OpError};
use crate::authority::publish::now_s;
use crate::feed::keys::hex;

/// Failed enrolments allowed at once.
pub const GUESS_BURST: u32 = 10;
/// One more failed enrolment allowed per this long.
pub const GUESS_REFILL: Duration = Duration::from_secs(6);

/// The failed-enrolment bucket.
pub struct Guesses(Mutex<(u32, Instant)>);

impl Default for Guesses {
    fn default() -> Self {
        Guesses(Mutex::new((GUESS_BURST, Instant::now())))
    }
}

impl Guesses {
    /// The wait before another attempt is heard, if the bucket is empty.
    fn wait(&self) -> Option<Duration> {
        let mut held = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let (tokens, since) = &mut *held;
        let refills = (since.elapsed().as_secs_f64() / GUESS_REFILL.as_secs_f64()) as u32;
        if refills > 0 {
            *tokens = (*tokens + refills).min(GUESS_BURST);
            *since += GUESS_REFILL * refills;
        }
        if *tokens == GUESS_BURST {
            *since = Instant::now();
        }
        (*tokens == 0).then(|| GUESS_REFILL.saturating_sub(since.elapsed()))
    }

    fn failed(&self) {
        let mut held = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        held.0 = held.0.saturating_sub(1);
    }
}

pub async fn enrol<B>(context: &Arc<Context>, body: B) -> Answer
where
    B: hyper::body::Body,
    B::Error: std::error::Error + Send + Sync + 'static,
{
    if let Some(wait) = context.guesses.wait() {
        let secs = wait.as_secs() + 1;
        let mut answer = error(
            StatusCode::TOO_MANY_REQUESTS,
            &format!("too many failed enrolments; retry in {secs} s"),
        );
        answer
            .headers_mut()
            .insert(http::header::RETRY_AFTER, HeaderValue::from(secs));
        return answer;
    }
    let input = match read_json::<EnrolInput, _>(body).await {
        Ok(input) => input,
        Err(answer) => return answer,
    };
    let id = input.id.clone();
    let ctx = context.clone();
    let published = tokio::task::spawn_blocking(move || {
        ctx.feed
            .publish(|s| ops::gateway_enrol(s, input, &ctx.ca, now_s()))
    })
    .await;
    match published {
        Ok(Ok((seq, hash, enrolled))) => {
            tracing::info!(gateway.id = %id, "gateway enrolled");
            json(
                StatusCode::OK,
                &json!({
                    "id": id,
                    "cert": enrolled.cert_pem,
                    "feed": context.feed.id,
                    "feed_key": hex(context.feed.key().public().raw()),
                    "seq": seq,
                    "hash": hash,
                }),
            )
        }
        Ok(Err(e)) => {
            if matches!(e, OpError::Unauthorized(_)) {
                context.guesses.failed();
                tracing::warn!(gateway.id = %id.escape_debug(), error = %e, "enrolment refused");
            }
            op_error(&e)
        }
        Err(_) => error(StatusCode::INTERNAL_SERVER_ERROR, "internal error"),
    }
}
