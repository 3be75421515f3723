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
