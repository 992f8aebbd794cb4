//! Crash fixtures for the gateway's sync: the real `m2mguard run` as a child process that can
//! be SIGKILLed, the feed fetched and verified incrementally with the node state its prefix
//! leads to, and the repository a dead gateway left read directly from sled. The publishers
//! are in `publish.rs`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use bytes::Bytes;
use http::Method;
use m2mguard::feed::{Body, Position, Signed};
use m2mguard::store::{NodeKind, NodeStatus, SledStore, Store};
use m2mguard::sync::Cursor;
use serde_json::Value;

use super::authority::{Setup, BIN};

/// A node as the feed states it: kind, groups, status, registrar.
pub type NodeState = (NodeKind, Vec<String>, NodeStatus, Option<String>);
/// Every node, by id.
pub type State = BTreeMap<String, NodeState>;

/// The feed as verified so far, from record 1.
pub struct Feed {
    pub records: Vec<Signed>,
    position: Position,
}

impl Feed {
    pub fn new() -> Feed {
        Feed {
            records: Vec::new(),
            position: Position::start("feed-t"),
        }
    }

    /// Fetches and verifies what the authority holds beyond what is here, up to its end.
    pub async fn fetch(&mut self, setup: &Setup) {
        let (operator, key) = (setup.operator(), setup.feed_key());
        for _ in 0..1000 {
            let path = format!("/v1/feed/records?after={}", self.records.len());
            let reply = operator.send(Method::GET, &path, Bytes::new()).await;
            let reply = reply.expect("the authority answers");
            assert_eq!(reply.status, 200, "records after {}", self.records.len());
            let text = String::from_utf8(reply.body.to_vec()).unwrap();
            for line in text.lines() {
                let signed = Signed::verify(line, &key).expect("record verifies");
                self.position
                    .extend(&signed)
                    .expect("record extends the chain");
                self.records.push(signed);
            }
            if text.lines().count() < 1000 {
                return;
            }
        }
        panic!("more than 1 000 pages");
    }

    /// The hash of record `seq` (64 zeros for 0).
    pub fn hash(&self, seq: u64) -> &str {
        match seq {
            0 => m2mguard::feed::record::ZERO_HASH,
            n => &self.records[usize::try_from(n).unwrap() - 1].hash,
        }
    }

    /// The nodes records 1..=`seq` lead to for gateway `me`.
    pub fn state(&self, seq: u64, me: &str) -> State {
        let mut state = State::new();
        let upto = usize::try_from(seq).unwrap();
        for record in self.records[..upto].iter().filter(|r| r.is_for(me)) {
            match &record.body {
                Body::NodePut(n) => {
                    let node = (n.kind, n.groups.clone(), n.status, n.registrar.clone());
                    state.insert(n.id.clone(), node);
                }
                Body::NodeRemove(n) => {
                    state.remove(&n.id);
                }
                _ => {}
            }
        }
        state
    }
}

/// What a gateway's repository holds: its feed cursor and its nodes.
pub struct Held {
    pub cursor: Option<Cursor>,
    pub nodes: State,
}

/// Reads the repository under `data` (the gateway that held it must be dead), then closes it.
pub fn held(data: &Path) -> Held {
    let store = open(data);
    let cursor = store
        .cursor()
        .unwrap()
        .map(|bytes| serde_json::from_slice::<Cursor>(&bytes).expect("the cursor is a Cursor"));
    let nodes = store.nodes().unwrap().into_iter().map(|n| {
        assert!(n.registered.is_none(), "{}: no node registered here", n.id);
        (n.id, (n.kind, n.groups, n.status, n.registrar))
    });
    Held {
        cursor,
        nodes: nodes.collect(),
    }
}

/// [`held`], off the runtime's threads.
pub async fn read(data: &Path) -> Held {
    let data = data.to_owned();
    tokio::task::spawn_blocking(move || held(&data))
        .await
        .unwrap()
}

