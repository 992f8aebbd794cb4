//! Connection-level defences over real sockets: connections that send no request head (no
//! byte at all, a partial HTTP/2 preface, nothing after a TLS handshake or after an answer)
//! are closed within the header timeout; connections over the per-source and total caps are
//! closed as they are accepted and counted. Every attack test ends with a legitimate request
//! that passes.

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use common::*;
use http::StatusCode;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio::task::JoinSet;

/// Generous bound for "closed by the gateway": the timeouts under test are 300 ms.
const CLOSED_WITHIN: Duration = Duration::from_secs(5);

/// The full HTTP/2 client preface; its prefixes are what the attack suite sends.
const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// Reads until the gateway closes `stream` (EOF or reset) and returns what came before; fails
/// the test if it is still open after [`CLOSED_WITHIN`].
async fn closed_by_gateway<S: AsyncRead + Unpin>(mut stream: S, what: &str) -> String {
    let mut seen = Vec::new();
    let read_to_close = async {
        let mut buf = [0u8; 1024];
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => seen.extend_from_slice(&buf[..n]),
            }
        }
    };
    if tokio::time::timeout(CLOSED_WITHIN, read_to_close)
        .await
        .is_err()
    {
        panic!("{what}: still open after {CLOSED_WITHIN:?}");
    }
    String::from_utf8_lossy(&seen).to_ascii_lowercase()
}

/// The value of the metric line that starts with `series` (name and labels), 0 if absent.
async fn metric(gw: &TestGateway, series: &str) -> f64 {
    let request = http::Request::get(format!("http://{}/metrics", gw.gateway.admin_addr))
        .body(Full::default())
        .unwrap();
    let text = String::from_utf8(send(&client(), request).await.body.to_vec()).unwrap();
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.trim().parse().ok())
        .unwrap_or(0.0)
}

/// Waits (polling the admin API, at most [`CLOSED_WITHIN`]) until `series` reads `value`.
async fn metric_reaches(gw: &TestGateway, series: &str, value: f64) {
    let reached = async {
        while metric(gw, series).await != value {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    if tokio::time::timeout(CLOSED_WITHIN, reached).await.is_err() {
        panic!("{series} is not {value} after {CLOSED_WITHIN:?}");
    }
}

async fn connect_from(source: &str, to: SocketAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket
        .bind(SocketAddr::new(source.parse().unwrap(), 0))
        .unwrap();
    socket.connect(to).await.unwrap()
}

const LEGIT_HEAD: &str = "GET /cse-in HTTP/1.1\r\nHost: gw\r\nX-M2M-Origin: Cmeter\r\n\
                          X-M2M-RI: raw\r\nX-M2M-RVI: 4\r\n\r\n";

#[tokio::test]
async fn silent_and_partial_preface_connections_are_closed_within_the_header_timeout() {
    let echo = echo_upstream().await;
    let gw = gateway_with(echo.addr, POLICIES, "header_read_timeout_ms = 300").await;
    let mut attacks = JoinSet::new();
    for i in 0..20 {
        let stream = TcpStream::connect(gw.http()).await.unwrap();
        attacks.spawn(async move { closed_by_gateway(stream, &format!("silent #{i}")).await });
    }
    for len in [1, 3, 8, 16, 18, 22] {
        let mut stream = TcpStream::connect(gw.http()).await.unwrap();
        stream.write_all(&PREFACE[..len]).await.unwrap();
        attacks.spawn(async move { closed_by_gateway(stream, &format!("preface[..{len}]")).await });
    }
    let mut partial_head = TcpStream::connect(gw.http()).await.unwrap();
    partial_head
        .write_all(b"GET /cse-in HTTP/1.1\r\nHost: gw\r\n")
        .await
        .unwrap();
    attacks.spawn(async move { closed_by_gateway(partial_head, "partial head").await });
    while let Some(seen) = attacks.join_next().await {
        assert!(!seen.unwrap().contains("201"), "nothing was served");
    }
    let timed_out = metric(
        &gw,
        "m2mguard_connections_timed_out_total{listener=\"http\"}",
    )
    .await;
    assert!(timed_out >= 26.0, "{timed_out}");
    assert_eq!(
        retrieve(&client(), gw.http(), "Cmeter").await.status,
        StatusCode::CREATED
    );
    assert_eq!(echo.hits.load(std::sync::atomic::Ordering::SeqCst), 1);
    gw.gateway.shutdown().await;
}

#[tokio::test]
async fn kept_alive_http1_connection_is_closed_when_idle_after_its_answer() {
    let echo = echo_upstream().await;
    let gw = gateway_with(echo.addr, POLICIES, "header_read_timeout_ms = 300").await;
    let mut stream = TcpStream::connect(gw.http()).await.unwrap();
    stream.write_all(LEGIT_HEAD.as_bytes()).await.unwrap();
    let seen = closed_by_gateway(stream, "idle keep-alive").await;
    assert!(seen.starts_with("http/1.1 201"), "{seen}");
    assert_eq!(
        retrieve(&client(), gw.http(), "Cmeter").await.status,
        StatusCode::CREATED
    );
    gw.gateway.shutdown().await;
}

#[tokio::test]
async fn http2_connection_without_open_streams_is_closed_when_idle() {
    let echo = echo_upstream().await;
    let gw = gateway_with(echo.addr, POLICIES, "header_read_timeout_ms = 300").await;
    let tcp = TcpStream::connect(gw.http()).await.unwrap();
    let (mut sender, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tcp))
            .await
            .unwrap();
    let driven = tokio::spawn(conn);
    let request = gw
        .request("GET", "/cse-in", "Cmeter", "h2")
        .body(Full::<Bytes>::default())
        .unwrap();
    let answer = sender.send_request(request).await.unwrap();
    assert_eq!(answer.status(), StatusCode::CREATED);
    let _ = answer.into_body().collect().await.unwrap();
    tokio::time::timeout(CLOSED_WITHIN, driven)
        .await
        .expect("the gateway closed the idle HTTP/2 connection")
        .unwrap()
        .ok();
    assert_eq!(
        retrieve(&client(), gw.http(), "Cmeter").await.status,
        StatusCode::CREATED
    );
    gw.gateway.shutdown().await;
}

#[tokio::test]
async fn https_connection_silent_before_or_after_its_handshake_is_closed() {
    let echo = echo_upstream().await;
    let pki = Pki::new();
    pki.issue("meter", &[], "Cmeter");
    let extra = format!("header_read_timeout_ms = 300\n{}", tls_section(&pki));
    let gw = gateway_with(echo.addr, POLICIES, &extra).await;

    let silent = TcpStream::connect(gw.http()).await.unwrap();
    closed_by_gateway(silent, "no ClientHello").await;

    let ca = m2mguard::tls::load_certs(&pki.path("ca.pem")).unwrap();
    let pair =
        m2mguard::tls::KeyPair::load(&pki.path("meter.pem"), &pki.path("meter.key")).unwrap();
    let config = m2mguard::tls::client_config(&ca, Some(&pair)).unwrap();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = TcpStream::connect(gw.http()).await.unwrap();
    let name = rustls_pki_types::ServerName::try_from("127.0.0.1").unwrap();
    let tls = connector.connect(name, tcp).await.expect("handshake");
    closed_by_gateway(tls, "silent after the handshake").await;

    let https = tls_client(&pki, Some("meter"));
    let request = onem2m(
        "GET",
        format!("https://{}/cse-in", gw.http()),
        "Cmeter",
        "ok",
    )
    .body(Full::default())
    .unwrap();
    assert_eq!(send(&https, request).await.status, StatusCode::CREATED);
    gw.gateway.shutdown().await;
}

#[tokio::test]
async fn connection_over_the_per_source_cap_is_closed_at_once_and_counted() {
    let echo = echo_upstream().await;
    let gw = gateway_with(echo.addr, POLICIES, "max_connections_per_source = 3").await;
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(TcpStream::connect(gw.http()).await.unwrap());
    }
    let excess = TcpStream::connect(gw.http()).await.unwrap();
    closed_by_gateway(excess, "4th connection").await;
    let refused = "m2mguard_connections_refused_total{listener=\"http\",reason=\"max_connections_per_source\"}";
    assert_eq!(metric(&gw, refused).await, 1.0);

    // The held connections are served, and closing one frees its slot.
    let mut first = held.remove(0);
    first.write_all(LEGIT_HEAD.as_bytes()).await.unwrap();
    let mut answer = [0u8; 16];
    first.read_exact(&mut answer).await.unwrap();
    assert!(answer.starts_with(b"HTTP/1.1 201"));
    drop(first);
    metric_reaches(&gw, "m2mguard_connections_open{listener=\"http\"}", 2.0).await;
    assert_eq!(
        retrieve(&client(), gw.http(), "Cmeter").await.status,
        StatusCode::CREATED
    );
    assert_eq!(metric(&gw, refused).await, 1.0, "no further refusal");
    gw.gateway.shutdown().await;
}

