//! The token service's routes (docs/authority.md "Tokens"): `POST /v1/das/tokens` from a
//! node (no credential but its signed request) or from a gateway on a node's behalf (its
//! client certificate), and `GET /v1/das/tokens/{jti}` for gateways resolving `tids`.

use std::sync::Arc;

use http::header::AUTHORIZATION;
use http::{Method, StatusCode};
use serde::Deserialize;

use super::auth::Caller;
use super::reply::{error, json, read_json, read_text, Answer};
use super::Context;
use crate::authority::das::{Ask, DasError, Issued, RequestError};
use crate::authority::publish::{now_s, Feed};
use crate::feed::GatewayStatus;

/// A gateway's request on a node's behalf.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct OnBehalf {
    #[serde(rename = "for")]
    node: String,
    aud: Vec<String>,
    ris: Vec<String>,
    ops: Vec<String>,
}

/// A token request that carries no credential but its own signature: `POST /v1/das/tokens`
/// with neither `Authorization` nor a client certificate.
pub fn is_node_request(parts: &http::request::Parts, identity: Option<&str>) -> bool {
    parts.method == Method::POST
        && parts.uri.path() == "/v1/das/tokens"
        && identity.is_none()
        && !parts.headers.contains_key(AUTHORIZATION)
}

pub async fn for_node<B>(context: &Context, body: B) -> Answer
where
    B: hyper::body::Body,
    B::Error: std::error::Error + Send + Sync + 'static,
{
    let Some(das) = context.das.clone() else {
        return not_configured();
    };
    let text = match read_text(body, "token request").await {
        Ok(text) => text.trim_end().to_owned(),
        Err(answer) => return answer,
    };
    let feed = context.feed.clone();
    issue(move || das.for_node(feed.state(), &text, now_s())).await
}

pub async fn route<B>(
    context: &Context,
    method: &Method,
    path: &[&str],
    caller: &Caller,
    body: B,
) -> Answer
where
    B: hyper::body::Body,
    B::Error: std::error::Error + Send + Sync + 'static,
{
    let Some(das) = context.das.clone() else {
        return not_configured();
    };
    let gateway = match caller {
        Caller::Gateway(gw) => gw,
        Caller::Operator => return error(StatusCode::FORBIDDEN, "for nodes and gateways only"),
    };
    match path {
        ["das", "tokens"] if method == Method::POST => {
            if gateway.status != GatewayStatus::Active {
                return error(StatusCode::FORBIDDEN, "gateway is not active");
            }
            let asked = match read_json::<OnBehalf, _>(body).await {
                Ok(asked) => asked,
                Err(answer) => return answer,
            };
            let ask = Ask {
                node: asked.node,
                aud: asked.aud,
                ris: asked.ris,
                ops: asked.ops,
            };
            let (feed, id) = (context.feed.clone(), gateway.id.clone());
            issue(move || das.issue(feed.state(), &ask, Some(&id), now_s())).await
        }
        ["das", "tokens", jti] if method == Method::GET => resolve(&context.feed, jti).await,
        ["das", "tokens"] | ["das", "tokens", _] => {
            error(StatusCode::METHOD_NOT_ALLOWED, "method not allowed here")
        }
        _ => error(StatusCode::NOT_FOUND, "no such route"),
    }
}

async fn issue(f: impl FnOnce() -> Result<Issued, DasError> + Send + 'static) -> Answer {
    match tokio::task::spawn_blocking(f).await {
        Ok(Ok(issued)) => json(StatusCode::OK, &serde_json::json!(issued)),
        Ok(Err(e)) => {
            tracing::info!(error = %e, "token request refused");
            let status = match &e {
                DasError::Request(RequestError::Malformed(_)) => StatusCode::BAD_REQUEST,
                DasError::Request(RequestError::Unauthenticated(_)) => StatusCode::UNAUTHORIZED,
                DasError::Request(RequestError::Busy) | DasError::Busy(_) => {
                    StatusCode::SERVICE_UNAVAILABLE
                }
                DasError::Forbidden(_) => StatusCode::FORBIDDEN,
                DasError::State(_) => {
                    return error(StatusCode::INTERNAL_SERVER_ERROR, "internal error")
                }
            };
            error(status, &e.to_string())
        }
        Err(_) => error(StatusCode::INTERNAL_SERVER_ERROR, "internal error"),
    }
}

async fn resolve(feed: &Arc<Feed>, jti: &str) -> Answer {
    let (feed, jti) = (feed.clone(), jti.to_owned());
    match tokio::task::spawn_blocking(move || feed.state().issued().get(&jti, now_s())).await {
        Ok(Ok(Some(issued))) => json(StatusCode::OK, &serde_json::json!(issued)),
        Ok(Ok(None)) => error(StatusCode::NOT_FOUND, "no such token (unknown or expired)"),
        _ => error(StatusCode::INTERNAL_SERVER_ERROR, "internal error"),
    }
}

fn not_configured() -> Answer {
    error(
        StatusCode::NOT_FOUND,
        "this authority issues no tokens ([das] is not configured)",
    )
}
