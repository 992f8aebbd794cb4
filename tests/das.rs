//! The authority as token service (docs/authority.md "Tokens"), over real sockets: a node
//! obtains tokens with a signed request and uses them through a gateway that trusts the token
//! key from the feed; replayed, forged and stale requests are refused; token ids are resolved
//! at the authority; a gateway obtains tokens on a legacy device's behalf for an upstream
//! gateway that requires them.

mod common;

use bytes::Bytes;
use http::Method;
use m2mguard::authority::das::request::sign;
use m2mguard::config::Config;
use m2mguard::gateway::Gateway;
use serde_json::{json, Value};

use common::authority::Setup;
use common::signed::KEY;
use common::sync::{eventually, outcome, synced_config, Synced};
use common::{echo_upstream, onem2m, send, tls_client, tls_section, Pki};

const REQUIRE: &str = r#"
[[checks.require]]
path = "/id-in/cse-in/meter*"
token = true
"#;

/// `[das]` granting Cmeter two uses per token of retrieve on the meter, directly or via gw-a.
const DAS: &str = r#"
[das]
issuer = "das-t"
token_key = "das.key"

[[das.grants]]
nodes = ["Cmeter"]
targets = ["/id-in/cse-in/meter*"]
operations = ["retrieve"]
ttl_s = 300
uses = 2
aud = ["/id-in"]
via = ["gw-a"]
"#;

fn now() -> u64 {
    m2mguard::authority::publish::now_s()
}

fn nonce(n: u32) -> String {
    format!("nonce-{n:010}-{}", now())
}

fn ask(or: &str, ops: &[&str], at: u64, nonce: &str) -> Value {
    json!({"or": or, "aud": ["/id-in"], "ris": ["/id-in/cse-in/meter"], "ops": ops, "at": at, "nonce": nonce})
}

/// POST /v1/das/tokens with no credential but `body`: status and JSON answer.
async fn obtain(setup: &Setup, body: String) -> (u16, Value) {
    let reply = setup
        .anonymous(None)
        .send(Method::POST, "/v1/das/tokens", Bytes::from(body))
        .await
        .unwrap();
    let value = serde_json::from_slice(&reply.body).unwrap_or(Value::Null);
    (reply.status.as_u16(), value)
}

/// GET /cse-in/meter as Cmeter with `auth` (a whole Authorization value) and `query`.
async fn meter(s: &Synced, auth: Option<&str>, query: &str) -> common::Answer {
    let uri = format!("http://{}/cse-in/meter{query}", s.gateway().http_addr);
    let mut request = onem2m("GET", uri, "Cmeter", "r1");
    if let Some(auth) = auth {
        request = request.header("Authorization", auth);
    }
    send(&s.http, request.body(Default::default()).unwrap()).await
}

async fn synced_with_key() -> Synced {
    let s =
        Synced::unstarted_with(&[("Cmeter", "devices"), ("Clamp", "devices")], REQUIRE, DAS).await;
    s.setup.add_key("meter-k1", "Cmeter", &KEY).await;
    s
}

