//! `m2mguard demo`: the gateway on the built-in configuration in front of an in-process
//! oneM2M CSE, a scripted scenario over real loopback sockets, and a table of the decisions.
//! On top of the built-in configuration the demo enrols a fresh key for Cmeter-01 and requires
//! a check value and a timestamp on `/id-in/cse-in/meter-02`, to show those checks too.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

use std::time::{SystemTime, UNIX_EPOCH};

use m2mguard::admin::client::AdminClient;
use m2mguard::config::{AuditConfig, Config};
use m2mguard::feed::keys::random32;
use m2mguard::feed::{SigningKey, VerifyingKey};
use m2mguard::gateway::Gateway;
use m2mguard::guard::check_value::sign;
use m2mguard::guard::replay::format_ot;
use m2mguard::guard::Pattern;
use m2mguard::guard::Requirement;
use m2mguard::minicse;
use m2mguard::primitive::{Operation, Peer, Primitive, Protocol};
use m2mguard::record::{Outcome, Overflow, Record, Records};
use m2mguard::security::{CheckKey, KeyOrigin, Secret};

mod in_link;

use super::{table, Failure};

pub(super) type HttpClient =
    Client<hyper_util::client::legacy::connect::HttpConnector, Full<Bytes>>;

/// One scripted step: a request, or an operator action through the admin API.
enum Step {
    Request {
        fr: &'static str,
        method: Method,
        path: &'static str,
        content: Option<Content>,
    },
    Deactivate(&'static str),
    /// A retrieve by Cmeter-01 with a timestamp and a check value under the demo's key; with
    /// `again`, the previous signed request is sent once more, unchanged (a replay).
    Signed {
        path: &'static str,
        again: bool,
    },
}

/// What a create carries: a container named so, or a content instance with this value.
#[derive(Clone, Copy)]
pub(super) enum Content {
    Container(&'static str),
    Instance(&'static str),
}

use Content::{Container, Instance};

impl Content {
    /// The resource type and the JSON body of the create.
    fn ty_and_body(self) -> (u8, String) {
        match self {
            Container(rn) => (3, serde_json::json!({"m2m:cnt": {"rn": rn}}).to_string()),
            Instance(con) => (4, serde_json::json!({"m2m:cin": {"con": con}}).to_string()),
        }
    }
}

/// Where the demo requires a check value and a timestamp.
const SIGNED_TARGET: &str = "/id-in/cse-in/meter-02";

/// A retrieve of `path` by `fr`.
const fn get(fr: &'static str, path: &'static str) -> Step {
    Step::Request {
        fr,
        method: Method::GET,
        path,
        content: None,
    }
}

/// A delete of `path` by `fr`.
const fn delete(fr: &'static str, path: &'static str) -> Step {
    Step::Request {
        fr,
        method: Method::DELETE,
        path,
        content: None,
    }
}

/// A create of `content` below `path` by `fr`.
const fn create(fr: &'static str, path: &'static str, content: Content) -> Step {
    Step::Request {
        fr,
        method: Method::POST,
        path,
        content: Some(content),
    }
}

const SCRIPT: &[Step] = &[
    create("Cmeter-01", "/cse-in", Container("meter-01")),
    create("Cmeter-01", "/cse-in/meter-01", Instance("21.5")),
    get("Clamp-01", "/cse-in/meter-01"),
    create("Clamp-01", "/cse-in/meter-01", Instance("off")),
    delete("Cmeter-01", "/cse-in/meter-01"),
    get("Cstranger", "/cse-in"),
    Step::Deactivate("Clamp-01"),
    get("Clamp-01", "/cse-in/meter-01"),
    delete("CAdmin", "/cse-in/meter-01"),
    create("Cmeter-01", "/cse-in", Container("meter-02")),
    get("Cmeter-01", "/cse-in/meter-02"),
    Step::Signed {
        path: "/cse-in/meter-02",
        again: false,
    },
    Step::Signed {
        path: "/cse-in/meter-02",
        again: true,
    },
];

pub async fn demo() -> Result<(), Failure> {
    let mut config = Config::builtin()
        .map_err(|e| Failure::config(anyhow::anyhow!("built-in config: {e:?}")))?;
    let data = tempfile::tempdir().map_err(Failure::startup)?;
    let cse = minicse::start(loopback(), &config.gateway.cse_id, &config.gateway.cse_name)
        .await
        .map_err(Failure::startup)?;
    config.gateway.data_dir = data.path().to_owned();
    config.admin.listen = loopback();
    config.http.listen = loopback();
    config.http.upstream = format!("http://{}", cse.addr)
        .parse()
        .map_err(Failure::startup)?;
    let key = demo_key()?;
    config.checks.keys.push(key.clone());
    config.checks.require.push(Requirement {
        path: Pattern::new(SIGNED_TARGET),
        check_value: true,
        timestamp: true,
        token: false,
    });
    let log = data.path().join("audit");
    let audit_key = std::sync::Arc::new(SigningKey::from_seed(&random32()));
    let log_key = audit_key.public();
    config.audit = Some(AuditConfig::new(
        log.clone(),
        audit_key,
        &config.gateway.cse_id,
    ));
    let gateway = Gateway::start(config).await.map_err(Failure::startup)?;
    let gateway_addr = gateway.http_addr;
    println!(
        "m2mguard demo: gateway http://{gateway_addr} -> in-process CSE http://{}, admin http://{}",
        cse.addr, gateway.admin_addr
    );
    println!("(built-in config, policies from ./policies, repository and audit log in a temporary directory)\n");

    // Every record of the run; the script waits for each, so the queue never fills.
    let decisions = gateway
        .state
        .records("demo", 1024, Overflow::Wait(Duration::from_secs(1)));
    let rows = play(gateway_addr, gateway.admin_addr, decisions, &key).await;
    gateway.shutdown().await;
    let rows = rows?;
    print!(
        "{}",
        table(
            &[
                "#",
                "ORIGINATOR",
                "OPERATION",
                "TARGET",
                "ANSWER",
                "DECISION",
                "WHY"
            ],
            &rows
        )
    );
    println!("\n{}", audited(&log, &log_key)?);
    let in_link = in_link::in_link(cse.addr).await;
    drop(cse);
    in_link
}

/// What `m2mguard audit verify` says of the run's audit log, in one line.
fn audited(log: &std::path::Path, key: &VerifyingKey) -> Result<String, Failure> {
    let report = m2mguard::audit::verify::verify(log, key, None, &[]).map_err(Failure::startup)?;
    if !report.ok() {
        let problems: Vec<String> = report.problems.iter().map(ToString::to_string).collect();
        return Err(Failure::startup(anyhow::anyhow!(
            "the demo's audit log does not verify: {}",
            problems.join("; ")
        )));
    }
    Ok(format!(
        "audit log: every decision above and the gateway's start and stop, {} lines, hash-chained, {} signed checkpoint(s): verified, as `m2mguard audit verify` does",
        report.lines, report.checkpoints
    ))
}

/// A fresh random key for Cmeter-01, for this run only.
fn demo_key() -> Result<CheckKey, Failure> {
    let mut bytes = [0u8; 32];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut bytes)
        .map_err(|_| Failure::startup(anyhow::anyhow!("no random bytes for the demo key")))?;
    Ok(CheckKey {
        origin: KeyOrigin::Config,
        ..CheckKey::new("demo-meter-k1", "Cmeter-01", Secret::new(&bytes))
    })
}

/// The headers of a signed retrieve of `to` by Cmeter-01: `X-M2M-OT` and `X-M2M-AS`.
fn signature(key: &CheckKey, to: &str, rqi: &str, seq: u64) -> Vec<(&'static str, String)> {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let ot = format_ot(now);
    let peer = Peer::unauthenticated(loopback(), Protocol::Http);
    let mut p = Primitive::new(Operation::Retrieve, to, key.node.as_str(), rqi, peer);
    p.ot = Some(ot.clone());
    let aus = sign(&p, &key.id, &key.secret, seq);
    vec![("X-M2M-OT", ot), ("X-M2M-AS", aus)]
}

fn loopback() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

async fn play(
    gateway: SocketAddr,
    admin: SocketAddr,
    decisions: Records,
    key: &CheckKey,
) -> Result<Vec<[String; 7]>, Failure> {
    let client: HttpClient = Client::builder(TokioExecutor::new()).build_http();
    let admin = AdminClient::new(admin);
    let mut rows = Vec::new();
    let mut last_signed = (String::new(), Vec::new());
    for (n, step) in SCRIPT.iter().enumerate() {
        let row = match step {
            Step::Deactivate(id) => {
                admin.deactivate(id).await.map_err(Failure::startup)?;
                let who = (*id).to_owned();
                [
                    format!("{}", n + 1),
                    who,
                    "deactivate".into(),
                    "(admin API)".into(),
                    "200".into(),
                    "-".into(),
                    "operator deactivates the node".into(),
                ]
            }
            Step::Signed { path, again } => {
                if !again {
                    let rqi = format!("demo-{}", n + 1);
                    last_signed = (
                        rqi.clone(),
                        signature(key, SIGNED_TARGET, &rqi, n as u64 + 1),
                    );
                }
                let (rqi, headers) = &last_signed;
                let fr = key.node.as_str();
                let answer =
                    send(&client, gateway, fr, &Method::GET, path, None, rqi, headers).await?;
                let record = next_decision(&decisions, rqi).await?;
                row(n, fr, answer, record)
            }
            Step::Request {
                fr,
                method,
                path,
                content,
            } => {
                let rqi = format!("demo-{}", n + 1);
                let answer = send(&client, gateway, fr, method, path, *content, &rqi, &[]).await?;
                let record = next_decision(&decisions, &rqi).await?;
                row(n, fr, answer, record)
            }
        };
        rows.push(row);
    }
    Ok(rows)
}

/// One table row for a request's answer and recorded decision.
fn row(n: usize, fr: &str, answer: String, record: Record) -> [String; 7] {
    let (decision, why) = match (record.outcome, record.would_deny) {
        (Outcome::Allowed { .. } | Outcome::Failed { .. }, Some(denial)) => (
            format!("would deny ({})", denial.stage),
            denial.reason.to_string(),
        ),
        (Outcome::Allowed { policies, .. }, None) => (
            "allow".to_owned(),
            format!("permitted by {}", policies.join(", ")),
        ),
        (Outcome::Failed { failure, .. }, None) => ("allow".to_owned(), failure.to_string()),
        (Outcome::Denied(denial), _) => (
            format!("deny ({})", denial.stage),
            denial.reason.to_string(),
        ),
        (Outcome::Refused(refusal), _) => ("refused".to_owned(), refusal.to_string()),
    };
    [
        format!("{}", n + 1),
        fr.to_owned(),
        record.about.op.to_owned(),
        record.about.to,
        answer,
        decision,
        why,
    ]
}

#[allow(clippy::too_many_arguments)]
pub(super) async fn send(
    client: &HttpClient,
    gateway: SocketAddr,
    fr: &str,
    method: &Method,
    path: &str,
    content: Option<Content>,
    rqi: &str,
    extra: &[(&'static str, String)],
) -> Result<String, Failure> {
    let (content_type, body) = match content.map(Content::ty_and_body) {
        Some((ty, body)) => (format!("application/json;ty={ty}"), body),
        None => ("application/json".to_owned(), String::new()),
    };
    let request = Request::builder()
        .method(method.clone())
        .uri(format!("http://{gateway}{path}"))
        .header("X-M2M-Origin", fr)
        .header("X-M2M-RI", rqi)
        .header("X-M2M-RVI", "4")
        .header("Accept", "application/json")
        .header("Content-Type", content_type);
    let request = extra
        .iter()
        .fold(request, |r, (name, value)| r.header(*name, value.as_str()))
        .body(Full::new(Bytes::from(body)))
        .map_err(Failure::startup)?;
    let response = client.request(request).await.map_err(Failure::startup)?;
    let status = response.status().as_u16();
    let rsc = response
        .headers()
        .get("x-m2m-rsc")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("-")
        .to_owned();
    let _ = response.into_body().collect().await;
    Ok(format!("{status} rsc={rsc}"))
}

/// The record of request `rqi`, within 5 s. (Polled: the queue's consumer end blocks, and a
/// wait on it must never be abandoned with a record in hand.)
async fn next_decision(decisions: &Records, rqi: &str) -> Result<Record, Failure> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while tokio::time::Instant::now() < deadline {
        match decisions.try_recv() {
            Some(record) if record.about.rqi == rqi => return Ok(record),
            Some(_) => continue,
            None => tokio::time::sleep(Duration::from_millis(5)).await,
        }
    }
    Err(Failure::startup(anyhow::anyhow!(
        "no decision recorded for {rqi}"
    )))
}
