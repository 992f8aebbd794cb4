//! Forwarding to the upstream CSE over pooled HTTP/1.1 connections (plain or TLS).
//!
//! Only [`Upstream::forward`] sends anything upstream, and it takes the [`Permitted`] request
//! by value. The request passes unchanged except for hop-by-hop headers, the target authority
//! and what the guard adds ([`Addition`]: an inserted check value becomes `X-M2M-AS`). The
//! forward's end completes the request's record.

use std::time::{Duration, Instant};

use bytes::Bytes;
use http::header::{HeaderName, HOST};
use http::request::Parts;
use http::uri::{PathAndQuery, Uri};
use http::{HeaderMap, HeaderValue, Request, Response};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

use super::decode::SIGNATURE;
use crate::config::HttpConfig;
use crate::decision::Permitted;
use crate::guard::Addition;
pub use crate::record::UpstreamFailure as UpstreamError;
use crate::record::{Answered, Forward};
use crate::tls::{self, TlsError};

/// Headers that belong to one connection and are never forwarded (RFC 9110 §7.6.1).
const HOP_BY_HOP: [&str; 8] = [
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

pub struct Upstream {
    client: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
    base: Uri,
    timeout: Duration,
}

impl Upstream {
    pub fn new(config: &HttpConfig) -> Result<Self, TlsError> {
        // A plain-http upstream never uses TLS; the empty trust store makes sure of it.
        let tls = match &config.upstream_tls {
            Some(tls) => (**tls).clone(),
            None => tls::client_config(&[], None)?,
        };
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_nodelay(true);
        http.set_connect_timeout(Some(config.upstream_timeout));
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .wrap_connector(http);
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(60))
            .pool_max_idle_per_host(256)
            .build(connector);
        Ok(Upstream {
            client,
            base: config.upstream.clone(),
            timeout: config.upstream_timeout,
        })
    }

    /// Sends the permitted request upstream; the answer's headers arrive within the timeout or
    /// the attempt is abandoned. The request's record is completed either way.
    pub async fn forward(
        &self,
        permitted: Permitted<(Parts, Bytes)>,
    ) -> Result<Response<Incoming>, UpstreamError> {
        let ((mut parts, body), additions, record) = permitted.into_parts();
        let sent = match apply(&mut parts.headers, &additions) {
            Ok(()) => self.send(parts, body).await,
            Err(e) => Err(e),
        };
        match sent {
            Ok((response, took)) => {
                let rsc = response
                    .headers()
                    .get("x-m2m-rsc")
                    .and_then(|v| v.to_str().ok()?.parse().ok());
                let status = Some(response.status().as_u16());
                record.forwarded(Forward::Answered(Answered::new(took, status, rsc)));
                Ok(response)
            }
            Err(failure) => {
                record.failed(failure.clone());
                Err(failure)
            }
        }
    }

    async fn send(
        &self,
        mut parts: Parts,
        body: Bytes,
    ) -> Result<(Response<Incoming>, Duration), UpstreamError> {
        let path = parts
            .uri
            .path_and_query()
            .cloned()
            .unwrap_or_else(|| PathAndQuery::from_static("/"));
        let mut uri = self.base.clone().into_parts();
        uri.path_and_query = Some(path);
        parts.uri = Uri::from_parts(uri).map_err(|e| UpstreamError::Request(e.to_string()))?;
        parts.version = http::Version::HTTP_11;
        strip_hop_by_hop(&mut parts.headers);
        parts.headers.remove(HOST);
        let request = Request::from_parts(parts, Full::new(body));
        let started = Instant::now();
        match tokio::time::timeout(self.timeout, self.client.request(request)).await {
            Ok(Ok(mut response)) => {
                strip_hop_by_hop(response.headers_mut());
                Ok((response, started.elapsed()))
            }
            Ok(Err(e)) => Err(UpstreamError::Unreachable(error_chain(&e))),
            Err(_) => Err(UpstreamError::Timeout(self.timeout)),
        }
    }
}

