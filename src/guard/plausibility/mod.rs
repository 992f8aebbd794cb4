//! Plausibility validation (seed 7.8): the position, time of day, movement speed and source
//! address of a request, compared with what is plausible for the node and with its recent data.
//!
//! In: the primitive, its node record, `now`, the `[[plausibility]]` rules and the recent
//! positions this stage remembers. Out: nothing (pass), flags added to [`Findings`], or the
//! [`Denial`] of the first `deny` rule that failed. Invariants:
//! - A rule applies when its `path` pattern matches the target and its `operations`, `nodes`
//!   and `groups` filters (each optional) admit the request; every condition of the rule must
//!   hold.
//! - A rule that cannot be evaluated (content not JSON, pointer missing, not a number,
//!   coordinates out of range) denies, whatever its action: the gateway fails closed.
//! - A failed `flag` rule lets the request on with its name in `Findings.flags` (Cedar:
//!   `context.flags`), counts `m2mguard_plausibility_flags_total{rule}` and logs at info.
//! - Recent positions are recorded only when the whole stage passes, i.e. before the policy
//!   stage: a request the policy later denies still moves its node's last position (it was a
//!   plausible one). Two concurrent requests of one node may both be checked against the
//!   same previous position.
//! - The source address is the socket peer, never a header.
//!
//! The decision is a function of its inputs; the only side effects are the recent-position
//! record, the flag counter and the flag log line.

mod cidr;
mod geo;
mod position;
mod recent;
mod schedule;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::Value;

pub use cidr::Cidr;
pub use geo::{Point, Region};
pub use position::{JsonPointer, PositionSource};
use recent::{Fix, Recent};
pub use schedule::{Window, WindowError};

use super::{Denial, Findings, Implausibility, Pattern, Reason, Stage};
use crate::budget::LogBudget;
use crate::metrics::FlagCounter;
use crate::primitive::{Operation, Primitive};
use crate::store::Node;

/// What a failed rule does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    Deny,
    Flag,
}

/// One validated `[[plausibility]]` rule.
#[derive(Clone, Debug, PartialEq)]
pub struct Rule {
    pub name: String,
    pub path: Pattern,
    pub action: Action,
    /// Operations the rule applies to; empty: all.
    pub operations: Vec<Operation>,
    /// Originators the rule applies to, directly or by group; both empty: all.
    pub nodes: Vec<String>,
    pub groups: Vec<String>,
    pub position: Option<PositionSource>,
    pub max_speed_kmh: Option<f64>,
    pub region: Option<Region>,
    /// Allowed time windows (any may match); empty: any time.
    pub windows: Vec<Window>,
    /// Offset from UTC the windows are read in, seconds.
    pub utc_offset_secs: i32,
    /// Allowed peer address ranges; empty: any address.
    pub sources: Vec<Cidr>,
    /// Nodes whose last position is remembered for the speed check.
    pub recent_nodes: u64,
}

/// Shortest interval the speed check divides by, so that two fixes in the same instant
/// (GPS jitter, a burst of requests) do not make an infinite speed.
pub const MIN_INTERVAL: Duration = Duration::from_secs(1);
/// Flag log lines written per second at most; the counter counts every flag.
const FLAG_LOG_LINES_PER_SEC: u64 = 100;

pub struct Plausibility {
    rules: Vec<(Rule, Option<Recent>)>,
    flags: FlagCounter,
    log: LogBudget,
}

/// A rule's result, with the position it read (if it reads one).
enum Outcome {
    Pass(Option<Point>),
    Failed(Implausibility, Option<Point>),
    CannotEvaluate(String),
}

impl Plausibility {
    pub fn new(rules: &[Rule], flags: FlagCounter) -> Self {
        let rules = rules
            .iter()
            .map(|r| {
                let recent = r.max_speed_kmh.map(|_| Recent::new(r.recent_nodes));
                (r.clone(), recent)
            })
            .collect();
        Plausibility {
            rules,
            flags,
            log: LogBudget::new(FLAG_LOG_LINES_PER_SEC),
        }
    }

    /// No rules: every request passes.
    pub fn off() -> Self {
        Plausibility::new(&[], FlagCounter::default())
    }

