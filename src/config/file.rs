//! The configuration file as written: raw serde types, no meaning attached yet.
//!
//! Unknown keys are refused (`deny_unknown_fields`) so that a misspelt security setting can
//! never be silently ignored. [`super::validate`] turns these into runtime types.

use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub gateway: FileGateway,
    pub http: FileHttp,
    pub admin: FileAdmin,
    pub policy: FilePolicy,
    pub mqtt: Option<FileMqtt>,
    #[serde(default)]
    pub nodes: Vec<FileNode>,
    #[serde(default)]
    pub checks: super::checks::FileChecks,
    #[serde(default)]
    pub tokens: super::tokens::FileTokens,
    #[serde(default)]
    pub plausibility: Vec<super::plausibility::FilePlausibility>,
    pub coap: Option<FileCoap>,
    pub sync: Option<super::sync::FileSync>,
    pub audit: Option<super::audit::FileAudit>,
    pub reports: Option<super::reports::FileReports>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileMqtt {
    pub listen: String,
    pub broker: String,
    pub max_packet_bytes: Option<u64>,
    pub connect_timeout_ms: Option<u64>,
    pub broker_timeout_ms: Option<u64>,
    pub max_connections: Option<u64>,
    pub max_connections_per_source: Option<u64>,
    pub tls: Option<FileServerTls>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileGateway {
    pub cse_id: String,
    pub cse_name: String,
    pub sp_id: Option<String>,
    pub resolve_originator: Option<String>,
    pub resolve_cache_entries: Option<u64>,
    pub data_dir: String,
    pub node_cache_capacity: Option<u64>,
    pub mode: Option<String>,
    pub unknown_originators: Option<String>,
    #[serde(default)]
    pub registration_groups: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileHttp {
    pub listen: String,
    pub upstream: String,
    pub max_header_bytes: Option<u64>,
    pub max_body_bytes: Option<u64>,
    pub header_read_timeout_ms: Option<u64>,
    pub upstream_timeout_ms: Option<u64>,
    pub max_connections: Option<u64>,
    pub max_connections_per_source: Option<u64>,
    pub tls: Option<FileServerTls>,
    pub upstream_tls: Option<FileUpstreamTls>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileServerTls {
    pub cert: String,
    pub key: String,
    pub client_ca: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileUpstreamTls {
    pub ca: String,
    pub cert: Option<String>,
    pub key: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileAdmin {
    pub listen: String,
    #[serde(default)]
    pub allow_remote: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FilePolicy {
    pub dir: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileNode {
    pub id: String,
    pub kind: Option<String>,
    #[serde(default)]
    pub groups: Vec<String>,
    pub registrar: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileCoap {
    pub listen: String,
    pub upstream: String,
    #[serde(default)]
    pub legacy_options: bool,
    #[serde(default)]
    pub forward_tokens: bool,
    pub exchange_lifetime_secs: Option<u64>,
    pub max_datagram_bytes: Option<u64>,
    pub max_exchanges: Option<u64>,
    pub max_observations: Option<u64>,
    pub observe_idle_secs: Option<u64>,
    pub rate_per_sec: Option<u64>,
    pub rate_burst: Option<u64>,
    pub max_sources: Option<u64>,
    pub amplification_factor: Option<u64>,
    pub echo_validity_secs: Option<u64>,
    pub echo: Option<String>,
    #[serde(default)]
    pub trusted_sources: Vec<String>,
    pub upstream_timeout_ms: Option<u64>,
}
