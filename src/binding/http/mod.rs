//! The HTTP binding (TS-0009): decode to a [`Primitive`], ask the [`Guard`], forward with the
//! [`Permit`] or answer the denial — and nothing else.
//!
//! Limits, in order: header bytes (431 / 4000), declared and actual body bytes (413 / 4000),
//! body read time (the header read timeout again). Malformed oneM2M requests get 400 / 4000,
//! denials 403 / 4103, an unreachable or silent upstream 404 / 5103 within its timeout.

mod decode;
mod forward;
mod reply;
mod serve;

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use tokio::sync::broadcast;

use crate::config::HttpConfig;
use crate::guard::{DecisionRecord, Guard, Verdict};
use crate::metrics::{Metrics, Outcome};
use crate::primitive::Peer;
pub use decode::{target, DecodeError};
pub use forward::{Upstream, UpstreamError};
use reply::Rsc;
pub use serve::{serve, Listener};

/// The body type of every response the binding sends.
pub type Body = BoxBody<Bytes, hyper::Error>;

pub struct HttpBinding {
    guard: Arc<Guard>,
    upstream: Upstream,
    metrics: Arc<Metrics>,
    decisions: broadcast::Sender<DecisionRecord>,
    cse_id: String,
    max_header_bytes: usize,
    max_body_bytes: usize,
    body_timeout: Duration,
}

impl HttpBinding {
    pub fn new(
        config: &HttpConfig,
        cse_id: &str,
        guard: Arc<Guard>,
        metrics: Arc<Metrics>,
        decisions: broadcast::Sender<DecisionRecord>,
    ) -> Result<Self, crate::tls::TlsError> {
        Ok(HttpBinding {
            guard,
            upstream: Upstream::new(config)?,
            metrics,
            decisions,
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
        let malformed = |status: Option<StatusCode>, debug: &str| {
            self.metrics
                .request(protocol, "unknown", Outcome::Malformed);
            match status {
                Some(status) => {
                    reply::error_with_status(&parts.headers, Rsc::BadRequest, status, debug)
                }
                None => reply::error(&parts.headers, Rsc::BadRequest, debug),
            }
        };
        if header_bytes(&parts) > self.max_header_bytes {
            return malformed(
                Some(StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE),
                "request header too large",
            );
        }
        let mut primitive = match decode::decode(&parts, peer, &self.cse_id) {
            Ok(p) => p,
            Err(e) => return malformed(None, &e.to_string()),
        };
        primitive.content = match self.read_body(body).await {
            Ok(bytes) => bytes,
            Err(BodyError::TooLarge) => {
                return malformed(
                    Some(StatusCode::PAYLOAD_TOO_LARGE),
                    "request body too large",
                )
            }
            Err(BodyError::Unreadable) => return malformed(None, "request body unreadable"),
        };

        let started = Instant::now();
        let verdict = self.guard.decide(&primitive, SystemTime::now());
        self.metrics
            .decision_seconds(protocol, started.elapsed().as_secs_f64());
        if self.decisions.receiver_count() > 0 {
            let _ = self
                .decisions
                .send(DecisionRecord::new(&primitive, &verdict));
        }
        let op = primitive.op.as_str();
        let permit = match verdict {
            Verdict::Allow(permit) => permit,
            Verdict::Deny(denial) => {
                tracing::info!(
                    node.id = %primitive.fr, proto = %protocol, op, to = %primitive.to,
                    verdict = "deny", deny.stage = %denial.stage, reason = %denial.reason,
                    "request denied"
                );
                self.metrics
                    .request(protocol, op, Outcome::Deny(denial.stage.as_str()));
                return reply::error(
                    &parts.headers,
                    Rsc::OriginatorHasNoPrivilege,
                    denial.stage.public_message(),
                );
            }
        };
        tracing::debug!(
            node.id = %primitive.fr, proto = %protocol, op, to = %primitive.to,
            verdict = "allow", policy.ids = ?permit.policy_ids(), "request allowed"
        );
        self.metrics.request(protocol, op, Outcome::Allow);
        let request_headers = parts.headers.clone();
        match self
            .upstream
            .forward(permit, parts, primitive.content)
            .await
        {
            Ok((response, took)) => {
                self.metrics.upstream_seconds(protocol, took.as_secs_f64());
                response.map(|b| b.boxed())
            }
            Err(e) => {
                tracing::warn!(node.id = %primitive.fr, proto = %protocol, op, error = %e, "upstream failed");
                reply::error(
                    &request_headers,
                    Rsc::TargetNotReachable,
                    "target not reachable",
                )
            }
        }
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

/// Bytes of the request target and all header names and values, as on the wire.
fn header_bytes(parts: &http::request::Parts) -> usize {
    let uri = parts.uri.path_and_query().map_or(0, |pq| pq.as_str().len());
    parts
        .headers
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len() + 4)
        .sum::<usize>()
        + uri
}
