//! Admin API routing and handlers. Answers are JSON except `/metrics` (Prometheus text).

use bytes::Bytes;
use http::header::{HeaderValue, CONTENT_TYPE};
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use percent_encoding::percent_decode_str;
use serde_json::{json, Value};

use super::State;
use crate::record::{By, Event};
use crate::store::NodeStatus;

type Reply = Response<Full<Bytes>>;

pub async fn route(state: &State, req: Request<Incoming>) -> Reply {
    if let Err(refused) = from_a_local_tool(&req) {
        return error(refused.status(), &refused.to_string());
    }
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    // Drain whatever body came with the request; none of the routes takes one.
    let _ = req.into_body().collect().await;
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    match (&method, segments.as_slice()) {
        (&Method::GET, ["healthz"]) => text(StatusCode::OK, "ok\n"),
        (&Method::GET, ["readyz"]) => ready(state),
        (&Method::GET, ["metrics"]) => metrics(state),
        (&Method::GET, ["v1", "nodes"]) => match state.nodes.all() {
            Ok(nodes) => reply(StatusCode::OK, json!({ "nodes": nodes })),
            Err(e) => error(StatusCode::SERVICE_UNAVAILABLE, &e.to_string()),
        },
        (&Method::GET, ["v1", "nodes", id]) => node(state, id),
        (&Method::POST, ["v1", "nodes", id, "activate"]) => {
            set_status(state, id, NodeStatus::Active)
        }
        (&Method::POST, ["v1", "nodes", id, "deactivate"]) => {
            set_status(state, id, NodeStatus::Deactivated)
        }
        (&Method::POST, ["v1", "tokens", jti, "revoke"]) => revoke_token(state, jti),
        (&Method::POST, ["v1", "reload"]) => match state.reload_policies() {
            Ok(count) => reply(
                StatusCode::OK,
                json!({ "reloaded": true, "policies": count }),
            ),
            Err(errors) => {
                let errors: Vec<String> = errors.iter().map(ToString::to_string).collect();
                reply(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    json!({ "reloaded": false, "errors": errors }),
                )
            }
        },
        (
            _,
            ["healthz" | "readyz" | "metrics"]
            | ["v1", "nodes", ..]
            | ["v1", "reload"]
            | ["v1", "tokens", _, "revoke"],
        ) => error(StatusCode::METHOD_NOT_ALLOWED, "method not allowed"),
        _ => error(StatusCode::NOT_FOUND, "no such endpoint"),
    }
}

/// Why a request is not taken to come from a local tool.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
enum NotLocal {
    #[error("requests from web pages (with an Origin header) are refused")]
    FromWebPage,
    #[error("expected exactly one Host header, got {count}")]
    HostCount { count: usize },
    #[error("only origin-form request targets (/path?query) are served")]
    NotOriginForm,
    #[error("Host must be an IP address or localhost, with an optional port")]
    ForeignHost,
}

impl NotLocal {
    /// 403 for web pages, 421 (Misdirected Request) for a Host naming another name, 400 for
    /// a request that is malformed for this API.
    fn status(self) -> StatusCode {
        match self {
            NotLocal::FromWebPage => StatusCode::FORBIDDEN,
            NotLocal::HostCount { .. } | NotLocal::NotOriginForm => StatusCode::BAD_REQUEST,
            NotLocal::ForeignHost => StatusCode::MISDIRECTED_REQUEST,
        }
    }
}

/// Browsers can be made to send requests here (cross-origin, or by DNS rebinding a name to
/// 127.0.0.1); command-line tools never send `Origin` and address us by IP or `localhost`.
/// So: no `Origin`, exactly one `Host` that is an IPv4 address, a bracketed IPv6 address or
/// `localhost` (each with an optional port), and an origin-form target, so that an
/// absolute-form target cannot name another host than `Host` does.
fn from_a_local_tool<B>(req: &Request<B>) -> Result<(), NotLocal> {
    let headers = req.headers();
    if headers.contains_key(http::header::ORIGIN) {
        return Err(NotLocal::FromWebPage);
    }
    let uri = req.uri();
    if uri.scheme().is_some() || uri.authority().is_some() || !uri.path().starts_with('/') {
        return Err(NotLocal::NotOriginForm);
    }
    let mut hosts = headers.get_all(http::header::HOST).iter();
    let (Some(host), None) = (hosts.next(), hosts.next()) else {
        let count = headers.get_all(http::header::HOST).iter().count();
        return Err(NotLocal::HostCount { count });
    };
    match host.to_str() {
        Ok(host) if is_local_authority(host) => Ok(()),
        _ => Err(NotLocal::ForeignHost),
    }
}

