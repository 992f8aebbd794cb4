//! A man in the middle between a gateway and the authority, for the sync's attack tests: it
//! terminates the gateway's TLS with a certificate of its own CA (which the gateway under test
//! trusts), forwards every request to the real authority as that gateway (its client
//! certificate), and tampers with what comes back as [`Attack`] says.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::{BodyExt, Full};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use m2mguard::authority::client::Client;
use m2mguard::feed::record::Record;
use m2mguard::feed::{jws, Head, SigningKey};
use tokio::net::TcpListener;

use super::Pki;

/// What the man in the middle does to the authority's answers.
#[derive(Clone)]
pub enum Attack {
    /// Nothing: every answer as the authority gave it.
    Pass,
    /// One byte of the first record of every page flipped.
    FlipByte,
    /// Every page asked for answered with the feed's first records (already applied).
    Replay,
    /// The first two records of a page swapped.
    Reorder,
    /// The first record of every page dropped.
    Drop,
    /// Heads replaced by the first head seen under this attack, and no new records.
    Withhold,
    /// Records and heads re-signed by another key (a forked feed).
    Forge(Arc<SigningKey>),
}

pub struct Mitm {
    pub addr: SocketAddr,
    pub pki: Pki,
    attack: Arc<Mutex<Attack>>,
}

impl Mitm {
    /// Listens on a free loopback port in front of `upstream` (a client that reaches the
    /// authority as the gateway).
    pub async fn start(upstream: Client) -> Mitm {
        let pki = Pki::new();
        let identity =
            m2mguard::tls::KeyPair::load(&pki.path("server.pem"), &pki.path("server.key")).unwrap();
        let acceptor =
            tokio_rustls::TlsAcceptor::from(m2mguard::tls::server_config(&identity, None).unwrap());
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let attack = Arc::new(Mutex::new(Attack::Pass));
        let state = Arc::new(State {
            upstream,
            attack: attack.clone(),
            frozen: Mutex::new(None),
        });
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let (acceptor, state) = (acceptor.clone(), state.clone());
                tokio::spawn(async move {
                    let Ok(tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let service = service_fn(move |req| {
                        let state = state.clone();
                        async move { Ok::<_, Infallible>(state.relay(req).await) }
                    });
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(tls), service)
                        .await;
                });
            }
        });
        Mitm { addr, pki, attack }
    }

    pub fn set(&self, attack: Attack) {
        *self.attack.lock().unwrap() = attack;
    }
}

struct State {
    upstream: Client,
    attack: Arc<Mutex<Attack>>,
    frozen: Mutex<Option<Bytes>>,
}

impl State {
    async fn relay(&self, req: Request<hyper::body::Incoming>) -> Response<Full<Bytes>> {
        let method = req.method().clone();
        let path = req
            .uri()
            .path_and_query()
            .map_or("/".to_owned(), |p| p.to_string());
        let body = req.into_body().collect().await.unwrap().to_bytes();
        let records = path.starts_with("/v1/feed/records");
        let head = path == "/v1/feed/head";
        let mut reply = match self
            .upstream
            .send(method.clone(), &path, body.clone())
            .await
        {
            Ok(reply) => reply,
            Err(_) => return answer(502, Bytes::new()),
        };
        // The attack in force when the answer comes back (a long-poll may have been asked
        // before it was set).
        let attack = self.attack.lock().unwrap().clone();
        if !matches!(attack, Attack::Withhold) {
            *self.frozen.lock().unwrap() = None;
        }
        if records && matches!(attack, Attack::Replay) {
            let first = "/v1/feed/records?after=0&limit=1000";
            match self.upstream.send(method, first, body).await {
                Ok(replayed) => reply = replayed,
                Err(_) => return answer(502, Bytes::new()),
            }
        }
        if !reply.status.is_success() {
            return answer(reply.status.as_u16(), reply.body);
        }
        let body = match (&attack, records, head) {
            (Attack::FlipByte, true, _) => edit_lines(&reply.body, |lines| {
                if let Some(first) = lines.first_mut() {
                    let mut bytes = first.clone().into_bytes();
                    let i = bytes.len() / 2;
                    bytes[i] = if bytes[i] == b'A' { b'B' } else { b'A' };
                    *first = String::from_utf8(bytes).unwrap();
                }
            }),
            // Both need two records in a page: a page of one is held back until there are.
            (Attack::Reorder, true, _) => edit_lines(&reply.body, |lines| {
                if lines.len() >= 2 {
                    lines.swap(0, 1);
                } else {
                    lines.clear();
                }
            }),
            (Attack::Drop, true, _) => edit_lines(&reply.body, |lines| {
                if lines.len() >= 2 {
                    lines.remove(0);
                } else {
                    lines.clear();
                }
            }),
            (Attack::Withhold, true, _) => Bytes::new(),
            (Attack::Withhold, _, true) => {
                let mut frozen = self.frozen.lock().unwrap();
                frozen.get_or_insert_with(|| reply.body.clone()).clone()
            }
            (Attack::Forge(key), true, _) => edit_lines(&reply.body, |lines| {
                for line in lines.iter_mut() {
                    *line = resign(line, key, "m2mguard-record");
                }
            }),
            (Attack::Forge(key), _, true) => {
                let text = String::from_utf8_lossy(&reply.body).trim().to_owned();
                Bytes::from(resign(&text, key, "m2mguard-head"))
            }
            _ => reply.body,
        };
        answer(200, body)
    }
}

/// The payload of `compact` signed again by `key` (what a forger with its own key serves).
fn resign(compact: &str, key: &SigningKey, typ: &str) -> String {
    use base64::Engine as _;
    let payload = compact.split('.').nth(1).unwrap_or_default();
    let payload = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .unwrap_or_default();
    // Parse and re-serialise, as a forger's own producer would.
    let bytes = match typ {
        "m2mguard-head" => serde_json::to_vec(&serde_json::from_slice::<Head>(&payload).unwrap()),
        _ => serde_json::to_vec(&serde_json::from_slice::<Record>(&payload).unwrap()),
    }
    .unwrap();
    jws::sign(key, typ, &bytes)
}

fn edit_lines(body: &Bytes, edit: impl FnOnce(&mut Vec<String>)) -> Bytes {
    let mut lines: Vec<String> = String::from_utf8_lossy(body)
        .lines()
        .map(str::to_owned)
        .collect();
    edit(&mut lines);
    let mut out = String::new();
    for line in lines {
        out.push_str(&line);
        out.push('\n');
    }
    Bytes::from(out)
}

fn answer(status: u16, body: Bytes) -> Response<Full<Bytes>> {
    Response::builder()
        .status(status)
        .body(Full::new(body))
        .unwrap()
}
