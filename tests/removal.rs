//! Removing a gateway's credentials at the authority (docs/sync.md "Removal") over real
//! sockets: the gateway wipes its check-value keys and private key files, refuses every
//! request at stage `gateway`, says so in /readyz, does not start again on the wiped files,
//! and serves again after `m2mguard enrol` and a restart.

mod common;

use common::signed::KEY;
use common::sync::{eventually, Synced};
use m2mguard::config::Config;

#[tokio::test]
async fn a_removed_gateway_wipes_its_secrets_refuses_everything_and_serves_after_enrolling_again() {
    let mut s = Synced::new(&[("Cmeter", "devices"), ("CAdmin", "operators")], "").await;
    let dir = s.setup.dir.path().to_owned();
    common::key_file(&dir, "meter.secret", &KEY);
    let (secret, out) = (dir.join("meter.secret"), dir.join("meter.out"));
    s.setup
        .ok(&[
            "key",
            "add",
            "--id",
            "meter-k1",
            "--node",
            "Cmeter",
            "--secret-file",
            secret.to_str().unwrap(),
            "--secret-out",
            out.to_str().unwrap(),
        ])
        .await;
    eventually("the node passes and its key arrived", || async {
        s.rsc("Cmeter").await == "pass" && s.gateway().state.keys.ring().len() == 1
    })
    .await;

    let removed = s.setup.ok(&["gateway", "remove", "gw-a"]).await;
    assert!(removed.contains("removed"), "{removed}");
    eventually("every request is refused", || async {
        s.rsc("Cmeter").await == "4103" && s.rsc("CAdmin").await == "4103"
    })
    .await;
    let (status, body) = s.ready().await;
    assert_eq!(status, 503);
    assert!(
        body.starts_with("credentials removed: enrol again"),
        "{body}"
    );
    eventually("the secrets are wiped", || async {
        s.gateway().state.keys.ring().is_empty()
            && ["sign.key", "seal.key", "client.key"]
                .iter()
                .all(|f| !s.kit.dir.join(f).exists())
    })
    .await;
    eventually("the authority forgot the gateway once it acked", || async {
        !s.setup.ok(&["gateway", "list"]).await.contains("gw-a")
    })
    .await;
    assert_eq!(s.rsc("Cmeter").await, "4103", "still refused");

    // A restart on the wiped files does not serve: the configuration names keys that are gone.
    s.stop_gateway().await;
    let text = common::sync::synced_config(&s.echo, s.data.path(), &s.sync, "");
    let errors = Config::parse(&text, "synced.toml").unwrap_err();
    assert!(
        errors.iter().any(|e| e.key == "sync.sign_key"),
        "{errors:?}"
    );

    // Enrol again (the same id, a fresh directory), restart on the same repository: it starts
    // over from a snapshot and serves.
    let code = dir.join("gw-a.code");
    s.setup
        .ok(&[
            "gateway",
            "add",
            "--id",
            "gw-a",
            "--code-out",
            code.to_str().unwrap(),
        ])
        .await;
    let again = dir.join("gw-a-2");
    let enrolled = s.setup.enrol("gw-a", &code, &again).await;
    assert!(
        enrolled.status.success(),
        "{}",
        String::from_utf8_lossy(&enrolled.stderr)
    );
    s.sync = std::fs::read_to_string(again.join("sync.toml")).unwrap();
    s.start_gateway().await;
    eventually("the enrolled-again gateway serves", || async {
        s.rsc("Cmeter").await == "pass"
    })
    .await;
    assert_eq!(s.ready().await.0, 200);
    eventually("its key is sealed to the new sealing key", || async {
        s.gateway().state.keys.ring().len() == 1
    })
    .await;
}

#[tokio::test]
async fn a_removed_gateway_cannot_be_activated_or_removed_twice_until_it_acked() {
    // Not started: it never acks the removal, so the authority keeps it as removed.
    let s = Synced::unstarted(&[("Cmeter", "devices")], "").await;
    s.setup.ok(&["gateway", "remove", "gw-a"]).await;
    for args in [
        ["gateway", "activate", "gw-a"],
        ["gateway", "remove", "gw-a"],
    ] {
        let out = s.setup.cli(&args).await;
        assert!(!out.status.success(), "{args:?}");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("409"),
            "{args:?}"
        );
    }
}
