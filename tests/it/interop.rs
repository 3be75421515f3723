//! Interop with a certified OpenID provider (`oidc-provider`, see `tests/interop/`), set up
//! like Entra ID: tollgate acquires client-credentials tokens from it with each client
//! authentication method, validates them inbound through its discovery document and
//! JWKS, enforces roles and `azpacr` on them, and follows its signing-key rotation.

use std::net::SocketAddr;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::Value;
use tollgate::devissuer::ClientCertificate;

use crate::support::oidc_provider::{OidcProvider, Publish};
use crate::support::tollgate::Tollgate;
use crate::support::upstream::{Upstream, seen};

/// The API's identifier at the provider (`tests/interop/provider.js`): the tokens' `aud`.
const API: &str = "api://b178f3a5-7588-492a-924f-72d7887b7e48";
/// The secret clients' secret in `provider.js`.
const SECRET: &str = "s3cr:t%+ &=~";

/// Entra ID style: the API's `/.default` scope names the resource.
const DEFAULT_SCOPE: &str = r#"scopes: ["api://b178f3a5-7588-492a-924f-72d7887b7e48/.default"]"#;

/// One outbound credential per client of `provider.js`: route host, client id, `auth:`,
/// and how it names the API.
const CLIENTS: [(&str, &str, &str, &str); 4] = [
    (
        "basic.internal",
        "interop-basic",
        "client_secret: { file: secret, method: basic }",
        DEFAULT_SCOPE,
    ),
    (
        "post.internal",
        "interop-post",
        "client_secret: { file: secret, method: post }",
        // RFC 8707: the resource as its own parameter, and that resource's own scopes.
        r#"scopes: [orders.read]
      extra_params: { resource: "api://b178f3a5-7588-492a-924f-72d7887b7e48" }"#,
    ),
    (
        "cert.internal",
        "interop-cert",
        "private_key_jwt: { certificate_file: client.pem, key_file: client.key }",
        DEFAULT_SCOPE,
    ),
    (
        "cert-rs256.internal",
        "interop-cert-rs256",
        "private_key_jwt: { certificate_file: client.pem, key_file: client.key, algorithm: RS256 }",
        DEFAULT_SCOPE,
    ),
];

/// The provider, the client certificate and secret files it and tollgate share.
struct Interop {
    provider: OidcProvider,
    certificate: ClientCertificate,
    dir: tempfile::TempDir,
}

impl Interop {
    async fn start() -> Interop {
        let dir = tempfile::tempdir().unwrap();
        let certificate = ClientCertificate::generate("tollgate-interop-client").unwrap();
        std::fs::write(dir.path().join("client.pem"), &certificate.cert_pem).unwrap();
        std::fs::write(dir.path().join("client.key"), certificate.key_pem.expose()).unwrap();
        std::fs::write(dir.path().join("secret"), format!("{SECRET}\n")).unwrap();
        let provider = OidcProvider::start(&dir.path().join("client.pem")).await;
        Interop {
            provider,
            certificate,
            dir,
        }
    }

    /// An outbound tollgate with one credential per client, each routed by its host to `target`.
    async fn outbound(&self, target: SocketAddr) -> Tollgate {
        let mut credentials = String::new();
        let mut routes = String::new();
        for (host, client_id, auth, names_api) in CLIENTS {
            credentials.push_str(&format!(
                "    {client_id}:\n      token_url: {token}\n      client_id: {client_id}\n      \
                 {names_api}\n      auth: {{ {auth} }}\n",
                token = self.provider.token_endpoint,
            ));
            routes.push_str(&format!(
                "    - match: {{ host: {host} }}\n      upstream: http://{target}\n      credential: {client_id}\n"
            ));
        }
        let yaml = format!(
            "admin:\n  listen: 127.0.0.1:0\noutbound:\n  listen: 127.0.0.1:0\n  credentials:\n{credentials}  routes:\n{routes}"
        );
        let tollgate = Tollgate::start_in(&yaml, self.dir.path()).await;
        if let Err(missing) = tollgate.readiness.wait(Duration::from_secs(15)).await {
            panic!(
                "outbound not ready: {missing:?}\n{yaml}\nprovider saw: {}\n{}",
                self.provider.stats().await,
                self.provider.output()
            );
        }
        tollgate
    }

    /// An inbound tollgate trusting the provider through its discovery document, in front of `upstream`.
    async fn inbound(&self, upstream: &Upstream) -> Tollgate {
        let yaml = format!(
            r#"admin:
  listen: 127.0.0.1:0
issuers:
  interop:
    issuer: {issuer}
    discovery_url: {discovery}
    audiences: ["{API}"]
inbound:
  listen: 127.0.0.1:0
  upstream: http://{upstream}
  forward_claims: {{ X-Client-Id: azp, X-Client-Auth: azpacr, X-Client-Roles: roles }}
  routes:
    - name: orders-write
      match: {{ path_prefix: /orders, methods: [POST] }}
      require: {{ roles_all: [Orders.Write], azpacr: ["2"] }}
    - name: orders-read
      match: {{ path_prefix: /orders, methods: [GET] }}
      require: {{ roles_any: [Orders.Read] }}
"#,
            issuer = self.provider.issuer,
            discovery = self.provider.discovery_url(),
            upstream = upstream.addr,
        );
        Tollgate::start(&yaml).await
    }
}

