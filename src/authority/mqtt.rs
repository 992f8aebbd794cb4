//! Optional MQTT publishing (docs/feed.md "MQTT"): every record, in order, QoS 1, on
//! `<topic>/records`, and every head, retained, on `<topic>/head`, to any broker.
//!
//! In: the feed's position as it moves (a watch), the records read back from the state. Out:
//! publishes through rumqttc. Publishing never waits for the broker: this task follows the
//! feed on its own cursor, from the position at start, and a broker that is down only holds
//! it back (the connection is retried with a backoff of 1 s doubling to 30 s); gateways fetch
//! what they miss over HTTPS.

use std::sync::Arc;
use std::time::Duration;

use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use tokio_util::sync::CancellationToken;

use super::config::MqttPublish;
use super::publish::Feed;

/// Requests queued towards the broker before the publisher waits.
const QUEUE: usize = 64;
/// Records read from the state at a time.
const BATCH: usize = 64;
const BACKOFF_MIN: Duration = Duration::from_secs(1);
const BACKOFF_MAX: Duration = Duration::from_secs(30);
/// Pause before offering a publish again when the queue is full.
const RETRY: Duration = Duration::from_millis(200);

/// Runs until `stop` is cancelled.
pub async fn run(feed: Arc<Feed>, config: MqttPublish, stop: CancellationToken) {
    let Some((host, port)) = config
        .broker
        .rsplit_once(':')
        .and_then(|(h, p)| Some((h.to_owned(), p.parse::<u16>().ok()?)))
    else {
        return tracing::error!(broker = %config.broker, "MQTT broker is not host:port");
    };
    let mut options = MqttOptions::new(config.client_id.clone(), host, port);
    options.set_keep_alive(Duration::from_secs(30));
    options.set_max_packet_size(
        crate::feed::record::MAX_RECORD + 1024,
        crate::feed::record::MAX_RECORD + 1024,
    );
    let (client, eventloop) = AsyncClient::new(options, QUEUE);
    let driver = tokio::spawn(drive(eventloop, config.broker.clone(), stop.clone()));
    follow(&feed, &client, &config.topic, &stop).await;
    let _ = client.try_disconnect();
    let _ = tokio::time::timeout(Duration::from_secs(2), driver).await;
}

/// Keeps the connection up, reconnecting with a backoff.
async fn drive(mut eventloop: rumqttc::EventLoop, broker: String, stop: CancellationToken) {
    let mut backoff = BACKOFF_MIN;
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            event = eventloop.poll() => match event {
                Ok(Event::Incoming(Packet::ConnAck(_))) => {
                    backoff = BACKOFF_MIN;
                    tracing::info!(broker = %broker, "MQTT publishing connected");
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(broker = %broker, error = %e, "MQTT publishing: broker unreachable; retrying in {backoff:?}");
                    tokio::select! {
                        () = stop.cancelled() => return,
                        () = tokio::time::sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(BACKOFF_MAX);
                }
            }
        }
    }
}

/// Publishes records after the position at start, then the head, on every move.
async fn follow(feed: &Arc<Feed>, client: &AsyncClient, topic: &str, stop: &CancellationToken) {
    let records = format!("{topic}/records");
    let head = format!("{topic}/head");
    let mut watch = feed.subscribe();
    let mut sent = watch.borrow_and_update().seq;
    let mut pending_head = true;
    loop {
        let current = watch.borrow_and_update().clone();
        while sent < current.seq {
            let batch = match feed.state().records_after(sent, BATCH) {
                Ok(batch) if !batch.is_empty() => batch,
                Ok(_) => break,
                Err(e) => {
                    tracing::error!(error = %e, "MQTT publishing: cannot read records");
                    break;
                }
            };
            for compact in batch {
                if !offer(client, &records, false, compact, stop).await {
                    return;
                }
                sent += 1;
            }
        }
        if pending_head || sent >= current.seq {
            pending_head = !offer(client, &head, true, current.head.to_string(), stop).await;
        }
        tokio::select! {
            () = stop.cancelled() => return,
            changed = watch.changed() => if changed.is_err() { return },
        }
    }
}

/// Queues one publish, waiting while the queue is full; `false` once stopped.
async fn offer(
    client: &AsyncClient,
    topic: &str,
    retain: bool,
    payload: String,
    stop: &CancellationToken,
) -> bool {
    let payload = payload.into_bytes();
    loop {
        match client.try_publish(topic, QoS::AtLeastOnce, retain, payload.clone()) {
            Ok(()) => return true,
            Err(_) => tokio::select! {
                () = stop.cancelled() => return false,
                () = tokio::time::sleep(RETRY) => {}
            },
        }
    }
}
