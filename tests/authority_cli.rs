//! The rest of the operator's commands through the real binary against a running authority:
//! node update, suspend, activate, revoke (final), list and show; gateway activate; feed show
//! and head. Each change is checked as the record it published. A bad authority.toml, and an
//! init that would overwrite.

mod common;

use m2mguard::feed::{Body, GatewayStatus, Head};
use m2mguard::store::{NodeKind, NodeStatus};
use serde_json::Value;

use common::authority::{printed_seq, Setup};

#[tokio::test]
async fn node_status_commands_publish_each_status_and_revocation_is_final() {
    let setup = Setup::new("").await;
    let running = setup.start().await;
    setup.ok(&["node", "enrol", "Cn", "--group", "a"]).await;
    let update = [
        "node",
        "update",
        "Cn",
        "--kind",
        "cse",
        "--group",
        "b",
        "--registrar",
        "/id-mn",
    ];
    setup.ok(&update).await;
    for action in ["suspend", "activate", "revoke"] {
        setup.ok(&["node", action, "Cn"]).await;
    }
    let refused = setup.cli(&["node", "activate", "Cn"]).await;
    assert_eq!(
        refused.status.code(),
        Some(1),
        "a revoked node stays revoked"
    );
    assert!(String::from_utf8_lossy(&refused.stderr).contains("409"));
    let statuses: Vec<(NodeStatus, NodeKind, Vec<String>)> = setup
        .chain()
        .await
        .into_iter()
        .map(|s| match s.body {
            Body::NodePut(n) => (n.status, n.kind, n.groups),
            other => panic!("not node.put: {other:?}"),
        })
        .collect();
    let b = || vec!["b".to_owned()];
    assert_eq!(
        statuses,
        [
            (NodeStatus::Active, NodeKind::Ae, vec!["a".to_owned()]),
            (NodeStatus::Active, NodeKind::Cse, b()),
            (NodeStatus::Suspended, NodeKind::Cse, b()),
            (NodeStatus::Active, NodeKind::Cse, b()),
            (NodeStatus::Revoked, NodeKind::Cse, b()),
        ]
    );
    let list: Value = serde_json::from_str(&setup.ok(&["node", "list", "--json"]).await).unwrap();
    assert_eq!(list["nodes"][0]["registrar"], "/id-mn");
    let table = setup.ok(&["node", "list"]).await;
    assert!(
        table.contains("Cn") && table.contains("revoked") && table.contains("/id-mn"),
        "{table}"
    );
    let show: Value = serde_json::from_str(&setup.ok(&["node", "show", "Cn"]).await).unwrap();
    assert_eq!(
        (show["status"].as_str(), show["kind"].as_str()),
        (Some("revoked"), Some("cse"))
    );
    running.shutdown().await;
}

#[tokio::test]
async fn gateway_activation_and_the_feed_commands_show_what_was_published() {
    let setup = Setup::new("").await;
    let running = setup.start().await;
    setup.gateway("gw-a").await;
    setup.ok(&["gateway", "deactivate", "gw-a"]).await;
    let seq = printed_seq(&setup.ok(&["gateway", "activate", "gw-a"]).await);
    let chain = setup.chain().await;
    assert!(matches!(&chain[1].body, Body::GatewayPut(g) if g.status == GatewayStatus::Active));
    let list: Value =
        serde_json::from_str(&setup.ok(&["gateway", "list", "--json"]).await).unwrap();
    assert_eq!(list["gateways"][0]["status"], "active");
    assert_eq!(list["gateways"][0]["confirmed"], Value::Null, "no ack yet");
    let shown: Value = serde_json::from_str(&setup.ok(&["feed", "show", "--json"]).await).unwrap();
    let records = shown["records"].as_array().unwrap();
    assert_eq!(records.len(), 2);
    assert_eq!(records[1]["hash"], chain[1].hash.as_str());
    assert_eq!(records[1]["aud"][0], "gw-a");
    let after: Value =
        serde_json::from_str(&setup.ok(&["feed", "show", "--after", "1", "--json"]).await).unwrap();
    assert_eq!(after["records"].as_array().unwrap().len(), 1);
    let table = setup.ok(&["feed", "show"]).await;
    assert!(
        table.contains("gateway.put") && table.contains(&chain[0].hash[..16]),
        "{table}"
    );
    let head = setup.ok(&["feed", "head"]).await;
    let compact = head.lines().next().unwrap();
    let verified = Head::verify(compact, &setup.feed_key()).unwrap();
    assert_eq!(
        (verified.seq, verified.hash.as_str()),
        (seq, chain[1].hash.as_str())
    );
    running.shutdown().await;
}

