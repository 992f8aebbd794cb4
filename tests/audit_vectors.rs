//! The audit-log test vectors (tests/vectors/audit/, docs/audit.md "Test vectors"): a real log
//! written by a real gateway, and tampered copies of it described as edits of its files. Both
//! verifiers — `m2mguard::audit::verify` here, scripts/audit_verify.py in CI — must give each
//! case exactly its expected outcome: ok or not, and the places of the problems.
//!
//! `M2MGUARD_WRITE_VECTORS=1 cargo test --test audit_vectors` writes them anew (a new log, so
//! new bytes); otherwise the committed ones are checked.

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use common::audit::{self, Dirs};
use serde_json::{json, Value};

const VECTORS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/vectors/audit");
const LOG: &str = "/id-in";

/// 64 KiB segments and the least retention allowed (twice that): the third segment's start
/// removes the first. A queue of 16 under bursts, dropping: a gap.
const CONFIG: &str = "flush_interval_ms = 5\ncheckpoint_records = 50\nsegment_bytes = 65536\n\
                      retain_bytes = 131072\nqueue_records = 16\non_full = \"drop\"";

type Places = BTreeSet<Place>;

#[test]
fn both_verifiers_agree_on_the_vectors() {
    if std::env::var_os("M2MGUARD_WRITE_VECTORS").is_some() {
        tokio::runtime::Runtime::new()
            .unwrap()
            .block_on(write_vectors());
    }
    let expected: Value =
        serde_json::from_str(&std::fs::read_to_string(vectors().join("expected.json")).unwrap())
            .unwrap();
    known_answers(&expected["known_answers"]);
    let key = public_key(&expected);
    let work = tempfile::tempdir().unwrap();
    let cases = expected["cases"].as_array().unwrap();
    assert!(cases.len() >= 10);
    for case in cases {
        let name = case["name"].as_str().unwrap();
        let dir = materialise(
            &vectors().join("log"),
            &work.path().join(name),
            &case["edits"],
        );
        let report = m2mguard::audit::verify::verify(&dir, &key, Some(LOG), &[]).unwrap();
        assert_eq!(
            report.ok(),
            case["ok"] == true,
            "{name}: {:?}",
            report.problems
        );
        assert_eq!(
            places(&report),
            expected_places(&case["problems"]),
            "{name}: {:?}",
            report.problems
        );
    }
}

fn vectors() -> PathBuf {
    PathBuf::from(VECTORS)
}

fn public_key(expected: &Value) -> m2mguard::feed::VerifyingKey {
    let hex = expected["public_key"].as_str().unwrap();
    m2mguard::feed::VerifyingKey::new(m2mguard::feed::keys::parse_hex32(hex, "public_key").unwrap())
}

/// A line's hash, and a checkpoint's signature and payload, as the vectors state them.
fn known_answers(k: &Value) {
    let line = k["line"]["text"].as_str().unwrap();
    assert_eq!(
        m2mguard::audit::line::hash(line.as_bytes()),
        k["line"]["sha256"]
    );
    let cp = &k["checkpoint"];
    let key = m2mguard::feed::VerifyingKey::new(
        m2mguard::feed::keys::parse_hex32(cp["public_key"].as_str().unwrap(), "key").unwrap(),
    );
    assert_eq!(key.kid(), cp["kid"]);
    let v: Value = serde_json::from_str(cp["line"].as_str().unwrap()).unwrap();
    let signed = m2mguard::audit::Checkpoint::verify(v["jws"].as_str().unwrap(), &key).unwrap();
    assert_eq!(serde_json::to_value(&signed).unwrap(), cp["payload"]);
}

fn places(report: &m2mguard::audit::verify::Report) -> Places {
    report
        .problems
        .iter()
        .map(|p| match &p.place {
            Some(at) => (Some(at.segment.clone()), Some(at.line), at.seq),
            None => (None, None, None),
        })
        .collect()
}

fn expected_places(problems: &Value) -> Places {
    problems
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["segment"].as_str().map(str::to_owned),
                p["line"].as_u64(),
                p["seq"].as_u64(),
            )
        })
        .collect()
}

// --- the edits a case makes to the log (docs/audit.md "Test vectors") -------------------------

