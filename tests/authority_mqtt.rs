//! The authority's MQTT publishing against an embedded rumqttd: every record in order at
//! QoS 1, the head retained; a broker that is down holds up nothing, and once it is up the
//! authority connects and publishes.

mod common;

use std::time::Duration;

use m2mguard::feed::Head;
use rumqttc::QoS;

use common::authority::{free_port, printed_seq, verify_chain, Setup};

async fn enrol(setup: &Setup, id: &str) -> u64 {
    printed_seq(&setup.ok(&["node", "enrol", id]).await)
}

fn mqtt_table(broker: std::net::SocketAddr) -> String {
    format!("\n[authority.mqtt]\nbroker = \"{broker}\"\ntopic = \"m2mguard/feed-t\"\n")
}

#[tokio::test]
async fn records_and_heads_are_published_on_mqtt_in_order() {
    let broker = common::mqtt::broker().await;
    let extra = mqtt_table(broker);
    let setup = Setup::new(&extra).await;
    let mut sub = common::mqtt::connect(broker, "feed-watcher").await;
    sub.subscribe("m2mguard/feed-t/records", QoS::AtLeastOnce)
        .await;
    let running = setup.start().await;
    for i in 0..5 {
        enrol(&setup, &format!("Cm{i}")).await;
    }
    let mut lines = String::new();
    for _ in 0..5 {
        let publish = sub.publication("m2mguard/feed-t/records").await;
        lines.push_str(std::str::from_utf8(&publish.payload).unwrap());
        lines.push('\n');
    }
    let chain = verify_chain(&lines, &setup.feed_key(), "feed-t");
    let seqs: Vec<u64> = chain.iter().map(|s| s.record.seq).collect();
    assert_eq!(seqs, [1, 2, 3, 4, 5], "every record, in order");
    // A late subscriber gets the retained head, naming the last record.
    let mut late = common::mqtt::connect(broker, "late-watcher").await;
    late.subscribe("m2mguard/feed-t/head", QoS::AtLeastOnce)
        .await;
    let head = late.publication("m2mguard/feed-t/head").await;
    assert!(head.retain, "the head is retained");
    let head = Head::verify(
        std::str::from_utf8(&head.payload).unwrap(),
        &setup.feed_key(),
    )
    .unwrap();
    assert_eq!((head.seq, head.hash), (5, chain[4].hash.clone()));
    running.shutdown().await;
}

#[tokio::test]
async fn a_broker_that_is_down_holds_up_nothing_and_is_published_to_once_up() {
    let broker = std::net::SocketAddr::from(([127, 0, 0, 1], free_port()));
    let setup = Setup::new(&mqtt_table(broker)).await;
    let running = setup.start().await;
    // Nothing listens at the broker's address: every publish is answered all the same.
    for i in 0..3 {
        assert_eq!(enrol(&setup, &format!("Cd{i}")).await, i + 1);
    }
    common::mqtt::broker_on(broker).await;
    let mut sub = common::mqtt::connect(broker, "head-watcher").await;
    sub.subscribe("m2mguard/feed-t/head", QoS::AtLeastOnce)
        .await;
    // The authority reconnects within its backoff (1 s, then 2 s, ...) and publishes the head.
    let mut seq = 0;
    for _ in 0..5 {
        let head = sub.publication("m2mguard/feed-t/head").await;
        seq = Head::verify(
            std::str::from_utf8(&head.payload).unwrap(),
            &setup.feed_key(),
        )
        .unwrap()
        .seq;
        if seq == 3 {
            break;
        }
    }
    assert_eq!(
        seq, 3,
        "the head names the last record once the broker is up"
    );
    tokio::time::timeout(Duration::from_secs(30), running.shutdown())
        .await
        .expect("shutdown is bounded");
}
