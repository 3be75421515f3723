//! Builds the parts a configuration asks for (admin, inbound, outbound), runs them, and
//! stops them gracefully on SIGTERM or SIGINT.

use std::sync::Arc;

use hyper::service::service_fn;

use crate::admin::Admin;
use crate::config::Config;
use crate::metrics::{Metrics, MetricsError};
use crate::readiness::Readiness;
use crate::server::{self, ShutdownSignal, ShutdownTrigger};

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Metrics(#[from] MetricsError),
    #[error("{0}")]
    Bind(#[from] std::io::Error),
    #[error("the `{0}` section is not supported by this build yet")]
    NotAvailable(&'static str),
}

/// Run until SIGTERM/SIGINT, then drain and return.
pub async fn run(config: Config) -> Result<(), RunError> {
    let (trigger, shutdown) = server::shutdown_channel();
    tokio::spawn(stop_on_signal(trigger));
    run_until(config, shutdown).await
}

/// Run until `shutdown` fires. Tests drive this directly.
pub async fn run_until(config: Config, shutdown: ShutdownSignal) -> Result<(), RunError> {
    if config.inbound.is_some() {
        return Err(RunError::NotAvailable("inbound"));
    }
    if config.outbound.is_some() {
        return Err(RunError::NotAvailable("outbound"));
    }
    let metrics = Metrics::new()?;
    let readiness = Readiness::new();
    metrics.config_generation.set(1);

    let mut tasks = tokio::task::JoinSet::new();
    if let Some(admin_config) = &config.admin {
        let listener = server::bind("admin", admin_config.listen).await?;
        tracing::info!(listen = %admin_config.listen, "admin listening");
        let admin = Arc::new(Admin {
            metrics: metrics.clone(),
            readiness: readiness.clone(),
        });
        let make = move |_peer| {
            let admin = admin.clone();
            service_fn(move |req| admin.clone().handle(req))
        };
        tasks.spawn(server::serve(
            "admin",
            listener,
            make,
            shutdown.clone(),
            config.drain_timeout,
        ));
    }
    readiness.register("config", "loading").ready();
    tracing::info!("tollgate started");

    let mut shutdown = shutdown;
    shutdown.wait().await;
    while tasks.join_next().await.is_some() {}
    tracing::info!("tollgate stopped");
    Ok(())
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
