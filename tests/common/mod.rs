//! Shared test fixtures: an echoing upstream, test certificates, a gateway on free loopback
//! ports, and HTTP(S) clients. Everything runs over real sockets on 127.0.0.1.
#![allow(dead_code)]

pub mod audit;
pub mod authority;
pub mod coap;
mod config;
pub mod crash;
pub mod mitm;
pub mod mqtt;
pub mod publish;
pub mod sync;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderValue, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use m2mguard::config::Config;
use m2mguard::gateway::Gateway;
use serde_json::{json, Value};
use tokio::net::TcpListener;

pub mod signed;

pub use config::{config_text, key_file, POLICIES};

/// An upstream that answers every request with a JSON description of what it received, and
/// a fixed set of response headers, and counts the requests that reached it.
pub struct Echo {
    pub addr: SocketAddr,
    pub hits: Arc<AtomicUsize>,
}

pub async fn echo_upstream() -> Echo {
    echo_upstream_with(None).await
}

/// The echo upstream, over TLS when `tls` is given.
pub async fn echo_upstream_with(tls: Option<tokio_rustls::TlsAcceptor>) -> Echo {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let hits = Arc::new(AtomicUsize::new(0));
    let counter = hits.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let (counter, tls) = (counter.clone(), tls.clone());
            tokio::spawn(async move {
                let service = service_fn(move |req: Request<hyper::body::Incoming>| {
                    counter.fetch_add(1, Ordering::SeqCst);
                    async move { Ok::<_, Infallible>(echo(req).await) }
                });
                let conn = http1::Builder::new();
                let _ = match tls {
                    None => conn.serve_connection(TokioIo::new(stream), service).await,
                    Some(tls) => match tls.accept(stream).await {
                        Ok(stream) => conn.serve_connection(TokioIo::new(stream), service).await,
                        Err(_) => return,
                    },
                };
            });
        }
    });
    Echo { addr, hits }
}

async fn echo(req: Request<hyper::body::Incoming>) -> Response<Full<Bytes>> {
    let (parts, body) = req.into_parts();
    let body = body.collect().await.unwrap().to_bytes();
    let headers: serde_json::Map<String, Value> = parts
        .headers
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_owned(),
                json!(v.to_str().unwrap_or("<binary>")),
            )
        })
        .collect();
    let description = json!({
        "method": parts.method.as_str(),
        "uri": parts.uri.to_string(),
        "headers": headers,
        "body": String::from_utf8_lossy(&body),
    });
    let mut response = Response::new(Full::new(Bytes::from(description.to_string())));
    *response.status_mut() = StatusCode::CREATED;
    let h = response.headers_mut();
    h.insert("x-m2m-rsc", HeaderValue::from_static("2001"));
    h.insert(
        "content-location",
        HeaderValue::from_static("/id-in/cse-in/echo-1"),
    );
    h.insert(
        "content-type",
        HeaderValue::from_static("application/json;ty=4"),
    );
    h.insert("x-m2m-custom", HeaderValue::from_static("kept"));
    if let Some(ri) = parts.headers.get("x-m2m-ri") {
        h.insert("x-m2m-ri", ri.clone());
    }
    response
}

/// An upstream that accepts connections and never answers.
pub async fn silent_upstream() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = listener.accept().await {
            held.push(stream);
        }
    });
    addr
}

/// A loopback address with nothing listening.
pub async fn closed_port() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    listener.local_addr().unwrap()
}

/// Test PKI: a CA, a server certificate for 127.0.0.1, client certificates by CN.
pub struct Pki {
    pub dir: tempfile::TempDir,
    ca: rcgen::Certificate,
    ca_key: rcgen::KeyPair,
}

impl Pki {
    pub fn new() -> Pki {
        let dir = tempfile::tempdir().unwrap();
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "m2mguard test CA");
        let ca = params.self_signed(&ca_key).unwrap();
        std::fs::write(dir.path().join("ca.pem"), ca.pem()).unwrap();
        let pki = Pki { dir, ca, ca_key };
        pki.issue("server", &["127.0.0.1", "localhost"], "127.0.0.1");
        pki
    }

    /// Issues `<name>.pem` and `<name>.key` with this CN (none if empty) and subject
    /// alternative names.
    pub fn issue(&self, name: &str, sans: &[&str], cn: &str) {
        let key = rcgen::KeyPair::generate().unwrap();
        let sans: Vec<String> = sans.iter().map(|s| s.to_string()).collect();
        let mut params = rcgen::CertificateParams::new(sans).unwrap();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, cn);
        let cert = params.signed_by(&key, &self.ca, &self.ca_key).unwrap();
        std::fs::write(self.path(&format!("{name}.pem")), cert.pem()).unwrap();
        std::fs::write(self.path(&format!("{name}.key")), key.serialize_pem()).unwrap();
    }

    pub fn path(&self, file: &str) -> PathBuf {
        self.dir.path().join(file)
    }
}

