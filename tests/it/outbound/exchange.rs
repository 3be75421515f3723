//! Exchange credentials against the dev issuer's on-behalf-of and token-exchange grants:
//! the user's token is exchanged (secret and certificate client authentication), cached
//! per user (one exchange for many calls, never another user's token, expiry), refused
//! before the IdP when missing or expired, and a claims challenge reaches the app as 401.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};
use tollgate::devissuer::{Behaviour, ClientAuth, ClientCertificate, DEV_TENANT, DevIssuer};

use super::{CLIENT, SECRET, World, bearer, claims, write};
use crate::support::upstream::Upstream;

const DOWNSTREAM: &str = "api://inventory";
const HOST: &str = "inventory.internal";

/// An outbound section with one exchange credential `inventory-obo` (`exchange`, `auth`)
/// and one route to the echo upstream.
fn config(issuer: &DevIssuer, upstream: &Upstream, exchange: &str, auth: &str) -> String {
    format!(
        r#"admin:
  listen: 127.0.0.1:0
outbound:
  listen: 127.0.0.1:0
  upstream_timeout_seconds: 2
  credentials:
    inventory-obo:
      token_url: {token_url}
      client_id: {CLIENT}
      scopes: ["{DOWNSTREAM}/Inventory.Read"]
      exchange: {exchange}
      auth:
        {auth}
  routes:
    - name: inventory
      match: {{ host: {HOST} }}
      upstream: http://{up}
      credential: inventory-obo
"#,
        token_url = issuer.token_url(),
        up = upstream.addr,
    )
}

/// A secret-authenticated exchange world, ready (an exchange credential does not hold
/// readiness back: `World::start` waits for it).
async fn world(exchange: &str, behaviour: Behaviour) -> World {
    world_with(exchange, behaviour, "").await
}

/// As [`world`], with `extra` lines inserted into the credential.
async fn world_with(exchange: &str, behaviour: Behaviour, extra: &str) -> World {
    let issuer = DevIssuer::start("127.0.0.1:0".parse().unwrap()).await.unwrap();
    issuer.add_client(CLIENT, ClientAuth::Secret(SECRET.into()), &[]);
    issuer.set_behaviour(behaviour);
    let upstream = Upstream::start().await;
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "secret", SECRET);
    let yaml = config(&issuer, &upstream, exchange, "client_secret: { file: secret }")
        .replace("      auth:\n", &format!("{extra}      auth:\n"));
    World::start(&yaml, dir, issuer, upstream).await
}

/// A user's token for the middle tier (audience `api://CLIENT`), expiring in `exp_in` s.
fn user_token(issuer: &DevIssuer, oid: &str, exp_in: i64) -> String {
    let now = tollgate::clock::unix_now();
    issuer.token(json!({
        "aud": format!("api://{CLIENT}"),
        "azp": "web-frontend",
        "scp": "access_as_user",
        "oid": oid,
        "sub": format!("sub-{oid}"),
        "preferred_username": format!("{oid}@example.com"),
        "tid": DEV_TENANT,
        "iat": now,
        "nbf": now,
        "exp": now + exp_in,
    }))
}

async fn call(w: &World, token: Option<&str>) -> reqwest::Response {
    let mut req = w.http.get(w.tollgate.outbound_url("/items")).header("host", HOST);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    req.send().await.unwrap()
}

/// Exchange requests the issuer received (any outcome).
fn exchanges(w: &World) -> usize {
    w.issuer.token_requests().len()
}

/// The downstream token's claims, as the upstream received it.
async fn downstream_claims(res: reqwest::Response) -> Value {
    assert_eq!(res.status(), 200);
    let echo: Value = res.json().await.unwrap();
    claims(&bearer(&echo))
}

