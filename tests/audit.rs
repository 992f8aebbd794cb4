//! The audit log from a real gateway run: what it records of each request and event, that
//! it verifies, and how `m2mguard audit export` and `show` read it.

mod common;

use common::audit::{self, Dirs};
use sha2::{Digest, Sha256};

/// Small batches and frequent checkpoints, so that a short run has several of each.
const QUICK: &str = "flush_interval_ms = 5\ncheckpoint_records = 4";

#[tokio::test]
async fn every_request_and_event_is_recorded_without_content_or_secrets() {
    let echo = common::echo_upstream().await;
    let dirs = Dirs::new();
    let gateway = dirs.start(echo.addr, QUICK).await;
    let client = common::client();
    let http = gateway.http_addr;
    let content = r#"{"m2m:cin":{"con":"secret reading 42"}}"#;
    assert_eq!(
        audit::get(&client, http, "Cstranger", "unknown")
            .await
            .rsc(),
        "4103"
    );
    assert_eq!(
        audit::create(&client, http, "Cmeter", "reading", content)
            .await
            .rsc(),
        "2001"
    );
    assert_eq!(
        audit::get(&client, http, "CAdmin", "legit").await.rsc(),
        "2001"
    );
    gateway.state.reload_policies().unwrap();
    gateway.shutdown().await;

    let lines = audit::lines(&dirs.log());
    let denied = audit::requests(&lines, "unknown");
    assert_eq!(denied.len(), 1);
    assert_eq!(denied[0]["verdict"], "denied");
    assert_eq!(denied[0]["stage"], "status");
    assert_eq!(denied[0]["fr"], "Cstranger");
    assert_eq!(denied[0]["forward"], serde_json::Value::Null);

    let created = audit::requests(&lines, "reading");
    assert_eq!(
        created.len(),
        1,
        "one record for the request in and its forward out"
    );
    let c = created[0];
    assert_eq!(
        (c["verdict"].as_str(), c["op"].as_str(), c["ty"].as_u64()),
        (Some("allowed"), Some("create"), Some(4))
    );
    assert_eq!(c["binding"], "http");
    assert_eq!(c["to"], "/id-in/cse-in/meter");
    let digest: String = Sha256::digest(content)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(c["content"]["sha256"], digest.as_str());
    assert_eq!(c["content"]["bytes"], content.len());
    assert_eq!(c["forward"]["result"], "answered");
    assert_eq!(
        (
            c["forward"]["status"].as_u64(),
            c["forward"]["rsc"].as_u64()
        ),
        (Some(201), Some(2001))
    );
    assert!(c["policies"]
        .as_array()
        .unwrap()
        .iter()
        .any(|p| p == "devices-read-write"));

    let text: String = std::fs::read_dir(dirs.log())
        .unwrap()
        .map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap_or_default())
        .collect();
    assert!(
        !text.contains("secret reading"),
        "content is recorded by digest only"
    );

    let events: Vec<&str> = lines
        .iter()
        .filter(|l| l["kind"] == "event")
        .filter_map(|l| l["event"].as_str())
        .collect();
    for event in [
        "audit.open",
        "start",
        "policy.reload",
        "stop",
        "audit.close",
    ] {
        assert!(events.contains(&event), "{event} in {events:?}");
    }
    assert_eq!(
        lines.last().unwrap()["kind"],
        "checkpoint",
        "the log ends with a checkpoint"
    );
    let (code, report) = audit::verify(&dirs.log(), &dirs.public_key());
    assert_eq!(code, 0, "{report}");
    assert!(
        report.contains("verified") && report.contains("closed"),
        "{report}"
    );
}

#[tokio::test]
async fn a_log_survives_restarts_as_one_chain() {
    let echo = common::echo_upstream().await;
    let dirs = Dirs::new();
    let client = common::client();
    for run in 0..3 {
        let gateway = dirs.start(echo.addr, QUICK).await;
        let rqi = format!("run-{run}");
        assert_eq!(
            audit::get(&client, gateway.http_addr, "CAdmin", &rqi)
                .await
                .rsc(),
            "2001"
        );
        gateway.shutdown().await;
    }
    let lines = audit::lines(&dirs.log());
    let opens: Vec<&str> = lines
        .iter()
        .filter(|l| l["event"] == "audit.open")
        .filter_map(|l| l["previous"].as_str())
        .collect();
    assert_eq!(opens, ["new", "closed", "closed"]);
    let seqs: Vec<u64> = lines.iter().map(|l| l["seq"].as_u64().unwrap()).collect();
    assert_eq!(seqs, (1..=seqs.len() as u64).collect::<Vec<_>>());
    let (code, report) = audit::verify(&dirs.log(), &dirs.public_key());
    assert_eq!(code, 0, "{report}");
}

