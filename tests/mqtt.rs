//! The MQTT binding over real sockets: rumqttc clients → gateway → embedded rumqttd broker,
//! with a oneM2M responder on the broker side. Each attack test ends with a legitimate request
//! that passes.

mod common;

use std::time::Duration;

use common::mqtt::{
    broker, connect, connect_with, device, gateway, gateway_with, legitimate_request_passes,
    mqtt_addr, options, requests_counted, responder, retrieve, tls_connect, will, witness, Raw,
    WAIT,
};
use m2mguard::store::NodeStatus;
use rumqttc::{ConnectReturnCode, Event, Packet, QoS, SubscribeReasonCode};
use serde_json::json;

const SUCCESS0: SubscribeReasonCode = SubscribeReasonCode::Success(QoS::AtMostOnce);

#[tokio::test]
async fn request_is_relayed_and_answered() {
    let broker = broker().await;
    let cse = responder(broker).await;
    let g = gateway(broker).await;
    let mut meter = device(mqtt_addr(&g), "Cmeter").await;
    let answer = meter
        .request("/oneM2M/req/Cmeter/id-in/json", retrieve("Cmeter", "r1"))
        .await;
    assert_eq!(answer["rsc"], 2000);
    assert_eq!(answer["rqi"], "r1");
    assert_eq!(answer["to"], "Cmeter");
    assert_eq!(cse.count(), 1);
    g.gateway.shutdown().await;
}

#[tokio::test]
async fn qos1_and_qos2_round_trips() {
    let broker = broker().await;
    let g = gateway(broker).await;
    let mut meter = connect(mqtt_addr(&g), "A::Cmeter").await;
    for (qos, topic) in [
        (QoS::AtLeastOnce, "site/meters/q1"),
        (QoS::ExactlyOnce, "site/meters/q2"),
    ] {
        let granted = meter.subscribe(topic, qos).await;
        assert_eq!(granted, [SubscribeReasonCode::Success(qos)]);
        meter
            .client
            .publish(topic, qos, false, topic)
            .await
            .unwrap();
        // Both the delivery and the publisher's own flow's end (PUBACK, or PUBCOMP for QoS 2).
        let (mut delivered, mut completed) = (None, false);
        while delivered.is_none() || !completed {
            let event = meter
                .wait_for("delivery and acknowledgement", |e| Some(e.clone()))
                .await;
            match event {
                Event::Incoming(Packet::Publish(p)) if p.topic == topic => delivered = Some(p),
                Event::Incoming(Packet::PubAck(_)) if qos == QoS::AtLeastOnce => completed = true,
                Event::Incoming(Packet::PubComp(_)) if qos == QoS::ExactlyOnce => completed = true,
                _ => {}
            }
        }
        let p = delivered.unwrap();
        assert_eq!((p.qos, &p.payload[..]), (qos, topic.as_bytes()));
    }
    g.gateway.shutdown().await;
}

#[tokio::test]
async fn retained_message_reaches_a_later_subscriber() {
    let broker = broker().await;
    let g = gateway(broker).await;
    let mut meter = connect(mqtt_addr(&g), "A::Cmeter").await;
    // The broker has it once it acknowledged it.
    meter
        .publish_acked("site/meters/retained", true, "kept")
        .await;
    let mut lamp = connect(mqtt_addr(&g), "A::Clamp").await;
    assert_eq!(
        lamp.subscribe("site/meters/retained", QoS::AtLeastOnce)
            .await
            .len(),
        1
    );
    let p = lamp.publication("site/meters/retained").await;
    assert!(p.retain);
    assert_eq!(&p.payload[..], b"kept");
    g.gateway.shutdown().await;
}

#[tokio::test]
async fn will_is_published_on_abrupt_disconnect_and_checked_at_connect() {
    let broker = broker().await;
    let g = gateway(broker).await;
    let addr = mqtt_addr(&g);
    let mut lamp = connect(addr, "A::Clamp").await;
    assert_eq!(
        lamp.subscribe("site/meters/will", QoS::AtLeastOnce)
            .await
            .len(),
        1
    );
    let mut o = options(addr, "A::Cmeter");
    o.set_last_will(will("site/meters/will", "meter gone"));
    let meter = connect_with(o).await.unwrap();
    meter.drop_abruptly();
    let p = lamp.publication("site/meters/will").await;
    assert_eq!(&p.payload[..], b"meter gone");

    // A lamp may not publish on the meters' topics, so neither may its will.
    let mut o = options(addr, "A::Clamp");
    o.set_last_will(will("site/meters/will", "forged"));
    assert_eq!(
        connect_with(o).await.err(),
        Some(ConnectReturnCode::NotAuthorized)
    );
    g.gateway.shutdown().await;
}

