use std::path::Path;

use super::*;
use crate::config::Env;

struct NoEnv;

impl Env for NoEnv {
    fn var(&self, _name: &str) -> Option<String> {
        None
    }
}

fn config(yaml: &str) -> Config {
    Config::from_yaml(yaml, Path::new("/etc/tollgate"), &NoEnv).expect("valid test config")
}

fn keys(config: &Config) -> Vec<String> {
    tls_destinations(config).into_iter().map(|d| d.key).collect()
}

#[test]
fn the_error_names_both_variables_and_the_system_paths_it_searched() {
    let message = NoTrustRoots::new(None, None, vec![]).to_string();
    assert!(message.starts_with("no trust roots found"), "{message}");
    assert!(
        message.contains("SSL_CERT_FILE (unset), SSL_CERT_DIR (unset)"),
        "{message}"
    );
    assert!(
        message.contains("/etc/ssl/certs/ca-certificates.crt"),
        "{message}"
    );
    assert!(message.contains("/etc/pki/tls/certs"), "{message}");
}

#[test]
fn with_ssl_cert_file_set_the_error_names_it_and_what_went_wrong() {
    let problem = "failed to read PEM from file: No such file or directory at '/none.pem'".to_string();
    let message = NoTrustRoots::new(Some("/none.pem".into()), None, vec![problem.clone()])
        .needed_by("issuers.entra.discovery_url".into())
        .to_string();
    assert!(
        message.contains("(needed by issuers.entra.discovery_url)"),
        "{message}"
    );
    assert!(
        message.contains("SSL_CERT_FILE=/none.pem, SSL_CERT_DIR (unset)"),
        "{message}"
    );
    assert!(message.contains("not searched"), "{message}");
    assert!(message.contains(&problem), "{message}");
}

#[test]
fn admin_only_and_loopback_http_need_no_tls() {
    let admin = config("admin:\n  listen: 127.0.0.1:9901\n");
    assert!(keys(&admin).is_empty());
    let inbound = config(
        "issuers:\n  dev:\n    issuer: http://127.0.0.1:9000\n    jwks_file: keys.json\n    audiences: [api]\n  \
         local:\n    issuer: http://127.0.0.1:9000/x\n    discovery_url: http://127.0.0.1:9000/.well-known/openid-configuration\n    \
         audiences: [api]\ninbound:\n  listen: 127.0.0.1:8443\n  upstream: http://127.0.0.1:8080\n  routes:\n    \
         - match: { path_prefix: / }\n      allow_anonymous: true\n",
    );
    assert!(keys(&inbound).is_empty());
    assert!(require_for(&inbound).is_ok());
}

#[test]
fn every_https_url_is_a_destination_named_by_its_key() {
    let c = config(
        "issuers:\n  entra:\n    issuer: https://login.example/v2.0\n    discovery_url: https://login.example/v2.0/.well-known/openid-configuration\n    \
         audiences: [api]\ninbound:\n  listen: 127.0.0.1:8443\n  upstream: https://orders.internal\n  routes:\n    \
         - match: { path_prefix: / }\n      allow_anonymous: true\noutbound:\n  listen: 127.0.0.1:15001\n  credentials:\n    \
         orders:\n      token_url: https://login.example/token\n      client_id: c\n      scopes: [s]\n      \
         auth: { client_secret: { env: SECRET } }\n  routes:\n    - match: { host: a }\n      upstream: https://a.example\n      \
         credential: orders\n    - match: { host: b }\n      upstream: https://b.example\n      credential: orders\n      \
         ca_file: ca.pem\n",
    );
    let found = tls_destinations(&c);
    let keys: Vec<&str> = found.iter().map(|d| d.key.as_str()).collect();
    assert_eq!(
        keys,
        [
            "issuers.entra.discovery_url",
            "inbound.upstream",
            "outbound.credentials.orders.token_url",
            "outbound.routes[0].upstream",
            "outbound.routes[1].upstream",
        ]
    );
    assert_eq!(
        found.iter().map(|d| d.own_roots).collect::<Vec<_>>(),
        [false, false, false, false, true]
    );
}

#[test]
fn a_client_config_builds_without_reading_any_roots() {
    assert!(client_config(Vec::new()).is_ok());
}
