//! Crash safety of the real `m2mguard authority serve`: two clients publish while the server
//! is killed with SIGKILL at random points, five times; after each restart every record whose
//! publish was answered is there with the hash it was answered with, its state change with it,
//! and the whole chain verifies. SIGTERM stops it cleanly (exit 0).

mod common;

use std::time::Duration;

use bytes::Bytes;
use http::Method;
use m2mguard::feed::Body;
use serde_json::json;

use common::authority::{Setup, BIN};

const ROUNDS: usize = 5;
const PUBLISHERS: usize = 2;
/// Publishes per client and round, at most (the kill comes long before).
const MAX_CALLS: usize = 10_000;

async fn serve(setup: &Setup) -> tokio::process::Child {
    let child = tokio::process::Command::new(BIN)
        .args([
            "authority",
            "serve",
            "-c",
            setup.config_path().to_str().unwrap(),
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let operator = setup.operator();
    for _ in 0..200 {
        if let Ok(r) = operator
            .send(Method::GET, "/v1/feed/head", Bytes::new())
            .await
        {
            if r.status == 200 {
                return child;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the authority did not come up");
}

/// Enrols nodes `C<round>-<client>-<i>` until a call fails; the answered (seq, hash, id).
async fn publish(setup: &Setup, round: usize, client: usize) -> Vec<(u64, String, String)> {
    let operator = setup.operator();
    let mut answered = Vec::new();
    for i in 0..MAX_CALLS {
        let id = format!("C{round}-{client}-{i}");
        let body = json!({ "id": id });
        match operator.call(Method::POST, "/v1/nodes", Some(&body)).await {
            Ok(answer) => answered.push((
                answer["seq"].as_u64().unwrap(),
                answer["hash"].as_str().unwrap().to_owned(),
                id,
            )),
            Err(_) => break,
        }
    }
    answered
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_answered_record_survives_sigkill_and_the_chain_verifies() {
    let setup = std::sync::Arc::new(Setup::new("").await);
    let mut answered = Vec::new();
    for round in 0..ROUNDS {
        let mut child = serve(&setup).await;
        let clients: Vec<_> = (0..PUBLISHERS)
            .map(|c| {
                let setup = setup.clone();
                tokio::spawn(async move { publish(&setup, round, c).await })
            })
            .collect();
        let random = m2mguard::feed::keys::random32();
        let delay = 100 + u64::from(random[0]) * 2;
        tokio::time::sleep(Duration::from_millis(delay)).await;
        child.start_kill().unwrap();
        child.wait().await.unwrap();
        for c in clients {
            answered.extend(c.await.unwrap());
        }
    }
    let mut child = serve(&setup).await;
    let chain = setup.chain().await;
    eprintln!("{} records, {} answered", chain.len(), answered.len());
    assert!(!answered.is_empty(), "some publishes were answered");
    assert!(
        chain.len() >= answered.len(),
        "{} records, {} answered",
        chain.len(),
        answered.len()
    );
    for (seq, hash, id) in &answered {
        let record = &chain[usize::try_from(*seq).unwrap() - 1];
        assert_eq!(
            &record.hash, hash,
            "record {seq} is the one that was answered"
        );
        assert!(matches!(&record.body, Body::NodePut(n) if &n.id == id));
    }
    let nodes = setup
        .operator()
        .call(Method::GET, "/v1/nodes", None)
        .await
        .unwrap();
    let held = nodes["nodes"].as_array().unwrap();
    assert_eq!(
        held.len(),
        chain.len(),
        "every record's state change is there, no other"
    );
    for (_, _, id) in &answered {
        assert!(held.iter().any(|n| n["id"] == id.as_str()), "{id} enrolled");
    }
    child.start_kill().unwrap();
    child.wait().await.unwrap();
}

#[tokio::test]
async fn sigterm_stops_the_authority_cleanly_and_a_restart_serves_the_same_feed() {
    let setup = Setup::new("").await;
    let mut child = serve(&setup).await;
    let answer = setup
        .operator()
        .call(Method::POST, "/v1/nodes", Some(&json!({ "id": "Ct" })))
        .await
        .unwrap();
    let pid = child.id().unwrap().to_string();
    let sent = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert!(sent.success());
    let status = tokio::time::timeout(Duration::from_secs(20), child.wait())
        .await
        .expect("the authority stops within 20 s of SIGTERM")
        .unwrap();
    assert!(status.success(), "exit {status:?}");
    let mut child = serve(&setup).await;
    let chain = setup.chain().await;
    assert_eq!(chain.len(), 1);
    assert_eq!(chain[0].hash, answer["hash"].as_str().unwrap());
    child.start_kill().unwrap();
    child.wait().await.unwrap();
}
