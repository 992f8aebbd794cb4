use std::collections::BTreeMap;

use serde_json::{json, Value};

use super::record::{Record, ZERO_HASH};
use super::seal::{self, Randomness};
use super::*;
use crate::store::{NodeKind, NodeStatus};

const FEED: &str = "feed-test";
const NOW: u64 = 1_796_000_000;

fn feed_key() -> SigningKey {
    SigningKey::from_seed(&[0x11; 32])
}

fn gateway_sign() -> SigningKey {
    SigningKey::from_seed(&[0x22; 32])
}

fn gateway_seal() -> SealingKey {
    SealingKey::from_scalar([0x33; 32])
}

fn fixed_randomness() -> Randomness {
    Randomness {
        ephemeral: [0x44; 32],
        cek: [0x55; 32],
        iv: [0x66; 12],
    }
}

fn header(seq: u64, prev: &str, aud: &[&str]) -> Record {
    Record {
        feed: FEED.into(),
        seq,
        prev: prev.into(),
        at: NOW + seq,
        aud: aud.iter().map(|a| (*a).to_owned()).collect(),
        kind: String::new(),
        body: Value::Null,
    }
}

fn bodies() -> Vec<(Vec<&'static str>, Body)> {
    let sealed = seal::seal(
        b"0123456789abcdef0123456789abcdef",
        gateway_seal().public(),
        &fixed_randomness(),
    )
    .unwrap();
    vec![
        (
            vec!["*"],
            Body::NodePut(NodeBody {
                id: "Cmeter-01".into(),
                kind: NodeKind::Ae,
                groups: vec!["meters".into()],
                status: NodeStatus::Active,
                registrar: None,
            }),
        ),
        (
            vec!["*"],
            Body::KeyPut(KeyBody {
                id: "meter-01-k1".into(),
                node: "Cmeter-01".into(),
                insert: false,
                sealed: BTreeMap::from([("gw-a".to_owned(), sealed)]),
            }),
        ),
        (
            vec!["gw-a"],
            Body::TokenRevoke(TokenBody {
                jti: "tok-7".into(),
            }),
        ),
        (
            vec!["*"],
            Body::NodePut(NodeBody {
                id: "Cmeter-01".into(),
                kind: NodeKind::Ae,
                groups: vec!["meters".into()],
                status: NodeStatus::Deactivated,
                registrar: None,
            }),
        ),
        (
            vec!["gw-a"],
            Body::GatewayPut(GatewayBody {
                id: "gw-a".into(),
                status: GatewayStatus::Deactivated,
            }),
        ),
        (
            vec!["*"],
            Body::KeyRemove(IdBody {
                id: "meter-01-k1".into(),
            }),
        ),
        (
            vec!["*"],
            Body::NodeRemove(IdBody {
                id: "Cmeter-01".into(),
            }),
        ),
    ]
}

fn chain() -> Vec<Signed> {
    let key = feed_key();
    let mut prev = ZERO_HASH.to_owned();
    let mut out = Vec::new();
    for (i, (aud, body)) in bodies().into_iter().enumerate() {
        let signed = Signed::sign(&key, header(i as u64 + 1, &prev, &aud), body);
        prev.clone_from(&signed.hash);
        out.push(signed);
    }
    out
}

#[test]
fn records_verify_and_extend_the_chain_in_order() {
    let public = feed_key().public();
    let mut position = Position::start(FEED);
    for signed in chain() {
        let verified = Signed::verify(&signed.compact, &public).unwrap();
        assert_eq!(verified, signed);
        position.extend(&verified).unwrap();
    }
    assert_eq!(position.seq, 7);
}

#[test]
fn a_flipped_byte_anywhere_is_refused() {
    let public = feed_key().public();
    let compact = chain()[1].compact.clone();
    for i in 0..compact.len() {
        let mut bytes = compact.clone().into_bytes();
        bytes[i] = if bytes[i] == b'A' { b'B' } else { b'A' };
        let tampered = String::from_utf8(bytes).unwrap();
        if tampered != compact {
            assert!(Signed::verify(&tampered, &public).is_err(), "byte {i}");
        }
    }
    assert!(Signed::verify(&compact, &public).is_ok());
}

