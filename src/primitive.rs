//! The protocol-neutral request primitive (TS-0004) that every binding decodes into.
//!
//! In: nothing of ours; this is the shared vocabulary. Out: [`Primitive`], [`Operation`],
//! [`Protocol`], [`Peer`] and [`Rsc`]. A primitive is built once per request by a binding and then only
//! read: the guard decides on it, the binding forwards the original wire form.

use std::fmt;
use std::net::SocketAddr;

use bytes::Bytes;

/// oneM2M operation (`op`), also the Cedar action name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Operation {
    Create,
    Retrieve,
    Update,
    Delete,
    Notify,
}

impl Operation {
    pub const ALL: [Operation; 5] = [
        Operation::Create,
        Operation::Retrieve,
        Operation::Update,
        Operation::Delete,
        Operation::Notify,
    ];

    /// The lower-case name used in Cedar policies and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Operation::Create => "create",
            Operation::Retrieve => "retrieve",
            Operation::Update => "update",
            Operation::Delete => "delete",
            Operation::Notify => "notify",
        }
    }

    /// The numeric `op` of TS-0004 (1 create … 5 notify).
    pub fn code(self) -> u8 {
        match self {
            Operation::Create => 1,
            Operation::Retrieve => 2,
            Operation::Update => 3,
            Operation::Delete => 4,
            Operation::Notify => 5,
        }
    }
}

impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// oneM2M response status codes the gateway produces itself (TS-0004 §6.6). Each binding
/// maps them to its own status (HTTP per TS-0009, CoAP per TS-0008) in its `reply` module.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rsc {
    BadRequest = 4000,
    OriginatorHasNoPrivilege = 4103,
    InternalServerError = 5000,
    TargetNotReachable = 5103,
}

/// The binding a primitive arrived on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Protocol {
    Http,
    Https,
    Coap,
    Mqtt,
}

impl Protocol {
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Http => "http",
            Protocol::Https => "https",
            Protocol::Coap => "coap",
            Protocol::Mqtt => "mqtt",
        }
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Who sent the primitive, as seen by the transport: never taken from a header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Peer {
    pub addr: SocketAddr,
    pub protocol: Protocol,
    /// Identity from an authenticated client certificate (its subject CN), if any.
    pub tls_identity: Option<String>,
}

impl Peer {
    /// A sender at `addr` on `protocol` whose identity the transport did not authenticate.
    pub fn unauthenticated(addr: SocketAddr, protocol: Protocol) -> Peer {
        Peer {
            addr,
            protocol,
            tls_identity: None,
        }
    }

    /// Whether the transport authenticated the sender's identity (a verified client
    /// certificate), whatever the binding.
    pub fn authenticated(&self) -> bool {
        self.tls_identity.is_some()
    }

    /// Whether the transport authenticated the sender as `id`.
    pub fn authenticated_as(&self, id: &str) -> bool {
        self.tls_identity.as_deref() == Some(id)
    }
}

/// Security parameters carried with a request. Filled by the bindings; the stages that read
/// them (check value, token) arrive with the message-checks work.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Security {
    /// Access-control tokens (`tkns`), compact JWTs.
    pub tokens: Vec<String>,
    /// Token ids (`tids`).
    pub token_ids: Vec<String>,
    /// Authorization signature (`aus`), the check value.
    pub aus: Option<String>,
    /// A token the gateway obtained for this request's originator and put into `tokens`
    /// ([`crate::das`]): added to the forwarded request once the request is allowed.
    pub attached: Option<String>,
}

impl fmt::Debug for Security {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Tokens and check values are credentials: show only that they are present.
        f.debug_struct("Security")
            .field("tokens", &self.tokens.len())
            .field("token_ids", &self.token_ids)
            .field("aus", &self.aus.as_ref().map(|_| "<redacted>"))
            .field("attached", &self.attached.is_some())
            .finish()
    }
}

