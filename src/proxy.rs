//! The forwarding core shared by inbound and outbound: a pooled upstream client (http, or
//! https through rustls with ALPN h2/http1.1; h2c with prior knowledge), hop-by-hop header
//! removal, `X-Forwarded-*`, streamed bodies, and 502/504 on upstream failure.

use std::error::Error as StdError;
use std::time::Duration;

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::uri::{Authority, PathAndQuery, Scheme, Uri};
use http::{Request, Response, StatusCode, Version};
use http_body_util::BodyExt;
use http_body_util::combinators::UnsyncBoxBody;
use hyper::body::Incoming;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use url::Url;

use crate::config::UpstreamProtocol;
use crate::reply::Reply;
use crate::server::ClientConn;

use self::pool::Http1Pool;

pub mod http1;
mod pool;

pub type BoxError = Box<dyn StdError + Send + Sync>;
/// The response body type of every tollgate listener.
pub type Body = UnsyncBoxBody<Bytes, BoxError>;

type HttpsClient = Client<HttpsConnector<HttpConnector>, Incoming>;

/// Pooled clients to upstreams: one negotiating (HTTP/1.1, or h2 by ALPN), one HTTP/2-only
/// (h2c prior knowledge on http, h2 by ALPN on https).
#[derive(Clone)]
pub struct Proxy {
    auto: HttpsClient,
    http2: HttpsClient,
    /// HTTP/1.1 only, for protocol upgrades (WebSocket), which HTTP/2 cannot carry here.
    http1: HttpsClient,
    /// For plain-`http` upstreams over HTTP/1.1, whose connections each [`Upstream`] keeps.
    connect_timeout: Duration,
}

/// Where one request goes and how.
pub struct Target<'a> {
    pub upstream: &'a Upstream,
    /// Path and query to request on the upstream (already rewritten by the caller).
    pub path_and_query: PathAndQuery,
    pub protocol: Option<UpstreamProtocol>,
    pub timeout: Duration,
    /// The `Upgrade` the client asked for (see [`upgrade_requested`]); the caller took it
    /// before dropping hop-by-hop headers.
    pub upgrade: Option<HeaderValue>,
}

/// An upstream base URL, split once at load time. A plain-`http` upstream holds the idle
/// HTTP/1.1 connections to its host and port (shared with every live snapshot's
/// upstream of the same host and port, so reloads keep them).
#[derive(Clone)]
pub struct Upstream {
    scheme: Scheme,
    authority: Authority,
    /// `authority` as a `Host` value, made once.
    host: HeaderValue,
    /// Base path without a trailing slash ("" for none).
    base_path: String,
    http1_pool: Option<std::sync::Arc<Http1Pool>>,
}

/// Why a request could not be forwarded.
#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    #[error("upstream unreachable: {0}")]
    Unreachable(String),
    #[error("upstream did not answer within {0:?}")]
    Timeout(Duration),
    #[error("cannot build the upstream request: {0}")]
    BadRequest(String),
}

