//! Observe mode and `@observe` policies over real sockets. In observe mode what the guard would
//! refuse (an unknown originator, a policy denial, a bad check value) reaches the upstream and
//! gets its answer, the same as sent directly, and is recorded and counted as a would-be
//! denial, on HTTP, CoAP and MQTT; a malformed request is still refused. In enforce mode an
//! `@observe` forbid lets its requests pass and is counted, while an enforced forbid denies.

mod common;

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use coap_lite::{MessageClass, RequestType, ResponseType};
use common::coap::{self as coap, Client as CoapClient};
use common::mqtt::{self as mqtt, broker, connect, mqtt_addr, responder, retrieve};
use common::signed::{checks_toml, Signed};
use common::{client, config_text, onem2m, send, Answer, TestGateway, POLICIES};
use http_body_util::Full;
use m2mguard::config::Config;
use m2mguard::gateway::Gateway;
use m2mguard::guard::{Reason, Stage};
use m2mguard::record::{Forward, Outcome, Record, Refusal, Sink};
use m2mguard::store::NodeStatus;
use rumqttc::{QoS, SubscribeReasonCode};

/// A test sink: every record, in order.
#[derive(Default)]
struct Collect(Mutex<Vec<Record>>);

impl Sink for Collect {
    fn record(&self, record: &Record) {
        self.0.lock().unwrap().push(record.clone());
    }
}

impl Collect {
    fn attached(gw: &TestGateway) -> Arc<Collect> {
        let sink = Arc::new(Collect::default());
        gw.gateway.state.recorder.attach(sink.clone());
        sink
    }

    /// The one record of request `rqi` (after a moment for a late second one to arrive).
    async fn one(&self, rqi: &str) -> Record {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let found: Vec<Record> = (self.0.lock().unwrap().iter())
            .filter(|r| r.about.rqi == rqi)
            .cloned()
            .collect();
        assert_eq!(found.len(), 1, "one record for {rqi}: {found:#?}");
        found.into_iter().next().unwrap()
    }

    /// The records of operation `op`.
    fn of_op(&self, op: &str) -> Vec<Record> {
        (self.0.lock().unwrap().iter())
            .filter(|r| r.about.op == op)
            .cloned()
            .collect()
    }
}

/// `text` with `[gateway] mode = "observe"`.
fn observing(text: String) -> String {
    assert!(text.contains("\n[gateway]\n"));
    text.replacen("\n[gateway]\n", "\n[gateway]\nmode = \"observe\"\n", 1)
}

async fn start(text: &str, data: tempfile::TempDir) -> TestGateway {
    let config = Config::parse(text, "test.toml").unwrap();
    let gateway = Gateway::start(config).await.unwrap();
    TestGateway { gateway, data }
}

/// The value of the metric line `series` (name and labels), 0 when absent.
fn counted(gw: &TestGateway, series: &str) -> u64 {
    let prefix = format!("{series} ");
    (gw.gateway.state.metrics.encode().lines())
        .find_map(|l| l.strip_prefix(&prefix).and_then(|v| v.parse().ok()))
        .unwrap_or(0)
}

fn would_deny(protocol: &str, op: &str, stage: &str) -> String {
    format!("m2mguard_requests_total{{protocol=\"{protocol}\",operation=\"{op}\",verdict=\"would_deny\",stage=\"{stage}\"}}")
}

/// The record is of a request the upstream answered, which `stage` would have denied.
fn answered_but_would_deny(record: &Record, stage: Stage) {
    assert!(
        matches!(
            record.outcome,
            Outcome::Allowed {
                forward: Forward::Answered(_),
                ..
            }
        ),
        "{record:#?}"
    );
    assert_eq!(
        record.would_deny.as_ref().map(|d| d.stage),
        Some(stage),
        "{record:#?}"
    );
}

/// The record is of a request handed to the broker, which the status stage would have denied.
fn sent_but_would_deny(record: &Record) {
    assert!(
        matches!(
            record.outcome,
            Outcome::Allowed {
                forward: Forward::Sent,
                ..
            }
        ),
        "{record:#?}"
    );
    assert_eq!(
        record.would_deny.as_ref().map(|d| d.stage),
        Some(Stage::Status)
    );
}

/// Sends `request` through the gateway and `direct` to the upstream; both answers.
async fn both(
    gw: SocketAddr,
    up: SocketAddr,
    request: impl Fn(SocketAddr) -> http::Request<Full<bytes::Bytes>>,
) -> (Answer, Answer) {
    let through = send(&client(), request(gw)).await;
    let direct = send(&client(), request(up)).await;
    (through, direct)
}

