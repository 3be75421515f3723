//! Pure policy: which route a request takes, and whether a verified token meets the
//! route's requirement set. The result names the first unmet requirement.

use std::borrow::Cow;

use http::Method;
use serde_json::Value;

use super::jwt::Claims;
use crate::config::{InboundRoute, IssuerId, Requirement, TokenKind};
use crate::served_path::ServedPath;

/// The requirement a token did not meet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unmet {
    /// The config key that failed (`roles_any`, `azpacr`, …): a bounded metric label.
    pub requirement: &'static str,
    pub description: String,
}

/// The first route whose prefix and method match the request as the service will serve it.
pub fn find_route<'r>(
    routes: &'r [InboundRoute],
    method: &Method,
    path: &ServedPath,
) -> Option<&'r InboundRoute> {
    routes.iter().find(|r| {
        r.path_prefix.matches(path) && r.methods.as_ref().is_none_or(|methods| methods.contains(method))
    })
}

/// One requirement key checked against the token: what was wanted, what the token had.
#[derive(Debug)]
pub struct Check<'r, 'c> {
    /// The config key (`roles_any`, `azpacr`, …): a bounded metric label.
    pub requirement: &'static str,
    /// The claim(s) looked at, for people (`roles`, `azpacr/appidacr`, …).
    pub claim: &'r str,
    pub passed: bool,
    pub wanted: Wanted<'r>,
    /// The token's values for `claim` (empty: absent).
    pub saw: Vec<Cow<'c, str>>,
    /// For `any_of`: every alternative's checks.
    pub alternatives: Vec<Vec<Check<'r, 'c>>>,
}

#[derive(Debug)]
pub enum Wanted<'r> {
    Values(&'r [String]),
    Issuers(&'r [IssuerId]),
    Kind(TokenKind),
    Alternatives,
}

/// A list requirement: key, claim, wanted values, the token's values, any (else all).
type ListCheck<'r, 'h, 'c> = (&'static str, &'static str, &'r [String], &'h Vec<&'c str>, bool);

/// Does the token (from `issuer`, with `claims`) meet `req`? Names of issuers for the
/// description come from `issuer_name`.
pub fn evaluate(
    req: &Requirement,
    issuer: IssuerId,
    claims: &Claims,
    issuer_name: &dyn Fn(IssuerId) -> String,
) -> Result<(), Unmet> {
    // The usual answer, yes, is found without building any check; a refusal walks the
    // same keys again to say which one failed.
    if passes(req, issuer, claims) {
        return Ok(());
    }
    match checks(req, issuer, claims, true).into_iter().find(|c| !c.passed) {
        None => Ok(()),
        Some(failed) => Err(Unmet {
            requirement: failed.requirement,
            description: failed.describe(issuer_name),
        }),
    }
}

/// Every key of `req`, checked in a fixed order. With `stop_at_failure`, the list ends at
/// the first failed check (what enforcement needs); without, it is complete (`explain`).
pub fn checks<'r, 'c>(
    req: &'r Requirement,
    issuer: IssuerId,
    claims: &'c Claims,
    stop_at_failure: bool,
) -> Vec<Check<'r, 'c>> {
    let mut list = CheckList {
        out: Vec::new(),
        stop_at_failure,
    };
    walk(req, issuer, claims, &mut list);
    list.out
}

/// Whether the token meets every key of `req`: [`checks`]' verdict without the list.
fn passes(req: &Requirement, issuer: IssuerId, claims: &Claims) -> bool {
    let mut verdict = Verdict(true);
    walk(req, issuer, claims, &mut verdict);
    verdict.0
}

/// What [`walk`] tells about each key it checks.
trait Sink<'r, 'c> {
    /// One key checked; `detail` builds the full check if the sink keeps it. `false`: stop.
    fn record(&mut self, passed: bool, detail: impl FnOnce() -> Check<'r, 'c>) -> bool;
    /// Whether each `any_of` alternative's list should end at its first failure.
    fn stop_at_failure(&self) -> bool;
}

