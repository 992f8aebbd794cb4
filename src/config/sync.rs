//! The optional `[sync]` table: follow the authority's status feed (docs/sync.md).
//!
//! In: [`FileSync`] as written. Out: [`SyncConfig`] with every key file read and the TLS
//! client configuration built, or errors located at their keys. With `[sync]` the feed owns
//! nodes and check-value keys: `[[nodes]]` and `[[checks.keys]]` are refused (see
//! [`Validator::sync_owns`]).

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use http::Uri;
use serde::Deserialize;

use super::file::FileUpstreamTls;
use super::Validator;
use crate::feed::{self, SealingKey, SigningKey, VerifyingKey};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileSync {
    pub authority: String,
    pub feed: String,
    pub gateway_id: String,
    pub feed_key: String,
    pub sign_key: String,
    pub seal_key: String,
    pub ca: String,
    pub cert: String,
    pub key: String,
    pub transport: Option<String>,
    pub mqtt_broker: Option<String>,
    pub mqtt_topic: Option<String>,
    pub poll_wait_s: Option<u64>,
    pub snapshot_after: Option<u64>,
    pub max_age_s: Option<u64>,
    pub stale_group: Option<String>,
    pub request_timeout_ms: Option<u64>,
    pub backoff_max_s: Option<u64>,
}

/// How new records reach the gateway; gaps, snapshots and acks always go over HTTPS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transport {
    /// HTTPS long-poll of `/v1/feed/records`.
    Poll,
    /// Records and heads from `<topic>/records` and `<topic>/head` on an MQTT broker.
    Mqtt { broker: String, topic: String },
}

#[derive(Debug, Clone)]
pub struct SyncConfig {
    /// The authority's base URL (`https://host:port`).
    pub authority: Uri,
    pub feed: String,
    pub gateway_id: String,
    pub feed_key: VerifyingKey,
    pub sign_key: Arc<SigningKey>,
    pub seal_key: SealingKey,
    /// The authority's CA and this gateway's client certificate.
    pub tls: Arc<rustls::ClientConfig>,
    pub transport: Transport,
    pub poll_wait: Duration,
    /// Further behind than this many records, a snapshot is fetched instead.
    pub snapshot_after: u64,
    /// Seconds without a verified head after which only `stale_group` passes; 0: never.
    pub max_age_s: u64,
    pub stale_group: String,
    pub request_timeout: Duration,
    pub backoff_max: Duration,
    /// The private key files (`sign_key`, `seal_key`, `key`): wiped when the authority
    /// removes this gateway's credentials.
    pub private_files: Vec<std::path::PathBuf>,
}

/// A document holding only a `[sync]` table.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct OnlySync {
    sync: FileSync,
}

/// Reads and validates `text`, a document with only a `[sync]` table (`name` for errors).
pub fn parse(text: &str, name: &str) -> Result<SyncConfig, Vec<super::ConfigError>> {
    let error = |key: String, message: String| super::ConfigError {
        file: name.to_owned(),
        line: None,
        col: None,
        key,
        message,
    };
    let raw: OnlySync =
        toml::from_str(text).map_err(|e| vec![error(String::new(), e.message().to_owned())])?;
    let mut v = Validator::default();
    match v.sync(raw.sync) {
        Some(config) if v.errors.is_empty() => Ok(config),
        _ => Err(v.errors.into_iter().map(|(k, m)| error(k, m)).collect()),
    }
}

