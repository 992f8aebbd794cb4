//! Enrolment (docs/authority.md "Enrolment") over real sockets: the operator issues a one-time
//! code, `m2mguard enrol` makes the gateway's keys and registers them, the gateway follows the
//! feed and forwards with them. A wrong, reused or expired code is refused, and so are
//! guesses beyond one id's bound (that id only); each refusal is followed by a legitimate enrolment passing.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Output;

use bytes::Bytes;
use http::Method;
use m2mguard::authority::client::Client;
use m2mguard::tls::KeyPair;

use common::authority::Setup;
use common::sync::{eventually, Synced};

/// `authority gateway add --id ID --code-out FILE`; the code file's path.
async fn invite(setup: &Setup, id: &str) -> PathBuf {
    let file = setup.dir.path().join(format!("{id}.code"));
    let _ = std::fs::remove_file(&file);
    let out = setup
        .ok(&[
            "gateway",
            "add",
            "--id",
            id,
            "--code-out",
            file.to_str().unwrap(),
        ])
        .await;
    let code = std::fs::read_to_string(&file).unwrap();
    assert_eq!(code.trim().len(), 64, "256 bits, hex");
    assert!(!out.contains(code.trim()), "the code is not printed: {out}");
    assert_eq!(mode(&file), 0o600);
    file
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[tokio::test]
async fn an_enrolled_gateway_follows_the_feed_and_forwards_and_its_code_works_once() {
    let mut s = Synced::unstarted(&[("Cmeter", "devices")], "").await;
    let code = invite(&s.setup, "gw-e").await;

    // A wrong code: refused, nothing left behind.
    let wrong = s.setup.dir.path().join("wrong.code");
    std::fs::write(&wrong, format!("{}\n", "ab".repeat(32))).unwrap();
    std::fs::set_permissions(&wrong, std::fs::Permissions::from_mode(0o600)).unwrap();
    let dir = s.setup.dir.path().join("gw-e");
    let out = s.setup.enrol("gw-e", &wrong, &dir).await;
    assert!(!out.status.success());
    assert!(stderr(&out).contains("401"), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("enrolment code refused"),
        "{}",
        stderr(&out)
    );
    assert_eq!(
        std::fs::read_dir(&dir).unwrap().count(),
        0,
        "nothing left behind"
    );

    // The right one.
    let out = s.setup.enrol("gw-e", &code, &dir).await;
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(mode(&dir), 0o700);
    for private in ["sign.key", "seal.key", "client.key"] {
        assert_eq!(mode(&dir.join(private)), 0o600, "{private}");
    }

    // Used once: a second enrolment with it is refused.
    let again = s.setup.dir.path().join("gw-e2");
    let out = s.setup.enrol("gw-e", &code, &again).await;
    assert!(!out.status.success());
    assert!(stderr(&out).contains("used already"), "{}", stderr(&out));
    // ... and so is a new code for a gateway that holds credentials.
    let file = s.setup.dir.path().join("late.code");
    let out = s
        .setup
        .cli(&[
            "gateway",
            "add",
            "--id",
            "gw-e",
            "--code-out",
            file.to_str().unwrap(),
        ])
        .await;
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("registered already"),
        "{}",
        stderr(&out)
    );

    // The enrolled gateway follows the feed and forwards.
    s.sync = std::fs::read_to_string(dir.join("sync.toml")).unwrap();
    s.start_gateway().await;
    eventually(
        "the enrolled gateway forwards the node's request",
        || async { s.rsc("Cmeter").await == "pass" },
    )
    .await;
    s.setup.ok(&["node", "deactivate", "Cmeter"]).await;
    eventually("it follows the feed", || async {
        s.rsc("Cmeter").await == "4103"
    })
    .await;
    let listed = s.setup.ok(&["gateway", "list"]).await;
    assert!(listed.contains("gw-e"), "{listed}");
}

