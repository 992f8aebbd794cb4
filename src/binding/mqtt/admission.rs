//! Admission of a session: the CONNECT is bound to an originator ([`super::connect`]), the
//! guard admits it (identity, node status; an originator the repository does not know as a
//! registrant, for registration only), the will's topic passes policy; then the broker
//! connection is opened with the client's CONNECT and the broker's CONNACK read.
//!
//! In: the client's CONNECT and [`Peer`]. Out: the originator and an open broker connection, or
//! the CONNACK code the client is refused with.

use bytes::BytesMut;
use rumqttc::mqttbytes::v4::{ConnAck, Connect, ConnectReturnCode, Packet};
use rumqttc::mqttbytes::Protocol as MqttProtocol;
use tokio::io::AsyncWrite;
use tokio::net::TcpStream;
use tokio::time::timeout;

use super::session::End;
use super::wire::{encode, flush, Frames, WireError};
use super::{connect, topic, MqttBinding};
use crate::decision::Decision;
use crate::guard::{Admission, Denial};
use crate::primitive::{Peer, TopicAction, TopicRequest};
use crate::record::{About, Refusal};

/// Binds and admits the originator (as a node, or as a registrant that is not one yet); checks
/// the will's topic. The CONNACK code on refusal.
pub fn admit(
    b: &MqttBinding,
    c: &Connect,
    peer: &Peer,
) -> Result<(String, Admission), (ConnectReturnCode, String)> {
    let refuse = |why: String| (ConnectReturnCode::NotAuthorized, why);
    let malformed = |why: &str| {
        let about = About::peer(peer).op("connect");
        b.decider.refuse(about, Refusal::Malformed(why.into()));
        why.to_owned()
    };
    if c.protocol != MqttProtocol::V4 {
        let why = malformed("only MQTT 3.1.1 is relayed");
        return Err((ConnectReturnCode::RefusedProtocolVersion, why));
    }
    if c.last_will
        .as_ref()
        .is_some_and(|will| topic::is_request(&will.topic))
    {
        return Err(refuse(malformed(
            "a will on a oneM2M request topic is not accepted",
        )));
    }
    let originator = connect::originator(c, peer.tls_identity.as_deref()).map_err(|e| {
        let why = e.to_string();
        let about = About::peer(peer).op("connect");
        b.decider.deny(about, Denial::session_claims(e));
        refuse(why)
    })?;
    let admission = b
        .decider
        .admit(&originator, peer)
        .map_err(|d| refuse(d.reason.to_string()))?;
    if let Some(will) = &c.last_will {
        let request = TopicRequest {
            action: TopicAction::Publish,
            originator: originator.clone(),
            topic: will.topic.clone(),
            onem2m: topic::onem2m(&will.topic),
            peer: peer.clone(),
        };
        match b.decider.decide_topic(&request, admission) {
            Decision::Allow(permitted) => permitted.decided(),
            Decision::Deny(d) => return Err(refuse(format!("will topic: {}", d.reason))),
        }
    }
    Ok((originator, admission))
}

pub async fn connack<S: AsyncWrite + Unpin>(
    client: &mut S,
    code: ConnectReturnCode,
) -> Result<(), WireError> {
    let mut out = BytesMut::new();
    encode(&Packet::ConnAck(ConnAck::new(code, false)), &mut out)?;
    flush(client, &mut out).await
}

/// Connects to the broker and passes the client's CONNECT; returns the broker's CONNACK and
/// the frames holding anything the broker sent after it.
pub async fn open_broker(
    b: &MqttBinding,
    c: &Connect,
) -> Result<(TcpStream, Frames, ConnAck), End> {
    let t = b.config.broker_timeout;
    let mut broker = match timeout(t, TcpStream::connect(&b.config.broker)).await {
        Ok(Ok(stream)) => stream,
        Ok(Err(e)) => return Err(End::Broker(WireError::Io(e))),
        Err(_) => return Err(End::Timeout("the broker to accept")),
    };
    let _ = broker.set_nodelay(true);
    let mut out = BytesMut::new();
    encode(&Packet::Connect(c.clone()), &mut out).map_err(End::Client)?;
    flush(&mut broker, &mut out).await.map_err(End::Broker)?;
    let mut frames = Frames::new(b.config.max_packet_bytes);
    match timeout(t, frames.read(&mut broker)).await {
        Ok(Ok(Packet::ConnAck(ack))) => Ok((broker, frames, ack)),
        Ok(Ok(_)) => Err(End::Protocol("broker answered CONNECT with another packet")),
        Ok(Err(e)) => Err(End::Broker(e)),
        Err(_) => Err(End::Timeout("CONNACK")),
    }
}
