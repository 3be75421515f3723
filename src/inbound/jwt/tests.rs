use std::collections::BTreeSet;
use std::sync::OnceLock;
use std::time::Duration;

use serde_json::{Map, json};

use super::*;
use crate::config::KeySource;
use crate::devissuer::{SigningKey, alg_name, b64_json};
use crate::inbound::keys::KeySet;

const NOW: i64 = 1_800_000_000;

fn key() -> &'static SigningKey {
    static KEY: OnceLock<SigningKey> = OnceLock::new();
    KEY.get_or_init(|| SigningKey::generate_rsa("k1", Algorithm::RS256).unwrap())
}

fn keyset() -> KeySet {
    let doc = json!({ "keys": [key().jwk()] }).to_string();
    KeySet::from_json(doc.as_bytes()).unwrap().0
}

fn issuer(pattern: IssuerPattern) -> Issuer {
    Issuer {
        name: "test".into(),
        issuer: pattern,
        keys: KeySource::JwksFile("/dev/null".into()),
        audiences: vec!["api://orders".into()],
        algorithms: vec![Algorithm::RS256],
        leeway: Duration::from_secs(60),
        remembered_tokens: 16,
    }
}

fn exact() -> Issuer {
    issuer(IssuerPattern::Exact("https://issuer.example.com".into()))
}

fn claims() -> Value {
    json!({ "iss": "https://issuer.example.com", "aud": "api://orders", "exp": NOW + 600, "iat": NOW, "nbf": NOW })
}

/// Run every check in order, as the inbound handler does.
fn check(token: &str, issuers: &[Issuer]) -> Result<IssuerId, TokenError> {
    let t = parse(token)?;
    let id = select_issuer(&t.claims, issuers)?;
    check_algorithm(t.alg, &issuers[id.0])?;
    let set = keyset();
    let k = set.find(t.kid.as_deref(), t.alg).map_err(key_error)?;
    verify_signature(&t, k)?;
    validate_claims(&t.claims, &issuers[id.0], NOW)?;
    Ok(id)
}

fn with_claims(change: impl FnOnce(&mut Map<String, Value>)) -> String {
    let mut c = claims();
    change(c.as_object_mut().unwrap());
    key().sign(&c)
}

#[test]
fn a_valid_token_passes() {
    assert_eq!(check(&key().sign(&claims()), &[exact()]), Ok(IssuerId(0)));
}

#[test]
fn alg_none_is_refused_in_every_spelling() {
    for alg in ["none", "None", "NONE", "nOnE", " none"] {
        let header = json!({ "alg": alg, "typ": "JWT" });
        for sig in ["", "AAAA"] {
            let token = format!("{}.{}.{sig}", b64_json(&header), b64_json(&claims()));
            assert_eq!(
                check(&token, &[exact()]),
                Err(TokenError::AlgorithmNone),
                "{alg} sig={sig:?}"
            );
        }
    }
}

#[test]
fn hmac_signed_with_the_public_key_is_refused() {
    let header = json!({ "alg": "HS256", "typ": "JWT", "kid": "k1" });
    let input = format!("{}.{}", b64_json(&header), b64_json(&claims()));
    let secret = jsonwebtoken::EncodingKey::from_secret(key().public_pem().as_bytes());
    let sig = jsonwebtoken::crypto::sign(input.as_bytes(), &secret, Algorithm::HS256).unwrap();
    assert_eq!(
        check(&format!("{input}.{sig}"), &[exact()]),
        Err(TokenError::AlgorithmNotAllowed)
    );
}

#[test]
fn an_algorithm_outside_the_issuers_list_is_refused() {
    let header = json!({ "alg": "PS256", "kid": "k1" });
    let input = format!("{}.{}", b64_json(&header), b64_json(&claims()));
    assert_eq!(
        check(&format!("{input}.AAAA"), &[exact()]),
        Err(TokenError::AlgorithmNotAllowed)
    );
}

#[test]
fn crit_header_is_refused() {
    let token = key().sign_with_header(
        &json!({ "alg": "RS256", "kid": "k1", "crit": ["exp"] }),
        &claims(),
    );
    assert_eq!(check(&token, &[exact()]), Err(TokenError::CriticalHeader));
}

#[test]
fn embedded_keys_are_ignored_so_a_self_signed_token_fails() {
    let attacker = SigningKey::generate_rsa("k1", Algorithm::RS256).unwrap();
    for field in ["jwk", "jku", "x5u", "x5c"] {
        let value = match field {
            "jwk" => attacker.jwk().clone(),
            "x5c" => json!(["MIIB"]),
            _ => json!("https://attacker.example.com/keys"),
        };
        let token =
            attacker.sign_with_header(&json!({ "alg": "RS256", "kid": "k1", field: value }), &claims());
        assert_eq!(
            check(&token, &[exact()]),
            Err(TokenError::BadSignature),
            "{field}"
        );
    }
}

#[test]
fn tampered_truncated_and_garbled_signatures_are_refused() {
    let token = key().sign(&claims());
    let (input, sig) = token.rsplit_once('.').unwrap();
    let truncated = format!("{input}.{}", &sig[..sig.len() / 2]);
    let garbled = format!("{input}.{}", sig.chars().rev().collect::<String>());
    let not_b64 = format!("{input}.!!!!");
    for t in [truncated, garbled, not_b64] {
        assert_eq!(check(&t, &[exact()]), Err(TokenError::BadSignature));
    }
    let other_payload =
        b64_json(&json!({ "iss": "https://issuer.example.com", "aud": "api://orders", "exp": NOW + 9999 }));
    let (header, _) = input.split_once('.').unwrap();
    assert_eq!(
        check(&format!("{header}.{other_payload}.{sig}"), &[exact()]),
        Err(TokenError::BadSignature)
    );
}

