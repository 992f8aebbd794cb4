//! `[tokens]`: the access-control token stage (TS-0003 §7.3.2.6 JWTs) — clock skew, the
//! verified-token cache, the token request information sent with a token denial, and the
//! trusted issuers with their algorithms, keys and default use limits.
//!
//! In: the raw `[tokens]` table. Out: [`TokensConfig`], every issuer key read and parsed (a
//! PEM public key for EdDSA/ES256, a secret file for HS256 under the rules of
//! [`super::checks`]), or located errors. One issuer has one key, so its algorithms must all
//! belong to that key's family; `none` is never an algorithm.

use std::path::Path;
use std::time::Duration;

use serde::Deserialize;

use super::checks::read_key;
use super::Validator;
use crate::guard::token::{IssuerConfig, IssuerKey, ObtainConfig, TokenAlgorithm, TokensConfig};

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileTokens {
    pub max_skew_s: Option<u64>,
    pub cache_entries: Option<u64>,
    pub token_request_info: Option<String>,
    pub resolve_ids: Option<bool>,
    #[serde(default)]
    pub issuers: Vec<FileIssuer>,
    #[serde(default)]
    pub obtain: Vec<FileObtain>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileObtain {
    pub node: String,
    pub aud: Vec<String>,
    pub ris: Vec<String>,
    pub ops: Vec<String>,
}

/// Operation names a token may grant (`tkps` `acop` bits, lowest first).
const OPERATIONS: [&str; 6] = [
    "create", "retrieve", "update", "delete", "notify", "discover",
];

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileIssuer {
    pub iss: String,
    pub algorithms: Vec<String>,
    pub key: String,
    pub max_uses: Option<u64>,
}

/// HS256 secrets are at least as long as the hash (RFC 7518 §3.2).
pub const MIN_HS256_KEY_BYTES: usize = 32;

impl Validator {
    pub(super) fn tokens(&mut self, raw: FileTokens) -> TokensConfig {
        let d = TokensConfig::default();
        let max_skew = Duration::from_secs(self.range(
            "tokens.max_skew_s",
            raw.max_skew_s,
            d.max_skew.as_secs(),
            0..=300,
        ));
        let cache_entries = self.range(
            "tokens.cache_entries",
            raw.cache_entries,
            d.cache_entries,
            16..=10_000_000,
        );
        if let Some(info) = &raw.token_request_info {
            if info.is_empty() || info.len() > 1024 || info.chars().any(char::is_control) {
                self.err(
                    "tokens.token_request_info",
                    "expected 1 to 1024 printable characters (a URI or a short text)",
                );
            }
        }
        let mut seen = std::collections::HashSet::new();
        let mut issuers = Vec::with_capacity(raw.issuers.len());
        for (i, issuer) in raw.issuers.into_iter().enumerate() {
            let at = format!("tokens.issuers[{i}]");
            if issuer.iss.is_empty() || issuer.iss.chars().any(char::is_control) {
                self.err(format!("{at}.iss"), "expected a non-empty issuer id");
            } else if !seen.insert(issuer.iss.clone()) {
                self.err(
                    format!("{at}.iss"),
                    format!("{:?} is listed twice", issuer.iss),
                );
            }
            if let Some(issuer) = self.issuer(&at, issuer) {
                issuers.push(issuer);
            }
        }
        let obtain = self.obtain(raw.obtain);
        TokensConfig {
            max_skew,
            cache_entries,
            token_request_info: raw.token_request_info,
            resolve_ids: raw.resolve_ids.unwrap_or(d.resolve_ids),
            obtain,
            issuers,
        }
    }

    fn obtain(&mut self, raw: Vec<FileObtain>) -> Vec<ObtainConfig> {
        let mut seen = std::collections::HashSet::new();
        let mut out = Vec::with_capacity(raw.len());
        for (i, o) in raw.into_iter().enumerate() {
            let at = format!("tokens.obtain[{i}]");
            let printable =
                |s: &String| !s.is_empty() && s.len() <= 1024 && !s.contains(char::is_control);
            if !printable(&o.node) || o.node.len() > 256 {
                self.err(
                    format!("{at}.node"),
                    "expected a node id (1 to 256 printable characters)",
                );
            } else if !seen.insert(o.node.clone()) {
                self.err(
                    format!("{at}.node"),
                    format!("{:?} is listed twice", o.node),
                );
            }
            let cse_id = |a: &String| a.len() > 1 && a.starts_with('/') && !a[1..].contains('/');
            if o.aud.is_empty() || o.aud.len() > 64 || !o.aud.iter().all(cse_id) {
                self.err(
                    format!("{at}.aud"),
                    "expected 1 to 64 CSE-IDs (\"/\" and a name): this gateway's and the upstream's",
                );
            }
            if o.ris.is_empty() || o.ris.len() > 64 || !o.ris.iter().all(printable) {
                self.err(
                    format!("{at}.ris"),
                    "expected 1 to 64 resources (targets as the policy sees them, e.g. \"/cse-in/meter\")",
                );
            }
            if o.ops.is_empty() || !o.ops.iter().all(|op| OPERATIONS.contains(&op.as_str())) {
                self.err(
                    format!("{at}.ops"),
                    format!("expected operation names among {}", OPERATIONS.join(", ")),
                );
            }
            out.push(ObtainConfig {
                node: o.node,
                aud: o.aud,
                ris: o.ris,
                ops: o.ops,
            });
        }
        out
    }

    fn issuer(&mut self, at: &str, raw: FileIssuer) -> Option<IssuerConfig> {
        let mut algorithms = Vec::new();
        for (j, name) in raw.algorithms.iter().enumerate() {
            match TokenAlgorithm::parse(name) {
                Some(a) if !algorithms.contains(&a) => algorithms.push(a),
                Some(_) => {}
                None => self.err(
                    format!("{at}.algorithms[{j}]"),
                    format!("{name:?} is not allowed (expected \"EdDSA\", \"ES256\" or \"HS256\"; unsigned tokens are never accepted)"),
                ),
            }
        }
        let Some(&first) = algorithms.first() else {
            self.err(
                format!("{at}.algorithms"),
                "expected at least one of \"EdDSA\", \"ES256\", \"HS256\"",
            );
            return None;
        };
        if algorithms.iter().any(|&a| a != first) {
            self.err(
                format!("{at}.algorithms"),
                "an issuer has one key, so one algorithm (EdDSA for an Ed25519 key, ES256 for a P-256 key, HS256 for a secret); list another issuer entry for another key",
            );
            return None;
        }
        let max_uses = raw.max_uses.map(|n| {
            self.range(
                &format!("{at}.max_uses"),
                Some(n),
                1,
                1..=u64::from(u32::MAX),
            )
        });
        let key = match read_issuer_key(first, Path::new(&raw.key)) {
            Ok(key) => key,
            Err(message) => {
                self.err(format!("{at}.key"), format!("{:?}: {message}", raw.key));
                return None;
            }
        };
        // The key was read for `first`, the one algorithm listed: its algorithm is that.
        Some(IssuerConfig::new(raw.iss, key, max_uses))
    }
}

/// Reads the key an algorithm needs and checks that it parses as that kind of key.
fn read_issuer_key(algorithm: TokenAlgorithm, path: &Path) -> Result<IssuerKey, String> {
    use jsonwebtoken::DecodingKey;
    let pem = || std::fs::read(path).map_err(|e| format!("cannot read: {e}"));
    match algorithm {
        TokenAlgorithm::EdDsa => {
            let pem = pem()?;
            DecodingKey::from_ed_pem(&pem)
                .map_err(|e| format!("is not an Ed25519 public key in PEM: {e}"))?;
            Ok(IssuerKey::Ed25519Pem(pem))
        }
        TokenAlgorithm::Es256 => {
            let pem = pem()?;
            DecodingKey::from_ec_pem(&pem)
                .map_err(|e| format!("is not a P-256 public key in PEM: {e}"))?;
            Ok(IssuerKey::P256Pem(pem))
        }
        TokenAlgorithm::Hs256 => {
            let secret = read_key(path)?;
            if secret.len() < MIN_HS256_KEY_BYTES {
                return Err(format!(
                    "HS256 secret is {} bytes (expected at least {MIN_HS256_KEY_BYTES})",
                    secret.len()
                ));
            }
            Ok(IssuerKey::Hmac(secret))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    fn parse(tokens: &str) -> Result<TokensConfig, Vec<String>> {
        let text =
            crate::config::DEFAULT_TOML.replacen("[policy]", &format!("{tokens}\n[policy]"), 1);
        Config::parse(&text, "t.toml")
            .map(|c| c.tokens)
            .map_err(|errors| errors.iter().map(ToString::to_string).collect())
    }

    fn secret_file(dir: &Path, bytes: usize) -> String {
        let path = dir.join("hs.key");
        std::fs::write(&path, "ab".repeat(bytes)).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        }
        path.display().to_string()
    }

    #[test]
    fn defaults_have_no_issuers_and_bounded_skew() {
        let t = parse("").unwrap();
        assert!(t.issuers.is_empty());
        assert_eq!(t.max_skew, Duration::from_secs(30));
        assert_eq!(t.cache_entries, 10_000);
    }

    #[test]
    fn alg_none_and_unknown_algorithms_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let key = secret_file(dir.path(), 32);
        let errors = parse(&format!(
            "[tokens]\n[[tokens.issuers]]\niss = \"a\"\nalgorithms = [\"none\", \"RS256\"]\nkey = {key:?}\n"
        ))
        .unwrap_err();
        assert_eq!(errors.len(), 3, "{errors:?}");
        assert!(errors[0].contains("algorithms[0]"), "{errors:?}");
        assert!(errors[1].contains("algorithms[1]"), "{errors:?}");
    }

    #[test]
    fn mixed_algorithm_families_on_one_key_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let key = secret_file(dir.path(), 32);
        let errors = parse(&format!(
            "[tokens]\n[[tokens.issuers]]\niss = \"a\"\nalgorithms = [\"HS256\", \"EdDSA\"]\nkey = {key:?}\n"
        ))
        .unwrap_err();
        assert!(errors[0].contains("one algorithm"), "{errors:?}");
    }

    #[test]
    fn short_hs256_secret_and_non_pem_public_key_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let key = secret_file(dir.path(), 16);
        let errors = parse(&format!(
            "[tokens]\n[[tokens.issuers]]\niss = \"a\"\nalgorithms = [\"HS256\"]\nkey = {key:?}\n\
             [[tokens.issuers]]\niss = \"b\"\nalgorithms = [\"EdDSA\"]\nkey = {key:?}\n"
        ))
        .unwrap_err();
        assert_eq!(errors.len(), 2, "{errors:?}");
        assert!(errors[0].contains("16 bytes"), "{errors:?}");
        assert!(errors[1].contains("Ed25519"), "{errors:?}");
    }

    #[test]
    fn valid_issuer_is_read_with_its_key_and_limit() {
        let dir = tempfile::tempdir().unwrap();
        let key = secret_file(dir.path(), 32);
        let t = parse(&format!(
            "[tokens]\nmax_skew_s = 5\ntoken_request_info = \"http://127.0.0.1:1/das\"\n\
             [[tokens.issuers]]\niss = \"a\"\nalgorithms = [\"HS256\"]\nkey = {key:?}\nmax_uses = 3\n"
        ))
        .unwrap();
        assert_eq!(t.max_skew, Duration::from_secs(5));
        assert_eq!(t.issuers[0].algorithms, [TokenAlgorithm::Hs256]);
        assert_eq!(t.issuers[0].max_uses, Some(3));
        assert!(matches!(&t.issuers[0].key, IssuerKey::Hmac(s) if s.expose().len() == 32));
        assert!(format!("{:?}", t.issuers[0].key).contains("32 bytes"));
    }
}
