//! Load generator and trivial upstream for `scripts/load_coap` (bounded in count and time); a
//! `harness = false` bench target so that it lives in `benches/`.
//!
//! `coap_load serve ADDR`: answers every confirmable GET with a piggy-backed 2.05 (rsc 2000, a
//! small JSON body) until killed. `coap_load run TARGET SECS MAX SOCKETS WINDOW`: from SOCKETS
//! loopback sockets, keeps WINDOW confirmable oneM2M retrieves in flight on each, stops after
//! SECS seconds or MAX answers, whichever comes first, and prints `answers=N secs=S rate=R`
//! (answers per second). Each socket first answers the gateway's Echo challenge, outside the
//! measured time. Lost datagrams are given up after 1 s and counted in `lost=`.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use coap_lite::{CoapOption, MessageClass, MessageType, Packet, RequestType, ResponseType};
use tokio::net::UdpSocket;

#[tokio::main]
async fn main() {
    // `cargo bench` runs every bench target with `--bench`: without a command, say what this
    // is and succeed.
    let args: Vec<String> = std::env::args().filter(|a| a != "--bench").collect();
    if args.len() == 1 {
        eprintln!("coap_load: a load tool for scripts/load_coap, not a criterion bench");
        return;
    }
    let usage = "usage: coap_load serve ADDR | coap_load run TARGET SECS MAX SOCKETS WINDOW";
    match args.get(1).map(String::as_str) {
        Some("serve") if args.len() == 3 => serve(args[2].parse().expect("ADDR")).await,
        Some("run") if args.len() == 7 => {
            let n = |i: usize| -> u64 { args[i].parse().expect(usage) };
            run(args[2].parse().expect("TARGET"), n(3), n(4), n(5), n(6)).await
        }
        _ => {
            eprintln!("{usage}");
            std::process::exit(64);
        }
    }
}

async fn serve(addr: SocketAddr) {
    let socket = UdpSocket::bind(addr).await.expect("bind");
    let mut buf = vec![0u8; 2048];
    let body = br#"{"m2m:cb":{"rn":"cse-in","ty":5}}"#.to_vec();
    loop {
        let Ok((n, from)) = socket.recv_from(&mut buf).await else {
            continue;
        };
        let Ok(request) = Packet::from_bytes(&buf[..n]) else {
            continue;
        };
        if request.header.get_type() != MessageType::Confirmable {
            continue;
        }
        let mut p = Packet::new();
        p.header.set_type(MessageType::Acknowledgement);
        p.header.message_id = request.header.message_id;
        p.header.code = MessageClass::Response(ResponseType::Content);
        p.set_token(request.get_token().to_vec());
        p.add_option(CoapOption::Unknown(307), vec![0x07, 0xd0]);
        p.payload = body.clone();
        if let Ok(bytes) = p.to_bytes() {
            let _ = socket.send_to(&bytes, from).await;
        }
    }
}

fn request(mid: u16, token: u32, echo: Option<&[u8]>) -> Vec<u8> {
    let mut p = Packet::new();
    p.header.set_type(MessageType::Confirmable);
    p.header.code = MessageClass::Request(RequestType::Get);
    p.header.message_id = mid;
    p.set_token(token.to_be_bytes().to_vec());
    p.add_option(CoapOption::UriPath, b"cse-in".to_vec());
    p.add_option(CoapOption::Unknown(279), b"CAdmin".to_vec());
    p.add_option(
        CoapOption::Unknown(283),
        format!("load-{token}").into_bytes(),
    );
    p.add_option(CoapOption::Unknown(271), b"4".to_vec());
    if let Some(echo) = echo {
        p.add_option(CoapOption::Unknown(252), echo.to_vec());
    }
    p.to_bytes().expect("small request")
}