/// TLS settings for upstream connections could not be built.
#[derive(Debug, thiserror::Error)]
pub enum TlsSetupError {
    #[error("cannot read CA file {path}: {reason}")]
    CaFile { path: String, reason: String },
    #[error("TLS setup: {0}")]
    Rustls(#[from] rustls::Error),
}

// === impl Proxy ===

impl Proxy {
    /// Clients whose TLS trusts the system roots plus the certificates in `ca_file`, giving
    /// up on a TCP connect after `connect_timeout` (502).
    pub fn new(ca_file: Option<&std::path::Path>, connect_timeout: Duration) -> Result<Self, TlsSetupError> {
        let tls = client_tls(ca_file)?;
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_nodelay(true);
        http.set_connect_timeout(Some(connect_timeout));
        let auto_conn = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls.clone())
            .https_or_http()
            .enable_http1()
            .enable_http2()
            .wrap_connector(http.clone());
        let h2_conn = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls.clone())
            .https_or_http()
            .enable_http2()
            .wrap_connector(http.clone());
        let h1_conn = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .wrap_connector(http);
        let auto = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(60))
            .build(auto_conn);
        let http2 = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(60))
            .http2_only(true)
            .build(h2_conn);
        let http1 = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(60))
            .build(h1_conn);
        Ok(Proxy {
            auto,
            http2,
            http1,
            connect_timeout,
        })
    }

    /// Forward `req` (headers already prepared by [`prepare`]) and return the upstream's
    /// response with hop-by-hop headers removed. Bodies stream in both directions.
    pub async fn forward(
        &self,
        mut req: Request<Incoming>,
        target: Target<'_>,
    ) -> Result<Response<Body>, ProxyError> {
        if let Some(protocol) = target.upgrade.clone() {
            return self.forward_upgrade(req, target, protocol).await;
        }
        let http2 = match target.protocol {
            Some(UpstreamProtocol::Http2) => true,
            Some(UpstreamProtocol::Http1) => false,
            None => req.version() == Version::HTTP_2,
        };
        if http2 {
            // :authority comes from the URI; a Host header would contradict it.
            req.headers_mut().remove(header::HOST);
            *req.version_mut() = Version::HTTP_2;
        } else {
            if !req.headers().contains_key(header::HOST) {
                // HTTP/2's `:authority` (or an absolute-form target), else the upstream's.
                let host = match req.uri().authority() {
                    Some(authority) => HeaderValue::from_str(authority.as_str()).ok(),
                    None => Some(target.upstream.host.clone()),
                };
                if let Some(host) = host {
                    req.headers_mut().insert(header::HOST, host);
                }
            }
            *req.version_mut() = Version::HTTP_11;
            if let Some(pool) = &target.upstream.http1_pool {
                // hyper writes the URI as it is: origin-form, under the upstream's base path.
                let upstream = target.upstream;
                *req.uri_mut() = Uri::from(upstream.path_and_query(target.path_and_query)?);
                let sent = pool.send(&upstream.authority, self.connect_timeout, req);
                return within(target.timeout, sent).await.map(relay);
            }
        }
        *req.uri_mut() = target.upstream.uri(&target.path_and_query)?;
        let client = if http2 { &self.http2 } else { &self.auto };
        send(client, req, target.timeout).await.map(relay)
    }

    /// An HTTP/1.1 upgrade (WebSocket and the like): ask the upstream for the same
    /// protocol; on `101`, join the client's and the upstream's connections byte for byte.
    async fn forward_upgrade(
        &self,
        mut req: Request<Incoming>,
        target: Target<'_>,
        protocol: HeaderValue,
    ) -> Result<Response<Body>, ProxyError> {
        let uri = target.upstream.uri(&target.path_and_query)?;
        let client_side = hyper::upgrade::on(&mut req);
        let headers = req.headers_mut();
        headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
        headers.insert(header::UPGRADE, protocol);
        *req.version_mut() = Version::HTTP_11;
        *req.uri_mut() = uri;
        let mut res = send(&self.http1, req, target.timeout).await?;
        if res.status() != StatusCode::SWITCHING_PROTOCOLS {
            return Ok(relay(res));
        }
        let upstream_side = hyper::upgrade::on(&mut res);
        tokio::spawn(async move {
            let (client, upstream) = match tokio::try_join!(client_side, upstream_side) {
                Ok(pair) => pair,
                Err(e) => {
                    tracing::debug!(error = %e, "protocol upgrade not completed");
                    return;
                }
            };
            let mut client = hyper_util::rt::TokioIo::new(client);
            let mut upstream = hyper_util::rt::TokioIo::new(upstream);
            let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
        });
        // The 101 keeps its Connection/Upgrade headers: they are the point of it.
        let (parts, _) = res.into_parts();
        Ok(Response::from_parts(parts, crate::reply::full(Bytes::new())))
    }
}