/// A copy of the log `base` in `to` with `edits` applied.
fn materialise(base: &Path, to: &Path, edits: &Value) -> PathBuf {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(base).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
    }
    for edit in edits.as_array().unwrap() {
        apply(to, edit);
    }
    to.to_owned()
}

fn apply(dir: &Path, edit: &Value) {
    let path = dir.join(edit["file"].as_str().unwrap());
    let n = edit["line"].as_u64().unwrap_or(1) as usize - 1;
    let text = || edit["text"].as_str().unwrap().to_owned();
    let lines = || audit::read_lines(&path);
    match edit["op"].as_str().unwrap() {
        "remove" => std::fs::remove_file(&path).unwrap(),
        "write" => std::fs::write(&path, text()).unwrap(),
        "append" => {
            let mut bytes = std::fs::read(&path).unwrap();
            bytes.extend_from_slice(text().as_bytes());
            std::fs::write(&path, bytes).unwrap();
        }
        op => {
            let mut l = lines();
            match op {
                "replace_line" => l[n] = text(),
                "delete_line" => drop(l.remove(n)),
                "insert_line" => l.insert(n, text()),
                "swap_lines" => l.swap(n, n + 1),
                "keep_lines" => l.truncate(edit["keep"].as_u64().unwrap() as usize),
                "rechain" => rechain(&mut l[n..]),
                other => panic!("unknown edit {other:?}"),
            }
            audit::write_lines(&path, &l);
        }
    }
}

/// Each line's `prev` after the first set to the hash of the line before it, as someone
/// without the key would recompute the chain: the first `"prev":"` and its 64 digits replaced.
fn rechain(lines: &mut [String]) {
    for i in 1..lines.len() {
        let hash = m2mguard::audit::line::hash(lines[i - 1].as_bytes());
        let at = lines[i].find("\"prev\":\"").unwrap() + 8;
        lines[i].replace_range(at..at + 64, &hash);
    }
}

// --- writing the vectors ------------------------------------------------------------------------