/// Fails unless `held` is exactly `expected` (the state at record `seq`).
pub fn assert_nodes(held: &State, expected: &State, seq: u64) {
    let wrong: Vec<_> = expected
        .iter()
        .filter(|(id, n)| held.get(*id) != Some(*n))
        .map(|(id, _)| id)
        .chain(held.keys().filter(|id| !expected.contains_key(*id)))
        .collect();
    assert!(
        wrong.is_empty(),
        "at record {seq}: {} nodes differ from records 1..{seq}, e.g. {:?}",
        wrong.len(),
        &wrong[..wrong.len().min(5)]
    );
}

/// Opens the repository, waiting (at most 10 s) for its lock to be released.
fn open(data: &Path) -> SledStore {
    for _ in 0..500 {
        if let Ok(store) = SledStore::open(data) {
            return store;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    SledStore::open(data).unwrap()
}

/// `m2mguard run` on a configuration file, its stderr in a log file.
pub struct Process {
    pub child: tokio::process::Child,
    pub log: PathBuf,
    pub admin: String,
}

impl Process {
    /// Starts the gateway, logging as `filter` says, and waits (at most 30 s) for "m2mguard
    /// started". A start that fails because this test still holds the repository's lock is
    /// retried (at most 50 times).
    pub async fn start(config: &Path, log: PathBuf, filter: &str) -> Process {
        for _ in 0..50 {
            let file = std::fs::File::create(&log).unwrap();
            let mut child = tokio::process::Command::new(BIN)
                .args(["run", "-c", config.to_str().unwrap()])
                .env("RUST_LOG", filter)
                .stdout(std::process::Stdio::null())
                .stderr(file)
                .kill_on_drop(true)
                .spawn()
                .unwrap();
            for _ in 0..1500 {
                let text = std::fs::read_to_string(&log).unwrap_or_default();
                if let Some(line) = text.lines().find(|l| l.contains("m2mguard started")) {
                    let admin = field(line, "admin=");
                    return Process { child, log, admin };
                }
                if child.try_wait().unwrap().is_some() {
                    assert!(text.contains("could not acquire lock"), "exited: {text}");
                    break;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            child.start_kill().unwrap();
            child.wait().await.unwrap();
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("the gateway did not start");
    }

    /// SIGKILL, and wait for the process to be gone.
    pub async fn kill(mut self) {
        self.child.start_kill().unwrap();
        self.child.wait().await.unwrap();
    }

    /// The log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

/// The `seq` of `/readyz`'s "sync: record <seq>" at the admin API `admin` (None before the
/// first head).
pub async fn ready_seq(http: &super::HttpClient, admin: &str) -> Option<u64> {
    let uri = format!("http://{admin}/readyz");
    let request = http::Request::get(uri).body(Default::default()).unwrap();
    let body = String::from_utf8(super::send(http, request).await.body.to_vec()).unwrap();
    if body.contains("no head verified yet") {
        return None;
    }
    body.split("sync: record ")
        .nth(1)?
        .split(',')
        .next()?
        .parse()
        .ok()
}

/// Waits (at most `limit`, looking every `every`) until `check` holds; panics naming `what`
/// otherwise.
pub async fn until<F: std::future::Future<Output = bool>>(
    what: &str,
    limit: Duration,
    every: Duration,
    mut check: impl FnMut() -> F,
) {
    let deadline = std::time::Instant::now() + limit;
    while std::time::Instant::now() < deadline {
        if check().await {
            return;
        }
        tokio::time::sleep(every).await;
    }
    panic!("not within {limit:?}: {what}");
}

fn field(line: &str, name: &str) -> String {
    let at = line.find(name).expect("the field is logged") + name.len();
    line[at..].split_whitespace().next().unwrap().to_owned()
}

/// The seq and hash of gateway `id`'s last verified ack at the authority (0 and zeros: none).
pub async fn confirmed(setup: &Setup, id: &str) -> (u64, String) {
    let operator = setup.operator();
    let list = operator.call(Method::GET, "/v1/gateways", None).await;
    let list = list.expect("gateway list");
    let gateway = list["gateways"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["id"] == id)
        .expect("the gateway is known")
        .clone();
    match &gateway["confirmed"] {
        Value::Null => (0, m2mguard::feed::record::ZERO_HASH.to_owned()),
        c => (
            c["seq"].as_u64().unwrap(),
            c["hash"].as_str().unwrap().into(),
        ),
    }
}
