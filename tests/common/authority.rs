//! Authority fixtures: `m2mguard authority init` in a temporary directory on a free loopback
//! port, the authority started in-process or as the real binary, the binary's operator
//! commands, an operator client, and gateways made by `authority gateway add` with a client
//! that presents their certificate.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use bytes::Bytes;
use http::Method;
use m2mguard::authority::client::{Client, Reply};
use m2mguard::authority::server::auth::OperatorToken;
use m2mguard::authority::{self, AuthorityConfig, Running};
use m2mguard::feed::{SealingKey, Signed, SigningKey, VerifyingKey};
use m2mguard::tls::{self, KeyPair};

pub const BIN: &str = env!("CARGO_BIN_EXE_m2mguard");

/// An initialised authority directory.
pub struct Setup {
    pub dir: tempfile::TempDir,
    pub port: u16,
}

/// A port that was free a moment ago.
pub fn free_port() -> u16 {
    let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    probe.local_addr().unwrap().port()
}

impl Setup {
    /// `m2mguard enrol` against this authority (its CA pinned), from its directory.
    pub async fn enrol(&self, id: &str, code: &Path, dir: &Path) -> Output {
        let ca = self.path("ca.crt");
        let url = self.url();
        let args = [
            "enrol",
            "--authority",
            &url,
            "--ca",
            ca.to_str().unwrap(),
            "--id",
            id,
            "--code-file",
            code.to_str().unwrap(),
            "--dir",
            dir.to_str().unwrap(),
        ];
        m2mguard_in(self.dir.path(), &args).await
    }

    /// `m2mguard authority init` on a free port, plus `extra` appended to authority.toml.
    pub async fn new(extra: &str) -> Setup {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let out = m2mguard_in(
            dir.path(),
            &[
                "authority",
                "init",
                "--dir",
                "a",
                "--feed",
                "feed-t",
                "--listen",
                &format!("127.0.0.1:{port}"),
            ],
        )
        .await;
        assert!(
            out.status.success(),
            "init: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        if !extra.is_empty() {
            let path = dir.path().join("a/authority.toml");
            let text = std::fs::read_to_string(&path).unwrap() + extra;
            std::fs::write(path, text).unwrap();
        }
        Setup { dir, port }
    }

    pub fn path(&self, file: &str) -> PathBuf {
        self.dir.path().join("a").join(file)
    }

    pub fn config_path(&self) -> PathBuf {
        self.path("authority.toml")
    }

    pub fn url(&self) -> String {
        format!("https://127.0.0.1:{}", self.port)
    }

    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// The authority, in this process.
    pub async fn start(&self) -> Running {
        let config = AuthorityConfig::load(&self.config_path()).unwrap();
        authority::start(config).await.unwrap()
    }

