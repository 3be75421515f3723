//! Outbound: a real dev issuer (token endpoint the test controls), a real echo upstream
//! (reports the bearer token it received), tollgate between the app and the upstream.

mod credentials;
mod exchange;
mod logs;
mod routing;
mod tokens;

use std::path::Path;

use serde_json::Value;
use tollgate::devissuer::{Behaviour, ClientAuth, DevIssuer};

use crate::support::tollgate::Tollgate;
use crate::support::upstream::{Upstream, seen};

pub const CLIENT: &str = "2b50a014-f353-4c10-aace-024f19a55569";
pub const SECRET: &str = "s3cr:t%+ é";
pub const SCOPE: &str = "api://b178f3a5-7588-492a-924f-72d7887b7e48/.default";

pub struct World {
    pub issuer: DevIssuer,
    pub upstream: Upstream,
    pub tollgate: Tollgate,
    pub http: reqwest::Client,
    pub dir: tempfile::TempDir,
}

/// An outbound section with one `client_secret` credential (`method`) and routes
/// `orders.internal` (host) and `/billing` (path, stripped), both to the echo upstream.
pub fn config(issuer: &DevIssuer, upstream: &Upstream, auth: &str) -> String {
    format!(
        r#"admin:
  listen: 127.0.0.1:0
outbound:
  listen: 127.0.0.1:0
  upstream_timeout_seconds: 2
  credentials:
    orders-api:
      token_url: {token_url}
      client_id: {CLIENT}
      scopes: ["{SCOPE}"]
      auth:
        {auth}
  routes:
    - name: orders
      match: {{ host: orders.internal }}
      upstream: http://{up}
      credential: orders-api
    - name: billing
      match: {{ path_prefix: /billing }}
      upstream: http://{up}/api
      strip_prefix: true
      credential: orders-api
"#,
        token_url = issuer.token_url(),
        up = upstream.addr,
    )
}

impl World {
    /// A `client_secret` (post) world, started and ready.
    pub async fn new() -> World {
        World::with_behaviour(Behaviour::default(), true).await
    }

    pub async fn with_behaviour(behaviour: Behaviour, wait_ready: bool) -> World {
        let issuer = DevIssuer::start("127.0.0.1:0".parse().unwrap()).await.unwrap();
        issuer.add_client(CLIENT, ClientAuth::Secret(SECRET.into()), &["Orders.Read"]);
        issuer.set_behaviour(behaviour);
        let upstream = Upstream::start().await;
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("secret"), format!("{SECRET}\n")).unwrap();
        let yaml = config(
            &issuer,
            &upstream,
            "client_secret: { file: secret, method: post }",
        );
        let tollgate = Tollgate::start_in(&yaml, dir.path()).await;
        if wait_ready {
            tollgate.wait_ready().await;
        }
        World {
            issuer,
            upstream,
            tollgate,
            http: reqwest::Client::new(),
            dir,
        }
    }

    pub async fn start(yaml: &str, dir: tempfile::TempDir, issuer: DevIssuer, upstream: Upstream) -> World {
        let tollgate = Tollgate::start_in(yaml, dir.path()).await;
        tollgate.wait_ready().await;
        World {
            issuer,
            upstream,
            tollgate,
            http: reqwest::Client::new(),
            dir,
        }
    }

    /// GET through the outbound listener with `Host: orders.internal`.
    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.tollgate.outbound_get(path, "orders.internal").await
    }

    /// Token requests that succeeded.
    pub fn tokens_issued(&self) -> usize {
        self.issuer
            .token_requests()
            .iter()
            .filter(|r| r.status == 200)
            .count()
    }
}

/// The bearer token the echo upstream received.
pub fn bearer(echo: &Value) -> String {
    seen(echo, "authorization").first().cloned().unwrap_or_default()
}

/// Claims of a JWT, unverified (the tests' own tokens).
pub fn claims(token: &str) -> Value {
    use base64::Engine;
    let part = token
        .trim_start_matches("Bearer ")
        .split('.')
        .nth(1)
        .unwrap_or_default();
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(part)
        .unwrap_or_default();
    serde_json::from_slice(&bytes).unwrap_or(Value::Null)
}

pub fn write(dir: &Path, name: &str, text: &str) {
    std::fs::write(dir.join(name), text).unwrap();
}
