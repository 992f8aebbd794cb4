//! CoAP fixtures over real UDP sockets on 127.0.0.1, written with coap-lite: an upstream that
//! records what it receives and answers (piggy-backed, separate, Block2, Observe), a client
//! that answers Echo challenges like libcoap does (or, for legacy clients, does not), and a gateway with a `[coap]` table.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use coap_lite::{CoapOption, MessageClass, MessageType, Packet, RequestType, ResponseType};
use m2mguard::binding::coap::answer_to;
use m2mguard::config::Config;
use m2mguard::gateway::Gateway;
use tokio::net::UdpSocket;

use super::{config_text, TestGateway, POLICIES};

pub const FR: u16 = 279;
pub const RQI: u16 = 283;
pub const RSC: u16 = 307;
pub const TY: u16 = 267;
pub const RVI: u16 = 271;
pub const ECHO: u16 = 252;
/// An odd (so "critical") option no one but the upstream knows, in requests and answers.
pub const CUSTOM: u16 = 2053;
/// The body the upstream serves as `big`, in blocks when asked.
pub const BIG_LEN: usize = 700;

pub fn big_body() -> Vec<u8> {
    (0..BIG_LEN).map(|i| b'a' + (i % 26) as u8).collect()
}

/// The in-process upstream CoAP server.
pub struct Upstream {
    pub addr: SocketAddr,
    /// Every datagram received that was a request, in order.
    pub requests: Arc<Mutex<Vec<Packet>>>,
    /// Every empty ACK received (for our separate responses and notifications).
    pub acks: Arc<Mutex<Vec<u16>>>,
}

impl Upstream {
    pub fn hits(&self) -> usize {
        self.requests.lock().unwrap().len()
    }

    pub fn last(&self) -> Packet {
        self.requests.lock().unwrap().last().cloned().unwrap()
    }
}

pub async fn upstream() -> Upstream {
    let socket = Arc::new(UdpSocket::bind("127.0.0.1:0").await.unwrap());
    let addr = socket.local_addr().unwrap();
    let requests = Arc::new(Mutex::new(Vec::new()));
    let acks = Arc::new(Mutex::new(Vec::new()));
    let (seen, acked) = (requests.clone(), acks.clone());
    tokio::spawn(async move {
        let mut buf = vec![0u8; 65_535];
        let mut mid = 0x4000u16;
        while let Ok((n, from)) = socket.recv_from(&mut buf).await {
            let Ok(request) = Packet::from_bytes(&buf[..n]) else {
                continue;
            };
            match request.header.code {
                MessageClass::Empty => {
                    if request.header.get_type() == MessageType::Acknowledgement {
                        acked.lock().unwrap().push(request.header.message_id);
                    }
                    continue;
                }
                MessageClass::Request(_) => seen.lock().unwrap().push(request.clone()),
                _ => continue,
            }
            mid = mid.wrapping_add(10);
            serve(&socket, from, request, mid).await;
        }
    });
    Upstream {
        addr,
        requests,
        acks,
    }
}

fn last_segment(p: &Packet) -> String {
    p.get_option(CoapOption::UriPath)
        .and_then(|l| l.back().cloned())
        .map(|v| String::from_utf8_lossy(&v).into_owned())
        .unwrap_or_default()
}

