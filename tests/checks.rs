//! Check values and replay windows over real sockets on the HTTP path: every attack is
//! refused with 403/4103, reaches nothing upstream, and a legitimate request passes after it.

mod common;

use std::path::Path;
use std::sync::atomic::Ordering;

use common::signed::*;
use common::*;
use http::StatusCode;
use m2mguard::config::Config;
use m2mguard::gateway::Gateway;

async fn start(upstream: std::net::SocketAddr, data: &Path, lease: u64) -> Gateway {
    let text = config_text(upstream, data, POLICIES, "") + &checks_toml(data, lease);
    Gateway::start(Config::parse(&text, "test.toml").unwrap())
        .await
        .unwrap()
}

fn refused(answer: &Answer, why: &str) {
    assert_eq!(
        (answer.status, answer.rsc()),
        (StatusCode::FORBIDDEN, "4103"),
        "{why}: {answer:?}"
    );
}

#[tokio::test]
async fn missing_forged_and_wrong_key_check_values_are_refused() {
    let echo = echo_upstream().await;
    let data = tempfile::tempdir().unwrap();
    let gw = start(echo.addr, data.path(), 1024).await;
    let addr = gw.http_addr;
    let s = Signed::new("cv-1", 1);

    refused(&send(&client(), s.request(addr, None)).await, "missing");
    let mut forged = s.aus();
    forged.replace_range(forged.len() - 4.., "AAAA");
    refused(
        &send(&client(), s.request(addr, Some(forged))).await,
        "forged",
    );
    let lamp_key = Signed {
        key_id: "lamp-k1",
        key: [0x17; 32],
        ..Signed::new("cv-1", 1)
    };
    refused(&lamp_key.send(addr).await, "another node's key");
    let unknown = Signed {
        key_id: "nobody",
        ..Signed::new("cv-1", 1)
    };
    refused(&unknown.send(addr).await, "unknown key id");
    // A query parameter added on the way (here: ask for another result content) is covered.
    let mut extended = s.request(addr, Some(s.aus()));
    *extended.uri_mut() = format!("http://{addr}/cse-in/meter?rcn=4").parse().unwrap();
    refused(
        &send(&client(), extended).await,
        "query added after signing",
    );
    let wrong_secret = Signed {
        key: [0x43; 32],
        ..Signed::new("cv-1", 1)
    };
    refused(&wrong_secret.send(addr).await, "right key id, wrong key");
    assert_eq!(
        echo.hits.load(Ordering::SeqCst),
        0,
        "nothing reached the upstream"
    );

    // Legitimate: correctly signed; and targets without requirements are untouched.
    assert_eq!(s.send(addr).await.status, StatusCode::CREATED);
    assert_eq!(
        retrieve(&client(), addr, "Cmeter").await.status,
        StatusCode::CREATED
    );
    assert_eq!(echo.hits.load(Ordering::SeqCst), 2);
    gw.shutdown().await;
}

#[tokio::test]
async fn replayed_stale_future_and_reused_sequence_numbers_are_refused() {
    let echo = echo_upstream().await;
    let data = tempfile::tempdir().unwrap();
    let gw = start(echo.addr, data.path(), 1024).await;
    let addr = gw.http_addr;

    let first = Signed::new("rp-1", 10);
    assert_eq!(first.send(addr).await.status, StatusCode::CREATED);
    refused(&first.send(addr).await, "the same request again");
    refused(
        &Signed::new("rp-2", 10).send(addr).await,
        "new rqi, reused sequence number",
    );
    let stale = Signed {
        ot: Some(now_ot(-301)),
        ..Signed::new("rp-3", 11)
    };
    refused(&stale.send(addr).await, "stale ot");
    let future = Signed {
        ot: Some(now_ot(60)),
        ..Signed::new("rp-4", 12)
    };
    refused(&future.send(addr).await, "future ot");
    let no_ot = Signed {
        ot: None,
        ..Signed::new("rp-5", 13)
    };
    refused(&no_ot.send(addr).await, "ot missing where required");
    assert_eq!(
        Signed::new("rp-6", 5000).send(addr).await.status,
        StatusCode::CREATED
    );
    refused(
        &Signed::new("rp-7", 5000 - 1024).send(addr).await,
        "older than the window",
    );
    assert_eq!(echo.hits.load(Ordering::SeqCst), 2);

    // Legitimate: out of order but inside the window, fresh id.
    assert_eq!(
        Signed::new("rp-8", 4990).send(addr).await.status,
        StatusCode::CREATED
    );
    gw.shutdown().await;
}

#[tokio::test]
async fn sequence_numbers_stay_used_across_a_restart() {
    let echo = echo_upstream().await;
    let data = tempfile::tempdir().unwrap();
    let gw = start(echo.addr, data.path(), 100).await;
    for (i, seq) in [1, 2, 50].into_iter().enumerate() {
        let answer = Signed::new(&format!("rs-{i}"), seq)
            .send(gw.http_addr)
            .await;
        assert_eq!(answer.status, StatusCode::CREATED);
    }
    gw.shutdown().await;

    let gw = start(echo.addr, data.path(), 100).await;
    let addr = gw.http_addr;
    // Fresh request ids, used (or leased) sequence numbers: all refused.
    for seq in [1, 2, 50, 51, 101] {
        refused(
            &Signed::new(&format!("rs-again-{seq}"), seq)
                .send(addr)
                .await,
            "used before restart",
        );
    }
    assert_eq!(echo.hits.load(Ordering::SeqCst), 3);
    // Legitimate: above the persisted bound.
    assert_eq!(
        Signed::new("rs-next", 102).send(addr).await.status,
        StatusCode::CREATED
    );
    gw.shutdown().await;
}

