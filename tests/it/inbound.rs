//! Inbound: a real dev issuer (discovery + JWKS), a real echo upstream, tollgate between.

mod attacks;
mod confusion;
mod forwarding;
mod keys;
mod logs;
mod policy;

use serde_json::{Value, json};
use tollgate::devissuer::{DevIssuer, app_claims};

use crate::support::tollgate::Tollgate;
use crate::support::upstream::Upstream;

pub const AUD: &str = "api://b178f3a5-7588-492a-924f-72d7887b7e48";
pub const TENANT: &str = "7ff95b15-dc21-4ba6-bc92-824856578fc1";
pub const CERT_CLIENT: &str = "2b50a014-f353-4c10-aace-024f19a55569";

/// Issuer, upstream and tollgate, wired together.
pub struct World {
    pub issuer: DevIssuer,
    pub upstream: Upstream,
    pub tollgate: Tollgate,
    pub http: reqwest::Client,
}

/// The test configuration. `inbound_extra` is inserted under `inbound:` (two-space indent).
pub fn config(issuer: &DevIssuer, upstream: &Upstream, inbound_extra: &str) -> String {
    format!(
        r#"admin:
  listen: 127.0.0.1:0
issuers:
  dev:
    issuer: {iss}
    discovery_url: {discovery}
    audiences: ["{AUD}"]
  entra-v1:
    issuer: https://sts.windows.net/{TENANT}/
    jwks_uri: {jwks}
    audiences: ["{AUD}"]
inbound:
  listen: 127.0.0.1:0
  upstream: http://{up}
  upstream_timeout_seconds: 1
  forward_claims:
    X-Client-Id: azp
    X-Client-App: appid
    X-Client-Roles: roles
{inbound_extra}
  routes:
    - match: {{ path_prefix: /healthz }}
      allow_anonymous: true
    - name: orders-read
      match: {{ path_prefix: /orders, methods: [GET] }}
      require: {{ roles_any: [Orders.Read] }}
    - name: orders-write
      match: {{ path_prefix: /orders, methods: [POST, PUT, PATCH, DELETE] }}
      require:
        roles_all: [Orders.Write]
        clients: ["{CERT_CLIENT}"]
        azpacr: ["2"]
    - name: reports
      match: {{ path_prefix: /reports }}
      require:
        any_of:
          - {{ roles_any: [Reports.Read] }}
          - {{ scopes_any: [reports.read], tenants: ["{TENANT}"] }}
        claims: {{ idtyp: [app] }}
    - name: profile
      match: {{ path_prefix: /profile }}
      require: {{ token_kind: user, scopes_any: [Orders.Read] }}
    - name: slow
      match: {{ path_prefix: /slow }}
      require: {{ issuers: [dev] }}
"#,
        iss = issuer.issuer(),
        discovery = issuer.discovery_url(),
        jwks = issuer.jwks_url(),
        up = upstream.addr,
    )
}

impl World {
    pub async fn new() -> World {
        World::with("").await
    }

    pub async fn with(inbound_extra: &str) -> World {
        let issuer = DevIssuer::start("127.0.0.1:0".parse().unwrap()).await.unwrap();
        let upstream = Upstream::start().await;
        let tollgate = Tollgate::start(&config(&issuer, &upstream, inbound_extra)).await;
        World {
            issuer,
            upstream,
            tollgate,
            http: reqwest::Client::new(),
        }
    }

    /// A v2 app token for `client` with `roles`, authenticated by `azpacr`.
    pub fn token(&self, client: &str, azpacr: &str, roles: &[&str]) -> String {
        self.issuer.token(app_claims(AUD, client, azpacr, roles, TENANT))
    }

    /// Claims of a valid v2 token, to modify before signing.
    pub fn claims(&self) -> Value {
        World::claims_for(&self.issuer)
    }

    pub fn claims_for(issuer: &DevIssuer) -> Value {
        let mut c = app_claims(AUD, CERT_CLIENT, "2", &["Orders.Read"], TENANT);
        c["iss"] = json!(issuer.issuer());
        c
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> reqwest::Response {
        let mut req = self.http.get(self.tollgate.url(path));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        req.send().await.unwrap()
    }
}

/// Status, JSON body and `WWW-Authenticate` of a response.
pub async fn parts(res: reqwest::Response) -> (u16, Value, String) {
    let status = res.status().as_u16();
    let www = res
        .headers()
        .get("www-authenticate")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let body = res.json().await.unwrap_or(Value::Null);
    (status, body, www)
}
