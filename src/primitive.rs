//! The protocol-neutral request primitive (TS-0004) that every binding decodes into.
//!
//! In: nothing of ours; this is the shared vocabulary. Out: [`Primitive`], [`Operation`],
//! [`Protocol`] and [`Peer`]. A primitive is built once per request by a binding and then only
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
}

impl fmt::Debug for Security {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Tokens and check values are credentials: show only that they are present.
        f.debug_struct("Security")
            .field("tokens", &self.tokens.len())
            .field("token_ids", &self.token_ids)
            .field("aus", &self.aus.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

/// A oneM2M request primitive, protocol-neutral. Its `Debug` shows the content's size only.
#[derive(Clone)]
pub struct Primitive {
    pub op: Operation,
    /// Target, normalised to SP-relative form (`/<cse-id>/<path>`), see the HTTP binding.
    pub to: String,
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
    /// Resource type (`ty`) of a create.
    pub ty: Option<u16>,
    /// The content (`pc`), serialised as it arrived.
    pub content: Bytes,
    pub security: Security,
    pub peer: Peer,
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
