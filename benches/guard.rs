//! The guard's decision on the request path, with the shipped example policies and a sled
//! repository behind its cache: an allowed request, one denied by policy, one denied at node
//! status (unknown originator, which never reaches Cedar) — these repeat one request, so Cedar's
//! decision comes from the guard's decision cache after the first — and an allowed request to a
//! new target every time, which always evaluates Cedar (and fills the cache), also with one
//! `@observe` forbid added (an allowed request is then decided by both sets). This is the
//! per-request cost the HTTP numbers in `scripts/load` are made of; run with
//! `cargo bench --bench guard`.

mod common;

use std::path::Path;
use std::sync::Arc;
use std::time::SystemTime;

use criterion::{criterion_group, criterion_main, Criterion};
use m2mguard::guard::{Guard, MessageChecks};
use m2mguard::policy::Policies;
use m2mguard::primitive::{Operation, Primitive};
use m2mguard::store::{NodeKind, NodeSeed, Nodes, SledStore};

fn primitive(fr: &str, op: Operation) -> Primitive {
    common::request(op, fr, "bench")
}

fn guard(dir: &Path) -> Guard {
    guard_with(dir, Path::new(common::POLICIES))
}

fn guard_with(dir: &Path, policies: &Path) -> Guard {
    let nodes = Arc::new(Nodes::new(Arc::new(SledStore::open(dir).unwrap()), 1000));
    nodes
        .seed(&[NodeSeed {
            id: "Cmeter-01".into(),
            kind: NodeKind::Ae,
            groups: vec!["devices".into(), "meters".into()],
            registrar: None,
        }])
        .unwrap();
    let policies = Policies::load(policies).unwrap();
    Guard::new(nodes, Arc::new(policies), MessageChecks::off())
}

fn decide(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let guard = guard(dir.path());
    let cases = [
        ("allow", primitive("Cmeter-01", Operation::Retrieve), true),
        (
            "deny_policy",
            primitive("Cmeter-01", Operation::Delete),
            false,
        ),
        (
            "deny_status_unknown",
            primitive("Cnobody", Operation::Retrieve),
            false,
        ),
    ];
    let mut group = c.benchmark_group("guard_decide");
    for (name, p, allowed) in &cases {
        assert_eq!(
            guard.decide(p, SystemTime::now()).is_allow(),
            *allowed,
            "{name}"
        );
        group.bench_function(*name, |b| {
            b.iter(|| guard.decide(std::hint::black_box(p), SystemTime::now()))
        });
    }
    let mut p = primitive("Cmeter-01", Operation::Retrieve);
    let mut n = 0u64;
    group.bench_function("allow_distinct_targets", |b| {
        b.iter(|| {
            n += 1;
            p.to = format!("/id-in/cse-in/meter-01/data-{n}");
            guard.decide(std::hint::black_box(&p), SystemTime::now())
        })
    });
    observed(&mut group, &primitive("Cmeter-01", Operation::Retrieve));
    group.finish();
}

/// New targets, with the shipped policies and one `@observe` forbid that does not match.
fn observed(
    group: &mut criterion::BenchmarkGroup<criterion::measurement::WallTime>,
    p: &Primitive,
) {
    let (dir, policies) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let shipped = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/policies"));
    for entry in std::fs::read_dir(shipped).unwrap() {
        let path = entry.unwrap().path();
        std::fs::copy(&path, policies.path().join(path.file_name().unwrap())).unwrap();
    }
    let watch =
        "@id(\"watch\")\n@observe\nforbid (principal in Group::\"lamps\", action, resource);\n";
    std::fs::write(policies.path().join("30-watch.cedar"), watch).unwrap();
    let guard = guard_with(dir.path(), policies.path());
    let mut p = p.clone();
    let mut n = 0u64;
    group.bench_function("allow_distinct_targets_observe", |b| {
        b.iter(|| {
            n += 1;
            p.to = format!("/id-in/cse-in/meter-01/data-{n}");
            guard.decide(std::hint::black_box(&p), SystemTime::now())
        })
    });
}

criterion_group!(benches, decide);
criterion_main!(benches);
