//! What a connection is doing, for its watchdog: when bytes last moved, whether a request
//! is in flight, and since when a request head has been arriving. The client's IO and the
//! connection's service are wrapped to keep it current; [`Activity::verdict`] says whether
//! the connection may stay open.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper::service::Service;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Instant;

use super::BoxError;
use crate::reply::{self, Reply};

/// No head is arriving.
const NONE: u64 = u64::MAX;
const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0";

/// Shared by a connection's IO, its service and its watchdog.
#[derive(Debug)]
pub struct Activity {
    start: Instant,
    /// Milliseconds since `start` when bytes last moved either way.
    last_io: AtomicU64,
    /// Milliseconds since `start` when the head now arriving began (`NONE`: none is).
    head_since: AtomicU64,
    in_flight: AtomicUsize,
    /// HTTP/2: idle streams are normal, so only the idle timeout applies.
    h2: AtomicBool,
    first_read: AtomicBool,
}

/// What the watchdog should do now.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Check again at this instant.
    Open(Instant),
    /// A request head took longer than the header read timeout.
    HeaderTimeout,
    /// Nothing in flight and nothing moving for the idle timeout.
    Idle,
}

// === impl Activity ===

impl Activity {
    /// A new connection: its first head is due within the header read timeout.
    pub fn new() -> Arc<Self> {
        Arc::new(Activity {
            start: Instant::now(),
            last_io: AtomicU64::new(0),
            head_since: AtomicU64::new(0),
            in_flight: AtomicUsize::new(0),
            h2: AtomicBool::new(false),
            first_read: AtomicBool::new(true),
        })
    }

    fn now_ms(&self) -> u64 {
        self.start.elapsed().as_millis() as u64
    }

    fn at(&self, ms: u64) -> Instant {
        self.start + Duration::from_millis(ms)
    }

    fn read(&self, bytes: &[u8]) {
        let now = self.now_ms();
        self.last_io.store(now, Ordering::Relaxed);
        if self.first_read.swap(false, Ordering::Relaxed) && bytes.starts_with(H2_PREFACE) {
            self.h2.store(true, Ordering::Relaxed);
            self.head_since.store(NONE, Ordering::Relaxed);
            return;
        }
        if !self.h2.load(Ordering::Relaxed) && self.in_flight.load(Ordering::Acquire) == 0 {
            let _ = self
                .head_since
                .compare_exchange(NONE, now, Ordering::Relaxed, Ordering::Relaxed);
        }
    }

    fn wrote(&self) {
        self.last_io.store(self.now_ms(), Ordering::Relaxed);
    }

    /// A request head is complete: it is in flight until its response body is dropped.
    fn request_started(self: &Arc<Self>) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        self.head_since.store(NONE, Ordering::Relaxed);
        InFlight(self.clone())
    }

    /// Whether the connection may stay open under these timeouts. An `Open` instant is
    /// never later than the earliest moment the verdict could change (a head can only
    /// start, and bytes only move, after now), so the watchdog sleeps until it.
    pub fn verdict(&self, header_read: Duration, idle: Duration) -> Verdict {
        let now = self.now_ms();
        let header_ms = header_read.as_millis() as u64;
        let idle_ms = idle.as_millis() as u64;
        let soonest_new_head = now + header_ms;
        if self.in_flight.load(Ordering::Acquire) > 0 {
            return Verdict::Open(self.at(soonest_new_head.min(now + idle_ms)));
        }
        let idle_at = self.last_io.load(Ordering::Relaxed) + idle_ms;
        let since = self.head_since.load(Ordering::Relaxed);
        if since != NONE {
            if now >= since + header_ms {
                return Verdict::HeaderTimeout;
            }
            // Idle needs the head to complete and its response to end first: not before
            // `now + idle`.
            return Verdict::Open(self.at((since + header_ms).min(now + idle_ms)));
        }
        if now >= idle_at {
            return Verdict::Idle;
        }
        Verdict::Open(self.at(idle_at.min(soonest_new_head)))
    }
}

/// A request in flight; dropped with its response body.
#[derive(Debug)]
pub struct InFlight(Arc<Activity>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.last_io.store(self.0.now_ms(), Ordering::Relaxed);
        self.0.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

/// The client's IO, reporting every byte that moves.
pub struct TrackedIo<I> {
    inner: I,
    activity: Arc<Activity>,
}

impl<I> TrackedIo<I> {
    pub fn new(inner: I, activity: Arc<Activity>) -> Self {
        TrackedIo { inner, activity }
    }
}

impl<I: AsyncRead + Unpin> AsyncRead for TrackedIo<I> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = polled
            && buf.filled().len() > before
        {
            self.activity.read(&buf.filled()[before..]);
        }
        polled
    }
}

impl<I: AsyncWrite + Unpin> AsyncWrite for TrackedIo<I> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = polled
            && n > 0
        {
            self.activity.wrote();
        }
        polled
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if let Poll::Ready(Ok(n)) = polled
            && n > 0
        {
            self.activity.wrote();
        }
        polled
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// The connection's service: marks requests in flight and refuses heads over the limit
/// with a JSON 431 (hyper cuts heads beyond twice the limit itself, with a bare 431).
#[derive(Clone)]
pub struct TrackedService<S> {
    inner: S,
    activity: Arc<Activity>,
    max_header_bytes: usize,
}