#[tokio::test]
async fn export_and_show_filter_by_node_verdict_and_time() {
    let echo = common::echo_upstream().await;
    let dirs = Dirs::new();
    let gateway = dirs.start(echo.addr, QUICK).await;
    let client = common::client();
    let before = time::OffsetDateTime::now_utc() - time::Duration::seconds(1);
    for i in 0..3 {
        audit::get(&client, gateway.http_addr, "Cstranger", &format!("s{i}")).await;
        audit::get(&client, gateway.http_addr, "CAdmin", &format!("a{i}")).await;
    }
    gateway.shutdown().await;
    let run = |args: &[&str]| {
        let out = std::process::Command::new(audit::BIN)
            .arg("audit")
            .args(args)
            .arg("--dir")
            .arg(dirs.log())
            .arg("--public-key")
            .arg(dirs.public_key())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let exported = run(&["export", "--node", "Cstranger", "--verdict", "denied"]);
    let rqis: Vec<String> = exported
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["rqi"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(rqis, ["s0", "s1", "s2"]);
    let since = before
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    assert_eq!(
        run(&["export", "--since", &since, "--kind", "request"])
            .lines()
            .count(),
        6
    );
    assert_eq!(run(&["export", "--until", &since]).lines().count(), 0);
    let shown = run(&["show", "--node", "CAdmin", "--last", "2"]);
    assert_eq!(shown.lines().count(), 2, "{shown}");
    assert!(shown.contains("allowed") && shown.contains("a2"), "{shown}");

    let bad = std::process::Command::new(audit::BIN)
        .args(["audit", "export", "--since", "yesterday", "--dir"])
        .arg(dirs.log())
        .arg("--public-key")
        .arg(dirs.public_key())
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(64));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("RFC 3339"));
}

#[tokio::test]
async fn retention_removes_the_oldest_segments_and_says_so() {
    let echo = common::echo_upstream().await;
    let dirs = Dirs::new();
    let extra = "flush_interval_ms = 5\nsegment_bytes = 65536\nretain_bytes = 131072";
    let gateway = dirs.start(echo.addr, extra).await;
    let client = common::client();
    for i in 0..700 {
        audit::get(&client, gateway.http_addr, "CAdmin", &format!("r{i}")).await;
    }
    gateway.shutdown().await;
    let segments = m2mguard::audit::list_segments(&dirs.log()).unwrap();
    let bytes: u64 = segments
        .iter()
        .map(|(_, p)| p.metadata().unwrap().len())
        .sum();
    assert!(bytes <= 131_072 + 65_536 + 4096, "{bytes} bytes kept");
    let first = segments[0].0;
    assert!(first > 1, "the oldest segments are gone");
    let lines = audit::lines(&dirs.log());
    let retention = lines
        .iter()
        .rfind(|l| l["event"] == "audit.retention")
        .expect("an audit.retention line");
    assert_eq!(retention["removed_through"], first - 1);
    let (code, report) = audit::verify(&dirs.log(), &dirs.public_key());
    assert_eq!(code, 0, "{report}");
}

#[tokio::test]
async fn a_second_gateway_cannot_write_the_same_log() {
    let echo = common::echo_upstream().await;
    let (first, second) = (Dirs::new(), Dirs::new());
    let gateway = first.start(echo.addr, QUICK).await;
    let text = second.config_at(echo.addr, &first.log(), QUICK);
    let config = m2mguard::config::Config::parse(&text, "second.toml").unwrap();
    let refused = m2mguard::gateway::Gateway::start(config)
        .await
        .err()
        .expect("refused");
    assert!(
        refused.to_string().contains("in use by another writer"),
        "{refused}"
    );
    // The first goes on.
    let client = common::client();
    assert_eq!(
        audit::get(&client, gateway.http_addr, "CAdmin", "legit")
            .await
            .rsc(),
        "2001"
    );
    gateway.shutdown().await;
    let (code, report) = audit::verify(&first.log(), &first.public_key());
    assert_eq!(code, 0, "{report}");
}
