//! `m2mguard authority`, over real sockets: init → serve → the operator's commands (the real
//! binary), each visible as the right verified record; who may call what (each refusal
//! followed by a legitimate request that passes).

mod common;

use bytes::Bytes;
use http::Method;
use m2mguard::authority::material::Ca;
use m2mguard::feed::seal;
use m2mguard::feed::{Body, GatewayStatus};
use m2mguard::store::NodeStatus;
use m2mguard::tls::KeyPair;

use common::authority::{printed_seq, Setup};

fn secret_of(path: &std::path::Path) -> Vec<u8> {
    let text = std::fs::read_to_string(path).unwrap();
    m2mguard::feed::keys::decode_hex(text.trim()).expect("a hex secret file")
}

#[tokio::test]
async fn every_operator_command_publishes_the_right_verified_record() {
    let setup = Setup::new("").await;
    let running = setup.start().await;
    let gw = setup.gateway("gw-a").await;
    let out = setup.dir.path();
    let seqs = [
        printed_seq(
            &setup
                .ok(&["node", "enrol", "Cmeter-01", "--group", "meters"])
                .await,
        ),
        printed_seq(&setup.ok(&["node", "deactivate", "Cmeter-01"]).await),
        printed_seq(
            &setup
                .ok(&[
                    "key",
                    "add",
                    "--id",
                    "k1",
                    "--node",
                    "Cmeter-01",
                    "--secret-out",
                    out.join("k1").to_str().unwrap(),
                ])
                .await,
        ),
        printed_seq(
            &setup
                .ok(&[
                    "key",
                    "rotate",
                    "k1",
                    "--secret-out",
                    out.join("k1b").to_str().unwrap(),
                ])
                .await,
        ),
        printed_seq(&setup.ok(&["key", "remove", "k1"]).await),
        printed_seq(&setup.ok(&["token", "revoke", "tok-7"]).await),
        printed_seq(&setup.ok(&["gateway", "deactivate", "gw-a"]).await),
        printed_seq(&setup.ok(&["node", "remove", "Cmeter-01"]).await),
    ];
    assert_eq!(
        seqs,
        [1, 2, 3, 4, 5, 6, 7, 8],
        "each command answered its own record"
    );
    let chain = setup.chain().await;
    assert_eq!(chain.len(), 8);
    let (first, second) = (secret_of(&out.join("k1")), secret_of(&out.join("k1b")));
    assert_eq!(first.len(), 32);
    assert_ne!(first, second, "rotation gives a new secret");
    for (signed, want) in chain.iter().zip(1..) {
        assert_eq!(signed.record.seq, want);
    }
    let aud = |i: usize| chain[i].record.aud.clone();
    assert!(
        matches!(&chain[0].body, Body::NodePut(n) if n.id == "Cmeter-01" && n.status == NodeStatus::Active && n.groups == ["meters"])
    );
    assert!(matches!(&chain[1].body, Body::NodePut(n) if n.status == NodeStatus::Deactivated));
    for (i, secret) in [(2, &first), (3, &second)] {
        let Body::KeyPut(key) = &chain[i].body else {
            panic!("record {} is not key.put", i + 1)
        };
        assert_eq!((key.id.as_str(), key.node.as_str()), ("k1", "Cmeter-01"));
        let opened = seal::open(&key.sealed["gw-a"], &gw.seal).unwrap();
        assert_eq!(
            &opened, secret,
            "the sealed secret is the one written to --secret-out"
        );
    }
    assert!(matches!(&chain[4].body, Body::KeyRemove(k) if k.id == "k1"));
    assert!(matches!(&chain[5].body, Body::TokenRevoke(t) if t.jti == "tok-7"));
    assert!(
        matches!(&chain[6].body, Body::GatewayPut(g) if g.id == "gw-a" && g.status == GatewayStatus::Deactivated)
    );
    assert_eq!(aud(6), ["gw-a"], "a gateway's status goes to it alone");
    assert_eq!(aud(0), ["*"]);
    assert!(matches!(&chain[7].body, Body::NodeRemove(n) if n.id == "Cmeter-01"));
    let list = setup.ok(&["gateway", "list"]).await;
    assert!(
        list.contains("gw-a") && list.contains("deactivated"),
        "{list}"
    );
    running.shutdown().await;
}

#[tokio::test]
async fn removing_a_node_removes_its_keys_first_in_one_step() {
    let setup = Setup::new("").await;
    let running = setup.start().await;
    setup.ok(&["node", "enrol", "Cx"]).await;
    for id in ["kx1", "kx2"] {
        let out = setup.dir.path().join(id);
        setup
            .ok(&[
                "key",
                "add",
                "--id",
                id,
                "--node",
                "Cx",
                "--secret-out",
                out.to_str().unwrap(),
            ])
            .await;
    }
    let seq = printed_seq(&setup.ok(&["node", "remove", "Cx"]).await);
    let chain = setup.chain().await;
    assert_eq!(seq, 6, "the answer names the last of the three records");
    let kinds: Vec<&str> = chain[3..].iter().map(|s| s.record.kind.as_str()).collect();
    assert_eq!(kinds, ["key.remove", "key.remove", "node.remove"]);
    let show = setup.cli(&["node", "show", "Cx"]).await;
    assert_eq!(show.status.code(), Some(1), "the node is gone");
    running.shutdown().await;
}

