//! The HTTP binding over real sockets: pass-through fidelity, denials, malformed and oversized
//! requests, upstream failures, node status, mTLS identity binding, HTTP/2, metrics, reload.
//! Every attack test ends with a legitimate request that passes.

mod common;

use std::sync::atomic::Ordering;

use bytes::Bytes;
use common::*;
use http::StatusCode;
use http_body_util::Full;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use m2mguard::admin::client::AdminClient;

/// Sends the `request` made for a fresh gateway: the refusal came as expected, nothing reached
/// the upstream, and `fr`'s legitimate request still passes.
async fn refused_then_serving(
    request: impl FnOnce(&TestGateway) -> http::Request<Full<Bytes>>,
    expected: (StatusCode, &str),
    fr: &str,
) {
    let echo = echo_upstream().await;
    let gw = gateway(echo.addr).await;
    let answer = send(&client(), request(&gw)).await;
    assert_eq!((answer.status, answer.rsc()), expected, "{answer:?}");
    assert_eq!(
        echo.hits.load(Ordering::SeqCst),
        0,
        "nothing reached the upstream"
    );
    assert_eq!(
        retrieve(&client(), gw.http(), fr).await.status,
        StatusCode::CREATED
    );
    gw.gateway.shutdown().await;
}

fn create_request(base: std::net::SocketAddr, fr: &str) -> http::Request<Full<Bytes>> {
    onem2m(
        "POST",
        format!("http://{base}/~/id-in/cse-in/meter?rcn=1&lbl=a+b"),
        fr,
        "req-1",
    )
    .header("Content-Type", "application/json;ty=4")
    .header("X-M2M-OT", "20261128T101500")
    .header("X-M2M-RTU", "http://127.0.0.1:9/notify")
    .header("X-Custom", "passes")
    .body(Full::new(Bytes::from_static(
        br#"{"m2m:cin":{"con":"21.5"}}"#,
    )))
    .unwrap()
}