#[tokio::test(flavor = "multi_thread")]
async fn a_node_obtains_tokens_uses_them_up_and_obtains_fresh_ones() {
    let mut s = synced_with_key().await;
    s.start_gateway().await;
    // Without a token the target is refused (once the node is known: at the token stage),
    // with tqf naming the authority's token service.
    let tqf = format!("{}/v1/das/tokens", s.setup.url());
    eventually("a request without a token is refused with tqf", || async {
        let refused = meter(&s, None, "").await;
        refused.rsc() == "4103" && refused.json()["tqf"]["dasi"][0]["url"] == tqf.as_str()
    })
    .await;

    let (status, issued) = obtain(
        &s.setup,
        sign(
            "meter-k1",
            &KEY,
            &ask("Cmeter", &["retrieve"], now(), &nonce(1)),
        ),
    )
    .await;
    assert_eq!(status, 200, "{issued}");
    assert_eq!(issued["uses"], 2);
    let bearer = format!("Bearer {}", issued["token"].as_str().unwrap());
    // The gateway trusts the token key once the feed's issuer.put reached it.
    eventually("the token passes", || async {
        outcome(&meter(&s, Some(&bearer), "").await) == "pass"
    })
    .await;
    // Refusals before the gateway trusted the key counted no use: one is left, then none.
    assert_eq!(outcome(&meter(&s, Some(&bearer), "").await), "pass");
    let used_up = meter(&s, Some(&bearer), "").await;
    assert_eq!(used_up.rsc(), "4103", "the third use of two");
    assert_eq!(used_up.json()["tqf"]["dasi"][0]["url"], tqf.as_str());

    let (status, fresh) = obtain(
        &s.setup,
        sign(
            "meter-k1",
            &KEY,
            &ask("Cmeter", &["retrieve"], now(), &nonce(2)),
        ),
    )
    .await;
    assert_eq!(status, 200, "{fresh}");
    assert_ne!(fresh["jti"], issued["jti"]);
    let bearer = format!("Bearer {}", fresh["token"].as_str().unwrap());
    assert_eq!(outcome(&meter(&s, Some(&bearer), "").await), "pass");

    // Token ids: resolved at the authority and verified like the token itself.
    let (_, third) = obtain(
        &s.setup,
        sign(
            "meter-k1",
            &KEY,
            &ask("Cmeter", &["retrieve"], now(), &nonce(3)),
        ),
    )
    .await;
    let tids = format!("?tids={}", third["jti"].as_str().unwrap());
    assert_eq!(outcome(&meter(&s, None, &tids).await), "pass");
    let unknown = meter(&s, None, "?tids=00000000000000000000000000000000").await;
    assert_eq!(unknown.rsc(), "4103");
    assert_eq!(unknown.json()["tqf"]["dasi"][0]["url"], tqf.as_str());
    assert_eq!(
        outcome(&meter(&s, None, &tids).await),
        "pass",
        "a resolved id again"
    );

    // Restarted, the gateway still trusts the key (from its repository).
    s.stop_gateway().await;
    s.start_gateway().await;
    let (_, fourth) = obtain(
        &s.setup,
        sign(
            "meter-k1",
            &KEY,
            &ask("Cmeter", &["retrieve"], now(), &nonce(4)),
        ),
    )
    .await;
    let bearer = format!("Bearer {}", fourth["token"].as_str().unwrap());
    assert_eq!(outcome(&meter(&s, Some(&bearer), "").await), "pass");
}

#[tokio::test(flavor = "multi_thread")]
async fn replayed_forged_stale_and_ungranted_token_requests_are_refused() {
    let s = synced_with_key().await;
    let request = sign(
        "meter-k1",
        &KEY,
        &ask("Cmeter", &["retrieve"], now(), &nonce(1)),
    );
    assert_eq!(obtain(&s.setup, request.clone()).await.0, 200);
    let (status, replay) = obtain(&s.setup, request).await;
    assert_eq!(
        (status, replay["error"].as_str().unwrap()),
        (401, "token request: nonce used already (a replay)")
    );

    let forged = sign(
        "meter-k1",
        &[7u8; 32],
        &ask("Cmeter", &["retrieve"], now(), &nonce(2)),
    );
    let (status, answer) = obtain(&s.setup, forged).await;
    assert_eq!(
        (status, answer["error"].as_str().unwrap()),
        (401, "token request: signature does not verify")
    );

    let stale = sign(
        "meter-k1",
        &KEY,
        &ask("Cmeter", &["retrieve"], now() - 120, &nonce(3)),
    );
    let (status, answer) = obtain(&s.setup, stale).await;
    assert_eq!(status, 401);
    assert!(
        answer["error"].as_str().unwrap().contains("more than 60 s"),
        "{answer}"
    );

    let other = sign(
        "meter-k1",
        &KEY,
        &ask("Clamp", &["retrieve"], now(), &nonce(4)),
    );
    let (status, answer) = obtain(&s.setup, other).await;
    assert_eq!(status, 401, "{answer}");

    let ungranted = sign(
        "meter-k1",
        &KEY,
        &ask("Cmeter", &["delete"], now(), &nonce(5)),
    );
    let (status, answer) = obtain(&s.setup, ungranted).await;
    assert_eq!(status, 403);
    assert!(
        answer["error"]
            .as_str()
            .unwrap()
            .starts_with("no grant allows \"Cmeter\" delete"),
        "{answer}"
    );

    let garbage = obtain(&s.setup, "not.a.jws".into()).await;
    assert_eq!(garbage.0, 400);

    // The operator is no node and no gateway.
    let reply = s
        .setup
        .operator()
        .send(Method::POST, "/v1/das/tokens", Bytes::from("{}"))
        .await
        .unwrap();
    assert_eq!(reply.status.as_u16(), 403);

    let legitimate = sign(
        "meter-k1",
        &KEY,
        &ask("Cmeter", &["retrieve"], now(), &nonce(6)),
    );
    let (status, answer) = obtain(&s.setup, legitimate).await;
    assert_eq!(status, 200, "{answer}");
    let token = answer["token"].as_str().unwrap();
    // As the docs say: header, then the claims in order.
    let parts: Vec<&str> = token.split('.').collect();
    let header = b64_json(parts[0]);
    assert_eq!(header["alg"], "EdDSA");
    assert_eq!(header["typ"], "JWT");
    let claims = b64_json(parts[1]);
    assert_eq!(claims["iss"], "das-t");
    assert_eq!(claims["azp"], "Cmeter");
    assert_eq!(claims["tkuc"], 2);
    assert_eq!(claims["tkps"][0]["pv"]["acr"][0]["acop"], 2);
    assert_eq!(
        claims["exp"].as_u64().unwrap() - claims["nbf"].as_u64().unwrap(),
        300
    );
}

