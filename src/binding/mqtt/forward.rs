//! What goes to the broker on a client's behalf. Only these functions write a client's
//! PUBLISH or SUBSCRIBE to the broker, and each takes the guard's [`Permit`]s by value: a
//! publish or filter that was not allowed has no way to reach the broker.

use bytes::BytesMut;
use rumqttc::mqttbytes::v4::{Packet, Publish, Subscribe, SubscribeFilter};

use super::wire::{encode, WireError};
use crate::guard::Permit;

/// An allowed PUBLISH, re-encoded for the broker.
pub fn publish(
    _permit: Permit,
    publish: Publish,
    to_broker: &mut BytesMut,
) -> Result<(), WireError> {
    encode(&Packet::Publish(publish), to_broker)
}

/// A SUBSCRIBE with only the allowed filters, one permit each, under the client's packet id.
pub fn subscribe(
    pkid: u16,
    allowed: Vec<(Permit, SubscribeFilter)>,
    to_broker: &mut BytesMut,
) -> Result<(), WireError> {
    let filters = allowed.into_iter().map(|(_, filter)| filter).collect();
    encode(&Packet::Subscribe(Subscribe { pkid, filters }), to_broker)
}
