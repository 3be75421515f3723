//! Every refusal the contract lists (400, 401, 403, 404, 405, 431, 502, 503, 504), on the
//! listener that gives it: a JSON body with a string `error` and a string
//! `error_description`, and never the token the request carried.

use serde_json::Value;
use tollgate::devissuer::{Behaviour, DevIssuer, app_claims};

use crate::inbound::{AUD, CERT_CLIENT, TENANT, World as Inbound};
use crate::outbound::World as Outbound;
use crate::support::tollgate::{Tollgate, raw_request};

/// One request written by hand, with `Authorization: Bearer token`.
async fn send(
    addr: std::net::SocketAddr,
    method: &str,
    path: &str,
    token: &str,
    extra: &str,
) -> (u16, String) {
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: orders.internal\r\nAuthorization: Bearer {token}\r\n{extra}Connection: close\r\n\r\n"
    );
    raw_request(addr, &request).await
}

fn assert_shape(what: &str, status: u16, want: u16, body: &str, token: &str) {
    assert_eq!(status, want, "{what}: {body}");
    let json: Value = serde_json::from_str(body).unwrap_or_else(|_| panic!("{what}: not JSON: {body}"));
    assert!(
        json["error"].as_str().is_some_and(|e| !e.is_empty()),
        "{what}: {body}"
    );
    assert!(json["error_description"].is_string(), "{what}: {body}");
    for part in token.split('.').filter(|p| p.len() > 8) {
        assert!(!body.contains(part), "{what}: the token reached the body");
    }
    println!("{want} {what}: {}", json["error"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_refusal_has_an_error_and_a_description_and_never_the_token() {
    let w = Inbound::new().await;
    let reader = w.token(CERT_CLIENT, "2", &["Orders.Read"]);
    let nobody = w.token(CERT_CLIENT, "2", &[]);
    let inbound = w.tollgate.inbound;

    let (s, b) = send(inbound, "GET", "/orders/../admin", &reader, "").await;
    assert_shape("bad path", s, 400, &b, &reader);
    let (s, b) = send(
        inbound,
        "GET",
        "/orders/1",
        &reader,
        "X-HTTP-Method-Override: DELETE\r\n",
    )
    .await;
    assert_shape("method override", s, 400, &b, &reader);
    let (s, b) = raw_request(
        inbound,
        "GET /orders/1 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert_shape("no token", s, 401, &b, "");
    let mut expired = w.claims();
    expired["exp"] = serde_json::json!(expired["iat"].as_i64().unwrap() - 3600);
    let expired = w.issuer.signing_key().sign(&expired);
    let (s, b) = send(inbound, "GET", "/orders/1", &expired, "").await;
    assert_shape("expired token", s, 401, &b, &expired);
    let (s, b) = send(inbound, "GET", "/orders/1", &nobody, "").await;
    assert_shape("missing role", s, 403, &b, &nobody);
    let big = format!("X-Big: {}\r\n", "a".repeat(70 * 1024));
    let (s, b) = send(inbound, "GET", "/orders/1", &reader, &big).await;
    assert_shape("oversized head", s, 431, &b, &reader);
    let (s, b) = send(inbound, "GET", "/slow", &reader, "").await;
    assert_shape("slow upstream", s, 504, &b, &reader);
    let (s, b) = raw_request(
        w.tollgate.admin,
        "POST /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert_shape("admin method", s, 405, &b, "");
    let (s, b) = raw_request(
        w.tollgate.admin,
        "GET /nope HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert_shape("admin path", s, 404, &b, "");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_down_and_keys_unavailable_refusals_have_the_same_shape() {
    let issuer = DevIssuer::start("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let token = issuer.token(app_claims(AUD, CERT_CLIENT, "2", &["Orders.Read"], TENANT));
    let dead = crate::support::free_port();
    // The upstream is a port nobody listens on: 502.
    let yaml = format!(
        "issuers:\n  dev:\n    issuer: {iss}\n    discovery_url: {disc}\n    audiences: [\"{AUD}\"]\nadmin:\n  listen: 127.0.0.1:0\ninbound:\n  listen: 127.0.0.1:0\n  upstream: http://{dead}\n  routes:\n    - match: {{ path_prefix: / }}\n      require: {{ roles_any: [Orders.Read] }}\n",
        iss = issuer.issuer(),
        disc = issuer.discovery_url(),
    );
    let t = Tollgate::start(&yaml).await;
    let (s, b) = send(t.inbound, "GET", "/orders", &token, "").await;
    assert_shape("upstream down", s, 502, &b, &token);
    // The issuer's keys cannot be fetched: 503.
    let yaml = yaml.replace(
        &issuer.discovery_url(),
        &format!("http://{dead}/.well-known/openid-configuration"),
    );
    let t = Tollgate::start_in(&yaml, std::path::Path::new("/")).await;
    let (s, b) = send(t.inbound, "GET", "/orders", &token, "").await;
    assert_shape("keys unavailable", s, 503, &b, &token);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outbound_refusals_have_the_same_shape() {
    let w = Outbound::new().await;
    let outbound = w.tollgate.outbound.unwrap();
    let app_token = "eyJhbGciOiJub25lIn0.eyJzdWIiOiJhcHAtc2VjcmV0LXZhbHVlIn0.c2lnbmF0dXJlLXNlY3JldA";
    let (s, b) = raw_request(
        outbound,
        &format!("GET /nothing HTTP/1.1\r\nHost: unknown.internal\r\nAuthorization: Bearer {app_token}\r\nConnection: close\r\n\r\n"),
    )
    .await;
    assert_shape("no route", s, 404, &b, app_token);
    let (s, b) = raw_request(
        outbound,
        "CONNECT orders.internal:443 HTTP/1.1\r\nHost: orders.internal:443\r\n\r\n",
    )
    .await;
    assert_shape("CONNECT", s, 405, &b, "");
    let (s, b) = send(outbound, "GET", "/v1/..;/x", app_token, "").await;
    assert_shape("bad path", s, 400, &b, app_token);

    let failing = Outbound::with_behaviour(
        Behaviour {
            fail_with: Some(401),
            ..Behaviour::default()
        },
        false,
    )
    .await;
    let res = failing.get("/v1/orders").await;
    let status = res.status().as_u16();
    let body = res.text().await.unwrap();
    assert_shape("no token to be had", status, 503, &body, "");
    assert!(
        !body.contains(crate::outbound::SECRET),
        "the client secret reached the body"
    );
}
