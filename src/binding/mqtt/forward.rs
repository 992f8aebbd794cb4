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
    let members: Vec<(&'static str, Value)> = permitted
        .additions()
        .iter()
        .map(|addition| match addition {
            Addition::CheckValue(aus) => ("aus", Value::String(aus.clone())),
        })
        .collect();
    let (mut publish, record) = permitted.into_parts();
    if !members.is_empty() {
        let format = topic::request(&publish.topic).map(|t| t.format);
        match format.and_then(|f| with_members(&publish.payload, f, members)) {
            Some(payload) => publish.payload = payload,
            None => {
                // Additions are only made to oneM2M requests, which were decoded to decide them.
                let why = "cannot add to a payload that is not a request primitive";
                record.failed(UpstreamFailure::Request(why.into()));
                return Ok(());
            }
        }
    }
    encode(&Packet::Publish(publish), to_broker)?;
    record.forwarded(Forward::Sent);
    Ok(())
}

/// The request primitive in `payload` with `members` set, serialised in `format`.
fn with_members(payload: &[u8], format: Format, members: Vec<(&str, Value)>) -> Option<Bytes> {
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
    let (filters, records): (Vec<_>, Vec<_>) =
        allowed.into_iter().map(Permitted::into_parts).unzip();
    encode(&Packet::Subscribe(Subscribe { pkid, filters }), to_broker)?;
    for record in records {
        record.forwarded(Forward::Sent);
    }
    Ok(())
}
