//! README.md's configuration reference names every key of the configuration model. The
//! keys are not listed by hand here: each struct of the model is asked for its fields by
//! putting an unknown key into it and reading the `expected one of …` list of the error.

use std::collections::BTreeSet;
use std::path::Path;

use ::tollgate::config::{Config, ProcessEnv};

/// One document that visits every struct of the model, each with an unknown key `zz`.
const EVERYWHERE: &str = r#"
zz: 1
limits: { zz: 1 }
admin: { listen: "127.0.0.1:1", limits: { zz: 1 }, zz: 1 }
shutdown: { drain_timeout_seconds: 1, zz: 1 }
reload: { poll_interval_seconds: 1, zz: 1 }
issuers:
  NAME: { issuer: "https://a.example", jwks_file: k.json, audiences: [a], zz: 1 }
inbound:
  zz: 1
  listen: "127.0.0.1:2"
  limits: { zz: 1 }
  tls: { cert_file: a, key_file: b, zz: 1 }
  upstream: "http://127.0.0.1:3"
  routes:
    - zz: 1
      match: { path_prefix: /a, zz: 1 }
      require: { roles_any: [a], zz: 1 }
decision:
  zz: 1
  listen: "127.0.0.1:5"
  limits: { zz: 1 }
  tls: { cert_file: a, key_file: b, zz: 1 }
  routes:
    - zz: 1
      match: { path_prefix: /a, zz: 1 }
      require: { roles_any: [a], zz: 1 }
outbound:
  zz: 1
  listen: "127.0.0.1:4"
  limits: { zz: 1 }
  credentials:
    NAME:
      zz: 1
      token_url: "https://t.example/token"
      client_id: c
      scopes: [s]
      auth:
        zz: 1
        client_secret: { file: s, zz: 1 }
        private_key_jwt: { certificate_file: c, key_file: k, zz: 1 }
        workload_identity: { token_file: t, zz: 1 }
        managed_identity: { client_id: m, zz: 1 }
  routes:
    - zz: 1
      match: { host: a.internal, zz: 1 }
      upstream: "https://a.example"
      credential: NAME
"#;

/// Every key path of the model, as the README writes them: `inbound.routes[].match.host`,
/// `issuers.NAME.audiences`, …
fn model_keys() -> BTreeSet<String> {
    let errors = Config::from_yaml(EVERYWHERE, Path::new("/"), &ProcessEnv).expect_err("unknown keys");
    let mut keys = BTreeSet::new();
    for e in errors.iter().map(|e| e.to_string()) {
        let Some((path, rest)) = e.split_once(" (line") else {
            continue;
        };
        let Some(parent) = path.strip_suffix("zz").map(|p| p.trim_end_matches('.')) else {
            continue;
        };
        // serde: "expected `a`", "expected `a` or `b`", "expected one of `a`, `b`, …".
        let Some(list) = rest.split_once("(expected ").map(|(_, l)| l) else {
            continue;
        };
        let parent = normalize(parent);
        for name in list.split('`').skip(1).step_by(2) {
            keys.insert(if parent.is_empty() {
                name.to_string()
            } else {
                format!("{parent}.{name}")
            });
        }
    }
    keys
}

fn normalize(path: &str) -> String {
    let mut out = String::new();
    let mut chars = path.chars().peekable();
    while let Some(c) = chars.next() {
        out.push(c);
        if c == '[' {
            while chars.peek().is_some_and(|d| d.is_ascii_digit()) {
                chars.next();
            }
        }
    }
    out
}

#[test]
fn the_readme_configuration_reference_names_every_key_of_the_model() {
    let keys = model_keys();
    assert!(
        keys.len() > 60,
        "the model walk found only {} keys: {keys:?}",
        keys.len()
    );
    for expected in [
        "inbound.routes[].require.azpacr",
        "outbound.credentials.NAME.auth.private_key_jwt.algorithm",
    ] {
        assert!(keys.contains(expected), "{expected} not found in {keys:?}");
    }
    let readme = std::fs::read_to_string(crate::support::repo_path("README.md")).unwrap();
    let reference = readme
        .split("## Configuration reference")
        .nth(1)
        .and_then(|r| r.split("\n## ").next())
        .expect("README has a `## Configuration reference` section");
    // A listener's `limits` holds the keys of the top-level `limits`, documented once.
    let documented = |k: &str| {
        let shared = [
            "admin.limits.",
            "inbound.limits.",
            "outbound.limits.",
            "decision.limits.",
        ]
        .iter()
        .find_map(|p| k.strip_prefix(p))
        .map(|rest| format!("limits.{rest}"));
        // `decision` takes inbound's policy keys, documented once under `inbound`.
        let twin = k.strip_prefix("decision.").map(|rest| format!("inbound.{rest}"));
        reference.contains(&format!("`{k}`"))
            || shared.is_some_and(|s| reference.contains(&format!("`{s}`")))
            || twin.is_some_and(|t| reference.contains(&format!("`{t}`")))
    };
    let missing: Vec<&String> = keys.iter().filter(|k| !documented(k)).collect();
    assert!(
        missing.is_empty(),
        "README's configuration reference lacks:\n{missing:#?}"
    );
}