impl<S> TrackedService<S> {
    pub fn new(inner: S, activity: Arc<Activity>, max_header_bytes: usize) -> Self {
        TrackedService {
            inner,
            activity,
            max_header_bytes,
        }
    }
}

/// Request line and headers as sent (HTTP/1.1 framing; HPACK-decoded for HTTP/2).
fn head_bytes<B>(req: &Request<B>) -> usize {
    let uri = req.uri();
    let target = uri.path_and_query().map_or(1, |p| p.as_str().len())
        + uri.authority().map_or(0, |a| a.as_str().len())
        + uri.scheme_str().map_or(0, |s| s.len() + 3);
    let line = req.method().as_str().len() + target + 12;
    let headers: usize = req
        .headers()
        .iter()
        .map(|(n, v)| n.as_str().len() + v.len() + 4)
        .sum();
    line + headers
}

impl<S, B> Service<Request<Incoming>> for TrackedService<S>
where
    S: Service<Request<Incoming>, Response = Response<B>>,
    B: Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<BoxError>,
{
    type Response = Response<TrackedBody<B>>;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, BoxError>> + Send>>;

    fn call(&self, req: Request<Incoming>) -> Self::Future {
        let in_flight = self.activity.request_started();
        if head_bytes(&req) > self.max_header_bytes {
            let grpc = reply::is_grpc(req.headers());
            let refusal = Reply::new(
                StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
                "request_header_fields_too_large",
                format!("the request's headers exceed {} bytes", self.max_header_bytes),
            )
            .render(grpc);
            let (parts, body) = refusal.into_parts();
            let res = Response::from_parts(parts, TrackedBody::local(body, in_flight));
            return Box::pin(async move { Ok(res) });
        }
        let future = self.inner.call(req);
        Box::pin(async move {
            let res = future.await.map_err(Into::into)?;
            let (parts, body) = res.into_parts();
            Ok(Response::from_parts(parts, TrackedBody::service(body, in_flight)))
        })
    }
}

/// A response body that keeps its request in flight until it is dropped.
pub struct TrackedBody<B> {
    body: Either<B>,
    _in_flight: InFlight,
}

enum Either<B> {
    Service(B),
    Local(crate::proxy::Body),
}

impl<B> TrackedBody<B> {
    fn service(body: B, in_flight: InFlight) -> Self {
        TrackedBody {
            body: Either::Service(body),
            _in_flight: in_flight,
        }
    }

    fn local(body: crate::proxy::Body, in_flight: InFlight) -> Self {
        TrackedBody {
            body: Either::Local(body),
            _in_flight: in_flight,
        }
    }
}

impl<B> Body for TrackedBody<B>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        match &mut self.body {
            Either::Service(b) => Pin::new(b).poll_frame(cx).map_err(Into::into),
            Either::Local(b) => Pin::new(b).poll_frame(cx),
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.body {
            Either::Service(b) => b.is_end_stream(),
            Either::Local(b) => b.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.body {
            Either::Service(b) => b.size_hint(),
            Either::Local(b) => b.size_hint(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEAD: Duration = Duration::from_secs(30);
    const IDLE: Duration = Duration::from_secs(60);

    #[tokio::test(start_paused = true)]
    async fn a_connection_that_sends_nothing_meets_the_header_read_timeout() {
        let a = Activity::new();
        assert!(matches!(a.verdict(HEAD, IDLE), Verdict::Open(_)));
        tokio::time::advance(HEAD).await;
        assert_eq!(a.verdict(HEAD, IDLE), Verdict::HeaderTimeout);
    }

    #[tokio::test(start_paused = true)]
    async fn a_trickled_head_is_cut_and_an_idle_keep_alive_waits_for_the_idle_timeout() {
        let a = Activity::new();
        for _ in 0..14 {
            tokio::time::advance(Duration::from_secs(2)).await;
            a.read(b"X-A: 1\r\n");
        }
        tokio::time::advance(Duration::from_secs(2)).await;
        assert_eq!(
            a.verdict(HEAD, IDLE),
            Verdict::HeaderTimeout,
            "bytes moving do not help"
        );

        let a = Activity::new();
        a.read(b"GET / HTTP/1.1\r\n\r\n");
        let in_flight = a.request_started();
        tokio::time::advance(IDLE * 2).await;
        assert!(
            matches!(a.verdict(HEAD, IDLE), Verdict::Open(_)),
            "a slow upstream is not idle"
        );
        drop(in_flight);
        tokio::time::advance(HEAD + Duration::from_secs(1)).await;
        assert!(
            matches!(a.verdict(HEAD, IDLE), Verdict::Open(_)),
            "idle, not a slow head"
        );
        tokio::time::advance(IDLE).await;
        assert_eq!(a.verdict(HEAD, IDLE), Verdict::Idle);
    }

    #[tokio::test(start_paused = true)]
    async fn http2_connections_only_meet_the_idle_timeout() {
        let a = Activity::new();
        a.read(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");
        tokio::time::advance(HEAD * 2).await;
        a.read(b"ping");
        assert!(matches!(a.verdict(HEAD, IDLE), Verdict::Open(_)));
        tokio::time::advance(IDLE).await;
        assert_eq!(a.verdict(HEAD, IDLE), Verdict::Idle);
    }
}
