//! Registration through the gateway over real sockets, HTTP in front of the mini CSE (which
//! assigns AE-IDs as a CSE does): AEs register with `C`, `S`, no `From` or a chosen id and are
//! known at once; the CSE's own refusals pass through; deregistration ends the standing; a
//! registration the policy refuses never reaches the CSE; an id bound to a certificate is
//! refused without it; unknown originators under `unknown_originators = "policy"`; a transit
//! CSE carrying its AEs' requests. Each attack ends with a legitimate request passing.

mod common;

use std::net::SocketAddr;
use std::path::Path;

use bytes::Bytes;
use common::*;
use http::StatusCode;
use http_body_util::Full;
use m2mguard::config::Config;
use m2mguard::gateway::Gateway;
use m2mguard::minicse::{self, MiniCse};
use serde_json::{json, Value};

struct Site {
    cse: MiniCse,
    gw: Gateway,
    _data: tempfile::TempDir,
}

async fn site(policies: &str, extra: &str) -> Site {
    site_with(policies, "", extra).await
}

/// A site whose gateway has `gateway_keys` in `[gateway]` and `extra` after `[http]`.
async fn site_with(policies: &str, gateway_keys: &str, extra: &str) -> Site {
    let cse = minicse::start(SocketAddr::from(([127, 0, 0, 1], 0)), "/id-in", "cse-in")
        .await
        .unwrap();
    let data = tempfile::tempdir().unwrap();
    let text = config_text(cse.addr, data.path(), policies, extra).replacen(
        "cse_name = \"cse-in\"",
        &format!("cse_name = \"cse-in\"\n{gateway_keys}"),
        1,
    );
    let gw = Gateway::start(Config::parse(&text, "test.toml").unwrap())
        .await
        .unwrap();
    Site {
        cse,
        gw,
        _data: data,
    }
}

fn ae(rn: &str) -> Value {
    json!({"m2m:ae": {"rn": rn, "api": "Nmeter", "rr": false, "srv": ["4"]}})
}

/// A create of `content` (type `ty`) at `path` through `addr`, `fr` omitted when `None`.
fn create(
    addr: SocketAddr,
    path: &str,
    fr: Option<&str>,
    ty: u16,
    content: &Value,
) -> http::Request<Full<Bytes>> {
    let mut builder = http::Request::builder()
        .method("POST")
        .uri(format!("http://{addr}{path}"))
        .header("X-M2M-RI", "reg")
        .header("X-M2M-RVI", "4")
        .header("Accept", "application/json")
        .header("Content-Type", format!("application/json;ty={ty}"));
    if let Some(fr) = fr {
        builder = builder.header("X-M2M-Origin", fr);
    }
    builder
        .body(Full::new(Bytes::from(content.to_string())))
        .unwrap()
}

async fn register(site: &Site, fr: Option<&str>, rn: &str) -> Answer {
    send(
        &client(),
        create(site.gw.http_addr, "/cse-in", fr, 2, &ae(rn)),
    )
    .await
}

fn aei(answer: &Answer) -> String {
    answer.json()["m2m:ae"]["aei"].as_str().unwrap().to_owned()
}

/// A container below the AE's own resource, as the AE: the registered AE's first request.
async fn own_container(site: &Site, fr: &str, ae_rn: &str) -> Answer {
    let content = json!({"m2m:cnt": {"rn": "data"}});
    let path = format!("/cse-in/{ae_rn}");
    send(
        &client(),
        create(site.gw.http_addr, &path, Some(fr), 3, &content),
    )
    .await
}

