//! An echo upstream: answers every request with JSON describing what it received
//! (method, path, version, headers, body length) and counts requests.
//! `/slow` waits 3 s before answering.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::service::service_fn;
use serde_json::{Map, Value, json};
use tollgate::server::{self, ShutdownTrigger};

pub struct Upstream {
    pub addr: SocketAddr,
    requests: Arc<AtomicUsize>,
    connections: Arc<AtomicUsize>,
    _stop: ShutdownTrigger,
}

impl Upstream {
    pub async fn start() -> Upstream {
        Upstream::start_with_tls(None).await
    }

    /// An echo upstream speaking TLS with this certificate and key (PEM files).
    pub async fn start_tls(cert: &std::path::Path, key: &std::path::Path) -> Upstream {
        Upstream::start_with_tls(Some(server::tls_acceptor(cert, key).unwrap())).await
    }

    async fn start_with_tls(tls: Option<tokio_rustls::TlsAcceptor>) -> Upstream {
        let listener = server::bind("echo", "127.0.0.1:0".parse().unwrap())
            .await
            .unwrap();
        let addr = listener.local_addr().unwrap();
        let requests = Arc::new(AtomicUsize::new(0));
        let (stop, shutdown) = server::shutdown_channel();
        let counter = requests.clone();
        let connections = Arc::new(AtomicUsize::new(0));
        let accepted = connections.clone();
        let make = move |_conn| {
            accepted.fetch_add(1, Ordering::SeqCst);
            let counter = counter.clone();
            service_fn(move |req| echo(counter.clone(), req))
        };
        tokio::spawn(server::serve(
            "echo",
            listener,
            tls,
            make,
            shutdown,
            Duration::from_millis(100),
        ));
        Upstream {
            addr,
            requests,
            connections,
            _stop: stop,
        }
    }

    pub fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }

    /// Connections accepted so far.
    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }
}

async fn echo(
    counter: Arc<AtomicUsize>,
    req: hyper::Request<hyper::body::Incoming>,
) -> Result<hyper::Response<Full<Bytes>>, Infallible> {
    counter.fetch_add(1, Ordering::SeqCst);
    if req.uri().path() == "/slow" {
        tokio::time::sleep(Duration::from_secs(3)).await;
    }
    let mut headers = Map::new();
    for (name, value) in req.headers() {
        let entry = headers
            .entry(name.as_str())
            .or_insert_with(|| Value::Array(vec![]));
        if let Value::Array(list) = entry {
            list.push(Value::String(String::from_utf8_lossy(value.as_bytes()).into()));
        }
    }
    let method = req.method().to_string();
    let path = req
        .uri()
        .path_and_query()
        .map(|p| p.to_string())
        .unwrap_or_default();
    let version = format!("{:?}", req.version());
    let body = req
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let reply = json!({
        "method": method,
        "path": path,
        "version": version,
        "headers": headers,
        "body_len": body.len(),
    });
    let mut res = hyper::Response::new(Full::new(Bytes::from(reply.to_string())));
    res.headers_mut()
        .insert("content-type", "application/json".parse().unwrap());
    res.headers_mut()
        .insert("connection", "x-upstream-hop".parse().unwrap());
    res.headers_mut().insert("x-upstream-hop", "1".parse().unwrap());
    Ok(res)
}

/// The values of header `name` that the upstream saw.
pub fn seen(echo: &Value, name: &str) -> Vec<String> {
    echo["headers"][name]
        .as_array()
        .map(|a| a.iter().filter_map(|v| v.as_str().map(String::from)).collect())
        .unwrap_or_default()
}
