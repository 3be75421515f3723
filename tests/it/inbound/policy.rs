//! The contract's inbound responses: 401 without a token, 400 for malformed requests,
//! 403 naming the unmet requirement, v1 and v2 Entra tokens, audit mode, gRPC.

use serde_json::json;

use super::{AUD, CERT_CLIENT, TENANT, World, parts};
use crate::support::upstream::seen;

#[tokio::test]
async fn an_allowed_request_reaches_the_upstream_with_identity_headers() {
    let w = World::new().await;
    let token = w.token("reader-app", "1", &["Orders.Read", "Other"]);
    let res = w.get("/orders/7?x=1", Some(&token)).await;
    assert_eq!(res.status(), 200);
    let echo: serde_json::Value = res.json().await.unwrap();
    assert_eq!(echo["path"], "/orders/7?x=1");
    assert_eq!(seen(&echo, "x-client-id"), ["reader-app"]);
    assert_eq!(seen(&echo, "x-client-roles"), ["Orders.Read,Other"]);
    assert_eq!(
        seen(&echo, "authorization"),
        [format!("Bearer {token}")],
        "passed on by default"
    );
    assert_eq!(w.upstream.requests(), 1);
}

#[tokio::test]
async fn no_token_is_401_with_a_bearer_challenge_and_no_error_code() {
    let w = World::new().await;
    let (status, body, www) = parts(w.get("/orders", None).await).await;
    assert_eq!(status, 401);
    assert_eq!(
        www, r#"Bearer realm="tollgate""#,
        "RFC 6750 §3.1: no error code in the challenge"
    );
    assert_eq!(body["error"], "missing_token", "{body}");
    assert!(body["error_description"].is_string());
    assert_eq!(w.upstream.requests(), 0);
}

