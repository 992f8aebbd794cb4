//! The IN link end to end over real sockets: the authority (in this process, over HTTPS), a
//! gateway following it with the kit `authority gateway add` wrote, the echo upstream. Each
//! change at the authority takes effect at the gateway; each refusal is followed by the
//! legitimate request passing.

mod common;
#[path = "common/tokens.rs"]
mod token_kit;

use common::signed::{Signed, KEY};
use common::sync::{eventually, outcome, Synced};

#[tokio::test]
async fn a_node_deactivated_at_the_authority_is_refused_until_activated() {
    let s = Synced::new(&[("Cmeter", "devices")], "").await;
    eventually("the enrolled node passes", || async {
        s.rsc("Cmeter").await == "pass"
    })
    .await;
    s.setup.ok(&["node", "deactivate", "Cmeter"]).await;
    eventually("the deactivated node is refused", || async {
        s.rsc("Cmeter").await == "4103"
    })
    .await;
    s.setup.ok(&["node", "activate", "Cmeter"]).await;
    eventually("the activated node passes", || async {
        s.rsc("Cmeter").await == "pass"
    })
    .await;
}

#[tokio::test]
async fn an_unknown_or_removed_node_is_refused_and_an_enrolled_one_passes() {
    let s = Synced::new(&[("Cmeter", "devices")], "").await;
    eventually("the enrolled node passes", || async {
        s.rsc("Cmeter").await == "pass"
    })
    .await;
    assert_eq!(s.rsc("Cstranger").await, "4103");
    s.setup.ok(&["node", "remove", "Cmeter"]).await;
    eventually("the removed node is refused", || async {
        s.rsc("Cmeter").await == "4103"
    })
    .await;
    s.setup
        .ok(&["node", "enrol", "Cother", "--group", "devices"])
        .await;
    eventually("a newly enrolled node passes", || async {
        s.rsc("Cother").await == "pass"
    })
    .await;
}

#[tokio::test]
async fn a_deactivated_gateway_refuses_everyone_across_a_restart_until_activated() {
    let mut s = Synced::new(&[("Cmeter", "devices"), ("CAdmin", "operators")], "").await;
    eventually("the node passes", || async {
        s.rsc("Cmeter").await == "pass"
    })
    .await;
    s.setup.ok(&["gateway", "deactivate", "gw-a"]).await;
    eventually("everyone is refused", || async {
        s.rsc("CAdmin").await == "4103"
    })
    .await;
    let answer = common::retrieve(&s.http, s.gateway().http_addr, "Cmeter").await;
    assert_eq!(
        answer.json()["m2m:dbg"],
        "access denied: gateway deactivated or out of date"
    );
    let (status, body) = s.ready().await;
    assert_eq!(status, 503, "{body}");
    assert!(body.starts_with("deactivated by the authority"), "{body}");
    s.stop_gateway().await;
    s.start_gateway().await;
    assert_eq!(
        s.rsc("Cmeter").await,
        "4103",
        "still deactivated after a restart"
    );
    s.setup.ok(&["gateway", "activate", "gw-a"]).await;
    eventually("the node passes again", || async {
        s.rsc("Cmeter").await == "pass"
    })
    .await;
    assert_eq!(s.ready().await.0, 200);
}

#[tokio::test]
async fn keys_added_rotated_and_removed_at_the_authority_take_effect() {
    let checks = r#"
[[checks.require]]
path = "/id-in/cse-in/meter*"
check_value = true
timestamp = true
"#;
    let s = Synced::new(&[("Cmeter", "devices")], checks).await;
    let dir = s.setup.dir.path();
    s.setup.add_key("meter-k1", "Cmeter", &KEY).await;
    let gw = s.gateway().http_addr;
    let mut seq = 0;
    let mut next = || {
        seq += 1;
        Signed::new(&format!("r{seq}"), seq)
    };
    eventually("a request under the key passes", || {
        let signed = next();
        async move { outcome(&signed.send(gw).await) == "pass" }
    })
    .await;
    let rotated = dir.join("meter.rotated");
    s.setup
        .ok(&[
            "key",
            "rotate",
            "meter-k1",
            "--secret-out",
            rotated.to_str().unwrap(),
        ])
        .await;
    eventually("the old secret is refused", || {
        let signed = next();
        async move { outcome(&signed.send(gw).await) == "4103" }
    })
    .await;
    let text = std::fs::read_to_string(&rotated).unwrap();
    let new_key = m2mguard::feed::keys::parse_hex32(text.trim(), "rotated secret").unwrap();
    let mut with_new = next();
    with_new.key = new_key;
    assert_eq!(
        outcome(&with_new.send(gw).await),
        "pass",
        "the rotated secret passes"
    );
    s.setup.ok(&["key", "remove", "meter-k1"]).await;
    eventually("a request under the removed key is refused", || {
        let mut signed = next();
        signed.key = new_key;
        async move { outcome(&signed.send(gw).await) == "4103" }
    })
    .await;
}

