//! Tollgate's HTTP/1.1 client for plain-`http` upstreams, with the idle connections to
//! one upstream kept by the upstream itself.
//!
//! A request takes the connection used last (or opens one) and is driven inside the
//! request's own task: the head written, the request body streamed while the response
//! head is awaited, then the response body read as the client takes it. There is no
//! connection task, no channel between tasks and no pool key to hash, which is what
//! hyper's client costs per request; the framing is read by [`super::http1`]. A connection
//! goes back to the pool only when its response ended exactly where its framing said,
//! with the request fully sent, nothing more received and no `Connection: close`;
//! anything else closes it. TLS, HTTP/2 and protocol upgrades go through hyper's client.

// The idle list sits behind a std Mutex, held for one push or pop, never across an await
// or any I/O: cheaper than an async lock on the request path, and never contended long.
#![allow(clippy::disallowed_types)]

use std::future::poll_fn;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::task::{Context, Poll, ready};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use http::uri::Authority;
use http::{Method, Request, Response};
use hyper::body::{Body, Frame, Incoming, SizeHint};
use tokio::net::TcpStream;

use super::BoxError;
use super::http1::{self, BodyDecoder, Decoded, RequestFraming, ResponseHead};

/// An idle connection older than this is closed instead of reused.
const IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// Idle connections kept at most; past it a returning connection is closed.
const MAX_IDLE: usize = 1024;
/// Read buffer added when one fills; a connection starts with one of these.
const READ_CHUNK: usize = 4 * 1024;
/// Request body bytes gathered before they are written.
const WRITE_BATCH: usize = 64 * 1024;
/// A returning connection whose read or write buffer grew past this gets a fresh one.
const KEEP_BUFFER_CAPACITY: usize = 64 * 1024;

/// The idle connections to one upstream.
#[derive(Default)]
pub struct Http1Pool {
    idle: Mutex<Vec<Idle>>,
}

struct Idle {
    conn: Connection,
    since: Instant,
}

/// One TCP connection to the upstream, what was read from it but not yet used, and what
/// is to be written to it (kept with the connection, so request heads do not allocate).
struct Connection {
    stream: TcpStream,
    read: BytesMut,
    write: Vec<u8>,
}

/// One request on one connection, from the first byte written to the response's end.
struct Exchange {
    /// Its `write` holds the request head, then the request body as it comes.
    conn: Connection,
    /// Bytes of `conn.write` written so far.
    written: usize,
    /// The request body still to send.
    upload: Option<Upload>,
    /// Writing stopped: the upstream's socket failed, or the client's body did.
    write_failed: Option<io::Error>,
    /// Some of a response (an interim one counts) has come.
    received: bool,
}

struct Upload {
    body: Incoming,
    chunked: bool,
    /// Bytes the declared `Content-Length` still allows.
    left: u64,
}

/// Why a request got no response head.
enum Failure {
    /// The connection ended before any byte of a response: a request without a body on a
    /// reused connection may go again on another.
    ClosedBeforeResponse(String),
    Other(String),
}

/// A response body read from its connection as the client takes it; the connection goes
/// back to the pool at its end, or is closed if it cannot carry another request.
pub struct UpstreamBody {
    exchange: Option<Exchange>,
    decoder: BodyDecoder,
    keep_alive: bool,
    eof: bool,
    pool: Arc<Http1Pool>,
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
    /// `authority`, and read the response head. A request without a body whose method is
    /// idempotent goes again on another connection when a reused one closed before
    /// answering (RFC 9112 §9.3.1).
    pub async fn send(
        self: &Arc<Self>,
        authority: &Authority,
        connect_timeout: Duration,
        req: Request<Incoming>,
    ) -> Result<Response<UpstreamBody>, String> {
        let (parts, body) = req.into_parts();
        if parts.method == Method::CONNECT {
            // A 2xx would open a tunnel, which tollgate does not relay.
            return Err("CONNECT is not forwarded".into());
        }
        let head_request = parts.method == Method::HEAD;
        let framing = http1::request_framing(&parts.headers, body.is_end_stream(), body.size_hint().exact());
        let target = parts.uri.path_and_query().map_or("/", |pq| pq.as_str());
        let mut upload = match framing {
            RequestFraming::None => None,
            RequestFraming::Length(left) => Some(Upload {
                body,
                chunked: false,
                left,
            }),
            RequestFraming::Chunked => Some(Upload {
                body,
                chunked: true,
                left: u64::MAX,
            }),
        };
        let may_retry = upload.is_none() && parts.method.is_idempotent();
        loop {
            let (mut conn, reused) = match self.take() {
                Some(conn) => (conn, true),
                None => (connect(authority, connect_timeout).await?, false),
            };
            conn.write.clear();
            http1::write_request_head(&mut conn.write, &parts.method, target, &parts.headers, framing);
            let mut exchange = Exchange {
                conn,
                written: 0,
                upload: upload.take(),
                write_failed: None,
                received: false,
            };
            match poll_fn(|cx| exchange.poll_head(cx, head_request)).await {
                Ok(head) => return Ok(self.hold(exchange, head)),
                // Only a request without a body goes again: its head is all of it.
                Err(Failure::ClosedBeforeResponse(_)) if may_retry && reused => {}
                Err(Failure::ClosedBeforeResponse(e) | Failure::Other(e)) => {
                    return Err(format!("{authority}: {e}"));
                }
            }
        }
    }

