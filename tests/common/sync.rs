//! A gateway that follows a real authority: `authority init` and `serve` (in this process), a
//! gateway kit from `authority gateway add`, and `m2mguard::gateway::Gateway` started with that
//! kit's `[sync]` in front of the echo upstream.

use std::future::Future;
use std::path::Path;
use std::time::Duration;

use m2mguard::authority::Running;
use m2mguard::config::Config;
use m2mguard::gateway::Gateway;

use super::authority::{Gateway as Kit, Setup};
use super::{client, echo_upstream, retrieve, Echo, HttpClient, POLICIES};

/// Heads every second, valid for five: so that a withheld head expires within a test.
const AUTHORITY_TIMING: &str = "heartbeat_s = 1\nhead_valid_s = 5\n";

pub struct Synced {
    pub setup: Setup,
    pub authority: Option<Running>,
    pub kit: Kit,
    pub echo: Echo,
    pub data: tempfile::TempDir,
    pub gateway: Option<Gateway>,
    pub http: HttpClient,
    /// The `[sync]` table the gateway starts with: the kit's, unless a test replaces it.
    pub sync: String,
    extra: String,
}

/// The gateway's configuration: no nodes of its own, the kit's [sync], and `extra`.
pub fn synced_config(echo: &Echo, data: &Path, sync: &str, extra: &str) -> String {
    format!(
        r#"
[gateway]
cse_id = "/id-in"
cse_name = "cse-in"
data_dir = "{data}"

[http]
listen = "127.0.0.1:0"
upstream = "http://{upstream}"
upstream_timeout_ms = 2000

[admin]
listen = "127.0.0.1:0"

[policy]
dir = "{POLICIES}"
{extra}
{sync}poll_wait_s = 2
backoff_max_s = 1
"#,
        data = data.display(),
        upstream = echo.addr,
    )
}

impl Synced {
    /// An authority with `nodes` enrolled (id, group), and a gateway following it.
    pub async fn new(nodes: &[(&str, &str)], extra: &str) -> Synced {
        let mut synced = Synced::unstarted(nodes, extra).await;
        synced.start_gateway().await;
        synced
    }

    /// As [`Synced::new`], the gateway not started yet.
    pub async fn unstarted(nodes: &[(&str, &str)], extra: &str) -> Synced {
        Synced::unstarted_with(nodes, extra, "").await
    }

    /// As [`Synced::unstarted`], with `authority_extra` appended to `authority.toml` (e.g. an
    /// `[authority.mqtt]` table).
    pub async fn unstarted_with(
        nodes: &[(&str, &str)],
        extra: &str,
        authority_extra: &str,
    ) -> Synced {
        let setup = Setup::new(&format!("{AUTHORITY_TIMING}{authority_extra}")).await;
        let authority = setup.start().await;
        let kit = setup.gateway("gw-a").await;
        for (id, group) in nodes {
            setup.ok(&["node", "enrol", id, "--group", group]).await;
        }
        Synced {
            sync: std::fs::read_to_string(kit.dir.join("sync.toml")).unwrap(),
            setup,
            authority: Some(authority),
            kit,
            echo: echo_upstream().await,
            data: tempfile::tempdir().unwrap(),
            gateway: None,
            http: client(),
            extra: extra.to_owned(),
        }
    }

    /// The authority again, on the same directory and port.
    pub async fn restart_authority(&mut self) {
        self.authority = Some(self.setup.start().await);
    }

    /// `m2mguard_sync_refused_total{reason}` at the gateway.
    pub async fn refused(&self, reason: &str) -> u64 {
        self.counter(&format!(
            "m2mguard_sync_refused_total{{reason=\"{reason}\"}}"
        ))
        .await
    }

    /// A counter's value on the gateway's `/metrics` (0 while it is not there).
    pub async fn counter(&self, name_and_labels: &str) -> u64 {
        let uri = format!("http://{}/metrics", self.gateway().admin_addr);
        let request = http::Request::get(uri).body(Default::default()).unwrap();
        let text = String::from_utf8(super::send(&self.http, request).await.body.to_vec()).unwrap();
        let prefix = format!("{name_and_labels} ");
        text.lines()
            .find_map(|l| l.strip_prefix(&prefix))
            .map_or(0, |v| v.trim().parse().unwrap())
    }

    pub async fn start_gateway(&mut self) {
        let text = synced_config(&self.echo, self.data.path(), &self.sync, &self.extra);
        let config = Config::parse(&text, "synced.toml").unwrap();
        self.gateway = Some(Gateway::start(config).await.unwrap());
    }

    pub async fn stop_gateway(&mut self) {
        if let Some(g) = self.gateway.take() {
            g.shutdown().await;
        }
    }

    pub fn gateway(&self) -> &Gateway {
        self.gateway.as_ref().expect("the gateway runs")
    }

    /// What GET /cse-in as `fr` came to: `"pass"` when the echo upstream answered it, else
    /// the gateway's rsc.
    pub async fn rsc(&self, fr: &str) -> String {
        outcome(&retrieve(&self.http, self.gateway().http_addr, fr).await)
    }

    /// `/readyz` of the gateway's admin API: status and body.
    pub async fn ready(&self) -> (u16, String) {
        let uri = format!("http://{}/readyz", self.gateway().admin_addr);
        let request = http::Request::get(uri).body(Default::default()).unwrap();
        let answer = super::send(&self.http, request).await;
        (
            answer.status.as_u16(),
            String::from_utf8_lossy(&answer.body).into_owned(),
        )
    }
}

/// Waits (at most 15 s) until `check` holds; panics naming `what` otherwise.
pub async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    while tokio::time::Instant::now() < deadline {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("not within 15 s: {what}");
}

/// `"pass"` for an answer of the echo upstream (201), else the gateway's rsc.
pub fn outcome(answer: &super::Answer) -> String {
    if answer.status == http::StatusCode::CREATED {
        "pass".to_owned()
    } else {
        answer.rsc().to_owned()
    }
}
