//! Builds the parts a configuration asks for (admin, inbound, outbound), runs them, and
//! stops them gracefully on SIGTERM or SIGINT.

use std::net::SocketAddr;
use std::sync::Arc;

use hyper::service::service_fn;
use tokio::task::JoinSet;

use crate::admin::Admin;
use crate::config::Config;
use crate::decision::{self, DecisionService};
use crate::inbound::{self, BuildContext, InboundService};
use crate::metrics::{Metrics, MetricsError};
use crate::outbound::{self, OutboundService};
use crate::proxy::{Proxy, TlsSetupError};
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
    HttpClient(#[from] crate::idp::ClientError),
    #[error(transparent)]
    TrustRoots(#[from] crate::trust::NoTrustRoots),
    #[error(transparent)]
    Outbound(#[from] outbound::BuildError),
    #[error("the JWT crypto backend failed its self-test: {0}")]
    CryptoSelfTest(String),
    #[error(transparent)]
    Inbound(#[from] inbound::BuildError),
}

/// A started sidecar: where it listens, and the task that ends after shutdown.
pub struct Started {
    pub admin: Option<SocketAddr>,
    pub inbound: Option<SocketAddr>,
    pub decision: Option<SocketAddr>,
    pub outbound: Option<SocketAddr>,
    pub metrics: Metrics,
    pub readiness: Readiness,
    /// The request handlers, whose snapshots a reload replaces.
    pub services: Services,
    /// The configuration the sidecar started with.
    pub config: Config,
    /// The identity-provider client, shared with reloads.
    idp: reqwest::Client,
    shutdown: ShutdownSignal,
    tasks: JoinSet<()>,
}

/// The running request handlers.
#[derive(Clone, Default)]
pub struct Services {
    pub inbound: Option<Arc<InboundService>>,
    pub decision: Option<Arc<DecisionService>>,
    /// The inbound listener's certificate, when it terminates TLS.
    pub inbound_cert: Option<Arc<server::ServerCert>>,
    pub outbound: Option<Arc<OutboundService>>,
}

/// Run until SIGTERM/SIGINT, then drain and return. `path` is watched for changes.
pub async fn run(config: Config, path: std::path::PathBuf) -> Result<(), RunError> {
    let (trigger, shutdown) = server::shutdown_channel();
    tokio::spawn(stop_on_signal(trigger));
    let mut started = start(config, shutdown).await?;
    started.reload_on_change(path);
    tracing::info!("tollgate started");
    started.wait().await;
    tracing::info!("tollgate stopped");
    Ok(())
}

/// Bind every listener and start every background task; returns once all listen.
pub async fn start(config: Config, shutdown: ShutdownSignal) -> Result<Started, RunError> {
    crypto_self_test()?;
    // Fail now, naming the cause, when an https URL needs a CA bundle the image lacks.
    crate::trust::require_for(&config)?;
    let metrics = Metrics::new()?;
    let readiness = Readiness::new();
    // Not ready until every part below is built and registered its own components.
    let loading = readiness.register("config", "loading");
    metrics.config_generation.set(1);
    let mut tasks = JoinSet::new();

    let admin = match &config.admin {
        None => None,
        Some(admin_config) => {
            let admin = Arc::new(Admin {
                metrics: metrics.clone(),
                readiness: readiness.clone(),
            });
            let make = move |_conn| {
                let admin = admin.clone();
                service_fn(move |req| admin.clone().handle(req))
            };
            let addr = listen(
                &mut tasks,
                "admin",
                admin_config.listen,
                None,
                make,
                &shutdown,
                (&config, &admin_config.limits),
            )
            .await?;
            tracing::info!(listen = %addr, "admin listening");
            Some(addr)
        }
    };

    let no_changes = std::collections::HashSet::new();
    let idp = crate::idp::client()?;
    let cx = BuildContext {
        metrics: &metrics,
        http: &idp,
        readiness: Some(&readiness),
        changed_files: &no_changes,
    };
    let mut services = Services::default();
    // One key cache per issuer, shared by inbound and the decision listener.
    let keys = if config.inbound.is_some() || config.decision.is_some() {
        let (keys, fresh) = inbound::key_caches(&config, &[], &cx);
        for cache in fresh {
            tasks.spawn(cache.keep_fresh(shutdown.clone()));
        }
        keys
    } else {
        Vec::new()
    };
    let inbound = match &config.inbound {
        None => None,
        Some(inbound) => {
            let snapshot = inbound::Snapshot::build(&config, inbound, keys.clone())?;
            let service = Arc::new(InboundService::new(
                snapshot,
                Proxy::new(None, inbound.limits.upstream_connect_timeout)?,
                metrics.clone(),
            ));
            services.inbound = Some(service.clone());
            let tls = match &inbound.tls {
                Some(t) => {
                    let cert = Arc::new(server::ServerCert::load(&t.cert_file, &t.key_file)?);
                    services.inbound_cert = Some(cert.clone());
                    Some(server::tls_acceptor_for(cert)?)
                }
                None => None,
            };
            let with_tls = tls.is_some();
            let make = move |conn| {
                let service = service.clone();
                service_fn(move |req| Box::pin(service.clone().handle(req, conn)))
            };
            let addr = listen(
                &mut tasks,
                "inbound",
                inbound.listen,
                tls,
                make,
                &shutdown,
                (&config, &inbound.limits),
            )
            .await?;
            tracing::info!(listen = %addr, upstream = %inbound.upstream, tls = with_tls, "inbound listening");
            Some(addr)
        }
    };
    let decision = match &config.decision {
        None => None,
        Some(section) => {
            let snapshot = decision::Snapshot::build(&config, section, keys.clone());
            let service = Arc::new(DecisionService::new(snapshot, metrics.clone()));
            services.decision = Some(service.clone());
            let tls = match &section.tls {
                Some(t) => Some(server::tls_acceptor(&t.cert_file, &t.key_file)?),
                None => None,
            };
            let with_tls = tls.is_some();
            let make = move |_conn| {
                let service = service.clone();
                service_fn(move |req| Box::pin(service.clone().handle(req)))
            };
            let addr = listen(
                &mut tasks,
                "decision",
                section.listen,
                tls,
                make,
                &shutdown,
                (&config, &section.limits),
            )
            .await?;
            tracing::info!(listen = %addr, tls = with_tls, routes = section.policy.routes.len(), "decision listening");
            Some(addr)
        }
    };
    let outbound = match &config.outbound {
        None => None,
        Some(outbound) => {
            let (snapshot, fresh) = outbound::Snapshot::build(outbound, &config.issuers, None, &cx)?;
            for cache in fresh {
                tasks.spawn(cache.keep_fresh(shutdown.clone()));
            }
            let service = Arc::new(OutboundService::new(snapshot, metrics.clone()));
            services.outbound = Some(service.clone());
            let make = move |conn| {
                let service = service.clone();
                service_fn(move |req| Box::pin(service.clone().handle(req, conn)))
            };
            let addr = listen(
                &mut tasks,
                "outbound",
                outbound.listen,
                None,
                make,
                &shutdown,
                (&config, &outbound.limits),
            )
            .await?;
            tracing::info!(listen = %addr, routes = outbound.routes.len(), "outbound listening");
            Some(addr)
        }
    };
    loading.ready();
    Ok(Started {
        admin,
        inbound,
        decision,
        outbound,
        metrics,
        readiness,
        services,
        config,
        idp,
        shutdown,
        tasks,
    })
}

/// Bind `addr` and serve connections with `make` until shutdown (drained per `config`);
/// returns the bound address.
async fn listen<F, S, B>(
    tasks: &mut JoinSet<()>,
    name: &'static str,
    addr: SocketAddr,
    tls: Option<tokio_rustls::TlsAcceptor>,
    make: F,
    shutdown: &ShutdownSignal,
    (config, limits): (&Config, &crate::config::Limits),
) -> Result<SocketAddr, RunError>
where
    F: Fn(server::ClientConn) -> S + Send + 'static,
    S: hyper::service::Service<http::Request<hyper::body::Incoming>, Response = http::Response<B>>
        + Send
        + 'static,
    S::Future: Send + 'static,
    S::Error: Into<crate::proxy::BoxError>,
    B: hyper::body::Body<Data = bytes::Bytes> + Send + Unpin + 'static,
    B::Error: Into<crate::proxy::BoxError>,
{
    let listener = server::bind(name, addr).await?;
    let bound = listener.local_addr()?;
    tasks.spawn(server::serve_with_limits(
        name,
        listener,
        tls,
        make,
        shutdown.clone(),
        config.drain_timeout,
        *limits,
    ));
    Ok(bound)
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
    /// Watch `path` (and the files it names), reload on change, SIGHUP or poll.
    pub fn reload_on_change(&mut self, path: std::path::PathBuf) {
        let reloader = crate::reload::Reloader::new(
            path,
            self.config.clone(),
            self.services.clone(),
            self.idp.clone(),
            self.metrics.clone(),
            self.readiness.clone(),
            self.shutdown.clone(),
        );
        self.tasks.spawn(reloader.start());
    }

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
