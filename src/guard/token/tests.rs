//! Every rule of the token stage, with tokens signed by real keys (rcgen-generated Ed25519 and
//! P-256, a random HS256 secret) and a real sled repository.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{json, Value};

use super::*;
use crate::primitive::{Operation, Peer, Protocol};
use crate::security::Secret;
use crate::store::SledStore;

const HS_SECRET: [u8; 32] = *b"0123456789abcdef0123456789abcdef";

struct Kit {
    tokens: Tokens,
    store: Arc<dyn Store>,
    ed: rcgen::KeyPair,
    ec: rcgen::KeyPair,
    _dir: tempfile::TempDir,
}

fn kit() -> Kit {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(SledStore::open(dir.path()).unwrap());
    let ed = rcgen::KeyPair::generate_for(&rcgen::PKCS_ED25519).unwrap();
    let ec = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let ed_key = IssuerKey::Ed25519Pem(ed.public_key_pem().into_bytes());
    let ec_key = IssuerKey::P256Pem(ec.public_key_pem().into_bytes());
    let config = TokensConfig {
        max_skew: Duration::from_secs(30),
        cache_entries: 100,
        token_request_info: Some("http://127.0.0.1:1/das".into()),
        resolve_ids: true,
        obtain: Vec::new(),
        issuers: vec![
            IssuerConfig::new("/id-in/das-ed", ed_key, None),
            IssuerConfig::new("/id-in/das-ec", ec_key, None),
            IssuerConfig::new("/id-in/das-hs", hs_key(), Some(3)),
        ],
    };
    Kit {
        tokens: Tokens::new(&config, "/id-in", store.clone()).unwrap(),
        store,
        ed,
        ec,
        _dir: dir,
    }
}

fn hs_key() -> IssuerKey {
    IssuerKey::Hmac(Secret::new(&HS_SECRET))
}

fn now_s() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn claims(iss: &str, jti: &str) -> Value {
    json!({
        "iss": iss, "aud": "/id-in", "azp": "Cmeter", "jti": jti,
        "nbf": now_s() - 10, "exp": now_s() + 600,
        "tkps": [{"ris": ["/id-in/cse-in/meter"], "pv": {"acr": [{"acop": 2 | 4}]}}]
    })
}

impl Kit {
    fn ed_token(&self, claims: &Value) -> String {
        let key = EncodingKey::from_ed_pem(self.ed.serialize_pem().as_bytes()).unwrap();
        jsonwebtoken::encode(&Header::new(Algorithm::EdDSA), claims, &key).unwrap()
    }

    fn ec_token(&self, claims: &Value) -> String {
        let key = EncodingKey::from_ec_pem(self.ec.serialize_pem().as_bytes()).unwrap();
        jsonwebtoken::encode(&Header::new(Algorithm::ES256), claims, &key).unwrap()
    }

    fn check(&self, tokens: &[&str]) -> Result<Option<Arc<TokenGrant>>, Denial> {
        self.check_at(tokens, "Cmeter", SystemTime::now())
    }

    fn check_at(
        &self,
        tokens: &[&str],
        fr: &str,
        now: SystemTime,
    ) -> Result<Option<Arc<TokenGrant>>, Denial> {
        self.tokens.check(&request(fr, tokens), false, now)
    }

    fn reason(&self, tokens: &[&str]) -> Reason {
        let denial = self.check(tokens).unwrap_err();
        assert_eq!(denial.stage, Stage::Token);
        denial.reason
    }

    /// The rule the first (and only) token broke.
    fn rule(&self, tokens: &[&str]) -> TokenError {
        match self.reason(tokens) {
            Reason::Token { index: 0, rule } => rule,
            other => panic!("not a token rule: {other:?}"),
        }
    }
}