/// Send `method path` through the outbound listener as the app behind route `host` would.
async fn call(outbound: &Tollgate, method: &str, path: &str, host: &str) -> (u16, Value) {
    let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
    let res = reqwest::Client::new()
        .request(method, outbound.outbound_url(path))
        .header("host", host)
        .send()
        .await
        .unwrap();
    let status = res.status().as_u16();
    let text = res.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
}

/// The JOSE header and the claims of the bearer token the echo upstream received.
fn bearer_parts(echo: &Value) -> (Value, Value) {
    let authorization = seen(echo, "authorization");
    let token = authorization
        .first()
        .and_then(|a| a.strip_prefix("Bearer "))
        .unwrap_or_else(|| panic!("no bearer token reached the upstream: {echo}"));
    let part = |i: usize| -> Value {
        let text = token.split('.').nth(i).unwrap_or_default();
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(text).unwrap_or_default()).unwrap_or(Value::Null)
    };
    (part(0), part(1))
}

async fn metric(tollgate: &Tollgate, series: &str) -> String {
    let metrics = tollgate.metrics().await;
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(series).map(|v| v.trim().to_string()))
        .unwrap_or_else(|| panic!("no {series} in\n{metrics}"))
}

/// (a) Each client authentication method, as the provider saw it, and the token that
/// reached the upstream: a JWT from the provider's current key with Entra ID's app claims.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_client_authentication_method_gets_a_jwt_with_the_entra_claims() {
    let world = Interop::start().await;
    let upstream = Upstream::start().await;
    let outbound = world.outbound(upstream.addr).await;
    let stats = world.provider.stats().await;
    let expected = [
        (
            "basic.internal",
            "interop-basic",
            "client_secret_basic",
            "1",
            "Orders.Read",
        ),
        (
            "post.internal",
            "interop-post",
            "client_secret_post",
            "1",
            "Orders.Write",
        ),
        (
            "cert.internal",
            "interop-cert",
            "private_key_jwt",
            "2",
            "Orders.Write",
        ),
        (
            "cert-rs256.internal",
            "interop-cert-rs256",
            "private_key_jwt",
            "2",
            "Orders.Read",
        ),
    ];
    for (host, client_id, method, azpacr, role) in expected {
        let (status, echo) = call(&outbound, "GET", "/orders/7", host).await;
        assert_eq!(status, 200, "{host}: {echo}");
        let (header, claims) = bearer_parts(&echo);
        assert_eq!(header["alg"], "RS256", "{header}");
        assert_eq!(header["typ"], "at+jwt", "RFC 9068 access token: {header}");
        assert_eq!(header["kid"], stats["signing_kid"], "{header}");
        assert_eq!(claims["iss"], world.provider.issuer.as_str(), "{claims}");
        assert_eq!(claims["aud"], API, "{claims}");
        assert_eq!(claims["azp"], client_id, "{claims}");
        assert_eq!(claims["azpacr"], azpacr, "{claims}");
        assert!(
            claims["roles"].as_array().unwrap().iter().any(|r| r == role),
            "{claims}"
        );

        let requests = world.provider.token_requests(client_id).await;
        assert_eq!(
            requests.len(),
            1,
            "one token request per credential: {requests:?}"
        );
        let request = &requests[0];
        assert_eq!(request["status"], 200, "{request}");
        assert_eq!(request["method"], method, "{request}");
        assert_eq!(request["grant_type"], "client_credentials", "{request}");
        assert_eq!(request["resource"], API, "{request}");
    }

    // RFC 8707 (`extra_params: { resource }`) scopes the token to the API's own scopes.
    let (_, echo) = call(&outbound, "GET", "/", "post.internal").await;
    assert_eq!(bearer_parts(&echo).1["scope"], "orders.read");

    for (client_id, alg) in [("interop-cert", "PS256"), ("interop-cert-rs256", "RS256")] {
        let request = &world.provider.token_requests(client_id).await[0];
        let assertion = &request["assertion"];
        assert_eq!(assertion["header"]["alg"], alg, "{request}");
        assert_eq!(
            assertion["header"]["x5t#S256"],
            world.certificate.x5t_s256.as_str(),
            "{request}"
        );
        assert_eq!(
            assertion["claims"]["aud"],
            world.provider.token_endpoint.as_str(),
            "{request}"
        );
        assert_eq!(assertion["claims"]["iss"], client_id);
        assert_eq!(assertion["claims"]["sub"], client_id);
        assert!(
            assertion["claims"]["lifetime"].as_i64().unwrap() <= 600,
            "{request}"
        );
    }
}

