//! Listeners: the accept loop (HTTP/1.1 and h2c through hyper-util's auto builder) under
//! per-listener limits (connections, head size and read time, idle time, HTTP/2 streams),
//! and graceful shutdown: stop accepting, let in-flight requests finish up to the drain
//! timeout, then return.

use std::error::Error as StdError;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use hyper::body::{Body, Incoming};
use hyper::service::Service;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;

use self::activity::{Activity, TrackedIo, TrackedService, Verdict};
pub use crate::config::Limits;

mod activity;

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

/// [`serve_with_limits`] with the default [`Limits`].
pub async fn serve<F, S, B>(
    name: &'static str,
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    make_service: F,
    shutdown: ShutdownSignal,
    drain: Duration,
) where
    F: Fn(ClientConn) -> S,
    S: Service<Request<Incoming>, Response = Response<B>> + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<BoxError>,
    B: Body<Data = Bytes> + Send + Unpin + 'static,
    B::Error: Into<BoxError>,
{
    serve_with_limits(
        name,
        listener,
        tls,
        make_service,
        shutdown,
        drain,
        Limits::default(),
    )
    .await
}

/// Serve connections from `listener` (TLS-terminated when `tls` is given) under `limits`
/// until `shutdown` fires, then drain for at most `drain`. `make_service` builds each
/// connection's service. At `limits.max_connections` open connections, accepting pauses
/// (new clients wait in the kernel's backlog) while the open ones keep being served.
pub async fn serve_with_limits<F, S, B>(
    name: &'static str,
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    make_service: F,
    mut shutdown: ShutdownSignal,
    drain: Duration,
    limits: Limits,
) where
    F: Fn(ClientConn) -> S,
    S: Service<Request<Incoming>, Response = Response<B>> + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<BoxError>,
    B: Body<Data = Bytes> + Send + Unpin + 'static,
    B::Error: Into<BoxError>,
{
    let builder = Arc::new(builder(&limits));
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let mut connections = JoinSet::new();
    let mut warned_full = false;
    loop {
        if slots.available_permits() == 0 && !warned_full {
            tracing::warn!(
                listener = name,
                max_connections = limits.max_connections,
                "connection limit reached; new connections wait"
            );
        }
        warned_full = slots.available_permits() == 0;
        let accepted = tokio::select! {
            permit = slots.clone().acquire_owned() => match permit {
                Ok(permit) => tokio::select! {
                    accepted = listener.accept() => Some((accepted, permit)),
                    _ = shutdown.wait() => None,
                },
                Err(_) => None,
            },
            Some(_) = connections.join_next() => continue,
            _ = shutdown.wait() => None,
        };
        let Some((accepted, permit)) = accepted else { break };
        match accepted {
            Ok((stream, peer)) => {
                let _ = stream.set_nodelay(true);
                let service = make_service(ClientConn {
                    peer,
                    tls: tls.is_some(),
                });
                let connection = Connection {
                    builder: builder.clone(),
                    limits,
                    shutdown: shutdown.clone(),
                };
                let tls = tls.clone();
                connections.spawn(async move {
                    let _permit = permit;
                    let result = match tls {
                        None => connection.serve(stream, service).await,
                        Some(acceptor) => {
                            match tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                                Ok(Ok(tls_stream)) => connection.serve(tls_stream, service).await,
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
        }
    }
    drop(listener);
    tracing::info!(
        listener = name,
        drain_seconds = drain.as_secs_f64(),
        "stopped accepting; draining"
    );
    let drained =
        tokio::time::timeout(drain, async { while connections.join_next().await.is_some() {} }).await;
    if drained.is_err() {
        tracing::warn!(
            listener = name,
            "drain timeout reached; closing remaining connections"
        );
    }
}

/// The connection builder for `limits`: HTTP/1.1 and HTTP/2 (h2c or by ALPN).
fn builder(limits: &Limits) -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    // Heads past the limit get tollgate's JSON 431 from the service; past twice the limit
    // the parser stops reading them (bare 431), so a head never costs more than that.
    let hard = (limits.max_header_bytes * 2).max(8192);
    // The header read timeout is the watchdog's (`Connection::serve`), which also covers
    // protocol detection; hyper's own would cost a timer per request for nothing.
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(None)
        .max_buf_size(hard);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(limits.http2_max_concurrent_streams)
        .max_header_list_size(hard as u32)
        // Rapid reset (CVE-2023-44487): streams reset before tollgate answered them are
        // bounded per connection; past it the connection is closed with GOAWAY.
        .max_pending_accept_reset_streams(Some(64))
        .max_local_error_reset_streams(Some(256))
        .keep_alive_interval(Some(limits.idle_timeout.min(Duration::from_secs(30))))
        .keep_alive_timeout(Duration::from_secs(20));
    builder
}

/// One client connection and the limits its watchdog enforces.
struct Connection {
    builder: Arc<auto::Builder<TokioExecutor>>,
    limits: Limits,
    shutdown: ShutdownSignal,
}

impl Connection {
    /// Serve `io` until the client leaves, the watchdog closes it (slow head, idle), or
    /// shutdown asks it to finish its requests.
    async fn serve<I, S, B>(mut self, io: I, service: S) -> Result<(), BoxError>
    where
        I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
        S: Service<Request<Incoming>, Response = Response<B>> + Send + 'static,
        S::Future: Send + 'static,
        S::Error: Into<BoxError>,
        B: Body<Data = Bytes> + Send + Unpin + 'static,
        B::Error: Into<BoxError>,
    {
        let activity = Activity::new();
        let io = TokioIo::new(TrackedIo::new(io, activity.clone()));
        let service = TrackedService::new(service, activity.clone(), self.limits.max_header_bytes);
        let conn = self.builder.serve_connection_with_upgrades(io, service);
        tokio::pin!(conn);
        let mut closing = false;
        loop {
            let next_check = match activity.verdict(self.limits.header_read_timeout, self.limits.idle_timeout)
            {
                Verdict::Open(at) => at,
                Verdict::HeaderTimeout => return Err("request header read timeout".into()),
                Verdict::Idle if closing => return Ok(()),
                Verdict::Idle => {
                    // HTTP/2 gets a GOAWAY; an idle HTTP/1.1 connection just closes.
                    conn.as_mut().graceful_shutdown();
                    closing = true;
                    tokio::time::Instant::now() + Duration::from_secs(1)
                }
            };
            tokio::select! {
                result = conn.as_mut() => return result,
                _ = self.shutdown.wait(), if !closing => {
                    conn.as_mut().graceful_shutdown();
                    closing = true;
                }
                _ = tokio::time::sleep_until(next_check) => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn idle_keep_alive_closes() {
        let listener = bind("t", "127.0.0.1:0".parse().unwrap()).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (_stop, shutdown) = shutdown_channel();
        let limits = Limits {
            idle_timeout: Duration::from_secs(1),
            ..Limits::default()
        };
        let make = |_c| {
            hyper::service::service_fn(|_req| async {
                Ok::<_, std::convert::Infallible>(Response::new(http_body_util::Full::new(
                    Bytes::from_static(b"hi"),
                )))
            })
        };
        tokio::spawn(serve_with_limits(
            "t",
            listener,
            None,
            make,
            shutdown,
            Duration::from_secs(1),
            limits,
        ));
        let mut c = tokio::net::TcpStream::connect(addr).await.unwrap();
        c.write_all(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n").await.unwrap();
        let mut buf = [0u8; 1024];
        let n = c.read(&mut buf).await.unwrap();
        assert!(n > 0);
        let started = std::time::Instant::now();
        let r = tokio::time::timeout(Duration::from_secs(4), c.read(&mut buf)).await;
        assert!(
            matches!(r, Ok(Ok(0)) | Ok(Err(_))),
            "{r:?} after {:?}",
            started.elapsed()
        );
    }
}
