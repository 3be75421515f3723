//! Properties of the whole decision (`decide`), over one policy and a key set loaded from
//! a `jwks_file`, as the sidecar loads it.

use std::sync::LazyLock;

use http::{HeaderMap, HeaderValue, Method};
use proptest::prelude::*;
use serde_json::json;

use super::*;
use crate::config::{Config, ProcessEnv};
use crate::devissuer::SigningKey;
use crate::served_path::ServedPath;

const POLICY: &str = r#"
issuers:
  local:
    issuer: https://issuer.test
    jwks_file: keys.json
    audiences: ["api://test"]
    algorithms: [ES256]
inbound:
  listen: 127.0.0.1:0
  upstream: http://127.0.0.1:8080
  mode: MODE
  forward_claims: { X-Client-Id: azp, X-Client-Roles: roles }
  routes:
    - match: { path_prefix: /healthz }
      allow_anonymous: true
    - name: orders-read
      match: { path_prefix: /orders, methods: [GET, HEAD] }
      require: { roles_any: [Orders.Read] }
    - name: orders-write
      match: { path_prefix: /orders }
      require: { roles_all: [Orders.Write] }
    - name: admin
      match: { path_prefix: /admin }
      require: { roles_any: [Admin] }
    - match: { path_prefix: /public }
      allow_anonymous: true
"#;

const ROLES: &[&str] = &["Orders.Read", "Orders.Write", "Admin"];

/// Path pieces: route names, case and Unicode look-alikes, dot-segments, encodings.
const ATOMS: &[&str] = &[
    "orders", "Orders", "admin", "\u{212A}", "public", "healthz", "7", ".", "..", "%2e", "%2E%2e", "%2f",
    "%5c", "%3b", ";x=1", "%252e", "%u002e", "%00", "%0a", "%ff", "%41", " ", "\\",
];

struct Fixture {
    enforce: Snapshot,
    audit: Snapshot,
    key: SigningKey,
    runtime: tokio::runtime::Runtime,
}

static FIXTURE: LazyLock<Fixture> = LazyLock::new(|| {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let key = SigningKey::generate_es256("k1").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let jwks = json!({ "keys": [key.jwk()] }).to_string();
    std::fs::write(dir.path().join("keys.json"), jwks).unwrap();
    let config =
        |mode: &str| Config::from_yaml(&POLICY.replace("MODE", mode), dir.path(), &ProcessEnv).unwrap();
    let (enforce, audit) = (config("enforce"), config("audit"));
    let metrics = crate::metrics::Metrics::new().unwrap();
    let http = crate::idp::client().unwrap();
    let issuer = &enforce.issuers[0];
    let cache = KeyCache::new(&issuer.name, issuer.keys.clone(), http, metrics, None);
    runtime.block_on(cache.refresh()).unwrap();
    let keys = vec![Arc::new(cache)];
    let snapshot = |config: Config| {
        let inbound = config.inbound.unwrap();
        Snapshot {
            upstream: Upstream::from_url(&inbound.upstream).unwrap(),
            inbound,
            issuers: config.issuers,
            keys: keys.clone(),
        }
    };
    Fixture {
        enforce: snapshot(enforce),
        audit: snapshot(audit),
        key,
        runtime,
    }
});

/// A valid token (right issuer, audience, key, time) with `roles`.
fn token(roles: &[&str]) -> String {
    let now = crate::clock::unix_now();
    let claims = json!({
        "iss": "https://issuer.test", "aud": "api://test", "azp": "c1", "roles": roles,
        "iat": now, "nbf": now, "exp": now + 3600,
    });
    FIXTURE.key.sign(&claims)
}

fn headers(token: &str, extra: &[(&'static str, &'static str)]) -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert(
        http::header::AUTHORIZATION,
        HeaderValue::from_str(&format!("Bearer {token}")).unwrap(),
    );
    for (name, value) in extra {
        h.append(*name, HeaderValue::from_static(value));
    }
    h
}

fn decide_with(snapshot: &Snapshot, headers: &HeaderMap, method: &Method, path: &str) -> String {
    let decision = FIXTURE
        .runtime
        .block_on(decide(snapshot.judge(), headers, method, path));
    summary(&decision)
}

/// A decision in words, to compare two of them.
fn summary(decision: &Decision<'_>) -> String {
    let route = decision.route.map_or("-", |r| r.label.as_str());
    match &decision.outcome {
        Outcome::Allow { identity, client_id } => format!("{route} allow {identity:?} {client_id:?}"),
        Outcome::Anonymous => format!("{route} anonymous"),
        Outcome::Refuse(refusal) => format!("{route} refuse {}: {refusal}", refusal.reason()),
    }
}

fn raw_path() -> impl Strategy<Value = String> {
    let segment = prop::collection::vec(prop::sample::select(ATOMS), 0..3).prop_map(|a| a.concat());
    (prop::collection::vec(segment, 1..4), any::<bool>()).prop_map(|(segments, absolute)| {
        let path = segments.join("/");
        if absolute { format!("/{path}") } else { path }
    })
}

