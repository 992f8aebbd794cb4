//! The upstream side: [`Relay::forward`] (the only way anything reaches the upstream, and it
//! takes the guard's [`Permit`] by value) and the mapping of what the upstream sends back.
//!
//! In: an allowed request, or a datagram from the upstream. Out: the request with our message
//! id and token (options, including unknown and oneM2M ones, and payload unchanged; only the
//! hop-by-hop Echo is removed, and the token queries `tkns=`/`tids=`, which the guard verified
//! and which are for the gateway, unless `forward_tokens`), or the answer with the client's message id and token.
//! Piggy-backed answers go back on the client's ACK; an empty ACK from the upstream becomes an
//! empty ACK to the client, and the separate response that follows is acknowledged upstream and
//! sent to the client as a separate response (retransmitted until acknowledged if confirmable).
//! Notifications of an observation keep flowing to the observing client's token.

use std::collections::LinkedList;
use std::time::Duration;

use bytes::Bytes;
use coap_lite::{CoapOption, MessageClass, MessageType, Packet};

use super::decode::{AUS, ECHO, RVI};
use super::exchange::{token_of, Key, Route, Seen};
use super::reply;
use super::{Relay, ACK_TIMEOUT, MAX_RETRANSMIT};
use crate::decision::Permitted;
use crate::guard::Addition;
use crate::primitive::Protocol;
use crate::record::{Answered, Forward, SharedPending, UpstreamFailure};

/// Removes the Uri-Query options that carry tokens or token ids (`tkns=…`, `tids=…`): a
/// forwarded request has passed the token stage, which verified every one of them, and they
/// are for the gateway. Other queries keep their order. The check value was verified on the
/// queries as the client sent them, before this.
fn consume_tokens(packet: &mut Packet) {
    let Some(queries) = packet.get_option(CoapOption::UriQuery) else {
        return;
    };
    let kept: LinkedList<Vec<u8>> = queries
        .iter()
        .filter(|q| !is_token_query(q))
        .cloned()
        .collect();
    packet.clear_option(CoapOption::UriQuery);
    if !kept.is_empty() {
        packet.set_option(CoapOption::UriQuery, kept);
    }
}

/// Puts the guard's additions on the request: a check value as option 339 (`aus`), an
/// attached token as Uri-Query `tkns=`.
fn apply(packet: &mut Packet, additions: &[Addition]) {
    for addition in additions {
        match addition {
            Addition::CheckValue(aus) => {
                packet.clear_option(CoapOption::Unknown(AUS));
                packet.add_option(CoapOption::Unknown(AUS), aus.as_bytes().to_vec());
            }
            Addition::Token(jwt) => {
                packet.add_option(CoapOption::UriQuery, format!("tkns={jwt}").into_bytes());
            }
        }
    }
}

/// A query the guard reads as tokens or token ids (the keys `decode` reads, exactly).
fn is_token_query(query: &[u8]) -> bool {
    query.starts_with(b"tkns=") || query.starts_with(b"tids=")
}

/// Observe option values (RFC 7641 §2).
const OBSERVE_REGISTER: u32 = 0;
const OBSERVE_DEREGISTER: u32 = 1;

