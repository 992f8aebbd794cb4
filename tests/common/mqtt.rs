//! MQTT fixtures: an embedded rumqttd broker on a free loopback port, a gateway with `[mqtt]`
//! in front of it, rumqttc clients whose events arrive on a channel, a oneM2M responder on the
//! broker side that counts what reached it, and raw connections for malformed packets.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use m2mguard::config::Config;
use m2mguard::gateway::Gateway;
use rumqttc::{
    AsyncClient, ConnectReturnCode, ConnectionError, Event, EventLoop, LastWill, MqttOptions,
    Packet, Publish, QoS, SubscribeReasonCode,
};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::{config_text, TestGateway, POLICIES};

pub const WAIT: Duration = Duration::from_secs(10);

/// Starts rumqttd on a free loopback port (it runs until the test process ends).
pub async fn broker() -> SocketAddr {
    let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = probe.local_addr().unwrap();
    drop(probe);
    broker_on(addr).await
}

/// Starts rumqttd on `addr` (it runs until the test process ends).
pub async fn broker_on(addr: SocketAddr) -> SocketAddr {
    let text = format!(
        r#"
id = 0
[router]
id = 0
max_connections = 1000
max_outgoing_packet_count = 200
max_segment_size = 10485760
max_segment_count = 10
[v4.1]
name = "v4-1"
listen = "{addr}"
next_connection_delay_ms = 1
[v4.1.connections]
connection_timeout_ms = 60000
max_payload_size = 65536
max_inflight_count = 100
dynamic_filters = true
"#
    );
    let config: rumqttd::Config = toml::from_str(&text).unwrap();
    std::thread::spawn(move || {
        let mut broker = rumqttd::Broker::new(config);
        let _ = broker.start();
    });
    for _ in 0..200 {
        if TcpStream::connect(addr).await.is_ok() {
            return addr;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("rumqttd did not start on {addr}");
}

/// A gateway whose `[mqtt]` relays to `broker`.
pub async fn gateway(broker: SocketAddr) -> TestGateway {
    gateway_with(broker, "").await
}

/// A gateway with extra `[mqtt]` keys (e.g. `max_packet_bytes = 256`).
pub async fn gateway_with(broker: SocketAddr, extra_mqtt: &str) -> TestGateway {
    let data = tempfile::tempdir().unwrap();
    let upstream = super::closed_port().await;
    let mqtt = format!(
        "\n[mqtt]\nlisten = \"127.0.0.1:0\"\nbroker = \"{broker}\"\nconnect_timeout_ms = 2000\nbroker_timeout_ms = 2000\n{extra_mqtt}\n"
    );
    let text = config_text(upstream, data.path(), POLICIES, &mqtt);
    let config = Config::parse(&text, "test.toml").unwrap();
    let gateway = Gateway::start(config).await.unwrap();
    TestGateway { gateway, data }
}

pub fn mqtt_addr(g: &TestGateway) -> SocketAddr {
    g.gateway
        .mqtt_addr
        .expect("the gateway has an MQTT listener")
}

/// A connected client; everything its event loop sees arrives on `events`.
pub struct Client {
    pub client: AsyncClient,
    pub events: mpsc::UnboundedReceiver<Result<Event, String>>,
    task: JoinHandle<()>,
}

pub fn options(addr: SocketAddr, client_id: &str) -> MqttOptions {
    let mut o = MqttOptions::new(client_id, addr.ip().to_string(), addr.port());
    o.set_keep_alive(Duration::from_secs(30));
    o
}

/// Connects with `options`; `Err(code)` if the CONNACK refused.
pub async fn connect_with(options: MqttOptions) -> Result<Client, ConnectReturnCode> {
    let (client, eventloop) = AsyncClient::new(options, 100);
    let (tx, mut events) = mpsc::unbounded_channel();
    let task = tokio::spawn(pump(eventloop, tx));
    loop {
        match tokio::time::timeout(WAIT, events.recv())
            .await
            .expect("CONNACK within 10 s")
        {
            Some(Ok(Event::Incoming(Packet::ConnAck(_)))) => break,
            Some(Ok(_)) => {}
            Some(Err(e)) if e.starts_with("refused:") => {
                task.abort();
                return Err(refused_code(&e));
            }
            other => panic!("connect failed: {other:?}"),
        }
    }
    Ok(Client {
        client,
        events,
        task,
    })
}

pub async fn connect(addr: SocketAddr, client_id: &str) -> Client {
    connect_with(options(addr, client_id))
        .await
        .expect("CONNACK accepted")
}

fn refused_code(e: &str) -> ConnectReturnCode {
    match e {
        "refused:NotAuthorized" => ConnectReturnCode::NotAuthorized,
        "refused:BadClientId" => ConnectReturnCode::BadClientId,
        "refused:ServiceUnavailable" => ConnectReturnCode::ServiceUnavailable,
        "refused:RefusedProtocolVersion" => ConnectReturnCode::RefusedProtocolVersion,
        other => panic!("unexpected refusal {other}"),
    }
}

async fn pump(mut eventloop: EventLoop, tx: mpsc::UnboundedSender<Result<Event, String>>) {
    loop {
        match eventloop.poll().await {
            Ok(event) => {
                if tx.send(Ok(event)).is_err() {
                    return;
                }
            }
            Err(ConnectionError::ConnectionRefused(code)) => {
                let _ = tx.send(Err(format!("refused:{code:?}")));
                return;
            }
            Err(e) => {
                let _ = tx.send(Err(format!("closed: {e}")));
                return;
            }
        }
    }
}

impl Client {
    /// The next event that `pick` accepts, skipping others; panics after 10 s or on close.
    pub async fn wait_for<T>(
        &mut self,
        what: &str,
        mut pick: impl FnMut(&Event) -> Option<T>,
    ) -> T {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            match tokio::time::timeout_at(deadline, self.events.recv()).await {
                Err(_) => panic!("no {what} within 10 s"),
                Ok(Some(Ok(event))) => {
                    if let Some(found) = pick(&event) {
                        return found;
                    }
                }
                Ok(other) => panic!("connection ended waiting for {what}: {other:?}"),
            }
        }
    }

    pub async fn subscribe(&mut self, filter: &str, qos: QoS) -> Vec<SubscribeReasonCode> {
        self.client.subscribe(filter, qos).await.unwrap();
        self.suback().await
    }

    pub async fn suback(&mut self) -> Vec<SubscribeReasonCode> {
        self.wait_for("SUBACK", |e| match e {
            Event::Incoming(Packet::SubAck(ack)) => Some(ack.return_codes.clone()),
            _ => None,
        })
        .await
    }

    pub async fn publication(&mut self, topic: &str) -> Publish {
        self.wait_for(&format!("PUBLISH on {topic}"), |e| match e {
            Event::Incoming(Packet::Publish(p)) if p.topic == topic => Some(p.clone()),
            _ => None,
        })
        .await
    }

    /// Publishes `payload` on `topic` at QoS 1 and waits for the PUBACK (which a gateway
    /// sends for a publish it refuses, too).
    pub async fn publish_acked(&mut self, topic: &str, retain: bool, payload: impl Into<Vec<u8>>) {
        self.client
            .publish(topic, QoS::AtLeastOnce, retain, payload)
            .await
            .unwrap();
        self.wait_for("PUBACK", |e| {
            matches!(e, Event::Incoming(Packet::PubAck(_))).then_some(())
        })
        .await;
    }

    /// Whether the connection ends within 10 s (true) or stays up (false).
    pub async fn closed_within(&mut self, time: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + time;
        loop {
            match tokio::time::timeout_at(deadline, self.events.recv()).await {
                Err(_) => return false,
                Ok(Some(Ok(_))) => {}
                Ok(_) => return true,
            }
        }
    }

    /// Ends the connection without DISCONNECT, as a crashed client would.
    pub fn drop_abruptly(self) {
        self.task.abort();
    }

    /// Sends a oneM2M request on `topic` and returns the response primitive on the matching
    /// response topic (the client must be subscribed to it).
    pub async fn request(&mut self, topic: &str, primitive: Value) -> Value {
        self.client
            .publish(topic, QoS::AtMostOnce, false, primitive.to_string())
            .await
            .unwrap();
        let p = self.publication(&response_topic(topic)).await;
        serde_json::from_slice(&p.payload).unwrap()
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The TS-0010 response topic of a request topic (`req` → `resp`, `reg_req` → `reg_resp`).
pub fn response_topic(request_topic: &str) -> String {
    request_topic
        .replacen("/oneM2M/req/", "/oneM2M/resp/", 1)
        .replacen("/oneM2M/reg_req/", "/oneM2M/reg_resp/", 1)
}

/// The value of the request counter with these labels (0 when absent), read from the metrics.
pub fn requests_counted(g: &TestGateway, labels: &str) -> u64 {
    let prefix = format!("m2mguard_requests_total{{{labels}}} ");
    g.gateway
        .state
        .metrics
        .encode()
        .lines()
        .find_map(|l| l.strip_prefix(&prefix).and_then(|v| v.parse().ok()))
        .unwrap_or(0)
}

pub fn will(topic: &str, message: &str) -> LastWill {
    LastWill::new(topic, message.as_bytes().to_vec(), QoS::AtLeastOnce, false)
}

/// A oneM2M CSE on the broker side: answers every request on `/oneM2M/req/+/id-in/json` and
/// every registration on `/oneM2M/reg_req/+/id-in/json` with rsc 2000 and the request's rqi
/// (on `resp`, `reg_resp`), and counts the requests that reached the broker.
pub struct Responder {
    pub seen: Arc<AtomicUsize>,
    _client: Client,
}

pub async fn responder(broker: SocketAddr) -> Responder {
    let mut c = connect(broker, "cse-responder").await;
    c.client
        .subscribe_many(
            ["/oneM2M/req/+/id-in/json", "/oneM2M/reg_req/+/id-in/json"]
                .map(|f| rumqttc::SubscribeFilter::new(f.into(), QoS::AtMostOnce)),
        )
        .await
        .unwrap();
    assert_eq!(
        c.suback().await,
        [SubscribeReasonCode::Success(QoS::AtMostOnce); 2]
    );
    let seen = Arc::new(AtomicUsize::new(0));
    let counter = seen.clone();
    let client = c.client.clone();
    let mut events = std::mem::replace(&mut c.events, mpsc::unbounded_channel().1);
    tokio::spawn(async move {
        while let Some(Ok(event)) = events.recv().await {
            let Event::Incoming(Packet::Publish(p)) = event else {
                continue;
            };
            counter.fetch_add(1, Ordering::SeqCst);
            let request: Value = serde_json::from_slice(&p.payload).unwrap_or(Value::Null);
            let answer = json!({"rsc": 2000, "rqi": request["rqi"], "to": request["fr"],
                "fr": "/id-in", "pc": {"m2m:dbg": "answered by the test CSE"}});
            let topic = response_topic(&p.topic);
            let _ = client
                .publish(topic, QoS::AtMostOnce, false, answer.to_string())
                .await;
        }
    });
    Responder { seen, _client: c }
}

impl Responder {
    pub fn count(&self) -> usize {
        self.seen.load(Ordering::SeqCst)
    }
}

/// A retrieve of the CSE base by `fr`.
pub fn retrieve(fr: &str, rqi: &str) -> Value {
    json!({"op": 2, "to": "/id-in/cse-in", "fr": fr, "rqi": rqi, "rvi": "4"})
}

/// A client of the broker itself, subscribed to `filter` (QoS 0): sees what reached the broker.
pub async fn witness(broker: SocketAddr, filter: &str) -> Client {
    let mut c = connect(broker, "witness").await;
    let codes = c.subscribe(filter, QoS::AtMostOnce).await;
    assert_eq!(codes, [SubscribeReasonCode::Success(QoS::AtMostOnce)]);
    c
}

/// A TLS connection to the gateway's MQTT listener (`[mqtt.tls]` of `super::tls_table`),
/// trusting the test CA and presenting the client certificate `identity` of `pki`.
pub async fn tls_connect(
    pki: &super::Pki,
    addr: SocketAddr,
    identity: &str,
) -> tokio_rustls::client::TlsStream<TcpStream> {
    let ca = m2mguard::tls::load_certs(&pki.path("ca.pem")).unwrap();
    let pair = m2mguard::tls::KeyPair::load(
        &pki.path(&format!("{identity}.pem")),
        &pki.path(&format!("{identity}.key")),
    )
    .unwrap();
    let config = Arc::new(m2mguard::tls::client_config(&ca, Some(&pair)).unwrap());
    let tcp = TcpStream::connect(addr).await.unwrap();
    let name = rustls_pki_types::ServerName::try_from("127.0.0.1").unwrap();
    tokio_rustls::TlsConnector::from(config)
        .connect(name, tcp)
        .await
        .unwrap()
}

/// Connects `fr` (client id `A::<fr>`) subscribed to its response topic.
pub async fn device(gateway: SocketAddr, fr: &str) -> Client {
    let mut c = connect(gateway, &format!("A::{fr}")).await;
    let codes = c
        .subscribe(&format!("/oneM2M/resp/{fr}/id-in/json"), QoS::AtMostOnce)
        .await;
    assert_eq!(codes, [SubscribeReasonCode::Success(QoS::AtMostOnce)]);
    c
}

/// The legitimate request that every attack test ends with: `fr` retrieves the CSE base
/// through the gateway and the broker-side CSE answers it.
pub async fn legitimate_request_passes(gateway: SocketAddr, responder: &Responder, fr: &str) {
    let before = responder.count();
    let mut c = device(gateway, fr).await;
    let answer = c
        .request(
            &format!("/oneM2M/req/{fr}/id-in/json"),
            retrieve(fr, "legit"),
        )
        .await;
    assert_eq!(answer["rsc"], 2000, "{answer}");
    assert_eq!(answer["rqi"], "legit");
    assert_eq!(responder.count(), before + 1);
}

/// A raw connection: CONNECT as `client_id`, CONNACK read; then whatever bytes a test sends.
pub struct Raw {
    pub stream: TcpStream,
}

impl Raw {
    pub async fn connect(addr: SocketAddr, client_id: &str) -> Raw {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        let mut out = BytesMut::new();
        let mut connect = rumqttc::Connect::new(client_id);
        connect.keep_alive = 30;
        Packet::Connect(connect)
            .write(&mut out, usize::MAX)
            .unwrap();
        stream.write_all(&out).await.unwrap();
        let mut ack = [0u8; 4];
        tokio::time::timeout(WAIT, stream.read_exact(&mut ack))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(ack, [0x20, 0x02, 0x00, 0x00], "CONNACK accepted");
        Raw { stream }
    }

    /// Sends `bytes`; true if the gateway then closes the connection within 10 s.
    pub async fn send_and_see_closed(&mut self, bytes: &[u8]) -> bool {
        self.stream.write_all(bytes).await.unwrap();
        let mut buf = [0u8; 256];
        loop {
            match tokio::time::timeout(WAIT, self.stream.read(&mut buf)).await {
                Err(_) => return false,
                Ok(Ok(0)) | Ok(Err(_)) => return true,
                Ok(Ok(_)) => {}
            }
        }
    }
}
