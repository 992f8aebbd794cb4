//! The operator console (docs/authority.md#the-console): one HTML page, its script and its
//! style sheet, compiled into the binary and served to anyone at `/console`. The page holds no
//! data and no secret, so it needs no credential: everything it shows it fetches from the
//! operator API with the token the operator types in, as `Authorization: Bearer`.
//!
//! Every answer carries a Content-Security-Policy that allows this origin's script, style and
//! API alone (no inline script or style, no frames, no form posts, no other host) and requires
//! Trusted Types with no policy, so the browser refuses any string written as HTML: data reaches
//! the page as text only. `X-Frame-Options: DENY` and `frame-ancestors 'none'` keep it out of
//! frames (clickjacking the confirmation buttons).

use http::header::{
    CACHE_CONTROL, CONTENT_SECURITY_POLICY, REFERRER_POLICY, X_CONTENT_TYPE_OPTIONS,
    X_FRAME_OPTIONS,
};
use http::{HeaderValue, Method, StatusCode};

use super::reply::{body, error, Answer};

/// The path of the page; its assets are under it.
pub const PATH: &str = "/console";

/// The policy every console answer carries.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
    connect-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'; \
    frame-ancestors 'none'; require-trusted-types-for 'script'; trusted-types 'none'";

const HTML: &str = include_str!("console/console.html");
const JS: &str = include_str!("console/console.js");
const CSS: &str = include_str!("console/console.css");

/// The console's answer for `path`, or `None` when the path is not the console's.
pub fn serve(method: &Method, path: &str) -> Option<Answer> {
    let rest = path.strip_prefix(PATH)?;
    let (content_type, text) = match rest {
        "" | "/" => ("text/html; charset=utf-8", HTML),
        "/console.js" => ("text/javascript; charset=utf-8", JS),
        "/console.css" => ("text/css; charset=utf-8", CSS),
        _ if rest.starts_with('/') => return Some(error(StatusCode::NOT_FOUND, "no such page")),
        _ => return None,
    };
    if method != Method::GET {
        return Some(error(
            StatusCode::METHOD_NOT_ALLOWED,
            "method not allowed here",
        ));
    }
    let mut answer = body(StatusCode::OK, content_type, text);
    let headers = answer.headers_mut();
    headers.insert(CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    headers.insert(X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    Some(answer)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_script_never_writes_html() {
        for sink in [
            "innerHTML",
            "outerHTML",
            "insertAdjacentHTML",
            "document.write",
            "eval(",
            "Function(",
            "setTimeout(\"",
            "style=",
        ] {
            assert!(!JS.contains(sink), "console.js uses {sink}");
        }
        assert!(!HTML.contains("<script>") && !HTML.contains("style="));
    }

    #[test]
    fn paths_outside_the_console_are_not_its() {
        assert!(serve(&Method::GET, "/consoles").is_none());
        assert!(serve(&Method::GET, "/v1/nodes").is_none());
        let answer = serve(&Method::GET, "/console/x.js").unwrap();
        assert_eq!(answer.status(), StatusCode::NOT_FOUND);
        let answer = serve(&Method::POST, "/console").unwrap();
        assert_eq!(answer.status(), StatusCode::METHOD_NOT_ALLOWED);
        let answer = serve(&Method::GET, "/console").unwrap();
        assert_eq!(answer.headers()[X_FRAME_OPTIONS], "DENY");
    }
}
