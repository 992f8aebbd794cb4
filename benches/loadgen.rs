//! A load client for `scripts/load` (not a criterion bench): like `wrk -t1`, N keep-alive
//! HTTP/1.1 connections on one thread for a fixed time, but every request is a distinct oneM2M
//! request — fresh `X-M2M-RI`, current `X-M2M-OT` and, with a key, a check value over it with
//! the next sequence number — so that replay protection accepts each one once. Ids and
//! sequence numbers start from the run's start time in microseconds, so consecutive runs
//! against one gateway never collide. The same client
//! drives every path of a run (direct, nginx, gateway), so ratios compare like with like.
//!
//! cargo bench --bench loadgen -- URL [--connections N] [--seconds S] [--origin ID]
//!     [--method GET|POST] [--ty N] [--body-file F] [--key-file F --key-id ID] [--token JWT]
//!     [--cse-id /id-in]
//! Prints one line: `requests <n> seconds <s> rps <r> ok <n2xx> other <n> errors <n>`.
//! Run without a URL (as plain `cargo bench` does) it prints its usage and exits 0.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::{Method, Request, Uri};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use m2mguard::guard::check_value::sign;
use m2mguard::guard::replay::format_ot;
use m2mguard::primitive::{Operation, Peer, Primitive, Protocol};
use m2mguard::security::Secret;

struct Options {
    url: Uri,
    connections: usize,
    seconds: u64,
    origin: String,
    method: Method,
    ty: Option<u16>,
    body: Bytes,
    key: Option<(String, Secret)>,
    token: Option<String>,
    cse_id: String,
}

#[derive(Default)]
struct Counts {
    ok: AtomicU64,
    other: AtomicU64,
    errors: AtomicU64,
    seq: AtomicU64,
    run: u64,
}

fn main() {
    let Some(options) = options() else {
        eprintln!("loadgen: no URL given; see the doc comment in benches/loadgen.rs (used by scripts/load)");
        return;
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    // Every run continues above the last one's numbers: ids and sequence numbers from the
    // start time in microseconds, so runs against one gateway never replay each other.
    let run = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64);
    let counts = Arc::new(Counts {
        run,
        seq: AtomicU64::new(run),
        ..Counts::default()
    });
    let options = Arc::new(options);
    let started = Instant::now();
    runtime.block_on(async {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(options.seconds);
        let tasks: Vec<_> = (0..options.connections)
            .map(|c| tokio::spawn(connection(c, options.clone(), counts.clone(), deadline)))
            .collect();
        for t in tasks {
            let _ = t.await;
        }
    });
    let secs = started.elapsed().as_secs_f64();
    let (ok, other, errors) = (
        counts.ok.load(Relaxed),
        counts.other.load(Relaxed),
        counts.errors.load(Relaxed),
    );
    println!(
        "requests {} seconds {secs:.2} rps {:.0} ok {ok} other {other} errors {errors}",
        ok + other,
        (ok + other) as f64 / secs
    );
}

async fn connection(
    c: usize,
    o: Arc<Options>,
    counts: Arc<Counts>,
    deadline: tokio::time::Instant,
) {
    let authority = o.url.authority().map(|a| a.to_string()).unwrap_or_default();
    let Ok(stream) = tokio::net::TcpStream::connect(&authority).await else {
        counts.errors.fetch_add(1, Relaxed);
        return;
    };
    let _ = stream.set_nodelay(true);
    let Ok((mut sender, conn)) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await
    else {
        counts.errors.fetch_add(1, Relaxed);
        return;
    };
    tokio::spawn(conn);
    let mut n = 0u64;
    while tokio::time::Instant::now() < deadline {
        n += 1;
        let request = build(&o, &format!("lg-{}-{c}-{n}", counts.run), &counts);
        match sender.send_request(request).await {
            Ok(response) => {
                let ok = response.status().is_success();
                if response.into_body().collect().await.is_err() {
                    counts.errors.fetch_add(1, Relaxed);
                    return;
                }
                if ok { &counts.ok } else { &counts.other }.fetch_add(1, Relaxed);
            }
            Err(_) => {
                counts.errors.fetch_add(1, Relaxed);
                return;
            }
        }
    }
}

