//! `m2mguard authority gateway …`. `add --code-out FILE` issues the gateway a one-time
//! enrolment code (written 0600 to FILE, never printed) for `m2mguard enrol`, with which the
//! gateway makes its own keys. `add --out DIR` instead makes a gateway's whole kit at the
//! operator's side — its Ed25519 signing key and X25519 sealing key (`sign.key`, `seal.key`,
//! 0600), a TLS client certificate with CN = its id from the authority's CA (`client.crt`,
//! `client.key` 0600), `ca.crt`, `feed.pub` and a ready `[sync]` snippet (`sync.toml`) — and
//! registers the public parts with the running authority. If the authority refuses, the files
//! are removed again.

use std::path::{Path, PathBuf};

use clap::Subcommand;
use http::Method;
use serde_json::{json, Value};

use m2mguard::authority::client::segment;
use m2mguard::authority::material::{write_new, Ca};
use m2mguard::authority::ops::is_gateway_id;
use m2mguard::authority::AuthorityConfig;
use m2mguard::feed::keys::hex;
use m2mguard::feed::SigningKey;

use super::super::{kit, table, Failure};
use super::{api, client, load, print_json, record_of};

#[derive(Subcommand)]
pub enum Action {
    /// Issue a gateway a one-time enrolment code (--code-out), or make its whole kit here
    /// and register it (--out).
    #[command(group(clap::ArgGroup::new("mode").required(true).args(["out", "code_out"])))]
    Add {
        /// The gateway id (1 to 64 of A-Z a-z 0-9 . _ -): its certificate's CN.
        #[arg(long, value_name = "ID")]
        id: String,
        /// Write a one-time enrolment code to FILE (created 0600, never overwritten; the code
        /// is not printed) for `m2mguard enrol` on the gateway, which makes its keys itself.
        /// Valid for the authority's `enrol_code_ttl_s`; a new code replaces a pending one.
        #[arg(long, value_name = "FILE")]
        code_out: Option<PathBuf>,
        /// Make the gateway's keys, certificate and [sync] snippet in DIR (created if
        /// missing; no file is overwritten) and register it: its private keys are made here.
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
        /// The authority's base URL written to sync.toml (default: https:// and the listen
        /// address).
        #[arg(long, value_name = "URL")]
        url: Option<String>,
    },
    /// All gateways: status and what each confirmed (seq, hash, applied at, error).
    List {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Let a deactivated gateway forward again (publishes gateway.put to it).
    Activate { id: String },
    /// Make a gateway refuse every request (publishes gateway.put to it).
    Deactivate { id: String },
    /// Remove a gateway's credentials (publishes gateway.put status removed to it): it wipes
    /// its secrets and refuses every request until it enrols again; the authority forgets it
    /// once it acknowledges that record.
    Remove { id: String },
    /// The audit checkpoints the gateway anchored here, oldest first: count (lines pinned),
    /// head (the hash of line COUNT, shortened), the checkpoint's time and when it arrived.
    Checkpoints {
        /// The gateway id.
        id: String,
        /// Print JSON (with each checkpoint's compact JWS) instead of a table.
        #[arg(long)]
        json: bool,
    },
}

pub async fn run(path: &Path, action: Action) -> Result<(), Failure> {
    let config = load(path)?;
    let client = client(&config)?;
    match action {
        Action::Add {
            id,
            code_out: Some(file),
            ..
        } => invite(&client, &id, &file).await,
        Action::Add { id, out, url, .. } => {
            let out = out.expect("clap requires --out or --code-out");
            add(&config, &client, &id, &out, url).await
        }
        Action::List { json } => {
            let value = client
                .call(Method::GET, "/v1/gateways", None)
                .await
                .map_err(api)?;
            if json {
                print_json(&value);
            } else {
                print_gateways(&value);
            }
            Ok(())
        }
        Action::Activate { id } => status(&client, &id, "activate").await,
        Action::Deactivate { id } => status(&client, &id, "deactivate").await,
        Action::Remove { id } => {
            let path = format!("/v1/gateways/{}", segment(&id));
            let answer = client
                .call(Method::DELETE, &path, None)
                .await
                .map_err(api)?;
            println!("gateway {id}: removed, {}", record_of(&answer));
            Ok(())
        }
        Action::Checkpoints { id, json } => {
            let path = format!("/v1/gateways/{}/checkpoints", segment(&id));
            let value = client.call(Method::GET, &path, None).await.map_err(api)?;
            if json {
                print_json(&value);
            } else {
                print_checkpoints(&value);
            }
            Ok(())
        }
    }
}

async fn status(
    client: &m2mguard::authority::client::Client,
    id: &str,
    action: &str,
) -> Result<(), Failure> {
    let path = format!("/v1/gateways/{}/{action}", segment(id));
    let answer = client.call(Method::POST, &path, None).await.map_err(api)?;
    println!("gateway {id}: {action}d, {}", record_of(&answer));
    Ok(())
}

async fn invite(
    client: &m2mguard::authority::client::Client,
    id: &str,
    file: &Path,
) -> Result<(), Failure> {
    if file.exists() {
        return Err(Failure::startup(anyhow::anyhow!(
            "{} exists already; refusing to overwrite it",
            file.display()
        )));
    }
    let path = format!("/v1/gateways/{}/code", segment(id));
    let answer = client.call(Method::POST, &path, None).await.map_err(api)?;
    let code = answer["code"]
        .as_str()
        .ok_or_else(|| Failure::startup(anyhow::anyhow!("the authority sent no code")))?;
    write_new(file, &format!("{code}\n"), true).map_err(Failure::startup)?;
    println!(
        "gateway {id}: one-time enrolment code written to {} (0600), valid until {} (Unix seconds); on the gateway: m2mguard enrol --authority URL --ca ca.crt --id {id} --code-file FILE --dir DIR",
        file.display(),
        answer["expires_at"]
    );
    Ok(())
}

async fn add(
    config: &AuthorityConfig,
    client: &m2mguard::authority::client::Client,
    id: &str,
    out: &Path,
    url: Option<String>,
) -> Result<(), Failure> {
    if !is_gateway_id(id) {
        return Err(Failure::config(anyhow::anyhow!(
            "--id {id:?} is not a gateway id (expected 1 to 64 of A-Z a-z 0-9 . _ -)"
        )));
    }
    std::fs::create_dir_all(out)
        .map_err(|e| Failure::startup(anyhow::anyhow!("cannot create {}: {e}", out.display())))?;
    let paths = kit::fresh_paths(out)?;
    let ca = Ca::load(&config.client_ca, &config.ca_key).map_err(Failure::config)?;
    let feed_key = SigningKey::load(&config.feed_key).map_err(Failure::config)?;
    let ca_pem = std::fs::read_to_string(&config.client_ca).map_err(Failure::config)?;
    let (sign, seal, sign_pub, seal_pub) = kit::fresh_keys()?;
    let cert = ca.issue(id, &[]).map_err(Failure::startup)?;
    let url = url.unwrap_or_else(|| config.url());
    let dir = std::fs::canonicalize(out)
        .map_err(|e| Failure::startup(anyhow::anyhow!("cannot resolve {}: {e}", out.display())))?;
    let sync = kit::sync_toml(&url, &config.feed, id, &dir);
    let feed_pub = format!("{}\n", hex(feed_key.public().raw()));
    let files: [(&str, &str, bool); 7] = [
        ("sign.key", &sign, true),
        ("seal.key", &seal, true),
        ("client.crt", &cert.cert_pem, false),
        ("client.key", &cert.key_pem, true),
        ("ca.crt", &ca_pem, false),
        ("feed.pub", &feed_pub, false),
        ("sync.toml", &sync, false),
    ];
    let written = kit::write_all(out, &files);
    let body = json!({"id": id, "sign": sign_pub, "seal": seal_pub});
    let registered = match written {
        Ok(()) => client
            .call(Method::POST, "/v1/gateways", Some(&body))
            .await
            .map_err(api),
        Err(e) => Err(e),
    };
    match registered {
        Ok(answer) => {
            println!(
                "gateway {id} added at {}; its files are in {} (start it from a snapshot)",
                record_of(&answer),
                out.display()
            );
            Ok(())
        }
        Err(e) => {
            kit::remove_all(&paths);
            Err(e)
        }
    }
}

/// A cell: `-` for null; a gateway chose the strings, so control characters are escaped.
pub(super) fn text(v: &Value) -> String {
    match v {
        Value::Null => "-".to_owned(),
        Value::String(s) => s.escape_debug().to_string(),
        other => other.to_string(),
    }
}

fn short(hash: &Value) -> String {
    hash.as_str()
        .map_or("-".to_owned(), |h| h.chars().take(16).collect())
}

fn print_checkpoints(value: &Value) {
    let rows: Vec<[String; 4]> = value["checkpoints"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| {
            [
                text(&c["count"]),
                short(&c["head"]),
                text(&c["at"]),
                text(&c["received_at"]),
            ]
        })
        .collect();
    print!("{}", table(&["COUNT", "HEAD", "AT", "RECEIVED_AT"], &rows));
}

fn print_gateways(value: &Value) {
    let rows: Vec<[String; 6]> = value["gateways"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|g| {
            let c = &g["confirmed"];
            let hash = short(&c["hash"]);
            [
                text(&g["id"]),
                text(&g["status"]),
                text(&c["seq"]),
                hash,
                text(&c["applied_at"]),
                text(&c["error"]),
            ]
        })
        .collect();
    print!(
        "{}",
        table(
            &["ID", "STATUS", "SEQ", "HASH", "APPLIED_AT", "ERROR"],
            &rows
        )
    );
}