async fn run(target: SocketAddr, secs: u64, max: u64, sockets: u64, window: u64) {
    let answers = Arc::new(AtomicU64::new(0));
    let lost = Arc::new(AtomicU64::new(0));
    let done = Arc::new(AtomicBool::new(false));
    let mut ready = Vec::new();
    for i in 0..sockets {
        let socket = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
        socket.connect(target).await.expect("connect");
        validate(&socket, i as u32).await;
        ready.push(socket);
    }
    let started = Instant::now();
    let deadline = started + Duration::from_secs(secs);
    let mut tasks = Vec::new();
    for (i, socket) in ready.into_iter().enumerate() {
        let (answers, lost, done) = (answers.clone(), lost.clone(), done.clone());
        tasks.push(tokio::spawn(async move {
            drive(socket, i as u32, window, max, deadline, answers, lost, done).await
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
    let took = started.elapsed().as_secs_f64();
    let n = answers.load(Ordering::Relaxed);
    println!(
        "answers={n} lost={} secs={took:.2} rate={:.0}",
        lost.load(Ordering::Relaxed),
        n as f64 / took
    );
}

/// One request, answering an Echo challenge if there is one: the source is then validated.
async fn validate(socket: &UdpSocket, i: u32) {
    let mut buf = vec![0u8; 2048];
    let mut echo: Option<Vec<u8>> = None;
    for attempt in 0..4u16 {
        let _ = socket
            .send(&request(
                attempt,
                i << 20 | u32::from(attempt),
                echo.as_deref(),
            ))
            .await;
        let Ok(Ok(n)) = tokio::time::timeout(Duration::from_secs(2), socket.recv(&mut buf)).await
        else {
            continue;
        };
        let Ok(p) = Packet::from_bytes(&buf[..n]) else {
            continue;
        };
        if p.header.code == MessageClass::Response(ResponseType::Unauthorized) {
            echo = p.get_first_option(CoapOption::Unknown(252)).cloned();
            continue;
        }
        return;
    }
    eprintln!("socket {i}: no answer while validating");
}

const MIDS_PER_SOCKET: u16 = 65_000;

#[allow(clippy::too_many_arguments)]
async fn drive(
    socket: UdpSocket,
    i: u32,
    window: u64,
    max: u64,
    deadline: Instant,
    answers: Arc<AtomicU64>,
    lost: Arc<AtomicU64>,
    done: Arc<AtomicBool>,
) {
    let mut buf = vec![0u8; 2048];
    let mut in_flight: HashMap<u16, Instant> = HashMap::new();
    let mut mid: u16 = 100;
    let mut token: u32 = i << 20 | 0x8000;
    loop {
        // A message id is never reused within one run (the gateway would rightly take it for
        // a retransmission): a socket stops after MIDS_PER_SOCKET requests.
        while (in_flight.len() as u64) < window
            && !done.load(Ordering::Relaxed)
            && mid < MIDS_PER_SOCKET
        {
            mid = mid.wrapping_add(1);
            token = token.wrapping_add(1);
            if socket.send(&request(mid, token, None)).await.is_ok() {
                in_flight.insert(mid, Instant::now());
            }
        }
        if in_flight.is_empty() {
            return;
        }
        let now = Instant::now();
        if now >= deadline {
            done.store(true, Ordering::Relaxed);
        }
        match tokio::time::timeout(Duration::from_millis(200), socket.recv(&mut buf)).await {
            Ok(Ok(n)) => {
                if let Ok(p) = Packet::from_bytes(&buf[..n]) {
                    if in_flight.remove(&p.header.message_id).is_some()
                        && answers.fetch_add(1, Ordering::Relaxed) + 1 >= max
                    {
                        done.store(true, Ordering::Relaxed);
                    }
                }
            }
            _ => {
                in_flight.retain(|_, sent| {
                    let keep = now.duration_since(*sent) < Duration::from_secs(1);
                    if !keep {
                        lost.fetch_add(1, Ordering::Relaxed);
                    }
                    keep
                });
                if done.load(Ordering::Relaxed) && now >= deadline + Duration::from_secs(1) {
                    return;
                }
            }
        }
    }
}
