//! The authority's HTTPS server: TLS asking for (not requiring) a client certificate from the
//! authority's CA, HTTP/1.1 and HTTP/2, every request authenticated ([`auth`]) and routed to
//! the feed's endpoints ([`feed_api`]), the audit checkpoints ([`anchor_api`]), misbehaviour
//! reports ([`report_api`]) or the operator API ([`operator_api`]); the operator console's
//! static page ([`console`]) needs no credential (it holds no data).
//!
//! Bounds: connections (`max_connections`, per source too), the TLS handshake and every
//! request head within [`HEADER_TIMEOUT`] (and a connection idle that long closed), request
//! heads of [`MAX_HEADER_BYTES`], bodies of [`reply::MAX_BODY_BYTES`], long-polls of
//! [`feed_api::MAX_WAIT_S`]. Routes: gateway-only (snapshot, ack, audit checkpoints) refuse
//! the operator with 403, operator routes refuse gateways with 403; without a credential
//! every `/v1/` route is 401.

pub mod anchor_api;
pub mod auth;
pub mod console;
pub mod das_api;
pub mod enrol_api;
pub mod feed_api;
pub mod operator_api;
pub mod reply;
pub mod report_api;

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use http::{Method, Request, StatusCode};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use percent_encoding::percent_decode_str;
use tokio::net::TcpListener;
use tokio::time::Instant;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;

use self::auth::{authenticate, Caller, OperatorToken, Peer};
use self::reply::{error, Answer};
use super::material::Ca;
use super::publish::Feed;
use super::report_rules::ReportRule;
use crate::listen::lifetime::{self, Activity, Tracked};
use crate::listen::{self, Connection, Limiter};
use crate::tls;

/// Time for the TLS handshake and each request head; a connection idle this long is closed.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// Request line plus headers, in bytes.
pub const MAX_HEADER_BYTES: usize = 16 * 1024;
/// Time open connections get to finish on shutdown.
pub const DRAIN: Duration = Duration::from_secs(5);
const MAX_STREAMS: u32 = 64;

/// What every request shares.
pub struct Context {
    pub feed: Arc<Feed>,
    pub token: OperatorToken,
    /// `[[authority.reports.rules]]`.
    pub report_rules: Arc<Vec<ReportRule>>,
    /// Signs enrolling gateways' client certificates.
    pub ca: Ca,
    pub enrol_code_ttl_s: u64,
    pub guesses: enrol_api::Guesses,
    /// `[das]`: the token service, if configured.
    pub das: Option<Arc<super::das::Das>>,
}

/// Serves until `stop` is cancelled.
pub async fn serve(
    tcp: TcpListener,
    acceptor: TlsAcceptor,
    limiter: Limiter,
    context: Arc<Context>,
    stop: CancellationToken,
) {
    let builder = Arc::new(builder());
    listen::serve(tcp, limiter, stop, DRAIN, move |accepted, stop| {
        let (context, acceptor, builder) = (context.clone(), acceptor.clone(), builder.clone());
        let activity = Activity::new(Instant::now());
        async move { connection(context, acceptor, &builder, accepted, activity, stop).await }
    })
    .await;
}

fn builder() -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_TIMEOUT)
        .max_buf_size(MAX_HEADER_BYTES);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(MAX_STREAMS)
        .keep_alive_interval(HEADER_TIMEOUT)
        .keep_alive_timeout(HEADER_TIMEOUT)
        .max_header_list_size(MAX_HEADER_BYTES as u32);
    builder
}

async fn connection(
    context: Arc<Context>,
    acceptor: TlsAcceptor,
    builder: &auto::Builder<TokioExecutor>,
    accepted: Connection,
    activity: Arc<Activity>,
    stop: CancellationToken,
) {
    let Connection {
        stream,
        peer,
        admission,
    } = accepted;
    let stream = match tokio::time::timeout(HEADER_TIMEOUT, acceptor.accept(stream)).await {
        Ok(Ok(stream)) => stream,
        Ok(Err(e)) => return tracing::info!(peer = %peer, error = %e, "TLS handshake failed"),
        Err(_) => {
            admission.timed_out();
            return tracing::info!(peer = %peer, "TLS handshake timed out");
        }
    };
    let tls = stream.get_ref().1;
    let identity = tls::peer_identity(tls)
        .zip(tls::peer_key_hash(tls))
        .map(|(cn, key)| Arc::new(Peer { cn, key }));
    let tracker = activity.clone();
    let service = service_fn(move |req: Request<hyper::body::Incoming>| {
        let (context, identity) = (context.clone(), identity.clone());
        let in_flight = tracker.begin();
        async move {
            let answer = handle(&context, req, identity.as_deref()).await;
            Ok::<_, Infallible>(answer.map(|body| Tracked::new(body, in_flight)))
        }
    });
    let conn = builder.serve_connection(TokioIo::new(stream), service);
    match lifetime::drive(conn, &activity, HEADER_TIMEOUT, stop).await {
        Ok(lifetime::End::Idle) => admission.timed_out(),
        Ok(_) => {}
        Err(e) => tracing::debug!(peer = %peer, error = %e, "connection ended with an error"),
    }
}

