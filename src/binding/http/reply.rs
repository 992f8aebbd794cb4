//! oneM2M error responses of the HTTP binding: status, `X-M2M-RSC`, and a JSON `m2m:dbg` that
//! names the class of the problem only. Echoes `X-M2M-RI` and `X-M2M-RVI` when the request had
//! them. A token denial may add `tqf`, the token request information of TS-0004
//! (`m2m:dynAuthTokenReqInfo`): `{"dasi": [{"url": "<where tokens come from>"}]}`.

use crate::primitive::Rsc;
use bytes::Bytes;
use http::header::{HeaderValue, CONTENT_TYPE};
use http::{HeaderMap, Response, StatusCode};
use http_body_util::{BodyExt, Full};

use super::decode::{RELEASE, REQUEST_ID};
use super::Body;

impl Rsc {
    /// The HTTP status TS-0009 maps this code to.
    fn status(self) -> StatusCode {
        match self {
            Rsc::BadRequest => StatusCode::BAD_REQUEST,
            Rsc::OriginatorHasNoPrivilege => StatusCode::FORBIDDEN,
            Rsc::TargetNotReachable => StatusCode::NOT_FOUND,
        }
    }
}

/// The request's identifiers that every answer echoes.
#[derive(Clone, Debug, Default)]
pub struct Ids {
    ri: Option<HeaderValue>,
    rvi: Option<HeaderValue>,
}

impl Ids {
    pub fn of(request: &HeaderMap) -> Self {
        Ids {
            ri: request.get(REQUEST_ID).cloned(),
            rvi: request.get(RELEASE).cloned(),
        }
    }
}

/// An error answer with TS-0009's status for `rsc`.
pub fn error(ids: &Ids, rsc: Rsc, debug: &str) -> Response<Body> {
    error_with_status(ids, rsc, rsc.status(), debug)
}

/// A denial: 403 / 4103, with `tqf` when the sender should go and get a token.
pub fn denied(ids: &Ids, debug: &str, tqf: Option<&str>) -> Response<Body> {
    let mut body = serde_json::json!({ "m2m:dbg": debug });
    if let Some(url) = tqf {
        body["tqf"] = serde_json::json!({ "dasi": [{ "url": url }] });
    }
    let rsc = Rsc::OriginatorHasNoPrivilege;
    respond(ids, rsc, rsc.status(), &body)
}

/// An error answer whose HTTP status says more than TS-0009's mapping (413, 431).
pub fn error_with_status(ids: &Ids, rsc: Rsc, status: StatusCode, debug: &str) -> Response<Body> {
    respond(ids, rsc, status, &serde_json::json!({ "m2m:dbg": debug }))
}

fn respond(ids: &Ids, rsc: Rsc, status: StatusCode, body: &serde_json::Value) -> Response<Body> {
    let body = body.to_string();
    let mut response = Response::new(
        Full::new(Bytes::from(body))
            .map_err(|never| match never {})
            .boxed(),
    );
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers.insert("x-m2m-rsc", HeaderValue::from(rsc as u16));
    for (name, value) in [(REQUEST_ID, &ids.ri), (RELEASE, &ids.rvi)] {
        if let Some(value) = value {
            headers.insert(name, value.clone());
        }
    }
    response
}
