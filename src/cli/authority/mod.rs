//! `m2mguard authority …`: the IN-side service (`init`, `serve`) and the operator's commands,
//! which talk to a running authority over HTTPS with the operator token (`node`, `key`,
//! `token`, `gateway`, `feed`, `report`). One file per group of commands.

mod feed;
mod gateway;
mod init;
mod keys;
mod nodes;
mod reports;
mod serve;

use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};

use m2mguard::authority::client::Client;
use m2mguard::authority::server::auth::OperatorToken;
use m2mguard::authority::AuthorityConfig;

use super::{Failure, LogFormat};

#[derive(Args)]
#[command(
    after_help = "Every command that publishes prints the record it published \
(`record N (first 16 hex digits of its hash)`). Secrets are never printed: `key add` and \
`key rotate` write them to --secret-out (mode 0600).\n\nExit codes: 0 success; 64 invalid \
authority.toml or an unusable key, certificate or token file; 1 the authority unreachable or \
refusing (its error is printed), a port in use, or a file that would be overwritten.\n\n\
Example:\n  m2mguard authority init --dir auth && m2mguard authority serve -c auth/authority.toml\n  \
m2mguard authority -c auth/authority.toml node enrol Cmeter-01 --group meters"
)]
pub struct Authority {
    /// The authority's configuration file (as `authority init` writes it).
    #[arg(
        short,
        long,
        value_name = "FILE",
        default_value = "authority.toml",
        global = true
    )]
    config: PathBuf,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Create a new authority: DIR/authority.toml, the feed key, a CA, a server certificate
    /// and the operator token. Refuses to overwrite any existing file.
    Init(init::Init),
    /// Serve the feed and the operator API over HTTPS until SIGINT or SIGTERM.
    Serve,
    /// Enrol, update, suspend, deactivate, activate, revoke, remove, list or show nodes.
    #[command(subcommand)]
    Node(nodes::Action),
    /// Add, rotate or remove a node's check-value keys.
    #[command(subcommand)]
    Key(keys::Action),
    /// Revoke access-control tokens on every gateway.
    #[command(subcommand)]
    Token(keys::TokenAction),
    /// Add a gateway (its keys, certificate and [sync] snippet), list, activate or deactivate
    /// gateways, list the audit checkpoints a gateway anchored here.
    #[command(subcommand)]
    Gateway(gateway::Action),
    /// Show the feed's records, decoded, or its current signed head.
    #[command(subcommand)]
    Feed(feed::Action),
    /// List the misbehaviour reports gateways sent, and what the authority's rules did.
    #[command(subcommand)]
    Report(reports::Action),
}

pub async fn authority(args: Authority, log: LogFormat) -> Result<(), Failure> {
    let path = args.config.as_path();
    match args.command {
        Command::Init(init) => init::init(init),
        Command::Serve => serve::serve(path, log).await,
        Command::Node(action) => nodes::run(&operator(path)?, action).await,
        Command::Key(action) => keys::run(&operator(path)?, action).await,
        Command::Token(action) => keys::token(&operator(path)?, action).await,
        Command::Gateway(action) => gateway::run(path, action).await,
        Command::Feed(action) => feed::run(&operator(path)?, action).await,
        Command::Report(action) => reports::run(&operator(path)?, action).await,
    }
}

/// Loads `authority.toml`, its errors located (exit 64).
pub fn load(path: &Path) -> Result<AuthorityConfig, Failure> {
    AuthorityConfig::load(path).map_err(|errors| {
        let lines: Vec<String> = errors.iter().map(|e| format!("  {e}")).collect();
        Failure::config(anyhow::anyhow!(
            "invalid configuration:\n{}",
            lines.join("\n")
        ))
    })
}

/// The operator's client of the authority `authority.toml` names.
pub fn operator(path: &Path) -> Result<Client, Failure> {
    let config = load(path)?;
    client(&config)
}

fn client(config: &AuthorityConfig) -> Result<Client, Failure> {
    let token = OperatorToken::load(&config.operator_token)
        .map_err(|e| Failure::config(anyhow::anyhow!(e)))?;
    let ca = m2mguard::tls::load_certs(&config.client_ca).map_err(Failure::config)?;
    Client::new(&config.url(), &ca, None, Some(token.bearer())).map_err(Failure::startup)
}

/// An API failure (exit 1).
pub fn api(e: m2mguard::authority::client::ClientError) -> Failure {
    Failure::startup(e)
}

/// `N` of a publishing call's answer, for the one line printed.
pub fn record_of(answer: &serde_json::Value) -> String {
    match (answer["seq"].as_u64(), answer["hash"].as_str()) {
        (Some(seq), Some(hash)) => format!("record {seq} ({})", &hash[..hash.len().min(16)]),
        _ => "no record".into(),
    }
}

/// Prints `value` as JSON.
pub fn print_json(value: &serde_json::Value) {
    println!(
        "{}",
        serde_json::to_string_pretty(value).unwrap_or_default()
    );
}