impl Validator {
    pub(super) fn sync(&mut self, s: FileSync) -> Option<SyncConfig> {
        let authority = self.authority(&s.authority);
        if feed::record::check_feed_id(&s.feed).is_err() {
            self.err(
                "sync.feed",
                format!(
                    "{:?} is not a feed id (expected 1 to 64 of A-Za-z0-9._-)",
                    s.feed
                ),
            );
        }
        if !feed::check::is_name(&s.gateway_id) {
            self.err("sync.gateway_id", format!("{:?} is not a gateway id (expected 1 to 64 of A-Za-z0-9._-: the id the authority knows this gateway by, its client certificate's CN)", s.gateway_id));
        }
        let feed_key = self.feed_file("sync.feed_key", &s.feed_key, VerifyingKey::load);
        let sign_key = self.feed_file("sync.sign_key", &s.sign_key, SigningKey::load);
        let seal_key = self.feed_file("sync.seal_key", &s.seal_key, SealingKey::load);
        let private_files = [&s.sign_key, &s.seal_key, &s.key]
            .into_iter()
            .map(std::path::PathBuf::from)
            .collect();
        let tls = self.client_tls(
            "sync",
            FileUpstreamTls {
                ca: s.ca,
                cert: Some(s.cert),
                key: Some(s.key),
            },
        );
        let transport =
            self.transport(s.transport.as_deref(), s.mqtt_broker, s.mqtt_topic, &s.feed);
        let stale_group = s.stale_group.unwrap_or_else(|| "operators".to_owned());
        self.group_names("sync.stale_group", std::slice::from_ref(&stale_group));
        let config = SyncConfig {
            authority: authority?,
            feed: s.feed,
            gateway_id: s.gateway_id,
            feed_key: feed_key?,
            sign_key: Arc::new(sign_key?),
            seal_key: seal_key?,
            tls: tls?,
            transport: transport?,
            poll_wait: Duration::from_secs(self.range(
                "sync.poll_wait_s",
                s.poll_wait_s,
                25,
                1..=30,
            )),
            snapshot_after: self.range(
                "sync.snapshot_after",
                s.snapshot_after,
                10_000,
                1..=100_000_000,
            ),
            max_age_s: self.range("sync.max_age_s", s.max_age_s, 0, 0..=100 * 365 * 86_400),
            stale_group,
            request_timeout: self.millis("sync.request_timeout_ms", s.request_timeout_ms, 10_000),
            backoff_max: Duration::from_secs(self.range(
                "sync.backoff_max_s",
                s.backoff_max_s,
                30,
                1..=3600,
            )),
            private_files,
        };
        Some(config)
    }

    /// With `[sync]`, the feed is the one source of nodes and keys.
    pub(super) fn sync_owns(&mut self, nodes: usize, keys: usize) {
        if nodes > 0 {
            self.err("nodes", "with [sync] the authority's feed owns the nodes: remove [[nodes]] (enrol them at the authority)");
        }
        if keys > 0 {
            self.err("checks.keys", "with [sync] the authority's feed owns the check-value keys: remove [[checks.keys]] (add them at the authority)");
        }
    }

    fn authority(&mut self, text: &str) -> Option<Uri> {
        let uri: Option<Uri> = text.parse().ok();
        let ok = uri.as_ref().is_some_and(|u| {
            u.scheme_str() == Some("https")
                && u.authority().is_some()
                && matches!(u.path(), "" | "/")
                && u.query().is_none()
        });
        if !ok {
            self.err("sync.authority", format!("{text:?} is not the authority's base URL (expected https://host:port, no path)"));
            return None;
        }
        uri
    }

    fn feed_file<T>(
        &mut self,
        key: &str,
        path: &str,
        load: fn(&Path) -> Result<T, feed::keys::KeyError>,
    ) -> Option<T> {
        load(Path::new(path))
            .map_err(|e| self.err(key, e.to_string()))
            .ok()
    }

    fn transport(
        &mut self,
        transport: Option<&str>,
        broker: Option<String>,
        topic: Option<String>,
        feed: &str,
    ) -> Option<Transport> {
        match (transport, broker) {
            (None | Some("poll"), None) => Some(Transport::Poll),
            (Some("mqtt"), Some(broker)) => {
                let ok = broker
                    .rsplit_once(':')
                    .is_some_and(|(h, p)| !h.is_empty() && p.parse::<u16>().is_ok_and(|p| p > 0));
                if !ok {
                    self.err(
                        "sync.mqtt_broker",
                        format!("{broker:?} is not host:port (expected e.g. 127.0.0.1:1883)"),
                    );
                    return None;
                }
                let topic = topic.unwrap_or_else(|| format!("m2mguard/feed/{feed}"));
                if topic.is_empty() || topic.contains(['+', '#']) {
                    self.err("sync.mqtt_topic", "must be a topic name without wildcards");
                    return None;
                }
                Some(Transport::Mqtt { broker, topic })
            }
            (Some("mqtt"), None) => {
                self.err(
                    "sync.mqtt_broker",
                    "transport = \"mqtt\" needs mqtt_broker = \"host:port\"",
                );
                None
            }
            (None | Some("poll"), Some(_)) => {
                self.err("sync.mqtt_broker", "set, but transport is \"poll\" (expected transport = \"mqtt\", or no mqtt_broker)");
                None
            }
            (Some(other), _) => {
                self.err(
                    "sync.transport",
                    format!("{other:?} is not a transport (expected \"poll\" or \"mqtt\")"),
                );
                None
            }
        }
    }
}
