//! SIGKILL under load, 20 times, on one log: each time the log verifies as the dead gateway
//! left it, and every request that was answered more than the durability bound before the
//! kill is in it. The next start goes on with the same chain.

mod common;

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::audit::{self, Dirs};
use common::crash::Process;

/// Answered this long before the kill, a request's record must be in the log: the default
/// `flush_interval_ms` (100) plus a write and sync, with room for a loaded machine.
const BOUND: Duration = Duration::from_millis(600);
const ROUNDS: usize = 20;
const CLIENTS: usize = 4;

/// The `name=` field of the "m2mguard started" line.
fn started_field(log: &str, name: &str) -> String {
    let line = log
        .lines()
        .find(|l| l.contains("m2mguard started"))
        .unwrap();
    let at = line.find(name).unwrap() + name.len();
    line[at..].split_whitespace().next().unwrap().to_owned()
}

/// Requests answered, with when.
type Answered = Arc<Mutex<Vec<(String, Instant)>>>;

/// Clients sending legitimate requests as fast as the gateway answers, until `stop`.
fn load(
    http: std::net::SocketAddr,
    round: usize,
    stop: Arc<tokio::sync::Notify>,
) -> (Answered, Vec<tokio::task::JoinHandle<()>>) {
    let answered: Answered = Arc::default();
    let tasks = (0..CLIENTS)
        .map(|c| {
            let (answered, stop) = (answered.clone(), stop.clone());
            tokio::spawn(async move {
                let client = common::client();
                for i in 0..100_000 {
                    let rqi = format!("k{round}-{c}-{i}");
                    let request =
                        common::onem2m("GET", format!("http://{http}/cse-in"), "CAdmin", &rqi)
                            .body(http_body_util::Full::default())
                            .unwrap();
                    let sent = tokio::select! {
                        () = stop.notified() => return,
                        sent = client.request(request) => sent,
                    };
                    match sent {
                        Ok(response)
                            if response
                                .headers()
                                .get("x-m2m-rsc")
                                .is_some_and(|v| v == "2001") =>
                        {
                            answered.lock().unwrap().push((rqi, Instant::now()));
                        }
                        _ => return,
                    }
                }
            })
        })
        .collect();
    (answered, tasks)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigkill_under_load_loses_only_what_the_bound_allows() {
    let echo = common::echo_upstream().await;
    let dirs = Dirs::new();
    let config = dirs.root.path().join("gateway.toml");
    std::fs::write(&config, dirs.config(echo.addr, "checkpoint_records = 200")).unwrap();
    let mut total_lost = 0;
    let mut worst = Duration::ZERO;
    for round in 0..ROUNDS {
        let log = dirs.root.path().join(format!("gateway-{round}.log"));
        let process = Process::start(&config, log, "info").await;
        let http: std::net::SocketAddr = started_field(&process.log(), "http=").parse().unwrap();
        let stop = Arc::new(tokio::sync::Notify::new());
        let (answered, tasks) = load(http, round, stop.clone());
        tokio::time::sleep(Duration::from_millis(300 + 37 * (round as u64 % 10))).await;
        let killed = Instant::now();
        process.kill().await;
        stop.notify_waiters();
        for task in tasks {
            let _ = task.await;
        }

        let (code, report) = audit::verify(&dirs.log(), &dirs.public_key());
        assert_eq!(
            code, 0,
            "round {round}: the log a SIGKILL left does not verify:\n{report}"
        );
        let recorded: HashSet<String> = audit::lines(&dirs.log())
            .iter()
            .filter_map(|l| l["rqi"].as_str().map(str::to_owned))
            .collect();
        let answered = answered.lock().unwrap();
        assert!(
            answered.len() > 10,
            "round {round}: only {} requests answered",
            answered.len()
        );
        for (rqi, at) in answered.iter().filter(|(rqi, _)| !recorded.contains(rqi)) {
            let before_kill = killed.saturating_duration_since(*at);
            assert!(
                before_kill < BOUND,
                "round {round}: {rqi}, answered {before_kill:?} before the kill, is not in the log"
            );
            worst = worst.max(before_kill);
            total_lost += 1;
        }
    }
    // The next start cuts what the last kill tore, records the unclean end, and goes on.
    let log = dirs.root.path().join("gateway-last.log");
    let process = Process::start(&config, log, "info").await;
    let http: std::net::SocketAddr = started_field(&process.log(), "http=").parse().unwrap();
    assert_eq!(
        audit::get(&common::client(), http, "CAdmin", "after")
            .await
            .rsc(),
        "2001"
    );
    process.kill().await;
    let lines = audit::lines(&dirs.log());
    let unclean = lines
        .iter()
        .filter(|l| l["event"] == "audit.open" && l["previous"] == "unclean")
        .count();
    assert_eq!(unclean, ROUNDS, "every start after a kill says so");
    let (code, report) = audit::verify(&dirs.log(), &dirs.public_key());
    assert_eq!(code, 0, "{report}");
    eprintln!("{ROUNDS} SIGKILLs: {total_lost} answered requests not in the log, each answered at most {worst:?} before its kill (bound {BOUND:?})");
}