#[tokio::test]
async fn two_authorization_headers_or_another_scheme_are_400() {
    let w = World::new().await;
    let token = w.token("reader-app", "1", &["Orders.Read"]);
    let res = w
        .http
        .get(w.tollgate.url("/orders"))
        .header("authorization", format!("Bearer {token}"))
        .header("authorization", format!("Bearer {token}"))
        .send()
        .await
        .unwrap();
    let (status, body, www) = parts(res).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_request")));
    assert!(www.contains(r#"error="invalid_request""#));
    let res = w
        .http
        .get(w.tollgate.url("/orders"))
        .basic_auth("u", Some("p"))
        .send()
        .await
        .unwrap();
    assert_eq!(parts(res).await.0, 400);
    assert_eq!(w.upstream.requests(), 0);
}

#[tokio::test]
async fn bearer_scheme_is_case_insensitive() {
    let w = World::new().await;
    let token = w.token("reader-app", "1", &["Orders.Read"]);
    for scheme in ["bearer", "BEARER", "Bearer"] {
        let res = w
            .http
            .get(w.tollgate.url("/orders"))
            .header("authorization", format!("{scheme} {token}"))
            .send()
            .await;
        assert_eq!(res.unwrap().status(), 200, "{scheme}");
    }
}

#[tokio::test]
async fn a_missing_role_is_403_naming_the_requirement() {
    let w = World::new().await;
    let token = w.token("reader-app", "1", &["Something.Else"]);
    let (status, body, www) = parts(w.get("/orders", Some(&token)).await).await;
    assert_eq!(status, 403);
    assert_eq!(body["error"], "insufficient_scope");
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("Orders.Read"),
        "{body}"
    );
    assert!(www.contains(r#"error="insufficient_scope""#), "{www}");
    assert_eq!(w.upstream.requests(), 0);
}

#[tokio::test]
async fn certificate_only_route_accepts_v2_and_v1_certificate_clients_and_refuses_a_secret_client() {
    let w = World::new().await;
    // v2: azp / azpacr
    let v2 = w.token(CERT_CLIENT, "2", &["Orders.Write"]);
    let res = w
        .http
        .post(w.tollgate.url("/orders"))
        .bearer_auth(&v2)
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    // v1: iss sts.windows.net, appid / appidacr
    let mut v1 = w.claims();
    let obj = v1.as_object_mut().unwrap();
    obj.remove("azp");
    obj.remove("azpacr");
    obj.insert("iss".into(), json!(format!("https://sts.windows.net/{TENANT}/")));
    obj.insert("appid".into(), json!(CERT_CLIENT));
    obj.insert("appidacr".into(), json!("2"));
    obj.insert("ver".into(), json!("1.0"));
    obj.insert("roles".into(), json!(["Orders.Write"]));
    let v1 = w.issuer.signing_key().sign(&v1);
    let res = w
        .http
        .delete(w.tollgate.url("/orders/7"))
        .bearer_auth(&v1)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let echo: serde_json::Value = res.json().await.unwrap();
    assert_eq!(seen(&echo, "x-client-app"), [CERT_CLIENT]);
    // the same client, authenticated with a secret: 403 naming azpacr
    let secret = w.token(CERT_CLIENT, "1", &["Orders.Write"]);
    let (status, body, _) = parts(
        w.http
            .post(w.tollgate.url("/orders"))
            .bearer_auth(&secret)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 403);
    assert!(
        body["error_description"].as_str().unwrap().contains("azpacr"),
        "{body}"
    );
    // another client with a certificate: 403 naming clients
    let other = w.token("someone-else", "2", &["Orders.Write"]);
    let (status, body, _) = parts(
        w.http
            .post(w.tollgate.url("/orders"))
            .bearer_auth(&other)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 403);
    assert!(
        body["error_description"].as_str().unwrap().contains("client"),
        "{body}"
    );
    assert_eq!(w.upstream.requests(), 2);
}

#[tokio::test]
async fn any_of_and_claims_requirements() {
    let w = World::new().await;
    let mut by_scope = w.claims();
    by_scope["roles"] = json!([]);
    by_scope["scp"] = json!("reports.read other");
    let t = w.issuer.signing_key().sign(&by_scope);
    assert_eq!(w.get("/reports/q3", Some(&t)).await.status(), 200);
    by_scope["idtyp"] = json!("user");
    let t = w.issuer.signing_key().sign(&by_scope);
    let (status, body, _) = parts(w.get("/reports/q3", Some(&t)).await).await;
    assert_eq!(status, 403);
    assert!(
        body["error_description"].as_str().unwrap().contains("idtyp"),
        "{body}"
    );
}

#[tokio::test]
async fn prefixes_match_whole_segments_and_unmatched_requests_are_403() {
    let w = World::new().await;
    let token = w.token("reader-app", "1", &["Orders.Read"]);
    let (status, body, _) = parts(w.get("/ordersX", Some(&token)).await).await;
    assert_eq!(status, 403, "/ordersX must not match /orders");
    assert!(
        body["error_description"].as_str().unwrap().contains("no route"),
        "{body}"
    );
    assert_eq!(w.get("/orders/", Some(&token)).await.status(), 200);
    assert_eq!(w.upstream.requests(), 1);
}

#[tokio::test]
async fn anonymous_routes_need_no_token() {
    let w = World::new().await;
    assert_eq!(w.get("/healthz", None).await.status(), 200);
    assert_eq!(
        w.get("/healthz/deep", Some("garbage")).await.status(),
        200,
        "a token is not even read"
    );
}

#[tokio::test]
async fn audit_mode_forwards_refused_requests_and_counts_would_deny() {
    let w = World::with("  mode: audit").await;
    let res = w.get("/orders", None).await;
    assert_eq!(res.status(), 200, "audit forwards");
    let token = w.token("reader-app", "1", &["Nope"]);
    let res = w.get("/orders", Some(&token)).await;
    let echo: serde_json::Value = res.json().await.unwrap();
    assert!(
        seen(&echo, "x-client-id").is_empty(),
        "no identity for a request that would be denied"
    );
    assert_eq!(w.upstream.requests(), 2);
    let metrics = w.tollgate.metrics().await;
    assert!(
        metrics.contains(r#"tollgate_inbound_requests_total{decision="would_deny",reason="no_token",route="orders-read"} 1"#),
        "{metrics}"
    );
    assert!(
        metrics.contains(r#"decision="would_deny",reason="roles_any",route="orders-read"} 1"#),
        "{metrics}"
    );
}

#[tokio::test]
async fn grpc_requests_get_grpc_status_16_or_7() {
    let w = World::new().await;
    let grpc = |token: Option<String>| {
        let mut req = w
            .http
            .post(w.tollgate.url("/orders"))
            .header("content-type", "application/grpc");
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        req.send()
    };
    let res = grpc(None).await.unwrap();
    assert_eq!(res.status(), 200, "trailers-only responses are HTTP 200");
    assert_eq!(res.headers()["grpc-status"], "16");
    assert_eq!(res.headers()["content-type"], "application/grpc");
    let res = grpc(Some(w.token("reader-app", "1", &["Orders.Read"])))
        .await
        .unwrap();
    assert_eq!(res.headers()["grpc-status"], "7");
    assert!(
        res.headers()["grpc-message"]
            .to_str()
            .unwrap()
            .contains("Orders.Write")
    );
    assert_eq!(w.upstream.requests(), 0);
}

#[tokio::test]
async fn metrics_count_decisions_by_route_and_reason() {
    let w = World::new().await;
    let token = w.token("reader-app", "1", &["Orders.Read"]);
    w.get("/orders", Some(&token)).await;
    w.get("/orders", None).await;
    let metrics = w.tollgate.metrics().await;
    assert!(
        metrics.contains(
            r#"tollgate_inbound_requests_total{decision="allow",reason="ok",route="orders-read"} 1"#
        ),
        "{metrics}"
    );
    assert!(
        metrics.contains(
            r#"tollgate_inbound_requests_total{decision="deny",reason="no_token",route="orders-read"} 1"#
        ),
        "{metrics}"
    );
    assert!(
        metrics.contains(r#"tollgate_inbound_request_duration_seconds_count{route="orders-read"} 2"#),
        "{metrics}"
    );
    assert!(
        metrics.contains(r#"tollgate_jwks_refreshes_total{issuer="dev",result="ok"}"#),
        "{metrics}"
    );
}

#[tokio::test]
async fn an_audience_list_accepts_any_configured_audience() {
    let w = World::new().await;
    let mut c = w.claims();
    c["aud"] = json!(["something-else", AUD]);
    let t = w.issuer.signing_key().sign(&c);
    assert_eq!(w.get("/orders", Some(&t)).await.status(), 200);
}

#[tokio::test]
async fn token_kind_user_admits_a_delegated_token_and_refuses_an_app_token() {
    let w = World::new().await;
    let mut user = w.claims();
    user["scp"] = json!("Orders.Read");
    user["oid"] = json!("user-oid-1");
    // no `idtyp` (Entra sends it only when configured): `scp` makes it a user token
    user.as_object_mut().unwrap().remove("roles");
    user.as_object_mut().unwrap().remove("idtyp");
    let user = w.issuer.token(user);
    let res = w.get("/profile", Some(&user)).await;
    assert_eq!(res.status(), 200);

    // an app token with the same scope claim but Entra's `idtyp: app`
    let mut app = w.claims();
    app["scp"] = json!("Orders.Read");
    assert_eq!(app["idtyp"], "app");
    let app = w.issuer.token(app);
    let (status, body, www) = parts(w.get("/profile", Some(&app)).await).await;
    assert_eq!(status, 403);
    assert!(www.contains(r#"error="insufficient_scope""#), "{www}");
    let description = body["error_description"].as_str().unwrap();
    assert!(description.contains("a user token"), "{body}");
    assert_eq!(w.upstream.requests(), 1);
}

/// A signed token may name a claim twice (RFC 7519 §4 lets a reader refuse it or keep the
/// last). tollgate keeps the last, for the policy and the identity headers alike: a
/// granting first value does not open a route the last one closes, and the identity
/// forwarded is the one the policy judged.
#[tokio::test]
async fn a_claim_named_twice_counts_by_its_last_value_for_policy_and_identity() {
    let w = World::new().await;
    let key = w.issuer.signing_key();
    let header = json!({"typ": "JWT", "alg": "RS256", "kid": key.kid});
    // A valid token's claims as JSON text: `{..., "azp": CERT_CLIENT, "roles": ["Orders.Read"], ...}`.
    let valid = w.claims().to_string();
    let inner = &valid[1..valid.len() - 1];

    let closing = key.sign_payload(&header, &format!(r#"{{{inner},"roles":["Something.Else"]}}"#));
    let (status, body, _) = parts(w.get("/orders", Some(&closing)).await).await;
    assert_eq!(status, 403, "granting roles first, refusing roles last: {body}");
    assert_eq!(w.upstream.requests(), 0, "forwarded");

    let opening = key.sign_payload(
        &header,
        &format!(r#"{{"roles":["Something.Else"],"azp":"admin-app",{inner}}}"#),
    );
    let res = w.get("/orders", Some(&opening)).await;
    assert_eq!(res.status(), 200, "refusing roles first, granting roles last");
    let echo: serde_json::Value = res.json().await.unwrap();
    assert_eq!(seen(&echo, "x-client-id"), [CERT_CLIENT], "{echo}");
    assert_eq!(seen(&echo, "x-client-roles"), ["Orders.Read"], "{echo}");
}
