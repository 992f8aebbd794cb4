//! The HTTPS client of the authority's API: for the operator commands (bearer token) and for
//! tests playing a gateway (client certificate). Trusts only the authority's CA; every call is
//! bounded in time.

use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client as Hyper;
use hyper_util::rt::TokioExecutor;
use rustls_pki_types::CertificateDer;
use serde_json::Value;

use crate::tls::{self, KeyPair};

/// Longer than the longest long-poll.
const TIMEOUT: Duration = Duration::from_secs(40);
/// Largest answer read (a snapshot may be large).
const MAX_ANSWER_BYTES: usize = 256 * 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("cannot reach the authority at {base}: {detail} (is `m2mguard authority serve` up?)")]
    Unreachable { base: String, detail: String },
    #[error("the authority answered {status}: {message}")]
    Status { status: StatusCode, message: String },
    #[error("TLS set-up failed: {0}")]
    Tls(String),
}

/// One answer: status, headers, body.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

pub struct Client {
    base: String,
    bearer: Option<String>,
    http: Hyper<HttpsConnector<HttpConnector>, Full<Bytes>>,
}

impl Client {
    /// A client of `base` (`https://host:port`) trusting `ca`, presenting `identity` if given,
    /// sending `bearer` (a whole `Authorization` value) if given.
    pub fn new(
        base: &str,
        ca: &[CertificateDer<'static>],
        identity: Option<&KeyPair>,
        bearer: Option<String>,
    ) -> Result<Client, ClientError> {
        let config =
            tls::client_config(ca, identity).map_err(|e| ClientError::Tls(e.to_string()))?;
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(config)
            .https_only()
            .enable_http1()
            .build();
        Ok(Client {
            base: base.trim_end_matches('/').to_owned(),
            bearer,
            http: Hyper::builder(TokioExecutor::new()).build(connector),
        })
    }

    /// Sends one request and returns whatever the authority answered.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        body: Bytes,
    ) -> Result<Reply, ClientError> {
        let unreachable = |detail: String| ClientError::Unreachable {
            base: self.base.clone(),
            detail,
        };
        let mut builder = Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.base));
        if let Some(bearer) = &self.bearer {
            builder = builder.header(http::header::AUTHORIZATION, bearer);
        }
        if !body.is_empty() {
            builder = builder.header(http::header::CONTENT_TYPE, "application/json");
        }
        let request = builder
            .body(Full::new(body))
            .map_err(|e| unreachable(e.to_string()))?;
        let exchange = async {
            let response = self
                .http
                .request(request)
                .await
                .map_err(|e| unreachable(format!("{e:?}")))?;
            let (parts, body) = response.into_parts();
            let body = Limited::new(body, MAX_ANSWER_BYTES)
                .collect()
                .await
                .map_err(|e| unreachable(e.to_string()))?
                .to_bytes();
            Ok(Reply {
                status: parts.status,
                headers: parts.headers,
                body,
            })
        };
        tokio::time::timeout(TIMEOUT, exchange)
            .await
            .map_err(|_| unreachable(format!("no answer within {TIMEOUT:?}")))?
    }

    /// A JSON call: the answer's JSON (`{}` for none) if it succeeded, its error otherwise.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Value, ClientError> {
        let bytes = body.map_or_else(Bytes::new, |b| Bytes::from(b.to_string()));
        let reply = self.send(method, path, bytes).await?;
        if !reply.status.is_success() {
            let message = serde_json::from_slice::<Value>(&reply.body)
                .ok()
                .and_then(|v| v["error"].as_str().map(str::to_owned))
                .unwrap_or_else(|| String::from_utf8_lossy(&reply.body).into_owned());
            return Err(ClientError::Status {
                status: reply.status,
                message,
            });
        }
        if reply.body.is_empty() {
            return Ok(Value::Object(serde_json::Map::new()));
        }
        serde_json::from_slice(&reply.body).map_err(|e| ClientError::Status {
            status: reply.status,
            message: format!("not JSON: {e}"),
        })
    }
}

/// `id` as one path segment.
pub fn segment(id: &str) -> String {
    percent_encoding::utf8_percent_encode(id, percent_encoding::NON_ALPHANUMERIC).to_string()
}
