use std::collections::BTreeMap;
use std::sync::Arc;

use super::apply;
use crate::feed::record::{Record, ZERO_HASH};
use crate::feed::seal::{self, Randomness};
use crate::feed::*;
use crate::store::{
    Keys, MemoryStore, Node, NodeKind, NodeStatus, Nodes, Registered, Repository, Store,
};

const ME: &str = "gw-a";

fn seal_key() -> SealingKey {
    SealingKey::from_scalar([0x33; 32])
}

fn repository() -> (Arc<dyn Store>, Repository) {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::default());
    let nodes = Arc::new(Nodes::new(store.clone(), 100));
    let keys = Arc::new(Keys::load(store.clone()).unwrap());
    (store, Repository::new(nodes, keys))
}

fn node_body(id: &str, status: NodeStatus) -> NodeBody {
    NodeBody {
        id: id.into(),
        kind: NodeKind::Ae,
        groups: vec!["meters".into()],
        status,
        registrar: None,
    }
}

fn key_body(id: &str, node: &str, to: &[&str]) -> KeyBody {
    let sealed = to
        .iter()
        .map(|gw| {
            let public = if *gw == ME {
                *seal_key().public()
            } else {
                *SealingKey::from_scalar([0x77; 32]).public()
            };
            let secret = seal::seal(&[7u8; 32], &public, &Randomness::fresh()).unwrap();
            ((*gw).to_owned(), secret)
        })
        .collect::<BTreeMap<_, _>>();
    KeyBody {
        id: id.into(),
        node: node.into(),
        insert: false,
        sealed,
    }
}

fn signed(bodies: Vec<(&[&str], Body)>) -> Vec<Signed> {
    let key = SigningKey::from_seed(&[0x11; 32]);
    let mut prev = ZERO_HASH.to_owned();
    let mut out = Vec::new();
    for (i, (aud, body)) in bodies.into_iter().enumerate() {
        let header = Record {
            feed: "f".into(),
            seq: i as u64 + 1,
            prev: prev.clone(),
            at: 1,
            aud: aud.iter().map(|a| (*a).to_owned()).collect(),
            kind: String::new(),
            body: serde_json::Value::Null,
        };
        let s = Signed::sign(&key, header, body);
        prev.clone_from(&s.hash);
        out.push(s);
    }
    out
}

#[test]
fn records_for_this_gateway_apply_and_others_are_skipped() {
    let (store, repo) = repository();
    let records = signed(vec![
        (
            &["*"],
            Body::NodePut(node_body("Cmeter", NodeStatus::Active)),
        ),
        (
            &["gw-b"],
            Body::NodePut(node_body("Cother", NodeStatus::Active)),
        ),
        (
            &["*"],
            Body::KeyPut(key_body("k1", "Cmeter", &[ME, "gw-b"])),
        ),
        (&[ME], Body::TokenRevoke(TokenBody { jti: "t1".into() })),
        (
            &[ME],
            Body::GatewayPut(GatewayBody {
                id: ME.into(),
                status: GatewayStatus::Deactivated,
            }),
        ),
    ]);
    let changes = apply::records(&records, ME, &seal_key(), repo.nodes(), 5).unwrap();
    assert_eq!(changes.gateway, Some(GatewayStatus::Deactivated));
    repo.apply(&changes.batch).unwrap();
    assert!(repo.nodes().get("Cmeter").unwrap().is_some());
    assert!(repo.nodes().get("Cother").unwrap().is_none());
    let ring = repo.keys().ring();
    let key = ring.records().find(|k| k.id == "k1").unwrap();
    assert_eq!(key.secret.expose(), &[7u8; 32]);
    assert!(store.token_revoked("t1").unwrap());
}

