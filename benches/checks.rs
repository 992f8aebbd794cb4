//! The message checks one at a time, and the whole guard with every stage on: check value
//! (verify an HMAC-SHA256 over the canonical form), timestamp replay check (a fresh request id
//! each time: the set grows and prunes as in service), sequence window, and a full decision of
//! a signed, timestamped create with a token (warm token cache) and a position that a
//! plausibility rule with every condition checks, with a fresh id and sequence number every
//! time (the Cedar decision itself comes from the decision cache, as it would for a device
//! repeating its reading). Ends with the latency distribution (p50/p99/p999) of that full decision over
//! 200 000 requests. Run with `cargo bench --bench checks`.

mod common;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, Criterion};
use m2mguard::config::Config;
use m2mguard::guard::check_value::{sign, verify};
use m2mguard::guard::replay::{format_ot, ReplayConfig, Timestamps};
use m2mguard::guard::window::Windows;
use m2mguard::guard::Plausibility;
use m2mguard::guard::{Guard, MessageChecks, Tokens};
use m2mguard::metrics::Metrics;
use m2mguard::policy::Policies;
use m2mguard::primitive::{Operation, Primitive};
use m2mguard::security::mac::MacKey;
use m2mguard::security::{CheckKey, KeyRing, Secret};
use m2mguard::store::{Keys, Nodes, SledStore, Store};

const SECRET: [u8; 32] = [5; 32];
const DAS_SECRET: [u8; 32] = [6; 32];

fn key() -> CheckKey {
    CheckKey::new("meter-k1", "Cmeter-01", Secret::new(&SECRET))
}

thread_local! {
    static TOKEN: String = token();
}

fn primitive(rqi: u64) -> Primitive {
    let mut p = common::request(Operation::Retrieve, "Cmeter-01", format!("bench-{rqi}"));
    p.ot = Some(format_ot(common::unix_now()));
    p
}

/// A content instance with a position, signed, with a token: what every check needs.
fn signed(n: u64) -> Primitive {
    let mut p = primitive(n);
    p.op = Operation::Create;
    p.ty = Some(4);
    p.content = Bytes::from_static(br#"{"m2m:cin":{"con":{"lat":52.5,"lon":13.4}}}"#);
    p.security.tokens = vec![TOKEN.with(Clone::clone)];
    p.security.aus = Some(sign(&p, "meter-k1", &Secret::new(&SECRET), n));
    p
}

/// The guard as `Gateway::start` builds it, from a configuration that requires every check on
/// the meter's target: check value, timestamp, token (HS256, no use limit: warm cache), and a
/// plausibility rule with every condition.
fn guard(dir: &Path) -> Guard {
    let key_file = |name, bytes: &[u8]| common::key_file(dir, name, bytes).display().to_string();
    let checks = format!(
        r#"
[[nodes]]
id = "Cmeter-01"
groups = ["devices", "meters"]
[[checks.require]]
path = "/id-in/cse-in/meter-*"
check_value = true
timestamp = true
token = true
[checks.replay]
ids_per_node = 10000000
ids_total = 10000000
[[checks.keys]]
id = "meter-k1"
node = "Cmeter-01"
file = "{meter}"
[[tokens.issuers]]
iss = "/id-in/das"
algorithms = ["HS256"]
key = "{das}"
[[plausibility]]
name = "meter-site"
path = "/id-in/cse-in/meter-*"
action = "deny"
latitude = "/m2m:cin/con/lat"
longitude = "/m2m:cin/con/lon"
region = {{ lat = 52.52, lon = 13.405, radius_m = 30000 }}
max_speed_kmh = 250
windows = ["* * * * *"]
sources = ["127.0.0.0/8"]
"#,
        meter = key_file("meter.key", &SECRET),
        das = key_file("das.key", &DAS_SECRET),
    );
    let upstream = SocketAddr::from(([127, 0, 0, 1], 9));
    let text = common::config_text(upstream, &dir.join("data"), common::POLICIES, &checks);
    let config = Config::parse(&text, "bench.toml").unwrap();
    let store: Arc<dyn Store> = Arc::new(SledStore::open(&config.gateway.data_dir).unwrap());
    let nodes = Arc::new(Nodes::new(store.clone(), 1000));
    nodes.seed(&config.nodes).unwrap();
    let policies = Policies::load(&config.policy_dir).unwrap();
    let tokens = Arc::new(Tokens::new(&config.tokens, "/id-in", store.clone()).unwrap());
    let keys = Arc::new(Keys::load(store.clone()).unwrap());
    keys.seed(&config.checks.keys).unwrap();
    let checks = MessageChecks::new(&config.checks, keys, tokens, store)
        .unwrap()
        .with_plausibility(Plausibility::new(
            &config.plausibility,
            Metrics::new().plausibility_flags(),
        ));
    Guard::new(nodes, Arc::new(policies), checks)
}

/// An HS256 token for Cmeter-01 from the bench's issuer, valid for an hour.
fn token() -> String {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine;
    let now = common::unix_now();
    let head = URL_SAFE_NO_PAD.encode(r#"{"alg":"HS256","typ":"JWT"}"#);
    let claims = format!(
        r#"{{"iss":"/id-in/das","aud":"/id-in","azp":"Cmeter-01","jti":"bench-1","exp":{}}}"#,
        now + 3600
    );
    let body = URL_SAFE_NO_PAD.encode(claims);
    let mac = MacKey::new(&Secret::new(&DAS_SECRET)).sign(format!("{head}.{body}").as_bytes());
    let sig = URL_SAFE_NO_PAD.encode(mac);
    format!("{head}.{body}.{sig}")
}

fn stages(c: &mut Criterion) {
    let mut group = c.benchmark_group("checks");
    let ring = KeyRing::new(&[key()]).unwrap();
    let p = signed(1);
    assert!(verify(&ring, &p).unwrap().is_some());
    group.bench_function("check_value_verify", |b| {
        b.iter(|| verify(&ring, std::hint::black_box(&p)))
    });

    // One node sending 1000 requests a second of simulated time, a 10 s window: about 11 000
    // remembered ids (an id is kept through its last second), pruned as they expire. The node's
    // share of the set is above that, so that every check is a fresh id accepted: with the
    // default 10 000 about one check in eleven was the refusal of a full set instead.
    let config = ReplayConfig {
        max_age: Duration::from_secs(10),
        max_skew: Duration::ZERO,
        ids_per_node: 20_000,
        ..ReplayConfig::default()
    };
    let timestamps = Timestamps::new(&config);
    let mut p = primitive(0);
    let start = common::unix_now();
    let (mut n, mut refused) = (0u64, 0u64);
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
            refused += u64::from(ok.is_err());
            ok
        })
    });
    assert_eq!(refused, 0, "every check a fresh id, accepted");
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