fn same(through: &Answer, direct: &Answer, what: &str) {
    assert_eq!(
        (through.status, through.rsc()),
        (direct.status, direct.rsc()),
        "{what}: {through:?}"
    );
}

#[tokio::test]
async fn in_observe_mode_unknown_denied_and_unsigned_requests_reach_the_upstream_as_would_be_denials(
) {
    let up = common::echo_upstream().await;
    let data = tempfile::tempdir().unwrap();
    let text = config_text(up.addr, data.path(), POLICIES, "") + &checks_toml(data.path(), 64);
    let gw = start(&observing(text), data).await;
    let sink = Collect::attached(&gw);
    let addr = gw.http();
    let get = |fr: &'static str, rqi: &'static str, path: &'static str| {
        move |to: SocketAddr| {
            onem2m("GET", format!("http://{to}{path}"), fr, rqi)
                .body(Full::default())
                .unwrap()
        }
    };

    let (through, direct) = both(addr, up.addr, get("Cnobody", "unknown", "/cse-in")).await;
    same(&through, &direct, "unknown originator");
    assert_eq!(through.rsc(), "2001");
    let record = sink.one("unknown").await;
    answered_but_would_deny(&record, Stage::Status);
    assert!(
        matches!(&record.would_deny.as_ref().unwrap().reason, Reason::UnknownOriginator { fr } if fr == "Cnobody")
    );

    let delete = |to: SocketAddr| {
        onem2m(
            "DELETE",
            format!("http://{to}/cse-in/x"),
            "Cmeter",
            "delete",
        )
        .body(Full::default())
        .unwrap()
    };
    let (through, direct) = both(addr, up.addr, delete).await;
    same(&through, &direct, "denied by policy");
    let record = sink.one("delete").await;
    answered_but_would_deny(&record, Stage::Policy);

    // A check value is required under the meter; this one carries none.
    let unsigned = Signed::new("unsigned", 1);
    let through = send(&client(), unsigned.request(addr, None)).await;
    same(
        &through,
        &send(&client(), unsigned.request(up.addr, None)).await,
        "no check value",
    );
    answered_but_would_deny(&sink.one("unsigned").await, Stage::CheckValue);

    assert_eq!(
        up.hits.load(Ordering::SeqCst),
        6,
        "three through, three direct"
    );
    assert_eq!(counted(&gw, &would_deny("http", "retrieve", "status")), 1);
    assert_eq!(counted(&gw, &would_deny("http", "delete", "policy")), 1);
    assert_eq!(
        counted(&gw, &would_deny("http", "retrieve", "check_value")),
        1
    );
    assert_eq!(
        counted(
            &gw,
            "m2mguard_observed_forbids_total{policy=\"only-operators-delete\"}"
        ),
        1
    );

    // A resource id with no resolver configured: forwarded as sent, for the CSE to resolve;
    // for an unknown sender the status stage is what would deny.
    for (fr, rqi, stage) in [
        ("Cmeter", "by-id", Stage::Target),
        ("Cnobody", "by-id-unknown", Stage::Status),
    ] {
        let (through, direct) = both(addr, up.addr, get(fr, rqi, "/~/id-in/cnt123")).await;
        same(&through, &direct, rqi);
        assert_eq!(through.json()["uri"], "/~/id-in/cnt123", "{through:?}");
        answered_but_would_deny(&sink.one(rqi).await, stage);
    }
    assert_eq!(up.hits.load(Ordering::SeqCst), 10);
    assert_eq!(counted(&gw, &would_deny("http", "retrieve", "target")), 1);

    // What protects the gateway is still enforced: a malformed request is refused.
    let malformed = http::Request::get(format!("http://{addr}/cse-in"))
        .header("X-M2M-RI", "malformed")
        .body(Full::default())
        .unwrap();
    let answer = send(&client(), malformed).await;
    assert_eq!((answer.status.as_u16(), answer.rsc()), (400, "4000"));
    assert!(matches!(
        sink.one("malformed").await.outcome,
        Outcome::Refused(Refusal::Malformed(_))
    ));
    assert_eq!(up.hits.load(Ordering::SeqCst), 10, "not forwarded");

    // Legitimate: an allowed request is allowed, with nothing it would be denied for.
    let answer = send(&client(), get("Cmeter", "legit", "/cse-in")(addr)).await;
    assert_eq!(answer.rsc(), "2001");
    let record = sink.one("legit").await;
    assert!(record.would_deny.is_none(), "{record:#?}");
    gw.gateway.shutdown().await;
}