/// Authenticates and routes one request.
pub async fn handle<B>(context: &Arc<Context>, req: Request<B>, identity: Option<&Peer>) -> Answer
where
    B: hyper::body::Body,
    B::Error: std::error::Error + Send + Sync + 'static,
{
    let (parts, body) = req.into_parts();
    if let Some(page) = console::serve(&parts.method, parts.uri.path()) {
        return page;
    }
    if parts.uri.path() == "/v1/enrol" {
        return match parts.method {
            Method::POST => enrol_api::enrol(context, body).await,
            _ => error(StatusCode::METHOD_NOT_ALLOWED, "method not allowed here"),
        };
    }
    if das_api::is_node_request(&parts, identity.map(|p| p.cn.as_str())) {
        return das_api::for_node(context, body).await;
    }
    let caller = match authenticate(&parts.headers, identity, &context.token, &context.feed) {
        Ok(caller) => caller,
        Err(refusal) => return refusal.answer(),
    };
    let Some(path) = segments(parts.uri.path()) else {
        return error(StatusCode::NOT_FOUND, "no such route");
    };
    let query = parts.uri.query();
    let feed = &context.feed;
    let method = &parts.method;
    let names: Vec<&str> = path.iter().map(String::as_str).collect();
    match (names.as_slice(), &caller) {
        (["feed", "head"], _) if method == Method::GET => feed_api::head(feed),
        (["feed", "records"], _) if method == Method::GET => feed_api::records(feed, query).await,
        (["feed", "snapshot"], Caller::Gateway(gw)) if method == Method::GET => {
            feed_api::snapshot(feed, gw).await
        }
        (["feed", "ack"], Caller::Gateway(gw)) if method == Method::POST => {
            feed_api::ack(feed, gw, body).await
        }
        (["das", ..], _) => das_api::route(context, method, &names, &caller, body).await,
        (["audit", "checkpoints"], Caller::Gateway(gw)) if method == Method::POST => {
            anchor_api::put(feed, gw, body).await
        }
        (["reports"], Caller::Gateway(gw)) if method == Method::POST => {
            report_api::put(feed, &context.report_rules, gw, body).await
        }
        (["reports"], Caller::Operator) if method == Method::GET => {
            report_api::list(feed, query).await
        }
        (["reports"], Caller::Operator) if method == Method::POST => {
            error(StatusCode::FORBIDDEN, "for gateways only")
        }
        (["reports"], Caller::Gateway(_)) if method == Method::GET => {
            error(StatusCode::FORBIDDEN, "for the operator only")
        }
        (["reports"], _) => error(StatusCode::METHOD_NOT_ALLOWED, "method not allowed here"),
        (["audit", "checkpoints"], Caller::Gateway(gw)) if method == Method::GET => {
            anchor_api::list(feed, &gw.id).await
        }
        (["feed", "snapshot" | "ack"] | ["audit", "checkpoints"], Caller::Operator) => {
            error(StatusCode::FORBIDDEN, "for gateways only")
        }
        (["audit", "checkpoints"], _) => {
            error(StatusCode::METHOD_NOT_ALLOWED, "method not allowed here")
        }
        (["audit", ..], _) => error(StatusCode::NOT_FOUND, "no such route"),
        (["feed", "head" | "records" | "snapshot" | "ack"], _) => {
            error(StatusCode::METHOD_NOT_ALLOWED, "method not allowed here")
        }
        (["feed", ..], _) => error(StatusCode::NOT_FOUND, "no such route"),
        (_, Caller::Gateway(_)) => error(StatusCode::FORBIDDEN, "for the operator only"),
        (_, Caller::Operator) => {
            let ttl = context.enrol_code_ttl_s;
            operator_api::route(feed, ttl, method, &path, query, body).await
        }
    }
}

/// The percent-decoded segments after `/v1/`; `None` for any other path.
fn segments(path: &str) -> Option<Vec<String>> {
    let rest = path.strip_prefix("/v1/")?;
    rest.split('/')
        .map(|s| {
            let decoded = percent_decode_str(s).decode_utf8().ok()?;
            (!decoded.is_empty()).then(|| decoded.into_owned())
        })
        .collect()
}
