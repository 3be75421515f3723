//! Forwarding: path tricks refused before policy, spoofed identity headers replaced,
//! hop-by-hop headers dropped, X-Forwarded-* appended, bodies streamed, 502/504, h2c.

use super::{World, parts};
use crate::support::tollgate::raw_request;
use crate::support::upstream::seen;

#[tokio::test]
async fn path_tricks_are_400_before_any_policy() {
    let w = World::new().await;
    for path in [
        "/healthz/../orders",
        "/healthz/%2e%2e/orders",
        "/healthz/%2E%2E/orders",
        "/healthz/.%2e/orders",
        "/healthz/./x",
        "/healthz%2forders",
        "/healthz%5corders",
        "/healthz\\..\\orders",
        "/healthz%00",
        "//healthz",
    ] {
        let request = format!("GET {path} HTTP/1.1\r\nHost: legacy\r\nConnection: close\r\n\r\n");
        let (status, body) = raw_request(w.tollgate.inbound, &request).await;
        assert_eq!(status, 400, "{path}: {body}");
        assert!(body.contains("invalid_request"), "{path}: {body}");
    }
    assert_eq!(w.upstream.requests(), 0, "no path trick reaches the upstream");
}

#[tokio::test]
async fn spoofed_identity_headers_are_replaced_and_removed_on_anonymous_routes() {
    let w = World::new().await;
    let token = w.token("real-client", "1", &["Orders.Read"]);
    let res = w
        .http
        .get(w.tollgate.url("/orders"))
        .bearer_auth(&token)
        .header("X-Client-Id", "admin-app")
        .header("x-client-roles", "Orders.Write")
        .send()
        .await
        .unwrap();
    let echo: serde_json::Value = res.json().await.unwrap();
    assert_eq!(seen(&echo, "x-client-id"), ["real-client"]);
    assert_eq!(seen(&echo, "x-client-roles"), ["Orders.Read"]);
    let res = w
        .http
        .get(w.tollgate.url("/healthz"))
        .header("X-CLIENT-ID", "admin-app")
        .send()
        .await
        .unwrap();
    let echo: serde_json::Value = res.json().await.unwrap();
    assert!(seen(&echo, "x-client-id").is_empty(), "{echo}");
}

#[tokio::test]
async fn a_claim_with_control_characters_is_refused_not_forwarded() {
    let w = World::new().await;
    let mut c = w.claims();
    c["azp"] = serde_json::json!("evil\r\nX-Admin: true");
    let t = w.issuer.signing_key().sign(&c);
    let (status, _, _) = parts(w.get("/orders", Some(&t)).await).await;
    assert_eq!(status, 401);
    assert_eq!(w.upstream.requests(), 0);
}

#[tokio::test]
async fn strip_authorization_keeps_the_token_from_the_upstream() {
    let w = World::with("  strip_authorization: true").await;
    let token = w.token("reader-app", "1", &["Orders.Read"]);
    let echo: serde_json::Value = w.get("/orders", Some(&token)).await.json().await.unwrap();
    assert!(seen(&echo, "authorization").is_empty());
    assert_eq!(seen(&echo, "x-client-id"), ["reader-app"]);
}

#[tokio::test]
async fn hop_by_hop_dropped_forwarded_headers_appended_host_kept() {
    let w = World::new().await;
    let request = "GET /healthz HTTP/1.1\r\nHost: legacy.internal\r\nConnection: close, X-Hop\r\nX-Hop: secret\r\nKeep-Alive: timeout=5\r\nX-Forwarded-For: 203.0.113.7\r\nX-End: kept\r\n\r\n";
    let (status, body) = raw_request(w.tollgate.inbound, request).await;
    assert_eq!(status, 200, "{body}");
    let echo: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert!(
        seen(&echo, "x-hop").is_empty() && seen(&echo, "keep-alive").is_empty(),
        "{echo}"
    );
    assert_eq!(seen(&echo, "x-end"), ["kept"]);
    assert_eq!(seen(&echo, "host"), ["legacy.internal"]);
    assert_eq!(seen(&echo, "x-forwarded-for"), ["203.0.113.7, 127.0.0.1"]);
    assert_eq!(seen(&echo, "x-forwarded-proto"), ["http"]);
    assert_eq!(seen(&echo, "x-forwarded-host"), ["legacy.internal"]);
    // the upstream's own hop-by-hop response header does not reach the client
    assert!(!body.is_empty());
    let res = w.get("/healthz", None).await;
    assert!(res.headers().get("x-upstream-hop").is_none());
}