#[tokio::test]
async fn spoofed_originator_is_refused_in_every_variant() {
    let broker = broker().await;
    let cse = responder(broker).await;
    let g = gateway(broker).await;
    let addr = mqtt_addr(&g);
    let mut meter = device(addr, "Cmeter").await;

    // 1. fr names another node than the session's (the topic is the session's own).
    let answer = meter
        .request(
            "/oneM2M/req/Cmeter/id-in/json",
            retrieve("Clamp", "spoof-fr"),
        )
        .await;
    assert_eq!(answer["rsc"], 4103);
    assert_eq!(answer["rqi"], "spoof-fr");
    assert_eq!(
        answer["pc"]["m2m:dbg"],
        "access denied: originator does not match the authenticated identity"
    );
    // 2. The topic names another originator (fr is the session's). 3. Both name another node.
    for fr in ["Cmeter", "Clamp"] {
        let spoof = retrieve(fr, "spoof-topic").to_string();
        meter
            .publish_acked("/oneM2M/req/Clamp/id-in/json", false, spoof)
            .await;
    }
    // 4. CONNECT claims that disagree: client id and username name different nodes.
    let mut o = options(addr, "A::Cmeter");
    o.set_credentials("Clamp", "");
    assert_eq!(
        connect_with(o).await.err(),
        Some(ConnectReturnCode::NotAuthorized)
    );
    assert_eq!(cse.count(), 0, "no spoofed request reached the broker");
    legitimate_request_passes(addr, &cse, "Cmeter").await;
    g.gateway.shutdown().await;
}

#[tokio::test]
async fn deactivated_node_is_refused_and_its_live_session_closed() {
    let broker = broker().await;
    let cse = responder(broker).await;
    let g = gateway(broker).await;
    let addr = mqtt_addr(&g);
    let nodes = &g.gateway.state.nodes;

    let mut lamp = device(addr, "Clamp").await;
    let mut other = device(addr, "Cmeter").await;
    nodes.set_status("Clamp", NodeStatus::Deactivated).unwrap();
    assert!(
        lamp.closed_within(Duration::from_secs(2)).await,
        "session closed at once"
    );
    assert!(
        !other.closed_within(Duration::from_millis(300)).await,
        "other sessions stay"
    );

    assert_eq!(
        connect_with(options(addr, "A::Clamp")).await.err(),
        Some(ConnectReturnCode::NotAuthorized)
    );
    // An originator the repository does not know is admitted for registration only
    // (tests/registration.rs): nothing but its own registration responses.
    let mut unknown = connect(addr, "A::Cunknown").await;
    assert_eq!(
        unknown
            .subscribe("/oneM2M/resp/Cunknown/id-in/json", QoS::AtMostOnce)
            .await,
        [SubscribeReasonCode::Failure]
    );
    assert_eq!(
        connect_with(options(addr, "anonymous")).await.err(),
        Some(ConnectReturnCode::NotAuthorized)
    );
    assert_eq!(cse.count(), 0);

    nodes.set_status("Clamp", NodeStatus::Active).unwrap();
    legitimate_request_passes(addr, &cse, "Clamp").await;
    g.gateway.shutdown().await;
}