#[tokio::test]
async fn the_gateway_enforces_from_its_repository_while_the_authority_is_away() {
    let mut s = Synced::new(&[("Cmeter", "devices")], "").await;
    eventually("the node passes", || async {
        s.rsc("Cmeter").await == "pass"
    })
    .await;
    s.setup.ok(&["node", "suspend", "Cmeter"]).await;
    eventually("the suspension arrived", || async {
        s.rsc("Cmeter").await == "4103"
    })
    .await;
    s.authority.take().unwrap().shutdown().await;
    s.stop_gateway().await;
    s.start_gateway().await;
    assert_eq!(
        s.rsc("Cmeter").await,
        "4103",
        "refused from the repository alone"
    );
    assert_eq!(s.rsc("Cstranger").await, "4103");
    let (status, body) = s.ready().await;
    assert_eq!(status, 200, "no max_age_s: still ready ({body})");
    assert!(body.contains("sync: record "), "{body}");
}

#[tokio::test]
async fn past_max_age_only_operators_pass_until_heads_come_again() {
    let mut s = Synced::new(&[("Cmeter", "devices"), ("CAdmin", "operators")], "").await;
    s.stop_gateway().await;
    s.sync.push_str("max_age_s = 4\n");
    s.start_gateway().await;
    eventually("the node passes", || async {
        s.rsc("Cmeter").await == "pass"
    })
    .await;
    assert_eq!(s.ready().await.0, 200);
    s.authority.take().unwrap().shutdown().await;
    eventually("a node is refused once the view is too old", || async {
        s.rsc("Cmeter").await == "4103"
    })
    .await;
    let answer = common::retrieve(&s.http, s.gateway().http_addr, "Cmeter").await;
    assert_eq!(
        answer.json()["m2m:dbg"],
        "access denied: gateway deactivated or out of date"
    );
    assert_eq!(s.rsc("CAdmin").await, "pass", "operators still pass");
    let (status, body) = s.ready().await;
    assert_eq!(status, 503, "{body}");
    assert!(body.starts_with("stale"), "{body}");
    s.restart_authority().await;
    eventually("fresh heads let the node through again", || async {
        s.rsc("Cmeter").await == "pass"
    })
    .await;
}

#[tokio::test]
async fn a_token_revoked_at_the_authority_is_refused_and_a_fresh_one_passes() {
    let issuers = token_kit::Issuers::new();
    let s = Synced::new(
        &[("Cmeter", "devices")],
        &issuers.toml("/id-in/cse-in/meter*", 100),
    )
    .await;
    let claims = issuers.claims(token_kit::ED_ISS, "Cmeter");
    let jti = claims["jti"].as_str().unwrap().to_owned();
    let token = issuers.ed(&claims);
    let gw = s.gateway().http_addr;
    let get = |token: String| async move {
        let request = common::onem2m("GET", format!("http://{gw}/cse-in/meter"), "Cmeter", "t")
            .header("Authorization", format!("Bearer {token}"))
            .body(Default::default())
            .unwrap();
        outcome(&common::send(&common::client(), request).await)
    };
    eventually("the token passes", || {
        let answer = get(token.clone());
        async move { answer.await == "pass" }
    })
    .await;
    s.setup.ok(&["token", "revoke", &jti]).await;
    eventually("the revoked token is refused", || {
        let answer = get(token.clone());
        async move { answer.await == "4103" }
    })
    .await;
    assert_eq!(
        get(issuers.fresh("Cmeter")).await,
        "pass",
        "another token passes"
    );
}
