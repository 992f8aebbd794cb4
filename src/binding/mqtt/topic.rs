//! MQTT topics: oneM2M request, registration and response topics (TS-0010 §6.4), and
//! topic-filter matching.
//!
//! In: topic names and filters as sent. Out: [`RequestTopic`] for `/oneM2M/req|reg_req/…`, the
//! [`OneM2mTopic`] parts policy sees (ids in `fr` form: ":" in a topic stands for "/"), and
//! whether a filter matches a name (MQTT 3.1.1 §4.7).
//!
//! Invariant: classification errs towards oneM2M. A name whose first levels spell `oneM2M` in
//! any case is in the oneM2M space; a filter that could match any oneM2M topic (`#`, `+/…`,
//! `/+/…`, `$share/<group>/…`) is classified as oneM2M, with `"*"` as its kind where a wildcard
//! stands in the kind's place and no id where one stands in an id's place. A rule written on
//! the oneM2M attributes cannot be stepped around by an alias of the same topics.

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

/// The kind level of a oneM2M topic (TS-0010 §6.4: requests, responses, registration
/// requests and their responses).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Req,
    Resp,
    RegReq,
    RegResp,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Req => "req",
            Kind::Resp => "resp",
            Kind::RegReq => "reg_req",
            Kind::RegResp => "reg_resp",
        }
    }

    /// The kind a level names, in any case (the broker tells cases apart; policy must not).
    fn of_level(level: &str) -> Option<Kind> {
        [Kind::Req, Kind::Resp, Kind::RegReq, Kind::RegResp]
            .into_iter()
            .find(|k| level.eq_ignore_ascii_case(k.as_str()))
    }

    /// Where the answers to a request of this kind go.
    fn answer(self) -> Kind {
        match self {
            Kind::Req | Kind::Resp => Kind::Resp,
            Kind::RegReq | Kind::RegResp => Kind::RegResp,
        }
    }

    fn is_request(self) -> bool {
        matches!(self, Kind::Req | Kind::RegReq)
    }
}

/// A oneM2M request topic `/oneM2M/<req|reg_req>/<originator>/<receiver>/<json|cbor>`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestTopic {
    /// `Req` or `RegReq`.
    pub kind: Kind,
    /// As written in the topic.
    pub originator_raw: String,
    pub receiver_raw: String,
    /// The originator in `fr` form.
    pub originator: String,
    pub format: Format,
}

impl RequestTopic {
    /// The topic the gateway's own answer goes to: the response topic (`resp`, or `reg_resp`
    /// for a registration) of `session`, the session's bound originator, for this receiver and
    /// format. It names the session's originator even where the request's topic named another:
    /// an answer never goes to another originator's response topic.
    pub fn answer_topic(&self, session: &str) -> String {
        format!(
            "/oneM2M/{}/{}/{}/{}",
            self.kind.answer().as_str(),
            session.replace('/', ":"),
            self.receiver_raw,
            self.format.as_str()
        )
    }
}

/// Whether a PUBLISH name is in the oneM2M request space (`req` or `reg_req`, the first two
/// levels in any case); such a publish is a request and must parse as one.
pub fn is_request(topic: &str) -> bool {
    let mut levels = topic.split('/');
    levels.next() == Some("")
        && levels
            .next()
            .is_some_and(|l| l.eq_ignore_ascii_case("oneM2M"))
        && levels
            .next()
            .and_then(Kind::of_level)
            .is_some_and(Kind::is_request)
}

/// Parses a request topic, spelled exactly as TS-0010 writes it; `None` if it is in the
/// request space but not well formed (other case, empty or extra levels, other format).
pub fn request(topic: &str) -> Option<RequestTopic> {
    let (kind, rest) = if let Some(rest) = topic.strip_prefix("/oneM2M/req/") {
        (Kind::Req, rest)
    } else {
        (Kind::RegReq, topic.strip_prefix("/oneM2M/reg_req/")?)
    };
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
        kind,
        originator_raw: originator.to_owned(),
        receiver_raw: receiver.to_owned(),
        originator: id(originator),
        format,
    })
}

