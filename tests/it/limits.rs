//! Hostile clients against the real binary, on every listener: silent and trickling
//! clients cut at the header read timeout, idle keep-alive closed, 2,000 idle connections,
//! the connection limit, oversized heads, garbage, HTTP/2 rapid reset, and the upstream
//! connect timeout. Every loop is bounded; RSS is read from /proc after each attack.

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::upstream::Upstream;
use crate::support::{config_file, free_port, get_when_up, tollgate};

/// RSS bound for every attack below (the binary idles at about 15 MiB).
const RSS_BOUND_KIB: u64 = 200 * 1024;

struct Sidecar {
    child: Child,
    admin: SocketAddr,
    inbound: SocketAddr,
    outbound: SocketAddr,
    decision: SocketAddr,
    _file: crate::support::ConfigFile,
}

impl Sidecar {
    /// The real binary at `warn` level (no access lines to fill a pipe), three listeners.
    async fn start(upstream: SocketAddr, limits: &str, inbound_extra: &str) -> Sidecar {
        let (admin, inbound, outbound, decision) = (free_port(), free_port(), free_port(), free_port());
        let file = config_file(&format!(
            r#"admin:
  listen: {admin}
{limits}
inbound:
  listen: {inbound}
  upstream: http://{upstream}
  upstream_timeout_seconds: 2
{inbound_extra}
  routes:
    - match: {{ path_prefix: / }}
      allow_anonymous: true
outbound:
  listen: {outbound}
decision:
  listen: {decision}
  routes:
    - match: {{ path_prefix: / }}
      allow_anonymous: true
"#
        ));
        let child = tollgate()
            .args(["--log-format", "json", "--log-level", "warn", "run", "-c"])
            .arg(&file.path)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn tollgate");
        let s = Sidecar {
            child,
            admin,
            inbound,
            outbound,
            decision,
            _file: file,
        };
        get_when_up(&format!("http://{admin}/healthz")).await;
        get_when_up(&format!("http://{inbound}/healthz")).await;
        get_when_up(&format!("http://{outbound}/healthz")).await;
        get_when_up(&format!("http://{decision}/healthz")).await;
        s
    }

    fn listeners(&self) -> [(&'static str, SocketAddr); 4] {
        [
            ("admin", self.admin),
            ("inbound", self.inbound),
            ("outbound", self.outbound),
            ("decision", self.decision),
        ]
    }

    fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap_or_default();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0)
    }

    fn assert_rss_bounded(&self, after: &str) {
        let rss = self.rss_kib();
        println!("RSS after {after}: {} KiB", rss);
        assert!(rss > 0 && rss < RSS_BOUND_KIB, "RSS {rss} KiB after {after}");
    }
}

