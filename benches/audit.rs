//! The audit log's cost per record: on the writer's thread, making one request line (its
//! members, the JSON, the chain hash, the content digest); and on the request path, handing a
//! record to a running log (the queue, with the real writer behind it on a temporary
//! directory). Run with `cargo bench --bench audit`; the load with the log on is measured
//! by `scripts/load` (path `audit`).

mod common;

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, Criterion};
use m2mguard::audit::line::{self, Request};
use m2mguard::audit::Audit;
use m2mguard::config::AuditConfig;
use m2mguard::feed::SigningKey;
use m2mguard::metrics::Metrics;
use m2mguard::primitive::Operation;
use m2mguard::record::{About, Answered, Forward, Outcome, Record, Recorder};

/// An allowed create with 60 bytes of content, answered by the upstream: a typical line.
fn record() -> Record {
    let mut p = common::request(Operation::Create, "Cmeter-01", "bench-rqi-000001");
    p.ty = Some(4);
    p.content = Bytes::from_static(br#"{"m2m:cin":{"con":"{\"t\":21.5,\"h\":40}","cnf":"text"}}"#);
    Record {
        at: SystemTime::now(),
        about: About::of(&p),
        outcome: Outcome::Allowed {
            policies: vec!["devices-read-write".into()],
            forward: Forward::Answered(Answered::new(
                Duration::from_micros(420),
                Some(201),
                Some(2001),
            )),
        },
        decided_in: Some(Duration::from_micros(9)),
        would_deny: None,
        added: Vec::new(),
        lost: 0,
    }
}

fn line(c: &mut Criterion) {
    let r = record();
    let at = line::timestamp(r.at);
    let mut buf = Vec::with_capacity(4096);
    c.bench_function("audit/line (members, JSON, hash)", |b| {
        b.iter(|| {
            buf.clear();
            line::encode_into(
                &mut buf,
                12345,
                line::GENESIS,
                &at,
                "request",
                Request::of(&r),
            );
            line::hash(&buf)
        })
    });
}

fn handed(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let key = Arc::new(SigningKey::from_seed(&[7; 32]));
    let config = AuditConfig::new(dir.path().join("log"), key, "/id-in");
    let metrics = Metrics::new();
    let audit = Audit::start(config, metrics.audit().clone(), None).unwrap();
    let recorder = Recorder::new(vec![audit.sink()]);
    let r = record();
    c.bench_function("audit/record handed to the log (request path)", |b| {
        b.iter(|| recorder.record(r.clone()))
    });
    drop(recorder);
    audit.close();
}

criterion_group!(benches, line, handed);
criterion_main!(benches);
