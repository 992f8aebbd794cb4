//! The audit log on the CoAP and MQTT bindings: every request there is a line too, with the
//! binding's own outcome (CoAP's code, MQTT's hand-off to the broker, sessions and
//! subscriptions).

mod common;

use coap_lite::RequestType;
use common::audit::{self, Dirs};
use common::{coap, mqtt};

/// An `[audit]` table writing to `dirs`' log, as extra configuration text.
fn audit_table(dirs: &Dirs) -> String {
    format!(
        "\n[audit]\ndir = \"{}\"\nkey = \"{}\"\nflush_interval_ms = 5\n",
        dirs.log().display(),
        dirs.key().display()
    )
}

#[tokio::test]
async fn coap_requests_are_recorded_with_the_upstream_code() {
    let up = coap::upstream().await;
    let dirs = Dirs::new();
    let g = coap::gateway(up.addr, &audit_table(&dirs)).await;
    let mut client = coap::Client::new().await;
    let denied = client
        .exchange(
            g.coap(),
            coap::request(RequestType::Get, "/cse-in", "Cstranger", "c-unknown"),
        )
        .await;
    assert_eq!(coap::rsc_with(&denied, coap::RSC), 4103);
    let allowed = client
        .exchange(
            g.coap(),
            coap::request(RequestType::Get, "/cse-in", "Cmeter", "c-legit"),
        )
        .await;
    assert_ne!(coap::rsc_with(&allowed, coap::RSC), 4103);
    g.gateway.shutdown().await;

    let lines = audit::lines(&dirs.log());
    let denied = audit::requests(&lines, "c-unknown");
    assert_eq!(denied.len(), 1);
    assert_eq!(
        (denied[0]["binding"].as_str(), denied[0]["verdict"].as_str()),
        (Some("coap"), Some("denied"))
    );
    let allowed = audit::requests(&lines, "c-legit");
    assert_eq!(allowed.len(), 1, "{lines:?}");
    let a = allowed[0];
    assert_eq!(
        (a["verdict"].as_str(), a["op"].as_str()),
        (Some("allowed"), Some("retrieve"))
    );
    assert_eq!(a["forward"]["result"], "answered");
    let status = a["forward"]["status"]
        .as_u64()
        .expect("the upstream's code");
    assert!(
        (200..300).contains(&status),
        "2.xx as class * 100 + detail: {status}"
    );
    let (code, report) = audit::verify(&dirs.log(), &dirs.public_key());
    assert_eq!(code, 0, "{report}");
}

#[tokio::test]
async fn mqtt_sessions_subscriptions_and_requests_are_recorded() {
    let broker = mqtt::broker().await;
    let responder = mqtt::responder(broker).await;
    let dirs = Dirs::new();
    let g = mqtt::gateway_with(broker, &audit_table(&dirs)).await;
    let addr = mqtt::mqtt_addr(&g);
    mqtt::legitimate_request_passes(addr, &responder, "Cmeter").await;
    g.gateway.shutdown().await;

    let lines = audit::lines(&dirs.log());
    let mqtt_lines: Vec<_> = lines.iter().filter(|l| l["binding"] == "mqtt").collect();
    let ops: Vec<&str> = mqtt_lines.iter().filter_map(|l| l["op"].as_str()).collect();
    for op in ["connect", "subscribe", "retrieve"] {
        assert!(ops.contains(&op), "{op} in {ops:?}");
    }
    let request = audit::requests(&lines, "legit");
    assert_eq!(request.len(), 1);
    assert_eq!(
        (request[0]["verdict"].as_str(), request[0]["fr"].as_str()),
        (Some("allowed"), Some("Cmeter"))
    );
    assert_eq!(
        request[0]["forward"]["result"], "sent",
        "handed to the broker"
    );
    let (code, report) = audit::verify(&dirs.log(), &dirs.public_key());
    assert_eq!(code, 0, "{report}");
}