impl Drop for Sidecar {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A complete GET on a fresh connection: its status (0 when none came) and how long it took.
async fn get(addr: SocketAddr, path: &str) -> (u16, Duration) {
    let started = Instant::now();
    let request = format!("GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    let (status, _) = crate::support::tollgate::raw_request(addr, &request).await;
    (status, started.elapsed())
}

/// Wait (bounded) until the peer closes `stream`; how long that took.
async fn closed_within(stream: &mut TcpStream, limit: Duration) -> Option<Duration> {
    let started = Instant::now();
    let mut buf = [0u8; 4096];
    while started.elapsed() < limit {
        match tokio::time::timeout(limit - started.elapsed(), stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return Some(started.elapsed()),
            Ok(Ok(_)) => continue,
            Err(_) => return None,
        }
    }
    None
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_and_trickling_clients_are_cut_at_the_header_read_timeout_on_every_listener() {
    let upstream = Upstream::start().await;
    let s = Sidecar::start(upstream.addr, "limits:\n  header_read_timeout_seconds: 2", "").await;
    for (name, addr) in s.listeners() {
        let mut silent = TcpStream::connect(addr).await.unwrap();
        let mut trickler = TcpStream::connect(addr).await.unwrap();
        trickler
            .write_all(b"GET / HTTP/1.1\r\nHost: t\r\n")
            .await
            .unwrap();
        let trickle = tokio::spawn(async move {
            for i in 0..20 {
                tokio::time::sleep(Duration::from_millis(300)).await;
                if trickler
                    .write_all(format!("X-Slow-{i}: 1\r\n").as_bytes())
                    .await
                    .is_err()
                {
                    return Some(i);
                }
            }
            None
        });
        tokio::time::sleep(Duration::from_millis(600)).await;
        let (status, took) = get(addr, "/healthz").await;
        assert!(
            status == 200 || status == 404,
            "{name}: a normal client is served meanwhile ({status})"
        );
        println!("{name}: normal request during the trickle: {status} in {took:?}");
        let cut = closed_within(&mut silent, Duration::from_secs(5)).await;
        assert!(cut.is_some(), "{name}: a silent connection stayed open");
        let stopped_at = trickle.await.unwrap();
        assert!(
            stopped_at.is_some_and(|i| i < 12),
            "{name}: the trickling client was not cut near 2 s (stopped at write {stopped_at:?})"
        );
    }
    s.assert_rss_bounded("slow clients");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_keep_alive_connections_close_at_the_listeners_idle_timeout() {
    let upstream = Upstream::start().await;
    let s = Sidecar::start(upstream.addr, "", "  limits: { idle_timeout_seconds: 2 }").await;
    let mut inbound = TcpStream::connect(s.inbound).await.unwrap();
    let mut admin = TcpStream::connect(s.admin).await.unwrap();
    for stream in [&mut inbound, &mut admin] {
        stream
            .write_all(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
            .await
            .unwrap();
        let mut buf = [0u8; 4096];
        let n = stream.read(&mut buf).await.unwrap();
        assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
    }
    let took = closed_within(&mut inbound, Duration::from_secs(6))
        .await
        .expect("idle inbound connection closed");
    assert!(took > Duration::from_millis(1500), "closed too early: {took:?}");
    println!("idle inbound keep-alive closed after {took:?}");
    // The admin listener has the default (60 s): still open.
    admin
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
        .await
        .unwrap();
    let mut buf = [0u8; 4096];
    let n = admin.read(&mut buf).await.unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_thousand_idle_connections_do_not_stop_a_normal_request() {
    let upstream = Upstream::start().await;
    let s = Sidecar::start(upstream.addr, "", "").await;
    let before = s.rss_kib();
    let mut idle = Vec::with_capacity(2000);
    for _ in 0..2000 {
        idle.push(TcpStream::connect(s.inbound).await.unwrap());
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (status, took) = get(s.inbound, "/healthz").await;
    assert_eq!(status, 200);
    assert!(took < Duration::from_secs(2), "{took:?}");
    println!(
        "with 2000 idle connections: 200 in {took:?}; RSS {before} → {} KiB",
        s.rss_kib()
    );
    s.assert_rss_bounded("2000 idle connections");
    drop(idle);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_max_connections_new_clients_wait_and_open_ones_are_served() {
    let upstream = Upstream::start().await;
    let s = Sidecar::start(upstream.addr, "", "  limits: { max_connections: 4 }").await;
    let request = b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n";
    let mut open = Vec::new();
    for _ in 0..4 {
        let mut c = TcpStream::connect(s.inbound).await.unwrap();
        c.write_all(request).await.unwrap();
        let mut buf = [0u8; 4096];
        assert!(c.read(&mut buf).await.unwrap() > 0);
        open.push(c);
    }
    let mut waiting = TcpStream::connect(s.inbound).await.unwrap();
    waiting.write_all(request).await.unwrap();
    let mut buf = [0u8; 4096];
    let early = tokio::time::timeout(Duration::from_millis(700), waiting.read(&mut buf)).await;
    assert!(early.is_err(), "the fifth connection was served past the limit");
    open[0].write_all(request).await.unwrap();
    let n = open[0].read(&mut buf).await.unwrap();
    assert!(
        String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"),
        "an open one is still served"
    );
    drop(open.remove(1));
    let n = tokio::time::timeout(Duration::from_secs(3), waiting.read(&mut buf))
        .await
        .expect("served once a slot freed")
        .unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_head_over_max_header_bytes_is_431() {
    let upstream = Upstream::start().await;
    let s = Sidecar::start(upstream.addr, "", "").await;
    let forwarded = upstream.requests();
    for (name, addr) in s.listeners() {
        let big = "a".repeat(65 * 1024);
        let request =
            format!("GET /healthz HTTP/1.1\r\nHost: t\r\nX-Big: {big}\r\nConnection: close\r\n\r\n");
        let (status, body) = crate::support::tollgate::raw_request(addr, &request).await;
        assert_eq!(status, 431, "{name}");
        let json: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
        assert_eq!(json["error"], "request_header_fields_too_large", "{name}: {body}");
        // Far past the limit the parser stops reading: a bare 431, never a hang.
        let huge = "a".repeat(300 * 1024);
        let request = format!("GET /healthz HTTP/1.1\r\nHost: t\r\nX-Big: {huge}\r\n\r\n");
        let (status, _) = crate::support::tollgate::raw_request(addr, &request).await;
        assert_eq!(status, 431, "{name}");
    }
    assert_eq!(upstream.requests(), forwarded, "no oversized head was forwarded");
    for (name, addr) in s.listeners() {
        assert!(
            matches!(get(addr, "/healthz").await.0, 200 | 404),
            "{name} still serves"
        );
    }
}

/// A small deterministic generator for garbage bytes.
fn xorshift(seed: &mut u64) -> u64 {
    *seed ^= *seed << 13;
    *seed ^= *seed >> 7;
    *seed ^= *seed << 17;
    *seed
}

async fn send_and_close(addr: SocketAddr, bytes: &[u8]) {
    if let Ok(mut c) = TcpStream::connect(addr).await {
        let _ = c.write_all(bytes).await;
        let mut buf = [0u8; 1024];
        let _ = tokio::time::timeout(Duration::from_millis(200), c.read(&mut buf)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_truncated_requests_bad_chunking_and_bad_frames_leave_every_listener_serving() {
    let upstream = Upstream::start().await;
    let s = Sidecar::start(upstream.addr, "limits:\n  header_read_timeout_seconds: 2", "").await;
    let mut seed = 0x5eed_u64;
    for (name, addr) in s.listeners() {
        for _ in 0..100 {
            let len = (xorshift(&mut seed) % 2048) as usize;
            let bytes: Vec<u8> = (0..len).map(|_| xorshift(&mut seed) as u8).collect();
            send_and_close(addr, &bytes).await;
        }
        let cases: [&[u8]; 6] = [
            b"GET /healthz HTTP/1.1\r\nHost: t\r\nX-Half",
            b"POST /healthz HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n",
            b"POST /healthz HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
            b"POST /healthz HTTP/1.1\r\nHost: t\r\nContent-Length: -1\r\n\r\n",
            b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x04\x09\x00\x00\x00\x00\x07\xff\xff\xff\xff",
            b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\xff\xff\xff\x01\x05\x00\x00\x00\x01",
        ];
        for bytes in cases {
            send_and_close(addr, bytes).await;
        }
        let (status, took) = get(addr, "/healthz").await;
        assert!(matches!(status, 200 | 404), "{name} stopped serving ({status})");
        println!("{name}: after garbage: {status} in {took:?}");
    }
    s.assert_rss_bounded("garbage");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http2_streams_are_bounded_and_rapid_reset_does_not_stop_other_clients() {
    let upstream = Upstream::start().await;
    let s = Sidecar::start(upstream.addr, "limits:\n  http2_max_concurrent_streams: 32", "").await;
    let tcp = TcpStream::connect(s.inbound).await.unwrap();
    let (client, conn) = h2::client::handshake(tcp).await.unwrap();
    tokio::spawn(conn);
    let mut client = client.ready().await.unwrap();
    let req = http::Request::get(format!("http://{}/healthz", s.inbound))
        .body(())
        .unwrap();
    let (response, _) = client.send_request(req, true).unwrap();
    assert_eq!(
        response.await.unwrap().status(),
        200,
        "h2c prior knowledge is served"
    );
    assert_eq!(
        client.current_max_send_streams(),
        32,
        "the advertised stream limit"
    );
    let before = s.rss_kib();
    let started = Instant::now();
    let mut sent = 0;
    for _ in 0..5000 {
        if started.elapsed() > Duration::from_secs(10) {
            break;
        }
        let Ok(ready) = client.clone().ready().await else {
            break;
        };
        client = ready;
        let req = http::Request::get(format!("http://{}/healthz", s.inbound))
            .body(())
            .unwrap();
        let Ok((_response, mut stream)) = client.send_request(req, false) else {
            break;
        };
        stream.send_reset(h2::Reason::CANCEL);
        sent += 1;
    }
    println!(
        "rapid reset: {sent} streams opened and reset in {:?}",
        started.elapsed()
    );
    let (status, took) = get(s.inbound, "/healthz").await;
    assert_eq!(status, 200, "another client is served");
    println!(
        "after rapid reset: 200 in {took:?}; RSS {before} → {} KiB",
        s.rss_kib()
    );
    s.assert_rss_bounded("rapid reset");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upstream_that_never_accepts_is_502_at_the_connect_timeout_and_a_slow_one_504() {
    // A listener whose backlog is full: the kernel drops further SYNs, so connecting hangs.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let full = socket.listen(1).unwrap();
    let addr = full.local_addr().unwrap();
    let mut fillers = Vec::new();
    for _ in 0..8 {
        if let Ok(Ok(c)) = tokio::time::timeout(Duration::from_millis(300), TcpStream::connect(addr)).await {
            fillers.push(c);
        }
    }
    let s = Sidecar::start(addr, "limits:\n  upstream_connect_timeout_seconds: 1", "").await;
    let started = Instant::now();
    let request = "GET /x HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n";
    let (status, body) = crate::support::tollgate::raw_request(s.inbound, request).await;
    let took = started.elapsed();
    assert_eq!(status, 502, "{body}");
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(4),
        "{took:?}"
    );
    println!("connect timeout: 502 after {took:?}");
    drop(fillers);

    let upstream = Upstream::start().await;
    let s = Sidecar::start(upstream.addr, "", "").await;
    let (status, body) = crate::support::tollgate::raw_request(
        s.inbound,
        "GET /slow HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(status, 504, "{body}");
}

#[test]
fn limits_are_positive_integers_named_by_key() {
    let file = config_file(
        "limits:\n  max_connections: 0\nadmin:\n  listen: 127.0.0.1:9901\n  limits: { idle_timeout_seconds: 0, max_header_bytes: 100 }\n",
    );
    let out = Command::new(env!("CARGO_BIN_EXE_tollgate"))
        .args(["check", "-c"])
        .arg(&file.path)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("limits.max_connections"), "{err}");
    assert!(err.contains("admin.limits.idle_timeout_seconds"), "{err}");
    assert!(err.contains("admin.limits.max_header_bytes"), "{err}");
}
