//! MQTT topics: oneM2M request and response topics (TS-0010 §6.4), and topic-filter matching.
//!
//! In: topic names and filters as sent. Out: [`OneM2mTopic`] parts and the ids in `fr` form
//! (":" in a topic stands for "/"), and whether a filter matches a name (MQTT 3.1.1 §4.7).

use crate::primitive::OneM2mTopic;

/// The serialisation named by a oneM2M topic's last level.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Json,
    Cbor,
}

impl Format {
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Json => "json",
            Format::Cbor => "cbor",
        }
    }
}

/// A oneM2M request topic `/oneM2M/req/<originator>/<receiver>/<json|cbor>`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestTopic {
    /// As written in the topic.
    pub originator_raw: String,
    pub receiver_raw: String,
    /// The originator in `fr` form.
    pub originator: String,
    pub format: Format,
}

impl RequestTopic {
    /// The topic the answer to this request goes to.
    pub fn response_topic(&self) -> String {
        format!(
            "/oneM2M/resp/{}/{}/{}",
            self.originator_raw,
            self.receiver_raw,
            self.format.as_str()
        )
    }
}

/// Whether `topic` is in the oneM2M request space at all (then it must parse as one).
pub fn is_request(topic: &str) -> bool {
    topic.starts_with("/oneM2M/req/")
}

/// Parses a request topic; `None` if it is in the request space but not well formed.
pub fn request(topic: &str) -> Option<RequestTopic> {
    let rest = topic.strip_prefix("/oneM2M/req/")?;
    let mut levels = rest.split('/');
    let (originator, receiver, format) = (levels.next()?, levels.next()?, levels.next()?);
    if levels.next().is_some() || !plain_id(originator) || !plain_id(receiver) {
        return None;
    }
    let format = match format {
        "json" => Format::Json,
        "cbor" => Format::Cbor,
        _ => return None,
    };
    Some(RequestTopic {
        originator_raw: originator.to_owned(),
        receiver_raw: receiver.to_owned(),
        originator: id(originator),
        format,
    })
}

/// The oneM2M parts of a topic name or filter, for policy; `None` for other topics.
pub fn onem2m(topic: &str) -> Option<OneM2mTopic> {
    let rest = topic.strip_prefix("/oneM2M/")?;
    let mut levels = rest.split('/');
    let kind = match levels.next()? {
        "req" => "req",
        "resp" => "resp",
        _ => return None,
    };
    let mut part = || levels.next().filter(|l| plain_id(l)).map(id);
    let originator = part();
    let receiver = part();
    Some(OneM2mTopic {
        kind,
        originator,
        receiver,
    })
}

/// A topic level that names an id: not empty, no wildcard.
fn plain_id(level: &str) -> bool {
    !level.is_empty() && !level.contains(['+', '#'])
}

/// A topic level as an id in `fr` form.
fn id(level: &str) -> String {
    level.replace(':', "/")
}

/// Whether `filter` matches topic `name` (MQTT 3.1.1 §4.7; `$` topics only by explicit levels).
pub fn matches(filter: &str, name: &str) -> bool {
    if name.starts_with('$') && (filter.starts_with('+') || filter.starts_with('#')) {
        return false;
    }
    let mut names = name.split('/');
    for level in filter.split('/') {
        match (level, names.next()) {
            ("#", _) => return true,
            ("+", Some(_)) => {}
            (l, Some(n)) if l == n => {}
            _ => return false,
        }
    }
    names.next().is_none()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_topic_parses_ids_in_fr_form_and_names_its_response_topic() {
        let t = request("/oneM2M/req/:id-mn/id-in/json").unwrap();
        assert_eq!(t.originator, "/id-mn");
        assert_eq!(t.format, Format::Json);
        assert_eq!(t.response_topic(), "/oneM2M/resp/:id-mn/id-in/json");
        assert_eq!(
            request("/oneM2M/req/Cm/id-in/cbor").unwrap().format,
            Format::Cbor
        );
    }

    #[test]
    fn malformed_request_topics_are_refused() {
        for bad in [
            "/oneM2M/req/Cm/id-in",
            "/oneM2M/req/Cm/id-in/xml",
            "/oneM2M/req/Cm/id-in/json/extra",
            "/oneM2M/req//id-in/json",
            "/oneM2M/req/+/id-in/json",
        ] {
            assert!(request(bad).is_none(), "{bad}");
            assert!(is_request(bad));
        }
    }

    #[test]
    fn onem2m_parts_leave_out_wildcards() {
        let parts = onem2m("/oneM2M/resp/Cm/+/json").unwrap();
        assert_eq!(
            (parts.kind, parts.originator.as_deref(), parts.receiver),
            ("resp", Some("Cm"), None)
        );
        let parts = onem2m("/oneM2M/req/+/Cm/#").unwrap();
        assert_eq!(
            (parts.originator, parts.receiver.as_deref()),
            (None, Some("Cm"))
        );
        assert!(onem2m("site/x").is_none());
        assert!(onem2m("/oneM2M/other/x").is_none());
    }

    #[test]
    fn filters_match_as_mqtt_says() {
        assert!(matches(
            "/oneM2M/resp/Cm/+/json",
            "/oneM2M/resp/Cm/id-in/json"
        ));
        assert!(matches("/oneM2M/resp/#", "/oneM2M/resp/Cm/id-in/json"));
        assert!(matches("a/#", "a"));
        assert!(!matches(
            "/oneM2M/resp/Cx/+/json",
            "/oneM2M/resp/Cm/id-in/json"
        ));
        assert!(!matches("a/+", "a/b/c"));
        assert!(!matches("#", "$SYS/x"));
        assert!(matches("a/b", "a/b"));
        assert!(!matches("a/b/c", "a/b"));
    }
}
