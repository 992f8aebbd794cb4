//! Verifying a log (`m2mguard audit verify`, docs/audit.md): the chain from the first line to
//! the last, every checkpoint's signature, the anchor, retention, and (optionally) the
//! checkpoints the authority holds. Every finding names its segment, line and `seq`.
//!
//! What it finds: a changed byte (the line no longer parses, or the next line's `prev` no
//! longer matches, or a checkpoint no longer verifies), a removed, inserted or reordered line
//! (`seq` out of order, `prev` mismatched), a removed or replaced segment (the same, at the
//! segment's edges), a truncated tail (the anchor, or a checkpoint the authority holds, lies
//! beyond the end), and lines removed at the start other than by retention. What the chain
//! alone cannot show: lines after the newest checkpoint changed by someone who recomputes the
//! chain — the report says how many lines that is.

use std::collections::HashMap;
use std::io;
use std::path::Path;

use serde_json::Value;

use super::checkpoint::Checkpoint;
use super::line::{self, GENESIS};
use super::segments::{self, ANCHOR};
use crate::feed::VerifyingKey;

/// Where a finding is: the segment's file name, the line's number in it (from 1), its `seq`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Place {
    pub segment: String,
    pub line: u64,
    pub seq: Option<u64>,
}

impl std::fmt::Display for Place {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} line {}", self.segment, self.line)?;
        if let Some(seq) = self.seq {
            write!(f, " (seq {seq})")?;
        }
        Ok(())
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    pub place: Option<Place>,
    pub what: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.place {
            Some(place) => write!(f, "{place}: {}", self.what),
            None => f.write_str(&self.what),
        }
    }
}

/// What verification found.
#[derive(Debug, Default)]
pub struct Report {
    pub lines: u64,
    pub first_seq: Option<u64>,
    pub last_seq: Option<u64>,
    pub checkpoints: u64,
    /// The `seq` of the newest checkpoint that verified: every line before it is pinned.
    pub pinned_through: Option<u64>,
    /// Records lost before they reached the log (gap lines): their sum.
    pub lost: u64,
    pub gaps: u64,
    /// The log ends with `audit.close` and a checkpoint.
    pub closed: bool,
    /// A torn last line (a crash mid-write), in bytes.
    pub torn_bytes: u64,
    /// Checkpoints from elsewhere (the authority) that were matched.
    pub matched: u64,
    pub problems: Vec<Problem>,
}

impl Report {
    pub fn ok(&self) -> bool {
        self.problems.is_empty()
    }
}

/// Verifies the log in `dir` under `key`; `log` is the name checkpoints must carry, `held`
/// checkpoints kept elsewhere (each must match the line before its `count + 1`).
pub fn verify(
    dir: &Path,
    key: &VerifyingKey,
    log: Option<&str>,
    held: &[Checkpoint],
) -> io::Result<Report> {
    let mut v = Verifier {
        key,
        log,
        held: held.iter().map(|c| (c.count, c.head.as_str())).collect(),
        anchor: read_anchor(dir),
        report: Report::default(),
        expected: None,
        prev: None,
        retention: None,
        first_prev: None,
        closing: false,
        anchor_seen: false,
    };
    let all = segments::list(dir)?;
    if all.is_empty() {
        v.problem(None, format!("{} holds no segments", dir.display()));
    }
    let count = all.len();
    for (i, (first, path)) in all.iter().enumerate() {
        v.segment(*first, path, i + 1 == count)?;
    }
    v.finish();
    Ok(v.report)
}

struct Verifier<'a> {
    key: &'a VerifyingKey,
    log: Option<&'a str>,
    held: HashMap<u64, &'a str>,
    /// The anchor's line, as written, and its seq.
    anchor: Result<Option<(u64, Vec<u8>)>, String>,
    report: Report,
    /// The next line's seq and the last line's hash, once known.
    expected: Option<u64>,
    prev: Option<String>,
    /// The newest `audit.retention`: its own seq, removed through, and that line's hash.
    retention: Option<(u64, u64, String)>,
    first_prev: Option<String>,
    closing: bool,
    anchor_seen: bool,
}

