//! Listeners: the accept loop (HTTP/1.1 and h2c through hyper-util's auto builder) and
//! graceful shutdown: stop accepting, let in-flight requests finish up to the drain
//! timeout, then return.

use std::error::Error as StdError;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use hyper::body::{Body, Incoming};
use hyper::service::Service;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;

type BoxError = Box<dyn StdError + Send + Sync>;

const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The client side of the connection a request arrived on.
#[derive(Clone, Copy, Debug)]
pub struct ClientConn {
    pub peer: SocketAddr,
    pub tls: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read {path}: {reason}")]
    File { path: String, reason: String },
    #[error("TLS settings: {0}")]
    Rustls(#[from] rustls::Error),
}

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
    /// Whether shutdown was already triggered.
    pub fn is_triggered(&self) -> bool {
        *self.0.borrow()
    }

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

/// The listener's certificate and key, replaceable while it serves: new handshakes use
/// the new pair, open connections keep theirs.
#[derive(Debug)]
pub struct ServerCert {
    current: arc_swap::ArcSwap<rustls::sign::CertifiedKey>,
}

impl ServerCert {
    /// Read a certificate chain and private key from PEM files.
    pub fn load(cert_file: &Path, key_file: &Path) -> Result<Self, TlsError> {
        Ok(ServerCert {
            current: arc_swap::ArcSwap::from_pointee(certified_key(cert_file, key_file)?),
        })
    }

    /// Re-read the files; on error the previous pair keeps serving.
    pub fn reload(&self, cert_file: &Path, key_file: &Path) -> Result<(), TlsError> {
        self.current.store(Arc::new(certified_key(cert_file, key_file)?));
        Ok(())
    }
}

impl rustls::server::ResolvesServerCert for ServerCert {
    fn resolve(&self, _hello: rustls::server::ClientHello<'_>) -> Option<Arc<rustls::sign::CertifiedKey>> {
        Some(self.current.load_full())
    }
}

fn certified_key(cert_file: &Path, key_file: &Path) -> Result<rustls::sign::CertifiedKey, TlsError> {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};
    let file_err = |path: &Path, e: &dyn std::fmt::Display| TlsError::File {
        path: path.display().to_string(),
        reason: e.to_string(),
    };
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert_file)
        .map_err(|e| file_err(cert_file, &e))?
        .collect::<Result<_, _>>()
        .map_err(|e| file_err(cert_file, &e))?;
    if certs.is_empty() {
        return Err(file_err(cert_file, &"no PEM certificate in it"));
    }
    // The key's own content never reaches an error message.
    let key = PrivateKeyDer::from_pem_file(key_file)
        .map_err(|_| file_err(key_file, &"no usable PEM private key"))?;
    let provider = rustls::crypto::aws_lc_rs::default_provider();
    Ok(rustls::sign::CertifiedKey::from_der(certs, key, &provider)?)
}

/// A TLS acceptor serving `cert` (replaceable, see [`ServerCert`]); ALPN h2, http/1.1.
pub fn tls_acceptor_for(cert: Arc<ServerCert>) -> Result<TlsAcceptor, TlsError> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_cert_resolver(cert);
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// A TLS acceptor for a certificate chain and private key in PEM files; ALPN h2, http/1.1.
pub fn tls_acceptor(cert_file: &Path, key_file: &Path) -> Result<TlsAcceptor, TlsError> {
    tls_acceptor_for(Arc::new(ServerCert::load(cert_file, key_file)?))
}

/// Serve connections from `listener` (TLS-terminated when `tls` is given) until `shutdown`
/// fires, then drain for at most `drain`. `make_service` builds each connection's service.
pub async fn serve<F, S, B>(
    name: &'static str,
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    make_service: F,
    mut shutdown: ShutdownSignal,
    drain: Duration,
) where
    F: Fn(ClientConn) -> S,
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
                    let service = make_service(ClientConn { peer, tls: tls.is_some() });
                    let builder = builder.clone();
                    let watcher = graceful.watcher();
                    let tls = tls.clone();
                    tokio::spawn(async move {
                        let result = match tls {
                            None => serve_io(&builder, watcher, stream, service).await,
                            Some(acceptor) => {
                                match tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                                    Ok(Ok(tls_stream)) => serve_io(&builder, watcher, tls_stream, service).await,
                                    Ok(Err(e)) => Err(e.into()),
                                    Err(_) => Err("TLS handshake timed out".into()),
                                }
                            }
                        };
                        if let Err(e) = result {
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

async fn serve_io<I, S, B>(
    builder: &auto::Builder<TokioExecutor>,
    watcher: hyper_util::server::graceful::Watcher,
    io: I,
    service: S,
) -> Result<(), BoxError>
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    S: Service<Request<Incoming>, Response = Response<B>> + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<BoxError>,
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    let conn = builder.serve_connection_with_upgrades(TokioIo::new(io), service);
    watcher.watch(conn.into_owned()).await
}
