//! One line of the audit log: a JSON object on one line, its members in a fixed order —
//! `seq`, `prev`, `at`, `kind`, then the kind's own (docs/audit.md). A line's hash is SHA-256
//! over its bytes without the newline; each line's `prev` is the hash of the line before
//! (64 zeros for the first line of a log), so the lines form one chain.
//!
//! What a request line says is the record's, minus what must not be kept: content is
//! recorded by digest and size, tokens, keys and check values by id or not at all.

use std::io::Write as _;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::feed::keys::hex;
use crate::record::{Added, Event, Forward, Outcome, Record};

/// The `prev` of a log's first line.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// SHA-256 of a line's bytes (without its newline), as 64 lowercase hex digits.
pub fn hash(line: &[u8]) -> String {
    hex(&Sha256::digest(line))
}

/// `at`: RFC 3339 in UTC with milliseconds, `2026-12-02T13:04:05.678Z`.
pub fn timestamp(at: SystemTime) -> String {
    let ms = at.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis());
    let t = time::OffsetDateTime::from_unix_timestamp_nanos(ms as i128 * 1_000_000)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        ms % 1000
    )
}

/// Appends one line (no newline) to `out`: the head, then `body`'s members.
pub fn encode_into<T: Serialize>(
    out: &mut Vec<u8>,
    seq: u64,
    prev: &str,
    at: &str,
    kind: &'static str,
    body: T,
) {
    // `prev` is hex, `at` a timestamp, `kind` one of ours: none needs escaping.
    // Writing into a vector cannot fail.
    let _ = write!(out, "{{\"seq\":{seq}");
    for (name, value) in [("prev", prev), ("at", at), ("kind", kind)] {
        out.extend_from_slice(b",\"");
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b"\":\"");
        out.extend_from_slice(value.as_bytes());
        out.push(b'"');
    }
    // The body's members follow: its object, with its `{` made a `,` (or dropped if empty).
    let start = out.len();
    // Only strings, numbers, booleans and nulls into a vector: serialising cannot fail.
    serde_json::to_writer(&mut *out, &body).expect("an audit line serialises");
    if out[start..] == *b"{}" {
        out.truncate(start);
        out.push(b'}');
    } else {
        out[start] = b',';
    }
}

/// A request line's own members.
#[derive(Serialize)]
pub struct Request<'a> {
    binding: &'static str,
    source: String,
    identity: Option<&'a str>,
    fr: &'a str,
    op: &'static str,
    to: &'a str,
    ty: Option<u16>,
    rqi: &'a str,
    content: Option<Content>,
    verdict: &'static str,
    stage: Option<&'static str>,
    reason: Option<String>,
    policies: &'a [String],
    would_deny: Option<Why>,
    decided_us: Option<u64>,
    forward: Option<Forwarded>,
    added: Vec<AddedLine<'a>>,
}

#[derive(Serialize)]
struct Content {
    sha256: String,
    bytes: usize,
}

#[derive(Serialize)]
struct Why {
    stage: &'static str,
    reason: String,
}

#[derive(Serialize)]
struct Forwarded {
    result: &'static str,
    after_us: Option<u64>,
    status: Option<u16>,
    rsc: Option<u16>,
    failure: Option<String>,
}

#[derive(Serialize)]
struct AddedLine<'a> {
    check_value: &'a str,
    seq: u64,
}

impl<'a> Request<'a> {
    pub fn of(r: &'a Record) -> Request<'a> {
        let a = &r.about;
        let content = (!a.content.is_empty()).then(|| Content {
            sha256: hex(&Sha256::digest(&a.content)),
            bytes: a.content.len(),
        });
        let (verdict, stage, reason, policies, forward): (_, _, _, &[String], _) = match &r.outcome
        {
            Outcome::Allowed { policies, forward } => {
                ("allowed", None, None, policies, Some(forwarded(forward)))
            }
            Outcome::Failed { policies, failure } => {
                let forward = Forwarded {
                    result: "failed",
                    after_us: None,
                    status: None,
                    rsc: None,
                    failure: Some(failure.to_string()),
                };
                ("failed", None, None, policies, Some(forward))
            }
            Outcome::Denied(d) => (
                "denied",
                Some(d.stage.as_str()),
                Some(d.reason.to_string()),
                &[],
                None,
            ),
            Outcome::Refused(refusal) => ("refused", None, Some(refusal.to_string()), &[], None),
        };
        Request {
            binding: a.protocol.as_str(),
            source: a.peer.to_string(),
            identity: a.identity.as_deref(),
            fr: &a.fr,
            op: a.op,
            to: &a.to,
            ty: a.ty,
            rqi: &a.rqi,
            content,
            verdict,
            stage,
            reason,
            policies,
            would_deny: r.would_deny.as_ref().map(|d| Why {
                stage: d.stage.as_str(),
                reason: d.reason.to_string(),
            }),
            decided_us: r.decided_in.map(|d| d.as_micros() as u64),
            forward,
            added: r
                .added
                .iter()
                .map(|added| match added {
                    Added::CheckValue { kid, seq } => AddedLine {
                        check_value: kid,
                        seq: *seq,
                    },
                })
                .collect(),
        }
    }
}

fn forwarded(forward: &Forward) -> Forwarded {
    let (result, answered) = match forward {
        Forward::Answered(a) => ("answered", Some(a)),
        Forward::Sent => ("sent", None),
        Forward::Nothing => ("nothing", None),
        Forward::Abandoned => ("abandoned", None),
    };
    Forwarded {
        result,
        after_us: answered.map(|a| a.after.as_micros() as u64),
        status: answered.and_then(|a| a.status),
        rsc: answered.and_then(|a| a.rsc),
        failure: None,
    }
}

/// An event line's own members: `event`, the name, then the event's fields.
#[derive(Serialize)]
pub struct EventLine<'a> {
    event: &'static str,
    #[serde(flatten)]
    fields: Fields<'a>,
}

