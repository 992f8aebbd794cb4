use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use super::*;
use crate::guard::{Reason, Stage};
use crate::primitive::Rsc;
use prometheus_client::metrics::counter::Counter;

/// A sink that keeps every record ([`Sink`] for `Mutex<Vec<Record>>`).
type Collect = Mutex<Vec<Record>>;

/// The records `c` kept since the last look.
fn taken(c: &Collect) -> Vec<Record> {
    std::mem::take(&mut c.lock().unwrap())
}

fn about(rqi: &str) -> About {
    About::source(Protocol::Http, ([127, 0, 0, 1], 1).into()).rqi(rqi)
}

fn record(rqi: &str, outcome: Outcome) -> Record {
    Record {
        at: SystemTime::now(),
        about: about(rqi),
        outcome,
        decided_in: None,
        would_deny: None,
        added: Vec::new(),
        lost: 0,
    }
}

fn allowed(rqi: &str) -> Record {
    record(
        rqi,
        Outcome::Allowed {
            policies: vec!["p1".into()],
            forward: Forward::Abandoned,
        },
    )
}

fn refused(rqi: &str) -> Record {
    record(rqi, Outcome::Refused(Refusal::Retained))
}

#[test]
fn every_sink_sees_every_record_once_fixed_ones_first() {
    let (fixed, attached) = (Arc::new(Collect::default()), Arc::new(Collect::default()));
    let recorder = Recorder::new(vec![fixed.clone()]);
    recorder.record(refused("before"));
    recorder.attach(attached.clone());
    recorder.record(refused("after"));
    let rqis = |c: &Collect| {
        taken(c)
            .into_iter()
            .map(|r| r.about.rqi)
            .collect::<Vec<_>>()
    };
    assert_eq!(rqis(&fixed), ["before", "after"]);
    assert_eq!(rqis(&attached), ["after"], "attached from then on");
}

#[test]
fn a_pending_record_is_recorded_exactly_once_however_it_ends() {
    let sink = Arc::new(Collect::default());
    let recorder = Arc::new(Recorder::new(vec![sink.clone()]));
    let took = Answered::new(Duration::from_millis(3), Some(201), Some(2001));
    recorder
        .pending(allowed("answered"))
        .forwarded(Forward::Answered(took));
    recorder
        .pending(allowed("failed"))
        .failed(UpstreamFailure::Reset);
    drop(recorder.pending(allowed("dropped")));
    let shared = SharedPending::new(recorder.pending(allowed("shared")));
    let copy = shared.clone();
    copy.take().unwrap().forwarded(Forward::Sent);
    assert!(shared.take().is_none(), "taken once");
    drop((shared, copy));
    let evicted = SharedPending::new(recorder.pending(allowed("evicted")));
    drop(evicted.clone());
    drop(evicted);
    let outcomes: Vec<(String, Outcome)> = taken(&sink)
        .into_iter()
        .map(|r| (r.about.rqi, r.outcome))
        .collect();
    let allow = |forward| Outcome::Allowed {
        policies: vec!["p1".into()],
        forward,
    };
    assert_eq!(
        outcomes,
        [
            ("answered".into(), allow(Forward::Answered(took))),
            (
                "failed".into(),
                Outcome::Failed {
                    policies: vec!["p1".into()],
                    failure: UpstreamFailure::Reset
                }
            ),
            ("dropped".into(), allow(Forward::Abandoned)),
            ("shared".into(), allow(Forward::Sent)),
            ("evicted".into(), allow(Forward::Abandoned)),
        ]
    );
}

#[test]
fn a_full_dropping_queue_never_waits_counts_what_it_left_out_and_says_so_next() {
    let lost = Counter::default();
    let (queue, records) = Queue::new(2, Overflow::Drop, lost.clone());
    let started = Instant::now();
    for i in 0..5 {
        queue.record(&refused(&i.to_string()));
    }
    assert!(
        started.elapsed() < Duration::from_millis(100),
        "never waits"
    );
    assert_eq!(lost.get(), 3);
    let first: Vec<(String, u64)> = std::iter::from_fn(|| records.try_recv())
        .map(|r| (r.about.rqi, r.lost))
        .collect();
    assert_eq!(first, [("0".into(), 0), ("1".into(), 0)]);
    queue.record(&refused("5"));
    let next = records.try_recv().unwrap();
    assert_eq!((next.about.rqi.as_str(), next.lost), ("5", 3));
    queue.record(&refused("6"));
    assert_eq!(records.try_recv().unwrap().lost, 0, "reported once");
}

