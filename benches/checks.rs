//! The message checks one at a time, and the whole guard with them on: check value (verify
//! an HMAC-SHA256 over the canonical form), timestamp replay check (a fresh request id each
//! time: the set grows and prunes as in service), sequence window, and a full decision of a
//! signed, timestamped request with a fresh id and sequence number every time (the policy
//! decision itself comes from the decision cache, as it would for a device repeating its
//! reading). Ends with the latency distribution (p50/p99/p999) of that full decision over
//! 200 000 requests. Run with `cargo bench --bench checks`.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use criterion::{criterion_group, criterion_main, Criterion};
use m2mguard::config::{ChecksConfig, KeyConfig, ReplayConfig, Requirement, Secret};
use m2mguard::guard::check_value::{sign, KeyRing};
use m2mguard::guard::replay::{format_ot, Timestamps};
use m2mguard::guard::window::Windows;
use m2mguard::guard::{Guard, MessageChecks, Pattern, Tokens};
use m2mguard::policy::Policies;
use m2mguard::primitive::{Operation, Peer, Primitive, Protocol, Security};
use m2mguard::store::{NodeKind, NodeSeed, Nodes, SledStore, Store};

const SECRET: [u8; 32] = [5; 32];

fn key() -> KeyConfig {
    KeyConfig {
        id: "meter-k1".into(),
        node: "Cmeter-01".into(),
        secret: Secret::new(&SECRET),
        insert: false,
    }
}

fn primitive(rqi: u64) -> Primitive {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    Primitive {
        op: Operation::Retrieve,
        to: "/id-in/cse-in/meter-01/data".into(),
        fr: "Cmeter-01".into(),
        rqi: format!("bench-{rqi}"),
        rvi: Some("4".into()),
        ot: Some(format_ot(now)),
        rqet: None,
        ty: None,
        content: Default::default(),
        security: Security::default(),
        peer: Peer {
            addr: SocketAddr::from(([127, 0, 0, 1], 40000)),
            protocol: Protocol::Http,
            tls_identity: None,
        },
    }
}

fn signed(n: u64) -> Primitive {
    let mut p = primitive(n);
    p.security.aus = Some(sign(&p, "meter-k1", &Secret::new(&SECRET), n));
    p
}

fn guard(dir: &Path) -> Guard {
    let store: Arc<dyn Store> = Arc::new(SledStore::open(dir).unwrap());
    let nodes = Arc::new(Nodes::new(store.clone(), 1000));
    nodes
        .seed(&[NodeSeed {
            id: "Cmeter-01".into(),
            kind: NodeKind::Ae,
            groups: vec!["devices".into(), "meters".into()],
        }])
        .unwrap();
    let policies =
        Policies::load(Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/policies"))).unwrap();
    let config = ChecksConfig {
        require: vec![Requirement {
            path: Pattern::new("/id-in/cse-in/meter-*"),
            check_value: true,
            timestamp: true,
            token: false,
        }],
        // One node sends millions of requests within the 300 s window here.
        replay: ReplayConfig {
            ids_per_node: 10_000_000,
            ids_total: 10_000_000,
            ..ReplayConfig::default()
        },
        keys: vec![key()],
    };
    let checks = MessageChecks::new(&config, Arc::new(Tokens::none()), store).unwrap();
    Guard::new(nodes, Arc::new(policies), checks)
}

fn stages(c: &mut Criterion) {
    let mut group = c.benchmark_group("checks");
    let ring = KeyRing::new(&[key()]);
    let p = signed(1);
    assert!(ring.verify(&p).unwrap().is_some());
    group.bench_function("check_value_verify", |b| {
        b.iter(|| ring.verify(std::hint::black_box(&p)))
    });

    // One node sending 1000 requests a second of simulated time, a 10 s window: about 10 000
    // remembered ids, pruned as they expire.
    let config = ReplayConfig {
        max_age: Duration::from_secs(10),
        max_skew: Duration::ZERO,
        ..ReplayConfig::default()
    };
    let timestamps = Timestamps::new(&config);
    let mut p = primitive(0);
    let start = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let mut n = 0u64;
    group.bench_function("replay_timestamp_fresh_id", |b| {
        b.iter(|| {
            n += 1;
            let now = start + n / 1000;
            if n % 1000 == 0 {
                p.ot = Some(format_ot(now));
            }
            p.rqi.clear();
            p.rqi.push_str(itoa(n, &mut [0; 20]));
            let ok = timestamps.check(&p, UNIX_EPOCH + Duration::from_secs(now));
            debug_assert!(ok.is_ok());
            ok
        })
    });
    assert!(
        timestamps.remembered() <= 11_000,
        "{}",
        timestamps.remembered()
    );

    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(SledStore::open(&dir.path().join("w")).unwrap());
    let windows = Windows::new(1024, 1 << 20, store);
    let mut seq = 0u64;
    group.bench_function("replay_sequence_window", |b| {
        b.iter(|| {
            seq += 1;
            windows.check("meter-k1", seq)
        })
    });

    let guard = guard(dir.path());
    let mut n = 0u64;
    group.bench_function("guard_all_checks_signed", |b| {
        b.iter_batched(
            || {
                n += 1;
                signed(n)
            },
            |p| assert!(guard.decide(&p, SystemTime::now()).is_allow()),
            criterion::BatchSize::SmallInput,
        )
    });
    group.finish();
    latency(&guard, n + 1);
}

/// Percentiles of single decisions, timed one by one (each includes `Instant` overhead).
fn latency(guard: &Guard, first: u64) {
    const N: u64 = 200_000;
    let requests: Vec<Primitive> = (first..first + N).map(signed).collect();
    let mut times: Vec<u64> = requests
        .iter()
        .map(|p| {
            let started = Instant::now();
            let allowed = guard.decide(p, SystemTime::now()).is_allow();
            let ns = started.elapsed().as_nanos() as u64;
            assert!(allowed);
            ns
        })
        .collect();
    times.sort_unstable();
    let at = |q: f64| times[((N as f64 * q) as usize).min(times.len() - 1)] as f64 / 1000.0;
    println!(
        "guard_all_checks_signed latency over {N} decisions: p50 {:.1} µs, p99 {:.1} µs, p99.9 {:.1} µs",
        at(0.5),
        at(0.99),
        at(0.999)
    );
}

fn itoa(n: u64, buf: &mut [u8; 20]) -> &str {
    let mut i = buf.len();
    let mut n = n;
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    std::str::from_utf8(&buf[i..]).unwrap()
}

criterion_group!(benches, stages);
criterion_main!(benches);