#[tokio::test]
async fn registration_with_c_s_none_or_a_chosen_id_is_known_at_once() {
    let site = site(POLICIES, "").await;
    for (fr, rn, expected) in [
        (Some("C"), "m1", None),
        (Some("S"), "m2", None),
        (None, "m3", None),
        (Some(""), "m4", None),
        (Some("Cmeter-07"), "m5", Some("Cmeter-07")),
    ] {
        let answer = register(&site, fr, rn).await;
        assert_eq!(
            (answer.status, answer.rsc()),
            (StatusCode::CREATED, "2001"),
            "{fr:?}"
        );
        let id = aei(&answer);
        if let Some(expected) = expected {
            assert_eq!(id, expected);
        }
        let next = own_container(&site, &id, rn).await;
        assert_eq!(next.rsc(), "2001", "{id} right after registering");
        let retrieve = retrieve(&client(), site.gw.http_addr, &id).await;
        assert_eq!(retrieve.rsc(), "2000");
    }
}

#[tokio::test]
async fn a_re_registration_is_refused_by_the_cse_as_it_would_be_directly() {
    let site = site(POLICIES, "").await;
    assert_eq!(register(&site, Some("Cmeter-07"), "m").await.rsc(), "2001");
    // Again with the same chosen id: the gateway knows it now, so it is an ordinary create,
    // which the CSE refuses.
    let again = register(&site, Some("Cmeter-07"), "m-again").await;
    assert_eq!((again.status, again.rsc()), (StatusCode::CONFLICT, "4105"));
    let direct = send(
        &client(),
        create(site.cse.addr, "/cse-in", Some("Cmeter-07"), 2, &ae("m-x")),
    )
    .await;
    assert_eq!(direct.rsc(), "4105");
    assert_eq!(own_container(&site, "Cmeter-07", "m").await.rsc(), "2001");
}

#[tokio::test]
async fn deregistration_ends_the_standing() {
    let site = site(POLICIES, "").await;
    let id = aei(&register(&site, Some("C"), "gone").await);
    let delete = onem2m(
        "DELETE",
        format!("http://{}/cse-in/gone", site.gw.http_addr),
        &id,
        "del",
    )
    .body(Full::default())
    .unwrap();
    assert_eq!(send(&client(), delete).await.rsc(), "2002");
    // The node is unknown now: refused before the CSE.
    let after = retrieve(&client(), site.gw.http_addr, &id).await;
    assert_eq!((after.status, after.rsc()), (StatusCode::FORBIDDEN, "4103"));
    assert_eq!(
        retrieve(&client(), site.gw.http_addr, "CAdmin").await.rsc(),
        "2000"
    );
}

#[tokio::test]
async fn a_registration_the_policy_refuses_never_reaches_the_cse() {
    let site = site(POLICIES, "").await;
    // The shipped policy lets AEs register, not remote CSEs.
    let csr =
        json!({"m2m:csr": {"rn": "id-mn", "csi": "/id-mn", "cb": "/id-mn/cse-mn", "rr": true}});
    let refused = send(
        &client(),
        create(site.gw.http_addr, "/cse-in", Some("/id-mn"), 16, &csr),
    )
    .await;
    assert_eq!(
        (refused.status, refused.rsc()),
        (StatusCode::FORBIDDEN, "4103")
    );
    let at_cse = retrieve_path(site.cse.addr, "/cse-in/id-mn").await;
    assert_eq!(at_cse.rsc(), "4004", "the CSE never saw it");
    // Nor may a registrant reach anything but registration: a plain create as "C".
    let content = json!({"m2m:cnt": {"rn": "sneaky"}});
    let sneaky = send(
        &client(),
        create(site.gw.http_addr, "/cse-in", Some("C"), 3, &content),
    )
    .await;
    assert_eq!(sneaky.rsc(), "4103");
    assert_eq!(register(&site, Some("C"), "fine").await.rsc(), "2001");
}

async fn retrieve_path(addr: SocketAddr, path: &str) -> Answer {
    let request = onem2m("GET", format!("http://{addr}{path}"), "CAdmin", "look")
        .body(Full::default())
        .unwrap();
    send(&client(), request).await
}

