//! Targets over real sockets: every TS-0004 way of naming a guarded resource — `-` for the
//! CSEBase, the own SP's absolute form, its resource id — meets the rules written for its
//! structured name, on HTTP, CoAP and MQTT; forms the gateway cannot resolve are refused before
//! any stage. The upstream is the mini CSE, which resolves targets by its own parser. Each
//! attack test ends with a legitimate request passing.

mod common;

use std::net::SocketAddr;
use std::path::Path;

use bytes::Bytes;
use coap_lite::{CoapOption, MessageClass, RequestType, ResponseType};
use common::signed::now_ot;
use common::*;
use http::StatusCode;
use http_body_util::Full;
use m2mguard::config::Config;
use m2mguard::gateway::Gateway;
use m2mguard::minicse::{self, MiniCse};
use serde_json::{json, Value};

/// A timestamp requirement on `guarded`, a geofence on `tracker`: both name structured paths.
const RULES: &str = r#"
[[checks.require]]
path = "/id-in/cse-in/guarded*"
timestamp = true

[[plausibility]]
name = "fence"
path = "/id-in/cse-in/tracker*"
action = "deny"
operations = ["create"]
latitude = "/m2m:cin/con/lat"
longitude = "/m2m:cin/con/lon"
region = { lat = 52.52, lon = 13.405, radius_m = 30000 }
"#;

const BERLIN: &str = r#"{"m2m:cin": {"con": {"lat": 52.5, "lon": 13.4}}}"#;
const MUNICH: &str = r#"{"m2m:cin": {"con": {"lat": 48.14, "lon": 11.58}}}"#;

fn config(upstream: SocketAddr, data: &Path, extra: &str) -> Config {
    let text = config_text(upstream, data, POLICIES, "").replacen(
        "cse_name = \"cse-in\"",
        "cse_name = \"cse-in\"\nresolve_originator = \"CAdmin\"",
        1,
    ) + RULES
        + extra;
    Config::parse(&text, "test.toml").unwrap()
}

struct Site {
    cse: MiniCse,
    gw: Gateway,
    _data: tempfile::TempDir,
    /// Resource ids of `guarded/data` and `tracker/pos`.
    data_ri: String,
    pos_ri: String,
}

/// A mini CSE with `guarded/data` and `tracker/pos`, created directly, and a gateway in front.
async fn site(extra: &str) -> Site {
    let cse = minicse::start(SocketAddr::from(([127, 0, 0, 1], 0)), "/id-in", "cse-in")
        .await
        .unwrap();
    let direct = |path: &str, ty: u8, body: Value| {
        let uri = format!("http://{}{path}", cse.addr);
        // `C`: the CSE assigns each AE its own AE-ID (one AE per originator).
        onem2m("POST", uri, if ty == 2 { "C" } else { "CAdmin" }, "setup")
            .header("Content-Type", format!("application/json;ty={ty}"))
            .body(Full::new(Bytes::from(body.to_string())))
            .unwrap()
    };
    let mut ris = Vec::new();
    for ae in ["guarded", "tracker"] {
        let made = send(
            &client(),
            direct("/cse-in", 2, json!({"m2m:ae": {"rn": ae}})),
        )
        .await;
        assert_eq!(made.status, StatusCode::CREATED);
        let cnt = if ae == "guarded" { "data" } else { "pos" };
        let made = send(
            &client(),
            direct(&format!("/cse-in/{ae}"), 3, json!({"m2m:cnt": {"rn": cnt}})),
        )
        .await;
        ris.push(made.json()["m2m:cnt"]["ri"].as_str().unwrap().to_owned());
    }
    let data = tempfile::tempdir().unwrap();
    let gw = Gateway::start(config(cse.addr, data.path(), extra))
        .await
        .unwrap();
    let [data_ri, pos_ri] = <[String; 2]>::try_from(ris).unwrap();
    Site {
        cse,
        gw,
        _data: data,
        data_ri,
        pos_ri,
    }
}

/// A content instance create through the gateway, with `ot` or without.
async fn create(gw: SocketAddr, path: &str, rqi: &str, ot: bool, body: &str) -> Answer {
    let mut request = onem2m("POST", format!("http://{gw}{path}"), "CAdmin", rqi)
        .header("Content-Type", "application/json;ty=4");
    if ot {
        request = request.header("X-M2M-OT", now_ot(0));
    }
    let body = Full::new(Bytes::from(body.to_owned()));
    send(&client(), request.body(body).unwrap()).await
}

