//! The gateway configuration the tests (and, through `#[path]`, the benches) start from, and
//! key files as the gateway wants them. Only the standard library: benches include this file.

use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

pub const POLICIES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/policies");

/// A gateway configuration for tests: free ports, a fresh repository, the shipped policies.
pub fn config_text(
    upstream: SocketAddr,
    data_dir: &Path,
    policies: &str,
    extra_http: &str,
) -> String {
    format!(
        r#"
[gateway]
cse_id = "/id-in"
cse_name = "cse-in"
sp_id = "//acme.example.com"
data_dir = "{data}"

[http]
listen = "127.0.0.1:0"
upstream = "http://{upstream}"
upstream_timeout_ms = 500
max_body_bytes = 4096
max_header_bytes = 2048
{extra_http}

[admin]
listen = "127.0.0.1:0"

[policy]
dir = "{policies}"

[[nodes]]
id = "CAdmin"
groups = ["operators"]

[[nodes]]
id = "Cmeter"
groups = ["devices", "meters"]

[[nodes]]
id = "Clamp"
groups = ["devices", "lamps"]
"#,
        data = data_dir.display(),
    )
}

/// Writes `bytes` hex-encoded to `dir/name`, readable by the owner only (the gateway refuses
/// key files others can read), and returns the path.
pub fn key_file(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join(name);
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    std::fs::write(&path, hex).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    path
}
