//! Wiring: from a validated [`Config`] to running listeners, and back down again.
//!
//! Start-up order: policies (invalid ones are a configuration error) → repository → seed nodes
//! → bind every port → serve. Nothing is served until all ports are bound. SIGHUP and
//! `POST /v1/reload` reload the policies; a failed reload keeps the set in force.
//!
//! With `[audit]`, the audit log opens before anything is served and closes last, after
//! every listener has drained: the last requests' records are in it. With `[sync]` too, its
//! checkpoints go to the outbox (`<data_dir>/outbox`), whose delivery task sends them to
//! the authority until shutdown; what it has not sent waits there for the next start. With
//! `[reports]` (which needs `[sync]`), a record sink counts refusals per node and the reports
//! it makes are signed and queued in the same outbox.
//!
//! Shutdown is one `CancellationToken`, handed down to every listener and task (never imported
//! from here): cancelling it stops every accept loop at once, and each listener drains its open
//! connections within its own bound ([`DRAIN`] for HTTP).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::admin::{self, State};
use crate::audit::{Audit, Checkpoints};
use crate::binding::coap;
use crate::binding::http::{self, HttpBinding, Listener};
use crate::binding::mqtt::{self, MqttBinding};
use crate::config::{CoapConfig, Config};
use crate::decision::Decider;
use crate::guard::{Guard, MessageChecks, Plausibility, Tokens};
use crate::listen::Limiter;
use crate::metrics::Metrics;
use crate::outbox::checkpoints::Queued;
use crate::outbox::{deliver, reports, Outbox};
use crate::policy::{Policies, PolicyError};
use crate::record::{Event, LogSink, Recorder, Sink};
use crate::registration::Registrar;
use crate::report::counter::Counter;
use crate::report::maker::{self, Maker};
use crate::report::Report;
use crate::store::{Keys, Limits, Nodes, Repository, SledStore, Standing, Store, StoreError};
use crate::sync::Follower;
use crate::target::resolve::{Lookup, Resolver};
use crate::tls::TlsError;

