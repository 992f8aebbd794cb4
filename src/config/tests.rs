use super::*;

fn errors(text: &str) -> Vec<ConfigError> {
    Config::parse(text, "t.toml").err().unwrap_or_default()
}

fn with(replace: &str, by: &str) -> String {
    assert!(DEFAULT_TOML.contains(replace), "{replace}");
    DEFAULT_TOML.replacen(replace, by, 1)
}

fn line_of(text: &str, needle: &str) -> usize {
    text.lines().position(|l| l.contains(needle)).unwrap() + 1
}

#[test]
fn builtin_config_is_valid() {
    let config = Config::builtin().unwrap();
    assert_eq!(config.gateway.cse_id, "/id-in");
    assert_eq!(config.nodes.len(), 3);
}

#[test]
fn unknown_key_is_refused_at_its_line() {
    let text = with("[admin]\n", "[admin]\nlisten_port = 9\n");
    let e = errors(&text);
    assert_eq!(e.len(), 1);
    assert_eq!(e[0].line, Some(line_of(&text, "listen_port")));
    assert!(
        e[0].message.contains("unknown field `listen_port`"),
        "{}",
        e[0].message
    );
    assert!(e[0].message.contains("expected"), "{}", e[0].message);
}

#[test]
fn every_bad_value_is_reported_with_its_key_and_line() {
    let text = with("listen = \"127.0.0.1:18080\"", "listen = \"localhost\"")
        .replacen("cse_id = \"/id-in\"", "cse_id = \"id-in\"", 1)
        .replacen("kind = \"ae\"", "kind = \"robot\"", 1);
    let e = errors(&text);
    let keys: Vec<&str> = e.iter().map(|e| e.key.as_str()).collect();
    assert_eq!(
        keys,
        ["gateway.cse_id", "http.listen", "nodes[0].kind"],
        "{e:?}"
    );
    assert_eq!(e[1].line, Some(line_of(&text, "\"localhost\"")));
    assert_eq!(e[2].line, Some(line_of(&text, "\"robot\"")));
    assert!(e[1]
        .to_string()
        .starts_with(&format!("t.toml:{}:", e[1].line.unwrap())));
}

#[test]
fn admin_off_loopback_needs_explicit_consent() {
    let text = with("listen = \"127.0.0.1:19090\"", "listen = \"0.0.0.0:19090\"");
    assert_eq!(errors(&text)[0].key, "admin.listen");
    let consent = text.replacen("[admin]\n", "[admin]\nallow_remote = true\n", 1);
    assert!(Config::parse(&consent, "t.toml").is_ok());
}

#[test]
fn https_upstream_without_trust_anchors_is_refused() {
    let text = with(
        "upstream = \"http://127.0.0.1:8080\"",
        "upstream = \"https://127.0.0.1:8443\"",
    );
    assert_eq!(errors(&text)[0].key, "http.upstream");
}

#[test]
fn upstream_with_a_path_is_refused() {
    let text = with(
        "upstream = \"http://127.0.0.1:8080\"",
        "upstream = \"http://127.0.0.1:8080/x\"",
    );
    assert_eq!(errors(&text)[0].key, "http.upstream");
}

#[test]
fn missing_tls_files_are_refused_and_named() {
    let text = with(
        "# [http.tls]\n# cert = \"config/tls/gateway.pem\"\n# key = \"config/tls/gateway.key\"",
        "[http.tls]\ncert = \"/nonexistent/c.pem\"\nkey = \"/nonexistent/k.pem\"",
    );
    let e = errors(&text);
    let keys: Vec<&str> = e.iter().map(|e| e.key.as_str()).collect();
    assert_eq!(keys, ["http.tls.cert", "http.tls.key"], "{e:?}");
    assert!(e[0].message.contains("/nonexistent/c.pem"));
}

#[test]
fn out_of_range_limit_is_refused() {
    let text = with("# max_body_bytes = 1048576", "max_body_bytes = 0");
    assert_eq!(errors(&text)[0].key, "http.max_body_bytes");
}

#[test]
fn duplicate_node_is_refused() {
    let text = format!("{DEFAULT_TOML}\n[[nodes]]\nid = \"CAdmin\"\n");
    let e = errors(&text);
    assert_eq!(e[0].key, "nodes[3].id");
    assert_eq!(e[0].line, Some(text.lines().count()));
}

