//! Datagrams from clients: limits, parsing, deduplication, Echo, decode, decide — and the
//! empty ACK/RST that clients send for our messages to them.
//!
//! In: one datagram and its source. Out: at most one datagram to the client, or (with a
//! permit) one to the upstream. An unvalidated source only ever gets an answer no larger than
//! `amplification_factor` times what it sent.

use std::net::SocketAddr;
use std::time::Instant;

use bytes::Bytes;
use coap_lite::{CoapOption, MessageClass, MessageType, Packet};

use super::decode::{decode, ECHO};
use super::exchange::{Key, Seen};
use super::reply;
use super::{Relay, ACK_TIMEOUT};
use crate::decision::Decision;
use crate::primitive::{Peer, Protocol};
use crate::record::{About, Refusal};

impl Relay {
    pub(super) async fn client_datagram(&self, datagram: &[u8], source: SocketAddr) {
        let refuse = |refusal| {
            let about = About::source(Protocol::Coap, source);
            self.decider.refuse(about, refusal)
        };
        if !self.rate.admit(source, Instant::now()) {
            refuse(Refusal::RateLimited);
            return;
        }
        if datagram.len() > self.max_datagram_bytes {
            refuse(Refusal::DatagramTooLarge);
            return;
        }
        let packet = match Packet::from_bytes(datagram) {
            Ok(p) if p.header.get_version() == 1 => p,
            _ => {
                refuse(Refusal::NotCoap);
                if let Some(rst) = reply::reject(datagram) {
                    self.answer(&rst, source, datagram.len()).await;
                }
                return;
            }
        };
        let kind = packet.header.get_type();
        let message = matches!(kind, MessageType::Confirmable | MessageType::NonConfirmable);
        match packet.header.code {
            MessageClass::Request(_) if message => {
                self.request(packet, source, datagram.len()).await
            }
            MessageClass::Empty => {
                self.empty_client_datagram(&packet, source, datagram.len())
                    .await
            }
            _ => {
                // Clients send us no responses, and a request is never an ACK or RST: reject a
                // confirmable one, drop the rest.
                self.dropped("unexpected");
                if kind == MessageType::Confirmable {
                    let rst = reply::empty(MessageType::Reset, packet.header.message_id);
                    self.answer(&rst, source, datagram.len()).await;
                }
            }
        }
    }

    /// Sends an answer to a client's datagram of `request_len` bytes, unless the source is
    /// unvalidated and the answer would amplify beyond the configured factor.
    async fn answer(&self, bytes: &[u8], client: SocketAddr, request_len: usize) {
        let limit = request_len.saturating_mul(self.amplification_factor);
        if bytes.len() > limit && !self.echo.is_validated(client) {
            return self.dropped("amplification");
        }
        self.to_client(bytes, client).await;
    }

    async fn request(&self, packet: Packet, source: SocketAddr, len: usize) {
        let key: Key = (source, packet.header.message_id);
        // Claimed at once, so that a duplicate read by the other reader meanwhile is seen as
        // one; the entry is replaced by the answer or the forwarded datagram below.
        let placeholder = Seen::Pending {
            upstream: Bytes::new(),
            sent: Instant::now(),
            acked: false,
        };
        if let Some(seen) = self.tables.seen.claim(key, placeholder) {
            return self
                .repeat(seen, source, len, packet.header.message_id)
                .await;
        }
        if !self.echo.is_validated(source) {
            let echoed = packet
                .get_first_option(CoapOption::Unknown(ECHO))
                .is_some_and(|v| self.echo.answer(source, v));
            if !echoed {
                let challenge = self.echo.challenge(source);
                let answer = reply::challenge(&packet, &challenge, self.tables.client_mid());
                return self.answered(key, answer, len).await;
            }
        }
        let peer = Peer {
            addr: source,
            protocol: Protocol::Coap,
            tls_identity: None,
        };
        let about = About::peer(&peer);
        let mut primitive = match decode(&packet, peer, self.decider.addressing(), self.numbers) {
            Ok(p) => p,
            Err(e) => {
                let answer = self
                    .decider
                    .refuse(about, Refusal::Malformed(e.to_string()));
                let mid = self.tables.client_mid();
                let answer = reply::answer(&packet, self.numbers, &answer, mid);
                return self.answered(key, answer, len).await;
            }
        };
        let decision = match self.decider.resolve(&mut primitive).await {
            Ok(()) => self.decider.decide(&primitive),
            Err(denial) => Decision::Deny(denial),
        };
        match decision {
            Decision::Allow(permitted) => self.forward(permitted.with(packet), source).await,
            Decision::Deny(denial) => {
                let mid = self.tables.client_mid();
                let answer = self.decider.answer(&denial);
                let answer = reply::answer(&packet, self.numbers, &answer, mid);
                self.answered(key, answer, len).await;
            }
        }
    }

    /// Remembers `answer` for retransmissions of `key` and sends it.
    async fn answered(&self, key: Key, answer: Vec<u8>, request_len: usize) {
        let answer = Bytes::from(answer);
        self.tables.seen.insert(key, Seen::Answered(answer.clone()));
        self.answer(&answer, key.0, request_len).await;
    }

    /// A retransmission: the same answer again, an empty ACK if the upstream has acknowledged
    /// (a separate response is on its way), or — not acknowledged upstream for ACK_TIMEOUT —
    /// the same upstream message again, with the same message id, which the upstream
    /// deduplicates (RFC 7252 §4.2 retransmission, driven by the client's). A duplicate that
    /// arrives sooner is not sent on at all.
    async fn repeat(&self, seen: Seen, source: SocketAddr, len: usize, mid: u16) {
        match seen {
            Seen::Answered(answer) => self.answer(&answer, source, len).await,
            Seen::Pending { acked: true, .. } => {
                let ack = reply::empty(MessageType::Acknowledgement, mid);
                self.answer(&ack, source, len).await;
            }
            Seen::Pending { upstream, sent, .. }
                if !upstream.is_empty() && sent.elapsed() >= ACK_TIMEOUT =>
            {
                let again = Seen::Pending {
                    upstream: upstream.clone(),
                    sent: Instant::now(),
                    acked: false,
                };
                self.tables.seen.insert((source, mid), again);
                self.to_upstream(&upstream).await;
            }
            // Still being decided, or sent upstream moments ago: nothing to repeat yet.
            Seen::Pending { .. } => {}
        }
    }

    /// ACK or RST for one of our messages to the client; a CoAP ping gets its RST.
    async fn empty_client_datagram(&self, packet: &Packet, source: SocketAddr, len: usize) {
        let key = (source, packet.header.message_id);
        match packet.header.get_type() {
            MessageType::Acknowledgement => self.tables.to_client.invalidate(&key),
            MessageType::Reset => {
                // RFC 7641 §3.6: a RST to a notification cancels the observation; the
                // upstream learns it from our RST to its next notification.
                if let Some(token) = self.tables.to_client.remove(&key) {
                    self.tables.end_observation(token);
                }
            }
            MessageType::Confirmable => {
                let rst = reply::empty(MessageType::Reset, packet.header.message_id);
                self.answer(&rst, source, len).await;
            }
            MessageType::NonConfirmable => self.dropped("unexpected"),
        }
    }
}