/// One upstream request through hyper-util's client, bounded by `timeout`.
async fn send(
    client: &HttpsClient,
    req: Request<Incoming>,
    timeout: Duration,
) -> Result<Response<Incoming>, ProxyError> {
    within(timeout, async {
        client.request(req).await.map_err(|e| error_chain(&e))
    })
    .await
}

/// An upstream's response head within `timeout` (504), or why it could not be had (502).
async fn within<B>(
    timeout: Duration,
    sent: impl Future<Output = Result<Response<B>, String>>,
) -> Result<Response<B>, ProxyError> {
    match tokio::time::timeout(timeout, sent).await {
        Err(_) => Err(ProxyError::Timeout(timeout)),
        Ok(Err(e)) => Err(ProxyError::Unreachable(e)),
        Ok(Ok(res)) => Ok(res),
    }
}

/// The upstream's response as tollgate answers it: hop-by-hop headers dropped, the body
/// streamed as it comes.
fn relay<B>(res: Response<B>) -> Response<Body>
where
    B: hyper::body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    let (mut parts, body) = res.into_parts();
    strip_hop_by_hop(&mut parts.headers);
    Response::from_parts(parts, body.map_err(Into::into).boxed_unsync())
}

/// The `Upgrade` an HTTP/1.1 request asks for (`Connection: upgrade` plus `Upgrade`), to
/// be passed on in [`Target::upgrade`] once hop-by-hop headers are gone.
pub fn upgrade_requested<B>(req: &Request<B>) -> Option<HeaderValue> {
    if req.version() != Version::HTTP_11 {
        return None;
    }
    let asks = req.headers().get_all(header::CONNECTION).iter().any(|v| {
        v.to_str()
            .is_ok_and(|s| s.split(',').any(|t| t.trim().eq_ignore_ascii_case("upgrade")))
    });
    if !asks {
        return None;
    }
    req.headers().get(header::UPGRADE).cloned()
}

/// Prepare a request's headers for forwarding: drop hop-by-hop headers and append
/// `X-Forwarded-For`, `-Proto`, `-Host`.
pub fn prepare(headers: &mut HeaderMap, uri: &Uri, client: ClientConn) {
    let host = headers.get(header::HOST).cloned().or_else(|| {
        uri.authority()
            .and_then(|a| HeaderValue::from_str(a.as_str()).ok())
    });
    strip_hop_by_hop(headers);
    let peer = ip_text(client.peer.ip());
    if let Ok(peer) = HeaderValue::from_maybe_shared(Bytes::from(peer)) {
        append(headers, X_FORWARDED_FOR, peer);
    }
    let proto = if client.tls { "https" } else { "http" };
    append(headers, X_FORWARDED_PROTO, HeaderValue::from_static(proto));
    if let Some(host) = host.filter(|h| h.to_str().is_ok()) {
        append(headers, X_FORWARDED_HOST, host);
    }
}

/// An address as `Display` writes it; IPv4 (the usual case) without the formatter.
fn ip_text(ip: std::net::IpAddr) -> String {
    let std::net::IpAddr::V4(v4) = ip else {
        return ip.to_string();
    };
    let mut text = String::with_capacity(15);
    for (i, octet) in v4.octets().into_iter().enumerate() {
        if i > 0 {
            text.push('.');
        }
        text.push_str(itoa::Buffer::new().format(octet));
    }
    text
}

const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
const X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");

/// Append to a comma-separated list header, merging any repeated fields into one.
fn append(headers: &mut HeaderMap, name: HeaderName, value: HeaderValue) {
    match headers.entry(name) {
        header::Entry::Vacant(slot) => {
            slot.insert(value);
        }
        header::Entry::Occupied(mut slot) => {
            let Ok(value) = value.to_str() else { return };
            let mut joined = String::new();
            for existing in slot.iter().filter_map(|v| v.to_str().ok()) {
                joined.push_str(existing);
                joined.push_str(", ");
            }
            joined.push_str(value);
            if let Ok(v) = HeaderValue::from_str(&joined) {
                slot.insert(v);
            }
        }
    }
}

