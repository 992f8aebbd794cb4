//! The gateway's HTTPS client for the authority's feed endpoints (docs/feed.md "Endpoints"):
//! mutual TLS with the gateway's client certificate, one pooled HTTP/1.1 connection, every
//! request bounded in time and every answer in bytes.

use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, StatusCode, Uri};
use http_body_util::{BodyExt, Full, Limited};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::rt::TokioExecutor;

use crate::config::SyncConfig;
use crate::feed::record::{MAX_HEAD, MAX_RECORD, MAX_SNAPSHOT};

/// Records per page the gateway asks for (the authority's maximum).
pub const PAGE: u64 = 1000;
/// Largest list of held checkpoints read (the authority keeps at most 1000 per gateway).
const MAX_CHECKPOINTS_ANSWER: usize = 4 * 1024 * 1024;
/// Largest answer to a token request or look-up (a token is at most 8 KiB).
const MAX_TOKEN_ANSWER: usize = 16 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("authority unreachable: {0}")]
    Unreachable(String),
    #[error("authority answered {status} to {what}: {detail}")]
    Status {
        what: &'static str,
        status: StatusCode,
        detail: String,
    },
    #[error("authority's answer to {0} is too large")]
    TooLarge(&'static str),
    #[error("authority's answer to {0} timed out")]
    Timeout(&'static str),
    #[error("authority's answer to {0} is not ASCII lines")]
    NotText(&'static str),
}

pub struct Client {
    http: HyperClient<HttpsConnector<HttpConnector>, Full<Bytes>>,
    base: String,
    timeout: Duration,
}

impl Client {
    pub fn new(config: &SyncConfig) -> Self {
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_nodelay(true);
        http.set_connect_timeout(Some(config.request_timeout));
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config((*config.tls).clone())
            .https_only()
            .enable_http1()
            .wrap_connector(http);
        let http = HyperClient::builder(TokioExecutor::new())
            // Below the authority's 10 s idle close (docs/authority.md "Bounds"): a pooled
            // connection the server is closing that very moment fails the request sent on it
            // (IncompleteMessage) and costs the round a backoff.
            .pool_idle_timeout(Duration::from_secs(5))
            .pool_max_idle_per_host(2)
            .build(connector);
        Client {
            http,
            base: config
                .authority
                .to_string()
                .trim_end_matches('/')
                .to_owned(),
            timeout: config.request_timeout,
        }
    }

    /// The current head, as a compact JWS.
    pub async fn head(&self) -> Result<String, ClientError> {
        let body = self
            .get("head", "/v1/feed/head", MAX_HEAD, Duration::ZERO)
            .await?;
        Ok(body.trim_end_matches('\n').to_owned())
    }

    /// Records after `after` (at most [`PAGE`]), waiting up to `wait` for the first.
    pub async fn records(&self, after: u64, wait: Duration) -> Result<Vec<String>, ClientError> {
        let path = format!(
            "/v1/feed/records?after={after}&limit={PAGE}&wait={}",
            wait.as_secs()
        );
        let max = (MAX_RECORD + 1) * PAGE as usize;
        let body = self.get("records", &path, max, wait).await?;
        Ok(body.lines().map(str::to_owned).collect())
    }

    /// A snapshot of the feed for this gateway.
    pub async fn snapshot(&self) -> Result<String, ClientError> {
        let body = self
            .get(
                "snapshot",
                "/v1/feed/snapshot",
                MAX_SNAPSHOT,
                Duration::from_secs(60),
            )
            .await?;
        Ok(body.trim_end_matches('\n').to_owned())
    }

    /// Sends a signed ack.
    pub async fn ack(&self, compact: &str) -> Result<(), ClientError> {
        self.post(
            "ack",
            "/v1/feed/ack",
            "application/jose",
            compact.to_owned(),
        )
        .await
        .map(|_| ())
    }

    /// POSTs `body` to `path`; the answer's body (at most 4 KiB) if it was 2xx.
    pub async fn post(
        &self,
        what: &'static str,
        path: &str,
        content_type: &'static str,
        body: String,
    ) -> Result<String, ClientError> {
        let request = Request::builder()
            .method(Method::POST)
            .uri(self.uri(path)?)
            .header(http::header::CONTENT_TYPE, content_type)
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| ClientError::Unreachable(e.to_string()))?;
        self.send(what, request, 4096, Duration::ZERO).await
    }

    /// A token from the authority's DAS on a node's behalf (docs/authority.md "Tokens"):
    /// the answer's JSON text.
    pub async fn obtain_token(&self, body: String) -> Result<String, ClientError> {
        let request = Request::builder()
            .method(Method::POST)
            .uri(self.uri("/v1/das/tokens")?)
            .header(http::header::CONTENT_TYPE, "application/json")
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| ClientError::Unreachable(e.to_string()))?;
        self.send("token request", request, MAX_TOKEN_ANSWER, Duration::ZERO)
            .await
    }

    /// The token the authority issued as `jti` (a `tids` entry): the answer's JSON text.
    pub async fn token(&self, jti: &str) -> Result<String, ClientError> {
        let path = format!(
            "/v1/das/tokens/{}",
            percent_encoding::utf8_percent_encode(jti, percent_encoding::NON_ALPHANUMERIC)
        );
        self.get("token", &path, MAX_TOKEN_ANSWER, Duration::ZERO)
            .await
    }

    /// The audit checkpoints the authority holds for this gateway (docs/authority.md), as
    /// JSON text.
    pub async fn checkpoints(&self) -> Result<String, ClientError> {
        self.get(
            "checkpoints",
            "/v1/audit/checkpoints",
            MAX_CHECKPOINTS_ANSWER,
            Duration::ZERO,
        )
        .await
    }

    async fn get(
        &self,
        what: &'static str,
        path: &str,
        max: usize,
        wait: Duration,
    ) -> Result<String, ClientError> {
        let request = Request::builder()
            .method(Method::GET)
            .uri(self.uri(path)?)
            .body(Full::new(Bytes::new()))
            .map_err(|e| ClientError::Unreachable(e.to_string()))?;
        self.send(what, request, max, wait).await
    }

    fn uri(&self, path: &str) -> Result<Uri, ClientError> {
        format!("{}{path}", self.base)
            .parse()
            .map_err(|e: http::uri::InvalidUri| ClientError::Unreachable(e.to_string()))
    }

    /// Sends `request`; the whole exchange is bounded by the request timeout plus `wait`.
    async fn send(
        &self,
        what: &'static str,
        request: Request<Full<Bytes>>,
        max: usize,
        wait: Duration,
    ) -> Result<String, ClientError> {
        let exchange = async {
            let response = self
                .http
                .request(request)
                .await
                .map_err(|e| ClientError::Unreachable(format!("{e:?}")))?;
            let status = response.status();
            let body = Limited::new(response.into_body(), max)
                .collect()
                .await
                .map_err(|_| ClientError::TooLarge(what))?
                .to_bytes();
            let text = String::from_utf8(body.to_vec())
                .ok()
                .filter(|t| t.is_ascii() || !status.is_success())
                .ok_or(ClientError::NotText(what))?;
            if !status.is_success() {
                // Whoever answered chose these bytes: at most 200 characters, escaped.
                let detail = text
                    .chars()
                    .take(200)
                    .flat_map(char::escape_debug)
                    .collect();
                return Err(ClientError::Status {
                    what,
                    status,
                    detail,
                });
            }
            Ok(text)
        };
        tokio::time::timeout(self.timeout + wait, exchange)
            .await
            .map_err(|_| ClientError::Timeout(what))?
    }
}
