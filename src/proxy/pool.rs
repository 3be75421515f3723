//! Idle HTTP/1.1 connections to one plain-`http` upstream, kept with the upstream itself.
//!
//! A request takes the connection used last (or opens one), and the connection goes back
//! once the response body has been read to its end. There is no pool key to hash and no
//! task per request, which is what hyper-util's pooled client costs; that client still
//! carries TLS, HTTP/2 and protocol upgrades.

// The idle list sits behind a std Mutex, held for one push or pop, never across an await
// or any I/O: cheaper than an async lock on the request path, and never contended long.
#![allow(clippy::disallowed_types)]

use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::task::{Context, Poll, ready};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::uri::Authority;
use http::{Request, Response};
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// An idle connection older than this is closed instead of reused.
const IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// Idle connections kept at most; past it a returning connection is closed.
const MAX_IDLE: usize = 1024;

/// The idle connections to one upstream.
#[derive(Default)]
pub struct Http1Pool {
    idle: Mutex<Vec<Idle>>,
}

struct Idle {
    sender: SendRequest<Incoming>,
    since: Instant,
}

/// A response body that gives its connection back to the pool once read to the end; a
/// body dropped or failed before that closes the connection (it cannot carry another).
pub struct PooledBody {
    body: Incoming,
    back: Option<(Arc<Http1Pool>, SendRequest<Incoming>)>,
}

// === impl Http1Pool ===

impl Http1Pool {
    /// The pool for `authority`: the one a live snapshot already holds, so that a reload
    /// keeps the idle connections, else a new one. Called when a snapshot is built.
    pub fn shared(authority: &Authority) -> Arc<Http1Pool> {
        static POOLS: Mutex<Vec<(Authority, Weak<Http1Pool>)>> = Mutex::new(Vec::new());
        let mut pools = POOLS.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        pools.retain(|(_, pool)| pool.strong_count() > 0);
        let live = pools
            .iter()
            .find(|(a, _)| a == authority)
            .and_then(|(_, pool)| pool.upgrade());
        live.unwrap_or_else(|| {
            let pool = Arc::new(Http1Pool::default());
            pools.push((authority.clone(), Arc::downgrade(&pool)));
            pool
        })
    }

    /// Send `req` (origin-form URI, `Host` set) on an idle connection or a new one to
    /// `authority`. A reused connection that closed before the request was written is
    /// dropped and the request goes on the next one, as hyper-util's client does.
    pub async fn send(
        self: &Arc<Self>,
        authority: &Authority,
        connect_timeout: Duration,
        mut req: Request<Incoming>,
    ) -> Result<Response<PooledBody>, String> {
        loop {
            let (mut sender, reused) = match self.take() {
                Some(sender) => (sender, true),
                None => (connect(authority, connect_timeout).await?, false),
            };
            match sender.try_send_request(req).await {
                Ok(res) => return Ok(self.hold(res, sender)),
                Err(mut e) => match e.take_message() {
                    Some(unsent) if reused => req = unsent,
                    _ => return Err(super::error_chain(e.error())),
                },
            }
        }
    }

    /// The most recently returned connection that is still open and ready.
    fn take(&self) -> Option<SendRequest<Incoming>> {
        let now = Instant::now();
        loop {
            let Idle { sender, since } = self.lock().pop()?;
            // Only ready connections are kept, so one that is not has closed or is closing.
            if now.saturating_duration_since(since) <= IDLE_TIMEOUT && sender.is_ready() {
                return Some(sender);
            }
        }
    }

    /// Keep `sender` for the next request once its connection is ready for one. It
    /// usually is when the response body ends; it is not while the request body is still
    /// being sent (an upstream may answer first), and then it comes back when done.
    fn put(self: &Arc<Self>, mut sender: SendRequest<Incoming>) {
        if sender.is_ready() {
            self.keep(sender);
        } else if !sender.is_closed()
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            let pool = self.clone();
            runtime.spawn(async move {
                if sender.ready().await.is_ok() {
                    pool.keep(sender);
                }
            });
        }
    }

    fn keep(&self, sender: SendRequest<Incoming>) {
        let now = Instant::now();
        let mut idle = self.lock();
        // Oldest first: drop those past the idle timeout once the oldest is.
        if idle
            .first()
            .is_some_and(|i| now.saturating_duration_since(i.since) > IDLE_TIMEOUT)
        {
            idle.retain(|i| now.saturating_duration_since(i.since) <= IDLE_TIMEOUT);
        }
        if idle.len() < MAX_IDLE {
            idle.push(Idle { sender, since: now });
        }
    }

    fn hold(
        self: &Arc<Self>,
        res: Response<Incoming>,
        sender: SendRequest<Incoming>,
    ) -> Response<PooledBody> {
        let (parts, body) = res.into_parts();
        let mut body = PooledBody {
            body,
            back: Some((self.clone(), sender)),
        };
        if body.body.is_end_stream() {
            body.give_back();
        }
        Response::from_parts(parts, body)
    }

    fn lock(&self) -> MutexGuard<'_, Vec<Idle>> {
        // A panic while held cannot leave the Vec half-changed: take it as it is.
        self.idle.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    #[cfg(test)]
    fn idle_count(&self) -> usize {
        self.lock().len()
    }
}