#[test]
fn upstream_tls_for_a_plain_http_upstream_is_refused() {
    let text = with(
        "# [http.upstream_tls]\n# ca = \"config/tls/upstream-ca.pem\"",
        "[http.upstream_tls]\nca = \"/nonexistent/ca.pem\"",
    );
    let keys: Vec<String> = errors(&text).into_iter().map(|e| e.key).collect();
    assert_eq!(keys, ["http.upstream_tls", "http.upstream_tls.ca"]);
}

#[test]
fn upstream_client_cert_without_key_is_reported_with_a_bad_ca() {
    let text = with("upstream = \"http://127.0.0.1:8080\"", "upstream = \"https://127.0.0.1:8443\"")
        .replacen("# [http.upstream_tls]\n# ca = \"config/tls/upstream-ca.pem\"\n# cert = \"config/tls/gateway-client.pem\"", "[http.upstream_tls]\nca = \"/nonexistent/ca.pem\"\ncert = \"/nonexistent/c.pem\"", 1);
    let keys: Vec<String> = errors(&text).into_iter().map(|e| e.key).collect();
    assert_eq!(
        keys,
        ["http.upstream_tls.ca", "http.upstream_tls"],
        "no misleading 'needs [http.upstream_tls]'"
    );
}

#[test]
fn checks_keys_are_read_and_bad_ones_reported_at_their_line() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, text: &str, mode: u32| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
        path.display().to_string()
    };
    let good = write("good.key", &"ab".repeat(32), 0o600);
    let open = write("open.key", &"ab".repeat(32), 0o644);
    let short = write("short.key", "abcd", 0o600);
    let text = format!(
        "{DEFAULT_TOML}\n[checks.replay]\nwindow = 1000\n\n[[checks.require]]\npath = \"meters\"\n\n\
         [[checks.keys]]\nid = \"k1\"\nnode = \"Cmeter-01\"\nfile = \"{good}\"\n\n\
         [[checks.keys]]\nid = \"k2\"\nnode = \"Cmeter-01\"\nfile = \"{open}\"\n\n\
         [[checks.keys]]\nid = \"k 3\"\nnode = \"Cmeter-01\"\nfile = \"{short}\"\ninsert = true\n\n\
         [[checks.keys]]\nid = \"k4\"\nnode = \"Cmeter-01\"\nfile = \"{good}\"\ninsert = true\n"
    );
    let e = errors(&text);
    let keys: Vec<&str> = e.iter().map(|e| e.key.as_str()).collect();
    assert_eq!(
        keys,
        [
            "checks.require[0].path",
            "checks.replay.window",
            "checks.keys[1].file",
            "checks.keys[2].id",
            "checks.keys[2].file",
            "checks.keys[3].insert"
        ],
        "{e:?}"
    );
    assert!(
        e[2].message.contains("readable by group or others"),
        "{}",
        e[2]
    );
    assert!(e[4].message.contains("at least 16"), "{}", e[4]);
    assert!(e.iter().all(|e| e.line.is_some()), "{e:?}");
    // No key material in any message.
    assert!(e.iter().all(|e| !e.message.contains("abab")));
    let fixed = text
        .replace("window = 1000", "window = 2048")
        .replace("path = \"meters\"", "path = \"/id-in/cse-in/meter-*\"")
        .replace(&open, &good)
        .replace("\"k 3\"", "\"k3\"")
        .replace(&short, &good)
        .replacen("insert = true", "", 1);
    let config = Config::parse(&fixed, "t.toml").unwrap();
    assert_eq!(config.checks.keys.len(), 4);
    assert!(config.checks.keys[3].insert);
    assert_eq!(
        format!("{:?}", config.checks.keys[0].secret),
        "Secret(32 bytes)"
    );
}

