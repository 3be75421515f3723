//! `tollgate explain`: the inbound decision for one request, step by step, as a person
//! reads it: which route matched, the token checks (signature against the issuer's
//! `jwks_file` or fetched keys, unless `--no-verify`), each requirement with pass/fail and
//! the claim values seen, the final decision and the status tollgate would answer.
//! It runs the same functions as the listener.

use std::fmt::Write as _;

use http::{HeaderMap, Method};
use serde_json::Value;

use crate::config::{Access, Config, Mode, Policy};
use crate::inbound::Refusal;
use crate::inbound::jwks::KeyCache;
use crate::inbound::jwt::{self, Claims};
use crate::inbound::policy::{self, Check};
use crate::inbound::served_request;
use crate::metrics::Metrics;

/// The explanation: text for people, and the outcome.
pub struct Explanation {
    pub text: String,
    /// What tollgate would answer (200 stands for "forwarded to the upstream").
    pub status: u16,
    pub allowed: bool,
}

/// The request to explain.
pub struct Asked<'a> {
    pub method: &'a Method,
    /// As on the request line; a query is ignored.
    pub path: &'a str,
    /// Other request headers (method overrides, look-alike names…).
    pub headers: &'a HeaderMap,
    pub token: Option<&'a str>,
}

/// Explain the `asked` request under `config`'s inbound section (else its decision
/// section: the same policy, answered to a proxy).
pub async fn explain(config: &Config, asked: &Asked<'_>, verify: bool) -> Explanation {
    let (method, path) = (asked.method, asked.path);
    let mut out = String::new();
    let (inbound, allowed_to) = match (&config.inbound, &config.decision) {
        (Some(i), _) => (&i.policy, format!("forwarded to {} (it answers)", i.upstream)),
        (None, Some(d)) => (&d.policy, "the proxy that asked forwards it".to_string()),
        (None, None) => {
            return Explanation {
                text: "the configuration has no `inbound` or `decision` section: nothing to explain\n".into(),
                status: 0,
                allowed: false,
            };
        }
    };
    let _ = writeln!(out, "request   {method} {path}");
    if !verify {
        let _ = writeln!(
            out,
            "NOTE      --no-verify: the signature is NOT checked; this is a claims-only decision"
        );
    }
    let result = decide(config, inbound, asked, verify, &mut out).await;
    let (status, allowed) = match &result {
        Ok(()) => {
            let _ = writeln!(out, "decision  ALLOW → {allowed_to}");
            (200, true)
        }
        Err(refusal) => {
            let reply = refusal.reply();
            let code = if reply.error.is_empty() {
                String::new()
            } else {
                format!(" {}", reply.error)
            };
            let _ = writeln!(
                out,
                "decision  DENY → {}{code}: {}",
                reply.status.as_u16(),
                reply.description
            );
            if inbound.mode == Mode::Audit {
                let _ = writeln!(
                    out,
                    "          (mode: audit — tollgate would forward it anyway and count would_deny)"
                );
            }
            (reply.status.as_u16(), false)
        }
    };
    Explanation {
        text: out,
        status,
        allowed,
    }
}

