//! The IN link's gateway side: how fast a page of feed records is verified and applied
//! (verify each signature, extend the chain, build the batch, write it with its cursor in one
//! flushed sled transaction, swap the caches), and what a 1 000 000-node repository costs to
//! look up — from the node cache, and from sled when the cache misses — and to hold in memory
//! (resident set size printed after loading and after warming the cache). Run with
//! `cargo bench --bench sync`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use m2mguard::feed::record::{Record, ZERO_HASH};
use m2mguard::feed::{Body, NodeBody, Position, SealingKey, Signed, SigningKey};
use m2mguard::store::{
    Batch, Keys, Node, NodeKind, NodeStatus, Nodes, Repository, SledStore, Store,
};
use m2mguard::sync::apply;

const PAGE: u64 = 1000;
const NODES: u64 = 1_000_000;

fn page(key: &SigningKey, from: u64, prev: &str) -> Vec<String> {
    let mut prev = prev.to_owned();
    (from..from + PAGE)
        .map(|seq| {
            let body = Body::NodePut(NodeBody {
                id: format!("Cnode-{:07}", seq % 50_000),
                kind: NodeKind::Ae,
                groups: vec!["meters".into()],
                status: if seq % 2 == 0 {
                    NodeStatus::Active
                } else {
                    NodeStatus::Suspended
                },
                registrar: None,
            });
            let header = Record {
                feed: "bench".into(),
                seq,
                prev: prev.clone(),
                at: 1_796_000_000,
                aud: vec!["*".into()],
                kind: String::new(),
                body: serde_json::Value::Null,
            };
            let signed = Signed::sign(key, header, body);
            prev.clone_from(&signed.hash);
            signed.compact
        })
        .collect()
}

fn repository(dir: &std::path::Path, cache: u64) -> (Arc<dyn Store>, Repository) {
    let store: Arc<dyn Store> = Arc::new(SledStore::open(dir).unwrap());
    let nodes = Arc::new(Nodes::new(store.clone(), cache));
    let keys = Arc::new(Keys::load(store.clone()).unwrap());
    (store, Repository::new(nodes, keys))
}

fn apply_page(c: &mut Criterion) {
    let key = SigningKey::from_seed(&[1; 32]);
    let public = key.public();
    let seal = SealingKey::from_scalar([2; 32]);
    let lines = page(&key, 1, ZERO_HASH);
    let mut group = c.benchmark_group("sync");
    group.throughput(Throughput::Elements(PAGE));
    group.sample_size(20);
    group.bench_function("apply_page_1000_records", |b| {
        b.iter_batched(
            || {
                let dir = tempfile::tempdir().unwrap();
                let (_, repo) = repository(dir.path(), 100_000);
                (dir, repo)
            },
            |(dir, repo)| {
                let mut position = Position::start("bench");
                let records: Vec<Signed> = lines
                    .iter()
                    .map(|l| {
                        let s = Signed::verify(l, &public).unwrap();
                        position.extend(&s).unwrap();
                        s
                    })
                    .collect();
                let changes = apply::records(&records, "gw", &seal, repo.nodes(), 1).unwrap();
                repo.apply(&changes.batch.with_cursor(&position.to_bytes()))
                    .unwrap();
                drop(repo);
                dir
            },
            BatchSize::PerIteration,
        );
    });
    group.finish();
}

fn rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

fn million(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let before = rss_mib();
    let started = Instant::now();
    {
        let (_, repo) = repository(dir.path(), 16);
        for chunk in 0..NODES / 10_000 {
            let mut batch = Batch::new();
            for i in chunk * 10_000..(chunk + 1) * 10_000 {
                batch = batch.put_node(Node::new(
                    &format!("Cnode-{i:07}"),
                    NodeKind::Ae,
                    vec!["meters".into()],
                    1,
                ));
            }
            repo.apply(&batch).unwrap();
        }
    }
    eprintln!(
        "sync/million: {NODES} nodes written in {:.1} s; RSS {before:.0} MiB before, {:.0} MiB after",
        started.elapsed().as_secs_f64(),
        rss_mib()
    );
    // Uncached: a cache far smaller than the repository, random ids.
    let (_, cold) = repository(dir.path(), 16);
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut group = c.benchmark_group("sync");
    group.measurement_time(Duration::from_secs(5));
    group.bench_function("lookup_1m_uncached", |b| {
        b.iter(|| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let id = format!("Cnode-{:07}", x % NODES);
            assert!(cold.nodes().get(&id).unwrap().is_some());
        })
    });
    drop(cold);
    let (_, warm) = repository(dir.path(), NODES);
    let before_warm = rss_mib();
    for i in 0..NODES {
        warm.nodes().get(&format!("Cnode-{i:07}")).unwrap();
    }
    eprintln!(
        "sync/million: node cache warmed with {NODES} nodes: RSS {before_warm:.0} MiB -> {:.0} MiB",
        rss_mib()
    );
    group.bench_function("lookup_1m_cached", |b| {
        b.iter(|| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let id = format!("Cnode-{:07}", x % NODES);
            assert!(warm.nodes().get(&id).unwrap().is_some());
        })
    });
    group.finish();
}

criterion_group!(benches, apply_page, million);
criterion_main!(benches);
