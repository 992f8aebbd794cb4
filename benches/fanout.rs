//! Fan-out of the IN link: many gateways following one authority through one MQTT broker, in
//! this one process. Each follower is a real `m2mguard::sync::Follower` with
//! `Transport::Mqtt` — the same code `m2mguard run` runs with `sync.transport = "mqtt"` —
//! with its own kit from `m2mguard authority gateway add` (its keys, its client certificate:
//! its own HTTPS connection and MQTT client id) and its own sled repository in a temporary
//! directory; what is left out is the gateway's listeners, which a deactivation does not need.
//!
//! Run by `scripts/load_sync`, which starts mosquitto and the authority and makes the kits:
//!
//!     cargo bench --bench fanout -- AUTHORITY_TOML KITS_DIR BROKER NODE ROUNDS
//!
//! KITS_DIR holds one kit directory per follower (each with its `sync.toml`); NODE is enrolled
//! and active. After a warm-up (NODE deactivated and activated, every follower applying both),
//! each of ROUNDS rounds deactivates NODE through the operator API, then watches every
//! follower's repository (every 1 ms) and the authority's `GET /v1/gateways` (every 10 ms)
//! until all applied and all confirmed, at most 30 s, and activates NODE again. Prints per
//! round: the time from the API's answer to the last follower applying (and the median), and
//! to the last confirmation the authority holds. Exit 1 if any follower did not apply or
//! confirm a deactivation within 30 s.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use http::Method;
use m2mguard::authority::client::{segment, Client};
use m2mguard::authority::server::auth::OperatorToken;
use m2mguard::authority::AuthorityConfig;
use m2mguard::config::Config;
use m2mguard::metrics::Metrics;
use m2mguard::record::Recorder;
use m2mguard::store::{Keys, NodeStatus, Nodes, Repository, SledStore, Store};
use m2mguard::sync::Follower;
use tokio_util::sync::CancellationToken;

const EFFECT: Duration = Duration::from_secs(30);

struct Args {
    authority: PathBuf,
    kits: PathBuf,
    broker: String,
    node: String,
    rounds: usize,
}

fn args() -> Result<Args, String> {
    // cargo bench passes --bench after the user's arguments.
    let mut a = std::env::args().skip(1).filter(|a| a != "--bench");
    let mut next = |what: &str| a.next().ok_or(format!("missing {what}"));
    Ok(Args {
        authority: next("AUTHORITY_TOML")?.into(),
        kits: next("KITS_DIR")?.into(),
        broker: next("BROKER")?,
        node: next("NODE")?,
        rounds: next("ROUNDS")?
            .parse()
            .map_err(|e| format!("ROUNDS: {e}"))?,
    })
}

fn operator(path: &Path) -> Result<Client, String> {
    let config = AuthorityConfig::load(path).map_err(|e| format!("{e:?}"))?;
    let token = OperatorToken::load(&config.operator_token)?;
    let ca = m2mguard::tls::load_certs(&config.client_ca).map_err(|e| e.to_string())?;
    Client::new(&config.url(), &ca, None, Some(token.bearer())).map_err(|e| e.to_string())
}

/// One follower: its kit's `[sync]` with `transport = "mqtt"`, a repository of its own.
struct Gateway {
    nodes: Arc<Nodes>,
    _dir: tempfile::TempDir,
}

fn follower(kit: &Path, broker: &str, policies: &Path) -> Result<(Gateway, Follower), String> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let sync = std::fs::read_to_string(kit.join("sync.toml")).map_err(|e| e.to_string())?;
    let text = format!(
        "[gateway]\ncse_id = \"/id-in\"\ncse_name = \"cse-in\"\ndata_dir = \"{}\"\n\n[http]\nlisten = \"127.0.0.1:0\"\nupstream = \"http://127.0.0.1:9\"\n\n[admin]\nlisten = \"127.0.0.1:0\"\n\n[policy]\ndir = \"{}\"\n\n{sync}transport = \"mqtt\"\nmqtt_broker = \"{broker}\"\npoll_wait_s = 5\n",
        dir.path().display(),
        policies.display(),
    );
    let config = Config::parse(&text, &kit.display().to_string()).map_err(|e| {
        e.iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("; ")
    })?;
    let sync = config.sync.ok_or("no [sync] in the kit")?;
    let store: Arc<dyn Store> = Arc::new(SledStore::open(dir.path()).map_err(|e| e.to_string())?);
    let nodes = Arc::new(Nodes::new(store.clone(), 1024));
    let keys = Arc::new(Keys::load(store).map_err(|e| e.to_string())?);
    let repository = Arc::new(Repository::new(nodes.clone(), keys));
    let recorder = Arc::new(Recorder::new(Vec::new()));
    let follower = Follower::new(sync, repository, Arc::new(Metrics::new()), recorder)?;
    Ok((Gateway { nodes, _dir: dir }, follower))
}

fn status(g: &Gateway, node: &str) -> Option<NodeStatus> {
    g.nodes.get(node).ok().flatten().map(|n| n.status)
}