#[test]
fn another_signer_or_type_is_refused() {
    let other = SigningKey::from_seed(&[0x99; 32]);
    let forged = Signed::sign(&other, header(1, ZERO_HASH, &["*"]), bodies().remove(0).1);
    let err = Signed::verify(&forged.compact, &feed_key().public()).unwrap_err();
    assert!(err.to_string().contains("unknown key"), "{err}");
    let head = Head {
        feed: FEED.into(),
        seq: 0,
        hash: ZERO_HASH.into(),
        at: NOW,
        valid_until: NOW + 60,
    }
    .sign(&feed_key());
    let err = Signed::verify(&head, &feed_key().public()).unwrap_err();
    assert!(err.to_string().contains("typ"), "{err}");
    assert!(Head::verify(&head, &feed_key().public()).is_ok());
}

#[test]
fn gaps_replays_and_forks_leave_the_position_as_it_was() {
    let records = chain();
    let mut position = Position::start(FEED);
    position.extend(&records[0]).unwrap();
    let before = position.clone();
    assert!(position
        .extend(&records[2])
        .unwrap_err()
        .to_string()
        .contains("missing"));
    assert!(position
        .extend(&records[0])
        .unwrap_err()
        .to_string()
        .contains("old"));
    let fork = Signed::sign(
        &feed_key(),
        header(2, ZERO_HASH, &["*"]),
        bodies().remove(2).1,
    );
    assert!(position
        .extend(&fork)
        .unwrap_err()
        .to_string()
        .contains("fork"));
    assert_eq!(position, before);
    position.extend(&records[1]).unwrap();
}

#[test]
fn heads_detect_expiry_rollback_and_forks() {
    let records = chain();
    let mut position = Position::start(FEED);
    position.extend(&records[0]).unwrap();
    let head = |seq: u64, hash: &str, at: u64| Head {
        feed: FEED.into(),
        seq,
        hash: hash.into(),
        at,
        valid_until: at + 30,
    };
    assert_eq!(
        position
            .observe(&head(3, &records[2].hash, NOW), NOW)
            .unwrap(),
        Behind(2)
    );
    assert_eq!(position.head_at, 0, "not caught up yet");
    let err = position
        .observe(&head(2, &records[1].hash, NOW), NOW)
        .unwrap_err();
    assert!(err.to_string().contains("rolled back"), "{err}");
    let err = position
        .observe(&head(3, &records[2].hash, NOW - 100), NOW)
        .unwrap_err();
    assert!(err.to_string().contains("expired"), "{err}");
    position.extend(&records[1]).unwrap();
    position.extend(&records[2]).unwrap();
    let err = position
        .observe(&head(3, &records[0].hash, NOW), NOW)
        .unwrap_err();
    assert!(err.to_string().contains("fork"), "{err}");
    assert_eq!(
        position
            .observe(&head(3, &records[2].hash, NOW), NOW)
            .unwrap(),
        Behind(0)
    );
    assert_eq!(position.age(NOW + 5), Some(5));
}

#[test]
fn a_sealed_secret_opens_only_for_its_gateway() {
    let secret = b"0123456789abcdef0123456789abcdef";
    let sealed = seal::seal(secret, gateway_seal().public(), &Randomness::fresh()).unwrap();
    assert_eq!(seal::open(&sealed, &gateway_seal()).unwrap(), secret);
    let other = SealingKey::from_scalar([0x77; 32]);
    assert!(seal::open(&sealed, &other).is_err());
    let mut parts: Vec<String> = sealed.split('.').map(str::to_owned).collect();
    let first = if parts[3].starts_with('A') { "B" } else { "A" };
    parts[3].replace_range(..1, first);
    assert!(seal::open(&parts.join("."), &gateway_seal()).is_err());
}

