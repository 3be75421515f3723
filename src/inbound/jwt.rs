//! Pure JWT access-token verification: parse the compact form, check the header
//! (algorithm allow-list, no `crit`, embedded keys ignored), choose the issuer by `iss`,
//! verify the signature with that issuer's keys only, then `exp`, `nbf`, `iat`, `aud`.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::Algorithm;
use serde_json::Value;

use super::keys::{KeyLookup, VerifyKey};
use crate::config::{Issuer, IssuerId, IssuerPattern};

pub use super::claims::Claims;

/// A token split and decoded, nothing verified yet.
pub struct Unverified<'t> {
    pub alg: Algorithm,
    pub kid: Option<String>,
    pub claims: Claims,
    signing_input: &'t str,
    signature: &'t str,
}

/// Why a token is not valid. Each maps to `401 invalid_token` with its description.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("the token is not a well-formed JWT ({0})")]
    Malformed(&'static str),
    #[error("the token is larger than the limit")]
    TooLarge,
    #[error("unsigned tokens (alg none) are not accepted")]
    AlgorithmNone,
    #[error("the signing algorithm is not allowed")]
    AlgorithmNotAllowed,
    #[error("the token has a critical header parameter tollgate does not understand")]
    CriticalHeader,
    #[error("the token has no issuer (iss)")]
    MissingIssuer,
    #[error("the token's issuer is not trusted")]
    UntrustedIssuer,
    #[error("the token's tenant is not allowed for this issuer")]
    TenantNotAllowed,
    #[error("the token's signing key (kid) is unknown")]
    UnknownKey,
    #[error("the token names no key (kid) and the issuer has several")]
    AmbiguousKey,
    #[error("the token's signature is invalid")]
    BadSignature,
    #[error("the token has no expiry (exp)")]
    MissingExpiry,
    #[error("the token has expired")]
    Expired,
    #[error("the token is not valid yet (nbf)")]
    NotYetValid,
    #[error("the token was issued in the future (iat)")]
    IssuedInFuture,
    #[error("the token has no audience (aud)")]
    MissingAudience,
    #[error("the token's audience is not accepted")]
    WrongAudience,
    #[error("claim `{0}` cannot be forwarded as a header (control characters)")]
    UnsafeClaim(String),
}

impl TokenError {
    /// A short, bounded label for metrics and logs.
    pub fn reason(&self) -> &'static str {
        match self {
            TokenError::Malformed(_) => "malformed",
            TokenError::TooLarge => "too_large",
            TokenError::AlgorithmNone => "alg_none",
            TokenError::AlgorithmNotAllowed => "alg_not_allowed",
            TokenError::CriticalHeader => "crit",
            TokenError::MissingIssuer | TokenError::UntrustedIssuer => "issuer",
            TokenError::TenantNotAllowed => "tenant",
            TokenError::UnknownKey | TokenError::AmbiguousKey => "unknown_key",
            TokenError::BadSignature => "signature",
            TokenError::MissingExpiry | TokenError::Expired => "expired",
            TokenError::NotYetValid => "nbf",
            TokenError::IssuedInFuture => "iat",
            TokenError::MissingAudience | TokenError::WrongAudience => "audience",
            TokenError::UnsafeClaim(_) => "unsafe_claim",
        }
    }
}

/// The header fields tollgate reads. `jku`, `x5u`, `jwk`, `x5c` are deliberately not
/// even parsed: keys named inside a token are never trusted.
#[derive(serde::Deserialize)]
struct RawHeader {
    alg: Option<Value>,
    kid: Option<Value>,
    crit: Option<Value>,
}

/// Split and decode. Refuses `alg: none` in any spelling, HMAC and unknown algorithms,
/// and any `crit` header (RFC 7515 §4.1.11: we understand no extension).
pub fn parse(token: &str) -> Result<Unverified<'_>, TokenError> {
    let mut parts = token.split('.');
    let (Some(h), Some(p), Some(s), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
        return Err(TokenError::Malformed("expected three dot-separated parts"));
    };
    let header: RawHeader = decode_json(h).ok_or(TokenError::Malformed("header is not base64url JSON"))?;
    let alg = match header.alg {
        Some(Value::String(a)) if a.trim().eq_ignore_ascii_case("none") => {
            return Err(TokenError::AlgorithmNone);
        }
        Some(Value::String(a)) => asymmetric(&a).ok_or(TokenError::AlgorithmNotAllowed)?,
        _ => return Err(TokenError::Malformed("header has no alg")),
    };
    if header.crit.is_some() {
        return Err(TokenError::CriticalHeader);
    }
    let kid = match header.kid {
        None => None,
        Some(Value::String(k)) => Some(k),
        Some(_) => return Err(TokenError::Malformed("kid is not a string")),
    };
    let claims: Claims = decode_json(p).ok_or(TokenError::Malformed("payload is not base64url JSON"))?;
    if s.is_empty() {
        return Err(TokenError::BadSignature);
    }
    let signing_input = &token[..h.len() + 1 + p.len()];
    Ok(Unverified {
        alg,
        kid,
        claims,
        signing_input,
        signature: s,
    })
}

