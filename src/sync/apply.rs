//! From verified feed records (or a snapshot) to one repository [`Batch`]: node records with
//! their registration provenance kept, keys with their secrets unsealed for this gateway,
//! token revocations, token issuers, and the gateway's own status. Nothing is written here.

use std::collections::{HashMap, HashSet};

use crate::feed::record::{IssuerBody, KeyBody};
use crate::feed::{Body, FeedError, GatewayStatus, NodeBody, SealingKey, Signed, Snapshot};
use crate::security::{CheckKey, KeyOrigin, Secret};
use crate::store::{Batch, FeedIssuer, Node, Nodes, StoreError};

/// What applying some records changes.
pub struct Changes {
    pub batch: Batch,
    /// The gateway's own status, when a record set it.
    pub gateway: Option<GatewayStatus>,
    /// How many of the records the batch covers: all of them, unless one was `refused`.
    pub covers: usize,
    /// Why the record after those covered cannot be applied.
    pub refused: Option<ApplyError>,
}

impl Changes {
    /// No change: what moving the cursor alone takes.
    pub fn nothing() -> Self {
        Changes::new(Batch::new(), None, 0)
    }

    fn new(batch: Batch, gateway: Option<GatewayStatus>, covers: usize) -> Self {
        Changes {
            batch,
            gateway,
            covers,
            refused: None,
        }
    }
}

/// Builds the batch for `records` (already verified and chained), as gateway `me`: up to the
/// first record that cannot be applied (a key it cannot open), which `refused` then names.
pub fn records(
    records: &[Signed],
    me: &str,
    seal: &SealingKey,
    nodes: &Nodes,
    now: u64,
) -> Result<Changes, ApplyError> {
    let mut batch = Batch::new();
    let mut gateway = None;
    let mut touched: HashMap<String, Option<Node>> = HashMap::new();
    for (i, record) in records.iter().enumerate() {
        if !record.is_for(me) {
            continue;
        }
        match &record.body {
            Body::NodePut(body) => {
                let before = match touched.get(&body.id) {
                    Some(node) => node.clone(),
                    None => nodes.get(&body.id)?.map(|n| (*n).clone()),
                };
                let node = node(body, before.as_ref(), now);
                touched.insert(body.id.clone(), Some(node.clone()));
                batch = batch.put_node(node);
            }
            Body::NodeRemove(body) => {
                touched.insert(body.id.clone(), None);
                batch = batch.remove_node(&body.id);
            }
            Body::KeyPut(body) => match key(body, me, seal, record.record.seq) {
                Ok(key) => batch = batch.put_key(key),
                Err(e) => {
                    let mut partial = Changes::new(batch, gateway, i);
                    partial.refused = Some(e);
                    return Ok(partial);
                }
            },
            Body::KeyRemove(body) => batch = batch.remove_key(&body.id),
            Body::TokenRevoke(body) => batch = batch.revoke_token(&body.jti, now),
            Body::GatewayPut(body) if body.id == me => gateway = Some(body.status),
            Body::GatewayPut(_) => {}
            Body::IssuerPut(body) => batch = batch.put_issuer(issuer(body)),
            Body::IssuerRemove(body) => batch = batch.remove_issuer(&body.iss),
        }
    }
    Ok(Changes::new(batch, gateway, records.len()))
}

/// Builds the batch that replaces what the feed gave before with `snapshot`: nodes the
/// snapshot does not hold go (except those registered through this gateway), keys it does not
/// hold go, revocations are added.
pub fn snapshot(
    snapshot: &Snapshot,
    me: &str,
    seal: &SealingKey,
    nodes: &Nodes,
    current_keys: &[CheckKey],
    now: u64,
) -> Result<Changes, ApplyError> {
    let mut batch = Batch::new();
    let kept: HashSet<&str> = snapshot.nodes.iter().map(|n| n.id.as_str()).collect();
    let existing = nodes.all()?;
    for old in existing.iter().filter(|n| n.registered.is_none()) {
        if !kept.contains(old.id.as_str()) {
            batch = batch.remove_node(&old.id);
        }
    }
    let by_id: HashMap<&str, &Node> = existing.iter().map(|n| (n.id.as_str(), n)).collect();
    for body in &snapshot.nodes {
        batch = batch.put_node(node(body, by_id.get(body.id.as_str()).copied(), now));
    }
    let keys: HashSet<&str> = snapshot.keys.iter().map(|k| k.id.as_str()).collect();
    for old in current_keys
        .iter()
        .filter(|k| !keys.contains(k.id.as_str()))
    {
        batch = batch.remove_key(&old.id);
    }
    for body in &snapshot.keys {
        batch = batch.put_key(key(body, me, seal, snapshot.seq)?);
    }
    for jti in &snapshot.revoked {
        batch = batch.revoke_token(jti, now);
    }
    let issuers: HashSet<&str> = snapshot.issuers.iter().map(|i| i.iss.as_str()).collect();
    for old in nodes.issuers()? {
        if !issuers.contains(old.iss.as_str()) {
            batch = batch.remove_issuer(&old.iss);
        }
    }
    for body in &snapshot.issuers {
        batch = batch.put_issuer(issuer(body));
    }
    Ok(Changes::new(batch, Some(snapshot.status), 0))
}

fn issuer(body: &IssuerBody) -> FeedIssuer {
    FeedIssuer {
        iss: body.iss.clone(),
        key: body.key.clone(),
        max_uses: body.max_uses,
    }
}

/// The node as the feed says, keeping how it registered through this gateway (if it did)
/// and when its status last changed (if it did not change now).
fn node(body: &NodeBody, before: Option<&Node>, now: u64) -> Node {
    let mut node = Node::new(&body.id, body.kind, body.groups.clone(), now);
    node.status = body.status;
    node.registrar.clone_from(&body.registrar);
    if let Some(before) = before {
        node.registered.clone_from(&before.registered);
        if before.status == body.status {
            node.status_changed_at = before.status_changed_at;
        }
    }
    node
}

fn key(body: &KeyBody, me: &str, seal: &SealingKey, seq: u64) -> Result<CheckKey, ApplyError> {
    let sealed = body.sealed.get(me).ok_or_else(|| {
        ApplyError::NeedsSnapshot(format!(
            "record {seq}: key {:?} is sealed to no key of gateway {me:?} (it needs a snapshot)",
            body.id
        ))
    })?;
    let secret = crate::feed::seal::open(sealed, seal).map_err(|e| FeedError::Sealed {
        detail: format!("record {seq}: key {:?}: {e}", body.id),
    })?;
    Ok(CheckKey {
        id: body.id.clone(),
        node: body.node.clone(),
        secret: Secret::new(&secret),
        insert: body.insert,
        origin: KeyOrigin::Repository,
    })
}

#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    #[error(transparent)]
    Feed(#[from] FeedError),
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A record this gateway cannot apply from the records alone.
    #[error("{0}")]
    NeedsSnapshot(String),
}