#[test]
fn mqtt_is_optional_and_its_errors_are_located() {
    assert!(Config::builtin().unwrap().mqtt.is_none());
    let text = with(
        "[admin]\n",
        "[mqtt]\nlisten = \"127.0.0.1:18883\"\nbroker = \"127.0.0.1:1884\"\n\n[admin]\n",
    );
    let mqtt = Config::parse(&text, "t.toml").unwrap().mqtt.unwrap();
    assert_eq!(mqtt.broker, "127.0.0.1:1884");
    assert_eq!(mqtt.max_packet_bytes, 1024 * 1024);
    assert!(mqtt.tls.is_none());

    let bad = text.replacen(
        "broker = \"127.0.0.1:1884\"",
        "broker = \"127.0.0.1\"\nmax_packet_bytes = 1",
        1,
    );
    let e = errors(&bad);
    let keys: Vec<&str> = e.iter().map(|e| e.key.as_str()).collect();
    assert_eq!(keys, ["mqtt.broker", "mqtt.max_packet_bytes"], "{e:?}");
    assert_eq!(e[0].line, Some(line_of(&bad, "broker = \"127.0.0.1\"")));

    let unknown = text.replacen("[mqtt]\n", "[mqtt]\nbrokers = \"x\"\n", 1);
    assert!(errors(&unknown)[0]
        .message
        .contains("unknown field `brokers`"));
}

/// The default file with its documented `[coap]` table switched on.
fn with_coap() -> String {
    with(
        "# [coap]\n",
        "[coap]\nlisten = \"127.0.0.1:15683\"\nupstream = \"127.0.0.1:5683\"\nlegacy_options = true\n",
    )
}

#[test]
fn coap_is_off_unless_configured_and_its_documented_table_is_valid() {
    assert!(Config::builtin().unwrap().coap.is_none());
    let coap = Config::parse(&with_coap(), "t.toml").unwrap().coap.unwrap();
    assert_eq!(coap.upstream, "127.0.0.1:5683".parse().unwrap());
    assert!(coap.legacy_options);
    assert_eq!(coap.amplification_factor, 3);
    assert_eq!(coap.exchange_lifetime, Duration::from_secs(247));
}

#[test]
fn coap_echo_is_required_by_default_and_trusted_ranges_are_read() {
    let coap = Config::parse(&with_coap(), "t.toml").unwrap().coap.unwrap();
    assert_eq!(coap.echo, EchoMode::Require);
    assert!(coap.trusted_sources.is_empty());
    assert!(coap.warnings().is_empty(), "{:?}", coap.warnings());
    let text = with_coap().replacen(
        "legacy_options = true\n",
        "legacy_options = true\ntrusted_sources = [\"10.0.0.0/24\", \"127.0.0.1\", \"fd00::/8\"]\n",
        1,
    );
    let coap = Config::parse(&text, "t.toml").unwrap().coap.unwrap();
    let ranges: Vec<String> = coap
        .trusted_sources
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(ranges, ["10.0.0.0/24", "127.0.0.1/32", "fd00::/8"]);
    assert!(coap.warnings().is_empty());
}

#[test]
fn coap_echo_off_is_valid_and_warned_about() {
    let text = with_coap().replacen("legacy_options = true\n", "echo = \"off\"\n", 1);
    let coap = Config::parse(&text, "t.toml").unwrap().coap.unwrap();
    assert_eq!(coap.echo, EchoMode::Off);
    let warnings = coap.warnings();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(
        warnings[0].contains("coap.echo = \"off\""),
        "{}",
        warnings[0]
    );
    assert!(warnings[0].contains("spoofed"), "{}", warnings[0]);
    assert!(warnings[0].contains("amplification"), "{}", warnings[0]);
    let everything = with_coap().replacen(
        "legacy_options = true\n",
        "trusted_sources = [\"0.0.0.0/0\"]\n",
        1,
    );
    let coap = Config::parse(&everything, "t.toml").unwrap().coap.unwrap();
    assert!(
        coap.warnings()[0].contains("every address"),
        "{:?}",
        coap.warnings()
    );
}

#[test]
fn bad_trusted_sources_and_echo_modes_are_located() {
    let text = with_coap().replacen(
        "legacy_options = true\n",
        "echo = \"optional\"\ntrusted_sources = [\n  \"10.0.0.0/24\",\n  \"10.0.0.1/24\",\n  \"10.0.0.0/33\",\n  \"devices\",\n]\n",
        1,
    );
    let e = errors(&text);
    let keys: Vec<&str> = e.iter().map(|e| e.key.as_str()).collect();
    assert_eq!(
        keys,
        [
            "coap.echo",
            "coap.trusted_sources[1]",
            "coap.trusted_sources[2]",
            "coap.trusted_sources[3]"
        ],
        "{e:?}"
    );
    assert_eq!(e[0].line, Some(line_of(&text, "\"optional\"")));
    assert!(
        e[0].message.contains("expected \"require\" or \"off\""),
        "{}",
        e[0].message
    );
    assert_eq!(e[1].line, Some(line_of(&text, "\"10.0.0.1/24\"")));
    assert!(
        e[1].message.contains("bits set after the prefix"),
        "{}",
        e[1].message
    );
    assert_eq!(e[2].line, Some(line_of(&text, "/33")));
    assert_eq!(e[3].line, Some(line_of(&text, "\"devices\"")));
    assert!(
        e[3].message.contains("not an IP address or CIDR range"),
        "{}",
        e[3].message
    );
}