/// `Connection` may name any field, and those go as hop-by-hop; naming tollgate's own
/// identity or forwarding headers removes only what the client sent, never what tollgate
/// sets after.
#[tokio::test]
async fn connection_cannot_remove_the_identity_or_forwarding_headers_tollgate_sets() {
    let w = World::new().await;
    let token = w.token("real-client", "1", &["Orders.Read"]);
    let request = format!(
        "GET /orders HTTP/1.1\r\nHost: legacy.internal\r\nAuthorization: Bearer {token}\r\nConnection: close, X-CLIENT-ID , x-forwarded-for,X-Forwarded-Proto\r\nX-Client-Id: admin-app\r\nX-Forwarded-For: 203.0.113.7\r\n\r\n"
    );
    let (status, body) = raw_request(w.tollgate.inbound, &request).await;
    assert_eq!(status, 200, "{body}");
    let echo: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(seen(&echo, "x-client-id"), ["real-client"], "{echo}");
    assert_eq!(seen(&echo, "x-forwarded-for"), ["127.0.0.1"], "{echo}");
    assert_eq!(seen(&echo, "x-forwarded-proto"), ["http"], "{echo}");
    assert!(seen(&echo, "connection").is_empty(), "{echo}");
}

#[tokio::test]
async fn request_bodies_stream_through() {
    let w = World::new().await;
    let token = w.token(super::CERT_CLIENT, "2", &["Orders.Write"]);
    let body = vec![b'x'; 3 * 1024 * 1024];
    let res = w
        .http
        .put(w.tollgate.url("/orders/7"))
        .bearer_auth(&token)
        .body(body)
        .send()
        .await
        .unwrap();
    let echo: serde_json::Value = res.json().await.unwrap();
    assert_eq!(echo["body_len"], 3 * 1024 * 1024);
    assert_eq!(echo["method"], "PUT");
}