#[tokio::test]
async fn an_id_registered_with_a_certificate_is_bound_to_it() {
    let pki = Pki::new();
    pki.issue("meter", &[], "meter-07");
    pki.issue("other", &[], "meter-08");
    let site = site(POLICIES, &tls_section(&pki)).await;
    let gw = site.gw.http_addr;
    let https = |identity| tls_client(&pki, Some(identity));
    let registration = http_to_https(create(gw, "/cse-in", Some("C"), 2, &ae("bound")));
    let answer = send(&https("meter"), registration).await;
    assert_eq!(answer.rsc(), "2001");
    let id = aei(&answer);
    let get_as = |fr: &str| {
        onem2m("GET", format!("https://{gw}/cse-in/bound"), fr, "r")
            .body(Full::default())
            .unwrap()
    };
    // Another certificate spoofing the assigned id: refused.
    let spoofed = send(&https("other"), get_as(&id)).await;
    assert_eq!(
        (spoofed.status, spoofed.rsc()),
        (StatusCode::FORBIDDEN, "4103")
    );
    // The bound certificate acting as another id, or registering again: refused.
    assert_eq!(send(&https("meter"), get_as("CAdmin")).await.rsc(), "4103");
    let again = http_to_https(create(gw, "/cse-in", Some("C"), 2, &ae("twice")));
    assert_eq!(send(&https("meter"), again).await.rsc(), "4103");
    // The bound certificate as its id: passes.
    assert_eq!(send(&https("meter"), get_as(&id)).await.rsc(), "2000");
}

fn http_to_https(mut request: http::Request<Full<Bytes>>) -> http::Request<Full<Bytes>> {
    let uri = request.uri().to_string().replacen("http://", "https://", 1);
    *request.uri_mut() = uri.parse().unwrap();
    request
}

/// The shipped policies, and one that lets everyone do everything, in a temporary directory.
fn policies_with(dir: &Path, extra: &str) -> String {
    for entry in std::fs::read_dir(POLICIES).unwrap() {
        let path = entry.unwrap().path();
        std::fs::copy(&path, dir.join(path.file_name().unwrap())).unwrap();
    }
    std::fs::write(dir.join("90-test.cedar"), extra).unwrap();
    dir.display().to_string()
}

#[tokio::test]
async fn unknown_originators_are_decided_by_policy_when_configured() {
    let dir = tempfile::tempdir().unwrap();
    let everyone =
        "@id(\"everyone\")\npermit (principal, action == Action::\"retrieve\", resource);\n";
    let policies = policies_with(dir.path(), everyone);
    let site = site_with(&policies, POLICY_MODE, "").await;
    let stranger = retrieve(&client(), site.gw.http_addr, "Cstranger").await;
    assert_eq!(
        stranger.rsc(),
        "2000",
        "permit(principal, ...) means everyone"
    );
    // Only what a policy permits: the stranger may not create.
    let content = json!({"m2m:cnt": {"rn": "x"}});
    let create_as_stranger = create(site.gw.http_addr, "/cse-in", Some("Cstranger"), 3, &content);
    assert_eq!(send(&client(), create_as_stranger).await.rsc(), "4103");
    assert_eq!(
        retrieve(&client(), site.gw.http_addr, "CAdmin").await.rsc(),
        "2000"
    );
}

#[tokio::test]
async fn unenrolled_principals_are_refused_where_a_policy_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let rules = "@id(\"everyone\")\npermit (principal, action == Action::\"retrieve\", resource);\n\
                 @id(\"enrolled-only\")\nforbid (principal, action, resource) unless { principal.enrolled };\n";
    let policies = policies_with(dir.path(), rules);
    let site = site_with(&policies, POLICY_MODE, "").await;
    let stranger = retrieve(&client(), site.gw.http_addr, "Cstranger").await;
    assert_eq!(
        (stranger.status, stranger.rsc()),
        (StatusCode::FORBIDDEN, "4103")
    );
    assert_eq!(
        retrieve(&client(), site.gw.http_addr, "Cmeter").await.rsc(),
        "2000"
    );
}

