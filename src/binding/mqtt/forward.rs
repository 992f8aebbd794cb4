//! What goes to the broker on a client's behalf. Only these functions write a client's
//! PUBLISH or SUBSCRIBE to the broker, and each takes [`Permitted`] values: a publish or filter
//! that was not allowed has no way to reach the broker. What the guard adds to a request
//! ([`Addition`]: an inserted check value) becomes a member of the request primitive (`aus`),
//! serialised as the request was (JSON in the order sent, the new member last; or CBOR).
//! Handing a packet to the broker connection completes its record ([`Forward::Sent`]).

use bytes::{Bytes, BytesMut};
use rumqttc::mqttbytes::v4::{Packet, Publish, Subscribe, SubscribeFilter};
use serde_json::Value;

use super::decode;
use super::topic::{self, Format};
use super::wire::{encode, WireError};
use crate::decision::Permitted;
use crate::guard::Addition;
use crate::record::{Forward, UpstreamFailure};

/// A permitted PUBLISH, with the guard's additions, re-encoded for the broker.
pub fn publish(permitted: Permitted<Publish>, to_broker: &mut BytesMut) -> Result<(), WireError> {
    let (mut publish, additions, record) = permitted.into_parts();
    if !apply(&mut publish, &additions) {
        // Additions are only made to oneM2M requests, which were decoded to decide them.
        let why = "cannot add to a payload that is not a request primitive";
        record.failed(UpstreamFailure::Request(why.into()));
        return Ok(());
    }
    encode(&Packet::Publish(publish), to_broker)?;
    record.forwarded(Forward::Sent);
    Ok(())
}

/// Puts the guard's additions into the request primitive a PUBLISH carries: a check value as
/// its member `aus`, an attached token as `tkns`. `false` if there are additions and the payload is no request primitive.
fn apply(publish: &mut Publish, additions: &[Addition]) -> bool {
    if additions.is_empty() {
        return true;
    }
    let members = additions.iter().map(|addition| match addition {
        Addition::CheckValue(aus) => ("aus", Value::String(aus.clone())),
        Addition::Token(jwt) => ("tkns", Value::Array(vec![Value::String(jwt.clone())])),
    });
    let format = topic::request(&publish.topic).map(|t| t.format);
    match format.and_then(|f| with_members(&publish.payload, f, members)) {
        Some(payload) => {
            publish.payload = payload;
            true
        }
        None => false,
    }
}

/// The request primitive in `payload` with `members` set, serialised in `format`.
fn with_members<'a>(
    payload: &[u8],
    format: Format,
    members: impl Iterator<Item = (&'a str, Value)>,
) -> Option<Bytes> {
    let mut object = decode::parse(payload, format).ok()?;
    let map = object.as_object_mut()?;
    for (name, value) in members {
        map.insert(name.to_owned(), value);
    }
    match format {
        Format::Json => serde_json::to_vec(&object).ok().map(Bytes::from),
        Format::Cbor => {
            let mut out = Vec::new();
            ciborium::into_writer(&object, &mut out).ok()?;
            Some(Bytes::from(out))
        }
    }
}

/// A SUBSCRIBE with only the permitted filters, under the client's packet id.
pub fn subscribe(
    pkid: u16,
    allowed: Vec<Permitted<SubscribeFilter>>,
    to_broker: &mut BytesMut,
) -> Result<(), WireError> {
    let (filters, records): (Vec<_>, Vec<_>) = allowed
        .into_iter()
        .map(|permitted| {
            let (filter, _, record) = permitted.into_parts();
            (filter, record)
        })
        .unzip();
    encode(&Packet::Subscribe(Subscribe { pkid, filters }), to_broker)?;
    for record in records {
        record.forwarded(Forward::Sent);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use rumqttc::mqttbytes::QoS;
    use serde_json::json;

    use super::*;

    #[test]
    fn an_inserted_check_value_becomes_the_member_aus_in_the_request_format() {
        let aus = [Addition::CheckValue("k1.5.bWFj".into())];
        let request =
            json!({"op": 2, "to": "/id-in/cse-in", "fr": "Cmeter", "rqi": "r1", "rvi": "4"});
        let mut json_publish = Publish::new(
            "/oneM2M/req/Cmeter/id-in/json",
            QoS::AtMostOnce,
            request.to_string(),
        );
        assert!(apply(&mut json_publish, &aus));
        // The members as sent, in order, the new one last.
        assert_eq!(
            std::str::from_utf8(&json_publish.payload).unwrap(),
            r#"{"op":2,"to":"/id-in/cse-in","fr":"Cmeter","rqi":"r1","rvi":"4","aus":"k1.5.bWFj"}"#
        );
        let mut cbor = Vec::new();
        ciborium::into_writer(&request, &mut cbor).unwrap();
        let mut cbor_publish = Publish::new("/oneM2M/req/Cmeter/id-in/cbor", QoS::AtMostOnce, cbor);
        assert!(apply(&mut cbor_publish, &aus));
        let read: Value = ciborium::from_reader(&cbor_publish.payload[..]).unwrap();
        assert_eq!(read["aus"], "k1.5.bWFj");
        assert_eq!(read["rqi"], "r1");
        // Nothing to add: the payload is forwarded byte for byte.
        let mut plain = Publish::new("site/meters/1", QoS::AtMostOnce, "not json");
        assert!(apply(&mut plain, &[]));
        assert_eq!(&plain.payload[..], b"not json");
        assert!(!apply(&mut plain, &aus), "no request primitive to add to");
    }
}
