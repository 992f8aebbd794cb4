//! Access-control tokens on the HTTP path, over real sockets: every attack is refused with
//! 403 / 4103 before anything reaches the upstream, and a legitimate request with a good token
//! passes afterwards. Also: revocation through the admin API and the CLI while the token is
//! cached, use counts that survive a restart, `tqf` on a missing token, and `tkps` in Cedar.

mod common;
#[path = "common/tokens.rs"]
mod token_kit;

use std::sync::atomic::Ordering;

use bytes::Bytes;
use common::*;
use http::StatusCode;
use http_body_util::Full;
use m2mguard::admin::client::AdminClient;
use m2mguard::config::Config;
use m2mguard::gateway::Gateway;
use serde_json::json;
use token_kit::*;

const METER: &str = "/cse-in/meter";

struct Setup {
    echo: Echo,
    gw: TestGateway,
    issuers: Issuers,
}

async fn setup() -> Setup {
    setup_with(POLICIES).await
}

async fn setup_with(policies: &str) -> Setup {
    let echo = echo_upstream().await;
    let issuers = Issuers::new();
    let gw = gateway_with(
        echo.addr,
        policies,
        &issuers.toml("/id-in/cse-in/meter*", 3),
    )
    .await;
    Setup { echo, gw, issuers }
}

/// GET the token-protected target as `fr`, presenting `tokens` (none: no Authorization).
async fn get(gw: &TestGateway, fr: &str, tokens: &[&str]) -> Answer {
    get_at(gw.http(), fr, tokens).await
}

async fn get_at(addr: std::net::SocketAddr, fr: &str, tokens: &[&str]) -> Answer {
    let mut request = onem2m("GET", format!("http://{addr}{METER}"), fr, "tok");
    if !tokens.is_empty() {
        request = request.header("Authorization", format!("Bearer {}", tokens.join("+")));
    }
    send(&client(), request.body(Full::new(Bytes::new())).unwrap()).await
}

/// Refused as a denial, nothing forwarded, and a legitimate token still gets through.
async fn refused_then_serving(answer: &Answer, s: &Setup) {
    assert_eq!(
        (answer.status, answer.rsc()),
        (StatusCode::FORBIDDEN, "4103"),
        "{answer:?}"
    );
    assert_eq!(
        answer.json()["m2m:dbg"],
        "access denied: token missing or invalid"
    );
    assert_eq!(
        s.echo.hits.load(Ordering::SeqCst),
        0,
        "nothing reached the upstream"
    );
    let legit = get(&s.gw, "Cmeter", &[&s.issuers.fresh("Cmeter")]).await;
    assert_eq!(legit.status, StatusCode::CREATED, "{legit:?}");
}

#[tokio::test]
async fn valid_tokens_of_each_algorithm_pass_and_reach_the_upstream() {
    let s = setup().await;
    let i = &s.issuers;
    for token in [
        i.ed(&i.claims(ED_ISS, "Cmeter")),
        i.ec(&i.claims(EC_ISS, "Cmeter")),
        i.hs(&i.claims(HS_ISS, "Cmeter")),
    ] {
        let answer = get(&s.gw, "Cmeter", &[&token]).await;
        assert_eq!(answer.status, StatusCode::CREATED, "{answer:?}");
    }
    assert_eq!(s.echo.hits.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn missing_token_where_required_is_refused_with_token_request_information() {
    let s = setup().await;
    let answer = get(&s.gw, "Cmeter", &[]).await;
    assert_eq!(answer.json()["tqf"], json!({"dasi": [{"url": TQF}]}));
    refused_then_serving(&answer, &s).await;
    // Targets without the requirement need no token.
    assert_eq!(
        retrieve(&client(), s.gw.http(), "Cmeter").await.status,
        StatusCode::CREATED
    );
}

#[tokio::test]
async fn expired_token_is_refused() {
    let s = setup().await;
    let mut c = s.issuers.claims(ED_ISS, "Cmeter");
    c["exp"] = json!(now_s() - 60);
    let answer = get(&s.gw, "Cmeter", &[&s.issuers.ed(&c)]).await;
    refused_then_serving(&answer, &s).await;
}

#[tokio::test]
async fn not_yet_valid_token_is_refused() {
    let s = setup().await;
    let mut c = s.issuers.claims(ED_ISS, "Cmeter");
    c["nbf"] = json!(now_s() + 120);
    let answer = get(&s.gw, "Cmeter", &[&s.issuers.ed(&c)]).await;
    refused_then_serving(&answer, &s).await;
}

#[tokio::test]
async fn forged_signature_is_refused() {
    let s = setup().await;
    let impostor = rcgen::KeyPair::generate_for(&rcgen::PKCS_ED25519).unwrap();
    let key = jsonwebtoken::EncodingKey::from_ed_pem(impostor.serialize_pem().as_bytes()).unwrap();
    let forged = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::EdDSA),
        &s.issuers.claims(ED_ISS, "Cmeter"),
        &key,
    )
    .unwrap();
    let answer = get(&s.gw, "Cmeter", &[&forged]).await;
    refused_then_serving(&answer, &s).await;
}