impl Verifier<'_> {
    fn problem(&mut self, place: Option<Place>, what: impl Into<String>) {
        self.report.problems.push(Problem {
            place,
            what: what.into(),
        });
    }

    fn segment(&mut self, first: u64, path: &Path, last: bool) -> io::Result<()> {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let mut lines = segments::Lines::open(path)?;
        let mut number = 0;
        while let Some(line) = lines.next()? {
            number += 1;
            let place = Place {
                segment: name.clone(),
                line: number,
                seq: None,
            };
            let text = match line {
                segments::Line::Whole(text) => text,
                segments::Line::Torn(n) => {
                    if last {
                        self.report.torn_bytes = n as u64;
                    } else {
                        self.problem(
                            Some(place),
                            "torn line (no newline) at the end of a segment that is not the newest",
                        );
                    }
                    break;
                }
            };
            if number == 1 && self.expected.is_some_and(|e| e != first) {
                let e = self.expected.unwrap_or_default();
                self.problem(Some(place.clone()), segment_edge(first, e));
            }
            self.line(text, place, number == 1 && self.report.lines == 0, first);
        }
        if number == 0 {
            let place = Place {
                segment: name,
                line: 0,
                seq: None,
            };
            self.problem(Some(place), "empty segment");
        }
        Ok(())
    }

    fn line(&mut self, text: &[u8], mut place: Place, very_first: bool, segment_first: u64) {
        let value: Option<Value> = serde_json::from_slice(text).ok();
        let head = value.as_ref().and_then(|v| {
            Some((
                v.get("seq")?.as_u64()?,
                v.get("prev")?.as_str()?.to_owned(),
                v.get("at")?.as_str()?.to_owned(),
                v.get("kind")?.as_str()?.to_owned(),
            ))
        });
        let hash = line::hash(text);
        self.report.lines += 1;
        let Some((seq, prev, at, kind)) = head else {
            self.problem(
                Some(place),
                "not an audit line (changed: not JSON with seq, prev, at and kind)",
            );
            self.prev = Some(hash);
            self.expected = self.expected.map(|e| e + 1);
            return;
        };
        place.seq = Some(seq);
        if seq == 0 || seq == u64::MAX {
            self.problem(
                Some(place),
                format!("seq {seq} is out of range (1 to 2^64 - 2)"),
            );
            self.prev = Some(hash);
            self.expected = self.expected.map(|e| e.saturating_add(1));
            return;
        }
        if very_first {
            self.report.first_seq = Some(seq);
            self.first_prev = Some(prev.clone());
            if seq != segment_first {
                self.problem(
                    Some(place.clone()),
                    format!("the segment's name says it starts at seq {segment_first}"),
                );
            }
            if seq == 1 && prev != GENESIS {
                self.problem(Some(place.clone()), "the first line's prev is not 64 zeros");
            }
        }
        if let Some(expected) = self.expected {
            if seq != expected {
                self.problem(Some(place.clone()), out_of_order(seq, expected));
            }
        }
        if let Some(before) = &self.prev {
            if &prev != before {
                self.problem(Some(place.clone()), "prev does not match the hash of the line before: that line was changed, or lines were removed, inserted or reordered here");
            }
        }
        if let Some(head) = self.held.remove(&seq) {
            if head == hash {
                self.report.matched += 1;
            } else {
                self.problem(Some(place.clone()), "differs from the line a checkpoint the authority holds was made over: the log was rewritten");
            }
        }
        let value = value.unwrap_or(Value::Null);
        self.kind(&kind, &value, text, seq, &prev, &at, &place);
        self.report.last_seq = Some(seq);
        self.expected = Some(seq.saturating_add(1));
        self.prev = Some(hash);
    }

    #[allow(clippy::too_many_arguments)]
    fn kind(
        &mut self,
        kind: &str,
        v: &Value,
        text: &[u8],
        seq: u64,
        prev: &str,
        at: &str,
        place: &Place,
    ) {
        let event = v.get("event").and_then(Value::as_str);
        let closing = kind == "event" && event == Some("audit.close");
        self.report.closed = self.closing && kind == "checkpoint";
        self.closing = closing;
        match kind {
            "checkpoint" => self.checkpoint(v, text, seq, prev, at, place),
            "gap" => {
                self.report.gaps += 1;
                self.report.lost += v.get("lost").and_then(Value::as_u64).unwrap_or(0);
            }
            "request" | "dropped" => {}
            "event" => match event {
                Some("audit.retention") => {
                    let through = v.get("removed_through").and_then(Value::as_u64);
                    let head = v.get("head").and_then(Value::as_str);
                    if let (Some(through), Some(head)) = (through, head) {
                        self.retention = Some((seq, through, head.to_owned()));
                    }
                }
                Some("audit.open") => {
                    if let Some(missing) = v.get("missing").filter(|m| !m.is_null()) {
                        self.problem(Some(place.clone()), format!("the writer found lines missing when it opened the log (removed while no gateway ran): {missing}"));
                    }
                }
                Some(_) => {}
                None => self.problem(Some(place.clone()), "an event line without an event name"),
            },
            other => self.problem(Some(place.clone()), format!("unknown kind {other:?}")),
        }
    }

    fn checkpoint(
        &mut self,
        v: &Value,
        text: &[u8],
        seq: u64,
        prev: &str,
        at: &str,
        place: &Place,
    ) {
        self.report.checkpoints += 1;
        let Some(jws) = v.get("jws").and_then(Value::as_str) else {
            return self.problem(Some(place.clone()), "a checkpoint without jws");
        };
        let checked = Checkpoint::verify(jws, self.key).and_then(|c| {
            if c.count != seq - 1 || c.head != prev || c.at != at {
                Err("its count, head or at do not match its line (moved or edited)".into())
            } else if self.log.is_some_and(|log| log != c.log) {
                Err(format!("it is for log {:?}", c.log))
            } else {
                Ok(())
            }
        });
        match checked {
            Ok(()) => self.report.pinned_through = Some(seq),
            Err(e) => self.problem(
                Some(place.clone()),
                format!("checkpoint does not verify: {e}"),
            ),
        }
        if let Ok(Some((anchor_seq, anchor))) = &self.anchor {
            if *anchor_seq == seq {
                self.anchor_seen = true;
                if anchor.as_slice() != text {
                    self.problem(Some(place.clone()), format!("differs from the anchor ({ANCHOR}), which holds this checkpoint as written"));
                }
            }
        }
    }

    fn finish(&mut self) {
        let first = self.report.first_seq.unwrap_or(1);
        if first > 1 {
            let pinned = self.report.pinned_through.unwrap_or(0);
            match &self.retention {
                Some((at, _, _)) if *at >= pinned => self.problem(None, format!("the log starts at seq {first}; the audit.retention line at seq {at} that would account for lines 1..{} is not covered by a verified checkpoint (anyone could have written it): they are missing", first - 1)),
                Some((_, through, head)) if *through + 1 == first && Some(head) == self.first_prev.as_ref() => {}
                Some((_, through, _)) => self.problem(None, format!("the log starts at seq {first}, but retention removed only through seq {through}: lines {}..{} are missing", through + 1, first - 1)),
                None => self.problem(None, format!("the log starts at seq {first} and no audit.retention line removed lines 1..{}: they are missing", first - 1)),
            }
        }
        let last = self.report.last_seq.unwrap_or(0);
        match std::mem::replace(&mut self.anchor, Ok(None)) {
            Err(e) => self.problem(None, format!("{ANCHOR}: {e}")),
            Ok(None) if self.report.checkpoints > 0 => self.problem(None, format!("{ANCHOR} is missing")),
            Ok(None) => {}
            Ok(Some((seq, _))) if seq > last => self.problem(None, format!("truncated: {ANCHOR} holds the checkpoint at seq {seq}, the log ends at seq {last}")),
            Ok(Some((seq, _))) if !self.anchor_seen && seq >= first => self.problem(None, format!("{ANCHOR} holds a checkpoint at seq {seq} that the log does not hold there")),
            Ok(Some(_)) => {}
        }
        let mut unmatched: Vec<u64> = self.held.keys().copied().filter(|c| *c >= first).collect();
        unmatched.sort_unstable();
        if let Some(count) = unmatched.iter().rev().find(|c| **c > last) {
            self.problem(None, format!("truncated: the authority holds a checkpoint over {count} lines, the log ends at seq {last}"));
        }
        for count in unmatched.iter().filter(|c| **c <= last) {
            self.problem(None, format!("the authority holds a checkpoint over {count} lines, and the log has no line {count} to match it"));
        }
    }
}

fn read_anchor(dir: &Path) -> Result<Option<(u64, Vec<u8>)>, String> {
    let text = match std::fs::read(dir.join(ANCHOR)) {
        Ok(text) => text,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e.to_string()),
    };
    let line = text.strip_suffix(b"\n").unwrap_or(&text).to_vec();
    let seq = serde_json::from_slice::<Value>(&line)
        .ok()
        .and_then(|v| v.get("seq")?.as_u64())
        .ok_or("not a checkpoint line")?;
    Ok(Some((seq, line)))
}

fn segment_edge(first: u64, expected: u64) -> String {
    if first > expected {
        format!("segment starts at seq {first}, the one before ended at seq {}: lines {expected}..{} are missing", expected - 1, first - 1)
    } else {
        format!(
            "segment starts at seq {first}, but the one before already reached seq {}",
            expected - 1
        )
    }
}

fn out_of_order(seq: u64, expected: u64) -> String {
    if seq > expected {
        format!(
            "seq {seq} where {expected} was expected: lines {expected}..{} are missing",
            seq - 1
        )
    } else {
        format!("seq {seq} where {expected} was expected: a line was inserted or lines reordered")
    }
}
