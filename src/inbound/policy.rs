//! Pure policy: which route a request takes, and whether a verified token meets the
//! route's requirement set. The result names the first unmet requirement.

use http::Method;
use serde_json::Value;

use super::jwt::Claims;
use crate::config::{ClaimRequirement, InboundRoute, IssuerId, Requirement};

/// The requirement a token did not meet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unmet {
    /// The config key that failed (`roles_any`, `azpacr`, …): a bounded metric label.
    pub requirement: &'static str,
    pub description: String,
}

/// The first route whose prefix and method match. `path` is the decoded path.
pub fn find_route<'r>(routes: &'r [InboundRoute], method: &Method, path: &str) -> Option<&'r InboundRoute> {
    routes.iter().find(|r| {
        r.path_prefix.matches(path) && r.methods.as_ref().is_none_or(|methods| methods.contains(method))
    })
}

/// Does the token (from `issuer`, with `claims`) meet `req`? Names of issuers for the
/// description come from `issuer_name`.
pub fn evaluate(
    req: &Requirement,
    issuer: IssuerId,
    claims: &Claims,
    issuer_name: &dyn Fn(IssuerId) -> String,
) -> Result<(), Unmet> {
    if !req.issuers.is_empty() && !req.issuers.contains(&issuer) {
        let names: Vec<String> = req.issuers.iter().map(|i| issuer_name(*i)).collect();
        return Err(unmet(
            "issuers",
            format!("requires a token from issuer {}", list(&names)),
        ));
    }
    let roles = strings(claims.get("roles"));
    check_any("roles_any", &req.roles_any, &roles, "one of the roles")?;
    check_all("roles_all", &req.roles_all, &roles, "all of the roles")?;
    let scopes = scopes(claims);
    check_any("scopes_any", &req.scopes_any, &scopes, "one of the scopes")?;
    check_all("scopes_all", &req.scopes_all, &scopes, "all of the scopes")?;
    let client = first_string(claims, &["azp", "appid"]);
    if !req.clients.is_empty() && !client.is_some_and(|c| req.clients.iter().any(|x| x == c)) {
        return Err(unmet(
            "clients",
            format!("requires client (azp/appid) {}", list(&req.clients)),
        ));
    }
    let acr = first_string(claims, &["azpacr", "appidacr"]);
    if !req.azpacr.is_empty() && !acr.is_some_and(|a| req.azpacr.iter().any(|x| x == a)) {
        return Err(unmet(
            "azpacr",
            format!(
                "requires client authentication (azpacr/appidacr) {}",
                list(&req.azpacr)
            ),
        ));
    }
    let tid = first_string(claims, &["tid"]);
    if !req.tenants.is_empty() && !tid.is_some_and(|t| req.tenants.iter().any(|x| x == t)) {
        return Err(unmet(
            "tenants",
            format!("requires tenant (tid) {}", list(&req.tenants)),
        ));
    }
    for c in &req.claims {
        check_claim(c, claims)?;
    }
    if !req.any_of.is_empty()
        && !req
            .any_of
            .iter()
            .any(|alt| evaluate(alt, issuer, claims, issuer_name).is_ok())
    {
        let first = evaluate(&req.any_of[0], issuer, claims, issuer_name).err();
        let hint = first
            .map(|u| format!(" (first alternative: {})", u.description))
            .unwrap_or_default();
        return Err(unmet(
            "any_of",
            format!("none of the any_of alternatives is met{hint}"),
        ));
    }
    Ok(())
}

fn unmet(requirement: &'static str, description: String) -> Unmet {
    Unmet {
        requirement,
        description,
    }
}

fn list(values: &[String]) -> String {
    format!("[{}]", values.join(", "))
}

fn check_any(key: &'static str, wanted: &[String], have: &[&str], what: &str) -> Result<(), Unmet> {
    if wanted.is_empty() || wanted.iter().any(|w| have.contains(&w.as_str())) {
        Ok(())
    } else {
        Err(unmet(key, format!("requires {what} {}", list(wanted))))
    }
}

fn check_all(key: &'static str, wanted: &[String], have: &[&str], what: &str) -> Result<(), Unmet> {
    if wanted.iter().all(|w| have.contains(&w.as_str())) {
        Ok(())
    } else {
        Err(unmet(key, format!("requires {what} {}", list(wanted))))
    }
}

fn check_claim(req: &ClaimRequirement, claims: &Claims) -> Result<(), Unmet> {
    let ok = match claims.get(&req.claim) {
        Some(Value::String(s)) => req.values.iter().any(|v| v == s),
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(Value::as_str)
            .any(|s| req.values.iter().any(|v| v == s)),
        Some(Value::Number(n)) => req.values.iter().any(|v| *v == n.to_string()),
        Some(Value::Bool(b)) => req.values.iter().any(|v| *v == b.to_string()),
        _ => false,
    };
    if ok {
        Ok(())
    } else {
        Err(unmet(
            "claims",
            format!(
                "requires claim `{}` to be one of {}",
                req.claim,
                list(&req.values)
            ),
        ))
    }
}

/// An array of strings, or one string counted as a one-element list.
fn strings(value: Option<&Value>) -> Vec<&str> {
    match value {
        Some(Value::String(s)) => vec![s.as_str()],
        Some(Value::Array(items)) => items.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    }
}

/// `scp` (Entra, space-separated), else `scope` (RFC 9068); an array is accepted too.
fn scopes(claims: &Claims) -> Vec<&str> {
    let value = claims.get("scp").or_else(|| claims.get("scope"));
    match value {
        Some(Value::String(s)) => s.split(' ').filter(|s| !s.is_empty()).collect(),
        other => strings(other),
    }
}

fn first_string<'c>(claims: &'c Claims, names: &[&str]) -> Option<&'c str> {
    names.iter().find_map(|n| claims.get(*n).and_then(Value::as_str))
}

#[cfg(test)]
mod tests;
