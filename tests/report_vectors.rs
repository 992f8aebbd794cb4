//! The misbehaviour-report test vectors (tests/vectors/reports.json, docs/reports.md "Test
//! vectors"): reports signed with a fixed test key, and compact objects a reader must refuse.
//! Both readers — `m2mguard::report::Report` here, scripts/report_verify.py in CI — must give
//! each its expected outcome.
//!
//! `M2MGUARD_WRITE_VECTORS=1 cargo test --test report_vectors` writes them anew (Ed25519 is
//! deterministic: the same bytes); otherwise the committed ones are checked.

use m2mguard::feed::keys::{hex, parse_hex32};
use m2mguard::feed::{jws, SigningKey};
use m2mguard::report::{Report, TYP};
use serde_json::{json, Value};

const VECTORS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/vectors/reports.json");
const SEED: &str = "2222222222222222222222222222222222222222222222222222222222222222";

fn key() -> SigningKey {
    SigningKey::from_seed(&parse_hex32(SEED, "seed").unwrap())
}

fn valid() -> Vec<(&'static str, Value)> {
    vec![
        (
            "forged check values",
            json!({
                "id": "5f2b8c0e9a7d4e3f8b1c2d3e4f5a6b7c",
                "gateway": "gw-a",
                "node": "Cmeter",
                "rule": "forged-check-values",
                "from": "2026-12-02T13:04:05.678Z",
                "to": "2026-12-02T13:04:09.120Z",
                "counts": {"check_value": 20},
                "reasons": ["check_value_mismatch"],
                "at": "2026-12-02T13:04:09.121Z"
            }),
        ),
        (
            "every stage, five reasons, a node id with a slash and non-ASCII",
            json!({
                "id": "00000000000000000000000000000001",
                "gateway": "gw-b.site_2",
                "node": "/id-in/Cthermo-é",
                "rule": "any",
                "from": "2026-12-02T00:00:00.000Z",
                "to": "2026-12-02T00:00:00.000Z",
                "counts": {"check_value": 3, "policy": 7, "replay": 2, "status": 1},
                "reasons": ["no_policy_permits", "request_id_seen", "unknown_key", "inactive", "timestamp_stale"],
                "at": "2026-12-02T00:00:01.000Z"
            }),
        ),
    ]
}

/// (name, payload to sign as is, signed by the test key?, typ).
fn refused() -> Vec<(&'static str, Value, bool, &'static str)> {
    let base = valid()[0].1.clone();
    let with = |member: &str, value: Value| {
        let mut v = base.clone();
        v[member] = value;
        v
    };
    let mut content = base.clone();
    content["content"] = json!("eyJ0ZW1wIjo5OX0");
    let mut missing = base.clone();
    missing.as_object_mut().unwrap().remove("reasons");
    vec![
        ("signed by another key", base.clone(), false, TYP),
        (
            "another typ",
            base.clone(),
            true,
            "m2mguard-audit-checkpoint",
        ),
        (
            "a reason outside the vocabulary",
            with(
                "reasons",
                json!(["originator \"Cmeter\" sent /cse-in/secret"]),
            ),
            true,
            TYP,
        ),
        (
            "six reasons",
            with(
                "reasons",
                json!([
                    "unknown_key",
                    "inactive",
                    "forbidden",
                    "replay_full",
                    "mac_not_base64",
                    "token_required"
                ]),
            ),
            true,
            TYP,
        ),
        (
            "a reason twice",
            with("reasons", json!(["unknown_key", "unknown_key"])),
            true,
            TYP,
        ),
        (
            "a count under an unknown stage",
            with("counts", json!({"/cse-in/meter": 1})),
            true,
            TYP,
        ),
        (
            "a count of zero",
            with("counts", json!({"check_value": 0})),
            true,
            TYP,
        ),
        (
            "an id that is not 32 hex digits",
            with("id", json!("5F2B8C0E9A7D4E3F8B1C2D3E4F5A6B7C")),
            true,
            TYP,
        ),
        (
            "from after to",
            with("from", json!("2026-12-02T13:05:00.000Z")),
            true,
            TYP,
        ),
        (
            "a timestamp without milliseconds",
            with("at", json!("2026-12-02T13:04:09Z")),
            true,
            TYP,
        ),
        (
            "a gateway id with a space",
            with("gateway", json!("gw a")),
            true,
            TYP,
        ),
        ("an unknown member (content)", content, true, TYP),
        ("a missing member", missing, true, TYP),
    ]
}

fn sign(payload: &Value, by_test_key: bool, typ: &str) -> String {
    let key = if by_test_key {
        key()
    } else {
        SigningKey::from_seed(&[0x99; 32])
    };
    jws::sign(&key, typ, &serde_json::to_vec(payload).unwrap())
}

fn write() {
    let key = key();
    let reports: Vec<Value> = valid()
        .into_iter()
        .map(|(name, payload)| {
            let report: Report = serde_json::from_value(payload.clone()).unwrap();
            json!({"name": name, "payload": payload, "compact": report.sign(&key)})
        })
        .collect();
    let mut refused: Vec<Value> = refused()
        .into_iter()
        .map(|(name, payload, ours, typ)| json!({"name": name, "compact": sign(&payload, ours, typ)}))
        .collect();
    // A valid report with one payload character changed after signing.
    let good = reports[0]["compact"].as_str().unwrap();
    let mut parts: Vec<String> = good.split('.').map(str::to_owned).collect();
    let payload = String::from_utf8(
        base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, &parts[1])
            .unwrap(),
    )
    .unwrap()
    .replace("\"check_value\":20", "\"check_value\":2");
    parts[1] = base64::Engine::encode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, payload);
    refused.push(json!({"name": "tampered after signing", "compact": parts.join(".")}));
    let doc = json!({
        "description": "m2mguard misbehaviour report vectors (docs/reports.md); the key is a fixed test key, never use it",
        "keys": {
            "gateway": "gw-a",
            "sign_seed": SEED,
            "sign_public": hex(key.public().raw()),
            "kid": key.kid(),
        },
        "reports": reports,
        "refused": refused,
    });
    std::fs::write(VECTORS, serde_json::to_string_pretty(&doc).unwrap() + "\n").unwrap();
}

#[test]
fn the_vectors_verify_and_the_refused_ones_are_refused() {
    if std::env::var_os("M2MGUARD_WRITE_VECTORS").is_some() {
        write();
    }
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(VECTORS).unwrap()).unwrap();
    let key = key();
    assert_eq!(doc["keys"]["sign_public"], hex(key.public().raw()));
    assert_eq!(doc["keys"]["kid"], key.kid());
    let reports = doc["reports"].as_array().unwrap();
    assert_eq!(reports.len(), valid().len());
    for v in reports {
        let compact = v["compact"].as_str().unwrap();
        let report =
            Report::verify(compact, &key.public()).unwrap_or_else(|e| panic!("{}: {e}", v["name"]));
        assert_eq!(
            serde_json::to_value(&report).unwrap(),
            v["payload"],
            "{}",
            v["name"]
        );
        assert_eq!(
            report.sign(&key),
            compact,
            "{}: signed anew, byte for byte",
            v["name"]
        );
    }
    let held = doc["refused"].as_array().unwrap();
    assert_eq!(held.len(), refused().len() + 1);
    for v in held {
        let compact = v["compact"].as_str().unwrap();
        assert!(
            Report::verify(compact, &key.public()).is_err(),
            "{} was accepted",
            v["name"]
        );
    }
}
