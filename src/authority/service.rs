//! Starting the authority from a validated [`AuthorityConfig`]: key material and TLS loaded
//! (a bad file is a configuration error), the state opened, the listener bound, then the
//! HTTPS server, the heartbeat that keeps a fresh head signed, and MQTT publishing when
//! configured. Shutdown is the [`CancellationToken`] handed back in [`Running`].

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;

use super::config::AuthorityConfig;
use super::material::Ca;
use super::publish::Feed;
use super::server::{self, auth::OperatorToken, Context};
use super::state::State;
use crate::config::ConnectionLimits;
use crate::feed::SigningKey;
use crate::listen::Limiter;
use crate::metrics::ConnectionCounters;
use crate::tls::{self, KeyPair};

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// Key material or TLS files unusable (exit 64).
    #[error("{0}")]
    Material(String),
    /// The state or the port (exit 1).
    #[error("{0}")]
    Startup(String),
}

/// A running authority.
pub struct Running {
    pub addr: SocketAddr,
    pub feed: Arc<Feed>,
    pub stop: CancellationToken,
    tasks: JoinSet<()>,
}

impl Running {
    /// Stops accepting, lets open connections finish (bounded), and returns.
    pub async fn shutdown(mut self) {
        self.stop.cancel();
        while self.tasks.join_next().await.is_some() {}
    }
}

pub async fn start(config: AuthorityConfig) -> Result<Running, StartError> {
    let material = |e: String| StartError::Material(e);
    let key = SigningKey::load(&config.feed_key).map_err(|e| material(e.to_string()))?;
    let token = OperatorToken::load(&config.operator_token).map_err(material)?;
    let identity =
        KeyPair::load(&config.tls_cert, &config.tls_key).map_err(|e| material(e.to_string()))?;
    let client_ca = tls::load_certs(&config.client_ca).map_err(|e| material(e.to_string()))?;
    let ca = Ca::load(&config.client_ca, &config.ca_key).map_err(|e| material(e.to_string()))?;
    let tls = tls::server_config_optional_client(&identity, &client_ca)
        .map_err(|e| material(e.to_string()))?;
    std::fs::create_dir_all(&config.data_dir).map_err(|e| {
        StartError::Startup(format!("cannot create {}: {e}", config.data_dir.display()))
    })?;
    let state = State::open(&config.data_dir).map_err(|e| {
        StartError::Startup(format!(
            "{e} (is another authority using {}?)",
            config.data_dir.display()
        ))
    })?;
    let feed = Feed::new(config.feed.clone(), state, key, config.head_valid_s)
        .map_err(|e| StartError::Startup(e.to_string()))?;
    let feed = Arc::new(feed);
    let das = match config.das.clone() {
        Some(d) => Some(Arc::new(
            super::das::Das::load(d, super::publish::now_s()).map_err(material)?,
        )),
        None => None,
    };
    publish_issuers(&feed, das.as_deref())?;
    let tcp = TcpListener::bind(config.listen)
        .await
        .map_err(|e| StartError::Startup(format!("cannot listen on {}: {e}", config.listen)))?;
    let addr = tcp
        .local_addr()
        .map_err(|e| StartError::Startup(e.to_string()))?;
    let limits = ConnectionLimits {
        max_connections: config.max_connections,
        max_connections_per_source: config.max_connections_per_source,
    };
    let limiter = Limiter::new("authority", limits, ConnectionCounters::default());
    let stop = CancellationToken::new();
    let mut tasks = JoinSet::new();
    let context = Arc::new(Context {
        feed: feed.clone(),
        token,
        report_rules: Arc::new(config.report_rules.clone()),
        ca,
        enrol_code_ttl_s: config.enrol_code_ttl_s,
        guesses: Default::default(),
        das,
    });
    tasks.spawn(server::serve(
        tcp,
        TlsAcceptor::from(tls),
        limiter,
        context,
        stop.clone(),
    ));
    tasks.spawn(heartbeat(feed.clone(), config.heartbeat, stop.clone()));
    if let Some(mqtt) = config.mqtt.clone() {
        tasks.spawn(super::mqtt::run(feed.clone(), mqtt, stop.clone()));
    }
    tracing::info!(%addr, feed = %config.feed, "authority serving");
    Ok(Running {
        addr,
        feed,
        stop,
        tasks,
    })
}

/// Publishes `issuer.put` for the token key when it is new or rotated, and `issuer.remove`
/// for issuers no longer configured; nothing when the feed says so already.
fn publish_issuers(feed: &Feed, das: Option<&super::das::Das>) -> Result<(), StartError> {
    let (seq, _, count) = feed
        .publish(|state| {
            let plan = super::das::issuer_plan(state, das)?;
            let count = plan.records.len();
            Ok((plan, count))
        })
        .map_err(|e| StartError::Startup(format!("cannot publish the token issuer: {e}")))?;
    if count > 0 {
        tracing::info!(seq, records = count, "das: token issuers published");
    }
    Ok(())
}

/// Signs a fresh head every `every`, until `stop`.
async fn heartbeat(feed: Arc<Feed>, every: std::time::Duration, stop: CancellationToken) {
    let mut tick = tokio::time::interval(every);
    tick.tick().await;
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            _ = tick.tick() => {
                let feed = feed.clone();
                let _ = tokio::task::spawn_blocking(move || feed.refresh_head()).await;
            }
        }
    }
}
