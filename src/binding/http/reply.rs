//! oneM2M error responses of the HTTP binding: an [`Answer`] serialised as status,
//! `X-M2M-RSC`, and its JSON content (`m2m:dbg`, and `tqf` for a token denial where
//! configured: see [`crate::record::Answer`]). Echoes `X-M2M-RI` and `X-M2M-RVI` when the
//! request had them.

use crate::primitive::Rsc;
use crate::record::Answer;
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
            Rsc::InternalServerError => StatusCode::INTERNAL_SERVER_ERROR,
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

/// An answer with TS-0009's status for its `rsc`.
pub fn answer(ids: &Ids, answer: &Answer) -> Response<Body> {
    answer_with_status(ids, answer, answer.rsc.status())
}

/// An answer whose HTTP status says more than TS-0009's mapping (413, 431).
pub fn answer_with_status(ids: &Ids, answer: &Answer, status: StatusCode) -> Response<Body> {
    respond(ids, answer.rsc, status, &answer.content())
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
