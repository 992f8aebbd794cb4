//! `authority.toml`: the `[authority]` table (and optional `[authority.mqtt]`) read into raw
//! types with `deny_unknown_fields`, then validated into [`AuthorityConfig`]; every error
//! located at its key (`m2mguard authority` exits 64 on any). Relative paths are taken from
//! the directory of `authority.toml` itself, so that `authority init --dir DIR` writes a
//! directory that works from anywhere. Nothing here reads a key or binds a port.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use super::report_rules::ReportRule;
use crate::config::{locate::locate, ConfigError};
use crate::location::line_col;

/// The annotated template `authority init` fills in.
pub const TEMPLATE: &str = include_str!("../../config/authority.toml");

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileRoot {
    authority: FileAuthority,
    das: Option<super::das::FileDas>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileAuthority {
    feed: String,
    listen: String,
    data_dir: String,
    feed_key: String,
    tls_cert: String,
    tls_key: String,
    client_ca: String,
    ca_key: String,
    operator_token: String,
    heartbeat_s: Option<u64>,
    head_valid_s: Option<u64>,
    max_connections: Option<u64>,
    max_connections_per_source: Option<u64>,
    enrol_code_ttl_s: Option<u64>,
    mqtt: Option<FileMqtt>,
    reports: Option<FileReports>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileReports {
    #[serde(default)]
    rules: Vec<FileReportRule>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileReportRule {
    name: String,
    action: String,
    reports: u64,
    gateways: Option<u64>,
    window_s: u64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileMqtt {
    broker: String,
    topic: String,
    client_id: Option<String>,
}

#[derive(Debug, Clone)]
pub struct AuthorityConfig {
    pub feed: String,
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    pub feed_key: PathBuf,
    pub tls_cert: PathBuf,
    pub tls_key: PathBuf,
    pub client_ca: PathBuf,
    pub ca_key: PathBuf,
    pub operator_token: PathBuf,
    pub heartbeat: Duration,
    pub head_valid_s: u64,
    pub max_connections: usize,
    /// Open connections from one source (an IPv4 address or an IPv6 /64).
    pub max_connections_per_source: usize,
    /// How long a gateway's enrolment code is accepted after it was issued, in seconds.
    pub enrol_code_ttl_s: u64,
    pub mqtt: Option<MqttPublish>,
    /// What reports make the authority do (docs/reports.md "Rules").
    pub report_rules: Vec<ReportRule>,
    /// `[das]`: the authority issues tokens.
    pub das: Option<super::das::DasConfig>,
}

#[derive(Debug, Clone)]
pub struct MqttPublish {
    /// `host:port`.
    pub broker: String,
    pub topic: String,
    pub client_id: String,
}

impl AuthorityConfig {
    pub fn load(path: &Path) -> Result<AuthorityConfig, Vec<ConfigError>> {
        let name = path.display().to_string();
        let text = std::fs::read_to_string(path)
            .map_err(|e| vec![error(&name, None, "", format!("cannot read: {e}"))])?;
        let base = path.parent().unwrap_or(Path::new("."));
        AuthorityConfig::parse(&text, &name, base)
    }

    /// Validates `text`; relative paths are taken from `base`.
    pub fn parse(text: &str, name: &str, base: &Path) -> Result<AuthorityConfig, Vec<ConfigError>> {
        let raw: FileRoot = toml::from_str(text).map_err(|e| {
            let at = e.span().map(|s| line_col(text, s.start));
            vec![error(name, at, "", e.message().trim().to_owned())]
        })?;
        let mut errors = Vec::new();
        let mut config = validate(raw.authority, base, &mut errors);
        config.das = raw
            .das
            .map(|d| super::das::config::validate(d, base, &mut |k, m| errors.push((k, m))));
        if errors.is_empty() {
            Ok(config)
        } else {
            Err(errors
                .into_iter()
                .map(|(key, message)| error(name, locate(text, &key), &key, message))
                .collect())
        }
    }

    /// The base URL clients use: the listen address, an unspecified IP read as loopback.
    pub fn url(&self) -> String {
        let mut addr = self.listen;
        if addr.ip().is_unspecified() {
            addr.set_ip(if addr.is_ipv4() {
                [127, 0, 0, 1].into()
            } else {
                std::net::Ipv6Addr::LOCALHOST.into()
            });
        }
        format!("https://{addr}")
    }
}

fn error(file: &str, at: Option<(usize, usize)>, key: &str, message: String) -> ConfigError {
    ConfigError {
        file: file.to_owned(),
        line: at.map(|a| a.0),
        col: at.map(|a| a.1),
        key: key.to_owned(),
        message,
    }
}

fn validate(
    raw: FileAuthority,
    base: &Path,
    errors: &mut Vec<(String, String)>,
) -> AuthorityConfig {
    let mut err = |key: &str, message: String| errors.push((format!("authority.{key}"), message));
    if crate::feed::record::check_feed_id(&raw.feed).is_err() {
        err(
            "feed",
            format!(
                "{:?} is not a feed id (expected 1 to 64 of A-Z a-z 0-9 . _ -)",
                raw.feed
            ),
        );
    }
    let listen = raw.listen.parse().unwrap_or_else(|_| {
        err(
            "listen",
            format!(
                "{:?} is not a socket address (expected ip:port, e.g. 127.0.0.1:7443)",
                raw.listen
            ),
        );
        SocketAddr::from(([127, 0, 0, 1], 0))
    });
    let mut path = |key: &str, value: &str| {
        if value.is_empty() {
            err(key, "must not be empty (expected a path)".into());
        }
        base.join(value)
    };
    let data_dir = path("data_dir", &raw.data_dir);
    let feed_key = path("feed_key", &raw.feed_key);
    let tls_cert = path("tls_cert", &raw.tls_cert);
    let tls_key = path("tls_key", &raw.tls_key);
    let client_ca = path("client_ca", &raw.client_ca);
    let ca_key = path("ca_key", &raw.ca_key);
    let operator_token = path("operator_token", &raw.operator_token);
    let mut range = |key: &str, value: Option<u64>, default: u64, min: u64, max: u64| {
        let value = value.unwrap_or(default);
        if (min..=max).contains(&value) {
            value
        } else {
            err(
                key,
                format!("{value} is out of range (expected {min} to {max})"),
            );
            default
        }
    };
    let heartbeat_s = range("heartbeat_s", raw.heartbeat_s, 10, 1, 3600);
    let head_valid_s = range("head_valid_s", raw.head_valid_s, 60, 2, 86_400);
    let max_connections = range("max_connections", raw.max_connections, 1024, 1, 1_000_000);
    // One source cannot take every connection: gateways behind one address need a few each.
    let per_source = range(
        "max_connections_per_source",
        raw.max_connections_per_source,
        256.min(max_connections),
        1,
        max_connections,
    );
    let enrol_code_ttl_s = range(
        "enrol_code_ttl_s",
        raw.enrol_code_ttl_s,
        86_400,
        1,
        2_592_000,
    );
    if head_valid_s <= heartbeat_s {
        err(
            "head_valid_s",
            format!("{head_valid_s} is not more than heartbeat_s = {heartbeat_s} (a head must outlive the next heartbeat)"),
        );
    }
    let mqtt = raw.mqtt.map(|m| mqtt(m, &raw.feed, &mut err));
    let report_rules = raw
        .reports
        .map(|r| report_rules(r.rules, &mut err))
        .unwrap_or_default();
    AuthorityConfig {
        report_rules,
        feed: raw.feed,
        listen,
        data_dir,
        feed_key,
        tls_cert,
        tls_key,
        client_ca,
        ca_key,
        operator_token,
        heartbeat: Duration::from_secs(heartbeat_s),
        head_valid_s,
        max_connections: max_connections as usize,
        max_connections_per_source: per_source as usize,
        enrol_code_ttl_s,
        mqtt,
        das: None,
    }
}

fn report_rules(rules: Vec<FileReportRule>, err: &mut impl FnMut(&str, String)) -> Vec<ReportRule> {
    let mut out: Vec<ReportRule> = Vec::new();
    for r in rules {
        if !crate::feed::check::is_name(&r.name) || out.iter().any(|o| o.name == r.name) {
            err(
                "reports.rules.name",
                format!("{:?} is not a new rule name (expected 1 to 64 of A-Z a-z 0-9 . _ -, each once)", r.name),
            );
        }
        if r.action != "suspend" {
            err(
                "reports.rules.action",
                format!("{:?} is not an action (expected \"suspend\")", r.action),
            );
        }
        let gateways = r.gateways.unwrap_or(1);
        let mut check = |key: &str, value: u64, max: u64| {
            if !(1..=max).contains(&value) {
                err(
                    key,
                    format!("{value} is out of range (expected 1 to {max})"),
                );
            }
        };
        check(
            "reports.rules.reports",
            r.reports,
            crate::authority::report_rules::MAX_SEEN as u64,
        );
        check("reports.rules.gateways", gateways, 10_000);
        check("reports.rules.window_s", r.window_s, 30 * 86_400);
        if gateways > r.reports {
            err(
                "reports.rules.gateways",
                format!(
                    "{gateways} is more than reports = {} (each report comes from one gateway)",
                    r.reports
                ),
            );
        }
        out.push(ReportRule {
            name: r.name,
            reports: r.reports,
            gateways,
            window_s: r.window_s,
        });
    }
    out
}

fn mqtt(m: FileMqtt, feed: &str, err: &mut impl FnMut(&str, String)) -> MqttPublish {
    let broker_ok = m
        .broker
        .rsplit_once(':')
        .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p > 0));
    if !broker_ok {
        err(
            "mqtt.broker",
            format!(
                "{:?} is not host:port (expected e.g. 127.0.0.1:1883)",
                m.broker
            ),
        );
    }
    let topic_ok =
        !m.topic.is_empty() && !m.topic.ends_with('/') && !m.topic.contains(['+', '#', '\0']);
    if !topic_ok {
        err(
            "mqtt.topic",
            format!(
                "{:?} is not a topic prefix (expected non-empty, no + # or trailing /)",
                m.topic
            ),
        );
    }
    let client_id = m
        .client_id
        .unwrap_or_else(|| format!("m2mguard-authority-{feed}"));
    if client_id.is_empty() || client_id.len() > 64 {
        err("mqtt.client_id", "expected 1 to 64 characters".into());
    }
    MqttPublish {
        broker: m.broker,
        topic: m.topic,
        client_id,
    }
}
