//! `m2mguard authority node …`: nodes through the operator API. Every change publishes one
//! `node.put` (or, for `remove`, `key.remove` for each key and `node.remove`) to every gateway.

use clap::{Args, Subcommand};
use http::Method;
use serde_json::{json, Value};

use m2mguard::authority::client::{segment, Client};

use super::super::{table, Failure};
use super::{api, print_json, record_of};

#[derive(Subcommand)]
pub enum Action {
    /// Enrol a new node, active.
    Enrol(NodeArgs),
    /// Replace a node's kind, groups and registrar (its status stays).
    Update(NodeArgs),
    /// Suspend a node: refused until activated.
    Suspend { id: String },
    /// Deactivate a node: refused until activated.
    Deactivate { id: String },
    /// Activate a suspended or deactivated node.
    Activate { id: String },
    /// Revoke a node for good (it cannot be activated again).
    Revoke { id: String },
    /// Remove a node and its keys: unknown to every gateway from then on.
    Remove { id: String },
    /// All nodes with kind, status, groups and registrar.
    List {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// One node, with its key ids, as JSON.
    Show { id: String },
}

#[derive(Args)]
pub struct NodeArgs {
    /// The node's originator id (e.g. Cmeter-01).
    id: String,
    /// `ae` or `cse`.
    #[arg(long, default_value = "ae")]
    kind: String,
    /// A Cedar group (repeat for more).
    #[arg(long = "group", value_name = "GROUP")]
    groups: Vec<String>,
    /// The CSE-ID of the CSE the AE is reached through (transit), e.g. /id-mn.
    #[arg(long, value_name = "CSE-ID")]
    registrar: Option<String>,
}

pub async fn run(client: &Client, action: Action) -> Result<(), Failure> {
    let (id, verb, answer) = match action {
        Action::Enrol(n) => {
            let body =
                json!({"id": n.id, "kind": n.kind, "groups": n.groups, "registrar": n.registrar});
            let answer = client.call(Method::POST, "/v1/nodes", Some(&body)).await;
            (n.id, "enrolled", answer)
        }
        Action::Update(n) => {
            let body = json!({"kind": n.kind, "groups": n.groups, "registrar": n.registrar});
            let path = format!("/v1/nodes/{}", segment(&n.id));
            (
                n.id,
                "updated",
                client.call(Method::PUT, &path, Some(&body)).await,
            )
        }
        Action::Suspend { id } => status(client, id, "suspend", "suspended").await,
        Action::Deactivate { id } => status(client, id, "deactivate", "deactivated").await,
        Action::Activate { id } => status(client, id, "activate", "active").await,
        Action::Revoke { id } => status(client, id, "revoke", "revoked").await,
        Action::Remove { id } => {
            let path = format!("/v1/nodes/{}", segment(&id));
            (
                id,
                "removed",
                client.call(Method::DELETE, &path, None).await,
            )
        }
        Action::List { json } => {
            let value = client
                .call(Method::GET, "/v1/nodes", None)
                .await
                .map_err(api)?;
            if json {
                print_json(&value);
            } else {
                print_nodes(&value);
            }
            return Ok(());
        }
        Action::Show { id } => {
            let path = format!("/v1/nodes/{}", segment(&id));
            print_json(&client.call(Method::GET, &path, None).await.map_err(api)?);
            return Ok(());
        }
    };
    let answer = answer.map_err(api)?;
    println!("{id}: {verb}, {}", record_of(&answer));
    Ok(())
}

async fn status(
    client: &Client,
    id: String,
    action: &str,
    verb: &'static str,
) -> (
    String,
    &'static str,
    Result<Value, m2mguard::authority::client::ClientError>,
) {
    let path = format!("/v1/nodes/{}/{action}", segment(&id));
    let answer = client.call(Method::POST, &path, None).await;
    (id, verb, answer)
}

fn print_nodes(value: &Value) {
    let text = |v: &Value| v.as_str().unwrap_or("").to_owned();
    let rows: Vec<[String; 5]> = value["nodes"]
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
                text(&n["id"]),
                text(&n["kind"]),
                text(&n["status"]),
                groups.join(","),
                text(&n["registrar"]),
            ]
        })
        .collect();
    print!(
        "{}",
        table(&["ID", "KIND", "STATUS", "GROUPS", "REGISTRAR"], &rows)
    );
}
