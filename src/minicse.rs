//! A minimal in-memory oneM2M CSE over HTTP, the upstream of `m2mguard demo` and of tests
//! that need one without installing a real CSE. It keeps resources in a map keyed by their
//! structured SP-relative path, gives each a resource id (`ri`, with `pi` its parent's), and
//! answers create, retrieve, update, delete and notify with TS-0009 status codes; it does no
//! access control of its own. Targets are read as a CSE reads them, by its own small parser:
//! CSE-relative, `/~` SP-relative and `/_` absolute (any SP), `-` for its CSEBase name, and a
//! single-segment resource id. Not for production.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use percent_encoding::percent_decode_str;

/// Resources by structured path, and the path of each resource id.
#[derive(Default)]
struct Tree {
    resources: HashMap<String, Value>,
    paths: HashMap<String, String>,
    created: u64,
}

type Resources = Arc<Mutex<Tree>>;

/// A running mini CSE; aborted on drop.
pub struct MiniCse {
    pub addr: SocketAddr,
    task: JoinHandle<()>,
}

impl Drop for MiniCse {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Starts a CSE `<cse_id>/<cse_name>` on `listen` (use port 0 for any free port).
pub async fn start(listen: SocketAddr, cse_id: &str, cse_name: &str) -> std::io::Result<MiniCse> {
    let listener = TcpListener::bind(listen).await?;
    let addr = listener.local_addr()?;
    let base = format!("{cse_id}/{cse_name}");
    let base_ri = cse_id.trim_start_matches('/');
    let mut tree = Tree::default();
    tree.resources.insert(
        base.clone(),
        json!({ "m2m:cb": { "rn": cse_name, "ri": base_ri, "csi": cse_id, "ty": 5 } }),
    );
    tree.paths.insert(base_ri.to_owned(), base);
    let resources: Resources = Arc::new(Mutex::new(tree));
    let names = Arc::new((cse_id.to_owned(), cse_name.to_owned()));
    let task = tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let (resources, names) = (resources.clone(), names.clone());
            tokio::spawn(async move {
                let service = service_fn(move |req| {
                    let (resources, names) = (resources.clone(), names.clone());
                    async move { Ok::<_, Infallible>(handle(&resources, &names, req).await) }
                });
                let _ = http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    Ok(MiniCse { addr, task })
}

/// The structured path of an HTTP request path on this CSE, as the CSE reads it.
fn target(tree: &Tree, path: &str, (cse_id, cse_name): &(String, String)) -> Option<String> {
    let segments: Vec<String> = path
        .strip_prefix('/')?
        .split('/')
        .map(|s| {
            percent_decode_str(s)
                .decode_utf8()
                .map(|c| c.into_owned())
                .ok()
        })
        .collect::<Option<_>>()?;
    let local: &[String] = match segments.first().map(String::as_str) {
        Some("~") if segments.get(1)? == cse_id.trim_start_matches('/') => &segments[2..],
        Some("_") if segments.get(2)? == cse_id.trim_start_matches('/') => &segments[3..],
        Some("~" | "_") => return None,
        _ => &segments,
    };
    if local.iter().any(|s| s.is_empty() || s == "." || s == "..") {
        return None;
    }
    match local {
        [first, rest @ ..] if first == cse_name || first == "-" => Some(
            [format!("{cse_id}/{cse_name}")]
                .into_iter()
                .chain(rest.iter().cloned())
                .collect::<Vec<_>>()
                .join("/"),
        ),
        [ri] => tree.paths.get(ri).cloned(),
        _ => None,
    }
}

async fn handle(
    resources: &Resources,
    names: &(String, String),
    req: Request<Incoming>,
) -> Response<Full<Bytes>> {
    let (parts, body) = req.into_parts();
    let body = body
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let mut tree = resources.lock().unwrap_or_else(|e| e.into_inner());
    let Some(path) = target(&tree, parts.uri.path(), names) else {
        let (status, rsc, content) = not_found();
        return answer(&parts.headers, status, rsc, content);
    };
    let ty = parts
        .headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .and_then(|ct| ct.split(";ty=").nth(1))
        .and_then(|ty| ty.parse::<u64>().ok());
    let (status, rsc, content) = match (&parts.method, ty) {
        (&Method::POST, Some(ty)) => {
            let fr = parts
                .headers
                .get("x-m2m-origin")
                .and_then(|v| v.to_str().ok());
            create(&mut tree, &path, ty, fr.unwrap_or(""), &body)
        }
        (&Method::POST, None) => (StatusCode::OK, 2000, Value::Null),
        (&Method::GET, _) => match tree.resources.get(&path) {
            Some(resource) => (StatusCode::OK, 2000, resource.clone()),
            None => not_found(),
        },
        (&Method::PUT, _) => update(&mut tree.resources, &path, &body),
        (&Method::DELETE, _) => match tree.resources.remove(&path) {
            Some(_) => {
                let below = format!("{path}/");
                tree.resources.retain(|key, _| !key.starts_with(&below));
                tree.paths
                    .retain(|_, p| *p != path && !p.starts_with(&below));
                (StatusCode::OK, 2002, Value::Null)
            }
            None => not_found(),
        },
        _ => (StatusCode::METHOD_NOT_ALLOWED, 4005, Value::Null),
    };
    answer(&parts.headers, status, rsc, content)
}

fn not_found() -> (StatusCode, u16, Value) {
    (
        StatusCode::NOT_FOUND,
        4004,
        json!({ "m2m:dbg": "resource does not exist" }),
    )
}

/// Creates a resource below `parent`. An AE (ty 2) gets an AE-ID as TS-0001 assigns one: the
/// originator's own when it chose one (`Cmeter`), else `C`/`S` and the resource id; a second
/// AE with the same AE-ID is refused (4105), as a CSE refuses a re-registration.
fn create(
    tree: &mut Tree,
    parent: &str,
    ty: u64,
    fr: &str,
    body: &[u8],
) -> (StatusCode, u16, Value) {
    let Some(pi) = tree
        .resources
        .get(parent)
        .and_then(|p| p.as_object()?.values().next()?.get("ri")?.as_str())
        .map(str::to_owned)
    else {
        return not_found();
    };
    let Ok(Value::Object(mut outer)) = serde_json::from_slice::<Value>(body) else {
        return (
            StatusCode::BAD_REQUEST,
            4000,
            json!({ "m2m:dbg": "content is not a JSON object" }),
        );
    };
    let Some((kind, Value::Object(mut attrs))) =
        outer.iter_mut().next().map(|(k, v)| (k.clone(), v.take()))
    else {
        return (
            StatusCode::BAD_REQUEST,
            4000,
            json!({ "m2m:dbg": "content has no resource" }),
        );
    };
    tree.created += 1;
    let mut ri = format!("r{}", tree.created);
    if ty == 2 {
        let aei = match fr {
            "" | "C" => format!("C{ri}"),
            "S" => format!("S{ri}"),
            chosen => chosen.to_owned(),
        };
        if tree.paths.contains_key(&aei) {
            return (
                StatusCode::CONFLICT,
                4105,
                json!({ "m2m:dbg": "originator has already registered" }),
            );
        }
        attrs.insert("aei".into(), json!(aei));
        ri = aei;
    }
    let rn = attrs
        .get("rn")
        .and_then(Value::as_str)
        .map_or_else(|| ri.clone(), str::to_owned);
    let path = format!("{parent}/{rn}");
    if tree.resources.contains_key(&path) {
        return (
            StatusCode::CONFLICT,
            4105,
            json!({ "m2m:dbg": "resource already exists" }),
        );
    }
    attrs.insert("rn".into(), json!(rn));
    attrs.insert("ri".into(), json!(ri));
    attrs.insert("pi".into(), json!(pi));
    attrs.insert("ty".into(), json!(ty));
    let resource = json!({ kind: Value::Object(attrs) });
    tree.resources.insert(path.clone(), resource.clone());
    tree.paths.insert(ri, path);
    (StatusCode::CREATED, 2001, resource)
}

fn update(map: &mut HashMap<String, Value>, path: &str, body: &[u8]) -> (StatusCode, u16, Value) {
    let Some(existing) = map.get_mut(path) else {
        return not_found();
    };
    let Ok(Value::Object(changes)) = serde_json::from_slice::<Value>(body) else {
        return (
            StatusCode::BAD_REQUEST,
            4000,
            json!({ "m2m:dbg": "content is not a JSON object" }),
        );
    };
    if let (Some(Value::Object(target)), Some((_, Value::Object(new)))) = (
        existing.as_object_mut().and_then(|o| o.values_mut().next()),
        changes.into_iter().next(),
    ) {
        target.extend(new);
    }
    (StatusCode::OK, 2004, existing.clone())
}

fn answer(
    request: &HeaderMap,
    status: StatusCode,
    rsc: u16,
    content: Value,
) -> Response<Full<Bytes>> {
    let body = if content.is_null() {
        Bytes::new()
    } else {
        Bytes::from(content.to_string())
    };
    let mut response = Response::new(Full::new(body));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert("x-m2m-rsc", HeaderValue::from(rsc));
    headers.insert("content-type", HeaderValue::from_static("application/json"));
    for name in ["x-m2m-ri", "x-m2m-rvi"] {
        if let Some(v) = request.get(name) {
            headers.insert(name, v.clone());
        }
    }
    response
}