/// The oneM2M parts of a topic name or filter, for policy; `None` for a name or filter that
/// can reach no oneM2M topic. A shared subscription (`$share/<group>/<filter>`, `$queue/…`)
/// is classified by the filter it shares.
pub fn onem2m(topic: &str) -> Option<OneM2mTopic> {
    let any = || OneM2mTopic {
        kind: "*",
        originator: None,
        receiver: None,
    };
    let mut levels = shared(topic).split('/');
    match levels.next()? {
        "#" => return Some(any()),
        "" | "+" => {}
        _ => return None,
    }
    match levels.next()? {
        "#" => return Some(any()),
        "+" => {}
        l if l.eq_ignore_ascii_case("oneM2M") => {}
        _ => return None,
    }
    let kind = match levels.next()? {
        "#" => return Some(any()),
        "+" => "*",
        level => Kind::of_level(level)?.as_str(),
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

/// The filter a shared subscription shares, or the filter itself.
fn shared(filter: &str) -> &str {
    if let Some(rest) = filter.strip_prefix("$share/") {
        return rest.split_once('/').map_or("", |(_, f)| f);
    }
    filter.strip_prefix("$queue/").unwrap_or(filter)
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
///
/// Kept here rather than rumqttc's `mqttbytes::matches`, which matches no `$` topic at all,
/// not even against a filter that names its levels (`$SYS/broker/uptime`): §4.7.2 keeps `$`
/// topics from leading wildcards only.
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
    fn request_topic_parses_ids_in_fr_form_and_answers_on_the_sessions_response_topic() {
        let t = request("/oneM2M/req/:id-mn/id-in/json").unwrap();
        assert_eq!(t.originator, "/id-mn");
        assert_eq!(t.format, Format::Json);
        assert_eq!(t.answer_topic("/id-mn"), "/oneM2M/resp/:id-mn/id-in/json");
        // The topic names another originator: the answer still goes to the session's own.
        assert_eq!(t.answer_topic("Cm"), "/oneM2M/resp/Cm/id-in/json");
        let reg = request("/oneM2M/reg_req/Cm/id-in/json").unwrap();
        assert_eq!(reg.kind, Kind::RegReq);
        assert_eq!(reg.answer_topic("Cm"), "/oneM2M/reg_resp/Cm/id-in/json");
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
            "/oneM2M/req/Cm/id-in/json/",
            "/oneM2M/req/Cm/id-in",
            "/oneM2M/reg_req/Cm/id-in/JSON",
            "/oneM2M/reg_req//id-in/json",
            "/ONEM2M/req/Cm/id-in/json",
            "/oneM2M/REG_REQ/Cm/id-in/json",
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
    fn other_publish_names_are_not_requests() {
        for name in [
            "/oneM2M/resp/Cm/id-in/json",
            "/oneM2M/reg_resp/Cm/id-in/json",
            "site/x",
            "oneM2M/req/Cm/id-in/json",
            "/oneM2M//req/Cm/id-in/json",
            "/oneM2M",
        ] {
            assert!(!is_request(name), "{name}");
        }
    }

    #[test]
    fn every_filter_that_can_reach_onem2m_topics_is_classified_as_one() {
        let kind = |f: &str| onem2m(f).map(|t| t.kind);
        for (filter, expected) in [
            ("#", Some("*")),
            ("/#", Some("*")),
            ("+/#", Some("*")),
            ("/oneM2M/#", Some("*")),
            ("/+/req/+/id-in/#", Some("req")),
            ("+/oneM2M/req/+/id-in/#", Some("req")),
            ("/oneM2M/+/Cm/id-in/json", Some("*")),
            ("/oneM2M/reg_req/+/id-in/#", Some("reg_req")),
            ("/oneM2M/reg_resp/Cx/id-in/json", Some("reg_resp")),
            ("/ONEM2M/Resp/Cx/#", Some("resp")),
            ("$share/g//oneM2M/req/+/id-in/#", Some("req")),
            ("$share/g/#", Some("*")),
            ("$queue//oneM2M/resp/#", Some("resp")),
            ("site/#", None),
            ("$SYS/#", None),
            ("/oneM2M/other/x", None),
        ] {
            assert_eq!(kind(filter), expected, "{filter}");
        }
        let parts = onem2m("/oneM2M/reg_resp/Cx/id-in/json").unwrap();
        assert_eq!(parts.originator.as_deref(), Some("Cx"));
        assert!(onem2m("#").unwrap().originator.is_none());
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