fn assert_same_user_for_downstream(c: &Value, oid: &str) {
    assert_eq!(c["oid"], oid, "{c}");
    assert_eq!(c["sub"], format!("sub-{oid}"), "{c}");
    assert_eq!(c["aud"], DOWNSTREAM, "{c}");
    assert_eq!(c["scp"], "Inventory.Read", "{c}");
    assert_eq!(c["azp"], CLIENT, "{c}");
    assert_eq!(c["idtyp"], "user", "{c}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_behalf_of_with_a_secret_exchanges_the_users_token() {
    let w = world("on_behalf_of", Behaviour::default()).await;
    let user = user_token(&w.issuer, "alice", 3600);
    let c = downstream_claims(call(&w, Some(&user)).await).await;
    assert_same_user_for_downstream(&c, "alice");
    assert_eq!(c["azpacr"], "1");
    let request = &w.issuer.token_requests()[0];
    assert_eq!(
        request.field("grant_type"),
        Some("urn:ietf:params:oauth:grant-type:jwt-bearer")
    );
    assert_eq!(request.field("requested_token_use"), Some("on_behalf_of"));
    assert_eq!(request.field("assertion"), Some(user.as_str()));
    assert_eq!(request.field("scope"), Some("api://inventory/Inventory.Read"));
    assert_eq!((request.status, request.method), (200, "post"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_behalf_of_and_token_exchange_with_a_certificate_sign_a_client_assertion() {
    for (exchange, grant) in [
        ("on_behalf_of", "urn:ietf:params:oauth:grant-type:jwt-bearer"),
        (
            "token_exchange",
            "urn:ietf:params:oauth:grant-type:token-exchange",
        ),
    ] {
        let issuer = DevIssuer::start("127.0.0.1:0".parse().unwrap()).await.unwrap();
        let cert = ClientCertificate::generate("tollgate-obo-client").unwrap();
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "client.pem", &cert.cert_pem);
        write(dir.path(), "client.key", cert.key_pem.expose());
        issuer.add_client(
            CLIENT,
            ClientAuth::Certificate {
                jwk: cert.jwk.clone(),
                x5t_s256: cert.x5t_s256.clone(),
            },
            &[],
        );
        let upstream = Upstream::start().await;
        let yaml = config(
            &issuer,
            &upstream,
            exchange,
            "private_key_jwt: { certificate_file: client.pem, key_file: client.key }",
        );
        let w = World::start(&yaml, dir, issuer, upstream).await;
        let user = user_token(&w.issuer, "bob", 3600);
        let c = downstream_claims(call(&w, Some(&user)).await).await;
        assert_same_user_for_downstream(&c, "bob");
        assert_eq!(c["azpacr"], "2", "{exchange}");
        let request = &w.issuer.token_requests()[0];
        assert_eq!(
            (request.status, request.method),
            (200, "private_key_jwt"),
            "{exchange}"
        );
        assert_eq!(request.field("grant_type"), Some(grant));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_exchange_sends_the_subject_token_as_rfc_8693_says() {
    let w = world_with(
        "token_exchange",
        Behaviour::default(),
        "      extra_params: { audience: inventory-service }\n",
    )
    .await;
    let user = user_token(&w.issuer, "carol", 3600);
    let c = downstream_claims(call(&w, Some(&user)).await).await;
    assert_same_user_for_downstream(&c, "carol");
    let request = &w.issuer.token_requests()[0];
    assert_eq!(
        request.field("grant_type"),
        Some("urn:ietf:params:oauth:grant-type:token-exchange")
    );
    assert_eq!(request.field("subject_token"), Some(user.as_str()));
    assert_eq!(
        request.field("subject_token_type"),
        Some("urn:ietf:params:oauth:token-type:access_token")
    );
    assert_eq!(request.field("assertion"), None);
    assert_eq!(request.field("audience"), Some("inventory-service"));
    assert_eq!(request.field("scope"), Some("api://inventory/Inventory.Read"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_or_expired_user_token_is_401_and_never_reaches_the_idp() {
    let w = world("on_behalf_of", Behaviour::default()).await;
    let res = call(&w, None).await;
    assert_eq!(res.status(), 401);
    assert_eq!(res.headers()["www-authenticate"], r#"Bearer realm="tollgate""#);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"], "missing_token", "{body}");

    let expired = user_token(&w.issuer, "dave", -10);
    let res = call(&w, Some(&expired)).await;
    assert_eq!(res.status(), 401);
    let www = res.headers()["www-authenticate"].to_str().unwrap().to_string();
    assert!(
        www.starts_with(r#"Bearer realm="tollgate", error="invalid_token""#),
        "{www}"
    );
    let body = res.text().await.unwrap();
    assert!(body.contains("expired") && !body.contains(&expired), "{body}");

    let res = call(&w, Some("not-a-jwt")).await;
    assert_eq!(res.status(), 401);
    assert_eq!(exchanges(&w), 0, "nothing reached the identity provider");
    assert_eq!(w.upstream.requests(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_calls_with_one_user_token_cause_one_exchange() {
    let w = world(
        "on_behalf_of",
        Behaviour {
            delay: Duration::from_millis(200),
            ..Behaviour::default()
        },
    )
    .await;
    let user = user_token(&w.issuer, "erin", 3600);
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..100 {
        let http = w.http.clone();
        let url = w.tollgate.outbound_url("/items");
        let user = user.clone();
        tasks.spawn(async move {
            let res = http
                .get(url)
                .header("host", HOST)
                .bearer_auth(user)
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), 200);
            let echo: Value = res.json().await.unwrap();
            claims(&bearer(&echo))["oid"].as_str().unwrap().to_string()
        });
    }
    while let Some(oid) = tasks.join_next().await {
        assert_eq!(oid.unwrap(), "erin");
    }
    assert_eq!(exchanges(&w), 1, "concurrent calls shared one exchange");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_users_never_receive_each_others_token() {
    let w = world(
        "on_behalf_of",
        Behaviour {
            delay: Duration::from_millis(50),
            ..Behaviour::default()
        },
    )
    .await;
    let users: Vec<(String, String)> = (0..20)
        .map(|i| {
            let oid = format!("user-{i}");
            let token = user_token(&w.issuer, &oid, 3600);
            (oid, token)
        })
        .collect();
    let mut tasks = tokio::task::JoinSet::new();
    for round in 0..5 {
        for (oid, token) in &users {
            let http = w.http.clone();
            let url = w.tollgate.outbound_url(&format!("/items/{round}"));
            let (oid, token) = (oid.clone(), token.clone());
            tasks.spawn(async move {
                let res = http
                    .get(url)
                    .header("host", HOST)
                    .bearer_auth(token)
                    .send()
                    .await
                    .unwrap();
                assert_eq!(res.status(), 200);
                let echo: Value = res.json().await.unwrap();
                let got = claims(&bearer(&echo))["oid"].as_str().unwrap().to_string();
                assert_eq!(got, oid, "a user received another user's token");
            });
        }
    }
    while let Some(done) = tasks.join_next().await {
        done.unwrap();
    }
    assert_eq!(exchanges(&w), users.len(), "one exchange per user");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_exchanged_token_is_replaced_when_it_expires() {
    let w = world(
        "on_behalf_of",
        Behaviour {
            lifetime: Duration::from_secs(2),
            ..Behaviour::default()
        },
    )
    .await;
    let user = user_token(&w.issuer, "frank", 3600);
    let first = downstream_claims(call(&w, Some(&user)).await).await;
    let again = downstream_claims(call(&w, Some(&user)).await).await;
    assert_eq!(first, again, "served from the cache");
    assert_eq!(exchanges(&w), 1);
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let later = downstream_claims(call(&w, Some(&user)).await).await;
    assert_eq!(later["oid"], "frank");
    assert_eq!(exchanges(&w), 2, "the expired token was exchanged again");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_claims_challenge_reaches_the_app_as_401_insufficient_claims() {
    let challenge = r#"{"access_token":{"capolids":{"essential":true,"values":["c1"]}}}"#;
    let w = world(
        "on_behalf_of",
        Behaviour {
            claims_challenge: Some(challenge.into()),
            ..Behaviour::default()
        },
    )
    .await;
    let user = user_token(&w.issuer, "grace", 3600);
    let res = call(&w, Some(&user)).await;
    assert_eq!(res.status(), 401);
    let www = res.headers()["www-authenticate"].to_str().unwrap().to_string();
    assert!(www.contains(r#"error="insufficient_claims""#), "{www}");
    assert!(
        www.contains(&format!(r#"claims="{}""#, STANDARD.encode(challenge))),
        "{www}"
    );
    let body = res.text().await.unwrap();
    let parsed: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(parsed["error"], "insufficient_claims");
    assert!(body.contains("AADSTS50076"), "{body}");
    assert!(!body.contains(&user), "no token in the body");
    assert_eq!(w.upstream.requests(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn other_exchange_failures_are_502_or_503_with_the_cause() {
    // a user token for another audience: the IdP refuses the exchange
    let w = world("on_behalf_of", Behaviour::default()).await;
    let mut wrong = claims(&user_token(&w.issuer, "heidi", 3600));
    wrong["aud"] = json!("api://someone-else");
    let wrong = w.issuer.token(wrong);
    let res = call(&w, Some(&wrong)).await;
    assert_eq!(res.status(), 502);
    let body = res.text().await.unwrap();
    assert!(
        body.contains("exchange_failed") && body.contains("AADSTS50013"),
        "{body}"
    );
    assert!(!body.contains(&wrong), "no token in the body");

    let down = world(
        "on_behalf_of",
        Behaviour {
            fail_with: Some(503),
            ..Behaviour::default()
        },
    )
    .await;
    let user = user_token(&down.issuer, "ivan", 3600);
    let res = call(&down, Some(&user)).await;
    assert_eq!(res.status(), 503);
    let body = res.text().await.unwrap();
    assert!(body.contains("token_unavailable"), "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn neither_the_user_token_nor_the_exchanged_one_reaches_the_logs() {
    use crate::support::{Running, config_file, free_port};
    let issuer = DevIssuer::start("127.0.0.1:0".parse().unwrap()).await.unwrap();
    issuer.add_client(CLIENT, ClientAuth::Secret(SECRET.into()), &[]);
    let upstream = Upstream::start().await;
    let (admin, listen) = (free_port(), free_port());
    let yaml = config(
        &issuer,
        &upstream,
        "on_behalf_of",
        "client_secret: { file: secret }",
    )
    .replacen("listen: 127.0.0.1:0", &format!("listen: {admin}"), 1)
    .replacen("listen: 127.0.0.1:0", &format!("listen: {listen}"), 1);
    let file = config_file(&yaml);
    write(file.path.parent().unwrap(), "secret", SECRET);
    let mut running = Running::start_traced(&file.path);
    crate::support::wait_ready(admin).await;

    let user = user_token(&issuer, "judy", 3600);
    let expired = user_token(&issuer, "judy", -5);
    let http = reqwest::Client::new();
    let send = |token: String| {
        http.get(format!("http://{listen}/items"))
            .header("host", HOST)
            .bearer_auth(token)
            .send()
    };
    let res = send(user.clone()).await.unwrap();
    assert_eq!(res.status(), 200);
    let echo: Value = res.json().await.unwrap();
    let exchanged = bearer(&echo);
    let exchanged = exchanged.trim_start_matches("Bearer ").to_string();
    assert!(exchanged.len() > 100);
    assert_eq!(send(expired.clone()).await.unwrap().status(), 401);

    let logs = running.stop_and_read().await;
    assert!(logs.contains("\"decision\":\"forward\""), "{logs}");
    for token in [&user, &expired, &exchanged] {
        for part in token.split('.').filter(|p| p.len() > 8) {
            assert!(!logs.contains(part), "a part of a token reached the logs");
        }
    }
    assert!(!logs.contains(SECRET), "the client secret reached the logs");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_subject_issuer_only_tokens_passing_its_checks_reach_the_idp() {
    let issuer = DevIssuer::start("127.0.0.1:0".parse().unwrap()).await.unwrap();
    issuer.add_client(CLIENT, ClientAuth::Secret(SECRET.into()), &[]);
    let upstream = Upstream::start().await;
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "secret", SECRET);
    let issuers = format!(
        "issuers:\n  dev:\n    issuer: {}\n    discovery_url: {}\n    audiences: [\"api://{CLIENT}\"]\noutbound:\n",
        issuer.issuer(),
        issuer.discovery_url()
    );
    let yaml = config(
        &issuer,
        &upstream,
        "on_behalf_of",
        "client_secret: { file: secret }",
    )
    .replace("outbound:\n", &issuers)
    .replace("      auth:\n", "      subject_issuer: dev\n      auth:\n");
    let w = World::start(&yaml, dir, issuer, upstream).await;

    let user = user_token(&w.issuer, "kim", 3600);
    let c = downstream_claims(call(&w, Some(&user)).await).await;
    assert_same_user_for_downstream(&c, "kim");
    assert_eq!(exchanges(&w), 1);

    // signed by the issuer, but for another audience: refused before the IdP
    let mut other = claims(&user);
    other["aud"] = json!("api://someone-else");
    let other = w.issuer.token(other);
    // the issuer's kid, another key: a forgery
    let forger = tollgate::devissuer::SigningKey::generate_rsa(
        &w.issuer.signing_key().kid,
        jsonwebtoken::Algorithm::RS256,
    )
    .unwrap();
    let forged = forger.sign(&claims(&user));
    for (token, why) in [(&other, "audience"), (&forged, "signature")] {
        let res = call(&w, Some(token)).await;
        assert_eq!(res.status(), 401, "{why}");
        let www = res.headers()["www-authenticate"].to_str().unwrap().to_string();
        assert!(www.contains(r#"error="invalid_token""#), "{why}: {www}");
        let body = res.text().await.unwrap();
        assert!(
            body.contains("issuer `dev`") && !body.contains(token.as_str()),
            "{body}"
        );
    }
    assert_eq!(
        exchanges(&w),
        1,
        "refused tokens never reached the identity provider"
    );
    assert_eq!(w.upstream.requests(), 1);
}

/// The whole chain through two tollgates: a user token reaches an API through inbound
/// (`token_kind: user`); the API, knowing nothing of OAuth2, forwards the same token on its
/// outbound call; tollgate exchanges it on behalf of the user; the downstream API's own
/// tollgate validates the new token and the downstream service sees the same user with the
/// downstream scope.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_call_goes_through_inbound_on_behalf_of_and_the_downstream_inbound() {
    use std::sync::{Arc, OnceLock};

    use hyper::service::service_fn;
    use tollgate::server;

    let issuer = DevIssuer::start("127.0.0.1:0".parse().unwrap()).await.unwrap();
    issuer.add_client(CLIENT, ClientAuth::Secret(SECRET.into()), &[]);
    let downstream = Upstream::start().await;
    let downstream_gate = crate::support::tollgate::Tollgate::start(&format!(
        "admin: {{ listen: 127.0.0.1:0 }}\nissuers:\n  dev: {{ issuer: {iss}, discovery_url: {disc}, audiences: [\"{DOWNSTREAM}\"] }}\ninbound:\n  listen: 127.0.0.1:0\n  upstream: http://{up}\n  forward_claims: {{ X-User-Oid: oid, X-User-Scopes: scp, X-Client-Id: azp }}\n  routes:\n    - match: {{ path_prefix: / }}\n      require: {{ token_kind: user, scopes_any: [Inventory.Read] }}\n",
        iss = issuer.issuer(),
        disc = issuer.discovery_url(),
        up = downstream.addr,
    ))
    .await;

    // The API in the middle: it forwards its caller's Authorization to its outbound call.
    let outbound: Arc<OnceLock<std::net::SocketAddr>> = Arc::new(OnceLock::new());
    let listener = server::bind("api", "127.0.0.1:0".parse().unwrap()).await.unwrap();
    let api_addr = listener.local_addr().unwrap();
    let (_stop_api, api_shutdown) = server::shutdown_channel();
    let seen_outbound = outbound.clone();
    let make = move |_conn| {
        let outbound = seen_outbound.clone();
        service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
            let outbound = outbound.clone();
            async move {
                let mut call = reqwest::Client::new()
                    .get(format!(
                        "http://{}/items",
                        outbound.get().expect("outbound started")
                    ))
                    .header("host", HOST);
                if let Some(auth) = req.headers().get("authorization") {
                    call = call.header("authorization", auth.clone());
                }
                let res = call.send().await.expect("outbound call");
                let status = res.status();
                let body = res.bytes().await.unwrap_or_default();
                let mut out = hyper::Response::new(http_body_util::Full::new(body));
                *out.status_mut() = status;
                Ok::<_, std::convert::Infallible>(out)
            }
        })
    };
    tokio::spawn(server::serve(
        "api",
        listener,
        None,
        make,
        api_shutdown,
        Duration::from_millis(100),
    ));

    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "secret", SECRET);
    let yaml = format!(
        "admin: {{ listen: 127.0.0.1:0 }}\nissuers:\n  dev: {{ issuer: {iss}, discovery_url: {disc}, audiences: [\"api://{CLIENT}\"] }}\ninbound:\n  listen: 127.0.0.1:0\n  upstream: http://{api_addr}\n  routes:\n    - match: {{ path_prefix: / }}\n      require: {{ token_kind: user, scopes_any: [access_as_user] }}\noutbound:\n  listen: 127.0.0.1:0\n  credentials:\n    inventory-obo:\n      token_url: {token_url}\n      client_id: {CLIENT}\n      scopes: [\"{DOWNSTREAM}/Inventory.Read\"]\n      exchange: on_behalf_of\n      subject_issuer: dev\n      auth: {{ client_secret: {{ file: secret }} }}\n  routes:\n    - match: {{ host: {HOST} }}\n      upstream: http://{down}\n      credential: inventory-obo\n",
        iss = issuer.issuer(),
        disc = issuer.discovery_url(),
        token_url = issuer.token_url(),
        down = downstream_gate.inbound,
    );
    let api_gate = crate::support::tollgate::Tollgate::start_in(&yaml, dir.path()).await;
    api_gate.wait_ready().await;
    outbound.set(api_gate.outbound.unwrap()).unwrap();

    let http = reqwest::Client::new();
    let user = user_token(&issuer, "dana", 3600);
    let res = http
        .get(api_gate.url("/orders/7"))
        .bearer_auth(&user)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let echo: Value = res.json().await.unwrap();
    let seen = |name: &str| crate::support::upstream::seen(&echo, name);
    assert_eq!(
        seen("x-user-oid"),
        ["dana"],
        "the downstream sees the same user: {echo}"
    );
    assert_eq!(
        seen("x-user-scopes"),
        ["Inventory.Read"],
        "with the downstream scope"
    );
    assert_eq!(seen("x-client-id"), [CLIENT], "on behalf of the middle tier");
    assert_eq!(downstream.requests(), 1);

    // The user's own token is not valid downstream (wrong audience): only the exchange is.
    let direct = http
        .get(format!("http://{}/items", downstream_gate.inbound))
        .bearer_auth(&user)
        .send()
        .await
        .unwrap();
    assert_eq!(direct.status(), 401);
    // An app token is refused at the first tollgate: this route takes user tokens only.
    let app = issuer.token(tollgate::devissuer::app_claims(
        &format!("api://{CLIENT}"),
        "some-app",
        "2",
        &["X"],
        DEV_TENANT,
    ));
    let res = http
        .get(api_gate.url("/orders/7"))
        .bearer_auth(&app)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    assert_eq!(downstream.requests(), 1);
}
