//! Resource-id lookups for [`crate::target::resolve`], asked of the CSE over the HTTP upstream:
//! `GET /~<cse-id>/<ri>` as the configured originator, and from the answer its `ty`, `rn` and
//! `pi` — nothing else of the resource is read or kept.

use std::sync::Arc;

use http::StatusCode;
use percent_encoding::{utf8_percent_encode, AsciiSet, CONTROLS};
use serde_json::Value;

use super::forward::Upstream;
use crate::target::resolve::{Lookup, LookupError, LookupFuture, Place};

/// Largest answer read for one lookup.
const MAX_ANSWER_BYTES: usize = 256 * 1024;

/// What a path segment must not hold literally (RFC 3986 `pchar` aside).
const SEGMENT: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'/')
    .add(b'<')
    .add(b'>')
    .add(b'?')
    .add(b'`')
    .add(b'{')
    .add(b'}');

pub struct CseLookup {
    upstream: Arc<Upstream>,
    cse_id: String,
    originator: String,
}

impl CseLookup {
    pub fn new(upstream: Arc<Upstream>, cse_id: &str, originator: &str) -> Self {
        CseLookup {
            upstream,
            cse_id: cse_id.to_owned(),
            originator: originator.to_owned(),
        }
    }

    async fn ask(&self, ri: &str) -> Result<Place, LookupError> {
        let path = format!("/~{}/{}", self.cse_id, utf8_percent_encode(ri, SEGMENT));
        let (status, rsc, body) = self
            .upstream
            .retrieve(&path, &self.originator, MAX_ANSWER_BYTES)
            .await
            .map_err(|e| LookupError::Unreachable(e.to_string()))?;
        match (status, rsc) {
            (StatusCode::OK, Some(2000) | None) => {
                place(&body).ok_or_else(|| LookupError::Malformed(ri.to_owned()))
            }
            (_, Some(4004)) | (StatusCode::NOT_FOUND, None) => {
                Err(LookupError::NotFound(ri.to_owned()))
            }
            (status, rsc) => Err(LookupError::Refused {
                ri: ri.to_owned(),
                rsc: rsc.unwrap_or(status.as_u16()),
            }),
        }
    }
}

impl Lookup for CseLookup {
    fn place<'a>(&'a self, ri: &'a str) -> LookupFuture<'a> {
        Box::pin(self.ask(ri))
    }
}

/// `{"m2m:<type>": {"ty": n, "rn": "...", "pi": "..."}}` → its place; `pi` may be absent only
/// for the CSEBase.
fn place(body: &[u8]) -> Option<Place> {
    let outer: Value = serde_json::from_slice(body).ok()?;
    let mut members = outer.as_object()?.values();
    let resource = members.next().filter(|_| members.next().is_none())?;
    let ty = u16::try_from(resource.get("ty")?.as_u64()?).ok()?;
    let rn = resource.get("rn")?.as_str()?.to_owned();
    let pi = match resource.get("pi") {
        Some(pi) => pi.as_str()?.to_owned(),
        None if ty == 5 => String::new(),
        None => return None,
    };
    Some(Place { ty, rn, pi })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_resource_answer_gives_its_place() {
        let cnt = br#"{"m2m:cnt": {"rn": "data", "ri": "cnt1", "pi": "ae1", "ty": 3, "cni": 0}}"#;
        assert_eq!(
            place(cnt),
            Some(Place {
                ty: 3,
                rn: "data".into(),
                pi: "ae1".into()
            })
        );
        let cb = br#"{"m2m:cb": {"rn": "cse-in", "ri": "id-in", "ty": 5, "csi": "/id-in"}}"#;
        assert_eq!(place(cb).map(|p| p.rn), Some("cse-in".into()));
    }

    #[test]
    fn anything_else_is_no_place() {
        for bad in [
            &br#"{"m2m:cnt": {"rn": "data", "ty": 3}}"#[..],
            br#"{"m2m:cnt": {"rn": 1, "pi": "x", "ty": 3}}"#,
            br#"{"a": {"rn": "x", "pi": "y", "ty": 3}, "b": {}}"#,
            br#"[1]"#,
            b"not json",
        ] {
            assert_eq!(place(bad), None);
        }
    }
}