#[tokio::test]
async fn only_the_certificate_signed_at_enrolment_authenticates_the_gateway() {
    let setup = Setup::new("").await;
    let _authority = setup.start().await;
    let code = invite(&setup, "gw-p").await;
    let dir = setup.dir.path().join("gw-p");
    let out = setup.enrol("gw-p", &code, &dir).await;
    assert!(out.status.success(), "{}", stderr(&out));

    // Another certificate from the same CA with the same CN: refused.
    let ca = m2mguard::authority::material::Ca::load(&setup.path("ca.crt"), &setup.path("ca.key"))
        .unwrap();
    let forged = ca.issue("gw-p", &[]).unwrap();
    std::fs::write(dir.join("forged.crt"), forged.cert_pem).unwrap();
    std::fs::write(dir.join("forged.key"), forged.key_pem).unwrap();
    let identity = KeyPair::load(&dir.join("forged.crt"), &dir.join("forged.key")).unwrap();
    let client = Client::new(&setup.url(), &setup.ca(), Some(&identity), None).unwrap();
    let reply = client
        .send(Method::GET, "/v1/feed/snapshot", Bytes::new())
        .await
        .unwrap();
    assert_eq!(reply.status, 401);

    // The enrolled one: accepted.
    let identity = KeyPair::load(&dir.join("client.crt"), &dir.join("client.key")).unwrap();
    let client = Client::new(&setup.url(), &setup.ca(), Some(&identity), None).unwrap();
    let reply = client
        .send(Method::GET, "/v1/feed/snapshot", Bytes::new())
        .await
        .unwrap();
    assert_eq!(reply.status, 200);
}

#[tokio::test]
async fn an_expired_code_is_refused_and_a_fresh_one_enrols() {
    let setup = Setup::new("enrol_code_ttl_s = 1\n").await;
    let _authority = setup.start().await;
    let code = invite(&setup, "gw-x").await;
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    let dir = setup.dir.path().join("gw-x");
    let out = setup.enrol("gw-x", &code, &dir).await;
    assert!(!out.status.success());
    assert!(stderr(&out).contains("expired"), "{}", stderr(&out));
    let code = invite(&setup, "gw-x").await;
    let out = setup.enrol("gw-x", &code, &dir).await;
    assert!(out.status.success(), "{}", stderr(&out));
}

#[tokio::test]
async fn guesses_beyond_the_bound_are_answered_429_for_that_id_only() {
    let setup = Setup::new("").await;
    let _authority = setup.start().await;
    let code = invite(&setup, "gw-g").await;
    let other = invite(&setup, "gw-h").await;
    let anonymous = setup.anonymous(None);
    let guess = |id: &str, n: usize| {
        serde_json::json!({
            "id": id, "code": format!("{n:064x}"), "sign": "11".repeat(32),
            "seal": "22".repeat(32), "tls": "00",
        })
        .to_string()
    };
    // A pending id and one with no code at all answer alike: ten 401s, then 429.
    for id in ["gw-g", "gw-none"] {
        for n in 0..10 {
            let reply = anonymous
                .send(Method::POST, "/v1/enrol", Bytes::from(guess(id, n)))
                .await
                .unwrap();
            assert_eq!(reply.status, 401, "{id} guess {n}");
            assert!(String::from_utf8_lossy(&reply.body).contains("wrong, used already"));
        }
        let reply = anonymous
            .send(Method::POST, "/v1/enrol", Bytes::from(guess(id, 10)))
            .await
            .unwrap();
        assert_eq!(reply.status, 429, "{id}");
        assert!(reply.headers.contains_key("retry-after"));
        assert!(String::from_utf8_lossy(&reply.body).contains("too many failed enrolments"));
    }
    // The right code for the flooded id is not heard while its bucket is empty ...
    let dir = setup.dir.path().join("gw-g");
    let out = setup.enrol("gw-g", &code, &dir).await;
    assert!(stderr(&out).contains("429"), "{}", stderr(&out));
    // ... while another gateway enrols at once ...
    let out = setup
        .enrol("gw-h", &other, &setup.dir.path().join("gw-h"))
        .await;
    assert!(out.status.success(), "{}", stderr(&out));
    // ... and the flooded one enrols once a guess is allowed again (one per 6 s).
    tokio::time::sleep(std::time::Duration::from_secs(6)).await;
    let out = setup.enrol("gw-g", &code, &dir).await;
    assert!(out.status.success(), "{}", stderr(&out));
}
