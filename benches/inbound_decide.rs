//! One inbound request's decision, as the listener makes it: path guard, route match,
//! bearer extraction, JWT parse, issuer selection, key lookup, signature, claims, policy,
//! identity headers. Keys are loaded once (as from a JWKS fetch); nothing is fetched here.

use std::sync::Arc;

use criterion::{Criterion, criterion_group, criterion_main};
use http::{HeaderMap, HeaderValue, Method};
use jsonwebtoken::Algorithm;
use serde_json::json;
use tollgate::config::{Config, KeySource, ProcessEnv};
use tollgate::devissuer::{SigningKey, app_claims};
use tollgate::inbound::jwks::KeyCache;
use tollgate::inbound::{Outcome, Snapshot, decide, policy};
use tollgate::metrics::Metrics;
use tollgate::proxy::Upstream;

const AUD: &str = "api://bench";
const TENANT: &str = "7ff95b15-dc21-4ba6-bc92-824856578fc1";
const CLIENT: &str = "2b50a014-f353-4c10-aace-024f19a55569";

struct Bench {
    /// Signatures remembered after the first check (the default).
    snapshot: Snapshot,
    /// Every signature checked: what a token costs the first time it is seen.
    uncached: Snapshot,
    rsa: SigningKey,
    ec: SigningKey,
    runtime: tokio::runtime::Runtime,
    _dir: tempfile::TempDir,
}

fn setup() -> Bench {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let rsa = SigningKey::generate_rsa("rsa-1", Algorithm::RS256).expect("rsa key");
    let ec = SigningKey::generate_es256("ec-1").expect("ec key");
    let dir = tempfile::tempdir().expect("tempdir");
    let jwks = dir.path().join("keys.json");
    std::fs::write(&jwks, json!({ "keys": [rsa.jwk(), ec.jwk()] }).to_string()).expect("write jwks");
    let yaml = format!(
        r#"issuers:
  entra:
    issuer: https://login.microsoftonline.com/{{tenantid}}/v2.0
    tenants: ["{TENANT}"]
    jwks_file: {jwks}
    audiences: ["{AUD}"]
    algorithms: [RS256, ES256]
inbound:
  listen: 127.0.0.1:0
  upstream: http://127.0.0.1:8080
  forward_claims: {{ X-Client-Id: azp, X-Client-Roles: roles, X-Tenant-Id: tid }}
  routes:
    - match: {{ path_prefix: /healthz }}
      allow_anonymous: true
    - name: orders-read
      match: {{ path_prefix: /orders, methods: [GET] }}
      require: {{ roles_any: [Orders.Read] }}
    - name: orders-write
      match: {{ path_prefix: /orders, methods: [POST] }}
      require:
        roles_all: [Orders.Write]
        clients: ["{CLIENT}"]
        azpacr: ["2"]
        tenants: ["{TENANT}"]
"#,
        jwks = jwks.display()
    );
    let config = Config::from_yaml(&yaml, dir.path(), &ProcessEnv).expect("bench config");
    let inbound = config.inbound.clone().expect("inbound");
    let metrics = Metrics::new().expect("metrics");
    let http = tollgate::idp::client().expect("http client");
    let caches = |remember: bool| -> Vec<Arc<KeyCache>> {
        config
            .issuers
            .iter()
            .map(|i| {
                let cache = KeyCache::new(&i.name, i.keys.clone(), http.clone(), metrics.clone(), None);
                let cache = if remember { cache } else { cache.remembering(0) };
                runtime.block_on(cache.refresh()).expect("keys load");
                Arc::new(cache)
            })
            .collect()
    };
    let keys = caches(true);
    let uncached_keys = caches(false);
    assert!(matches!(config.issuers[0].keys, KeySource::JwksFile(_)));
    let upstream = Upstream::from_url(&inbound.upstream).expect("upstream");
    let uncached = Snapshot {
        inbound: inbound.clone(),
        issuers: config.issuers.clone(),
        keys: uncached_keys,
        upstream: upstream.clone(),
    };
    let snapshot = Snapshot {
        inbound,
        issuers: config.issuers,
        keys,
        upstream,
    };
    Bench {
        snapshot,
        uncached,
        rsa,
        ec,
        runtime,
        _dir: dir,
    }
}

