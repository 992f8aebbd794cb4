//! The answers the CoAP binding makes itself: empty ACK/RST, the Echo challenge, and oneM2M
//! errors (an [`Answer`]: 4.00 / 4000 for malformed requests, 4.03 / 4103 for denials, 4.04 /
//! 5103 for a silent upstream) whose payload names the class of the problem only, as text; a
//! token denial with token request information (`tqf`) carries it in a JSON payload instead,
//! the same JSON as the HTTP binding's body (see [`crate::record::Answer`]). Answers to a
//! confirmable request are piggy-backed on its ACK; to a non-confirmable one they go as NON
//! with a fresh message id. Echoes `rqi` and `rvi`.

use crate::primitive::Rsc;
use crate::record::Answer;
use coap_lite::{CoapOption, MessageClass, MessageType, Packet, ResponseType};

use super::decode::{Numbers, ECHO, RVI};

impl Rsc {
    /// The CoAP code TS-0008 maps this code to.
    fn code(self) -> ResponseType {
        match self {
            Rsc::BadRequest => ResponseType::BadRequest,
            Rsc::OriginatorHasNoPrivilege => ResponseType::Forbidden,
            Rsc::TargetNotReachable => ResponseType::NotFound,
            Rsc::InternalServerError => ResponseType::InternalServerError,
        }
    }
}

/// An empty message (ACK or RST) for message id `mid`.
pub fn empty(kind: MessageType, mid: u16) -> Vec<u8> {
    let mut p = Packet::new();
    p.header.set_type(kind);
    p.header.code = MessageClass::Empty;
    p.header.message_id = mid;
    to_bytes(&p)
}

/// RST for a datagram we cannot parse, if its first four bytes are a confirmable CoAP 1 header
/// (RFC 7252 §4.2: reject it); `None` otherwise: it is dropped silently.
pub fn reject(datagram: &[u8]) -> Option<Vec<u8>> {
    let header: [u8; 4] = datagram.get(..4)?.try_into().ok()?;
    let (version, kind) = (header[0] >> 6, (header[0] >> 4) & 0b11);
    (version == 1 && kind == 0).then(|| {
        empty(
            MessageType::Reset,
            u16::from_be_bytes([header[2], header[3]]),
        )
    })
}

/// The response head for `request`: piggy-backed on the ACK, or a NON with `fresh_mid`.
pub fn answer_to(request: &Packet, code: ResponseType, fresh_mid: u16) -> Packet {
    let mut p = Packet::new();
    if request.header.get_type() == MessageType::Confirmable {
        p.header.set_type(MessageType::Acknowledgement);
        p.header.message_id = request.header.message_id;
    } else {
        p.header.set_type(MessageType::NonConfirmable);
        p.header.message_id = fresh_mid;
    }
    p.header.code = MessageClass::Response(code);
    p.set_token(request.get_token().to_vec());
    p
}

/// 4.01 with an Echo option: "repeat this request with this value" (RFC 9175 §2.4). Carries
/// nothing else, so that it stays smaller than any request it answers.
pub fn challenge(request: &Packet, echo: &[u8], fresh_mid: u16) -> Vec<u8> {
    let mut p = answer_to(request, ResponseType::Unauthorized, fresh_mid);
    p.add_option(CoapOption::Unknown(ECHO), echo.to_vec());
    to_bytes(&p)
}

/// The answer to `request`: as [`error`], with a JSON payload (`m2m:dbg` and `tqf`) where the
/// answer has a `tqf`.
pub fn answer(request: &Packet, numbers: Numbers, answer: &Answer, fresh_mid: u16) -> Vec<u8> {
    if answer.tqf.is_none() {
        return error(request, numbers, answer.rsc, &answer.message, fresh_mid);
    }
    let mut p = head(request, numbers, answer.rsc, fresh_mid);
    p.set_content_format(coap_lite::ContentFormat::ApplicationJSON);
    p.payload = answer.content().to_string().into_bytes();
    to_bytes(&p)
}

/// A oneM2M error: TS-0008's code for `rsc`, the rsc option, `rqi`/`rvi` echoed, and a short
/// text diagnostic.
pub fn error(
    request: &Packet,
    numbers: Numbers,
    rsc: Rsc,
    diagnostic: &str,
    fresh_mid: u16,
) -> Vec<u8> {
    let mut p = head(request, numbers, rsc, fresh_mid);
    p.set_content_format(coap_lite::ContentFormat::TextPlain);
    p.payload = diagnostic.as_bytes().to_vec();
    to_bytes(&p)
}