    /// The most recently returned connection that is still open and silent.
    fn take(&self) -> Option<Connection> {
        let now = Instant::now();
        loop {
            let Idle { conn, since } = self.lock().pop()?;
            if now.saturating_duration_since(since) <= IDLE_TIMEOUT && conn.is_open_and_silent() {
                return Some(conn);
            }
        }
    }

    fn keep(&self, mut conn: Connection) {
        if conn.read.capacity() > KEEP_BUFFER_CAPACITY {
            conn.read = BytesMut::new();
        }
        if conn.write.capacity() > KEEP_BUFFER_CAPACITY {
            conn.write = Vec::new();
        }
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
            idle.push(Idle { conn, since: now });
        }
    }

    /// The response, its body reading on from the exchange.
    fn hold(self: &Arc<Self>, exchange: Exchange, head: ResponseHead) -> Response<UpstreamBody> {
        let ResponseHead {
            status,
            version,
            headers,
            framing,
            keep_alive,
        } = head;
        let mut body = UpstreamBody {
            exchange: Some(exchange),
            decoder: BodyDecoder::new(framing),
            keep_alive,
            eof: false,
            pool: self.clone(),
        };
        if body.decoder.is_done() {
            body.finish();
        }
        let mut res = Response::new(body);
        *res.status_mut() = status;
        *res.version_mut() = version;
        *res.headers_mut() = headers;
        res
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

/// A new connection to `authority`.
async fn connect(authority: &Authority, timeout: Duration) -> Result<Connection, String> {
    let port = authority.port_u16().unwrap_or(80);
    // IPv6 hosts come in brackets.
    let host = authority.host().trim_start_matches('[').trim_end_matches(']');
    let stream = match tokio::time::timeout(timeout, TcpStream::connect((host, port))).await {
        Err(_) => return Err(format!("connect to {authority} timed out after {timeout:?}")),
        Ok(Err(e)) => return Err(format!("connect to {authority}: {e}")),
        Ok(Ok(stream)) => stream,
    };
    let _ = stream.set_nodelay(true);
    Ok(Connection {
        stream,
        read: BytesMut::with_capacity(READ_CHUNK),
        write: Vec::new(),
    })
}

// === impl Connection ===

impl Connection {
    /// Open, and nothing received since the last response: an upstream that closed the
    /// connection, or sent bytes nobody asked for, has made it unusable. Costs no system
    /// call unless the socket was reported readable.
    fn is_open_and_silent(&self) -> bool {
        let mut probe = [0u8; 1];
        matches!(self.stream.try_read(&mut probe), Err(e) if e.kind() == io::ErrorKind::WouldBlock)
    }

    /// Read what the socket has into `read`: `Ok(0)` when the upstream closed. A read that
    /// leaves room in the buffer marks the socket not readable (tokio's own reading does),
    /// so the check when the connection is next taken needs no system call.
    fn poll_fill(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        if self.read.capacity() - self.read.len() < READ_CHUNK / 4 {
            self.read.reserve(READ_CHUNK);
        }
        tokio_util::io::poll_read_buf(Pin::new(&mut self.stream), cx, &mut self.read)
    }
}

// === impl Exchange ===

impl Exchange {
    /// The whole request has been written, or writing stopped.
    fn sent(&self) -> bool {
        self.write_failed.is_some() || (self.upload.is_none() && self.written == self.conn.write.len())
    }

    /// Write what can be written of the request. Ready once all of it is; an error from the
    /// client's side of the body ends the exchange, one writing to the upstream is kept in
    /// `write_failed` (the upstream may have answered before closing).
    fn poll_send(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), String>> {
        loop {
            let out = &mut self.conn.write;
            while out.len() - self.written < WRITE_BATCH
                && let Some(upload) = &mut self.upload
            {
                match Pin::new(&mut upload.body).poll_frame(cx) {
                    Poll::Pending => break,
                    Poll::Ready(frame) => {
                        if upload.take(frame, out)? {
                            self.upload = None;
                        }
                    }
                }
            }
            if self.written == out.len() {
                if self.upload.is_some() {
                    out.clear();
                    self.written = 0;
                    return Poll::Pending;
                }
                return Poll::Ready(Ok(()));
            }
            match self.conn.stream.try_write(&self.conn.write[self.written..]) {
                Ok(0) => return Poll::Ready(Err("the upstream connection took no bytes".into())),
                Ok(n) => self.written += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    if let Err(e) = ready!(self.conn.stream.poll_write_ready(cx)) {
                        self.write_failed = Some(e);
                        return Poll::Ready(Ok(()));
                    }
                }
                Err(e) => {
                    self.write_failed = Some(e);
                    return Poll::Ready(Ok(()));
                }
            }
        }
    }

    /// Drive the request out while reading the response head.
    fn poll_head(&mut self, cx: &mut Context<'_>, head_request: bool) -> Poll<Result<ResponseHead, Failure>> {
        loop {
            if !self.sent()
                && let Poll::Ready(Err(e)) = self.poll_send(cx)
            {
                return Poll::Ready(Err(Failure::Other(e)));
            }
            match http1::read_head(&mut self.conn.read, head_request) {
                Ok(Some(head)) => return Poll::Ready(Ok(head)),
                Ok(None) => {}
                Err(e) => return Poll::Ready(Err(Failure::Other(e.to_string()))),
            }
            let closed = match ready!(self.conn.poll_fill(cx)) {
                Ok(0) => match &self.write_failed {
                    Some(e) => format!("the upstream closed the connection: {e}"),
                    None => "the upstream closed the connection before answering".to_string(),
                },
                Ok(_) => {
                    self.received = true;
                    continue;
                }
                Err(e) => format!("reading the upstream's response: {e}"),
            };
            // Once anything of a response came (an interim head counts), nothing is retried.
            return Poll::Ready(Err(if self.received {
                Failure::Other(closed)
            } else {
                Failure::ClosedBeforeResponse(closed)
            }));
        }
    }
}