/// The vector file, as the code makes it: tests/vectors/feed.json must be exactly this
/// (rewrite it with M2MGUARD_WRITE_VECTORS=1). scripts/feed_verify.py checks it independently.
fn vectors() -> Value {
    let records = chain();
    let last = records.last().unwrap();
    let head = Head {
        feed: FEED.into(),
        seq: last.record.seq,
        hash: last.hash.clone(),
        at: NOW + 10,
        valid_until: NOW + 70,
    };
    let key_record = match &records[1].body {
        Body::KeyPut(k) => k.clone(),
        _ => unreachable!(),
    };
    let snapshot = Snapshot {
        feed: FEED.into(),
        gateway: "gw-a".into(),
        seq: 2,
        hash: records[1].hash.clone(),
        at: NOW + 3,
        status: GatewayStatus::Active,
        nodes: match &records[0].body {
            Body::NodePut(n) => vec![n.clone()],
            _ => unreachable!(),
        },
        keys: vec![key_record.clone()],
        revoked: vec![],
        issuers: vec![],
    };
    let ack = Ack {
        feed: FEED.into(),
        gateway: "gw-a".into(),
        seq: last.record.seq,
        hash: last.hash.clone(),
        at: NOW + 11,
        error: None,
    };
    let hex = keys::hex;
    let r = fixed_randomness();
    let bad_sig = {
        let mut c = records[0].compact.clone();
        let last = c.pop().unwrap();
        c.push(if last == 'A' { 'B' } else { 'A' });
        c
    };
    let other_signer = Signed::sign(
        &SigningKey::from_seed(&[0x99; 32]),
        header(1, ZERO_HASH, &["*"]),
        bodies().remove(0).1,
    );
    let removal = Signed::sign(
        &feed_key(),
        header(1, ZERO_HASH, &["gw-a"]),
        Body::GatewayPut(GatewayBody {
            id: "gw-a".into(),
            status: GatewayStatus::Removed,
        }),
    );
    let removed_snapshot = Snapshot {
        feed: FEED.into(),
        gateway: "gw-a".into(),
        seq: 1,
        hash: removal.hash.clone(),
        at: NOW + 2,
        status: GatewayStatus::Removed,
        nodes: vec![],
        keys: vec![],
        revoked: vec![],
        issuers: vec![],
    };
    let bad_issuer = [
        IssuerBody {
            alg: "ES256".into(),
            ..issuer()
        },
        IssuerBody {
            key: issuer().key.to_uppercase(),
            ..issuer()
        },
    ]
    .map(|b| {
        Signed::sign(
            &feed_key(),
            header(1, ZERO_HASH, &["*"]),
            Body::IssuerPut(b),
        )
        .compact
    });
    let issuer_records: Vec<Value> = [
        Body::IssuerPut(issuer()),
        Body::IssuerRemove(IssuerIdBody { iss: issuer().iss }),
    ]
    .into_iter()
    .map(|body| {
        let s = Signed::sign(&feed_key(), header(1, ZERO_HASH, &["*"]), body);
        json!({
            "payload": String::from_utf8(serde_json::to_vec(&s.record).unwrap()).unwrap(),
            "compact": s.compact,
            "hash": s.hash,
        })
    })
    .collect();
    json!({
        "description": "m2mguard status feed vectors (docs/feed.md); keys are fixed test keys, never use them",
        "feed": FEED,
        "keys": {
            "feed_seed": hex(&[0x11; 32]),
            "feed_public": hex(feed_key().public().raw()),
            "feed_kid": feed_key().kid(),
            "gateway": "gw-a",
            "gateway_sign_seed": hex(&[0x22; 32]),
            "gateway_sign_public": hex(gateway_sign().public().raw()),
            "gateway_seal_scalar": hex(&[0x33; 32]),
            "gateway_seal_public": hex(gateway_seal().public()),
            "gateway_seal_kid": gateway_seal().kid(),
        },
        "sealed": {
            "secret_hex": hex(b"0123456789abcdef0123456789abcdef"),
            "ephemeral_scalar": hex(&r.ephemeral),
            "cek": hex(&r.cek),
            "iv": hex(&r.iv),
            "compact": key_record.sealed["gw-a"],
        },
        "records": records.iter().map(|s| json!({
            "payload": String::from_utf8(serde_json::to_vec(&s.record).unwrap()).unwrap(),
            "compact": s.compact,
            "hash": s.hash,
        })).collect::<Vec<_>>(),
        "head": {
            "payload": String::from_utf8(serde_json::to_vec(&head).unwrap()).unwrap(),
            "compact": head.sign(&feed_key()),
        },
        "snapshot": {
            "payload": String::from_utf8(serde_json::to_vec(&snapshot).unwrap()).unwrap(),
            "compact": snapshot.sign(&feed_key()),
        },
        "ack": {
            "payload": String::from_utf8(serde_json::to_vec(&ack).unwrap()).unwrap(),
            "compact": ack.sign(&gateway_sign()),
        },
        "refused": [
            {"why": "signature does not verify", "typ": "m2mguard-record", "compact": bad_sig},
            {"why": "signed by another key", "typ": "m2mguard-record", "compact": other_signer.compact},
            {"why": "a head where a record is expected", "typ": "m2mguard-record", "compact": head.sign(&feed_key())},
            {"why": "aud mixes \"*\" with a gateway id", "typ": "m2mguard-record", "compact": Signed::sign(&feed_key(), header(1, ZERO_HASH, &["*", "gw-a"]), bodies().remove(0).1).compact},
            {"why": "an empty node id", "typ": "m2mguard-record", "compact": Signed::sign(&feed_key(), header(1, ZERO_HASH, &["*"]), Body::NodeRemove(IdBody { id: String::new() })).compact},
            {"why": "issuer.put with alg ES256", "typ": "m2mguard-record", "compact": bad_issuer[0]},
            {"why": "issuer.put with an uppercase key", "typ": "m2mguard-record", "compact": bad_issuer[1]},
        ],
        "removed": {
            "record": {
                "payload": String::from_utf8(serde_json::to_vec(&removal.record).unwrap()).unwrap(),
                "compact": removal.compact,
                "hash": removal.hash,
            },
            "snapshot": {
                "payload": String::from_utf8(serde_json::to_vec(&removed_snapshot).unwrap()).unwrap(),
                "compact": removed_snapshot.sign(&feed_key()),
            },
        },
        "issuer_records": issuer_records,
    })
}

