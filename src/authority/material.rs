//! Key material of the authority and its gateways: the authority's CA, its server
//! certificate, gateways' client certificates (rcgen), Ed25519 and X25519 keys as hex files,
//! the operator token. Files are created new, never overwritten; private ones are 0600.
//!
//! The CA is kept as `ca.crt` and `ca.key`; issuing with it rebuilds the CA certificate from
//! its subject CN and key (the same name and key sign, so the chains verify against the
//! stored `ca.crt`).

use std::io::Write as _;
use std::path::Path;

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};

use crate::feed::keys::{hex, random32};

#[derive(Debug, thiserror::Error)]
pub enum MaterialError {
    #[error("{path} exists already; refusing to overwrite it")]
    Exists { path: String },
    #[error("cannot write {path}: {source}")]
    Write {
        path: String,
        source: std::io::Error,
    },
    #[error("cannot read the CA ({path}): {detail}")]
    Ca { path: String, detail: String },
    #[error("cannot issue a certificate: {0}")]
    Issue(String),
}

/// A certificate and its private key, PEM.
pub struct Issued {
    pub cert_pem: String,
    pub key_pem: String,
}

/// The authority's CA, ready to issue.
pub struct Ca {
    cert: rcgen::Certificate,
    key: KeyPair,
}

fn issue_error(e: rcgen::Error) -> MaterialError {
    MaterialError::Issue(e.to_string())
}

fn ca_params(cn: &str) -> Result<CertificateParams, MaterialError> {
    let mut params = CertificateParams::new(Vec::<String>::new()).map_err(issue_error)?;
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, cn);
    Ok(params)
}

impl Ca {
    /// A fresh CA named `cn`.
    pub fn generate(cn: &str) -> Result<(Ca, Issued), MaterialError> {
        let key = KeyPair::generate().map_err(issue_error)?;
        let cert = ca_params(cn)?.self_signed(&key).map_err(issue_error)?;
        let issued = Issued {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        };
        Ok((Ca { cert, key }, issued))
    }

    /// The CA of `ca.crt` and `ca.key`.
    pub fn load(cert: &Path, key: &Path) -> Result<Ca, MaterialError> {
        let bad = |path: &Path, detail: String| MaterialError::Ca {
            path: path.display().to_string(),
            detail,
        };
        let certs = crate::tls::load_certs(cert).map_err(|e| bad(cert, e.to_string()))?;
        let cn = crate::tls::common_name(&certs[0])
            .ok_or_else(|| bad(cert, "no single subject CN".into()))?;
        let pem = std::fs::read_to_string(key).map_err(|e| bad(key, e.to_string()))?;
        let key_pair = KeyPair::from_pem(&pem).map_err(|e| bad(key, e.to_string()))?;
        let (_, parsed) = x509_parser::parse_x509_certificate(certs[0].as_ref())
            .map_err(|e| bad(cert, e.to_string()))?;
        if parsed.public_key().raw != key_pair.public_key_der().as_slice() {
            return Err(bad(key, "is not the key of the CA certificate".into()));
        }
        let rebuilt = ca_params(&cn)?
            .self_signed(&key_pair)
            .map_err(issue_error)?;
        Ok(Ca {
            cert: rebuilt,
            key: key_pair,
        })
    }

    /// A certificate with subject CN `cn` and these subject alternative names (IP addresses
    /// or DNS names).
    pub fn issue(&self, cn: &str, names: &[String]) -> Result<Issued, MaterialError> {
        let key = KeyPair::generate().map_err(issue_error)?;
        let mut params = CertificateParams::new(names.to_vec()).map_err(issue_error)?;
        params.distinguished_name.push(DnType::CommonName, cn);
        let cert = params
            .signed_by(&key, &self.cert, &self.key)
            .map_err(issue_error)?;
        Ok(Issued {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }

    /// A client certificate with subject CN `cn` for the P-256 public key `point` (65 bytes,
    /// uncompressed) that its holder made ([`p256_point`]): PEM.
    pub fn issue_for(&self, cn: &str, point: &[u8]) -> Result<String, MaterialError> {
        let mut params = CertificateParams::new(Vec::<String>::new()).map_err(issue_error)?;
        params.distinguished_name.push(DnType::CommonName, cn);
        let cert = params
            .signed_by(&External(point), &self.cert, &self.key)
            .map_err(issue_error)?;
        Ok(cert.pem())
    }
}

/// The DER prefix of an ECDSA P-256 SubjectPublicKeyInfo (id-ecPublicKey, prime256v1, a
/// 65-byte BIT STRING): what `rcgen::KeyPair::generate` makes and `public_key_der` gives.
const P256_SPKI_PREFIX: [u8; 26] = [
    0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a,
    0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
];

/// The uncompressed point of a P-256 SubjectPublicKeyInfo, if `spki` is exactly one.
pub fn p256_point(spki: &[u8]) -> Option<&[u8]> {
    let point = spki.strip_prefix(&P256_SPKI_PREFIX[..])?;
    (point.len() == 65 && point[0] == 0x04).then_some(point)
}

/// A public key someone else holds the private half of, for rcgen to sign.
struct External<'a>(&'a [u8]);

impl rcgen::PublicKeyData for External<'_> {
    fn der_bytes(&self) -> &[u8] {
        self.0
    }

    fn algorithm(&self) -> &rcgen::SignatureAlgorithm {
        &rcgen::PKCS_ECDSA_P256_SHA256
    }
}

/// A fresh 32-byte key as a hex file's contents (Ed25519 seed or X25519 scalar).
pub fn fresh_key_hex() -> String {
    format!("{}\n", hex(&random32()))
}

/// Refuses if any of `paths` exists.
pub fn none_exist<'a>(paths: impl IntoIterator<Item = &'a Path>) -> Result<(), MaterialError> {
    for path in paths {
        if path.exists() {
            return Err(MaterialError::Exists {
                path: path.display().to_string(),
            });
        }
    }
    Ok(())
}

/// Writes a new file (never an existing one); `private` files are 0600, others 0644.
pub fn write_new(path: &Path, contents: &str, private: bool) -> Result<(), MaterialError> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(if private { 0o600 } else { 0o644 });
    }
    let _ = private;
    let write_error = |source: std::io::Error| {
        if source.kind() == std::io::ErrorKind::AlreadyExists {
            MaterialError::Exists {
                path: path.display().to_string(),
            }
        } else {
            MaterialError::Write {
                path: path.display().to_string(),
                source,
            }
        }
    };
    let mut file = options.open(path).map_err(write_error)?;
    file.write_all(contents.as_bytes()).map_err(write_error)?;
    file.sync_all().map_err(write_error)
}