/// `host[:port]` where host is an IPv4 address, `[IPv6]` or `localhost` (any case) and port,
/// when present, is 0 to 65535 in decimal digits.
fn is_local_authority(authority: &str) -> bool {
    let (name_ok, port) = match authority.strip_prefix('[') {
        Some(bracketed) => match bracketed.split_once(']') {
            Some((v6, port)) => (v6.parse::<std::net::Ipv6Addr>().is_ok(), port),
            None => return false,
        },
        None => {
            let (name, port) = authority.split_at(authority.find(':').unwrap_or(authority.len()));
            let local = name.eq_ignore_ascii_case("localhost")
                || name.parse::<std::net::Ipv4Addr>().is_ok();
            (local, port)
        }
    };
    let port_ok = port.is_empty()
        || port.strip_prefix(':').is_some_and(|digits| {
            !digits.is_empty()
                && digits.bytes().all(|b| b.is_ascii_digit())
                && digits.parse::<u16>().is_ok()
        });
    name_ok && port_ok
}

/// 200 `ready` while the repository answers; with `[sync]`, a second line says how fresh
/// it is, and a deactivated gateway or one older than `sync.max_age_s` is not ready (503).
fn ready(state: &State) -> Reply {
    if let Err(e) = state.nodes.probe() {
        let detail = format!("repository unavailable: {e}\n");
        return text(StatusCode::SERVICE_UNAVAILABLE, &detail);
    }
    let standing = state.nodes.standing();
    if !standing.synced() {
        return text(StatusCode::OK, "ready\n");
    }
    let now = crate::sync::follower::unix_now();
    let age = standing.age_s(now);
    let sync = format!(
        "sync: record {}, head age {}\n",
        standing.seq(),
        age.map_or("unknown (no head verified yet)".to_owned(), |a| format!(
            "{a} s"
        ))
    );
    let limit = standing.max_age_s();
    if standing.removed() {
        text(
            StatusCode::SERVICE_UNAVAILABLE,
            &format!("credentials removed: enrol again\n{sync}"),
        )
    } else if standing.deactivated() {
        text(
            StatusCode::SERVICE_UNAVAILABLE,
            &format!("deactivated by the authority\n{sync}"),
        )
    } else if limit > 0 && age.is_none_or(|a| a > limit) {
        text(
            StatusCode::SERVICE_UNAVAILABLE,
            &format!("stale: older than sync.max_age_s = {limit}\n{sync}"),
        )
    } else {
        text(StatusCode::OK, &format!("ready\n{sync}"))
    }
}

fn metrics(state: &State) -> Reply {
    let mut response = Response::new(Full::new(Bytes::from(state.metrics.encode())));
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static(crate::metrics::CONTENT_TYPE),
    );
    response
}

fn node(state: &State, raw_id: &str) -> Reply {
    let id = percent_decode_str(raw_id).decode_utf8_lossy();
    match state.nodes.get(&id) {
        Ok(Some(node)) => reply(StatusCode::OK, json!(*node)),
        Ok(None) => error(StatusCode::NOT_FOUND, &format!("no node {id:?}")),
        Err(e) => error(StatusCode::SERVICE_UNAVAILABLE, &e.to_string()),
    }
}

fn set_status(state: &State, raw_id: &str, status: NodeStatus) -> Reply {
    if state.nodes.standing().synced() {
        return error(
            StatusCode::CONFLICT,
            "the authority's feed owns node status ([sync]): change it at the authority",
        );
    }
    let id = percent_decode_str(raw_id).decode_utf8_lossy();
    match state.nodes.set_status(&id, status) {
        Ok(Some(node)) => {
            tracing::info!(node.id = %id, status = %status, "node status changed by the admin API");
            state.recorder.event(Event::NodeStatus {
                node: id.clone().into_owned(),
                status: status.as_str(),
                by: By::Admin,
            });
            reply(StatusCode::OK, json!(node))
        }
        Ok(None) => error(StatusCode::NOT_FOUND, &format!("no node {id:?}")),
        Err(e) => error(StatusCode::SERVICE_UNAVAILABLE, &e.to_string()),
    }
}

