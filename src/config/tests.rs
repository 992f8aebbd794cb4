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
