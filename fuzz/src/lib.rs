//! What the fuzz targets share: one inbound policy over a fixed key set, built once per
//! process the way the sidecar builds it (`Config::from_yaml`, a `KeyCache` over a
//! `jwks_file`), and the properties every inbound decision must have.

use std::future::Future;
use std::sync::{Arc, LazyLock};

use http::{HeaderMap, Method, header};
use jsonwebtoken::Algorithm;
use serde_json::{Value, json};
use tollgate::config::{Access, Config, Env};
use tollgate::devissuer::SigningKey;
use tollgate::inbound::jwks::KeyCache;
use tollgate::inbound::{Decision, Outcome, Refusal, Snapshot, policy, served_request};
use tollgate::served_path::ServedPath;

/// The tokens under `corpus/token/seed-*` were signed with this key's private half, which
/// was not kept: they verify until 2100. Valid tokens of any shape come from `sign:`
/// inputs instead (see `fuzz_targets/token.rs`), signed with keys made at start-up.
pub const SEED_JWK: &str = r#"{"kty":"EC","crv":"P-256","use":"sig","alg":"ES256","kid":"seed-es256","x":"QwgUQMUw1a04PMC0BqX3ewM3isVyLOr9s_jgD3pDk-g","y":"05r55iJcidacxM_5YtW4PDeKB60cjNC_a90t1tI_1H0"}"#;

pub const TENANT: &str = "7ff95b15-dc21-4ba6-bc92-824856578fc1";
pub const CLIENT: &str = "2b50a014-f353-4c10-aace-024f19a55569";

/// The policy every `token` input is decided with. `{jwks}` and `{settings}` are filled in.
const POLICY: &str = r#"
issuers:
  entra:
    issuer: https://login.microsoftonline.com/{tenantid}/v2.0
    tenants: ["7ff95b15-dc21-4ba6-bc92-824856578fc1"]
    jwks_file: "{jwks}"
    audiences: ["api://fuzz"]
    algorithms: [RS256, ES256]
  local:
    issuer: https://issuer.test
    jwks_file: "{jwks}"
    audiences: ["fuzz"]
    algorithms: [ES256]
    leeway_seconds: 0
inbound:
  listen: 127.0.0.1:0
  upstream: http://127.0.0.1:8080
{settings}
  forward_claims:
    X-Client-Id: azp
    X-Client-Roles: roles
    X-Tenant-Id: tid
    X_User: sub
    X-Scopes: scope
  routes:
    - match: { path_prefix: /healthz }
      allow_anonymous: true
    - name: orders-read
      match: { path_prefix: /orders, methods: [GET, HEAD] }
      require: { roles_any: [Orders.Read] }
    - name: orders-write
      match: { path_prefix: /Orders, methods: [POST, PUT, PATCH, DELETE] }
      require:
        roles_all: [Orders.Write]
        clients: ["2b50a014-f353-4c10-aace-024f19a55569"]
        azpacr: ["2"]
        tenants: ["7ff95b15-dc21-4ba6-bc92-824856578fc1"]
    - name: reports
      match: { path_prefix: /reports }
      require:
        any_of:
          - { roles_any: [Reports.Read], claims: { idtyp: app } }
          - { issuers: [local], scopes_any: [reports.read] }
    - name: admin
      match: { path_prefix: /admin/users }
      require: { issuers: [local], scopes_all: [admin, write], claims: { sub: [user-1, "7"] } }
    - name: public
      match: { path_prefix: /public }
      allow_anonymous: true
"#;

/// The same policy decided three ways: `audit` differs from `enforce` only in its mode;
/// `strict` reads requests the other way on every request-confusion setting.
pub struct Fixture {
    pub enforce: Snapshot,
    pub audit: Snapshot,
    pub strict: Snapshot,
    /// Signs `sign:` inputs; its public key is in the key set under `fuzz-es256`.
    pub es256: SigningKey,
    /// Signs `sign-rs256:` inputs; `fuzz-rs256` in the key set.
    pub rs256: SigningKey,
}

/// An environment where every variable is set but those named `UNSET_*`.
pub struct FixedEnv;

static RUNTIME: LazyLock<tokio::runtime::Runtime> = LazyLock::new(|| {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("tokio runtime")
});

static FIXTURE: LazyLock<Fixture> = LazyLock::new(build_fixture);

/// The process's fixture, built on first use.
pub fn fixture() -> &'static Fixture {
    &FIXTURE
}

/// Run a future to completion (inbound decisions await only to refresh keys from the
/// network, which a `jwks_file` issuer never does).
pub fn block_on<F: Future>(future: F) -> F::Output {
    RUNTIME.block_on(future)
}