/// RFC 9110 §7.6.1: connection-specific fields, and those named in `Connection`, are not
/// forwarded. `TE: trailers` survives: gRPC needs it to reach the server.
pub fn strip_hop_by_hop(headers: &mut HeaderMap) {
    // One pass over the names, remembering which of the fixed hop-by-hop fields are
    // present as bits: most messages carry none or one (a response's
    // `Connection: keep-alive`), and then nothing is allocated.
    let mut present = 0u16;
    for name in headers.keys() {
        if let Some(i) = HOP_BY_HOP.iter().position(|h| h == name) {
            present |= 1 << i;
        }
    }
    if present == 0 {
        return;
    }
    // Fields `Connection` names beyond the fixed ones (`Connection: keep-alive, X-Hop`),
    // kept only when the message carries them.
    let mut named: Vec<HeaderName> = Vec::new();
    if present & CONNECTION_BIT != 0 {
        let tokens = headers
            .get_all(header::CONNECTION)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(str::trim);
        for token in tokens {
            if HOP_BY_HOP.iter().any(|h| h.as_str().eq_ignore_ascii_case(token)) {
                continue;
            }
            if let Ok(name) = HeaderName::from_bytes(token.as_bytes())
                && headers.contains_key(&name)
            {
                named.push(name);
            }
        }
    }
    let te_trailers = present & TE_BIT != 0
        && headers.get_all(header::TE).iter().any(|v| {
            v.to_str()
                .is_ok_and(|s| s.split(',').any(|t| t.trim().eq_ignore_ascii_case("trailers")))
        });
    for name in named {
        headers.remove(name);
    }
    for (i, name) in HOP_BY_HOP.iter().enumerate() {
        if present & (1 << i) != 0 {
            headers.remove(name);
        }
    }
    if te_trailers {
        headers.insert(header::TE, HeaderValue::from_static("trailers"));
    }
}

/// The fields that are always connection-specific (RFC 9110 §7.6.1, and the obsolete
/// `Keep-Alive` and `Proxy-Connection`).
const HOP_BY_HOP: [HeaderName; 9] = [
    header::CONNECTION,
    header::PROXY_AUTHENTICATE,
    header::PROXY_AUTHORIZATION,
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
    HeaderName::from_static("keep-alive"),
    HeaderName::from_static("proxy-connection"),
];
const CONNECTION_BIT: u16 = 1 << 0;
const TE_BIT: u16 = 1 << 3;

/// The reply for a forwarding failure: 502 unreachable, 504 timeout.
pub fn failure_reply(error: &ProxyError) -> Reply {
    match error {
        ProxyError::Timeout(_) => Reply::new(
            StatusCode::GATEWAY_TIMEOUT,
            "upstream_timeout",
            "the upstream did not answer in time",
        ),
        ProxyError::Unreachable(_) => Reply::new(
            StatusCode::BAD_GATEWAY,
            "upstream_unavailable",
            "the upstream cannot be reached",
        ),
        ProxyError::BadRequest(_) => Reply::new(
            StatusCode::BAD_GATEWAY,
            "upstream_unavailable",
            "the request cannot be forwarded",
        ),
    }
}

fn error_chain(e: &(dyn StdError + 'static)) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

// === impl Upstream ===

/// The same URL; the idle connections are not part of it.
impl PartialEq for Upstream {
    fn eq(&self, other: &Self) -> bool {
        self.scheme == other.scheme && self.authority == other.authority && self.base_path == other.base_path
    }
}

impl Eq for Upstream {}

impl std::fmt::Debug for Upstream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Upstream")
            .field("scheme", &self.scheme)
            .field("authority", &self.authority)
            .field("base_path", &self.base_path)
            .finish_non_exhaustive()
    }
}

