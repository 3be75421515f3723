//! Routing by host (Host header or absolute-form), by path with strip_prefix, 404, the
//! app's Authorization replaced, upstream TLS through `ca_file`.

use serde_json::Value;
use tollgate::devissuer::{ClientAuth, DevIssuer};

use super::{CLIENT, SCOPE, SECRET, World, bearer, claims};
use crate::support::pki;
use crate::support::upstream::{Upstream, seen};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn host_route_replaces_the_apps_authorization_and_sets_the_upstream_host() {
    let w = World::new().await;
    let res = w
        .http
        .get(w.tollgate.outbound_url("/v1/orders?x=1"))
        .header("host", "Orders.Internal")
        .header("authorization", "Bearer app-made-this-up")
        .header("proxy-authorization", "Basic c2VjcmV0")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let echo: Value = res.json().await.unwrap();
    assert_eq!(seen(&echo, "authorization").len(), 1, "{echo}");
    let token = bearer(&echo);
    assert_ne!(token, "Bearer app-made-this-up");
    let c = claims(&token);
    assert_eq!(c["azp"], CLIENT);
    assert_eq!(c["aud"], "api://b178f3a5-7588-492a-924f-72d7887b7e48");
    assert_eq!(c["azpacr"], "1");
    assert_eq!(echo["path"], "/v1/orders?x=1");
    assert_eq!(seen(&echo, "host"), vec![w.upstream.addr.to_string()]);
    assert!(seen(&echo, "proxy-authorization").is_empty());
    let form = &w.issuer.token_requests()[0];
    assert_eq!(form.method, "post");
    assert_eq!(form.field("scope"), Some(SCOPE));
    assert_eq!(
        form.field("client_secret"),
        Some(SECRET),
        "trailing newline of the file dropped"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn absolute_form_proxy_requests_route_by_host() {
    let w = World::new().await;
    let via_proxy = reqwest::Client::builder()
        .proxy(reqwest::Proxy::http(w.tollgate.outbound_url("")).unwrap())
        .build()
        .unwrap();
    let res = via_proxy
        .get("http://orders.internal/v2/items")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let echo: Value = res.json().await.unwrap();
    assert_eq!(echo["path"], "/v2/items");
    assert!(bearer(&echo).starts_with("Bearer ey"));
    // The host in the target wins; an unknown one is not routed.
    let res = via_proxy
        .get("http://elsewhere.internal/v2/items")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn path_route_strips_its_prefix_and_keeps_the_upstream_base_path() {
    let w = World::new().await;
    let res = w
        .tollgate
        .outbound_get("/billing/invoices/7?page=2", "localhost")
        .await;
    assert_eq!(res.status(), 200);
    let echo: Value = res.json().await.unwrap();
    assert_eq!(echo["path"], "/api/invoices/7?page=2");
    let res = w.tollgate.outbound_get("/billingX/1", "localhost").await;
    assert_eq!(res.status(), 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_route_is_404_json_naming_host_and_path_and_path_tricks_are_400() {
    let w = World::new().await;
    let res = w.tollgate.outbound_get("/nothing/here", "unknown.internal").await;
    assert_eq!(res.status(), 404);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"], "no_route");
    assert_eq!(body["host"], "unknown.internal");
    assert_eq!(body["path"], "/nothing/here");
    let outbound = w.tollgate.outbound.unwrap();
    let (status, _) = crate::support::tollgate::raw_request(
        outbound,
        "GET /billing/..%2fadmin HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(w.upstream.requests(), 0, "nothing was forwarded");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_served_path_rules_hold_outbound_too() {
    let w = World::new().await;
    let outbound = w.tollgate.outbound.unwrap();
    let get = |path: &str| format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    for path in [
        "/billing/..;/admin",
        "/billing/%2e%2e;x/admin",
        "/billing/..%3b/admin",
        "/billing/%252e%252e/x",
    ] {
        let (status, body) = crate::support::tollgate::raw_request(outbound, &get(path)).await;
        assert_eq!(status, 400, "{path}: {body}");
    }
    assert_eq!(w.upstream.requests(), 0, "nothing was forwarded");
    // Any case, parameters ignored for matching, and the prefix stripped by segments.
    let (status, body) =
        crate::support::tollgate::raw_request(outbound, &get("/BILLING;v=2/invoices;x=1")).await;
    assert_eq!(status, 200, "{body}");
    let echo: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(echo["path"], "/api/invoices;x=1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_tls_is_verified_with_the_routes_ca_file() {
    let dir = tempfile::tempdir().unwrap();
    let pki = pki::generate(dir.path());
    let trusted = Upstream::start_tls(&pki.server_cert, &pki.server_key).await;
    let rogue = Upstream::start_tls(&pki.rogue_cert, &pki.rogue_key).await;
    let issuer = DevIssuer::start("127.0.0.1:0".parse().unwrap()).await.unwrap();
    issuer.add_client(CLIENT, ClientAuth::Secret(SECRET.into()), &[]);
    std::fs::write(dir.path().join("secret"), SECRET).unwrap();
    let yaml = format!(
        r#"admin:
  listen: 127.0.0.1:0
outbound:
  listen: 127.0.0.1:0
  credentials:
    api:
      token_url: {token_url}
      client_id: {CLIENT}
      scopes: ["{SCOPE}"]
      auth: {{ client_secret: {{ file: secret }} }}
  routes:
    - name: trusted
      match: {{ host: trusted.internal }}
      upstream: https://localhost:{trusted_port}
      credential: api
      ca_file: ca.pem
    - name: rogue
      match: {{ host: rogue.internal }}
      upstream: https://localhost:{rogue_port}
      credential: api
      ca_file: ca.pem
"#,
        token_url = issuer.token_url(),
        trusted_port = trusted.addr.port(),
        rogue_port = rogue.addr.port(),
    );
    let upstream = Upstream::start().await;
    let w = World::start(&yaml, dir, issuer, upstream).await;
    let get = |host: &'static str| {
        w.http
            .get(w.tollgate.outbound_url("/secure"))
            .header("host", host)
            .send()
    };
    let res = get("trusted.internal").await.unwrap();
    assert_eq!(res.status(), 200);
    let echo: Value = res.json().await.unwrap();
    assert!(bearer(&echo).starts_with("Bearer ey"));
    let res = get("rogue.internal").await.unwrap();
    assert_eq!(res.status(), 502, "a certificate the CA did not sign is refused");
    assert_eq!(rogue.requests(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_tunnels_are_refused_with_a_hint() {
    let w = World::new().await;
    let (status, body) = crate::support::tollgate::raw_request(
        w.tollgate.outbound.unwrap(),
        "CONNECT orders.internal:443 HTTP/1.1\r\nHost: orders.internal:443\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(status, 405, "{body}");
    assert!(body.contains("connect_not_supported"), "{body}");
    assert_eq!(w.upstream.requests(), 0);
}

/// An upgrade through outbound carries the credential's token and then tunnels bytes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn protocol_upgrades_pass_through_outbound_with_the_token() {
    use crate::support::upgrade::{EchoUpgrade, upgrade_and_echo};
    let echo = EchoUpgrade::start().await;
    let issuer = DevIssuer::start("127.0.0.1:0".parse().unwrap()).await.unwrap();
    issuer.add_client(CLIENT, ClientAuth::Secret(SECRET.into()), &[]);
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("secret"), SECRET).unwrap();
    let upstream = Upstream::start().await;
    let yaml = super::config(&issuer, &upstream, "client_secret: { file: secret }").replace(
        &format!("upstream: http://{}\n", upstream.addr),
        &format!("upstream: http://{}\n", echo.addr),
    );
    let w = World::start(&yaml, dir, issuer, upstream).await;
    let (head, echoed) = upgrade_and_echo(
        w.tollgate.outbound.unwrap(),
        "orders.internal",
        "Authorization: Bearer app-made-up\r\n",
        "hello",
    )
    .await;
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    assert!(head.contains("x-seen-authorization: Bearer eyJhb"), "{head}");
    assert_eq!(echoed, "hello");
}
