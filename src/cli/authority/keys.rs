//! `m2mguard authority key …` and `token revoke`: check-value keys and token revocations
//! through the operator API. A new or rotated secret is written to `--secret-out` (hex, 0600,
//! a ready `[[checks.keys]]` key file for the device's side) and never printed.

use std::path::{Path, PathBuf};

use clap::Subcommand;
use http::Method;
use serde_json::{json, Value};

use m2mguard::authority::client::{segment, Client};
use m2mguard::authority::material::{none_exist, write_new};

use super::super::Failure;
use super::{api, record_of};

#[derive(Subcommand)]
pub enum Action {
    /// Add a check-value key for a node (a random 32-byte secret unless --secret-file).
    Add {
        /// The key id (1 to 64 of A-Z a-z 0-9 _ -).
        #[arg(long, value_name = "ID")]
        id: String,
        /// The node it belongs to.
        #[arg(long, value_name = "NODE")]
        node: String,
        /// Gateways sign this node's requests with it (at most one such key per node).
        #[arg(long)]
        insert: bool,
        /// Use this secret (a file of hex digits, at least 16 bytes) instead of a random one.
        #[arg(long, value_name = "FILE")]
        secret_file: Option<PathBuf>,
        /// Where to write the secret (hex, mode 0600); must not exist.
        #[arg(long, value_name = "FILE")]
        secret_out: PathBuf,
    },
    /// Give a key a new random secret (same id).
    Rotate {
        id: String,
        /// Where to write the new secret (hex, mode 0600); must not exist.
        #[arg(long, value_name = "FILE")]
        secret_out: PathBuf,
    },
    /// Remove a key: it verifies nothing from then on.
    Remove { id: String },
}

#[derive(Subcommand)]
pub enum TokenAction {
    /// Refuse the token with this id (`jti`) on every gateway from then on.
    Revoke { jti: String },
}

pub async fn run(client: &Client, action: Action) -> Result<(), Failure> {
    match action {
        Action::Add {
            id,
            node,
            insert,
            secret_file,
            secret_out,
        } => {
            refuse_existing(&secret_out)?;
            let mut body = json!({"id": id, "node": node, "insert": insert});
            if let Some(file) = secret_file {
                body["secret"] = Value::String(read_hex(&file)?);
            }
            let answer = client
                .call(Method::POST, "/v1/keys", Some(&body))
                .await
                .map_err(api)?;
            write_secret(&secret_out, &answer)?;
            println!(
                "key {id} added for {node}, {}; secret written to {}",
                record_of(&answer),
                secret_out.display()
            );
        }
        Action::Rotate { id, secret_out } => {
            refuse_existing(&secret_out)?;
            let path = format!("/v1/keys/{}/rotate", segment(&id));
            let answer = client.call(Method::POST, &path, None).await.map_err(api)?;
            write_secret(&secret_out, &answer)?;
            println!(
                "key {id} rotated, {}; new secret written to {}",
                record_of(&answer),
                secret_out.display()
            );
        }
        Action::Remove { id } => {
            let path = format!("/v1/keys/{}", segment(&id));
            let answer = client
                .call(Method::DELETE, &path, None)
                .await
                .map_err(api)?;
            println!("key {id} removed, {}", record_of(&answer));
        }
    }
    Ok(())
}

pub async fn token(client: &Client, action: TokenAction) -> Result<(), Failure> {
    let TokenAction::Revoke { jti } = action;
    let path = format!("/v1/tokens/{}/revoke", segment(&jti));
    let answer = client.call(Method::POST, &path, None).await.map_err(api)?;
    println!("token {jti} revoked, {}", record_of(&answer));
    Ok(())
}

fn refuse_existing(path: &Path) -> Result<(), Failure> {
    none_exist([path]).map_err(Failure::startup)
}

fn write_secret(path: &Path, answer: &Value) -> Result<(), Failure> {
    let secret = answer["secret"]
        .as_str()
        .ok_or_else(|| Failure::startup(anyhow::anyhow!("the authority answered no secret")))?;
    write_new(path, &format!("{secret}\n"), true).map_err(|e| {
        Failure::startup(anyhow::anyhow!(
            "{e}; the key is published, rotate it to get a secret written"
        ))
    })
}

fn read_hex(path: &Path) -> Result<String, Failure> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Failure::startup(anyhow::anyhow!("cannot read {}: {e}", path.display())))?;
    Ok(text.trim().to_owned())
}
