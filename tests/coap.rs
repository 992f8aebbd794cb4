//! The CoAP binding over real UDP sockets: relay fidelity, separate responses, retransmission
//! deduplication, Block2 and Observe, Echo address validation and amplification (and its
//! explicit exceptions: trusted source ranges, Echo off), denials,
//! malformed datagrams, flooding, and the legacy option numbering. Every attack test ends with
//! a legitimate request that passes.

mod common;

use std::time::Duration;

use coap_lite::{CoapOption, MessageClass, MessageType, Packet, RequestType, ResponseType};
use common::coap::*;
use common::TestGateway;
use m2mguard::admin::client::AdminClient;

/// The canonical legitimate request from `fr`, answered 2.05 / 2000 by the upstream.
async fn legitimate_passes(client: &mut Client, gw: &TestGateway, fr: &str) {
    let answer = client
        .exchange(gw.coap(), request(RequestType::Get, "/cse-in", fr, "legit"))
        .await;
    assert_eq!(
        answer.header.code,
        MessageClass::Response(ResponseType::Content),
        "{answer:?}"
    );
    assert_eq!(rsc(&answer), 2000);
}

/// A denial as TS-0008 and the design want it: 4.03, rsc 4103, the class of denial only (as
/// text, or as `m2m:dbg` of a JSON payload where the answer carries token request information).
fn assert_denied(answer: &Packet, message: &str) {
    assert_eq!(
        answer.header.code,
        MessageClass::Response(ResponseType::Forbidden)
    );
    assert_eq!(rsc(answer), 4103);
    match answer.get_content_format() {
        Some(coap_lite::ContentFormat::ApplicationJSON) => {
            let content: serde_json::Value = serde_json::from_slice(&answer.payload).unwrap();
            assert_eq!(content["m2m:dbg"], message, "{content}");
        }
        _ => assert_eq!(String::from_utf8_lossy(&answer.payload), message),
    }
}

/// The token request information (`tqf`) a token denial carries, from its JSON payload.
fn tqf(answer: &Packet) -> serde_json::Value {
    assert_eq!(
        answer.get_content_format(),
        Some(coap_lite::ContentFormat::ApplicationJSON),
        "{answer:?}"
    );
    let content: serde_json::Value = serde_json::from_slice(&answer.payload).unwrap();
    content["tqf"].clone()
}