async fn serve(socket: &Arc<UdpSocket>, to: SocketAddr, request: Packet, mid: u16) {
    let send = |p: Packet| {
        let socket = socket.clone();
        async move {
            socket
                .send_to(&p.to_bytes_unlimited().unwrap(), to)
                .await
                .unwrap();
        }
    };
    match last_segment(&request).as_str() {
        "silent" => {}
        segment @ ("separate" | "slow") => {
            let mut ack = Packet::new();
            ack.header.set_type(MessageType::Acknowledgement);
            ack.header.code = MessageClass::Empty;
            ack.header.message_id = request.header.message_id;
            send(ack).await;
            let delay = if segment == "slow" { 400 } else { 50 };
            tokio::time::sleep(Duration::from_millis(delay)).await;
            let mut p = answer_to(&request, ResponseType::Content, mid);
            p.header.set_type(MessageType::Confirmable);
            p.header.message_id = mid;
            p.add_option(CoapOption::Unknown(RSC), vec![0x07, 0xd0]);
            p.payload = b"later".to_vec();
            send(p).await;
        }
        "big" => {
            let body = big_body();
            let (num, szx) = request
                .get_first_option(CoapOption::Block2)
                .map(|v| block_parts(v))
                .map_or((0, 2), |(num, _, szx)| (num, szx));
            let size = 16usize << szx;
            let start = (num as usize * size).min(body.len());
            let end = (start + size).min(body.len());
            let mut p = answer_to(&request, ResponseType::Content, mid);
            p.add_option(CoapOption::Block2, block(num, end < body.len(), szx));
            p.payload = body[start..end].to_vec();
            send(p).await;
        }
        "upload" => {
            // Block1 (RFC 7959 §2.3): 2.31 Continue for every block but the last, 2.04 then.
            let block1 = request.get_first_option(CoapOption::Block1).cloned();
            let more = block1.as_deref().is_some_and(|v| block_parts(v).1);
            let code = if more {
                ResponseType::Continue
            } else {
                ResponseType::Changed
            };
            let mut p = answer_to(&request, code, mid);
            if let Some(value) = block1 {
                p.add_option(CoapOption::Block1, value);
            }
            send(p).await;
        }
        "obs" | "obs-slow" => {
            // obs-slow leaves time between notifications for a test to act in.
            let gap = if last_segment(&request) == "obs" {
                50
            } else {
                400
            };
            let mut p = answer_to(&request, ResponseType::Content, mid);
            let registering = request.get_observe_value().and_then(Result::ok) == Some(0);
            if registering {
                p.set_observe_value(1);
            }
            p.payload = b"n1".to_vec();
            send(p).await;
            if registering {
                for seq in 2..=3u32 {
                    tokio::time::sleep(Duration::from_millis(gap)).await;
                    let mut n = Packet::new();
                    n.header.set_type(if seq == 2 {
                        MessageType::NonConfirmable
                    } else {
                        MessageType::Confirmable
                    });
                    n.header.message_id = mid.wrapping_add(seq as u16);
                    n.header.code = MessageClass::Response(ResponseType::Content);
                    n.set_token(request.get_token().to_vec());
                    n.set_observe_value(seq);
                    n.payload = format!("n{seq}").into_bytes();
                    send(n).await;
                }
            }
        }
        _ => {
            let created = request.header.code == MessageClass::Request(RequestType::Post);
            let code = if created {
                ResponseType::Created
            } else {
                ResponseType::Content
            };
            let mut p = answer_to(&request, code, mid);
            let rsc: &[u8] = if created {
                &[0x07, 0xd1]
            } else {
                &[0x07, 0xd0]
            };
            p.add_option(CoapOption::Unknown(RSC), rsc.to_vec());
            if let Some(rqi) = request.get_first_option(CoapOption::Unknown(RQI)) {
                p.add_option(CoapOption::Unknown(RQI), rqi.clone());
            }
            p.add_option(CoapOption::Unknown(CUSTOM), b"kept".to_vec());
            p.payload = format!("echo:{}", String::from_utf8_lossy(&request.payload)).into_bytes();
            send(p).await;
        }
    }
}

/// A Block1/Block2 option value.
pub fn block(num: u32, more: bool, szx: u8) -> Vec<u8> {
    let value = (num << 4) | (u32::from(more) << 3) | u32::from(szx);
    let bytes = value.to_be_bytes();
    let skip = bytes.iter().take_while(|b| **b == 0).count();
    bytes[skip..].to_vec()
}

pub fn block_parts(value: &[u8]) -> (u32, bool, u8) {
    let v = value.iter().fold(0u32, |acc, b| (acc << 8) | u32::from(*b));
    (v >> 4, v & 0x8 != 0, (v & 0x7) as u8)
}

/// A oneM2M CoAP request: confirmable, with `fr`, `rqi`, `rvi` and the Uri-Path of `path`.
pub fn request(method: RequestType, path: &str, fr: &str, rqi: &str) -> Packet {
    let mut p = Packet::new();
    p.header.set_type(MessageType::Confirmable);
    p.header.code = MessageClass::Request(method);
    for segment in path.split('/').filter(|s| !s.is_empty()) {
        p.add_option(CoapOption::UriPath, segment.as_bytes().to_vec());
    }
    p.add_option(CoapOption::Unknown(FR), fr.as_bytes().to_vec());
    p.add_option(CoapOption::Unknown(RQI), rqi.as_bytes().to_vec());
    p.add_option(CoapOption::Unknown(RVI), b"4".to_vec());
    p
}

/// A CoAP client on its own loopback port.
pub struct Client {
    pub socket: UdpSocket,
    mid: u16,
    token: u64,
}

impl Client {
    pub async fn new() -> Client {
        Client::on([127, 0, 0, 1]).await
    }

