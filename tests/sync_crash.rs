//! Crash safety of the gateway's sync, with the real `m2mguard run` and SIGKILL. An authority
//! (in this process) publishes 10 000 records from four concurrent operator clients (enrol,
//! suspend, activate, deactivate, regroup, remove of 300 nodes) while the gateway, its cursor
//! at record 1, is down; it then catches up in pages of 1 000 and is killed 20 times, each
//! time once it has read one page (or, one time in four, two), after a random pause of up to
//! 1.2 times what applying a page took the first time: mostly while it verifies and writes a
//! page, sometimes just after. After each kill, before the restart, its sled repository is
//! read directly: the cursor names record S with record S's hash, the nodes are exactly what
//! records 1..S lead to, S never goes back, and the authority's confirmed seq for it is at
//! most S (nothing acknowledged is missing). In the end it reaches the last record and the
//! authority confirms that. A second test kills gateways while they apply their first
//! snapshot (3 000 nodes): each leaves none of it or all of it.

mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use m2mguard::feed::GatewayStatus;

use common::authority::Setup;
use common::crash::{assert_nodes, confirmed, read, until, Feed, Process};
use common::publish::{enrol, publish, Rng};
use common::sync::synced_config;

const RECORDS: usize = 10_000;
const KILLS: u64 = 20;
const PUBLISHERS: usize = 4;
/// Node ids per publisher and half.
const IDS: u64 = 75;
const INFO: &str = "info";
/// hyper's client pool says when an answer was read whole (a head, a page, a snapshot, an ack).
const POOL_LOG: &str = "info,hyper_util::client::legacy::pool=debug";
const POOLED: &str = "pooling idle connection";
const LONG: Duration = Duration::from_secs(120);
const OFTEN: Duration = Duration::from_millis(10);

