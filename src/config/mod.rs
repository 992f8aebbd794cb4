//! Configuration: TOML text → [`file::FileConfig`] (raw) → [`Config`] (validated, runtime).
//!
//! In: the text of `config/m2mguard.toml` (also the built-in default). Out: a [`Config`] whose
//! every field has been checked, TLS material loaded, or the full list of [`ConfigError`]s,
//! each located at the line and column of the offending key. Relative paths are taken from the
//! working directory. Nothing here binds a port. The validated types of the guard's stages
//! live beside those stages (`guard::ChecksConfig`, `guard::token::TokensConfig`, ...); this
//! module builds them, and the guard never imports it.

mod audit;
mod checks;
mod coap;
mod file;
pub mod locate;
mod plausibility;
mod reports;
mod sync;
mod tokens;

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use http::Uri;
use rustls_pki_types::CertificateDer;

use crate::guard::token::TokensConfig;
use crate::guard::ChecksConfig;
use crate::location::line_col;
use crate::store::{NodeKind, NodeSeed};
use crate::tls::{self, KeyPair};
pub use audit::{AuditConfig, OnFull};
pub use coap::{CoapConfig, EchoMode};
use file::{FileConfig, FileHttp, FileMqtt, FileServerTls, FileUpstreamTls};
pub use reports::{Origin, ReportRule, ReportsConfig};
pub use sync::{SyncConfig, Transport};

/// The annotated default configuration, compiled in.
pub const DEFAULT_TOML: &str = include_str!("../../config/m2mguard.toml");

#[derive(Debug, Clone)]
pub struct Config {
    pub gateway: GatewayConfig,
    pub http: HttpConfig,
    pub admin: AdminConfig,
    /// The MQTT listener, when `[mqtt]` is present.
    pub mqtt: Option<MqttConfig>,
    pub policy_dir: PathBuf,
    pub nodes: Vec<NodeSeed>,
    pub checks: ChecksConfig,
    pub tokens: TokensConfig,
    /// `[[plausibility]]` rules, in file order.
    pub plausibility: Vec<crate::guard::plausibility::Rule>,
    /// The CoAP listener, when `[coap]` is present.
    pub coap: Option<CoapConfig>,
    /// Following the authority's status feed, when `[sync]` is present.
    pub sync: Option<SyncConfig>,
    /// The audit log, when `[audit]` is present.
    pub audit: Option<AuditConfig>,
    /// Misbehaviour reports, when `[reports]` is present (it needs `[sync]`).
    pub reports: Option<ReportsConfig>,
}

#[derive(Debug, Clone)]
pub struct MqttConfig {
    pub listen: SocketAddr,
    /// The broker every client session is relayed to, `host:port`.
    pub broker: String,
    /// Largest MQTT packet (remaining length) accepted from either side.
    pub max_packet_bytes: usize,
    /// A client must complete TLS and send CONNECT within this.
    pub connect_timeout: Duration,
    /// The broker must accept the connection and answer CONNECT within this.
    pub broker_timeout: Duration,
    /// Open connections at once, in all and per source.
    pub connections: ConnectionLimits,
    /// MQTT over TLS for clients; with `client_ca`, the certificate CN is the identity.
    pub tls: Option<ServerTls>,
}

/// Caps on a listener's open connections; the excess is closed as it is accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionLimits {
    pub max_connections: usize,
    /// Per source: an IPv4 address, or an IPv6 /64 prefix. At most `max_connections`.
    pub max_connections_per_source: usize,
}

#[derive(Debug, Clone)]
pub struct GatewayConfig {
    /// The CSE-ID this gateway answers for, e.g. `/id-in`.
    pub cse_id: String,
    /// The resource name of that CSE's CSEBase, e.g. `cse-in`: what `-` stands for.
    pub cse_name: String,
    /// The SP-ID of the CSE's service provider, e.g. `//acme.example.com`; without it
    /// absolute targets are refused.
    pub sp_id: Option<String>,
    /// Who asks the CSE (over `[http] upstream`) for the names of resource-id targets;
    /// without it such targets are refused.
    pub resolve_originator: Option<String>,
    pub resolve_cache_entries: u64,
    pub data_dir: PathBuf,
    pub node_cache_capacity: u64,
    /// Enforce decisions, or only record them (see [`Mode`]).
    pub mode: Mode,
    /// Originators the repository does not know: refused, or decided by Cedar.
    pub unknown_originators: crate::guard::Unknown,
    /// Groups every node that registers through the gateway gets.
    pub registration_groups: Vec<String>,
}