fn refused(answer: &Answer, status: StatusCode, rsc: &str, what: &str) {
    assert_eq!(
        (answer.status, answer.rsc()),
        (status, rsc),
        "{what}: {answer:?}"
    );
}

#[tokio::test]
async fn every_http_form_of_a_guarded_container_needs_what_its_name_needs() {
    let s = site("").await;
    let gw = s.gw.http_addr;
    let ri = &s.data_ri;
    let aliases = [
        "/-/guarded/data".to_owned(),
        "/%2D/guarded/data".into(),
        "/~/id-in/-/guarded/data".into(),
        "/%7E/id-in/cse-in/guarded/data".into(),
        "/_/acme.example.com/id-in/cse-in/guarded/data".into(),
        format!("/~/id-in/{ri}"),
        format!("/{ri}"),
        format!("/_/acme.example.com/id-in/{ri}"),
    ];
    let cin = |rn: &str| json!({"m2m:cin": {"rn": rn, "con": "x"}}).to_string();
    for (n, alias) in aliases.iter().enumerate() {
        let unsigned = create(gw, alias, &format!("a{n}"), false, &cin(&format!("a{n}"))).await;
        refused(&unsigned, StatusCode::FORBIDDEN, "4103", alias);
        let direct = format!("http://{}/cse-in/guarded/data/a{n}", s.cse.addr);
        let landed = onem2m("GET", direct, "CAdmin", "l")
            .body(Full::default())
            .unwrap();
        assert_eq!(
            send(&client(), landed).await.status,
            StatusCode::NOT_FOUND,
            "{alias}"
        );
    }

    // Legitimate: the same aliases with a fresh timestamp reach the CSE.
    for (n, alias) in aliases.iter().enumerate() {
        let timed = create(gw, alias, &format!("ok{n}"), true, &cin(&format!("ok{n}"))).await;
        assert_eq!(timed.status, StatusCode::CREATED, "{alias}: {timed:?}");
    }
}

#[tokio::test]
async fn a_geofence_on_a_name_holds_for_its_aliases() {
    let s = site("").await;
    let gw = s.gw.http_addr;
    for alias in [
        "/-/tracker/pos".to_owned(),
        "/_/acme.example.com/id-in/-/tracker/pos".into(),
        format!("/~/id-in/{}", s.pos_ri),
    ] {
        let far = create(gw, &alias, "far", false, MUNICH).await;
        refused(&far, StatusCode::FORBIDDEN, "4103", &alias);
        let near = create(gw, &alias, "near", false, BERLIN).await;
        assert_eq!(near.status, StatusCode::CREATED, "{alias}: {near:?}");
    }
}

