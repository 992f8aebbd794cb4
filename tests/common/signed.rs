//! Signed requests for the check-value and replay tests: a `[checks]` section with keys in
//! 0600 files, and a retrieve of the meter by Cmeter with its `aus`.

use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http_body_util::Full;
use m2mguard::guard::check_value::sign;
use m2mguard::guard::replay::format_ot;
use m2mguard::primitive::{Operation, Peer, Primitive, Protocol};
use m2mguard::security::Secret;

use super::{client, onem2m, send, Answer};

pub const KEY: [u8; 32] = [0x42; 32];
pub const METER: &str = "/id-in/cse-in/meter";

/// `[checks]` requiring a check value and a timestamp under /id-in/cse-in/meter*, one key for
/// Cmeter and one for Clamp, written to 0600 files in `dir`.
pub fn checks_toml(dir: &Path, lease: u64) -> String {
    for (name, byte) in [("meter.key", 0x42u8), ("lamp.key", 0x17)] {
        super::key_file(dir, name, &[byte; 32]);
    }
    format!(
        r#"
[[checks.require]]
path = "{METER}*"
check_value = true
timestamp = true

[checks.replay]
lease = {lease}

[[checks.keys]]
id = "meter-k1"
node = "Cmeter"
file = "{dir}/meter.key"

[[checks.keys]]
id = "lamp-k1"
node = "Clamp"
file = "{dir}/lamp.key"
"#,
        dir = dir.display()
    )
}

pub fn now_ot(offset: i64) -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    format_ot(now.saturating_add_signed(offset))
}

/// A retrieve of the meter by Cmeter, as the gateway will see it.
pub struct Signed {
    pub rqi: String,
    pub ot: Option<String>,
    pub seq: u64,
    pub key_id: &'static str,
    pub key: [u8; 32],
}

impl Signed {
    pub fn new(rqi: &str, seq: u64) -> Signed {
        Signed {
            rqi: rqi.into(),
            ot: Some(now_ot(0)),
            seq,
            key_id: "meter-k1",
            key: KEY,
        }
    }

    pub fn aus(&self) -> String {
        sign(
            &self.primitive(),
            self.key_id,
            &Secret::new(&self.key),
            self.seq,
        )
    }

    /// The primitive the gateway decodes from [`Signed::request`].
    pub fn primitive(&self) -> Primitive {
        let peer = Peer::unauthenticated(([127, 0, 0, 1], 0).into(), Protocol::Http);
        let mut p = Primitive::new(
            Operation::Retrieve,
            METER,
            "Cmeter",
            self.rqi.as_str(),
            peer,
        );
        p.ot = self.ot.clone();
        p
    }

    pub fn request(
        &self,
        gw: std::net::SocketAddr,
        aus: Option<String>,
    ) -> http::Request<Full<Bytes>> {
        let mut b = onem2m(
            "GET",
            format!("http://{gw}/cse-in/meter"),
            "Cmeter",
            &self.rqi,
        );
        if let Some(ot) = &self.ot {
            b = b.header("X-M2M-OT", ot);
        }
        if let Some(aus) = aus {
            b = b.header("X-M2M-AS", aus);
        }
        b.body(Full::default()).unwrap()
    }

    pub async fn send(&self, gw: std::net::SocketAddr) -> Answer {
        send(&client(), self.request(gw, Some(self.aus()))).await
    }
}