impl Relay {
    /// Forwards a permitted request under our own message id and token, with the guard's
    /// additions (an inserted check value as option 339). Its record is completed by the
    /// upstream's first answer, or by its silence ([`super::timeout`]).
    pub(super) async fn forward(
        &self,
        mut permitted: Permitted<Packet>,
        client: std::net::SocketAddr,
    ) {
        let follow_up = permitted.take_follow_up().map(std::sync::Arc::new);
        let (mut packet, additions, record) = permitted.into_parts();
        if !self.forward_tokens {
            consume_tokens(&mut packet);
        }
        // After the consuming: an attached token is for the upstream.
        apply(&mut packet, &additions);
        let client_token = packet.get_token().to_vec();
        let observe = match packet.get_observe_value() {
            Some(Ok(value)) => Some(value),
            _ => None,
        };
        let token = match observe {
            Some(_) => self
                .tables
                .observers
                .get(&(client, client_token.clone()))
                .unwrap_or_else(|| self.tables.token()),
            None => self.tables.token(),
        };
        let route = Route {
            client,
            token: client_token.clone(),
            mid: packet.header.message_id,
            confirmable: packet.header.get_type() == MessageType::Confirmable,
            observe: observe == Some(OBSERVE_REGISTER),
            sent: std::time::Instant::now(),
            rqi: packet
                .get_first_option(CoapOption::Unknown(self.numbers.rqi))
                .cloned(),
            rvi: packet.get_first_option(CoapOption::Unknown(RVI)).cloned(),
            fr: packet
                .get_first_option(CoapOption::Unknown(self.numbers.fr))
                .and_then(|v| String::from_utf8(v.clone()).ok()),
            record: SharedPending::new(record),
            follow_up,
        };
        if observe == Some(OBSERVE_DEREGISTER) {
            self.tables.end_observation(token);
        }
        let mid = self.tables.upstream_mid();
        packet.header.message_id = mid;
        packet.set_token(token.to_be_bytes().to_vec());
        packet.clear_option(CoapOption::Unknown(ECHO));
        let Ok(bytes) = packet.to_bytes_unlimited() else {
            if let Some(record) = route.record.take() {
                record.failed(UpstreamFailure::Request("unencodable".into()));
            }
            return self.dropped("unencodable");
        };
        let bytes = Bytes::from(bytes);
        self.tables.seen.insert(
            route.key(),
            Seen::Pending {
                upstream: bytes.clone(),
                sent: std::time::Instant::now(),
                acked: false,
            },
        );
        self.tables.upstream_mids.insert(mid, token);
        self.tables.routes.insert(token, route);
        self.deadlines.push(token);
        self.to_upstream(&bytes).await;
    }

    pub(super) async fn upstream_datagram(&self, datagram: &[u8]) {
        let packet = match Packet::from_bytes(datagram) {
            Ok(p) if p.header.get_version() == 1 => p,
            _ => return self.dropped("malformed_upstream"),
        };
        let kind = packet.header.get_type();
        match (packet.header.code, kind) {
            (MessageClass::Response(_), _) => self.response(packet).await,
            (MessageClass::Empty, MessageType::Acknowledgement) => self.upstream_ack(&packet).await,
            (MessageClass::Empty, MessageType::Reset) => self.upstream_reset(&packet).await,
            (_, MessageType::Confirmable) => {
                // A ping, or a request: we serve nothing to the upstream.
                let rst = reply::empty(MessageType::Reset, packet.header.message_id);
                self.to_upstream(&rst).await;
            }
            _ => self.dropped("unexpected_upstream"),
        }
    }

    /// The upstream acknowledged our request without an answer: tell the client, so it stops
    /// retransmitting, and wait for the separate response.
    async fn upstream_ack(&self, packet: &Packet) {
        let Some(route) = self.route_of_mid(packet.header.message_id) else {
            return self.dropped("unmatched");
        };
        if let Some(record) = route.record.take() {
            let answered = Answered::new(route.sent.elapsed(), None, None);
            record.forwarded(Forward::Answered(answered));
        }
        if !route.confirmable {
            return;
        }
        if let Some(Seen::Pending { upstream, sent, .. }) = self.tables.seen.get(&route.key()) {
            let acked = Seen::Pending {
                upstream,
                sent,
                acked: true,
            };
            self.tables.seen.insert(route.key(), acked);
            let ack = reply::empty(MessageType::Acknowledgement, route.mid);
            self.to_client(&ack, route.client).await;
        }
    }

