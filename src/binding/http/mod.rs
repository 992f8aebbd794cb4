//! The HTTP binding (TS-0009): decode to a [`Primitive`], ask the [`Decider`], forward with the
//! [`crate::guard::Permit`] or answer the denial — and nothing else.
//!
//! Limits, in order: header bytes (431 / 4000), declared and actual body bytes (413 / 4000),
//! body read time (the header read timeout again). Malformed oneM2M requests get 400 / 4000,
//! denials 403 / 4103, an unreachable or silent upstream 404 / 5103 within its timeout.

mod decode;
mod forward;
mod reply;
mod serve;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::request::Parts;
use http::{Request, Response, StatusCode};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;

use crate::config::HttpConfig;
use crate::decision::Decider;
use crate::guard::Verdict;
use crate::metrics::Outcome;
use crate::primitive::{Peer, Primitive};
pub use decode::{target, DecodeError};
pub use forward::{Upstream, UpstreamError};
use reply::Rsc;
pub use serve::{serve, Listener};

/// The body type of every response the binding sends.
pub type Body = BoxBody<Bytes, hyper::Error>;

pub struct HttpBinding {
    decider: Arc<Decider>,
    upstream: Upstream,
    cse_id: String,
    max_header_bytes: usize,
    max_body_bytes: usize,
    body_timeout: Duration,
}

impl HttpBinding {
    pub fn new(
        config: &HttpConfig,
        cse_id: &str,
        decider: Arc<Decider>,
    ) -> Result<Self, crate::tls::TlsError> {
        Ok(HttpBinding {
            decider,
            upstream: Upstream::new(config)?,
            cse_id: cse_id.to_owned(),
            max_header_bytes: config.max_header_bytes,
            max_body_bytes: config.max_body_bytes,
            body_timeout: config.header_read_timeout,
        })
    }

    /// Handles one request from `peer`.
    pub async fn handle(&self, request: Request<Incoming>, peer: Peer) -> Response<Body> {
        let protocol = peer.protocol;
        let (parts, body) = request.into_parts();
        let ids = reply::Ids::of(&parts.headers);
        let primitive = match self.admit(&parts, body, peer).await {
            Ok(primitive) => primitive,
            Err((status, debug)) => {
                self.decider
                    .metrics()
                    .request(protocol, "unknown", Outcome::Malformed);
                return reply::error_with_status(&ids, Rsc::BadRequest, status, &debug);
            }
        };
        let permit = match self.decider.decide(&primitive) {
            Verdict::Allow(permit) => permit,
            Verdict::Deny(denial) => {
                let message = denial.stage.public_message();
                return reply::error(&ids, Rsc::OriginatorHasNoPrivilege, message);
            }
        };
        let (fr, op) = (primitive.fr, primitive.op.as_str());
        match self
            .upstream
            .forward(permit, parts, primitive.content)
            .await
        {
            Ok((response, took)) => {
                self.decider
                    .metrics()
                    .upstream_seconds(protocol, took.as_secs_f64());
                response.map(|b| b.boxed())
            }
            Err(e) => {
                tracing::warn!(node.id = %fr, proto = %protocol, op, error = %e, "upstream failed");
                reply::error(&ids, Rsc::TargetNotReachable, "target not reachable")
            }
        }
    }

    /// Limits, decoding and the body: a primitive, or the status and reason of a 4000 answer.
    async fn admit(
        &self,
        parts: &Parts,
        body: Incoming,
        peer: Peer,
    ) -> Result<Primitive, (StatusCode, String)> {
        if header_bytes(parts) > self.max_header_bytes {
            return Err((
                StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
                "request header too large".into(),
            ));
        }
        let too_large = || {
            (
                StatusCode::PAYLOAD_TOO_LARGE,
                "request body too large".into(),
            )
        };
        if declared_length(parts).is_some_and(|n| n > self.max_body_bytes as u64) {
            return Err(too_large());
        }
        let mut primitive = decode::decode(parts, peer, &self.cse_id)
            .map_err(|e| (StatusCode::BAD_REQUEST, e.to_string()))?;
        primitive.content = match self.read_body(body).await {
            Ok(bytes) => bytes,
            Err(BodyError::TooLarge) => return Err(too_large()),
            Err(BodyError::Unreadable) => {
                return Err((StatusCode::BAD_REQUEST, "request body unreadable".into()))
            }
        };
        Ok(primitive)
    }

    async fn read_body(&self, body: Incoming) -> Result<Bytes, BodyError> {
        let limited = Limited::new(body, self.max_body_bytes);
        match tokio::time::timeout(self.body_timeout, limited.collect()).await {
            Ok(Ok(collected)) => Ok(collected.to_bytes()),
            Ok(Err(e)) if e.is::<http_body_util::LengthLimitError>() => Err(BodyError::TooLarge),
            Ok(Err(_)) | Err(_) => Err(BodyError::Unreadable),
        }
    }
}

enum BodyError {
    TooLarge,
    Unreadable,
}

/// The body size the client announced, if it did.
fn declared_length(parts: &Parts) -> Option<u64> {
    parts
        .headers
        .get(http::header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .parse()
        .ok()
}

/// Bytes of the request target and all header names and values, as on the wire.
fn header_bytes(parts: &Parts) -> usize {
    let uri = parts.uri.path_and_query().map_or(0, |pq| pq.as_str().len());
    parts
        .headers
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len() + 4)
        .sum::<usize>()
        + uri
}