/// A policy directory: the shipped policies and `extra` as `30-extra.cedar`.
fn policies_with(extra: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(POLICIES).unwrap() {
        let path = entry.unwrap().path();
        std::fs::copy(&path, dir.path().join(path.file_name().unwrap())).unwrap();
    }
    std::fs::write(dir.path().join("30-extra.cedar"), extra).unwrap();
    dir
}

#[tokio::test]
async fn in_enforce_mode_an_observe_forbid_passes_and_is_counted_and_a_forbid_still_denies() {
    let up = common::echo_upstream().await;
    let policies = policies_with(
        "@id(\"watch-lamp-reads\")\n@observe\n\
         forbid (principal in Group::\"lamps\", action == Action::\"retrieve\", resource);\n",
    );
    let gw = common::gateway_with(up.addr, policies.path().to_str().unwrap(), "").await;
    let sink = Collect::attached(&gw);
    let addr = gw.http();

    assert_eq!(
        common::retrieve(&client(), addr, "Clamp").await.rsc(),
        "2001"
    );
    let record = sink.one("legit").await;
    answered_but_would_deny(&record, Stage::Policy);
    assert_eq!(
        record.would_deny.unwrap().reason,
        Reason::Forbidden {
            policies: vec!["watch-lamp-reads".into()]
        }
    );
    assert_eq!(
        counted(
            &gw,
            "m2mguard_observed_forbids_total{policy=\"watch-lamp-reads\"}"
        ),
        1
    );
    assert_eq!(counted(&gw, &would_deny("http", "retrieve", "policy")), 1);

    // An enforced forbid still denies, and reaches nothing.
    let delete = onem2m(
        "DELETE",
        format!("http://{addr}/cse-in/x"),
        "Cmeter",
        "delete",
    )
    .body(Full::default())
    .unwrap();
    let answer = send(&client(), delete).await;
    assert_eq!((answer.status.as_u16(), answer.rsc()), (403, "4103"));
    assert!(matches!(
        sink.one("delete").await.outcome,
        Outcome::Denied(_)
    ));
    assert_eq!(up.hits.load(Ordering::SeqCst), 1);

    // Legitimate: a request the observed policy does not match is a plain allow.
    assert_eq!(
        common::retrieve(&client(), addr, "Cmeter").await.rsc(),
        "2001"
    );
    let allowed = "m2mguard_requests_total{protocol=\"http\",operation=\"retrieve\",verdict=\"allow\",stage=\"\"}";
    assert_eq!(counted(&gw, allowed), 1);
    gw.gateway.shutdown().await;
}

#[tokio::test]
async fn in_observe_mode_an_unknown_originator_passes_on_coap() {
    let up = coap::upstream().await;
    let data = tempfile::tempdir().unwrap();
    let unused_http = SocketAddr::from(([127, 0, 0, 1], 9));
    let mut text = config_text(unused_http, data.path(), POLICIES, "");
    text.push_str(&format!(
        "\n[coap]\nlisten = \"127.0.0.1:0\"\nupstream = \"{}\"\n",
        up.addr
    ));
    let gw = start(&observing(text), data).await;
    let sink = Collect::attached(&gw);
    let mut c = CoapClient::new().await;

    let request = coap::request(RequestType::Get, "/cse-in", "Cnobody", "unknown");
    let through = c.exchange(gw.coap(), request.clone()).await;
    let direct = c.exchange(up.addr, request).await;
    assert_eq!(through.header.code, direct.header.code);
    assert_eq!(coap::rsc(&through), coap::rsc(&direct));
    assert_eq!(
        through.header.code,
        MessageClass::Response(ResponseType::Content)
    );
    answered_but_would_deny(&sink.one("unknown").await, Stage::Status);
    assert_eq!(up.hits(), 2, "one through the gateway, one direct");
    assert_eq!(counted(&gw, &would_deny("coap", "retrieve", "status")), 1);

    // Legitimate: a known originator is a plain allow.
    let request = coap::request(RequestType::Get, "/cse-in", "Cmeter", "legit");
    let answer = c.exchange(gw.coap(), request).await;
    assert_eq!(
        answer.header.code,
        MessageClass::Response(ResponseType::Content)
    );
    assert!(sink.one("legit").await.would_deny.is_none());
    gw.gateway.shutdown().await;
}

