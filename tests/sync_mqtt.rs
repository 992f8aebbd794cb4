//! A gateway following the feed through an MQTT broker (`sync.transport = "mqtt"`, an embedded
//! rumqttd): what the broker delivers is a copy like any other. A validly signed head older
//! than one the gateway verified (a late copy, or anyone replaying it there) is ignored: it
//! fails no round, so it delays nothing and is never reported as a refusal.

mod common;

use common::sync::{eventually, Synced};
use rumqttc::QoS;

const TOPIC: &str = "m2mguard/feed-t";

#[tokio::test]
async fn an_old_head_replayed_on_the_broker_fails_no_round() {
    let broker = common::mqtt::broker().await;
    let authority_mqtt =
        format!("\n[authority.mqtt]\nbroker = \"{broker}\"\ntopic = \"{TOPIC}\"\n");
    let mut s = Synced::unstarted_with(&[("Cmeter", "devices")], "", &authority_mqtt).await;
    // The retained head now names record 1: keep a copy to replay later.
    let mut watcher = common::mqtt::connect(broker, "head-replayer").await;
    watcher
        .subscribe(&format!("{TOPIC}/head"), QoS::AtLeastOnce)
        .await;
    let old = watcher.publication(&format!("{TOPIC}/head")).await.payload;
    s.sync.push_str(&format!(
        "transport = \"mqtt\"\nmqtt_broker = \"{broker}\"\nmqtt_topic = \"{TOPIC}\"\n"
    ));
    s.start_gateway().await;
    eventually("the enrolled node passes", || async {
        s.rsc("Cmeter").await == "pass"
    })
    .await;
    s.setup
        .ok(&["node", "enrol", "Cother", "--group", "devices"])
        .await;
    eventually("record 2 arrived", || async {
        s.rsc("Cother").await == "pass"
    })
    .await;
    let before = s.refused("head").await;
    watcher
        .publish_acked(&format!("{TOPIC}/head"), false, old.to_vec())
        .await;
    s.setup.ok(&["node", "deactivate", "Cmeter"]).await;
    eventually(
        "the deactivation after the replayed head arrived",
        || async { s.rsc("Cmeter").await == "4103" },
    )
    .await;
    assert_eq!(
        s.refused("head").await,
        before,
        "an old head from the broker is no refused head"
    );
}
