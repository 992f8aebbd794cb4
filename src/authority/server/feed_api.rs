//! The feed's endpoints (docs/feed.md "Endpoints"): the current head, pages of records with
//! a long-poll woken by the next publish, a gateway's snapshot, and its acks.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::header::{CACHE_CONTROL, ETAG};
use http::{HeaderValue, StatusCode};

use super::reply::{body, error, no_content, op_error, read_text, Answer};
use crate::authority::ops::OpError;
use crate::authority::publish::{now_s, Feed, Plan};
use crate::authority::snapshot;
use crate::authority::state::{Change, Confirmed, StoredGateway};
use crate::feed::keys::parse_hex32;
use crate::feed::record::ZERO_HASH;
use crate::feed::{Ack, VerifyingKey};

/// Records per page, at most and by default.
pub const MAX_LIMIT: usize = 1000;
/// Longest long-poll, in seconds.
pub const MAX_WAIT_S: u64 = 30;

const JOSE: &str = "application/jose";
const JOSE_LINES: &str = "application/jose-lines";

pub fn head(feed: &Feed) -> Answer {
    let mut answer = body(
        StatusCode::OK,
        JOSE,
        Bytes::from(feed.current().head.to_string()),
    );
    answer
        .headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    answer
}

/// `after`, `limit` and `wait` of a records query.
struct Page {
    after: u64,
    limit: usize,
    wait: Duration,
}

fn page(query: Option<&str>) -> Result<Page, String> {
    let (mut after, mut limit, mut wait) = (None, MAX_LIMIT as u64, 0);
    for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        let number = value
            .parse::<u64>()
            .map_err(|_| format!("{name} must be a non-negative integer"))?;
        match name {
            "after" => after = Some(number),
            "limit" if (1..=MAX_LIMIT as u64).contains(&number) => limit = number,
            "limit" => return Err(format!("limit must be 1 to {MAX_LIMIT}")),
            "wait" if number <= MAX_WAIT_S => wait = number,
            "wait" => return Err(format!("wait must be 0 to {MAX_WAIT_S} seconds")),
            other => return Err(format!("unknown parameter {other:?}")),
        }
    }
    Ok(Page {
        after: after.ok_or("after=N is required")?,
        limit: limit as usize,
        wait: Duration::from_secs(wait),
    })
}

pub async fn records(feed: &Arc<Feed>, query: Option<&str>) -> Answer {
    let page = match page(query) {
        Ok(page) => page,
        Err(m) => return error(StatusCode::BAD_REQUEST, &m),
    };
    let mut current = feed.subscribe();
    let seq = current.borrow().seq;
    if page.after > seq {
        return error(
            StatusCode::RANGE_NOT_SATISFIABLE,
            &format!("after={} is beyond the feed's end ({seq})", page.after),
        );
    }
    if page.after == seq && !page.wait.is_zero() {
        // Woken at once by the next publish; an error (the feed gone) ends the wait too.
        let _ = tokio::time::timeout(page.wait, current.wait_for(|c| c.seq > page.after)).await;
    }
    let feed = feed.clone();
    let limit = page.limit;
    let read = tokio::task::spawn_blocking(move || feed.state().records_after(page.after, limit));
    let lines = match read.await {
        Ok(Ok(lines)) => lines,
        Ok(Err(e)) => return op_error(&e.into()),
        Err(_) => return error(StatusCode::INTERNAL_SERVER_ERROR, "internal error"),
    };
    let full = lines.len() == limit;
    let etag = lines.last().map(|l| crate::feed::record::hash(l));
    let mut text = String::with_capacity(lines.iter().map(|l| l.len() + 1).sum());
    for line in &lines {
        text.push_str(line);
        text.push('\n');
    }
    let mut answer = body(StatusCode::OK, JOSE_LINES, text);
    if let (true, Some(etag)) = (full, etag) {
        let headers = answer.headers_mut();
        headers.insert(
            CACHE_CONTROL,
            HeaderValue::from_static("public, max-age=31536000, immutable"),
        );
        if let Ok(value) = HeaderValue::from_str(&format!("\"{etag}\"")) {
            headers.insert(ETAG, value);
        }
    }
    answer
}

