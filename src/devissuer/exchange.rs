//! The development issuer's exchange grants: Entra's on-behalf-of (`jwt-bearer` with
//! `requested_token_use=on_behalf_of`) and RFC 8693 token exchange. The user token must
//! be one of its own (signature, issuer), addressed to the exchanging client (its client
//! id or `api://CLIENT-ID`) and unexpired; the minted token keeps the user and carries the
//! requested scopes for the downstream audience, with `azp` = the exchanging client.

use http::StatusCode;
use serde_json::{Value, json};

use super::DEV_TENANT;
use super::token_endpoint::Authenticated;
use crate::inbound::jwt;
use crate::inbound::keys::KeySet;

pub const JWT_BEARER_GRANT: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
pub const TOKEN_EXCHANGE_GRANT: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
const ACCESS_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:access_token";

pub type Refusal = (StatusCode, &'static str, String);

/// The user token of an exchange request, or why the request is not one.
pub fn subject(form: &[(String, String)]) -> Result<&str, Refusal> {
    let field = |n: &str| form.iter().find(|(k, _)| k == n).map(|(_, v)| v.as_str());
    let bad = |why: &str| (StatusCode::BAD_REQUEST, "invalid_request", why.to_string());
    match field("grant_type") {
        Some(JWT_BEARER_GRANT) => {
            if field("requested_token_use") != Some("on_behalf_of") {
                return Err(bad("AADSTS50027: requested_token_use must be on_behalf_of"));
            }
            field("assertion").ok_or_else(|| bad("AADSTS50027: no assertion"))
        }
        Some(TOKEN_EXCHANGE_GRANT) => {
            if field("subject_token_type") != Some(ACCESS_TOKEN_TYPE) {
                return Err(bad("subject_token_type must be an access token"));
            }
            field("subject_token").ok_or_else(|| bad("no subject_token"))
        }
        _ => Err((
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            "client_credentials, on-behalf-of or token exchange".into(),
        )),
    }
}

/// Verify the user token and mint the downstream claims (without `iss`/`exp`).
pub fn exchange(
    jwks: &Value,
    issuer: &str,
    client: &Authenticated,
    user_token: &str,
    scope: &str,
    now: i64,
) -> Result<Value, Refusal> {
    let invalid = |why: &str| (StatusCode::BAD_REQUEST, "invalid_grant", why.to_string());
    let keys = KeySet::from_json(jwks.to_string().as_bytes())
        .map_err(|_| invalid("no keys"))?
        .0;
    let token = jwt::parse(user_token).map_err(|e| invalid(&format!("AADSTS50027: {}", e.reason())))?;
    let key = keys
        .find(token.kid.as_deref(), token.alg)
        .map_err(|_| invalid("AADSTS50027: no key for the user token"))?;
    jwt::verify_signature(&token, key).map_err(|_| invalid("AADSTS50027: signature invalid"))?;
    let claims = &token.claims;
    let text = |n: &str| claims.get(n).and_then(Value::as_str);
    if text("iss") != Some(issuer) {
        return Err(invalid("AADSTS50027: the user token is not from this issuer"));
    }
    let app_id_uri = format!("api://{}", client.client_id);
    if text("aud") != Some(client.client_id.as_str()) && text("aud") != Some(app_id_uri.as_str()) {
        return Err(invalid(
            "AADSTS50013: the assertion's audience is not the exchanging application",
        ));
    }
    if claims
        .get("exp")
        .and_then(Value::as_i64)
        .is_none_or(|exp| exp <= now)
    {
        return Err(invalid(
            "AADSTS500133: the assertion is not within its valid time range",
        ));
    }
    let (audience, scopes) = downstream(scope);
    let mut minted = json!({
        "aud": audience,
        "azp": client.client_id,
        "azpacr": client.azpacr,
        "scp": scopes,
        "tid": text("tid").unwrap_or(DEV_TENANT),
        "idtyp": "user",
        "ver": "2.0",
        "iat": now,
        "nbf": now,
    });
    for kept in ["oid", "sub", "name", "preferred_username"] {
        if let Some(v) = claims.get(kept) {
            minted[kept] = v.clone();
        }
    }
    Ok(minted)
}

/// `api://inventory/Inventory.Read api://inventory/Inventory.Write` → (`api://inventory`,
/// `Inventory.Read Inventory.Write`). `/.default` grants `user_impersonation`.
fn downstream(scope: &str) -> (String, String) {
    let mut audience = String::new();
    let mut names = Vec::new();
    for s in scope.split(' ').filter(|s| !s.is_empty()) {
        let (resource, name) = s.rsplit_once('/').unwrap_or(("", s));
        if audience.is_empty() {
            audience = resource.to_string();
        }
        names.push(if name == ".default" {
            "user_impersonation"
        } else {
            name
        });
    }
    (audience, names.join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_name_the_downstream_audience_and_scp() {
        assert_eq!(
            downstream("api://inventory/Inventory.Read api://inventory/Inventory.Write"),
            (
                "api://inventory".to_string(),
                "Inventory.Read Inventory.Write".to_string()
            )
        );
        assert_eq!(
            downstream("api://x/.default"),
            ("api://x".to_string(), "user_impersonation".to_string())
        );
    }
}