fn hs_token(claims: &Value, secret: &[u8]) -> String {
    let key = EncodingKey::from_secret(secret);
    jsonwebtoken::encode(&Header::new(Algorithm::HS256), claims, &key).unwrap()
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// A token with any header, signed (or not) by hand.
fn raw_token(header: &Value, claims: &Value, signature: &[u8]) -> String {
    format!(
        "{}.{}.{}",
        b64(header.to_string().as_bytes()),
        b64(claims.to_string().as_bytes()),
        b64(signature)
    )
}

fn request(fr: &str, tokens: &[&str]) -> Primitive {
    let peer = Peer::unauthenticated(SocketAddr::from(([127, 0, 0, 1], 5000)), Protocol::Http);
    let mut p = Primitive::new(Operation::Retrieve, "/id-in/cse-in/meter", fr, "r1", peer);
    p.security.tokens = tokens.iter().map(|t| t.to_string()).collect();
    p
}

#[test]
fn tokens_of_each_algorithm_grant_their_permissions() {
    let k = kit();
    let ed = k.ed_token(&claims("/id-in/das-ed", "t-ed"));
    let ec = k.ec_token(&claims("/id-in/das-ec", "t-ec"));
    let hs = hs_token(&claims("/id-in/das-hs", "t-hs"), &HS_SECRET);
    for (token, iss, jti) in [
        (&ed, "/id-in/das-ed", "t-ed"),
        (&ec, "/id-in/das-ec", "t-ec"),
        (&hs, "/id-in/das-hs", "t-hs"),
    ] {
        let grant = k.check(&[token]).unwrap().unwrap();
        assert_eq!(grant.issuer, iss);
        assert_eq!(grant.id, jti);
        assert_eq!(grant.resources, ["/id-in/cse-in/meter"]);
        assert_eq!(grant.operations, ["retrieve", "update"]);
    }
}

#[test]
fn no_token_passes_unless_required() {
    let k = kit();
    assert_eq!(k.check(&[]).unwrap(), None);
    let denial = k
        .tokens
        .check(&request("Cmeter", &[]), true, SystemTime::now())
        .unwrap_err();
    assert_eq!(denial.stage, Stage::Token);
    assert!(
        matches!(&denial.reason, Reason::TokenRequired { target } if target == "/id-in/cse-in/meter"),
        "{denial:?}"
    );
}

#[test]
fn alg_none_is_refused() {
    let k = kit();
    for alg in ["none", "None", "NONE"] {
        let token = raw_token(
            &json!({"alg": alg, "typ": "JWT"}),
            &claims("/id-in/das-ed", "n"),
            b"",
        );
        assert_eq!(k.rule(&[&token]), TokenError::Unsigned, "{alg}");
    }
}

#[test]
fn hs256_keyed_with_the_eddsa_public_key_is_refused() {
    let k = kit();
    // The classic confusion: sign HS256 with the public key bytes the verifier holds.
    for secret in [
        k.ed.public_key_pem().into_bytes(),
        k.ed.public_key_raw().to_vec(),
    ] {
        let token = hs_token(&claims("/id-in/das-ed", "c"), &secret);
        let rule = k.rule(&[&token]);
        assert!(
            matches!(&rule, TokenError::AlgorithmNotAllowed { alg, iss } if alg == "HS256" && iss == "/id-in/das-ed"),
            "{rule:?}"
        );
    }
}

#[test]
fn forged_signature_is_refused() {
    let k = kit();
    let other = rcgen::KeyPair::generate_for(&rcgen::PKCS_ED25519).unwrap();
    let key = EncodingKey::from_ed_pem(other.serialize_pem().as_bytes()).unwrap();
    let forged = jsonwebtoken::encode(
        &Header::new(Algorithm::EdDSA),
        &claims("/id-in/das-ed", "f"),
        &key,
    )
    .unwrap();
    assert_eq!(k.rule(&[&forged]), TokenError::BadSignature);
    let wrong_secret = hs_token(&claims("/id-in/das-hs", "f"), &[7; 32]);
    assert_eq!(k.rule(&[&wrong_secret]), TokenError::BadSignature);
    // A valid token whose payload was swapped for a more generous one.
    let good = k.ed_token(&claims("/id-in/das-ed", "f"));
    let mut parts: Vec<&str> = good.split('.').collect();
    let mut wider = claims("/id-in/das-ed", "f");
    wider["tkps"][0]["pv"]["acr"][0]["acop"] = json!(63);
    let payload = b64(wider.to_string().as_bytes());
    parts[1] = &payload;
    assert_eq!(k.rule(&[&parts.join(".")]), TokenError::BadSignature);
}

#[test]
fn unknown_issuer_is_refused_and_no_issuers_refuse_everything() {
    let k = kit();
    let token = k.ed_token(&claims("/id-in/elsewhere", "u"));
    assert_eq!(
        k.rule(&[&token]),
        TokenError::UnknownIssuer("/id-in/elsewhere".into())
    );
    let good = k.ed_token(&claims("/id-in/das-ed", "u"));
    let denial = Tokens::none()
        .check(&request("Cmeter", &[&good]), false, SystemTime::now())
        .unwrap_err();
    assert!(
        matches!(
            &denial.reason,
            Reason::Token {
                index: 0,
                rule: TokenError::UnknownIssuer(_)
            }
        ),
        "{denial:?}"
    );
}

#[test]
fn header_must_say_jwt_and_carry_no_crit() {
    let k = kit();
    let key = EncodingKey::from_ed_pem(k.ed.serialize_pem().as_bytes()).unwrap();
    let c = claims("/id-in/das-ed", "h");
    let mut header = Header::new(Algorithm::EdDSA);
    header.typ = None;
    let untyped = jsonwebtoken::encode(&header, &c, &key).unwrap();
    assert_eq!(k.rule(&[&untyped]), TokenError::NotJwt(None));
    header.typ = Some("at+jwt".into());
    let other = jsonwebtoken::encode(&header, &c, &key).unwrap();
    assert_eq!(k.rule(&[&other]), TokenError::NotJwt(Some("at+jwt".into())));
    let crit = raw_token(
        &json!({"alg": "EdDSA", "typ": "JWT", "crit": ["exp"]}),
        &c,
        &[0; 64],
    );
    assert_eq!(k.rule(&[&crit]), TokenError::Critical);
}

#[test]
fn audience_must_name_this_gateway() {
    let k = kit();
    let mut c = claims("/id-in/das-ed", "a");
    c["aud"] = json!("/id-other");
    assert!(matches!(
        k.rule(&[&k.ed_token(&c)]),
        TokenError::WrongAudience(_)
    ));
    c["aud"] = json!(["/id-other", "/id-in"]);
    assert!(k.check(&[&k.ed_token(&c)]).is_ok());
    c.as_object_mut().unwrap().remove("aud");
    assert!(matches!(
        k.rule(&[&k.ed_token(&c)]),
        TokenError::WrongAudience(_)
    ));
}

#[test]
fn holder_must_be_the_originator() {
    let k = kit();
    let token = k.ed_token(&claims("/id-in/das-ed", "h"));
    let denial = k
        .check_at(&[&token], "Clamp", SystemTime::now())
        .unwrap_err();
    assert!(
        matches!(&denial.reason, Reason::Token { index: 0, rule: TokenError::WrongHolder { holder, fr } } if holder == "Cmeter" && fr == "Clamp"),
        "{denial:?}"
    );
    // Cached now: the holder is still checked per request.
    assert!(k.check(&[&token]).is_ok());
    assert!(k.check_at(&[&token], "Clamp", SystemTime::now()).is_err());
    let mut c = claims("/id-in/das-ed", "h2");
    c.as_object_mut().unwrap().remove("azp");
    assert_eq!(k.rule(&[&k.ed_token(&c)]), TokenError::Missing("azp"));
}

#[test]
fn time_is_checked_on_every_use_within_the_skew() {
    let k = kit();
    let mut c = claims("/id-in/das-ed", "t");
    c["exp"] = json!(now_s() + 100);
    let token = k.ed_token(&c);
    let at = |secs: u64| SystemTime::now() + Duration::from_secs(secs);
    assert!(k.check_at(&[&token], "Cmeter", at(0)).is_ok());
    assert!(
        k.check_at(&[&token], "Cmeter", at(120)).is_ok(),
        "within skew"
    );
    let late = k.check_at(&[&token], "Cmeter", at(131)).unwrap_err();
    assert!(
        matches!(
            late.reason,
            Reason::Token {
                index: 0,
                rule: TokenError::Expired { .. }
            }
        ),
        "{late:?}"
    );
    c["nbf"] = json!(now_s() + 60);
    c["jti"] = json!("t2");
    let early = k.check(&[&k.ed_token(&c)]).unwrap_err();
    assert!(
        matches!(
            early.reason,
            Reason::Token {
                index: 0,
                rule: TokenError::NotYetValid { .. }
            }
        ),
        "{early:?}"
    );
}

#[test]
fn exp_and_jti_are_required() {
    let k = kit();
    for claim in ["exp", "jti"] {
        let mut c = claims("/id-in/das-ed", "r");
        c.as_object_mut().unwrap().remove(claim);
        assert_eq!(
            k.rule(&[&k.ed_token(&c)]),
            TokenError::Missing(claim),
            "{claim}"
        );
    }
}

#[test]
fn revocation_refuses_a_cached_token_at_once_and_evicts_it() {
    let k = kit();
    let token = k.ed_token(&claims("/id-in/das-ed", "rev-1"));
    assert!(k.check(&[&token]).is_ok());
    let key: [u8; 32] = Sha256::digest(token.as_bytes()).into();
    assert!(k.tokens.cache.get(&key).is_some(), "cached after first use");
    assert!(k.tokens.revoke("rev-1", SystemTime::now()).unwrap());
    assert!(k.tokens.cache.get(&key).is_none(), "evicted");
    assert_eq!(k.rule(&[&token]), TokenError::Revoked("rev-1".into()));
    assert!(!k.tokens.revoke("rev-1", SystemTime::now()).unwrap());
    assert!(k.store.token_revoked("rev-1").unwrap());
    // Another token still passes.
    assert!(k
        .check(&[&k.ed_token(&claims("/id-in/das-ed", "rev-2"))])
        .is_ok());
}

#[test]
fn uses_are_counted_durably_on_cache_hits_up_to_the_limit() {
    let k = kit();
    let token = hs_token(&claims("/id-in/das-hs", "uses-1"), &HS_SECRET);
    for _ in 0..3 {
        assert!(k.check(&[&token]).is_ok());
    }
    assert!(matches!(
        k.rule(&[&token]),
        TokenError::UsedUp { limit: 3, .. }
    ));
    // A fresh stage on the same repository (a restart) remembers.
    let again = Tokens::new(
        &TokensConfig {
            issuers: vec![IssuerConfig::new("/id-in/das-hs", hs_key(), Some(3))],
            ..TokensConfig::default()
        },
        "/id-in",
        k.store.clone(),
    )
    .unwrap();
    assert!(again
        .check(&request("Cmeter", &[&token]), false, SystemTime::now())
        .is_err());
}

#[test]
fn tkuc_lowers_the_issuer_limit_but_never_raises_it() {
    let k = kit();
    let mut c = claims("/id-in/das-hs", "tkuc-1");
    c["tkuc"] = json!(1);
    let once = hs_token(&c, &HS_SECRET);
    assert!(k.check(&[&once]).is_ok());
    assert!(matches!(
        k.rule(&[&once]),
        TokenError::UsedUp { limit: 1, .. }
    ));
    c["tkuc"] = json!(1000);
    c["jti"] = json!("tkuc-2");
    let many = hs_token(&c, &HS_SECRET);
    for _ in 0..3 {
        assert!(k.check(&[&many]).is_ok());
    }
    assert!(matches!(
        k.rule(&[&many]),
        TokenError::UsedUp { limit: 3, .. }
    ));
    // tkuc alone limits a token of an issuer without a default.
    let mut c = claims("/id-in/das-ed", "tkuc-3");
    c["tkuc"] = json!(2);
    let ed = k.ed_token(&c);
    assert!(k.check(&[&ed]).is_ok() && k.check(&[&ed]).is_ok());
    assert!(k.check(&[&ed]).is_err());
}

#[test]
fn one_invalid_token_denies_and_counts_no_use_of_the_others() {
    let k = kit();
    let good = hs_token(&claims("/id-in/das-hs", "multi-1"), &HS_SECRET);
    let other = k.ed_token(&claims("/id-in/das-ed", "multi-2"));
    let bad = k.ed_token(&claims("/id-in/nobody", "multi-3"));
    for _ in 0..5 {
        assert!(matches!(
            k.reason(&[&good, &bad]),
            Reason::Token { index: 1, .. }
        ));
    }
    // No use of `good` was counted by the refused requests: all three remain.
    let grant = k.check(&[&other, &good]).unwrap().unwrap();
    assert_eq!(grant.id, "multi-2", "the first token is the grant");
    assert!(k.check(&[&good]).is_ok() && k.check(&[&good]).is_ok());
    assert!(k.check(&[&good]).is_err());
}

#[test]
fn token_ids_and_too_many_tokens_are_refused() {
    let k = kit();
    let good = k.ed_token(&claims("/id-in/das-ed", "ids"));
    let mut p = request("Cmeter", &[&good]);
    p.security.token_ids = vec!["ids".into()];
    let denial = k.tokens.check(&p, false, SystemTime::now()).unwrap_err();
    assert_eq!(denial.reason, Reason::TokenIdsUnresolvable);
    let many: Vec<&str> = std::iter::repeat_n(good.as_str(), MAX_TOKENS + 1).collect();
    assert_eq!(k.reason(&many), Reason::TooManyTokens { max: MAX_TOKENS });
    assert_eq!(
        k.rule(&[&"x".repeat(MAX_TOKEN_BYTES + 1)]),
        TokenError::TooLarge
    );
}

#[test]
fn malformed_tokens_are_refused_without_panicking() {
    let k = kit();
    for bad in ["", ".", "..", "a.b.c", "a.b.c.d", "e30.e30.", "e30.e30.e30"] {
        assert_eq!(k.check(&[bad]).unwrap_err().stage, Stage::Token, "{bad}");
    }
}

#[test]
fn unreadable_permissions_refuse_a_validly_signed_token() {
    let k = kit();
    let mut c = claims("/id-in/das-ed", "p");
    c["tkps"] = json!([{"ris": ["r"], "pv": {"acr": [{"acop": 128}]}}]);
    assert!(matches!(
        k.rule(&[&k.ed_token(&c)]),
        TokenError::Permissions(_)
    ));
}

mod properties {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        /// Changing any one byte of a validly signed token, to any other byte, gets it refused.
        #[test]
        fn any_single_byte_change_is_refused(index in any::<prop::sample::Index>(), byte in any::<u8>()) {
            static KIT: std::sync::OnceLock<(Kit, String)> = std::sync::OnceLock::new();
            let (k, token) = KIT.get_or_init(|| {
                let k = kit();
                let token = k.ed_token(&claims("/id-in/das-ed", "prop"));
                (k, token)
            });
            let mut bytes = token.clone().into_bytes();
            let i = index.index(bytes.len());
            prop_assume!(bytes[i] != byte);
            bytes[i] = byte;
            let mutated = String::from_utf8_lossy(&bytes).into_owned();
            prop_assert!(k.check(&[&mutated]).is_err());
            prop_assert!(k.check(&[token]).is_ok());
        }
    }
}