/// (b) Inbound validates the provider's tokens through discovery and JWKS and enforces a
/// role + `azpacr` policy on them; the tokens come from an outbound tollgate in front.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inbound_enforces_roles_and_azpacr_on_the_providers_tokens() {
    let world = Interop::start().await;
    let legacy = Upstream::start().await;
    let inbound = world.inbound(&legacy).await;
    let outbound = world.outbound(inbound.inbound).await;

    // certificate (azpacr 2) with Orders.Write: allowed, identity forwarded
    let (status, echo) = call(&outbound, "POST", "/orders", "cert.internal").await;
    assert_eq!(status, 200, "{echo}");
    assert_eq!(seen(&echo, "x-client-id"), ["interop-cert"]);
    assert_eq!(seen(&echo, "x-client-auth"), ["2"]);

    // secret (azpacr 1) with Orders.Write: refused for how it authenticated
    let (status, body) = call(&outbound, "POST", "/orders", "post.internal").await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["error"], "insufficient_scope");
    assert!(
        body["error_description"].as_str().unwrap().contains("azpacr"),
        "{body}"
    );

    // certificate (azpacr 2) without Orders.Write: refused for the role
    let (status, body) = call(&outbound, "POST", "/orders", "cert-rs256.internal").await;
    assert_eq!(status, 403, "{body}");
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("Orders.Write"),
        "{body}"
    );

    // every method's token is valid where its roles suffice
    for host in ["basic.internal", "post.internal", "cert-rs256.internal"] {
        let (status, body) = call(&outbound, "GET", "/orders/7", host).await;
        assert_eq!(status, 200, "{host}: {body}");
    }

    // no token
    let res = reqwest::Client::new()
        .post(inbound.url("/orders"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    assert_eq!(legacy.requests(), 4);
}

/// (c) The provider starts signing with a new key: a token from it is accepted after
/// exactly one JWKS fetch, and the previous key's tokens keep working while it is published.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotated_signing_key_is_followed_with_one_jwks_fetch() {
    let world = Interop::start().await;
    let legacy = Upstream::start().await;
    let inbound = world.inbound(&legacy).await;
    let before = world.outbound(inbound.inbound).await;
    let refreshes = r#"tollgate_jwks_refreshes_total{issuer="interop",result="ok"}"#;

    let (status, old) = call(&before, "POST", "/orders", "cert.internal").await;
    assert_eq!(status, 200, "{old}");
    let old_kid = bearer_parts(&old).0["kid"].clone();
    assert_eq!(metric(&inbound, refreshes).await, "1");
    assert_eq!(world.provider.jwks_requests().await, 1);

    let new_kid = world.provider.rotate(Publish::Both).await;
    assert_ne!(Value::String(new_kid.clone()), old_kid);
    // A tollgate started now holds no token yet: its tokens are signed with the new key.
    let after = world.outbound(inbound.inbound).await;
    let (status, new) = call(&after, "POST", "/orders", "cert.internal").await;
    assert_eq!(status, 200, "{new}");
    assert_eq!(bearer_parts(&new).0["kid"], new_kid.as_str());
    assert_eq!(metric(&inbound, refreshes).await, "2", "exactly one refresh");
    assert_eq!(world.provider.jwks_requests().await, 2, "exactly one JWKS fetch");

    // the old key is still published: its tokens pass, and nothing more is fetched
    let (status, _) = call(&before, "POST", "/orders", "cert.internal").await;
    assert_eq!(status, 200);
    let (status, _) = call(&after, "GET", "/orders/1", "basic.internal").await;
    assert_eq!(status, 200);
    assert_eq!(world.provider.jwks_requests().await, 2);
}

/// The provider withdraws the previous key as it rotates: after the one refresh the new
/// key's tokens pass and the withdrawn key's are refused (the key set is replaced, not merged).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_withdrawn_at_rotation_no_longer_verifies() {
    let world = Interop::start().await;
    let legacy = Upstream::start().await;
    let inbound = world.inbound(&legacy).await;
    let before = world.outbound(inbound.inbound).await;
    let (status, _) = call(&before, "POST", "/orders", "cert.internal").await;
    assert_eq!(status, 200);

    world.provider.rotate(Publish::New).await;
    let after = world.outbound(inbound.inbound).await;
    let (status, body) = call(&after, "POST", "/orders", "cert.internal").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(world.provider.jwks_requests().await, 2);

    let (status, body) = call(&before, "POST", "/orders", "cert.internal").await;
    assert_eq!(
        (status, &body["error"]),
        (401, &Value::from("invalid_token")),
        "{body}"
    );
    assert_eq!(
        world.provider.jwks_requests().await,
        2,
        "within the 30 s cooldown"
    );
    assert_eq!(legacy.requests(), 2);
}