/// Resource-id lookups in flight at once; more are refused (see [`crate::target::resolve`]).
const MAX_LOOKUPS: usize = 32;

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("policies are invalid:\n{}", admin::policy_errors(.0))]
    Policies(Vec<PolicyError>),
    #[error("cannot open the repository in {dir}: {source}")]
    Store { dir: String, source: StoreError },
    #[error("cannot listen on {addr} ({what}): {source}")]
    Bind {
        what: &'static str,
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("token issuers unusable: {0}")]
    Tokens(String),
    #[error("TLS set-up failed: {0}")]
    Tls(#[from] TlsError),
    #[error("CoAP set-up failed: {0}")]
    Coap(#[from] coap::CoapError),
    #[error("cannot follow the feed: {0}")]
    Sync(String),
    #[error("cannot open the outbox: {0}")]
    Outbox(String),
    #[error("cannot open the audit log in {dir}: {source}")]
    Audit { dir: String, source: std::io::Error },
}

/// A running gateway. Drop it only through [`Gateway::shutdown`].
pub struct Gateway {
    pub http_addr: SocketAddr,
    pub admin_addr: SocketAddr,
    /// The MQTT listener's address, when `[mqtt]` is configured.
    pub mqtt_addr: Option<SocketAddr>,
    /// The CoAP listener's UDP address, when `[coap]` is configured.
    pub coap_addr: Option<SocketAddr>,
    pub state: Arc<State>,
    shutdown: CancellationToken,
    tasks: JoinSet<()>,
    audit: Option<Audit>,
}

/// Resolves resource-id targets by asking the CSE behind `[http] upstream`, when
/// `gateway.resolve_originator` says as whom.
fn resolver(config: &Config) -> Result<Resolver, TlsError> {
    let g = &config.gateway;
    let lookup = match &g.resolve_originator {
        Some(originator) => {
            let upstream = Arc::new(http::Upstream::new(&config.http)?);
            let lookup: Arc<dyn Lookup> =
                Arc::new(http::CseLookup::new(upstream, &g.cse_id, originator));
            Some(lookup)
        }
        None => None,
    };
    Ok(Resolver::new(
        g.addressing(),
        lookup,
        g.resolve_cache_entries,
        MAX_LOOKUPS,
    ))
}

/// With `[reports]` (and so `[sync]`): the counting sink, and the maker's end of its
/// hand-over.
fn reporting(
    config: &Config,
    nodes: &Arc<Nodes>,
    metrics: &Metrics,
) -> Option<(Arc<dyn Sink>, tokio::sync::mpsc::Receiver<Report>)> {
    let (reports, sync) = (config.reports.as_ref()?, config.sync.as_ref()?);
    let (tx, rx) = maker::handover();
    let counter = Counter::new(
        &sync.gateway_id,
        reports,
        nodes.clone(),
        tx,
        metrics.reports().clone(),
    );
    Some((Arc::new(counter), rx))
}

impl Gateway {
    pub async fn start(config: Config) -> Result<Gateway, StartError> {
        let policies = Arc::new(Policies::load(&config.policy_dir).map_err(StartError::Policies)?);
        let (store, nodes, keys) = repository(&config)?;
        let metrics = Arc::new(Metrics::new());
        metrics.policy_reload(Ok(policies.current().count));
        let owes = config.audit.is_some() || config.reports.is_some();
        let outbox = match &config.sync {
            Some(_) if owes => Some(Arc::new(
                Outbox::open(&config.gateway.data_dir, metrics.outbox().clone())
                    .map_err(|e| StartError::Outbox(e.to_string()))?,
            )),
            _ => None,
        };
        let audit = match &config.audit {
            Some(a) => {
                let anchor = outbox.clone().map(|o| {
                    let queued: Arc<dyn Checkpoints> = Arc::new(Queued(o));
                    queued
                });
                Some(
                    Audit::start(a.clone(), metrics.audit().clone(), anchor).map_err(|source| {
                        StartError::Audit {
                            dir: a.dir.display().to_string(),
                            source,
                        }
                    })?,
                )
            }
            None => None,
        };
        let mut fixed: Vec<Arc<dyn Sink>> = vec![metrics.clone(), Arc::new(LogSink::default())];
        let reports = reporting(&config, &nodes, &metrics);
        if let Some((counter, _)) = &reports {
            fixed.push(counter.clone());
        }
        fixed.extend(audit.as_ref().map(Audit::sink));
        let recorder = Arc::new(Recorder::new(fixed));
        let mut tokens_config = config.tokens.clone();
        if let (None, Some(s)) = (&tokens_config.token_request_info, &config.sync) {
            // With [sync], tokens come from the authority: tqf names its token service.
            let base = s.authority.to_string();
            tokens_config.token_request_info =
                Some(format!("{}/v1/das/tokens", base.trim_end_matches('/')));
        }
        let tokens = Arc::new(
            Tokens::new(&tokens_config, &config.gateway.cse_id, store.clone())
                .map_err(StartError::Tokens)?,
        );
        let state = Arc::new(State {
            nodes: nodes.clone(),
            policies: policies.clone(),
            metrics: metrics.clone(),
            tokens: tokens.clone(),
            keys: keys.clone(),
            recorder: recorder.clone(),
        });
        let reload = tokens.clone();
        let repository = Arc::new(
            Repository::new(nodes.clone(), keys.clone())
                .on_issuers(move || reload.reload_issuers()),
        );
        let checks = MessageChecks::new(&config.checks, keys, tokens.clone(), store)
            .map_err(|source| StartError::Store {
                dir: config.gateway.data_dir.display().to_string(),
                source,
            })?
            .with_plausibility(Plausibility::new(
                &config.plausibility,
                metrics.plausibility_flags(),
            ));
        let g = &config.gateway;
        let guard = Arc::new(
            Guard::new(nodes.clone(), policies, checks)
                .with_enrolment(g.unknown_originators, g.registration_groups.clone()),
        );
        let targets = resolver(&config)?;
        let follower = match &config.sync {
            Some(s) => Some(
                Follower::new(
                    s.clone(),
                    repository.clone(),
                    metrics.clone(),
                    recorder.clone(),
                )
                .map_err(StartError::Sync)?,
            ),
            None => None,
        };
        let registrar = Registrar::new(repository);
        let mut decider = Decider::new(
            guard,
            registrar,
            metrics.clone(),
            recorder.clone(),
            targets,
            tokens.request_info(),
        )
        .with_mode(config.gateway.mode);
        if let Some(gate) = audit.as_ref().and_then(Audit::gate) {
            decider = decider.with_audit_gate(gate);
        }
        if let Some(s) = &config.sync {
            let client = Arc::new(crate::sync::client::Client::new(s));
            let das = crate::das::Das::new(client, tokens.clone(), &config.tokens);
            decider = decider.with_das(Arc::new(das));
        }
        let decider = Arc::new(decider);
        let h = &config.http;
        let binding = Arc::new(HttpBinding::new(h, decider.clone())?);

        let (http_tcp, http_addr) = bind("http", h.listen).await?;
        let (admin_tcp, admin_addr) = bind("admin", config.admin.listen).await?;
        let mqtt = match &config.mqtt {
            Some(m) => {
                let (tcp, addr) = bind("mqtt", m.listen).await?;
                let listener = mqtt::Listener {
                    tcp,
                    tls: m
                        .tls
                        .as_ref()
                        .map(|t| tokio_rustls::TlsAcceptor::from(t.config.clone())),
                    require_identity: m.tls.as_ref().is_some_and(|t| t.client_auth),
                    limiter: Limiter::new("mqtt", m.connections, metrics.connections("mqtt")),
                };
                let binding = MqttBinding::new(m, &config.gateway.cse_id, decider.clone(), nodes);
                Some((listener, Arc::new(binding), addr))
            }
            None => None,
        };
        let mqtt_addr = mqtt.as_ref().map(|(_, _, addr)| *addr);
        let listener = Listener {
            tcp: http_tcp,
            tls: h
                .tls
                .as_ref()
                .map(|t| tokio_rustls::TlsAcceptor::from(t.config.clone())),
            require_identity: h.tls.as_ref().is_some_and(|t| t.client_auth),
            max_header_bytes: h.max_header_bytes,
            header_read_timeout: h.header_read_timeout,
            limiter: Limiter::new("http", h.connections, metrics.connections("http")),
        };
        let shutdown = CancellationToken::new();
        let coap = match &config.coap {
            Some(c) => {
                let (udp, addr) = bind_udp(c.listen).await?;
                let relay = coap::Relay::new(c, decider, Arc::new(udp), shutdown.clone());
                Some((relay.await?, addr))
            }
            None => None,
        };
        let coap_addr = coap.as_ref().map(|(_, addr)| *addr);
        let mut tasks = JoinSet::new();
        if let Some((relay, _)) = coap {
            tasks.spawn(coap::serve(relay, shutdown.clone()));
        }
        tasks.spawn(http::serve(listener, binding, shutdown.clone(), DRAIN));
        tasks.spawn(admin::serve(admin_tcp, state.clone(), shutdown.clone()));
        if let Some((listener, binding, _)) = mqtt {
            tasks.spawn(mqtt::serve(listener, binding, shutdown.clone()));
        }
        tasks.spawn(reload_on_sighup(state.clone(), shutdown.clone()));
        if config.sync.as_ref().is_some_and(|s| s.max_age_s > 0) {
            tasks.spawn(crate::sync::watch_staleness(
                state.nodes.clone(),
                shutdown.clone(),
            ));
        }
        if let (Some((_, made)), Some(outbox), Some(sync)) = (reports, &outbox, &config.sync) {
            let maker = Maker {
                key: sync.sign_key.clone(),
                queue: Arc::new(reports::Queued(outbox.clone())),
                recorder: recorder.clone(),
                metrics: metrics.reports().clone(),
            };
            tasks.spawn(maker::run(maker, made, shutdown.clone()));
        }
        if let (Some(outbox), Some(sync)) = (outbox, &config.sync) {
            tasks.spawn(deliver::run(outbox, sync.clone(), shutdown.clone()));
        }
        if let (Some(follower), Some(sync)) = (follower, &config.sync) {
            let repository = follower.repository().clone();
            tasks.spawn(crate::sync::follow(
                follower,
                sync.clone(),
                repository,
                metrics.clone(),
                recorder.clone(),
                shutdown.clone(),
            ));
        }
        tracing::info!(http = %http_addr, admin = %admin_addr, mqtt = ?mqtt_addr, coap = ?coap_addr, cse_id = %config.gateway.cse_id, "m2mguard started");
        recorder.event(Event::Started {
            version: env!("CARGO_PKG_VERSION"),
            keys: state.keys.ring().len(),
        });
        for warning in config.coap.iter().flat_map(CoapConfig::warnings) {
            tracing::warn!("{warning}");
        }
        Ok(Gateway {
            http_addr,
            admin_addr,
            mqtt_addr,
            coap_addr,
            state,
            shutdown,
            tasks,
            audit,
        })
    }

    /// Stops accepting, lets open requests finish (at most [`DRAIN`]), closes the rest,
    /// closes the audit log with a checkpoint, and releases the repository.
    pub async fn shutdown(mut self) {
        self.shutdown.cancel();
        while self.tasks.join_next().await.is_some() {}
        self.state.recorder.event(Event::Stopping);
        if let Some(audit) = self.audit.take() {
            let _ = tokio::task::spawn_blocking(move || audit.close()).await;
        }
    }
}

/// How long open connections may take to finish after shutdown begins.
pub const DRAIN: Duration = Duration::from_secs(10);

/// The repository, its nodes and its key ring.
type Opened = (Arc<dyn Store>, Arc<Nodes>, Arc<Keys>);

/// Opens the repository and brings the configured nodes and keys into it.
fn repository(config: &Config) -> Result<Opened, StartError> {
    let store_err = |source| StartError::Store {
        dir: config.gateway.data_dir.display().to_string(),
        source,
    };
    let store: Arc<dyn Store> =
        Arc::new(SledStore::open(&config.gateway.data_dir).map_err(store_err)?);
    let limits = match &config.sync {
        Some(s) => Limits {
            synced: true,
            max_age_s: s.max_age_s,
            group: s.stale_group.clone(),
        },
        None => Limits::default(),
    };
    let nodes = Arc::new(
        Nodes::new(store.clone(), config.gateway.node_cache_capacity)
            .with_standing(Arc::new(Standing::new(limits))),
    );
    nodes.seed(&config.nodes).map_err(store_err)?;
    let keys = Arc::new(Keys::load(store.clone()).map_err(store_err)?);
    keys.seed(&config.checks.keys).map_err(store_err)?;
    Ok((store, nodes, keys))
}

async fn bind(
    what: &'static str,
    addr: SocketAddr,
) -> Result<(TcpListener, SocketAddr), StartError> {
    let bind_err = |source| StartError::Bind { what, addr, source };
    let listener = TcpListener::bind(addr).await.map_err(bind_err)?;
    let local = listener.local_addr().map_err(bind_err)?;
    Ok((listener, local))
}

async fn bind_udp(addr: SocketAddr) -> Result<(tokio::net::UdpSocket, SocketAddr), StartError> {
    let bind_err = |source| StartError::Bind {
        what: "coap",
        addr,
        source,
    };
    let socket = tokio::net::UdpSocket::bind(addr).await.map_err(bind_err)?;
    let local = socket.local_addr().map_err(bind_err)?;
    Ok((socket, local))
}

#[cfg(unix)]
async fn reload_on_sighup(state: Arc<State>, stop: CancellationToken) {
    use tokio::signal::unix::{signal, SignalKind};
    let Ok(mut hup) = signal(SignalKind::hangup()) else {
        tracing::warn!("cannot watch SIGHUP; reload through POST /v1/reload");
        return;
    };
    loop {
        tokio::select! {
            Some(()) = hup.recv() => { let _ = state.reload_policies(); }
            () = stop.cancelled() => return,
        }
    }
}

#[cfg(not(unix))]
async fn reload_on_sighup(_state: Arc<State>, stop: CancellationToken) {
    stop.cancelled().await;
}
