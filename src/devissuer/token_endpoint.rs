//! The development issuer's token endpoint: the client-credentials and exchange grants
//! (see `exchange.rs`) for registered clients (secret by `post` or `basic`, certificate by `private_key_jwt`, federated
//! assertion), plus an App Service–style managed identity endpoint. Every request is
//! logged for tests; lifetime, delay and failure are adjustable.

use std::collections::HashMap;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use http::StatusCode;
use serde_json::{Value, json};

use crate::inbound::jwt;
use crate::inbound::keys::KeySet;

/// How a registered client proves itself.
pub enum ClientAuth {
    Secret(String),
    /// `private_key_jwt`: assertions must verify with `jwk` and carry this `x5t#S256`.
    Certificate {
        jwk: Value,
        x5t_s256: String,
    },
    /// Workload identity: any non-empty assertion is accepted (and logged).
    Federated,
}

pub struct Client {
    pub auth: ClientAuth,
    pub roles: Vec<String>,
}

/// One request the endpoint received, as tests inspect it.
#[derive(Debug, Clone)]
pub struct TokenRequest {
    pub path: String,
    pub client_id: Option<String>,
    /// `post`, `basic`, `private_key_jwt`, `federated`, `managed_identity`, or `unknown`.
    pub method: &'static str,
    pub form: Vec<(String, String)>,
    pub headers: Vec<(String, String)>,
    pub status: u16,
    pub error: Option<String>,
}

impl TokenRequest {
    pub fn field(&self, name: &str) -> Option<&str> {
        self.form.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Adjustable behaviour, for tests.
pub struct Behaviour {
    pub lifetime: Duration,
    pub delay: Duration,
    /// Answer every token request with this status (an OAuth error body).
    pub fail_with: Option<u16>,
    /// Answer exchange grants with `invalid_grant`, AADSTS50076 and this `claims`
    /// challenge (conditional access asking for MFA).
    pub claims_challenge: Option<String>,
}

impl Default for Behaviour {
    fn default() -> Self {
        Behaviour {
            lifetime: Duration::from_secs(3600),
            delay: Duration::ZERO,
            fail_with: None,
            claims_challenge: None,
        }
    }
}

/// What the client proved, or why not.
pub struct Authenticated {
    pub client_id: String,
    pub method: &'static str,
    /// Entra's `azpacr`: "1" secret, "2" certificate (federated counts as "2").
    pub azpacr: &'static str,
}

/// Authenticate a token request's client against the registered clients (the grant is
/// the caller's to check).
pub fn authenticate(
    clients: &HashMap<String, Client>,
    token_url: &str,
    form: &[(String, String)],
    authorization: Option<&str>,
    now: i64,
) -> Result<Authenticated, (StatusCode, &'static str, String)> {
    let field = |n: &str| form.iter().find(|(k, _)| k == n).map(|(_, v)| v.as_str());
    let invalid = |why: String| (StatusCode::UNAUTHORIZED, "invalid_client", why);
    if let Some(basic) = authorization.and_then(|a| a.strip_prefix("Basic ")) {
        let decoded = STANDARD
            .decode(basic.trim())
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .ok_or_else(|| invalid("bad Basic header".into()))?;
        let (id, secret) = decoded
            .split_once(':')
            .ok_or_else(|| invalid("bad Basic header".into()))?;
        let decode = |s: &str| {
            url::form_urlencoded::parse(format!("x={s}").as_bytes())
                .next()
                .map(|(_, v)| v.into_owned())
                .unwrap_or_default()
        };
        let (id, secret) = (decode(id), decode(secret));
        return match clients.get(&id).map(|c| &c.auth) {
            Some(ClientAuth::Secret(s)) if *s == secret => Ok(Authenticated {
                client_id: id,
                method: "basic",
                azpacr: "1",
            }),
            _ => Err(invalid(format!(
                "AADSTS7000215: Invalid client secret provided for {id}."
            ))),
        };
    }
    let id = field("client_id")
        .ok_or_else(|| invalid("no client_id".into()))?
        .to_string();
    let client = clients
        .get(&id)
        .ok_or_else(|| invalid(format!("AADSTS700016: Application {id} not found.")))?;
    match (&client.auth, field("client_secret"), field("client_assertion")) {
        (ClientAuth::Secret(s), Some(given), None) if s == given => Ok(Authenticated {
            client_id: id,
            method: "post",
            azpacr: "1",
        }),
        (ClientAuth::Secret(_), _, _) => {
            Err(invalid("AADSTS7000215: Invalid client secret provided.".into()))
        }
        (ClientAuth::Certificate { jwk, x5t_s256 }, None, Some(assertion)) => {
            if field("client_assertion_type") != Some(crate::credentials::JWT_BEARER) {
                return Err(invalid("wrong client_assertion_type".into()));
            }
            check_assertion(assertion, jwk, x5t_s256, &id, token_url, now).map_err(invalid)?;
            Ok(Authenticated {
                client_id: id,
                method: "private_key_jwt",
                azpacr: "2",
            })
        }
        (ClientAuth::Federated, None, Some(assertion)) if !assertion.is_empty() => Ok(Authenticated {
            client_id: id,
            method: "federated",
            azpacr: "2",
        }),
        _ => Err(invalid(
            "AADSTS7000218: credential missing or of the wrong kind.".into(),
        )),
    }
}

/// RFC 7523 checks: signature with the registered key, thumbprint, `iss` = `sub` = client,
/// `aud` = token URL, unexpired.
fn check_assertion(
    assertion: &str,
    jwk: &Value,
    x5t_s256: &str,
    client_id: &str,
    token_url: &str,
    now: i64,
) -> Result<(), String> {
    let header: Value = assertion
        .split('.')
        .next()
        .and_then(|h| URL_SAFE_NO_PAD.decode(h).ok())
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or("assertion header unreadable")?;
    if header.get("x5t#S256").and_then(Value::as_str) != Some(x5t_s256) {
        return Err("AADSTS700027: the certificate thumbprint (x5t#S256) is not registered.".into());
    }
    let keys = KeySet::from_json(json!({ "keys": [jwk] }).to_string().as_bytes())?.0;
    let token = jwt::parse(assertion).map_err(|e| format!("assertion: {}", e.reason()))?;
    let key = keys
        .find(None, token.alg)
        .map_err(|_| "no key for the assertion's algorithm")?;
    jwt::verify_signature(&token, key).map_err(|_| "AADSTS700027: assertion signature invalid.")?;
    let claim = |n: &str| token.claims.get(n).and_then(Value::as_str);
    if claim("iss") != Some(client_id) || claim("sub") != Some(client_id) {
        return Err("assertion iss/sub must be the client id".into());
    }
    if claim("aud") != Some(token_url) {
        return Err("assertion aud must be the token URL".into());
    }
    let exp = token.claims.get("exp").and_then(Value::as_i64).unwrap_or(0);
    if exp <= now || exp > now + 660 {
        return Err("assertion expired or lives longer than 10 minutes".into());
    }
    if claim("jti").is_none_or(str::is_empty) {
        return Err("assertion needs a jti".into());
    }
    Ok(())
}

/// `api://x/.default` → `api://x`.
pub fn audience_of(scope: &str) -> String {
    let first = scope.split(' ').next().unwrap_or_default();
    first.strip_suffix("/.default").unwrap_or(first).to_string()
}
