//! The authority's bounds and error answers over real sockets: oversize bodies and heads,
//! malformed bodies, unknown routes and methods, a certificate of the authority's CA naming no
//! known gateway, a connection that sends nothing. Each refusal is followed by a request that
//! passes.

mod common;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::Method;
use m2mguard::authority::client::Client;
use m2mguard::authority::material::Ca;
use m2mguard::tls::KeyPair;
use rustls_pki_types::ServerName;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use common::authority::Setup;

async fn status(client: &Client, method: Method, path: &str, body: &'static [u8]) -> u16 {
    let reply = client
        .send(method, path, Bytes::from_static(body))
        .await
        .unwrap();
    reply.status.as_u16()
}

#[tokio::test]
async fn malformed_and_oversize_requests_get_their_documented_answers() {
    let setup = Setup::new("").await;
    let running = setup.start().await;
    let op = setup.operator();
    let big = Bytes::from(vec![b' '; 70 * 1024]);
    let reply = op.send(Method::POST, "/v1/nodes", big).await.unwrap();
    assert_eq!(reply.status, 413, "a body over 64 KiB");
    assert_eq!(
        status(&op, Method::POST, "/v1/nodes", b"{not json").await,
        400
    );
    assert_eq!(
        status(
            &op,
            Method::POST,
            "/v1/nodes",
            br#"{"id":"Ca","colour":"red"}"#
        )
        .await,
        400
    );
    assert_eq!(
        status(&op, Method::POST, "/v1/nodes", br#"{"id":""}"#).await,
        400
    );
    assert_eq!(status(&op, Method::GET, "/v1/nothing", b"").await, 404);
    assert_eq!(status(&op, Method::GET, "/elsewhere", b"").await, 404);
    assert_eq!(status(&op, Method::DELETE, "/v1/gateways", b"").await, 405);
    assert_eq!(status(&op, Method::POST, "/v1/feed/head", b"").await, 405);
    assert_eq!(
        status(&op, Method::GET, "/v1/feed/records", b"").await,
        400,
        "after is required"
    );
    assert_eq!(status(&op, Method::GET, "/v1/nodes/Cnone", b"").await, 404);
    assert_eq!(
        status(&op, Method::POST, "/v1/nodes", br#"{"id":"Ca"}"#).await,
        200
    );
    running.shutdown().await;
}

#[tokio::test]
async fn a_certificate_of_the_authoritys_ca_for_no_known_gateway_is_401() {
    let setup = Setup::new("").await;
    let running = setup.start().await;
    let ca = Ca::load(&setup.path("ca.crt"), &setup.path("ca.key")).unwrap();
    let issued = ca.issue("gw-unknown", &[]).unwrap();
    let dir = setup.dir.path();
    std::fs::write(dir.join("u.crt"), issued.cert_pem).unwrap();
    std::fs::write(dir.join("u.key"), issued.key_pem).unwrap();
    let identity = KeyPair::load(&dir.join("u.crt"), &dir.join("u.key")).unwrap();
    let stranger = Client::new(&setup.url(), &setup.ca(), Some(&identity), None).unwrap();
    assert_eq!(
        status(&stranger, Method::GET, "/v1/feed/head", b"").await,
        401
    );
    let gw = setup.gateway("gw-a").await;
    assert_eq!(gw.get("/v1/feed/head").await.status, 200);
    running.shutdown().await;
}

async fn tls(setup: &Setup) -> tokio_rustls::client::TlsStream<TcpStream> {
    let config = m2mguard::tls::client_config(&setup.ca(), None).unwrap();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = TcpStream::connect(setup.addr()).await.unwrap();
    let name = ServerName::try_from("127.0.0.1").unwrap();
    connector.connect(name, tcp).await.unwrap()
}

#[tokio::test]
async fn an_oversize_request_head_is_refused_and_the_next_request_passes() {
    let setup = Setup::new("").await;
    let running = setup.start().await;
    let mut stream = tls(&setup).await;
    let filler = "a".repeat(17 * 1024);
    let head = format!("GET /v1/nodes HTTP/1.1\r\nhost: x\r\nx-filler: {filler}\r\n\r\n");
    let _ = stream.write_all(head.as_bytes()).await;
    let mut answer = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(30), stream.read_to_end(&mut answer)).await;
    assert!(read.is_ok(), "the connection is answered and closed");
    let text = String::from_utf8_lossy(&answer);
    assert!(text.starts_with("HTTP/1.1 431"), "{text}");
    assert_eq!(
        status(&setup.operator(), Method::GET, "/v1/nodes", b"").await,
        200
    );
    running.shutdown().await;
}

#[tokio::test]
async fn a_connection_that_sends_nothing_is_closed_and_others_are_served() {
    let setup = Setup::new("").await;
    let running = setup.start().await;
    let mut silent = TcpStream::connect(setup.addr()).await.unwrap();
    let mut byte = [0u8; 1];
    // Closed after the 10 s handshake bound; 30 s is only a generous limit for the test.
    let read = tokio::time::timeout(Duration::from_secs(30), silent.read(&mut byte)).await;
    assert!(
        matches!(read, Ok(Ok(0)) | Ok(Err(_))),
        "the silent connection is closed"
    );
    assert_eq!(
        status(&setup.operator(), Method::GET, "/v1/nodes", b"").await,
        200
    );
    running.shutdown().await;
}