impl GatewayConfig {
    pub fn addressing(&self) -> crate::target::Addressing {
        crate::target::Addressing::new(&self.cse_id, &self.cse_name, self.sp_id.as_deref())
    }
}

#[derive(Debug, Clone)]
pub struct HttpConfig {
    pub listen: SocketAddr,
    pub upstream: Uri,
    pub max_header_bytes: usize,
    pub max_body_bytes: usize,
    pub header_read_timeout: Duration,
    pub upstream_timeout: Duration,
    /// Open connections at once, in all and per source.
    pub connections: ConnectionLimits,
    /// HTTPS for clients, when configured.
    pub tls: Option<ServerTls>,
    /// Trust anchors and client identity for an `https` upstream, as a ready configuration.
    pub upstream_tls: Option<Arc<rustls::ClientConfig>>,
}

/// The listener's TLS configuration, built (and so checked) while validating.
#[derive(Clone)]
pub struct ServerTls {
    pub config: Arc<rustls::ServerConfig>,
    /// Clients must present a certificate from `client_ca` that names their identity.
    pub client_auth: bool,
}

impl fmt::Debug for ServerTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerTls")
            .field("client_auth", &self.client_auth)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone)]
pub struct AdminConfig {
    pub listen: SocketAddr,
}

/// One problem with the configuration, located in its source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub file: String,
    pub line: Option<usize>,
    pub col: Option<usize>,
    /// Dotted key path, empty for syntax errors.
    pub key: String,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file)?;
        if let (Some(line), Some(col)) = (self.line, self.col) {
            write!(f, ":{line}:{col}")?;
        }
        if self.key.is_empty() {
            write!(f, ": {}", self.message)
        } else {
            write!(f, ": {}: {}", self.key, self.message)
        }
    }
}

impl std::error::Error for ConfigError {}

impl Config {
    /// Reads and validates a configuration file.
    pub fn load(path: &Path) -> Result<Config, Vec<ConfigError>> {
        let name = path.display().to_string();
        match std::fs::read_to_string(path) {
            Ok(text) => Config::parse(&text, &name),
            Err(e) => Err(vec![ConfigError {
                file: name,
                line: None,
                col: None,
                key: String::new(),
                message: format!("cannot read: {e}"),
            }]),
        }
    }

    /// The built-in configuration following the feed that `sync` (a `[sync]` table, as
    /// `m2mguard authority gateway add` writes it) names: no nodes or keys of its own.
    pub fn builtin_synced(sync: &str) -> Result<Config, Vec<ConfigError>> {
        let mut config = Config::builtin()?;
        config.nodes.clear();
        config.checks.keys.clear();
        config.sync = Some(sync::parse(sync, "<[sync]>")?);
        Ok(config)
    }

    /// The built-in default configuration.
    pub fn builtin() -> Result<Config, Vec<ConfigError>> {
        Config::parse(DEFAULT_TOML, "<built-in config>")
    }

    /// Parses and validates TOML `text`; `name` is used in error locations.
    pub fn parse(text: &str, name: &str) -> Result<Config, Vec<ConfigError>> {
        let raw: FileConfig = toml::from_str(text).map_err(|e| {
            let (line, col) = e.span().map(|s| line_col(text, s.start)).unzip();
            vec![ConfigError {
                file: name.to_owned(),
                line,
                col,
                key: String::new(),
                message: e.message().trim().to_owned(),
            }]
        })?;
        let mut v = Validator::default();
        let config = v.config(raw);
        if v.errors.is_empty() {
            Ok(config)
        } else {
            Err(v
                .errors
                .into_iter()
                .map(|(key, message)| {
                    let (line, col) = locate::locate(text, &key).unzip();
                    ConfigError {
                        file: name.to_owned(),
                        line,
                        col,
                        key,
                        message,
                    }
                })
                .collect())
        }
    }
}

