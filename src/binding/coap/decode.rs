//! TS-0008 request mapping: a CoAP request becomes a [`Primitive`].
//!
//! In: a parsed [`Packet`] whose code is a request, the UDP source, the option numbering.
//! Out: the primitive (content = this datagram's payload, so one block of a Block1 transfer),
//! or a [`DecodeError`]. Targets go through the shared [`crate::binding::target`] normalisation;
//! Uri-Path segments are taken as sent (CoAP does not percent-encode them). Single-valued
//! oneM2M options that appear twice are refused: we must decide on what the upstream reads.

use std::borrow::Cow;

use bytes::Bytes;
use coap_lite::{CoapOption, MessageClass, Packet, RequestType};

use crate::primitive::{Operation, Peer, Primitive, Security};
use crate::registration::may_omit_originator;
use crate::target::{Addressing, BadTarget, Canonical};

/// oneM2M option numbers (TS-0008 §6.2.2.4); `fr`, `rqi` and `rsc` differ in the legacy set.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Numbers {
    pub fr: u16,
    pub rqi: u16,
    pub rsc: u16,
}

pub const OT: u16 = 259;
pub const RQET: u16 = 291;
pub const RVI: u16 = 271;
pub const TY: u16 = 267;
pub const AUS: u16 = 339;
/// RFC 9175 Echo.
pub const ECHO: u16 = 252;

impl Numbers {
    pub const STANDARD: Numbers = Numbers {
        fr: 279,
        rqi: 283,
        rsc: 307,
    };
    /// OM2M / Mobius numbering.
    pub const LEGACY: Numbers = Numbers {
        fr: 256,
        rqi: 257,
        rsc: 265,
    };