    pub fn ca(&self) -> Vec<rustls_pki_types::CertificateDer<'static>> {
        tls::load_certs(&self.path("ca.crt")).unwrap()
    }

    pub fn feed_key(&self) -> VerifyingKey {
        VerifyingKey::load(&self.path("feed.pub")).unwrap()
    }

    pub fn operator(&self) -> Client {
        let token = OperatorToken::load(&self.path("operator.token")).unwrap();
        Client::new(&self.url(), &self.ca(), None, Some(token.bearer())).unwrap()
    }

    /// A client with no credential, or with `bearer` as its Authorization header.
    pub fn anonymous(&self, bearer: Option<&str>) -> Client {
        Client::new(&self.url(), &self.ca(), None, bearer.map(str::to_owned)).unwrap()
    }

    /// `m2mguard authority -c <config> <args>`, from the setup's directory.
    pub async fn cli(&self, args: &[&str]) -> Output {
        let config = self.config_path();
        let mut all = vec!["authority", "-c", config.to_str().unwrap()];
        all.extend_from_slice(args);
        m2mguard_in(self.dir.path(), &all).await
    }

    /// `cli`, which must succeed; its stdout.
    pub async fn ok(&self, args: &[&str]) -> String {
        let out = self.cli(args).await;
        assert!(
            out.status.success(),
            "{args:?}: exit {:?}\n{}",
            out.status.code(),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// `authority key add --id <id> --node <node>` with `secret` (through a key file).
    pub async fn add_key(&self, id: &str, node: &str, secret: &[u8]) {
        let dir = self.dir.path();
        let file = super::key_file(dir, &format!("{id}.secret"), secret);
        let out = dir.join(format!("{id}.out"));
        let (file, out) = (file.to_str().unwrap(), out.to_str().unwrap());
        self.ok(&[
            "key",
            "add",
            "--id",
            id,
            "--node",
            node,
            "--secret-file",
            file,
            "--secret-out",
            out,
        ])
        .await;
    }

    /// `authority gateway add --id <id>` and its kit.
    pub async fn gateway(&self, id: &str) -> Gateway {
        let out = self.dir.path().join(id);
        self.ok(&["gateway", "add", "--id", id, "--out", out.to_str().unwrap()])
            .await;
        Gateway::load(id, &out, &self.url(), &self.ca())
    }

    /// Every record of the feed, verified and chained from the first.
    pub async fn chain(&self) -> Vec<Signed> {
        let operator = self.operator();
        let mut lines = String::new();
        for page in 0..1000 {
            let path = format!("/v1/feed/records?after={}", page * 1000);
            let reply = operator
                .send(Method::GET, &path, Bytes::new())
                .await
                .unwrap();
            assert_eq!(reply.status, 200);
            let text = String::from_utf8(reply.body.to_vec()).unwrap();
            let count = text.lines().count();
            lines.push_str(&text);
            if count < 1000 {
                break;
            }
        }
        verify_chain(&lines, &self.feed_key(), "feed-t")
    }
}

/// Verifies every line and that each extends the one before.
pub fn verify_chain(lines: &str, key: &VerifyingKey, feed: &str) -> Vec<Signed> {
    let mut position = m2mguard::feed::Position::start(feed);
    lines
        .lines()
        .map(|line| {
            let signed = Signed::verify(line, key).expect("record verifies");
            position.extend(&signed).expect("record extends the chain");
            signed
        })
        .collect()
}

/// A gateway's kit, as `gateway add` wrote it, and a client presenting its certificate.
pub struct Gateway {
    pub id: String,
    pub dir: PathBuf,
    pub sign: SigningKey,
    pub seal: SealingKey,
    pub client: Client,
}

impl Gateway {
    pub fn load(
        id: &str,
        dir: &Path,
        url: &str,
        ca: &[rustls_pki_types::CertificateDer<'static>],
    ) -> Gateway {
        let identity = KeyPair::load(&dir.join("client.crt"), &dir.join("client.key")).unwrap();
        Gateway {
            id: id.to_owned(),
            dir: dir.to_owned(),
            sign: SigningKey::load(&dir.join("sign.key")).unwrap(),
            seal: SealingKey::load(&dir.join("seal.key")).unwrap(),
            client: Client::new(url, ca, Some(&identity), None).unwrap(),
        }
    }

    pub async fn get(&self, path: &str) -> Reply {
        self.client
            .send(Method::GET, path, Bytes::new())
            .await
            .unwrap()
    }

    pub async fn post(&self, path: &str, body: impl Into<Bytes>) -> Reply {
        self.client
            .send(Method::POST, path, body.into())
            .await
            .unwrap()
    }
}

/// Runs the binary in `dir`, bounded in time.
pub async fn m2mguard_in(dir: &Path, args: &[&str]) -> Output {
    let run = tokio::process::Command::new(BIN)
        .args(args)
        .current_dir(dir)
        .kill_on_drop(true)
        .output();
    tokio::time::timeout(Duration::from_secs(60), run)
        .await
        .expect("the command ends within 60 s")
        .unwrap()
}

/// The seq a publishing command printed ("…, record N (…)").
pub fn printed_seq(stdout: &str) -> u64 {
    let at = stdout.find("record ").expect("a record is named") + "record ".len();
    stdout[at..].split(' ').next().unwrap().parse().unwrap()
}

/// The `error` member of an authority's JSON answer.
pub fn error_of(reply: &Reply) -> String {
    serde_json::from_slice::<serde_json::Value>(&reply.body).unwrap()["error"]
        .as_str()
        .unwrap()
        .to_owned()
}
