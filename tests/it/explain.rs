//! `tollgate explain` (the real binary): allowed, a 403 naming the missing role, a
//! wrong-audience 401, a forged signature, `--no-verify`, the served path and method
//! overrides.

use ::tollgate::devissuer::{SigningKey, app_claims};
use jsonwebtoken::Algorithm;
use serde_json::json;

use crate::support::{config_file, tollgate};

const ISS: &str = "https://issuer.example/v2.0";
const AUD: &str = "api://orders";

struct Setup {
    key: SigningKey,
    file: crate::support::ConfigFile,
}

fn setup() -> Setup {
    let key = SigningKey::generate_rsa("k1", Algorithm::RS256).unwrap();
    let file = config_file(&format!(
        r#"issuers:
  entra:
    issuer: {ISS}
    jwks_file: keys.json
    audiences: ["{AUD}"]
inbound:
  listen: 127.0.0.1:8443
  upstream: http://127.0.0.1:8080
  routes:
    - match: {{ path_prefix: /healthz }}
      allow_anonymous: true
    - name: orders-read
      match: {{ path_prefix: /orders, methods: [GET] }}
      require: {{ roles_any: [Orders.Read], azpacr: ["2"] }}
    - name: orders-write
      match: {{ path_prefix: /orders, methods: [DELETE] }}
      require: {{ roles_any: [Orders.Write] }}
    - name: admin
      match: {{ path_prefix: /admin }}
      require: {{ roles_any: [Admin.Write] }}
"#
    ));
    let dir = file.path.parent().unwrap();
    std::fs::write(dir.join("keys.json"), json!({ "keys": [key.jwk()] }).to_string()).unwrap();
    Setup { key, file }
}

fn token(key: &SigningKey, aud: &str, roles: &[&str]) -> String {
    let mut claims = app_claims(aud, "client-1", "2", roles, "tenant-1");
    claims["iss"] = json!(ISS);
    key.sign(&claims)
}

fn explain(s: &Setup, args: &[&str]) -> (i32, String) {
    let out = tollgate()
        .args(["explain", "-c"])
        .arg(&s.file.path)
        .args(args)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    (
        out.status.code().unwrap_or(-1),
        text + &String::from_utf8_lossy(&out.stderr),
    )
}

#[test]
fn an_allowed_request_shows_the_route_each_check_and_the_decision() {
    let s = setup();
    let t = token(&s.key, AUD, &["Orders.Read"]);
    let (code, out) = explain(&s, &["--token", &t, "--method", "GET", "--path", "/orders/7"]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("route     orders-read (path_prefix /orders, methods [GET])"),
        "{out}"
    );
    assert!(out.contains("issuer    entra"), "{out}");
    assert!(out.contains("signature ok (RS256, kid k1)"), "{out}");
    assert!(out.contains("pass  roles_any"), "{out}");
    assert!(out.contains("token has roles: [Orders.Read]"), "{out}");
    assert!(out.contains("pass  azpacr"), "{out}");
    assert!(out.contains("decision  ALLOW"), "{out}");
    assert!(!out.contains(&t), "the token is never printed");
}

#[test]
fn a_missing_role_is_a_403_naming_it() {
    let s = setup();
    // The token is read from a file with `@`.
    let t = token(&s.key, AUD, &["Orders.Write"]);
    let token_file = s.file.path.parent().unwrap().join("token.jwt");
    std::fs::write(&token_file, format!("{t}\n")).unwrap();
    let arg = format!("@{}", token_file.display());
    let (code, out) = explain(&s, &["--token", &arg, "--path", "/orders/7"]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains(
            "FAIL  roles_any  requires one of the roles [Orders.Read]  — token has roles: [Orders.Write]"
        ),
        "{out}"
    );
    assert!(
        out.contains("decision  DENY → 403 insufficient_scope: requires one of the roles [Orders.Read]"),
        "{out}"
    );
}

#[test]
fn a_wrong_audience_is_a_401_and_a_forged_signature_too_unless_no_verify() {
    let s = setup();
    let wrong_aud = token(&s.key, "api://someone-else", &["Orders.Read"]);
    let (_, out) = explain(&s, &["--token", &wrong_aud, "--path", "/orders/7"]);
    assert!(out.contains("decision  DENY → 401 invalid_token"), "{out}");
    assert!(out.contains("aud"), "{out}");

    let stranger = SigningKey::generate_rsa("k1", Algorithm::RS256).unwrap();
    let forged = token(&stranger, AUD, &["Orders.Read"]);
    let (_, out) = explain(&s, &["--token", &forged, "--path", "/orders/7"]);
    assert!(
        out.contains("decision  DENY → 401 invalid_token: the token's signature is invalid"),
        "{out}"
    );

    let (code, out) = explain(&s, &["--token", &forged, "--path", "/orders/7", "--no-verify"]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("NOTE      --no-verify: the signature is NOT checked"),
        "{out}"
    );
    assert!(out.contains("signature NOT CHECKED (--no-verify)"), "{out}");
    assert!(out.contains("decision  ALLOW"), "{out}");
}

#[test]
fn no_token_no_route_and_anonymous() {
    let s = setup();
    let (_, out) = explain(&s, &["--path", "/orders/7"]);
    assert!(
        out.contains("decision  DENY → 401 missing_token: a bearer token is required"),
        "{out}"
    );
    let (_, out) = explain(&s, &["--path", "/elsewhere"]);
    assert!(out.contains("route     none of the 4 routes matches"), "{out}");
    assert!(out.contains("DENY → 403 insufficient_scope"), "{out}");
    let (_, out) = explain(&s, &["--path", "/healthz"]);
    assert!(out.contains("allow_anonymous"), "{out}");
    assert!(out.contains("decision  ALLOW"), "{out}");
    let (_, out) = explain(&s, &["--path", "/orders/../admin"]);
    assert!(out.contains("DENY → 400 invalid_request"), "{out}");
}

#[test]
fn segment_parameters_and_case_are_explained_with_the_route_they_spell() {
    let s = setup();
    let t = token(&s.key, AUD, &["Orders.Read"]);
    for path in ["/admin;x", "/ADMIN", "/Admin;jsessionid=1/users"] {
        let (code, out) = explain(&s, &["--token", &t, "--path", path]);
        assert_eq!(code, 0, "{out}");
        assert!(out.contains("served as /admin"), "{path}: {out}");
        assert!(
            out.contains("route     admin (path_prefix /admin)"),
            "{path}: {out}"
        );
        assert!(out.contains("DENY → 403 insufficient_scope"), "{path}: {out}");
    }
    let (_, out) = explain(&s, &["--path", "/healthz/..;/admin"]);
    assert!(
        out.contains("DENY → 400 invalid_request: the request path contains a dot-segment"),
        "{out}"
    );
}

#[test]
fn a_method_override_header_is_explained() {
    let s = setup();
    let t = token(&s.key, AUD, &["Orders.Read"]);
    let (code, out) = explain(
        &s,
        &[
            "--token",
            &t,
            "--path",
            "/orders/7",
            "--header",
            "X-HTTP-Method-Override: DELETE",
        ],
    );
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains(
            "DENY → 400 invalid_request: method override header `x-http-method-override` is refused"
        ),
        "{out}"
    );
    let (code, out) = explain(&s, &["--path", "/orders/7", "--header", "no-colon"]);
    assert_eq!(code, 2, "{out}");
}