    /// The upstream rejected our request: the client's request is rejected likewise.
    async fn upstream_reset(&self, packet: &Packet) {
        let Some(token) = self.tables.upstream_mids.get(&packet.header.message_id) else {
            return self.dropped("unmatched");
        };
        let Some(route) = self.tables.routes.remove(&token) else {
            return self.dropped("unmatched");
        };
        self.tables.end_observation(token);
        if let Some(record) = route.record.take() {
            record.failed(UpstreamFailure::Reset);
        }
        if route.confirmable {
            let rst = Bytes::from(reply::empty(MessageType::Reset, route.mid));
            self.tables
                .seen
                .insert(route.key(), Seen::Answered(rst.clone()));
            self.to_client(&rst, route.client).await;
        }
    }

    fn route_of_mid(&self, mid: u16) -> Option<Route> {
        let token = self.tables.upstream_mids.get(&mid)?;
        self.tables.routes.get(&token)
    }

    /// A response: piggy-backed, separate, or a notification.
    async fn response(&self, mut packet: Packet) {
        let kind = packet.header.get_type();
        let token = token_of(packet.get_token());
        let found = token.and_then(|t| {
            self.tables
                .routes
                .remove(&t)
                .map(|r| (r, false))
                .or_else(|| self.tables.observing.get(&t).map(|r| (r, true)))
        });
        let (Some(token), Some((route, notification))) = (token, found) else {
            // Not ours (any more): reject a confirmable one, which also ends an observation
            // whose client has gone (RFC 7641 §3.6).
            self.dropped("unmatched");
            if kind == MessageType::Confirmable {
                let rst = reply::empty(MessageType::Reset, packet.header.message_id);
                self.to_upstream(&rst).await;
            }
            return;
        };
        // A notification for a node deactivated since it registered: the observation ends
        // here (RST to a confirmable one, RFC 7641 §3.6) and nothing reaches the client.
        let inactive = || {
            route
                .fr
                .as_deref()
                .is_none_or(|fr| !self.decider.active(fr))
        };
        if notification && inactive() {
            self.tables.end_observation(token);
            self.dropped("inactive");
            if kind == MessageType::Confirmable {
                let rst = reply::empty(MessageType::Reset, packet.header.message_id);
                self.to_upstream(&rst).await;
            }
            return;
        }
        if kind == MessageType::Confirmable {
            let ack = reply::empty(MessageType::Acknowledgement, packet.header.message_id);
            self.to_upstream(&ack).await;
        }
        if let Some(record) = route.record.take() {
            let status = Some(code_number(packet.header.code));
            let rsc = reply::rsc_of(&packet, self.numbers);
            let answered = Answered::new(route.sent.elapsed(), status, rsc);
            record.forwarded(Forward::Answered(answered));
        }
        self.track_observation(&packet, token, &route);
        if let Some(follow_up) = route.follow_up.as_deref().filter(|_| !notification) {
            let rsc = reply::rsc_of(&packet, self.numbers);
            let done = self
                .decider
                .complete(follow_up, Protocol::Coap, rsc, &packet.payload);
            if let Err(answer) = done {
                reply::overwrite(&mut packet, self.numbers, &answer);
            }
        }
        packet.set_token(route.token.clone());
        let piggybacked = kind == MessageType::Acknowledgement && !notification;
        if piggybacked && route.confirmable {
            packet.header.message_id = route.mid;
            let bytes = Bytes::from(reply::to_bytes(&packet));
            self.tables
                .seen
                .insert(route.key(), Seen::Answered(bytes.clone()));
            return self.to_client(&bytes, route.client).await;
        }
        // Separate response or notification: a message of its own, confirmable if the
        // upstream's was (or if it answers a confirmable request).
        let confirmable = kind == MessageType::Confirmable || (route.confirmable && !notification);
        let mid = self.tables.client_mid();
        packet.header.message_id = mid;
        packet.header.set_type(if confirmable {
            MessageType::Confirmable
        } else {
            MessageType::NonConfirmable
        });
        let bytes = Bytes::from(reply::to_bytes(&packet));
        if !notification {
            let later = if route.confirmable {
                Bytes::from(reply::empty(MessageType::Acknowledgement, route.mid))
            } else {
                bytes.clone()
            };
            self.tables.seen.insert(route.key(), Seen::Answered(later));
        }
        let key = (route.client, mid);
        self.tables.to_client.insert(key, token);
        self.to_client(&bytes, route.client).await;
        if confirmable {
            self.retransmit(key, bytes);
        }
    }

