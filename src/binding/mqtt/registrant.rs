//! Registrations (and deregistrations) a session has in flight over MQTT: the CSE answers
//! them on the session's response topic (`reg_resp`, `resp`), through the broker; the answer
//! is read here before it reaches the client, so that the assigned id is enrolled first
//! ([`crate::decision::Decider::complete`]).
//!
//! In: the follow-up of each forwarded request, by `rqi`; the broker's publishes to the
//! client. Out: what completed (the session's new originator, after its registration), and
//! the gateway's own error answer in place of the CSE's where the enrolment failed.

use std::collections::HashMap;

use rumqttc::mqttbytes::v4::Publish;
use serde_json::Value;

use super::reply::{self, Echo};
use super::topic::{self, Format};
use super::{decode, MqttBinding};
use crate::primitive::Protocol;
use crate::registration::{Completed, FollowUp};

/// Follow-ups one session may have in flight; more registrations are refused until answered.
pub const MAX_IN_FLIGHT: usize = 16;

#[derive(Default)]
pub struct InFlight {
    by_rqi: HashMap<String, FollowUp>,
}

impl InFlight {
    /// Remembers `follow_up` for the answer to request `rqi`; `false` when the session has
    /// [`MAX_IN_FLIGHT`] already.
    pub fn insert(&mut self, rqi: &str, follow_up: FollowUp) -> bool {
        if self.by_rqi.len() >= MAX_IN_FLIGHT && !self.by_rqi.contains_key(rqi) {
            return false;
        }
        self.by_rqi.insert(rqi.to_owned(), follow_up);
        true
    }

    /// Completes what `p` (a publish from the broker to this client) answers, if anything;
    /// where the gateway could not record an accepted registration, `p` becomes its error
    /// answer instead.
    pub fn answered(&mut self, b: &MqttBinding, p: &mut Publish) -> Option<Completed> {
        if self.by_rqi.is_empty() {
            return None;
        }
        let parts = topic::onem2m(&p.topic)?;
        let cse = b.cse_id.trim_start_matches('/');
        let from_cse = parts.receiver.as_deref().map(|r| r.trim_start_matches('/')) == Some(cse);
        if !from_cse || !matches!(parts.kind, "resp" | "reg_resp") {
            return None;
        }
        let format = if p.topic.ends_with("/cbor") {
            Format::Cbor
        } else {
            Format::Json
        };
        let object = decode::parse(&p.payload, format).ok()?;
        let follow_up = self.by_rqi.remove(object.get("rqi")?.as_str()?)?;
        let rsc = object
            .get("rsc")
            .and_then(Value::as_u64)
            .and_then(|n| u16::try_from(n).ok());
        let content = object.get("pc").map(Value::to_string).unwrap_or_default();
        match b
            .decider
            .complete(&follow_up, Protocol::Mqtt, rsc, content.as_bytes())
        {
            Ok(done) => Some(done),
            Err(answer) => {
                let echo = Echo {
                    rqi: object.get("rqi").and_then(Value::as_str).map(str::to_owned),
                    fr: object.get("to").and_then(Value::as_str).map(str::to_owned),
                    rvi: object.get("rvi").and_then(Value::as_str).map(str::to_owned),
                };
                p.payload = reply::response(&echo, &answer, &b.cse_id, format);
                None
            }
        }
    }
}