impl Upstream {
    /// From a validated http(s) URL.
    pub fn from_url(url: &Url) -> Option<Self> {
        let scheme = Scheme::try_from(url.scheme()).ok()?;
        let host = url.host_str()?;
        let authority = match url.port() {
            Some(port) => format!("{host}:{port}"),
            None => host.to_string(),
        };
        // Url keeps IPv6 hosts in brackets already.
        let authority = Authority::try_from(authority).ok()?;
        let base_path = url.path().trim_end_matches('/').to_string();
        let http1_pool = (scheme == Scheme::HTTP).then(|| Http1Pool::shared(&authority));
        let host = HeaderValue::from_str(authority.as_str()).ok()?;
        Some(Upstream {
            scheme,
            authority,
            host,
            base_path,
            http1_pool,
        })
    }

    pub fn authority(&self) -> &Authority {
        &self.authority
    }

    /// The authority as a `Host` header value.
    pub fn host(&self) -> HeaderValue {
        self.host.clone()
    }

    /// `path_and_query` under the upstream's base path.
    fn path_and_query(&self, path_and_query: PathAndQuery) -> Result<PathAndQuery, ProxyError> {
        if self.base_path.is_empty() {
            return Ok(path_and_query);
        }
        PathAndQuery::try_from(format!("{}{}", self.base_path, path_and_query.as_str()))
            .map_err(|e| ProxyError::BadRequest(e.to_string()))
    }

    fn uri(&self, path_and_query: &PathAndQuery) -> Result<Uri, ProxyError> {
        let pq = self.path_and_query(path_and_query.clone())?;
        Uri::builder()
            .scheme(self.scheme.clone())
            .authority(self.authority.clone())
            .path_and_query(pq)
            .build()
            .map_err(|e| ProxyError::BadRequest(e.to_string()))
    }
}

