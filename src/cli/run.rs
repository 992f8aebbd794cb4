//! `m2mguard run`: start the gateway and serve until SIGINT or SIGTERM.

use std::path::Path;

use m2mguard::gateway::{Gateway, StartError};

use super::{load_config, Failure, LogFormat};

pub async fn run(path: &Path, log: LogFormat) -> Result<(), Failure> {
    let config = load_config(path)?;
    super::init_tracing(log);
    let gateway = Gateway::start(config).await.map_err(|e| match e {
        StartError::Policies(_) => Failure::config(e),
        other => Failure::startup(other),
    })?;
    let reason = stop_signal().await;
    tracing::info!(signal = reason, "shutting down");
    gateway.shutdown().await;
    Ok(())
}

#[cfg(unix)]
pub async fn stop_signal() -> &'static str {
    use tokio::signal::unix::{signal, SignalKind};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => tokio::select! {
            _ = tokio::signal::ctrl_c() => "SIGINT",
            _ = term.recv() => "SIGTERM",
        },
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
            "SIGINT"
        }
    }
}

#[cfg(not(unix))]
pub async fn stop_signal() -> &'static str {
    let _ = tokio::signal::ctrl_c().await;
    "Ctrl-C"
}
