//! Token fixtures: issuer keys generated here (Ed25519, P-256 and an HS256 secret, written to
//! files the gateway configuration names), real signed tokens, and the `[tokens]` table.
#![allow(dead_code)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{json, Value};

pub const ED_ISS: &str = "/id-in/das-ed";
pub const EC_ISS: &str = "/id-in/das-ec";
pub const HS_ISS: &str = "/id-in/das-hs";
pub const TQF: &str = "http://127.0.0.1:18500/das/tokens";
const HS_SECRET: &[u8; 32] = b"m2mguard-test-hs256-secret-32-by";

pub struct Issuers {
    pub dir: tempfile::TempDir,
    pub ed: rcgen::KeyPair,
    pub ec: rcgen::KeyPair,
    next: AtomicU64,
}

impl Issuers {
    pub fn new() -> Issuers {
        let dir = tempfile::tempdir().unwrap();
        let ed = rcgen::KeyPair::generate_for(&rcgen::PKCS_ED25519).unwrap();
        let ec = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        std::fs::write(dir.path().join("ed.pub.pem"), ed.public_key_pem()).unwrap();
        std::fs::write(dir.path().join("ec.pub.pem"), ec.public_key_pem()).unwrap();
        crate::common::key_file(dir.path(), "hs.key", HS_SECRET);
        Issuers {
            dir,
            ed,
            ec,
            next: AtomicU64::new(0),
        }
    }

    /// `[tokens]` with the three issuers (HS256 limited to `hs_max_uses`), and a token
    /// requirement for `require` targets; to go where `config_text` takes `extra_http`.
    pub fn toml(&self, require: &str, hs_max_uses: u64) -> String {
        let path = |f: &str| self.dir.path().join(f).display().to_string();
        format!(
            r#"
[tokens]
max_skew_s = 5
token_request_info = "{TQF}"

[[tokens.issuers]]
iss = "{ED_ISS}"
algorithms = ["EdDSA"]
key = "{ed}"

[[tokens.issuers]]
iss = "{EC_ISS}"
algorithms = ["ES256"]
key = "{ec}"

[[tokens.issuers]]
iss = "{HS_ISS}"
algorithms = ["HS256"]
key = "{hs}"
max_uses = {hs_max_uses}

[[checks.require]]
path = "{require}"
token = true
"#,
            ed = path("ed.pub.pem"),
            ec = path("ec.pub.pem"),
            hs = path("hs.key"),
        )
    }

    /// Good claims for holder `fr` from issuer `iss`, with a fresh `jti`.
    pub fn claims(&self, iss: &str, fr: &str) -> Value {
        let n = self.next.fetch_add(1, Ordering::SeqCst);
        json!({
            "iss": iss, "aud": "/id-in", "azp": fr, "jti": format!("jti-{n}-{}", now_s()),
            "nbf": now_s() - 5, "exp": now_s() + 600,
            "tkps": [{"ris": ["/id-in/cse-in/meter"], "pv": {"acr": [{"acop": 2}]}}]
        })
    }

    pub fn ed(&self, claims: &Value) -> String {
        let key = EncodingKey::from_ed_pem(self.ed.serialize_pem().as_bytes()).unwrap();
        jsonwebtoken::encode(&Header::new(Algorithm::EdDSA), claims, &key).unwrap()
    }

    pub fn ec(&self, claims: &Value) -> String {
        let key = EncodingKey::from_ec_pem(self.ec.serialize_pem().as_bytes()).unwrap();
        jsonwebtoken::encode(&Header::new(Algorithm::ES256), claims, &key).unwrap()
    }

    pub fn hs(&self, claims: &Value) -> String {
        hs256(claims, HS_SECRET)
    }

    /// A valid EdDSA token for `fr`.
    pub fn fresh(&self, fr: &str) -> String {
        self.ed(&self.claims(ED_ISS, fr))
    }
}

pub fn hs256(claims: &Value, secret: &[u8]) -> String {
    let key = EncodingKey::from_secret(secret);
    jsonwebtoken::encode(&Header::new(Algorithm::HS256), claims, &key).unwrap()
}

/// A token with any header and signature, put together by hand.
pub fn raw(header: &Value, claims: &Value, signature: &[u8]) -> String {
    use base64::Engine;
    let b64 = |b: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b);
    format!(
        "{}.{}.{}",
        b64(header.to_string().as_bytes()),
        b64(claims.to_string().as_bytes()),
        b64(signature)
    )
}

pub fn now_s() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}