/// A gateway's configuration file (and data directory `data`) for kit `id`; never a snapshot
/// once it has a cursor.
fn configure(setup: &Setup, echo: &common::Echo, id: &str, dir: &Path) -> PathBuf {
    let sync = std::fs::read_to_string(setup.dir.path().join(id).join("sync.toml")).unwrap();
    let sync = sync + "snapshot_after = 100000000\n";
    let text = synced_config(echo, &dir.join("data"), &sync, "");
    let path = dir.join("gateway.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// Publishes `records` from [`PUBLISHERS`] tasks numbered from `first`, each on its own nodes.
fn publishers(
    setup: &Arc<Setup>,
    first: usize,
    records: usize,
) -> Vec<tokio::task::JoinHandle<()>> {
    (0..PUBLISHERS)
        .map(|t| {
            let setup = setup.clone();
            let count = records / PUBLISHERS + usize::from(t < records % PUBLISHERS);
            tokio::spawn(async move { publish(&setup, first + t, IDS, count).await })
        })
        .collect()
}

/// The checks after a kill: the cursor names a record of the feed exactly, the nodes are that
/// prefix's, it went no further back than `last`, and the authority confirmed no more. The
/// cursor's seq and the confirmed one.
async fn check(setup: &Setup, feed: &mut Feed, data: &Path, last: u64) -> (u64, u64) {
    let (acked, acked_hash) = confirmed(setup, "gw-a").await;
    let held = read(data).await;
    feed.fetch(setup).await;
    let cursor = held.cursor.expect("the repository has a cursor");
    let s = cursor.position.seq;
    assert_eq!(cursor.position.feed, "feed-t");
    assert!(s <= feed.records.len() as u64, "record {s} exists");
    assert_eq!(cursor.position.hash, feed.hash(s), "the hash of record {s}");
    assert_eq!(cursor.gateway, GatewayStatus::Active);
    assert!(s >= last, "the cursor went back from {last} to {s}");
    assert_nodes(&held.nodes, &feed.state(s, "gw-a"), s);
    assert!(
        acked <= s,
        "the authority confirmed {acked}, the repository holds {s}"
    );
    assert_eq!(
        acked_hash,
        feed.hash(acked),
        "confirmed the feed's record {acked}"
    );
    (s, acked)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_during_a_10_000_record_sync_loses_nothing_acknowledged() {
    let began = Instant::now();
    let setup = Arc::new(Setup::new("").await);
    let _authority = setup.start().await;
    setup.gateway("gw-a").await;
    let echo = common::echo_upstream().await;
    let dir = tempfile::tempdir().unwrap();
    let config = configure(&setup, &echo, "gw-a", dir.path());
    let data = dir.path().join("data");
    let http = common::client();
    let log = |n: u64| dir.path().join(format!("gateway-{n}.log"));
    let mut feed = Feed::new();
    let passed = |gw: &Process, seq: u64| {
        let (gw, http) = (gw.admin.clone(), http.clone());
        async move {
            common::crash::ready_seq(&http, &gw)
                .await
                .is_some_and(|s| s >= seq)
        }
    };

    // The cursor first (an empty feed), then record 1 through the page path.
    let gw = Process::start(&config, log(0), INFO).await;
    until("the empty feed is applied", LONG, OFTEN, || passed(&gw, 0)).await;
    publish(&setup, 2 * PUBLISHERS, 1, 1).await;
    until("record 1 is applied", LONG, OFTEN, || passed(&gw, 1)).await;
    gw.kill().await;
    let mut last = check(&setup, &mut feed, &data, 1).await.0;

    for p in publishers(&setup, 0, RECORDS - 1) {
        p.await.unwrap();
    }
    let published = began.elapsed();
    let mut rng = Rng::new();
    let mut page = Duration::ZERO;
    for round in 1..=KILLS {
        let gw = Process::start(&config, log(round), POOL_LOG).await;
        // The head and a page read whole, or a second page after the first is applied: the
        // kill falls at a random point of verifying and writing that page, or just after.
        let pages = if round == 1 { 1 } else { 1 + rng.below(4) / 3 };
        let answers = 2 * usize::try_from(pages).unwrap();
        until(
            "the pages are read",
            LONG,
            Duration::from_millis(2),
            || async { gw.log().matches(POOLED).count() >= answers },
        )
        .await;
        let read = Instant::now();
        if round == 1 {
            // How long a page takes from read to applied, to aim the later kills into it;
            // this kill falls just after a commit, as its ack goes out.
            until("the page is applied", LONG, OFTEN, || passed(&gw, last + 1)).await;
            page = read.elapsed();
        } else {
            let pause = page * u32::try_from(rng.below(120)).unwrap() / 100;
            tokio::time::sleep(pause).await;
        }
        let pause = read.elapsed().as_millis();
        gw.kill().await;
        let (s, acked) = check(&setup, &mut feed, &data, last).await;
        let behind = feed.records.len() as u64 - s;
        eprintln!(
            "kill {round:2}: {pages} page(s) read + {pause:4} ms: record {s:5} (+{:4}), confirmed {acked:5}, feed {behind:4} ahead",
            s - last
        );
        last = s;
    }
    eprintln!(
        "{published:?} to publish {RECORDS} records; {:?}: {KILLS} kills",
        began.elapsed()
    );

    let gw = Process::start(&config, log(KILLS + 1), INFO).await;
    let end = RECORDS as u64;
    until("the gateway reaches the last record", LONG, OFTEN, || {
        passed(&gw, end)
    })
    .await;
    until("the authority confirms it", LONG, OFTEN, || async {
        confirmed(&setup, "gw-a").await.0 == end
    })
    .await;
    gw.kill().await;
    assert_eq!(check(&setup, &mut feed, &data, last).await, (end, end));
    assert_eq!(feed.records.len(), RECORDS, "exactly the records published");
    for n in 0..=KILLS + 1 {
        let text = std::fs::read_to_string(log(n)).unwrap();
        assert!(
            !text.contains("snapshot applied"),
            "run {n} took no snapshot"
        );
    }
    let nodes = feed.state(end, "gw-a").len();
    eprintln!("{:?}: caught up, {nodes} nodes", began.elapsed());
}

const SNAPSHOT_NODES: usize = 3_000;
const SNAPSHOT_KILLS: u64 = 8;
const APPLIED: &str = "feed: snapshot applied";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_during_the_first_snapshot_leaves_none_or_all_of_it() {
    let setup = Arc::new(Setup::new("").await);
    let _authority = setup.start().await;
    let enrolling: Vec<_> = (0..PUBLISHERS)
        .map(|t| {
            let setup = setup.clone();
            tokio::spawn(async move { enrol(&setup, t, SNAPSHOT_NODES / PUBLISHERS).await })
        })
        .collect();
    for e in enrolling {
        e.await.unwrap();
    }
    let mut feed = Feed::new();
    feed.fetch(&setup).await;
    let end = feed.records.len() as u64;
    let full = feed.state(end, "gw-0");
    assert_eq!(full.len(), SNAPSHOT_NODES);
    let echo = common::echo_upstream().await;
    let mut rng = Rng::new();
    let (mut window, mut inside, mut none) = (Duration::ZERO, 0, 0);
    for k in 0..=SNAPSHOT_KILLS {
        let id = format!("gw-{k}");
        setup.gateway(&id).await;
        let dir = tempfile::tempdir().unwrap();
        let config = configure(&setup, &echo, &id, dir.path());
        let gw = Process::start(&config, dir.path().join("gateway.log"), POOL_LOG).await;
        until(
            "the snapshot is fetched",
            LONG,
            Duration::from_millis(2),
            || async { gw.log().matches(POOLED).count() >= 2 },
        )
        .await;
        let fetched = Instant::now();
        if k == 0 {
            // How long from the snapshot read whole to applied, to aim the kills into it.
            until(
                "the snapshot is applied",
                LONG,
                Duration::from_millis(2),
                || async { gw.log().contains(APPLIED) },
            )
            .await;
            window = fetched.elapsed();
        } else {
            let pause = window * u32::try_from(rng.below(150)).unwrap() / 100;
            tokio::time::sleep(pause).await;
        }
        let log = dir.path().join("gateway.log");
        gw.kill().await;
        let applied = std::fs::read_to_string(&log).unwrap().contains(APPLIED);
        inside += u64::from(!applied);
        let (acked, _) = confirmed(&setup, &id).await;
        let held = read(&dir.path().join("data")).await;
        match held.cursor {
            None => {
                assert!(
                    !applied,
                    "a snapshot logged as applied is in the repository"
                );
                assert!(held.nodes.is_empty(), "no cursor, no nodes");
                assert_eq!(acked, 0, "nothing confirmed");
                none += 1;
            }
            Some(cursor) => {
                assert_eq!(cursor.position.seq, end, "the whole snapshot");
                assert_eq!(cursor.position.hash, feed.hash(end));
                assert_nodes(&held.nodes, &full, end);
                assert!(acked <= end);
            }
        }
    }
    eprintln!(
        "snapshot of {SNAPSHOT_NODES} nodes: {window:?} from read to applied; of {SNAPSHOT_KILLS} kills 0 to 1.5 times that after the read, {inside} came before the applied log line, {none} left nothing, {} all of it",
        SNAPSHOT_KILLS - none
    );
}
