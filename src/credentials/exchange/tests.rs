use super::*;

fn jwt(payload: &str) -> String {
    format!("eyJhbGciOiJSUzI1NiJ9.{}.c2ln", URL_SAFE_NO_PAD.encode(payload))
}

#[test]
fn an_unexpired_jwt_is_a_user_token() {
    let t = UserToken::parse(&jwt(r#"{"exp":2000,"oid":"u"}"#), 1000).unwrap();
    assert_eq!(t.exp_unix, 2000);
    assert_eq!(t.expose(), jwt(r#"{"exp":2000,"oid":"u"}"#));
}

#[test]
fn expired_or_malformed_user_tokens_are_refused_before_any_exchange() {
    let parse = |t: &str| UserToken::parse(t, 1000).err();
    assert_eq!(parse(&jwt(r#"{"exp":1000}"#)), Some(UserTokenError::Expired));
    assert_eq!(parse(&jwt(r#"{"exp":"soon"}"#)), Some(UserTokenError::Malformed));
    assert_eq!(parse(&jwt(r#"{"sub":"u"}"#)), Some(UserTokenError::Malformed));
    assert_eq!(parse("opaque-token"), Some(UserTokenError::Malformed));
    assert_eq!(parse("a.b.c.d"), Some(UserTokenError::Malformed));
    assert_eq!(parse("a.!!!.c"), Some(UserTokenError::Malformed));
}

#[test]
fn only_a_bearer_authorization_carries_a_user_token() {
    let header = |v: &str| http::HeaderValue::from_str(v).unwrap();
    let missing = Some(UserTokenError::Missing);
    assert_eq!(UserToken::from_authorization(None).err(), missing);
    assert_eq!(
        UserToken::from_authorization(Some(&header("Basic dTpw"))).err(),
        missing
    );
    let token = jwt(&format!(r#"{{"exp":{}}}"#, unix_now() + 60));
    assert!(UserToken::from_authorization(Some(&header(&format!("bearer {token}")))).is_ok());
}

#[test]
fn a_claims_challenge_is_passed_on_base64_encoded() {
    let failure = |error: &str, claims: Option<&str>| ExchangeFailure::Acquire {
        credential: "obo".into(),
        cause: Arc::new(AcquireError::Refused {
            status: 400,
            error: Some(error.into()),
            description: None,
            codes: vec![50076],
            claims: claims.map(str::to_string),
        }),
    };
    let claims = r#"{"access_token":{"capolids":{"essential":true,"values":["x"]}}}"#;
    let f = failure("invalid_grant", Some(claims));
    let challenge = f.claims_challenge().unwrap().www_authenticate();
    use base64::engine::general_purpose::STANDARD;
    assert_eq!(
        challenge,
        format!(
            r#"Bearer realm="tollgate", error="insufficient_claims", claims="{}""#,
            STANDARD.encode(claims)
        )
    );
    assert!(failure("interaction_required", None).claims_challenge().is_some());
    let plain = failure("invalid_grant", None);
    assert!(plain.claims_challenge().is_none());
    assert!(!plain.idp_unavailable());
}

mod at_capacity {
    use super::*;
    use crate::config::{CredentialAuth, Exchange, SecretMethod, SecretSource};
    use crate::devissuer::{ClientAuth, DEV_TENANT, DevIssuer};

    fn user(issuer: &DevIssuer, oid: &str) -> UserToken {
        let now = unix_now();
        let token = issuer.token(serde_json::json!({
            "aud": "api://middle", "scp": "access_as_user", "oid": oid, "sub": oid,
            "tid": DEV_TENANT, "iat": now, "exp": now + 3600,
        }));
        UserToken::parse(&token, now).unwrap()
    }

    fn oid_of(token: &Token) -> String {
        let jwt = token.bearer.to_str().unwrap().trim_start_matches("Bearer ");
        let payload = URL_SAFE_NO_PAD.decode(jwt.split('.').nth(1).unwrap()).unwrap();
        let claims: serde_json::Value = serde_json::from_slice(&payload).unwrap();
        claims["oid"].as_str().unwrap().to_string()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn users_never_receive_each_others_token_when_the_cache_is_full() {
        let issuer = DevIssuer::start("127.0.0.1:0".parse().unwrap()).await.unwrap();
        issuer.add_client("middle", ClientAuth::Secret("s".into()), &[]);
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("secret"), "s").unwrap();
        let credential = Credential {
            name: "obo".into(),
            scopes: vec!["api://inventory/Inventory.Read".into()],
            extra_params: Vec::new(),
            auth: CredentialAuth::ClientSecret {
                token_url: issuer.token_url().parse().unwrap(),
                client_id: "middle".into(),
                secret: SecretSource::File(dir.path().join("secret")),
                method: SecretMethod::Post,
            },
            exchange: Some(Exchange {
                grant: ExchangeGrant::OnBehalfOf,
                subject_issuer: None,
            }),
        };
        // Room for about three tokens (each weighs its ~800 bytes plus overhead).
        let capacity = 3_000;
        let cache = Arc::new(UserTokenCache::new(
            &credential,
            reqwest::Client::new(),
            Metrics::new().unwrap(),
            capacity,
        ));
        let users: Vec<(String, Arc<UserToken>)> = (0..12)
            .map(|i| {
                let oid = format!("user-{i}");
                let token = Arc::new(user(&issuer, &oid));
                (oid, token)
            })
            .collect();
        let mut tasks = tokio::task::JoinSet::new();
        for _round in 0..4 {
            for (oid, token) in &users {
                let (cache, oid, token) = (cache.clone(), oid.clone(), token.clone());
                tasks.spawn(async move {
                    let got = cache.get(&token).await.unwrap();
                    assert_eq!(oid_of(&got), oid, "a user received another user's token");
                });
            }
        }
        while let Some(done) = tasks.join_next().await {
            done.unwrap();
        }
        assert!(cache.len().await <= 3, "bounded: {} entries", cache.len().await);
        assert!(!issuer.token_requests().is_empty());
        assert!(issuer.token_requests().iter().all(|r| r.status == 200));
    }
}