#[tokio::test]
async fn a_second_insert_key_and_a_duplicate_enrolment_are_refused() {
    let setup = Setup::new("").await;
    let running = setup.start().await;
    setup.ok(&["node", "enrol", "Cy"]).await;
    let path = |f: &str| setup.dir.path().join(f).to_str().unwrap().to_owned();
    setup
        .ok(&[
            "key",
            "add",
            "--id",
            "i1",
            "--node",
            "Cy",
            "--insert",
            "--secret-out",
            &path("i1"),
        ])
        .await;
    let second = setup
        .cli(&[
            "key",
            "add",
            "--id",
            "i2",
            "--node",
            "Cy",
            "--insert",
            "--secret-out",
            &path("i2"),
        ])
        .await;
    assert_eq!(second.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&second.stderr).contains("409"));
    assert!(
        !setup.dir.path().join("i2").exists(),
        "no secret written for a refused key"
    );
    let again = setup.cli(&["node", "enrol", "Cy"]).await;
    assert_eq!(again.status.code(), Some(1));
    setup
        .ok(&[
            "key",
            "add",
            "--id",
            "i2",
            "--node",
            "Cy",
            "--secret-out",
            &path("i2"),
        ])
        .await;
    // A node no gateway would accept is refused before anything is published (a record
    // gateways refuse would stall every one of them): a group name of 300 bytes.
    let long_group = "g".repeat(300);
    let refused = setup
        .cli(&["node", "enrol", "Clong", "--group", &long_group])
        .await;
    assert_eq!(refused.status.code(), Some(1));
    assert_eq!(setup.chain().await.len(), 3, "refusals published nothing");
    setup.ok(&["node", "enrol", "Clong", "--group", "g"]).await;
    assert_eq!(setup.chain().await.len(), 4);
    running.shutdown().await;
}

async fn get(
    client: &m2mguard::authority::client::Client,
    path: &str,
) -> Result<u16, m2mguard::authority::client::ClientError> {
    let reply = client.send(Method::GET, path, Bytes::new()).await?;
    Ok(reply.status.as_u16())
}

#[tokio::test]
async fn requests_without_the_right_credential_are_refused_and_the_right_ones_pass() {
    let setup = Setup::new("").await;
    let running = setup.start().await;
    let gw = setup.gateway("gw-a").await;
    let operator = setup.operator();
    // No credential, a wrong bearer, a bearer in another scheme: 401.
    assert_eq!(get(&setup.anonymous(None), "/v1/nodes").await.unwrap(), 401);
    assert_eq!(
        get(&setup.anonymous(None), "/v1/feed/head").await.unwrap(),
        401
    );
    let wrong = "Bearer 00000000000000000000000000000000000000000000000000000000000000";
    assert_eq!(
        get(&setup.anonymous(Some(wrong)), "/v1/nodes")
            .await
            .unwrap(),
        401
    );
    assert_eq!(
        get(&setup.anonymous(Some("Basic b3A6b3A=")), "/v1/nodes")
            .await
            .unwrap(),
        401
    );
    assert_eq!(get(&operator, "/v1/nodes").await.unwrap(), 200);
    // A certificate from another CA, with a known gateway's CN: the handshake fails.
    let (other, _) = Ca::generate("another CA").unwrap();
    let forged = other.issue("gw-a", &[]).unwrap();
    let dir = setup.dir.path();
    std::fs::write(dir.join("forged.crt"), forged.cert_pem).unwrap();
    std::fs::write(dir.join("forged.key"), forged.key_pem).unwrap();
    let identity = KeyPair::load(&dir.join("forged.crt"), &dir.join("forged.key")).unwrap();
    let impostor =
        m2mguard::authority::client::Client::new(&setup.url(), &setup.ca(), Some(&identity), None)
            .unwrap();
    assert!(
        get(&impostor, "/v1/feed/head").await.is_err(),
        "a foreign certificate is refused"
    );
    assert_eq!(gw.get("/v1/feed/head").await.status, 200);
    // A gateway on an operator route, the operator on gateway-only routes: 403.
    assert_eq!(gw.get("/v1/nodes").await.status, 403);
    assert_eq!(gw.post("/v1/tokens/t1/revoke", "").await.status, 403);
    assert_eq!(get(&operator, "/v1/feed/snapshot").await.unwrap(), 403);
    let ack = operator
        .send(Method::POST, "/v1/feed/ack", Bytes::from_static(b"x"))
        .await
        .unwrap();
    assert_eq!(ack.status, 403);
    assert_eq!(get(&operator, "/v1/gateways").await.unwrap(), 200);
    assert_eq!(gw.get("/v1/feed/snapshot").await.status, 200);
    running.shutdown().await;
}
