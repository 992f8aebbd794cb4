//! TLS material and configurations for the listeners (tokio-rustls) and the upstream client.
//!
//! In: PEM files named in the config. Out: rustls server and client configurations, and the
//! identity of an authenticated client certificate. Keys are never printed: [`KeyPair`]'s
//! `Debug` is redacted. Only the `ring` provider is used, so no C toolchain beyond gcc is needed.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, RootCertStore, ServerConfig, ServerConnection};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} holds no PEM certificate")]
    NoCertificate { path: PathBuf },
    #[error("{path} is not a PEM private key (PKCS#8, PKCS#1 or SEC1): {detail}")]
    BadKey { path: PathBuf, detail: String },
    #[error("{path}: {detail}")]
    BadPem { path: PathBuf, detail: String },
    #[error("TLS configuration rejected: {0}")]
    Rustls(String),
}

/// A certificate chain and its private key.
#[derive(Clone)]
pub struct KeyPair {
    pub certs: Vec<CertificateDer<'static>>,
    pub key: Arc<PrivateKeyDer<'static>>,
}

impl fmt::Debug for KeyPair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyPair")
            .field("certs", &self.certs.len())
            .field("key", &"<redacted>")
            .finish()
    }
}

impl KeyPair {
    pub fn load(cert: &Path, key: &Path) -> Result<Self, TlsError> {
        Ok(KeyPair {
            certs: load_certs(cert)?,
            key: Arc::new(load_key(key)?),
        })
    }
}

fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        path: path.to_owned(),
        source,
    })
}

/// All certificates in a PEM file; at least one.
pub fn load_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let pem = read(path)?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::BadPem {
            path: path.to_owned(),
            detail: e.to_string(),
        })?;
    if certs.is_empty() {
        return Err(TlsError::NoCertificate {
            path: path.to_owned(),
        });
    }
    Ok(certs)
}

/// The first private key in a PEM file.
pub fn load_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    let pem = read(path)?;
    PrivateKeyDer::from_pem_slice(&pem).map_err(|e| TlsError::BadKey {
        path: path.to_owned(),
        detail: e.to_string(),
    })
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn roots(certs: &[CertificateDer<'static>]) -> Result<RootCertStore, TlsError> {
    let mut store = RootCertStore::empty();
    for cert in certs {
        store
            .add(cert.clone())
            .map_err(|e| TlsError::Rustls(e.to_string()))?;
    }
    Ok(store)
}

/// A listener's configuration: ALPN h2 and http/1.1; client certificates required when
/// `client_roots` is given.
pub fn server_config(
    identity: &KeyPair,
    client_roots: Option<&[CertificateDer<'static>]>,
) -> Result<Arc<ServerConfig>, TlsError> {
    let builder = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Rustls(e.to_string()))?;
    let builder = match client_roots {
        Some(certs) => {
            let verifier =
                WebPkiClientVerifier::builder_with_provider(Arc::new(roots(certs)?), provider())
                    .build()
                    .map_err(|e| TlsError::Rustls(e.to_string()))?;
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    let mut config = builder
        .with_single_cert(identity.certs.clone(), identity.key.clone_key())
        .map_err(|e| TlsError::Rustls(e.to_string()))?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// A listener's configuration that asks for a client certificate from `client_roots` but
/// does not require one (the authority: gateways present a certificate, operators a bearer
/// token); a certificate that is presented must verify. ALPN h2 and http/1.1.
pub fn server_config_optional_client(
    identity: &KeyPair,
    client_roots: &[CertificateDer<'static>],
) -> Result<Arc<ServerConfig>, TlsError> {
    let verifier =
        WebPkiClientVerifier::builder_with_provider(Arc::new(roots(client_roots)?), provider())
            .allow_unauthenticated()
            .build()
            .map_err(|e| TlsError::Rustls(e.to_string()))?;
    let mut config = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Rustls(e.to_string()))?
        .with_client_cert_verifier(verifier)
        .with_single_cert(identity.certs.clone(), identity.key.clone_key())
        .map_err(|e| TlsError::Rustls(e.to_string()))?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// The upstream client's configuration: trust only `ca`; present `client` if given.
pub fn client_config(
    ca: &[CertificateDer<'static>],
    client: Option<&KeyPair>,
) -> Result<ClientConfig, TlsError> {
    let builder = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Rustls(e.to_string()))?
        .with_root_certificates(roots(ca)?);
    match client {
        Some(pair) => builder
            .with_client_auth_cert(pair.certs.clone(), pair.key.clone_key())
            .map_err(|e| TlsError::Rustls(e.to_string())),
        None => Ok(builder.with_no_client_auth()),
    }
}

/// The identity of the verified client certificate: its subject common name.
pub fn peer_identity(conn: &ServerConnection) -> Option<String> {
    let leaf = conn.peer_certificates()?.first()?;
    common_name(leaf)
}

/// SHA-256 (hex) of the SubjectPublicKeyInfo of the peer's leaf certificate.
pub fn peer_key_hash(conn: &ServerConnection) -> Option<String> {
    let leaf = conn.peer_certificates()?.first()?;
    let (_, cert) = x509_parser::parse_x509_certificate(leaf.as_ref()).ok()?;
    Some(crate::feed::keys::hex(
        &<sha2::Sha256 as sha2::Digest>::digest(cert.public_key().raw),
    ))
}

/// The subject CN of a DER certificate, if it has exactly one readable CN.
pub fn common_name(der: &CertificateDer<'_>) -> Option<String> {
    let (_, cert) = x509_parser::parse_x509_certificate(der.as_ref()).ok()?;
    let mut names = cert.subject().iter_common_name();
    let cn = names.next()?.as_str().ok()?.to_owned();
    names.next().is_none().then_some(cn)
}
