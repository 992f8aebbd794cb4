//! Misbehaviour reports over real sockets (docs/reports.md): a device that sends forged check
//! values to gateway A is reported, suspended by the authority's rule and refused at gateway
//! B, which follows the same feed; reports made while the authority is down wait in A's outbox
//! (also across a SIGKILL of the real binary) and arrive once each; the authority refuses
//! reports that are not the caller's own.

mod common;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use http::Method;
use m2mguard::config::Config;
use m2mguard::feed::SigningKey;
use m2mguard::gateway::Gateway;
use m2mguard::report::Report;
use serde_json::Value;

use common::audit::{read_lines, segments};
use common::crash::{until, Process};
use common::sync::{eventually, outcome, synced_config, Synced};
use common::{client, onem2m, send, Answer, HttpClient};

/// Check values required at the meter; `count` check-value refusals within a minute make a
/// report of rule `name`.
fn gateway_extra(name: &str, count: u32) -> String {
    format!(
        r#"
[[checks.require]]
path = "/id-in/cse-in/meter*"
check_value = true

[reports]

[[reports.rules]]
name = "{name}"
stage = "check_value"
# The devices here send over plain HTTP, with no certificate to prove who they are.
origin = "claimed"
count = {count}
window_s = 60
"#
    )
}

/// One report from one gateway suspends the node.
const AUTHORITY_RULE: &str = r#"
[[authority.reports.rules]]
name = "suspend-forgers"
action = "suspend"
reports = 1
gateways = 1
window_s = 600
"#;

/// A retrieve of the meter as `fr` with a check value no key of the feed made.
async fn forged(http: &HttpClient, gw: &str, fr: &str, n: u32) -> Answer {
    let request = onem2m(
        "GET",
        format!("http://{gw}/cse-in/meter"),
        fr,
        &format!("forged-{fr}-{n}"),
    )
    .header("X-M2M-AS", "meter-k1.1.bm90IGEgcmVhbCBtYWMgYXQgYWxs")
    .body(Default::default())
    .unwrap();
    send(http, request).await
}

/// What a plain retrieve of the CSE base as `fr` came to at `gw` (`"pass"` or the rsc).
async fn plain(http: &HttpClient, gw: &str, fr: &str) -> String {
    outcome(&common::retrieve(http, gw.parse().unwrap(), fr).await)
}

