//! The decision listener: Envoy's HTTP ext_authz and nginx/Traefik forward-auth answered
//! with inbound's own decision. The same requests go through inbound (which forwards to
//! an echo upstream) and through each protocol; status and identity headers must agree.

mod envoy_grpc;
mod nginx;

use http::HeaderMap;
use serde_json::Value;
use tollgate::devissuer::{DevIssuer, app_claims};

use crate::inbound::{AUD, CERT_CLIENT, TENANT};
use crate::support::tollgate::Tollgate;
use crate::support::upstream::{Upstream, seen};

/// The routes both sections share.
const ROUTES: &str = r#"  forward_claims: { X-Client-Id: azp, X-Client-Roles: roles }
  routes:
    - match: { path_prefix: /healthz }
      allow_anonymous: true
    - name: admin
      match: { path_prefix: /admin }
      require: { roles_any: [Admin.Write] }
    - name: orders-read
      match: { path_prefix: /orders, methods: [GET] }
      require: { roles_any: [Orders.Read] }
    - name: orders-write
      match: { path_prefix: /orders, methods: [POST, DELETE] }
      require: { roles_all: [Orders.Write], azpacr: ["2"] }
"#;

pub struct Setup {
    pub issuer: DevIssuer,
    pub upstream: Upstream,
    pub tollgate: Tollgate,
    pub http: reqwest::Client,
}

pub fn config(issuer: &DevIssuer, upstream: &Upstream, decision_extra: &str) -> String {
    format!(
        "admin:\n  listen: 127.0.0.1:0\nissuers:\n  dev:\n    issuer: {iss}\n    discovery_url: {disc}\n    audiences: [\"{AUD}\"]\ninbound:\n  listen: 127.0.0.1:0\n  upstream: http://{up}\n{ROUTES}decision:\n  listen: 127.0.0.1:0\n{decision_extra}{ROUTES}",
        iss = issuer.issuer(),
        disc = issuer.discovery_url(),
        up = upstream.addr,
    )
}

impl Setup {
    pub async fn new(decision_extra: &str) -> Setup {
        let issuer = DevIssuer::start("127.0.0.1:0".parse().unwrap()).await.unwrap();
        let upstream = Upstream::start().await;
        let tollgate = Tollgate::start(&config(&issuer, &upstream, decision_extra)).await;
        Setup {
            issuer,
            upstream,
            tollgate,
            http: reqwest::Client::new(),
        }
    }

    pub fn token(&self, azpacr: &str, roles: &[&str]) -> String {
        self.issuer
            .token(app_claims(AUD, CERT_CLIENT, azpacr, roles, TENANT))
    }

    pub fn decision_url(&self, path: &str) -> String {
        format!(
            "http://{}{path}",
            self.tollgate.decision.expect("decision listener")
        )
    }
}

/// One request to judge: method, path (with query), token, other headers.
struct Case {
    method: &'static str,
    path: &'static str,
    token: Option<String>,
    headers: Vec<(&'static str, &'static str)>,
}

/// Status and identity headers, as the upstream saw them (inbound) or as the decision
/// listener told the proxy to set them.
#[derive(Debug, PartialEq)]
pub struct Judged {
    pub status: u16,
    pub client_id: Option<String>,
    pub roles: Option<String>,
}

fn request(s: &Setup, method: &str, url: String, case: &Case) -> reqwest::RequestBuilder {
    let mut req = s.http.request(method.parse().unwrap(), url);
    if let Some(t) = &case.token {
        req = req.bearer_auth(t);
    }
    for (n, v) in &case.headers {
        req = req.header(*n, *v);
    }
    req
}

async fn through_inbound(s: &Setup, case: &Case) -> Judged {
    let res = request(s, case.method, s.tollgate.url(case.path), case)
        .send()
        .await
        .unwrap();
    let status = res.status().as_u16();
    let echo: Value = res.json().await.unwrap_or(Value::Null);
    let one = |name: &str| seen(&echo, name).first().cloned();
    Judged {
        status,
        client_id: if status == 200 { one("x-client-id") } else { None },
        roles: if status == 200 {
            one("x-client-roles")
        } else {
            None
        },
    }
}

fn from_headers(status: u16, headers: &HeaderMap) -> Judged {
    let get = |n: &str| {
        headers
            .get(n)
            .and_then(|v| v.to_str().ok())
            .filter(|v| !v.is_empty())
            .map(String::from)
    };
    Judged {
        status,
        client_id: get("x-client-id"),
        roles: get("x-client-roles"),
    }
}

