//! The members of an `<AE>` or `<remoteCSE>` representation that registration reads (JSON
//! only, TS-0004 short names): `api` and `rn` of the request, `aei`/`csi` and `rn` of the
//! CSE's answer. Anything else, or another serialisation, reads as absent.

use serde_json::Value;

use crate::store::NodeKind;

/// What the registrant asks for, as far as the content tells: for Cedar's context.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Asked {
    pub api: Option<String>,
    pub rn: Option<String>,
}

impl Asked {
    pub fn read(kind: NodeKind, content: &[u8]) -> Asked {
        let resource = resource(kind, content);
        let member = |name| {
            resource
                .as_ref()
                .and_then(|r| r.get(name))
                .and_then(Value::as_str)
                .map(str::to_owned)
        };
        Asked {
            api: member("api"),
            rn: member("rn"),
        }
    }
}

/// What the CSE assigned in its answer to an accepted registration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Assigned {
    /// The AE-ID (`aei`) or CSE-ID (`csi`): the originator the node uses from now on.
    pub id: String,
    /// The resource name (`rn`) of the new resource.
    pub rn: String,
}

impl Assigned {
    pub fn read(kind: NodeKind, content: &[u8]) -> Option<Assigned> {
        let resource = resource(kind, content)?;
        let text = |name| resource.get(name)?.as_str().filter(|s| is_id(s));
        Some(Assigned {
            id: text(id_member(kind))?.to_owned(),
            rn: text("rn").filter(|rn| !rn.contains('/'))?.to_owned(),
        })
    }
}

/// The member of the answer that holds the assigned id.
pub fn id_member(kind: NodeKind) -> &'static str {
    match kind {
        NodeKind::Ae => "aei",
        NodeKind::Cse => "csi",
    }
}

/// `{"m2m:ae": {...}}` or `{"m2m:csr": {...}}`.
fn resource(kind: NodeKind, content: &[u8]) -> Option<serde_json::Map<String, Value>> {
    let wrapper = match kind {
        NodeKind::Ae => "m2m:ae",
        NodeKind::Cse => "m2m:csr",
    };
    match serde_json::from_slice::<Value>(content).ok()? {
        Value::Object(mut top) => match top.remove(wrapper)? {
            Value::Object(resource) => Some(resource),
            _ => None,
        },
        _ => None,
    }
}

/// An id the repository can hold: non-empty, at most 256 printable characters.
fn is_id(s: &str) -> bool {
    !s.is_empty() && s.len() <= 256 && !s.chars().any(char::is_control)
}