/// Keeps every check (for `explain` and refusals).
struct CheckList<'r, 'c> {
    out: Vec<Check<'r, 'c>>,
    stop_at_failure: bool,
}

impl<'r, 'c> Sink<'r, 'c> for CheckList<'r, 'c> {
    fn record(&mut self, passed: bool, detail: impl FnOnce() -> Check<'r, 'c>) -> bool {
        self.out.push(detail());
        passed || !self.stop_at_failure
    }

    fn stop_at_failure(&self) -> bool {
        self.stop_at_failure
    }
}

/// Keeps only whether all passed, and stops at the first that did not.
struct Verdict(bool);

impl<'r, 'c> Sink<'r, 'c> for Verdict {
    fn record(&mut self, passed: bool, _detail: impl FnOnce() -> Check<'r, 'c>) -> bool {
        self.0 &= passed;
        passed
    }

    fn stop_at_failure(&self) -> bool {
        true
    }
}

/// The one reading of a requirement set: each key of `req`, in a fixed order, told to `sink`.
fn walk<'r, 'c>(req: &'r Requirement, issuer: IssuerId, claims: &'c Claims, sink: &mut impl Sink<'r, 'c>) {
    let check = |requirement, claim: &'r str, passed, wanted, saw| Check {
        requirement,
        claim,
        passed,
        wanted,
        saw,
        alternatives: Vec::new(),
    };
    if !req.issuers.is_empty() {
        let passed = req.issuers.contains(&issuer);
        let detail = || {
            check(
                "issuers",
                "iss",
                passed,
                Wanted::Issuers(&req.issuers),
                Vec::new(),
            )
        };
        if !sink.record(passed, detail) {
            return;
        }
    }
    let needs_roles = !req.roles_any.is_empty() || !req.roles_all.is_empty();
    let needs_scopes = !req.scopes_any.is_empty() || !req.scopes_all.is_empty();
    let roles = if needs_roles {
        strings(claims.get("roles"))
    } else {
        Vec::new()
    };
    let scopes = if needs_scopes { scopes(claims) } else { Vec::new() };
    let client = first_string(claims, &["azp", "appid"]);
    let acr = first_string(claims, &["azpacr", "appidacr"]);
    let tid = first_string(claims, &["tid"]);
    let any = |wanted: &[String], have: &[&str]| wanted.iter().any(|w| have.contains(&w.as_str()));
    let all = |wanted: &[String], have: &[&str]| wanted.iter().all(|w| have.contains(&w.as_str()));
    let lists: [ListCheck<'r, '_, 'c>; 4] = [
        ("roles_any", "roles", &req.roles_any, &roles, true),
        ("roles_all", "roles", &req.roles_all, &roles, false),
        ("scopes_any", "scp", &req.scopes_any, &scopes, true),
        ("scopes_all", "scp", &req.scopes_all, &scopes, false),
    ];
    for (key, claim, wanted, have, is_any) in lists {
        if wanted.is_empty() {
            continue;
        }
        let passed = if is_any {
            any(wanted, have)
        } else {
            all(wanted, have)
        };
        let saw = || have.iter().map(|h| Cow::Borrowed(*h)).collect();
        if !sink.record(passed, || {
            check(key, claim, passed, Wanted::Values(wanted), saw())
        }) {
            return;
        }
    }
    let singles: [(&'static str, &str, &'r [String], Option<&'c str>); 3] = [
        ("clients", "azp/appid", &req.clients, client),
        ("azpacr", "azpacr/appidacr", &req.azpacr, acr),
        ("tenants", "tid", &req.tenants, tid),
    ];
    for (key, claim, wanted, have) in singles {
        if wanted.is_empty() {
            continue;
        }
        let passed = have.is_some_and(|h| wanted.iter().any(|w| w == h));
        let saw = || have.into_iter().map(Cow::Borrowed).collect();
        if !sink.record(passed, || {
            check(key, claim, passed, Wanted::Values(wanted), saw())
        }) {
            return;
        }
    }
    if let Some(wanted) = req.token_kind {
        let kind = token_kind(claims);
        let passed = kind == wanted;
        let saw = || vec![Cow::Borrowed(kind.as_str())];
        if !sink.record(passed, || {
            check("token_kind", "idtyp/scp", passed, Wanted::Kind(wanted), saw())
        }) {
            return;
        }
    }
    for c in &req.claims {
        let saw = claim_values(claims.get(&c.claim));
        let passed = saw.iter().any(|s| c.values.iter().any(|v| v == s));
        if !sink.record(passed, || {
            check("claims", &c.claim, passed, Wanted::Values(&c.values), saw)
        }) {
            return;
        }
    }
    if !req.any_of.is_empty() {
        let passed = req.any_of.iter().any(|alt| passes(alt, issuer, claims));
        let stop_at_failure = sink.stop_at_failure();
        sink.record(passed, || {
            let mut c = check("any_of", "", passed, Wanted::Alternatives, Vec::new());
            c.alternatives = req
                .any_of
                .iter()
                .map(|alt| checks(alt, issuer, claims, stop_at_failure))
                .collect();
            c
        });
    }
}