#[derive(Serialize)]
#[serde(untagged)]
enum Fields<'a> {
    Started {
        version: &'static str,
        keys: usize,
    },
    None {},
    Reload {
        ok: bool,
        policies: Option<usize>,
        error: Option<&'a str>,
    },
    NodeStatus {
        node: &'a str,
        status: &'static str,
        by: &'static str,
    },
    Node {
        node: &'a str,
        by: &'static str,
    },
    Token {
        jti: &'a str,
        by: &'static str,
    },
    FeedRecord {
        feed_seq: u64,
        record: &'static str,
        subject: &'a str,
        status: Option<&'static str>,
    },
    FeedSnapshot {
        feed_seq: u64,
        nodes: usize,
        keys: usize,
    },
    Report {
        report: &'a str,
        node: &'a str,
        rule: &'a str,
    },
}

impl<'a> EventLine<'a> {
    pub fn of(event: &'a Event) -> EventLine<'a> {
        let fields = match event {
            Event::Started { version, keys } => Fields::Started {
                version,
                keys: *keys,
            },
            Event::Stopping => Fields::None {},
            Event::PolicyReload(result) => Fields::Reload {
                ok: result.is_ok(),
                policies: result.as_ref().ok().copied(),
                error: result.as_ref().err().map(String::as_str),
            },
            Event::NodeStatus { node, status, by } => Fields::NodeStatus {
                node,
                status,
                by: by.as_str(),
            },
            Event::NodeEnrolled { node, by } | Event::NodeRemoved { node, by } => Fields::Node {
                node,
                by: by.as_str(),
            },
            Event::TokenRevoked { jti, by } => Fields::Token {
                jti,
                by: by.as_str(),
            },
            Event::FeedRecord {
                seq,
                kind,
                subject,
                status,
            } => Fields::FeedRecord {
                feed_seq: *seq,
                record: kind,
                subject,
                status: *status,
            },
            Event::FeedSnapshot { seq, nodes, keys } => Fields::FeedSnapshot {
                feed_seq: *seq,
                nodes: *nodes,
                keys: *keys,
            },
            Event::ReportMade { id, node, rule } => Fields::Report {
                report: id,
                node,
                rule,
            },
        };
        EventLine {
            event: event.name(),
            fields,
        }
    }
}

/// The log's own events: `audit.open` (what the writer found), `audit.retention` (which
/// records it removed), `audit.close`.
#[derive(Serialize)]
#[serde(untagged)]
pub enum Own<'a> {
    Open {
        event: &'static str,
        /// `new`, `closed` (the last run closed the log) or `unclean` (it did not).
        previous: &'static str,
        /// Bytes of a torn last line cut off.
        cut_bytes: u64,
        /// Lines the anchor says the log held that were not found: removed while no writer
        /// ran.
        missing: Option<Missing>,
    },
    Retention {
        event: &'static str,
        removed_through: u64,
        head: &'a str,
    },
    Close {
        event: &'static str,
    },
}

/// The anchor's checkpoint is line `anchor_seq`, the log ends at `found_seq`.
#[derive(Debug, Serialize)]
pub struct Missing {
    pub anchor_seq: u64,
    pub found_seq: u64,
}

/// A gap line's members: records that never reached the log, and why.
#[derive(Serialize)]
pub struct Gap {
    pub lost: u64,
    pub why: &'static str,
}

/// Datagrams dropped before they were read: counted, not recorded one by one (they are a
/// flood's, and must not fill the log).
#[derive(Serialize)]
pub struct Dropped {
    pub rate_limited: u64,
    pub oversize: u64,
    pub not_coap: u64,
}

/// A checkpoint line's member: the JWS that signs the chain up to it.
#[derive(Serialize)]
pub struct CheckpointLine<'a> {
    pub jws: &'a str,
}