#[tokio::test]
async fn policy_denial_is_answered_4103_and_never_reaches_the_broker() {
    let broker = broker().await;
    let cse = responder(broker).await;
    // A second witness on the broker: everything published on the request topics.
    let mut witness = witness(broker, "/oneM2M/req/#").await;
    let g = gateway(broker).await;
    let addr = mqtt_addr(&g);
    let mut lamp = device(addr, "Clamp").await;
    let create = json!({"op": 1, "to": "/id-in/cse-in/meter-7", "fr": "Clamp", "rqi": "forbidden",
        "rvi": "4", "ty": 4, "pc": {"m2m:cin": {"con": "on"}}});
    let answer = lamp.request("/oneM2M/req/Clamp/id-in/json", create).await;
    assert_eq!(answer["rsc"], 4103, "{answer}");
    assert_eq!(answer["rqi"], "forbidden");
    assert_eq!(answer["to"], "Clamp");
    assert_eq!(answer["fr"], "/id-in");
    assert_eq!(answer["pc"], json!({"m2m:dbg": "access denied by policy"}));

    // Malformed JSON on a request topic: 4000, nothing forwarded either.
    lamp.client
        .publish(
            "/oneM2M/req/Clamp/id-in/json",
            QoS::AtMostOnce,
            false,
            "{not json",
        )
        .await
        .unwrap();
    let p = lamp.publication("/oneM2M/resp/Clamp/id-in/json").await;
    let answer: serde_json::Value = serde_json::from_slice(&p.payload).unwrap();
    assert_eq!(answer["rsc"], 4000);

    legitimate_request_passes(addr, &cse, "Clamp").await;
    let seen = witness.publication("/oneM2M/req/Clamp/id-in/json").await;
    let seen: serde_json::Value = serde_json::from_slice(&seen.payload).unwrap();
    assert_eq!(
        seen["rqi"], "legit",
        "the first request the broker saw is the legitimate one"
    );
    assert_eq!(cse.count(), 1);
    g.gateway.shutdown().await;
}

#[tokio::test]
async fn refused_subscribe_gets_failure_codes() {
    let broker = broker().await;
    let cse = responder(broker).await;
    let g = gateway(broker).await;
    let addr = mqtt_addr(&g);
    let mut meter = connect(addr, "A::Cmeter").await;
    assert_eq!(
        meter.subscribe("#", QoS::AtMostOnce).await,
        [SubscribeReasonCode::Failure]
    );
    assert_eq!(
        meter
            .subscribe("/oneM2M/resp/Clamp/id-in/json", QoS::AtMostOnce)
            .await,
        [SubscribeReasonCode::Failure]
    );
    meter
        .client
        .subscribe_many([
            rumqttc::SubscribeFilter::new("site/x".into(), QoS::AtMostOnce),
            rumqttc::SubscribeFilter::new("/oneM2M/req/+/id-in/json".into(), QoS::AtMostOnce),
            rumqttc::SubscribeFilter::new("/oneM2M/resp/Cmeter/id-in/json".into(), QoS::AtMostOnce),
        ])
        .await
        .unwrap();
    assert_eq!(
        meter.suback().await,
        [SUCCESS0, SubscribeReasonCode::Failure, SUCCESS0]
    );
    legitimate_request_passes(addr, &cse, "Cmeter").await;
    g.gateway.shutdown().await;
}

#[tokio::test]
async fn malformed_or_oversized_packet_closes_only_that_connection() {
    let broker = broker().await;
    let cse = responder(broker).await;
    let g = gateway_with(broker, "max_packet_bytes = 4096").await;
    let addr = mqtt_addr(&g);
    let mut bystander = device(addr, "Clamp").await;

    // Packet type 15 is reserved in MQTT 3.1.1.
    let mut raw = Raw::connect(addr, "A::Cmeter").await;
    assert!(raw.send_and_see_closed(&[0xf0, 0x00]).await);
    // A PUBLISH whose topic length runs past the packet.
    let mut raw = Raw::connect(addr, "A::Cmeter").await;
    assert!(
        raw.send_and_see_closed(&[0x30, 0x03, 0x00, 0x09, b'a'])
            .await
    );
    // A packet announcing 1 MB: closed on its header, before the body is sent or buffered.
    let mut raw = Raw::connect(addr, "A::Cmeter").await;
    assert!(raw.send_and_see_closed(&[0x30, 0x80, 0x80, 0x40]).await);
    // Not MQTT at all.
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    stream.write_all(b"GET / HTTP/1.1\r\n\r\n").await.unwrap();
    let mut buf = [0u8; 16];
    let n = tokio::time::timeout(WAIT, stream.read(&mut buf))
        .await
        .unwrap()
        .unwrap_or(0);
    assert_eq!(n, 0, "closed without an answer");

    let answer = bystander
        .request(
            "/oneM2M/req/Clamp/id-in/json",
            retrieve("Clamp", "still-here"),
        )
        .await;
    assert_eq!(answer["rsc"], 2000);
    legitimate_request_passes(addr, &cse, "Cmeter").await;
    g.gateway.shutdown().await;
}

