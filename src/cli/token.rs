//! `m2mguard token revoke <jti>`: access-control token operations through the admin API.

use std::net::SocketAddr;
use std::path::Path;

use clap::Subcommand;

use m2mguard::admin::client::AdminClient;

use super::{load_config, Failure};

#[derive(Subcommand)]
pub enum Action {
    /// Refuse the token with this id (its jti) from the next request on; survives restarts.
    Revoke {
        /// The token's `jti` claim, as the issuer wrote it.
        jti: String,
    },
}

pub async fn token(
    config: &Path,
    admin: Option<SocketAddr>,
    action: Action,
) -> Result<(), Failure> {
    let addr = match admin {
        Some(addr) => addr,
        None => load_config(config)?.admin.listen,
    };
    let client = AdminClient::new(addr);
    match action {
        Action::Revoke { jti } => {
            let value = client.revoke_token(&jti).await.map_err(Failure::startup)?;
            let already = value["already"].as_bool().unwrap_or(false);
            println!(
                "{jti}: revoked{}",
                if already { " (already was)" } else { "" }
            );
        }
    }
    Ok(())
}
