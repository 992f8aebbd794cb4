//! The decision record, end to end: every refusal a binding makes (a malformed HTTP request, a
//! malformed CoAP datagram, a retained MQTT request, an upstream that is down) is exactly one
//! record through a sink attached to the gateway; token denials carry `tqf` on CoAP and MQTT
//! too; a slow record consumer loses nothing, a stalled one costs each request at most the
//! queue's bound and its losses are counted and announced.

mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use coap_lite::{MessageClass, MessageType, RequestType, ResponseType};
use common::coap::{self as coap, Client as CoapClient};
use common::mqtt::{self as mqtt, broker, device, mqtt_addr, retrieve};
use common::{client, onem2m, send};
use http_body_util::Full;
use m2mguard::guard::{Reason, Stage};
use m2mguard::primitive::Protocol;
use m2mguard::record::{Forward, Outcome, Overflow, Record, Refusal, UpstreamFailure};
use rumqttc::QoS;
use serde_json::json;

#[path = "common/tokens.rs"]
mod token_kit;

/// A test sink attached to a gateway: every record, in order.
struct Collect(Arc<Mutex<Vec<Record>>>);

impl Collect {
    fn attached(gw: &common::TestGateway) -> Collect {
        let sink = Arc::new(Mutex::new(Vec::new()));
        gw.gateway.state.recorder.attach(sink.clone());
        Collect(sink)
    }

    /// The records that match, after a moment for any late second one to arrive.
    async fn matching(&self, pred: impl Fn(&Record) -> bool) -> Vec<Record> {
        tokio::time::sleep(Duration::from_millis(300)).await;
        self.0
            .lock()
            .unwrap()
            .iter()
            .filter(|r| pred(r))
            .cloned()
            .collect()
    }

    /// Asserts that the one record of request `rqi` is an allowed request whose forward ended
    /// as `ended` expects.
    async fn allowed(&self, rqi: &str, ended: impl Fn(&Forward) -> bool) {
        let record = self.one(rqi).await;
        assert!(
            matches!(&record.outcome, Outcome::Allowed { forward, .. } if ended(forward)),
            "{record:?}"
        );
    }

    /// The one record of request `rqi`.
    async fn one(&self, rqi: &str) -> Record {
        let found = self.matching(|r| r.about.rqi == rqi).await;
        assert_eq!(found.len(), 1, "one record for {rqi}: {found:#?}");
        found.into_iter().next().unwrap()
    }
}

#[tokio::test]
async fn a_malformed_http_request_is_one_refused_record() {
    let up = common::echo_upstream().await;
    let gw = common::gateway(up.addr).await;
    let sink = Collect::attached(&gw);
    let request = http::Request::get(format!("http://{}/cse-in", gw.http()))
        .header("X-M2M-RI", "no-origin")
        .body(Full::default())
        .unwrap();
    let answer = send(&client(), request).await;
    assert_eq!((answer.status.as_u16(), answer.rsc()), (400, "4000"));
    let record = sink.one("no-origin").await;
    assert_eq!(
        record.outcome,
        Outcome::Refused(Refusal::Malformed("missing X-M2M-Origin".into()))
    );
    assert_eq!(
        (record.about.protocol, record.about.to.as_str()),
        (Protocol::Http, "/cse-in")
    );
    // Legitimate: an allowed request is one record too, completed by the upstream's answer.
    assert_eq!(
        common::retrieve(&client(), gw.http(), "Cmeter").await.rsc(),
        "2001"
    );
    sink.allowed("legit", |f| matches!(f, Forward::Answered(_)))
        .await;
    assert_eq!(up.hits.load(std::sync::atomic::Ordering::SeqCst), 1);
    gw.gateway.shutdown().await;
}

#[tokio::test]
async fn an_allowed_request_whose_upstream_is_down_is_one_failed_record() {
    let gw = common::gateway(common::closed_port().await).await;
    let sink = Collect::attached(&gw);
    let request = gw
        .request("GET", "/cse-in", "Cmeter", "down")
        .body(Full::default())
        .unwrap();
    let answer = send(&client(), request).await;
    assert_eq!((answer.status.as_u16(), answer.rsc()), (404, "5103"));
    let record = sink.one("down").await;
    assert!(
        matches!(&record.outcome, Outcome::Failed { failure: UpstreamFailure::Unreachable(_), policies } if !policies.is_empty()),
        "{record:?}"
    );
    gw.gateway.shutdown().await;
}