#[tokio::test]
async fn allowed_request_and_its_answer_pass_unchanged() {
    let echo = echo_upstream().await;
    let gw = gateway(echo.addr).await;
    let client = client();
    let direct = send(&client, create_request(echo.addr, "Cmeter")).await;
    let through = send(&client, create_request(gw.http(), "Cmeter")).await;

    assert_eq!(through.status, StatusCode::CREATED);
    assert_eq!(
        through.json(),
        direct.json(),
        "upstream saw the same request"
    );
    for name in [
        "x-m2m-rsc",
        "x-m2m-ri",
        "content-location",
        "content-type",
        "x-m2m-custom",
    ] {
        assert_eq!(
            through.headers.get(name),
            direct.headers.get(name),
            "{name}"
        );
    }
    let seen = through.json();
    assert_eq!(seen["uri"], "/~/id-in/cse-in/meter?rcn=1&lbl=a+b");
    assert_eq!(seen["headers"]["content-type"], "application/json;ty=4");
    assert_eq!(seen["headers"]["x-m2m-ot"], "20261128T101500");
    assert_eq!(seen["headers"]["x-custom"], "passes");
    assert_eq!(seen["body"], r#"{"m2m:cin":{"con":"21.5"}}"#);
    gw.gateway.shutdown().await;
}

#[tokio::test]
async fn denied_request_gets_4103_naming_only_the_class_and_never_reaches_upstream() {
    let echo = echo_upstream().await;
    let gw = gateway(echo.addr).await;
    let client = client();
    let request = gw
        .request("DELETE", "/cse-in/x", "Cmeter", "del-1")
        .body(Full::default())
        .unwrap();
    let denied = send(&client, request).await;
    assert_eq!(denied.status, StatusCode::FORBIDDEN);
    assert_eq!(denied.rsc(), "4103");
    assert_eq!(denied.headers.get("x-m2m-ri").unwrap(), "del-1");
    assert_eq!(
        denied.json(),
        serde_json::json!({ "m2m:dbg": "access denied by policy" })
    );
    assert_eq!(echo.hits.load(Ordering::SeqCst), 0);

    assert_eq!(
        retrieve(&client, gw.http(), "Cmeter").await.status,
        StatusCode::CREATED
    );
    assert_eq!(echo.hits.load(Ordering::SeqCst), 1);
    gw.gateway.shutdown().await;
}

#[tokio::test]
async fn malformed_requests_get_4000_and_the_gateway_carries_on() {
    let echo = echo_upstream().await;
    let gw = gateway(echo.addr).await;
    let client = client();
    let base = gw.http();
    let cases = [
        http::Request::get(format!("http://{base}/cse-in"))
            .header("X-M2M-RI", "1")
            .body(Full::default())
            .unwrap(),
        http::Request::get(format!("http://{base}/cse-in"))
            .header("X-M2M-Origin", "Cmeter")
            .body(Full::default())
            .unwrap(),
        onem2m("PATCH", format!("http://{base}/cse-in"), "Cmeter", "p")
            .body(Full::default())
            .unwrap(),
        onem2m(
            "GET",
            format!("http://{base}/cse-in/meter-01/../lamp-01"),
            "Cmeter",
            "t",
        )
        .body(Full::default())
        .unwrap(),
        onem2m(
            "GET",
            format!("http://{base}/cse-in/meter-01/%2e%2e/lamp"),
            "Cmeter",
            "t",
        )
        .body(Full::default())
        .unwrap(),
        onem2m("POST", format!("http://{base}/cse-in"), "Cmeter", "ty")
            .header("Content-Type", "application/json;ty=x")
            .body(Full::default())
            .unwrap(),
    ];
    for request in cases {
        let what = format!("{} {}", request.method(), request.uri());
        let answer = send(&client, request).await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{what}");
        assert_eq!(answer.rsc(), "4000", "{what}");
        assert!(answer.json()["m2m:dbg"].is_string(), "{what}");
    }
    assert_eq!(echo.hits.load(Ordering::SeqCst), 0);
    assert_eq!(
        retrieve(&client, base, "Cmeter").await.status,
        StatusCode::CREATED
    );
    gw.gateway.shutdown().await;
}

#[tokio::test]
async fn oversized_body_and_headers_get_4000_and_the_gateway_carries_on() {
    let echo = echo_upstream().await;
    let gw = gateway(echo.addr).await;
    let client = client();
    let base = gw.http();
    let big_body = onem2m("POST", format!("http://{base}/cse-in"), "Cmeter", "big")
        .header("Content-Type", "application/json;ty=4")
        .body(Full::new(Bytes::from(vec![b'x'; 5000])))
        .unwrap();
    let answer = send(&client, big_body).await;
    assert_eq!(
        (answer.status, answer.rsc()),
        (StatusCode::PAYLOAD_TOO_LARGE, "4000")
    );

    let big_header = onem2m("GET", format!("http://{base}/cse-in"), "Cmeter", "hdr")
        .header("X-Padding", "p".repeat(3000))
        .body(Full::default())
        .unwrap();
    let answer = send(&client, big_header).await;
    assert_eq!(
        (answer.status, answer.rsc()),
        (StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE, "4000")
    );

    assert_eq!(echo.hits.load(Ordering::SeqCst), 0);
    assert_eq!(
        retrieve(&client, base, "Cmeter").await.status,
        StatusCode::CREATED
    );
    gw.gateway.shutdown().await;
}

/// A gateway in front of `upstream` answers an allowed request with 5103.
async fn allowed_request_gets_5103(upstream: std::net::SocketAddr) {
    let gw = gateway(upstream).await;
    let answer = retrieve(&client(), gw.http(), "Cmeter").await;
    assert_eq!(
        (answer.status, answer.rsc()),
        (StatusCode::NOT_FOUND, "5103")
    );
    gw.gateway.shutdown().await;
}

#[tokio::test]
async fn unreachable_upstream_gets_5103() {
    allowed_request_gets_5103(closed_port().await).await;
}

#[tokio::test]
async fn silent_upstream_gets_5103_instead_of_a_hang() {
    // `send` fails the test if nothing comes back within 10 s; the configured timeout is 500 ms.
    allowed_request_gets_5103(silent_upstream().await).await;
}

#[tokio::test]
async fn deactivated_node_is_blocked_from_its_next_request_while_others_pass() {
    let echo = echo_upstream().await;
    let gw = gateway(echo.addr).await;
    let client = client();
    let admin = AdminClient::new(gw.gateway.admin_addr);
    assert_eq!(
        retrieve(&client, gw.http(), "Clamp").await.status,
        StatusCode::CREATED
    );

    let node = admin.deactivate("Clamp").await.unwrap();
    assert_eq!(node["status"], "deactivated");
    let answer = retrieve(&client, gw.http(), "Clamp").await;
    assert_eq!(
        (answer.status, answer.rsc()),
        (StatusCode::FORBIDDEN, "4103")
    );
    assert_eq!(
        answer.json()["m2m:dbg"],
        "access denied: originator is not active"
    );
    assert_eq!(
        retrieve(&client, gw.http(), "Cmeter").await.status,
        StatusCode::CREATED
    );

    admin.activate("Clamp").await.unwrap();
    assert_eq!(
        retrieve(&client, gw.http(), "Clamp").await.status,
        StatusCode::CREATED
    );
    gw.gateway.shutdown().await;
}

#[tokio::test]
async fn unknown_node_cannot_be_activated_through_the_admin_api() {
    let gw = gateway(echo_upstream().await.addr).await;
    let admin = AdminClient::new(gw.gateway.admin_addr);
    let err = admin.activate("Cintruder").await.unwrap_err();
    assert!(err.to_string().contains("404"), "{err}");
    let answer = retrieve(&client(), gw.http(), "Cintruder").await;
    assert_eq!(answer.rsc(), "4103");
    gw.gateway.shutdown().await;
}

#[tokio::test]
async fn with_mtls_the_originator_must_be_the_certificate_identity() {
    let pki = Pki::new();
    pki.issue("meter", &[], "Cmeter");
    pki.issue("nameless", &[], "");
    let echo = echo_upstream().await;
    let gw = gateway_with(echo.addr, POLICIES, &tls_section(&pki)).await;
    let url = format!("https://127.0.0.1:{}/cse-in", gw.http().port());
    let client = tls_client(&pki, Some("meter"));

    let spoofed = send(
        &client,
        onem2m("GET", url.clone(), "CAdmin", "s")
            .body(Full::default())
            .unwrap(),
    )
    .await;
    assert_eq!(
        (spoofed.status, spoofed.rsc()),
        (StatusCode::FORBIDDEN, "4103")
    );
    assert_eq!(
        spoofed.json()["m2m:dbg"],
        "access denied: originator does not match the authenticated identity"
    );

    let anonymous = tls_client(&pki, None);
    let refused = anonymous
        .request(
            onem2m("GET", url.clone(), "Cmeter", "a")
                .body(Full::default())
                .unwrap(),
        )
        .await;
    assert!(
        refused.is_err(),
        "a client without a certificate must not get through"
    );
    assert_eq!(echo.hits.load(Ordering::SeqCst), 0);

    let legit = send(
        &client,
        onem2m("GET", url, "Cmeter", "l")
            .body(Full::default())
            .unwrap(),
    )
    .await;
    assert_eq!(legit.status, StatusCode::CREATED);
    assert_eq!(legit.json()["headers"]["x-m2m-origin"], "Cmeter");
    gw.gateway.shutdown().await;
}

#[tokio::test]
async fn http2_requests_are_guarded_and_forwarded() {
    let echo = echo_upstream().await;
    let gw = gateway(echo.addr).await;
    let h2: HttpClient = Client::builder(TokioExecutor::new())
        .http2_only(true)
        .build_http();
    let denied = send(
        &h2,
        gw.request("GET", "/cse-in", "Cnobody", "d")
            .body(Full::default())
            .unwrap(),
    )
    .await;
    assert_eq!(denied.rsc(), "4103");
    let answer = send(
        &h2,
        gw.request("GET", "/cse-in", "Cmeter", "h2")
            .body(Full::default())
            .unwrap(),
    )
    .await;
    assert_eq!(answer.status, StatusCode::CREATED);
    assert_eq!(answer.json()["headers"]["x-m2m-ri"], "h2");
    gw.gateway.shutdown().await;
}

#[tokio::test]
async fn metrics_count_requests_by_verdict_and_stage() {
    let echo = echo_upstream().await;
    let gw = gateway(echo.addr).await;
    let client = client();
    retrieve(&client, gw.http(), "Cmeter").await;
    retrieve(&client, gw.http(), "Cnobody").await;
    let request = http::Request::get(format!("http://{}/metrics", gw.gateway.admin_addr))
        .body(Full::default())
        .unwrap();
    let text = String::from_utf8(send(&client, request).await.body.to_vec()).unwrap();
    for needle in [
        r#"m2mguard_requests_total{protocol="http",operation="retrieve",verdict="allow",stage=""} 1"#,
        r#"m2mguard_requests_total{protocol="http",operation="retrieve",verdict="deny",stage="status"} 1"#,
        "m2mguard_decision_seconds_count{protocol=\"http\"} 2",
        "m2mguard_upstream_seconds_count{protocol=\"http\"} 1",
    ] {
        assert!(text.contains(needle), "missing {needle} in\n{text}");
    }
    gw.gateway.shutdown().await;
}

#[tokio::test]
async fn reload_applies_a_valid_set_and_keeps_the_old_one_on_error() {
    let dir = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(POLICIES).unwrap() {
        let path = entry.unwrap().path();
        std::fs::copy(&path, dir.path().join(path.file_name().unwrap())).unwrap();
    }
    let echo = echo_upstream().await;
    let gw = gateway_with(echo.addr, dir.path().to_str().unwrap(), "").await;
    let admin = AdminClient::new(gw.gateway.admin_addr);
    // One connection for the whole test: reloads must not drop it.
    let stream = tokio::net::TcpStream::connect(gw.http()).await.unwrap();
    let (mut conn, driver) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .unwrap();
    tokio::spawn(driver);
    let mut rsc_of = async |fr: &str| {
        let request = onem2m("GET", "/cse-in".into(), fr, "r")
            .header("Host", "gw")
            .body(Full::<Bytes>::default())
            .unwrap();
        let response = conn
            .send_request(request)
            .await
            .expect("the connection survived");
        response.headers()["x-m2m-rsc"].to_str().unwrap().to_owned()
    };
    assert_eq!(rsc_of("Cmeter").await, "2001");

    std::fs::write(
        dir.path().join("90-broken.cedar"),
        "forbid (principal, action, resource) when { principal.nope };",
    )
    .unwrap();
    let err = admin.reload().await.unwrap_err().to_string();
    assert!(
        err.contains("422") && err.contains("90-broken.cedar:1:"),
        "{err}"
    );
    assert_eq!(rsc_of("Cmeter").await, "2001", "old set still in force");

    std::fs::write(
        dir.path().join("90-broken.cedar"),
        "@id(\"freeze\")\nforbid (principal in Group::\"meters\", action, resource);",
    )
    .unwrap();
    assert!(admin.reload().await.unwrap()["reloaded"].as_bool().unwrap());
    assert_eq!(rsc_of("Cmeter").await, "4103");
    assert_eq!(rsc_of("Clamp").await, "2001");
    gw.gateway.shutdown().await;
}

#[tokio::test]
async fn percent_encoded_target_cannot_slip_past_a_path_policy() {
    let echo = echo_upstream().await;
    let gw = gateway(echo.addr).await;
    let client = client();
    for path in [
        "/cse-in/meter-01/data",
        "/cse-in/m%65ter-01/data",
        "/~/id-in/cse-in/%6d%65ter-01/data",
    ] {
        let request = gw
            .request("POST", path, "Clamp", "enc")
            .header("Content-Type", "application/json;ty=4")
            .body(Full::new(Bytes::from_static(
                br#"{"m2m:cin":{"con":"on"}}"#,
            )))
            .unwrap();
        let answer = send(&client, request).await;
        assert_eq!(
            (answer.status, answer.rsc()),
            (StatusCode::FORBIDDEN, "4103"),
            "{path}"
        );
    }
    assert_eq!(echo.hits.load(Ordering::SeqCst), 0);
    assert_eq!(
        retrieve(&client, gw.http(), "Clamp").await.status,
        StatusCode::CREATED
    );
    gw.gateway.shutdown().await;
}

#[tokio::test]
async fn repeated_originator_header_is_refused() {
    let request = |gw: &TestGateway| {
        gw.request("GET", "/cse-in", "Clamp", "dup")
            .header("X-M2M-Origin", "CAdmin")
            .body(Full::default())
            .unwrap()
    };
    refused_then_serving(request, (StatusCode::BAD_REQUEST, "4000"), "Clamp").await;
}

#[tokio::test]
async fn announced_oversized_body_is_refused_before_it_is_sent() {
    let echo = echo_upstream().await;
    let gw = gateway(echo.addr).await;
    let head = "POST /cse-in HTTP/1.1\r\nHost: x\r\nX-M2M-Origin: Cmeter\r\nX-M2M-RI: cl\r\n\
                Content-Type: application/json;ty=4\r\nContent-Length: 5000000\r\n\r\n{";
    let answer = raw_exchange(gw.http(), head).await;
    assert!(answer.starts_with("http/1.1 413"), "{answer}");
    assert!(answer.contains("x-m2m-rsc: 4000"), "{answer}");
    assert_eq!(
        retrieve(&client(), gw.http(), "Cmeter").await.status,
        StatusCode::CREATED
    );
    gw.gateway.shutdown().await;
}

#[tokio::test]
async fn https_upstream_is_verified_against_the_configured_ca() {
    let pki = Pki::new();
    let identity =
        m2mguard::tls::KeyPair::load(&pki.path("server.pem"), &pki.path("server.key")).unwrap();
    let acceptor =
        tokio_rustls::TlsAcceptor::from(m2mguard::tls::server_config(&identity, None).unwrap());
    let echo = echo_upstream_with(Some(acceptor)).await;
    let data = tempfile::tempdir().unwrap();
    let section = format!(
        "[http.upstream_tls]\nca = \"{}\"\n",
        pki.path("ca.pem").display()
    );
    let text = config_text(echo.addr, data.path(), POLICIES, &section).replace(
        &format!("http://{}", echo.addr),
        &format!("https://{}", echo.addr),
    );
    let config = m2mguard::config::Config::parse(&text, "t.toml").unwrap();
    let gw = m2mguard::gateway::Gateway::start(config).await.unwrap();
    let answer = retrieve(&client(), gw.http_addr, "Cmeter").await;
    assert_eq!((answer.status, answer.rsc()), (StatusCode::CREATED, "2001"));
    assert_eq!(echo.hits.load(Ordering::SeqCst), 1);
    gw.shutdown().await;

    // The same upstream, but trusted through an unrelated CA: the gateway must not talk to it.
    let other = Pki::new();
    let section = format!(
        "[http.upstream_tls]\nca = \"{}\"\n",
        other.path("ca.pem").display()
    );
    let text = config_text(echo.addr, data.path(), POLICIES, &section).replace(
        &format!("http://{}", echo.addr),
        &format!("https://{}", echo.addr),
    );
    let gw = m2mguard::gateway::Gateway::start(
        m2mguard::config::Config::parse(&text, "t.toml").unwrap(),
    )
    .await
    .unwrap();
    let answer = retrieve(&client(), gw.http_addr, "Cmeter").await;
    assert_eq!(
        (answer.status, answer.rsc()),
        (StatusCode::NOT_FOUND, "5103")
    );
    assert_eq!(echo.hits.load(Ordering::SeqCst), 1);
    gw.shutdown().await;
}

#[tokio::test]
async fn connection_header_cannot_strip_what_the_guard_decided_on() {
    let request = |gw: &TestGateway| {
        gw.request("POST", "/cse-in", "Cmeter", "conn")
            .header("Content-Type", "application/json;ty=3")
            .header("Connection", "X-M2M-Origin, Content-Type")
            .body(Full::new(Bytes::from_static(br#"{"m2m:cnt":{"rn":"x"}}"#)))
            .unwrap()
    };
    refused_then_serving(request, (StatusCode::BAD_REQUEST, "4000"), "Cmeter").await;
}

#[tokio::test]
async fn unknown_sender_is_refused_before_its_body_is_read() {
    let echo = echo_upstream().await;
    let gw = gateway(echo.addr).await;
    // Announces a body within the limit but sends none: only a decision on the head answers.
    let head = "POST /cse-in HTTP/1.1\r\nHost: x\r\nX-M2M-Origin: Cnobody\r\nX-M2M-RI: b\r\n\
                Content-Type: application/json;ty=4\r\nContent-Length: 4000\r\n\r\n";
    let answer = raw_exchange(gw.http(), head).await;
    assert!(answer.starts_with("http/1.1 403"), "{answer}");
    assert!(answer.contains("x-m2m-rsc: 4103"), "{answer}");
    assert_eq!(
        retrieve(&client(), gw.http(), "Cmeter").await.status,
        StatusCode::CREATED
    );
    gw.gateway.shutdown().await;
}

#[tokio::test]
async fn admin_api_refuses_web_pages_and_rebound_names() {
    let gw = gateway(echo_upstream().await.addr).await;
    let client = client();
    let admin = gw.gateway.admin_addr;
    let from_page = http::Request::post(format!("http://{admin}/v1/nodes/Clamp/deactivate"))
        .header("Origin", "http://evil.example")
        .body(Full::default())
        .unwrap();
    assert_eq!(send(&client, from_page).await.status, StatusCode::FORBIDDEN);
    let rebound = http::Request::post(format!("http://{admin}/v1/nodes/Clamp/deactivate"))
        .header("Host", "evil.example")
        .body(Full::default())
        .unwrap();
    assert_eq!(
        send(&client, rebound).await.status,
        StatusCode::MISDIRECTED_REQUEST
    );
    assert_eq!(
        retrieve(&client, gw.http(), "Clamp").await.status,
        StatusCode::CREATED,
        "still active"
    );
    gw.gateway.shutdown().await;
}

/// `GET <target>` to the admin API with these header lines; the status line, lower-cased.
async fn admin_status(gw: &TestGateway, target: &str, headers: &str) -> String {
    let head = format!("GET {target} HTTP/1.1\r\n{headers}Connection: close\r\n\r\n");
    let answer = raw_exchange(gw.gateway.admin_addr, &head).await;
    answer.lines().next().unwrap_or("").to_owned()
}

#[tokio::test]
async fn admin_api_refuses_two_hosts_foreign_hosts_and_absolute_targets() {
    let gw = gateway(echo_upstream().await.addr).await;
    let port = gw.gateway.admin_addr.port();
    let refused = [
        (
            "/healthz",
            "Host: 127.0.0.1\r\nHost: evil.example\r\n",
            "400",
        ),
        ("/healthz", "", "400"),
        ("/healthz", "Host: evil.example\r\n", "421"),
        ("/healthz", &format!("Host: evil.example:{port}\r\n"), "421"),
        ("http://evil.example/healthz", "Host: 127.0.0.1\r\n", "400"),
        ("http://127.0.0.1/healthz", "Host: 127.0.0.1\r\n", "400"),
    ];
    for (target, headers, status) in refused {
        let line = admin_status(&gw, target, headers).await;
        assert!(
            line.starts_with(&format!("http/1.1 {status}")),
            "{target} {headers:?}: {line}"
        );
    }
    for host in [
        format!("127.0.0.1:{port}"),
        "localhost".into(),
        format!("[::1]:{port}"),
    ] {
        let line = admin_status(&gw, "/healthz", &format!("Host: {host}\r\n")).await;
        assert!(line.starts_with("http/1.1 200"), "{host}: {line}");
    }
    gw.gateway.shutdown().await;
}