/// Revokes an access-control token by its `jti`: durable at once, and evicted from the cache.
fn revoke_token(state: &State, raw_jti: &str) -> Reply {
    let jti = percent_decode_str(raw_jti).decode_utf8_lossy();
    if jti.is_empty()
        || jti.chars().count() > crate::guard::token::MAX_ID_CHARS
        || jti.chars().any(char::is_control)
    {
        return error(StatusCode::BAD_REQUEST, "expected a token id (jti)");
    }
    match state.tokens.revoke(&jti, std::time::SystemTime::now()) {
        Ok(fresh) => {
            tracing::info!(token.id = %jti, "token revoked by the admin API");
            state.recorder.event(Event::TokenRevoked {
                jti: jti.clone().into_owned(),
                by: By::Admin,
            });
            reply(
                StatusCode::OK,
                json!({ "jti": jti, "revoked": true, "already": !fresh }),
            )
        }
        Err(e) => error(StatusCode::SERVICE_UNAVAILABLE, &e.to_string()),
    }
}

fn reply(status: StatusCode, body: Value) -> Reply {
    let mut response = Response::new(Full::new(Bytes::from(body.to_string())));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

fn error(status: StatusCode, message: &str) -> Reply {
    reply(status, json!({ "error": message }))
}

fn text(status: StatusCode, body: &str) -> Reply {
    let mut response = Response::new(Full::new(Bytes::from(body.to_owned())));
    *response.status_mut() = status;
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::{from_a_local_tool, NotLocal};
    use http::StatusCode;

    fn request(target: &str, headers: &[(&'static str, &str)]) -> http::Request<()> {
        let mut builder = http::Request::get(target);
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        builder.body(()).unwrap()
    }

    fn check(host: &str) -> Result<(), NotLocal> {
        from_a_local_tool(&request("/healthz", &[("host", host)]))
    }

    #[test]
    fn local_tools_are_served() {
        for host in [
            "127.0.0.1:19090",
            "127.0.0.1",
            "[::1]:19090",
            "[::1]",
            "localhost:19090",
            "LOCALHOST",
            "10.1.2.3",
        ] {
            assert_eq!(check(host), Ok(()), "{host}");
        }
        let with_query = request("/v1/nodes?x=1", &[("host", "localhost")]);
        assert_eq!(from_a_local_tool(&with_query), Ok(()));
    }

    #[test]
    fn rebound_names_and_malformed_hosts_get_421() {
        for host in [
            "evil.example",
            "evil.example:19090",
            "localhost.evil.example",
            "127.0.0.1.nip.io",
            "::1",
            "[::1",
            "[evil.example]",
            "127.0.0.1:",
            "127.0.0.1:+80",
            "127.0.0.1:65536",
            "localhost:1:2",
            "",
        ] {
            let refused = check(host).unwrap_err();
            assert_eq!(refused, NotLocal::ForeignHost, "{host:?}");
            assert_eq!(refused.status(), StatusCode::MISDIRECTED_REQUEST);
        }
    }

    #[test]
    fn anything_but_exactly_one_host_gets_400() {
        let none = request("/healthz", &[]);
        let two = request(
            "/healthz",
            &[("host", "127.0.0.1"), ("host", "evil.example")],
        );
        for (req, count) in [(none, 0), (two, 2)] {
            let refused = from_a_local_tool(&req).unwrap_err();
            assert_eq!(refused, NotLocal::HostCount { count });
            assert_eq!(refused.status(), StatusCode::BAD_REQUEST);
        }
    }

    #[test]
    fn absolute_form_and_asterisk_targets_get_400() {
        for target in [
            "http://evil.example/healthz",
            "http://127.0.0.1/healthz",
            "*",
        ] {
            let req = request(target, &[("host", "127.0.0.1")]);
            assert_eq!(
                from_a_local_tool(&req),
                Err(NotLocal::NotOriginForm),
                "{target}"
            );
        }
    }

    #[test]
    fn web_pages_get_403() {
        let req = request(
            "/healthz",
            &[("host", "127.0.0.1:1"), ("origin", "http://evil.example")],
        );
        let refused = from_a_local_tool(&req).unwrap_err();
        assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    }
}
