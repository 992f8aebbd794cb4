//! The operator API (docs/authority.md): nodes, keys, token revocations, gateways, the feed,
//! decoded, and the authority's metrics (OpenMetrics text, [`crate::authority::metrics`]).
//! Every call that publishes answers `{"seq": N, "hash": "..."}` of the last
//! record it published, after that record is on disk.

use std::sync::Arc;

use http::{Method, StatusCode};
use serde_json::{json, Value};

use super::reply::{body, error, json, op_error, read_json, Answer};
use crate::authority::ops::{self, GatewayInput, KeyInput, NodeFields, NodeInput, OpError};
use crate::authority::publish::{Feed, Plan};
use crate::authority::state::{State, StoredGateway};
use crate::feed::{GatewayStatus, Signed, VerifyingKey};
use crate::store::NodeStatus;

/// Serves one operator request; `path` is the percent-decoded segments after `/v1/`.
pub async fn route<B>(
    feed: &Arc<Feed>,
    enrol_code_ttl_s: u64,
    method: &Method,
    path: &[String],
    query: Option<&str>,
    body: B,
) -> Answer
where
    B: hyper::body::Body,
    B::Error: std::error::Error + Send + Sync + 'static,
{
    let segments: Vec<&str> = path.iter().map(String::as_str).collect();
    let get = method == Method::GET;
    let post = method == Method::POST;
    match segments[..] {
        ["nodes"] if get => read(feed, |s| Ok(json!({ "nodes": s.nodes()? }))).await,
        ["nodes"] if post => match read_json::<NodeInput, _>(body).await {
            Ok(input) => publish(feed, move |s| plain(ops::enrol(s, input))).await,
            Err(answer) => answer,
        },
        ["nodes", id] if get => {
            let id = id.to_owned();
            read(feed, move |s| show_node(s, &id)).await
        }
        ["nodes", id] if method == Method::PUT => match read_json::<NodeFields, _>(body).await {
            Ok(fields) => {
                let input = fields.with_id(id);
                publish(feed, move |s| plain(ops::update(s, input))).await
            }
            Err(answer) => answer,
        },
        ["nodes", id] if method == Method::DELETE => {
            let id = id.to_owned();
            publish(feed, move |s| plain(ops::remove(s, &id))).await
        }
        ["nodes", id, action] if post => {
            let status = match action {
                "suspend" => NodeStatus::Suspended,
                "deactivate" => NodeStatus::Deactivated,
                "activate" => NodeStatus::Active,
                "revoke" => NodeStatus::Revoked,
                _ => return error(StatusCode::NOT_FOUND, "no such route"),
            };
            let id = id.to_owned();
            publish(feed, move |s| plain(ops::set_status(s, &id, status))).await
        }
        ["keys"] if post => match read_json::<KeyInput, _>(body).await {
            Ok(input) => publish(feed, move |s| secret(ops::key_add(s, input))).await,
            Err(answer) => answer,
        },
        ["keys", id] if method == Method::DELETE => {
            let id = id.to_owned();
            publish(feed, move |s| plain(ops::key_remove(s, &id))).await
        }
        ["keys", id, "rotate"] if post => {
            let id = id.to_owned();
            publish(feed, move |s| secret(ops::key_rotate(s, &id))).await
        }
        ["tokens", jti, "revoke"] if post => {
            let jti = jti.to_owned();
            publish(feed, move |s| plain(ops::token_revoke(s, &jti))).await
        }
        ["gateways"] if get => read(feed, |s| Ok(json!({ "gateways": gateways(s)? }))).await,
        ["gateways"] if post => match read_json::<GatewayInput, _>(body).await {
            Ok(input) => {
                let id = json!({ "id": input.id });
                publish(feed, move |s| Ok((ops::gateway_add(s, input)?, id))).await
            }
            Err(answer) => answer,
        },
        ["gateways", id] if method == Method::DELETE => {
            let id = id.to_owned();
            publish(feed, move |s| plain(ops::gateway_remove(s, &id))).await
        }
        ["gateways", id, "code"] if post => {
            let id = id.to_owned();
            publish(feed, move |s| {
                let (plan, (code, expires_at)) =
                    ops::code_issue(s, &id, enrol_code_ttl_s, crate::authority::publish::now_s())?;
                Ok((
                    plan,
                    json!({ "id": id, "code": code, "expires_at": expires_at }),
                ))
            })
            .await
        }
        ["gateways", id, "checkpoints"] if get => super::anchor_api::list(feed, id).await,
        ["gateways", id, action] if post => {
            let status = match action {
                "activate" => GatewayStatus::Active,
                "deactivate" => GatewayStatus::Deactivated,
                _ => return error(StatusCode::NOT_FOUND, "no such route"),
            };
            let id = id.to_owned();
            publish(feed, move |s| plain(ops::gateway_status(s, &id, status))).await
        }
        ["metrics"] if get => metrics(feed).await,
        ["records"] if get => match after_limit(query) {
            Ok((after, limit)) => {
                let key = feed.key().public();
                read(feed, move |s| decoded(s, &key, after, limit)).await
            }
            Err(m) => error(StatusCode::BAD_REQUEST, &m),
        },
        ["nodes" | "keys" | "gateways" | "records" | "metrics", ..] | ["tokens", _, "revoke"] => {
            error(StatusCode::METHOD_NOT_ALLOWED, "method not allowed here")
        }
        _ => error(StatusCode::NOT_FOUND, "no such route"),
    }
}

