//! `m2mguard authority feed show|head`: the feed's records, decoded, and its current head.

use clap::Subcommand;
use http::Method;
use serde_json::Value;

use m2mguard::authority::client::Client;

use super::super::{table, Failure};
use super::{api, print_json};

#[derive(Subcommand)]
pub enum Action {
    /// Records after N (default 0: from the first), at most 1000, decoded.
    Show {
        /// Show the records after this seq.
        #[arg(long, value_name = "N", default_value_t = 0)]
        after: u64,
        /// Print JSON (with every body) instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// The current signed head (compact JWS) and what it says.
    Head,
}

pub async fn run(client: &Client, action: Action) -> Result<(), Failure> {
    match action {
        Action::Show { after, json } => {
            let path = format!("/v1/records?after={after}");
            let value = client.call(Method::GET, &path, None).await.map_err(api)?;
            if json {
                print_json(&value);
            } else {
                print_records(&value);
            }
        }
        Action::Head => {
            let reply = client
                .send(Method::GET, "/v1/feed/head", bytes::Bytes::new())
                .await
                .map_err(api)?;
            let compact = String::from_utf8_lossy(&reply.body).into_owned();
            if !reply.status.is_success() {
                return Err(Failure::startup(anyhow::anyhow!(
                    "the authority answered {}: {compact}",
                    reply.status
                )));
            }
            println!("{compact}");
            if let Some(head) = payload(&compact) {
                println!(
                    "feed {} seq {} hash {} at {} valid until {}",
                    head["feed"], head["seq"], head["hash"], head["at"], head["valid_until"]
                );
            }
        }
    }
    Ok(())
}

/// The payload of a compact JWS, unverified (the authority's own, shown to its operator).
fn payload(compact: &str) -> Option<Value> {
    use base64::Engine as _;
    let part = compact.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(part)
        .ok()?;
    serde_json::from_slice(&bytes).ok()
}

fn print_records(value: &Value) {
    let rows: Vec<[String; 5]> = value["records"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|r| {
            let hash = r["hash"].as_str().unwrap_or("");
            let aud: Vec<&str> = r["aud"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .collect();
            let what = r["body"]["id"]
                .as_str()
                .or_else(|| r["body"]["jti"].as_str())
                .unwrap_or("")
                .to_owned();
            [
                r["seq"].to_string(),
                hash[..hash.len().min(16)].to_owned(),
                aud.join(","),
                r["kind"].as_str().unwrap_or("").to_owned(),
                what,
            ]
        })
        .collect();
    print!("{}", table(&["SEQ", "HASH", "AUD", "KIND", "ID"], &rows));
}
