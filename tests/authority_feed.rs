//! The authority's feed endpoints over real sockets, as a gateway sees them: heads, the
//! long-poll woken by a publish, cacheable full pages, 416, snapshots sealed to the gateway,
//! acks (forged ones refused, nothing recorded).

mod common;

use std::time::Duration;

use m2mguard::feed::record::ZERO_HASH;
use m2mguard::feed::{seal, Ack, Head, SigningKey, Snapshot};
use serde_json::Value;

use common::authority::{printed_seq, verify_chain, Gateway, Setup};

async fn enrol(setup: &Setup, id: &str) -> u64 {
    printed_seq(&setup.ok(&["node", "enrol", id]).await)
}

#[tokio::test]
async fn the_head_is_signed_and_names_the_last_record() {
    let setup = Setup::new("").await;
    let running = setup.start().await;
    let gw = setup.gateway("gw-a").await;
    let empty = gw.get("/v1/feed/head").await;
    assert_eq!(empty.headers["cache-control"], "no-cache");
    let head = Head::verify(std::str::from_utf8(&empty.body).unwrap(), &setup.feed_key()).unwrap();
    assert_eq!(
        (head.seq, head.hash.as_str(), head.feed.as_str()),
        (0, ZERO_HASH, "feed-t")
    );
    assert_eq!(head.valid_until, head.at + 60);
    enrol(&setup, "Ca").await;
    let reply = gw.get("/v1/feed/head").await;
    let head = Head::verify(std::str::from_utf8(&reply.body).unwrap(), &setup.feed_key()).unwrap();
    assert_eq!(
        (head.seq, head.hash.clone()),
        (1, setup.chain().await[0].hash.clone())
    );
    running.shutdown().await;
}

