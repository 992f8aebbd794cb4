//! Answers of the authority's HTTPS API: JSON bodies, `{"error": "..."}` for every refusal,
//! and request bodies read within a byte and time bound.

use std::time::Duration;

use bytes::Bytes;
use http::header::{CACHE_CONTROL, CONTENT_TYPE};
use http::{HeaderValue, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use serde_json::{json, Value};

use crate::authority::ops::OpError;

pub type Answer = Response<Full<Bytes>>;

/// Largest request body, in bytes.
pub const MAX_BODY_BYTES: usize = 64 * 1024;
/// Time to receive a request body.
const BODY_TIMEOUT: Duration = Duration::from_secs(10);

pub fn body(status: StatusCode, content_type: &'static str, bytes: impl Into<Bytes>) -> Answer {
    let mut response = Response::new(Full::new(bytes.into()));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

pub fn json(status: StatusCode, value: &Value) -> Answer {
    body(status, "application/json", value.to_string())
}

pub fn error(status: StatusCode, message: &str) -> Answer {
    let mut answer = json(status, &json!({ "error": message }));
    if status == StatusCode::UNAUTHORIZED {
        answer.headers_mut().insert(
            http::header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer"),
        );
    }
    answer
}

pub fn no_content() -> Answer {
    let mut response = Response::new(Full::new(Bytes::new()));
    *response.status_mut() = StatusCode::NO_CONTENT;
    response
}

/// An operation's refusal as its answer; internal failures are logged, not told.
pub fn op_error(e: &OpError) -> Answer {
    match e {
        OpError::Invalid(m) => error(StatusCode::BAD_REQUEST, m),
        OpError::NotFound(m) => error(StatusCode::NOT_FOUND, m),
        OpError::Conflict(m) => error(StatusCode::CONFLICT, m),
        OpError::Unauthorized(m) => error(StatusCode::UNAUTHORIZED, m),
        OpError::State(e) => {
            tracing::error!(error = %e, "authority state failed");
            error(StatusCode::INTERNAL_SERVER_ERROR, "internal error")
        }
    }
}

/// The request body, at most [`MAX_BODY_BYTES`], within [`BODY_TIMEOUT`].
pub async fn read_body<B>(body: B) -> Result<Bytes, Answer>
where
    B: hyper::body::Body,
    B::Error: std::error::Error + Send + Sync + 'static,
{
    let limited = Limited::new(body, MAX_BODY_BYTES);
    match tokio::time::timeout(BODY_TIMEOUT, limited.collect()).await {
        Err(_) => Err(error(
            StatusCode::REQUEST_TIMEOUT,
            "request body not received in time",
        )),
        Ok(Err(e))
            if e.downcast_ref::<http_body_util::LengthLimitError>()
                .is_some() =>
        {
            Err(error(
                StatusCode::PAYLOAD_TOO_LARGE,
                "request body larger than 65536 bytes",
            ))
        }
        Ok(Err(_)) => Err(error(StatusCode::BAD_REQUEST, "request body unreadable")),
        Ok(Ok(collected)) => Ok(collected.to_bytes()),
    }
}

/// A request body that must be UTF-8 text (a compact JWS); `what` names it in the 400.
pub async fn read_text<B>(body: B, what: &str) -> Result<String, Answer>
where
    B: hyper::body::Body,
    B::Error: std::error::Error + Send + Sync + 'static,
{
    let bytes = read_body(body).await?;
    String::from_utf8(bytes.to_vec())
        .map_err(|_| error(StatusCode::BAD_REQUEST, &format!("{what} is not text")))
}

/// A JSON request body of type `T`.
pub async fn read_json<T, B>(body: B) -> Result<T, Answer>
where
    T: serde::de::DeserializeOwned,
    B: hyper::body::Body,
    B::Error: std::error::Error + Send + Sync + 'static,
{
    let bytes = read_body(body).await?;
    serde_json::from_slice(&bytes)
        .map_err(|e| error(StatusCode::BAD_REQUEST, &format!("body: {e}")))
}