/// rustls client settings: system roots (read when first needed) plus `ca_file`, aws-lc-rs,
/// ALPN set by the connector.
fn client_tls(ca_file: Option<&std::path::Path>) -> Result<rustls::ClientConfig, TlsSetupError> {
    use rustls_pki_types::CertificateDer;
    use rustls_pki_types::pem::PemObject;
    let mut extra = Vec::new();
    if let Some(path) = ca_file {
        let err = |reason: String| TlsSetupError::CaFile {
            path: path.display().to_string(),
            reason,
        };
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
            .map_err(|e| err(e.to_string()))?
            .collect::<Result<_, _>>()
            .map_err(|e| err(e.to_string()))?;
        if certs.is_empty() {
            return Err(err("no PEM certificates in it".into()));
        }
        // Refuse a certificate webpki cannot use as a root now, not at the first handshake.
        let mut check = rustls::RootCertStore::empty();
        for cert in &certs {
            check.add(cert.clone()).map_err(|e| err(e.to_string()))?;
        }
        extra = certs;
    }
    Ok(crate::trust::client_config(extra)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hop_by_hop_headers_and_those_named_in_connection_are_dropped() {
        let mut h = HeaderMap::new();
        h.insert(
            header::CONNECTION,
            HeaderValue::from_static("keep-alive, X-Secret-Hop"),
        );
        h.insert("x-secret-hop", HeaderValue::from_static("1"));
        h.insert("keep-alive", HeaderValue::from_static("timeout=5"));
        h.insert(header::UPGRADE, HeaderValue::from_static("h2c"));
        h.insert(header::TE, HeaderValue::from_static("trailers"));
        h.insert("x-kept", HeaderValue::from_static("1"));
        strip_hop_by_hop(&mut h);
        assert!(h.get("x-secret-hop").is_none() && h.get("keep-alive").is_none());
        assert!(h.get(header::CONNECTION).is_none() && h.get(header::UPGRADE).is_none());
        assert_eq!(h[header::TE], "trailers");
        assert_eq!(h["x-kept"], "1");
    }

    #[test]
    fn hop_by_hop_removal_covers_every_fixed_field_and_any_case() {
        let mut h = HeaderMap::new();
        for name in HOP_BY_HOP.iter() {
            h.append(name, HeaderValue::from_static("x"));
        }
        h.append(
            header::CONNECTION,
            HeaderValue::from_static("close,  X-One ,x-two, Upgrade"),
        );
        h.insert("x-one", HeaderValue::from_static("1"));
        h.insert("x-two", HeaderValue::from_static("2"));
        h.insert("x-three", HeaderValue::from_static("3"));
        strip_hop_by_hop(&mut h);
        let left: Vec<&str> = h.keys().map(|n| n.as_str()).collect();
        assert_eq!(left, ["x-three"]);

        // Nothing hop-by-hop: untouched, including a field named like a connection option.
        let mut h = HeaderMap::new();
        h.insert("close", HeaderValue::from_static("1"));
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
        let before = h.clone();
        strip_hop_by_hop(&mut h);
        assert_eq!(h, before);

        // `TE` other than trailers goes; `TE: trailers` stays alone.
        let mut h = HeaderMap::new();
        h.append(header::TE, HeaderValue::from_static("gzip"));
        strip_hop_by_hop(&mut h);
        assert!(h.get(header::TE).is_none());
        let mut h = HeaderMap::new();
        h.append(header::TE, HeaderValue::from_static("gzip, Trailers"));
        strip_hop_by_hop(&mut h);
        assert_eq!(h[header::TE], "trailers");
    }

    #[test]
    fn x_forwarded_headers_are_appended() {
        let mut h = HeaderMap::new();
        h.insert(header::HOST, HeaderValue::from_static("orders.local"));
        h.insert("x-forwarded-for", HeaderValue::from_static("10.0.0.1"));
        let client = ClientConn {
            peer: "127.0.0.9:5555".parse().unwrap(),
            tls: false,
        };
        prepare(&mut h, &Uri::from_static("/x"), client);
        assert_eq!(h["x-forwarded-for"], "10.0.0.1, 127.0.0.9");
        assert_eq!(h["x-forwarded-proto"], "http");
        assert_eq!(h["x-forwarded-host"], "orders.local");
        assert_eq!(h[header::HOST], "orders.local");

        // Repeated fields are merged into one list; a fresh header is set as is.
        let mut h = HeaderMap::new();
        h.append("x-forwarded-for", HeaderValue::from_static("10.0.0.1"));
        h.append("x-forwarded-for", HeaderValue::from_static("10.0.0.2"));
        let client = ClientConn {
            peer: "[::1]:5555".parse().unwrap(),
            tls: true,
        };
        prepare(&mut h, &Uri::from_static("https://api.example/x"), client);
        let xff: Vec<_> = h.get_all("x-forwarded-for").iter().collect();
        assert_eq!(xff, ["10.0.0.1, 10.0.0.2, ::1"]);
        assert_eq!(h["x-forwarded-proto"], "https");
        assert_eq!(h["x-forwarded-host"], "api.example");
    }

    #[test]
    fn ip_text_is_what_display_writes() {
        for ip in [
            "0.0.0.0",
            "127.0.0.1",
            "10.20.30.40",
            "255.255.255.255",
            "192.168.1.100",
            "::1",
            "fe80::1:2",
            "::ffff:10.0.0.1",
        ] {
            let ip: std::net::IpAddr = ip.parse().unwrap();
            assert_eq!(ip_text(ip), ip.to_string());
        }
        for n in (0..=u32::MAX).step_by(9_973_211) {
            let ip = std::net::IpAddr::V4(n.into());
            assert_eq!(ip_text(ip), ip.to_string());
        }
    }

    #[test]
    fn upstream_uri_joins_base_path_and_request_path() {
        let up = Upstream::from_url(&Url::parse("https://api.example.com:8443/v1/").unwrap()).unwrap();
        let uri = up.uri(&PathAndQuery::from_static("/orders?x=1")).unwrap();
        assert_eq!(uri.to_string(), "https://api.example.com:8443/v1/orders?x=1");
    }
}