#[tokio::test]
async fn keep_alive_is_relayed() {
    let broker = broker().await;
    let g = gateway(broker).await;
    let mut o = options(mqtt_addr(&g), "A::Cmeter");
    o.set_keep_alive(Duration::from_secs(1));
    let mut meter = connect_with(o).await.unwrap();
    meter
        .wait_for("PINGRESP", |e| {
            matches!(e, Event::Incoming(Packet::PingResp)).then_some(())
        })
        .await;
    g.gateway.shutdown().await;
}

/// Sends `packets` on `stream` and reads `answers` packets back (10 s at most).
async fn exchange<S>(stream: &mut S, packets: &[Packet], answers: usize) -> Vec<Packet>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut out = bytes::BytesMut::new();
    for p in packets {
        p.write(&mut out, usize::MAX).unwrap();
    }
    stream.write_all(&out).await.unwrap();
    let mut buf = bytes::BytesMut::new();
    let mut got = Vec::new();
    while got.len() < answers {
        match Packet::read(&mut buf, 1 << 20) {
            Ok(p) => got.push(p),
            Err(rumqttc::Error::InsufficientBytes(_)) => {
                let n = tokio::time::timeout(WAIT, stream.read_buf(&mut buf))
                    .await
                    .expect("answered within 10 s")
                    .unwrap();
                if n == 0 {
                    break;
                }
            }
            Err(e) => panic!("bad packet from the gateway: {e}"),
        }
    }
    got
}

#[tokio::test]
async fn with_mqtt_tls_client_certificates_bind_the_originator() {
    let pki = common::Pki::new();
    pki.issue("meter", &[], "Cmeter");
    let tls = common::tls_table(&pki, "mqtt.tls");
    let broker = broker().await;
    let cse = responder(broker).await;
    let g = gateway_with(broker, &tls).await;
    let addr = mqtt_addr(&g);
    let open = || tls_connect(&pki, addr, "meter");
    let connect = |id: &str| Packet::Connect(rumqttc::Connect::new(id));

    // The certificate says Cmeter: a client id claiming Clamp is refused.
    let mut spoof = open().await;
    let answer = exchange(&mut spoof, &[connect("A::Clamp")], 1).await;
    assert_eq!(
        answer,
        [Packet::ConnAck(rumqttc::ConnAck::new(
            ConnectReturnCode::NotAuthorized,
            false
        ))]
    );

    // A client id that claims nothing: the session is Cmeter's, by its certificate.
    let mut meter = open().await;
    let subscribe = rumqttc::Subscribe::new("/oneM2M/resp/Cmeter/id-in/json", QoS::AtMostOnce);
    let request = rumqttc::Publish::new(
        "/oneM2M/req/Cmeter/id-in/json",
        QoS::AtMostOnce,
        retrieve("Cmeter", "over-tls").to_string(),
    );
    let mut subscribe = subscribe;
    subscribe.pkid = 1;
    let answers = exchange(
        &mut meter,
        &[connect("any-id"), Packet::Subscribe(subscribe)],
        2,
    )
    .await;
    assert!(
        matches!(&answers[..], [Packet::ConnAck(a), Packet::SubAck(s)]
            if a.code == ConnectReturnCode::Success && s.return_codes == [SUCCESS0]),
        "{answers:?}"
    );
    let answers = exchange(&mut meter, &[Packet::Publish(request)], 1).await;
    let Some(Packet::Publish(p)) = answers.first() else {
        panic!("{answers:?}")
    };
    let answer: serde_json::Value = serde_json::from_slice(&p.payload).unwrap();
    assert_eq!(
        (answer["rsc"].as_u64(), answer["rqi"].as_str()),
        (Some(2000), Some("over-tls"))
    );
    assert_eq!(cse.count(), 1);
    g.gateway.shutdown().await;
}

