//! Reading a log for people and investigations (`m2mguard audit export`, `show`): its lines in
//! order, filtered by time, node, verdict and kind. Lines are handed on as written, so an
//! exported line still hashes to what the next line's `prev` says.

use std::io;
use std::path::Path;

use serde_json::Value;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use super::segments;

/// Which lines to keep; `None` keeps all.
#[derive(Clone, Debug, Default)]
pub struct Filter {
    pub since: Option<OffsetDateTime>,
    pub until: Option<OffsetDateTime>,
    /// A request's `fr`, or an event's `node`.
    pub node: Option<String>,
    pub verdict: Option<String>,
    pub kind: Option<String>,
}

/// An RFC 3339 time (`2026-12-02T13:00:00Z`), for `--since` and `--until`.
pub fn parse_time(text: &str) -> Result<OffsetDateTime, String> {
    OffsetDateTime::parse(text, &Rfc3339).map_err(|_| {
        format!("{text:?} is not an RFC 3339 time (expected e.g. 2026-12-02T13:00:00Z)")
    })
}

impl Filter {
    pub fn keeps(&self, v: &Value) -> bool {
        let text = |k: &str| v.get(k).and_then(Value::as_str);
        if self.since.is_some() || self.until.is_some() {
            let Some(at) = text("at").and_then(|t| OffsetDateTime::parse(t, &Rfc3339).ok()) else {
                return false;
            };
            if self.since.is_some_and(|s| at < s) || self.until.is_some_and(|u| at >= u) {
                return false;
            }
        }
        if let Some(node) = &self.node {
            if text("fr") != Some(node) && text("node") != Some(node) {
                return false;
            }
        }
        if let Some(verdict) = &self.verdict {
            if text("verdict") != Some(verdict) {
                return false;
            }
        }
        if let Some(kind) = &self.kind {
            if text("kind") != Some(kind) {
                return false;
            }
        }
        true
    }
}

/// Hands `each` every whole line of the log in `dir` that `filter` keeps, oldest first, as
/// written (no newline) and parsed; a line that is not JSON is handed on as `Value::Null`
/// only when no filter is set. `each` returns `false` to stop.
pub fn lines(
    dir: &Path,
    filter: &Filter,
    mut each: impl FnMut(&[u8], &Value) -> io::Result<bool>,
) -> io::Result<()> {
    let unfiltered = filter.since.is_none()
        && filter.until.is_none()
        && filter.node.is_none()
        && filter.verdict.is_none()
        && filter.kind.is_none();
    for (_, path) in segments::list(dir)? {
        let mut lines = segments::Lines::open(&path)?;
        while let Some(segments::Line::Whole(text)) = lines.next()? {
            let value = serde_json::from_slice(text).unwrap_or(Value::Null);
            let keep = if value.is_null() {
                unfiltered
            } else {
                filter.keeps(&value)
            };
            if keep && !each(text, &value)? {
                return Ok(());
            }
        }
    }
    Ok(())
}

/// One line for a person: `seq at kind …` with what matters of its kind.
/// What a sender wrote (`fr`, `to`, `rqi`, a reason naming them) is shown escaped, so that no
/// control character reaches the terminal.
pub fn describe(v: &Value) -> String {
    let text = |k: &str| {
        v.get(k)
            .and_then(Value::as_str)
            .map_or(String::new(), |s| s.escape_debug().to_string())
    };
    let seq = v.get("seq").and_then(Value::as_u64).unwrap_or(0);
    let head = format!("{seq:>8} {} {:<10}", text("at"), text("kind"));
    match text("kind").as_str() {
        "request" => {
            let mut out = format!(
                "{head} {:<8} {} {} {} {} rqi={}",
                text("verdict"),
                text("binding"),
                text("fr"),
                text("op"),
                text("to"),
                text("rqi")
            );
            if let Some(stage) = v.get("stage").and_then(Value::as_str) {
                out.push_str(&format!(" [{stage}: {}]", text("reason")));
            } else if v.get("reason").is_some_and(Value::is_string) {
                out.push_str(&format!(" [{}]", text("reason")));
            }
            if let Some(rsc) = v.pointer("/forward/rsc").and_then(Value::as_u64) {
                out.push_str(&format!(" -> rsc {rsc}"));
            }
            out
        }
        "event" => {
            let mut fields: Vec<String> = v
                .as_object()
                .into_iter()
                .flatten()
                .filter(|(k, _)| !matches!(k.as_str(), "seq" | "prev" | "at" | "kind" | "event"))
                .map(|(k, v)| format!("{}={v}", k.escape_debug()))
                .collect();
            fields.insert(0, text("event"));
            format!("{head} {}", fields.join(" "))
        }
        "gap" => format!(
            "{head} {} records lost ({})",
            v.get("lost").and_then(Value::as_u64).unwrap_or(0),
            text("why")
        ),
        "checkpoint" => format!("{head} signed over {} lines", seq.saturating_sub(1)),
        _ => format!("{head} {}", Value::to_string(v)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_a_sender_wrote_reaches_the_terminal_escaped() {
        let line = serde_json::json!({
            "seq": 2, "at": "2026-12-02T13:00:00.000Z", "kind": "request", "verdict": "denied",
            "binding": "coap", "fr": "Cevil\r\u{1b}[2K 1 allowed\n 2 fake", "op": "retrieve",
            "to": "/id-in/cse-in", "rqi": "r\u{7}", "stage": "status", "reason": "unknown \u{1b}",
        });
        let shown = describe(&line);
        assert!(!shown.chars().any(char::is_control), "{shown:?}");
        assert!(
            shown.contains(r"Cevil\r\u{1b}[2K 1 allowed\n 2 fake"),
            "{shown}"
        );
    }
}
