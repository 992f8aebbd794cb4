//! `POST /v1/enrol` (docs/authority.md "Enrolment"): no client certificate and no bearer, the
//! one-time code authenticates. Failed attempts are charged to the gateway id the request
//! names, a bucket of [`GUESS_BURST`] per id refilled one every [`GUESS_REFILL`]: while an id's
//! bucket is empty every attempt for that id is answered 429 before its code is looked at, so
//! one id's code cannot be guessed faster than that, and a flood against one id leaves the
//! others enrolling. An attempt takes from its bucket when it is heard (so concurrent guesses
//! cannot all pass the check) and gives it back unless it failed. At most [`GUESS_TABLE`] ids
//! are held; a full bucket is forgotten.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use http::{HeaderValue, StatusCode};
use serde_json::json;
use tokio::time::Instant;

use super::reply::{error, json, op_error, read_json, Answer};
use super::Context;
use crate::authority::ops::{self, is_gateway_id, EnrolInput, OpError};
use crate::authority::publish::now_s;
use crate::feed::keys::hex;

/// Failed enrolments allowed at once for one gateway id.
pub const GUESS_BURST: u32 = 10;
/// One more failed enrolment allowed per this long, per id.
pub const GUESS_REFILL: Duration = Duration::from_secs(6);
/// Ids whose buckets are held at once; beyond it the fullest bucket is forgotten.
pub const GUESS_TABLE: usize = 4096;

/// One id's failed-enrolment bucket.
struct Bucket {
    tokens: u32,
    since: Instant,
}

impl Bucket {
    fn refill(&mut self) {
        let refills = (self.since.elapsed().as_secs_f64() / GUESS_REFILL.as_secs_f64()) as u32;
        if refills > 0 {
            self.tokens = self.tokens.saturating_add(refills).min(GUESS_BURST);
            self.since += GUESS_REFILL * refills;
        }
        if self.tokens == GUESS_BURST {
            self.since = Instant::now();
        }
    }
}

/// The failed-enrolment buckets, by gateway id.
#[derive(Default)]
pub struct Guesses(Mutex<HashMap<String, Bucket>>);

impl Guesses {
    /// Takes one attempt from `id`'s bucket; the wait instead if it is empty.
    fn take(&self, id: &str) -> Result<(), Duration> {
        let mut held = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if !held.contains_key(id) && held.len() >= GUESS_TABLE {
            make_room(&mut held);
        }
        let bucket = held.entry(id.to_owned()).or_insert_with(|| Bucket {
            tokens: GUESS_BURST,
            since: Instant::now(),
        });
        bucket.refill();
        if bucket.tokens == 0 {
            return Err(GUESS_REFILL.saturating_sub(bucket.since.elapsed()));
        }
        bucket.tokens -= 1;
        Ok(())
    }

    /// Gives back the attempt `take` took for `id`: it did not fail.
    fn give_back(&self, id: &str) {
        let mut held = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(bucket) = held.get_mut(id) {
            bucket.tokens = (bucket.tokens + 1).min(GUESS_BURST);
            bucket.refill();
            if bucket.tokens == GUESS_BURST {
                held.remove(id);
            }
        }
    }
}

/// Forgets every full bucket, and if none was, the fullest (the longest untouched of those).
fn make_room(held: &mut HashMap<String, Bucket>) {
    held.retain(|_, bucket| {
        bucket.refill();
        bucket.tokens < GUESS_BURST
    });
    if held.len() < GUESS_TABLE {
        return;
    }
    let fullest = held
        .iter()
        .max_by_key(|(_, b)| (b.tokens, std::cmp::Reverse(b.since)))
        .map(|(id, _)| id.clone());
    if let Some(id) = fullest {
        held.remove(&id);
    }
}

pub async fn enrol<B>(context: &Arc<Context>, body: B) -> Answer
where
    B: hyper::body::Body,
    B::Error: std::error::Error + Send + Sync + 'static,
{
    let input = match read_json::<EnrolInput, _>(body).await {
        Ok(input) => input,
        Err(answer) => return answer,
    };
    // A malformed id is refused (400) before any bucket: it names no gateway to charge.
    let charged = is_gateway_id(&input.id);
    if charged {
        if let Err(wait) = context.guesses.take(&input.id) {
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
    }
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
            context.guesses.give_back(&id);
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
                tracing::warn!(gateway.id = %id.escape_debug(), error = %e, "enrolment refused");
            } else if charged {
                context.guesses.give_back(&id);
            }
            op_error(&e)
        }
        Err(_) => error(StatusCode::INTERNAL_SERVER_ERROR, "internal error"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_stays_bounded_and_an_emptied_bucket_stays_empty() {
        let guesses = Guesses::default();
        for _ in 0..GUESS_BURST {
            guesses.take("gw-x").unwrap();
        }
        assert!(guesses.take("gw-x").is_err());
        for n in 0..GUESS_TABLE * 2 {
            guesses.take(&format!("gw-{n}")).unwrap();
        }
        let held = guesses.0.lock().unwrap();
        assert_eq!(held.len(), GUESS_TABLE);
        assert_eq!(
            held["gw-x"].tokens, 0,
            "the fullest go first, not the emptied one"
        );
        drop(held);
        assert!(guesses.take("gw-x").is_err());
        // A bucket given back to full is not held at all.
        guesses.take("gw-fresh").unwrap();
        guesses.give_back("gw-fresh");
        assert!(!guesses.0.lock().unwrap().contains_key("gw-fresh"));
    }
}