#[test]
fn records_before_a_key_sealed_to_other_gateways_only_apply_and_the_key_asks_for_a_snapshot() {
    let (_, repo) = repository();
    let records = signed(vec![
        (
            &["*"],
            Body::NodePut(node_body("Cmeter", NodeStatus::Deactivated)),
        ),
        (&["*"], Body::KeyPut(key_body("k1", "Cmeter", &["gw-b"]))),
        (
            &["*"],
            Body::NodePut(node_body("Clater", NodeStatus::Active)),
        ),
    ]);
    let changes = apply::records(&records, ME, &seal_key(), repo.nodes(), 5).unwrap();
    assert_eq!(changes.covers, 1, "the record before the key only");
    let refused = changes.refused.as_ref().unwrap().to_string();
    assert!(refused.contains("needs a snapshot"), "{refused}");
    repo.apply(&changes.batch).unwrap();
    assert_eq!(
        repo.nodes().get("Cmeter").unwrap().unwrap().status,
        NodeStatus::Deactivated
    );
    assert!(repo.nodes().get("Clater").unwrap().is_none());
    // One sealed to us applies whole.
    let records = signed(vec![(
        &["*"],
        Body::KeyPut(key_body("k1", "Cmeter", &[ME])),
    )]);
    let changes = apply::records(&records, ME, &seal_key(), repo.nodes(), 5).unwrap();
    assert!(changes.refused.is_none() && changes.covers == 1);
}

#[test]
fn a_feed_record_keeps_how_a_node_registered() {
    let (_, repo) = repository();
    let mut registered = Node::new("Creg", NodeKind::Ae, vec![], 1);
    registered.registered = Some(Registered {
        at: 1,
        source: "127.0.0.1:5".into(),
        protocol: "https".into(),
        identity: Some("reg".into()),
        requested: "C".into(),
        resource: "/id-in/cse-in/reg".into(),
        policies: vec![],
    });
    repo.apply(&crate::store::Batch::new().put_node(registered))
        .unwrap();
    let records = signed(vec![(
        &["*"],
        Body::NodePut(node_body("Creg", NodeStatus::Deactivated)),
    )]);
    let changes = apply::records(&records, ME, &seal_key(), repo.nodes(), 9).unwrap();
    repo.apply(&changes.batch).unwrap();
    let node = repo.nodes().get("Creg").unwrap().unwrap();
    assert_eq!(node.status, NodeStatus::Deactivated);
    assert_eq!(node.status_changed_at, 9);
    assert_eq!(node.bound_identity(), Some("reg"));
}

#[test]
fn a_snapshot_replaces_what_the_feed_gave_and_keeps_registrations() {
    let (store, repo) = repository();
    let before = signed(vec![
        (
            &["*"],
            Body::NodePut(node_body("Cgone", NodeStatus::Active)),
        ),
        (&["*"], Body::KeyPut(key_body("kgone", "Cgone", &[ME]))),
    ]);
    let changes = apply::records(&before, ME, &seal_key(), repo.nodes(), 1).unwrap();
    repo.apply(&changes.batch).unwrap();
    let mut registered = Node::new("Creg", NodeKind::Ae, vec![], 1);
    registered.registered = Some(Registered {
        at: 1,
        source: "127.0.0.1:5".into(),
        protocol: "http".into(),
        identity: None,
        requested: "C".into(),
        resource: "/id-in/cse-in/reg".into(),
        policies: vec![],
    });
    repo.apply(&crate::store::Batch::new().put_node(registered))
        .unwrap();
    let snapshot = Snapshot {
        feed: "f".into(),
        gateway: ME.into(),
        seq: 9,
        hash: ZERO_HASH.into(),
        at: 2,
        status: GatewayStatus::Active,
        nodes: vec![node_body("Ckept", NodeStatus::Active)],
        keys: vec![key_body("kkept", "Ckept", &[ME])],
        revoked: vec!["t9".into()],
        issuers: vec![],
    };
    let keys: Vec<_> = repo.keys().ring().records().cloned().collect();
    let changes = apply::snapshot(&snapshot, ME, &seal_key(), repo.nodes(), &keys, 3).unwrap();
    repo.apply(&changes.batch).unwrap();
    assert!(repo.nodes().get("Cgone").unwrap().is_none());
    assert!(repo.nodes().get("Ckept").unwrap().is_some());
    assert!(
        repo.nodes().get("Creg").unwrap().is_some(),
        "registered through the gateway"
    );
    let ids: Vec<String> = repo.keys().ring().records().map(|k| k.id.clone()).collect();
    assert_eq!(ids, vec!["kkept".to_owned()]);
    assert!(store.token_revoked("t9").unwrap());
}
