//! Plausibility rules on the HTTP path, over real sockets: a position jump faster than the
//! rule allows, a position outside the region, a request outside its time window, a source
//! address outside the allowed ranges, content that cannot be evaluated, and a flag-only rule
//! whose flag the Cedar policy sees. Every attack test ends with a legitimate request that
//! passes.

mod common;

use std::sync::atomic::Ordering;
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use common::*;
use http::StatusCode;
use http_body_util::Full;

/// POST a contentInstance with `body` to `/cse-in/<target>` as `fr`.
async fn create(gw: &TestGateway, fr: &str, target: &str, body: &str) -> Answer {
    let request = gw
        .request("POST", &format!("/cse-in/{target}"), fr, "plaus")
        .header("Content-Type", "application/json;ty=4")
        .body(Full::new(Bytes::from(body.to_owned())))
        .unwrap();
    send(&client(), request).await
}

async fn metrics(gw: &TestGateway) -> String {
    let request = http::Request::get(format!("http://{}/metrics", gw.gateway.admin_addr))
        .body(Full::default())
        .unwrap();
    String::from_utf8(send(&client(), request).await.body.to_vec()).unwrap()
}

fn at(lat: f64, lon: f64) -> String {
    format!(r#"{{"m2m:cin":{{"con":{{"lat":{lat},"lon":{lon}}}}}}}"#)
}

const POSITION: &str = r#"
latitude = "/m2m:cin/con/lat"
longitude = "/m2m:cin/con/lon"
"#;

/// A `[[plausibility]]` table for `path` (under `/id-in/cse-in/`) with `body` as its conditions.
fn rule(name: &str, path: &str, action: &str, body: &str) -> String {
    format!(
        "\n[[plausibility]]\nname = \"{name}\"\npath = \"/id-in/cse-in/{path}\"\naction = \"{action}\"\n{body}\n"
    )
}

fn assert_implausible(answer: &Answer) {
    assert_eq!(
        (answer.status, answer.rsc()),
        (StatusCode::FORBIDDEN, "4103"),
        "{answer:?}"
    );
    let body = String::from_utf8_lossy(&answer.body);
    assert!(body.contains("implausible"), "{body}");
}

fn assert_passed(answer: &Answer) {
    assert_eq!(answer.status, StatusCode::CREATED, "{answer:?}");
}

#[tokio::test]
async fn position_jump_of_500_km_is_denied_and_nothing_reaches_the_upstream() {
    let echo = echo_upstream().await;
    let rules = rule(
        "speed",
        "tracker-*",
        "deny",
        &format!("operations = [\"create\"]\nmax_speed_kmh = 300{POSITION}"),
    );
    let gw = gateway_with(echo.addr, POLICIES, &rules).await;
    assert_passed(&create(&gw, "Cmeter", "tracker-01", &at(52.52, 13.405)).await);
    assert_eq!(echo.hits.load(Ordering::SeqCst), 1);
    // Munich, ~504 km away, moments later.
    assert_implausible(&create(&gw, "Cmeter", "tracker-01", &at(48.137, 11.575)).await);
    assert_eq!(
        echo.hits.load(Ordering::SeqCst),
        1,
        "the jump never reached the upstream"
    );
    // The denied jump did not become the last position: 20 m from Berlin still passes
    // (at most 72 km/h over the one-second minimum interval), and reads are not affected.
    assert_passed(&create(&gw, "Cmeter", "tracker-01", &at(52.52018, 13.405)).await);
    assert_eq!(
        retrieve(&client(), gw.http(), "Cmeter").await.status,
        StatusCode::CREATED
    );
    gw.gateway.shutdown().await;
}

#[tokio::test]
async fn position_outside_the_region_is_denied() {
    let echo = echo_upstream().await;
    let rules = rule(
        "berlin",
        "tracker-*",
        "deny",
        &format!("region = {{ polygon = [[52.3, 13.0], [52.3, 13.8], [52.7, 13.8], [52.7, 13.0]] }}{POSITION}"),
    );
    let gw = gateway_with(echo.addr, POLICIES, &rules).await;
    assert_implausible(&create(&gw, "Cmeter", "tracker-01", &at(48.137, 11.575)).await);
    assert_eq!(echo.hits.load(Ordering::SeqCst), 0);
    assert_passed(&create(&gw, "Cmeter", "tracker-01", &at(52.52, 13.405)).await);
    gw.gateway.shutdown().await;
}

#[tokio::test]
async fn request_outside_its_time_window_is_denied() {
    let echo = echo_upstream().await;
    // Windows built around the current UTC hour: "night" allows every hour but this one and
    // the next (so the test cannot straddle a boundary), "now" allows only those two.
    let hour = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
        / 3600
        % 24;
    let (this, next) = (hour, (hour + 1) % 24);
    let others: Vec<String> = (0..24)
        .filter(|h| *h != this && *h != next)
        .map(|h| h.to_string())
        .collect();
    let rules = format!(
        "{}{}",
        rule(
            "night",
            "tracker-*",
            "deny",
            &format!(
                "nodes = [\"Cmeter\"]\nwindows = [\"* {} * * *\"]",
                others.join(",")
            ),
        ),
        rule(
            "now",
            "lamp-*",
            "deny",
            &format!("windows = [\"* {this},{next} * * *\"]")
        ),
    );
    let gw = gateway_with(echo.addr, POLICIES, &rules).await;
    assert_implausible(&create(&gw, "Cmeter", "tracker-01", &at(1.0, 1.0)).await);
    assert_eq!(echo.hits.load(Ordering::SeqCst), 0);
    // The same target for a node the rule does not name, and a window that is open, pass.
    assert_passed(&create(&gw, "CAdmin", "tracker-01", &at(1.0, 1.0)).await);
    assert_passed(&create(&gw, "Cmeter", "lamp-01", "{}").await);
    gw.gateway.shutdown().await;
}

#[tokio::test]
async fn source_address_outside_the_ranges_is_denied_whatever_the_headers_say() {
    let echo = echo_upstream().await;
    let rules = format!(
        "{}{}",
        rule(
            "site-only",
            "tracker-*",
            "deny",
            "sources = [\"10.0.0.0/8\", \"fd00::/8\"]"
        ),
        rule(
            "loopback",
            "lamp-*",
            "deny",
            "sources = [\"127.0.0.0/8\", \"::1\"]"
        ),
    );
    let gw = gateway_with(echo.addr, POLICIES, &rules).await;
    let request = gw
        .request("POST", "/cse-in/tracker-01", "Cmeter", "p")
        .header("Content-Type", "application/json;ty=4")
        .header("X-Forwarded-For", "10.1.2.3")
        .header("Forwarded", "for=10.1.2.3")
        .header("X-Real-IP", "10.1.2.3")
        .body(Full::new(Bytes::from_static(b"{}")))
        .unwrap();
    assert_implausible(&send(&client(), request).await);
    assert_eq!(echo.hits.load(Ordering::SeqCst), 0);
    let needle = r#"verdict="deny",stage="plausibility"} 1"#;
    assert!(
        metrics(&gw).await.contains(needle),
        "the denial is counted by its stage"
    );
    assert_passed(&create(&gw, "Cmeter", "lamp-01", "{}").await);
    gw.gateway.shutdown().await;
}

#[tokio::test]
async fn content_that_cannot_be_evaluated_is_denied() {
    let echo = echo_upstream().await;
    // A flag rule: even a rule that would only flag denies what it cannot evaluate.
    let rules = rule(
        "fence",
        "tracker-*",
        "flag",
        &format!("operations = [\"create\"]\nregion = {{ lat = 52.52, lon = 13.405, radius_m = 50000 }}{POSITION}"),
    );
    let gw = gateway_with(echo.addr, POLICIES, &rules).await;
    for body in [
        "not json",
        r#"{"m2m:cin":{"con":"21.5"}}"#,
        r#"{"m2m:cin":{"con":{"lat":"north","lon":13.4}}}"#,
        r#"{"m2m:cin":{"con":{"lat":152.5,"lon":13.4}}}"#,
        "",
    ] {
        assert_implausible(&create(&gw, "Cmeter", "tracker-01", body).await);
    }
    assert_eq!(echo.hits.load(Ordering::SeqCst), 0);
    // A position in `con` as JSON text is read too.
    let as_text = r#"{"m2m:cin":{"con":"{\"lat\":52.5,\"lon\":13.4}"}}"#;
    assert_passed(&create(&gw, "Cmeter", "tracker-01", as_text).await);
    gw.gateway.shutdown().await;
}

#[tokio::test]
async fn flag_rule_lets_the_request_pass_and_the_policy_sees_the_flag() {
    let policies = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(POLICIES).unwrap() {
        let path = entry.unwrap().path();
        std::fs::copy(&path, policies.path().join(path.file_name().unwrap())).unwrap();
    }
    std::fs::write(
        policies.path().join("30-flags.cedar"),
        r#"@id("no-off-site-writes-to-the-vault")
forbid (principal, action in [Action::"create", Action::"retrieve", Action::"update", Action::"delete", Action::"notify"], resource)
when { context.flags.contains("off-site") && resource.path like "/id-in/cse-in/vault*" };
"#,
    )
    .unwrap();
    let echo = echo_upstream().await;
    let rules = rule("off-site", "*", "flag", "sources = [\"10.0.0.0/8\"]");
    let dir = policies.path().to_str().unwrap().to_owned();
    let gw = gateway_with(echo.addr, &dir, &rules).await;
    // Flagged but allowed: the request reaches the upstream.
    assert_passed(&create(&gw, "Cmeter", "tracker-01", "{}").await);
    assert_eq!(echo.hits.load(Ordering::SeqCst), 1);
    // Flagged and forbidden by the policy that reads the flag: denied at the policy stage.
    let denied = create(&gw, "Cmeter", "vault-01", "{}").await;
    assert_eq!(
        (denied.status, denied.rsc()),
        (StatusCode::FORBIDDEN, "4103")
    );
    assert!(
        String::from_utf8_lossy(&denied.body).contains("by policy"),
        "{denied:?}"
    );
    assert_eq!(echo.hits.load(Ordering::SeqCst), 1);
    let metrics = metrics(&gw).await;
    let needle = r#"m2mguard_plausibility_flags_total{rule="off-site"} 2"#;
    assert!(metrics.contains(needle), "missing {needle} in\n{metrics}");
    assert_eq!(
        retrieve(&client(), gw.http(), "Cmeter").await.status,
        StatusCode::CREATED
    );
    gw.gateway.shutdown().await;
}
