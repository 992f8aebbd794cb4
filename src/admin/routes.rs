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
        (_, ["healthz" | "readyz" | "metrics"] | ["v1", "nodes", ..] | ["v1", "reload"]) => {
            error(StatusCode::METHOD_NOT_ALLOWED, "method not allowed")
        }
        _ => error(StatusCode::NOT_FOUND, "no such endpoint"),
    }
}

fn ready(state: &State) -> Reply {
    match state.nodes.get("") {
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
