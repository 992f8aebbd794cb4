//! Upstream silence: a request the upstream neither answers nor acknowledges within
//! `upstream_timeout_ms` is answered by the gateway with 4.04 / rsc 5103 (target not reachable,
//! TS-0008's mapping, as the HTTP binding's 404 / 5103).
//!
//! In: the upstream token of every forwarded request, in the order forwarded (one timeout for
//! all, so deadlines come in order: a queue, checked every [`TICK`]). Out: the answers. An
//! exchange the upstream has acknowledged (a separate response will follow) is left alone.
//! The queue holds at most `max_exchanges` deadlines; beyond that the oldest are dropped.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use bytes::Bytes;
use coap_lite::{CoapOption, MessageClass, MessageType, Packet, RequestType};

use super::decode::RVI;
use super::exchange::Seen;
use super::reply;
use super::Relay;
use crate::record::{Answer, UpstreamFailure};

pub const TICK: Duration = Duration::from_millis(100);

pub struct Deadlines {
    queue: Mutex<VecDeque<(Instant, u64)>>,
    timeout: Duration,
    capacity: usize,
}

impl Deadlines {
    pub fn new(timeout: Duration, capacity: u64) -> Self {
        Deadlines {
            queue: Mutex::new(VecDeque::new()),
            timeout,
            capacity: usize::try_from(capacity).unwrap_or(usize::MAX),
        }
    }

    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    pub fn push(&self, token: u64) {
        if let Ok(mut q) = self.queue.lock() {
            if q.len() >= self.capacity {
                q.pop_front();
            }
            q.push_back((Instant::now() + self.timeout, token));
        }
    }

    /// The tokens whose deadline has passed at `now`, oldest first.
    fn expired(&self, now: Instant) -> Vec<u64> {
        let Ok(mut q) = self.queue.lock() else {
            return Vec::new();
        };
        let mut out = Vec::new();
        while q.front().is_some_and(|(deadline, _)| *deadline <= now) {
            if let Some((_, token)) = q.pop_front() {
                out.push(token);
            }
        }
        out
    }
}

impl Relay {
    /// Answers every exchange whose upstream stayed silent past its deadline.
    pub(super) async fn expire(&self, now: Instant) {
        for token in self.deadlines.expired(now) {
            let Some(route) = self.tables.routes.get(&token) else {
                continue; // answered
            };
            if !matches!(
                self.tables.seen.get(&route.key()),
                Some(Seen::Pending { acked: false, .. })
            ) {
                continue; // acknowledged: a separate response is on its way
            }
            self.tables.routes.remove(&token);
            // The request as far as the answer needs it: type, id, token, rqi, rvi.
            let mut request = Packet::new();
            request.header.set_type(if route.confirmable {
                MessageType::Confirmable
            } else {
                MessageType::NonConfirmable
            });
            request.header.code = MessageClass::Request(RequestType::Get);
            request.header.message_id = route.mid;
            request.set_token(route.token.clone());
            for (number, value) in [(self.numbers.rqi, &route.rqi), (RVI, &route.rvi)] {
                if let Some(value) = value {
                    request.add_option(CoapOption::Unknown(number), value.clone());
                }
            }
            let failure = UpstreamFailure::Timeout(self.deadlines.timeout());
            let answer = Answer::failed(&failure);
            if let Some(record) = route.record.take() {
                record.failed(failure);
            }
            let answer = Bytes::from(reply::answer(
                &request,
                self.numbers,
                &answer,
                self.tables.client_mid(),
            ));
            tracing::debug!(proto = "coap", peer = %route.client, "upstream silent; answered 5103");
            self.tables
                .seen
                .insert(route.key(), Seen::Answered(answer.clone()));
            self.to_client(&answer, route.client).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deadlines_expire_in_order_and_are_bounded() {
        let d = Deadlines::new(Duration::from_millis(10), 2);
        d.push(1);
        d.push(2);
        d.push(3);
        assert!(d.expired(Instant::now()).is_empty());
        let later = Instant::now() + Duration::from_millis(20);
        assert_eq!(
            d.expired(later),
            [2, 3],
            "the oldest was dropped at capacity"
        );
        assert!(d.expired(later).is_empty());
    }
}