impl Upstream {
    /// A retrieve of `path` (origin form) as `originator`, on the gateway's own behalf: the
    /// answer's status, `X-M2M-RSC` and at most `max_body_bytes` of body, all within the
    /// timeout.
    pub(super) async fn retrieve(
        &self,
        path: &str,
        originator: &str,
        max_body_bytes: usize,
    ) -> Result<(http::StatusCode, Option<u16>, Bytes), UpstreamError> {
        let mut uri = self.base.clone().into_parts();
        uri.path_and_query =
            Some(PathAndQuery::try_from(path).map_err(|e| UpstreamError::Request(e.to_string()))?);
        let uri = Uri::from_parts(uri).map_err(|e| UpstreamError::Request(e.to_string()))?;
        let request = Request::get(uri)
            .header("x-m2m-origin", originator)
            .header("x-m2m-ri", "m2mguard-resolve")
            .header("x-m2m-rvi", "3")
            .header(http::header::ACCEPT, "application/json")
            .body(Full::new(Bytes::new()))
            .map_err(|e| UpstreamError::Request(e.to_string()))?;
        let exchange = async {
            let response = self
                .client
                .request(request)
                .await
                .map_err(|e| UpstreamError::Unreachable(error_chain(&e)))?;
            let status = response.status();
            let rsc = response
                .headers()
                .get("x-m2m-rsc")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse().ok());
            let body = http_body_util::Limited::new(response.into_body(), max_body_bytes)
                .collect()
                .await
                .map_err(|e| UpstreamError::Unreachable(e.to_string()))?
                .to_bytes();
            Ok((status, rsc, body))
        };
        tokio::time::timeout(self.timeout, exchange)
            .await
            .map_err(|_| UpstreamError::Timeout(self.timeout))?
    }
}

/// Puts the guard's additions on the request's headers: a check value as `X-M2M-AS`, an
/// attached token as `Authorization: Bearer` (unless the request has an `Authorization`).
fn apply(headers: &mut HeaderMap, additions: &[Addition]) -> Result<(), UpstreamError> {
    for addition in additions {
        match addition {
            Addition::CheckValue(aus) => {
                let value = HeaderValue::from_str(aus)
                    .map_err(|e| UpstreamError::Request(format!("inserted check value: {e}")))?;
                headers.insert(SIGNATURE, value);
            }
            // Attached only to requests that carried no token; another scheme stays.
            Addition::Token(jwt) if !headers.contains_key(http::header::AUTHORIZATION) => {
                let value = HeaderValue::from_str(&format!("Bearer {jwt}"))
                    .map_err(|e| UpstreamError::Request(format!("attached token: {e}")))?;
                headers.insert(http::header::AUTHORIZATION, value);
            }
            Addition::Token(_) => {}
        }
    }
    Ok(())
}

/// Removes hop-by-hop headers, including those named in `Connection`.
pub fn strip_hop_by_hop(headers: &mut HeaderMap) {
    let named: Vec<HeaderName> = headers
        .get_all("connection")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|name| HeaderName::from_bytes(name.trim().as_bytes()).ok())
        .collect();
    for name in named {
        headers.remove(name);
    }
    for name in HOP_BY_HOP {
        headers.remove(name);
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_inserted_check_value_becomes_x_m2m_as() {
        let mut headers = HeaderMap::new();
        headers.insert("x-m2m-origin", HeaderValue::from_static("Clamp"));
        let aus = Addition::CheckValue("lamp-k1.7.bWFj".into());
        apply(&mut headers, &[aus]).unwrap();
        assert_eq!(headers["x-m2m-as"], "lamp-k1.7.bWFj");
        assert_eq!(headers["x-m2m-origin"], "Clamp");
        let unsendable = Addition::CheckValue("a\nb".into());
        assert!(matches!(
            apply(&mut headers, &[unsendable]),
            Err(UpstreamError::Request(_))
        ));
    }
}