#[tokio::test]
async fn a_gateway_the_authority_does_not_register_leaves_no_files_behind() {
    let setup = Setup::new("").await;
    let out = setup.dir.path().join("kit");
    let kit = out.to_str().unwrap();
    let down = setup
        .cli(&["gateway", "add", "--id", "gw-a", "--out", kit])
        .await;
    assert_eq!(down.status.code(), Some(1), "the authority is not running");
    assert!(!out.join("sign.key").exists(), "the kit was removed again");
    let running = setup.start().await;
    setup.gateway("gw-a").await;
    let twice = setup
        .cli(&["gateway", "add", "--id", "gw-a", "--out", kit])
        .await;
    assert_eq!(twice.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&twice.stderr).contains("409"));
    assert!(
        !out.join("client.key").exists(),
        "no kit for a refused gateway"
    );
    let sync = std::fs::read_to_string(setup.dir.path().join("gw-a/sync.toml")).unwrap();
    let parsed: toml::Value = toml::from_str(&sync).unwrap();
    assert_eq!(parsed["sync"]["gateway_id"].as_str(), Some("gw-a"));
    assert_eq!(parsed["sync"]["feed"].as_str(), Some("feed-t"));
    for file in ["feed_key", "sign_key", "seal_key", "ca", "cert", "key"] {
        let path = std::path::PathBuf::from(parsed["sync"][file].as_str().unwrap());
        assert!(
            path.is_absolute() && path.exists(),
            "{file}: {}",
            path.display()
        );
    }
    assert_eq!(
        parsed["sync"]["authority"].as_str(),
        Some(setup.url().as_str())
    );
    #[cfg(unix)]
    for private in ["sign.key", "seal.key", "client.key"] {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(setup.dir.path().join("gw-a").join(private))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "{private}");
    }
    running.shutdown().await;
}

#[tokio::test]
async fn a_bad_authority_toml_is_refused_with_located_errors_and_exit_64() {
    let setup = Setup::new("").await;
    let path = setup.config_path();
    let text = std::fs::read_to_string(&path).unwrap();
    let bad = text
        .replace("listen = \"127.0.0.1:", "listen = \"localhost:")
        .replace("# heartbeat_s = 10", "heartbeat_s = 0");
    std::fs::write(setup.path("bad.toml"), bad).unwrap();
    let out = common::authority::m2mguard_in(
        setup.dir.path(),
        &[
            "authority",
            "serve",
            "-c",
            setup.path("bad.toml").to_str().unwrap(),
        ],
    )
    .await;
    assert_eq!(out.status.code(), Some(64));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("bad.toml:") && stderr.contains("authority.listen"),
        "{stderr}"
    );
    assert!(stderr.contains("authority.heartbeat_s"), "{stderr}");
    let unknown = text + "\n[authority.extra]\n";
    std::fs::write(setup.path("bad.toml"), unknown).unwrap();
    let out = common::authority::m2mguard_in(
        setup.dir.path(),
        &[
            "authority",
            "node",
            "list",
            "-c",
            setup.path("bad.toml").to_str().unwrap(),
        ],
    )
    .await;
    assert_eq!(out.status.code(), Some(64), "unknown keys are errors");
    let init_again =
        common::authority::m2mguard_in(setup.dir.path(), &["authority", "init", "--dir", "a"])
            .await;
    assert!(!init_again.status.success(), "init refuses to overwrite");
    assert!(String::from_utf8_lossy(&init_again.stderr).contains("exists already"));
}
