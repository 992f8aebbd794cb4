//! `m2mguard authority init`: a new authority directory — `authority.toml`, the feed key
//! (`feed.key` 0600, `feed.pub`), a CA (`ca.crt`, `ca.key` 0600), a server certificate for the
//! names given (`server.crt`, `server.key` 0600), the operator token (`operator.token`
//! 0600) and the token key of `[das]` (`das.key` 0600). Nothing is overwritten: if any of these files exists, nothing is written.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Args;

use m2mguard::authority::config::TEMPLATE;
use m2mguard::authority::material::{fresh_key_hex, none_exist, write_new, Ca};
use m2mguard::feed::keys::{hex, parse_hex32, random32};
use m2mguard::feed::SigningKey;

use super::super::Failure;

#[derive(Args)]
pub struct Init {
    /// The directory to create the authority in (created if missing).
    #[arg(long, value_name = "DIR")]
    dir: PathBuf,
    /// The feed id (1 to 64 of A-Z a-z 0-9 . _ -).
    #[arg(long, value_name = "ID", default_value = "m2mguard")]
    feed: String,
    /// The HTTPS address to listen on.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:7443")]
    listen: SocketAddr,
    /// A DNS name or IP address for the server certificate (repeat for more; default
    /// 127.0.0.1 and localhost).
    #[arg(long = "name", value_name = "DNS-or-IP")]
    names: Vec<String>,
}

const FILES: [&str; 10] = [
    "authority.toml",
    "feed.key",
    "das.key",
    "feed.pub",
    "ca.crt",
    "ca.key",
    "server.crt",
    "server.key",
    "operator.token",
    "data",
];

pub fn init(args: Init) -> Result<(), Failure> {
    if m2mguard::feed::record::check_feed_id(&args.feed).is_err() {
        return Err(Failure::config(anyhow::anyhow!(
            "--feed {:?} is not a feed id (expected 1 to 64 of A-Z a-z 0-9 . _ -)",
            args.feed
        )));
    }
    let names = if args.names.is_empty() {
        vec!["127.0.0.1".to_owned(), "localhost".to_owned()]
    } else {
        args.names
    };
    let dir = &args.dir;
    std::fs::create_dir_all(dir)
        .map_err(|e| Failure::startup(anyhow::anyhow!("cannot create {}: {e}", dir.display())))?;
    let paths: Vec<PathBuf> = FILES.iter().map(|f| dir.join(f)).collect();
    none_exist(paths.iter().map(PathBuf::as_path)).map_err(Failure::startup)?;
    let feed_seed = fresh_key_hex();
    let seed = parse_hex32(&feed_seed, "feed key").map_err(Failure::startup)?;
    let feed_pub = format!("{}\n", hex(SigningKey::from_seed(&seed).public().raw()));
    let (ca, ca_files) =
        Ca::generate(&format!("m2mguard authority CA {}", args.feed)).map_err(Failure::startup)?;
    let server = ca.issue(&names[0], &names).map_err(Failure::startup)?;
    let token = format!("{}\n", hex(&random32()));
    let config = TEMPLATE
        .replace("feed = \"m2mguard\"", &format!("feed = \"{}\"", args.feed))
        .replace(
            "listen = \"127.0.0.1:7443\"",
            &format!("listen = \"{}\"", args.listen),
        );
    let das_seed = fresh_key_hex();
    let writes: [(&str, &str, bool); 9] = [
        ("feed.key", &feed_seed, true),
        ("das.key", &das_seed, true),
        ("feed.pub", &feed_pub, false),
        ("ca.crt", &ca_files.cert_pem, false),
        ("ca.key", &ca_files.key_pem, true),
        ("server.crt", &server.cert_pem, false),
        ("server.key", &server.key_pem, true),
        ("operator.token", &token, true),
        ("authority.toml", &config, false),
    ];
    for (name, contents, private) in writes {
        write_new(&dir.join(name), contents, private).map_err(Failure::startup)?;
    }
    println!(
        "authority {} created in {} (listen {}, certificate for {}); start it with `m2mguard authority serve -c {}`",
        args.feed,
        dir.display(),
        args.listen,
        names.join(", "),
        dir.join("authority.toml").display()
    );
    Ok(())
}
