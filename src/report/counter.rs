//! Counting refusals per node: a record [`Sink`] on the request path. A refusal is a request
//! a guard stage denied ([`Outcome::Denied`]); it counts for its originator (`fr`) only if the
//! repository knows that node: refusals of originators it does not know are counted in
//! `m2mguard_reports_untracked_total{reason="unknown"}` and nowhere else (there is no node
//! to report, and a flood of forged ids must not grow the table).
//!
//! Each rule keeps one window per node: it opens at the first refusal the rule matches and
//! lasts `window_s`. While it is open, every refusal of the node is added to its counts by
//! stage and, up to [`MAX_REASONS`] distinct ones, to its sample reasons; the refusal that
//! brings the rule's matches to `count` makes the window's one report, handed to the
//! [`super::maker`] without waiting (a full hand-over queue loses it, counted). Once the
//! window has run out, the next matching refusal opens a new one.
//!
//! Bounds: at most `reports.max_nodes` nodes are counted at once. A node comes in with the
//! first refusal some rule matches; when the table is full, nodes whose windows have all run
//! out are removed (at most once a second); if none has, the refusal is not counted
//! (`m2mguard_reports_untracked_total{reason="full"}`). Counts live in memory: a restart
//! starts every window afresh.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::mpsc;

use super::{fresh_id, Report, MAX_REASONS};
use crate::audit::line::timestamp;
use crate::config::{ReportRule, ReportsConfig};
use crate::guard::Stage;
use crate::metrics::ReportMetrics;
use crate::record::{Outcome, Record, Sink};
use crate::store::Nodes;

/// How often a full table is swept, at most.
const SWEEP_EVERY: Duration = Duration::from_secs(1);

pub struct Counter {
    gateway: String,
    rules: Vec<ReportRule>,
    max_nodes: usize,
    /// The longest window: a node idle this long has no open window.
    longest: Duration,
    nodes: Arc<Nodes>,
    table: Mutex<Table>,
    made: mpsc::Sender<Report>,
    metrics: ReportMetrics,
}

#[derive(Default)]
struct Table {
    /// A node's windows, one slot per rule.
    nodes: HashMap<String, Vec<Option<Window>>>,
    swept: Option<Instant>,
}

struct Window {
    opened: Instant,
    from: SystemTime,
    matched: u64,
    counts: BTreeMap<&'static str, u64>,
    reasons: Vec<&'static str>,
    reported: bool,
}

impl Counter {
    pub fn new(
        gateway: &str,
        config: &ReportsConfig,
        nodes: Arc<Nodes>,
        made: mpsc::Sender<Report>,
        metrics: ReportMetrics,
    ) -> Counter {
        Counter {
            gateway: gateway.to_owned(),
            rules: config.rules.clone(),
            max_nodes: config.max_nodes,
            longest: config
                .rules
                .iter()
                .map(|r| r.window)
                .max()
                .unwrap_or_default(),
            nodes,
            table: Mutex::new(Table::default()),
            made,
            metrics,
        }
    }

    /// Counts one refusal of `node`; the reports it makes.
    fn count(
        &self,
        node: &str,
        stage: &'static str,
        reason: &'static str,
        authenticated: bool,
        at: SystemTime,
    ) {
        let now = Instant::now();
        let mut made = Vec::new();
        {
            let mut table = self.table.lock().unwrap_or_else(|p| p.into_inner());
            if !table.nodes.contains_key(node) {
                if !self
                    .rules
                    .iter()
                    .any(|r| r.matches(stage, reason, authenticated))
                {
                    return;
                }
                if table.nodes.len() >= self.max_nodes && !self.sweep(&mut table, now) {
                    self.metrics.untracked("full");
                    return;
                }
                let empty = self.rules.iter().map(|_| None).collect();
                table.nodes.insert(node.to_owned(), empty);
                self.metrics.nodes.set(table.nodes.len() as i64);
            }
            let windows = table.nodes.get_mut(node).expect("inserted above");
            for (rule, slot) in self.rules.iter().zip(windows.iter_mut()) {
                if slot.as_ref().is_some_and(|w| now - w.opened >= rule.window) {
                    *slot = None;
                }
                let matches = rule.matches(stage, reason, authenticated);
                if slot.is_none() && matches {
                    *slot = Some(Window::open(now, at));
                }
                let Some(window) = slot else { continue };
                window.add(stage, reason);
                if matches {
                    window.matched += 1;
                    if window.matched >= rule.count && !window.reported {
                        window.reported = true;
                        made.push(self.report(node, rule, window, at));
                    }
                }
            }
        }
        for report in made {
            if self.made.try_send(report).is_err() {
                self.metrics.lost("queue");
            }
        }
    }

    /// Removes the nodes whose windows have all run out; whether there is room now.
    fn sweep(&self, table: &mut Table, now: Instant) -> bool {
        if table.swept.is_some_and(|t| now - t < SWEEP_EVERY) {
            return false;
        }
        table.swept = Some(now);
        let longest = self.longest;
        table
            .nodes
            .retain(|_, windows| windows.iter().flatten().any(|w| now - w.opened < longest));
        self.metrics.nodes.set(table.nodes.len() as i64);
        table.nodes.len() < self.max_nodes
    }

    fn report(&self, node: &str, rule: &ReportRule, w: &Window, to: SystemTime) -> Report {
        Report {
            id: fresh_id(),
            gateway: self.gateway.clone(),
            node: node.to_owned(),
            rule: rule.name.clone(),
            from: timestamp(w.from),
            to: timestamp(to),
            counts: w
                .counts
                .iter()
                .map(|(s, n)| ((*s).to_owned(), *n))
                .collect(),
            reasons: w.reasons.iter().map(|r| (*r).to_owned()).collect(),
            at: timestamp(SystemTime::now()),
        }
    }
}

impl Window {
    fn open(opened: Instant, from: SystemTime) -> Window {
        Window {
            opened,
            from,
            matched: 0,
            counts: BTreeMap::new(),
            reasons: Vec::new(),
            reported: false,
        }
    }

    fn add(&mut self, stage: &'static str, reason: &'static str) {
        *self.counts.entry(stage).or_default() += 1;
        if self.reasons.len() < MAX_REASONS && !self.reasons.contains(&reason) {
            self.reasons.push(reason);
        }
    }
}

impl Sink for Counter {
    fn record(&self, record: &Record) {
        let Outcome::Denied(denial) = &record.outcome else {
            return;
        };
        let node = record.about.fr.as_str();
        if node.is_empty() {
            return;
        }
        match self.nodes.get(node) {
            Ok(Some(_)) => {}
            _ => return self.metrics.untracked("unknown"),
        }
        // The transport proved `fr` only where a client certificate passed the identity stage.
        let authenticated = record.about.identity.is_some() && denial.stage != Stage::Identity;
        self.count(
            node,
            denial.stage.as_str(),
            denial.reason.name(),
            authenticated,
            record.at,
        );
    }
}

#[cfg(test)]
pub(super) fn counted(counter: &Counter, node: &str, stage: &'static str, reason: &'static str) {
    counter.count(node, stage, reason, true, SystemTime::now());
}