/// The reports the authority holds, as the operator lists them.
async fn reports(s: &Synced) -> Vec<Value> {
    let answer = s
        .setup
        .operator()
        .call(Method::GET, "/v1/reports?limit=1000", None)
        .await
        .unwrap();
    answer["reports"].as_array().unwrap().clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forging_device_is_reported_suspended_and_refused_at_another_gateway() {
    let logs = tempfile::tempdir().unwrap();
    let audit = format!(
        "{}\n[audit]\ndir = \"{}\"\nflush_interval_ms = 5\n",
        gateway_extra("forged-check-values", 20),
        logs.path().join("audit").display()
    );
    let mut s = Synced::unstarted_with(
        &[("Cmeter", "devices"), ("Clamp", "devices")],
        &audit,
        AUTHORITY_RULE,
    )
    .await;
    s.start_gateway().await;
    // Gateway B: its own kit and repository, the same authority, no reports of its own.
    let kit_b = s.setup.gateway("gw-b").await;
    let data_b = tempfile::tempdir().unwrap();
    let sync_b = std::fs::read_to_string(kit_b.dir.join("sync.toml")).unwrap();
    let text = synced_config(&s.echo, data_b.path(), &sync_b, "");
    let b = Gateway::start(Config::parse(&text, "b.toml").unwrap())
        .await
        .unwrap();
    let (a_http, b_http) = (s.gateway().http_addr.to_string(), b.http_addr.to_string());
    let http = client();
    for gw in [&a_http, &b_http] {
        eventually("both nodes pass", || async {
            plain(&http, gw, "Cmeter").await == "pass" && plain(&http, gw, "Clamp").await == "pass"
        })
        .await;
    }

    // 20 forged check values at A: each refused, the 20th makes the report.
    for n in 1..=20 {
        let answer = forged(&http, &a_http, "Cmeter", n).await;
        assert_eq!(answer.status, 403, "forged {n}: {:?}", answer.body);
    }
    let sent = Instant::now();
    let mut refused_at_b = None;
    while sent.elapsed() < Duration::from_secs(15) {
        if plain(&http, &b_http, "Cmeter").await != "pass" {
            refused_at_b = Some(sent.elapsed());
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let took = refused_at_b.expect("B refuses the forging node within 15 s");
    println!(
        "20th forged request at gateway A -> first refusal at gateway B: {} ms",
        took.as_millis()
    );
    assert_eq!(
        plain(&http, &b_http, "Cmeter").await,
        "4103",
        "suspended at B"
    );
    assert_eq!(
        plain(&http, &a_http, "Cmeter").await,
        "4103",
        "suspended at A"
    );
    assert_eq!(
        plain(&http, &a_http, "Clamp").await,
        "pass",
        "the legitimate node at A"
    );
    assert_eq!(
        plain(&http, &b_http, "Clamp").await,
        "pass",
        "the legitimate node at B"
    );

    // What the authority holds and did: one report, its action, the node suspended.
    let held = reports(&s).await;
    assert_eq!(held.len(), 1, "{held:?}");
    let r = &held[0];
    assert_eq!(
        (r["gateway"].as_str(), r["node"].as_str()),
        (Some("gw-a"), Some("Cmeter"))
    );
    assert_eq!(r["rule"], "forged-check-values");
    assert_eq!(r["counts"]["check_value"], 20);
    assert_eq!(r["reasons"][0], "unknown_key");
    assert_eq!(r["action"]["status"], "suspended");
    assert_eq!(r["action"]["rule"], "suspend-forgers");
    let payload = Report::verify(r["jws"].as_str().unwrap(), &s.kit.sign.public()).unwrap();
    assert_eq!(payload.id, r["id"]);
    let node = s.setup.ok(&["node", "show", "Cmeter"]).await;
    assert!(node.contains("suspended"), "{node}");
    let listed = s.setup.ok(&["report", "list", "--node", "Cmeter"]).await;
    assert!(listed.starts_with("POS"), "{listed}");
    assert!(listed.contains("suspended by suspend-forgers"), "{listed}");
    assert_eq!(
        s.setup
            .ok(&["report", "list", "--node", "Clamp"])
            .await
            .lines()
            .count(),
        1
    );
    assert_eq!(
        s.counter("m2mguard_reports_made_total{rule=\"forged-check-values\"}")
            .await,
        1
    );
    b.shutdown().await;
    s.stop_gateway().await;
    // A's audit log holds the event, with the report's id.
    let lines: Vec<Value> = segments(&logs.path().join("audit"))
        .iter()
        .flat_map(|seg| read_lines(seg))
        .map(|l| serde_json::from_str(&l).unwrap())
        .collect();
    let made: Vec<&Value> = lines
        .iter()
        .filter(|l| l["event"] == "report.made")
        .collect();
    assert_eq!(made.len(), 1, "one report.made event");
    assert_eq!(made[0]["report"], r["id"]);
    assert_eq!(
        (made[0]["node"].as_str(), made[0]["rule"].as_str()),
        (Some("Cmeter"), Some("forged-check-values"))
    );
}

/// The gateway's configuration in a file, for the real binary.
fn config_file(s: &Synced) -> PathBuf {
    let path = s.data.path().join("gateway.toml");
    std::fs::write(
        &path,
        synced_config(&s.echo, s.data.path(), &s.sync, &gateway_extra("quick", 2)),
    )
    .unwrap();
    path
}

/// The HTTP address the process logged.
fn http_of(gw: &Process) -> String {
    let log = gw.log();
    let line = log
        .lines()
        .find(|l| l.contains("m2mguard started"))
        .unwrap();
    let at = line.find("http=").unwrap() + "http=".len();
    line[at..].split_whitespace().next().unwrap().to_owned()
}

async fn outbox_entries(http: &HttpClient, admin: &str) -> u64 {
    let request = http::Request::get(format!("http://{admin}/metrics"))
        .body(Default::default())
        .unwrap();
    let text = String::from_utf8(send(http, request).await.body.to_vec()).unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix("m2mguard_outbox_entries "))
        .map_or(0, |v| v.trim().parse().unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reports_made_while_the_authority_is_down_arrive_once_each_also_across_a_sigkill() {
    let nodes = [
        ("Cn1", "devices"),
        ("Cn2", "devices"),
        ("Cn3", "devices"),
        ("Cn4", "devices"),
    ];
    let s = Synced::unstarted(&nodes, &gateway_extra("quick", 2)).await;
    let config = config_file(&s);
    let logs = tempfile::tempdir().unwrap();
    let http = client();
    // First start with the authority up: the nodes reach the repository.
    let gw = Process::start(&config, logs.path().join("gw-0.log"), "info").await;
    let addr = http_of(&gw);
    eventually("the nodes are synced", || async {
        plain(&http, &addr, "Cn4").await == "pass"
    })
    .await;
    let mut s = s;
    s.authority.take().unwrap().shutdown().await;

    // Three reports made with the authority down, then SIGKILL.
    for node in ["Cn1", "Cn2", "Cn3"] {
        for n in 0..2 {
            assert_eq!(forged(&http, &addr, node, n).await.status, 403);
        }
    }
    let long = Duration::from_secs(20);
    let often = Duration::from_millis(20);
    until("three reports wait in the outbox", long, often, || {
        let (http, admin) = (http.clone(), gw.admin.clone());
        async move { outbox_entries(&http, &admin).await == 3 }
    })
    .await;
    gw.kill().await;

    // Started again, the authority still down: one more report joins them.
    let gw = Process::start(&config, logs.path().join("gw-1.log"), "info").await;
    let addr = http_of(&gw);
    for n in 0..2 {
        assert_eq!(forged(&http, &addr, "Cn4", n).await.status, 403);
    }
    until("four reports wait", long, often, || {
        let (http, admin) = (http.clone(), gw.admin.clone());
        async move { outbox_entries(&http, &admin).await == 4 }
    })
    .await;
    s.restart_authority().await;
    until("the outbox is empty", long, often, || {
        let (http, admin) = (http.clone(), gw.admin.clone());
        async move { outbox_entries(&http, &admin).await == 0 }
    })
    .await;
    let held = reports(&s).await;
    let mut ids: Vec<&str> = held.iter().map(|r| r["id"].as_str().unwrap()).collect();
    let mut by_node: Vec<&str> = held.iter().map(|r| r["node"].as_str().unwrap()).collect();
    by_node.sort_unstable();
    assert_eq!(by_node, ["Cn1", "Cn2", "Cn3", "Cn4"], "each once: {held:?}");
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 4);
    println!(
        "reports held at the authority after it returned: {} ({})",
        held.len(),
        by_node.join(", ")
    );
    gw.kill().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_authority_refuses_reports_that_are_not_the_gateways_own() {
    let s = Synced::unstarted(&[("Cmeter", "devices")], "").await;
    let report = |gateway: &str, id: &str| Report {
        id: id.to_owned(),
        gateway: gateway.to_owned(),
        node: "Cmeter".into(),
        rule: "forged-check-values".into(),
        from: "2026-12-02T13:00:00.000Z".into(),
        to: "2026-12-02T13:00:04.000Z".into(),
        counts: [("check_value".to_owned(), 20)].into(),
        reasons: vec!["check_value_mismatch".into()],
        at: "2026-12-02T13:00:04.001Z".into(),
    };
    let id = "0123456789abcdef0123456789abcdef";
    let post = |body: String| async { s.kit.post("/v1/reports", body).await };
    let error = common::authority::error_of;

    let garbage = post("not a report".into()).await;
    assert_eq!(garbage.status, 400, "{}", error(&garbage));
    let other_key = SigningKey::from_seed(&[9u8; 32]);
    let wrong_key = post(report("gw-a", id).sign(&other_key)).await;
    assert_eq!(wrong_key.status, 400);
    assert!(
        error(&wrong_key).contains("does not verify"),
        "{}",
        error(&wrong_key)
    );
    let other_gateway = post(report("gw-b", id).sign(&s.kit.sign)).await;
    assert_eq!(other_gateway.status, 400);
    assert!(
        error(&other_gateway).contains("not gateway \"gw-a\""),
        "{}",
        error(&other_gateway)
    );
    let genuine = report("gw-a", id).sign(&s.kit.sign);
    let mut parts: Vec<&str> = genuine.split('.').collect();
    let tampered_payload = tamper(parts[1]);
    parts[1] = &tampered_payload;
    let tampered = post(parts.join(".")).await;
    assert_eq!(tampered.status, 400);
    assert!(
        error(&tampered).contains("does not verify"),
        "{}",
        error(&tampered)
    );
    let anonymous = s
        .setup
        .anonymous(None)
        .send(Method::POST, "/v1/reports", genuine.clone().into())
        .await
        .unwrap();
    assert_eq!(anonymous.status, 401);
    let listing_as_gateway = s.kit.get("/v1/reports").await;
    assert_eq!(listing_as_gateway.status, 403);
    let posting_as_operator = s
        .setup
        .operator()
        .send(Method::POST, "/v1/reports", genuine.clone().into())
        .await
        .unwrap();
    assert_eq!(posting_as_operator.status, 403);
    assert!(reports(&s).await.is_empty(), "nothing refused was stored");

    // The gateway's own: stored once; the same again is a duplicate; another under the same
    // id a conflict.
    assert_eq!(post(genuine.clone()).await.status, 201);
    assert_eq!(post(genuine).await.status, 200);
    let mut other = report("gw-a", id);
    other.counts = [("check_value".to_owned(), 21)].into();
    let conflict = post(other.sign(&s.kit.sign)).await;
    assert_eq!(conflict.status, 409, "{}", error(&conflict));
    let held = reports(&s).await;
    assert_eq!(held.len(), 1);
    assert_eq!(held[0]["pos"], 1);
    assert_eq!(held[0]["action"], Value::Null, "no rule configured");
    let bad_query = s
        .setup
        .operator()
        .send(Method::GET, "/v1/reports?limit=0", Default::default())
        .await
        .unwrap();
    assert_eq!(bad_query.status, 400);
}

/// The base64url payload with its counts changed (20 → 29).
fn tamper(payload: &str) -> String {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
    use base64::Engine as _;
    let text = String::from_utf8(B64.decode(payload).unwrap()).unwrap();
    B64.encode(text.replace("\"check_value\":20", "\"check_value\":29"))
}