#[test]
fn a_waiting_queue_loses_nothing_to_a_slow_consumer_and_waits_at_most_its_bound() {
    let lost = Counter::default();
    let bound = Duration::from_secs(2);
    let (queue, records) = Queue::new(4, Overflow::Wait(bound), lost.clone());
    let read = Arc::new(AtomicUsize::new(0));
    let reader = {
        let read = read.clone();
        std::thread::spawn(move || {
            let mut seen = Vec::new();
            while let Some(r) = records.recv_timeout(Duration::from_secs(5)) {
                std::thread::sleep(Duration::from_millis(2));
                read.fetch_add(1, Ordering::Relaxed);
                seen.push((r.about.rqi, r.lost));
                if seen.len() == 50 {
                    break;
                }
            }
            seen
        })
    };
    let mut longest = Duration::ZERO;
    for i in 0..50 {
        let started = Instant::now();
        queue.record(&refused(&i.to_string()));
        longest = longest.max(started.elapsed());
    }
    let seen = reader.join().unwrap();
    let expected: Vec<(String, u64)> = (0..50).map(|i| (i.to_string(), 0)).collect();
    assert_eq!(seen, expected, "every record, in order, none lost");
    assert_eq!(lost.get(), 0);
    assert!(longest < bound, "waited {longest:?}");
}

#[test]
fn a_waiting_queue_whose_consumer_stalls_costs_each_record_its_bound_then_counts_it() {
    let lost = Counter::default();
    let bound = Duration::from_millis(30);
    let (queue, records) = Queue::new(2, Overflow::Wait(bound), lost.clone());
    for i in 0..2 {
        queue.record(&refused(&i.to_string()));
    }
    for i in 2..5 {
        let started = Instant::now();
        queue.record(&refused(&i.to_string()));
        let waited = started.elapsed();
        assert!(
            waited >= bound && waited < bound * 10,
            "waited {waited:?} for a place"
        );
    }
    assert_eq!(lost.get(), 3);
    assert_eq!(records.len(), 2);
    while records.try_recv().is_some() {}
    queue.record(&refused("5"));
    assert_eq!(records.try_recv().unwrap().lost, 3);
    // The consumer gone: records cost nothing and are not counted as lost.
    drop(records);
    let started = Instant::now();
    queue.record(&refused("6"));
    assert!(started.elapsed() < bound);
    assert_eq!(lost.get(), 3);
}

#[test]
fn answers_name_the_class_and_only_token_denials_carry_tqf() {
    let tqf: Arc<str> = Arc::from("https://das.example/tokens");
    let token = Denial {
        stage: Stage::Token,
        reason: Reason::TokenIdsUnresolvable,
    };
    let answer = Answer::denied(&token, Some(&tqf));
    assert_eq!(answer.rsc, Rsc::OriginatorHasNoPrivilege);
    assert_eq!(
        answer.content(),
        serde_json::json!({"m2m:dbg": "access denied: token missing or invalid",
                           "tqf": {"dasi": [{"url": "https://das.example/tokens"}]}})
    );
    let policy = Denial {
        stage: Stage::Policy,
        reason: Reason::Forbidden {
            policies: vec!["p".into()],
        },
    };
    let answer = Answer::denied(&policy, Some(&tqf));
    assert_eq!(answer.tqf, None);
    assert_eq!(
        answer.content(),
        serde_json::json!({"m2m:dbg": "access denied by policy"})
    );
    assert_eq!(Answer::refused(&Refusal::Retained).rsc, Rsc::BadRequest);
    let receiver = Refusal::WrongReceiver {
        receiver: "id-mn".into(),
    };
    assert_eq!(
        Answer::refused(&receiver).rsc,
        Rsc::OriginatorHasNoPrivilege
    );
    let failed = Answer::failed(&UpstreamFailure::Timeout(Duration::from_secs(1)));
    assert_eq!(
        (failed.rsc, failed.message.as_ref()),
        (Rsc::TargetNotReachable, "target not reachable")
    );
}

#[test]
fn a_would_be_denial_survives_an_upstream_failure_and_is_counted_as_one() {
    let metrics = Arc::new(crate::metrics::Metrics::new());
    let sink = Arc::new(Collect::default());
    let recorder = Arc::new(Recorder::new(vec![metrics.clone(), sink.clone()]));
    let denial = Denial {
        stage: Stage::Policy,
        reason: Reason::Forbidden {
            policies: vec!["watch".into()],
        },
    };
    let would = |rqi| Record {
        would_deny: Some(denial.clone()),
        ..allowed(rqi)
    };
    recorder
        .pending(would("failed"))
        .failed(UpstreamFailure::Reset);
    recorder
        .pending(would("answered"))
        .forwarded(Forward::Answered(Answered::new(
            Duration::from_millis(2),
            Some(200),
            None,
        )));
    let records = taken(&sink);
    assert!(matches!(records[0].outcome, Outcome::Failed { .. }));
    assert!(
        records
            .iter()
            .all(|r| r.would_deny.as_ref() == Some(&denial)),
        "{records:#?}"
    );
    let text = metrics.encode();
    let counted = r#"m2mguard_requests_total{protocol="http",operation="unknown",verdict="would_deny",stage="policy"} 2"#;
    assert!(text.contains(counted), "{text}");
    assert!(
        text.contains(r#"m2mguard_observed_forbids_total{policy="watch"} 2"#),
        "{text}"
    );
    // A plain allow is counted as one, with no would-be denial.
    recorder.pending(allowed("plain")).forwarded(Forward::Sent);
    assert!(taken(&sink)[0].would_deny.is_none());
    let allowed = r#"verdict="allow",stage=""} 1"#;
    assert!(metrics.encode().contains(allowed), "{}", metrics.encode());
}
