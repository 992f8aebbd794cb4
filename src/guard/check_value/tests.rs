use std::net::SocketAddr;

use proptest::prelude::*;

use super::*;
use crate::primitive::{Operation, Peer, Protocol};

fn primitive(
    op: u8,
    to: &str,
    fr: &str,
    rqi: &str,
    ot: Option<&str>,
    ty: Option<u16>,
) -> Primitive {
    let peer = Peer::unauthenticated(SocketAddr::from(([127, 0, 0, 1], 5000)), Protocol::Http);
    Primitive {
        ot: ot.map(Into::into),
        ty,
        ..Primitive::new(Operation::ALL[usize::from(op) - 1], to, fr, rqi, peer)
    }
}

fn hex(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
        .collect()
}

fn ring(node: &str) -> (KeyRing, Secret) {
    let secret = Secret::new(&[7; 32]);
    let key = crate::security::CheckKey::new("k1", node, secret.clone());
    (KeyRing::new(&[key]).unwrap(), secret)
}

/// The vectors made by scripts/check_value.py (the independent implementation).
#[test]
fn matches_the_published_vectors() {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/vectors/check_value.json"
    ))
    .unwrap();
    let file: serde_json::Value = serde_json::from_str(&text).unwrap();
    let vectors = file["vectors"].as_array().unwrap();
    assert_eq!(file["version"], "m2mguard-cv2");
    assert!(vectors.len() >= 7);
    for v in vectors {
        let s = |k: &str| v[k].as_str().unwrap();
        let mut p = primitive(
            v["op"].as_u64().unwrap() as u8,
            s("to"),
            s("fr"),
            s("rqi"),
            v["ot"].as_str(),
            v["ty"].as_u64().map(|t| t as u16),
        );
        p.content = hex(s("content_hex")).into();
        p.rqet = v["rqet"].as_str().map(Into::into);
        p.rvi = v["rvi"].as_str().map(Into::into);
        p.query = s("query").into();
        let seq = v["seq"].as_u64().unwrap();
        assert_eq!(
            canonical(&p, s("key_id"), seq),
            hex(s("canonical_hex")),
            "{}",
            s("name")
        );
        let secret = Secret::new(&hex(s("key_hex")));
        assert_eq!(
            sign(&p, s("key_id"), &secret, seq),
            s("aus"),
            "{}",
            s("name")
        );
    }
}

#[test]
fn a_signed_request_verifies_and_any_change_does_not() {
    let (ring, secret) = ring("Cmeter");
    let mut p = primitive(
        1,
        "/id-in/cse-in/m",
        "Cmeter",
        "r1",
        Some("20261128T120000"),
        Some(4),
    );
    p.content = bytes::Bytes::from_static(b"{\"m2m:cin\":{\"con\":\"1\"}}");
    p.security.aus = Some(sign(&p, "k1", &secret, 5));
    assert_eq!(
        verify(&ring, &p).unwrap(),
        Some(Verified {
            key_id: "k1".into(),
            seq: 5
        })
    );
    let tampered: [fn(&mut Primitive); 10] = [
        |p| p.to.push('x'),
        |p| p.rqi = "r2".into(),
        |p| p.ot = Some("20261128T120001".into()),
        |p| p.ty = Some(3),
        |p| p.op = Operation::Update,
        |p| p.content = bytes::Bytes::from_static(b"{}"),
        |p| p.query = "rcn=1".into(),
        |p| p.rqet = Some("20261128T120500".into()),
        |p| p.rvi = Some("3".into()),
        |p| p.security.aus = p.security.aus.as_ref().map(|a| a.replacen(".5.", ".6.", 1)),
    ];
    for change in tampered {
        let mut q = p.clone();
        change(&mut q);
        assert_eq!(verify(&ring, &q).unwrap_err().stage, Stage::CheckValue);
    }
}

#[test]
fn unknown_key_foreign_key_and_malformed_values_are_denied() {
    let (ring, secret) = ring("Cmeter");
    let mut p = primitive(2, "/id-in/cse-in/m", "Cmeter", "r1", None, None);
    let good = sign(&p, "k1", &secret, 1);
    for bad in [
        good.replacen("k1.", "k2.", 1),
        "k1.1".to_owned(),
        "k1.01.AAAA".to_owned(),
        "k1.0.AAAA".to_owned(),
        "k1.1.AAAA.x".to_owned(),
        "k1.-1.AAAA".to_owned(),
        "k 1.1.AAAA".to_owned(),
        format!("{good}="),
        String::new(),
    ] {
        p.security.aus = Some(bad.clone());
        assert_eq!(
            verify(&ring, &p).unwrap_err().stage,
            Stage::CheckValue,
            "{bad:?}"
        );
    }
    // The key is enrolled for Cmeter: another originator cannot use it, even correctly signed.
    let mut other = primitive(2, "/id-in/cse-in/m", "Clamp", "r1", None, None);
    other.security.aus = Some(sign(&other, "k1", &secret, 1));
    let denial = verify(&ring, &other).unwrap_err();
    assert!(
        matches!(&denial.reason, Reason::KeyNotEnrolled { key_id, fr } if key_id == "k1" && fr == "Clamp"),
        "{denial:?}"
    );
    p.security.aus = Some(good);
    assert!(verify(&ring, &p).unwrap().is_some());
}

proptest! {
    /// Same fields, same bytes; different fields (moved across boundaries included), different
    /// bytes.
    #[test]
    fn canonical_form_is_deterministic_and_injective(
        a in prop::collection::vec("[a-z/:]{0,6}", 4),
        b in prop::collection::vec("[a-z/:]{0,6}", 4),
        seq_a in 1u64..4, seq_b in 1u64..4,
    ) {
        let make = |f: &[String]| {
            let mut p = primitive(2, &f[0], &f[1], &f[2], Some(&f[3]).filter(|s| !s.is_empty()).map(|s| s.as_str()), None);
            p.content = bytes::Bytes::from(f[3].clone());
            p
        };
        let (pa, pb) = (make(&a), make(&b));
        prop_assert_eq!(canonical(&pa, "k", seq_a), canonical(&make(&a), "k", seq_a));
        let same = a == b && seq_a == seq_b;
        prop_assert_eq!(canonical(&pa, "k", seq_a) == canonical(&pb, "k", seq_b), same);
    }
}