#[tokio::test]
async fn the_gateway_inserts_check_values_for_a_proven_legacy_device_only() {
    use m2mguard::guard::check_value::sign;
    use m2mguard::security::Secret;
    let echo = echo_upstream().await;
    let pki = Pki::new();
    pki.issue("lamp", &[], "Clamp");
    let checks = |data: &Path| {
        checks_toml(data, 100).replace("node = \"Clamp\"", "node = \"Clamp\"\ninsert = true")
    };
    let data = tempfile::tempdir().unwrap();
    let text =
        config_text(echo.addr, data.path(), POLICIES, &tls_section(&pki)) + &checks(data.path());
    let gw = Gateway::start(Config::parse(&text, "test.toml").unwrap())
        .await
        .unwrap();
    let url = format!("https://127.0.0.1:{}/cse-in", gw.http_addr.port());
    let lamp = tls_client(&pki, Some("lamp"));
    let mut p = Signed::new("legit", 1).primitive();
    (p.fr, p.to, p.ot) = ("Clamp".into(), "/id-in/cse-in".into(), None);
    for seq in [1, 2] {
        let request = onem2m("GET", url.clone(), "Clamp", "legit")
            .body(Default::default())
            .unwrap();
        let answer = send(&lamp, request).await;
        assert_eq!(answer.status, StatusCode::CREATED);
        let expected = sign(&p, "lamp-k1", &Secret::new(&[0x17; 32]), seq);
        assert_eq!(answer.json()["headers"]["x-m2m-as"], expected.as_str());
    }
    gw.shutdown().await;

    // Over plain HTTP the originator is only claimed: forwarded as it came, unsigned.
    let data = tempfile::tempdir().unwrap();
    let text = config_text(echo.addr, data.path(), POLICIES, "") + &checks(data.path());
    let gw = Gateway::start(Config::parse(&text, "test.toml").unwrap())
        .await
        .unwrap();
    let answer = retrieve(&client(), gw.http_addr, "Clamp").await;
    assert_eq!(answer.status, StatusCode::CREATED);
    assert!(answer.json()["headers"].get("x-m2m-as").is_none());
    gw.shutdown().await;
}

#[tokio::test]
async fn keys_added_rotated_and_removed_at_run_time_count_from_the_very_next_request() {
    use m2mguard::security::{CheckKey, Secret};
    use m2mguard::store::Batch;
    let echo = echo_upstream().await;
    let data = tempfile::tempdir().unwrap();
    let gw = start(echo.addr, data.path(), 1024).await;
    let addr = gw.http_addr;
    let keys = gw.state.keys.clone();
    let under = |key_id: &'static str, byte: u8, rqi: &str, seq: u64| Signed {
        key_id,
        key: [byte; 32],
        ..Signed::new(rqi, seq)
    };
    let enrolled = |id: &str, byte: u8| CheckKey::new(id, "Cmeter", Secret::new(&[byte; 32]));

    refused(
        &under("meter-k2", 0x99, "rt-1", 1).send(addr).await,
        "not yet enrolled",
    );
    keys.put(enrolled("meter-k2", 0x99)).unwrap();
    assert_eq!(
        under("meter-k2", 0x99, "rt-2", 2).send(addr).await.status,
        StatusCode::CREATED,
        "added: verifies at once"
    );

    // Rotation: a new secret under a new id in, the old id out, in one batch.
    let rotation = Batch::new()
        .put_key(enrolled("meter-k3", 0x98))
        .remove_key("meter-k2");
    keys.apply(&rotation).unwrap();
    refused(
        &under("meter-k2", 0x99, "rt-3", 3).send(addr).await,
        "rotated out",
    );
    assert_eq!(
        under("meter-k3", 0x98, "rt-4", 1).send(addr).await.status,
        StatusCode::CREATED,
        "rotated in"
    );

    // A configured key removed at run time: the very next request under it is refused.
    assert_eq!(
        Signed::new("rt-5", 1).send(addr).await.status,
        StatusCode::CREATED
    );
    keys.remove("meter-k1").unwrap();
    refused(&Signed::new("rt-6", 2).send(addr).await, "removed");
    assert_eq!(
        echo.hits.load(Ordering::SeqCst),
        3,
        "refusals reach nothing"
    );

    // Legitimate: the rotated key keeps working, and is still there after a restart.
    assert_eq!(
        under("meter-k3", 0x98, "rt-7", 2).send(addr).await.status,
        StatusCode::CREATED
    );
    drop(keys); // it holds the repository open
    gw.shutdown().await;
    let gw = start(echo.addr, data.path(), 1024).await;
    // (above the leased bound, as after any restart)
    assert_eq!(
        under("meter-k3", 0x98, "rt-8", 2000)
            .send(gw.http_addr)
            .await
            .status,
        StatusCode::CREATED
    );
    gw.shutdown().await;
}