#[tokio::test]
async fn a_transit_cse_carries_the_requests_of_its_aes_only() {
    let pki = Pki::new();
    pki.issue("mn", &[], "/id-mn");
    let nodes = "[[nodes]]\nid = \"/id-mn\"\nkind = \"cse\"\ngroups = [\"devices\"]\n\n\
                 [[nodes]]\nid = \"Cbehind\"\ngroups = [\"devices\"]\nregistrar = \"/id-mn\"\n";
    let site = site(POLICIES, &format!("{}\n{nodes}", tls_section(&pki))).await;
    let mn = tls_client(&pki, Some("mn"));
    let get_as = |fr: &str| {
        onem2m(
            "GET",
            format!("https://{}/cse-in", site.gw.http_addr),
            fr,
            "t",
        )
        .body(Full::default())
        .unwrap()
    };
    // An AE it is not the registrar of (an operator, even): refused.
    let spoofed = send(&mn, get_as("CAdmin")).await;
    assert_eq!(
        (spoofed.status, spoofed.rsc()),
        (StatusCode::FORBIDDEN, "4103")
    );
    assert_eq!(send(&mn, get_as("Cmeter")).await.rsc(), "4103");
    // Its own AE, and itself: pass.
    assert_eq!(send(&mn, get_as("Cbehind")).await.rsc(), "2000");
    assert_eq!(send(&mn, get_as("/id-mn")).await.rsc(), "2000");
}

const POLICY_MODE: &str = "unknown_originators = \"policy\"";

mod mqtt_registration {
    //! Over MQTT (embedded broker; a broker-side CSE that assigns AE-IDs): a client that is
    //! not a node yet connects for registration only, registers on `reg_req`, and its session
    //! is bound to the assigned id once the CSE's answer on `reg_resp` went through.

    use super::common::mqtt::*;
    use rumqttc::{Event, Packet, QoS, SubscribeReasonCode};
    use serde_json::{json, Value};

    const OK: SubscribeReasonCode = SubscribeReasonCode::Success(QoS::AtMostOnce);

    /// A CSE on the broker: AE creates get 2001 and an AE-ID (`C` + a number, or the chosen
    /// id), deletes 2002, anything else 2000.
    async fn assigning_cse(broker: std::net::SocketAddr) -> Client {
        let mut c = connect(broker, "cse").await;
        for filter in ["/oneM2M/req/+/id-in/json", "/oneM2M/reg_req/+/id-in/json"] {
            assert_eq!(c.subscribe(filter, QoS::AtMostOnce).await, [OK]);
        }
        let client = c.client.clone();
        let mut events = std::mem::replace(&mut c.events, tokio::sync::mpsc::unbounded_channel().1);
        tokio::spawn(async move {
            let mut n = 0;
            while let Some(Ok(event)) = events.recv().await {
                let Event::Incoming(Packet::Publish(p)) = event else {
                    continue;
                };
                let r: Value = serde_json::from_slice(&p.payload).unwrap_or(Value::Null);
                n += 1;
                let (rsc, pc) = match (r["op"].as_u64(), r["ty"].as_u64()) {
                    (Some(1), Some(2)) => {
                        let fr = r["fr"].as_str().unwrap_or("");
                        let aei = if fr.len() > 1 {
                            fr.to_owned()
                        } else {
                            format!("C{n}")
                        };
                        (
                            2001,
                            json!({"m2m:ae": {"aei": aei, "ri": aei, "rn": r["pc"]["m2m:ae"]["rn"]}}),
                        )
                    }
                    (Some(4), _) => (2002, Value::Null),
                    _ => (2000, json!({"m2m:dbg": "ok"})),
                };
                let answer =
                    json!({"rsc": rsc, "rqi": r["rqi"], "to": r["fr"], "fr": "/id-in", "pc": pc});
                let _ = client
                    .publish(
                        response_topic(&p.topic),
                        QoS::AtMostOnce,
                        false,
                        answer.to_string(),
                    )
                    .await;
            }
        });
        c
    }

