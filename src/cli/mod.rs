//! The command line: one file per subcommand, exit codes with meaning.

mod audit;
mod authority;
mod check;
mod demo;
mod enrol;
mod generate;
mod kit;
mod node;
pub mod run;
mod token;

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use m2mguard::config::{Config, ConfigError};

/// Bad configuration or policies (EX_USAGE-like, as sysexits' 64).
pub const EXIT_CONFIG: u8 = 64;
/// Start-up failed: a port, the repository, TLS, the admin API unreachable.
pub const EXIT_STARTUP: u8 = 1;

/// A failed command: what to print and which exit code to leave with.
pub struct Failure {
    pub code: u8,
    pub error: anyhow::Error,
}

impl Failure {
    pub fn config(error: impl Into<anyhow::Error>) -> Self {
        Failure {
            code: EXIT_CONFIG,
            error: error.into(),
        }
    }

    pub fn startup(error: impl Into<anyhow::Error>) -> Self {
        Failure {
            code: EXIT_STARTUP,
            error: error.into(),
        }
    }
}

#[derive(Parser)]
#[command(
    name = "m2mguard",
    version,
    about = "Security gateway for oneM2M edge deployments",
    long_about = "m2mguard sits in front of legacy oneM2M devices and CSEs and checks every \
request before it reaches them: the originator must match its client certificate, must be an \
active node in the local repository, and must be permitted by the Cedar policies. Allowed \
requests pass unchanged; denied ones get a oneM2M 4103 error.",
    after_help = "Exit codes: 0 success; 64 invalid configuration or policies; 1 start-up or \
admin API failure; 2 `audit verify` found a problem.\n\nLogging: RUST_LOG=debug (or info, warn) selects the log level; \
m2mguard=debug shows every decision.\n\nStart with `m2mguard demo`, then see README.md."
)]
pub struct Cli {
    /// Log lines as plain text, or as one JSON object per line with the fields at the top
    /// level (`run`, `authority serve`; docs/operations.md#logs).
    #[arg(
        long,
        value_enum,
        value_name = "FORMAT",
        default_value_t = LogFormat::Text,
        global = true
    )]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

/// How log lines are written to stderr.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Plain text lines: time, level, target, message, then the fields as key=value.
    Text,
    /// One JSON object per line: timestamp, level, target, message and every field.
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Run the gateway until SIGINT or SIGTERM; SIGHUP reloads the policies.
    Run(ConfigFile),
    /// Validate a configuration and every policy file, then exit: 0 if all is well, 64 with
    /// every error located (file:line:column) otherwise.
    Check(ConfigFile),
    /// Run a short scripted scenario against an in-process oneM2M CSE on the built-in
    /// configuration and print each decision and why; then start an authority in-process and a
    /// second gateway following its feed, and show a node and the gateway itself deactivated
    /// at the authority. Binds only free loopback ports and keeps its repositories in
    /// temporary directories.
    Demo,
    /// List, show, activate or deactivate nodes through a running gateway's admin API.
    Node {
        #[command(flatten)]
        at: AdminAt,
        #[command(subcommand)]
        action: node::Action,
    },
    /// Revoke access-control tokens through a running gateway's admin API.
    Token {
        #[command(flatten)]
        at: AdminAt,
        #[command(subcommand)]
        action: token::Action,
    },
    /// The IN-side authority that publishes the signed status feed gateways follow: create
    /// one (`init`), run it (`serve`), and manage its nodes, keys, tokens and gateways over
    /// its HTTPS API.
    #[command(
        long_about = "The authority is the IN-side service that publishes the signed status feed \
(docs/feed.md) that gateways follow: nodes and their status, check-value keys (sealed to each \
gateway), token revocations and the gateways' own status. `init` creates one, `serve` runs it; \
every other command talks to the running authority over HTTPS with the operator token, trusting \
only the authority's CA, both named in authority.toml."
    )]
    Authority(authority::Authority),
    /// Enrol this gateway at the authority with a one-time code: make its own key pairs
    /// (signing, sealing, TLS client), keep the private ones in --dir (0600), register the
    /// public ones, and write the certificate the authority signed and a [sync] snippet.
    Enrol(enrol::Enrol),
    /// Verify, export or show the audit log (every request and administrative event, hash-
    /// chained, with signed checkpoints), and make the key that signs its checkpoints.
    Audit {
        #[command(subcommand)]
        action: audit::Action,
    },
    /// Write shell completions or man pages made from this command line (for packaging).
    #[command(hide = true, subcommand)]
    Generate(generate::What),
}

/// The configuration file a command reads.
#[derive(Debug, Args)]
pub struct ConfigFile {
    /// Configuration file (TOML).
    #[arg(
        short,
        long,
        value_name = "FILE",
        default_value = "config/m2mguard.toml"
    )]
    config: PathBuf,
}

/// Where a running gateway's admin API is: from its configuration file, or given directly.
#[derive(Debug, Args)]
pub struct AdminAt {
    #[command(flatten)]
    file: ConfigFile,
    /// Admin API address (ip:port); overrides the configuration file's [admin] listen address.
    #[arg(long, value_name = "ADDR")]
    admin: Option<std::net::SocketAddr>,
}

pub async fn dispatch(cli: Cli) -> Result<(), Failure> {
    let log = cli.log_format;
    match cli.command {
        Command::Run(file) => run::run(&file.config, log).await,
        Command::Check(file) => check::check(&file.config),
        Command::Demo => demo::demo().await,
        Command::Node { at, action } => node::node(&at.file.config, at.admin, action).await,
        Command::Token { at, action } => token::token(&at.file.config, at.admin, action).await,
        Command::Authority(args) => authority::authority(args, log).await,
        Command::Enrol(args) => enrol::enrol(args).await,
        Command::Audit { action } => audit::audit(action).await,
        Command::Generate(what) => generate::generate(what),
    }
}

/// Loads a configuration, turning its errors into one located list (exit 64).
pub fn load_config(path: &std::path::Path) -> Result<Config, Failure> {
    Config::load(path).map_err(|errors| Failure::config(anyhow::anyhow!(config_errors(&errors))))
}

fn config_errors(errors: &[ConfigError]) -> String {
    let lines: Vec<String> = errors.iter().map(|e| format!("  {e}")).collect();
    format!("invalid configuration:\n{}", lines.join("\n"))
}

/// Logs to stderr in `format`; RUST_LOG overrides the default of `info`. JSON lines carry the
/// event's fields as top-level keys (`node.id`, `verdict`, ...), not nested under `fields`.
pub fn init_tracing(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Text => builder
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .try_init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_span_list(false)
            .try_init(),
    };
}

/// A plain text table with columns as wide as their widest cell.
pub fn table<const N: usize>(header: &[&str; N], rows: &[[String; N]]) -> String {
    let mut widths = header.map(str::len);
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let padded: Vec<String> = cells
            .iter()
            .zip(widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        format!("{}\n", padded.join("  ").trim_end())
    };
    let mut out = line(header.to_vec());
    for row in rows {
        out.push_str(&line(row.iter().map(String::as_str).collect()));
    }
    out
}
