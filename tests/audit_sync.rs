//! The audit log of a gateway following the authority's feed: the snapshot it starts from and
//! every record applied are events (kind, subject, status), a key by id and never by secret; the checkpoints are signed
//! with the gateway's own sync key (the default), under its gateway id.

mod common;

use common::audit;
use common::sync::{eventually, Synced};

#[tokio::test]
async fn feed_records_applied_are_events_and_keys_appear_by_id_only() {
    let log = tempfile::tempdir().unwrap();
    let dir = log.path().join("audit");
    let extra = format!(
        "[audit]\ndir = \"{}\"\nflush_interval_ms = 5\n",
        dir.display()
    );
    let mut s = Synced::new(&[("Cmeter", "devices")], &extra).await;
    eventually("the enrolled node passes", || async {
        s.rsc("Cmeter").await == "pass"
    })
    .await;
    s.setup.ok(&["node", "deactivate", "Cmeter"]).await;
    eventually("the deactivated node is refused", || async {
        s.rsc("Cmeter").await == "4103"
    })
    .await;
    let secret = s.setup.dir.path().join("k1.secret");
    let key_add = [
        "key",
        "add",
        "--id",
        "k1",
        "--node",
        "Cmeter",
        "--secret-out",
    ];
    let mut args = key_add.to_vec();
    args.push(secret.to_str().unwrap());
    s.setup.ok(&args).await;
    eventually("the key is applied", || async {
        audit::lines(&dir)
            .iter()
            .any(|l| l["event"] == "feed.record" && l["record"] == "key.put")
    })
    .await;
    s.stop_gateway().await;

    let lines = audit::lines(&dir);
    let applied: Vec<(String, String, String)> = lines
        .iter()
        .filter(|l| l["event"] == "feed.record")
        .map(|l| {
            let text = |k: &str| l[k].as_str().unwrap_or("-").to_owned();
            (text("record"), text("subject"), text("status"))
        })
        .collect();
    let node = |status: &str| {
        (
            "node.put".to_owned(),
            "Cmeter".to_owned(),
            status.to_owned(),
        )
    };
    let snapshot = lines.iter().find(|l| l["event"] == "feed.snapshot");
    assert!(
        snapshot.is_some_and(|l| l["nodes"] == 1),
        "a new gateway starts from a snapshot"
    );
    assert!(applied.contains(&node("deactivated")), "{applied:?}");
    assert!(
        applied.contains(&("key.put".into(), "k1".into(), "-".into())),
        "{applied:?}"
    );
    let hex = std::fs::read_to_string(&secret).unwrap();
    let text: String = m2mguard::audit::list_segments(&dir)
        .unwrap()
        .into_iter()
        .map(|(_, p)| std::fs::read_to_string(p).unwrap())
        .collect();
    assert!(
        !text.contains(hex.trim()),
        "the key's secret is not in the log"
    );
    let denied = lines
        .iter()
        .rfind(|l| l["kind"] == "request" && l["verdict"] == "denied")
        .expect("the refused request is recorded");
    assert_eq!(
        (denied["fr"].as_str(), denied["stage"].as_str()),
        (Some("Cmeter"), Some("status"))
    );

    // Checkpoints are the gateway's: its sync key, its gateway id.
    let public = log.path().join("sign.pub");
    std::fs::write(
        &public,
        m2mguard::feed::keys::hex(s.kit.sign.public().raw()),
    )
    .unwrap();
    let out = std::process::Command::new(audit::BIN)
        .args(["audit", "verify", "--log", "gw-a", "--dir"])
        .arg(&dir)
        .arg("--public-key")
        .arg(&public)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let wrong = std::process::Command::new(audit::BIN)
        .args(["audit", "verify", "--log", "gw-b", "--dir"])
        .arg(&dir)
        .arg("--public-key")
        .arg(&public)
        .output()
        .unwrap();
    assert_eq!(wrong.status.code(), Some(2), "checkpoints name their log");
}
