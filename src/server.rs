//! Listeners: the accept loop (HTTP/1.1 and h2c through hyper-util's auto builder) and
//! graceful shutdown: stop accepting, let in-flight requests finish up to the drain
//! timeout, then return.

use std::error::Error as StdError;
use std::net::SocketAddr;
use std::time::Duration;

use hyper::body::{Body, Incoming};
use hyper::service::Service;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::watch;

type BoxError = Box<dyn StdError + Send + Sync>;

/// Fires once, when the process should stop. Cheap to clone.
#[derive(Clone)]
pub struct ShutdownSignal(watch::Receiver<bool>);

/// The sending half of [`ShutdownSignal`].
pub struct ShutdownTrigger(watch::Sender<bool>);

pub fn shutdown_channel() -> (ShutdownTrigger, ShutdownSignal) {
    let (tx, rx) = watch::channel(false);
    (ShutdownTrigger(tx), ShutdownSignal(rx))
}

// === impl Shutdown ===

impl ShutdownTrigger {
    pub fn trigger(&self) {
        let _ = self.0.send(true);
    }
}

impl ShutdownSignal {
    /// Resolves when shutdown was triggered (or the trigger was dropped).
    pub async fn wait(&mut self) {
        let _ = self.0.wait_for(|stop| *stop).await;
    }
}

/// Bind `addr`, naming the listener in the error.
pub async fn bind(name: &str, addr: SocketAddr) -> std::io::Result<TcpListener> {
    TcpListener::bind(addr)
        .await
        .map_err(|e| std::io::Error::new(e.kind(), format!("{name} listener cannot bind {addr}: {e}")))
}

/// Serve connections from `listener` until `shutdown` fires, then drain for at most `drain`.
/// `make_service` builds the per-connection service from the peer address.
pub async fn serve<F, S, B>(
    name: &'static str,
    listener: TcpListener,
    make_service: F,
    mut shutdown: ShutdownSignal,
    drain: Duration,
) where
    F: Fn(SocketAddr) -> S,
    S: Service<Request<Incoming>, Response = Response<B>> + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<BoxError>,
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    let builder = auto::Builder::new(TokioExecutor::new());
    let graceful = GracefulShutdown::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    let _ = stream.set_nodelay(true);
                    let conn = builder.serve_connection_with_upgrades(TokioIo::new(stream), make_service(peer));
                    let conn = graceful.watch(conn.into_owned());
                    tokio::spawn(async move {
                        if let Err(e) = conn.await {
                            tracing::debug!(listener = name, %peer, error = %e, "connection ended with an error");
                        }
                    });
                }
                Err(e) => {
                    // Out of file descriptors and the like: log, breathe, keep serving.
                    tracing::warn!(listener = name, error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            _ = shutdown.wait() => break,
        }
    }
    drop(listener);
    tracing::info!(
        listener = name,
        drain_seconds = drain.as_secs_f64(),
        "stopped accepting; draining"
    );
    if tokio::time::timeout(drain, graceful.shutdown()).await.is_err() {
        tracing::warn!(
            listener = name,
            "drain timeout reached; closing remaining connections"
        );
    }
}