#[tokio::test]
async fn a_malformed_coap_datagram_is_one_refused_record() {
    let up = coap::upstream().await;
    let gw = coap::gateway(up.addr, "").await;
    let sink = Collect::attached(&gw);
    let mut c = CoapClient::new().await;
    let source = c.socket.local_addr().unwrap();
    // A confirmable CoAP header, then an option delta of 15: not a CoAP message.
    c.socket
        .send_to(&[0x40, 0x01, 0x12, 0x34, 0xf1, 0x00], gw.coap())
        .await
        .unwrap();
    let (rst, _) = c.recv_within(Duration::from_secs(5)).await.expect("an RST");
    assert_eq!(rst.header.get_type(), MessageType::Reset);
    let found = sink.matching(|r| r.about.peer == source).await;
    assert_eq!(found.len(), 1, "{found:#?}");
    assert_eq!(found[0].outcome, Outcome::Refused(Refusal::NotCoap));
    // A CoAP request that is no oneM2M request (no originator): one record, answered 4.00.
    let mut p = coap::request(RequestType::Get, "/cse-in", "Cmeter", "no-fr");
    p.clear_option(coap_lite::CoapOption::Unknown(coap::FR));
    let answer = c.exchange(gw.coap(), p).await;
    assert_eq!(
        answer.header.code,
        MessageClass::Response(ResponseType::BadRequest)
    );
    let found = sink.matching(|r| r.about.peer == source).await;
    assert_eq!(found.len(), 2, "{found:#?}");
    assert!(
        matches!(&found[1].outcome, Outcome::Refused(Refusal::Malformed(_))),
        "{found:#?}"
    );
    gw.gateway.shutdown().await;
}

#[tokio::test]
async fn a_silent_coap_upstream_is_one_failed_record_and_an_acknowledged_one_is_answered() {
    let up = coap::upstream().await;
    let gw = coap::gateway(up.addr, "upstream_timeout_ms = 200").await;
    let sink = Collect::attached(&gw);
    let mut c = CoapClient::new().await;
    let p = coap::request(RequestType::Get, "/cse-in/silent", "Cmeter", "silent");
    assert_eq!(coap::rsc(&c.exchange(gw.coap(), p).await), 5103);
    let record = sink.one("silent").await;
    assert!(
        matches!(
            &record.outcome,
            Outcome::Failed {
                failure: UpstreamFailure::Timeout(_),
                ..
            }
        ),
        "{record:?}"
    );
    // Acknowledged at once, answered later: one record, at the acknowledgement.
    let p = coap::request(RequestType::Get, "/cse-in/slow", "Cmeter", "slow");
    assert_eq!(
        c.exchange(gw.coap(), p).await.header.code,
        MessageClass::Empty
    );
    let later = c.recv().await;
    c.ack(gw.coap(), later.header.message_id).await;
    sink.allowed("slow", |f| matches!(f, Forward::Answered(_)))
        .await;
    gw.gateway.shutdown().await;
}

#[tokio::test]
async fn a_coap_token_denial_carries_tqf() {
    let up = coap::upstream().await;
    let issuers = token_kit::Issuers::new();
    let gw = coap::gateway(up.addr, &issuers.toml("/id-in/cse-in/meter", 100)).await;
    let sink = Collect::attached(&gw);
    let mut c = CoapClient::new().await;
    let p = coap::request(RequestType::Get, "/cse-in/meter", "Cmeter", "no-token");
    let answer = c.exchange(gw.coap(), p).await;
    assert_eq!(coap::rsc(&answer), 4103);
    assert_eq!(
        answer.get_content_format(),
        Some(coap_lite::ContentFormat::ApplicationJSON)
    );
    let content: serde_json::Value = serde_json::from_slice(&answer.payload).unwrap();
    assert_eq!(
        content,
        json!({"m2m:dbg": "access denied: token missing or invalid",
               "tqf": {"dasi": [{"url": token_kit::TQF}]}})
    );
    let record = sink.one("no-token").await;
    assert!(
        matches!(&record.outcome, Outcome::Denied(d) if d.stage == Stage::Token && matches!(&d.reason, Reason::TokenRequired { .. })),
        "{record:?}"
    );
    // Other denials stay text only.
    let p = coap::request(RequestType::Get, "/cse-in", "Cstranger", "unknown");
    let answer = c.exchange(gw.coap(), p).await;
    assert_eq!(answer.payload, b"access denied: originator is not active");
    gw.gateway.shutdown().await;
}

#[tokio::test]
async fn a_retained_mqtt_request_is_one_refused_record() {
    let broker = broker().await;
    let cse = mqtt::responder(broker).await;
    let g = mqtt::gateway(broker).await;
    let sink = Collect::attached(&g);
    let mut meter = device(mqtt_addr(&g), "Cmeter").await;
    meter
        .client
        .publish(
            "/oneM2M/req/Cmeter/id-in/json",
            QoS::AtMostOnce,
            true,
            retrieve("Cmeter", "retained").to_string(),
        )
        .await
        .unwrap();
    let p = meter.publication("/oneM2M/resp/Cmeter/id-in/json").await;
    let answer: serde_json::Value = serde_json::from_slice(&p.payload).unwrap();
    assert_eq!(answer["rsc"], 4000);
    let record = sink.one("retained").await;
    assert_eq!(record.outcome, Outcome::Refused(Refusal::Retained));
    assert_eq!(
        (
            record.about.protocol,
            record.about.fr.as_str(),
            record.about.op
        ),
        (Protocol::Mqtt, "Cmeter", "retrieve")
    );
    assert_eq!(cse.count(), 0);
    mqtt::legitimate_request_passes(mqtt_addr(&g), &cse, "Cmeter").await;
    sink.allowed("legit", |f| matches!(f, Forward::Sent)).await;
    g.gateway.shutdown().await;
}

