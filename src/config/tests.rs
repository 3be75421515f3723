use std::collections::HashMap;
use std::path::Path;

use super::*;
use crate::secret::Secret;
use url::Url;

struct FakeEnv(HashMap<&'static str, &'static str>);

impl Env for FakeEnv {
    fn var(&self, name: &str) -> Option<String> {
        self.0.get(name).map(|v| v.to_string())
    }
}

fn no_env() -> FakeEnv {
    FakeEnv(HashMap::new())
}

fn load(yaml: &str) -> Result<Config, Vec<ConfigError>> {
    Config::from_yaml(yaml, Path::new("/etc/tollgate"), &no_env())
}

/// The errors of an invalid file; panics when the file is valid.
fn errors(yaml: &str) -> Vec<ConfigError> {
    match load(yaml) {
        Ok(_) => panic!("expected errors, the file was accepted:\n{yaml}"),
        Err(e) => e,
    }
}

fn assert_error_at(yaml: &str, path: &str, needle: &str) {
    let errs = errors(yaml);
    assert!(
        errs.iter().any(|e| e.path == path && e.message.contains(needle)),
        "expected an error at `{path}` containing `{needle}`, got:\n{}",
        errs.iter().map(|e| e.to_string()).collect::<Vec<_>>().join("\n")
    );
}

