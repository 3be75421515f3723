//! Signing keys: rotation through an unknown kid, at most one fetch per 30 s under a flood,
//! keys surviving an issuer outage, readiness waiting for the first fetch.

use std::time::Duration;

use jsonwebtoken::Algorithm;
use serde_json::json;
use tollgate::devissuer::{DevIssuer, SigningKey};

use super::{World, config, parts};
use crate::support::tollgate::Tollgate;
use crate::support::upstream::Upstream;

#[tokio::test]
async fn a_rotated_key_is_picked_up_through_one_refresh() {
    let w = World::new().await;
    let before = w.issuer.jwks_requests();
    w.issuer
        .rotate_to(SigningKey::generate_rsa("dev-key-2", Algorithm::RS256).unwrap());
    let token = w.issuer.token(w.claims());
    assert_eq!(w.get("/orders", Some(&token)).await.status(), 200);
    assert_eq!(w.issuer.jwks_requests(), before + 1, "exactly one refresh");
}

#[tokio::test]
async fn an_unknown_kid_is_refused_after_one_refresh() {
    let w = World::new().await;
    let before = w.issuer.jwks_requests();
    let stranger = SigningKey::generate_rsa("never-published", Algorithm::RS256).unwrap();
    let (status, body, _) = parts(w.get("/orders", Some(&stranger.sign(&w.claims()))).await).await;
    assert_eq!((status, body["error"].as_str()), (401, Some("invalid_token")));
    assert!(
        body["error_description"].as_str().unwrap().contains("kid"),
        "{body}"
    );
    assert_eq!(w.issuer.jwks_requests(), before + 1);
    assert_eq!(w.upstream.requests(), 0);
}

#[tokio::test]
async fn a_flood_of_unknown_kids_causes_at_most_one_fetch() {
    let w = World::new().await;
    let before = w.issuer.jwks_requests();
    let key = w.issuer.signing_key();
    let mut requests = Vec::new();
    for i in 0..200 {
        let token = key.sign_with_header(&json!({"alg": "RS256", "kid": format!("flood-{i}")}), &w.claims());
        let req = w.http.get(w.tollgate.url("/orders")).bearer_auth(token).send();
        requests.push(tokio::spawn(req));
    }
    for r in requests {
        assert_eq!(r.await.unwrap().unwrap().status(), 401);
    }
    assert_eq!(
        w.issuer.jwks_requests(),
        before + 1,
        "one fetch for 200 unknown kids"
    );
    // a later unknown kid within the 30 s cooldown fetches nothing
    let token = key.sign_with_header(&json!({"alg": "RS256", "kid": "later"}), &w.claims());
    assert_eq!(w.get("/orders", Some(&token)).await.status(), 401);
    assert_eq!(w.issuer.jwks_requests(), before + 1);
    assert_eq!(w.upstream.requests(), 0);
}

#[tokio::test]
async fn keys_survive_the_issuer_going_down() {
    let w = World::new().await;
    w.issuer.set_available(false);
    let token = w.issuer.token(w.claims());
    assert_eq!(w.get("/orders", Some(&token)).await.status(), 200);
    // an unknown kid tries a refresh, which fails: the old keys stay
    let stranger = SigningKey::generate_rsa("unknown", Algorithm::RS256).unwrap();
    assert_eq!(
        w.get("/orders", Some(&stranger.sign(&w.claims()))).await.status(),
        401
    );
    assert_eq!(w.get("/orders", Some(&token)).await.status(), 200);
    w.issuer.stop();
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(w.get("/orders", Some(&token)).await.status(), 200);
    let metrics = w.tollgate.metrics().await;
    assert!(
        metrics.contains(r#"tollgate_jwks_refreshes_total{issuer="dev",result="error"} 1"#),
        "{metrics}"
    );
}

#[tokio::test]
async fn readiness_waits_for_the_first_key_fetch() {
    let issuer = DevIssuer::start("127.0.0.1:0".parse().unwrap()).await.unwrap();
    issuer.set_available(false);
    let upstream = Upstream::start().await;
    let t = Tollgate::start_in(&config(&issuer, &upstream, ""), std::path::Path::new("/")).await;
    let res = reqwest::get(format!("http://{}/readyz", t.admin)).await.unwrap();
    assert_eq!(res.status(), 503);
    let body: serde_json::Value = res.json().await.unwrap();
    assert!(body["waiting_for"]["issuer/dev"].is_string(), "{body}");
    // requests meanwhile: 503, the keys are not there yet
    let token = issuer.token(World::claims_for(&issuer));
    let res = reqwest::Client::new()
        .get(t.url("/orders"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 503);
    issuer.set_available(true);
    t.wait_ready().await;
    let res = reqwest::Client::new()
        .get(t.url("/orders"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
}

#[tokio::test]
async fn static_keys_from_a_jwks_file() {
    let issuer = DevIssuer::start("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let upstream = Upstream::start().await;
    let dir = tempfile::tempdir().unwrap();
    let jwks = json!({"keys": [issuer.signing_key().jwk()]}).to_string();
    std::fs::write(dir.path().join("keys.json"), jwks).unwrap();
    let yaml = config(&issuer, &upstream, "")
        .replace(
            &format!("discovery_url: {}", issuer.discovery_url()),
            "jwks_file: keys.json",
        )
        .replace(
            &format!("jwks_uri: {}", issuer.jwks_url()),
            "jwks_file: keys.json",
        );
    let t = Tollgate::start_in(&yaml, dir.path()).await;
    t.wait_ready().await;
    issuer.stop();
    let token = issuer.token(World::claims_for(&issuer));
    let res = reqwest::Client::new()
        .get(t.url("/orders"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(issuer.jwks_requests(), 0, "no network for a jwks_file issuer");
}

/// A token accepted before (its signature remembered) is refused once the issuer stops
/// publishing the key that signed it: the remembered signatures belong to the old key set.
#[tokio::test]
async fn a_remembered_signature_does_not_outlive_its_key() {
    let w = World::new().await;
    let old_token = w.issuer.token(w.claims());
    for _ in 0..3 {
        assert_eq!(w.get("/orders", Some(&old_token)).await.status(), 200);
    }
    // The issuer rotates and withdraws the old key; an unknown kid makes tollgate refresh.
    let new_key = SigningKey::generate_rsa("dev-key-2", Algorithm::RS256).unwrap();
    w.issuer.rotate_to(new_key);
    w.issuer.publish_only(vec![w.issuer.signing_key()]);
    let new_token = w.issuer.token(w.claims());
    assert_eq!(w.get("/orders", Some(&new_token)).await.status(), 200);
    let (status, body, _) = parts(w.get("/orders", Some(&old_token)).await).await;
    assert_eq!(status, 401, "{body}");
}