#[cfg(target_os = "linux")] // 127.0.0.2 and .3 are loopback there
#[tokio::test]
async fn connection_over_the_listener_cap_is_closed_whatever_its_source() {
    let echo = echo_upstream().await;
    let caps = "max_connections = 3\nmax_connections_per_source = 2";
    let gw = gateway_with(echo.addr, POLICIES, caps).await;
    let mut held = vec![
        connect_from("127.0.0.1", gw.http()).await,
        connect_from("127.0.0.1", gw.http()).await,
        connect_from("127.0.0.2", gw.http()).await,
    ];
    let excess = connect_from("127.0.0.3", gw.http()).await;
    closed_by_gateway(excess, "4th connection, fresh source").await;
    let refused =
        "m2mguard_connections_refused_total{listener=\"http\",reason=\"max_connections\"}";
    assert_eq!(metric(&gw, refused).await, 1.0);

    drop(held.pop());
    metric_reaches(&gw, "m2mguard_connections_open{listener=\"http\"}", 2.0).await;
    let mut fresh = connect_from("127.0.0.3", gw.http()).await;
    fresh.write_all(LEGIT_HEAD.as_bytes()).await.unwrap();
    let mut answer = [0u8; 16];
    fresh.read_exact(&mut answer).await.unwrap();
    assert!(answer.starts_with(b"HTTP/1.1 201"));
    gw.gateway.shutdown().await;
}

#[tokio::test]
async fn mqtt_connection_over_the_per_source_cap_is_closed_at_once_and_counted() {
    let broker = mqtt::broker().await;
    let gw = mqtt::gateway_with(broker, "max_connections_per_source = 2").await;
    let addr = mqtt::mqtt_addr(&gw);
    let first = TcpStream::connect(addr).await.unwrap();
    let _second = TcpStream::connect(addr).await.unwrap();
    let excess = TcpStream::connect(addr).await.unwrap();
    closed_by_gateway(excess, "3rd MQTT connection").await;
    let refused = "m2mguard_connections_refused_total{listener=\"mqtt\",reason=\"max_connections_per_source\"}";
    assert_eq!(metric(&gw, refused).await, 1.0);

    drop(first);
    metric_reaches(&gw, "m2mguard_connections_open{listener=\"mqtt\"}", 1.0).await;
    let _session = mqtt::connect(addr, "A::Cmeter").await;
    gw.gateway.shutdown().await;
}
