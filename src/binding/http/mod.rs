//! The HTTP binding (TS-0009): decode to a [`Primitive`], ask the [`Decider`], forward the
//! [`crate::decision::Permitted`] request or serialise the refusal's [`Answer`] — and nothing
//! else. Every outcome is recorded by the decider, refusals of this binding's own included.
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
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;

use crate::config::HttpConfig;
use crate::decision::{Decider, Decision};
use crate::primitive::{Peer, Primitive, Protocol};
use crate::record::{About, Answer, Refusal};
use crate::registration::FollowUp;
pub use decode::{target, DecodeError};
pub use forward::{Upstream, UpstreamError};
pub use lookup::CseLookup;
pub use serve::{serve, Listener};

/// The body type of every response the binding sends.
pub type Body = BoxBody<Bytes, hyper::Error>;

/// A refusal of the binding's own, with the HTTP status that says more than TS-0009's mapping
/// (413, 431).
type Refused = (StatusCode, Refusal);

pub struct HttpBinding {
    decider: Arc<Decider>,
    upstream: Upstream,
    max_header_bytes: usize,
    max_body_bytes: usize,
    body_timeout: Duration,
}

impl HttpBinding {
    pub fn new(config: &HttpConfig, decider: Arc<Decider>) -> Result<Self, crate::tls::TlsError> {
        Ok(HttpBinding {
            decider,
            upstream: Upstream::new(config)?,
            max_header_bytes: config.max_header_bytes,
            max_body_bytes: config.max_body_bytes,
            body_timeout: config.header_read_timeout,
        })
    }

    /// Handles one request from `peer`.
    pub async fn handle(&self, request: Request<Incoming>, peer: Peer) -> Response<Body> {
        let (parts, body) = request.into_parts();
        let ids = reply::Ids::of(&parts.headers);
        let refused = |about: About, (status, refusal): Refused| {
            let answer = self.decider.refuse(about, refusal);
            reply::answer_with_status(&ids, &answer, status)
        };
        let denied = |denial| reply::answer(&ids, &self.decider.answer(&denial));
        let mut primitive = match self.head(&parts, &peer) {
            Ok(primitive) => primitive,
            Err(bad) => return refused(about(&parts, &peer), bad),
        };
        if let Err(denial) = self.decider.precheck(&primitive) {
            return denied(denial);
        }
        if let Err(denial) = self.decider.resolve(&mut primitive).await {
            return denied(denial);
        }
        primitive.content = match self.read_body(body).await {
            Ok(content) => content,
            Err(bad) => return refused(About::of(&primitive), bad),
        };
        let mut permitted = match self.decider.decide(&primitive) {
            Decision::Allow(permitted) => permitted.with((parts, primitive.content)),
            Decision::Deny(denial) => return denied(denial),
        };
        let follow_up = permitted.take_follow_up();
        let response = match self.upstream.forward(permitted).await {
            Ok(response) => response,
            Err(failure) => return reply::answer(&ids, &Answer::failed(&failure)),
        };
        match follow_up {
            None => response.map(|b| b.boxed()),
            Some(f) => {
                self.complete(&f, response, &ids, primitive.peer.protocol)
                    .await
            }
        }
    }

    /// The upstream's answer to a registration or deregistration, once the repository holds
    /// what it changed ([`Decider::complete`]); its body is read whole for that, within the
    /// body limits.
    async fn complete(
        &self,
        follow_up: &FollowUp,
        response: Response<Incoming>,
        ids: &reply::Ids,
        protocol: Protocol,
    ) -> Response<Body> {
        let (parts, body) = response.into_parts();
        let rsc = parts
            .headers
            .get("x-m2m-rsc")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok());
        let content = match self.read_body(body).await {
            Ok(content) => content,
            Err(_) if rsc != Some(2001) => Bytes::new(),
            Err(_) => {
                let answer = Answer::internal("the registration could not be recorded");
                return reply::answer(ids, &answer);
            }
        };
        match self.decider.complete(follow_up, protocol, rsc, &content) {
            Ok(_) => {
                Response::from_parts(parts, Full::new(content).map_err(|e| match e {}).boxed())
            }
            Err(answer) => reply::answer(ids, &answer),
        }
    }

    /// Head limits and decoding: a primitive without its content, or the refusal.
    fn head(&self, parts: &Parts, peer: &Peer) -> Result<Primitive, Refused> {
        if header_bytes(parts) > self.max_header_bytes {
            return Err((
                StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
                Refusal::HeaderTooLarge,
            ));
        }
        if declared_length(parts).is_some_and(|n| n > self.max_body_bytes as u64) {
            return Err(too_large());
        }
        decode::decode(parts, peer.clone(), self.decider.addressing())
            .map_err(|e| (StatusCode::BAD_REQUEST, Refusal::Malformed(e.to_string())))
    }

    /// The body, within the size limit and the read timeout.
    async fn read_body(&self, body: Incoming) -> Result<Bytes, Refused> {
        let limited = Limited::new(body, self.max_body_bytes);
        match tokio::time::timeout(self.body_timeout, limited.collect()).await {
            Ok(Ok(collected)) => Ok(collected.to_bytes()),
            Ok(Err(e)) if e.is::<http_body_util::LengthLimitError>() => Err(too_large()),
            Ok(Err(_)) | Err(_) => Err((StatusCode::BAD_REQUEST, Refusal::BodyUnreadable)),
        }
    }
}

/// What a request that could not be decoded was about, as far as its head tells.
fn about(parts: &Parts, peer: &Peer) -> About {
    let header = |name| {
        parts
            .headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    };
    About::peer(peer)
        .fr(header(decode::ORIGIN))
        .rqi(header(decode::REQUEST_ID))
        .to(parts.uri.path())
}

fn too_large() -> Refused {
    (StatusCode::PAYLOAD_TOO_LARGE, Refusal::BodyTooLarge)
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
