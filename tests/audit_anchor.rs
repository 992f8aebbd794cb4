//! Audit checkpoints anchored at the authority, over real sockets: a gateway with `[sync]`
//! and `[audit]` following a real authority sends every checkpoint through its outbox; with
//! the authority down they wait (also across a SIGKILL of the real binary) and arrive once it
//! is back. Someone with root and the gateway's key rewrites the log and re-signs it, or cuts
//! its tail and puts an older anchor back: `audit verify` passes, `audit verify --authority`
//! finds it; the untouched log verifies against the authority. The authority refuses
//! checkpoints that are not the gateway's own.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use http::Method;
use m2mguard::audit::{line, Checkpoint, ANCHOR};
use m2mguard::feed::SigningKey;
use m2mguard::metrics::OutboxMetrics;
use m2mguard::outbox::Outbox;
use serde_json::Value;

use common::audit::{copy, read_lines, segments, write_lines, BIN};
use common::crash::{until, Process};
use common::sync::{eventually, synced_config, Synced};

/// A checkpoint every 5 records or every second.
fn audit_table(log: &Path) -> String {
    audit_every(log, 5, 1)
}

fn audit_every(log: &Path, records: u64, seconds: u64) -> String {
    format!(
        "[audit]\ndir = \"{}\"\nflush_interval_ms = 5\ncheckpoint_records = {records}\ncheckpoint_interval_s = {seconds}\n",
        log.display()
    )
}

/// A synced gateway with an audit log in `log`, not started.
async fn anchored(log: &Path) -> Synced {
    Synced::unstarted(&[("Cmeter", "devices")], &audit_table(log)).await
}

/// The counts of the checkpoints the authority holds for gw-a (the operator's view).
async fn held(s: &Synced) -> Vec<u64> {
    let answer = s
        .setup
        .operator()
        .call(Method::GET, "/v1/gateways/gw-a/checkpoints", None)
        .await
        .unwrap();
    counts(&answer)
}

fn counts(answer: &Value) -> Vec<u64> {
    answer["checkpoints"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["count"].as_u64().unwrap())
        .collect()
}

/// The gateway's configuration with `audit` (an `[audit]` table) in a file, for the CLI.
fn config_file(s: &Synced, audit: &str) -> PathBuf {
    let path = s.data.path().join("gateway.toml");
    let text = synced_config(&s.echo, s.data.path(), &s.sync, audit);
    std::fs::write(&path, text).unwrap();
    path
}

