//! The token service's vectors (tests/vectors/das.json, docs/authority.md "Tokens"): a node's
//! signed request, the authority's verdict on it, and the token it issues — made here by the
//! code, checked independently by `scripts/feed_verify.py das`.

use serde_json::{json, Value};

use super::config::Grant;
use super::grant::Ask;
use super::{issue, request};
use crate::feed::keys::hex;
use crate::feed::SigningKey;
use crate::guard::Pattern;

const NOW: u64 = 1_796_000_000;
const SECRET: [u8; 32] = [0x5a; 32];

fn vectors() -> Value {
    let token_key = SigningKey::from_seed(&[0x44; 32]);
    let payload = json!({"or": "Cmeter-01", "aud": ["/id-mn", "/id-in"], "ris": ["/id-in/cse-in/meter-01"], "ops": ["retrieve", "create"], "at": NOW, "nonce": "n0nce-0123456789abcdef"});
    let compact = request::sign("meter-k1", &SECRET, &payload);
    let grant = Grant {
        nodes: vec!["Cmeter-01".into()],
        groups: vec![],
        targets: vec![Pattern::new("/id-in/cse-in/meter-01*")],
        operations: 3,
        ttl_s: 300,
        uses: Some(10),
        aud: vec!["/id-mn".into(), "/id-in".into()],
        via: vec![],
    };
    let ask = Ask {
        node: "Cmeter-01".into(),
        aud: vec!["/id-mn".into(), "/id-in".into()],
        ris: vec!["/id-in/cse-in/meter-01".into()],
        ops: vec!["retrieve".into(), "create".into()],
    };
    let mask = ask.mask().unwrap();
    let jti = "00112233445566778899aabbccddeeff";
    let claims = issue::claims("das-test", &ask, mask, &grant, jti, NOW);
    let token = issue::sign(&token_key, &claims);
    let forged = request::sign("meter-k1", &[0x5b; 32], &payload);
    let padded = {
        let mut parts: Vec<String> = compact.split('.').map(str::to_owned).collect();
        parts[2].push('=');
        parts.join(".")
    };
    json!({
        "description": "m2mguard token service vectors (docs/authority.md \"Tokens\"); fixed test keys, never use them",
        "node_key": {"id": "meter-k1", "node": "Cmeter-01", "secret_hex": hex(&SECRET)},
        "token_key": {
            "seed": hex(&[0x44; 32]),
            "public": hex(token_key.public().raw()),
            "kid": token_key.kid(),
        },
        "issuer": "das-test",
        "now": NOW,
        "request": {
            "payload": serde_json::to_string(&payload).unwrap(),
            "compact": compact,
        },
        "grant": {"ttl_s": grant.ttl_s, "uses": grant.uses},
        "token": {
            "claims": serde_json::to_string(&claims).unwrap(),
            "compact": token,
        },
        "refused_requests": [
            {"why": "signed with another secret", "compact": forged},
            {"why": "padding in the signature", "compact": padded},
        ],
    })
}

#[test]
fn the_vector_file_is_what_the_code_makes() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/vectors/das.json");
    let made = serde_json::to_string_pretty(&vectors()).unwrap() + "\n";
    if std::env::var_os("M2MGUARD_WRITE_VECTORS").is_some() {
        std::fs::write(path, &made).unwrap();
    }
    let file = std::fs::read_to_string(path).expect("tests/vectors/das.json");
    assert_eq!(
        file, made,
        "rewrite with M2MGUARD_WRITE_VECTORS=1 cargo test authority::das"
    );
}
