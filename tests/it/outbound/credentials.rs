//! Each credential kind against the dev issuer's token endpoint, which verifies what it
//! receives: client secret (post and basic, awkward characters), private_key_jwt
//! (signature and thumbprint), workload identity (the file re-read each time), App
//! Service managed identity; and outbound → inbound end to end.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde_json::Value;
use tollgate::devissuer::{Behaviour, ClientAuth, ClientCertificate, DevIssuer};

use super::{CLIENT, SCOPE, SECRET, World, bearer, claims, config, write};
use crate::support::tollgate::Tollgate;
use crate::support::upstream::Upstream;

async fn parts() -> (DevIssuer, Upstream, tempfile::TempDir) {
    let issuer = DevIssuer::start("127.0.0.1:0".parse().unwrap()).await.unwrap();
    (issuer, Upstream::start().await, tempfile::tempdir().unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_secret_basic_form_urlencodes_before_base64() {
    let (issuer, upstream, dir) = parts().await;
    issuer.add_client(CLIENT, ClientAuth::Secret(SECRET.into()), &["Orders.Read"]);
    write(dir.path(), "secret", SECRET);
    let yaml = config(
        &issuer,
        &upstream,
        "client_secret: { file: secret, method: basic }",
    );
    let w = World::start(&yaml, dir, issuer, upstream).await;
    let res = w.get("/x").await;
    assert_eq!(res.status(), 200);
    let request = &w.issuer.token_requests()[0];
    assert_eq!((request.status, request.method), (200, "basic"));
    assert_eq!(
        request.field("client_secret"),
        None,
        "the secret is not also in the form"
    );
    let header = request.header("authorization").unwrap();
    let decoded =
        String::from_utf8(STANDARD.decode(header.strip_prefix("Basic ").unwrap()).unwrap()).unwrap();
    assert_eq!(decoded, format!("{CLIENT}:s3cr%3At%25%2B+%C3%A9"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_secret_is_an_error_that_names_the_idp_answer_and_never_the_secret() {
    let (issuer, upstream, dir) = parts().await;
    issuer.add_client(CLIENT, ClientAuth::Secret("the-right-one".into()), &[]);
    write(dir.path(), "secret", "a-wrong-secret-value");
    let yaml = config(&issuer, &upstream, "client_secret: { file: secret }");
    let tollgate = Tollgate::start_in(&yaml, dir.path()).await;
    let started = Instant::now();
    while tollgate.readiness.check().is_ok() || issuer.token_requests().is_empty() {
        assert!(started.elapsed() < Duration::from_secs(10));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let missing = tollgate.readiness.check().unwrap_err();
    let why = &missing["credential/orders-api"];
    assert!(why.contains("401 invalid_client: AADSTS7000215"), "{why}");
    let res = tollgate.outbound_get("/x", "orders.internal").await;
    assert_eq!(res.status(), 503);
    let body = res.text().await.unwrap();
    assert!(
        body.contains("AADSTS7000215") && !body.contains("a-wrong-secret-value"),
        "{body}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn private_key_jwt_assertion_verifies_with_the_certificate_and_carries_its_thumbprint() {
    let (issuer, upstream, dir) = parts().await;
    let cert = ClientCertificate::generate("tollgate-test-client").unwrap();
    write(dir.path(), "client.pem", &cert.cert_pem);
    write(dir.path(), "client.key", cert.key_pem.expose());
    issuer.add_client(
        CLIENT,
        ClientAuth::Certificate {
            jwk: cert.jwk.clone(),
            x5t_s256: cert.x5t_s256.clone(),
        },
        &["Orders.Write"],
    );
    let yaml = config(
        &issuer,
        &upstream,
        "private_key_jwt: { certificate_file: client.pem, key_file: client.key }",
    );
    let w = World::start(&yaml, dir, issuer, upstream).await;
    let res = w.get("/x").await;
    assert_eq!(res.status(), 200);
    let echo: Value = res.json().await.unwrap();
    assert_eq!(claims(&bearer(&echo))["azpacr"], "2");

    let request = &w.issuer.token_requests()[0];
    assert_eq!((request.status, request.method), (200, "private_key_jwt"));
    let assertion = request.field("client_assertion").unwrap();
    let header: Value = serde_json::from_slice(
        &URL_SAFE_NO_PAD
            .decode(assertion.split('.').next().unwrap())
            .unwrap(),
    )
    .unwrap();
    assert_eq!(header["alg"], "PS256");
    // Independently: SHA-256 of the certificate's DER.
    use rustls_pki_types::CertificateDer;
    use rustls_pki_types::pem::PemObject;
    let der = CertificateDer::from_pem_slice(cert.cert_pem.as_bytes()).unwrap();
    let sha = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, der.as_ref());
    assert_eq!(header["x5t#S256"], URL_SAFE_NO_PAD.encode(sha.as_ref()));
    assert!(header["x5t"].is_string());
    let c = claims(assertion);
    assert_eq!(c["iss"], CLIENT);
    assert_eq!(c["sub"], CLIENT);
    assert_eq!(c["aud"], w.issuer.token_url());
    assert!(c["exp"].as_i64().unwrap() - c["iat"].as_i64().unwrap() <= 600);
    assert!(c["jti"].as_str().is_some_and(|j| j.len() >= 16));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workload_identity_sends_the_token_file_as_it_is_at_each_acquisition() {
    let (issuer, upstream, dir) = parts().await;
    issuer.add_client(CLIENT, ClientAuth::Federated, &[]);
    issuer.set_behaviour(Behaviour {
        lifetime: Duration::from_secs(2),
        ..Behaviour::default()
    });
    write(dir.path(), "sa-token", "federated-token-one\n");
    let yaml = config(&issuer, &upstream, "workload_identity: { token_file: sa-token }");
    let w = World::start(&yaml, dir, issuer, upstream).await;
    write(w.dir.path(), "sa-token", "federated-token-two");
    let started = Instant::now();
    while w.tokens_issued() < 2 {
        assert!(started.elapsed() < Duration::from_secs(10), "no refresh");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let requests = w.issuer.token_requests();
    assert_eq!(requests[0].method, "federated");
    assert_eq!(requests[0].field("client_assertion"), Some("federated-token-one"));
    assert_eq!(requests[1].field("client_assertion"), Some("federated-token-two"));
    assert_eq!(
        requests[1].field("client_assertion_type"),
        Some("urn:ietf:params:oauth:client-assertion-type:jwt-bearer")
    );
    assert_eq!(w.get("/x").await.status(), 200);
}

struct Env(HashMap<&'static str, String>);

impl tollgate::config::Env for Env {
    fn var(&self, name: &str) -> Option<String> {
        self.0.get(name).cloned()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn app_service_managed_identity_via_identity_endpoint() {
    let (issuer, upstream, dir) = parts().await;
    issuer.enable_managed_identity("identity-header-value");
    let yaml = format!(
        r#"admin:
  listen: 127.0.0.1:0
outbound:
  listen: 127.0.0.1:0
  credentials:
    mi:
      scopes: ["{SCOPE}"]
      auth: {{ managed_identity: {{ client_id: user-assigned-1 }} }}
  routes:
    - match: {{ host: orders.internal }}
      upstream: http://{up}
      credential: mi
"#,
        up = upstream.addr
    );
    let env = Env(HashMap::from([
        ("IDENTITY_ENDPOINT", issuer.identity_endpoint()),
        ("IDENTITY_HEADER", "identity-header-value".to_string()),
    ]));
    let tollgate = Tollgate::start_with_env(&yaml, dir.path(), &env).await;
    tollgate.wait_ready().await;
    let res = tollgate.outbound_get("/x", "orders.internal").await;
    assert_eq!(res.status(), 200);
    let echo: Value = res.json().await.unwrap();
    let c = claims(&bearer(&echo));
    assert_eq!(c["aud"], "api://b178f3a5-7588-492a-924f-72d7887b7e48");
    let request = &issuer.token_requests()[0];
    assert_eq!((request.status, request.method), (200, "managed_identity"));
    assert_eq!(request.field("api-version"), Some("2019-08-01"));
    assert_eq!(
        request.field("resource"),
        Some("api://b178f3a5-7588-492a-924f-72d7887b7e48")
    );
    assert_eq!(request.field("client_id"), Some("user-assigned-1"));
    drop(dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instance_metadata_managed_identity_with_string_lifetimes() {
    let (issuer, upstream, dir) = parts().await;
    issuer.enable_managed_identity("unused-by-imds");
    let yaml = format!(
        r#"admin:
  listen: 127.0.0.1:0
outbound:
  listen: 127.0.0.1:0
  credentials:
    mi:
      scopes: ["{SCOPE}"]
      auth: {{ managed_identity: }}
  routes:
    - match: {{ host: orders.internal }}
      upstream: http://{up}
      credential: mi
"#,
        up = upstream.addr
    );
    let env = Env(HashMap::from([(
        "AZURE_POD_IDENTITY_AUTHORITY_HOST",
        issuer.issuer().to_string(),
    )]));
    let tollgate = Tollgate::start_with_env(&yaml, dir.path(), &env).await;
    tollgate.wait_ready().await;
    let res = tollgate.outbound_get("/x", "orders.internal").await;
    assert_eq!(res.status(), 200);
    let request = &issuer.token_requests()[0];
    assert_eq!(request.path, "/metadata/identity/oauth2/token");
    assert_eq!(request.header("metadata"), Some("true"));
    assert_eq!(request.field("api-version"), Some("2018-02-01"));
    assert_eq!(
        request.field("resource"),
        Some("api://b178f3a5-7588-492a-924f-72d7887b7e48")
    );
    assert_eq!(request.field("client_id"), None, "system-assigned: no client_id");
}

/// The whole loop: app → outbound tollgate → inbound tollgate (verifies the token and the
/// certificate-only policy) → legacy upstream.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outbound_tokens_pass_an_inbound_certificate_only_policy() {
    let (issuer, legacy, dir) = parts().await;
    let cert = ClientCertificate::generate("cert-client").unwrap();
    write(dir.path(), "client.pem", &cert.cert_pem);
    write(dir.path(), "client.key", cert.key_pem.expose());
    issuer.add_client(
        CLIENT,
        ClientAuth::Certificate {
            jwk: cert.jwk.clone(),
            x5t_s256: cert.x5t_s256.clone(),
        },
        &["Orders.Write"],
    );
    let secret_client = "5d2e1c40-0000-4000-8000-000000000001";
    issuer.add_client(
        secret_client,
        ClientAuth::Secret(SECRET.into()),
        &["Orders.Write"],
    );
    write(dir.path(), "secret", SECRET);
    let aud = SCOPE.trim_end_matches("/.default");
    let inbound_yaml = format!(
        r#"admin:
  listen: 127.0.0.1:0
issuers:
  dev:
    issuer: {iss}
    discovery_url: {discovery}
    audiences: ["{aud}"]
inbound:
  listen: 127.0.0.1:0
  upstream: http://{legacy}
  forward_claims: {{ X-Client-Id: azp }}
  routes:
    - match: {{ path_prefix: /orders }}
      require: {{ roles_all: [Orders.Write], azpacr: ["2"] }}
"#,
        iss = issuer.issuer(),
        discovery = issuer.discovery_url(),
        legacy = legacy.addr,
    );
    let inbound = Tollgate::start(&inbound_yaml).await;
    let outbound_yaml = format!(
        r#"admin:
  listen: 127.0.0.1:0
outbound:
  listen: 127.0.0.1:0
  credentials:
    cert:
      token_url: {token_url}
      client_id: {CLIENT}
      scopes: ["{SCOPE}"]
      auth: {{ private_key_jwt: {{ certificate_file: client.pem, key_file: client.key, algorithm: RS256 }} }}
    secret:
      token_url: {token_url}
      client_id: {secret_client}
      scopes: ["{SCOPE}"]
      auth: {{ client_secret: {{ file: secret }} }}
  routes:
    - match: {{ host: orders.internal }}
      upstream: http://{inbound}
      credential: cert
    - match: {{ host: orders-by-secret.internal }}
      upstream: http://{inbound}
      credential: secret
"#,
        token_url = issuer.token_url(),
        inbound = inbound.inbound,
    );
    let outbound = Tollgate::start_in(&outbound_yaml, dir.path()).await;
    outbound.wait_ready().await;
    let res = outbound.outbound_get("/orders/7", "orders.internal").await;
    assert_eq!(res.status(), 200);
    let echo: Value = res.json().await.unwrap();
    assert_eq!(
        crate::support::upstream::seen(&echo, "x-client-id"),
        vec![CLIENT.to_string()]
    );
    let res = outbound
        .outbound_get("/orders/7", "orders-by-secret.internal")
        .await;
    assert_eq!(
        res.status(),
        403,
        "azpacr 1 refused by the certificate-only route"
    );
    assert_eq!(legacy.requests(), 1);
}
