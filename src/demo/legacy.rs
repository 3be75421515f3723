//! The demo's "legacy" service: no auth code at all; it answers with the identity headers
//! tollgate gave it, so the transcript can show what a legacy service sees.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, header};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use serde_json::{Map, Value, json};

use crate::server::{self, ShutdownSignal};

const IDENTITY_HEADERS: [&str; 5] = [
    "x-client-id",
    "x-client-roles",
    "x-client-auth",
    "x-tenant-id",
    "x-user",
];

pub async fn start(shutdown: ShutdownSignal) -> std::io::Result<SocketAddr> {
    let listener = server::bind("legacy", SocketAddr::from(([127, 0, 0, 1], 0))).await?;
    let addr = listener.local_addr()?;
    let make = |_conn| service_fn(answer);
    tokio::spawn(server::serve(
        "legacy",
        listener,
        None,
        make,
        shutdown,
        Duration::from_millis(200),
    ));
    Ok(addr)
}

async fn answer(req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let mut identity = Map::new();
    for name in IDENTITY_HEADERS {
        if let Some(v) = req.headers().get(name).and_then(|v| v.to_str().ok()) {
            identity.insert(name.to_string(), Value::String(v.to_string()));
        }
    }
    let body = json!({
        "service": "legacy-orders",
        "method": req.method().as_str(),
        "path": req.uri().path(),
        "identity": identity,
    });
    let mut res = Response::new(Full::new(Bytes::from(body.to_string())));
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json"),
    );
    Ok(res)
}
