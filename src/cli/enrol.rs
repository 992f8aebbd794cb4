//! `m2mguard enrol`: the gateway makes its own key pairs — Ed25519 signing, X25519 sealing,
//! an ECDSA P-256 TLS client key — writes the private ones 0600 in `--dir` (0700), and
//! registers the public ones at the authority's `POST /v1/enrol` with the one-time code the
//! operator issued (`authority gateway add --code-out`), trusting only `--ca`. The authority
//! answers the client certificate it signed and the feed's id and key; the same files and
//! `sync.toml` as a kit from `authority gateway add --out` follow. Nothing is left behind if
//! the authority refuses.

use std::path::{Path, PathBuf};

use clap::Args;
use http::Method;
use serde_json::json;

use m2mguard::authority::client::Client;
use m2mguard::authority::ops::is_gateway_id;
use m2mguard::feed::keys::{hex, parse_hex32};

use super::{kit, Failure};

#[derive(Debug, Args)]
pub struct Enrol {
    /// The authority's base URL (https://host:port).
    #[arg(long, value_name = "URL")]
    authority: String,
    /// The CA of the authority's TLS server certificate (PEM): the only one trusted.
    #[arg(long, value_name = "FILE")]
    ca: PathBuf,
    /// This gateway's id, as the operator issued the code for (its certificate's CN).
    #[arg(long, value_name = "ID")]
    id: String,
    /// The file the operator's `authority gateway add --code-out` wrote (one line; it must
    /// not be readable by group or others). The code is good for one enrolment.
    #[arg(long, value_name = "FILE")]
    code_file: PathBuf,
    /// The directory for this gateway's credentials (created 0700 if missing; no file in it
    /// is overwritten).
    #[arg(long, value_name = "DIR")]
    dir: PathBuf,
}

pub async fn enrol(args: Enrol) -> Result<(), Failure> {
    if !is_gateway_id(&args.id) {
        return Err(Failure::config(anyhow::anyhow!(
            "--id {:?} is not a gateway id (expected 1 to 64 of A-Z a-z 0-9 . _ -)",
            args.id
        )));
    }
    let code = read_code(&args.code_file).map_err(Failure::config)?;
    let ca_pem = std::fs::read_to_string(&args.ca)
        .map_err(|e| Failure::config(anyhow::anyhow!("{}: cannot read: {e}", args.ca.display())))?;
    let ca = m2mguard::tls::load_certs(&args.ca).map_err(Failure::config)?;
    let dir = private_dir(&args.dir)?;
    let paths = kit::fresh_paths(&dir)?;
    let keys = Keys::generate()?;
    let client = Client::new(&args.authority, &ca, None, None).map_err(Failure::startup)?;
    // The private keys are on disk before the code is spent: nothing is lost if we die.
    kit::write_all(
        &dir,
        &[
            ("sign.key", &keys.sign, true),
            ("seal.key", &keys.seal, true),
            ("client.key", &keys.tls_pem, true),
        ],
    )?;
    let body = json!({
        "id": args.id, "code": code, "sign": keys.sign_pub, "seal": keys.seal_pub,
        "tls": keys.tls_spki,
    });
    let answer = match client.call(Method::POST, "/v1/enrol", Some(&body)).await {
        Ok(answer) => answer,
        Err(e) => {
            kit::remove_all(&paths);
            return Err(Failure::startup(anyhow::anyhow!("enrolment refused: {e}")));
        }
    };
    let text = |name: &str| -> Result<String, Failure> {
        answer[name].as_str().map(str::to_owned).ok_or_else(|| {
            Failure::startup(anyhow::anyhow!("the authority's answer has no {name:?}"))
        })
    };
    let (cert, feed, feed_key) = (text("cert")?, text("feed")?, text("feed_key")?);
    parse_hex32(&feed_key, "feed_key").map_err(Failure::startup)?;
    let sync = kit::sync_toml(&args.authority, &feed, &args.id, &dir);
    kit::write_all(
        &dir,
        &[
            ("client.crt", &cert, false),
            ("ca.crt", &ca_pem, false),
            ("feed.pub", &format!("{feed_key}\n"), false),
            ("sync.toml", &sync, false),
        ],
    )?;
    println!(
        "gateway {} enrolled at {}; its credentials are in {} (add sync.toml's [sync] table to its configuration)",
        args.id,
        args.authority,
        dir.display()
    );
    Ok(())
}

/// The gateway's fresh key pairs: private halves as file contents, public halves as sent.
struct Keys {
    sign: String,
    seal: String,
    tls_pem: String,
    sign_pub: String,
    seal_pub: String,
    tls_spki: String,
}

impl Keys {
    fn generate() -> Result<Keys, Failure> {
        let (sign, seal, sign_pub, seal_pub) = kit::fresh_keys()?;
        let tls = rcgen::KeyPair::generate().map_err(Failure::startup)?;
        Ok(Keys {
            sign,
            seal,
            tls_pem: tls.serialize_pem(),
            sign_pub,
            seal_pub,
            tls_spki: hex(&tls.public_key_der()),
        })
    }
}

/// The code: one line, a file no one else can read.
fn read_code(path: &Path) -> anyhow::Result<String> {
    let name = path.display();
    let meta = std::fs::metadata(path).map_err(|e| anyhow::anyhow!("{name}: cannot read: {e}"))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if meta.permissions().mode() & 0o077 != 0 {
            anyhow::bail!("{name} is readable by group or others (expected mode 0600 or stricter)");
        }
    }
    let _ = meta;
    let text =
        std::fs::read_to_string(path).map_err(|e| anyhow::anyhow!("{name}: cannot read: {e}"))?;
    let code = text.trim();
    if code.is_empty() || code.len() > 256 || !code.bytes().all(|b| b.is_ascii_graphic()) {
        anyhow::bail!("{name}: expected one line, the enrolment code");
    }
    Ok(code.to_owned())
}

/// `dir`, created if missing, made 0700, absolute.
fn private_dir(dir: &Path) -> Result<PathBuf, Failure> {
    let fail = |e: std::io::Error| Failure::startup(anyhow::anyhow!("{}: {e}", dir.display()));
    std::fs::create_dir_all(dir).map_err(fail)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).map_err(fail)?;
    }
    std::fs::canonicalize(dir).map_err(fail)
}