#[tokio::test]
async fn unsigned_alg_none_token_is_refused() {
    let s = setup().await;
    let token = raw(
        &json!({"alg": "none", "typ": "JWT"}),
        &s.issuers.claims(ED_ISS, "Cmeter"),
        b"",
    );
    let answer = get(&s.gw, "Cmeter", &[&token]).await;
    refused_then_serving(&answer, &s).await;
}

#[tokio::test]
async fn hs256_signed_with_the_eddsa_public_key_is_refused() {
    let s = setup().await;
    let claims = s.issuers.claims(ED_ISS, "Cmeter");
    let public_pem = s.issuers.ed.public_key_pem();
    let answer = get(&s.gw, "Cmeter", &[&hs256(&claims, public_pem.as_bytes())]).await;
    refused_then_serving(&answer, &s).await;
}

#[tokio::test]
async fn token_for_another_audience_is_refused() {
    let s = setup().await;
    let mut c = s.issuers.claims(ED_ISS, "Cmeter");
    c["aud"] = json!(["/id-other", "/id-mn"]);
    let answer = get(&s.gw, "Cmeter", &[&s.issuers.ed(&c)]).await;
    refused_then_serving(&answer, &s).await;
}

#[tokio::test]
async fn token_presented_by_another_holder_is_refused() {
    let s = setup().await;
    let meters = s.issuers.fresh("Cmeter");
    let answer = get(&s.gw, "Clamp", &[&meters]).await;
    refused_then_serving(&answer, &s).await;
    // A valid token beside a stolen one does not help either.
    let own = s.issuers.fresh("Clamp");
    let answer = get(&s.gw, "Clamp", &[&own, &meters]).await;
    assert_eq!(answer.rsc(), "4103");
}

#[tokio::test]
async fn token_revoked_through_the_admin_api_is_refused_while_cached() {
    let s = setup().await;
    let claims = s.issuers.claims(ED_ISS, "Cmeter");
    let token = s.issuers.ed(&claims);
    assert_eq!(
        get(&s.gw, "Cmeter", &[&token]).await.status,
        StatusCode::CREATED
    );
    s.echo.hits.store(0, Ordering::SeqCst);
    let jti = claims["jti"].as_str().unwrap();
    let answer = AdminClient::new(s.gw.gateway.admin_addr)
        .revoke_token(jti)
        .await
        .unwrap();
    assert_eq!(answer["revoked"], true);
    let answer = get(&s.gw, "Cmeter", &[&token]).await;
    refused_then_serving(&answer, &s).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn token_revoked_through_the_cli_is_refused() {
    let s = setup().await;
    let claims = s.issuers.claims(EC_ISS, "Cmeter");
    let token = s.issuers.ec(&claims);
    assert_eq!(
        get(&s.gw, "Cmeter", &[&token]).await.status,
        StatusCode::CREATED
    );
    s.echo.hits.store(0, Ordering::SeqCst);
    let admin = s.gw.gateway.admin_addr.to_string();
    let jti = claims["jti"].as_str().unwrap().to_owned();
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_m2mguard"))
            .args(["token", "--admin", &admin, "revoke", &jti])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stdout).contains(": revoked"));
    let answer = get(&s.gw, "Cmeter", &[&token]).await;
    refused_then_serving(&answer, &s).await;
}

