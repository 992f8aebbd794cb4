use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::SystemTime;

use super::*;
use crate::primitive::{OneM2mTopic, Operation, Peer, Protocol, TopicAction, TopicRequest};
use crate::store::{NodeKind, NodeSeed, NodeStatus, SledStore};

struct Fixture {
    guard: Guard,
    nodes: Arc<Nodes>,
    policies: Arc<Policies>,
    _dir: tempfile::TempDir,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let nodes = Arc::new(Nodes::new(
        Arc::new(SledStore::open(dir.path()).unwrap()),
        100,
    ));
    let seed = |id: &str, groups: &[&str]| NodeSeed {
        id: id.into(),
        kind: NodeKind::Ae,
        groups: groups.iter().map(|g| g.to_string()).collect(),
        registrar: None,
    };
    nodes
        .seed(&[
            seed("CAdmin", &["operators"]),
            seed("Cmeter", &["devices", "meters"]),
            seed("Clamp", &["devices", "lamps"]),
        ])
        .unwrap();
    let policies = Arc::new(
        Policies::load(Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/policies"))).unwrap(),
    );
    Fixture {
        guard: Guard::new(nodes.clone(), policies.clone(), MessageChecks::off()),
        nodes,
        policies,
        _dir: dir,
    }
}

fn request(fr: &str, op: Operation, to: &str) -> Primitive {
    let peer = Peer::unauthenticated(SocketAddr::from(([127, 0, 0, 1], 5000)), Protocol::Http);
    let mut p = Primitive::new(op, to, fr, "r1", peer);
    p.ty = (op == Operation::Create).then_some(4);
    p
}

/// `guard`'s verdict, now, on `fr`'s `op` of `to`.
fn decide(guard: &Guard, fr: &str, op: Operation, to: &str) -> Verdict {
    guard.decide(&request(fr, op, to), SystemTime::now())
}

/// The denial [`decide`] must come to.
fn denied(guard: &Guard, fr: &str, op: Operation, to: &str) -> Denial {
    denial(decide(guard, fr, op, to))
}

fn denial(v: Verdict) -> Denial {
    match v {
        Verdict::Deny(d) => d,
        Verdict::Allow(p) => panic!("expected a denial, got {p:?}"),
    }
}

#[test]
fn device_reading_below_the_cse_is_allowed_by_the_named_policy() {
    let f = fixture();
    match decide(&f.guard, "Cmeter", Operation::Retrieve, "/id-in/cse-in/x") {
        Verdict::Allow(permit) => assert_eq!(permit.policy_ids(), ["devices-read-write"]),
        other => panic!("{other:?}"),
    }
}

#[test]
fn delete_by_a_device_is_denied_by_policy() {
    let f = fixture();
    let d = denied(&f.guard, "Cmeter", Operation::Delete, "/id-in/cse-in/x");
    assert_eq!(d.stage, Stage::Policy);
    assert!(
        matches!(&d.reason, Reason::Forbidden { policies } if policies.iter().any(|id| id == "only-operators-delete")),
        "{d:?}"
    );
    assert!(decide(&f.guard, "CAdmin", Operation::Delete, "/id-in/cse-in/x").is_allow());
}

#[test]
fn unknown_originator_is_denied_at_status() {
    let f = fixture();
    let d = denied(&f.guard, "Cnobody", Operation::Retrieve, "/id-in/cse-in");
    assert_eq!(d.stage, Stage::Status);
    assert!(decide(&f.guard, "Cmeter", Operation::Retrieve, "/id-in/cse-in").is_allow());
}

#[test]
fn deactivated_node_is_denied_from_the_next_request_and_allowed_after_activation() {
    let f = fixture();
    let p = request("Clamp", Operation::Retrieve, "/id-in/cse-in/x");
    assert!(f.guard.decide(&p, SystemTime::now()).is_allow());
    for status in [
        NodeStatus::Deactivated,
        NodeStatus::Suspended,
        NodeStatus::Revoked,
    ] {
        f.nodes.set_status("Clamp", status).unwrap();
        let d = denial(f.guard.decide(&p, SystemTime::now()));
        assert_eq!(d.stage, Stage::Status);
        assert_eq!(
            d.reason,
            Reason::Inactive {
                fr: "Clamp".into(),
                status
            }
        );
    }
    f.nodes.set_status("Clamp", NodeStatus::Active).unwrap();
    assert!(f.guard.decide(&p, SystemTime::now()).is_allow());
}

#[test]
fn originator_must_match_the_certificate_identity() {
    let f = fixture();
    let mut p = request("CAdmin", Operation::Retrieve, "/id-in/cse-in");
    p.peer.tls_identity = Some("Cmeter".into());
    assert_eq!(
        denial(f.guard.decide(&p, SystemTime::now())).stage,
        Stage::Identity
    );
    p.fr = "Cmeter".into();
    assert!(f.guard.decide(&p, SystemTime::now()).is_allow());
}

#[test]
fn target_outside_the_permitted_paths_is_denied() {
    let f = fixture();
    let d = denied(&f.guard, "Cmeter", Operation::Retrieve, "/id-other/x");
    assert_eq!(d.stage, Stage::Policy);
    assert!(
        matches!(&d.reason, Reason::NoPolicyPermits { action: "retrieve", resource, principal } if resource == "/id-other/x" && principal == "Cmeter"),
        "{d:?}"
    );
}

#[test]
fn requests_conform_to_the_schema() {
    let f = fixture();
    let bundle = f.policies.current();
    let node = f.nodes.get("Cmeter").unwrap().unwrap();
    for op in Operation::ALL {
        let p = request("Cmeter", op, "/id-in/cse-in/x");
        let mut p = p;
        p.ty = Some(4);
        let evaluator = policy::Evaluator::new(10, Default::default());
        evaluator
            .build(
                &p,
                &node,
                &Findings::default(),
                SystemTime::now(),
                Some(&bundle.schema),
            )
            .unwrap();
    }
}

#[test]
fn policy_evaluation_error_denies_even_where_another_policy_permits() {
    let f = fixture();
    // Validates (the types are right) but overflows at run time.
    let guard = guard_with_policy(
        &f,
        "permit (principal, action, resource);\n\
         @id(\"overflow\")\nforbid (principal, action, resource) when { context.time * 9223372036854775807 > 0 };\n",
    );
    let d = denied(&guard, "Cmeter", Operation::Retrieve, "/id-in/cse-in");
    assert_eq!(d.stage, Stage::Policy);
    assert!(matches!(&d.reason, Reason::PolicyEvaluation(_)), "{d:?}");
    assert!(decide(&f.guard, "Cmeter", Operation::Retrieve, "/id-in/cse-in").is_allow());
}

fn guard_with_policy(f: &Fixture, text: &str) -> Guard {
    guard_with(f, text, MessageChecks::off())
}

fn guard_with(f: &Fixture, text: &str, checks: MessageChecks) -> Guard {
    let dir = tempfile::tempdir().unwrap();
    let shipped = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/policies"));
    std::fs::copy(
        shipped.join("m2mguard.cedarschema"),
        dir.path().join("m2mguard.cedarschema"),
    )
    .unwrap();
    std::fs::write(dir.path().join("p.cedar"), text).unwrap();
    Guard::new(
        f.nodes.clone(),
        Arc::new(Policies::load(dir.path()).unwrap()),
        checks,
    )
}

#[test]
fn repeated_decisions_follow_a_time_policy_across_seconds() {
    let f = fixture();
    let cutoff = 2_000_000_000u64;
    let guard = guard_with_policy(
        &f,
        &format!("permit (principal, action, resource) when {{ context.time < {cutoff} }};"),
    );
    let p = request("Cmeter", Operation::Retrieve, "/id-in/cse-in");
    let at = |secs: u64| SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(secs);
    assert!(guard.decide(&p, at(cutoff - 1)).is_allow());
    assert!(
        guard.decide(&p, at(cutoff - 1)).is_allow(),
        "the same request in the same second"
    );
    assert_eq!(denial(guard.decide(&p, at(cutoff))).stage, Stage::Policy);
    assert!(guard.decide(&p, at(cutoff - 1)).is_allow());
}

#[test]
fn repeated_decisions_follow_node_and_source_changes() {
    let f = fixture();
    let guard = guard_with_policy(
        &f,
        "permit (principal in Group::\"meters\", action, resource) when { context.source.isLoopback() };",
    );
    let mut p = request("Cmeter", Operation::Retrieve, "/id-in/cse-in");
    assert!(guard.decide(&p, SystemTime::now()).is_allow());
    p.peer.addr = SocketAddr::from(([192, 0, 2, 7], 5000));
    assert_eq!(
        denial(guard.decide(&p, SystemTime::now())).stage,
        Stage::Policy,
        "other source"
    );
    p.peer.addr = SocketAddr::from(([127, 0, 0, 1], 5000));
    assert!(guard.decide(&p, SystemTime::now()).is_allow());
    f.nodes
        .seed(&[NodeSeed {
            id: "Cmeter".into(),
            kind: NodeKind::Ae,
            groups: vec!["devices".into()],
            registrar: None,
        }])
        .unwrap();
    assert_eq!(
        denial(guard.decide(&p, SystemTime::now())).stage,
        Stage::Policy,
        "left the group"
    );
}

#[test]
fn policies_see_which_message_checks_passed() {
    use crate::security::{CheckKey, Secret};
    use crate::store::{Keys, Store};
    let f = fixture();
    let secret = Secret::new(&[9; 32]);
    let config = ChecksConfig::default();
    let store: Arc<dyn Store> =
        Arc::new(SledStore::open(f._dir.path().join("checks").as_path()).unwrap());
    let keys = Arc::new(Keys::load(store.clone()).unwrap());
    keys.seed(&[CheckKey::new("k1", "Cmeter", secret.clone())])
        .unwrap();
    let guard = guard_with(
        &f,
        r#"@id("signed-only")
        permit(principal, action == Action::"retrieve", resource) when { context.checks.check_value && !context.checks.token && context.flags.isEmpty() };"#,
        MessageChecks::new(&config, keys, Arc::new(token::Tokens::none()), store).unwrap(),
    );
    let unsigned = request("Cmeter", Operation::Retrieve, "/id-in/cse-in/x");
    let d = denial(guard.decide(&unsigned, SystemTime::now()));
    assert_eq!(d.stage, Stage::Policy, "{d:?}");
    // The same request signed passes; the decision cache keeps the two apart.
    let mut signed = unsigned.clone();
    signed.security.aus = Some(check_value::sign(&signed, "k1", &secret, 1));
    assert!(guard.decide(&signed, SystemTime::now()).is_allow());
    assert!(!guard.decide(&unsigned, SystemTime::now()).is_allow());
}

fn topic(fr: &str, action: TopicAction, name: &str, onem2m: Option<OneM2mTopic>) -> TopicRequest {
    TopicRequest {
        action,
        originator: fr.into(),
        topic: name.into(),
        onem2m,
        peer: Peer {
            addr: SocketAddr::from(([127, 0, 0, 1], 5000)),
            protocol: Protocol::Mqtt,
            tls_identity: None,
        },
    }
}

fn onem2m(
    kind: &'static str,
    originator: Option<&str>,
    receiver: Option<&str>,
) -> Option<OneM2mTopic> {
    Some(OneM2mTopic {
        kind,
        originator: originator.map(Into::into),
        receiver: receiver.map(Into::into),
    })
}

#[test]
fn device_subscribes_to_its_own_response_topic_only() {
    let f = fixture();
    let now = SystemTime::now();
    let own = topic(
        "Cmeter",
        TopicAction::Subscribe,
        "/oneM2M/resp/Cmeter/id-in/json",
        onem2m("resp", Some("Cmeter"), Some("id-in")),
    );
    assert!(f.guard.decide_topic(&own, now).is_allow());
    let other = topic(
        "Cmeter",
        TopicAction::Subscribe,
        "/oneM2M/resp/Clamp/id-in/json",
        onem2m("resp", Some("Clamp"), Some("id-in")),
    );
    assert_eq!(
        denial(f.guard.decide_topic(&other, now)).stage,
        Stage::Policy
    );
    let wildcard = topic(
        "Cmeter",
        TopicAction::Subscribe,
        "/oneM2M/resp/+/id-in/json",
        onem2m("resp", None, Some("id-in")),
    );
    assert_eq!(
        denial(f.guard.decide_topic(&wildcard, now)).stage,
        Stage::Policy
    );
}

#[test]
fn site_topics_follow_groups_and_forbids() {
    let f = fixture();
    let now = SystemTime::now();
    let publish = |fr, name| topic(fr, TopicAction::Publish, name, None);
    assert!(f
        .guard
        .decide_topic(&publish("Cmeter", "site/meters/1"), now)
        .is_allow());
    let lamp = denial(
        f.guard
            .decide_topic(&publish("Clamp", "site/meters/1"), now),
    );
    assert_eq!(
        lamp.reason,
        Reason::Forbidden {
            policies: vec!["lamps-not-publishing-meter-topics".into()]
        }
    );
    assert!(f
        .guard
        .decide_topic(&publish("Clamp", "site/lamps/1"), now)
        .is_allow());
    assert_eq!(
        denial(f.guard.decide_topic(&publish("Cmeter", "#"), now)).stage,
        Stage::Policy
    );
    assert!(f
        .guard
        .decide_topic(&publish("CAdmin", "anything"), now)
        .is_allow());
}

#[test]
fn topic_decisions_follow_status_and_are_not_stale_after_deactivation() {
    let f = fixture();
    let now = SystemTime::now();
    let t = topic("Cmeter", TopicAction::Publish, "site/x", None);
    assert!(f.guard.decide_topic(&t, now).is_allow());
    f.nodes
        .set_status("Cmeter", NodeStatus::Deactivated)
        .unwrap();
    assert_eq!(denial(f.guard.decide_topic(&t, now)).stage, Stage::Status);
    assert_eq!(
        f.guard.admit("Cmeter", &t.peer).unwrap_err().stage,
        Stage::Status
    );
    // Unknown: admitted for registration only, which refuses every topic but its own
    // registration responses.
    assert_eq!(
        f.guard.admit("Cnobody", &t.peer).unwrap(),
        Admission::Registrant
    );
    let nobody = topic("Cnobody", TopicAction::Publish, "site/x", None);
    assert_eq!(
        denial(f.guard.decide_registrant_topic(&nobody)).stage,
        Stage::Status
    );
    f.nodes.set_status("Cmeter", NodeStatus::Active).unwrap();
    assert!(f.guard.decide_topic(&t, now).is_allow());
    assert!(f.guard.admit("Cmeter", &t.peer).is_ok());
}

#[test]
fn topic_requests_conform_to_the_schema() {
    let f = fixture();
    let bundle = f.policies.current();
    let node = f.nodes.get("Cmeter").unwrap().unwrap();
    for t in [
        topic("Cmeter", TopicAction::Publish, "site/x", None),
        topic(
            "Cmeter",
            TopicAction::Subscribe,
            "/oneM2M/req/+/Cmeter/#",
            onem2m("req", None, Some("Cmeter")),
        ),
    ] {
        f.guard
            .evaluator
            .build_topic(
                &t,
                &Principal {
                    node: node.clone(),
                    enrolled: true,
                },
                SystemTime::now(),
                Some(&bundle.schema),
            )
            .unwrap();
    }
}

#[test]
fn request_must_come_from_every_bound_originator() {
    let f = fixture();
    let p = request("Cmeter", Operation::Retrieve, "/id-in/cse-in/x");
    let now = SystemTime::now();
    let bound = |topic| [("session", "Cmeter"), ("topic", topic)];
    assert!(f.guard.decide_bound(&p, &bound("Cmeter"), now).is_allow());
    let d = denial(f.guard.decide_bound(&p, &bound("Clamp"), now));
    assert_eq!(d.stage, Stage::Identity);
    assert_eq!(
        d.reason,
        Reason::Unbound {
            fr: "Cmeter".into(),
            what: "topic",
            id: "Clamp".into()
        }
    );
    // Bound and still subject to every later stage.
    let delete = request("Cmeter", Operation::Delete, "/id-in/cse-in/x");
    assert_eq!(
        denial(f.guard.decide_bound(&delete, &bound("Cmeter"), now)).stage,
        Stage::Policy
    );
}

#[test]
fn an_observe_forbid_allows_and_reports_itself_the_same_from_the_cache() {
    let f = fixture();
    let guard = guard_with_policy(
        &f,
        "@id(\"all\")\npermit (principal, action, resource);\n\
         @id(\"watch-lamps\")\n@observe\nforbid (principal in Group::\"lamps\", action, resource);\n\
         @id(\"no-delete\")\nforbid (principal, action == Action::\"delete\", resource);\n",
    );
    let would = Denial::new(
        Stage::Policy,
        Reason::Forbidden {
            policies: vec!["watch-lamps".into()],
        },
    );
    let lamp = request("Clamp", Operation::Retrieve, "/id-in/cse-in");
    // The first sighting is evaluated, the second cached, the third read from the cache.
    for n in 0..3 {
        match guard.decide(&lamp, SystemTime::now()) {
            Verdict::Allow(permit) => {
                assert_eq!(permit.policy_ids(), ["all"], "#{n}");
                assert_eq!(permit.would_deny(), Some(&would), "#{n}");
            }
            other => panic!("#{n}: {other:?}"),
        }
    }
    let t = topic("Clamp", TopicAction::Publish, "site/x", None);
    match guard.decide_topic(&t, SystemTime::now()) {
        Verdict::Allow(permit) => assert_eq!(permit.would_deny(), Some(&would)),
        other => panic!("{other:?}"),
    }
    // An enforced forbid still denies, and names only itself.
    let d = denial(guard.decide(
        &request("Clamp", Operation::Delete, "/id-in/cse-in"),
        SystemTime::now(),
    ));
    assert_eq!(
        d.reason,
        Reason::Forbidden {
            policies: vec!["no-delete".into()]
        }
    );
    // Legitimate: a request no observed policy matches carries nothing.
    match guard.decide(
        &request("Cmeter", Operation::Retrieve, "/id-in/cse-in"),
        SystemTime::now(),
    ) {
        Verdict::Allow(permit) => assert_eq!(permit.would_deny(), None),
        other => panic!("{other:?}"),
    }
}

#[test]
fn an_observe_forbid_that_fails_to_evaluate_is_a_would_be_denial_not_a_denial() {
    let f = fixture();
    let guard = guard_with_policy(
        &f,
        "permit (principal, action, resource);\n\
         @id(\"overflow\")\n@observe\nforbid (principal, action, resource) when { context.time * 9223372036854775807 > 0 };\n",
    );
    match guard.decide(
        &request("Cmeter", Operation::Retrieve, "/id-in/cse-in"),
        SystemTime::now(),
    ) {
        Verdict::Allow(permit) => assert!(
            matches!(
                permit.would_deny().map(|d| &d.reason),
                Some(Reason::PolicyEvaluation(_))
            ),
            "{permit:?}"
        ),
        other => panic!("{other:?}"),
    }
}