/// A new HTTP/1.1 connection to `authority`, its connection task spawned.
async fn connect(authority: &Authority, timeout: Duration) -> Result<SendRequest<Incoming>, String> {
    let port = authority.port_u16().unwrap_or(80);
    // IPv6 hosts come in brackets.
    let host = authority.host().trim_start_matches('[').trim_end_matches(']');
    let stream = match tokio::time::timeout(timeout, TcpStream::connect((host, port))).await {
        Err(_) => return Err(format!("connect to {authority} timed out after {timeout:?}")),
        Ok(Err(e)) => return Err(format!("connect to {authority}: {e}")),
        Ok(Ok(stream)) => stream,
    };
    let _ = stream.set_nodelay(true);
    let (sender, connection) = http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| super::error_chain(&e))?;
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::debug!(error = %e, "upstream connection ended with an error");
        }
    });
    Ok(sender)
}

// === impl PooledBody ===

impl PooledBody {
    fn give_back(&mut self) {
        if let Some((pool, sender)) = self.back.take() {
            pool.put(sender);
        }
    }
}

impl Body for PooledBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let this = &mut *self;
        let frame = ready!(Pin::new(&mut this.body).poll_frame(cx));
        match &frame {
            None => this.give_back(),
            Some(Ok(_)) if this.body.is_end_stream() => this.give_back(),
            Some(Ok(_)) => {}
            Some(Err(_)) => this.back = None,
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

impl Drop for PooledBody {
    fn drop(&mut self) {
        // Read to its end but not polled once more: the connection can still be reused.
        if self.body.is_end_stream() {
            self.give_back();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    /// An upstream that answers every request on a connection with `body`, counting the
    /// connections it accepted; `close_after` requests, it closes the connection.
    async fn upstream(
        body: &'static str,
        close_after: usize,
    ) -> (Authority, Arc<std::sync::atomic::AtomicUsize>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let accepted = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let count = accepted.clone();
        tokio::spawn(async move {
            loop {
                let (mut s, _) = listener.accept().await.unwrap();
                count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 4096];
                    for _ in 0..close_after {
                        let mut head = Vec::new();
                        while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                            let n = s.read(&mut buf).await.unwrap_or(0);
                            if n == 0 {
                                return;
                            }
                            head.extend_from_slice(&buf[..n]);
                        }
                        let reply =
                            format!("HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n{body}", body.len());
                        if s.write_all(reply.as_bytes()).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        (Authority::try_from(addr.to_string()).unwrap(), accepted)
    }

    /// A request to send: the pool needs an `Incoming` body, which only hyper makes, so
    /// take one from a real server connection.
    async fn requests(n: usize) -> tokio::sync::mpsc::Receiver<Request<Incoming>> {
        requests_from(b"GET /x HTTP/1.1\r\nHost: t\r\n\r\n".repeat(n), n).await
    }

    /// The first `n` requests read from `raw`, sent on one client connection.
    async fn requests_from(raw: Vec<u8>, n: usize) -> tokio::sync::mpsc::Receiver<Request<Incoming>> {
        let (tx, rx) = tokio::sync::mpsc::channel(n);
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let (s, _) = listener.accept().await.unwrap();
            let service = hyper::service::service_fn(move |req: Request<Incoming>| {
                let tx = tx.clone();
                async move {
                    let _ = tx.send(req).await;
                    Ok::<_, std::convert::Infallible>(Response::new(http_body_util::Empty::<Bytes>::new()))
                }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(s), service)
                .await;
        });
        let mut c = TcpStream::connect(addr).await.unwrap();
        c.write_all(&raw).await.unwrap();
        tokio::spawn(async move {
            let mut sink = [0u8; 1024];
            while c.read(&mut sink).await.is_ok_and(|n| n > 0) {}
        });
        rx
    }

    #[test]
    fn a_live_pool_is_shared_by_authority_and_a_dropped_one_is_not_revived() {
        let a = Authority::from_static("pool-test.invalid:8080");
        let first = Http1Pool::shared(&a);
        let again = Http1Pool::shared(&Authority::from_static("POOL-TEST.invalid:8080"));
        assert!(Arc::ptr_eq(&first, &again));
        let other = Http1Pool::shared(&Authority::from_static("pool-test.invalid:8081"));
        assert!(!Arc::ptr_eq(&first, &other));
        let weak = Arc::downgrade(&first);
        drop((first, again));
        assert!(weak.upgrade().is_none());
        let fresh = Http1Pool::shared(&a);
        assert_eq!(Arc::strong_count(&fresh), 1);
    }

    #[tokio::test]
    async fn reuses_a_connection_once_the_body_is_read() {
        let (authority, accepted) = upstream("hello", usize::MAX).await;
        let pool = Arc::new(Http1Pool::default());
        let mut reqs = requests(3).await;
        for _ in 0..3 {
            let req = reqs.recv().await.unwrap();
            let res = pool.send(&authority, Duration::from_secs(1), req).await.unwrap();
            let body = res.into_body().collect().await.unwrap().to_bytes();
            assert_eq!(body, "hello");
        }
        assert_eq!(accepted.load(std::sync::atomic::Ordering::SeqCst), 1);
        assert_eq!(pool.idle_count(), 1);
    }

    #[tokio::test]
    async fn a_body_dropped_unread_closes_its_connection() {
        let (authority, accepted) = upstream("hello", usize::MAX).await;
        let pool = Arc::new(Http1Pool::default());
        let mut reqs = requests(2).await;
        let res = pool
            .send(&authority, Duration::from_secs(1), reqs.recv().await.unwrap())
            .await
            .unwrap();
        drop(res);
        assert_eq!(pool.idle_count(), 0);
        let res = pool
            .send(&authority, Duration::from_secs(1), reqs.recv().await.unwrap())
            .await
            .unwrap();
        assert_eq!(res.into_body().collect().await.unwrap().to_bytes(), "hello");
        assert_eq!(accepted.load(std::sync::atomic::Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn a_connection_the_upstream_closed_is_not_reused() {
        // One request per connection, then the upstream closes it.
        let (authority, accepted) = upstream("hi", 1).await;
        let pool = Arc::new(Http1Pool::default());
        let mut reqs = requests(3).await;
        for _ in 0..3 {
            let req = reqs.recv().await.unwrap();
            let res = pool.send(&authority, Duration::from_secs(1), req).await.unwrap();
            assert_eq!(res.into_body().collect().await.unwrap().to_bytes(), "hi");
            // Let the connection task see the close.
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(accepted.load(std::sync::atomic::Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn a_connection_still_sending_its_request_body_is_not_handed_out() {
        // The upstream answers at once; the client's chunked body never ends.
        let (authority, accepted) = upstream("hello", usize::MAX).await;
        let pool = Arc::new(Http1Pool::default());
        let raw = b"POST /x HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n".to_vec();
        let mut uploads = requests_from(raw, 1).await;
        let res = pool
            .send(&authority, Duration::from_secs(1), uploads.recv().await.unwrap())
            .await
            .unwrap();
        assert_eq!(res.into_body().collect().await.unwrap().to_bytes(), "hello");
        // The next request gets a connection of its own instead of waiting behind it.
        let mut reqs = requests(1).await;
        let res = tokio::time::timeout(
            Duration::from_secs(2),
            pool.send(&authority, Duration::from_secs(1), reqs.recv().await.unwrap()),
        )
        .await
        .expect("not queued behind the unfinished upload")
        .unwrap();
        assert_eq!(res.into_body().collect().await.unwrap().to_bytes(), "hello");
        assert_eq!(accepted.load(std::sync::atomic::Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn an_unreachable_upstream_is_an_error_naming_it() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let authority = Authority::try_from(listener.local_addr().unwrap().to_string()).unwrap();
        drop(listener);
        let pool = Arc::new(Http1Pool::default());
        let mut reqs = requests(1).await;
        let e = pool
            .send(&authority, Duration::from_secs(1), reqs.recv().await.unwrap())
            .await
            .err()
            .unwrap();
        assert!(e.contains(authority.as_str()), "{e}");
    }
}