fn method() -> impl Strategy<Value = Method> {
    prop::sample::select(vec![Method::GET, Method::HEAD, Method::POST, Method::DELETE])
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    /// Audit only changes what is done with a decision (forward and log instead of refuse),
    /// never the decision.
    #[test]
    fn audit_and_enforce_reach_the_same_decision(
        method in method(),
        path in raw_path(),
        roles in prop::sample::subsequence(ROLES, 0..=3),
        extra in prop::sample::subsequence(
            vec![("x-http-method-override", "DELETE"), ("x_client_id", "spoofed"), ("x-client-id", "spoofed")],
            0..=2,
        ),
    ) {
        let h = headers(&token(&roles), &extra);
        let f = &*FIXTURE;
        prop_assert_eq!(
            decide_with(&f.enforce, &h, &method, &path),
            decide_with(&f.audit, &h, &method, &path)
        );
    }

    /// With a token that meets every route, the served-path guard alone decides: a path it
    /// refuses is refused as a path, one it accepts is never refused as a path and is
    /// allowed on every route that requires a token.
    #[test]
    fn no_path_the_guard_refuses_is_ever_allowed(method in method(), path in raw_path()) {
        let h = headers(&token(ROLES), &[]);
        let snapshot = &FIXTURE.enforce;
        let decision = FIXTURE.runtime.block_on(decide(snapshot.judge(), &h, &method, &path));
        match ServedPath::parse(&path, snapshot.inbound.policy.path_case) {
            Err(e) => {
                prop_assert!(
                    matches!(&decision.outcome, Outcome::Refuse(Refusal::Path(p)) if *p == e),
                    "{} {:?}: {}", method, path, summary(&decision)
                );
                prop_assert!(decision.route.is_none());
            }
            Ok(_) => {
                let allowed = match decision.route.map(|r| &r.access) {
                    Some(Access::Require(_)) => matches!(decision.outcome, Outcome::Allow { .. }),
                    Some(Access::Anonymous) => matches!(decision.outcome, Outcome::Anonymous),
                    None => matches!(decision.outcome, Outcome::Refuse(Refusal::NoRoute)),
                };
                prop_assert!(allowed, "{} {:?}: {}", method, path, summary(&decision));
            }
        }
    }
}

#[test]
fn a_valid_token_is_allowed_and_a_refused_path_is_not() {
    let h = headers(&token(&["Orders.Read"]), &[]);
    let f = &*FIXTURE;
    assert!(decide_with(&f.enforce, &h, &Method::GET, "/orders/7").starts_with("orders-read allow"));
    assert!(
        decide_with(&f.enforce, &h, &Method::GET, "/public/../orders/7").starts_with("- refuse bad_path")
    );
}

/// A remembered token skips only what depends on its bytes (decode, signature): the same
/// key caches under changed issuer settings (as after a reload that kept the key source)
/// judge it by the new settings.
#[test]
fn a_remembered_token_is_judged_again_by_the_current_issuer_settings() {
    let f = &*FIXTURE;
    let h = headers(&token(&["Orders.Read"]), &[]);
    for _ in 0..2 {
        assert!(decide_with(&f.enforce, &h, &Method::GET, "/orders/7").starts_with("orders-read allow"));
    }
    let changed = |change: fn(&mut Issuer)| {
        let mut issuers = f.enforce.issuers.clone();
        change(&mut issuers[0]);
        Snapshot {
            inbound: f.enforce.inbound.clone(),
            issuers,
            keys: f.enforce.keys.clone(),
            upstream: f.enforce.upstream.clone(),
        }
    };
    type Change = fn(&mut Issuer);
    let cases: [(Change, &str); 3] = [
        (|i| i.audiences = vec!["api://other".into()], "refuse audience"),
        (
            |i| i.algorithms = vec![jsonwebtoken::Algorithm::RS256],
            "refuse alg_not_allowed",
        ),
        (
            |i| i.issuer = crate::config::IssuerPattern::Exact("https://other.test".into()),
            "refuse issuer",
        ),
    ];
    for (change, expected) in cases {
        let decision = decide_with(&changed(change), &h, &Method::GET, "/orders/7");
        assert!(decision.contains(expected), "{expected}: {decision}");
    }
    assert!(decide_with(&f.enforce, &h, &Method::GET, "/orders/7").starts_with("orders-read allow"));
}

/// A reload keeps an issuer's key cache (its keys and remembered tokens) unless what the
/// cache is built from changed: the key source, or how many tokens it remembers.
#[test]
fn key_caches_are_kept_unless_their_size_or_source_changes() {
    let dir = tempfile::tempdir().unwrap();
    let config = |extra: &str| {
        let yaml = POLICY.replace("MODE", "enforce").replace(
            "    algorithms: [ES256]\n",
            &format!("    algorithms: [ES256]\n{extra}"),
        );
        Config::from_yaml(&yaml, dir.path(), &ProcessEnv).unwrap()
    };
    let metrics = crate::metrics::Metrics::new().unwrap();
    let http = crate::idp::client().unwrap();
    let changed = std::collections::HashSet::new();
    let cx = BuildContext {
        metrics: &metrics,
        http: &http,
        readiness: None,
        changed_files: &changed,
    };
    let (first, fresh) = key_caches(&config(""), &[], &cx);
    assert_eq!(fresh.len(), 1);
    assert_eq!(first[0].remembered_slots(), 4096);

    let (same, fresh) = key_caches(&config(""), &first, &cx);
    assert!(fresh.is_empty() && Arc::ptr_eq(&same[0], &first[0]));

    let (smaller, fresh) = key_caches(&config("    remembered_tokens: 64\n"), &first, &cx);
    assert_eq!(fresh.len(), 1);
    assert!(!Arc::ptr_eq(&smaller[0], &first[0]));
    assert_eq!(smaller[0].remembered_slots(), 64);

    let (none, _) = key_caches(&config("    remembered_tokens: 0\n"), &smaller, &cx);
    assert_eq!(none[0].remembered_slots(), 0);
}