impl Exchange {
    /// Stop sending the request body; the connection then cannot be kept.
    fn abandon_upload(&mut self) {
        self.upload = None;
        self.write_failed = Some(io::Error::other("the request body failed"));
    }
}

impl Upload {
    /// Append one frame of the request body to `out`; `Ok(true)` when the body has ended.
    fn take(
        &mut self,
        frame: Option<Result<Frame<Bytes>, hyper::Error>>,
        out: &mut Vec<u8>,
    ) -> Result<bool, String> {
        match frame {
            None if self.chunked => {
                http1::write_last_chunk(out, None);
                Ok(true)
            }
            None if self.left == 0 => Ok(true),
            None => Err("the request body ended before its Content-Length".into()),
            Some(Err(e)) => Err(format!("reading the request body: {e}")),
            Some(Ok(frame)) => match frame.into_data() {
                Ok(data) if data.is_empty() => Ok(false),
                Ok(data) if self.chunked => {
                    http1::write_chunk(out, &data);
                    Ok(false)
                }
                Ok(data) => {
                    let len = data.len() as u64;
                    if len > self.left {
                        return Err("the request body is longer than its Content-Length".into());
                    }
                    self.left -= len;
                    out.extend_from_slice(&data);
                    Ok(false)
                }
                Err(frame) => match frame.into_trailers() {
                    Ok(trailers) if self.chunked => {
                        http1::write_last_chunk(out, Some(&trailers));
                        Ok(true)
                    }
                    // Trailers cannot follow a body sent with a length: dropped, as hyper does.
                    _ => Ok(false),
                },
            },
        }
    }
}

