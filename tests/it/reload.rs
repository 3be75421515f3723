//! Hot reload against real listeners: a changed role is enforced within 2 s, broken files
//! keep the old policy, ConfigMap-style symlink swaps are noticed, reloads under load drop
//! nothing, routes-only reloads send nothing to the IdP, SIGHUP reloads the real binary.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use tollgate::devissuer::{ClientAuth, DevIssuer, app_claims};

use crate::support::tollgate::Tollgate;
use crate::support::upstream::Upstream;
use crate::support::{Running, free_port, get_when_up};

const AUD: &str = "api://reload-test";
const CLIENT: &str = "2b50a014-f353-4c10-aace-024f19a55569";
const TENANT: &str = "7ff95b15-dc21-4ba6-bc92-824856578fc1";

/// A config whose `/orders` route requires `role`, plus `extra_routes` (inbound) and an
/// outbound section with one credential when `outbound` is set.
fn yaml(issuer: &DevIssuer, upstream: &Upstream, role: &str, extra_routes: &str, outbound: bool) -> String {
    let mut y = format!(
        r#"admin:
  listen: 127.0.0.1:0
issuers:
  dev:
    issuer: {iss}
    discovery_url: {discovery}
    audiences: ["{AUD}"]
inbound:
  listen: 127.0.0.1:0
  upstream: http://{up}
  routes:
    - name: orders
      match: {{ path_prefix: /orders }}
      require: {{ roles_any: [{role}] }}
{extra_routes}"#,
        iss = issuer.issuer(),
        discovery = issuer.discovery_url(),
        up = upstream.addr,
    );
    if outbound {
        y.push_str(&format!(
            r#"outbound:
  listen: 127.0.0.1:0
  credentials:
    api:
      token_url: {token_url}
      client_id: {CLIENT}
      scopes: ["{AUD}/.default"]
      auth: {{ client_secret: {{ file: secret }} }}
  routes:
    - name: out-orders
      match: {{ host: orders.internal }}
      upstream: http://{up}
      credential: api
"#,
            token_url = issuer.token_url(),
            up = upstream.addr,
        ));
    }
    y
}

/// Write `text` the way editors do: a new file renamed over the old one.
fn replace(path: &Path, text: &str) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

struct Setup {
    issuer: DevIssuer,
    upstream: Upstream,
    dir: tempfile::TempDir,
    path: PathBuf,
}

async fn setup() -> Setup {
    let issuer = DevIssuer::start("127.0.0.1:0".parse().unwrap()).await.unwrap();
    issuer.add_client(
        CLIENT,
        ClientAuth::Secret("reload-secret".into()),
        &["Orders.Read"],
    );
    let upstream = Upstream::start().await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("secret"), "reload-secret").unwrap();
    let path = dir.path().join("tollgate.yaml");
    Setup {
        issuer,
        upstream,
        dir,
        path,
    }
}

fn token(issuer: &DevIssuer, roles: &[&str]) -> String {
    issuer.token(app_claims(AUD, CLIENT, "2", roles, TENANT))
}