/// The authority's confirmed seq for every gateway it knows.
async fn confirmed(op: &Client) -> Vec<u64> {
    let Ok(list) = op.call(Method::GET, "/v1/gateways", None).await else {
        return Vec::new();
    };
    list["gateways"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|g| g["confirmed"]["seq"].as_u64().unwrap_or(0))
        .collect()
}

struct Round {
    applied: Vec<Duration>,
    confirmed: Option<Duration>,
}

/// Publishes `action` for `node`, then waits until every follower holds `want` and the
/// authority has every gateway confirming the record (bounded by EFFECT).
async fn round(
    op: &Client,
    gws: &[Gateway],
    node: &str,
    action: &str,
    want: NodeStatus,
) -> Result<Round, String> {
    let path = format!("/v1/nodes/{}/{action}", segment(node));
    let answer = op
        .call(Method::POST, &path, None)
        .await
        .map_err(|e| e.to_string())?;
    let since = Instant::now();
    let seq = answer["seq"].as_u64().ok_or("no seq in the answer")?;
    let mut applied: Vec<Option<Duration>> = vec![None; gws.len()];
    let mut confirmed_at = None;
    let mut last_poll = since - Duration::from_secs(1);
    while since.elapsed() < EFFECT {
        for (i, g) in gws.iter().enumerate() {
            if applied[i].is_none() && status(g, node) == Some(want) {
                applied[i] = Some(since.elapsed());
            }
        }
        if confirmed_at.is_none() && last_poll.elapsed() >= Duration::from_millis(10) {
            last_poll = Instant::now();
            let seqs = confirmed(op).await;
            if seqs.len() >= gws.len() && seqs.iter().all(|&s| s >= seq) {
                confirmed_at = Some(since.elapsed());
            }
        }
        if confirmed_at.is_some() && applied.iter().all(Option::is_some) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let missing = applied.iter().filter(|a| a.is_none()).count();
    if missing > 0 {
        return Err(format!(
            "{missing} of {} followers did not apply record {seq} within {EFFECT:?}",
            gws.len()
        ));
    }
    Ok(Round {
        applied: applied.into_iter().flatten().collect(),
        confirmed: confirmed_at,
    })
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

async fn run(a: Args) -> Result<(), String> {
    let op = operator(&a.authority)?;
    let policies = tempfile::tempdir().map_err(|e| e.to_string())?;
    let mut kits: Vec<PathBuf> = std::fs::read_dir(&a.kits)
        .map_err(|e| e.to_string())?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.join("sync.toml").is_file())
        .collect();
    kits.sort();
    let stop = CancellationToken::new();
    let mut gws = Vec::new();
    let started = Instant::now();
    for kit in &kits {
        let (g, f) = follower(kit, &a.broker, policies.path())?;
        tokio::spawn(f.run(stop.child_token()));
        gws.push(g);
    }
    let mut problems = 0;
    let n = gws.len();
    let warm = round(&op, &gws, &a.node, "deactivate", NodeStatus::Deactivated).await;
    let warm = warm.and(round(&op, &gws, &a.node, "activate", NodeStatus::Active).await);
    match warm {
        Ok(_) => println!(
            "fan-out: {n} followers (mqtt) started and warmed up in {}",
            ms(started.elapsed())
        ),
        Err(e) => {
            stop.cancel();
            return Err(format!("warm-up: {e}"));
        }
    }
    for i in 1..=a.rounds {
        match round(&op, &gws, &a.node, "deactivate", NodeStatus::Deactivated).await {
            Ok(mut r) => {
                r.applied.sort();
                let confirmed = r.confirmed.map_or("not within 30 s".to_owned(), ms);
                if r.confirmed.is_none() {
                    problems += 1;
                }
                println!(
                    "fan-out round {i}: {n} followers applied the deactivation, the last {} after the API's answer (median {}, 90th {}); the authority held all {n} confirmations after {confirmed}",
                    ms(r.applied[n - 1]),
                    ms(r.applied[(n - 1) / 2]),
                    ms(r.applied[(n * 9).div_ceil(10) - 1]),
                );
            }
            Err(e) => {
                problems += 1;
                println!("fan-out round {i}: {e}");
            }
        }
        if let Err(e) = round(&op, &gws, &a.node, "activate", NodeStatus::Active).await {
            problems += 1;
            println!("fan-out round {i}, activation: {e}");
        }
    }
    stop.cancel();
    if problems > 0 {
        return Err(format!("{problems} round(s) did not complete"));
    }
    Ok(())
}

fn main() {
    let args = match args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("fanout: {e}\nusage: cargo bench --bench fanout -- AUTHORITY_TOML KITS_DIR BROKER NODE ROUNDS");
            std::process::exit(2);
        }
    };
    // The followers' own log lines (RUST_LOG, default warn: refusals, undelivered acks, the
    // broker away) on stderr, as `m2mguard run` writes them.
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let runtime = tokio::runtime::Runtime::new().expect("a tokio runtime");
    if let Err(e) = runtime.block_on(run(args)) {
        eprintln!("fanout: {e}");
        std::process::exit(1);
    }
}