    /// Keeps an observation while the upstream's answers carry Observe; ends it otherwise.
    fn track_observation(&self, packet: &Packet, token: u64, route: &Route) {
        let observed = packet.get_observe_value().is_some()
            && matches!(packet.header.code, MessageClass::Response(r) if !r.is_error());
        if route.observe && observed {
            self.tables.observing.insert(token, route.clone());
            self.tables
                .observers
                .insert((route.client, route.token.clone()), token);
        } else if !observed && self.tables.observing.contains_key(&token) {
            self.tables.end_observation(token);
        }
    }

    /// Retransmits our confirmable message to a client until it is acknowledged (or reset),
    /// RFC 7252 §4.2 timing without the random factor; stops at shutdown.
    fn retransmit(&self, key: Key, bytes: Bytes) {
        let (clients, to_client) = (self.clients.clone(), self.tables.to_client.clone());
        let stop = self.stop.clone();
        tokio::spawn(async move {
            let mut wait = ACK_TIMEOUT;
            for _ in 0..MAX_RETRANSMIT {
                tokio::select! {
                    () = tokio::time::sleep(wait) => {}
                    () = stop.cancelled() => return,
                }
                if !to_client.contains_key(&key) {
                    return;
                }
                let _ = clients.send_to(&bytes, key.0).await;
                wait = wait.saturating_mul(2).min(Duration::from_secs(60));
            }
            to_client.invalidate(&key);
        });
    }
}

/// A CoAP code as the audit record writes it: `class * 100 + detail` (2.05 is 205).
fn code_number(code: coap_lite::MessageClass) -> u16 {
    let raw = u8::from(code);
    u16::from(raw >> 5) * 100 + u16::from(raw & 0x1f)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn queries(p: &Packet) -> Vec<String> {
        p.get_option(CoapOption::UriQuery)
            .into_iter()
            .flatten()
            .map(|q| String::from_utf8_lossy(q).into_owned())
            .collect()
    }

    #[test]
    fn an_inserted_check_value_becomes_option_339() {
        let mut p = Packet::new();
        p.add_option(CoapOption::UriPath, b"cse-in".to_vec());
        apply(&mut p, &[Addition::CheckValue("k1.3.bWFj".into())]);
        let sent = Packet::from_bytes(&p.to_bytes_unlimited().unwrap()).unwrap();
        let values: Vec<_> = sent
            .get_option(CoapOption::Unknown(AUS))
            .into_iter()
            .flatten()
            .collect();
        assert_eq!(values, [&b"k1.3.bWFj".to_vec()]);
        assert_eq!(
            sent.get_first_option(CoapOption::UriPath),
            Some(&b"cse-in".to_vec())
        );
    }

    #[test]
    fn token_queries_are_consumed_and_other_queries_keep_their_order() {
        let mut p = Packet::new();
        for q in [
            "rcn=1",
            "tkns=a.b.c+d.e.f",
            "lbl=x",
            "tids=t1",
            "tkns=g.h.i",
            "tknsx=1",
        ] {
            p.add_option(CoapOption::UriQuery, q.as_bytes().to_vec());
        }
        consume_tokens(&mut p);
        assert_eq!(queries(&p), ["rcn=1", "lbl=x", "tknsx=1"]);
        let mut only = Packet::new();
        only.add_option(CoapOption::UriQuery, b"tkns=a.b.c".to_vec());
        consume_tokens(&mut only);
        let sent = Packet::from_bytes(&only.to_bytes_unlimited().unwrap()).unwrap();
        assert!(queries(&sent).is_empty());
    }
}