impl Check<'_, '_> {
    /// The requirement in words, as 403 descriptions and `explain` show it.
    pub fn describe(&self, issuer_name: &dyn Fn(IssuerId) -> String) -> String {
        let what = match self.requirement {
            "roles_any" => "one of the roles",
            "roles_all" => "all of the roles",
            "scopes_any" => "one of the scopes",
            "scopes_all" => "all of the scopes",
            "clients" => "client (azp/appid)",
            "azpacr" => "client authentication (azpacr/appidacr)",
            "tenants" => "tenant (tid)",
            _ => "",
        };
        match (&self.wanted, self.requirement) {
            (Wanted::Issuers(ids), _) => {
                let names: Vec<String> = ids.iter().map(|i| issuer_name(*i)).collect();
                format!("requires a token from issuer {}", list(&names))
            }
            (Wanted::Kind(kind), _) => format!(
                "requires {} token (idtyp, else `scp` present means user)",
                match kind {
                    TokenKind::App => "an app",
                    TokenKind::User => "a user",
                }
            ),
            (Wanted::Values(values), "claims") => {
                format!("requires claim `{}` to be one of {}", self.claim, list(values))
            }
            (Wanted::Values(values), _) => format!("requires {what} {}", list(values)),
            (Wanted::Alternatives, _) => {
                let hint = self
                    .alternatives
                    .first()
                    .and_then(|alt| alt.iter().find(|c| !c.passed))
                    .map(|c| format!(" (first alternative: {})", c.describe(issuer_name)))
                    .unwrap_or_default();
                format!("none of the any_of alternatives is met{hint}")
            }
        }
    }
}

fn list(values: &[String]) -> String {
    format!("[{}]", values.join(", "))
}

/// A claim's values as text, for `claims` requirements: strings, arrays of strings,
/// numbers and booleans.
fn claim_values(value: Option<&Value>) -> Vec<Cow<'_, str>> {
    match value {
        Some(Value::Number(n)) => vec![Cow::Owned(n.to_string())],
        Some(Value::Bool(b)) => vec![Cow::Owned(b.to_string())],
        other => strings(other).into_iter().map(Cow::Borrowed).collect(),
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

/// Entra's `idtyp` (`app`/`user`) when present; otherwise a token carrying `scp` (delegated
/// scopes) was issued to a user, one without to an application.
pub fn token_kind(claims: &Claims) -> TokenKind {
    match claims.get("idtyp").and_then(Value::as_str) {
        Some("app") => TokenKind::App,
        Some("user") => TokenKind::User,
        _ if claims.contains_key("scp") => TokenKind::User,
        _ => TokenKind::App,
    }
}

fn first_string<'c>(claims: &'c Claims, names: &[&str]) -> Option<&'c str> {
    names.iter().find_map(|n| claims.get(n).and_then(Value::as_str))
}

#[cfg(test)]
mod tests;
