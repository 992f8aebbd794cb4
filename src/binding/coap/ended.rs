//! Observations end when their node may no longer be served: on every status change the relay
//! hears of (a node's, or the gateway's own, [`EVERY_NODE`]), each observation whose originator
//! is no longer active gets a last answer — 4.03 with rsc 4103, NON, no Observe option, which
//! ends the observation at the client (RFC 7641 §3.2) — and is forgotten, so the upstream's
//! next notification for it is rejected with RST (§3.6) and ends it there too.

use std::sync::Arc;

use coap_lite::{CoapOption, MessageClass, MessageType, Packet, ResponseType};
use tokio::sync::broadcast::error::RecvError;

use super::decode::RVI;
use super::reply::{to_bytes, uint};
use super::Relay;
use crate::guard::Stage;
use crate::primitive::Rsc;
use crate::store::EVERY_NODE;

/// Runs until the status changes end (the gateway stops).
pub async fn end_on_status_change(relay: Arc<Relay>) {
    let mut changes = relay.decider.status_changes();
    loop {
        let (node, stage) = match changes.recv().await {
            Ok(id) if id == EVERY_NODE => (None, Stage::Gateway),
            Ok(id) => (Some(id), Stage::Status),
            // Fell behind: check every observation.
            Err(RecvError::Lagged(_)) => (None, Stage::Status),
            Err(RecvError::Closed) => return,
        };
        relay.end_inactive(node.as_deref(), stage).await;
    }
}

impl Relay {
    /// Ends the observations of `node` (all nodes: `None`) whose originator is not active.
    async fn end_inactive(&self, node: Option<&str>, stage: Stage) {
        let ended: Vec<(u64, super::exchange::Route)> = self
            .tables
            .observing
            .iter()
            // An observation without an originator ends at its next notification anyway.
            .filter(|(_, route)| match (&route.fr, node) {
                (Some(fr), Some(node)) => fr == node,
                (Some(_), None) => true,
                (None, _) => false,
            })
            .filter(|(_, route)| {
                route
                    .fr
                    .as_deref()
                    .is_some_and(|fr| !self.decider.active(fr))
            })
            .map(|(token, route)| (*token, route))
            .collect();
        for (token, route) in ended {
            self.tables.end_observation(token);
            let last = self.last_answer(&route, stage);
            self.to_client(&last, route.client).await;
            tracing::info!(proto = "coap", peer = %route.client, node.id = ?route.fr, "observation ended: node no longer active");
        }
    }

    /// 4.03 / 4103 to the observer, with its token and the request's `rqi` and `rvi`.
    fn last_answer(&self, route: &super::exchange::Route, stage: Stage) -> Vec<u8> {
        let mut p = Packet::new();
        p.header.set_type(MessageType::NonConfirmable);
        p.header.message_id = self.tables.client_mid();
        p.header.code = MessageClass::Response(ResponseType::Forbidden);
        p.set_token(route.token.clone());
        p.add_option(
            CoapOption::Unknown(self.numbers.rsc),
            uint(Rsc::OriginatorHasNoPrivilege as u16),
        );
        for (number, value) in [(self.numbers.rqi, &route.rqi), (RVI, &route.rvi)] {
            if let Some(value) = value {
                p.add_option(CoapOption::Unknown(number), value.clone());
            }
        }
        p.set_content_format(coap_lite::ContentFormat::TextPlain);
        p.payload = stage.public_message().as_bytes().to_vec();
        to_bytes(&p)
    }
}