#[tokio::test]
async fn forms_the_gateway_cannot_tell_are_refused_before_any_stage() {
    let s = site("").await;
    let gw = s.gw.http_addr;
    for bad in [
        "/~/id-mn/-/x",
        "/_/other.sp/id-x/-/x",
        "/cse-in/grp/fopt",
        "/cse-in/grp/fopt/data",
        "/nothing/here",
        "/~/id-in",
        "/_/ACME.example.com/id-in/-/guarded/data",
        "/cse-in/guarded%23lbl",
        "/cse-in/grp/fopt%23x",
    ] {
        let answer = create(gw, bad, "bad", true, r#"{"m2m:cin": {"con": "x"}}"#).await;
        refused(&answer, StatusCode::BAD_REQUEST, "4000", bad);
    }
    // An id the CSE does not know is refused by the gateway, not guessed at.
    let unknown = create(
        gw,
        "/~/id-in/r999",
        "u",
        true,
        r#"{"m2m:cin": {"con": "x"}}"#,
    )
    .await;
    refused(
        &unknown,
        StatusCode::FORBIDDEN,
        "4103",
        "unknown resource id",
    );
    assert!(String::from_utf8_lossy(&unknown.body).contains("target could not be resolved"));

    assert_eq!(
        retrieve(&client(), gw, "CAdmin").await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn without_a_resolver_resource_ids_are_refused_and_names_still_pass() {
    let cse = minicse::start(SocketAddr::from(([127, 0, 0, 1], 0)), "/id-in", "cse-in")
        .await
        .unwrap();
    let data = tempfile::tempdir().unwrap();
    let text = config_text(cse.addr, data.path(), POLICIES, "") + RULES;
    let gw = Gateway::start(Config::parse(&text, "test.toml").unwrap())
        .await
        .unwrap();
    let answer = create(
        gw.http_addr,
        "/~/id-in/id-in",
        "r",
        true,
        r#"{"m2m:cin": {}}"#,
    )
    .await;
    refused(&answer, StatusCode::FORBIDDEN, "4103", "resolver off");
    assert_eq!(
        retrieve(&client(), gw.http_addr, "CAdmin").await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn coap_aliases_meet_the_rules_of_the_name() {
    let up = common::coap::upstream().await;
    let s = site(&format!(
        "\n[coap]\nlisten = \"127.0.0.1:0\"\nupstream = \"{}\"\n",
        up.addr
    ))
    .await;
    let coap = s.gw.coap_addr.unwrap();
    let mut client = common::coap::Client::new().await;
    let ri = s.data_ri.clone();
    let forms = [
        "/-/guarded/data".to_owned(),
        format!("/~/id-in/{ri}"),
        format!("/{ri}"),
    ];
    for (n, path) in forms.iter().enumerate() {
        let unsigned = common::coap::request(RequestType::Post, path, "CAdmin", &format!("c{n}"));
        let answer = client.exchange(coap, with_ty(unsigned)).await;
        assert_eq!(
            answer.header.code,
            MessageClass::Response(ResponseType::Forbidden),
            "{path}"
        );
        assert_eq!(common::coap::rsc(&answer), 4103, "{path}");
    }
    assert_eq!(up.hits(), 0, "nothing reached the upstream");
    let mut timed = common::coap::request(RequestType::Post, &forms[1], "CAdmin", "timed");
    timed.add_option(CoapOption::Unknown(259), now_ot(0).into_bytes());
    let answer = client.exchange(coap, with_ty(timed)).await;
    assert_eq!(common::coap::rsc(&answer), 2001, "{answer:?}");
    assert_eq!(up.hits(), 1);
    // The upstream got the request as sent: the gateway resolves for itself only.
    let paths: Vec<_> = up
        .last()
        .get_option(CoapOption::UriPath)
        .unwrap()
        .iter()
        .cloned()
        .collect();
    assert_eq!(paths, [b"~".to_vec(), b"id-in".to_vec(), ri.into_bytes()]);
}

fn with_ty(mut p: coap_lite::Packet) -> coap_lite::Packet {
    p.add_option(CoapOption::Unknown(267), vec![4]);
    p.set_content_format(coap_lite::ContentFormat::ApplicationJSON);
    p.payload = b"{}".to_vec();
    p
}

#[tokio::test]
async fn mqtt_aliases_meet_the_rules_of_the_name() {
    use common::mqtt::{broker, device, responder};
    let broker = broker().await;
    let cse = responder(broker).await;
    let s = site(&format!(
        "\n[mqtt]\nlisten = \"127.0.0.1:0\"\nbroker = \"{broker}\"\nconnect_timeout_ms = 2000\nbroker_timeout_ms = 2000\n"
    ))
    .await;
    let mut admin = device(s.gw.mqtt_addr.unwrap(), "CAdmin").await;
    let topic = "/oneM2M/req/CAdmin/id-in/json";
    let forms = [
        "-/guarded/data".to_owned(),
        "/id-in/-/guarded/data".into(),
        "//acme.example.com/id-in/cse-in/guarded/data".into(),
        s.data_ri.clone(),
        format!("/id-in/{}", s.data_ri),
    ];
    for (n, to) in forms.iter().enumerate() {
        let request = json!({"op": 1, "to": to, "fr": "CAdmin", "rqi": format!("m{n}"), "rvi": "4", "ty": 4, "pc": {"m2m:cin": {"con": "x"}}});
        let answer = admin.request(topic, request).await;
        assert_eq!(answer["rsc"], 4103, "{to}: {answer}");
        assert_eq!(answer["rqi"], format!("m{n}"));
    }
    assert_eq!(cse.count(), 0, "nothing reached the CSE");
    let fenced = json!({"op": 1, "to": format!("/id-in/{}", s.pos_ri), "fr": "CAdmin", "rqi": "far", "rvi": "4", "ty": 4,
        "pc": serde_json::from_str::<Value>(MUNICH).unwrap()});
    assert_eq!(admin.request(topic, fenced).await["rsc"], 4103);
    let timed = json!({"op": 1, "to": s.data_ri, "fr": "CAdmin", "rqi": "timed", "rvi": "4", "ty": 4, "ot": now_ot(0), "pc": {"m2m:cin": {"con": "x"}}});
    assert_eq!(admin.request(topic, timed).await["rsc"], 2000);
    assert_eq!(cse.count(), 1);
}