async fn write_vectors() {
    let dirs = written_log().await;
    let out = vectors();
    let _ = std::fs::remove_dir_all(&out);
    std::fs::create_dir_all(out.join("log")).unwrap();
    for (_, path) in m2mguard::audit::list_segments(&dirs.log()).unwrap() {
        std::fs::copy(&path, out.join("log").join(path.file_name().unwrap())).unwrap();
    }
    let anchor = m2mguard::audit::ANCHOR;
    std::fs::copy(dirs.log().join(anchor), out.join("log").join(anchor)).unwrap();
    let public = std::fs::read_to_string(dirs.public_key()).unwrap();
    let public = public.trim();
    std::fs::write(out.join("audit.key.pub"), format!("{public}\n")).unwrap();

    let segs: Vec<String> = m2mguard::audit::list_segments(&out.join("log"))
        .unwrap()
        .into_iter()
        .map(|(_, p)| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    let key = m2mguard::feed::VerifyingKey::new(
        m2mguard::feed::keys::parse_hex32(public, "public").unwrap(),
    );
    let work = tempfile::tempdir().unwrap();
    let mut cases = Vec::new();
    for (name, about, edits, ok, must) in attacks(&out.join("log"), &segs) {
        let dir = materialise(&out.join("log"), &work.path().join(name), &edits);
        let report = m2mguard::audit::verify::verify(&dir, &key, Some(LOG), &[]).unwrap();
        let found = places(&report);
        // What the construction of the case says must be found (or nothing, for an ok case).
        assert_eq!(report.ok(), ok, "{name}: {:?}", report.problems);
        for place in &must {
            assert!(found.contains(place), "{name}: {place:?} not in {found:?}");
        }
        let problems: Vec<Value> = found
            .iter()
            .map(|(segment, line, seq)| json!({"segment": segment, "line": line, "seq": seq}))
            .collect();
        cases.push(json!({
            "name": name, "about": about, "edits": edits, "ok": report.ok(), "problems": problems,
        }));
    }
    let expected = json!({
        "about": "docs/audit.md \"Test vectors\": log/ is a real gateway's log; each case applies its edits to a copy of it and verifies that copy with the public key and log name below",
        "log": LOG,
        "public_key": public,
        "known_answers": known_answers_of(&out.join("log"), &segs, public),
        "cases": cases,
    });
    let mut text = serde_json::to_string_pretty(&expected).unwrap();
    text.push('\n');
    std::fs::write(out.join("expected.json"), text).unwrap();
}

/// A closed log written by a gateway: requests (allowed and denied) until the third segment is
/// started (and retention removes the first), bursts into the tiny queue until one dropped
/// records (a gap; at most 10 tries), then creates with content until the newest segment holds a dozen requests.
async fn written_log() -> Dirs {
    let echo = common::echo_upstream().await;
    let dirs = Dirs::new();
    let gateway = dirs.start(echo.addr, CONFIG).await;
    let client = common::client();
    let addr = gateway.http_addr;
    let mut seen = BTreeSet::new();
    let mut i = 0;
    while seen.len() < 3 && i < 5000 {
        for _ in 0..20 {
            let fr = if i % 3 == 0 { "Cstranger" } else { "CAdmin" };
            audit::get(&client, addr, fr, &format!("r{i}")).await;
            i += 1;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        seen.extend(
            m2mguard::audit::list_segments(&dirs.log())
                .unwrap()
                .into_iter()
                .map(|(f, _)| f),
        );
    }
    for burst in 0..10 {
        let tasks: Vec<_> = (0..128)
            .map(|j| {
                let client = client.clone();
                tokio::spawn(async move {
                    audit::get(&client, addr, "CAdmin", &format!("b{burst}-{j}")).await
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
        audit::get(&client, addr, "CAdmin", "after-burst").await;
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        if audit::lines(&dirs.log()).iter().any(|l| l["kind"] == "gap") {
            break;
        }
    }
    // Creates with content until the newest segment holds a dozen requests (kept small).
    for _ in 0..300 {
        audit::create(
            &client,
            addr,
            "CAdmin",
            &format!("c{i}"),
            r#"{"m2m:cin":{"con":"21"}}"#,
        )
        .await;
        i += 1;
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        let (_, newest) = m2mguard::audit::list_segments(&dirs.log())
            .unwrap()
            .pop()
            .unwrap();
        let text = std::fs::read_to_string(newest).unwrap();
        if text.matches("\"kind\":\"request\"").count() >= 12 {
            break;
        }
    }
    gateway.shutdown().await;
    let lines = audit::lines(&dirs.log());
    assert!(lines.iter().any(|l| l["event"] == "audit.retention"));
    assert!(
        lines.iter().any(|l| l["kind"] == "gap"),
        "no gap kept: write them again"
    );
    assert_eq!(
        m2mguard::audit::list_segments(&dirs.log()).unwrap().len(),
        2
    );
    dirs
}

type Place = (Option<String>, Option<u64>, Option<u64>);
type Case = (&'static str, &'static str, Value, bool, Vec<Place>);

/// The cases: each a name, what it shows, its edits, whether it verifies, and the places its
/// construction says must be among the problems.
fn attacks(log: &Path, segs: &[String]) -> Vec<Case> {
    let (old, new) = (&segs[0], &segs[segs.len() - 1]);
    let old_lines = audit::read_lines(&log.join(old));
    let new_lines = audit::read_lines(&log.join(new));
    let seq = |l: &str| {
        serde_json::from_str::<Value>(l).unwrap()["seq"]
            .as_u64()
            .unwrap()
    };
    let at = |s: &str, line: usize, l: &[String]| {
        (
            Some(s.to_owned()),
            Some(line as u64),
            Some(seq(&l[line - 1])),
        )
    };
    let request = |from: usize| {
        from + old_lines[from..]
            .iter()
            .position(|l| l.contains("\"kind\":\"request\""))
            .unwrap()
    };
    let k = request(10); // index of a request line in the older segment
    let cp = old_lines
        .iter()
        .position(|l| l.contains("\"kind\":\"checkpoint\""))
        .unwrap();
    let n = new_lines.len();
    let r = new_lines
        .iter()
        .position(|l| l.contains("\"kind\":\"request\""))
        .unwrap();
    let first_anchor = format!("{}\n", old_lines[cp]);
    vec![
        ("untouched", "the log as the gateway left it (with a gap and a retention line: notes, not problems)", json!([]), vec![]),
        ("one_byte", "one byte of a request changed: the next line's prev no longer matches", json!([
            {"op": "replace_line", "file": old, "line": k + 1, "text": old_lines[k].replacen("\"fr\":\"C", "\"fr\":\"D", 1)}
        ]), vec![at(old, k + 2, &old_lines)]),
        ("not_json", "a request cut to its first 40 bytes: not a line, and the next line's prev", json!([
            {"op": "replace_line", "file": old, "line": k + 21, "text": old_lines[k + 20][..40]}
        ]), vec![(Some(old.clone()), Some(k as u64 + 21), None), at(old, k + 22, &old_lines)]),
        ("delete", "a request deleted: the next line's seq and prev", json!([
            {"op": "delete_line", "file": old, "line": k + 1}
        ]), vec![at(old, k + 1, &old_lines[1..])]),
        ("insert", "a copy of a line inserted after it", json!([
            {"op": "insert_line", "file": old, "line": k + 2, "text": old_lines[k]}
        ]), vec![(Some(old.clone()), Some(k as u64 + 2), Some(seq(&old_lines[k])))]),
        ("swap", "two adjacent requests swapped", json!([
            {"op": "swap_lines", "file": old, "line": k + 1}
        ]), vec![(Some(old.clone()), Some(k as u64 + 1), Some(seq(&old_lines[k + 1])))]),
        ("truncate", "the last 5 lines cut off at a line boundary, the final checkpoint with them: the anchor is not reached", json!([
            {"op": "keep_lines", "file": new, "keep": n - 5}
        ]), vec![]),
        ("replace_segment", "the newest segment rewritten from its first request on (its fr changed, every later prev recomputed) by someone without the key", json!([
            {"op": "replace_line", "file": new, "line": r + 1, "text": new_lines[r].replacen("\"fr\":\"C", "\"fr\":\"X", 1)},
            {"op": "rechain", "file": new, "line": r + 1}
        ]), vec![]),
        ("forge_checkpoint", "a checkpoint re-signed by another key over the same payload", json!([
            {"op": "replace_line", "file": old, "line": cp + 1, "text": forged(&old_lines[cp])}
        ]), vec![at(old, cp + 1, &old_lines)]),
        ("oldest_removed", "the oldest segment removed, not by retention", json!([
            {"op": "remove", "file": old}
        ]), vec![]),
        ("anchor_removed", "anchor.json removed while the log has checkpoints", json!([
            {"op": "remove", "file": m2mguard::audit::ANCHOR}
        ]), vec![(None, None, None)]),
        ("torn_tail", "a torn last line, as a crash mid-write leaves it: a note, not a problem", json!([
            {"op": "append", "file": new, "text": "{\"seq\":99999,\"prev\":\"ab"}
        ]), vec![]),
        ("older_anchor", "anchor.json replaced by an older checkpoint of the same log: not found locally (docs/audit.md, What it cannot find)", json!([
            {"op": "write", "file": m2mguard::audit::ANCHOR, "text": first_anchor}
        ]), vec![]),
    ]
    .into_iter()
    .map(|(name, about, edits, must)| {
        let ok = matches!(name, "untouched" | "torn_tail" | "older_anchor");
        (name, about, edits, ok, must)
    })
    .collect()
}

fn forged(line: &str) -> String {
    audit::forged(line)
}

/// A line and its hash; a checkpoint, the key that signed it, and what it signs.
fn known_answers_of(log: &Path, segs: &[String], public: &str) -> Value {
    let lines = audit::read_lines(&log.join(&segs[0]));
    let next: Value = serde_json::from_str(&lines[1]).unwrap();
    let cp = lines
        .iter()
        .find(|l| l.contains("\"kind\":\"checkpoint\""))
        .unwrap();
    let v: Value = serde_json::from_str(cp).unwrap();
    let payload = v["jws"].as_str().unwrap().split('.').nth(1).unwrap();
    use base64::Engine as _;
    let payload = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .unwrap();
    let raw = m2mguard::feed::keys::parse_hex32(public, "public").unwrap();
    json!({
        "line": {"text": lines[0], "sha256": next["prev"]},
        "checkpoint": {
            "line": cp,
            "public_key": public,
            "kid": m2mguard::feed::keys::kid(&raw),
            "payload": serde_json::from_slice::<Value>(&payload).unwrap(),
        },
    })
}