/// `m2mguard audit verify -c CONFIG [--authority]`: exit code and stdout.
fn verify(config: &Path, authority: bool) -> (i32, String) {
    let mut args = vec!["audit", "verify", "-c", config.to_str().unwrap()];
    if authority {
        args.push("--authority");
    }
    let out = std::process::Command::new(BIN)
        .args(&args)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checkpoints_reach_the_authority_and_a_rewritten_or_cut_log_is_found_there() {
    let logs = tempfile::tempdir().unwrap();
    let log = logs.path().join("audit");
    let mut s = anchored(&log).await;
    s.start_gateway().await;
    // Rounds of requests, each followed by a checkpoint the authority receives (within a
    // round, a newer checkpoint may replace an undelivered one: the newest pins the rest).
    for round in 1..=3 {
        for _ in 0..6 {
            s.rsc("Cmeter").await;
        }
        eventually("the round's checkpoint arrives", || async {
            held(&s).await.len() >= round
        })
        .await;
    }
    // The gateway reads its own with its client certificate: the same list.
    let own = s.kit.get("/v1/audit/checkpoints").await;
    assert_eq!(own.status, 200);
    let own: Value = serde_json::from_slice(&own.body).unwrap();
    assert_eq!(own["gateway"], "gw-a");
    assert!(counts(&own).len() >= 3);
    assert!(s.counter("m2mguard_outbox_delivered_total").await >= 3);
    s.stop_gateway().await;

    let config = config_file(&s, &audit_table(&log));
    let (code, out) = verify(&config, true);
    assert_eq!(code, 0, "the untouched log against the authority:\n{out}");
    let anchored_count = held(&s).await.len();
    assert!(
        out.contains(&format!("holds {anchored_count} checkpoint(s)")),
        "{out}"
    );
    let cli = s.setup.ok(&["gateway", "checkpoints", "gw-a"]).await;
    assert!(cli.starts_with("COUNT"), "{cli}");
    assert_eq!(cli.lines().count(), anchored_count + 1, "{cli}");

    // Root with the gateway's key rewrites a request and re-signs every checkpoint after it.
    let original = logs.path().join("original");
    copy(&log, &original);
    resign_from_first_request(&log, &s.kit.sign, "gw-a");
    let (code, out) = verify(&config, false);
    assert_eq!(code, 0, "the re-signed log alone verifies:\n{out}");
    let (code, out) = verify(&config, true);
    assert_eq!(code, 2, "{out}");
    assert!(
        out.contains("differs from the line a checkpoint the authority holds was made over"),
        "{out}"
    );

    // Root cuts the tail after the first checkpoint and puts that one back as the anchor.
    restore(&original, &log);
    cut_after_first_checkpoint(&log);
    let (code, out) = verify(&config, false);
    assert_eq!(code, 0, "the cut log alone verifies:\n{out}");
    let (code, out) = verify(&config, true);
    assert_eq!(code, 2, "{out}");
    assert!(
        out.contains("truncated: the authority holds a checkpoint over"),
        "{out}"
    );

    // The legitimate log again: it verifies against the authority.
    restore(&original, &log);
    let (code, out) = verify(&config, true);
    assert_eq!(code, 0, "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checkpoints_wait_for_an_authority_that_is_down_and_arrive_once_it_is_back() {
    let logs = tempfile::tempdir().unwrap();
    let mut s = anchored(&logs.path().join("audit")).await;
    s.start_gateway().await;
    eventually("the first checkpoint arrives", || async {
        !held(&s).await.is_empty()
    })
    .await;
    let newest = *held(&s).await.last().unwrap();
    s.authority.take().unwrap().shutdown().await;
    for _ in 0..12 {
        s.rsc("Cmeter").await;
    }
    eventually("a checkpoint waits and delivery is retried", || async {
        s.counter("m2mguard_outbox_entries").await >= 1
            && s.counter("m2mguard_outbox_retries_total").await >= 1
    })
    .await;
    let before = s.counter("m2mguard_outbox_delivered_total").await;
    s.restart_authority().await;
    eventually("the queued checkpoint arrives", || async {
        s.counter("m2mguard_outbox_entries").await == 0
            && s.counter("m2mguard_outbox_delivered_total").await > before
    })
    .await;
    eventually(
        "a checkpoint over the 12 requests made while it was down",
        || async { held(&s).await.last().is_some_and(|c| *c > newest + 12) },
    )
    .await;
    s.stop_gateway().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_checkpoint_queued_before_a_sigkill_arrives_after_the_restart() {
    let logs = tempfile::tempdir().unwrap();
    let log = logs.path().join("audit");
    let mut s = anchored(&log).await;
    s.authority.take().unwrap().shutdown().await;
    let config = config_file(&s, &audit_table(&log));
    let http = common::client();
    let queued = |gw: &Process| {
        let uri = format!("http://{}/metrics", gw.admin);
        let http = http.clone();
        async move {
            let request = http::Request::get(uri).body(Default::default()).unwrap();
            let text = String::from_utf8(common::send(&http, request).await.body.to_vec()).unwrap();
            text.lines()
                .any(|l| l.starts_with("m2mguard_outbox_entries ") && !l.ends_with(" 0"))
        }
    };
    let gw = Process::start(&config, logs.path().join("gw-1.log"), "info").await;
    let long = Duration::from_secs(20);
    let often = Duration::from_millis(20);
    until("a checkpoint is queued", long, often, || queued(&gw)).await;
    gw.kill().await;

    // What the dead gateway left: its outbox holds the checkpoint.
    let outbox = Outbox::open(s.data.path(), OutboxMetrics::default()).unwrap();
    let (_, entry) = outbox.first().unwrap().expect("the checkpoint survived");
    assert_eq!(entry.kind, "audit.checkpoint");
    let count: u64 = entry.id.parse().unwrap();
    drop(outbox);

    // Started again with no checkpoint due for an hour: only the one from before can arrive.
    s.restart_authority().await;
    let config = config_file(&s, &audit_every(&log, 100_000, 3600));
    let gw = Process::start(&config, logs.path().join("gw-2.log"), "info").await;
    eventually("the checkpoint from before the kill arrives", || async {
        held(&s).await.contains(&count)
    })
    .await;
    assert_eq!(held(&s).await, [count], "held once");
    gw.kill().await;
    let (code, out) = verify(&config, true);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("1 matched"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_authority_refuses_checkpoints_that_are_not_the_gateways_own() {
    let logs = tempfile::tempdir().unwrap();
    let s = anchored(&logs.path().join("audit")).await;
    let checkpoint = |log: &str, count: u64, head: &str| Checkpoint {
        log: log.to_owned(),
        count,
        head: head.to_owned(),
        at: "2026-12-02T13:00:00.000Z".to_owned(),
    };
    let head = "ab".repeat(32);
    let post = |body: String| async { s.kit.post("/v1/audit/checkpoints", body).await };
    let error = common::authority::error_of;

    let garbage = post("not a checkpoint".into()).await;
    assert_eq!(garbage.status, 400, "{}", error(&garbage));
    let other_key = SigningKey::from_seed(&[9u8; 32]);
    let wrong_signer = post(checkpoint("gw-a", 7, &head).sign(&other_key)).await;
    assert_eq!(wrong_signer.status, 400);
    assert!(
        error(&wrong_signer).contains("does not verify"),
        "{}",
        error(&wrong_signer)
    );
    let wrong_log = post(checkpoint("gw-b", 7, &head).sign(&s.kit.sign)).await;
    assert_eq!(wrong_log.status, 400);
    assert!(
        error(&wrong_log).contains("not gateway \"gw-a\""),
        "{}",
        error(&wrong_log)
    );
    let operator = s
        .setup
        .operator()
        .send(
            Method::POST,
            "/v1/audit/checkpoints",
            checkpoint("gw-a", 7, &head).sign(&s.kit.sign).into(),
        )
        .await
        .unwrap();
    assert_eq!(operator.status, 403);
    let anonymous = s
        .setup
        .anonymous(None)
        .send(Method::GET, "/v1/audit/checkpoints", Default::default())
        .await
        .unwrap();
    assert_eq!(anonymous.status, 401);
    assert!(held(&s).await.is_empty(), "nothing refused was stored");

    // The gateway's own: stored once; the same again is a duplicate; another over the same
    // count is a conflict.
    let own = checkpoint("gw-a", 7, &head).sign(&s.kit.sign);
    assert_eq!(post(own.clone()).await.status, 201);
    assert_eq!(post(own).await.status, 200);
    let other = post(checkpoint("gw-a", 7, &"cd".repeat(32)).sign(&s.kit.sign)).await;
    assert_eq!(other.status, 409);
    assert!(error(&other).contains("rewritten"), "{}", error(&other));
    assert_eq!(held(&s).await, [7]);
    let unknown = s
        .setup
        .operator()
        .send(
            Method::GET,
            "/v1/gateways/gw-x/checkpoints",
            Default::default(),
        )
        .await
        .unwrap();
    assert_eq!(unknown.status, 404);
}

/// Puts the log back as `original` holds it.
fn restore(original: &Path, log: &Path) {
    for seg in segments(log) {
        std::fs::remove_file(seg).unwrap();
    }
    copy(original, log);
}

/// Changes the first request line, recomputes every `prev` after it and re-signs every
/// checkpoint with `key` (the gateway's own), and rewrites the anchor to match: what someone
/// with root and the key can do.
fn resign_from_first_request(dir: &Path, key: &SigningKey, log: &str) {
    let anchor_seq = read_seq(&std::fs::read_to_string(dir.join(ANCHOR)).unwrap());
    let mut prev: Option<String> = None;
    let mut changed = false;
    let mut anchor = None;
    for seg in segments(dir) {
        let mut out = Vec::new();
        for text in read_lines(&seg) {
            let mut v: Value = serde_json::from_str(&text).unwrap();
            if !changed && v["kind"] == "request" {
                v["fr"] = "Cinnocent".into();
                changed = true;
            }
            if let Some(p) = &prev {
                v["prev"] = p.clone().into();
            }
            if v["kind"] == "checkpoint" {
                let c = Checkpoint {
                    log: log.to_owned(),
                    count: v["seq"].as_u64().unwrap() - 1,
                    head: v["prev"].as_str().unwrap().to_owned(),
                    at: v["at"].as_str().unwrap().to_owned(),
                };
                v["jws"] = c.sign(key).into();
            }
            let text = serde_json::to_string(&v).unwrap();
            if v["seq"].as_u64() == Some(anchor_seq) {
                anchor = Some(text.clone());
            }
            prev = Some(line::hash(text.as_bytes()));
            out.push(text);
        }
        write_lines(&seg, &out);
    }
    assert!(changed, "the log has a request line");
    std::fs::write(dir.join(ANCHOR), anchor.unwrap() + "\n").unwrap();
}

/// Cuts the log after its first checkpoint line (removing later segments) and makes that
/// checkpoint the anchor.
fn cut_after_first_checkpoint(dir: &Path) {
    let mut cut = false;
    for seg in segments(dir) {
        if cut {
            std::fs::remove_file(seg).unwrap();
            continue;
        }
        let mut kept = Vec::new();
        for text in read_lines(&seg) {
            let checkpoint = text.contains("\"kind\":\"checkpoint\"");
            kept.push(text);
            if checkpoint {
                std::fs::write(dir.join(ANCHOR), kept.last().unwrap().clone() + "\n").unwrap();
                cut = true;
                break;
            }
        }
        write_lines(&seg, &kept);
    }
    assert!(cut, "the log has a checkpoint");
}

fn read_seq(text: &str) -> u64 {
    serde_json::from_str::<Value>(text.trim_end()).unwrap()["seq"]
        .as_u64()
        .unwrap()
}
