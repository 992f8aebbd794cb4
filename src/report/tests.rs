use std::sync::Arc;
use std::time::Duration;

use super::counter::{counted, Counter};
use super::*;
use crate::config::{Origin, ReportRule, ReportsConfig};
use crate::guard::Denial;
use crate::metrics::ReportMetrics;
use crate::primitive::Protocol;
use crate::record::{About, Outcome, Record, Sink};
use crate::store::{NodeKind, NodeSeed, Nodes, SledStore, Store};

fn report() -> Report {
    Report {
        id: "0123456789abcdef0123456789abcdef".into(),
        gateway: "gw-a".into(),
        node: "Cmeter".into(),
        rule: "forged".into(),
        from: "2026-12-02T13:00:00.000Z".into(),
        to: "2026-12-02T13:00:05.250Z".into(),
        counts: [("check_value".to_owned(), 20)].into(),
        reasons: vec!["unknown_key".into()],
        at: "2026-12-02T13:00:05.251Z".into(),
    }
}

#[test]
fn a_report_verifies_under_its_key_only_and_its_values_are_checked() {
    let key = SigningKey::from_seed(&[7; 32]);
    let compact = report().sign(&key);
    assert_eq!(Report::verify(&compact, &key.public()).unwrap(), report());
    let other = SigningKey::from_seed(&[8; 32]);
    assert!(Report::verify(&compact, &other.public()).is_err());
    let bad = |f: fn(&mut Report)| {
        let mut r = report();
        f(&mut r);
        Report::verify(&r.sign(&key), &key.public()).unwrap_err()
    };
    assert!(bad(|r| r.id = "x".into()).contains("id"));
    assert!(bad(|r| r.reasons = vec!["originator Cmeter sent rubbish".into()]).contains("reasons"));
    assert!(bad(|r| r.counts = [("target=/x".to_owned(), 1)].into()).contains("counts"));
    assert!(bad(|r| r.to = "2026-12-02 13:00:05".into()).contains("to"));
    assert!(bad(|r| r.from = "2026-12-02T14:00:00.000Z".into()).contains("after"));
}

fn counter(
    rules: Vec<ReportRule>,
    max_nodes: usize,
) -> (
    Counter,
    tokio::sync::mpsc::Receiver<Report>,
    tempfile::TempDir,
) {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(SledStore::open(dir.path()).unwrap());
    let nodes = Arc::new(Nodes::new(store, 100));
    let seeds: Vec<NodeSeed> = ["n1", "n2", "n3"]
        .iter()
        .map(|id| NodeSeed {
            id: (*id).into(),
            kind: NodeKind::Ae,
            groups: vec![],
            registrar: None,
        })
        .collect();
    nodes.seed(&seeds).unwrap();
    let (tx, rx) = super::maker::handover();
    let config = ReportsConfig { max_nodes, rules };
    (
        Counter::new("gw-a", &config, nodes, tx, ReportMetrics::default()),
        rx,
        dir,
    )
}

fn rule(name: &str, stage: Option<&'static str>, count: u64, window_s: u64) -> ReportRule {
    ReportRule {
        name: name.into(),
        stage,
        reason: None,
        count,
        window: Duration::from_secs(window_s),
        origin: Origin::Authenticated,
    }
}

/// A denial of `n1` as a binding records it; `identity` what the transport authenticated.
fn denied(identity: Option<&str>) -> Record {
    let mut about = About::source(Protocol::Http, ([127, 0, 0, 1], 1).into()).fr("n1");
    about.identity = identity.map(str::to_owned);
    Record {
        at: std::time::SystemTime::now(),
        about,
        outcome: Outcome::Denied(Denial::audit_unavailable()),
        decided_in: None,
        would_deny: None,
        added: Vec::new(),
        lost: 0,
    }
}

#[test]
fn only_authenticated_originators_count_unless_the_rule_says_claimed() {
    // The attack: anyone sends refused requests claiming fr = n1 to get n1 reported.
    let (c, mut rx, _dir) = counter(vec![rule("any", None, 2, 60)], 10);
    for _ in 0..5 {
        c.record(&denied(None));
    }
    assert!(rx.try_recv().is_err(), "claims nobody proved made a report");
    // The legitimate case: the sender's certificate proves it is n1.
    c.record(&denied(Some("n1")));
    c.record(&denied(Some("n1")));
    assert_eq!(rx.try_recv().unwrap().node, "n1");

    let claimed = ReportRule {
        origin: Origin::Claimed,
        ..rule("any", None, 2, 60)
    };
    let (c, mut rx, _dir) = counter(vec![claimed], 10);
    c.record(&denied(None));
    c.record(&denied(None));
    assert_eq!(
        rx.try_recv().unwrap().node,
        "n1",
        "origin = claimed counts claims"
    );
}

#[test]
fn the_threshold_makes_one_report_per_window_with_counts_of_every_stage() {
    let (c, mut rx, _dir) = counter(vec![rule("cv", Some("check_value"), 3, 60)], 10);
    counted(&c, "n1", "policy", "no_policy_permits");
    counted(&c, "n1", "check_value", "unknown_key");
    counted(&c, "n1", "policy", "no_policy_permits");
    counted(&c, "n1", "check_value", "check_value_mismatch");
    assert!(rx.try_recv().is_err(), "two of three");
    counted(&c, "n1", "check_value", "unknown_key");
    let r = rx.try_recv().unwrap();
    assert_eq!(
        (r.node.as_str(), r.rule.as_str(), r.gateway.as_str()),
        ("n1", "cv", "gw-a")
    );
    assert_eq!(
        r.counts,
        [("check_value".to_owned(), 3), ("policy".to_owned(), 1)].into()
    );
    assert_eq!(
        r.reasons,
        ["unknown_key", "no_policy_permits", "check_value_mismatch"]
    );
    r.check().unwrap();
    for _ in 0..10 {
        counted(&c, "n1", "check_value", "unknown_key");
    }
    assert!(rx.try_recv().is_err(), "one report per window");
}

#[test]
fn the_table_is_bounded_and_expired_nodes_make_room() {
    let (c, mut rx, _dir) = counter(vec![rule("any", None, 2, 1)], 1);
    counted(&c, "n1", "status", "inactive");
    counted(&c, "n2", "status", "inactive");
    counted(&c, "n2", "status", "inactive");
    assert!(
        rx.try_recv().is_err(),
        "n2 was not counted: the table was full"
    );
    std::thread::sleep(Duration::from_millis(1100));
    counted(&c, "n2", "status", "inactive");
    counted(&c, "n2", "status", "inactive");
    assert_eq!(
        rx.try_recv().unwrap().node,
        "n2",
        "n1's window ran out and made room"
    );
}
