//! Operating the binary: `--log-format json` lines an indexer can take (every line one JSON
//! object, the decision fields top-level keys), the authority's `/v1/metrics` (operator only),
//! and the man pages and shell completions `m2mguard generate` writes.

mod common;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use http::StatusCode;
use serde_json::{Map, Value};

use common::authority::Setup;
use common::*;

const BIN: &str = env!("CARGO_BIN_EXE_m2mguard");

type Line = Map<String, Value>;

fn field<'a>(line: &'a Line, name: &str) -> &'a str {
    line.get(name).and_then(Value::as_str).unwrap_or("")
}

#[tokio::test(flavor = "multi_thread")]
async fn json_logs_are_one_object_per_line_with_the_decision_fields_at_the_top() {
    let cse = m2mguard::minicse::start(SocketAddr::from(([127, 0, 0, 1], 0)), "/id-in", "cse-in")
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("m2mguard.toml");
    std::fs::write(
        &config,
        config_text(cse.addr, &dir.path().join("data"), POLICIES, ""),
    )
    .unwrap();
    let mut child = Command::new(BIN)
        .args(["run", "--log-format", "json", "--config"])
        .arg(&config)
        .env("RUST_LOG", "m2mguard=debug,info")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = mpsc::channel::<String>();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut lines: Vec<String> = Vec::new();
    let started: Line = loop {
        let line = rx
            .recv_timeout(Duration::from_secs(20))
            .expect("the gateway starts within 20 s");
        lines.push(line.clone());
        if let Ok(Value::Object(o)) = serde_json::from_str(&line) {
            if field(&o, "message") == "m2mguard started" {
                break o;
            }
        }
    };
    let http: SocketAddr = field(&started, "http").parse().unwrap();
    let client = client();
    assert_eq!(retrieve(&client, http, "Cmeter").await.rsc(), "2000");
    let denied = retrieve(&client, http, "Cstranger").await;
    assert_eq!(
        (denied.status, denied.rsc()),
        (StatusCode::FORBIDDEN, "4103")
    );

    let pid = child.id().to_string();
    assert!(Command::new("kill")
        .args(["-s", "TERM", &pid])
        .status()
        .unwrap()
        .success());
    let status = child.wait().unwrap();
    assert!(status.success(), "exit status {status}");
    reader.join().unwrap();
    lines.extend(rx.try_iter());

    let parsed: Vec<Line> = lines
        .iter()
        .map(|l| match serde_json::from_str(l) {
            Ok(Value::Object(o)) => o,
            _ => panic!("not one JSON object: {l}"),
        })
        .collect();
    for line in &parsed {
        assert!(!line.contains_key("fields"), "fields nested: {line:?}");
        for key in ["timestamp", "level", "message"] {
            assert!(line.contains_key(key), "no {key}: {line:?}");
        }
    }
    let find = |message: &str, node: &str| {
        parsed
            .iter()
            .find(|l| field(l, "message") == message && field(l, "node.id") == node)
            .unwrap_or_else(|| panic!("no {message:?} line for {node} in {lines:#?}"))
    };
    let allowed = find("request allowed", "Cmeter");
    for (key, value) in [("proto", "http"), ("op", "retrieve"), ("verdict", "allow")] {
        assert_eq!(field(allowed, key), value, "{allowed:?}");
    }
    assert_eq!(field(allowed, "to"), "/id-in/cse-in");
    assert!(
        field(allowed, "policy.ids").contains("devices-read-write"),
        "{allowed:?}"
    );
    let denied = find("request denied", "Cstranger");
    for (key, value) in [
        ("verdict", "deny"),
        ("deny.stage", "status"),
        ("level", "INFO"),
    ] {
        assert_eq!(field(denied, key), value, "{denied:?}");
    }
    assert!(parsed
        .iter()
        .any(|l| field(l, "message") == "shutting down"));
}

#[test]
fn an_unknown_log_format_is_a_usage_error() {
    let out = Command::new(BIN)
        .args(["run", "--log-format", "xml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("possible values: text, json"));
}

#[tokio::test]
async fn authority_metrics_are_for_the_operator_alone() {
    let setup = Setup::new("").await;
    let running = setup.start().await;
    let gw = setup.gateway("gw-a").await;
    setup
        .ok(&["node", "enrol", "Cmeter-01", "--group", "meters"])
        .await;
    let head = running.feed.current().seq;
    assert!(head >= 1, "the enrolment was published");

    let operator = setup.operator();
    let reply = operator
        .send(http::Method::GET, "/v1/metrics", bytes::Bytes::new())
        .await
        .unwrap();
    assert_eq!(reply.status, 200);
    assert!(reply.headers["content-type"]
        .to_str()
        .unwrap()
        .starts_with("application/openmetrics-text"));
    let text = String::from_utf8(reply.body.to_vec()).unwrap();
    for line in [
        format!("m2mguard_authority_feed_head_seq {head}"),
        "m2mguard_authority_gateways 1".to_owned(),
        format!("m2mguard_authority_gateway_lag_records{{gateway=\"gw-a\"}} {head}"),
        "m2mguard_authority_gateway_ack_age_seconds{gateway=\"gw-a\"} -1".to_owned(),
    ] {
        assert!(text.lines().any(|l| l == line), "{line} missing in\n{text}");
    }
    // No credential: 401; a gateway's certificate: 403; the operator again: 200.
    let anonymous = setup
        .anonymous(None)
        .send(http::Method::GET, "/v1/metrics", bytes::Bytes::new())
        .await
        .unwrap();
    assert_eq!(anonymous.status, 401);
    assert_eq!(gw.get("/v1/metrics").await.status, 403);
    let post = operator
        .send(http::Method::POST, "/v1/metrics", bytes::Bytes::new())
        .await
        .unwrap();
    assert_eq!(post.status, 405);
    running.shutdown().await;
}

/// `m2mguard generate WHAT DIR/WHAT`, which must succeed; that directory.
fn generate(what: &str, dir: &std::path::Path) -> std::path::PathBuf {
    let into = dir.join(what);
    let out = Command::new(BIN)
        .args(["generate", what])
        .arg(&into)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "generate {what}: {stderr}");
    into
}

#[test]
fn generated_man_pages_and_completions_name_every_command() {
    let dir = tempfile::tempdir().unwrap();
    let man = generate("man", dir.path());
    for page in ["m2mguard", "m2mguard-run", "m2mguard-authority-node-enrol"] {
        let text = std::fs::read_to_string(man.join(format!("{page}.1"))).unwrap();
        assert!(text.contains(".TH"), "{page} has no title");
    }
    let top = std::fs::read_to_string(man.join("m2mguard.1")).unwrap();
    assert!(top.contains("log\\-format"), "global option documented");
    assert!(
        !man.join("m2mguard-generate.1").exists(),
        "hidden stays hidden"
    );

    let completions = generate("completions", dir.path());
    for file in ["m2mguard.bash", "_m2mguard", "m2mguard.fish"] {
        assert!(completions.join(file).is_file(), "{file}");
    }
    // The bash completion sources and registers itself.
    let bash = Command::new("bash")
        .arg("-c")
        .arg(format!(
            "source {} && complete -p m2mguard",
            completions.join("m2mguard.bash").display()
        ))
        .output()
        .unwrap();
    assert!(
        bash.status.success(),
        "{}",
        String::from_utf8_lossy(&bash.stderr)
    );
    assert!(String::from_utf8_lossy(&bash.stdout).contains("m2mguard"));
}