/// Collects every problem instead of stopping at the first.
#[derive(Default)]
struct Validator {
    errors: Vec<(String, String)>,
}

impl Validator {
    fn err(&mut self, key: impl Into<String>, message: impl Into<String>) {
        self.errors.push((key.into(), message.into()));
    }

    fn gateway(&mut self, raw: file::FileGateway) -> GatewayConfig {
        if !is_cse_id(&raw.cse_id) {
            self.err(
                "gateway.cse_id",
                format!("{:?} is not a CSE-ID (expected \"/\" followed by a name without \"/\", e.g. \"/id-in\")", raw.cse_id),
            );
        }
        if !is_name(&raw.cse_name) || ["-", "~", "_"].contains(&raw.cse_name.as_str()) {
            self.err(
                "gateway.cse_name",
                format!("{:?} is not a CSEBase resource name (expected a name without \"/\", e.g. \"cse-in\")", raw.cse_name),
            );
        }
        if let Some(sp) = &raw.sp_id {
            if !sp.strip_prefix("//").is_some_and(is_name) {
                self.err(
                    "gateway.sp_id",
                    format!("{sp:?} is not an SP-ID (expected \"//\" followed by a domain, e.g. \"//acme.example.com\")"),
                );
            }
        }
        if raw
            .resolve_originator
            .as_deref()
            .is_some_and(|o| !is_name(o))
        {
            self.err(
                "gateway.resolve_originator",
                "must be an originator id (non-empty, without \"/\"), e.g. \"CAdmin\"",
            );
        }
        let resolve_cache_entries = self.range(
            "gateway.resolve_cache_entries",
            raw.resolve_cache_entries,
            100_000,
            16..=100_000_000,
        );
        if raw.data_dir.is_empty() {
            self.err(
                "gateway.data_dir",
                "must not be empty (expected a directory path)",
            );
        }
        let node_cache_capacity = self.range(
            "gateway.node_cache_capacity",
            raw.node_cache_capacity,
            100_000,
            16..=100_000_000,
        );
        let mode = match raw.mode.as_deref() {
            None | Some("enforce") => Mode::Enforce,
            Some("observe") => Mode::Observe,
            Some(other) => {
                self.err(
                    "gateway.mode",
                    format!("{other:?} is not a mode (expected \"enforce\" or \"observe\")"),
                );
                Mode::Enforce
            }
        };
        let unknown_originators = match raw.unknown_originators.as_deref() {
            None | Some("deny") => crate::guard::Unknown::Deny,
            Some("policy") => crate::guard::Unknown::Policy,
            Some(other) => {
                self.err(
                    "gateway.unknown_originators",
                    format!("{other:?} is not a choice (expected \"deny\" or \"policy\")"),
                );
                crate::guard::Unknown::Deny
            }
        };
        self.group_names("gateway.registration_groups", &raw.registration_groups);
        GatewayConfig {
            mode,
            unknown_originators,
            registration_groups: raw.registration_groups,
            cse_id: raw.cse_id,
            cse_name: raw.cse_name,
            sp_id: raw.sp_id,
            resolve_originator: raw.resolve_originator,
            resolve_cache_entries,
            data_dir: PathBuf::from(raw.data_dir),
            node_cache_capacity,
        }
    }