#[tokio::test]
async fn used_up_token_stays_refused_across_a_restart() {
    let echo = echo_upstream().await;
    let issuers = Issuers::new();
    let data = tempfile::tempdir().unwrap();
    let text = config_text(
        echo.addr,
        data.path(),
        POLICIES,
        &issuers.toml("/id-in/cse-in/meter*", 2),
    );
    let start = || async {
        Gateway::start(Config::parse(&text, "t.toml").unwrap())
            .await
            .unwrap()
    };
    let token = issuers.hs(&issuers.claims(HS_ISS, "Cmeter"));
    let gw = start().await;
    for _ in 0..2 {
        let answer = get_at(gw.http_addr, "Cmeter", &[&token]).await;
        assert_eq!(answer.status, StatusCode::CREATED);
    }
    assert_eq!(
        get_at(gw.http_addr, "Cmeter", &[&token]).await.rsc(),
        "4103",
        "third use"
    );
    gw.shutdown().await;

    let gw = start().await;
    echo.hits.store(0, Ordering::SeqCst);
    let answer = get_at(gw.http_addr, "Cmeter", &[&token]).await;
    assert_eq!(
        (answer.status, answer.rsc()),
        (StatusCode::FORBIDDEN, "4103"),
        "after restart"
    );
    assert_eq!(echo.hits.load(Ordering::SeqCst), 0, "nothing forwarded");
    let legit = issuers.hs(&issuers.claims(HS_ISS, "Cmeter"));
    let answer = get_at(gw.http_addr, "Cmeter", &[&legit]).await;
    assert_eq!(answer.status, StatusCode::CREATED);
    gw.shutdown().await;
}

/// A policy set where devices may retrieve only what a token grants.
fn token_policies() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        format!("{POLICIES}/m2mguard.cedarschema"),
        dir.path().join("m2mguard.cedarschema"),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("tokens.cedar"),
        r#"@id("retrieve-with-token")
permit (principal in Group::"devices", action == Action::"retrieve", resource)
when {
  context has token &&
  context.checks.token &&
  context.token.operations.contains("retrieve") &&
  context.token.resources.contains(resource.path)
};
"#,
    )
    .unwrap();
    dir
}

#[tokio::test]
async fn token_permissions_reach_the_policy() {
    let policies = token_policies();
    let s = setup_with(policies.path().to_str().unwrap()).await;
    let i = &s.issuers;
    // Signed, valid, but grants only update: the policy stage refuses.
    let mut c = i.claims(ED_ISS, "Cmeter");
    c["tkps"][0]["pv"]["acr"][0]["acop"] = json!(4);
    let answer = get(&s.gw, "Cmeter", &[&i.ed(&c)]).await;
    assert_eq!(
        (answer.status, answer.rsc()),
        (StatusCode::FORBIDDEN, "4103")
    );
    assert_eq!(answer.json()["m2m:dbg"], "access denied by policy");
    assert!(
        answer.json().get("tqf").is_none(),
        "tqf only with token denials"
    );
    // Retrieve granted, but for another resource.
    let mut c = i.claims(ED_ISS, "Cmeter");
    c["tkps"][0]["ris"] = json!(["/id-in/cse-in/lamp"]);
    assert_eq!(get(&s.gw, "Cmeter", &[&i.ed(&c)]).await.rsc(), "4103");
    assert_eq!(s.echo.hits.load(Ordering::SeqCst), 0);
    // Retrieve granted on this resource (the default claims): permitted.
    let answer = get(&s.gw, "Cmeter", &[&s.issuers.fresh("Cmeter")]).await;
    assert_eq!(answer.status, StatusCode::CREATED, "{answer:?}");
}

#[tokio::test]
async fn revoke_endpoint_refuses_a_missing_id_and_other_methods() {
    let s = setup().await;
    let admin = s.gw.gateway.admin_addr;
    for (method, path, status) in [
        ("POST", "/v1/tokens//revoke", StatusCode::BAD_REQUEST),
        (
            "GET",
            "/v1/tokens/abc/revoke",
            StatusCode::METHOD_NOT_ALLOWED,
        ),
    ] {
        let request = http::Request::builder()
            .method(method)
            .uri(format!("http://{admin}{path}"))
            .body(Full::new(Bytes::new()))
            .unwrap();
        assert_eq!(
            send(&client(), request).await.status,
            status,
            "{method} {path}"
        );
    }
    // An id never seen can be revoked ahead of use, and then its token is refused.
    let claims = s.issuers.claims(ED_ISS, "Cmeter");
    let client = AdminClient::new(admin);
    let first = client
        .revoke_token(claims["jti"].as_str().unwrap())
        .await
        .unwrap();
    assert_eq!(first["already"], false);
    let again = client
        .revoke_token(claims["jti"].as_str().unwrap())
        .await
        .unwrap();
    assert_eq!(again["already"], true);
    let answer = get(&s.gw, "Cmeter", &[&s.issuers.ed(&claims)]).await;
    refused_then_serving(&answer, &s).await;
}
