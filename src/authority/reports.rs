//! Misbehaviour reports gateways send (docs/reports.md "At the authority"): verified with the
//! gateway's signing key, `gateway` the caller's own id, stored durably in received order.
//!
//! Trees: `reports` (position, big-endian `u64` → [`Held`] as JSON), `report_ids` (gateway id,
//! a zero byte, report id → position), `report_nodes` (node id, a zero byte, position → ()),
//! `report_gateways` (gateway id, a zero byte, position → ()), `report_actions` (node id →
//! the position of the report whose rule last acted on it). A report is written once: the
//! same JWS again is a duplicate, another one under the same id a conflict. At most
//! [`MAX_PER_GATEWAY`] per gateway (its oldest pruned).

use std::collections::BTreeMap;
use std::sync::{Mutex, PoisonError};

use serde::{Deserialize, Serialize};
use sled::Transactional;

use super::ops::OpError;
use super::publish::now_s;
use super::state::{StateError, StoredGateway};
use crate::report::Report;

/// Reports kept per gateway.
pub const MAX_PER_GATEWAY: usize = 10_000;

/// A report as the authority holds it and lists it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Held {
    /// Its place in received order (1, 2, …).
    pub pos: u64,
    pub id: String,
    pub gateway: String,
    pub node: String,
    pub from: String,
    pub to: String,
    pub counts: BTreeMap<String, u64>,
    pub reasons: Vec<String>,
    pub rule: String,
    pub at: String,
    /// When the authority received it (Unix seconds).
    pub received_at: u64,
    pub jws: String,
    /// What a `[[authority.reports.rules]]` did because of this report, if anything.
    pub action: Option<Action>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Action {
    /// The authority's rule.
    pub rule: String,
    /// The status it set (`suspended`).
    pub status: String,
    /// The feed record that published it.
    pub seq: u64,
    /// Unix seconds.
    pub at: u64,
}

/// What storing a report came to.
#[derive(Debug, PartialEq, Eq)]
pub enum Stored {
    New,
    Duplicate,
}

pub struct Reports {
    db: sled::Db,
    held: sled::Tree,
    ids: sled::Tree,
    nodes: sled::Tree,
    gateways: sled::Tree,
    actions: sled::Tree,
    writer: Mutex<()>,
}

impl Reports {
    pub fn open(db: &sled::Db) -> Result<Reports, StateError> {
        Ok(Reports {
            held: db.open_tree("reports")?,
            ids: db.open_tree("report_ids")?,
            nodes: db.open_tree("report_nodes")?,
            gateways: db.open_tree("report_gateways")?,
            actions: db.open_tree("report_actions")?,
            db: db.clone(),
            writer: Mutex::new(()),
        })
    }

    /// Verifies `compact` as a report `gateway` signed about its own refusals and stores it.
    /// `known` says whether the authority knows a node: a report about one it does not know
    /// is refused (nothing to suspend, and nothing a gateway may fill the store with).
    pub fn put(
        &self,
        gateway: &StoredGateway,
        compact: &str,
        known: impl Fn(&str) -> Result<bool, StateError>,
    ) -> Result<(Stored, Held), OpError> {
        let signing = gateway.signing_key()?;
        let report = Report::verify(compact, &signing).map_err(|e| {
            OpError::Invalid(format!(
                "report does not verify with gateway {:?}'s signing key: {e}",
                gateway.id
            ))
        })?;
        if report.gateway != gateway.id {
            return Err(OpError::Invalid(format!(
                "report is from gateway {:?}, not gateway {:?}",
                report.gateway, gateway.id
            )));
        }
        if !known(&report.node).map_err(OpError::State)? {
            return Err(OpError::Invalid(format!(
                "report is about node {:?}, which the authority does not know",
                report.node
            )));
        }
        let _writing = self.writer.lock().unwrap_or_else(PoisonError::into_inner);
        let id_key = pair(&gateway.id, report.id.as_bytes());
        if let Some(pos) = self.ids.get(&id_key).map_err(state)? {
            let before = self.get(position(&pos)?)?;
            return match before {
                Some(before) if before.jws == compact => Ok((Stored::Duplicate, before)),
                _ => Err(OpError::Conflict(format!(
                    "gateway {:?} already sent another report with id {:?}",
                    gateway.id, report.id
                ))),
            };
        }
        let pos = match self.held.last().map_err(state)? {
            Some((k, _)) => position(&k)? + 1,
            None => 1,
        };
        let held = Held {
            pos,
            id: report.id,
            gateway: report.gateway,
            node: report.node,
            from: report.from,
            to: report.to,
            counts: report.counts,
            reasons: report.reasons,
            rule: report.rule,
            at: report.at,
            received_at: now_s(),
            jws: compact.to_owned(),
            action: None,
        };
        let value = serde_json::to_vec(&held).expect("a report serialises");
        let at = pos.to_be_bytes();
        let trees = (&self.held, &self.ids, &self.nodes, &self.gateways);
        trees
            .transaction(|(h, i, n, g)| {
                h.insert(&at, value.as_slice())?;
                i.insert(id_key.as_slice(), &at)?;
                n.insert(pair(&held.node, &at), &[])?;
                g.insert(pair(&held.gateway, &at), &[])?;
                Ok::<(), sled::transaction::ConflictableTransactionError<()>>(())
            })
            .map_err(|e| OpError::State(StateError::Io(transaction(e))))?;
        self.prune(&held.gateway)?;
        self.db.flush().map_err(state)?;
        Ok((Stored::New, held))
    }