/// For a legacy device whose key has `insert = true`, a request over MQTT with a client
/// certificate naming it (an authenticated identity, whatever the binding) reaches the broker
/// with the gateway's check value as the member `aus`; the same request over plain TCP, where
/// the originator is only claimed, is forwarded as it came.
#[tokio::test]
async fn an_inserted_check_value_reaches_the_broker_as_the_member_aus() {
    use m2mguard::guard::check_value::sign;
    use m2mguard::primitive::{Operation, Peer, Primitive, Protocol};
    use m2mguard::security::Secret;

    let pki = common::Pki::new();
    pki.issue("meter", &[], "Cmeter");
    let key = common::key_file(pki.dir.path(), "meter.key.hex", &[0x42; 32]);
    let keys = format!(
        "[[checks.keys]]\nid = \"meter-k1\"\nnode = \"Cmeter\"\nfile = \"{}\"\ninsert = true\n",
        key.display()
    );
    let tls = common::tls_table(&pki, "mqtt.tls");
    let broker = broker().await;
    let cse = responder(broker).await;
    let mut witness = witness(broker, "/oneM2M/req/#").await;
    let g = gateway_with(broker, &format!("{tls}\n{keys}")).await;
    let mut meter = tls_connect(&pki, mqtt_addr(&g), "meter").await;
    let request = rumqttc::Publish::new(
        "/oneM2M/req/Cmeter/id-in/json",
        QoS::AtMostOnce,
        retrieve("Cmeter", "inserted").to_string(),
    );
    let connect = Packet::Connect(rumqttc::Connect::new("any-id"));
    let answers = exchange(&mut meter, &[connect, Packet::Publish(request)], 1).await;
    assert!(
        matches!(&answers[..], [Packet::ConnAck(a)] if a.code == ConnectReturnCode::Success),
        "{answers:?}"
    );
    let seen = witness.publication("/oneM2M/req/Cmeter/id-in/json").await;
    let forwarded: serde_json::Value = serde_json::from_slice(&seen.payload).unwrap();
    let peer = Peer {
        tls_identity: Some("Cmeter".into()),
        ..Peer::unauthenticated(([127, 0, 0, 1], 1).into(), Protocol::Mqtt)
    };
    let p = Primitive::new(
        Operation::Retrieve,
        "/id-in/cse-in",
        "Cmeter",
        "inserted",
        peer,
    );
    let expected = sign(&p, "meter-k1", &Secret::new(&[0x42; 32]), 1);
    assert_eq!(forwarded["aus"], expected.as_str(), "{forwarded}");
    assert_eq!(forwarded["rqi"], "inserted");
    // The responder sees it too, in its own time.
    for _ in 0..200 {
        if cse.count() == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(cse.count(), 1);
    g.gateway.shutdown().await;

    // Without TLS the originator is only claimed: nothing is inserted.
    let g = gateway_with(broker, &keys).await;
    let mut plain = device(mqtt_addr(&g), "Cmeter").await;
    let answer = plain
        .request(
            "/oneM2M/req/Cmeter/id-in/json",
            retrieve("Cmeter", "claimed"),
        )
        .await;
    assert_eq!(answer["rsc"], 2000, "{answer}");
    let seen = witness.publication("/oneM2M/req/Cmeter/id-in/json").await;
    let forwarded: serde_json::Value = serde_json::from_slice(&seen.payload).unwrap();
    assert_eq!(forwarded["rqi"], "claimed");
    assert!(forwarded.get("aus").is_none(), "{forwarded}");
    g.gateway.shutdown().await;
}

#[tokio::test]
async fn cbor_request_is_decided_and_answered_in_cbor() {
    let broker = broker().await;
    let cse = responder(broker).await;
    let g = gateway(broker).await;
    let addr = mqtt_addr(&g);
    let mut lamp = connect(addr, "A::Clamp").await;
    let topic = "/oneM2M/resp/Clamp/id-in/cbor";
    assert_eq!(lamp.subscribe(topic, QoS::AtMostOnce).await, [SUCCESS0]);
    let create = json!({"op": 1, "to": "/id-in/cse-in/meter-7", "fr": "Clamp", "rqi": "cbor-1",
        "ty": 4, "pc": {"m2m:cin": {"con": "on"}}});
    let mut payload = Vec::new();
    ciborium::into_writer(&create, &mut payload).unwrap();
    lamp.client
        .publish(
            "/oneM2M/req/Clamp/id-in/cbor",
            QoS::AtMostOnce,
            false,
            payload,
        )
        .await
        .unwrap();
    let p = lamp.publication(topic).await;
    let answer: serde_json::Value = ciborium::from_reader(&p.payload[..]).unwrap();
    assert_eq!(
        (answer["rsc"].as_u64(), answer["rqi"].as_str()),
        (Some(4103), Some("cbor-1"))
    );
    assert_eq!(cse.count(), 0);
    legitimate_request_passes(addr, &cse, "Clamp").await;
    g.gateway.shutdown().await;
}

#[tokio::test]
async fn silent_client_is_closed_after_one_and_a_half_keep_alives() {
    use tokio::io::AsyncReadExt;
    let broker = broker().await;
    let cse = responder(broker).await;
    let g = gateway(broker).await;
    let addr = mqtt_addr(&g);
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut connect = rumqttc::Connect::new("A::Cmeter");
    connect.keep_alive = 1;
    let started = std::time::Instant::now();
    let answer = exchange(&mut stream, &[Packet::Connect(connect)], 1).await;
    assert!(matches!(&answer[..], [Packet::ConnAck(a)] if a.code == ConnectReturnCode::Success));
    let mut buf = [0u8; 16];
    let n = tokio::time::timeout(WAIT, stream.read(&mut buf))
        .await
        .unwrap()
        .unwrap_or(0);
    let silent_for = started.elapsed();
    assert_eq!(n, 0, "closed");
    assert!(silent_for >= Duration::from_millis(1400), "{silent_for:?}");
    assert!(silent_for < Duration::from_secs(4), "{silent_for:?}");
    legitimate_request_passes(addr, &cse, "Cmeter").await;
    g.gateway.shutdown().await;
}

#[tokio::test]
async fn mqtt5_connect_is_refused_with_protocol_version_and_wildcard_publish_closes() {
    let broker = broker().await;
    let cse = responder(broker).await;
    let g = gateway(broker).await;
    let addr = mqtt_addr(&g);
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    // CONNECT, protocol "MQTT" level 5, clean start, keep-alive 30, no properties, id "A::Cmeter".
    let mut v5 = vec![
        0x10, 0x16, 0x00, 0x04, b'M', b'Q', b'T', b'T', 0x05, 0x02, 0x00, 0x1e, 0x00,
    ];
    v5.extend_from_slice(&[0x00, 0x09]);
    v5.extend_from_slice(b"A::Cmeter");
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    stream.write_all(&v5).await.unwrap();
    let mut ack = [0u8; 4];
    tokio::time::timeout(WAIT, stream.read_exact(&mut ack))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        ack,
        [0x20, 0x02, 0x00, 0x01],
        "CONNACK: unacceptable protocol version"
    );

    let mut raw = Raw::connect(addr, "A::Cmeter").await;
    let mut out = bytes::BytesMut::new();
    Packet::Publish(rumqttc::Publish::new("site/#", QoS::AtMostOnce, "x"))
        .write(&mut out, usize::MAX)
        .unwrap();
    assert!(raw.send_and_see_closed(&out).await);
    legitimate_request_passes(addr, &cse, "Cmeter").await;
    g.gateway.shutdown().await;
}

