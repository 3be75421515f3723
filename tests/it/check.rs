//! `tollgate check`: the shipped examples pass, broken files fail naming the key.

use crate::support::{check, config_file, repo_path, tollgate};

#[test]
fn every_shipped_example_is_accepted() {
    let mut seen = 0;
    for entry in std::fs::read_dir(repo_path("config")).expect("config/") {
        let path = entry.expect("entry").path();
        if path.extension().and_then(|e| e.to_str()) != Some("yaml") {
            continue;
        }
        let out = check(&path);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}: {}",
            path.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(stdout.trim(), "ok", "{}", path.display());
        seen += 1;
    }
    assert!(
        seen >= 3,
        "expected the inbound, outbound and full examples, saw {seen}"
    );
}

#[test]
fn a_typo_fails_with_exit_1_naming_the_key_and_line() {
    let file = config_file(
        r#"issuers:
  entra:
    issuer: https://login.microsoftonline.com/t/v2.0
    jwks_uri: https://login.microsoftonline.com/t/discovery/v2.0/keys
    audiences: [api://x]
inbound:
  listen: 127.0.0.1:8443
  upstream: http://127.0.0.1:8080
  routes:
    - match: { path_prefix: /healthz }
      allow_anonymous: true
    - match: { path_prefix: /orders }
      require:
        roles_anyy: [Orders.Read]
"#,
    );
    let out = check(&file.path);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("inbound.routes[1].require.roles_anyy"),
        "{stderr}"
    );
    assert!(stderr.contains("line 14"), "{stderr}");
    assert!(out.stdout.is_empty(), "nothing on stdout when invalid");
}

#[test]
fn every_problem_is_listed_in_one_run() {
    let file = config_file(
        "admin:\n  listen: nowhere\noutbound:\n  listen: 127.0.0.1:1\n  credentials: {}\n  routes:\n    - match: { host: a }\n      upstream: https://a.example.com\n      credential: missing\n",
    );
    let out = check(&file.path);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr.contains("admin.listen"), "{stderr}");
    assert!(stderr.contains("outbound.routes[0].credential"), "{stderr}");
    assert!(stderr.contains("2 problem(s)"), "{stderr}");
}

/// Type errors do not stop the reading: a wrong enum value, a string for a list, a
/// negative number, a misspelled key and two semantic problems, each on its own line with
/// its key path and line, in file order, and nothing more.
#[test]
fn type_errors_unknown_keys_and_semantic_problems_are_all_listed_in_file_order() {
    let file = config_file(
        r#"issuers:
  entra:
    issuer: https://login.microsoftonline.com/t/v2.0
    jwks_uri: https://login.microsoftonline.com/t/discovery/v2.0/keys
    audiences: [api://x]
    leeway_seconds: -5
inbound:
  listen: 127.0.0.1:8443
  upstream: http://127.0.0.1:8080
  mode: enforcing
  routes:
    - match: { path_prefix: /orders, methods: [GET] }
      require:
        issuers: [entra]
        roles_any: Orders.Read
    - match: { path_prefix: /reports }
      require:
        issuers: [entra]
        roles_anyy: [Reports.Read]
    - match: { path_prefix: /admin }
      require: {}
outbound:
  listen: 127.0.0.1:15001
  credentials:
    api:
      token_url: https://login.example.com/token
      client_id: c1
      scopes: [s]
      auth:
        client_secret: { env: SECRET }
  routes:
    - match: { host: api.internal }
      upstream: https://api.example.com
      credential: nope
"#,
    );
    let out = check(&file.path);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    let expected = [
        ("issuers.entra.leeway_seconds (line 6, column 5)", "`-5`"),
        (
            "inbound.mode (line 10, column 3)",
            "unknown value `enforcing`, expected `enforce` or `audit`",
        ),
        (
            "inbound.routes[0].require.roles_any (line 15, column 9)",
            "expected a list",
        ),
        (
            "inbound.routes[1].require.roles_anyy (line 19, column 9)",
            "unknown key `roles_anyy`",
        ),
        ("inbound.routes[2].require (line 21, column 7)", "is empty"),
        (
            "outbound.routes[0].credential (line 34, column 7)",
            "unknown credential `nope`",
        ),
    ];
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), expected.len() + 1, "{stderr}");
    for (line, (at, says)) in lines.iter().zip(expected) {
        assert!(line.contains(&format!("{at}: ")), "`{at}` expected in: {line}");
        assert!(line.contains(says), "`{says}` expected in: {line}");
    }
    assert!(stderr.contains("6 problem(s)"), "{stderr}");
    assert!(out.stdout.is_empty(), "nothing on stdout when invalid");
}