#[tokio::test]
async fn allowed_request_and_its_answer_pass_with_options_and_payload_intact() {
    let up = upstream().await;
    let gw = gateway(up.addr, "").await;
    let mut client = Client::new().await;
    let mut sent = request(RequestType::Post, "/~/id-in/cse-in", "Cmeter", "req-1");
    sent.add_option(CoapOption::Unknown(TY), vec![4]);
    sent.add_option(CoapOption::Unknown(259), b"20261128T101500".to_vec());
    sent.add_option(CoapOption::UriQuery, b"rcn=1".to_vec());
    sent.add_option(CoapOption::Unknown(CUSTOM), b"passes".to_vec());
    sent.add_option(CoapOption::Unknown(CUSTOM), b"twice".to_vec());
    sent.set_content_format(coap_lite::ContentFormat::ApplicationJSON);
    sent.payload = br#"{"m2m:cin":{"con":"21.5"}}"#.to_vec();

    let answer = client.exchange(gw.coap(), sent.clone()).await;
    assert_eq!(answer.header.get_type(), MessageType::Acknowledgement);
    assert_eq!(
        answer.header.code,
        MessageClass::Response(ResponseType::Created)
    );
    assert_eq!(rsc(&answer), 2001);
    assert_eq!(option_text(&answer, RQI), "req-1");
    assert_eq!(
        option_text(&answer, CUSTOM),
        "kept",
        "unknown option relayed back"
    );
    assert_eq!(answer.payload, br#"echo:{"m2m:cin":{"con":"21.5"}}"#);

    assert_eq!(up.hits(), 1, "the Echo challenge was not forwarded");
    let seen = up.last();
    let options = |p: &Packet| -> Vec<(u16, Vec<Vec<u8>>)> {
        p.options()
            .filter(|(n, _)| **n != ECHO)
            .map(|(n, v)| (*n, v.iter().cloned().collect()))
            .collect()
    };
    assert_eq!(options(&seen), options(&sent), "every option, in order");
    assert_eq!(seen.payload, sent.payload);
    assert_eq!(seen.header.code, sent.header.code);
    assert_ne!(
        seen.get_token(),
        answer.get_token(),
        "the gateway's own token upstream"
    );
}

#[tokio::test]
async fn non_confirmable_request_gets_a_non_answer_under_its_token() {
    let up = upstream().await;
    let gw = gateway(up.addr, "").await;
    let mut client = Client::new().await;
    legitimate_passes(&mut client, &gw, "Cmeter").await;
    let mut p = request(RequestType::Get, "/cse-in", "Cmeter", "n1");
    p.header.set_type(MessageType::NonConfirmable);
    p.set_token(vec![9, 9, 9]);
    client.send(gw.coap(), &mut p).await;
    let answer = client.recv().await;
    assert_eq!(answer.header.get_type(), MessageType::NonConfirmable);
    assert_eq!(answer.get_token(), &[9, 9, 9]);
    assert_eq!(rsc(&answer), 2000);
    assert_eq!(
        up.last().header.get_type(),
        MessageType::NonConfirmable,
        "relayed as NON"
    );
}

#[tokio::test]
async fn separate_response_reaches_the_client_as_a_separate_response() {
    let up = upstream().await;
    let gw = gateway(up.addr, "").await;
    let mut client = Client::new().await;
    let first = client
        .exchange(
            gw.coap(),
            request(RequestType::Get, "/cse-in/separate", "Cmeter", "s1"),
        )
        .await;
    assert_eq!(first.header.get_type(), MessageType::Acknowledgement);
    assert_eq!(first.header.code, MessageClass::Empty, "empty ACK first");
    let later = client.recv().await;
    assert_eq!(later.header.get_type(), MessageType::Confirmable);
    assert_eq!(
        later.header.code,
        MessageClass::Response(ResponseType::Content)
    );
    assert_eq!(later.payload, b"later");
    assert_eq!(rsc(&later), 2000);
    client.ack(gw.coap(), later.header.message_id).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(
        up.acks.lock().unwrap().len(),
        1,
        "the gateway ACKed upstream"
    );
    assert!(
        client
            .recv_within(Duration::from_millis(2500))
            .await
            .is_none(),
        "an acknowledged response is not retransmitted"
    );
}

#[tokio::test]
async fn silent_upstream_is_answered_with_5103_but_an_acknowledged_exchange_waits() {
    let up = upstream().await;
    let gw = gateway(up.addr, "upstream_timeout_ms = 200").await;
    let mut client = Client::new().await;
    let started = std::time::Instant::now();
    let answer = client
        .exchange(
            gw.coap(),
            request(RequestType::Get, "/cse-in/silent", "Cmeter", "q1"),
        )
        .await;
    assert_eq!(answer.header.get_type(), MessageType::Acknowledgement);
    assert_eq!(
        answer.header.code,
        MessageClass::Response(ResponseType::NotFound)
    );
    assert_eq!(rsc(&answer), 5103);
    assert_eq!(option_text(&answer, RQI), "q1");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    // The upstream acknowledged at once and answers after 400 ms, past the timeout: the
    // client gets that answer, not 5103.
    let first = client
        .exchange(
            gw.coap(),
            request(RequestType::Get, "/cse-in/slow", "Cmeter", "q2"),
        )
        .await;
    assert_eq!(first.header.code, MessageClass::Empty);
    let later = client.recv().await;
    assert_eq!(later.payload, b"later");
    client.ack(gw.coap(), later.header.message_id).await;
    legitimate_passes(&mut client, &gw, "Cmeter").await;
}

#[tokio::test]
async fn retransmitted_request_gets_the_same_answer_and_is_forwarded_once() {
    let up = upstream().await;
    let gw = gateway(up.addr, "").await;
    let mut client = Client::new().await;
    legitimate_passes(&mut client, &gw, "Cmeter").await;
    let mut p = request(RequestType::Post, "/cse-in", "Cmeter", "once");
    p.payload = b"x".to_vec();
    let bytes = client.send(gw.coap(), &mut p).await;
    let (_, first) = client.recv_within(Duration::from_secs(5)).await.unwrap();
    client.socket.send_to(&bytes, gw.coap()).await.unwrap();
    let (_, again) = client.recv_within(Duration::from_secs(5)).await.unwrap();
    assert_eq!(first, again, "byte for byte");
    assert_eq!(up.hits(), 2, "the legitimate request and this one, once");
}

#[tokio::test]
async fn duplicated_datagrams_arriving_together_are_forwarded_once() {
    let up = upstream().await;
    let gw = gateway(up.addr, "").await;
    let mut client = Client::new().await;
    legitimate_passes(&mut client, &gw, "Cmeter").await;
    for i in 0..20 {
        let mut p = request(RequestType::Post, "/cse-in", "Cmeter", &format!("dup{i}"));
        let bytes = client.send(gw.coap(), &mut p).await;
        for _ in 0..3 {
            client.socket.send_to(&bytes, gw.coap()).await.unwrap();
        }
    }
    let mut answers = 0;
    while client
        .recv_within(Duration::from_millis(300))
        .await
        .is_some()
    {
        answers += 1;
    }
    assert!((20..=80).contains(&answers), "{answers}");
    assert_eq!(
        up.hits(),
        21,
        "each of the 20 requests once, and the legitimate one"
    );
}

#[tokio::test]
async fn retransmission_to_a_slow_upstream_resends_the_same_upstream_message() {
    let up = upstream().await;
    let gw = gateway(up.addr, "upstream_timeout_ms = 10000").await;
    let mut client = Client::new().await;
    legitimate_passes(&mut client, &gw, "Cmeter").await;
    let mut p = request(RequestType::Get, "/cse-in/silent", "Cmeter", "slow");
    let bytes = client.send(gw.coap(), &mut p).await;
    client.socket.send_to(&bytes, gw.coap()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(up.hits(), 2, "a duplicate at once is not sent on");
    tokio::time::sleep(Duration::from_millis(2100)).await;
    client.socket.send_to(&bytes, gw.coap()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let requests = up.requests.lock().unwrap().clone();
    assert_eq!(
        requests.len(),
        3,
        "the client's retransmission after ACK_TIMEOUT is"
    );
    assert_eq!(
        (requests[1].header.message_id, requests[1].get_token()),
        (requests[2].header.message_id, requests[2].get_token()),
        "as the same upstream message: same message id and token"
    );
}

#[tokio::test]
async fn block2_transfer_is_relayed_block_by_block_through_the_guard() {
    let up = upstream().await;
    let gw = gateway(up.addr, "").await;
    let mut client = Client::new().await;
    let mut body = Vec::new();
    for num in 0.. {
        let mut p = request(RequestType::Get, "/cse-in/big", "Cmeter", "b");
        p.add_option(CoapOption::Block2, block(num, false, 3));
        let answer = client.exchange(gw.coap(), p).await;
        assert_eq!(
            answer.header.code,
            MessageClass::Response(ResponseType::Content)
        );
        let (got, more, szx) = block_parts(answer.get_first_option(CoapOption::Block2).unwrap());
        assert_eq!((got, szx), (num, 3));
        body.extend_from_slice(&answer.payload);
        if !more {
            break;
        }
    }
    assert_eq!(body, big_body());
    assert_eq!(
        up.hits(),
        BIG_LEN.div_ceil(128),
        "one upstream request per block"
    );
    // A denied originator gets no block.
    let mut p = request(RequestType::Get, "/cse-in/big", "Cnobody", "b");
    p.add_option(CoapOption::Block2, block(1, false, 3));
    assert_denied(
        &client.exchange(gw.coap(), p).await,
        "access denied: originator is not active",
    );
}

#[tokio::test]
async fn block1_transfer_is_relayed_block_by_block_and_each_block_is_decided() {
    let up = upstream().await;
    let gw = gateway(up.addr, "").await;
    let mut client = Client::new().await;
    let body = big_body();
    let blocks: Vec<&[u8]> = body.chunks(256).collect();
    for (num, chunk) in blocks.iter().enumerate() {
        let more = num + 1 < blocks.len();
        let mut p = request(RequestType::Put, "/cse-in/upload", "Cmeter", "u");
        p.add_option(CoapOption::Block1, block(num as u32, more, 4));
        p.payload = chunk.to_vec();
        let answer = client.exchange(gw.coap(), p).await;
        let expected = if more {
            ResponseType::Continue
        } else {
            ResponseType::Changed
        };
        assert_eq!(
            answer.header.code,
            MessageClass::Response(expected),
            "block {num}"
        );
        let (got, got_more, szx) =
            block_parts(answer.get_first_option(CoapOption::Block1).unwrap());
        assert_eq!((got, got_more, szx), (num as u32, more, 4));
    }
    let received: Vec<u8> = up
        .requests
        .lock()
        .unwrap()
        .iter()
        .flat_map(|p| p.payload.clone())
        .collect();
    assert_eq!(
        received, body,
        "the upstream got every block, in order, once"
    );
    // A block from an originator the guard refuses does not reach the upstream.
    let mut p = request(RequestType::Put, "/cse-in/upload", "Cnobody", "u2");
    p.add_option(CoapOption::Block1, block(0, true, 4));
    p.payload = blocks[0].to_vec();
    assert_denied(
        &client.exchange(gw.coap(), p).await,
        "access denied: originator is not active",
    );
    assert_eq!(up.hits(), blocks.len());
}

#[tokio::test]
async fn observe_notifications_reach_the_observing_client_token() {
    let up = upstream().await;
    let gw = gateway(up.addr, "").await;
    let mut client = Client::new().await;
    let mut p = request(RequestType::Get, "/cse-in/obs", "Cmeter", "o1");
    p.set_token(vec![0xaa, 0xbb]);
    p.set_observe_value(0);
    let first = client.exchange(gw.coap(), p).await;
    assert_eq!(first.payload, b"n1");
    assert_eq!(first.get_token(), &[0xaa, 0xbb]);
    assert!(first.get_observe_value().is_some());
    for seq in 2..=3u32 {
        let n = client.recv().await;
        assert_eq!(n.get_token(), &[0xaa, 0xbb], "notification {seq}");
        assert_eq!(n.payload, format!("n{seq}").into_bytes());
        assert_eq!(n.get_observe_value().unwrap().unwrap(), seq);
        if n.header.get_type() == MessageType::Confirmable {
            client.ack(gw.coap(), n.header.message_id).await;
        }
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(
        up.acks.lock().unwrap().len(),
        1,
        "the confirmable notification was ACKed upstream"
    );
    // Deregistration goes upstream under the registration's token.
    let registration = up.last().get_token().to_vec();
    let mut p = request(RequestType::Get, "/cse-in/obs", "Cmeter", "o2");
    p.set_token(vec![0xaa, 0xbb]);
    p.set_observe_value(1);
    let last = client.exchange(gw.coap(), p).await;
    assert_eq!(last.payload, b"n1");
    assert_eq!(up.last().get_token(), registration);
}

#[tokio::test]
async fn unvalidated_source_gets_only_a_small_echo_challenge() {
    let up = upstream().await;
    let gw = gateway(up.addr, "").await;
    let mut client = Client::new().await;
    let mut p = request(RequestType::Get, "/cse-in/big", "CAdmin", "amp");
    let sent = client.send(gw.coap(), &mut p).await;
    let (challenge, bytes) = client.recv_within(Duration::from_secs(5)).await.unwrap();
    assert_eq!(
        challenge.header.code,
        MessageClass::Response(ResponseType::Unauthorized)
    );
    assert!(challenge
        .get_first_option(CoapOption::Unknown(ECHO))
        .is_some());
    assert!(
        bytes.len() <= 3 * sent.len(),
        "{} vs {}",
        bytes.len(),
        sent.len()
    );
    assert_eq!(up.hits(), 0, "nothing forwarded for an unvalidated source");
    // A tiny datagram would be amplified even by the challenge: it gets nothing.
    let mut tiny = Packet::new();
    tiny.header.set_type(MessageType::Confirmable);
    tiny.header.code = MessageClass::Request(RequestType::Get);
    tiny.set_token(vec![1]);
    let mut other = Client::new().await;
    other.send(gw.coap(), &mut tiny).await;
    assert!(other
        .recv_within(Duration::from_millis(300))
        .await
        .is_none());
    // A forged Echo value does not validate.
    let mut forged = request(RequestType::Get, "/cse-in", "CAdmin", "f");
    forged.add_option(CoapOption::Unknown(ECHO), vec![0; 12]);
    client.send(gw.coap(), &mut forged).await;
    let again = client.recv().await;
    assert_eq!(
        again.header.code,
        MessageClass::Response(ResponseType::Unauthorized)
    );
    assert_eq!(up.hits(), 0);
    legitimate_passes(&mut client, &gw, "CAdmin").await;
}

/// The Echo challenge (4.01 with an Echo option and nothing else), as the default answers an
/// unvalidated source.
fn assert_challenge(answer: &Packet) {
    assert_eq!(
        answer.header.code,
        MessageClass::Response(ResponseType::Unauthorized),
        "{answer:?}"
    );
    assert_eq!(
        answer
            .get_first_option(CoapOption::Unknown(ECHO))
            .map(Vec::len),
        Some(12)
    );
    assert!(answer.payload.is_empty());
}

fn assert_content(answer: &Packet) {
    assert_eq!(
        answer.header.code,
        MessageClass::Response(ResponseType::Content),
        "{answer:?}"
    );
    assert_eq!(rsc(answer), 2000);
}

#[tokio::test]
async fn legacy_client_without_echo_gets_only_the_challenge_by_default() {
    let up = upstream().await;
    let gw = gateway(up.addr, "").await;
    let mut legacy = Client::new().await;
    // A client that ignores Echo: its retransmission and its next request are challenged too,
    // and nothing of it reaches the upstream.
    let mut p = request(RequestType::Get, "/cse-in", "CAdmin", "legacy-1");
    legacy.send(gw.coap(), &mut p).await;
    assert_challenge(&legacy.recv().await);
    let again = p.to_bytes_unlimited().unwrap();
    legacy.socket.send_to(&again, gw.coap()).await.unwrap();
    assert_challenge(&legacy.recv().await);
    let next = request(RequestType::Get, "/cse-in", "CAdmin", "legacy-2");
    assert_challenge(&legacy.once(gw.coap(), next).await);
    assert_eq!(up.hits(), 0, "nothing forwarded for an unvalidated source");
    // A client that returns the Echo value passes.
    let mut client = Client::new().await;
    legitimate_passes(&mut client, &gw, "CAdmin").await;
    assert_eq!(up.hits(), 1);
}

#[tokio::test]
async fn trusted_source_is_served_without_echo_and_others_are_still_challenged() {
    let up = upstream().await;
    let gw = gateway(
        up.addr,
        "trusted_sources = [\"127.0.0.1/32\", \"10.0.0.0/24\"]",
    )
    .await;
    let mut trusted = Client::new().await;
    let answer = get_once(&mut trusted, gw.coap(), "CAdmin", "t1").await;
    assert_content(&answer);
    assert_eq!(up.hits(), 1);
    // A source outside the trusted ranges gets the challenge, and nothing is forwarded.
    let mut outside = Client::on([127, 0, 0, 2]).await;
    let answer = get_once(&mut outside, gw.coap(), "CAdmin", "o1").await;
    assert_challenge(&answer);
    assert_eq!(up.hits(), 1);
    // Trust is not a pass through the guard: an unknown originator is still refused.
    let answer = get_once(&mut trusted, gw.coap(), "Cmallory", "t2").await;
    assert_denied(&answer, "access denied: originator is not active");
    assert_eq!(up.hits(), 1);
    // The outside source validates with Echo and passes; the trusted one still does.
    legitimate_passes(&mut outside, &gw, "CAdmin").await;
    legitimate_passes(&mut trusted, &gw, "CAdmin").await;
    assert_eq!(up.hits(), 3);
}

#[tokio::test]
async fn trusted_source_is_still_rate_limited() {
    let up = upstream().await;
    let gw = gateway(
        up.addr,
        "trusted_sources = [\"127.0.0.1/32\"]\nrate_per_sec = 5\nrate_burst = 10",
    )
    .await;
    let mut flooder = Client::new().await;
    for i in 0..100 {
        let mut p = request(RequestType::Get, "/cse-in", "CAdmin", &format!("f{i}"));
        flooder.send(gw.coap(), &mut p).await;
    }
    let mut answers = 0;
    while flooder
        .recv_within(Duration::from_millis(300))
        .await
        .is_some()
    {
        answers += 1;
    }
    assert!((1..=12).contains(&answers), "{answers} answers to 100");
    assert!(up.hits() <= 12, "{} forwarded", up.hits());
    let mut other = Client::new().await;
    let answer = get_once(&mut other, gw.coap(), "CAdmin", "l").await;
    assert_content(&answer);
}

#[tokio::test]
async fn with_echo_off_every_source_is_served_without_a_challenge() {
    let up = upstream().await;
    let gw = gateway(up.addr, "echo = \"off\"").await;
    for (i, ip) in [[127, 0, 0, 1], [127, 0, 0, 3]].into_iter().enumerate() {
        let mut legacy = Client::on(ip).await;
        let answer = get_once(&mut legacy, gw.coap(), "CAdmin", "off").await;
        assert_content(&answer);
        assert_eq!(up.hits(), i + 1);
    }
    // No amplification bound either: a 5-byte request gets its full 4.00 answer.
    let mut tiny = Packet::new();
    tiny.header.set_type(MessageType::Confirmable);
    tiny.header.code = MessageClass::Request(RequestType::Get);
    tiny.set_token(vec![1]);
    let mut small = Client::new().await;
    let sent = small.send(gw.coap(), &mut tiny).await;
    let (answer, bytes) = small.recv_within(Duration::from_secs(5)).await.unwrap();
    assert_eq!(
        answer.header.code,
        MessageClass::Response(ResponseType::BadRequest)
    );
    assert!(
        bytes.len() > 3 * sent.len(),
        "{} vs {}",
        bytes.len(),
        sent.len()
    );
    // The guard still decides: an unknown originator is refused, CAdmin passes after it.
    let answer = get_once(&mut small, gw.coap(), "Cmallory", "m").await;
    assert_denied(&answer, "access denied: originator is not active");
    let answer = get_once(&mut small, gw.coap(), "CAdmin", "l").await;
    assert_content(&answer);
}

#[tokio::test]
async fn unknown_originator_is_refused_and_nothing_is_forwarded() {
    let up = upstream().await;
    let gw = gateway(up.addr, "").await;
    let mut client = Client::new().await;
    let answer = client
        .exchange(
            gw.coap(),
            request(RequestType::Get, "/cse-in", "Cmallory", "x"),
        )
        .await;
    assert_denied(&answer, "access denied: originator is not active");
    assert_eq!(option_text(&answer, RQI), "x");
    assert_eq!(up.hits(), 0);
    legitimate_passes(&mut client, &gw, "Cmeter").await;
}

#[tokio::test]
async fn deactivated_node_is_refused_while_others_pass() {
    let up = upstream().await;
    let gw = gateway(up.addr, "").await;
    let mut client = Client::new().await;
    legitimate_passes(&mut client, &gw, "Clamp").await;
    let admin = AdminClient::new(gw.gateway.admin_addr);
    admin.deactivate("Clamp").await.unwrap();
    let answer = client
        .exchange(
            gw.coap(),
            request(RequestType::Get, "/cse-in", "Clamp", "d"),
        )
        .await;
    assert_denied(&answer, "access denied: originator is not active");
    assert_eq!(up.hits(), 1);
    legitimate_passes(&mut client, &gw, "Cmeter").await;
    admin.activate("Clamp").await.unwrap();
    legitimate_passes(&mut client, &gw, "Clamp").await;
}

#[tokio::test]
async fn policy_denial_is_403_with_rsc_4103_naming_only_the_class() {
    let up = upstream().await;
    let gw = gateway(up.addr, "").await;
    let mut client = Client::new().await;
    let mut p = request(RequestType::Post, "/cse-in/meter-01", "Clamp", "p");
    p.add_option(CoapOption::Unknown(TY), vec![4]);
    let answer = client.exchange(gw.coap(), p).await;
    assert_denied(&answer, "access denied by policy");
    let delete = request(RequestType::Delete, "/cse-in/x", "Cmeter", "p2");
    assert_denied(
        &client.exchange(gw.coap(), delete).await,
        "access denied by policy",
    );
    assert_eq!(up.hits(), 0);
    legitimate_passes(&mut client, &gw, "Clamp").await;
}

#[tokio::test]
async fn malformed_datagrams_are_dropped_or_reset_and_harm_no_one() {
    let up = upstream().await;
    let gw = gateway(up.addr, "").await;
    let mut client = Client::new().await;
    legitimate_passes(&mut client, &gw, "Cmeter").await;
    // A valid confirmable request, one byte over max_datagram_bytes (1152): dropped unanswered.
    let mut big = request(RequestType::Post, "/cse-in", "Cmeter", "big");
    big.header.message_id = 0x0bad;
    big.payload = vec![b'x'; 1152 - (big.to_bytes().unwrap().len() + 1) + 1];
    let oversized = big.to_bytes_unlimited().unwrap();
    assert_eq!(oversized.len(), 1153);
    let junk: [&[u8]; 6] = [
        &oversized,
        b"",
        b"\xff\xff",
        b"GET / HTTP/1.1\r\n\r\n",
        &[0x48, 0x01, 0x00, 0x01, 1, 2], // CON, token length 8 but 2 bytes
        &[0x40, 0x01, 0x12, 0x34, 0xf1, 0x00], // CON, option delta 15
    ];
    for bytes in junk {
        client.socket.send_to(bytes, gw.coap()).await.unwrap();
    }
    // "GET / HTTP" starts like a confirmable CoAP header ('G' = 0x47) with message id "T ".
    for mid in [0x5420, 0x0001, 0x1234] {
        let (rst, bytes) = client.recv_within(Duration::from_secs(5)).await.unwrap();
        assert_eq!(
            rst.header.get_type(),
            MessageType::Reset,
            "confirmable junk is rejected"
        );
        assert_eq!((rst.header.message_id, bytes.len()), (mid, 4));
    }
    assert!(client
        .recv_within(Duration::from_millis(200))
        .await
        .is_none());
    // A well-formed CoAP request that is no oneM2M request: 4.00 / 4000.
    let mut p = Packet::new();
    p.header.set_type(MessageType::Confirmable);
    p.header.code = MessageClass::Request(RequestType::Get);
    p.add_option(CoapOption::UriPath, b"cse-in".to_vec());
    p.add_option(CoapOption::Unknown(RQI), b"no-fr".to_vec());
    let answer = client.exchange(gw.coap(), p).await;
    assert_eq!(
        answer.header.code,
        MessageClass::Response(ResponseType::BadRequest)
    );
    assert_eq!(rsc(&answer), 4000);
    let bad_path = request(RequestType::Get, "/cse-in/../x", "CAdmin", "bp");
    let answer = client.exchange(gw.coap(), bad_path).await;
    assert_eq!(rsc(&answer), 4000);
    assert_eq!(up.hits(), 1, "only the legitimate request went upstream");
    legitimate_passes(&mut client, &gw, "Cmeter").await;
}

#[tokio::test]
async fn a_flood_from_one_source_is_limited_and_other_sources_are_served() {
    let up = upstream().await;
    let gw = gateway(up.addr, "rate_per_sec = 5\nrate_burst = 10").await;
    let mut flooder = Client::new().await;
    for i in 0..200 {
        let mut p = request(RequestType::Get, "/cse-in", "Cmeter", &format!("f{i}"));
        flooder.send(gw.coap(), &mut p).await;
    }
    let mut answers = 0;
    while flooder
        .recv_within(Duration::from_millis(300))
        .await
        .is_some()
    {
        answers += 1;
    }
    assert!(
        (1..=12).contains(&answers),
        "{answers} answers to 200 datagrams"
    );
    let metrics = metrics(&gw).await;
    let dropped = metrics
        .lines()
        .find(|l| l.starts_with("m2mguard_dropped_total{") && l.contains("rate_limit"))
        .unwrap_or_else(|| panic!("{metrics}"));
    let count: u64 = dropped.rsplit(' ').next().unwrap().parse().unwrap();
    assert!(count >= 188, "{dropped}");
    let mut other = Client::new().await;
    legitimate_passes(&mut other, &gw, "Cmeter").await;
}

async fn metrics(gw: &TestGateway) -> String {
    let request = http::Request::get(format!("http://{}/metrics", gw.gateway.admin_addr))
        .body(http_body_util::Full::default())
        .unwrap();
    let answer = common::send(&common::client(), request).await;
    String::from_utf8(answer.body.to_vec()).unwrap()
}

#[tokio::test]
async fn legacy_numbering_reads_and_answers_with_legacy_options() {
    let up = upstream().await;
    let gw = gateway(up.addr, "legacy_options = true").await;
    let mut client = Client::new().await;
    let legacy = |fr: &str, rqi: &str| {
        let mut p = Packet::new();
        p.header.set_type(MessageType::Confirmable);
        p.header.code = MessageClass::Request(RequestType::Get);
        p.add_option(CoapOption::UriPath, b"cse-in".to_vec());
        p.add_option(CoapOption::Unknown(256), fr.as_bytes().to_vec());
        p.add_option(CoapOption::Unknown(257), rqi.as_bytes().to_vec());
        p
    };
    let denied = client.exchange(gw.coap(), legacy("Cmallory", "l1")).await;
    assert_eq!(
        denied.header.code,
        MessageClass::Response(ResponseType::Forbidden)
    );
    assert_eq!(rsc_with(&denied, 265), 4103);
    assert_eq!(rsc_with(&denied, RSC), 0, "no standard rsc in legacy mode");
    assert_eq!(option_text(&denied, 257), "l1");
    // The standard numbers mean nothing here: no originator.
    let standard = client
        .exchange(
            gw.coap(),
            request(RequestType::Get, "/cse-in", "Cmeter", "s"),
        )
        .await;
    assert_eq!(rsc_with(&standard, 265), 4000);
    assert_eq!(up.hits(), 0);
    let allowed = client.exchange(gw.coap(), legacy("Cmeter", "l2")).await;
    assert_eq!(
        allowed.header.code,
        MessageClass::Response(ResponseType::Content)
    );
    assert_eq!(option_text(&up.last(), 256), "Cmeter");
}

#[tokio::test]
async fn gateway_without_coap_table_has_no_coap_listener() {
    let echo = common::echo_upstream().await;
    let gw = common::gateway(echo.addr).await;
    assert!(gw.gateway.coap_addr.is_none());
}

#[tokio::test]
async fn an_observation_ends_when_the_observing_node_is_deactivated() {
    let up = upstream().await;
    let gw = gateway(up.addr, "").await;
    let mut client = Client::new().await;
    let mut p = request(RequestType::Get, "/cse-in/obs-slow", "Cmeter", "os1");
    p.set_token(vec![0xcc]);
    p.set_observe_value(0);
    let first = client.exchange(gw.coap(), p).await;
    assert_eq!(first.payload, b"n1");
    AdminClient::new(gw.gateway.admin_addr)
        .deactivate("Cmeter")
        .await
        .unwrap();
    // The observation ends at once with a last answer: 4.03 / 4103, its token, no Observe.
    let (last, _) = client
        .recv_within(Duration::from_millis(1500))
        .await
        .expect("a last answer ends the observation");
    assert_eq!(
        last.header.code,
        MessageClass::Response(ResponseType::Forbidden)
    );
    assert_eq!(last.get_token(), &[0xcc]);
    assert_eq!(rsc(&last), 4103);
    assert_eq!(last.get_observe_value(), None);
    assert_eq!(option_text(&last, 283), "os1", "rqi (option 283)");
    // n2 (NON) and n3 (CON) come 0.4 s and 0.8 s later: neither reaches the client.
    assert!(
        client
            .recv_within(Duration::from_millis(1500))
            .await
            .is_none(),
        "no notification after the deactivation"
    );
    legitimate_passes(&mut client, &gw, "Clamp").await;
}

#[tokio::test]
async fn every_observation_ends_when_the_gateway_itself_is_deactivated() {
    let up = upstream().await;
    let gw = gateway(up.addr, "").await;
    let mut client = Client::new().await;
    let mut p = request(RequestType::Get, "/cse-in/obs-slow", "Cmeter", "os2");
    p.set_token(vec![0xcd]);
    p.set_observe_value(0);
    assert_eq!(client.exchange(gw.coap(), p).await.payload, b"n1");
    // What the feed's gateway.put does (src/sync): the gateway's own standing.
    gw.gateway.state.nodes.set_gateway_deactivated(true);
    let (last, _) = client
        .recv_within(Duration::from_millis(1500))
        .await
        .expect("a last answer ends the observation");
    assert_eq!(rsc(&last), 4103);
    assert_eq!(last.get_token(), &[0xcd]);
    assert_eq!(
        last.payload,
        b"access denied: gateway deactivated or out of date"
    );
    let refused = client
        .exchange(
            gw.coap(),
            request(RequestType::Get, "/cse-in", "Clamp", "g1"),
        )
        .await;
    assert_eq!(rsc(&refused), 4103, "everyone is refused");
    gw.gateway.state.nodes.set_gateway_deactivated(false);
    legitimate_passes(&mut client, &gw, "Clamp").await;
}

#[path = "common/tokens.rs"]
mod token_kit;

/// The Uri-Query options of a request as the upstream received them.
fn queries_of(p: &Packet) -> Vec<String> {
    p.get_option(CoapOption::UriQuery)
        .into_iter()
        .flatten()
        .map(|q| String::from_utf8_lossy(q).into_owned())
        .collect()
}

/// A retrieve of the token-protected `/cse-in/meter` with these Uri-Query options.
fn meter_request(rqi: &str, queries: &[&str]) -> Packet {
    let mut p = request(RequestType::Get, "/cse-in/meter", "Cmeter", rqi);
    for q in queries {
        p.add_option(CoapOption::UriQuery, q.as_bytes().to_vec());
    }
    p
}

#[tokio::test]
async fn verified_token_query_is_consumed_and_an_invalid_one_refused() {
    let up = upstream().await;
    let issuers = token_kit::Issuers::new();
    let gw = gateway(up.addr, &issuers.toml("/id-in/cse-in/meter", 100)).await;
    let mut client = Client::new().await;
    let denied = "access denied: token missing or invalid";

    // No token where one is required, then a forged one: refused, nothing forwarded.
    let answer = client.exchange(gw.coap(), meter_request("none", &[])).await;
    assert_denied(&answer, denied);
    let where_tokens_come_from = serde_json::json!({"dasi": [{"url": token_kit::TQF}]});
    assert_eq!(tqf(&answer), where_tokens_come_from);
    let claims = issuers.claims(token_kit::HS_ISS, "Cmeter");
    let forged = token_kit::hs256(&claims, b"not-the-issuer-secret-32-bytes!!");
    let tkns = format!("tkns={forged}");
    let answer = client
        .exchange(gw.coap(), meter_request("forged", &[&tkns]))
        .await;
    assert_denied(&answer, denied);
    assert_eq!(tqf(&answer), where_tokens_come_from);
    assert_eq!(option_text(&answer, RQI), "forged");
    assert_eq!(up.hits(), 0);

    // A valid token passes; the upstream gets the request without it, other queries intact.
    let tkns = format!("tkns={}", issuers.fresh("Cmeter"));
    let answer = client
        .exchange(gw.coap(), meter_request("with-token", &["rcn=1", &tkns]))
        .await;
    assert_eq!(rsc(&answer), 2000, "{answer:?}");
    assert_eq!(queries_of(&up.last()), ["rcn=1"]);
    legitimate_passes(&mut client, &gw, "Cmeter").await;
}

#[tokio::test]
async fn with_forward_tokens_the_verified_token_reaches_the_upstream() {
    let up = upstream().await;
    let issuers = token_kit::Issuers::new();
    let extra = format!(
        "forward_tokens = true\n{}",
        issuers.toml("/id-in/cse-in/meter", 100)
    );
    let gw = gateway(up.addr, &extra).await;
    let mut client = Client::new().await;
    let tkns = format!("tkns={}", issuers.fresh("Cmeter"));
    let answer = client
        .exchange(gw.coap(), meter_request("forwarded", &[&tkns]))
        .await;
    assert_eq!(rsc(&answer), 2000, "{answer:?}");
    assert_eq!(queries_of(&up.last()), [tkns]);
}

/// GET of the CSE base as `fr` through `to`, sent once (an Echo challenge is not answered).
async fn get_once(client: &mut Client, to: std::net::SocketAddr, fr: &str, rqi: &str) -> Packet {
    client
        .once(to, request(RequestType::Get, "/cse-in", fr, rqi))
        .await
}
