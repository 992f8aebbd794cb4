//! Audit-log fixtures: a gateway with `[audit]` in front of the echo upstream, its log's
//! lines read back, and `m2mguard audit verify` run as the real binary.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use http_body_util::Full;
use m2mguard::config::Config;
use m2mguard::gateway::Gateway;
use serde_json::Value;

use super::{config_text, key_file, onem2m, send, Answer, HttpClient, POLICIES};

pub const BIN: &str = env!("CARGO_BIN_EXE_m2mguard");

/// A gateway's data and log directories and the checkpoint key, in one temporary directory.
pub struct Dirs {
    pub root: tempfile::TempDir,
}

impl Dirs {
    pub fn new() -> Dirs {
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir(root.path().join("data")).unwrap();
        key_file(root.path(), "audit.key", &[7u8; 32]);
        let public = m2mguard::feed::SigningKey::from_seed(&[7u8; 32]).public();
        std::fs::write(
            root.path().join("audit.key.pub"),
            m2mguard::feed::keys::hex(public.raw()),
        )
        .unwrap();
        Dirs { root }
    }

    pub fn data(&self) -> PathBuf {
        self.root.path().join("data")
    }

    pub fn log(&self) -> PathBuf {
        self.root.path().join("audit")
    }

    pub fn key(&self) -> PathBuf {
        self.root.path().join("audit.key")
    }

    pub fn public_key(&self) -> PathBuf {
        self.root.path().join("audit.key.pub")
    }

    /// A gateway configuration with `[audit]` writing to [`Dirs::log`]; `extra` adds keys to
    /// the table (`on_full = "drop"`, `segment_bytes = …`).
    pub fn config(&self, upstream: SocketAddr, extra: &str) -> String {
        self.config_at(upstream, &self.log(), extra)
    }

    pub fn config_at(&self, upstream: SocketAddr, log: &Path, extra: &str) -> String {
        let mut text = config_text(upstream, &self.data(), POLICIES, "");
        text.push_str(&format!(
            "\n[audit]\ndir = \"{}\"\nkey = \"{}\"\n{extra}\n",
            log.display(),
            self.key().display()
        ));
        text
    }

    pub async fn start(&self, upstream: SocketAddr, extra: &str) -> Gateway {
        let config = Config::parse(&self.config(upstream, extra), "audit-test.toml").unwrap();
        Gateway::start(config).await.unwrap()
    }
}

/// Every line of the log in `dir`, parsed, oldest first.
pub fn lines(dir: &Path) -> Vec<Value> {
    let mut all = Vec::new();
    for (_, path) in m2mguard::audit::list_segments(dir).unwrap() {
        for line in std::fs::read_to_string(path).unwrap().lines() {
            all.push(serde_json::from_str(line).unwrap());
        }
    }
    all
}

/// The request lines with this `rqi`.
pub fn requests<'a>(lines: &'a [Value], rqi: &str) -> Vec<&'a Value> {
    lines
        .iter()
        .filter(|l| l["kind"] == "request" && l["rqi"] == rqi)
        .collect()
}

/// `m2mguard audit verify --dir … --public-key …`: its exit code and what it printed.
pub fn verify(dir: &Path, public_key: &Path) -> (i32, String) {
    let out = std::process::Command::new(BIN)
        .args(["audit", "verify", "--dir"])
        .arg(dir)
        .arg("--public-key")
        .arg(public_key)
        .output()
        .unwrap();
    let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&out.stderr));
    (out.status.code().unwrap_or(-1), text)
}

/// A GET of `/cse-in` as `fr` with request id `rqi`.
pub async fn get(client: &HttpClient, gateway: SocketAddr, fr: &str, rqi: &str) -> Answer {
    let request = onem2m("GET", format!("http://{gateway}/cse-in"), fr, rqi)
        .body(Full::default())
        .unwrap();
    send(client, request).await
}

/// A create of a contentInstance under `/cse-in/meter` as `fr`, carrying `content`.
pub async fn create(
    client: &HttpClient,
    gateway: SocketAddr,
    fr: &str,
    rqi: &str,
    content: &str,
) -> Answer {
    let request = onem2m("POST", format!("http://{gateway}/cse-in/meter"), fr, rqi)
        .header("Content-Type", "application/json;ty=4")
        .body(Full::new(bytes::Bytes::from(content.to_owned())))
        .unwrap();
    send(client, request).await
}

/// `segments` (each a segment's lines) rewritten as an attacker without the checkpoint key
/// would: the first request made allowed and its `fr` changed, every line's `prev` from there
/// to the end recomputed.
pub fn rewritten(segments: &[Vec<String>]) -> Vec<Vec<String>> {
    let mut prev: Option<String> = None;
    let mut changed = false;
    let mut out = Vec::new();
    for lines in segments {
        let mut seg = Vec::new();
        for line in lines {
            let mut v: Value = serde_json::from_str(line).unwrap();
            if !changed && v["kind"] == "request" {
                v["verdict"] = "allowed".into();
                v["fr"] = "Cinnocent".into();
                changed = true;
            }
            if let Some(p) = &prev {
                v["prev"] = p.clone().into();
            }
            let text = serde_json::to_string(&v).unwrap();
            prev = Some(m2mguard::audit::line::hash(text.as_bytes()));
            seg.push(text);
        }
        out.push(seg);
    }
    out
}

/// The checkpoint line `line` with its JWS re-made under another key, same payload.
pub fn forged(line: &str) -> String {
    let mut v: Value = serde_json::from_str(line).unwrap();
    let jws = v["jws"].as_str().unwrap();
    let payload = jws.split('.').nth(1).unwrap();
    use base64::Engine as _;
    let payload = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .unwrap();
    let other = m2mguard::feed::SigningKey::from_seed(&[9u8; 32]);
    v["jws"] = m2mguard::feed::jws::sign(&other, m2mguard::audit::CHECKPOINT_TYP, &payload).into();
    serde_json::to_string(&v).unwrap()
}

/// A copy of the log in `from` (its files) in `to`, for one attack.
pub fn copy(from: &Path, to: &Path) -> PathBuf {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        if entry.path().is_file() {
            std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
        }
    }
    to.to_owned()
}

/// The log's segment files, oldest first.
pub fn segments(dir: &Path) -> Vec<PathBuf> {
    m2mguard::audit::list_segments(dir)
        .unwrap()
        .into_iter()
        .map(|(_, p)| p)
        .collect()
}

/// A file's lines, without their `\n`.
pub fn read_lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
}

/// Writes `lines`, each ended by `\n`.
pub fn write_lines(path: &Path, lines: &[String]) {
    let mut text = lines.join("\n");
    text.push('\n');
    std::fs::write(path, text).unwrap();
}
