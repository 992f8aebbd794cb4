//! The demo's second part: the IN link. An authority in this process (`authority init`, then
//! served), a kit for a second gateway (`authority gateway add`), that gateway on the built-in
//! configuration following the authority's feed in front of the same CSE; then the operator
//! deactivates a node and the gateway itself at the authority, and the demo shows each change
//! reaching the gateway and how long it took.

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use clap::Parser;
use http::Method;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

use m2mguard::authority;
use m2mguard::config::Config;
use m2mguard::gateway::Gateway;

use super::super::{dispatch, Cli, Failure};
use super::{send, HttpClient};

/// Runs the IN-link scenario against the CSE at `cse`.
pub async fn in_link(cse: SocketAddr) -> Result<(), Failure> {
    let dir = tempfile::tempdir().map_err(Failure::startup)?;
    let authority_dir = dir.path().join("authority");
    let config_file = authority_dir.join("authority.toml");
    let kit = dir.path().join("gateway-kit");
    let listen = free_loopback()?;
    println!("\nThe IN link: an authority in this process, a second gateway following its feed\n");
    operator(&[
        "init",
        "--dir",
        path(&authority_dir),
        "--feed",
        "demo",
        "--listen",
        &listen,
    ])
    .await?;
    let config = super::super::authority::load(&config_file)?;
    let running = authority::start(config).await.map_err(Failure::startup)?;
    let at = ["-c", path(&config_file)];
    operator(
        &[
            &at[..],
            &["gateway", "add", "--id", "demo-gw", "--out", path(&kit)],
        ]
        .concat(),
    )
    .await?;
    for (node, group) in [("Cmeter-01", "devices"), ("CAdmin", "operators")] {
        operator(&[&at[..], &["node", "enrol", node, "--group", group]].concat()).await?;
    }
    let gateway = synced_gateway(cse, &kit, dir.path()).await?;
    let g = gateway.http_addr;
    let client: HttpClient = Client::builder(TokioExecutor::new()).build_http();
    show(&client, g, "Cmeter-01", "enrolled at the authority").await?;
    let steps: [(&[&str], &str, &str); 3] = [
        (&["node", "deactivate", "Cmeter-01"], "Cmeter-01", "403"),
        (&["gateway", "deactivate", "demo-gw"], "CAdmin", "403"),
        (&["gateway", "activate", "demo-gw"], "CAdmin", "200"),
    ];
    for (args, fr, expect) in steps {
        operator(&[&at[..], args].concat()).await?;
        let started = Instant::now();
        let answer = until(&client, g, fr, expect).await?;
        println!(
            "    gateway: {fr} GET /cse-in -> {answer} ({} ms after the record was published)",
            started.elapsed().as_millis()
        );
    }
    gateway.shutdown().await;
    running.shutdown().await;
    Ok(())
}

/// Runs `m2mguard authority <args>`, printing it as the operator would type it.
async fn operator(args: &[&str]) -> Result<(), Failure> {
    println!("$ m2mguard authority {}", args.join(" "));
    let cli = Cli::try_parse_from(["m2mguard", "authority"].iter().chain(args))
        .map_err(|e| Failure::startup(anyhow::anyhow!("{e}")))?;
    // Boxed: the demo is itself a command that dispatch runs.
    Box::pin(dispatch(cli)).await
}

async fn synced_gateway(cse: SocketAddr, kit: &Path, dir: &Path) -> Result<Gateway, Failure> {
    let sync = std::fs::read_to_string(kit.join("sync.toml")).map_err(Failure::startup)?;
    let mut config = Config::builtin_synced(&sync)
        .map_err(|e| Failure::config(anyhow::anyhow!("built-in config with [sync]: {e:?}")))?;
    config.gateway.data_dir = dir.join("gateway-data");
    config.admin.listen = SocketAddr::from(([127, 0, 0, 1], 0));
    config.http.listen = SocketAddr::from(([127, 0, 0, 1], 0));
    config.http.upstream = format!("http://{cse}").parse().map_err(Failure::startup)?;
    let gateway = Gateway::start(config).await.map_err(Failure::startup)?;
    println!(
        "    gateway http://{} follows feed \"demo\" as demo-gw",
        gateway.http_addr
    );
    Ok(gateway)
}

async fn show(client: &HttpClient, g: SocketAddr, fr: &str, why: &str) -> Result<(), Failure> {
    let answer = until(client, g, fr, "200").await?;
    println!("    gateway: {fr} GET /cse-in -> {answer} ({why})");
    Ok(())
}

/// GET /cse-in as `fr` until the answer's status is `status` (at most 10 s).
async fn until(
    client: &HttpClient,
    g: SocketAddr,
    fr: &str,
    status: &str,
) -> Result<String, Failure> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let answer = send(client, g, fr, &Method::GET, "/cse-in", None, "in-link", &[]).await?;
        if answer.starts_with(status) || Instant::now() > deadline {
            return Ok(answer);
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

fn free_loopback() -> Result<String, Failure> {
    let probe = std::net::TcpListener::bind("127.0.0.1:0").map_err(Failure::startup)?;
    Ok(probe.local_addr().map_err(Failure::startup)?.to_string())
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap_or_default()
}
