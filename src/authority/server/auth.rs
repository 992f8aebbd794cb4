//! Who is asking: a gateway (a client certificate from the authority's CA whose subject CN is
//! a known gateway id) or the operator (`Authorization: Bearer <token>`, compared in constant
//! time). Nothing is open: without one of them the answer is 401.

use std::fmt;
use std::path::Path;

use http::header::AUTHORIZATION;
use http::{HeaderMap, StatusCode};
use subtle::ConstantTimeEq;

use super::reply::{error, Answer};
use crate::authority::publish::Feed;
use crate::authority::state::StoredGateway;

/// An authenticated caller.
#[derive(Debug)]
pub enum Caller {
    Gateway(Box<StoredGateway>),
    Operator,
}

/// The operator's bearer token; `Debug` hides it.
pub struct OperatorToken(Vec<u8>);

impl fmt::Debug for OperatorToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("OperatorToken(<redacted>)")
    }
}

/// Shortest operator token accepted, in characters.
pub const MIN_TOKEN_CHARS: usize = 32;

impl OperatorToken {
    /// Reads the token file: one line, at least [`MIN_TOKEN_CHARS`] printable characters,
    /// readable by its owner alone.
    pub fn load(path: &Path) -> Result<OperatorToken, String> {
        let name = path.display();
        let meta = std::fs::metadata(path).map_err(|e| format!("{name}: cannot read: {e}"))?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            if meta.permissions().mode() & 0o077 != 0 {
                return Err(format!(
                    "{name} is readable by group or others (expected mode 0600 or stricter)"
                ));
            }
        }
        let _ = meta;
        let text =
            std::fs::read_to_string(path).map_err(|e| format!("{name}: cannot read: {e}"))?;
        let token = text.trim();
        if token.len() < MIN_TOKEN_CHARS || !token.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(format!(
                "{name}: expected one line of at least {MIN_TOKEN_CHARS} printable characters"
            ));
        }
        Ok(OperatorToken(token.as_bytes().to_vec()))
    }

    /// The token's text, for the operator client's header.
    pub fn bearer(&self) -> String {
        format!("Bearer {}", String::from_utf8_lossy(&self.0))
    }

    fn matches(&self, presented: &[u8]) -> bool {
        self.0.ct_eq(presented).into()
    }
}

/// Why a request was not authenticated: its status and message.
#[derive(Debug, Clone, Copy)]
pub struct Refusal(pub StatusCode, pub &'static str);

impl Refusal {
    pub fn answer(self) -> Answer {
        error(self.0, self.1)
    }
}

/// A client certificate's subject CN and the SHA-256 (hex) of its SubjectPublicKeyInfo.
#[derive(Debug)]
pub struct Peer {
    pub cn: String,
    pub key: String,
}

/// Authenticates a request; the refusal is its 401 answer.
pub fn authenticate(
    headers: &HeaderMap,
    tls_identity: Option<&Peer>,
    token: &OperatorToken,
    feed: &Feed,
) -> Result<Caller, Refusal> {
    if let Some(value) = headers.get(AUTHORIZATION) {
        let presented = value.as_bytes().strip_prefix(b"Bearer ").ok_or(Refusal(
            StatusCode::UNAUTHORIZED,
            "expected Authorization: Bearer <token>",
        ))?;
        return if token.matches(presented) {
            Ok(Caller::Operator)
        } else {
            Err(Refusal(StatusCode::UNAUTHORIZED, "bad credential"))
        };
    }
    let Some(peer) = tls_identity else {
        return Err(Refusal(StatusCode::UNAUTHORIZED, "no credential"));
    };
    match feed.state().gateway(&peer.cn) {
        // An enrolled gateway is pinned to the key of the certificate it was signed.
        Ok(Some(gateway)) if gateway.tls.as_ref().is_some_and(|k| *k != peer.key) => Err(Refusal(
            StatusCode::UNAUTHORIZED,
            "certificate not the gateway's current one",
        )),
        Ok(Some(gateway)) => Ok(Caller::Gateway(Box::new(gateway))),
        Ok(None) => Err(Refusal(StatusCode::UNAUTHORIZED, "bad credential")),
        Err(e) => {
            tracing::error!(error = %e, "authority state failed");
            Err(Refusal(StatusCode::INTERNAL_SERVER_ERROR, "internal error"))
        }
    }
}
