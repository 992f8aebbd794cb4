//! Tampering with a real log: a gateway writes a log of several segments and checkpoints;
//! each attack is made on a copy of it, and `m2mguard audit verify` must find it (exit 2) and
//! name where. The untouched log, and one a crash left with a torn last line, verify.

mod common;

use std::path::{Path, PathBuf};

use common::audit::{self, copy, read_lines, segments, write_lines, Dirs};
use serde_json::Value;

/// Segments of 64 KiB (the least allowed): 400 requests fill several.
const SMALL: &str = "flush_interval_ms = 5\ncheckpoint_records = 50\nsegment_bytes = 65536";

/// A closed log of several segments, written by a real gateway.
async fn written_log() -> Dirs {
    let echo = common::echo_upstream().await;
    let dirs = Dirs::new();
    let gateway = dirs.start(echo.addr, SMALL).await;
    let client = common::client();
    for i in 0..400 {
        let fr = if i % 3 == 0 { "Cstranger" } else { "CAdmin" };
        audit::get(&client, gateway.http_addr, fr, &format!("r{i}")).await;
    }
    gateway.shutdown().await;
    assert!(m2mguard::audit::list_segments(&dirs.log()).unwrap().len() >= 3);
    dirs
}

fn seq_of(line: &str) -> u64 {
    serde_json::from_str::<Value>(line).unwrap()["seq"]
        .as_u64()
        .unwrap()
}

fn name(path: &Path) -> String {
    path.file_name().unwrap().to_string_lossy().into_owned()
}

/// Verifies `dir`: it must fail (exit 2) and the report must contain each of `expected`.
fn found(dirs: &Dirs, dir: &Path, attack: &str, expected: &[String]) {
    let (code, report) = audit::verify(dir, &dirs.public_key());
    assert_eq!(code, 2, "{attack}: not found:\n{report}");
    for e in expected {
        assert!(
            report.contains(e.as_str()),
            "{attack}: expected {e:?} in:\n{report}"
        );
    }
}