    /// A client on its own port of loopback address `ip` (any of 127.0.0.0/8 on Linux).
    pub async fn on(ip: [u8; 4]) -> Client {
        Client {
            socket: UdpSocket::bind(SocketAddr::from((ip, 0))).await.unwrap(),
            mid: 0x100,
            token: 0x7700,
        }
    }

    /// Fills in a fresh message id and token (unless `p` has a token) and sends it.
    pub async fn send(&mut self, to: SocketAddr, p: &mut Packet) -> Vec<u8> {
        self.mid = self.mid.wrapping_add(1);
        p.header.message_id = self.mid;
        if p.get_token().is_empty() {
            self.token += 1;
            p.set_token(self.token.to_be_bytes()[4..].to_vec());
        }
        let bytes = p.to_bytes_unlimited().unwrap();
        self.socket.send_to(&bytes, to).await.unwrap();
        bytes
    }

    /// The next datagram within `wait`, parsed.
    pub async fn recv_within(&self, wait: Duration) -> Option<(Packet, Vec<u8>)> {
        let mut buf = vec![0u8; 65_535];
        let (n, _) = tokio::time::timeout(wait, self.socket.recv_from(&mut buf))
            .await
            .ok()?
            .unwrap();
        Some((Packet::from_bytes(&buf[..n]).unwrap(), buf[..n].to_vec()))
    }

    pub async fn recv(&self) -> Packet {
        self.recv_within(Duration::from_secs(5))
            .await
            .expect("an answer within 5 s")
            .0
    }

    /// Sends `p` and returns the answer, first repeating it with the Echo value if the
    /// gateway challenges this source (RFC 9175 §2.4), as libcoap does.
    pub async fn exchange(&mut self, to: SocketAddr, mut p: Packet) -> Packet {
        self.send(to, &mut p).await;
        let answer = self.recv().await;
        let challenge = answer.header.code == MessageClass::Response(ResponseType::Unauthorized);
        match answer.get_first_option(CoapOption::Unknown(ECHO)) {
            Some(echo) if challenge => {
                p.add_option(CoapOption::Unknown(ECHO), echo.clone());
                self.send(to, &mut p).await;
                self.recv().await
            }
            _ => answer,
        }
    }

    /// Sends `p` once and returns the first answer, as a client without Echo support sees it.
    pub async fn once(&mut self, to: SocketAddr, mut p: Packet) -> Packet {
        self.send(to, &mut p).await;
        self.recv().await
    }

    /// Acknowledges a confirmable message we received.
    pub async fn ack(&self, to: SocketAddr, mid: u16) {
        let mut ack = Packet::new();
        ack.header.set_type(MessageType::Acknowledgement);
        ack.header.code = MessageClass::Empty;
        ack.header.message_id = mid;
        self.socket
            .send_to(&ack.to_bytes().unwrap(), to)
            .await
            .unwrap();
    }
}

/// A gateway whose `[coap]` relays to `upstream`, with `extra` lines in the `[coap]` table.
pub async fn gateway(upstream: SocketAddr, extra: &str) -> TestGateway {
    let data = tempfile::tempdir().unwrap();
    let unused_http = SocketAddr::from(([127, 0, 0, 1], 9));
    let mut text = config_text(unused_http, data.path(), POLICIES, "");
    text.push_str(&format!(
        "\n[coap]\nlisten = \"127.0.0.1:0\"\nupstream = \"{upstream}\"\n{extra}\n"
    ));
    let config = Config::parse(&text, "test.toml").unwrap();
    let gateway = Gateway::start(config).await.unwrap();
    TestGateway { gateway, data }
}

impl TestGateway {
    pub fn coap(&self) -> SocketAddr {
        self.gateway.coap_addr.expect("a CoAP listener")
    }
}

/// The option's value as text, or "" when absent.
pub fn option_text(p: &Packet, number: u16) -> String {
    p.get_first_option(CoapOption::Unknown(number))
        .map(|v| String::from_utf8_lossy(v).into_owned())
        .unwrap_or_default()
}

/// The response status (rsc) option as a number (0 when absent), in the given numbering.
pub fn rsc_with(p: &Packet, number: u16) -> u32 {
    p.get_first_option(CoapOption::Unknown(number))
        .map_or(0, |v| {
            v.iter().fold(0u32, |acc, b| (acc << 8) | u32::from(*b))
        })
}

pub fn rsc(p: &Packet) -> u32 {
    rsc_with(p, RSC)
}
