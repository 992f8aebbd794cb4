//! The optional `[reports]` table: misbehaviour reports (docs/reports.md). Each
//! `[[reports.rules]]` counts a node's refusals of a stage and/or reason; `count` of them
//! within `window_s` make one report. Reports are signed with `sync.sign_key` and go to the
//! authority, so `[reports]` needs `[sync]`.

use std::time::Duration;

use serde::Deserialize;

use super::Validator;
use crate::feed::check::is_name;
use crate::guard::reason_name::NAMES;
use crate::guard::Stage;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileReports {
    pub max_nodes: Option<u64>,
    #[serde(default)]
    pub rules: Vec<FileRule>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileRule {
    pub name: String,
    pub stage: Option<String>,
    pub reason: Option<String>,
    pub count: u64,
    pub window_s: u64,
    pub origin: Option<String>,
}

#[derive(Clone, Debug)]
pub struct ReportsConfig {
    /// Nodes whose refusals are counted at once, at most.
    pub max_nodes: usize,
    pub rules: Vec<ReportRule>,
}

/// Whose refusals a rule counts (docs/reports.md "Whose refusals count").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Origin {
    /// Only where the transport authenticated the sender as the originator (a client
    /// certificate that passed the identity stage): nobody else can make the node reported.
    Authenticated,
    /// Every refusal of a known originator, as claimed: anyone who can reach the gateway can
    /// make any known node reported. Only where the network path itself identifies devices.
    Claimed,
}

/// One rule: refusals of `stage` (any if `None`) for `reason` (any if `None`), from `origin`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReportRule {
    pub name: String,
    pub stage: Option<&'static str>,
    pub reason: Option<&'static str>,
    pub count: u64,
    pub window: Duration,
    pub origin: Origin,
}

impl ReportRule {
    /// Whether a refusal at `stage` for `reason` counts; `authenticated` says whether the
    /// transport proved the originator.
    pub fn matches(&self, stage: &str, reason: &str, authenticated: bool) -> bool {
        (authenticated || self.origin == Origin::Claimed)
            && self.stage.is_none_or(|s| s == stage)
            && self.reason.is_none_or(|r| r == reason)
    }
}

const MAX_NODES: u64 = 10_000;
const MAX_RULES: usize = 32;

impl Validator {
    pub(super) fn reports(&mut self, r: FileReports, synced: bool) -> Option<ReportsConfig> {
        if !synced {
            self.err(
                "reports",
                "needs [sync]: reports are signed with sync.sign_key and sent to the authority",
            );
        }
        if r.rules.is_empty() || r.rules.len() > MAX_RULES {
            self.err(
                "reports.rules",
                format!("expected 1 to {MAX_RULES} [[reports.rules]]"),
            );
        }
        let max_nodes = self.range("reports.max_nodes", r.max_nodes, MAX_NODES, 1..=1_000_000);
        let mut names: Vec<String> = Vec::new();
        let mut rules: Vec<ReportRule> = Vec::new();
        for rule in r.rules {
            if names.contains(&rule.name) {
                self.err(
                    "reports.rules.name",
                    format!("{:?} is named twice (expected each name once)", rule.name),
                );
            }
            names.push(rule.name.clone());
            rules.extend(self.report_rule(rule));
        }
        Some(ReportsConfig {
            max_nodes: max_nodes as usize,
            rules,
        })
    }

    fn report_rule(&mut self, r: FileRule) -> Option<ReportRule> {
        if !is_name(&r.name) {
            self.err(
                "reports.rules.name",
                format!(
                    "{:?} is not a rule name (expected 1 to 64 of A-Z a-z 0-9 . _ -)",
                    r.name
                ),
            );
        }
        let mut valid = true;
        let stage = match r.stage.as_deref() {
            None => None,
            Some(s) => {
                let found = Stage::NAMES.iter().find(|n| **n == s).copied();
                if found.is_none() {
                    valid = false;
                    self.err(
                        "reports.rules.stage",
                        format!(
                            "{s:?} is not a stage (expected one of {})",
                            Stage::NAMES.join(", ")
                        ),
                    );
                }
                found
            }
        };
        let reason = match r.reason.as_deref() {
            None => None,
            Some(s) => {
                let found = NAMES.iter().find(|n| **n == s).copied();
                if found.is_none() {
                    valid = false;
                    self.err(
                        "reports.rules.reason",
                        format!("{s:?} is not a reason name (expected one of docs/reports.md \"Reason names\")"),
                    );
                }
                found
            }
        };
        let origin = match r.origin.as_deref() {
            None | Some("authenticated") => Origin::Authenticated,
            Some("claimed") => Origin::Claimed,
            Some(other) => {
                valid = false;
                self.err(
                    "reports.rules.origin",
                    format!(
                        "{other:?} is not an origin (expected \"authenticated\" or \"claimed\")"
                    ),
                );
                Origin::Authenticated
            }
        };
        let count = self.range("reports.rules.count", Some(r.count), 1, 1..=1_000_000);
        let window_s = self.range("reports.rules.window_s", Some(r.window_s), 1, 1..=86_400);
        valid.then(|| ReportRule {
            name: r.name,
            stage,
            reason,
            count,
            window: Duration::from_secs(window_s),
            origin,
        })
    }
}