    pub fn run(
        &self,
        p: &Primitive,
        node: &Node,
        now: SystemTime,
        findings: &mut Findings,
    ) -> Result<(), Denial> {
        let mut doc: Option<Result<Value, String>> = None;
        let mut fixes = Vec::new();
        let mut flagged = Vec::new();
        for (rule, recent) in &self.rules {
            if !rule.applies(p, node) {
                continue;
            }
            match rule.evaluate(p, &node.id, &mut doc, recent.as_ref(), now) {
                Outcome::Pass(point) => fixes.extend(point.zip(recent.as_ref())),
                Outcome::CannotEvaluate(why) => {
                    return Err(Denial::new(
                        Stage::Plausibility,
                        Reason::Unevaluable {
                            rule: rule.name.clone(),
                            why,
                        },
                    ))
                }
                Outcome::Failed(why, _) if rule.action == Action::Deny => {
                    return Err(Denial::new(
                        Stage::Plausibility,
                        Reason::Implausible {
                            rule: rule.name.clone(),
                            why,
                        },
                    ))
                }
                Outcome::Failed(why, point) => {
                    flagged.push((rule.name.as_str(), why));
                    // The stage passes, so a flagged position still becomes the last one.
                    fixes.extend(point.zip(recent.as_ref()));
                }
            }
        }
        for (point, recent) in fixes {
            recent.record(&node.id, Fix { point, at: now });
        }
        for (name, why) in flagged {
            self.flags.inc(name);
            let second = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
            if let Some(suppressed) = self.log.admit(second) {
                tracing::info!(
                    node.id = %p.fr, op = p.op.as_str(), to = %p.to, plausibility.rule = name,
                    reason = %why, log.suppressed = suppressed, "request flagged"
                );
            }
            findings.flags.push(name.to_owned());
        }
        Ok(())
    }
}

impl Rule {
    fn applies(&self, p: &Primitive, node: &Node) -> bool {
        self.path.matches(&p.to)
            && (self.operations.is_empty() || self.operations.contains(&p.op))
            && ((self.nodes.is_empty() && self.groups.is_empty())
                || self.nodes.contains(&node.id)
                || self.groups.iter().any(|g| node.groups.contains(g)))
    }

    /// Every condition is evaluated, cheapest first (source, time, then the content), so that
    /// a rule that cannot be evaluated denies even when an earlier condition already failed;
    /// the first failure is the one reported.
    fn evaluate(
        &self,
        p: &Primitive,
        node_id: &str,
        doc: &mut Option<Result<Value, String>>,
        recent: Option<&Recent>,
        now: SystemTime,
    ) -> Outcome {
        let mut failed = None;
        let peer = p.peer.addr.ip();
        if !self.sources.is_empty() && !self.sources.iter().any(|c| c.contains(peer)) {
            failed = Some(Implausibility::Source { peer });
        }
        if !self.windows.is_empty() {
            let secs = match now.duration_since(UNIX_EPOCH) {
                Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
                Err(_) => return Outcome::CannotEvaluate("clock before 1970".into()),
            };
            let open = self
                .windows
                .iter()
                .any(|w| w.matches(secs, self.utc_offset_secs));
            if !open && failed.is_none() {
                failed = Some(Implausibility::OutsideWindows);
            }
        }
        let point = match &self.position {
            None => None,
            Some(source) => {
                let read = match doc.get_or_insert_with(|| parse_content(&p.content)) {
                    Ok(value) => source.read(value),
                    Err(why) => Err(why.clone()),
                };
                match read {
                    Ok(point) => Some(point),
                    Err(why) => return Outcome::CannotEvaluate(why),
                }
            }
        };
        if failed.is_none() {
            failed = point.and_then(|point| self.implausible_position(node_id, point, recent, now));
        }
        match failed {
            None => Outcome::Pass(point),
            Some(why) => Outcome::Failed(why, point),
        }
    }

    fn implausible_position(
        &self,
        node_id: &str,
        point: Point,
        recent: Option<&Recent>,
        now: SystemTime,
    ) -> Option<Implausibility> {
        if let Some(region) = &self.region {
            if !region.contains(point) {
                return Some(Implausibility::OutsideRegion);
            }
        }
        let (max, last) = (self.max_speed_kmh?, recent?.last(node_id)?);
        let distance_m = last.point.distance_m(point);
        let elapsed = now
            .duration_since(last.at)
            .unwrap_or_default()
            .max(MIN_INTERVAL);
        let kmh = distance_m / elapsed.as_secs_f64() * 3.6;
        (kmh > max).then(|| Implausibility::Speed {
            km: distance_m / 1000.0,
            seconds: elapsed.as_secs_f64(),
            kmh,
            max_kmh: max,
        })
    }
}

fn parse_content(content: &[u8]) -> Result<Value, String> {
    if content.is_empty() {
        return Err("the request has no content".into());
    }
    serde_json::from_slice(content).map_err(|_| "the content is not JSON".into())
}

#[cfg(test)]
mod tests;