#[tokio::test]
async fn in_observe_mode_an_unknown_originator_is_admitted_and_answered_on_mqtt() {
    let broker = broker().await;
    let cse = responder(broker).await;
    let data = tempfile::tempdir().unwrap();
    let upstream = common::closed_port().await;
    let section = format!(
        "\n[mqtt]\nlisten = \"127.0.0.1:0\"\nbroker = \"{broker}\"\nconnect_timeout_ms = 2000\nbroker_timeout_ms = 2000\n"
    );
    let text = config_text(upstream, data.path(), POLICIES, &section);
    let gw = start(&observing(text), data).await;
    let sink = Collect::attached(&gw);
    let addr = mqtt_addr(&gw);

    // Unknown: its CONNECT, its subscription and its request would each be denied.
    let mut c = connect(addr, "A::Cnobody").await;
    let codes = c
        .subscribe("/oneM2M/resp/Cnobody/id-in/json", QoS::AtMostOnce)
        .await;
    assert_eq!(codes, [SubscribeReasonCode::Success(QoS::AtMostOnce)]);
    let answer = c
        .request(
            "/oneM2M/req/Cnobody/id-in/json",
            retrieve("Cnobody", "unknown"),
        )
        .await;
    assert_eq!(answer["rsc"], 2000, "answered by the CSE: {answer}");
    assert_eq!(cse.count(), 1);
    let record = sink.one("unknown").await;
    assert_eq!(
        record.would_deny.as_ref().map(|d| d.stage),
        Some(Stage::Status),
        "{record:#?}"
    );
    // An unknown originator's CONNECT is admitted as a registrant's (no denial to observe).
    let connects = sink.of_op("connect");
    assert_eq!(connects.len(), 1, "{connects:#?}");
    assert!(connects[0].would_deny.is_none(), "{connects:#?}");
    assert_eq!(counted(&gw, &would_deny("mqtt", "retrieve", "status")), 1);
    drop(c);

    // A deactivated node: its CONNECT would be refused, and is admitted as a node's session.
    (gw.gateway.state.nodes)
        .set_status("Clamp", NodeStatus::Deactivated)
        .unwrap();
    let mut lamp = mqtt::device(addr, "Clamp").await;
    let answer = lamp
        .request(
            "/oneM2M/req/Clamp/id-in/json",
            retrieve("Clamp", "inactive"),
        )
        .await;
    assert_eq!(answer["rsc"], 2000, "answered by the CSE: {answer}");
    let connects = sink.of_op("connect");
    assert_eq!(
        connects
            .last()
            .and_then(|r| r.would_deny.as_ref())
            .map(|d| d.stage),
        Some(Stage::Status),
        "{connects:#?}"
    );
    assert_eq!(counted(&gw, &would_deny("mqtt", "connect", "status")), 1);
    sent_but_would_deny(&sink.one("inactive").await);
    drop(lamp);

    // Legitimate: a known device's request is a plain allow.
    mqtt::legitimate_request_passes(addr, &cse, "Cmeter").await;
    assert!(sink.one("legit").await.would_deny.is_none());
    gw.gateway.shutdown().await;
}

#[tokio::test]
async fn in_observe_mode_a_gateway_deactivated_by_the_authority_still_refuses_everyone() {
    let up = common::echo_upstream().await;
    let data = tempfile::tempdir().unwrap();
    let text = config_text(up.addr, data.path(), POLICIES, "");
    let gw = start(&observing(text), data).await;
    // What the feed's gateway.put does (docs/sync.md): remote transmission control is
    // enforced in observe mode too; observe mode only tunes policies.
    gw.gateway.state.nodes.set_gateway_deactivated(true);
    let refused = common::retrieve(&client(), gw.http(), "CAdmin").await;
    assert_eq!((refused.status.as_u16(), refused.rsc()), (403, "4103"));
    assert_eq!(
        refused.json()["m2m:dbg"],
        "access denied: gateway deactivated or out of date"
    );
    assert_eq!(up.hits.load(std::sync::atomic::Ordering::SeqCst), 0);
    gw.gateway.state.nodes.set_gateway_deactivated(false);
    let passed = common::retrieve(&client(), gw.http(), "Cnobody").await;
    assert_eq!(
        passed.status.as_u16(),
        201,
        "observe mode lets the unknown node through"
    );
}
