//! Misbehaviour reports (TS-0003 §7.10; docs/reports.md): what a gateway tells the authority
//! about a node whose requests it keeps refusing.
//!
//! A report is a compact JWS (EdDSA, `typ` [`TYP`], the header and signature as the feed's)
//! signed with the gateway's `sync.sign_key` over `{id, gateway, node, rule, from, to,
//! counts, reasons, at}`. It holds ids and names only: the node's id as the repository knows
//! it, the rule's name from the configuration, stage names ([`Stage::NAMES`]) and reason
//! names from the fixed vocabulary ([`NAMES`]). Nothing a device sent as content, no target,
//! no token, no check value, no timestamp it claimed goes into one.
//!
//! [`counter`] counts refusals per node (the record sink) and [`maker`] signs and queues the
//! reports it makes; the authority reads them with [`Report::verify`].

pub mod counter;
pub mod maker;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::feed::check::{is_id, is_name};
use crate::feed::{jws, SigningKey, VerifyingKey};
use crate::guard::reason_name::{self, NAMES};
use crate::guard::Stage;

pub const TYP: &str = "m2mguard-report";

/// Largest compact report read.
pub const MAX_BYTES: usize = 8 * 1024;
/// Most sample reasons in a report.
pub const MAX_REASONS: usize = 5;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Report {
    /// 32 lowercase hex digits, random: unique per gateway.
    pub id: String,
    pub gateway: String,
    pub node: String,
    pub rule: String,
    /// The first refusal the rule counted in the window (RFC 3339, UTC, milliseconds).
    pub from: String,
    /// The refusal that crossed the threshold.
    pub to: String,
    /// The node's refusals from `from` to `to`, by stage name (every stage, not only the
    /// rule's).
    pub counts: BTreeMap<String, u64>,
    /// Up to [`MAX_REASONS`] distinct reason names among them, in the order first seen.
    pub reasons: Vec<String>,
    /// When the report was made.
    pub at: String,
}

impl Report {
    pub fn sign(&self, key: &SigningKey) -> String {
        let payload = serde_json::to_vec(self).expect("a report serialises");
        jws::sign(key, TYP, &payload)
    }

    /// The report `compact` signs, if `key` signed it and its values are as documented.
    pub fn verify(compact: &str, key: &VerifyingKey) -> Result<Report, String> {
        if compact.len() > MAX_BYTES {
            return Err(format!("a report is at most {MAX_BYTES} bytes"));
        }
        let payload = jws::verify(compact, TYP, key).map_err(|e| e.to_string())?;
        let report: Report =
            serde_json::from_slice(&payload).map_err(|e| format!("report payload: {e}"))?;
        if serde_json::to_vec(&report).ok().as_deref() != Some(payload.as_slice()) {
            return Err("report payload is not in compact form (docs/reports.md)".into());
        }
        report.check()?;
        Ok(report)
    }

    /// The value rules of docs/reports.md "Payload".
    pub fn check(&self) -> Result<(), String> {
        let id_ok = self.id.len() == 32
            && self
                .id
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        if !id_ok {
            return Err("report id must be 32 lowercase hex digits".into());
        }
        if !is_name(&self.gateway) || !is_name(&self.rule) {
            return Err("report gateway and rule must be 1 to 64 of A-Za-z0-9._-".into());
        }
        if !is_id(&self.node) {
            return Err("report node must be 1 to 256 bytes without control characters".into());
        }
        for (what, t) in [("from", &self.from), ("to", &self.to), ("at", &self.at)] {
            if !is_timestamp(t) {
                return Err(format!(
                    "report {what} must be RFC 3339 UTC with milliseconds (2026-12-02T13:04:05.678Z)"
                ));
            }
        }
        if self.from > self.to {
            return Err("report from is after to".into());
        }
        if self.counts.is_empty()
            || !self
                .counts
                .keys()
                .all(|s| Stage::NAMES.contains(&s.as_str()))
            || self.counts.values().any(|&n| n == 0)
        {
            return Err(format!(
                "report counts must map stage names ({}) to counts of at least 1",
                Stage::NAMES.join(", ")
            ));
        }
        let distinct = self
            .reasons
            .iter()
            .collect::<std::collections::HashSet<_>>();
        if self.reasons.is_empty()
            || self.reasons.len() > MAX_REASONS
            || distinct.len() != self.reasons.len()
            || !self.reasons.iter().all(|r| reason_name::is_name(r))
        {
            return Err(format!(
                "report reasons must be 1 to {MAX_REASONS} distinct names of the vocabulary ({} names)",
                NAMES.len()
            ));
        }
        Ok(())
    }
}

/// `YYYY-MM-DDTHH:MM:SS.mmmZ`, a real date and time.
fn is_timestamp(t: &str) -> bool {
    let shape = t.len() == 24
        && t.bytes().enumerate().all(|(i, b)| match i {
            4 | 7 => b == b'-',
            10 => b == b'T',
            13 | 16 => b == b':',
            19 => b == b'.',
            23 => b == b'Z',
            _ => b.is_ascii_digit(),
        });
    shape && time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339).is_ok()
}

/// A fresh report id: 128 random bits as hex.
pub fn fresh_id() -> String {
    crate::feed::keys::hex(&crate::feed::keys::random32()[..16])
}

#[cfg(test)]
mod tests;
