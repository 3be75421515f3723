//! Load comparison in one run, on loopback: the same client load sent
//!   1. straight to the upstream,
//!   2. through a bare hyper reverse proxy (no policy, no header work),
//!   3. through tollgate inbound on an anonymous route (forwarding only),
//!   4. through tollgate inbound with an RS256 token and a role + client + azpacr policy,
//!   5. through tollgate outbound, which attaches its cached client-credentials token.
//!
//! Prints requests/s and latency percentiles, and the ratios of 3 and 4 to 2.
//! Bounded: each scenario stops after `LOAD_REQUESTS` requests (default 20000) or
//! `LOAD_SECONDS` seconds (default 20), whichever comes first.
//! Run with `bash benches/load.sh` (or `cargo bench --bench load`).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Request, Response, Uri};
use http_body_util::{BodyExt, Empty, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use tollgate::config::{Config, ProcessEnv};
use tollgate::devissuer::{ClientAuth, DevIssuer, app_claims};
use tollgate::server::{self, ShutdownSignal, ShutdownTrigger};

const AUD: &str = "api://load";
const CLIENT: &str = "2b50a014-f353-4c10-aace-024f19a55569";
const TENANT: &str = "7ff95b15-dc21-4ba6-bc92-824856578fc1";
const CONCURRENCY: usize = 32;

type HttpClient = Client<HttpConnector, Empty<Bytes>>;

struct Stats {
    name: &'static str,
    ok: usize,
    failed: usize,
    elapsed: Duration,
    latencies: Vec<Duration>,
}

impl Stats {
    fn rps(&self) -> f64 {
        self.ok as f64 / self.elapsed.as_secs_f64()
    }

    fn percentile(&self, p: f64) -> Duration {
        if self.latencies.is_empty() {
            return Duration::ZERO;
        }
        let i = ((self.latencies.len() - 1) as f64 * p).round() as usize;
        self.latencies[i]
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.iter().any(|a| a == "--list") {
        return; // `cargo test --benches` probes with --list
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(run());
}

async fn run() {
    let requests = env_number("LOAD_REQUESTS", 20_000);
    let limit = Duration::from_secs(env_number("LOAD_SECONDS", 20) as u64);
    // Access log lines are formatted (as in production) but written nowhere.
    let _ = tracing_subscriber::fmt()
        .json()
        .with_writer(std::io::sink)
        .try_init();

    let (_stop, shutdown) = server::shutdown_channel();
    let upstream = start_upstream(shutdown.clone()).await;
    let bare = start_bare_proxy(upstream, shutdown.clone()).await;
    let issuer = DevIssuer::start("127.0.0.1:0".parse().expect("addr"))
        .await
        .expect("issuer");
    let dir = tempfile::tempdir().expect("tempdir");
    let (tollgate, outbound, _tollgate_stop) = start_tollgate(&issuer, upstream, dir.path()).await;

    let mut claims = app_claims(AUD, CLIENT, "2", &["Orders.Read"], TENANT);
    claims["iss"] = issuer.issuer().into();
    let token = issuer.token(claims);
    let auth = format!("Bearer {token}");

    let client: HttpClient = Client::builder(TokioExecutor::new()).build_http();
    let scenarios: [(&'static str, SocketAddr, &str, Option<&str>); 5] = [
        ("direct to upstream", upstream, "/orders/7", None),
        ("bare hyper proxy", bare, "/orders/7", None),
        ("tollgate anonymous route", tollgate, "/public/7", None),
        ("tollgate RS256 + policy", tollgate, "/orders/7", Some(&auth)),
        ("tollgate outbound + token", outbound, "/orders/7", None),
    ];
    println!(
        "load: {requests} requests per scenario (max {}s), {CONCURRENCY} concurrent connections, loopback",
        limit.as_secs()
    );
    let mut results = Vec::new();
    for (name, addr, path, auth) in scenarios {
        // Warm up connections and key caches, then measure.
        let _ = drive(&client, name, addr, path, auth, 500, limit).await;
        let stats = drive(&client, name, addr, path, auth, requests, limit).await;
        println!(
            "{:<28} {:>9.0} req/s   p50 {:>7.0} µs   p99 {:>7.0} µs   ok {:>6}   failed {}",
            stats.name,
            stats.rps(),
            stats.percentile(0.50).as_secs_f64() * 1e6,
            stats.percentile(0.99).as_secs_f64() * 1e6,
            stats.ok,
            stats.failed
        );
        results.push(stats);
    }
    let bare = &results[1];
    for s in &results[2..] {
        println!(
            "{:<28} throughput {:.2}x of bare proxy, p50 latency {:.2}x",
            s.name,
            s.rps() / bare.rps(),
            s.percentile(0.5).as_secs_f64() / bare.percentile(0.5).as_secs_f64()
        );
    }
    if results.iter().any(|s| s.failed > 0) {
        eprintln!("load: some requests failed");
        std::process::exit(1);
    }
}

async fn drive(
    client: &HttpClient,
    name: &'static str,
    addr: SocketAddr,
    path: &str,
    auth: Option<&str>,
    requests: usize,
    limit: Duration,
) -> Stats {
    let issued = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..CONCURRENCY {
        let client = client.clone();
        let issued = issued.clone();
        let uri: Uri = format!("http://{addr}{path}").parse().expect("uri");
        let auth = auth.map(str::to_string);
        workers.spawn(async move {
            let (mut ok, mut failed, mut latencies) = (0, 0, Vec::new());
            while issued.fetch_add(1, Ordering::Relaxed) < requests && started.elapsed() < limit {
                let mut req = Request::get(uri.clone());
                if let Some(a) = &auth {
                    req = req.header(http::header::AUTHORIZATION, a);
                }
                let Ok(req) = req.body(Empty::new()) else {
                    failed += 1;
                    continue;
                };
                let t = Instant::now();
                match client.request(req).await {
                    Ok(res) if res.status().is_success() => {
                        let _ = res.into_body().collect().await;
                        ok += 1;
                        latencies.push(t.elapsed());
                    }
                    _ => failed += 1,
                }
            }
            (ok, failed, latencies)
        });
    }
    let mut stats = Stats {
        name,
        ok: 0,
        failed: 0,
        elapsed: Duration::ZERO,
        latencies: Vec::new(),
    };
    while let Some(Ok((ok, failed, latencies))) = workers.join_next().await {
        stats.ok += ok;
        stats.failed += failed;
        stats.latencies.extend(latencies);
    }
    stats.elapsed = started.elapsed();
    stats.latencies.sort();
    stats
}

/// Answers every request with a small fixed body.
async fn start_upstream(shutdown: ShutdownSignal) -> SocketAddr {
    let listener = server::bind("upstream", "127.0.0.1:0".parse().expect("addr"))
        .await
        .expect("bind upstream");
    let addr = listener.local_addr().expect("addr");
    let make = |_conn| {
        service_fn(|_req: Request<Incoming>| async {
            Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(b"{\"ok\":true}"))))
        })
    };
    tokio::spawn(server::serve(
        "upstream",
        listener,
        None,
        make,
        shutdown,
        Duration::from_millis(100),
    ));
    addr
}

/// The least a reverse proxy can do: rewrite the URI and pass the request on, pooled.
async fn start_bare_proxy(upstream: SocketAddr, shutdown: ShutdownSignal) -> SocketAddr {
    let listener = server::bind("bare", "127.0.0.1:0".parse().expect("addr"))
        .await
        .expect("bind bare proxy");
    let addr = listener.local_addr().expect("addr");
    let client: Client<HttpConnector, Incoming> = Client::builder(TokioExecutor::new()).build_http();
    let make = move |_conn| {
        let client = client.clone();
        service_fn(move |mut req: Request<Incoming>| {
            let client = client.clone();
            async move {
                let path = req.uri().path_and_query().map(|p| p.as_str()).unwrap_or("/");
                if let Ok(uri) = format!("http://{upstream}{path}").parse::<Uri>() {
                    *req.uri_mut() = uri;
                }
                match client.request(req).await {
                    Ok(res) => Ok::<_, Infallible>(res.map(|b| b.boxed())),
                    Err(_) => {
                        let mut res =
                            Response::new(Full::new(Bytes::new()).map_err(|never| match never {}).boxed());
                        *res.status_mut() = http::StatusCode::BAD_GATEWAY;
                        Ok(res)
                    }
                }
            }
        })
    };
    tokio::spawn(server::serve(
        "bare",
        listener,
        None,
        make,
        shutdown,
        Duration::from_millis(100),
    ));
    addr
}

async fn start_tollgate(
    issuer: &DevIssuer,
    upstream: SocketAddr,
    dir: &std::path::Path,
) -> (SocketAddr, SocketAddr, ShutdownTrigger) {
    issuer.add_client(CLIENT, ClientAuth::Secret("load-secret".into()), &["Orders.Read"]);
    std::fs::write(dir.join("secret"), "load-secret").expect("write secret");
    let yaml = format!(
        r#"issuers:
  dev:
    issuer: {iss}
    discovery_url: {discovery}
    audiences: ["{AUD}"]
inbound:
  listen: 127.0.0.1:0
  upstream: http://{upstream}
  forward_claims: {{ X-Client-Id: azp, X-Client-Roles: roles }}
  routes:
    - match: {{ path_prefix: /public }}
      allow_anonymous: true
    - name: orders-read
      match: {{ path_prefix: /orders, methods: [GET] }}
      require:
        roles_any: [Orders.Read]
        clients: ["{CLIENT}"]
        azpacr: ["2"]
outbound:
  listen: 127.0.0.1:0
  credentials:
    api:
      token_url: {token_url}
      client_id: {CLIENT}
      scopes: ["{AUD}/.default"]
      auth: {{ client_secret: {{ file: secret }} }}
  routes:
    - match: {{ path_prefix: / }}
      upstream: http://{upstream}
      credential: api
"#,
        iss = issuer.issuer(),
        discovery = issuer.discovery_url(),
        token_url = issuer.token_url(),
    );
    let config = Config::from_yaml(&yaml, dir, &ProcessEnv).expect("load config");
    let (stop, shutdown) = server::shutdown_channel();
    let started = tollgate::sidecar::start(config, shutdown)
        .await
        .expect("tollgate starts");
    let addr = started.inbound.expect("inbound");
    let outbound = started.outbound.expect("outbound");
    if let Err(missing) = started.readiness.wait(Duration::from_secs(10)).await {
        panic!("tollgate never became ready: {missing:?}");
    }
    tokio::spawn(started.wait());
    (addr, outbound, stop)
}

fn env_number(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}
