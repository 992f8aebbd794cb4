//! The MQTT transport of the feed (`sync.transport = "mqtt"`): a subscriber to the
//! authority's `<topic>/records` and `<topic>/head` on any broker. The broker is trusted for
//! nothing: what it delivers goes to the follower as text, to be verified like any other
//! copy; a message lost here (broker gone, queue full) is a gap the follower fetches over
//! HTTPS. Bounded: packets up to one record, at most [`QUEUE`] messages waiting.

use std::time::Duration;

use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::feed::record::MAX_RECORD;

/// Messages waiting for the follower; more are dropped (a gap, fetched over HTTPS).
pub const QUEUE: usize = 1024;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    Record(String),
    Head(String),
}

/// Subscribes at `broker` (`host:port`) and hands what arrives to the returned receiver until
/// `stop`; reconnects (and subscribes again) with growing pauses while the broker is away.
pub fn subscribe(
    broker: &str,
    topic: &str,
    gateway_id: &str,
    stop: CancellationToken,
) -> mpsc::Receiver<Message> {
    let (tx, rx) = mpsc::channel(QUEUE);
    let (host, port) = broker
        .rsplit_once(':')
        .and_then(|(h, p)| Some((h.trim_matches(['[', ']']).to_owned(), p.parse().ok()?)))
        .unwrap_or_else(|| (broker.to_owned(), 1883));
    let mut options = MqttOptions::new(format!("m2mguard-sync-{gateway_id}"), host, port);
    options
        .set_keep_alive(Duration::from_secs(30))
        .set_clean_session(true)
        .set_max_packet_size(MAX_RECORD + 1024, 4096);
    let records = format!("{topic}/records");
    let head = format!("{topic}/head");
    tokio::spawn(async move {
        let (client, mut events) = AsyncClient::new(options, 16);
        let mut pause = Duration::from_millis(500);
        loop {
            let event = tokio::select! {
                () = stop.cancelled() => return,
                event = events.poll() => event,
            };
            match event {
                Ok(Event::Incoming(Packet::ConnAck(_))) => {
                    pause = Duration::from_millis(500);
                    tracing::info!(topic = %records, "feed: subscribed over MQTT");
                    for t in [&records, &head] {
                        let _ = client.try_subscribe(t.as_str(), QoS::AtLeastOnce);
                    }
                }
                Ok(Event::Incoming(Packet::Publish(p))) => {
                    let Ok(text) = String::from_utf8(p.payload.to_vec()) else {
                        continue;
                    };
                    let message = if p.topic == records {
                        Message::Record(text)
                    } else if p.topic == head {
                        Message::Head(text)
                    } else {
                        continue;
                    };
                    if tx.try_send(message).is_err() && tx.is_closed() {
                        return;
                    }
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "feed: MQTT broker unreachable; records come over HTTPS meanwhile");
                    tokio::select! {
                        () = stop.cancelled() => return,
                        () = tokio::time::sleep(pause) => {}
                    }
                    pause = (pause * 2).min(Duration::from_secs(30));
                }
            }
        }
    });
    rx
}