fn build_fixture() -> Fixture {
    let es256 = SigningKey::generate_es256("fuzz-es256").expect("es256 key");
    let rs256 = SigningKey::generate_rsa("fuzz-rs256", Algorithm::RS256).expect("rs256 key");
    let seed: Value = serde_json::from_str(SEED_JWK).expect("seed jwk");
    let jwks = json!({ "keys": [seed, es256.jwk(), rs256.jwk()] });
    let dir = std::env::temp_dir();
    let path = dir.join(format!("tollgate-fuzz-{}.jwks.json", std::process::id()));
    std::fs::write(&path, jwks.to_string()).expect("write the key set");
    let config = |settings: &str| {
        let yaml = POLICY
            .replace("{jwks}", &path.display().to_string())
            .replace("{settings}", settings);
        Config::from_yaml(&yaml, &dir, &FixedEnv).unwrap_or_else(|e| panic!("fuzz policy: {e:?}"))
    };
    let enforce = config("  mode: enforce");
    let audit = config("  mode: audit");
    let strict = config(
        "  method_override: judge\n  underscore_headers: refuse\n  path_case: sensitive\n  max_token_bytes: 700",
    );
    let metrics = tollgate::metrics::Metrics::new().expect("metrics");
    let http = tollgate::idp::client().expect("http client");
    // Every signature is checked: a cache of verified tokens would make an input's
    // outcome depend on the inputs before it.
    let keys: Vec<Arc<KeyCache>> = enforce
        .issuers
        .iter()
        .map(|issuer| {
            let cache = KeyCache::new(
                &issuer.name,
                issuer.keys.clone(),
                http.clone(),
                metrics.clone(),
                None,
            )
            .remembering(0);
            block_on(cache.refresh()).expect("the key set loads");
            Arc::new(cache)
        })
        .collect();
    // Loaded: a `jwks_file` issuer reads its file again only when told to refresh.
    let _ = std::fs::remove_file(&path);
    let snapshot = |config: Config| {
        let inbound = config.inbound.expect("inbound");
        Snapshot {
            upstream: tollgate::proxy::Upstream::from_url(&inbound.upstream).expect("upstream"),
            inbound,
            issuers: config.issuers,
            keys: keys.clone(),
        }
    };
    Fixture {
        enforce: snapshot(enforce),
        audit: snapshot(audit),
        strict: snapshot(strict),
        es256,
        rs256,
    }
}

/// A decision in words, to compare two decisions.
pub fn summary(decision: &Decision<'_>) -> String {
    let route = decision.route.map_or("-", |r| r.label.as_str());
    match &decision.outcome {
        Outcome::Allow { identity, client_id } => format!("{route} allow {identity:?} {client_id:?}"),
        Outcome::Anonymous => format!("{route} anonymous"),
        Outcome::Refuse(refusal) => format!("{route} refuse {} {refusal}", refusal.reason()),
    }
}

/// What must hold of every inbound decision, whatever the request:
/// - a path the served-path guard refuses is refused as a path, before any route;
/// - the route is the one the served request (path, effective method) chooses;
/// - only a route that requires a token allows, with exactly one `Authorization` header,
///   and only `forward_claims` headers, whose values hold no control character;
/// - only an anonymous route lets a request through without one;
/// - every refusal renders (HTTP and gRPC) without panicking.
pub fn check_decision(
    snapshot: &Snapshot,
    headers: &HeaderMap,
    method: &Method,
    raw_path: &str,
    decision: &Decision<'_>,
) {
    let inbound = &snapshot.inbound.policy;
    let summary = || summary(decision);
    if let Err(e) = ServedPath::parse(raw_path, inbound.path_case) {
        assert!(
            matches!(&decision.outcome, Outcome::Refuse(Refusal::Path(p)) if *p == e),
            "{raw_path:?} is refused by the path guard ({e}) but decided {}",
            summary()
        );
        assert!(decision.route.is_none(), "{}", summary());
        return;
    }
    let expected = served_request::read(inbound, headers, method, raw_path)
        .ok()
        .and_then(|served| policy::find_route(&inbound.routes, &served.method, &served.path));
    let same = match (decision.route, expected) {
        (Some(a), Some(b)) => std::ptr::eq(a, b),
        (None, None) => true,
        _ => false,
    };
    assert!(same, "route differs from the served request's: {}", summary());
    match &decision.outcome {
        Outcome::Allow { identity, .. } => {
            let route = decision.route.expect("an allowed request has a route");
            assert!(matches!(route.access, Access::Require(_)), "{}", summary());
            assert_eq!(headers.get_all(header::AUTHORIZATION).iter().count(), 1);
            for (name, value) in identity {
                assert!(inbound.forward_claims.iter().any(|f| f.header == name));
                let text = std::str::from_utf8(value.as_bytes()).expect("claim values are UTF-8");
                assert!(!text.chars().any(char::is_control), "{}", summary());
            }
        }
        Outcome::Anonymous => {
            let access = decision.route.map(|r| &r.access);
            assert!(matches!(access, Some(Access::Anonymous)), "{}", summary());
        }
        Outcome::Refuse(refusal) => {
            assert!(!refusal.reason().is_empty());
            let _ = refusal.reply().render(false);
            let _ = refusal.reply().render(true);
        }
    }
}

// === impl FixedEnv ===

impl Env for FixedEnv {
    fn var(&self, name: &str) -> Option<String> {
        (!name.starts_with("UNSET_")).then(|| "value".to_string())
    }
}