/// A oneM2M request primitive, protocol-neutral. Its `Debug` shows the content's size only.
#[derive(Clone)]
pub struct Primitive {
    pub op: Operation,
    /// Target: the structured, SP-relative name the CSE acts on (see [`crate::target`]).
    /// Every rule that matches names reads this.
    pub to: String,
    /// The target as the sender wrote it, in SP-relative notation, where that differs from
    /// `to` (`/id-in/-/x`, `/id-in/cnt123`); what check values cover.
    pub to_as_sent: Option<String>,
    /// Originator (`fr`).
    pub fr: String,
    /// Request identifier (`rqi`).
    pub rqi: String,
    /// Release version indicator (`rvi`).
    pub rvi: Option<String>,
    /// Originating timestamp (`ot`), as sent (`YYYYMMDDTHHMMSS`).
    pub ot: Option<String>,
    /// Request expiration timestamp (`rqet`), as sent.
    pub rqet: Option<String>,
    /// Request parameters besides the fields above, as the binding carried them: HTTP's query
    /// string as sent (without `?`), CoAP's Uri-Query options joined with `&`, and for MQTT
    /// the request primitive's other members as compact JSON in the order sent (empty when
    /// there are none). Covered by check values.
    pub query: String,
    /// Resource type (`ty`) of a create.
    pub ty: Option<u16>,
    /// The content (`pc`), serialised as it arrived.
    pub content: Bytes,
    pub security: Security,
    pub peer: Peer,
}

impl Primitive {
    /// A request `rqi` of `op` on `to` by `fr` from `peer`, release 4, with nothing else: no
    /// timestamps, query, type, content or security parameters. The bindings decode every
    /// field themselves; this is what the tests, the benches and the demo build on.
    pub fn new(
        op: Operation,
        to: impl Into<String>,
        fr: impl Into<String>,
        rqi: impl Into<String>,
        peer: Peer,
    ) -> Primitive {
        Primitive {
            op,
            to: to.into(),
            to_as_sent: None,
            fr: fr.into(),
            rqi: rqi.into(),
            rvi: Some("4".into()),
            ot: None,
            rqet: None,
            query: String::new(),
            ty: None,
            content: Bytes::new(),
            security: Security::default(),
            peer,
        }
    }

    /// The target as the sender wrote it (SP-relative notation).
    pub fn target_as_sent(&self) -> &str {
        self.to_as_sent.as_deref().unwrap_or(&self.to)
    }
}

impl fmt::Debug for Primitive {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Primitive")
            .field("op", &self.op)
            .field("to", &self.to)
            .field("fr", &self.fr)
            .field("rqi", &self.rqi)
            .field("rvi", &self.rvi)
            .field("ot", &self.ot)
            .field("rqet", &self.rqet)
            .field("ty", &self.ty)
            .field("content_bytes", &self.content.len())
            .field("security", &self.security)
            .field("peer", &self.peer)
            .finish()
    }
}

/// What an MQTT client does with a topic: the Cedar action on a `Topic` resource.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TopicAction {
    Publish,
    Subscribe,
}

impl TopicAction {
    /// The Cedar action name and metrics label.
    pub fn as_str(self) -> &'static str {
        match self {
            TopicAction::Publish => "publish",
            TopicAction::Subscribe => "subscribe",
        }
    }
}

/// A publish to, or a subscription on, an MQTT topic (or topic filter) by a session's bound
/// originator. Decided by node status and Cedar policy, like a [`Primitive`].
#[derive(Clone, Debug)]
pub struct TopicRequest {
    pub action: TopicAction,
    /// The originator the session is bound to (from CONNECT).
    pub originator: String,
    /// The topic name or filter as sent.
    pub topic: String,
    /// Set for oneM2M request and response topics (TS-0010).
    pub onem2m: Option<OneM2mTopic>,
    pub peer: Peer,
}

/// The parts of a `/oneM2M/<kind>/<originator>/<receiver>/<format>` topic; an id is `None`
/// where the filter has a wildcard in its place. Ids are as in `fr` (":" turned back into "/").
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OneM2mTopic {
    /// `"req"`, `"resp"`, `"reg_req"`, `"reg_resp"`, or `"*"` for a filter with a wildcard
    /// in the kind's place (or before it).
    pub kind: &'static str,
    pub originator: Option<String>,
    pub receiver: Option<String>,
}
