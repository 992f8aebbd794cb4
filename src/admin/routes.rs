//! Admin API routing and handlers. Answers are JSON except `/metrics` (Prometheus text).

use bytes::Bytes;
use http::header::{HeaderValue, CONTENT_TYPE};
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use percent_encoding::percent_decode_str;
use serde_json::{json, Value};

use crate::gateway::State;
use crate::store::NodeStatus;

type Reply = Response<Full<Bytes>>;

pub async fn route(state: &State, req: Request<Incoming>) -> Reply {
    if let Err(why) = from_a_local_tool(req.headers()) {
        return error(StatusCode::FORBIDDEN, why);
    }
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    // Drain whatever body came with the request; none of the routes takes one.
    let _ = req.into_body().collect().await;
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    match (&method, segments.as_slice()) {
        (&Method::GET, ["healthz"]) => text(StatusCode::OK, "ok\n"),
        (&Method::GET, ["readyz"]) => ready(state),
        (&Method::GET, ["metrics"]) => metrics(state),
        (&Method::GET, ["v1", "nodes"]) => match state.nodes.all() {
            Ok(nodes) => reply(StatusCode::OK, json!({ "nodes": nodes })),
            Err(e) => error(StatusCode::SERVICE_UNAVAILABLE, &e.to_string()),
        },
        (&Method::GET, ["v1", "nodes", id]) => node(state, id),
        (&Method::POST, ["v1", "nodes", id, "activate"]) => {
            set_status(state, id, NodeStatus::Active)
        }
        (&Method::POST, ["v1", "nodes", id, "deactivate"]) => {
            set_status(state, id, NodeStatus::Deactivated)
        }
        (&Method::POST, ["v1", "tokens", jti, "revoke"]) => revoke_token(state, jti),
        (&Method::POST, ["v1", "reload"]) => match state.reload_policies() {
            Ok(count) => reply(
                StatusCode::OK,
                json!({ "reloaded": true, "policies": count }),
            ),
            Err(errors) => {
                let errors: Vec<String> = errors.iter().map(ToString::to_string).collect();
                reply(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    json!({ "reloaded": false, "errors": errors }),
                )
            }
        },
        (
            _,
            ["healthz" | "readyz" | "metrics"]
            | ["v1", "nodes", ..]
            | ["v1", "reload"]
            | ["v1", "tokens", _, "revoke"],
        ) => error(StatusCode::METHOD_NOT_ALLOWED, "method not allowed"),
        _ => error(StatusCode::NOT_FOUND, "no such endpoint"),
    }
}

/// Browsers can be made to send requests here (cross-origin, or by DNS rebinding a name to
/// 127.0.0.1); command-line tools never send `Origin` and address us by IP or `localhost`.
fn from_a_local_tool(headers: &http::HeaderMap) -> Result<(), &'static str> {
    if headers.contains_key(http::header::ORIGIN) {
        return Err("requests from web pages (with an Origin header) are refused");
    }
    let Some(host) = headers.get(http::header::HOST) else {
        return Ok(());
    };
    let host = host.to_str().map_err(|_| "unreadable Host header")?;
    let name = match host.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(""),
        None => host.rsplit_once(':').map_or(host, |(name, _port)| name),
    };
    if name.eq_ignore_ascii_case("localhost") || name.parse::<std::net::IpAddr>().is_ok() {
        Ok(())
    } else {
        Err("Host must be an IP address or localhost")
    }
}

fn ready(state: &State) -> Reply {
    match state.nodes.probe() {
        Ok(_) => text(StatusCode::OK, "ready\n"),
        Err(e) => text(
            StatusCode::SERVICE_UNAVAILABLE,
            &format!("repository unavailable: {e}\n"),
        ),
    }
}

fn metrics(state: &State) -> Reply {
    let mut response = Response::new(Full::new(Bytes::from(state.metrics.encode())));
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("application/openmetrics-text; version=1.0.0; charset=utf-8"),
    );
    response
}

fn node(state: &State, raw_id: &str) -> Reply {
    let id = percent_decode_str(raw_id).decode_utf8_lossy();
    match state.nodes.get(&id) {
        Ok(Some(node)) => reply(StatusCode::OK, json!(*node)),
        Ok(None) => error(StatusCode::NOT_FOUND, &format!("no node {id:?}")),
        Err(e) => error(StatusCode::SERVICE_UNAVAILABLE, &e.to_string()),
    }
}

fn set_status(state: &State, raw_id: &str, status: NodeStatus) -> Reply {
    let id = percent_decode_str(raw_id).decode_utf8_lossy();
    match state.nodes.set_status(&id, status) {
        Ok(Some(node)) => {
            tracing::info!(node.id = %id, status = %status, "node status changed by the admin API");
            reply(StatusCode::OK, json!(node))
        }
        Ok(None) => error(StatusCode::NOT_FOUND, &format!("no node {id:?}")),
        Err(e) => error(StatusCode::SERVICE_UNAVAILABLE, &e.to_string()),
    }
}

/// Revokes an access-control token by its `jti`: durable at once, and evicted from the cache.
fn revoke_token(state: &State, raw_jti: &str) -> Reply {
    let jti = percent_decode_str(raw_jti).decode_utf8_lossy();
    if jti.is_empty()
        || jti.chars().count() > crate::guard::token::MAX_ID_CHARS
        || jti.chars().any(char::is_control)
    {
        return error(StatusCode::BAD_REQUEST, "expected a token id (jti)");
    }
    match state.tokens.revoke(&jti, std::time::SystemTime::now()) {
        Ok(fresh) => {
            tracing::info!(token.id = %jti, "token revoked by the admin API");
            reply(
                StatusCode::OK,
                json!({ "jti": jti, "revoked": true, "already": !fresh }),
            )
        }
        Err(e) => error(StatusCode::SERVICE_UNAVAILABLE, &e.to_string()),
    }
}

fn reply(status: StatusCode, body: Value) -> Reply {
    let mut response = Response::new(Full::new(Bytes::from(body.to_string())));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

fn error(status: StatusCode, message: &str) -> Reply {
    reply(status, json!({ "error": message }))
}

fn text(status: StatusCode, body: &str) -> Reply {
    let mut response = Response::new(Full::new(Bytes::from(body.to_owned())));
    *response.status_mut() = status;
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::from_a_local_tool;

    fn headers(pairs: &[(&'static str, &str)]) -> http::HeaderMap {
        pairs
            .iter()
            .map(|(k, v)| (http::HeaderName::from_static(k), v.parse().unwrap()))
            .collect()
    }

    #[test]
    fn local_tools_are_served() {
        for host in [
            "127.0.0.1:19090",
            "[::1]:19090",
            "localhost:19090",
            "10.1.2.3",
        ] {
            assert!(
                from_a_local_tool(&headers(&[("host", host)])).is_ok(),
                "{host}"
            );
        }
    }

    #[test]
    fn browsers_and_rebound_names_are_refused() {
        assert!(from_a_local_tool(&headers(&[
            ("host", "127.0.0.1:1"),
            ("origin", "http://evil.example")
        ]))
        .is_err());
        assert!(from_a_local_tool(&headers(&[("host", "evil.example:19090")])).is_err());
    }
}