#[test]
fn time_claims() {
    assert_eq!(
        check(
            &with_claims(|c| {
                c.remove("exp");
            }),
            &[exact()]
        ),
        Err(TokenError::MissingExpiry)
    );
    assert_eq!(
        check(
            &with_claims(|c| {
                c.insert("exp".into(), json!(NOW - 61));
            }),
            &[exact()]
        ),
        Err(TokenError::Expired)
    );
    assert!(
        check(
            &with_claims(|c| {
                c.insert("exp".into(), json!(NOW - 30));
            }),
            &[exact()]
        )
        .is_ok(),
        "within leeway"
    );
    assert_eq!(
        check(
            &with_claims(|c| {
                c.insert("nbf".into(), json!(NOW + 120));
            }),
            &[exact()]
        ),
        Err(TokenError::NotYetValid)
    );
    assert_eq!(
        check(
            &with_claims(|c| {
                c.insert("iat".into(), json!(NOW + 120));
            }),
            &[exact()]
        ),
        Err(TokenError::IssuedInFuture)
    );
    assert!(matches!(
        check(
            &with_claims(|c| {
                c.insert("exp".into(), json!("soon"));
            }),
            &[exact()]
        ),
        Err(TokenError::Malformed(_))
    ));
}

#[test]
fn audience_and_issuer() {
    assert_eq!(
        check(
            &with_claims(|c| {
                c.insert("aud".into(), json!("api://other"));
            }),
            &[exact()]
        ),
        Err(TokenError::WrongAudience)
    );
    assert!(
        check(
            &with_claims(|c| {
                c.insert("aud".into(), json!(["x", "api://orders"]));
            }),
            &[exact()]
        )
        .is_ok()
    );
    assert_eq!(
        check(
            &with_claims(|c| {
                c.remove("aud");
            }),
            &[exact()]
        ),
        Err(TokenError::MissingAudience)
    );
    assert_eq!(
        check(
            &with_claims(|c| {
                c.insert("iss".into(), json!("https://evil"));
            }),
            &[exact()]
        ),
        Err(TokenError::UntrustedIssuer)
    );
    assert_eq!(
        check(
            &with_claims(|c| {
                c.remove("iss");
            }),
            &[exact()]
        ),
        Err(TokenError::MissingIssuer)
    );
}

#[test]
fn tenant_templates_need_an_allowed_tenant_equal_to_tid() {
    let template = issuer(IssuerPattern::Tenant {
        prefix: "https://login.microsoftonline.com/".into(),
        suffix: "/v2.0".into(),
        tenants: BTreeSet::from(["t1".to_string()]),
    });
    let token = |iss: &str, tid: &str| {
        with_claims(|c| {
            c.insert("iss".into(), json!(iss));
            c.insert("tid".into(), json!(tid));
        })
    };
    assert!(
        check(
            &token("https://login.microsoftonline.com/t1/v2.0", "t1"),
            std::slice::from_ref(&template)
        )
        .is_ok()
    );
    assert_eq!(
        check(
            &token("https://login.microsoftonline.com/t2/v2.0", "t2"),
            std::slice::from_ref(&template)
        ),
        Err(TokenError::TenantNotAllowed)
    );
    assert_eq!(
        check(
            &token("https://login.microsoftonline.com/t1/v2.0", "t2"),
            std::slice::from_ref(&template)
        ),
        Err(TokenError::TenantNotAllowed)
    );
}

#[test]
fn unknown_kid_and_malformed_tokens() {
    let token = key().sign_with_header(
        &json!({ "alg": "RS256", "kid": "../../etc/passwd' OR 1=1 --" }),
        &claims(),
    );
    assert_eq!(check(&token, &[exact()]), Err(TokenError::UnknownKey));
    for bad in ["", "a.b", "a.b.c.d", "!!.!!.!!", "eyJhbGciOiJSUzI1NiJ9.e30"] {
        assert!(
            matches!(check(bad, &[exact()]), Err(TokenError::Malformed(_))),
            "{bad}"
        );
    }
}

#[test]
fn every_supported_algorithm_verifies_and_a_relabelled_signature_does_not() {
    use Algorithm::*;
    for alg in [RS256, RS384, RS512, PS256, PS384, PS512, ES256] {
        let signer = match alg {
            ES256 => SigningKey::generate_es256("k").unwrap(),
            _ => SigningKey::generate_rsa("k", alg).unwrap(),
        };
        let mut jwk = signer.jwk().clone();
        jwk.as_object_mut().unwrap().remove("alg"); // usable with every algorithm of its type
        let set = KeySet::from_json(json!({ "keys": [jwk] }).to_string().as_bytes())
            .unwrap()
            .0;
        let token = signer.sign(&claims());
        let t = parse(&token).unwrap();
        let k = set.find(Some("k"), alg).unwrap();
        assert_eq!(verify_signature(&t, k), Ok(()), "{alg:?}");

        // The same signature presented under another algorithm of the same key type fails.
        let other = match alg {
            RS256 => PS256,
            ES256 => continue,
            _ => RS256,
        };
        let header = json!({ "alg": alg_name(other), "kid": "k" });
        let relabelled = signer.sign_with_header(&header, &claims());
        let t = parse(&relabelled).unwrap();
        let k = set.find(Some("k"), other).unwrap();
        assert_eq!(
            verify_signature(&t, k),
            Err(TokenError::BadSignature),
            "{alg:?} as {other:?}"
        );
    }
}