#[tokio::test]
async fn refused_publish_is_acknowledged_at_its_qos_and_not_forwarded() {
    let broker = broker().await;
    let cse = responder(broker).await;
    let mut witness = witness(broker, "site/#").await;
    let g = gateway(broker).await;
    let addr = mqtt_addr(&g);
    // Lamps may not publish on the meters' topics (20-guards.cedar).
    let mut lamp = connect(addr, "A::Clamp").await;
    for qos in [QoS::AtLeastOnce, QoS::ExactlyOnce] {
        lamp.client
            .publish("site/meters/forged", qos, false, "forged")
            .await
            .unwrap();
        lamp.wait_for("the flow's end", |e| match (qos, e) {
            (QoS::AtLeastOnce, Event::Incoming(Packet::PubAck(_))) => Some(()),
            (QoS::ExactlyOnce, Event::Incoming(Packet::PubComp(_))) => Some(()),
            _ => None,
        })
        .await;
    }
    // The lamp's own topics pass, and are the first thing the broker sees.
    lamp.client
        .publish("site/lamps/1", QoS::AtLeastOnce, false, "on")
        .await
        .unwrap();
    let seen = witness.wait_for("a publish on site/#", |e| match e {
        Event::Incoming(Packet::Publish(p)) => Some(p.topic.clone()),
        _ => None,
    });
    assert_eq!(seen.await, "site/lamps/1");
    legitimate_request_passes(addr, &cse, "Clamp").await;
    g.gateway.shutdown().await;
}