async fn decide(
    config: &Config,
    inbound: &Policy,
    asked: &Asked<'_>,
    verify: bool,
    out: &mut String,
) -> Result<(), Refusal> {
    let raw_path = asked.path.split('?').next().unwrap_or_default();
    let served = served_request::read(inbound, asked.headers, asked.method, raw_path)?;
    if served.path.key() != raw_path {
        let _ = writeln!(
            out,
            "served as {} (segment names{}, as the service will route it)",
            served.path.key(),
            match served.path.case() {
                crate::served_path::PathCase::Insensitive => ", case-folded",
                crate::served_path::PathCase::Sensitive => "",
            }
        );
    }
    if served.method != asked.method {
        let _ = writeln!(
            out,
            "method    judged as {} (method override header; method_override: judge)",
            served.method
        );
    }
    let Some(route) = policy::find_route(&inbound.routes, &served.method, &served.path) else {
        let _ = writeln!(
            out,
            "route     none of the {} routes matches",
            inbound.routes.len()
        );
        return Err(Refusal::NoRoute);
    };
    let methods = route
        .methods
        .as_ref()
        .map(|m| {
            let names: Vec<&str> = m.iter().map(Method::as_str).collect();
            format!(", methods [{}]", names.join(", "))
        })
        .unwrap_or_default();
    let _ = writeln!(
        out,
        "route     {} (path_prefix {}{methods})",
        route.label,
        route.path_prefix.as_str()
    );
    let requirement = match &route.access {
        Access::Anonymous => {
            let _ = writeln!(out, "access    allow_anonymous: no token needed");
            return Ok(());
        }
        Access::Require(r) => r,
    };
    let token = asked.token.ok_or(Refusal::MissingToken)?;
    if token.len() > inbound.max_token_bytes {
        return Err(Refusal::Token(jwt::TokenError::TooLarge));
    }
    let unverified = jwt::parse(token)?;
    let id = jwt::select_issuer(&unverified.claims, &config.issuers)?;
    let issuer = &config.issuers[id.0];
    let iss = unverified
        .claims
        .get("iss")
        .and_then(Value::as_str)
        .unwrap_or("-");
    let _ = writeln!(out, "issuer    {} (iss {iss})", issuer.name);
    jwt::check_algorithm(unverified.alg, issuer)?;
    if verify {
        let keys = load_keys(issuer).await.map_err(|why| {
            let _ = writeln!(out, "keys      cannot load the keys of `{}`: {why}", issuer.name);
            Refusal::KeysUnavailable(issuer.name.clone())
        })?;
        let key = keys
            .find(unverified.kid.as_deref(), unverified.alg)
            .map_err(jwt::key_error)?;
        jwt::verify_signature(&unverified, key)?;
        let kid = unverified.kid.as_deref().unwrap_or("(none)");
        let _ = writeln!(out, "signature ok ({:?}, kid {kid})", unverified.alg);
    } else {
        let _ = writeln!(out, "signature NOT CHECKED (--no-verify)");
    }
    let now = crate::clock::unix_now();
    jwt::validate_claims(&unverified.claims, issuer, now)?;
    let exp = unverified.claims.get("exp").and_then(Value::as_i64).unwrap_or(0);
    let _ = writeln!(
        out,
        "claims    ok: exp in {} s, aud {}",
        exp - now,
        compact(unverified.claims.get("aud"))
    );
    let _ = writeln!(out, "policy    route `{}` requires:", route.label);
    let name = |i: crate::config::IssuerId| config.issuers[i.0].name.clone();
    let checks = policy::checks(requirement, id, &unverified.claims, false);
    write_checks(out, &checks, &unverified.claims, &name, 1);
    policy::evaluate(requirement, id, &unverified.claims, &name).map_err(Refusal::Policy)?;
    Ok(())
}

fn write_checks(
    out: &mut String,
    checks: &[Check<'_, '_>],
    claims: &Claims,
    name: &dyn Fn(crate::config::IssuerId) -> String,
    depth: usize,
) {
    let indent = "  ".repeat(depth + 4);
    for c in checks {
        let mark = if c.passed { "pass" } else { "FAIL" };
        let saw = if c.requirement == "issuers" {
            format!("iss {}", compact(claims.get("iss")))
        } else if c.requirement == "any_of" {
            String::new()
        } else if c.saw.is_empty() {
            format!("{}: (absent)", c.claim)
        } else {
            let values: Vec<&str> = c.saw.iter().map(|s| s.as_ref()).collect();
            format!("{}: [{}]", c.claim, values.join(", "))
        };
        let _ = writeln!(
            out,
            "{indent}{mark}  {:<10} {}  — token has {saw}",
            c.requirement,
            c.describe(name)
        );
        for (i, alt) in c.alternatives.iter().enumerate() {
            let _ = writeln!(out, "{indent}      alternative {}:", i + 1);
            write_checks(out, alt, claims, name, depth + 3);
        }
    }
}

fn compact(value: Option<&Value>) -> String {
    match value {
        None => "(absent)".into(),
        Some(Value::String(s)) => s.clone(),
        Some(v) => v.to_string(),
    }
}

async fn load_keys(
    issuer: &crate::config::Issuer,
) -> Result<std::sync::Arc<crate::inbound::keys::KeySet>, String> {
    let http = crate::idp::client().map_err(|e| e.to_string())?;
    let metrics = Metrics::new().map_err(|e| e.to_string())?;
    let cache = KeyCache::new(&issuer.name, issuer.keys.clone(), http, metrics, None);
    cache.refresh().await.map_err(|e| e.to_string())?;
    cache.current().ok_or_else(|| "no keys".to_string())
}
