//! `m2mguard authority serve`: runs the authority until SIGINT or SIGTERM.

use std::path::Path;

use m2mguard::authority::{self, StartError};

use super::super::{run::stop_signal, Failure, LogFormat};

pub async fn serve(path: &Path, log: LogFormat) -> Result<(), Failure> {
    let config = super::load(path)?;
    super::super::init_tracing(log);
    let running = authority::start(config).await.map_err(|e| match e {
        StartError::Material(_) => Failure::config(e),
        StartError::Startup(_) => Failure::startup(e),
    })?;
    println!("authority serving on https://{}", running.addr);
    let reason = stop_signal().await;
    tracing::info!(signal = reason, "shutting down");
    running.shutdown().await;
    Ok(())
}
