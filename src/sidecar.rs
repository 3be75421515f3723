//! Builds the parts a configuration asks for (admin, inbound, outbound), runs them, and
//! stops them gracefully on SIGTERM or SIGINT.

use std::net::SocketAddr;
use std::sync::Arc;

use hyper::service::service_fn;
use tokio::task::JoinSet;

use crate::admin::Admin;
use crate::config::{Config, Inbound};
use crate::inbound::jwks::{self, KeyCache};
use crate::inbound::{InboundService, Snapshot};
use crate::metrics::{Metrics, MetricsError};
use crate::outbound::{self, OutboundService};
use crate::proxy::{Proxy, TlsSetupError, Upstream};
use crate::readiness::Readiness;
use crate::server::{self, ShutdownSignal, ShutdownTrigger, TlsError};

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Metrics(#[from] MetricsError),
    #[error("{0}")]
    Bind(#[from] std::io::Error),
    #[error("inbound TLS: {0}")]
    ListenerTls(#[from] TlsError),
    #[error("upstream TLS: {0}")]
    UpstreamTls(#[from] TlsSetupError),
    #[error("HTTP client: {0}")]
    HttpClient(#[from] reqwest::Error),
    #[error(transparent)]
    Outbound(#[from] outbound::BuildError),
    #[error("the JWT crypto backend failed its self-test: {0}")]
    CryptoSelfTest(String),
    #[error("invalid upstream URL")]
    Upstream,
}

/// A started sidecar: where it listens, and the task that ends after shutdown.
pub struct Started {
    pub admin: Option<SocketAddr>,
    pub inbound: Option<SocketAddr>,
    pub outbound: Option<SocketAddr>,
    pub metrics: Metrics,
    pub readiness: Readiness,
    tasks: JoinSet<()>,
}

/// Run until SIGTERM/SIGINT, then drain and return.
pub async fn run(config: Config) -> Result<(), RunError> {
    let (trigger, shutdown) = server::shutdown_channel();
    tokio::spawn(stop_on_signal(trigger));
    let started = start(config, shutdown).await?;
    tracing::info!("tollgate started");
    started.wait().await;
    tracing::info!("tollgate stopped");
    Ok(())
}

/// Bind every listener and start every background task; returns once all listen.
pub async fn start(config: Config, shutdown: ShutdownSignal) -> Result<Started, RunError> {
    crypto_self_test()?;
    let metrics = Metrics::new()?;
    let readiness = Readiness::new();
    // Not ready until every part below is built and registered its own components.
    let loading = readiness.register("config", "loading");
    metrics.config_generation.set(1);
    let mut tasks = JoinSet::new();

    let admin = match &config.admin {
        None => None,
        Some(admin_config) => {
            let listener = server::bind("admin", admin_config.listen).await?;
            let addr = listener.local_addr()?;
            tracing::info!(listen = %addr, "admin listening");
            let admin = Arc::new(Admin {
                metrics: metrics.clone(),
                readiness: readiness.clone(),
            });
            let make = move |_conn| {
                let admin = admin.clone();
                service_fn(move |req| admin.clone().handle(req))
            };
            tasks.spawn(server::serve(
                "admin",
                listener,
                None,
                make,
                shutdown.clone(),
                config.drain_timeout,
            ));
            Some(addr)
        }
    };

    let inbound = match &config.inbound {
        None => None,
        Some(inbound) => {
            let service = inbound_service(&config, inbound, &metrics, &readiness, &shutdown, &mut tasks)?;
            let tls = match &inbound.tls {
                Some(t) => Some(server::tls_acceptor(&t.cert_file, &t.key_file)?),
                None => None,
            };
            let listener = server::bind("inbound", inbound.listen).await?;
            let addr = listener.local_addr()?;
            tracing::info!(listen = %addr, upstream = %inbound.upstream, tls = tls.is_some(), "inbound listening");
            let make = move |conn| {
                let service = service.clone();
                service_fn(move |req| service.clone().handle(req, conn))
            };
            tasks.spawn(server::serve(
                "inbound",
                listener,
                tls,
                make,
                shutdown.clone(),
                config.drain_timeout,
            ));
            Some(addr)
        }
    };
    let outbound = match &config.outbound {
        None => None,
        Some(outbound) => {
            let snapshot = outbound::Snapshot::build(outbound, &metrics, Some(&readiness))?;
            for cache in &snapshot.tokens {
                tasks.spawn(cache.clone().keep_fresh(shutdown.clone()));
            }
            let service = Arc::new(OutboundService::new(snapshot, metrics.clone()));
            let listener = server::bind("outbound", outbound.listen).await?;
            let addr = listener.local_addr()?;
            tracing::info!(listen = %addr, routes = outbound.routes.len(), "outbound listening");
            let make = move |conn| {
                let service = service.clone();
                service_fn(move |req| service.clone().handle(req, conn))
            };
            tasks.spawn(server::serve(
                "outbound",
                listener,
                None,
                make,
                shutdown.clone(),
                config.drain_timeout,
            ));
            Some(addr)
        }
    };
    loading.ready();
    Ok(Started {
        admin,
        inbound,
        outbound,
        metrics,
        readiness,
        tasks,
    })
}

fn inbound_service(
    config: &Config,
    inbound: &Inbound,
    metrics: &Metrics,
    readiness: &Readiness,
    shutdown: &ShutdownSignal,
    tasks: &mut JoinSet<()>,
) -> Result<Arc<InboundService>, RunError> {
    let http = jwks::http_client()?;
    let mut keys = Vec::with_capacity(config.issuers.len());
    for issuer in &config.issuers {
        let handle = readiness.register(format!("issuer/{}", issuer.name), "first signing key fetch");
        let cache = Arc::new(KeyCache::new(
            &issuer.name,
            issuer.keys.clone(),
            http.clone(),
            metrics.clone(),
            Some(handle),
        ));
        tasks.spawn(cache.clone().keep_fresh(shutdown.clone()));
        keys.push(cache);
    }
    let upstream = Upstream::from_url(&inbound.upstream).ok_or(RunError::Upstream)?;
    let snapshot = Snapshot {
        inbound: inbound.clone(),
        issuers: config.issuers.clone(),
        keys,
        upstream,
    };
    Ok(Arc::new(InboundService::new(
        snapshot,
        Proxy::new(None)?,
        metrics.clone(),
    )))
}

/// jsonwebtoken needs exactly one crypto backend or its first verify panics: make that
/// happen at start-up, not on the first request.
fn crypto_self_test() -> Result<(), RunError> {
    let key = jsonwebtoken::DecodingKey::from_rsa_components("sXch", "AQAB")
        .map_err(|e| RunError::CryptoSelfTest(e.to_string()))?;
    let verified = std::panic::catch_unwind(|| {
        jsonwebtoken::crypto::verify("AAAA", b"x.y", &key, jsonwebtoken::Algorithm::RS256)
    });
    match verified {
        Ok(_) => Ok(()),
        Err(_) => Err(RunError::CryptoSelfTest("verification panicked".into())),
    }
}

// === impl Started ===

impl Started {
    /// Wait until every listener drained and every task ended (after shutdown).
    pub async fn wait(mut self) {
        while self.tasks.join_next().await.is_some() {}
    }
}

async fn stop_on_signal(trigger: ShutdownTrigger) {
    use tokio::signal::unix::{SignalKind, signal};
    let (mut term, mut int) = match (signal(SignalKind::terminate()), signal(SignalKind::interrupt())) {
        (Ok(t), Ok(i)) => (t, i),
        _ => {
            tracing::error!("cannot install signal handlers; stop with SIGKILL");
            return;
        }
    };
    let name = tokio::select! {
        _ = term.recv() => "SIGTERM",
        _ = int.recv() => "SIGINT",
    };
    tracing::info!(signal = name, "shutting down");
    trigger.trigger();
}