/// The token issuer of the vectors: the public key of the seed 0x44... (see das.json).
fn issuer() -> IssuerBody {
    IssuerBody {
        iss: "das-test".into(),
        alg: "EdDSA".into(),
        key: keys::hex(SigningKey::from_seed(&[0x44; 32]).public().raw()),
        max_uses: None,
    }
}

#[test]
fn the_vector_file_is_what_the_code_makes() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/vectors/feed.json");
    let made = serde_json::to_string_pretty(&vectors()).unwrap() + "\n";
    if std::env::var_os("M2MGUARD_WRITE_VECTORS").is_some() {
        std::fs::write(path, &made).unwrap();
    }
    let file = std::fs::read_to_string(path).expect("tests/vectors/feed.json");
    assert_eq!(
        file, made,
        "rewrite with M2MGUARD_WRITE_VECTORS=1 cargo test feed::"
    );
    for refused in vectors()["refused"].as_array().unwrap() {
        let compact = refused["compact"].as_str().unwrap();
        assert!(Signed::verify(compact, &feed_key().public()).is_err());
    }
}

#[test]
fn a_missing_nullable_member_is_refused() {
    let body = json!({"id": "C1", "kind": "ae", "groups": [], "status": "active"});
    let err = Body::parse("node.put", &body).unwrap_err();
    assert!(err.to_string().contains("registrar"), "{err}");
    let body =
        json!({"id": "C1", "kind": "ae", "groups": [], "status": "active", "registrar": null});
    assert!(Body::parse("node.put", &body).is_ok());
}
