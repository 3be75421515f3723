//! The decision listener as a proxy sees it: one question over a kept-alive loopback
//! connection, a repeated RS256 token, a role + client + azpacr policy. Envoy gRPC
//! (`Authorization/Check`), Envoy HTTP (`/ext_authz/…`) and forward-auth (`/auth`); the
//! same decision without any transport is `inbound_decide/seen_before/rs256_allow`.

use criterion::{Criterion, criterion_group, criterion_main};
use envoy_types::ext_authz::v3::pb::CheckRequest;
use envoy_types::pb::envoy::service::auth::v3::AttributeContext;
use envoy_types::pb::envoy::service::auth::v3::attribute_context::{HttpRequest, Request};
use envoy_types::pb::envoy::service::auth::v3::authorization_client::AuthorizationClient;
use jsonwebtoken::Algorithm;
use serde_json::json;
use tollgate::config::{Config, ProcessEnv};
use tollgate::devissuer::{SigningKey, app_claims};

const AUD: &str = "api://bench";
const TENANT: &str = "7ff95b15-dc21-4ba6-bc92-824856578fc1";
const CLIENT: &str = "2b50a014-f353-4c10-aace-024f19a55569";

fn decision(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let key = SigningKey::generate_rsa("rsa-1", Algorithm::RS256).expect("rsa key");
    let dir = tempfile::tempdir().expect("tempdir");
    let jwks = dir.path().join("keys.json");
    std::fs::write(&jwks, json!({ "keys": [key.jwk()] }).to_string()).expect("write jwks");
    let yaml = format!(
        "issuers:\n  entra:\n    issuer: https://login.microsoftonline.com/{TENANT}/v2.0\n    jwks_file: {jwks}\n    audiences: [\"{AUD}\"]\ndecision:\n  listen: 127.0.0.1:0\n  forward_claims: {{ X-Client-Id: azp, X-Client-Roles: roles }}\n  routes:\n    - name: orders-write\n      match: {{ path_prefix: /orders, methods: [POST] }}\n      require: {{ roles_all: [Orders.Write], clients: [\"{CLIENT}\"], azpacr: [\"2\"] }}\n",
        jwks = jwks.display()
    );
    let config = Config::from_yaml(&yaml, dir.path(), &ProcessEnv).expect("bench config");
    let (_stop, shutdown) = tollgate::server::shutdown_channel();
    let started = runtime
        .block_on(tollgate::sidecar::start(config, shutdown))
        .expect("start");
    let addr = started.decision.expect("decision listener");
    runtime
        .block_on(started.readiness.wait(std::time::Duration::from_secs(10)))
        .expect("ready");
    let mut claims = app_claims(AUD, CLIENT, "2", &["Orders.Write"], TENANT);
    claims["iss"] = json!(format!("https://login.microsoftonline.com/{TENANT}/v2.0"));
    let bearer = format!("Bearer {}", key.sign(&claims));

    let http = reqwest::Client::new();
    let mut group = c.benchmark_group("decision");
    group.bench_function("forward_auth_http", |b| {
        b.iter(|| {
            runtime.block_on(async {
                let res = http
                    .get(format!("http://{addr}/auth"))
                    .header("authorization", &bearer)
                    .header("x-original-method", "POST")
                    .header("x-original-uri", "/orders/7")
                    .send()
                    .await
                    .expect("auth");
                assert_eq!(res.status(), 200);
            })
        })
    });
    group.bench_function("envoy_http", |b| {
        b.iter(|| {
            runtime.block_on(async {
                let res = http
                    .post(format!("http://{addr}/ext_authz/orders/7"))
                    .header("authorization", &bearer)
                    .send()
                    .await
                    .expect("ext_authz");
                assert_eq!(res.status(), 200);
            })
        })
    });
    let mut client = runtime
        .block_on(AuthorizationClient::connect(format!("http://{addr}")))
        .expect("connect");
    let request = CheckRequest {
        attributes: Some(AttributeContext {
            request: Some(Request {
                http: Some(HttpRequest {
                    method: "POST".into(),
                    path: "/orders/7".into(),
                    headers: [("authorization".to_string(), bearer.clone())]
                        .into_iter()
                        .collect(),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        }),
    };
    group.bench_function("envoy_grpc_check", |b| {
        b.iter(|| {
            runtime.block_on(async {
                let res = client.check(request.clone()).await.expect("check").into_inner();
                assert_eq!(res.status.map(|s| s.code), Some(0));
            })
        })
    });
    group.finish();
}

criterion_group!(benches, decision);
criterion_main!(benches);
