//! Sealed secrets: JWE compact (RFC 7516) with `ECDH-ES+A256KW` over X25519 and `A256GCM`
//! (RFC 7518 §4.6, RFC 8037 §3.2), the profile TS-0003 §8.5 names for ESData. The authority
//! seals each node key's secret to every gateway's sealing key; only that gateway opens it.

use aes_kw::KekAes256;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine as _;
use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::keys::{kid, SealingKey};
use super::FeedError;

const ALG: &str = "ECDH-ES+A256KW";
const ENC: &str = "A256GCM";

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Header {
    alg: String,
    enc: String,
    kid: String,
    epk: Epk,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Epk {
    kty: String,
    crv: String,
    x: String,
}

/// The random values of one sealing: fixed only by test vectors.
pub struct Randomness {
    pub ephemeral: [u8; 32],
    pub cek: [u8; 32],
    pub iv: [u8; 12],
}

impl Randomness {
    pub fn fresh() -> Self {
        let iv = super::keys::random32();
        Randomness {
            ephemeral: super::keys::random32(),
            cek: super::keys::random32(),
            iv: iv[..12].try_into().expect("12 of 32 bytes"),
        }
    }
}

/// Seals `secret` to the X25519 public key `to`.
pub fn seal(secret: &[u8], to: &[u8; 32], random: &Randomness) -> Result<String, FeedError> {
    let ephemeral = SealingKey::from_scalar(random.ephemeral);
    let z = ephemeral
        .agree(to)
        .ok_or_else(|| seal_error("the recipient's key is a low-order point"))?;
    let header = serde_json::to_vec(&Header {
        alg: ALG.into(),
        enc: ENC.into(),
        kid: kid(to),
        epk: Epk {
            kty: "OKP".into(),
            crv: "X25519".into(),
            x: B64.encode(ephemeral.public()),
        },
    })
    .expect("a header serialises");
    let header = B64.encode(header);
    let wrapped = KekAes256::from(kek(&z))
        .wrap_vec(&random.cek)
        .map_err(|_| seal_error("key wrap failed"))?;
    let mut sealed = secret.to_vec();
    let tag = gcm(&random.cek)
        .seal_in_place_separate_tag(
            Nonce::assume_unique_for_key(random.iv),
            Aad::from(header.as_bytes()),
            &mut sealed,
        )
        .map_err(|_| seal_error("encryption failed"))?;
    Ok([
        header,
        B64.encode(wrapped),
        B64.encode(random.iv),
        B64.encode(sealed),
        B64.encode(tag.as_ref()),
    ]
    .join("."))
}

/// Opens a secret sealed to `key`.
pub fn open(compact: &str, key: &SealingKey) -> Result<Vec<u8>, FeedError> {
    let parts: Vec<&str> = compact.split('.').collect();
    let [header_b64, wrapped, iv, ciphertext, tag] = parts[..] else {
        return Err(open_error("not five base64url parts"));
    };
    let decode = |part: &str, what: &str| {
        B64.decode(part)
            .map_err(|_| open_error(&format!("{what} is not base64url")))
    };
    let header: Header = serde_json::from_slice(&decode(header_b64, "header")?)
        .map_err(|_| open_error("header is not {alg, enc, kid, epk}"))?;
    if header.alg != ALG || header.enc != ENC {
        return Err(open_error("not ECDH-ES+A256KW with A256GCM"));
    }
    if header.epk.kty != "OKP" || header.epk.crv != "X25519" {
        return Err(open_error("epk is not an X25519 key"));
    }
    if header.kid != key.kid() {
        return Err(open_error(&format!(
            "sealed to key {:?}, not ours",
            header.kid
        )));
    }
    let epk: [u8; 32] = decode(&header.epk.x, "epk.x")?
        .try_into()
        .map_err(|_| open_error("epk.x is not 32 bytes"))?;
    let z = key
        .agree(&epk)
        .ok_or_else(|| open_error("epk is a low-order point"))?;
    let cek = KekAes256::from(kek(&z))
        .unwrap_vec(&decode(wrapped, "encrypted key")?)
        .map_err(|_| open_error("the content key does not unwrap"))?;
    let iv: [u8; 12] = decode(iv, "iv")?
        .try_into()
        .map_err(|_| open_error("iv is not 12 bytes"))?;
    let cek: [u8; 32] = cek
        .try_into()
        .map_err(|_| open_error("the content key is not 32 bytes"))?;
    let mut data = decode(ciphertext, "ciphertext")?;
    data.extend_from_slice(&decode(tag, "tag")?);
    let plain = gcm(&cek)
        .open_in_place(
            Nonce::assume_unique_for_key(iv),
            Aad::from(header_b64.as_bytes()),
            &mut data,
        )
        .map_err(|_| open_error("does not decrypt"))?;
    Ok(plain.to_vec())
}

/// Concat KDF (RFC 7518 §4.6.2) for a 256-bit key, AlgorithmID `ECDH-ES+A256KW`, no
/// PartyUInfo or PartyVInfo.
fn kek(z: &[u8; 32]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(1u32.to_be_bytes());
    h.update(z);
    h.update((ALG.len() as u32).to_be_bytes());
    h.update(ALG.as_bytes());
    h.update(0u32.to_be_bytes());
    h.update(0u32.to_be_bytes());
    h.update(256u32.to_be_bytes());
    h.finalize().into()
}

fn gcm(cek: &[u8; 32]) -> LessSafeKey {
    LessSafeKey::new(UnboundKey::new(&AES_256_GCM, cek).expect("a 32-byte AES-256 key"))
}

fn seal_error(detail: &str) -> FeedError {
    FeedError::Sealed {
        detail: format!("cannot seal: {detail}"),
    }
}

fn open_error(detail: &str) -> FeedError {
    FeedError::Sealed {
        detail: detail.to_owned(),
    }
}
