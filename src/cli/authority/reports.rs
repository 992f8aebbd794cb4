//! `m2mguard authority report …`: the misbehaviour reports gateways sent (docs/reports.md).

use clap::Subcommand;
use http::Method;
use serde_json::{json, Value};

use m2mguard::authority::client::{segment, Client};

use super::super::{table, Failure};
use super::gateway::text;
use super::{api, print_json};

/// Reports fetched per request.
const PAGE: usize = 1000;

#[derive(Subcommand)]
pub enum Action {
    /// Every report received, oldest first: position, when it arrived, the gateway, the node,
    /// the gateway's rule, the refusals by stage, sample reasons, and what the authority's
    /// rules did (ACTION: the status set and the feed record that published it).
    List {
        /// Only the reports about this node.
        #[arg(long, value_name = "ID")]
        node: Option<String>,
        /// Print JSON ({"reports": [...]}, each with its compact JWS) instead of a table.
        #[arg(long)]
        json: bool,
    },
}

pub async fn run(client: &Client, action: Action) -> Result<(), Failure> {
    let Action::List { node, json } = action;
    let reports = all(client, node.as_deref()).await?;
    if json {
        print_json(&json!({ "reports": reports }));
    } else {
        print_reports(&reports);
    }
    Ok(())
}

async fn all(client: &Client, node: Option<&str>) -> Result<Vec<Value>, Failure> {
    let filter = node.map_or(String::new(), |n| format!("&node={}", segment(n)));
    let mut out: Vec<Value> = Vec::new();
    loop {
        let after = out.last().and_then(|r| r["pos"].as_u64()).unwrap_or(0);
        let path = format!("/v1/reports?after={after}&limit={PAGE}{filter}");
        let page = client.call(Method::GET, &path, None).await.map_err(api)?;
        let reports = page["reports"].as_array().cloned().unwrap_or_default();
        let done = reports.len() < PAGE;
        out.extend(reports);
        if done {
            return Ok(out);
        }
    }
}

fn print_reports(reports: &[Value]) {
    let rows: Vec<[String; 8]> = reports
        .iter()
        .map(|r| {
            let counts = r["counts"]
                .as_object()
                .map(|c| {
                    let parts: Vec<String> = c.iter().map(|(s, n)| format!("{s}={n}")).collect();
                    parts.join(",")
                })
                .unwrap_or_default();
            let reasons = r["reasons"]
                .as_array()
                .map(|a| {
                    let names: Vec<&str> = a.iter().filter_map(Value::as_str).collect();
                    names.join(",")
                })
                .unwrap_or_default();
            let action = match &r["action"] {
                Value::Null => "-".to_owned(),
                a => format!(
                    "{} by {} (record {})",
                    text(&a["status"]),
                    text(&a["rule"]),
                    text(&a["seq"])
                ),
            };
            [
                text(&r["pos"]),
                text(&r["received_at"]),
                text(&r["gateway"]),
                text(&r["node"]),
                text(&r["rule"]),
                counts,
                reasons,
                action,
            ]
        })
        .collect();
    let header = [
        "POS",
        "RECEIVED_AT",
        "GATEWAY",
        "NODE",
        "RULE",
        "COUNTS",
        "REASONS",
        "ACTION",
    ];
    print!("{}", table(&header, &rows));
}
