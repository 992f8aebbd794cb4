//! Audit checkpoints (docs/authority.md "Audit checkpoints"): a gateway POSTs its own, and
//! reads back what the authority holds for it; the operator reads any gateway's.

use std::sync::Arc;

use http::StatusCode;
use serde_json::json;

use super::reply::{error, json, op_error, read_text, Answer};
use crate::authority::anchors::Stored;
use crate::authority::ops::OpError;
use crate::authority::publish::Feed;
use crate::authority::state::StoredGateway;

/// Verifies and stores one checkpoint: 201 when new, 200 when already held, 400 when it does
/// not verify with the gateway's key or is for another log, 409 when another checkpoint over
/// the same count is held.
pub async fn put<B>(feed: &Arc<Feed>, gateway: &StoredGateway, request: B) -> Answer
where
    B: hyper::body::Body,
    B::Error: std::error::Error + Send + Sync + 'static,
{
    let compact = match read_text(request, "checkpoint").await {
        Ok(text) => text.trim_end().to_owned(),
        Err(answer) => return answer,
    };
    let (feed, gateway) = (feed.clone(), gateway.clone());
    let id = gateway.id.clone();
    let stored =
        tokio::task::spawn_blocking(move || feed.state().anchors().put(&gateway, &compact)).await;
    match stored {
        Ok(Ok((stored, held))) => {
            let status = match stored {
                Stored::New => StatusCode::CREATED,
                Stored::Duplicate => StatusCode::OK,
            };
            tracing::info!(gateway.id = %id, count = held.count, new = (stored == Stored::New), "audit checkpoint");
            json(status, &json!({ "count": held.count, "head": held.head }))
        }
        Ok(Err(e)) => {
            tracing::warn!(gateway.id = %id, error = %e, "audit checkpoint refused");
            op_error(&e)
        }
        Err(_) => error(StatusCode::INTERNAL_SERVER_ERROR, "internal error"),
    }
}

/// The checkpoints held for gateway `id`, oldest first; 404 for a gateway the authority
/// does not know.
pub async fn list(feed: &Arc<Feed>, id: &str) -> Answer {
    let (feed, id) = (feed.clone(), id.to_owned());
    let read = tokio::task::spawn_blocking(move || {
        let state = feed.state();
        if state.gateway(&id)?.is_none() {
            return Err(OpError::NotFound(format!("no gateway {id:?}")));
        }
        let held = state.anchors().list(&id)?;
        Ok(json!({ "gateway": id, "checkpoints": held }))
    })
    .await;
    match read {
        Ok(Ok(value)) => json(StatusCode::OK, &value),
        Ok(Err(e)) => op_error(&e),
        Err(_) => error(StatusCode::INTERNAL_SERVER_ERROR, "internal error"),
    }
}