fn build(o: &Options, rqi: &str, counts: &Counts) -> Request<Full<Bytes>> {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let ot = format_ot(now);
    let mut b = Request::builder()
        .method(o.method.clone())
        .uri(o.url.path_and_query().map_or("/", |p| p.as_str()))
        .header("host", o.url.authority().map_or("", |a| a.as_str()))
        .header("x-m2m-origin", &o.origin)
        .header("x-m2m-ri", rqi)
        .header("x-m2m-rvi", "4")
        .header("x-m2m-ot", &ot);
    if let Some(ty) = o.ty {
        b = b.header("content-type", format!("application/json;ty={ty}"));
    }
    if let Some(token) = &o.token {
        b = b.header("authorization", format!("Bearer {token}"));
    }
    if let Some((key_id, secret)) = &o.key {
        let seq = counts.seq.fetch_add(1, Relaxed) + 1;
        let p = primitive(o, rqi, ot);
        b = b.header("x-m2m-as", sign(&p, key_id, secret, seq));
    }
    b.body(Full::new(o.body.clone())).unwrap()
}

/// The request as the gateway decodes it: CSE-relative paths are prefixed with the CSE-ID.
fn primitive(o: &Options, rqi: &str, ot: String) -> Primitive {
    let path = o.url.path();
    let to = match path.strip_prefix("/~") {
        Some(rest) => rest.to_owned(),
        None => format!("{}{path}", o.cse_id),
    };
    let op = match (o.method.as_str(), o.ty) {
        ("POST", Some(_)) => Operation::Create,
        ("POST", None) => Operation::Notify,
        ("PUT", _) => Operation::Update,
        ("DELETE", _) => Operation::Delete,
        _ => Operation::Retrieve,
    };
    let peer = Peer::unauthenticated(([127, 0, 0, 1], 0).into(), Protocol::Http);
    Primitive {
        ot: Some(ot),
        ty: o.ty,
        content: o.body.clone(),
        ..Primitive::new(op, to, o.origin.as_str(), rqi, peer)
    }
}

fn options() -> Option<Options> {
    let mut args = std::env::args().skip(1).filter(|a| a != "--bench");
    let url: Uri = args.next()?.parse().ok()?;
    let mut o = Options {
        url,
        connections: 32,
        seconds: 4,
        origin: "Cmeter-01".into(),
        method: Method::GET,
        ty: None,
        body: Bytes::new(),
        key: None,
        token: None,
        cse_id: "/id-in".into(),
    };
    let (mut key_file, mut key_id) = (None, None);
    while let Some(flag) = args.next() {
        let value = args
            .next()
            .unwrap_or_else(|| panic!("{flag} needs a value"));
        match flag.as_str() {
            "--connections" => o.connections = value.parse().expect("--connections"),
            "--seconds" => o.seconds = value.parse::<u64>().expect("--seconds").min(60),
            "--origin" => o.origin = value,
            "--method" => o.method = value.parse().expect("--method"),
            "--ty" => o.ty = Some(value.parse().expect("--ty")),
            "--body-file" => o.body = std::fs::read(&value).expect("--body-file").into(),
            "--key-file" => key_file = Some(value),
            "--key-id" => key_id = Some(value),
            "--token" => o.token = Some(value),
            "--cse-id" => o.cse_id = value,
            other => panic!("unknown option {other}"),
        }
    }
    if let (Some(file), Some(id)) = (key_file, key_id) {
        let text = std::fs::read_to_string(file).expect("--key-file");
        let text = text.trim();
        let bytes: Vec<u8> = (0..text.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&text[i..i + 2], 16).expect("hex key"))
            .collect();
        o.key = Some((id, Secret::new(&bytes)));
    }
    Some(o)
}
