//! The feed's changes on long-lived sessions: a node deactivated at the authority loses its
//! MQTT session at once while others keep theirs, and a gateway the authority deactivates
//! closes every session; once activated, a legitimate request passes again. (CoAP
//! observations end on the same status changes: tests/coap.rs.)

mod common;

use std::time::Duration;

use common::mqtt::{broker, device, legitimate_request_passes, responder};
use common::sync::Synced;

async fn synced_with_mqtt() -> (Synced, common::mqtt::Responder) {
    let broker = broker().await;
    let cse = responder(broker).await;
    let mqtt = format!(
        "[mqtt]\nlisten = \"127.0.0.1:0\"\nbroker = \"{broker}\"\nconnect_timeout_ms = 2000\nbroker_timeout_ms = 2000\n"
    );
    let s = Synced::new(&[("Cmeter", "devices"), ("Clamp", "devices")], &mqtt).await;
    let addr = s.gateway().mqtt_addr.unwrap();
    common::sync::eventually("Cmeter is enrolled", || async {
        s.rsc("Cmeter").await == "pass"
    })
    .await;
    legitimate_request_passes(addr, &cse, "Cmeter").await;
    (s, cse)
}

#[tokio::test]
async fn a_node_deactivated_at_the_authority_loses_its_mqtt_session() {
    let (s, cse) = synced_with_mqtt().await;
    let addr = s.gateway().mqtt_addr.unwrap();
    let mut lamp = device(addr, "Clamp").await;
    let mut meter = device(addr, "Cmeter").await;
    s.setup.ok(&["node", "deactivate", "Clamp"]).await;
    assert!(
        lamp.closed_within(Duration::from_secs(10)).await,
        "the deactivated node's session is closed"
    );
    assert!(
        !meter.closed_within(Duration::from_millis(300)).await,
        "other sessions stay"
    );
    legitimate_request_passes(addr, &cse, "Cmeter").await;
}

#[tokio::test]
async fn a_gateway_deactivated_at_the_authority_closes_every_session() {
    let (s, cse) = synced_with_mqtt().await;
    let addr = s.gateway().mqtt_addr.unwrap();
    let mut meter = device(addr, "Cmeter").await;
    s.setup.ok(&["gateway", "deactivate", "gw-a"]).await;
    assert!(
        meter.closed_within(Duration::from_secs(10)).await,
        "every session is closed"
    );
    s.setup.ok(&["gateway", "activate", "gw-a"]).await;
    common::sync::eventually("the gateway forwards again", || async {
        s.rsc("Cmeter").await == "pass"
    })
    .await;
    legitimate_request_passes(addr, &cse, "Cmeter").await;
}
