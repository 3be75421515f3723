//! Every forged or invalid token is refused with 401 `invalid_token`, never forwarded, and
//! never echoed back.

use jsonwebtoken::Algorithm;
use serde_json::{Value, json};
use tollgate::devissuer::{SigningKey, b64_json};

use super::{World, parts};

/// Assert 401 invalid_token, a description that does not echo the token, nothing forwarded.
async fn assert_refused(w: &World, token: &str, why: &str) {
    let (status, body, www) = parts(w.get("/orders", Some(token)).await).await;
    assert_eq!(status, 401, "{why}: {body}");
    assert_eq!(body["error"], "invalid_token", "{why}: {body}");
    assert!(www.contains(r#"error="invalid_token""#), "{why}: {www}");
    let text = body.to_string();
    for part in token.split('.').filter(|p| p.len() > 8) {
        assert!(
            !text.contains(part) && !www.contains(part),
            "{why}: the token leaked into the reply"
        );
    }
    assert_eq!(w.upstream.requests(), 0, "{why}: forwarded");
}

fn unsigned(header: Value, claims: &Value, signature: &str) -> String {
    format!("{}.{}.{signature}", b64_json(&header), b64_json(claims))
}

#[tokio::test]
async fn alg_none_in_several_spellings() {
    let w = World::new().await;
    for alg in ["none", "None", "NONE", "nOnE"] {
        for sig in ["", "e30"] {
            let token = unsigned(json!({"alg": alg, "typ": "JWT"}), &w.claims(), sig);
            assert_refused(&w, &token, &format!("alg {alg}")).await;
        }
    }
}

#[tokio::test]
async fn hs256_signed_with_the_rsa_public_key() {
    let w = World::new().await;
    let key = w.issuer.signing_key();
    let header = json!({"alg": "HS256", "typ": "JWT", "kid": key.kid});
    let input = format!("{}.{}", b64_json(&header), b64_json(&w.claims()));
    for secret in [
        key.public_pem().as_bytes().to_vec(),
        key.jwk()["n"].as_str().unwrap().as_bytes().to_vec(),
    ] {
        let hmac = jsonwebtoken::EncodingKey::from_secret(&secret);
        let sig = jsonwebtoken::crypto::sign(input.as_bytes(), &hmac, Algorithm::HS256).unwrap();
        assert_refused(&w, &format!("{input}.{sig}"), "HS256 with the public key").await;
    }
}

#[tokio::test]
async fn expired_not_yet_valid_missing_exp() {
    let w = World::new().await;
    let key = w.issuer.signing_key();
    let now = w.claims()["iat"].as_i64().unwrap();
    let mut c = w.claims();
    c["exp"] = json!(now - 3600);
    assert_refused(&w, &key.sign(&c), "expired").await;
    let mut c = w.claims();
    c["nbf"] = json!(now + 3600);
    assert_refused(&w, &key.sign(&c), "nbf in the future").await;
    let mut c = w.claims();
    c.as_object_mut().unwrap().remove("exp");
    assert_refused(&w, &key.sign(&c), "missing exp").await;
}

#[tokio::test]
async fn wrong_issuer_and_wrong_audience() {
    let w = World::new().await;
    let key = w.issuer.signing_key();
    let mut c = w.claims();
    c["iss"] = json!("https://login.microsoftonline.com/other-tenant/v2.0");
    assert_refused(&w, &key.sign(&c), "wrong iss").await;
    let mut c = w.claims();
    c["aud"] = json!("api://someone-else");
    let (_, body, _) = parts(w.get("/orders", Some(&key.sign(&c))).await).await;
    assert!(
        body["error_description"].as_str().unwrap().contains("audience"),
        "{body}"
    );
    assert_refused(&w, &key.sign(&c), "wrong aud").await;
}

#[tokio::test]
async fn keys_named_inside_the_token_are_never_used() {
    let w = World::new().await;
    let attacker = SigningKey::generate_rsa("attacker", Algorithm::RS256).unwrap();
    let kid = w.issuer.signing_key().kid.clone();
    for (field, value) in [
        ("jwk", attacker.jwk().clone()),
        ("jku", json!(format!("http://{}/keys", w.issuer.addr()))),
        ("x5u", json!("https://attacker.example.com/cert.pem")),
        ("x5c", json!(["MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA"])),
    ] {
        // Trusted kid, attacker's signature, attacker's key offered in the header.
        let token =
            attacker.sign_with_header(&json!({"alg": "RS256", "kid": kid, field: value}), &w.claims());
        assert_refused(&w, &token, field).await;
    }
}

#[tokio::test]
async fn unknown_crit_header() {
    let w = World::new().await;
    let key = w.issuer.signing_key();
    let token = key.sign_with_header(
        &json!({"alg": "RS256", "kid": key.kid, "crit": ["b64"], "b64": false}),
        &w.claims(),
    );
    assert_refused(&w, &token, "crit").await;
}

#[tokio::test]
async fn truncated_garbled_and_swapped_signatures() {
    let w = World::new().await;
    let token = w.issuer.token(w.claims());
    let (input, sig) = token.rsplit_once('.').unwrap();
    assert_refused(&w, &format!("{input}.{}", &sig[..sig.len() - 10]), "truncated").await;
    let mut garbled: Vec<char> = sig.chars().collect();
    garbled[5] = if garbled[5] == 'A' { 'B' } else { 'A' };
    assert_refused(
        &w,
        &format!("{input}.{}", garbled.into_iter().collect::<String>()),
        "garbled",
    )
    .await;
    assert_refused(&w, input, "no signature part").await;
    let mut more_roles = w.claims();
    more_roles["roles"] = json!(["Orders.Read", "Orders.Write"]);
    let header = input.split('.').next().unwrap();
    assert_refused(
        &w,
        &format!("{header}.{}.{sig}", b64_json(&more_roles)),
        "payload swapped",
    )
    .await;
}

#[tokio::test]
async fn a_different_key_under_a_trusted_kid() {
    let w = World::new().await;
    let kid = w.issuer.signing_key().kid.clone();
    let impostor = SigningKey::generate_rsa(&kid, Algorithm::RS256).unwrap();
    assert_refused(&w, &impostor.sign(&w.claims()), "impostor key").await;
}

#[tokio::test]
async fn kid_with_path_or_sql_characters() {
    let w = World::new().await;
    let key = w.issuer.signing_key();
    for kid in ["../../../etc/passwd", "x' OR '1'='1", "%2e%2e/keys", "k\u{0}id"] {
        let token = key.sign_with_header(&json!({"alg": "RS256", "kid": kid}), &w.claims());
        assert_refused(&w, &token, kid).await;
    }
}

#[tokio::test]
async fn a_token_over_the_size_limit() {
    let w = World::with("  max_token_bytes: 2048").await;
    let mut c = w.claims();
    c["padding"] = json!("x".repeat(4096));
    let token = w.issuer.token(c);
    let (status, body, _) = parts(w.get("/orders", Some(&token)).await).await;
    assert_eq!((status, body["error"].as_str()), (401, Some("invalid_token")));
    assert!(
        body["error_description"].as_str().unwrap().contains("larger"),
        "{body}"
    );
    assert_eq!(w.upstream.requests(), 0);
}

#[tokio::test]
async fn an_es256_token_against_an_rs256_issuer() {
    let w = World::new().await;
    let ec = SigningKey::generate_es256(&w.issuer.signing_key().kid).unwrap();
    assert_refused(&w, &ec.sign(&w.claims()), "ES256 not on the allow-list").await;
}