    fn registration(fr: Option<&str>, rn: &str) -> Value {
        let mut r = json!({"op": 1, "to": "/id-in/cse-in", "rqi": format!("reg-{rn}"), "rvi": "4",
            "ty": 2, "pc": {"m2m:ae": {"rn": rn, "api": "Nmeter", "rr": false, "srv": ["4"]}}});
        if let Some(fr) = fr {
            r["fr"] = json!(fr);
        }
        r
    }

    #[tokio::test]
    async fn a_registrant_registers_on_reg_req_and_becomes_its_assigned_id() {
        let broker = broker().await;
        let _cse = assigning_cse(broker).await;
        let g = gateway(broker).await;
        let addr = mqtt_addr(&g);
        let mut c = connect(addr, "A::C").await;
        // Registration only: not another topic, not another request.
        assert_eq!(
            c.subscribe("/oneM2M/resp/C/id-in/json", QoS::AtMostOnce)
                .await,
            [SubscribeReasonCode::Failure]
        );
        assert_eq!(
            c.subscribe("site/#", QoS::AtMostOnce).await,
            [SubscribeReasonCode::Failure]
        );
        let own = "/oneM2M/reg_resp/C/id-in/json";
        assert_eq!(c.subscribe(own, QoS::AtMostOnce).await, [OK]);
        let sneaky =
            json!({"op": 2, "to": "/id-in/cse-in", "fr": "C", "rqi": "sneaky", "rvi": "4"});
        let refused = c.request("/oneM2M/reg_req/C/id-in/json", sneaky).await;
        assert_eq!(
            (&refused["rsc"], &refused["rqi"]),
            (&json!(4103), &json!("sneaky"))
        );
        // The registration, without fr: 2001 and the assigned id.
        let answer = c
            .request("/oneM2M/reg_req/C/id-in/json", registration(None, "m1"))
            .await;
        assert_eq!(answer["rsc"], 2001, "{answer}");
        let aei = answer["pc"]["m2m:ae"]["aei"].as_str().unwrap().to_owned();
        // The same session, bound to the assigned id now: its own topics and requests.
        let resp = format!("/oneM2M/resp/{aei}/id-in/json");
        assert_eq!(c.subscribe(&resp, QoS::AtMostOnce).await, [OK]);
        let get = json!({"op": 2, "to": "/id-in/cse-in", "fr": aei, "rqi": "get", "rvi": "4"});
        let got = c
            .request(&format!("/oneM2M/req/{aei}/id-in/json"), get)
            .await;
        assert_eq!(got["rsc"], 2000, "{got}");
        // Deregistration ends the standing: the session is a registrant's again, and the id is
        // unknown (a new session claiming it is admitted for registration only).
        let delete =
            json!({"op": 4, "to": "/id-in/cse-in/m1", "fr": aei, "rqi": "bye", "rvi": "4"});
        let gone = c
            .request(&format!("/oneM2M/req/{aei}/id-in/json"), delete)
            .await;
        assert_eq!(gone["rsc"], 2002, "{gone}");
        let mut claim = connect(addr, &format!("A::{aei}")).await;
        assert_eq!(
            claim.subscribe(&resp, QoS::AtMostOnce).await,
            [SubscribeReasonCode::Failure]
        );
        let again = c
            .request(
                "/oneM2M/reg_req/C/id-in/json",
                registration(Some("C"), "m2"),
            )
            .await;
        assert_eq!(again["rsc"], 2001, "registers anew: {again}");
        // A legitimate registrant still registers, with a chosen id.
        let mut d = connect(addr, "A::Cmeter-09").await;
        assert_eq!(
            d.subscribe("/oneM2M/reg_resp/Cmeter-09/id-in/json", QoS::AtMostOnce)
                .await,
            [OK]
        );
        let answer = d
            .request(
                "/oneM2M/reg_req/Cmeter-09/id-in/json",
                registration(Some("Cmeter-09"), "m9"),
            )
            .await;
        assert_eq!(answer["pc"]["m2m:ae"]["aei"], "Cmeter-09", "{answer}");
        g.gateway.shutdown().await;
    }
}