fn headers(token: &str) -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert(
        http::header::AUTHORIZATION,
        HeaderValue::from_str(&format!("Bearer {token}")).expect("header"),
    );
    h
}

fn token(key: &SigningKey, roles: &[&str]) -> String {
    let mut claims = app_claims(AUD, CLIENT, "2", roles, TENANT);
    claims["iss"] = json!(format!("https://login.microsoftonline.com/{TENANT}/v2.0"));
    key.sign(&claims)
}

fn outcome_name(o: &Outcome) -> &'static str {
    match o {
        Outcome::Allow { .. } => "allow",
        Outcome::Anonymous => "anonymous",
        Outcome::Refuse(_) => "refuse",
    }
}

fn inbound_decide(c: &mut Criterion) {
    let b = setup();
    let get = Method::GET;
    let post = Method::POST;
    let rs = headers(&token(&b.rsa, &["Orders.Read", "Orders.Write"]));
    let es = headers(&token(&b.ec, &["Orders.Read", "Orders.Write"]));
    let refused = headers(&token(&b.rsa, &["Orders.Read"]));
    let forged = headers(&forge(&token(&b.rsa, &["Orders.Write"])));
    let none = HeaderMap::new();
    let cases = [
        ("first_sight/rs256_allow", &b.uncached, &rs, &post, "allow"),
        ("first_sight/es256_allow", &b.uncached, &es, &post, "allow"),
        (
            "first_sight/rs256_forged_signature",
            &b.uncached,
            &forged,
            &post,
            "refuse",
        ),
        ("seen_before/rs256_allow", &b.snapshot, &rs, &post, "allow"),
        ("seen_before/es256_allow", &b.snapshot, &es, &post, "allow"),
        (
            "seen_before/rs256_policy_refused",
            &b.snapshot,
            &refused,
            &post,
            "refuse",
        ),
        (
            "seen_before/rs256_forged_signature",
            &b.snapshot,
            &forged,
            &post,
            "refuse",
        ),
        ("no_token", &b.snapshot, &none, &get, "refuse"),
    ];
    let mut group = c.benchmark_group("inbound_decide");
    for (name, snapshot, h, method, expect) in cases {
        let got = b
            .runtime
            .block_on(decide(snapshot.judge(), h, method, "/orders/7?x=1"));
        assert_eq!(outcome_name(&got.outcome), expect, "{name}");
        group.bench_function(name, |bench| {
            bench.iter(|| {
                let d = b.runtime.block_on(decide(
                    snapshot.judge(),
                    std::hint::black_box(h),
                    method,
                    "/orders/7?x=1",
                ));
                std::hint::black_box(outcome_name(&d.outcome))
            })
        });
    }
    group.finish();

    // The policy step alone, on already-verified claims.
    let claims = match app_claims(AUD, CLIENT, "2", &["Orders.Read", "Orders.Write"], TENANT) {
        serde_json::Value::Object(m) => tollgate::inbound::jwt::Claims::from(m),
        _ => unreachable!("app_claims is an object"),
    };
    let route = policy::find_route(
        &b.snapshot.inbound.policy.routes,
        &post,
        &tollgate::served_path::ServedPath::parse("/orders/7", Default::default()).expect("path"),
    )
    .expect("route");
    let tollgate::config::Access::Require(requirement) = &route.access else {
        unreachable!("orders-write requires a token")
    };
    let issuer = tollgate::config::IssuerId(0);
    let name = |_| "entra".to_string();
    c.bench_function("policy_evaluate_only", |bench| {
        bench.iter(|| policy::evaluate(requirement, issuer, std::hint::black_box(&claims), &name).is_ok())
    });
}

/// Flip one character in the middle of the signature.
fn forge(token: &str) -> String {
    let mut bytes = token.as_bytes().to_vec();
    let i = bytes.len() - 10;
    bytes[i] = if bytes[i] == b'A' { b'B' } else { b'A' };
    String::from_utf8(bytes).expect("ascii")
}

criterion_group!(benches, inbound_decide);
criterion_main!(benches);
