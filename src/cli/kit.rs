//! A gateway's credential files, as `authority gateway add --out` and `enrol` write them:
//! `sign.key`, `seal.key`, `client.key` (0600), `client.crt`, `ca.crt`, `feed.pub` and the
//! `[sync]` snippet `sync.toml` naming them by absolute path.

use std::path::{Path, PathBuf};

use m2mguard::authority::material::{none_exist, write_new};

use super::Failure;

/// Every file of a kit.
pub const FILES: [&str; 7] = [
    "sign.key",
    "seal.key",
    "client.crt",
    "client.key",
    "ca.crt",
    "feed.pub",
    "sync.toml",
];

/// The kit's paths in `dir`; refuses if any exists.
pub fn fresh_paths(dir: &Path) -> Result<Vec<PathBuf>, Failure> {
    let paths: Vec<PathBuf> = FILES.iter().map(|f| dir.join(f)).collect();
    none_exist(paths.iter().map(PathBuf::as_path)).map_err(Failure::startup)?;
    Ok(paths)
}

/// Writes `(name, contents, private)` files new in `dir`.
pub fn write_all(dir: &Path, files: &[(&str, &str, bool)]) -> Result<(), Failure> {
    for (name, contents, private) in files {
        write_new(&dir.join(name), contents, *private).map_err(Failure::startup)?;
    }
    Ok(())
}

/// Removes what a failed command wrote.
pub fn remove_all(paths: &[PathBuf]) {
    for path in paths {
        let _ = std::fs::remove_file(path);
    }
}

/// The gateway's `[sync]` table, naming the kit's files by their absolute paths in `dir`
/// (the gateway takes relative paths from its working directory).
pub fn sync_toml(url: &str, feed: &str, id: &str, dir: &Path) -> String {
    let file = |name: &str| toml::Value::String(dir.join(name).display().to_string()).to_string();
    format!(
        "[sync]\nauthority = \"{url}\"   # base URL\nfeed = \"{feed}\"\ngateway_id = \"{id}\"\nfeed_key = {}   # the authority's Ed25519 public key (64 hex)\nsign_key = {}   # this gateway's Ed25519 seed (64 hex)\nseal_key = {}   # this gateway's X25519 scalar (64 hex)\nca = {}   # CA of the authority's TLS server certificate\ncert = {}   # this gateway's TLS client certificate\nkey = {}\n",
        file("feed.pub"),
        file("sign.key"),
        file("seal.key"),
        file("ca.crt"),
        file("client.crt"),
        file("client.key"),
    )
}

/// A fresh signing seed and sealing scalar (file contents) and their public keys (hex).
pub fn fresh_keys() -> Result<(String, String, String, String), Failure> {
    use m2mguard::feed::keys::{hex, parse_hex32};
    use m2mguard::feed::{SealingKey, SigningKey};
    let (sign, seal) = (
        m2mguard::authority::material::fresh_key_hex(),
        m2mguard::authority::material::fresh_key_hex(),
    );
    let seed = parse_hex32(&sign, "sign").map_err(Failure::startup)?;
    let scalar = parse_hex32(&seal, "seal").map_err(Failure::startup)?;
    let sign_pub = hex(SigningKey::from_seed(&seed).public().raw());
    let seal_pub = hex(SealingKey::from_scalar(scalar).public());
    Ok((sign, seal, sign_pub, seal_pub))
}