/// Turns an upstream answer into the gateway's own `answer` (a registration the gateway could
/// not record), keeping its type, message id, token, `rqi` and `rvi`.
pub fn overwrite(upstream: &mut Packet, numbers: Numbers, answer: &Answer) {
    let mut p = Packet::new();
    p.header = upstream.header.clone();
    p.header.code = MessageClass::Response(answer.rsc.code());
    p.set_token(upstream.get_token().to_vec());
    p.add_option(CoapOption::Unknown(numbers.rsc), uint(answer.rsc as u16));
    for number in [numbers.rqi, RVI] {
        if let Some(value) = upstream.get_first_option(CoapOption::Unknown(number)) {
            p.add_option(CoapOption::Unknown(number), value.clone());
        }
    }
    p.set_content_format(coap_lite::ContentFormat::TextPlain);
    p.payload = answer.message.as_bytes().to_vec();
    *upstream = p;
}

/// The oneM2M `rsc` of an answer, if it carries one.
pub fn rsc_of(p: &Packet, numbers: Numbers) -> Option<u16> {
    let value = p.get_first_option(CoapOption::Unknown(numbers.rsc))?;
    if value.len() > 2 {
        return None;
    }
    Some(value.iter().fold(0u16, |n, b| (n << 8) | u16::from(*b)))
}

/// An error's head: code, rsc option, `rqi`/`rvi` echoed.
fn head(request: &Packet, numbers: Numbers, rsc: Rsc, fresh_mid: u16) -> Packet {
    let mut p = answer_to(request, rsc.code(), fresh_mid);
    p.add_option(CoapOption::Unknown(numbers.rsc), uint(rsc as u16).to_vec());
    for number in [numbers.rqi, RVI] {
        if let Some(value) = request.get_first_option(CoapOption::Unknown(number)) {
            p.add_option(CoapOption::Unknown(number), value.clone());
        }
    }
    p
}

/// A CoAP uint: big-endian without leading zero bytes.
pub fn uint(value: u16) -> Vec<u8> {
    let bytes = value.to_be_bytes();
    let skip = bytes.iter().take_while(|b| **b == 0).count();
    bytes[skip..].to_vec()
}

/// Serialises a packet we built; they are all far below any size limit.
pub fn to_bytes(p: &Packet) -> Vec<u8> {
    p.to_bytes_unlimited().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use coap_lite::RequestType;

    fn request(kind: MessageType) -> Packet {
        let mut p = Packet::new();
        p.header.set_type(kind);
        p.header.code = MessageClass::Request(RequestType::Get);
        p.header.message_id = 0x1234;
        p.set_token(vec![1, 2]);
        p.add_option(CoapOption::Unknown(283), b"r-9".to_vec());
        p
    }

    #[test]
    fn denial_is_a_piggybacked_403_with_rsc_4103() {
        let bytes = error(
            &request(MessageType::Confirmable),
            Numbers::STANDARD,
            Rsc::OriginatorHasNoPrivilege,
            "access denied by policy",
            7,
        );
        let p = Packet::from_bytes(&bytes).unwrap();
        assert_eq!(p.header.get_type(), MessageType::Acknowledgement);
        assert_eq!(p.header.message_id, 0x1234);
        assert_eq!(p.get_token(), &[1, 2]);
        assert_eq!(
            p.header.code,
            MessageClass::Response(ResponseType::Forbidden)
        );
        assert_eq!(
            p.get_first_option(CoapOption::Unknown(307)),
            Some(&vec![0x10, 0x07])
        );
        assert_eq!(
            p.get_first_option(CoapOption::Unknown(283)),
            Some(&b"r-9".to_vec())
        );
        assert_eq!(p.payload, b"access denied by policy");
    }

    #[test]
    fn answer_to_non_is_non_with_a_fresh_mid() {
        let bytes = error(
            &request(MessageType::NonConfirmable),
            Numbers::LEGACY,
            Rsc::BadRequest,
            "x",
            7,
        );
        let p = Packet::from_bytes(&bytes).unwrap();
        assert_eq!(p.header.get_type(), MessageType::NonConfirmable);
        assert_eq!(p.header.message_id, 7);
        assert!(p.get_first_option(CoapOption::Unknown(265)).is_some());
    }

    #[test]
    fn only_confirmable_coap_headers_are_rejected_with_rst() {
        assert_eq!(
            reject(&[0x40, 0x01, 0xab, 0xcd, 0xff]),
            Some(empty(MessageType::Reset, 0xabcd))
        );
        assert_eq!(reject(&[0x50, 0x01, 0xab, 0xcd]), None, "NON");
        assert_eq!(reject(&[0x80, 0x01, 0xab, 0xcd]), None, "version 2");
        assert_eq!(reject(&[0x40, 0x01]), None, "short");
    }
}