/// `fr`'s refusal count of `operation` at `stage` (MQTT).
fn refused(g: &common::TestGateway, operation: &str, stage: &str) -> u64 {
    requests_counted(
        g,
        &format!(r#"protocol="mqtt",operation="{operation}",verdict="deny",stage="{stage}""#),
    )
}

/// Publishes `primitive` on `topic` (QoS 0) and returns the answer on `answer_topic`.
async fn answer_on(
    c: &mut common::mqtt::Client,
    topic: &str,
    retain: bool,
    primitive: serde_json::Value,
    answer_topic: &str,
) -> serde_json::Value {
    c.client
        .publish(topic, QoS::AtMostOnce, retain, primitive.to_string())
        .await
        .unwrap();
    let p = c.publication(answer_topic).await;
    serde_json::from_slice(&p.payload).unwrap()
}

#[tokio::test]
async fn retained_requests_and_requests_for_other_receivers_are_answered_and_counted() {
    let broker = broker().await;
    let cse = responder(broker).await;
    let mut witness = witness(broker, "/oneM2M/req/#").await;
    let g = gateway(broker).await;
    let addr = mqtt_addr(&g);
    let mut meter = device(addr, "Cmeter").await;
    // Its response topics for every receiver (the answer names the receiver of the request).
    assert_eq!(
        meter
            .subscribe("/oneM2M/resp/Cmeter/+/json", QoS::AtMostOnce)
            .await,
        [SUCCESS0]
    );
    // Retained: the broker would hand it to the CSE again at every subscription.
    let answer = answer_on(
        &mut meter,
        "/oneM2M/req/Cmeter/id-in/json",
        true,
        retrieve("Cmeter", "retained"),
        "/oneM2M/resp/Cmeter/id-in/json",
    )
    .await;
    assert_eq!(
        (&answer["rsc"], &answer["rqi"]),
        (&json!(4000), &json!("retained"))
    );
    assert_eq!(refused(&g, "retrieve", "retained"), 1);
    // Another receiver than the gateway's CSE: answered on the session's response topic for
    // that receiver.
    let answer = answer_on(
        &mut meter,
        "/oneM2M/req/Cmeter/id-mn/json",
        false,
        retrieve("Cmeter", "elsewhere"),
        "/oneM2M/resp/Cmeter/id-mn/json",
    )
    .await;
    assert_eq!(
        (&answer["rsc"], &answer["rqi"]),
        (&json!(4103), &json!("elsewhere"))
    );
    assert_eq!(answer["to"], "Cmeter");
    assert_eq!(refused(&g, "retrieve", "receiver"), 1);
    // The topic names another originator and another receiver: the answer still goes to the
    // session's own response topic, never to Clamp's.
    let answer = answer_on(
        &mut meter,
        "/oneM2M/req/Clamp/Cvictim/json",
        false,
        retrieve("Clamp", "other-both"),
        "/oneM2M/resp/Cmeter/Cvictim/json",
    )
    .await;
    assert_eq!(
        (&answer["rsc"], &answer["rqi"]),
        (&json!(4103), &json!("other-both"))
    );
    assert_eq!(refused(&g, "retrieve", "receiver"), 2);

    legitimate_request_passes(addr, &cse, "Cmeter").await;
    // The first request of any topic the broker saw is the legitimate one.
    let seen = witness
        .wait_for("any request", |e| match e {
            Event::Incoming(Packet::Publish(p)) => Some(p.clone()),
            _ => None,
        })
        .await;
    assert_eq!(seen.topic, "/oneM2M/req/Cmeter/id-in/json");
    let seen: serde_json::Value = serde_json::from_slice(&seen.payload).unwrap();
    assert_eq!(
        seen["rqi"], "legit",
        "the broker saw only the legitimate request"
    );
    assert_eq!(cse.count(), 1);
    g.gateway.shutdown().await;
}

/// An AE registration (create, ty 2) of `fr` below the CSE base.
fn registration(fr: &str, rqi: &str) -> serde_json::Value {
    json!({"op": 1, "to": "/id-in/cse-in", "fr": fr, "rqi": rqi, "rvi": "4", "ty": 2,
        "pc": {"m2m:ae": {"rn": "ae-1", "api": "Nmeter", "rr": false, "srv": ["4"]}}})
}

#[tokio::test]
async fn registrations_are_requests_bound_to_the_session_and_answered_on_reg_resp() {
    let broker = broker().await;
    let cse = responder(broker).await;
    let mut witness = witness(broker, "/oneM2M/#").await;
    let g = gateway(broker).await;
    let addr = mqtt_addr(&g);
    let mut meter = device(addr, "Cmeter").await;
    let own = "/oneM2M/reg_resp/Cmeter/id-in/json";
    assert_eq!(meter.subscribe(own, QoS::AtMostOnce).await, [SUCCESS0]);

    // 1. A registration for an originator that is not enrolled, on its own topic.
    let answer = answer_on(
        &mut meter,
        "/oneM2M/reg_req/Cunknown/id-in/json",
        false,
        registration("Cunknown", "reg-unknown"),
        own,
    )
    .await;
    assert_eq!(
        (&answer["rsc"], &answer["rqi"]),
        (&json!(4103), &json!("reg-unknown"))
    );
    assert_eq!(
        answer["pc"]["m2m:dbg"],
        "access denied: originator does not match the authenticated identity"
    );
    // 2. The session's own topic, but fr of another (enrolled) node.
    let answer = answer_on(
        &mut meter,
        "/oneM2M/reg_req/Cmeter/id-in/json",
        false,
        registration("Clamp", "reg-other"),
        own,
    )
    .await;
    assert_eq!(
        (&answer["rsc"], &answer["rqi"]),
        (&json!(4103), &json!("reg-other"))
    );
    assert_eq!(refused(&g, "create", "identity"), 2);
    // 3. Topic aliases of the registration space are refused, never forwarded.
    for alias in [
        "/oneM2M/reg_req/Cmeter/id-in/json/",
        "/oneM2M/REG_REQ/Cmeter/id-in/json",
        "/onem2m/reg_req/Cmeter/id-in/json",
        "/oneM2M/reg_req/Cmeter//id-in/json",
    ] {
        let request = registration("Cmeter", "alias").to_string();
        meter.publish_acked(alias, false, request).await;
    }
    // 4. Subscriptions that would reach other originators' registrations or their answers.
    for filter in [
        "/oneM2M/reg_resp/Clamp/id-in/json",
        "/oneM2M/reg_req/+/id-in/#",
        "/oneM2M/+/Clamp/id-in/json",
        "/oneM2M/#",
        "+/oneM2M/reg_req/#",
        "/+/reg_resp/+/id-in/json",
        "$share/g//oneM2M/reg_req/+/id-in/#",
        "#",
    ] {
        assert_eq!(
            meter.subscribe(filter, QoS::AtMostOnce).await,
            [SubscribeReasonCode::Failure],
            "{filter}"
        );
    }
    assert_eq!(cse.count(), 0, "no refused registration reached the broker");

    // 5. The enrolled, active node registering itself is decided like any request: the shipped
    // policy lets devices create below the CSE base, and the CSE's answer comes on reg_resp.
    let answer = meter
        .request(
            "/oneM2M/reg_req/Cmeter/id-in/json",
            registration("Cmeter", "reg-self"),
        )
        .await;
    assert_eq!(
        (&answer["rsc"], &answer["rqi"]),
        (&json!(2000), &json!("reg-self"))
    );
    assert_eq!(cse.count(), 1);
    let seen = witness
        .wait_for("the first oneM2M publish", |e| match e {
            Event::Incoming(Packet::Publish(p)) => Some(p.clone()),
            _ => None,
        })
        .await;
    assert_eq!(seen.topic, "/oneM2M/reg_req/Cmeter/id-in/json");
    let seen: serde_json::Value = serde_json::from_slice(&seen.payload).unwrap();
    assert_eq!(
        seen["rqi"], "reg-self",
        "the broker saw no refused registration"
    );

    legitimate_request_passes(addr, &cse, "Cmeter").await;
    g.gateway.shutdown().await;
}
