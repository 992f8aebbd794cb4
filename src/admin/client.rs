//! A small client of the admin API, for `m2mguard node …`, the demo and the tests.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use percent_encoding::{utf8_percent_encode, NON_ALPHANUMERIC};
use serde_json::Value;

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("cannot reach the admin API at {addr}: {detail} (is `m2mguard run` up?)")]
    Unreachable { addr: SocketAddr, detail: String },
    #[error("the admin API answered {status}: {body}")]
    Status { status: StatusCode, body: String },
}

pub struct AdminClient {
    addr: SocketAddr,
    client: Client<HttpConnector, Full<Bytes>>,
}

impl AdminClient {
    pub fn new(addr: SocketAddr) -> Self {
        AdminClient {
            addr,
            client: Client::builder(TokioExecutor::new()).build_http(),
        }
    }

    pub async fn nodes(&self) -> Result<Value, ClientError> {
        self.call(Method::GET, "/v1/nodes").await
    }

    pub async fn node(&self, id: &str) -> Result<Value, ClientError> {
        self.call(Method::GET, &format!("/v1/nodes/{}", encode(id)))
            .await
    }

    pub async fn activate(&self, id: &str) -> Result<Value, ClientError> {
        self.call(Method::POST, &format!("/v1/nodes/{}/activate", encode(id)))
            .await
    }

    pub async fn deactivate(&self, id: &str) -> Result<Value, ClientError> {
        self.call(
            Method::POST,
            &format!("/v1/nodes/{}/deactivate", encode(id)),
        )
        .await
    }

    pub async fn revoke_token(&self, jti: &str) -> Result<Value, ClientError> {
        self.call(Method::POST, &format!("/v1/tokens/{}/revoke", encode(jti)))
            .await
    }

    pub async fn reload(&self) -> Result<Value, ClientError> {
        self.call(Method::POST, "/v1/reload").await
    }

    async fn call(&self, method: Method, path: &str) -> Result<Value, ClientError> {
        let unreachable = |detail: String| ClientError::Unreachable {
            addr: self.addr,
            detail,
        };
        let request = Request::builder()
            .method(method)
            .uri(format!("http://{}{path}", self.addr))
            .body(Full::new(Bytes::new()))
            .map_err(|e| unreachable(e.to_string()))?;
        let response = tokio::time::timeout(Duration::from_secs(10), self.client.request(request))
            .await
            .map_err(|_| unreachable("no answer within 10s".into()))?
            .map_err(|e| unreachable(e.to_string()))?;
        let status = response.status();
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(|e| unreachable(e.to_string()))?
            .to_bytes();
        if !status.is_success() {
            return Err(ClientError::Status {
                status,
                body: String::from_utf8_lossy(&body).into_owned(),
            });
        }
        serde_json::from_slice(&body).map_err(|e| ClientError::Status {
            status,
            body: e.to_string(),
        })
    }
}

fn encode(id: &str) -> String {
    utf8_percent_encode(id, NON_ALPHANUMERIC).to_string()
}
