//! TS-0009 request mapping: an HTTP request head becomes a [`Primitive`].
//!
//! Targets become canonical ([`crate::target`]): `/~/id-in/cse-in/x`, `/cse-in/x`, `/-/x` and
//! `/_/<own SP>/id-in/cse-in/x` all become `/id-in/cse-in/x`. Segments are percent-decoded, as
//! the CSE will decode them, so a policy sees the name the CSE acts on. Paths that could mean
//! different resources to us and to the upstream (dot segments, empty segments, an encoded `/`
//! or `\`, control characters, invalid UTF-8) are refused. Single-valued headers that appear twice are refused:
//! we must decide on the same value the upstream reads.

use bytes::Bytes;
use http::request::Parts;
use http::{HeaderMap, Method};
use percent_encoding::percent_decode_str;

use crate::primitive::{Operation, Peer, Primitive, Security};
use crate::registration::may_omit_originator;
use crate::target::{Addressing, BadTarget, Canonical};

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DecodeError {
    #[error("missing X-M2M-Origin")]
    MissingOrigin,
    #[error("missing X-M2M-RI")]
    MissingRequestId,
    #[error("header {0} is not valid text")]
    BadHeader(&'static str),
    #[error("method {0} has no oneM2M operation")]
    BadMethod(String),
    #[error("target path is not valid UTF-8 after percent-decoding")]
    BadPath,
    #[error(transparent)]
    Target(#[from] BadTarget),
    #[error("header {0} appears more than once")]
    Repeated(&'static str),
    #[error("Connection names a header the gateway would have to drop before forwarding")]
    ConnectionNamesHeader,
    #[error("header name with \"_\" that could be read as a oneM2M header")]
    LookalikeHeader,
    #[error("ty in Content-Type is not a resource type number")]
    BadResourceType,
}

pub const ORIGIN: &str = "x-m2m-origin";
pub const REQUEST_ID: &str = "x-m2m-ri";
pub const RELEASE: &str = "x-m2m-rvi";
pub const ORIGINATING_TIME: &str = "x-m2m-ot";
pub const REQUEST_EXPIRY: &str = "x-m2m-ret";
pub const SIGNATURE: &str = "x-m2m-as";

/// Decodes the head of a request; the content is attached later.
pub fn decode(
    parts: &Parts,
    peer: Peer,
    addressing: &Addressing,
) -> Result<Primitive, DecodeError> {
    let headers = &parts.headers;
    unambiguous(headers)?;
    let ty = resource_type(headers)?;
    let op = operation(&parts.method, ty.is_some())?;
    let fr = match header(headers, ORIGIN)?.filter(|s| !s.is_empty()) {
        Some(fr) => fr,
        None if may_omit_originator(op, ty) => "",
        None => return Err(DecodeError::MissingOrigin),
    };
    let rqi = header(headers, REQUEST_ID)?
        .filter(|s| !s.is_empty())
        .ok_or(DecodeError::MissingRequestId)?;
    let Canonical { to, as_sent } = target(parts.uri.path(), addressing)?;
    Ok(Primitive {
        op,
        to,
        to_as_sent: as_sent,
        fr: fr.to_owned(),
        rqi: rqi.to_owned(),
        rvi: header(headers, RELEASE)?.map(str::to_owned),
        ot: header(headers, ORIGINATING_TIME)?.map(str::to_owned),
        rqet: header(headers, REQUEST_EXPIRY)?.map(str::to_owned),
        query: parts.uri.query().unwrap_or("").to_owned(),
        ty,
        content: Bytes::new(),
        security: Security {
            tokens: tokens(headers)?,
            token_ids: query_list(parts.uri.query(), "tids"),
            aus: header(headers, SIGNATURE)?.map(str::to_owned),
            attached: None,
        },
        peer,
    })
}

/// Refuses heads that the upstream could read differently from us: a `Connection` header that
/// would make us drop end-to-end headers after deciding on them, and header names that only
/// differ from the ones we read by `_` for `-` (some servers merge them, CGI-style).
fn unambiguous(headers: &HeaderMap) -> Result<(), DecodeError> {
    const CONNECTION_OPTIONS: [&str; 5] =
        ["close", "keep-alive", "upgrade", "te", "http2-settings"];
    for value in headers.get_all("connection") {
        let value = value
            .to_str()
            .map_err(|_| DecodeError::BadHeader("connection"))?;
        let named = value.split(',').map(str::trim).filter(|t| !t.is_empty());
        if named
            .into_iter()
            .any(|t| !CONNECTION_OPTIONS.iter().any(|o| o.eq_ignore_ascii_case(t)))
        {
            return Err(DecodeError::ConnectionNamesHeader);
        }
    }
    for name in headers.keys().filter(|n| n.as_str().contains('_')) {
        let dashed = name.as_str().replace('_', "-");
        if dashed.starts_with("x-m2m-")
            || ["content-type", "content-length", "authorization", "host"]
                .contains(&dashed.as_str())
        {
            return Err(DecodeError::LookalikeHeader);
        }
    }
    Ok(())
}

fn header<'a>(headers: &'a HeaderMap, name: &'static str) -> Result<Option<&'a str>, DecodeError> {
    let mut values = headers.get_all(name).iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(DecodeError::Repeated(name));
    }
    value
        .to_str()
        .map(Some)
        .map_err(|_| DecodeError::BadHeader(name))
}

fn operation(method: &Method, has_ty: bool) -> Result<Operation, DecodeError> {
    Ok(match *method {
        Method::POST if has_ty => Operation::Create,
        Method::POST => Operation::Notify,
        Method::GET => Operation::Retrieve,
        Method::PUT => Operation::Update,
        Method::DELETE => Operation::Delete,
        ref other => return Err(DecodeError::BadMethod(other.to_string())),
    })
}

/// `ty` from `Content-Type: application/json;ty=4`.
fn resource_type(headers: &HeaderMap) -> Result<Option<u16>, DecodeError> {
    let Some(content_type) = header(headers, "content-type")? else {
        return Ok(None);
    };
    for param in content_type.split(';').skip(1) {
        if let Some((key, value)) = param.split_once('=') {
            if key.trim().eq_ignore_ascii_case("ty") {
                return value
                    .trim()
                    .parse()
                    .map(Some)
                    .map_err(|_| DecodeError::BadResourceType);
            }
        }
    }
    Ok(None)
}

/// Tokens from `Authorization: Bearer <jwt>` or `Bearer <jwt>+<jwt>`. The scheme is matched
/// without regard to case (RFC 9110 §11.1), so `bearer` cannot carry a token past the token
/// stage to an upstream that reads it; other schemes are the upstream's own business.
fn tokens(headers: &HeaderMap) -> Result<Vec<String>, DecodeError> {
    let Some(value) = header(headers, "authorization")? else {
        return Ok(Vec::new());
    };
    let Some((scheme, list)) = value.split_once(' ') else {
        return Ok(Vec::new());
    };
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Ok(Vec::new());
    }
    let list = list.trim_start_matches(' ');
    Ok(list
        .split('+')
        .filter(|t| !t.is_empty())
        .map(str::to_owned)
        .collect())
}

fn query_list(query: Option<&str>, key: &str) -> Vec<String> {
    query
        .into_iter()
        .flat_map(|q| q.split('&'))
        .filter_map(|pair| pair.split_once('='))
        .filter(|(k, _)| *k == key)
        .flat_map(|(_, v)| v.split('+'))
        .filter(|v| !v.is_empty())
        .map(str::to_owned)
        .collect()
}

/// The canonical target for a request path (see the module docs and [`crate::target`]).
pub fn target(path: &str, addressing: &Addressing) -> Result<Canonical, DecodeError> {
    let rest = path.strip_prefix('/').ok_or(DecodeError::BadPath)?;
    let segments = rest
        .split('/')
        .map(|segment| {
            percent_decode_str(segment)
                .decode_utf8()
                .map_err(|_| DecodeError::BadPath)
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(addressing.canonical(segments)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn to(path: &str) -> Result<String, DecodeError> {
        let addressing = Addressing::new("/id-in", "cse-in", Some("//sp"));
        target(path, &addressing).map(|c| c.to)
    }

    #[test]
    fn sp_relative_cse_relative_and_own_absolute_paths_name_the_same_target() {
        for path in [
            "/~/id-in/cse-in/x",
            "/cse-in/x",
            "/-/x",
            "/~/id-in/-/x",
            "/_/sp/id-in/cse-in/x",
        ] {
            assert_eq!(to(path).unwrap(), "/id-in/cse-in/x", "{path}");
        }
        assert_eq!(to("/_/sp2/id-x/x").unwrap(), "//sp2/id-x/x");
    }

    #[test]
    fn ambiguous_paths_are_refused() {
        for bad in [
            "/cse-in/a/../b",
            "/cse-in/./a",
            "/cse-in//a",
            "/cse-in/%2e%2e/a",
            "/cse-in/a%2Fb",
            "/",
            "/~/",
            "/cse-in\\a",
            "/%7E/id-in/-/a/../b",
        ] {
            assert!(to(bad).is_err(), "{bad}");
        }
        assert_eq!(to("/cse-in/%ff"), Err(DecodeError::BadPath));
    }

    #[test]
    fn percent_encoded_names_are_decoded_for_the_policy() {
        assert_eq!(
            to("/cse-in/m%65ter-01/data").unwrap(),
            "/id-in/cse-in/meter-01/data"
        );
        assert_eq!(to("/~/id-in/cse-in/a%20b").unwrap(), "/id-in/cse-in/a b");
        assert_eq!(to("/%7E/id-in/%2D/x").unwrap(), "/id-in/cse-in/x");
    }

    #[test]
    fn repeated_originator_is_refused() {
        let mut headers = HeaderMap::new();
        headers.append(ORIGIN, "CAdmin".parse().unwrap());
        headers.append(ORIGIN, "Clamp".parse().unwrap());
        assert_eq!(header(&headers, ORIGIN), Err(DecodeError::Repeated(ORIGIN)));
    }

    #[test]
    fn connection_naming_end_to_end_headers_is_refused() {
        let mut headers = HeaderMap::new();
        headers.insert("connection", "keep-alive, Upgrade".parse().unwrap());
        assert_eq!(unambiguous(&headers), Ok(()));
        headers.insert("connection", "close, X-M2M-Origin".parse().unwrap());
        assert_eq!(
            unambiguous(&headers),
            Err(DecodeError::ConnectionNamesHeader)
        );
    }

    #[test]
    fn underscore_lookalike_of_a_onem2m_header_is_refused() {
        let mut headers = HeaderMap::new();
        headers.insert("x_m2m_origin", "CAdmin".parse().unwrap());
        assert_eq!(unambiguous(&headers), Err(DecodeError::LookalikeHeader));
        let mut headers = HeaderMap::new();
        headers.insert("x_custom", "fine".parse().unwrap());
        assert_eq!(unambiguous(&headers), Ok(()));
    }

    #[test]
    fn post_with_ty_is_create_and_without_is_notify() {
        assert_eq!(operation(&Method::POST, true), Ok(Operation::Create));
        assert_eq!(operation(&Method::POST, false), Ok(Operation::Notify));
        assert!(operation(&Method::PATCH, false).is_err());
    }

    #[test]
    fn bearer_tokens_are_split_on_plus() {
        let mut headers = HeaderMap::new();
        headers.insert("authorization", "Bearer a.b.c+d.e.f".parse().unwrap());
        assert_eq!(tokens(&headers).unwrap(), ["a.b.c", "d.e.f"]);
    }

    #[test]
    fn bearer_scheme_is_matched_without_regard_to_case() {
        let mut headers = HeaderMap::new();
        for value in ["bearer a.b.c", "BEARER  a.b.c"] {
            headers.insert("authorization", value.parse().unwrap());
            assert_eq!(tokens(&headers).unwrap(), ["a.b.c"], "{value}");
        }
        headers.insert("authorization", "Basic dXNlcjpwdw==".parse().unwrap());
        assert!(tokens(&headers).unwrap().is_empty());
    }
}

#[cfg(test)]
mod properties {
    use proptest::prelude::*;

    use super::*;

    fn addressing() -> Addressing {
        Addressing::new("/id-in", "cse-in", Some("//sp"))
    }

    proptest! {
        /// Whatever the path, `target` answers without panicking, and what it accepts has no
        /// segment that could name another resource upstream.
        #[test]
        fn accepted_targets_have_only_plain_segments(path in "(/[a-zA-Z0-9~_.%\\\\-]{0,12}){0,6}") {
            if let Ok(target) = target(&path, &addressing()).map(|c| c.to) {
                let body = target.trim_start_matches('/');
                for segment in body.split('/') {
                    prop_assert!(!segment.is_empty() && segment != "." && segment != "..", "{target}");
                    prop_assert!(!segment.contains('\\'), "{target}");
                }
            }
        }

        /// Arbitrary header bytes never panic the decoder.
        #[test]
        fn decode_never_panics(
            method in "(GET|POST|PUT|DELETE|PATCH|HEAD)",
            path in "/[ -~]{0,40}",
            values in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..40), 6),
        ) {
            let Ok(uri) = path.parse::<http::Uri>() else { return Ok(()) };
            let mut builder = http::Request::builder().method(method.as_str()).uri(uri);
            let names = [ORIGIN, REQUEST_ID, "content-type", "authorization", "connection", "x_m2m_ri"];
            for (name, value) in names.iter().zip(&values) {
                if let Ok(value) = http::HeaderValue::from_bytes(value) {
                    builder = builder.header(*name, value);
                }
            }
            let Ok(request) = builder.body(()) else { return Ok(()) };
            let (parts, ()) = request.into_parts();
            let peer = Peer {
                addr: std::net::SocketAddr::from(([127, 0, 0, 1], 1)),
                protocol: crate::primitive::Protocol::Http,
                tls_identity: None,
            };
            let _ = decode(&parts, peer, &addressing());
        }
    }
}
