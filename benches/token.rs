//! The token stage on its own, as the guard runs it (`Tokens::check`, sled repository behind
//! it): a cold check of a never-seen token per algorithm (EdDSA, ES256, HS256: header and
//! payload parsing, signature, claims, permissions, revocation lookup, cache insert), and warm
//! checks of a repeated token — the cost of every use after the first: SHA-256 of the text,
//! cache hit, time, holder and revocation — without a use limit and with one (a counter
//! update and a flushed sled write per use). Signing happens in the untimed setup. Run with
//! `cargo bench --bench token`.

mod common;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use m2mguard::guard::token::{IssuerConfig, IssuerKey, TokensConfig};
use m2mguard::guard::Tokens;
use m2mguard::primitive::{Operation, Primitive};
use m2mguard::security::Secret;
use m2mguard::store::{SledStore, Store};
use serde_json::json;

const SECRET: [u8; 32] = *b"bench-hs256-secret-of-32-bytes!!";

fn primitive(token: String) -> Primitive {
    let mut p = common::request(Operation::Retrieve, "Cmeter-01", "bench");
    p.security.tokens = vec![token];
    p
}

struct Signer {
    iss: &'static str,
    alg: Algorithm,
    key: EncodingKey,
    next: AtomicU64,
}

impl Signer {
    fn token(&self) -> String {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        let now = common::unix_now();
        let claims = json!({
            "iss": self.iss, "aud": "/id-in", "azp": "Cmeter-01", "jti": format!("b-{n}"),
            "nbf": now - 5, "exp": now + 3600,
            "tkps": [{"ris": ["/id-in/cse-in/meter-01/data"], "pv": {"acr": [{"acop": 3}]}}]
        });
        jsonwebtoken::encode(&Header::new(self.alg), &claims, &self.key).unwrap()
    }
}

fn setup(store: Arc<dyn Store>) -> (Tokens, Vec<(&'static str, Signer)>) {
    let ed = rcgen::KeyPair::generate_for(&rcgen::PKCS_ED25519).unwrap();
    let ec = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let ed_key = IssuerKey::Ed25519Pem(ed.public_key_pem().into_bytes());
    let ec_key = IssuerKey::P256Pem(ec.public_key_pem().into_bytes());
    let hs_key = || IssuerKey::Hmac(Secret::new(&SECRET));
    let config = TokensConfig {
        cache_entries: 1_000_000,
        issuers: vec![
            IssuerConfig::new("ed", ed_key, None),
            IssuerConfig::new("ec", ec_key, None),
            IssuerConfig::new("hs", hs_key(), None),
            IssuerConfig::new("hs-limited", hs_key(), Some(u64::from(u32::MAX))),
        ],
        ..TokensConfig::default()
    };
    let signer = |iss, alg, key| Signer {
        iss,
        alg,
        key,
        next: AtomicU64::new(0),
    };
    let signers = vec![
        (
            "eddsa",
            signer(
                "ed",
                Algorithm::EdDSA,
                EncodingKey::from_ed_pem(ed.serialize_pem().as_bytes()).unwrap(),
            ),
        ),
        (
            "es256",
            signer(
                "ec",
                Algorithm::ES256,
                EncodingKey::from_ec_pem(ec.serialize_pem().as_bytes()).unwrap(),
            ),
        ),
        (
            "hs256",
            signer("hs", Algorithm::HS256, EncodingKey::from_secret(&SECRET)),
        ),
        (
            "hs256_limited",
            signer(
                "hs-limited",
                Algorithm::HS256,
                EncodingKey::from_secret(&SECRET),
            ),
        ),
    ];
    (Tokens::new(&config, "/id-in", store).unwrap(), signers)
}

fn tokens(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(SledStore::open(dir.path()).unwrap());
    let (tokens, signers) = setup(store);
    let mut group = c.benchmark_group("token");
    group.measurement_time(Duration::from_secs(3));
    for (name, signer) in &signers[..3] {
        group.bench_function(format!("cold_{name}"), |b| {
            b.iter_batched(
                || primitive(signer.token()),
                |p| assert!(tokens.check(&p, true, SystemTime::now()).is_ok()),
                BatchSize::SmallInput,
            )
        });
    }
    for (name, signer) in [&signers[0], &signers[3]] {
        let p = primitive(signer.token());
        assert!(tokens.check(&p, true, SystemTime::now()).is_ok());
        let label = if *name == "eddsa" {
            "warm_cached"
        } else {
            "warm_cached_counted"
        };
        group.bench_function(label, |b| {
            b.iter(|| assert!(tokens.check(&p, true, SystemTime::now()).is_ok()))
        });
    }
    group.finish();
}

criterion_group!(benches, tokens);
criterion_main!(benches);
