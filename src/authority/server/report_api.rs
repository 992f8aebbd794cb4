//! Misbehaviour reports (docs/authority.md "Reports"): a gateway POSTs its own; the operator
//! lists them. A new report is then weighed by the authority's rules ([`report_rules`]).

use std::sync::Arc;

use http::StatusCode;
use percent_encoding::percent_decode_str;
use serde_json::json;

use super::reply::{error, json, op_error, read_text, Answer};
use crate::authority::ops::OpError;
use crate::authority::publish::Feed;
use crate::authority::report_rules::{self, ReportRule};
use crate::authority::reports::Stored;
use crate::authority::state::StoredGateway;
use crate::feed::GatewayStatus;

/// Most reports in one answer, and the default.
pub const MAX_LIMIT: usize = 1000;
pub const DEFAULT_LIMIT: usize = 100;

/// Verifies and stores one report: 201 when new, 200 when already held, 400 when it does not
/// verify with the gateway's key, breaks a value rule or is from another gateway, 409 when
/// another report under the same id is held.
pub async fn put<B>(
    feed: &Arc<Feed>,
    rules: &Arc<Vec<ReportRule>>,
    gateway: &StoredGateway,
    request: B,
) -> Answer
where
    B: hyper::body::Body,
    B::Error: std::error::Error + Send + Sync + 'static,
{
    if gateway.status != GatewayStatus::Active {
        // A gateway the operator deactivated (or removed) may be the compromised one: what it
        // says about nodes must not suspend them.
        return error(
            StatusCode::FORBIDDEN,
            &format!(
                "gateway {:?} is not active: its reports are not taken",
                gateway.id
            ),
        );
    }
    let compact = match read_text(request, "report").await {
        Ok(text) => text.trim_end().to_owned(),
        Err(answer) => return answer,
    };
    let (feed, rules, gateway) = (feed.clone(), rules.clone(), gateway.clone());
    let id = gateway.id.clone();
    let stored = tokio::task::spawn_blocking(move || {
        let state = feed.state();
        let (stored, held) = state
            .reports()
            .put(&gateway, &compact, |node| Ok(state.node(node)?.is_some()))?;
        let action = match stored {
            Stored::New => report_rules::apply(&feed, &rules, &held).unwrap_or_else(|e| {
                tracing::error!(node = %held.node, error = %e, "report rules failed");
                None
            }),
            Stored::Duplicate => held.action.clone(),
        };
        Ok::<_, OpError>((stored, held, action))
    })
    .await;
    match stored {
        Ok(Ok((stored, held, action))) => {
            let status = match stored {
                Stored::New => StatusCode::CREATED,
                Stored::Duplicate => StatusCode::OK,
            };
            tracing::info!(gateway.id = %id, report.id = %held.id, node = %held.node, rule = %held.rule, new = (stored == Stored::New), "misbehaviour report");
            json(
                status,
                &json!({ "id": held.id, "pos": held.pos, "action": action }),
            )
        }
        Ok(Err(e)) => {
            tracing::warn!(gateway.id = %id, error = %e, "misbehaviour report refused");
            op_error(&e)
        }
        Err(_) => error(StatusCode::INTERNAL_SERVER_ERROR, "internal error"),
    }
}

/// `GET /v1/reports?node=ID&after=N&limit=L`: oldest first from `after`.
pub async fn list(feed: &Arc<Feed>, query: Option<&str>) -> Answer {
    let (node, after, limit) = match parse(query) {
        Ok(q) => q,
        Err(message) => return error(StatusCode::BAD_REQUEST, &message),
    };
    let feed = feed.clone();
    let read = tokio::task::spawn_blocking(move || {
        feed.state().reports().list(node.as_deref(), after, limit)
    })
    .await;
    match read {
        Ok(Ok(reports)) => json(StatusCode::OK, &json!({ "reports": reports })),
        Ok(Err(e)) => op_error(&OpError::State(e)),
        Err(_) => error(StatusCode::INTERNAL_SERVER_ERROR, "internal error"),
    }
}

fn parse(query: Option<&str>) -> Result<(Option<String>, u64, usize), String> {
    let (mut node, mut after, mut limit) = (None, 0, DEFAULT_LIMIT);
    for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        let value = percent_decode_str(value)
            .decode_utf8()
            .map_err(|_| format!("{name} is not UTF-8"))?;
        let number = || {
            value
                .parse::<u64>()
                .map_err(|_| format!("{name} must be a non-negative integer"))
        };
        match name {
            "node" if !value.is_empty() => node = Some(value.into_owned()),
            "node" => return Err("node must not be empty".into()),
            "after" => after = number()?,
            "limit" => match number()? {
                n @ 1..=1000 => limit = n as usize,
                _ => return Err(format!("limit must be 1 to {MAX_LIMIT}")),
            },
            other => return Err(format!("unknown parameter {other:?}")),
        }
    }
    Ok((node, after, limit))
}