    /// Up to `limit` reports after position `after`, oldest first; only `node`'s if given.
    pub fn list(
        &self,
        node: Option<&str>,
        after: u64,
        limit: usize,
    ) -> Result<Vec<Held>, StateError> {
        let from = after.saturating_add(1).to_be_bytes();
        let Some(node) = node else {
            return self
                .held
                .range(from..)
                .take(limit)
                .map(|item| parse(&item?.1))
                .collect();
        };
        let mut out = Vec::new();
        for key in self.nodes.range(pair(node, &from)..).keys() {
            let key = key?;
            let Some(pos) = key.strip_prefix(prefix(node).as_slice()) else {
                break;
            };
            if out.len() == limit {
                break;
            }
            out.extend(
                self.get(position(pos).map_err(op_state)?)
                    .map_err(op_state)?,
            );
        }
        Ok(out)
    }

    /// The newest (at most `most`) reports about `node` after position `after`, newest first:
    /// what a rule reads, so that its cost per report is bounded by the rule, not by how many
    /// reports a gateway has sent about the node.
    pub fn newest(&self, node: &str, after: u64, most: usize) -> Result<Vec<Held>, StateError> {
        let from = pair(node, &after.saturating_add(1).to_be_bytes());
        let to = pair(node, &[0xff; 8]);
        let mut out = Vec::new();
        for key in self.nodes.range(from..=to).keys().rev().take(most) {
            let key = key?;
            let pos = &key[key.len().saturating_sub(8)..];
            out.extend(
                self.get(position(pos).map_err(op_state)?)
                    .map_err(op_state)?,
            );
        }
        Ok(out)
    }

    /// The position of the report on which a rule last acted for `node` (0: none).
    pub fn last_action(&self, node: &str) -> Result<u64, StateError> {
        match self.actions.get(node.as_bytes())? {
            Some(v) => position(&v).map_err(op_state),
            None => Ok(0),
        }
    }

    /// Notes that `action` was taken because of the report at `pos`.
    pub fn acted(&self, pos: u64, action: Action) -> Result<(), StateError> {
        let _writing = self.writer.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(mut held) = self.get(pos).map_err(op_state)? else {
            return Ok(());
        };
        held.action = Some(action);
        self.held.insert(
            pos.to_be_bytes(),
            serde_json::to_vec(&held).expect("a report serialises"),
        )?;
        self.actions
            .insert(held.node.as_bytes(), &pos.to_be_bytes())?;
        self.db.flush()?;
        Ok(())
    }

    fn get(&self, pos: u64) -> Result<Option<Held>, OpError> {
        match self.held.get(pos.to_be_bytes()).map_err(state)? {
            Some(v) => parse(&v).map(Some).map_err(OpError::State),
            None => Ok(None),
        }
    }

    fn prune(&self, gateway: &str) -> Result<(), OpError> {
        let keys: Vec<sled::IVec> = self
            .gateways
            .scan_prefix(prefix(gateway))
            .keys()
            .collect::<Result<_, _>>()
            .map_err(state)?;
        for key in keys.iter().take(keys.len().saturating_sub(MAX_PER_GATEWAY)) {
            let pos = position(&key[gateway.len() + 1..])?;
            if let Some(old) = self.get(pos)? {
                self.ids
                    .remove(pair(gateway, old.id.as_bytes()))
                    .map_err(state)?;
                self.nodes
                    .remove(pair(&old.node, &pos.to_be_bytes()))
                    .map_err(state)?;
            }
            self.held.remove(pos.to_be_bytes()).map_err(state)?;
            self.gateways.remove(key).map_err(state)?;
        }
        Ok(())
    }
}

fn prefix(id: &str) -> Vec<u8> {
    let mut out = id.as_bytes().to_vec();
    out.push(0);
    out
}

fn pair(id: &str, rest: &[u8]) -> Vec<u8> {
    let mut out = prefix(id);
    out.extend_from_slice(rest);
    out
}

fn position(bytes: &[u8]) -> Result<u64, OpError> {
    let raw: [u8; 8] = bytes.try_into().map_err(|_| {
        OpError::State(StateError::Corrupt {
            key: "reports".into(),
            detail: "not a position".into(),
        })
    })?;
    Ok(u64::from_be_bytes(raw))
}

fn parse(value: &[u8]) -> Result<Held, StateError> {
    serde_json::from_slice(value).map_err(|e| StateError::Corrupt {
        key: "reports".into(),
        detail: e.to_string(),
    })
}

fn state(e: sled::Error) -> OpError {
    OpError::State(e.into())
}

fn op_state(e: OpError) -> StateError {
    match e {
        OpError::State(s) => s,
        other => StateError::Corrupt {
            key: "reports".into(),
            detail: other.to_string(),
        },
    }
}

fn transaction(e: sled::transaction::TransactionError<()>) -> sled::Error {
    match e {
        sled::transaction::TransactionError::Storage(e) => e,
        sled::transaction::TransactionError::Abort(()) => {
            sled::Error::Unsupported("report transaction aborted".into())
        }
    }
}