#[test]
fn bad_coap_values_are_located() {
    let text = with_coap()
        .replacen(
            "upstream = \"127.0.0.1:5683\"",
            "upstream = \"coap://x\"",
            1,
        )
        .replacen("# amplification_factor = 3", "amplification_factor = 50", 1);
    let e = errors(&text);
    let keys: Vec<&str> = e.iter().map(|e| e.key.as_str()).collect();
    assert_eq!(keys, ["coap.upstream", "coap.amplification_factor"]);
    assert_eq!(e[0].line, Some(line_of(&text, "coap://x")));
}

#[test]
fn connection_caps_have_defaults_and_a_lower_total_lowers_the_per_source_default() {
    let config = Config::builtin().unwrap();
    let expected = ConnectionLimits {
        max_connections: 10_000,
        max_connections_per_source: 256,
    };
    assert_eq!(config.http.connections, expected);
    let text = with("[http]\n", "[http]\nmax_connections = 100\n");
    let http = Config::parse(&text, "t.toml").unwrap().http;
    assert_eq!(http.connections.max_connections_per_source, 100);
}

#[test]
fn zero_or_inverted_connection_caps_are_located() {
    let text = with(
        "[http]\n",
        "[http]\nmax_connections = 0\nmax_connections_per_source = 0\n",
    );
    let keys: Vec<String> = errors(&text).into_iter().map(|e| e.key).collect();
    assert_eq!(
        keys,
        ["http.max_connections", "http.max_connections_per_source"]
    );

    let text = with(
        "[admin]\n",
        "[mqtt]\nlisten = \"127.0.0.1:18883\"\nbroker = \"127.0.0.1:1884\"\n\
         max_connections = 10\nmax_connections_per_source = 11\n\n[admin]\n",
    );
    let e = errors(&text);
    assert_eq!(e.len(), 1, "{e:?}");
    assert_eq!(e[0].key, "mqtt.max_connections_per_source");
    assert_eq!(
        e[0].line,
        Some(line_of(&text, "max_connections_per_source = 11"))
    );
    assert!(e[0].message.contains("at most 10"), "{}", e[0].message);
}

#[test]
fn mode_is_enforce_unless_observe_is_asked_for_and_a_bad_one_is_located() {
    assert_eq!(Config::builtin().unwrap().gateway.mode, Mode::Enforce);
    let observe = with("[gateway]\n", "[gateway]\nmode = \"observe\"\n");
    assert_eq!(
        Config::parse(&observe, "t.toml").unwrap().gateway.mode,
        Mode::Observe
    );
    let text = with("[gateway]\n", "[gateway]\nmode = \"watch\"\n");
    let e = errors(&text);
    assert_eq!(e.len(), 1, "{e:?}");
    assert_eq!(e[0].key, "gateway.mode");
    assert_eq!(e[0].line, Some(line_of(&text, "mode = \"watch\"")));
    assert!(e[0].message.contains("\"observe\""), "{}", e[0].message);
}

#[test]
fn reports_need_sync_and_rules_of_known_stages_and_reasons() {
    let reports = "\n[reports]\n[[reports.rules]]\nname = \"r\"\nstage = \"checkvalue\"\nreason = \"forged\"\ncount = 0\nwindow_s = 60\n[[reports.rules]]\nname = \"r\"\ncount = 1\nwindow_s = 1\n";
    let e = errors(&format!("{DEFAULT_TOML}{reports}"));
    let keys: Vec<&str> = e.iter().map(|e| e.key.as_str()).collect();
    assert_eq!(
        keys,
        [
            "reports",
            "reports.rules.stage",
            "reports.rules.reason",
            "reports.rules.count",
            "reports.rules.name"
        ],
        "{e:?}"
    );
    assert!(e[1].message.contains("check_value"), "{}", e[1].message);
}
