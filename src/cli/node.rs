//! `m2mguard node list|show|activate|deactivate`: node operations through the admin API.

use std::net::SocketAddr;
use std::path::Path;

use clap::Subcommand;
use serde_json::Value;

use m2mguard::admin::client::AdminClient;

use super::{load_config, Failure};

#[derive(Subcommand)]
pub enum Action {
    /// All nodes with kind, status and groups.
    List,
    /// One node as JSON.
    Show { id: String },
    /// Let a node's requests through again (it must be known).
    Activate { id: String },
    /// Block every request of a node from the next one on; survives restarts.
    Deactivate { id: String },
}

pub async fn node(config: &Path, admin: Option<SocketAddr>, action: Action) -> Result<(), Failure> {
    let addr = match admin {
        Some(addr) => addr,
        None => load_config(config)?.admin.listen,
    };
    let client = AdminClient::new(addr);
    let result = match &action {
        Action::List => client.nodes().await,
        Action::Show { id } => client.node(id).await,
        Action::Activate { id } => client.activate(id).await,
        Action::Deactivate { id } => client.deactivate(id).await,
    };
    let value = result.map_err(Failure::startup)?;
    match action {
        Action::List => print_table(&value),
        Action::Show { .. } => println!(
            "{}",
            serde_json::to_string_pretty(&value).unwrap_or_default()
        ),
        Action::Activate { id } | Action::Deactivate { id } => {
            println!("{id}: {}", value["status"].as_str().unwrap_or("?"));
        }
    }
    Ok(())
}

fn print_table(value: &Value) {
    let rows: Vec<[String; 4]> = value["nodes"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|n| {
            let groups: Vec<&str> = n["groups"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .collect();
            [
                n["id"].as_str().unwrap_or("").to_owned(),
                n["kind"].as_str().unwrap_or("").to_owned(),
                n["status"].as_str().unwrap_or("").to_owned(),
                groups.join(","),
            ]
        })
        .collect();
    print!(
        "{}",
        super::table(&["ID", "KIND", "STATUS", "GROUPS"], &rows)
    );
}
