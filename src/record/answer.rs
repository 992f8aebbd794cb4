//! What the sender of a refused request is told, built in this one place from the outcome:
//! the oneM2M response status code, the class of the problem (never the detail of a denial),
//! and for a token denial the token request information (`tqf`) when one is configured.
//! Bindings only serialise an [`Answer`]:
//!
//! - HTTP: status per TS-0009 (413 and 431 for the size limits), `X-M2M-RSC`, and a JSON body
//!   `{"m2m:dbg": <message>, "tqf": {"dasi": [{"url": <tqf>}]}}` (`tqf` only where set).
//! - CoAP: code per TS-0008, the rsc option, and the message as a `text/plain` payload; with
//!   `tqf`, the payload is the same JSON as HTTP's body instead (`application/json`), so that
//!   a client reads the token request information the same way on either binding.
//! - MQTT: a response primitive with `rsc`, and `pc` holding the same JSON as HTTP's body
//!   (`m2m:dbg`, and `tqf` where set).

use std::borrow::Cow;
use std::sync::Arc;

use super::{Refusal, UpstreamFailure};
use crate::guard::{Denial, Stage};
use crate::primitive::Rsc;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Answer {
    pub rsc: Rsc,
    /// The class of the problem (`m2m:dbg`).
    pub message: Cow<'static, str>,
    /// Where tokens are obtained (`tqf`, TS-0004 `m2m:dynAuthTokenReqInfo`), for a token
    /// denial when configured.
    pub tqf: Option<Arc<str>>,
}

impl Answer {
    /// A denial by a guard stage: 4103 and the stage's class (5000 for stage `audit`: the
    /// gateway's own failure); `tqf` only for the token stage.
    pub fn denied(denial: &Denial, tqf: Option<&Arc<str>>) -> Answer {
        Answer {
            rsc: match denial.stage {
                Stage::Audit => Rsc::InternalServerError,
                _ => Rsc::OriginatorHasNoPrivilege,
            },
            message: Cow::Borrowed(denial.stage.public_message()),
            tqf: match denial.stage {
                Stage::Token => tqf.cloned(),
                _ => None,
            },
        }
    }

    /// A refusal by the binding: 4000 with what was wrong, 4103 for another receiver. (The
    /// bindings drop some unanswered: datagrams over the rate limit or the size, or not CoAP,
    /// and MQTT packets over the size, which end the session.)
    pub fn refused(refusal: &Refusal) -> Answer {
        let (rsc, message) = match refusal {
            Refusal::Malformed(why) => (Rsc::BadRequest, Cow::Owned(why.clone())),
            Refusal::Retained => (
                Rsc::BadRequest,
                Cow::Borrowed("a oneM2M request must not be retained"),
            ),
            Refusal::WrongReceiver { .. } => (
                Rsc::OriginatorHasNoPrivilege,
                Cow::Borrowed("requests through this gateway go to its CSE only"),
            ),
            Refusal::HeaderTooLarge
            | Refusal::BodyTooLarge
            | Refusal::BodyUnreadable
            | Refusal::PacketTooLarge(_)
            | Refusal::TooManySubscriptions(_)
            | Refusal::TooManyInFlight(_)
            | Refusal::AnswersAsCse
            | Refusal::DatagramTooLarge
            | Refusal::NotCoap
            | Refusal::RateLimited => (Rsc::BadRequest, Cow::Owned(refusal.to_string())),
        };
        Answer {
            rsc,
            message,
            tqf: None,
        }
    }

    /// A failure of the gateway's own after the upstream answered: 5000 with `message`.
    pub fn internal(message: &'static str) -> Answer {
        Answer {
            rsc: Rsc::InternalServerError,
            message: Cow::Borrowed(message),
            tqf: None,
        }
    }

    /// An allowed request whose upstream failed: 5103.
    pub fn failed(_failure: &UpstreamFailure) -> Answer {
        Answer {
            rsc: Rsc::TargetNotReachable,
            message: Cow::Borrowed("target not reachable"),
            tqf: None,
        }
    }

    /// The JSON content of the answer: `{"m2m:dbg": …}`, with `tqf` where set (HTTP's body,
    /// MQTT's `pc`, CoAP's payload when there is a `tqf`).
    pub fn content(&self) -> serde_json::Value {
        let mut body = serde_json::json!({ "m2m:dbg": self.message });
        if let Some(url) = &self.tqf {
            body["tqf"] = serde_json::json!({ "dasi": [{ "url": &**url }] });
        }
        body
    }
}