#[tokio::test]
async fn a_long_poll_returns_as_soon_as_a_record_is_published() {
    let setup = Setup::new("").await;
    let running = setup.start().await;
    let gw = setup.gateway("gw-a").await;
    enrol(&setup, "Ca").await;
    let poll = tokio::spawn(async move {
        let reply = gw.get("/v1/feed/records?after=1&wait=30").await;
        (
            reply.status,
            String::from_utf8(reply.body.to_vec()).unwrap(),
        )
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    enrol(&setup, "Cb").await;
    // Well within the 30 s the poll would wait if nothing woke it.
    let (status, body) = tokio::time::timeout(Duration::from_secs(20), poll)
        .await
        .expect("the long-poll was woken by the publish")
        .unwrap();
    assert_eq!(status, 200);
    let chain = setup.chain().await;
    assert_eq!(
        body,
        format!("{}\n", chain[1].compact),
        "exactly the new record"
    );
    running.shutdown().await;
}

#[tokio::test]
async fn full_pages_are_cacheable_partial_ones_are_not_and_beyond_the_end_is_416() {
    let setup = Setup::new("").await;
    let running = setup.start().await;
    let gw = setup.gateway("gw-a").await;
    for id in ["C1", "C2", "C3"] {
        enrol(&setup, id).await;
    }
    let chain = setup.chain().await;
    let full = gw.get("/v1/feed/records?after=0&limit=2").await;
    assert_eq!(full.status, 200);
    assert_eq!(full.headers["content-type"], "application/jose-lines");
    assert_eq!(
        full.headers["cache-control"],
        "public, max-age=31536000, immutable"
    );
    assert_eq!(
        full.headers["etag"],
        format!("\"{}\"", chain[1].hash).as_str()
    );
    let lines = String::from_utf8(full.body.to_vec()).unwrap();
    assert_eq!(verify_chain(&lines, &setup.feed_key(), "feed-t").len(), 2);
    let partial = gw.get("/v1/feed/records?after=2&limit=2").await;
    assert_eq!(partial.headers["cache-control"], "no-store");
    assert!(partial.headers.get("etag").is_none());
    assert_eq!(
        gw.get("/v1/feed/records?after=3").await.status,
        200,
        "at the end: empty"
    );
    assert_eq!(gw.get("/v1/feed/records?after=4").await.status, 416);
    assert_eq!(
        gw.get("/v1/feed/records?after=0&limit=1001").await.status,
        400
    );
    assert_eq!(gw.get("/v1/feed/records?after=0&wait=31").await.status, 400);
    assert_eq!(gw.get("/v1/feed/records?after=1&limit=1").await.status, 200);
    running.shutdown().await;
}

fn ack(gw: &Gateway, key: &SigningKey, seq: u64, hash: &str, error: Option<&str>) -> String {
    Ack {
        feed: "feed-t".into(),
        gateway: gw.id.clone(),
        seq,
        hash: hash.into(),
        at: 1_796_000_123,
        error: error.map(str::to_owned),
    }
    .sign(key)
}

async fn confirmed(setup: &Setup) -> Value {
    let list: Value =
        serde_json::from_str(&setup.ok(&["gateway", "list", "--json"]).await).unwrap();
    list["gateways"][0]["confirmed"].clone()
}

#[tokio::test]
async fn an_ack_is_recorded_and_forged_ones_are_refused_with_nothing_recorded() {
    let setup = Setup::new("").await;
    let running = setup.start().await;
    let gw = setup.gateway("gw-a").await;
    enrol(&setup, "Ca").await;
    let hash = setup.chain().await[0].hash.clone();
    assert_eq!(
        gw.post("/v1/feed/ack", ack(&gw, &gw.sign, 1, &hash, None))
            .await
            .status,
        204
    );
    let seen = confirmed(&setup).await;
    assert_eq!(
        (seen["seq"].as_u64(), seen["hash"].as_str()),
        (Some(1), Some(hash.as_str()))
    );
    assert_eq!(seen["applied_at"], 1_796_000_123);
    let table = setup.ok(&["gateway", "list"]).await;
    assert!(table.contains(&hash[..16]), "{table}");
    let other = SigningKey::from_seed(&[9; 32]);
    let forged = gw
        .post("/v1/feed/ack", ack(&gw, &other, 1, &hash, Some("x")))
        .await;
    assert_eq!(forged.status, 400, "signed by another key");
    let unknown = gw
        .post("/v1/feed/ack", ack(&gw, &gw.sign, 7, &hash, Some("x")))
        .await;
    assert_eq!(unknown.status, 400, "a seq the feed does not have");
    let wrong_hash = gw
        .post("/v1/feed/ack", ack(&gw, &gw.sign, 1, ZERO_HASH, Some("x")))
        .await;
    assert_eq!(wrong_hash.status, 400, "a hash the feed does not have");
    assert_eq!(
        confirmed(&setup).await,
        seen,
        "nothing of the refused acks was recorded"
    );
    let error = gw
        .post(
            "/v1/feed/ack",
            ack(&gw, &gw.sign, 1, &hash, Some("bad key.put")),
        )
        .await;
    assert_eq!(error.status, 204);
    assert_eq!(confirmed(&setup).await["error"], "bad key.put");
    running.shutdown().await;
}

#[tokio::test]
async fn a_snapshot_holds_everything_with_secrets_sealed_to_that_gateway_only() {
    let setup = Setup::new("").await;
    let running = setup.start().await;
    let gw = setup.gateway("gw-a").await;
    let other = setup.gateway("gw-b").await;
    enrol(&setup, "Ca").await;
    let secret = setup.dir.path().join("ka");
    setup
        .ok(&[
            "key",
            "add",
            "--id",
            "ka",
            "--node",
            "Ca",
            "--secret-out",
            secret.to_str().unwrap(),
        ])
        .await;
    setup.ok(&["token", "revoke", "jti-1"]).await;
    setup.ok(&["gateway", "deactivate", "gw-a"]).await;
    let reply = gw.get("/v1/feed/snapshot").await;
    assert_eq!(
        (
            reply.status.as_u16(),
            reply.headers["cache-control"].to_str().unwrap()
        ),
        (200, "no-store")
    );
    let snapshot =
        Snapshot::verify(std::str::from_utf8(&reply.body).unwrap(), &setup.feed_key()).unwrap();
    let chain = setup.chain().await;
    assert_eq!(
        (snapshot.seq, snapshot.hash.as_str()),
        (4, chain[3].hash.as_str())
    );
    assert_eq!(snapshot.gateway, "gw-a");
    assert_eq!(snapshot.status, m2mguard::feed::GatewayStatus::Deactivated);
    assert_eq!(snapshot.nodes.len(), 1);
    assert_eq!(snapshot.revoked, ["jti-1"]);
    let key = &snapshot.keys[0];
    assert_eq!(
        key.sealed.keys().collect::<Vec<_>>(),
        ["gw-a"],
        "sealed to this gateway only"
    );
    let opened = seal::open(&key.sealed["gw-a"], &gw.seal).unwrap();
    let text = std::fs::read_to_string(&secret).unwrap();
    assert_eq!(m2mguard::feed::keys::hex(&opened), text.trim());
    assert!(
        seal::open(&key.sealed["gw-a"], &other.seal).is_err(),
        "no other gateway opens it"
    );
    running.shutdown().await;
}
