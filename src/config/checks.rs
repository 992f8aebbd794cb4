//! `[checks]`: where message checks are required, the replay window, and check-value keys
//! (also those the gateway signs with on behalf of legacy devices).
//!
//! In: the raw `[checks]` table. Out: [`ChecksConfig`], with every key file read and checked
//! (length, permissions), or located errors. Key bytes are held in [`Secret`], whose `Debug`
//! never shows them. The keys seed the repository (`store::Keys::seed`).

use std::path::Path;
use std::time::Duration;

use serde::Deserialize;

use super::Validator;
use crate::feed::keys::decode_hex;
use crate::guard::replay::ReplayConfig;
use crate::guard::{ChecksConfig, Pattern, Requirement};
use crate::security::{is_key_id, CheckKey, KeyOrigin, Secret, MIN_KEY_BYTES};

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileChecks {
    #[serde(default)]
    pub require: Vec<FileRequire>,
    #[serde(default)]
    pub replay: FileReplay,
    #[serde(default)]
    pub keys: Vec<FileKey>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileRequire {
    pub path: String,
    #[serde(default)]
    pub check_value: bool,
    #[serde(default)]
    pub timestamp: bool,
    #[serde(default)]
    pub token: bool,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileReplay {
    pub max_age_s: Option<u64>,
    pub max_skew_s: Option<u64>,
    pub ids_per_node: Option<u64>,
    pub ids_total: Option<u64>,
    pub window: Option<u64>,
    pub lease: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileKey {
    pub id: String,
    pub node: String,
    pub file: String,
    #[serde(default)]
    pub insert: bool,
}

impl Validator {
    pub(super) fn checks(&mut self, raw: FileChecks) -> ChecksConfig {
        let require = raw
            .require
            .into_iter()
            .enumerate()
            .map(|(i, r)| {
                if !r.path.starts_with('/') && r.path != "*" {
                    self.err(
                        format!("checks.require[{i}].path"),
                        format!("{:?} is not a target pattern (expected an SP-relative path such as \"/id-in/cse-in/meter-*\")", r.path),
                    );
                }
                Requirement {
                    path: Pattern::new(r.path),
                    check_value: r.check_value,
                    timestamp: r.timestamp,
                    token: r.token,
                }
            })
            .collect();
        let replay = self.replay(raw.replay);
        let keys = self.keys(raw.keys);
        ChecksConfig {
            require,
            replay,
            keys,
        }
    }

    fn replay(&mut self, r: FileReplay) -> ReplayConfig {
        let d = ReplayConfig::default();
        let window = self.range("checks.replay.window", r.window, d.window, 1024..=65_536);
        if window % 64 != 0 {
            self.err(
                "checks.replay.window",
                format!("{window} is not a multiple of 64"),
            );
        }
        ReplayConfig {
            max_age: Duration::from_secs(self.range(
                "checks.replay.max_age_s",
                r.max_age_s,
                d.max_age.as_secs(),
                1..=86_400,
            )),
            max_skew: Duration::from_secs(self.range(
                "checks.replay.max_skew_s",
                r.max_skew_s,
                d.max_skew.as_secs(),
                0..=3_600,
            )),
            ids_per_node: self.range(
                "checks.replay.ids_per_node",
                r.ids_per_node,
                d.ids_per_node as u64,
                1..=10_000_000,
            ) as usize,
            ids_total: self.range(
                "checks.replay.ids_total",
                r.ids_total,
                d.ids_total as u64,
                1..=100_000_000,
            ) as usize,
            window,
            lease: self.range("checks.replay.lease", r.lease, d.lease, 1..=1 << 32),
        }
    }

    fn keys(&mut self, raw: Vec<FileKey>) -> Vec<CheckKey> {
        let mut seen = std::collections::HashSet::new();
        let mut inserting = std::collections::HashSet::new();
        let mut keys = Vec::with_capacity(raw.len());
        for (i, k) in raw.into_iter().enumerate() {
            let at = format!("checks.keys[{i}]");
            if !is_key_id(&k.id) {
                self.err(
                    format!("{at}.id"),
                    format!(
                        "{:?} is not a key id (expected 1 to 64 of A-Z a-z 0-9 _ -)",
                        k.id
                    ),
                );
            } else if !seen.insert(k.id.clone()) {
                self.err(format!("{at}.id"), format!("{:?} is listed twice", k.id));
            }
            if k.insert && !inserting.insert(k.node.clone()) {
                self.err(
                    format!("{at}.insert"),
                    format!(
                        "{:?} already has a key with insert = true (expected one per node)",
                        k.node
                    ),
                );
            }
            match read_key(Path::new(&k.file)) {
                Ok(secret) => keys.push(CheckKey {
                    id: k.id,
                    node: k.node,
                    secret,
                    insert: k.insert,
                    origin: KeyOrigin::Config,
                }),
                Err(message) => self.err(format!("{at}.file"), format!("{:?}: {message}", k.file)),
            }
        }
        keys
    }
}

/// Reads a key file: hex (64 digits for 32 bytes) or unpadded/padded base64, one line.
/// Refuses files that others may read, and keys shorter than [`MIN_KEY_BYTES`].
pub(super) fn read_key(path: &Path) -> Result<Secret, String> {
    let meta = std::fs::metadata(path).map_err(|e| format!("cannot read: {e}"))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if meta.permissions().mode() & 0o077 != 0 {
            return Err("is readable by group or others (expected mode 0600 or stricter)".into());
        }
    }
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read: {e}"))?;
    let text = text.trim();
    let bytes = decode_hex(text)
        .or_else(|| base64_decode(text))
        .ok_or("is not a hex or base64 key")?;
    if bytes.len() < MIN_KEY_BYTES {
        return Err(format!(
            "key is {} bytes (expected at least {MIN_KEY_BYTES}, 32 recommended)",
            bytes.len()
        ));
    }
    Ok(Secret::new(&bytes))
}

fn base64_decode(text: &str) -> Option<Vec<u8>> {
    use base64::Engine;
    let engine = base64::engine::general_purpose::STANDARD_NO_PAD;
    engine.decode(text.trim_end_matches('=')).ok()
}
