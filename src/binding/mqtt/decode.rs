//! A oneM2M request primitive in a PUBLISH payload (TS-0010 §6.4, JSON or CBOR serialisation
//! of TS-0004's primitive) → [`Primitive`].
//!
//! In: the payload, its format, the transport [`Peer`] and the gateway's CSE-ID. Out: a
//! [`Primitive`] with `to` normalised to SP-relative form exactly as the HTTP binding does it,
//! plus the parsed object (for echoing `rqi` in answers), or a [`DecodeError`] (answered 4000).
//! `pc` is kept as its JSON serialisation (for CBOR requests too); the payload forwarded to
//! the broker is always the original one.

use bytes::Bytes;
use serde_json::Value;

use super::topic::Format;
use crate::primitive::{Operation, Peer, Primitive, Security};
use crate::registration::may_omit_originator;
use crate::target::{Addressing, BadTarget, Canonical};

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DecodeError {
    #[error("payload is not a {0} object")]
    NotAnObject(&'static str),
    #[error("{0} is missing or not a string")]
    MissingText(&'static str),
    #[error("op is missing or not an operation (1 to 5)")]
    BadOperation,
    #[error("ty is not a resource type number")]
    BadResourceType,
    #[error("{0} is not a list of strings")]
    BadList(&'static str),
    #[error("to is not a oneM2M target")]
    BadTarget,
    #[error(transparent)]
    Target(#[from] BadTarget),
}

/// The payload as a JSON value (CBOR is read into the same data model).
pub fn parse(payload: &[u8], format: Format) -> Result<Value, DecodeError> {
    let value = match format {
        Format::Json => serde_json::from_slice::<Value>(payload).ok(),
        Format::Cbor => ciborium::from_reader::<Value, _>(payload).ok(),
    };
    value
        .filter(Value::is_object)
        .ok_or(DecodeError::NotAnObject(format.as_str()))
}

/// The request primitive in `object`.
pub fn primitive(
    object: &Value,
    peer: Peer,
    addressing: &Addressing,
) -> Result<Primitive, DecodeError> {
    let op = operation(object).ok_or(DecodeError::BadOperation)?;
    let to = required(object, "to")?;
    let Canonical { to, as_sent } = target(to, addressing)?;
    let ty = match object.get("ty") {
        None => None,
        Some(v) => Some(
            v.as_u64()
                .and_then(|n| u16::try_from(n).ok())
                .ok_or(DecodeError::BadResourceType)?,
        ),
    };
    let content = match object.get("pc") {
        None => Bytes::new(),
        Some(pc) => Bytes::from(pc.to_string()),
    };
    Ok(Primitive {
        op,
        to,
        to_as_sent: as_sent,
        fr: match optional(object, "fr")?.filter(|s| !s.is_empty()) {
            Some(fr) => fr,
            None if may_omit_originator(op, ty) => String::new(),
            None => return Err(DecodeError::MissingText("fr")),
        },
        rqi: required(object, "rqi")?.to_owned(),
        rvi: optional(object, "rvi")?,
        ot: optional(object, "ot")?,
        rqet: optional(object, "rqet")?,
        query: rest(object),
        ty,
        content,
        security: Security {
            tokens: list(object, "tkns")?,
            token_ids: list(object, "tids")?,
            aus: optional(object, "aus")?,
            attached: None,
        },
        peer,
    })
}

/// The request's `op`, if it is one (1 to 5).
pub fn operation(object: &Value) -> Option<Operation> {
    Some(match object.get("op").and_then(Value::as_u64)? {
        1 => Operation::Create,
        2 => Operation::Retrieve,
        3 => Operation::Update,
        4 => Operation::Delete,
        5 => Operation::Notify,
        _ => return None,
    })
}

/// A primitive's `to`, taken literally as the CSE will (no percent-decoding), made canonical
/// ([`crate::target`]): absolute `//sp/cse/…`, SP-relative `/cse/…`, CSE-relative `x/…`. A `%`
/// anywhere, or a CSE-relative target starting with the HTTP prefixes `~` or `_`, is refused:
/// the gateway must decide on exactly the name the CSE acts on.
fn target(to: &str, addressing: &Addressing) -> Result<Canonical, DecodeError> {
    let segments: Vec<&str> = if let Some(rest) = to.strip_prefix("//") {
        std::iter::once("_").chain(rest.split('/')).collect()
    } else if let Some(rest) = to.strip_prefix('/') {
        std::iter::once("~").chain(rest.split('/')).collect()
    } else if to.starts_with("~/") || to.starts_with("_/") || to == "~" || to == "_" {
        return Err(DecodeError::BadTarget);
    } else {
        to.split('/').collect()
    };
    if to.contains('%') {
        return Err(DecodeError::BadTarget);
    }
    Ok(addressing.canonical(segments.into_iter().map(Into::into))?)
}

/// Members of the request besides those the primitive carries itself, as compact JSON in the
/// order sent (serde_json's `preserve_order`), or empty: what a check value covers beyond them.
fn rest(object: &Value) -> String {
    const CARRIED: [&str; 10] = [
        "op", "to", "fr", "rqi", "rvi", "ot", "rqet", "ty", "pc", "aus",
    ];
    let Some(map) = object.as_object() else {
        return String::new();
    };
    let rest: serde_json::Map<String, Value> = map
        .iter()
        .filter(|(k, _)| !CARRIED.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    if rest.is_empty() {
        String::new()
    } else {
        Value::Object(rest).to_string()
    }
}

fn required<'a>(object: &'a Value, key: &'static str) -> Result<&'a str, DecodeError> {
    object
        .get(key)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .ok_or(DecodeError::MissingText(key))
}

/// A string field; a number is taken as its decimal text (`rvi` is sometimes sent as one).
fn optional(object: &Value, key: &'static str) -> Result<Option<String>, DecodeError> {
    match object.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(Value::Number(n)) => Ok(Some(n.to_string())),
        Some(_) => Err(DecodeError::MissingText(key)),
    }
}

fn list(object: &Value, key: &'static str) -> Result<Vec<String>, DecodeError> {
    match object.get(key) {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| {
                v.as_str()
                    .map(str::to_owned)
                    .ok_or(DecodeError::BadList(key))
            })
            .collect(),
        Some(_) => Err(DecodeError::BadList(key)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::primitive::Protocol;
    use serde_json::json;

    fn addressing() -> Addressing {
        Addressing::acme()
    }

    fn peer() -> Peer {
        Peer::unauthenticated(([127, 0, 0, 1], 1).into(), Protocol::Mqtt)
    }

    #[test]
    fn request_decodes_with_targets_in_sp_relative_form() {
        let object = json!({"op": 1, "to": "cse-in", "fr": "Cm", "rqi": "r1", "rvi": "4",
            "ty": 2, "pc": {"m2m:ae": {"rn": "x"}}, "tkns": ["t1"], "tids": ["i1"], "aus": "a"});
        let p = primitive(&object, peer(), &addressing()).unwrap();
        assert_eq!(
            (p.op, p.to.as_str(), p.fr.as_str(), p.ty),
            (Operation::Create, "/id-in/cse-in", "Cm", Some(2))
        );
        assert_eq!(p.security.tokens, ["t1"]);
        assert_eq!(p.security.aus.as_deref(), Some("a"));
        assert_eq!(&p.content[..], br#"{"m2m:ae":{"rn":"x"}}"#);
        let sp = json!({"op": 2, "to": "/id-in/cse-in/x", "fr": "Cm", "rqi": "r"});
        assert_eq!(
            primitive(&sp, peer(), &addressing()).unwrap().to,
            "/id-in/cse-in/x"
        );
        let abs = json!({"op": 2, "to": "//sp/id-in/x", "fr": "Cm", "rqi": "r"});
        assert_eq!(
            primitive(&abs, peer(), &addressing()).unwrap().to,
            "//sp/id-in/x"
        );
    }

    /// The rules of docs/wire-formats.md for the compact JSON that check values cover (numbers, escapes).
    #[test]
    fn other_members_are_written_as_the_readme_says() {
        let text = r#"{"op": 2, "to": "cse-in", "fr": "Cm", "rqi": "r", "rcn": 1, "a": 1e2,
            "b": 100.0, "c": 0.5, "d": 1e-7, "e": -3, "s": "\u00fc/\u0001\u007f\"\n", "t": [true, null]}"#;
        let object: Value = serde_json::from_str(text).unwrap();
        let p = primitive(&object, peer(), &addressing()).unwrap();
        assert_eq!(
            p.query,
            "{\"rcn\":1,\"a\":100.0,\"b\":100.0,\"c\":0.5,\"d\":1e-7,\"e\":-3,\"s\":\"\u{fc}/\\u0001\u{7f}\\\"\\n\",\"t\":[true,null]}"
        );
        let bare = json!({"op": 2, "to": "cse-in", "fr": "Cm", "rqi": "r"});
        assert_eq!(primitive(&bare, peer(), &addressing()).unwrap().query, "");
    }

    #[test]
    fn targets_are_taken_literally_and_http_only_forms_refused() {
        let to = |t: &str| target(t, &addressing()).map(|c| c.to);
        assert_eq!(to("cse-in/meter-01").unwrap(), "/id-in/cse-in/meter-01");
        for bad in [
            "cse-in/m%65ter-01",
            "~/id-in/cse-in/x",
            "_/sp/id-in/x",
            "cse-in//x",
            "cse-in/../x",
            "",
        ] {
            assert!(to(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn malformed_requests_are_named() {
        let cases = [
            (
                json!({"to": "cse-in", "fr": "Cm", "rqi": "r"}),
                DecodeError::BadOperation,
            ),
            (
                json!({"op": 9, "to": "cse-in", "fr": "Cm", "rqi": "r"}),
                DecodeError::BadOperation,
            ),
            (
                json!({"op": 2, "fr": "Cm", "rqi": "r"}),
                DecodeError::MissingText("to"),
            ),
            (
                json!({"op": 2, "to": "cse-in", "rqi": "r"}),
                DecodeError::MissingText("fr"),
            ),
            (
                json!({"op": 2, "to": "cse-in", "fr": "Cm"}),
                DecodeError::MissingText("rqi"),
            ),
            (
                json!({"op": 2, "to": "cse-in/../b", "fr": "Cm", "rqi": "r"}),
                DecodeError::Target(BadTarget::Ambiguous),
            ),
            (
                json!({"op": 1, "to": "cse-in", "fr": "Cm", "rqi": "r", "ty": "x"}),
                DecodeError::BadResourceType,
            ),
            (
                json!({"op": 2, "to": "cse-in", "fr": "Cm", "rqi": "r", "tkns": "t"}),
                DecodeError::BadList("tkns"),
            ),
        ];
        for (object, expected) in cases {
            assert_eq!(
                primitive(&object, peer(), &addressing()).unwrap_err(),
                expected,
                "{object}"
            );
        }
        assert!(parse(b"{not json", Format::Json).is_err());
        assert!(parse(b"[1]", Format::Json).is_err());
    }

    #[test]
    fn cbor_payload_reads_like_json() {
        let object = json!({"op": 2, "to": "/id-in/cse-in", "fr": "Cm", "rqi": "r", "rvi": "4"});
        let mut cbor = Vec::new();
        ciborium::into_writer(&object, &mut cbor).unwrap();
        assert_eq!(parse(&cbor, Format::Cbor).unwrap(), object);
        assert!(parse(&[0xff, 0x00], Format::Cbor).is_err());
    }
}