pub async fn snapshot(feed: &Arc<Feed>, gateway: &StoredGateway) -> Answer {
    let (feed, id) = (feed.clone(), gateway.id.clone());
    match tokio::task::spawn_blocking(move || snapshot::for_gateway(&feed, &id)).await {
        Ok(Ok(compact)) => body(StatusCode::OK, JOSE, compact),
        Ok(Err(e)) => op_error(&e),
        Err(_) => error(StatusCode::INTERNAL_SERVER_ERROR, "internal error"),
    }
}

/// Verifies an ack against the gateway's signing key and records it; 400 for anything that
/// does not verify or names a record the feed does not have, and then nothing is recorded.
pub async fn ack<B>(feed: &Arc<Feed>, gateway: &StoredGateway, request: B) -> Answer
where
    B: hyper::body::Body,
    B::Error: std::error::Error + Send + Sync + 'static,
{
    let compact = match read_text(request, "ack").await {
        Ok(text) => text,
        Err(answer) => return answer,
    };
    let Ok(raw) = parse_hex32(&gateway.sign, "sign") else {
        return error(StatusCode::INTERNAL_SERVER_ERROR, "internal error");
    };
    let ack = match Ack::verify(compact.trim_end(), &VerifyingKey::new(raw)) {
        Ok(ack) => ack,
        Err(e) => return error(StatusCode::BAD_REQUEST, &e.to_string()),
    };
    if ack.gateway != gateway.id || ack.feed != feed.id {
        return error(StatusCode::BAD_REQUEST, "ack names another gateway or feed");
    }
    let (feed, id) = (feed.clone(), gateway.id.clone());
    let recorded = tokio::task::spawn_blocking(move || {
        feed.publish(|state| {
            // Read again under the writer's lock: a status set meanwhile stays.
            let mut gateway = state
                .gateway(&id)?
                .ok_or_else(|| OpError::NotFound(format!("no gateway {id:?}")))?;
            let known = match state.record(ack.seq)? {
                Some(compact) => crate::feed::record::hash(&compact) == ack.hash,
                None => ack.seq == 0 && ack.hash == ZERO_HASH,
            };
            if !known {
                return Err(OpError::Invalid(format!(
                    "ack names record {} with hash {}, which the feed does not have",
                    ack.seq, ack.hash
                )));
            }
            // A gateway never goes back: an older ack is a replay or a late copy.
            if let Some(before) = &gateway.confirmed {
                if ack.seq < before.seq || (ack.seq == before.seq && ack.at < before.applied_at) {
                    return Err(OpError::Invalid(format!(
                        "ack for record {} at {} is older than the one confirmed (record {} at {})",
                        ack.seq, ack.at, before.seq, before.applied_at
                    )));
                }
            }
            if ack.at > now_s() + 60 {
                return Err(OpError::Invalid(
                    "ack signed more than 60 s in the future".into(),
                ));
            }
            tracing::info!(
                gateway.id = %id,
                feed.seq = ack.seq,
                ack.error = ?ack.error,
                "ack"
            );
            gateway.confirmed = Some(Confirmed {
                seq: ack.seq,
                hash: ack.hash,
                applied_at: ack.at,
                error: ack.error,
                received_at: now_s(),
            });
            // A removed gateway that applied its removal is forgotten.
            let change = match gateway.removed_at {
                Some(at) if ack.seq >= at => {
                    tracing::info!(gateway.id = %id, "removed gateway acked its removal: forgotten");
                    Change::ForgetGateway(id.clone())
                }
                _ => Change::PutGateway(gateway),
            };
            let plan = Plan {
                records: Vec::new(),
                changes: vec![change],
            };
            Ok((plan, ()))
        })
    })
    .await;
    match recorded {
        Ok(Ok(_)) => no_content(),
        Ok(Err(e)) => op_error(&e),
        Err(_) => error(StatusCode::INTERNAL_SERVER_ERROR, "internal error"),
    }
}
