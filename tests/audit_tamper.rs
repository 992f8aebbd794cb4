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
    let mut lines = audit::read_lines(seg);
    let seq = seq_of(&lines[10]);
    lines[10] = lines[10].replacen("\"fr\":\"C", "\"fr\":\"D", 1);
    audit::write_lines(seg, &lines);
    found(
        &dirs,
        &dir,
        "one byte",
        &[format!("{} line 12 (seq {})", name(seg), seq + 1)],
    );

    // A record deleted.
    let dir = attack("delete");
    let seg = &segments(&dir)[1];
    let mut lines = audit::read_lines(seg);
    let seq = seq_of(&lines[20]);
    lines.remove(20);
    audit::write_lines(seg, &lines);
    found(
        &dirs,
        &dir,
        "delete",
        &[format!("lines {seq}..{seq} are missing")],
    );

    // A record inserted (a copy of its neighbour).
    let dir = attack("insert");
    let seg = &segments(&dir)[1];
    let mut lines = audit::read_lines(seg);
    let copied = lines[5].clone();
    lines.insert(6, copied);
    audit::write_lines(seg, &lines);
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
    let mut lines = audit::read_lines(seg);
    lines.swap(30, 31);
    audit::write_lines(seg, &lines);
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
    let mut lines = audit::read_lines(&last);
    lines.truncate(lines.len() - 5);
    let end = seq_of(lines.last().unwrap());
    audit::write_lines(&last, &lines);
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
    let mut lines = audit::read_lines(seg);
    let at = lines
        .iter()
        .position(|l| l.contains("\"kind\":\"checkpoint\""))
        .unwrap();
    lines[at] = audit::forged(&lines[at]);
    audit::write_lines(seg, &lines);
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

    ci_copies(&dirs, &work.path().join("byte"));

    // The oldest segment removed, and a retention line appended to account for it (chained,
    // but under no checkpoint): only a signed retention line counts.
    let dir = attack("retention");
    let all = segments(&dir);
    std::fs::remove_file(&all[0]).unwrap();
    let last = all.last().unwrap();
    let mut lines = read_lines(last);
    let tail: Value = serde_json::from_str(lines.last().unwrap()).unwrap();
    let first_kept: Value = serde_json::from_str(&read_lines(&all[1])[0]).unwrap();
    let forged = serde_json::json!({
        "seq": tail["seq"].as_u64().unwrap() + 1,
        "prev": m2mguard::audit::line::hash(lines.last().unwrap().as_bytes()),
        "at": tail["at"], "kind": "event", "event": "audit.retention",
        "removed_through": first_kept["seq"].as_u64().unwrap() - 1,
        "head": first_kept["prev"],
    });
    lines.push(forged.to_string());
    write_lines(last, &lines);
    found(
        &dirs,
        &dir,
        "forged retention",
        &["is not covered by a verified checkpoint".into()],
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

/// Rewrites `segments` (the chain recomputed from the first request of the first to the end).
fn rewrite_from(segments: &[PathBuf]) {
    let lines: Vec<Vec<String>> = segments.iter().map(|s| audit::read_lines(s)).collect();
    for (seg, lines) in segments.iter().zip(audit::rewritten(&lines)) {
        audit::write_lines(seg, &lines);
    }
}

/// For CI's run of scripts/audit_verify.py (.ci/run): the good log, a tampered copy (`byte`)
/// and the public key, in `$CARGO_TARGET_TMPDIR/audit-ci/` (replaced on each run).
fn ci_copies(dirs: &Dirs, tampered: &Path) {
    let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join("audit-ci");
    let _ = std::fs::remove_dir_all(&out);
    copy(&dirs.log(), &out.join("good"));
    copy(tampered, &out.join("tampered"));
    for lock in ["good/lock", "tampered/lock"] {
        let _ = std::fs::remove_file(out.join(lock));
    }
    std::fs::copy(dirs.public_key(), out.join("audit.key.pub")).unwrap();
}