fn plain(plan: Result<Plan, OpError>) -> Result<(Plan, Value), OpError> {
    plan.map(|p| (p, json!({})))
}

fn secret(plan: Result<(Plan, String), OpError>) -> Result<(Plan, Value), OpError> {
    plan.map(|(p, secret)| (p, json!({ "secret": secret })))
}

/// Publishes a plan off the async threads and answers its seq and hash (and what it adds).
async fn publish<F>(feed: &Arc<Feed>, plan: F) -> Answer
where
    F: FnOnce(&State) -> Result<(Plan, Value), OpError> + Send + 'static,
{
    let feed = feed.clone();
    match tokio::task::spawn_blocking(move || feed.publish(plan)).await {
        Ok(Ok((seq, hash, extra))) => {
            let mut answer = json!({ "seq": seq, "hash": hash });
            if let (Some(out), Value::Object(more)) = (answer.as_object_mut(), extra) {
                out.extend(more);
            }
            json(StatusCode::OK, &answer)
        }
        Ok(Err(e)) => op_error(&e),
        Err(_) => error(StatusCode::INTERNAL_SERVER_ERROR, "internal error"),
    }
}

async fn read<F>(feed: &Arc<Feed>, f: F) -> Answer
where
    F: FnOnce(&State) -> Result<Value, OpError> + Send + 'static,
{
    let feed = feed.clone();
    match tokio::task::spawn_blocking(move || f(feed.state())).await {
        Ok(Ok(value)) => json(StatusCode::OK, &value),
        Ok(Err(e)) => op_error(&e),
        Err(_) => error(StatusCode::INTERNAL_SERVER_ERROR, "internal error"),
    }
}

/// The authority's metrics as OpenMetrics text (docs/metrics.md#the-authority).
async fn metrics(feed: &Arc<Feed>) -> Answer {
    let feed = feed.clone();
    match tokio::task::spawn_blocking(move || crate::authority::metrics::encode(&feed)).await {
        Ok(Ok(text)) => body(StatusCode::OK, crate::metrics::CONTENT_TYPE, text),
        Ok(Err(e)) => op_error(&OpError::State(e)),
        Err(_) => error(StatusCode::INTERNAL_SERVER_ERROR, "internal error"),
    }
}

fn show_node(state: &State, id: &str) -> Result<Value, OpError> {
    let node = state
        .node(id)?
        .ok_or_else(|| OpError::NotFound(format!("no node {id:?}")))?;
    let keys: Vec<Value> = state
        .keys()?
        .into_iter()
        .filter(|(_, k)| k.node == id)
        .map(|(key_id, k)| json!({ "id": key_id, "insert": k.insert }))
        .collect();
    let mut value = serde_json::to_value(node).map_err(|e| OpError::Invalid(e.to_string()))?;
    value["keys"] = Value::Array(keys);
    Ok(value)
}

fn gateways(state: &State) -> Result<Vec<Value>, OpError> {
    Ok(state
        .gateways()?
        .into_iter()
        .map(|g: StoredGateway| {
            json!({
                "id": g.id,
                "status": g.status,
                "sign": g.sign,
                "seal": g.seal,
                "confirmed": g.confirmed,
            })
        })
        .collect())
}

fn after_limit(query: Option<&str>) -> Result<(u64, usize), String> {
    let (mut after, mut limit) = (0u64, super::feed_api::MAX_LIMIT);
    for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        let number: u64 = value
            .parse()
            .map_err(|_| format!("{name} must be a non-negative integer"))?;
        match name {
            "after" => after = number,
            "limit" if (1..=super::feed_api::MAX_LIMIT as u64).contains(&number) => {
                limit = number as usize;
            }
            "limit" => return Err("limit must be 1 to 1000".into()),
            other => return Err(format!("unknown parameter {other:?}")),
        }
    }
    Ok((after, limit))
}

/// Records after `after`, verified with the feed's key and decoded.
fn decoded(state: &State, key: &VerifyingKey, after: u64, limit: usize) -> Result<Value, OpError> {
    let mut out = Vec::new();
    for compact in state.records_after(after, limit)? {
        let signed = Signed::verify(&compact, key)
            .map_err(|e| OpError::Invalid(format!("a stored record does not verify: {e}")))?;
        let record = signed.record;
        out.push(json!({
            "seq": record.seq,
            "hash": signed.hash,
            "at": record.at,
            "aud": record.aud,
            "kind": record.kind,
            "body": record.body,
        }));
    }
    Ok(json!({ "records": out }))
}