const ISSUER: &str = r#"
issuers:
  entra:
    issuer: https://login.microsoftonline.com/t1/v2.0
    jwks_uri: https://login.microsoftonline.com/t1/discovery/v2.0/keys
    audiences: [api://x]
"#;

fn inbound(routes: &str) -> String {
    format!(
        "{ISSUER}inbound:\n  listen: 127.0.0.1:8443\n  upstream: http://127.0.0.1:8080\n  routes:\n{routes}"
    )
}

fn outbound(credentials: &str, routes: &str) -> String {
    format!("outbound:\n  listen: 127.0.0.1:15001\n  credentials:\n{credentials}  routes:\n{routes}")
}

const SECRET_CRED: &str = "    api:\n      token_url: https://login.example.com/token\n      client_id: c1\n      scopes: [s]\n      auth:\n        client_secret: { env: SECRET }\n";
const ONE_ROUTE: &str =
    "    - match: { host: api.internal }\n      upstream: https://api.example.com\n      credential: api\n";

#[test]
fn the_contract_example_shape_is_accepted() {
    let yaml = format!(
        "{}{}",
        inbound(
            "    - match: { path_prefix: /healthz }\n      allow_anonymous: true\n    - name: read\n      match: { path_prefix: /orders, methods: [GET] }\n      require: { issuers: [entra], roles_any: [Orders.Read], azpacr: [\"2\"] }\n"
        ),
        outbound(SECRET_CRED, ONE_ROUTE)
    );
    let config = load(&yaml).expect("valid");
    let inbound = config.inbound.expect("inbound");
    assert_eq!(inbound.policy.routes.len(), 2);
    assert_eq!(inbound.policy.routes[0].label, "0");
    assert_eq!(inbound.policy.routes[1].label, "read");
    assert_eq!(
        config.outbound.expect("outbound").routes[0].credential,
        CredentialId(0)
    );
}

#[test]
fn an_empty_file_is_a_valid_empty_config() {
    let config = load("").expect("valid");
    assert!(config.inbound.is_none() && config.outbound.is_none() && config.admin.is_none());
    assert_eq!(config.drain_timeout, std::time::Duration::from_secs(10));
}

#[test]
fn unknown_key_is_reported_with_its_full_path_and_line() {
    let yaml = inbound(
        "    - match: { path_prefix: /a }\n      allow_anonymous: true\n    - match: { path_prefix: /orders }\n      require:\n        roles_anyy: [Orders.Read]\n",
    );
    let errs = errors(&yaml);
    let e = errs
        .iter()
        .find(|e| e.path == "inbound.routes[1].require.roles_anyy")
        .expect("path");
    assert!(e.message.contains("unknown key"), "{e}");
    assert_eq!(e.position.map(|p| (p.line, p.column)), Some((15, 9)), "{e}");
}

#[test]
fn every_unknown_key_is_reported_not_just_the_first() {
    let yaml = "admin:\n  listen: 127.0.0.1:9901\n  lisen: x\nfoo: 1\n";
    let errs = errors(yaml);
    let paths: Vec<_> = errs.iter().map(|e| e.path.as_str()).collect();
    assert!(paths.contains(&"admin.lisen"), "{paths:?}");
    assert!(paths.contains(&"foo"), "{paths:?}");
}

#[test]
fn unknown_keys_and_semantic_errors_are_reported_together() {
    let yaml = "admin:\n  listen: nonsense\nfoo: 1\n";
    let paths: Vec<_> = errors(yaml).into_iter().map(|e| e.path).collect();
    assert!(
        paths.contains(&"foo".to_string()) && paths.contains(&"admin.listen".to_string()),
        "{paths:?}"
    );
}

#[test]
fn misspelled_key_inside_auth_is_rejected() {
    let cred = SECRET_CRED.replace("client_secret:", "client_secrett:");
    assert_error_at(
        &outbound(&cred, ONE_ROUTE),
        "outbound.credentials.api.auth.client_secrett",
        "unknown key",
    );
}

#[test]
fn misspelled_key_inside_a_secret_is_rejected() {
    let cred = SECRET_CRED.replace("{ env: SECRET }", "{ fil: x }");
    assert_error_at(
        &outbound(&cred, ONE_ROUTE),
        "outbound.credentials.api.auth.client_secret.fil",
        "unknown key",
    );
}

#[test]
fn yaml_syntax_error_has_a_position() {
    let errs = errors("admin:\n  listen: [unclosed\n");
    assert!(errs[0].message.contains("invalid YAML"), "{}", errs[0]);
    assert!(errs[0].position.is_some());
}

#[test]
fn route_naming_an_unknown_issuer_is_refused() {
    let yaml = inbound("    - match: { path_prefix: /a }\n      require: { issuers: [entraa] }\n");
    assert_error_at(
        &yaml,
        "inbound.routes[0].require.issuers[0]",
        "unknown issuer `entraa`",
    );
}

#[test]
fn route_naming_an_unknown_credential_is_refused() {
    let route = ONE_ROUTE.replace("credential: api", "credential: nope");
    assert_error_at(
        &outbound(SECRET_CRED, &route),
        "outbound.routes[0].credential",
        "unknown credential `nope`",
    );
}

#[test]
fn empty_requirement_lists_are_refused() {
    for key in [
        "roles_any",
        "roles_all",
        "scopes_any",
        "scopes_all",
        "clients",
        "azpacr",
        "tenants",
        "issuers",
    ] {
        let yaml = inbound(&format!(
            "    - match: {{ path_prefix: /a }}\n      require: {{ {key}: [] }}\n"
        ));
        assert_error_at(&yaml, &format!("inbound.routes[0].require.{key}"), "empty list");
    }
}

#[test]
fn empty_any_of_and_empty_claim_values_are_refused() {
    let yaml = inbound("    - match: { path_prefix: /a }\n      require: { any_of: [] }\n");
    assert_error_at(&yaml, "inbound.routes[0].require.any_of", "empty list");
    let yaml = inbound("    - match: { path_prefix: /a }\n      require: { claims: { idtyp: [] } }\n");
    assert_error_at(&yaml, "inbound.routes[0].require.claims.idtyp", "empty list");
}

#[test]
fn empty_requirement_set_is_refused() {
    let yaml = inbound("    - match: { path_prefix: /a }\n      require: {}\n");
    assert_error_at(&yaml, "inbound.routes[0].require", "is empty");
}

#[test]
fn route_with_neither_require_nor_anonymous_is_refused() {
    let yaml = inbound("    - match: { path_prefix: /a }\n");
    assert_error_at(&yaml, "inbound.routes[0]", "neither");
    let yaml = inbound("    - match: { path_prefix: /a }\n      allow_anonymous: false\n");
    assert_error_at(&yaml, "inbound.routes[0]", "neither");
}

#[test]
fn route_with_both_require_and_anonymous_is_refused() {
    let yaml = inbound(
        "    - match: { path_prefix: /a }\n      allow_anonymous: true\n      require: { roles_any: [r] }\n",
    );
    assert_error_at(&yaml, "inbound.routes[0]", "both");
}

#[test]
fn invalid_urls_are_refused() {
    let yaml = ISSUER.replace(
        "jwks_uri: https://login.microsoftonline.com/t1/discovery/v2.0/keys",
        "jwks_uri: not a url",
    );
    assert_error_at(&yaml, "issuers.entra.jwks_uri", "not a valid URL");
    let yaml = inbound("    - match: { path_prefix: /a }\n      allow_anonymous: true\n")
        .replace("upstream: http://127.0.0.1:8080", "upstream: ftp://x");
    assert_error_at(&yaml, "inbound.upstream", "http(s) URL");
}

#[test]
fn token_url_over_plain_http_is_refused_unless_loopback() {
    let cred = SECRET_CRED.replace(
        "https://login.example.com/token",
        "http://login.example.com/token",
    );
    assert_error_at(
        &outbound(&cred, ONE_ROUTE),
        "outbound.credentials.api.token_url",
        "loopback",
    );
    for host in ["127.0.0.1:9000", "localhost:9000", "[::1]:9000"] {
        let cred = SECRET_CRED.replace("https://login.example.com/token", &format!("http://{host}/token"));
        load(&outbound(&cred, ONE_ROUTE)).unwrap_or_else(|e| panic!("{host}: {e:?}"));
    }
}

#[test]
fn outbound_upstream_over_plain_http_is_refused_unless_loopback() {
    let route = ONE_ROUTE.replace("https://api.example.com", "http://api.example.com");
    assert_error_at(
        &outbound(SECRET_CRED, &route),
        "outbound.routes[0].upstream",
        "loopback",
    );
}

#[test]
fn duplicate_route_names_are_refused() {
    let yaml = inbound(
        "    - name: a\n      match: { path_prefix: /a }\n      allow_anonymous: true\n    - name: a\n      match: { path_prefix: /b }\n      allow_anonymous: true\n",
    );
    assert_error_at(&yaml, "inbound.routes[1].name", "duplicate route name");
    let route = format!(
        "    - name: x\n{}    - name: x\n{}",
        &ONE_ROUTE[4..].replace("- ", "  "),
        &ONE_ROUTE[4..].replace("- ", "  ")
    );
    let route = route.replace("    - name: x\n  match", "    - name: x\n      match");
    assert_error_at(
        &outbound(SECRET_CRED, &route),
        "outbound.routes[1].name",
        "duplicate route name",
    );
}

#[test]
fn unknown_http_methods_are_refused() {
    let yaml =
        inbound("    - match: { path_prefix: /a, methods: [GET, FETCH] }\n      allow_anonymous: true\n");
    assert_error_at(
        &yaml,
        "inbound.routes[0].match.methods[1]",
        "unknown HTTP method `FETCH`",
    );
}

#[test]
fn algorithm_none_is_refused_in_any_spelling() {
    for alg in ["none", "None", "NONE"] {
        let yaml = format!("{ISSUER}    algorithms: [RS256, {alg}]\n");
        assert_error_at(&yaml, "issuers.entra.algorithms[1]", "never accepted");
    }
}

#[test]
fn unknown_and_symmetric_algorithms_are_refused() {
    let yaml = format!("{ISSUER}    algorithms: [RS257]\n");
    assert_error_at(&yaml, "issuers.entra.algorithms[0]", "unknown algorithm");
    let yaml = format!("{ISSUER}    algorithms: [HS256]\n");
    assert_error_at(&yaml, "issuers.entra.algorithms[0]", "shared-secret");
}

#[test]
fn default_algorithm_is_rs256_only() {
    let config = load(ISSUER).expect("valid");
    assert_eq!(config.issuers[0].algorithms, vec![jsonwebtoken::Algorithm::RS256]);
}

#[test]
fn path_prefix_must_start_with_a_slash() {
    let yaml = inbound("    - match: { path_prefix: orders }\n      allow_anonymous: true\n");
    assert_error_at(
        &yaml,
        "inbound.routes[0].match.path_prefix",
        "must start with `/`",
    );
}

#[test]
fn tenant_placeholder_without_tenants_is_refused() {
    let yaml = ISSUER.replace(
        "microsoftonline.com/t1/v2.0\n",
        "microsoftonline.com/{tenantid}/v2.0\n",
    );
    assert_error_at(&yaml, "issuers.entra.issuer", "`tenants` is missing");
}

#[test]
fn tenant_placeholder_with_tenants_compiles_to_a_template() {
    let yaml = ISSUER.replace(
        "microsoftonline.com/t1/v2.0\n",
        "microsoftonline.com/{tenantid}/v2.0\n    tenants: [t1, t2]\n",
    );
    let config = load(&yaml).expect("valid");
    match &config.issuers[0].issuer {
        IssuerPattern::Tenant {
            prefix,
            suffix,
            tenants,
        } => {
            assert_eq!(prefix, "https://login.microsoftonline.com/");
            assert_eq!(suffix, "/v2.0");
            assert_eq!(tenants.len(), 2);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn more_than_one_auth_method_is_refused() {
    let cred = SECRET_CRED.replace(
        "client_secret: { env: SECRET }",
        "client_secret: { env: SECRET }\n        managed_identity: {}",
    );
    assert_error_at(
        &outbound(&cred, ONE_ROUTE),
        "outbound.credentials.api.auth",
        "more than one method",
    );
}

#[test]
fn no_auth_method_is_refused() {
    let cred = SECRET_CRED
        .replace("client_secret: { env: SECRET }", "{}")
        .replace("auth:\n        {}", "auth: {}");
    assert_error_at(
        &outbound(&cred, ONE_ROUTE),
        "outbound.credentials.api.auth",
        "needs one of",
    );
}

#[test]
fn literal_secret_is_refused() {
    let cred = SECRET_CRED.replace("{ env: SECRET }", "hunter2");
    let errs = errors(&outbound(&cred, ONE_ROUTE));
    let e = errs
        .iter()
        .find(|e| e.path == "outbound.credentials.api.auth.client_secret")
        .expect("path");
    assert!(e.message.contains("literal secret"), "{e}");
    assert!(
        !e.to_string().contains("hunter2"),
        "the secret leaked into the error: {e}"
    );
}

#[test]
fn secret_needs_exactly_one_of_file_or_env() {
    let cred = SECRET_CRED.replace("{ env: SECRET }", "{ env: SECRET, file: s.txt }");
    assert_error_at(
        &outbound(&cred, ONE_ROUTE),
        "outbound.credentials.api.auth.client_secret",
        "exactly one of",
    );
    let cred = SECRET_CRED.replace("{ env: SECRET }", "{ method: basic }");
    assert_error_at(
        &outbound(&cred, ONE_ROUTE),
        "outbound.credentials.api.auth.client_secret",
        "exactly one of",
    );
}

#[test]
fn paths_resolve_against_the_config_folder() {
    let cred = SECRET_CRED.replace("{ env: SECRET }", "{ file: secrets/api, method: basic }");
    let config = load(&outbound(&cred, ONE_ROUTE)).expect("valid");
    match &config.outbound.expect("outbound").credentials[0].auth {
        CredentialAuth::ClientSecret { secret, method, .. } => {
            assert_eq!(secret, &SecretSource::File("/etc/tollgate/secrets/api".into()));
            assert_eq!(*method, SecretMethod::Basic);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn workload_identity_takes_its_defaults_from_the_aks_webhook_variables() {
    let env = FakeEnv(HashMap::from([
        (
            "AZURE_FEDERATED_TOKEN_FILE",
            "/var/run/secrets/azure/tokens/azure-identity-token",
        ),
        ("AZURE_CLIENT_ID", "cid"),
        ("AZURE_TENANT_ID", "tid"),
        ("AZURE_AUTHORITY_HOST", "https://login.microsoftonline.com/"),
    ]));
    let cred = "    api:\n      scopes: [api://x/.default]\n      auth:\n        workload_identity:\n";
    let config = Config::from_yaml(&outbound(cred, ONE_ROUTE), Path::new("/"), &env).expect("valid");
    match &config.outbound.expect("outbound").credentials[0].auth {
        CredentialAuth::WorkloadIdentity {
            token_url,
            client_id,
            token_file,
        } => {
            assert_eq!(
                token_url.as_str(),
                "https://login.microsoftonline.com/tid/oauth2/v2.0/token"
            );
            assert_eq!(client_id, "cid");
            assert_eq!(
                token_file,
                Path::new("/var/run/secrets/azure/tokens/azure-identity-token")
            );
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn workload_identity_without_env_names_what_is_missing() {
    let cred = "    api:\n      scopes: [api://x/.default]\n      auth:\n        workload_identity:\n";
    let yaml = outbound(cred, ONE_ROUTE);
    assert_error_at(
        &yaml,
        "outbound.credentials.api.auth.workload_identity",
        "AZURE_FEDERATED_TOKEN_FILE",
    );
    assert_error_at(&yaml, "outbound.credentials.api", "AZURE_CLIENT_ID");
    assert_error_at(&yaml, "outbound.credentials.api", "AZURE_TENANT_ID");
}

#[test]
fn managed_identity_resource_is_the_scope_without_default() {
    let cred = "    api:\n      scopes: [api://x/.default]\n      auth:\n        managed_identity: { client_id: u1 }\n";
    let config = load(&outbound(cred, ONE_ROUTE)).expect("valid");
    assert_eq!(
        config.outbound.expect("outbound").credentials[0].auth,
        CredentialAuth::ManagedIdentity {
            resource: "api://x".into(),
            client_id: Some("u1".into()),
            endpoint: ManagedIdentityEndpoint::Imds {
                base: Url::parse("http://169.254.169.254").unwrap()
            },
        }
    );
}

#[test]
fn managed_identity_uses_app_service_when_its_variables_are_set() {
    let cred = "    api:\n      scopes: [api://x/.default]\n      auth:\n        managed_identity:\n";
    let env = FakeEnv(HashMap::from([
        ("IDENTITY_ENDPOINT", "http://127.0.0.1:41234/msi/token"),
        ("IDENTITY_HEADER", "h-secret"),
    ]));
    let config = Config::from_yaml(&outbound(cred, ONE_ROUTE), Path::new("/"), &env).expect("valid");
    let CredentialAuth::ManagedIdentity { endpoint, .. } =
        &config.outbound.expect("outbound").credentials[0].auth
    else {
        panic!("managed identity expected")
    };
    assert_eq!(
        endpoint,
        &ManagedIdentityEndpoint::AppService {
            url: Url::parse("http://127.0.0.1:41234/msi/token").unwrap(),
            header: Secret::new("h-secret".into()),
        }
    );
    assert!(!format!("{endpoint:?}").contains("h-secret"));
}

#[test]
fn managed_identity_takes_exactly_one_scope() {
    let cred = "    api:\n      scopes: [a, b]\n      auth:\n        managed_identity:\n";
    assert_error_at(
        &outbound(cred, ONE_ROUTE),
        "outbound.credentials.api.scopes",
        "exactly one scope",
    );
}

#[test]
fn outbound_route_needs_a_match() {
    let route = ONE_ROUTE.replace("{ host: api.internal }", "{}");
    assert_error_at(
        &outbound(SECRET_CRED, &route),
        "outbound.routes[0].match",
        "needs `host`",
    );
}

#[test]
fn outbound_host_match_keeps_an_optional_port() {
    let route = ONE_ROUTE.replace("api.internal", "API.internal:8080");
    let config = load(&outbound(SECRET_CRED, &route)).expect("valid");
    let host = config.outbound.expect("outbound").routes[0]
        .host
        .clone()
        .expect("host");
    assert_eq!(
        host,
        HostMatch {
            host: "api.internal".into(),
            port: Some(8080)
        }
    );
}

#[test]
fn forward_claims_refuses_reserved_and_invalid_headers() {
    let base = inbound("    - match: { path_prefix: /a }\n      allow_anonymous: true\n");
    let yaml = base.replace(
        "  routes:\n",
        "  forward_claims: { Authorization: azp }\n  routes:\n",
    );
    assert_error_at(&yaml, "inbound.forward_claims.Authorization", "reserved");
    let yaml = base.replace("  routes:\n", "  forward_claims: { \"X Bad\": azp }\n  routes:\n");
    assert_error_at(
        &yaml,
        "inbound.forward_claims.X Bad",
        "not a valid HTTP header name",
    );
}

#[test]
fn listen_must_be_an_address() {
    assert_error_at("admin:\n  listen: localhost\n", "admin.listen", "not an address");
}

#[test]
fn issuer_needs_exactly_one_key_source() {
    let yaml = format!("{ISSUER}    jwks_file: keys.json\n");
    assert_error_at(&yaml, "issuers.entra", "exactly one of");
}

#[test]
fn unknown_mode_is_refused_naming_the_allowed_values() {
    let yaml = inbound("    - match: { path_prefix: /a }\n      allow_anonymous: true\n")
        .replace("  routes:\n", "  mode: enforcing\n  routes:\n");
    assert_error_at(
        &yaml,
        "inbound.mode",
        "unknown value `enforcing`, expected `enforce` or `audit`",
    );
}

#[test]
fn requirement_without_issuers_configured_is_refused() {
    let yaml = "inbound:\n  listen: 127.0.0.1:1\n  upstream: http://127.0.0.1:2\n  routes:\n    - match: { path_prefix: /a }\n      require: { roles_any: [r] }\n";
    assert_error_at(yaml, "inbound.routes[0].require", "no `issuers` are configured");
}

#[test]
fn reload_poll_interval_defaults_to_ten_seconds_and_must_be_positive() {
    let config = load("admin:\n  listen: 127.0.0.1:9901\n").expect("valid");
    assert_eq!(config.reload_poll_interval, std::time::Duration::from_secs(10));
    let config = load("reload:\n  poll_interval_seconds: 2\n").expect("valid");
    assert_eq!(config.reload_poll_interval, std::time::Duration::from_secs(2));
    assert_error_at(
        "reload:\n  poll_interval_seconds: 0\n",
        "reload.poll_interval_seconds",
        "at least 1",
    );
    assert_error_at("reload:\n  poll_interval: 5\n", "reload.poll_interval", "unknown");
}

#[test]
fn request_confusion_settings_default_to_the_safe_readings() {
    let config = load(&inbound(
        "    - match: { path_prefix: /a }\n      allow_anonymous: true\n",
    ))
    .unwrap();
    let inbound = config.inbound.unwrap();
    assert_eq!(
        inbound.policy.path_case,
        crate::served_path::PathCase::Insensitive
    );
    assert_eq!(inbound.policy.method_override, MethodOverride::Refuse);
    assert_eq!(inbound.policy.underscore_headers, UnderscoreHeaders::Drop);
}

#[test]
fn a_path_prefix_with_segment_parameters_is_refused() {
    assert_error_at(
        &inbound("    - match: { path_prefix: /a;x }\n      allow_anonymous: true\n"),
        "inbound.routes[0].match.path_prefix",
        "`;`",
    );
}

// === every problem in one run, type errors included ===

/// `(path, line)` of each error, in the order reported.
fn paths_and_lines(yaml: &str) -> Vec<(String, Option<usize>)> {
    errors(yaml)
        .into_iter()
        .map(|e| (e.path, e.position.map(|p| p.line)))
        .collect()
}

fn only_error(yaml: &str) -> ConfigError {
    let errs = errors(yaml);
    assert_eq!(errs.len(), 1, "expected one error, got:\n{errs:#?}");
    errs.into_iter().next().expect("one error")
}

const ANON: &str = "    - match: { path_prefix: /a }\n      allow_anonymous: true\n";

#[test]
fn a_string_where_a_list_belongs_is_reported_and_reading_goes_on() {
    let yaml = inbound(
        "    - match: { path_prefix: /a }\n      require: { issuers: [entra], roles_any: Orders.Read }\n    - match: { path_prefix: /b }\n      require: { issuers: [entra], roles_anyy: [x] }\n",
    );
    let errs = errors(&yaml);
    assert_eq!(errs.len(), 2, "{errs:#?}");
    assert_eq!(errs[0].path, "inbound.routes[0].require.roles_any");
    assert_eq!(errs[0].message, "expected a list, found a string");
    assert_eq!(errs[1].path, "inbound.routes[1].require.roles_anyy");
}

#[test]
fn a_negative_number_is_reported_with_its_line_and_column() {
    let e = only_error(&format!("{ISSUER}    leeway_seconds: -5\n"));
    assert_eq!(e.path, "issuers.entra.leeway_seconds");
    assert_eq!(
        e.message,
        "invalid value `-5`, expected a whole number (0 or more)"
    );
    assert_eq!(e.position, Some(Position { line: 7, column: 5 }));
}

#[test]
fn a_wrong_type_does_not_echo_the_string_found() {
    let cred = SECRET_CRED.replace(
        "{ env: SECRET }\n",
        "{ env: SECRET }\n      extra_params: [s3cr3t]\n",
    );
    let cred = cred.replace("scopes: [s]", "scopes: s3cr3t-scope");
    let errs = errors(&outbound(&cred, ONE_ROUTE));
    assert_eq!(errs.len(), 2, "{errs:#?}");
    assert!(
        errs.iter().all(|e| !e.to_string().contains("s3cr3t")),
        "{errs:#?}"
    );
}

#[test]
fn a_type_error_does_not_hide_semantic_errors_elsewhere() {
    let route = ONE_ROUTE.replace("credential: api", "credential: nope");
    let yaml = format!(
        "{}{}",
        inbound(ANON).replace("  routes:\n", "  mode: enforcing\n  routes:\n"),
        outbound(SECRET_CRED, &route)
    );
    let paths: Vec<_> = errors(&yaml).into_iter().map(|e| e.path).collect();
    assert_eq!(paths, ["inbound.mode", "outbound.routes[0].credential"]);
}

#[test]
fn a_mistyped_required_key_is_not_also_reported_missing() {
    let yaml = inbound(ANON)
        .replace("listen: 127.0.0.1:8443", "listen: [127.0.0.1:8443]")
        .replace("upstream: http://127.0.0.1:8080", "upstream: ftp://x");
    let errs = errors(&yaml);
    let paths: Vec<_> = errs.iter().map(|e| e.path.as_str()).collect();
    assert_eq!(paths, ["inbound.listen", "inbound.upstream"], "{errs:#?}");
    assert_eq!(errs[0].message, "expected a string, found a list");
}

#[test]
fn a_missing_required_key_is_reported_once_and_the_rest_is_still_checked() {
    let yaml = "admin: {}\nreload:\n  poll_interval_seconds: 0\n";
    let errs = errors(yaml);
    assert_eq!(errs.len(), 2, "{errs:#?}");
    assert_eq!(
        (errs[0].path.as_str(), errs[0].message.as_str()),
        ("admin", "missing key `listen`")
    );
    assert_eq!(errs[1].path, "reload.poll_interval_seconds");
}

#[test]
fn a_mapping_whose_mistyped_key_was_set_aside_is_not_called_empty() {
    let e = only_error(&inbound(
        "    - match: { path_prefix: /a }\n      require: { roles_any: Orders.Read }\n",
    ));
    assert_eq!(e.path, "inbound.routes[0].require.roles_any");
    let e = only_error(&inbound(
        "    - match: { path_prefix: /a }\n      allow_anonymous: maybe\n",
    ));
    assert_eq!(e.path, "inbound.routes[0].allow_anonymous");
    assert_eq!(e.message, "expected `true` or `false`, found a string");
}

#[test]
fn a_wrong_list_element_keeps_the_paths_of_the_later_ones() {
    let yaml = inbound(&format!(
        "    - just-a-string\n{ANON}    - match: {{ path_prefix: /c, methods: [GET, {{}}, FETCH] }}\n      allow_anonymous: true\n"
    ));
    let paths = paths_and_lines(&yaml);
    assert_eq!(
        paths,
        [
            ("inbound.routes[0]".to_string(), Some(11)),
            ("inbound.routes[2].match.methods[1]".to_string(), Some(14)),
            ("inbound.routes[2].match.methods[2]".to_string(), Some(14)),
        ]
    );
}

#[test]
fn a_claim_that_is_neither_a_string_nor_a_list_says_so() {
    let e = only_error(&inbound(
        "    - match: { path_prefix: /a }\n      require: { issuers: [entra], claims: { idtyp: { a: b } } }\n",
    ));
    assert_eq!(e.path, "inbound.routes[0].require.claims.idtyp");
    assert_eq!(e.message, "expected a string or a list of strings");
}

#[test]
fn problems_are_listed_in_file_order() {
    let yaml = format!(
        "{}{}",
        inbound("    - match: { path_prefix: /a }\n      require: {}\n")
            .replace("  routes:\n", "  mode: enforcing\n  routes:\n"),
        "admin:\n  listen: nowhere\n  lisen: x\n"
    );
    let lines: Vec<_> = paths_and_lines(&yaml).into_iter().map(|(_, l)| l).collect();
    let mut sorted = lines.clone();
    sorted.sort();
    assert_eq!(lines.len(), 4, "{lines:?}");
    assert_eq!(lines, sorted);
}

#[test]
fn a_file_that_is_not_a_mapping_is_one_error() {
    let e = only_error("- a\n- b\n");
    assert_eq!(e.path, "(top level)");
    assert_eq!(e.message, "expected a mapping, found a list");
}

#[test]
fn reading_stops_after_a_bounded_number_of_problems_and_says_so() {
    let yaml: String = (0..250).map(|i| format!("unknown{i}: 1\n")).collect();
    let errs = errors(&yaml);
    assert_eq!(errs.len(), 201, "200 unknown keys and the note");
    let last = errs.last().expect("errors");
    assert!(last.message.contains("reading stopped"), "{last}");
    assert_eq!(errs[0].path, "unknown0");
}

/// Found by review and caught by the `config` fuzz target's checks: each of these was
/// accepted, then overflowed where the sidecar computes with it (the reload timer's first
/// deadline panicked; the leeway turned negative; `limit + "Bearer "` wrapped).
#[test]
fn numbers_the_sidecar_computes_with_are_bounded() {
    let huge = u64::MAX;
    assert_error_at(
        &format!("reload:\n  poll_interval_seconds: {huge}\n"),
        "reload.poll_interval_seconds",
        "at most 86400",
    );
    assert!(load("reload:\n  poll_interval_seconds: 86400\n").is_ok());
    let leeway = |n: u64| format!("{ISSUER}    leeway_seconds: {n}\n");
    assert_error_at(&leeway(huge), "issuers.entra.leeway_seconds", "at most 3600");
    assert_error_at(&leeway(3601), "issuers.entra.leeway_seconds", "at most 3600");
    assert!(load(&leeway(3600)).is_ok());
    let max_token = |n: u64| {
        inbound("    - match: { path_prefix: /a }\n      allow_anonymous: true\n")
            .replace("  routes:\n", &format!("  max_token_bytes: {n}\n  routes:\n"))
    };
    assert_error_at(&max_token(huge), "inbound.max_token_bytes", "at most 1048576");
    assert!(load(&max_token(1024 * 1024)).is_ok());
}

#[test]
fn token_kind_is_app_or_user() {
    let yaml = inbound("    - match: { path_prefix: /a }\n      require: { token_kind: robot }\n");
    assert_error_at(&yaml, "inbound.routes[0].require.token_kind", "`app` or `user`");
    let yaml = inbound("    - match: { path_prefix: /a }\n      require: { token_kind: user }\n");
    let config = load(&yaml).unwrap();
    let route = &config.inbound.as_ref().unwrap().policy.routes[0];
    match &route.access {
        Access::Require(r) => assert_eq!(r.token_kind, Some(TokenKind::User)),
        other => panic!("{other:?}"),
    }
}

#[test]
fn exchange_credentials_name_their_grant_and_subject_issuer() {
    let cred = format!("{SECRET_CRED}      exchange: on_behalf_of\n");
    let config = load(&format!("{ISSUER}{}", outbound(&cred, ONE_ROUTE))).expect("valid");
    let c = &config.outbound.unwrap().credentials[0];
    assert_eq!(
        c.exchange,
        Some(Exchange {
            grant: ExchangeGrant::OnBehalfOf,
            subject_issuer: None,
        })
    );
    let cred = format!("{SECRET_CRED}      exchange: on_behalf_of\n      subject_issuer: entra\n");
    let config = load(&format!("{ISSUER}{}", outbound(&cred, ONE_ROUTE))).expect("valid");
    let c = &config.outbound.unwrap().credentials[0];
    assert_eq!(c.exchange.as_ref().unwrap().subject_issuer, Some(IssuerId(0)));
    let cred = format!("{SECRET_CRED}      exchange: token_exchange\n");
    let config = load(&outbound(&cred, ONE_ROUTE)).expect("valid");
    let c = &config.outbound.unwrap().credentials[0];
    assert_eq!(
        c.exchange.as_ref().map(|e| e.grant),
        Some(ExchangeGrant::TokenExchange)
    );
    let config = load(&outbound(SECRET_CRED, ONE_ROUTE)).expect("valid");
    assert_eq!(config.outbound.unwrap().credentials[0].exchange, None);
}

#[test]
fn exchange_mistakes_are_refused_at_their_key() {
    let cred = format!("{SECRET_CRED}      exchange: obo\n");
    assert_error_at(
        &outbound(&cred, ONE_ROUTE),
        "outbound.credentials.api.exchange",
        "`on_behalf_of` or `token_exchange`",
    );
    let cred = format!("{SECRET_CRED}      exchange: on_behalf_of\n      subject_issuer: nope\n");
    assert_error_at(
        &format!("{ISSUER}{}", outbound(&cred, ONE_ROUTE)),
        "outbound.credentials.api.subject_issuer",
        "unknown issuer `nope`",
    );
    let cred = format!("{SECRET_CRED}      subject_issuer: entra\n");
    assert_error_at(
        &format!("{ISSUER}{}", outbound(&cred, ONE_ROUTE)),
        "outbound.credentials.api.subject_issuer",
        "only applies to an exchange credential",
    );
    let cred = "    api:\n      scopes: [api://x/.default]\n      auth:\n        managed_identity: {}\n      exchange: on_behalf_of\n";
    assert_error_at(
        &outbound(cred, ONE_ROUTE),
        "outbound.credentials.api.exchange",
        "managed identity cannot exchange",
    );
}

#[test]
fn remembered_tokens_default_to_4096_and_are_bounded() {
    assert_eq!(load(ISSUER).unwrap().issuers[0].remembered_tokens, 4096);
    let remembered = |n: &str| format!("{ISSUER}    remembered_tokens: {n}\n");
    assert_eq!(load(&remembered("0")).unwrap().issuers[0].remembered_tokens, 0);
    assert_eq!(
        load(&remembered("256")).unwrap().issuers[0].remembered_tokens,
        256
    );
    assert!(load(&remembered("1000000")).is_ok());
    assert_error_at(
        &remembered("1000001"),
        "issuers.entra.remembered_tokens",
        "at most 1000000",
    );
    assert_error_at(
        &remembered("18446744073709551615"),
        "issuers.entra.remembered_tokens",
        "at most 1000000",
    );
    assert!(load(&remembered("-1")).is_err());
}