// === impl UpstreamBody ===

impl UpstreamBody {
    /// The response has ended: keep the connection if it can carry another request.
    fn finish(&mut self) {
        let Some(exchange) = self.exchange.take() else {
            return;
        };
        let reusable = self.keep_alive
            && self.decoder.is_done()
            && exchange.write_failed.is_none()
            && exchange.sent()
            && exchange.conn.read.is_empty();
        if reusable {
            self.pool.keep(exchange.conn);
        }
    }
}

impl Body for UpstreamBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        let Some(exchange) = this.exchange.as_mut() else {
            return Poll::Ready(None);
        };
        // A request body still going out (the upstream answered early) is kept moving.
        if !exchange.sent()
            && let Poll::Ready(Err(_)) = exchange.poll_send(cx)
        {
            // The client's body failed: nothing more is written, so the upstream sees the
            // request cut short (never a clean end), and the connection is not kept.
            exchange.abandon_upload();
        }
        loop {
            let decoded = match this.decoder.decode(&mut exchange.conn.read, this.eof) {
                Ok(decoded) => decoded,
                Err(e) => {
                    this.exchange = None;
                    return Poll::Ready(Some(Err(e.into())));
                }
            };
            match decoded {
                Decoded::Data(data) => {
                    if this.decoder.is_done() {
                        this.finish();
                    }
                    return Poll::Ready(Some(Ok(Frame::data(data))));
                }
                Decoded::Trailers(trailers) => {
                    this.finish();
                    return Poll::Ready(Some(Ok(Frame::trailers(trailers))));
                }
                Decoded::End => {
                    this.finish();
                    return Poll::Ready(None);
                }
                Decoded::More => {}
            }
            match ready!(exchange.conn.poll_fill(cx)) {
                Ok(0) => {
                    this.eof = true;
                    this.keep_alive = false;
                }
                Ok(_) => {}
                Err(e) => {
                    this.exchange = None;
                    return Poll::Ready(Some(Err(e.into())));
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.decoder.is_done()
    }

    fn size_hint(&self) -> SizeHint {
        match self.decoder.remaining() {
            Some(n) => SizeHint::with_exact(n),
            None => SizeHint::default(),
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
        let (mut c, rx) = client_connection(n).await;
        c.write_all(&raw).await.unwrap();
        tokio::spawn(async move {
            let mut sink = [0u8; 1024];
            while c.read(&mut sink).await.is_ok_and(|n| n > 0) {}
        });
        rx
    }

    /// A client's connection to a hyper server that hands on each request it reads (up to
    /// `n` at once): the test writes the requests and decides when the client goes.
    async fn client_connection(n: usize) -> (TcpStream, tokio::sync::mpsc::Receiver<Request<Incoming>>) {
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
                .serve_connection(hyper_util::rt::TokioIo::new(s), service)
                .await;
        });
        (TcpStream::connect(addr).await.unwrap(), rx)
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

    /// What a scripted upstream saw: each request's raw bytes, and connections accepted.
    #[derive(Clone, Default)]
    struct Seen {
        requests: Arc<std::sync::Mutex<Vec<Vec<u8>>>>,
        accepted: Arc<std::sync::atomic::AtomicUsize>,
    }

    impl Seen {
        fn accepted(&self) -> usize {
            self.accepted.load(std::sync::atomic::Ordering::SeqCst)
        }
        fn request(&self, i: usize) -> String {
            String::from_utf8_lossy(&self.requests.lock().unwrap()[i]).into_owned()
        }
    }

    /// An upstream that reads each request on a connection (head, then a body by its
    /// `content-length` or to the chunked end) and answers it with the next of `replies`,
    /// written as given; at `None`, or past the last, it closes the connection unanswered,
    /// and at [`CLOSE`] it closes it without reading another request.
    /// Connection `k` follows `scripts[k]`, the last script serving every later connection.
    async fn scripted(scripts: Vec<Vec<Option<&'static [u8]>>>) -> (Authority, Seen) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = Seen::default();
        let record = seen.clone();
        tokio::spawn(async move {
            loop {
                let (mut s, _) = listener.accept().await.unwrap();
                let k = record.accepted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let replies = scripts[k.min(scripts.len() - 1)].clone();
                let record = record.clone();
                tokio::spawn(async move {
                    let mut buf = Vec::new();
                    for reply in replies {
                        if reply == Some(CLOSE) {
                            return;
                        }
                        let Some(request) = read_request(&mut s, &mut buf).await else {
                            return;
                        };
                        record.requests.lock().unwrap().push(request);
                        let Some(reply) = reply else { return };
                        if s.write_all(reply).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        (Authority::try_from(addr.to_string()).unwrap(), seen)
    }

    async fn read_request(s: &mut TcpStream, buf: &mut Vec<u8>) -> Option<Vec<u8>> {
        let mut chunk = [0u8; 4096];
        let complete = |buf: &[u8]| -> Option<usize> {
            let head_end = buf.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
            let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
            if head.contains("transfer-encoding: chunked") {
                let end = buf[head_end..].windows(5).position(|w| w == b"0\r\n\r\n")?;
                return Some(head_end + end + 5);
            }
            let len = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length: "))
                .map_or(0, |n| n.trim().parse::<usize>().unwrap());
            (buf.len() >= head_end + len).then_some(head_end + len)
        };
        loop {
            if let Some(n) = complete(buf) {
                return Some(buf.drain(..n).collect());
            }
            match s.read(&mut chunk).await {
                Ok(0) | Err(_) => return None,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
    }

    async fn one(
        pool: &Arc<Http1Pool>,
        authority: &Authority,
        raw: &str,
    ) -> Result<(Response<()>, Vec<u8>), String> {
        let req = requests_from(raw.as_bytes().to_vec(), 1)
            .await
            .recv()
            .await
            .unwrap();
        let res = pool.send(authority, Duration::from_secs(2), req).await?;
        let (parts, body) = res.into_parts();
        let body = body.collect().await.map_err(|e| e.to_string())?.to_bytes();
        Ok((Response::from_parts(parts, ()), body.to_vec()))
    }

    const CLOSE: &[u8] = b"";
    const GET: &str = "GET /x HTTP/1.1\r\nHost: t\r\n\r\n";
    const OK: &[u8] = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok";

    #[tokio::test]
    async fn a_response_saying_connection_close_or_sending_more_closes_the_connection() {
        let pool = Arc::new(Http1Pool::default());
        let (authority, seen) = scripted(vec![vec![
            Some(b"HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-length: 2\r\n\r\nok"),
            Some(OK),
        ]])
        .await;
        one(&pool, &authority, GET).await.unwrap();
        assert_eq!(pool.idle_count(), 0);
        let (authority, _) = scripted(vec![vec![Some(
            b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nokHTTP/1.1 200 OK\r\n\r\n",
        )]])
        .await;
        let (_, body) = one(&pool, &authority, GET).await.unwrap();
        assert_eq!(body, b"ok");
        assert_eq!(
            pool.idle_count(),
            0,
            "bytes past the response: the connection is not reused"
        );
        assert_eq!(seen.accepted(), 1);
    }

    #[tokio::test]
    async fn chunked_interim_and_head_responses_keep_the_connection_in_step() {
        let pool = Arc::new(Http1Pool::default());
        let (authority, seen) = scripted(vec![vec![
            Some(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n3;x=y\r\nabc\r\n2\r\nde\r\n0\r\ngrpc-status: 0\r\n\r\n"),
            Some(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\ncontent-length: 1\r\n\r\nz"),
            Some(b"HTTP/1.1 200 OK\r\ncontent-length: 9\r\n\r\n"),
            Some(b"HTTP/1.1 204 No Content\r\n\r\n"),
            Some(OK),
        ]])
        .await;
        let (_, body) = one(&pool, &authority, GET).await.unwrap();
        assert_eq!(body, b"abcde");
        let (res, body) = one(&pool, &authority, GET).await.unwrap();
        assert_eq!((res.status(), &body[..]), (http::StatusCode::CREATED, &b"z"[..]));
        let (res, body) = one(&pool, &authority, "HEAD /x HTTP/1.1\r\nHost: t\r\n\r\n")
            .await
            .unwrap();
        assert_eq!(
            (res.headers()["content-length"].to_str().unwrap(), body.len()),
            ("9", 0)
        );
        let (res, _) = one(&pool, &authority, GET).await.unwrap();
        assert_eq!(res.status(), http::StatusCode::NO_CONTENT);
        let (_, body) = one(&pool, &authority, GET).await.unwrap();
        assert_eq!(body, b"ok");
        assert_eq!(seen.accepted(), 1, "five responses on one connection");
        assert_eq!(pool.idle_count(), 1);
    }

    #[tokio::test]
    async fn ambiguous_framing_is_an_error_and_the_connection_is_not_reused() {
        let pool = Arc::new(Http1Pool::default());
        let (authority, seen) = scripted(vec![
            vec![Some(b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\ntransfer-encoding: chunked\r\n\r\n0\r\n\r\nHTTP/1.1 200 OK\r\ncontent-length: 8\r\n\r\nsmuggled"), Some(OK)],
            vec![Some(OK)],
        ])
        .await;
        let e = one(&pool, &authority, GET).await.unwrap_err();
        assert!(e.contains("ambiguous"), "{e}");
        let (_, body) = one(&pool, &authority, GET).await.unwrap();
        assert_eq!(
            body, b"ok",
            "the next caller gets its own response, never the smuggled one"
        );
        assert_eq!(seen.accepted(), 2);
    }

    #[tokio::test]
    async fn a_body_cut_short_is_an_error_for_the_client() {
        let pool = Arc::new(Http1Pool::default());
        let (authority, _) = scripted(vec![vec![
            Some(b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nshort"),
            Some(CLOSE),
        ]])
        .await;
        assert!(one(&pool, &authority, GET).await.is_err());
        assert_eq!(pool.idle_count(), 0);
        // Read to the close, a response without framing is whole.
        let (authority, _) =
            scripted(vec![vec![Some(b"HTTP/1.1 200 OK\r\n\r\nall of it"), Some(CLOSE)]]).await;
        assert_eq!(one(&pool, &authority, GET).await.unwrap().1, b"all of it");
        assert_eq!(pool.idle_count(), 0);
    }

    #[tokio::test]
    async fn request_bodies_go_with_their_length_or_chunked() {
        let pool = Arc::new(Http1Pool::default());
        let (authority, seen) = scripted(vec![vec![Some(OK), Some(OK), Some(OK)]]).await;
        one(
            &pool,
            &authority,
            "POST /a HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nhello",
        )
        .await
        .unwrap();
        one(
            &pool,
            &authority,
            "POST /b HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n",
        )
        .await
        .unwrap();
        one(
            &pool,
            &authority,
            "POST /c HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n",
        )
        .await
        .unwrap();
        assert_eq!(
            seen.request(0),
            "POST /a HTTP/1.1\r\nhost: t\r\ncontent-length: 5\r\n\r\nhello"
        );
        let chunked = seen.request(1);
        assert!(
            chunked.starts_with("POST /b HTTP/1.1\r\nhost: t\r\ntransfer-encoding: chunked\r\n\r\n"),
            "{chunked}"
        );
        let body: String = chunked
            .split("\r\n\r\n")
            .skip(1)
            .collect::<Vec<_>>()
            .join("\r\n\r\n");
        assert!(
            body.ends_with("0\r\n\r\n") && body.contains("abc") && body.contains("de"),
            "{body:?}"
        );
        assert_eq!(
            seen.request(2),
            "POST /c HTTP/1.1\r\nhost: t\r\ncontent-length: 0\r\n\r\n"
        );
        assert_eq!(seen.accepted(), 1);
    }

    #[tokio::test]
    async fn a_reused_connection_closed_unanswered_retries_only_bodiless_idempotent_requests() {
        // Each connection answers its first request, then closes on the second unanswered.
        let pool = Arc::new(Http1Pool::default());
        let (authority, seen) = scripted(vec![vec![Some(OK), None]]).await;
        one(&pool, &authority, GET).await.unwrap();
        let (_, body) = one(&pool, &authority, GET).await.unwrap();
        assert_eq!(body, b"ok", "the GET went again on a new connection");
        assert_eq!(seen.accepted(), 2);
        let e = one(
            &pool,
            &authority,
            "POST /x HTTP/1.1\r\nHost: t\r\nContent-Length: 1\r\n\r\nz",
        )
        .await
        .unwrap_err();
        assert!(e.contains("closed"), "{e}");
        assert_eq!(seen.accepted(), 2, "a POST is not sent twice");
    }

    #[tokio::test]
    async fn a_large_response_streams_through_a_small_read_buffer() {
        static BIG: std::sync::LazyLock<Vec<u8>> = std::sync::LazyLock::new(|| {
            let mut r = format!("HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n", 300_000).into_bytes();
            r.extend((0..300_000u32).map(|i| (i % 251) as u8));
            r
        });
        let pool = Arc::new(Http1Pool::default());
        let (authority, _) = scripted(vec![vec![Some(&BIG[..]), Some(OK)]]).await;
        let (_, body) = one(&pool, &authority, GET).await.unwrap();
        assert_eq!(body.len(), 300_000);
        assert!(body.iter().enumerate().all(|(i, &b)| b == (i % 251) as u8));
        assert_eq!(one(&pool, &authority, GET).await.unwrap().1, b"ok");
    }

    #[tokio::test]
    async fn a_request_body_the_client_cuts_short_never_reaches_the_upstream_as_whole() {
        // The client sends part of a chunked body, then closes its connection.
        let (mut client, mut rx) = client_connection(1).await;
        client
            .write_all(b"POST /x HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n")
            .await
            .unwrap();
        let req = rx.recv().await.unwrap();
        let (authority, seen) = scripted(vec![vec![Some(OK)]]).await;
        let pool = Arc::new(Http1Pool::default());
        let sent = pool.send(&authority, Duration::from_secs(2), req);
        let cut = async {
            tokio::time::sleep(Duration::from_millis(100)).await;
            drop(client);
        };
        let (res, ()) = tokio::join!(sent, cut);
        assert!(res.is_err(), "a request whose body failed gets no response");
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(
            seen.requests.lock().unwrap().is_empty(),
            "the upstream never read a whole request"
        );
        assert_eq!(pool.idle_count(), 0);
    }

    #[tokio::test]
    async fn a_request_body_cut_short_after_an_early_answer_is_not_ended_for_the_upstream() {
        // The upstream answers a head and part of a body as soon as it has the request head,
        // then records all it reads until tollgate closes the connection.
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let authority = Authority::try_from(listener.local_addr().unwrap().to_string()).unwrap();
        let (got_tx, got_rx) = tokio::sync::oneshot::channel::<Vec<u8>>();
        tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            let mut got = Vec::new();
            let mut chunk = [0u8; 4096];
            while !got.windows(4).any(|w| w == b"\r\n\r\n") {
                let n = s.read(&mut chunk).await.unwrap();
                got.extend_from_slice(&chunk[..n]);
            }
            s.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\npart")
                .await
                .unwrap();
            while let Ok(n) = s.read(&mut chunk).await {
                if n == 0 {
                    break;
                }
                got.extend_from_slice(&chunk[..n]);
            }
            let _ = got_tx.send(got);
        });
        // The client sends part of a chunked body, and later closes its connection.
        let raw = b"POST /x HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n".to_vec();
        let (mut client, mut rx) = client_connection(1).await;
        client.write_all(&raw).await.unwrap();
        let pool = Arc::new(Http1Pool::default());
        let res = pool
            .send(&authority, Duration::from_secs(2), rx.recv().await.unwrap())
            .await
            .expect("the early head");
        let mut body = res.into_body();
        let first = body.frame().await.unwrap().unwrap().into_data().unwrap();
        assert_eq!(first, "part");
        drop(client);
        // The body is read on (the upload fails meanwhile) until the upstream is given up.
        let _ = tokio::time::timeout(Duration::from_millis(300), body.frame()).await;
        drop(body);
        let got = tokio::time::timeout(Duration::from_secs(2), got_rx)
            .await
            .unwrap()
            .unwrap();
        let got = String::from_utf8_lossy(&got);
        assert!(got.contains("5\r\nhello\r\n"), "{got:?}");
        assert!(
            !got.contains("0\r\n\r\n"),
            "the upstream was told the body ended: {got:?}"
        );
        assert_eq!(pool.idle_count(), 0);
    }
}
