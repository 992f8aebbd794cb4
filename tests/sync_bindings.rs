//! The feed's changes on long-lived sessions: a node deactivated at the authority loses its
//! MQTT session at once while others keep theirs, and a gateway the authority deactivates
//! closes every session; once activated, a legitimate request passes again; records reach a
//! gateway over MQTT (`transport = "mqtt"`), and a broker copy that does not verify is skipped. (CoAP
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

#[tokio::test]
async fn records_reach_a_gateway_over_mqtt_and_a_broker_copy_that_does_not_verify_is_skipped() {
    let broker = broker().await;
    let authority_mqtt = format!("[authority.mqtt]\nbroker = \"{broker}\"\ntopic = \"feed-t\"\n");
    let mut s = Synced::unstarted_with(&[("Cmeter", "devices")], "", &authority_mqtt).await;
    s.sync.push_str(&format!(
        "transport = \"mqtt\"\nmqtt_broker = \"{broker}\"\nmqtt_topic = \"feed-t\"\n"
    ));
    s.start_gateway().await;
    common::sync::eventually("Cmeter is enrolled", || async {
        s.rsc("Cmeter").await == "pass"
    })
    .await;
    // Anyone can publish on the broker: a forged record is skipped, never applied.
    let mut forger = common::mqtt::connect(broker, "forger").await;
    forger
        .publish_acked("feed-t/records", false, "eyJhbGciOiJub25lIn0.e30.")
        .await;
    s.setup.ok(&["node", "deactivate", "Cmeter"]).await;
    common::sync::eventually("the deactivation arrives", || async {
        s.rsc("Cmeter").await == "4103"
    })
    .await;
    common::sync::eventually("it came over MQTT", || async {
        s.counter("m2mguard_sync_records_applied_total{via=\"mqtt\"}")
            .await
            >= 1
    })
    .await;
    assert!(
        s.refused("signature").await >= 1,
        "the forged copy was refused"
    );
    s.setup.ok(&["node", "activate", "Cmeter"]).await;
    common::sync::eventually("the activation arrives", || async {
        s.rsc("Cmeter").await == "pass"
    })
    .await;
}

#[tokio::test]
async fn past_max_age_sessions_outside_the_stale_group_close() {
    let broker = broker().await;
    let cse = responder(broker).await;
    let mqtt = format!(
        "[mqtt]\nlisten = \"127.0.0.1:0\"\nbroker = \"{broker}\"\nconnect_timeout_ms = 2000\nbroker_timeout_ms = 2000\n"
    );
    let mut s = Synced::unstarted(&[("Cmeter", "devices"), ("CAdmin", "operators")], &mqtt).await;
    s.sync.push_str("max_age_s = 4\n");
    s.start_gateway().await;
    common::sync::eventually("Cmeter is enrolled", || async {
        s.rsc("Cmeter").await == "pass"
    })
    .await;
    let addr = s.gateway().mqtt_addr.unwrap();
    let mut meter = device(addr, "Cmeter").await;
    let mut admin = device(addr, "CAdmin").await;
    s.authority.take().unwrap().shutdown().await;
    assert!(
        meter.closed_within(Duration::from_secs(15)).await,
        "the device's session closes once the view is too old"
    );
    assert!(
        !admin.closed_within(Duration::from_millis(300)).await,
        "the stale group keeps its session"
    );
    legitimate_request_passes(addr, &cse, "CAdmin").await;
}