#[test]
fn a_literal_secret_fails_without_printing_it() {
    let file = config_file(
        "outbound:\n  listen: 127.0.0.1:1\n  credentials:\n    api:\n      token_url: https://idp.example.com/token\n      client_id: c\n      scopes: [s]\n      auth:\n        client_secret: sup3r-s3cret-value\n  routes: []\n",
    );
    let out = check(&file.path);
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        all.contains("outbound.credentials.api.auth.client_secret"),
        "{all}"
    );
    assert!(!all.contains("sup3r-s3cret-value"), "secret leaked: {all}");
}

#[test]
fn a_missing_file_is_exit_1_and_bad_usage_is_exit_2() {
    let out = check(std::path::Path::new("/nonexistent/tollgate.yaml"));
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot read"));
    let out = tollgate().arg("check").output().expect("run");
    assert_eq!(out.status.code(), Some(2), "no -c: usage error");
    let out = tollgate().arg("frobnicate").output().expect("run");
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn the_config_file_may_come_from_tollgate_config() {
    let out = tollgate()
        .arg("check")
        .env("TOLLGATE_CONFIG", repo_path("config/inbound.yaml"))
        .output()
        .expect("run");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `--online` reaches every issuer: ok for a live one, an error naming the other.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn online_check_reports_each_issuer() {
    let live = ::tollgate::devissuer::DevIssuer::start("127.0.0.1:0".parse().expect("addr"))
        .await
        .expect("dev issuer");
    let dead = crate::support::free_port();
    let file = config_file(&format!(
        r#"issuers:
  live:
    issuer: {iss}
    discovery_url: {discovery}
    audiences: [api://x]
  dead:
    issuer: https://dead.example/
    jwks_uri: http://{dead}/keys
    audiences: [api://x]
"#,
        iss = live.issuer(),
        discovery = live.discovery_url(),
    ));
    let out = crate::support::check_online(&file.path).await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stdout}{stderr}");
    assert!(stdout.contains("issuer live: ok, 1 signing key(s)"), "{stdout}");
    assert!(stdout.contains("issuer dead: error: GET http://"), "{stdout}");
    assert!(stderr.contains("1 online check(s) failed"), "{stderr}");
    assert_eq!(live.discovery_requests(), 1);
    assert_eq!(live.jwks_requests(), 1);

    let only_live = config_file(&format!(
        "issuers:\n  live:\n    issuer: {}\n    discovery_url: {}\n    audiences: [api://x]\n",
        live.issuer(),
        live.discovery_url()
    ));
    let out = crate::support::check_online(&only_live.path).await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(stdout.trim_end().ends_with("ok"), "{stdout}");
}

/// `--online` acquires one token per credential and reports it, never printing the token
/// or the secret.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn online_check_acquires_one_token_per_credential() {
    use ::tollgate::devissuer::{ClientAuth, DevIssuer};
    let issuer = DevIssuer::start("127.0.0.1:0".parse().expect("addr"))
        .await
        .expect("dev issuer");
    issuer.add_client("good-client", ClientAuth::Secret("right-secret".into()), &[]);
    let file = config_file(&format!(
        r#"outbound:
  listen: 127.0.0.1:0
  credentials:
    good:
      token_url: {url}
      client_id: good-client
      scopes: [api://x/.default]
      auth: {{ client_secret: {{ file: good-secret }} }}
    bad:
      token_url: {url}
      client_id: good-client
      scopes: [api://x/.default]
      auth: {{ client_secret: {{ file: bad-secret }} }}
  routes:
    - match: {{ host: a.internal }}
      upstream: https://a.example.com
      credential: good
"#,
        url = issuer.token_url()
    ));
    let dir = file.path.parent().expect("dir").to_path_buf();
    std::fs::write(dir.join("good-secret"), "right-secret").expect("write");
    std::fs::write(dir.join("bad-secret"), "wrong-secret").expect("write");
    let out = crate::support::check_online(&file.path).await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stdout}{stderr}");
    assert!(
        stdout.contains("credential good: ok, token acquired, expires in"),
        "{stdout}"
    );
    assert!(
        stdout.contains("credential bad: error: token endpoint answered 401 invalid_client"),
        "{stdout}"
    );
    assert_eq!(issuer.token_requests().len(), 2);
    let all = format!("{stdout}{stderr}");
    assert!(
        !all.contains("right-secret") && !all.contains("wrong-secret") && !all.contains("eyJ"),
        "{all}"
    );
}

#[test]
fn an_unknown_request_confusion_mode_names_its_key() {
    for (key, value) in [
        ("method_override", "allow"),
        ("underscore_headers", "strip"),
        ("path_case", "upper"),
    ] {
        let file = crate::support::config_file(&format!(
            "inbound:\n  listen: 127.0.0.1:8443\n  upstream: http://127.0.0.1:8080\n  {key}: {value}\n  routes:\n    - match: {{ path_prefix: /h }}\n      allow_anonymous: true\n"
        ));
        let out = crate::support::check(&file.path);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{key}: {err}");
        assert!(err.contains(&format!("inbound.{key}")), "{key}: {err}");
        assert!(err.contains("line 4"), "{key}: {err}");
    }
}