async fn through_envoy_http(s: &Setup, case: &Case) -> Judged {
    let res = request(
        s,
        case.method,
        s.decision_url(&format!("/ext_authz{}", case.path)),
        case,
    )
    .send()
    .await
    .unwrap();
    from_headers(res.status().as_u16(), res.headers())
}

async fn through_forward_auth(s: &Setup, case: &Case, traefik: bool) -> Judged {
    let (m, u) = if traefik {
        ("X-Forwarded-Method", "X-Forwarded-Uri")
    } else {
        ("X-Original-Method", "X-Original-URI")
    };
    let res = request(s, "GET", s.decision_url("/auth"), case)
        .header(m, case.method)
        .header(u, case.path)
        .send()
        .await
        .unwrap();
    from_headers(res.status().as_u16(), res.headers())
}

/// forward-auth answers 401 or 403 only (nginx turns anything else into a 500).
fn as_forward_auth(mut j: Judged) -> Judged {
    if j.status != 200 && j.status != 401 {
        j.status = 403;
    }
    j
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inbound_and_every_decision_protocol_agree_on_the_same_requests() {
    let s = Setup::new("").await;
    let reader = s.token("2", &["Orders.Read"]);
    let writer = s.token("2", &["Orders.Read", "Orders.Write"]);
    let secret_writer = s.token("1", &["Orders.Write"]);
    let case = |method, path, token: Option<&String>, headers: Vec<(&'static str, &'static str)>| Case {
        method,
        path,
        token: token.cloned(),
        headers,
    };
    let cases = [
        case("GET", "/orders/7?x=1", Some(&reader), vec![]),
        case("GET", "/orders/7", None, vec![]),
        case("GET", "/orders/7", Some(&"not.a.token".to_string()), vec![]),
        case("DELETE", "/orders/7", Some(&reader), vec![]),
        case("DELETE", "/orders/7", Some(&writer), vec![]),
        case("POST", "/orders", Some(&secret_writer), vec![]),
        case("GET", "/admin;jsessionid=1/users", Some(&reader), vec![]),
        case("GET", "/ADMIN/users", Some(&reader), vec![]),
        case("GET", "/healthz", None, vec![("X-Client-Id", "forged")]),
        case(
            "GET",
            "/orders/7",
            Some(&reader),
            vec![("X-HTTP-Method-Override", "DELETE")],
        ),
        case("GET", "/nowhere", Some(&reader), vec![]),
    ];
    for c in &cases {
        let inbound = through_inbound(&s, c).await;
        let envoy = through_envoy_http(&s, c).await;
        let nginx = through_forward_auth(&s, c, false).await;
        let traefik = through_forward_auth(&s, c, true).await;
        let grpc = envoy_grpc::judged(&s, c.method, c.path, c.token.as_deref(), &c.headers).await;
        assert_eq!(grpc, inbound, "Envoy gRPC vs inbound: {} {}", c.method, c.path);
        let what = format!("{} {} token={}", c.method, c.path, c.token.is_some());
        assert_eq!(envoy, inbound, "Envoy HTTP vs inbound: {what}");
        assert_eq!(nginx, as_forward_auth(inbound), "auth_request vs inbound: {what}");
        assert_eq!(traefik, nginx, "ForwardAuth vs auth_request: {what}");
    }
    // The inbound decisions above really were a mix.
    let statuses: std::collections::BTreeSet<u16> = {
        let mut set = std::collections::BTreeSet::new();
        for c in &cases {
            set.insert(through_inbound(&s, c).await.status);
        }
        set
    };
    assert_eq!(statuses.into_iter().collect::<Vec<_>>(), [200, 400, 401, 403]);
    let metrics = s.tollgate.metrics().await;
    for protocol in ["envoy_grpc", "envoy_http", "forward_auth"] {
        assert!(
            metrics.contains(&format!(r#"tollgate_decision_requests_total{{decision="allow",protocol="{protocol}",reason="ok",route="orders-read"}}"#)),
            "{metrics}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn identity_headers_are_always_all_sent_so_a_proxy_replaces_forged_copies() {
    let s = Setup::new("").await;
    let res = s
        .http
        .get(s.decision_url("/auth"))
        .header("X-Original-Method", "GET")
        .header("X-Original-URI", "/healthz")
        .header("X-Client-Id", "forged")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(
        res.headers()["x-client-id"],
        "",
        "an anonymous route sets every identity header empty"
    );
    assert_eq!(res.headers()["x-client-roles"], "");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forward_auth_needs_one_agreed_original_request_and_answers_only_401_or_403() {
    let s = Setup::new("").await;
    let reader = s.token("2", &["Orders.Read"]);
    for headers in [
        vec![],
        vec![("X-Original-URI", "/orders/7")],
        vec![
            ("X-Original-Method", "GET"),
            ("X-Original-URI", "/admin"),
            ("X-Forwarded-Uri", "/orders/7"),
        ],
        vec![
            ("X-Original-Method", "GET"),
            ("X-Original-URI", "/orders/../admin"),
        ],
    ] {
        let mut req = s.http.get(s.decision_url("/auth")).bearer_auth(&reader);
        for (n, v) in &headers {
            req = req.header(*n, *v);
        }
        let res = req.send().await.unwrap();
        assert_eq!(res.status(), 403, "{headers:?}");
        let www = res.headers()["www-authenticate"].to_str().unwrap().to_string();
        assert!(www.contains(r#"error="invalid_request""#), "{www}");
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["error"], "invalid_request", "{headers:?}: {body}");
    }
    // Envoy's HTTP form answers inbound's own statuses, 400 included.
    let decision = s.tollgate.decision.unwrap();
    let (status, body) = crate::support::tollgate::raw_request(
        decision,
        "GET /ext_authz/orders/%2e%2e/admin HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(status, 400, "{body}");
    let res = s.http.get(s.decision_url("/elsewhere")).send().await.unwrap();
    assert_eq!(res.status(), 404);
    assert_eq!(s.upstream.requests(), 0, "the decision listener never forwards");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_mode_allows_and_counts_would_deny() {
    let s = Setup::new("  mode: audit\n").await;
    let res = s
        .http
        .get(s.decision_url("/auth"))
        .header("X-Original-Method", "GET")
        .header("X-Original-URI", "/admin")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let metrics = s.tollgate.metrics().await;
    assert!(
        metrics.contains(r#"tollgate_decision_requests_total{decision="would_deny",protocol="forward_auth",reason="no_token",route="admin"} 1"#),
        "{metrics}"
    );
}

#[test]
fn a_plaintext_decision_listener_off_loopback_needs_an_explicit_yes() {
    let yaml = |extra: &str| {
        format!(
            "issuers:\n  e:\n    issuer: https://i.example\n    jwks_file: k.json\n    audiences: [a]\ndecision:\n  listen: 0.0.0.0:9191\n{extra}  routes:\n    - match: {{ path_prefix: / }}\n      require: {{ roles_any: [A] }}\n"
        )
    };
    let file = crate::support::config_file(&yaml(""));
    let out = crate::support::check(&file.path);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("decision.listen") && err.contains("not a loopback address"),
        "{err}"
    );
    let file = crate::support::config_file(&yaml("  allow_plaintext_non_loopback: true\n"));
    let out = crate::support::check(&file.path);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_swaps_the_decision_policy() {
    let issuer = DevIssuer::start("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let upstream = Upstream::start().await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tollgate.yaml");
    let text = |role: &str| {
        format!(
            "reload:\n  poll_interval_seconds: 1\n{}",
            config(&issuer, &upstream, "")
        )
        .replace("Admin.Write", role)
    };
    std::fs::write(&path, text("Admin.Write")).unwrap();
    let t = Tollgate::start_file(&path).await;
    let token = issuer.token(app_claims(AUD, CERT_CLIENT, "2", &["Orders.Read"], TENANT));
    let http = reqwest::Client::new();
    let status = || async {
        http.get(format!("http://{}/auth", t.decision.unwrap()))
            .bearer_auth(&token)
            .header("X-Original-Method", "GET")
            .header("X-Original-URI", "/admin/x")
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    };
    assert_eq!(status().await, 403);
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text("Orders.Read")).unwrap();
    std::fs::rename(&tmp, &path).unwrap();
    let start = std::time::Instant::now();
    while status().await != 200 {
        assert!(
            start.elapsed() < std::time::Duration::from_secs(10),
            "the reload never reached the decision listener"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}
