//! The operator console's page over the authority's real HTTPS socket: served to anyone (it
//! holds no data), with its security headers; the API behind it still refuses a request without
//! the token, and takes the one the page sends. The page in a browser: scripts/console_check.

mod common;

use bytes::Bytes;
use http::Method;

use common::authority::Setup;

const PAGES: [(&str, &str); 3] = [
    ("/console", "text/html; charset=utf-8"),
    ("/console/console.js", "text/javascript; charset=utf-8"),
    ("/console/console.css", "text/css; charset=utf-8"),
];

#[tokio::test]
async fn the_page_is_served_without_a_credential_and_holds_no_data() {
    let setup = Setup::new("").await;
    let _running = setup.start().await;
    setup
        .ok(&["node", "enrol", "Csecret-node", "--group", "ops"])
        .await;
    let anonymous = setup.anonymous(None);
    for (path, content_type) in PAGES {
        let reply = anonymous
            .send(Method::GET, path, Bytes::new())
            .await
            .unwrap();
        assert_eq!(reply.status, 200, "{path}");
        let h = &reply.headers;
        assert_eq!(h["content-type"], content_type, "{path}");
        assert_eq!(h["x-frame-options"], "DENY", "{path}");
        assert_eq!(h["x-content-type-options"], "nosniff", "{path}");
        assert_eq!(h["referrer-policy"], "no-referrer", "{path}");
        let csp = h["content-security-policy"].to_str().unwrap();
        assert_eq!(csp, m2mguard::authority::server::console::CSP, "{path}");
        let text = String::from_utf8(reply.body.to_vec()).unwrap();
        assert!(!text.contains("Csecret-node"), "{path} holds data");
    }
    // The page's script and style come from this origin alone: no other host is named.
    let html = anonymous
        .send(Method::GET, "/console", Bytes::new())
        .await
        .unwrap();
    let html = String::from_utf8(html.body.to_vec()).unwrap();
    assert!(!html.contains("http:") && !html.contains("https:") && !html.contains("//cdn"));
    assert!(html.contains(r#"<script src="/console/console.js" defer></script>"#));
}

#[tokio::test]
async fn the_api_behind_the_page_still_needs_the_token() {
    let setup = Setup::new("").await;
    let _running = setup.start().await;
    setup.ok(&["node", "enrol", "Cmeter-01"]).await;
    // What the page fetches, without the token and with a wrong one: 401, no data.
    for bearer in [None, Some("Bearer wrong-wrong-wrong-wrong-wrong-wrong")] {
        for path in ["/v1/nodes", "/v1/gateways", "/v1/feed/head"] {
            let reply = setup
                .anonymous(bearer)
                .send(Method::GET, path, Bytes::new())
                .await
                .unwrap();
            assert_eq!(reply.status, 401, "{path} with {bearer:?}");
            assert!(!String::from_utf8_lossy(&reply.body).contains("Cmeter-01"));
        }
    }
    // Other methods and pages under /console.
    let anonymous = setup.anonymous(None);
    for (method, path, status) in [
        (Method::POST, "/console", 405),
        (Method::DELETE, "/console/console.js", 405),
        (Method::GET, "/console/../v1/nodes.js", 404),
        (Method::GET, "/console/other.html", 404),
        // No console page: it falls to the API's authentication.
        (Method::GET, "/consolex", 401),
    ] {
        let reply = anonymous.send(method.clone(), path, Bytes::new()).await;
        assert_eq!(reply.unwrap().status, status, "{method} {path}");
    }
    // With the token, as the page sends it: the nodes.
    let nodes = setup
        .operator()
        .call(Method::GET, "/v1/nodes", None)
        .await
        .unwrap();
    assert_eq!(nodes["nodes"][0]["id"], "Cmeter-01");
}