fn b64_json(part: &str) -> Value {
    use base64::Engine;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(part)
        .unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_gateway_obtains_tokens_for_a_legacy_device_for_an_upstream_that_requires_them() {
    let s = Synced::unstarted_with(&[("Cmeter", "devices")], "", DAS).await;
    // Gateway B: requires tokens on the meter, in front of the echo upstream.
    let kit_b = s.setup.gateway("gw-b").await;
    let sync_b = std::fs::read_to_string(kit_b.dir.join("sync.toml")).unwrap();
    let echo = echo_upstream().await;
    let data_b = tempfile::tempdir().unwrap();
    let text = synced_config(&echo, data_b.path(), &sync_b, REQUIRE);
    let b = Gateway::start(Config::parse(&text, "b.toml").unwrap())
        .await
        .unwrap();
    // Gateway A (the kit's gw-a): the legacy device behind it authenticates with its
    // certificate; A obtains tokens on its behalf and forwards to B.
    let pki = Pki::new();
    pki.issue("meter", &[], "Cmeter");
    let obtain = r#"
[[tokens.obtain]]
node = "Cmeter"
aud = ["/id-in"]
ris = ["/id-in/cse-in/meter"]
ops = ["retrieve"]
"#;
    let data_a = tempfile::tempdir().unwrap();
    let text = synced_config(
        &echo,
        data_a.path(),
        &s.sync,
        &format!("{}{obtain}", tls_section(&pki)),
    )
    .replace(&echo.addr.to_string(), &b.http_addr.to_string());
    let a = Gateway::start(Config::parse(&text, "a.toml").unwrap())
        .await
        .unwrap();

    // Straight to B without a token: refused at B's token stage (tqf), once B knows Cmeter.
    let direct = format!("http://{}/cse-in/meter", b.http_addr);
    eventually(
        "B refuses a request without a token at its token stage",
        || async {
            let get = onem2m("GET", direct.clone(), "Cmeter", "r0");
            let refused = send(&s.http, get.body(Default::default()).unwrap()).await;
            refused.rsc() == "4103" && refused.json()["tqf"].is_object()
        },
    )
    .await;

    let device = tls_client(&pki, Some("meter"));
    let via_a = format!("https://127.0.0.1:{}/cse-in/meter", a.http_addr.port());
    let get = |rqi: &str| {
        onem2m("GET", via_a.clone(), "Cmeter", rqi)
            .body(Default::default())
            .unwrap()
    };
    // Both gateways trust the token key once the feed reached them.
    eventually("a request through A passes B", || async {
        outcome(&send(&device, get("r1")).await) == "pass"
    })
    .await;
    // Two uses per token: A obtains a fresh one before its count runs out; each passes B.
    let mut seen = Vec::new();
    for i in 2..=6 {
        let answer = send(&device, get(&format!("r{i}"))).await;
        assert_eq!(outcome(&answer), "pass", "request {i}");
        let auth = answer.json()["headers"]["authorization"]
            .as_str()
            .unwrap()
            .to_owned();
        assert!(auth.starts_with("Bearer "), "{auth}");
        seen.push(auth);
    }
    seen.dedup();
    assert!(
        seen.len() >= 3,
        "fresh tokens were obtained: {}",
        seen.len()
    );

    // A request that carries its own token is left alone (here: an invalid one, refused by A).
    let own = onem2m("GET", via_a.clone(), "Cmeter", "r9")
        .header("Authorization", "Bearer a.b.c")
        .body(Default::default())
        .unwrap();
    assert_eq!(send(&device, own).await.rsc(), "4103");
    assert_eq!(outcome(&send(&device, get("r10")).await), "pass");
    a.shutdown().await;
    b.shutdown().await;
}
