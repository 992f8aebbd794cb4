//! The HTTP binding (TS-0009): decode to a [`Primitive`], ask the [`Decider`], forward with the
//! [`crate::guard::Permit`] or answer the denial — and nothing else.
//!
//! Limits, in order: header bytes (431 / 4000), declared and actual body bytes (413 / 4000),
//! body read time (the header read timeout again). Malformed oneM2M requests get 400 / 4000,
//! denials 403 / 4103, an unreachable or silent upstream 404 / 5103 within its timeout.

mod decode;
mod forward;
mod lookup;
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
use crate::guard::{Denial, Stage, Verdict};
use crate::metrics::Outcome;
use crate::primitive::Rsc;
use crate::primitive::{Peer, Primitive};
pub use decode::{target, DecodeError};
pub use forward::{Upstream, UpstreamError};
pub use lookup::CseLookup;
pub use serve::{serve, Listener};

/// The body type of every response the binding sends.
pub type Body = BoxBody<Bytes, hyper::Error>;

pub struct HttpBinding {
    decider: Arc<Decider>,
    upstream: Upstream,
    max_header_bytes: usize,
    max_body_bytes: usize,
    body_timeout: Duration,
    /// `tqf` for answers to token denials (TS-0004 token request information).
    token_request_info: Option<String>,
}

impl HttpBinding {
    pub fn new(config: &HttpConfig, decider: Arc<Decider>) -> Result<Self, crate::tls::TlsError> {
        Ok(HttpBinding {
            decider,
            upstream: Upstream::new(config)?,
            max_header_bytes: config.max_header_bytes,
            max_body_bytes: config.max_body_bytes,
            body_timeout: config.header_read_timeout,
            token_request_info: None,
        })
    }

    /// Where clients obtain tokens, told to senders refused at the token stage.
    pub fn with_token_request_info(mut self, info: Option<&str>) -> Self {
        self.token_request_info = info.map(str::to_owned);
        self
    }

    /// Handles one request from `peer`.
    pub async fn handle(&self, request: Request<Incoming>, peer: Peer) -> Response<Body> {
        let protocol = peer.protocol;
        let (parts, body) = request.into_parts();
        let ids = reply::Ids::of(&parts.headers);
        let malformed = |(status, debug): (StatusCode, String)| {
            self.decider
                .metrics()
                .request(protocol, "unknown", Outcome::Malformed);
            reply::error_with_status(&ids, Rsc::BadRequest, status, &debug)
        };
        let denied = |denial: Denial| {
            let message = denial.stage.public_message();
            let tqf = match denial.stage {
                Stage::Token => self.token_request_info.as_deref(),
                _ => None,
            };
            reply::denied(&ids, message, tqf)
        };
        let mut primitive = match self.head(&parts, peer) {
            Ok(primitive) => primitive,
            Err(bad) => return malformed(bad),
        };
        if let Err(denial) = self.decider.precheck(&primitive) {
            return denied(denial);
        }
        if let Err(denial) = self.decider.resolve(&mut primitive).await {
            return denied(denial);
        }
        primitive.content = match self.read_body(body).await {
            Ok(content) => content,
            Err(bad) => return malformed(bad),
        };
        let permit = match self.decider.decide(&primitive) {
            Verdict::Allow(permit) => permit,
            Verdict::Deny(denial) => return denied(denial),
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

    /// Head limits and decoding: a primitive without its content, or a 4000 answer's status
    /// and reason.
    fn head(&self, parts: &Parts, peer: Peer) -> Result<Primitive, (StatusCode, String)> {
        if header_bytes(parts) > self.max_header_bytes {
            return Err((
                StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
                "request header too large".into(),
            ));
        }
        if declared_length(parts).is_some_and(|n| n > self.max_body_bytes as u64) {
            return Err(too_large());
        }
        decode::decode(parts, peer, self.decider.addressing())
            .map_err(|e| (StatusCode::BAD_REQUEST, e.to_string()))
    }

    /// The body, within the size limit and the read timeout.
    async fn read_body(&self, body: Incoming) -> Result<Bytes, (StatusCode, String)> {
        let limited = Limited::new(body, self.max_body_bytes);
        match tokio::time::timeout(self.body_timeout, limited.collect()).await {
            Ok(Ok(collected)) => Ok(collected.to_bytes()),
            Ok(Err(e)) if e.is::<http_body_util::LengthLimitError>() => Err(too_large()),
            Ok(Err(_)) | Err(_) => Err((StatusCode::BAD_REQUEST, "request body unreadable".into())),
        }
    }
}

fn too_large() -> (StatusCode, String) {
    (
        StatusCode::PAYLOAD_TOO_LARGE,
        "request body too large".into(),
    )
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