pub struct TestGateway {
    pub gateway: Gateway,
    pub data: tempfile::TempDir,
}

impl TestGateway {
    pub fn http(&self) -> SocketAddr {
        self.gateway.http_addr
    }

    /// A oneM2M request (as [`onem2m`]) for `path` on the gateway's HTTP listener.
    pub fn request(&self, method: &str, path: &str, fr: &str, rqi: &str) -> http::request::Builder {
        onem2m(method, format!("http://{}{path}", self.http()), fr, rqi)
    }
}

pub async fn gateway_with(upstream: SocketAddr, policies: &str, extra_http: &str) -> TestGateway {
    let data = tempfile::tempdir().unwrap();
    let text = config_text(upstream, data.path(), policies, extra_http);
    let config = Config::parse(&text, "test.toml").unwrap();
    let gateway = Gateway::start(config).await.unwrap();
    TestGateway { gateway, data }
}

pub async fn gateway(upstream: SocketAddr) -> TestGateway {
    gateway_with(upstream, POLICIES, "").await
}

pub type HttpClient = Client<HttpConnector, Full<Bytes>>;

pub fn client() -> HttpClient {
    Client::builder(TokioExecutor::new()).build_http()
}

/// A oneM2M request builder with the mandatory headers set.
pub fn onem2m(method: &str, uri: String, fr: &str, rqi: &str) -> http::request::Builder {
    Request::builder()
        .method(method)
        .uri(uri)
        .header("X-M2M-Origin", fr)
        .header("X-M2M-RI", rqi)
        .header("X-M2M-RVI", "4")
        .header("Accept", "application/json")
}

/// What came back, body collected.
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub headers: http::HeaderMap,
    pub body: Bytes,
}

impl Answer {
    pub fn rsc(&self) -> &str {
        self.headers
            .get("x-m2m-rsc")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap()
    }
}

pub async fn send<C>(client: &Client<C, Full<Bytes>>, request: Request<Full<Bytes>>) -> Answer
where
    C: hyper_util::client::legacy::connect::Connect + Clone + Send + Sync + 'static,
{
    let response = tokio::time::timeout(Duration::from_secs(10), client.request(request))
        .await
        .expect("the gateway answered within 10s")
        .expect("request sent");
    let status = response.status();
    let headers = response.headers().clone();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    Answer {
        status,
        headers,
        body,
    }
}

/// GET `/cse-in` as `fr` through `addr`: the canonical legitimate request.
pub async fn retrieve(client: &HttpClient, addr: SocketAddr, fr: &str) -> Answer {
    let request = onem2m("GET", format!("http://{addr}/cse-in"), fr, "legit")
        .body(Full::default())
        .unwrap();
    send(client, request).await
}

/// Writes `head` on a fresh connection and returns the first answer, lower-cased; fails the
/// test if none comes within 10 s.
pub async fn raw_exchange(addr: SocketAddr, head: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut answer = vec![0; 1024];
    let n = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut answer))
        .await
        .expect("answered within 10 s")
        .unwrap();
    String::from_utf8_lossy(&answer[..n]).to_ascii_lowercase()
}

/// An HTTPS client trusting the test CA, with the client certificate `identity` if given.
pub fn tls_client(
    pki: &Pki,
    identity: Option<&str>,
) -> Client<
    hyper_rustls::HttpsConnector<hyper_util::client::legacy::connect::HttpConnector>,
    Full<Bytes>,
> {
    let ca = m2mguard::tls::load_certs(&pki.path("ca.pem")).unwrap();
    let pair = identity.map(|name| {
        m2mguard::tls::KeyPair::load(
            &pki.path(&format!("{name}.pem")),
            &pki.path(&format!("{name}.key")),
        )
        .unwrap()
    });
    let config = m2mguard::tls::client_config(&ca, pair.as_ref()).unwrap();
    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(config)
        .https_only()
        .enable_http1()
        .build();
    Client::builder(TokioExecutor::new()).build(connector)
}

/// `[http.tls]` with the test server certificate, requiring client certificates.
pub fn tls_section(pki: &Pki) -> String {
    tls_table(pki, "http.tls")
}

/// The table `[<name>]` (`http.tls`, `mqtt.tls`) with the test server certificate, requiring
/// client certificates.
pub fn tls_table(pki: &Pki, name: &str) -> String {
    format!(
        "[{name}]\ncert = \"{}\"\nkey = \"{}\"\nclient_ca = \"{}\"\n",
        pki.path("server.pem").display(),
        pki.path("server.key").display(),
        pki.path("ca.pem").display()
    )
}