    pub fn new(legacy: bool) -> Self {
        if legacy {
            Numbers::LEGACY
        } else {
            Numbers::STANDARD
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DecodeError {
    #[error("missing originator option")]
    MissingOrigin,
    #[error("missing request identifier option")]
    MissingRequestId,
    #[error("option {0} is not valid UTF-8 text")]
    BadText(u16),
    #[error("option {0} appears more than once")]
    Repeated(u16),
    #[error("method has no oneM2M operation")]
    BadMethod,
    #[error("Uri-Path is not valid UTF-8")]
    BadPath,
    #[error(transparent)]
    Target(#[from] BadTarget),
    #[error("ty is not a resource type number")]
    BadResourceType,
}

/// Decodes a request datagram.
pub fn decode(
    packet: &Packet,
    peer: Peer,
    addressing: &Addressing,
    numbers: Numbers,
) -> Result<Primitive, DecodeError> {
    let ty = resource_type(packet)?;
    let op = operation(packet.header.code, ty.is_some())?;
    let fr = match text(packet, numbers.fr)?.filter(|s| !s.is_empty()) {
        Some(fr) => fr,
        None if may_omit_originator(op, ty) => String::new(),
        None => return Err(DecodeError::MissingOrigin),
    };
    let rqi = text(packet, numbers.rqi)?
        .filter(|s| !s.is_empty())
        .ok_or(DecodeError::MissingRequestId)?;
    let queries = queries(packet)?;
    let Canonical { to, as_sent } = target(packet, addressing)?;
    Ok(Primitive {
        op,
        to,
        to_as_sent: as_sent,
        fr,
        rqi,
        rvi: text(packet, RVI)?,
        ot: text(packet, OT)?,
        rqet: text(packet, RQET)?,
        query: queries.join("&"),
        ty,
        content: Bytes::copy_from_slice(&packet.payload),
        security: Security {
            tokens: query_list(&queries, "tkns"),
            token_ids: query_list(&queries, "tids"),
            aus: text(packet, AUS)?,
            attached: None,
        },
        peer,
    })
}

/// The single value of option `number`, or `None`.
fn single(packet: &Packet, number: u16) -> Result<Option<&[u8]>, DecodeError> {
    let Some(values) = packet.get_option(CoapOption::from(number)) else {
        return Ok(None);
    };
    let mut values = values.iter();
    let first = values.next();
    if values.next().is_some() {
        return Err(DecodeError::Repeated(number));
    }
    Ok(first.map(Vec::as_slice))
}

fn text(packet: &Packet, number: u16) -> Result<Option<String>, DecodeError> {
    single(packet, number)?
        .map(|v| {
            std::str::from_utf8(v)
                .map(str::to_owned)
                .map_err(|_| DecodeError::BadText(number))
        })
        .transpose()
}

fn operation(code: MessageClass, has_ty: bool) -> Result<Operation, DecodeError> {
    Ok(match code {
        MessageClass::Request(RequestType::Post) if has_ty => Operation::Create,
        MessageClass::Request(RequestType::Post) => Operation::Notify,
        MessageClass::Request(RequestType::Get) => Operation::Retrieve,
        MessageClass::Request(RequestType::Put) => Operation::Update,
        MessageClass::Request(RequestType::Delete) => Operation::Delete,
        _ => return Err(DecodeError::BadMethod),
    })
}

/// `ty`: a CoAP uint (0 to 2 bytes, big-endian, leading zeros allowed to be omitted).
fn resource_type(packet: &Packet) -> Result<Option<u16>, DecodeError> {
    let Some(bytes) = single(packet, TY)? else {
        return Ok(None);
    };
    if bytes.len() > 2 {
        return Err(DecodeError::BadResourceType);
    }
    Ok(Some(
        bytes.iter().fold(0u16, |acc, b| (acc << 8) | u16::from(*b)),
    ))
}

fn target(packet: &Packet, addressing: &Addressing) -> Result<Canonical, DecodeError> {
    let segments = packet
        .get_option(CoapOption::UriPath)
        .into_iter()
        .flatten()
        .map(|v| {
            std::str::from_utf8(v)
                .map(Cow::Borrowed)
                .map_err(|_| DecodeError::BadPath)
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(addressing.canonical(segments)?)
}

fn queries(packet: &Packet) -> Result<Vec<&str>, DecodeError> {
    packet
        .get_option(CoapOption::UriQuery)
        .into_iter()
        .flatten()
        .map(|v| std::str::from_utf8(v).map_err(|_| DecodeError::BadText(15)))
        .collect()
}

/// Values of `key=` queries, each split on `+` as in the HTTP binding.
fn query_list(queries: &[&str], key: &str) -> Vec<String> {
    queries
        .iter()
        .filter_map(|q| q.split_once('='))
        .filter(|(k, _)| *k == key)
        .flat_map(|(_, v)| v.split('+'))
        .filter(|v| !v.is_empty())
        .map(str::to_owned)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::primitive::Protocol;
    use coap_lite::MessageType;

    fn addressing() -> Addressing {
        Addressing::acme()
    }

    fn peer() -> Peer {
        Peer::unauthenticated(([127, 0, 0, 1], 5683).into(), Protocol::Coap)
    }

    fn request(method: RequestType, path: &[&str], numbers: Numbers) -> Packet {
        let mut p = Packet::new();
        p.header.set_type(MessageType::Confirmable);
        p.header.code = MessageClass::Request(method);
        for s in path {
            p.add_option(CoapOption::UriPath, s.as_bytes().to_vec());
        }
        p.add_option(CoapOption::Unknown(numbers.fr), b"Cmeter".to_vec());
        p.add_option(CoapOption::Unknown(numbers.rqi), b"r1".to_vec());
        p
    }

    #[test]
    fn onem2m_options_fill_the_primitive() {
        let mut p = request(
            RequestType::Post,
            &["~", "id-in", "cse-in"],
            Numbers::STANDARD,
        );
        p.add_option(CoapOption::Unknown(TY), vec![4]);
        p.add_option(CoapOption::Unknown(RVI), b"4".to_vec());
        p.add_option(CoapOption::Unknown(OT), b"20261128T101500".to_vec());
        p.add_option(CoapOption::Unknown(RQET), b"20261128T111500".to_vec());
        p.add_option(CoapOption::Unknown(AUS), b"sig".to_vec());
        p.add_option(CoapOption::UriQuery, b"tkns=a.b.c+d.e.f".to_vec());
        p.add_option(CoapOption::UriQuery, b"tids=t1".to_vec());
        p.payload = br#"{"m2m:cin":{"con":"1"}}"#.to_vec();
        let prim = decode(&p, peer(), &addressing(), Numbers::STANDARD).unwrap();
        assert_eq!(prim.op, Operation::Create);
        assert_eq!(prim.to, "/id-in/cse-in");
        assert_eq!((prim.fr.as_str(), prim.rqi.as_str()), ("Cmeter", "r1"));
        assert_eq!(prim.ty, Some(4));
        assert_eq!(prim.rvi.as_deref(), Some("4"));
        assert_eq!(prim.ot.as_deref(), Some("20261128T101500"));
        assert_eq!(prim.rqet.as_deref(), Some("20261128T111500"));
        assert_eq!(prim.security.aus.as_deref(), Some("sig"));
        assert_eq!(prim.security.tokens, ["a.b.c", "d.e.f"]);
        assert_eq!(prim.security.token_ids, ["t1"]);
        assert_eq!(&prim.content[..], br#"{"m2m:cin":{"con":"1"}}"#);
    }

    #[test]
    fn methods_map_to_operations() {
        for (method, op) in [
            (RequestType::Post, Operation::Notify),
            (RequestType::Get, Operation::Retrieve),
            (RequestType::Put, Operation::Update),
            (RequestType::Delete, Operation::Delete),
        ] {
            let p = request(method, &["cse-in"], Numbers::STANDARD);
            assert_eq!(
                decode(&p, peer(), &addressing(), Numbers::STANDARD)
                    .unwrap()
                    .op,
                op
            );
        }
        let p = request(RequestType::Fetch, &["cse-in"], Numbers::STANDARD);
        assert_eq!(
            decode(&p, peer(), &addressing(), Numbers::STANDARD).unwrap_err(),
            DecodeError::BadMethod
        );
    }

    #[test]
    fn legacy_numbering_reads_only_legacy_options() {
        let p = request(RequestType::Get, &["cse-in"], Numbers::LEGACY);
        assert_eq!(
            decode(&p, peer(), &addressing(), Numbers::LEGACY)
                .unwrap()
                .fr,
            "Cmeter"
        );
        assert_eq!(
            decode(&p, peer(), &addressing(), Numbers::STANDARD).unwrap_err(),
            DecodeError::MissingOrigin
        );
    }

    #[test]
    fn repeated_originator_and_ambiguous_paths_are_refused() {
        let mut p = request(RequestType::Get, &["cse-in"], Numbers::STANDARD);
        p.add_option(CoapOption::Unknown(279), b"CAdmin".to_vec());
        assert_eq!(
            decode(&p, peer(), &addressing(), Numbers::STANDARD).unwrap_err(),
            DecodeError::Repeated(279)
        );
        for path in [&["cse-in", ".."][..], &["cse-in", "a/b"], &["~"], &[]] {
            let p = request(RequestType::Get, path, Numbers::STANDARD);
            assert!(
                matches!(
                    decode(&p, peer(), &addressing(), Numbers::STANDARD),
                    Err(DecodeError::Target(_))
                ),
                "{path:?}"
            );
        }
    }

    #[test]
    fn coap_and_http_name_the_same_target() {
        let p = request(
            RequestType::Get,
            &["~", "id-in", "cse-in", "a b"],
            Numbers::STANDARD,
        );
        let coap = decode(&p, peer(), &addressing(), Numbers::STANDARD)
            .unwrap()
            .to;
        let http = crate::binding::http::target("/~/id-in/cse-in/a%20b", &addressing()).unwrap();
        assert_eq!(coap, http.to);
    }
}

#[cfg(test)]
mod properties {
    use proptest::prelude::*;

    use super::*;
    use crate::primitive::Protocol;

    fn addressing() -> Addressing {
        Addressing::new("/id-in", "cse-in", None)
    }

    proptest! {
        /// Whatever the bytes, parsing and decoding answer without panicking.
        #[test]
        fn decoder_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = super::super::reply::reject(&bytes);
            if let Ok(packet) = Packet::from_bytes(&bytes) {
                let peer = Peer {
                    addr: std::net::SocketAddr::from(([127, 0, 0, 1], 1)),
                    protocol: Protocol::Coap,
                    tls_identity: None,
                };
                let _ = decode(&packet, peer, &addressing(), Numbers::STANDARD);
                let _ = packet.to_bytes_unlimited();
            }
        }

        /// The same for datagrams that start as CoAP 1 requests, so that option parsing and
        /// the oneM2M mapping are what gets exercised.
        #[test]
        fn decoder_never_panics_on_request_shaped_input(
            kind in 0u8..2,
            code in 1u8..5,
            tail in proptest::collection::vec(any::<u8>(), 0..200),
        ) {
            let mut bytes = vec![0x40 | (kind << 4), code, 0x12, 0x34];
            bytes.extend(tail);
            if let Ok(packet) = Packet::from_bytes(&bytes) {
                let peer = Peer {
                    addr: std::net::SocketAddr::from(([127, 0, 0, 1], 1)),
                    protocol: Protocol::Coap,
                    tls_identity: None,
                };
                let _ = decode(&packet, peer.clone(), &addressing(), Numbers::STANDARD);
                let _ = decode(&packet, peer, &addressing(), Numbers::LEGACY);
            }
        }
    }
}