#[tokio::test]
async fn upstream_down_is_502_and_too_slow_is_504() {
    let w = World::new().await;
    let token = w.issuer.token(w.claims());
    let (status, body, _) = parts(w.get("/slow", Some(&token)).await).await;
    assert_eq!(status, 504, "{body}");
    assert_eq!(body["error"], "upstream_timeout");

    let dead = crate::support::free_port();
    let issuer = tollgate::devissuer::DevIssuer::start("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let yaml =
        super::config(&issuer, &w.upstream, "").replace(&w.upstream.addr.to_string(), &dead.to_string());
    let t = crate::support::tollgate::Tollgate::start(&yaml).await;
    let res = w.http.get(t.url("/healthz")).send().await.unwrap();
    let (status, body, _) = parts(res).await;
    assert_eq!(status, 502, "{body}");
    assert_eq!(body["error"], "upstream_unavailable");
}

#[tokio::test]
async fn http2_clients_reach_the_upstream_over_h2c() {
    let w = World::new().await;
    let h2 = reqwest::Client::builder()
        .http2_prior_knowledge()
        .build()
        .unwrap();
    let token = w.token("reader-app", "1", &["Orders.Read"]);
    let res = h2
        .get(w.tollgate.url("/orders"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.version(), reqwest::Version::HTTP_2);
    let echo: serde_json::Value = res.json().await.unwrap();
    assert_eq!(echo["version"], "HTTP/2.0");
    assert_eq!(seen(&echo, "x-client-id"), ["reader-app"]);
    let res = h2
        .get(w.tollgate.url("/orders"))
        .header("content-type", "application/grpc")
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers()["grpc-status"], "16");
}

/// WebSocket-style upgrades pass through once the request is authorized, and not before.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn protocol_upgrades_pass_only_when_authorized() {
    use crate::support::upgrade::{EchoUpgrade, upgrade_and_echo};
    let echo = EchoUpgrade::start().await;
    let issuer = tollgate::devissuer::DevIssuer::start("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let upstream = crate::support::upstream::Upstream::start().await;
    let yaml = super::config(&issuer, &upstream, "").replace(
        &format!("upstream: http://{}", upstream.addr),
        &format!("upstream: http://{}", echo.addr),
    );
    let t = crate::support::tollgate::Tollgate::start(&yaml).await;
    let token = issuer.token(super::World::claims_for(&issuer));
    let auth = format!("Authorization: Bearer {token}\r\n");
    let (head, echoed) = upgrade_and_echo(t.inbound, "orders.local", &auth, "ping over the tunnel").await;
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    assert!(head.to_ascii_lowercase().contains("upgrade: echo"), "{head}");
    assert_eq!(echoed, "ping over the tunnel");

    let (head, echoed) = upgrade_and_echo(t.inbound, "orders.local", "", "nope").await;
    assert!(head.starts_with("HTTP/1.1 401"), "{head}");
    assert_eq!(echoed, "");
}

/// A body of one data frame followed by trailers, as a gRPC server sends.
struct GrpcReply {
    frames: std::collections::VecDeque<hyper::body::Frame<bytes::Bytes>>,
}

impl hyper::body::Body for GrpcReply {
    type Data = bytes::Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<Self::Data>, Self::Error>>> {
        std::task::Poll::Ready(self.frames.pop_front().map(Ok))
    }
}

/// gRPC over h2c end to end: the client's HTTP/2 reaches the upstream as HTTP/2, and the
/// response trailers (`grpc-status`) come back through tollgate.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_over_h2c_keeps_response_trailers() {
    use http_body_util::BodyExt;
    use tollgate::server;
    let listener = server::bind("grpc", "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let grpc_addr = listener.local_addr().unwrap();
    let (_stop, shutdown) = server::shutdown_channel();
    let make = |_conn| {
        hyper::service::service_fn(|req: hyper::Request<hyper::body::Incoming>| async move {
            let mut trailers = http::HeaderMap::new();
            trailers.insert("grpc-status", "0".parse().unwrap());
            trailers.insert("grpc-message", "ok".parse().unwrap());
            let version = format!("{:?}", req.version());
            let frames = std::collections::VecDeque::from([
                hyper::body::Frame::data(bytes::Bytes::from(version)),
                hyper::body::Frame::trailers(trailers),
            ]);
            let mut res = hyper::Response::new(GrpcReply { frames });
            res.headers_mut()
                .insert("content-type", "application/grpc".parse().unwrap());
            Ok::<_, std::convert::Infallible>(res)
        })
    };
    tokio::spawn(server::serve(
        "grpc",
        listener,
        None,
        make,
        shutdown,
        std::time::Duration::from_millis(100),
    ));

    let issuer = tollgate::devissuer::DevIssuer::start("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let upstream = crate::support::upstream::Upstream::start().await;
    let yaml = super::config(&issuer, &upstream, "").replace(
        &format!("upstream: http://{}", upstream.addr),
        &format!("upstream: http://{grpc_addr}"),
    );
    let t = crate::support::tollgate::Tollgate::start(&yaml).await;

    let tcp = tokio::net::TcpStream::connect(t.inbound).await.unwrap();
    let (mut sender, conn) = hyper::client::conn::http2::handshake(
        hyper_util::rt::TokioExecutor::new(),
        hyper_util::rt::TokioIo::new(tcp),
    )
    .await
    .unwrap();
    tokio::spawn(conn);
    let req = hyper::Request::post(format!(
        "http://{}/healthz/grpc.health.v1.Health/Check",
        t.inbound
    ))
    .header("content-type", "application/grpc")
    .header("te", "trailers")
    .body(http_body_util::Full::new(bytes::Bytes::from_static(
        b"\0\0\0\0\0",
    )))
    .unwrap();
    let res = sender.send_request(req).await.unwrap();
    assert_eq!(res.status(), 200);
    let collected = res.into_body().collect().await.unwrap();
    let trailers = collected.trailers().cloned().expect("trailers came through");
    assert_eq!(trailers["grpc-status"], "0");
    assert_eq!(trailers["grpc-message"], "ok");
    assert_eq!(
        &collected.to_bytes()[..],
        b"HTTP/2.0",
        "the upstream was spoken to over HTTP/2"
    );
}

/// An upstream whose response to `/orders/smuggle` frames itself two ways
/// (`Content-Length` and chunked) with a second response hidden behind the first reading;
/// every other request gets `mine`. Each connection answers requests in turn.
async fn ambiguous_upstream() -> std::net::SocketAddr {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                loop {
                    while let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        let head: Vec<u8> = buf.drain(..end + 4).collect();
                        let reply: &[u8] = if head.windows(7).any(|w| w == b"smuggle") {
                            b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\ntransfer-encoding: chunked\r\n\r\n0\r\n\r\nHTTP/1.1 200 OK\r\ncontent-length: 8\r\n\r\nsmuggled"
                        } else {
                            b"HTTP/1.1 200 OK\r\ncontent-length: 4\r\n\r\nmine"
                        };
                        if s.write_all(reply).await.is_err() {
                            return;
                        }
                    }
                    match s.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
            });
        }
    });
    addr
}

#[tokio::test]
async fn an_upstream_response_framed_two_ways_is_502_and_never_reaches_the_next_caller() {
    let w = World::new().await;
    let upstream = ambiguous_upstream().await;
    let yaml = super::config(&w.issuer, &w.upstream, "")
        .replace(&w.upstream.addr.to_string(), &upstream.to_string());
    let t = crate::support::tollgate::Tollgate::start(&yaml).await;
    let token = w.issuer.token(w.claims());
    // One keep-alive connection from the client, so any left-over bytes would meet the next request.
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(1)
        .build()
        .unwrap();
    let get = |path: &str| http.get(t.url(path)).bearer_auth(&token).send();
    for round in 0..5 {
        let (status, body, _) = parts(get("/orders/smuggle").await.unwrap()).await;
        assert_eq!(status, 502, "round {round}: {body}");
        assert_eq!(body["error"], "upstream_unavailable");
        let res = get("/orders/7").await.unwrap();
        assert_eq!(res.status(), 200);
        assert_eq!(
            res.text().await.unwrap(),
            "mine",
            "round {round}: another caller's bytes"
        );
    }
}