#[tokio::test]
async fn an_mqtt_token_denial_carries_tqf_in_pc() {
    let broker = broker().await;
    let cse = mqtt::responder(broker).await;
    let issuers = token_kit::Issuers::new();
    let g = mqtt::gateway_with(broker, &issuers.toml("/id-in/cse-in/meter", 100)).await;
    let mut meter = device(mqtt_addr(&g), "Cmeter").await;
    let request =
        json!({"op": 2, "to": "/id-in/cse-in/meter", "fr": "Cmeter", "rqi": "t1", "rvi": "4"});
    let answer = meter
        .request("/oneM2M/req/Cmeter/id-in/json", request)
        .await;
    assert_eq!(answer["rsc"], 4103);
    assert_eq!(
        answer["pc"],
        json!({"m2m:dbg": "access denied: token missing or invalid",
               "tqf": {"dasi": [{"url": token_kit::TQF}]}})
    );
    // With a token: forwarded.
    let request = json!({"op": 2, "to": "/id-in/cse-in/meter", "fr": "Cmeter", "rqi": "t2",
                         "rvi": "4", "tkns": [issuers.fresh("Cmeter")]});
    let answer = meter
        .request("/oneM2M/req/Cmeter/id-in/json", request)
        .await;
    assert_eq!(answer["rsc"], 2000, "{answer}");
    assert_eq!(cse.count(), 1);
    g.gateway.shutdown().await;
}

#[tokio::test]
async fn a_slow_record_consumer_loses_nothing() {
    let up = common::echo_upstream().await;
    let gw = common::gateway(up.addr).await;
    let bound = Duration::from_secs(2);
    let records = gw.gateway.state.records("slow", 2, Overflow::Wait(bound));
    let reader = std::thread::spawn(move || {
        let mut rqis = Vec::new();
        while let Some(r) = records.recv_timeout(Duration::from_secs(5)) {
            assert_eq!(r.lost, 0);
            rqis.push(r.about.rqi);
            std::thread::sleep(Duration::from_millis(20));
            if rqis.len() == 12 {
                break;
            }
        }
        rqis
    });
    let c = client();
    for i in 0..12 {
        let request = onem2m(
            "GET",
            format!("http://{}/cse-in", gw.http()),
            "Cmeter",
            &format!("s{i}"),
        )
        .body(Full::default())
        .unwrap();
        let started = Instant::now();
        assert_eq!(send(&c, request).await.rsc(), "2001");
        assert!(
            started.elapsed() < bound,
            "a request waited {:?}",
            started.elapsed()
        );
    }
    let seen = tokio::task::spawn_blocking(move || reader.join().unwrap())
        .await
        .unwrap();
    let expected: Vec<String> = (0..12).map(|i| format!("s{i}")).collect();
    assert_eq!(seen, expected);
    assert!(!gw
        .gateway
        .state
        .metrics
        .encode()
        .contains("m2mguard_records_lost_total{sink=\"slow\"} 1"));
    gw.gateway.shutdown().await;
}

#[tokio::test]
async fn a_stalled_record_consumer_costs_each_request_at_most_the_bound_and_is_told_its_losses() {
    let up = common::echo_upstream().await;
    let gw = common::gateway(up.addr).await;
    let bound = Duration::from_millis(50);
    let records = gw
        .gateway
        .state
        .records("stalled", 2, Overflow::Wait(bound));
    let c = client();
    let get = |rqi: String| {
        gw.request("GET", "/cse-in", "Cmeter", &rqi)
            .body(Full::default())
            .unwrap()
    };
    for i in 0..6 {
        let started = Instant::now();
        assert_eq!(send(&c, get(format!("st{i}"))).await.rsc(), "2001");
        // A request's own work takes milliseconds here; the bound is the rest.
        assert!(
            started.elapsed() < bound + Duration::from_secs(1),
            "request {i} took {:?}",
            started.elapsed()
        );
    }
    let lost = "m2mguard_records_lost_total{sink=\"stalled\"} 4";
    assert!(
        gw.gateway.state.metrics.encode().contains(lost),
        "{}",
        gw.gateway.state.metrics.encode()
    );
    let kept: Vec<String> = std::iter::from_fn(|| records.try_recv())
        .map(|r| r.about.rqi)
        .collect();
    assert_eq!(kept, ["st0", "st1"]);
    assert_eq!(send(&c, get("after".into())).await.rsc(), "2001");
    let next = records.recv_timeout(Duration::from_secs(5)).unwrap();
    assert_eq!((next.about.rqi.as_str(), next.lost), ("after", 4));
    gw.gateway.shutdown().await;
}