fn asymmetric(name: &str) -> Option<Algorithm> {
    use Algorithm::*;
    match name {
        "RS256" => Some(RS256),
        "RS384" => Some(RS384),
        "RS512" => Some(RS512),
        "PS256" => Some(PS256),
        "PS384" => Some(PS384),
        "PS512" => Some(PS512),
        "ES256" => Some(ES256),
        "ES384" => Some(ES384),
        "EdDSA" => Some(EdDSA),
        _ => None,
    }
}

fn decode_json<T: serde::de::DeserializeOwned>(part: &str) -> Option<T> {
    let bytes = URL_SAFE_NO_PAD.decode(part).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// The configured issuer this token claims to come from: exact `iss`, or a `{tenantid}`
/// template whose substituted value is an allowed tenant and equals `tid`.
pub fn select_issuer(claims: &Claims, issuers: &[Issuer]) -> Result<IssuerId, TokenError> {
    let iss = claims
        .get("iss")
        .and_then(Value::as_str)
        .ok_or(TokenError::MissingIssuer)?;
    let mut tenant_refused = false;
    for (i, issuer) in issuers.iter().enumerate() {
        match &issuer.issuer {
            IssuerPattern::Exact(exact) if exact == iss => return Ok(IssuerId(i)),
            IssuerPattern::Exact(_) => {}
            IssuerPattern::Tenant {
                prefix,
                suffix,
                tenants,
            } => {
                let Some(tenant) = iss
                    .strip_prefix(prefix.as_str())
                    .and_then(|r| r.strip_suffix(suffix.as_str()))
                else {
                    continue;
                };
                let tid = claims.get("tid").and_then(Value::as_str);
                if tenants.contains(tenant) && tid == Some(tenant) {
                    return Ok(IssuerId(i));
                }
                tenant_refused = true;
            }
        }
    }
    Err(if tenant_refused {
        TokenError::TenantNotAllowed
    } else {
        TokenError::UntrustedIssuer
    })
}

/// The algorithm must be on the issuer's allow-list (checked before any key is used).
pub fn check_algorithm(alg: Algorithm, issuer: &Issuer) -> Result<(), TokenError> {
    if issuer.algorithms.contains(&alg) {
        Ok(())
    } else {
        Err(TokenError::AlgorithmNotAllowed)
    }
}

pub fn key_error(lookup: KeyLookup) -> TokenError {
    match lookup {
        KeyLookup::UnknownKid => TokenError::UnknownKey,
        KeyLookup::Ambiguous => TokenError::AmbiguousKey,
        // A key of another type under the token's kid: the signature cannot be valid.
        KeyLookup::WrongKeyType => TokenError::BadSignature,
    }
}

pub fn verify_signature(token: &Unverified<'_>, key: &VerifyKey) -> Result<(), TokenError> {
    if !key.supports(token.alg) {
        return Err(TokenError::BadSignature);
    }
    let signature = URL_SAFE_NO_PAD
        .decode(token.signature)
        .map_err(|_| TokenError::BadSignature)?;
    if key.verify(token.alg, token.signing_input.as_bytes(), &signature) {
        Ok(())
    } else {
        Err(TokenError::BadSignature)
    }
}

/// Time and audience checks (RFC 7519 §4.1), after the signature was verified.
pub fn validate_claims(claims: &Claims, issuer: &Issuer, now: i64) -> Result<(), TokenError> {
    let leeway = issuer.leeway.as_secs() as i64;
    let exp = numeric(claims, "exp")?.ok_or(TokenError::MissingExpiry)?;
    if now >= exp.saturating_add(leeway) {
        return Err(TokenError::Expired);
    }
    if numeric(claims, "nbf")?.is_some_and(|nbf| nbf > now.saturating_add(leeway)) {
        return Err(TokenError::NotYetValid);
    }
    if numeric(claims, "iat")?.is_some_and(|iat| iat > now.saturating_add(leeway)) {
        return Err(TokenError::IssuedInFuture);
    }
    let accepted = |a: &str| issuer.audiences.iter().any(|x| x == a);
    match claims.get("aud") {
        None => Err(TokenError::MissingAudience),
        Some(Value::String(a)) if accepted(a) => Ok(()),
        Some(Value::Array(list)) if list.iter().filter_map(Value::as_str).any(accepted) => Ok(()),
        Some(_) => Err(TokenError::WrongAudience),
    }
}

/// A NumericDate claim: absent, or a number (fractions allowed, RFC 7519 §2).
fn numeric(claims: &Claims, name: &'static str) -> Result<Option<i64>, TokenError> {
    match claims.get(name) {
        None => Ok(None),
        Some(Value::Number(n)) => n
            .as_i64()
            .or_else(|| n.as_f64().map(|f| f as i64))
            .map(Some)
            .ok_or(TokenError::Malformed("a time claim is not a number")),
        Some(_) => Err(TokenError::Malformed("a time claim is not a number")),
    }
}

#[cfg(test)]
mod tests;