#[tokio::test]
async fn every_kind_of_tampering_is_found_and_placed() {
    let dirs = written_log().await;
    let work = tempfile::tempdir().unwrap();
    let attack = |n: &str| copy(&dirs.log(), &work.path().join(n));

    // One byte changed in the middle of the second segment: the next line no longer follows.
    let dir = attack("byte");
    let seg = &segments(&dir)[1];
    let mut lines = read_lines(seg);
    let seq = seq_of(&lines[10]);
    lines[10] = lines[10].replacen("\"fr\":\"C", "\"fr\":\"D", 1);
    write_lines(seg, &lines);
    found(
        &dirs,
        &dir,
        "one byte",
        &[format!("{} line 12 (seq {})", name(seg), seq + 1)],
    );

    // A record deleted.
    let dir = attack("delete");
    let seg = &segments(&dir)[1];
    let mut lines = read_lines(seg);
    let seq = seq_of(&lines[20]);
    lines.remove(20);
    write_lines(seg, &lines);
    found(
        &dirs,
        &dir,
        "delete",
        &[format!("lines {seq}..{seq} are missing")],
    );

    // A record inserted (a copy of its neighbour).
    let dir = attack("insert");
    let seg = &segments(&dir)[1];
    let mut lines = read_lines(seg);
    let copied = lines[5].clone();
    lines.insert(6, copied);
    write_lines(seg, &lines);
    found(
        &dirs,
        &dir,
        "insert",
        &[
            "a line was inserted".into(),
            format!("{} line 7", name(seg)),
        ],
    );

    // Two records swapped.
    let dir = attack("swap");
    let seg = &segments(&dir)[1];
    let mut lines = read_lines(seg);
    lines.swap(30, 31);
    write_lines(seg, &lines);
    found(
        &dirs,
        &dir,
        "swap",
        &[
            format!("{} line 31", name(seg)),
            format!("{} line 32", name(seg)),
        ],
    );

    // The tail cut off at a line boundary, the final checkpoint with it.
    let dir = attack("truncate");
    let last = segments(&dir).pop().unwrap();
    let mut lines = read_lines(&last);
    lines.truncate(lines.len() - 5);
    let end = seq_of(lines.last().unwrap());
    write_lines(&last, &lines);
    found(
        &dirs,
        &dir,
        "truncate",
        &[format!(
            "truncated: anchor.json holds the checkpoint at seq {}, the log ends at seq {end}",
            end + 5
        )],
    );

    // A whole segment rewritten, and the chain recomputed from there to the end by someone
    // without the key: the checkpoints no longer sign it.
    let dir = attack("replace");
    rewrite_from(&segments(&dir)[1..]);
    found(
        &dirs,
        &dir,
        "replace",
        &[
            "checkpoint does not verify".into(),
            "differs from the anchor".into(),
        ],
    );

    // A checkpoint re-signed with another key.
    let dir = attack("forge");
    let seg = &segments(&dir)[1];
    let mut lines = read_lines(seg);
    let at = lines
        .iter()
        .position(|l| l.contains("\"kind\":\"checkpoint\""))
        .unwrap();
    lines[at] = forged(&lines[at]);
    write_lines(seg, &lines);
    found(
        &dirs,
        &dir,
        "forge",
        &[
            format!("{} line {}", name(seg), at + 1),
            "signed by unknown key".into(),
        ],
    );

    // The oldest segment removed (not by retention).
    let dir = attack("oldest");
    let first = segments(&dir).remove(0);
    std::fs::remove_file(&first).unwrap();
    found(
        &dirs,
        &dir,
        "oldest segment",
        &["no audit.retention line removed lines 1..".into()],
    );

    // The legitimate case: the untouched log verifies, and so does one whose last line a
    // crash tore (and that the writer would cut on open).
    let (code, report) = audit::verify(&dirs.log(), &dirs.public_key());
    assert_eq!(code, 0, "untouched:\n{report}");
    let dir = attack("torn");
    let last = segments(&dir).pop().unwrap();
    let mut text = std::fs::read(&last).unwrap();
    text.extend_from_slice(br#"{"seq":99999,"prev":"ab"#);
    std::fs::write(&last, text).unwrap();
    let (code, report) = audit::verify(&dir, &dirs.public_key());
    assert_eq!(code, 0, "torn tail:\n{report}");
    assert!(report.contains("torn last line"), "{report}");
}

/// Changes the first request line of `segments[0]` and recomputes every line's `prev` from
/// there to the end, as an attacker without the checkpoint key would.
fn rewrite_from(segments: &[PathBuf]) {
    let mut prev: Option<String> = None;
    let mut changed = false;
    for seg in segments {
        let mut out = Vec::new();
        for line in read_lines(seg) {
            let mut v: Value = serde_json::from_str(&line).unwrap();
            if !changed && v["kind"] == "request" {
                v["verdict"] = "allowed".into();
                v["fr"] = "Cinnocent".into();
                changed = true;
            }
            if let Some(p) = &prev {
                v["prev"] = p.clone().into();
            }
            let text = serde_json::to_string(&v).unwrap();
            prev = Some(m2mguard::audit::line::hash(text.as_bytes()));
            out.push(text);
        }
        write_lines(seg, &out);
    }
}

/// The checkpoint line `line` with its JWS re-made under another key, same payload.
fn forged(line: &str) -> String {
    let mut v: Value = serde_json::from_str(line).unwrap();
    let jws = v["jws"].as_str().unwrap();
    let payload = jws.split('.').nth(1).unwrap();
    use base64::Engine as _;
    let payload = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .unwrap();
    let other = m2mguard::feed::SigningKey::from_seed(&[9u8; 32]);
    v["jws"] = m2mguard::feed::jws::sign(&other, m2mguard::audit::CHECKPOINT_TYP, &payload).into();
    serde_json::to_string(&v).unwrap()
}
