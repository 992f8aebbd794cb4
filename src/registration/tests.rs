use std::net::SocketAddr;
use std::sync::Arc;

use super::*;
use crate::primitive::Protocol;
use crate::store::{Keys, MemoryStore, NodeSeed, Nodes, Store};

fn registrar() -> (Registrar, Arc<Nodes>) {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::default());
    let nodes = Arc::new(Nodes::new(store.clone(), 100));
    nodes
        .seed(&[NodeSeed {
            id: "CAdmin".into(),
            kind: NodeKind::Ae,
            groups: vec!["operators".into()],
            registrar: None,
        }])
        .unwrap();
    let keys = Arc::new(Keys::load(store).unwrap());
    let repository = Arc::new(Repository::new(nodes.clone(), keys));
    (Registrar::new(repository), nodes)
}

fn registration(identity: Option<&str>) -> FollowUp {
    FollowUp::Register(Registration {
        kind: NodeKind::Ae,
        requested: "C".into(),
        parent: "/id-in/cse-in".into(),
        peer: Peer {
            addr: SocketAddr::from(([127, 0, 0, 1], 40000)),
            protocol: Protocol::Https,
            tls_identity: identity.map(str::to_owned),
        },
        groups: vec!["devices".into()],
        policies: vec!["devices-register".into()],
        registrar: None,
    })
}

const ACCEPTED: &[u8] = br#"{"m2m:ae": {"aei": "CAE1", "rn": "meter", "ri": "CAE1", "api": "Nx"}}"#;

#[test]
fn an_accepted_registration_enrols_the_assigned_id_with_its_provenance() {
    let (registrar, nodes) = registrar();
    let done = registrar.complete(&registration(Some("meter-07")), Some(2001), ACCEPTED);
    assert_eq!(done.unwrap(), Completed::Enrolled("CAE1".into()));
    let node = nodes.get("CAE1").unwrap().unwrap();
    assert_eq!(node.groups, ["devices"]);
    let registered = node.registered.as_ref().unwrap();
    assert_eq!(registered.resource, "/id-in/cse-in/meter");
    assert_eq!(registered.source, "127.0.0.1:40000");
    assert_eq!(registered.protocol, "https");
    assert_eq!(node.bound_identity(), Some("meter-07"));
    assert_eq!(nodes.bound_to("meter-07").unwrap().as_deref(), Some("CAE1"));
}

#[test]
fn a_refused_registration_changes_nothing() {
    let (registrar, nodes) = registrar();
    let done = registrar.complete(&registration(None), Some(4105), b"{}");
    assert_eq!(done.unwrap(), Completed::Nothing);
    assert!(nodes.get("CAE1").unwrap().is_none());
}

#[test]
fn an_accepted_registration_without_an_assigned_id_is_an_error() {
    let (registrar, _) = registrar();
    for content in [
        &b"not json"[..],
        br#"{"m2m:ae": {"rn": "x"}}"#,
        br#"{"m2m:ae": {"aei": "C1", "rn": "a/b"}}"#,
    ] {
        let done = registrar.complete(&registration(None), Some(2001), content);
        assert!(matches!(done, Err(RegistrationError::NoAssignedId("aei"))));
    }
}

#[test]
fn a_configured_node_is_never_overwritten_by_a_registration() {
    let (registrar, nodes) = registrar();
    let taken = br#"{"m2m:ae": {"aei": "CAdmin", "rn": "admin"}}"#;
    let done = registrar.complete(&registration(None), Some(2001), taken);
    assert!(matches!(done, Err(RegistrationError::Taken(id)) if id == "CAdmin"));
    assert!(nodes.get("CAdmin").unwrap().unwrap().registered.is_none());
}

#[test]
fn an_accepted_deregistration_removes_the_node() {
    let (registrar, nodes) = registrar();
    registrar
        .complete(&registration(None), Some(2001), ACCEPTED)
        .unwrap();
    let deregister = FollowUp::Deregister("CAE1".into());
    assert_eq!(
        registrar.complete(&deregister, Some(4004), b"").unwrap(),
        Completed::Nothing
    );
    assert!(nodes.get("CAE1").unwrap().is_some());
    assert_eq!(
        registrar.complete(&deregister, Some(2002), b"").unwrap(),
        Completed::Removed("CAE1".into())
    );
    assert!(nodes.get("CAE1").unwrap().is_none());
}

#[test]
fn what_the_registrant_asks_for_is_read_from_json_only() {
    let asked = Asked::read(
        NodeKind::Ae,
        br#"{"m2m:ae": {"api": "Nmeter", "rn": "m7", "rr": true}}"#,
    );
    assert_eq!(asked.api.as_deref(), Some("Nmeter"));
    assert_eq!(asked.rn.as_deref(), Some("m7"));
    assert_eq!(
        Asked::read(NodeKind::Cse, br#"{"m2m:ae": {"api": "N"}}"#),
        Asked::default()
    );
    assert_eq!(Asked::read(NodeKind::Ae, b"\xa1\x61x"), Asked::default());
}