async fn status(t: &Tollgate, token: &str) -> u16 {
    reqwest::Client::new()
        .get(t.url("/orders/1"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

/// Poll `metric` on the admin endpoint until it reaches `want` (bounded).
async fn wait_metric(t: &Tollgate, metric: &str, want: u64, limit: Duration) -> Duration {
    let start = Instant::now();
    loop {
        let text = t.metrics().await;
        let value = text
            .lines()
            .find(|l| l.starts_with(metric))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0) as u64;
        if value >= want {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < limit,
            "{metric} stayed at {value}, wanted {want}:\n{text}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_required_role_is_enforced_within_two_seconds() {
    let s = setup().await;
    std::fs::write(&s.path, yaml(&s.issuer, &s.upstream, "Orders.Read", "", false)).unwrap();
    let t = Tollgate::start_file(&s.path).await;
    let reader = token(&s.issuer, &["Orders.Read"]);
    let admin = token(&s.issuer, &["Orders.Admin"]);
    assert_eq!((status(&t, &reader).await, status(&t, &admin).await), (200, 403));

    replace(&s.path, &yaml(&s.issuer, &s.upstream, "Orders.Admin", "", false));
    let start = Instant::now();
    while status(&t, &admin).await != 200 {
        assert!(
            start.elapsed() < Duration::from_secs(2),
            "new role not enforced within 2 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(status(&t, &reader).await, 403);
    let metrics = t.metrics().await;
    assert!(metrics.contains("tollgate_config_generation 2"), "{metrics}");
    assert!(
        metrics.contains(r#"tollgate_config_reloads_total{result="ok"} 1"#),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_keeps_the_idle_upstream_connection() {
    let s = setup().await;
    std::fs::write(&s.path, yaml(&s.issuer, &s.upstream, "Orders.Read", "", false)).unwrap();
    let t = Tollgate::start_file(&s.path).await;
    let reader = token(&s.issuer, &["Orders.Read"]);
    for _ in 0..3 {
        assert_eq!(status(&t, &reader).await, 200);
    }
    assert_eq!(s.upstream.connections(), 1, "one upstream connection, reused");

    // A routes-only change: the new snapshot's upstream is the same host and port.
    let extra = "    - name: reports\n      match: { path_prefix: /reports }\n      require: { roles_any: [Reports.Read] }\n";
    replace(
        &s.path,
        &yaml(&s.issuer, &s.upstream, "Orders.Read", extra, false),
    );
    wait_metric(
        &t,
        r#"tollgate_config_reloads_total{result="ok"}"#,
        1,
        Duration::from_secs(3),
    )
    .await;
    for _ in 0..3 {
        assert_eq!(status(&t, &reader).await, 200);
    }
    assert_eq!(s.upstream.requests(), 6);
    assert_eq!(
        s.upstream.connections(),
        1,
        "the reload kept the idle upstream connection"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_syntax_error_or_an_unknown_key_keeps_the_old_policy_and_counts_an_error() {
    let s = setup().await;
    let good = yaml(&s.issuer, &s.upstream, "Orders.Read", "", false);
    std::fs::write(&s.path, &good).unwrap();
    let t = Tollgate::start_file(&s.path).await;
    let reader = token(&s.issuer, &["Orders.Read"]);

    replace(
        &s.path,
        &good.replace("routes:\n    - name: orders", "routes:\n  - name: [orders"),
    );
    wait_metric(
        &t,
        r#"tollgate_config_reloads_total{result="error"}"#,
        1,
        Duration::from_secs(3),
    )
    .await;
    assert_eq!(
        status(&t, &reader).await,
        200,
        "old policy still serving after a syntax error"
    );

    replace(&s.path, &good.replace("roles_any:", "roles_anyy:"));
    wait_metric(
        &t,
        r#"tollgate_config_reloads_total{result="error"}"#,
        2,
        Duration::from_secs(3),
    )
    .await;
    assert_eq!(
        status(&t, &reader).await,
        200,
        "old policy still serving after an unknown key"
    );
    let metrics = t.metrics().await;
    assert!(metrics.contains("tollgate_config_generation 1"), "{metrics}");

    // Identical content to what is applied: nothing happens.
    replace(&s.path, &good);
    tokio::time::sleep(Duration::from_millis(600)).await;
    let metrics = t.metrics().await;
    assert!(metrics.contains("tollgate_config_generation 1"), "{metrics}");
    assert!(
        metrics.contains(r#"tollgate_config_reloads_total{result="ok"} 0"#),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_configmap_style_data_symlink_swap_is_noticed() {
    use std::os::unix::fs::symlink;
    let s = setup().await;
    let root = s.dir.path();
    let first = root.join("..2026_11_23_10_00_00.000000001");
    std::fs::create_dir(&first).unwrap();
    std::fs::write(
        first.join("tollgate.yaml"),
        yaml(&s.issuer, &s.upstream, "Orders.Read", "", false),
    )
    .unwrap();
    symlink(first.file_name().unwrap(), root.join("..data")).unwrap();
    symlink("..data/tollgate.yaml", root.join("tollgate.yaml")).unwrap();
    let t = Tollgate::start_file(&root.join("tollgate.yaml")).await;
    let admin = token(&s.issuer, &["Orders.Admin"]);
    assert_eq!(status(&t, &admin).await, 403);

    // What the kubelet does: a new timestamped folder, a new ..data link renamed over the old.
    let second = root.join("..2026_11_23_10_05_00.000000002");
    std::fs::create_dir(&second).unwrap();
    std::fs::write(
        second.join("tollgate.yaml"),
        yaml(&s.issuer, &s.upstream, "Orders.Admin", "", false),
    )
    .unwrap();
    symlink(second.file_name().unwrap(), root.join("..data_tmp")).unwrap();
    std::fs::rename(root.join("..data_tmp"), root.join("..data")).unwrap();
    std::fs::remove_dir_all(&first).unwrap();

    let start = Instant::now();
    while status(&t, &admin).await != 200 {
        assert!(
            start.elapsed() < Duration::from_secs(3),
            "the ..data swap was not noticed"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_reloads_under_concurrent_load_fail_no_request() {
    let s = setup().await;
    std::fs::write(&s.path, yaml(&s.issuer, &s.upstream, "Orders.Read", "", false)).unwrap();
    let t = Arc::new(Tollgate::start_file(&s.path).await);
    let reader = token(&s.issuer, &["Orders.Read"]);
    let stop = Arc::new(AtomicBool::new(false));
    let (ok, failed) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..8 {
        let (t, reader, stop, ok, failed) = (
            t.clone(),
            reader.clone(),
            stop.clone(),
            ok.clone(),
            failed.clone(),
        );
        workers.spawn(async move {
            let http = reqwest::Client::new();
            let started = Instant::now();
            // Bounded: stops when told, after 30 s, or after 5000 requests.
            for _ in 0..5000 {
                if stop.load(Ordering::SeqCst) || started.elapsed() > Duration::from_secs(30) {
                    break;
                }
                match http.get(t.url("/orders/1")).bearer_auth(&reader).send().await {
                    Ok(res) if res.status() == 200 => ok.fetch_add(1, Ordering::SeqCst),
                    _ => failed.fetch_add(1, Ordering::SeqCst),
                };
            }
        });
    }
    for n in 1..=20u64 {
        let extra = format!(
            "    - name: extra-{n}\n      match: {{ path_prefix: /extra-{n} }}\n      allow_anonymous: true\n"
        );
        replace(
            &s.path,
            &yaml(&s.issuer, &s.upstream, "Orders.Read", &extra, false),
        );
        wait_metric(&t, "tollgate_config_generation", n + 1, Duration::from_secs(5)).await;
    }
    stop.store(true, Ordering::SeqCst);
    while workers.join_next().await.is_some() {}
    let (ok, failed) = (ok.load(Ordering::SeqCst), failed.load(Ordering::SeqCst));
    assert_eq!(failed, 0, "{failed} requests failed during reloads ({ok} ok)");
    assert!(ok > 100, "the load ran: {ok} requests");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_routes_only_reload_sends_nothing_to_the_identity_provider() {
    let s = setup().await;
    std::fs::write(&s.path, yaml(&s.issuer, &s.upstream, "Orders.Read", "", true)).unwrap();
    let t = Tollgate::start_file(&s.path).await;
    let (jwks, tokens) = (s.issuer.jwks_requests(), s.issuer.token_requests().len());
    assert_eq!((jwks, tokens), (1, 1));

    let extra = "    - name: health\n      match: { path_prefix: /healthz }\n      allow_anonymous: true\n";
    let changed = yaml(&s.issuer, &s.upstream, "Orders.Admin", extra, true).replace(
        "match: { host: orders.internal }",
        "match: { host: orders.internal, path_prefix: /v2 }",
    );
    replace(&s.path, &changed);
    wait_metric(&t, "tollgate_config_generation", 2, Duration::from_secs(3)).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(s.issuer.jwks_requests(), jwks, "no JWKS fetch");
    assert_eq!(s.issuer.token_requests().len(), tokens, "no token request");
    // The new routes serve with the old keys and token.
    assert_eq!(status(&t, &token(&s.issuer, &["Orders.Admin"])).await, 200);
    let res = t.outbound_get("/v2/x", "orders.internal").await;
    assert_eq!(res.status(), 200);

    // A changed credential is fetched while the reload builds, before it serves.
    replace(
        &s.path,
        &changed.replace(
            "scopes: [\"api://reload-test/.default\"]",
            "scopes: [\"api://other/.default\"]",
        ),
    );
    wait_metric(&t, "tollgate_config_generation", 3, Duration::from_secs(3)).await;
    assert_eq!(s.issuer.token_requests().len(), tokens + 1);
    assert_eq!(
        s.issuer.jwks_requests(),
        jwks,
        "issuers unchanged: still no JWKS fetch"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_reloads_the_running_binary() {
    let s = setup().await;
    let admin_addr = free_port();
    let text = yaml(&s.issuer, &s.upstream, "Orders.Read", "", false)
        .replacen("listen: 127.0.0.1:0", &format!("listen: {admin_addr}"), 1)
        .replace(
            "  listen: 127.0.0.1:0\n  upstream",
            &format!("  listen: {}\n  upstream", free_port()),
        );
    let text = format!("reload:\n  poll_interval_seconds: 3600\n{text}");
    std::fs::write(&s.path, &text).unwrap();
    let mut running = Running::start(&s.path);
    let metrics_url = format!("http://{admin_addr}/metrics");
    let mut body = get_when_up(&metrics_url).await.1;
    for _ in 0..200 {
        if get_when_up(&format!("http://{admin_addr}/readyz")).await.0 == 200 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(body.contains("tollgate_config_generation 1"), "{body}");

    // Same content: SIGHUP re-reads, finds nothing new, and the process lives on.
    running.signal("HUP");
    tokio::time::sleep(Duration::from_millis(500)).await;
    body = get_when_up(&metrics_url).await.1;
    assert!(body.contains("tollgate_config_generation 1"), "{body}");

    std::fs::write(&s.path, text.replace("Orders.Read", "Orders.Admin")).unwrap();
    running.signal("HUP");
    let start = Instant::now();
    while !body.contains("tollgate_config_generation 2") {
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "SIGHUP did not reload:\n{body}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
        body = get_when_up(&metrics_url).await.1;
    }
    running.signal("TERM");
    assert_eq!(running.wait_exit(Duration::from_secs(10)).await, Some(0));
    let mut logs = String::new();
    if let Some(mut err) = running.child.stderr.take() {
        use std::io::Read;
        err.read_to_string(&mut logs).unwrap();
    }
    assert!(logs.contains("SIGHUP: reloading the configuration"), "{logs}");
    assert!(logs.contains("configuration reloaded"), "{logs}");
    assert!(logs.contains("inbound routes: ~orders"), "{logs}");
}

/// Files the config names are followed: a rewritten `jwks_file` brings its new keys.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_jwks_file_is_reloaded() {
    use jsonwebtoken::Algorithm;
    use tollgate::devissuer::SigningKey;
    let s = setup().await;
    let (old, new) = (
        SigningKey::generate_rsa("old", Algorithm::RS256).unwrap(),
        SigningKey::generate_rsa("new", Algorithm::RS256).unwrap(),
    );
    let keys = s.dir.path().join("keys.json");
    std::fs::write(&keys, serde_json::json!({ "keys": [old.jwk()] }).to_string()).unwrap();
    let text = format!(
        "admin:\n  listen: 127.0.0.1:0\nissuers:\n  static:\n    issuer: https://static.example\n    jwks_file: keys.json\n    audiences: [\"{AUD}\"]\ninbound:\n  listen: 127.0.0.1:0\n  upstream: http://{}\n  routes:\n    - match: {{ path_prefix: /orders }}\n      require: {{ issuers: [static] }}\n",
        s.upstream.addr
    );
    std::fs::write(&s.path, text).unwrap();
    let t = Tollgate::start_file(&s.path).await;
    let mut claims = app_claims(AUD, CLIENT, "2", &[], TENANT);
    claims["iss"] = "https://static.example".into();
    let (by_old, by_new) = (old.sign(&claims), new.sign(&claims));
    assert_eq!((status(&t, &by_old).await, status(&t, &by_new).await), (200, 401));

    replace(&keys, &serde_json::json!({ "keys": [new.jwk()] }).to_string());
    let start = Instant::now();
    while status(&t, &by_new).await != 200 {
        assert!(
            start.elapsed() < Duration::from_secs(3),
            "the new jwks_file was not loaded"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        status(&t, &by_old).await,
        401,
        "the removed key no longer verifies"
    );
}

/// A rewritten route `ca_file` and inbound TLS certificate take effect without a restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changed_ca_file_and_inbound_certificate_are_reloaded() {
    let s = setup().await;
    let (a, b) = (s.dir.path().join("a"), s.dir.path().join("b"));
    std::fs::create_dir_all(&a).unwrap();
    std::fs::create_dir_all(&b).unwrap();
    let (pki_a, pki_b) = (
        crate::support::pki::generate(&a),
        crate::support::pki::generate(&b),
    );
    let secure = Upstream::start_tls(&pki_a.server_cert, &pki_a.server_key).await;
    // The route trusts CA b, which did not sign the upstream: refused.
    std::fs::copy(b.join("ca.pem"), s.dir.path().join("ca.pem")).unwrap();
    std::fs::copy(&pki_a.server_cert, s.dir.path().join("tls.crt")).unwrap();
    std::fs::copy(&pki_a.server_key, s.dir.path().join("tls.key")).unwrap();
    let text = format!(
        r#"admin:
  listen: 127.0.0.1:0
inbound:
  listen: 127.0.0.1:0
  tls: {{ cert_file: tls.crt, key_file: tls.key }}
  upstream: http://{up}
  routes:
    - match: {{ path_prefix: / }}
      allow_anonymous: true
outbound:
  listen: 127.0.0.1:0
  credentials:
    api:
      token_url: {token_url}
      client_id: {CLIENT}
      scopes: ["{AUD}/.default"]
      auth: {{ client_secret: {{ file: secret }} }}
  routes:
    - match: {{ host: secure.internal }}
      upstream: https://localhost:{port}
      credential: api
      ca_file: ca.pem
"#,
        up = s.upstream.addr,
        token_url = s.issuer.token_url(),
        port = secure.addr.port(),
    );
    std::fs::write(&s.path, text).unwrap();
    let t = Tollgate::start_file(&s.path).await;
    let outbound = || {
        reqwest::Client::new()
            .get(t.outbound_url("/x"))
            .header("host", "secure.internal")
            .send()
    };
    assert_eq!(outbound().await.unwrap().status(), 502);

    let client_trusting = |ca: &Path| {
        let pem = std::fs::read(ca).unwrap();
        reqwest::Client::builder()
            .tls_certs_only([reqwest::Certificate::from_pem(&pem).unwrap()])
            .build()
            .unwrap()
    };
    let inbound_url = format!("https://localhost:{}/ping", t.inbound.port());
    let trusts_a = client_trusting(&a.join("ca.pem"));
    let trusts_b = client_trusting(&b.join("ca.pem"));
    assert_eq!(trusts_a.get(&inbound_url).send().await.unwrap().status(), 200);
    assert!(trusts_b.get(&inbound_url).send().await.is_err());

    // Rotate: the route now trusts CA a; the listener now serves b's certificate.
    replace(
        &s.dir.path().join("ca.pem"),
        &std::fs::read_to_string(a.join("ca.pem")).unwrap(),
    );
    std::fs::copy(&pki_b.server_key, s.dir.path().join("tls.key.new")).unwrap();
    std::fs::copy(&pki_b.server_cert, s.dir.path().join("tls.crt.new")).unwrap();
    std::fs::rename(s.dir.path().join("tls.key.new"), s.dir.path().join("tls.key")).unwrap();
    std::fs::rename(s.dir.path().join("tls.crt.new"), s.dir.path().join("tls.crt")).unwrap();
    let start = Instant::now();
    loop {
        let routed = outbound().await.unwrap().status() == 200;
        let served = trusts_b
            .get(&inbound_url)
            .send()
            .await
            .is_ok_and(|r| r.status() == 200);
        if routed && served {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(3),
            "routed {routed}, served {served}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // A new connection (the pooled one keeps its handshake) gets the new certificate only.
    let fresh_a = client_trusting(&a.join("ca.pem"));
    assert!(
        fresh_a.get(&inbound_url).send().await.is_err(),
        "the old certificate is gone"
    );
}