    fn config(&mut self, raw: FileConfig) -> Config {
        let gateway = self.gateway(raw.gateway);
        let http = self.http(raw.http);
        let admin_listen = self.addr("admin.listen", &raw.admin.listen);
        if let Some(addr) = admin_listen {
            if !addr.ip().is_loopback() && !raw.admin.allow_remote {
                self.err(
                    "admin.listen",
                    format!("{addr} is not a loopback address; the admin API has no authentication of its own (expected 127.0.0.1 or ::1, or set admin.allow_remote = true)"),
                );
            }
        }
        let policy_dir = PathBuf::from(&raw.policy.dir);
        if !policy_dir.is_dir() {
            self.err(
                "policy.dir",
                format!("{:?} is not a directory (expected the directory holding m2mguard.cedarschema and *.cedar)", raw.policy.dir),
            );
        }
        let nodes = self.nodes(raw.nodes);
        let checks = self.checks(raw.checks);
        let tokens = self.tokens(raw.tokens);
        let plausibility = self.plausibility(raw.plausibility);
        let mqtt = raw.mqtt.map(|m| self.mqtt(m));
        let coap = raw.coap.map(|c| self.coap(c));
        let sync = raw.sync.and_then(|s| self.sync(s));
        if sync.is_some() {
            self.sync_owns(nodes.len(), checks.keys.len());
        } else if !tokens.obtain.is_empty() {
            self.err(
                "tokens.obtain",
                "tokens are obtained from the authority: [[tokens.obtain]] needs [sync]",
            );
        }
        let log_id = sync
            .as_ref()
            .map_or(&gateway.cse_id, |s| &s.gateway_id)
            .clone();
        let sync_key = sync.as_ref().map(|s| s.sign_key.clone());
        let audit = raw
            .audit
            .and_then(|a| self.audit(a, sync_key.as_ref(), &log_id));
        let reports = raw.reports.and_then(|r| self.reports(r, sync.is_some()));
        Config {
            sync,
            audit,
            reports,
            gateway,
            http,
            admin: AdminConfig {
                listen: admin_listen.unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 0))),
            },
            mqtt,
            policy_dir,
            nodes,
            checks,
            tokens,
            plausibility,
            coap,
        }
    }

    fn mqtt(&mut self, m: FileMqtt) -> MqttConfig {
        let listen = self.addr("mqtt.listen", &m.listen);
        let broker_ok = m.broker.rsplit_once(':').is_some_and(|(host, port)| {
            !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p > 0)
        });
        if !broker_ok {
            self.err(
                "mqtt.broker",
                format!(
                    "{:?} is not host:port (expected e.g. 127.0.0.1:1883)",
                    m.broker
                ),
            );
        }
        let tls = m.tls.and_then(|t| self.server_tls("mqtt.tls", t));
        MqttConfig {
            listen: listen.unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 0))),
            broker: m.broker,
            max_packet_bytes: self.range(
                "mqtt.max_packet_bytes",
                m.max_packet_bytes,
                1024 * 1024,
                64..=256 * 1024 * 1024,
            ) as usize,
            connect_timeout: self.millis("mqtt.connect_timeout_ms", m.connect_timeout_ms, 10_000),
            broker_timeout: self.millis("mqtt.broker_timeout_ms", m.broker_timeout_ms, 10_000),
            connections: self.connections("mqtt", m.max_connections, m.max_connections_per_source),
            tls: tls.map(|t| ServerTls {
                config: with_alpn(&t.config, b"mqtt"),
                client_auth: t.client_auth,
            }),
        }
    }

    fn http(&mut self, h: FileHttp) -> HttpConfig {
        let listen = self.addr("http.listen", &h.listen);
        let upstream = self.upstream(&h.upstream);
        let https_upstream = upstream
            .as_ref()
            .is_some_and(|u| u.scheme_str() == Some("https"));
        match (https_upstream, &h.upstream_tls) {
            (true, None) => self.err(
                "http.upstream",
                "an https upstream needs [http.upstream_tls] with ca = <PEM file of trusted CAs>",
            ),
            (false, Some(_)) if upstream.is_some() => self.err(
                "http.upstream_tls",
                "set, but the upstream is plain http (expected an https:// upstream, or no [http.upstream_tls])",
            ),
            _ => {}
        }
        let upstream_tls = h.upstream_tls.and_then(|t| self.upstream_tls(t));
        HttpConfig {
            listen: listen.unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 0))),
            upstream: upstream.unwrap_or_default(),
            max_header_bytes: self.range(
                "http.max_header_bytes",
                h.max_header_bytes,
                16 * 1024,
                1024..=1024 * 1024,
            ) as usize,
            max_body_bytes: self.range(
                "http.max_body_bytes",
                h.max_body_bytes,
                1024 * 1024,
                1..=256 * 1024 * 1024,
            ) as usize,
            header_read_timeout: self.millis(
                "http.header_read_timeout_ms",
                h.header_read_timeout_ms,
                10_000,
            ),
            upstream_timeout: self.millis(
                "http.upstream_timeout_ms",
                h.upstream_timeout_ms,
                10_000,
            ),
            connections: self.connections("http", h.max_connections, h.max_connections_per_source),
            tls: h.tls.and_then(|t| self.server_tls("http.tls", t)),
            upstream_tls,
        }
    }

    /// `<section>.max_connections` and `<section>.max_connections_per_source`; the per-source
    /// default is capped by the total so that lowering the total alone stays valid.
    fn connections(
        &mut self,
        section: &str,
        total: Option<u64>,
        per_source: Option<u64>,
    ) -> ConnectionLimits {
        let total_key = format!("{section}.max_connections");
        let per_source_key = format!("{section}.max_connections_per_source");
        let total = self.range(&total_key, total, 10_000, 1..=1_000_000);
        let mut per_source = self.range(&per_source_key, per_source, 256.min(total), 1..=1_000_000);
        if per_source > total {
            self.err(
                per_source_key,
                format!(
                    "{per_source} is more than {total_key} = {total} (expected at most {total})"
                ),
            );
            per_source = total;
        }
        ConnectionLimits {
            max_connections: total as usize,
            max_connections_per_source: per_source as usize,
        }
    }

    fn upstream(&mut self, text: &str) -> Option<Uri> {
        let expected = "expected http://host:port or https://host:port, without a path";
        match text.parse::<Uri>() {
            Ok(uri)
                if matches!(uri.scheme_str(), Some("http" | "https"))
                    && uri.authority().is_some()
                    && matches!(uri.path(), "" | "/")
                    && uri.query().is_none() =>
            {
                Some(uri)
            }
            Ok(_) => {
                self.err("http.upstream", format!("{text:?}: {expected}"));
                None
            }
            Err(e) => {
                self.err("http.upstream", format!("{text:?}: {e} ({expected})"));
                None
            }
        }
    }

    fn server_tls(&mut self, prefix: &str, t: FileServerTls) -> Option<ServerTls> {
        let certs = self.certs(&format!("{prefix}.cert"), &t.cert);
        let key = self.key(&format!("{prefix}.key"), &t.key);
        let client_ca = match &t.client_ca {
            Some(path) => Some(self.certs(&format!("{prefix}.client_ca"), path)?),
            None => None,
        };
        let identity = KeyPair {
            certs: certs?,
            key: Arc::new(key?),
        };
        match tls::server_config(&identity, client_ca.as_deref()) {
            Ok(config) => Some(ServerTls {
                config,
                client_auth: client_ca.is_some(),
            }),
            Err(e) => {
                self.err(prefix, e.to_string());
                None
            }
        }
    }

    fn upstream_tls(&mut self, t: FileUpstreamTls) -> Option<Arc<rustls::ClientConfig>> {
        self.client_tls("http.upstream_tls", t)
    }

    /// A TLS client configuration from the table at `at` (`ca`, optional `cert` and `key`).
    fn client_tls(&mut self, at: &str, t: FileUpstreamTls) -> Option<Arc<rustls::ClientConfig>> {
        let ca = self.certs(&format!("{at}.ca"), &t.ca);
        let client = match (&t.cert, &t.key) {
            (Some(cert), Some(key)) => {
                let certs = self.certs(&format!("{at}.cert"), cert);
                let key = self.key(&format!("{at}.key"), key);
                Some(KeyPair {
                    certs: certs?,
                    key: Arc::new(key?),
                })
            }
            (None, None) => None,
            _ => {
                self.err(at, "cert and key go together (expected both or neither)");
                return None;
            }
        };
        match tls::client_config(&ca?, client.as_ref()) {
            Ok(config) => Some(Arc::new(config)),
            Err(e) => {
                self.err(at, e.to_string());
                None
            }
        }
    }

    fn certs(&mut self, key: &str, path: &str) -> Option<Vec<CertificateDer<'static>>> {
        tls::load_certs(Path::new(path))
            .map_err(|e| self.err(key, e.to_string()))
            .ok()
    }

    fn key(&mut self, key: &str, path: &str) -> Option<rustls_pki_types::PrivateKeyDer<'static>> {
        tls::load_key(Path::new(path))
            .map_err(|e| self.err(key, e.to_string()))
            .ok()
    }

    fn addr(&mut self, key: &str, text: &str) -> Option<SocketAddr> {
        text.parse()
            .map_err(|_| {
                self.err(key, format!("{text:?} is not a socket address (expected ip:port, e.g. 127.0.0.1:18080 or [::1]:18080)"))
            })
            .ok()
    }

    /// A time in milliseconds between 100 ms and 10 min, as every timeout here is.
    fn millis(&mut self, key: &str, value: Option<u64>, default: u64) -> Duration {
        Duration::from_millis(self.range(key, value, default, 100..=600_000))
    }

    fn range(
        &mut self,
        key: &str,
        value: Option<u64>,
        default: u64,
        allowed: std::ops::RangeInclusive<u64>,
    ) -> u64 {
        let value = value.unwrap_or(default);
        if allowed.contains(&value) {
            value
        } else {
            self.err(
                key,
                format!(
                    "{value} is out of range (expected {} to {})",
                    allowed.start(),
                    allowed.end()
                ),
            );
            default
        }
    }

    /// Cedar group names: non-empty, no quotes or control characters, no white space (a
    /// policy's `@groups` lists them separated by spaces).
    fn group_names(&mut self, key: &str, groups: &[String]) {
        for (j, g) in groups.iter().enumerate() {
            if g.is_empty()
                || g.chars()
                    .any(|c| c.is_control() || c == '"' || c.is_whitespace())
            {
                self.err(
                    format!("{key}[{j}]"),
                    "expected a non-empty group name without quotes or white space",
                );
            }
        }
    }

    fn nodes(&mut self, raw: Vec<file::FileNode>) -> Vec<NodeSeed> {
        let mut seen = std::collections::HashSet::new();
        let mut nodes = Vec::with_capacity(raw.len());
        for (i, n) in raw.into_iter().enumerate() {
            if n.id.is_empty() || n.id.len() > 256 || n.id.chars().any(char::is_control) {
                self.err(
                    format!("nodes[{i}].id"),
                    "expected a non-empty originator id of at most 256 printable characters",
                );
            } else if !seen.insert(n.id.clone()) {
                self.err(
                    format!("nodes[{i}].id"),
                    format!("{:?} is listed twice (expected each node once)", n.id),
                );
            }
            let kind = match n.kind.as_deref().unwrap_or("ae") {
                "ae" => NodeKind::Ae,
                "cse" => NodeKind::Cse,
                other => {
                    self.err(
                        format!("nodes[{i}].kind"),
                        format!("{other:?} is not a node kind (expected \"ae\" or \"cse\")"),
                    );
                    NodeKind::Ae
                }
            };
            self.group_names(&format!("nodes[{i}].groups"), &n.groups);
            if let Some(r) = &n.registrar {
                if !is_cse_id(r) {
                    self.err(
                        format!("nodes[{i}].registrar"),
                        format!("{r:?} is not a CSE-ID (expected \"/\" followed by a name, e.g. \"/id-mn\")"),
                    );
                }
            }
            nodes.push(NodeSeed {
                id: n.id,
                kind,
                groups: n.groups,
                registrar: n.registrar,
            });
        }
        nodes
    }
}

/// `config` offering only `protocol` in ALPN (clients that offer none are served too).
fn with_alpn(config: &Arc<rustls::ServerConfig>, protocol: &[u8]) -> Arc<rustls::ServerConfig> {
    let mut config = (**config).clone();
    config.alpn_protocols = vec![protocol.to_vec()];
    Arc::new(config)
}

/// A single path segment: non-empty, no `/`, no control character.
fn is_name(name: &str) -> bool {
    !name.is_empty()
        && !name
            .chars()
            .any(|c| c == '/' || c == '\\' || c.is_control())
}

fn is_cse_id(id: &str) -> bool {
    id.strip_prefix('/')
        .is_some_and(|rest| !rest.is_empty() && !rest.contains('/'))
}

/// Whether denials are enforced (`[gateway] mode`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Mode {
    /// Denials are refused.
    #[default]
    Enforce,
    /// Denials are recorded as would-be denials and the request is forwarded.
    Observe,
}

#[cfg(test)]
mod tests;
