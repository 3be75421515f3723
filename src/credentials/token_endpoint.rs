//! Token requests against a token endpoint: one grant (client credentials, RFC 6749 §4.4,
//! or an exchange) plus the client's proof, and the parsing of token responses shared with
//! managed identity: `expires_in` and friends may arrive as numbers or strings.

use std::time::{Duration, Instant};

use http::HeaderValue;
use serde::Deserialize;
use url::Url;

use super::{AcquireError, Token};
use crate::clock::unix_now;

const MAX_RESPONSE_BYTES: usize = 256 * 1024;

/// How a client proves itself in a token request: form fields (`client_secret`,
/// `client_assertion`, …) or an HTTP Basic header (client_secret_basic).
pub struct ClientProof {
    pub fields: Vec<(&'static str, String)>,
    pub basic: Option<HeaderValue>,
}

pub struct TokenEndpoint {
    http: reqwest::Client,
    url: Url,
    scope: String,
    extra: Vec<(String, String)>,
}

impl TokenEndpoint {
    pub fn new(http: reqwest::Client, url: Url, scope: String, extra: Vec<(String, String)>) -> Self {
        TokenEndpoint {
            http,
            url,
            scope,
            extra,
        }
    }

    pub fn url(&self) -> &Url {
        &self.url
    }

    /// POST the `grant` fields (`grant_type` and the grant's own), `scope`, the extra
    /// parameters and the client's `proof`.
    pub async fn request(&self, grant: &[(&str, &str)], proof: ClientProof) -> Result<Token, AcquireError> {
        let mut form: Vec<(&str, &str)> = grant.to_vec();
        form.push(("scope", &self.scope));
        for (k, v) in &self.extra {
            form.push((k, v));
        }
        for (k, v) in &proof.fields {
            form.push((k, v));
        }
        let mut req = self.http.post(self.url.clone()).form(&form);
        if let Some(b) = proof.basic {
            req = req.header(http::header::AUTHORIZATION, b);
        }
        let sent = Instant::now();
        let res = req.send().await.map_err(|e| unreachable(&e))?;
        let status = res.status().as_u16();
        let body = read_limited(res).await?;
        parse_response(status, &body, sent)
    }
}

pub fn unreachable(e: &reqwest::Error) -> AcquireError {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    AcquireError::Unreachable(text)
}

pub async fn read_limited(mut res: reqwest::Response) -> Result<Vec<u8>, AcquireError> {
    let mut body = Vec::new();
    while let Some(chunk) = res.chunk().await.map_err(|e| unreachable(&e))? {
        if body.len() + chunk.len() > MAX_RESPONSE_BYTES {
            return Err(AcquireError::BadResponse("larger than 256 KiB".into()));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// A JSON number, or a string holding one (managed identity sends strings).
#[derive(Deserialize)]
#[serde(untagged)]
enum Seconds {
    Number(f64),
    Text(String),
}

impl Seconds {
    fn value(&self) -> Option<i64> {
        match self {
            Seconds::Number(n) if n.is_finite() => Some(*n as i64),
            Seconds::Number(_) => None,
            Seconds::Text(s) => s.trim().parse::<i64>().ok(),
        }
    }
}

#[derive(Deserialize)]
struct RawToken {
    access_token: Option<String>,
    token_type: Option<String>,
    expires_in: Option<Seconds>,
    expires_on: Option<Seconds>,
    refresh_in: Option<Seconds>,
    ext_expires_in: Option<Seconds>,
}

#[derive(Deserialize)]
struct RawError {
    error: Option<String>,
    error_description: Option<String>,
    #[serde(default)]
    error_codes: Vec<i64>,
    /// Entra's claims challenge (conditional access, MFA): JSON text to pass to the client.
    claims: Option<String>,
}

/// A token response (or an OAuth error response) into a token. `sent` is when the request
/// left: lifetimes count from then, so a slow answer never makes a token look fresher.
pub fn parse_response(status: u16, body: &[u8], sent: Instant) -> Result<Token, AcquireError> {
    if !(200..300).contains(&status) {
        let raw: RawError = serde_json::from_slice(body).unwrap_or(RawError {
            error: None,
            error_description: None,
            error_codes: Vec::new(),
            claims: None,
        });
        return Err(AcquireError::Refused {
            status,
            error: raw.error.map(|e| printable(&e, 100)),
            description: raw.error_description.map(|d| printable(&d, 400)),
            codes: raw.error_codes,
            claims: raw.claims.filter(|c| !c.is_empty()).map(|c| printable(&c, 4096)),
        });
    }
    let bad = |why: &str| AcquireError::BadResponse(why.into());
    let raw: RawToken = serde_json::from_slice(body).map_err(|_| bad("not a JSON token response"))?;
    let access = raw
        .access_token
        .filter(|t| !t.is_empty())
        .ok_or_else(|| bad("no `access_token`"))?;
    if let Some(kind) = &raw.token_type
        && !kind.eq_ignore_ascii_case("bearer")
    {
        return Err(bad("`token_type` is not Bearer"));
    }
    let now_unix = unix_now();
    let lifetime = match (
        raw.expires_in.as_ref().and_then(Seconds::value),
        raw.expires_on.as_ref(),
    ) {
        (Some(secs), _) => secs,
        (None, Some(on)) => on
            .value()
            .map(|t| t - now_unix)
            .ok_or_else(|| bad("`expires_on` is not a number"))?,
        (None, None) => return Err(bad("neither `expires_in` nor `expires_on`")),
    };
    if lifetime <= 0 {
        return Err(bad("the token is already expired"));
    }
    let lifetime = Duration::from_secs(lifetime as u64);
    let refresh_after = raw
        .refresh_in
        .as_ref()
        .and_then(Seconds::value)
        .filter(|r| *r > 0)
        .map(|r| Duration::from_secs(r as u64).min(lifetime))
        .unwrap_or(lifetime * 2 / 3);
    let ext = raw
        .ext_expires_in
        .as_ref()
        .and_then(Seconds::value)
        .map(|e| Duration::from_secs(e.max(0) as u64))
        .filter(|e| *e > lifetime);
    let mut bearer = HeaderValue::from_str(&format!("Bearer {access}"))
        .map_err(|_| bad("the access token is not header-safe"))?;
    bearer.set_sensitive(true);
    Ok(Token {
        bearer,
        expires_at: sent + lifetime,
        expires_unix: (now_unix as u64).saturating_add(lifetime.as_secs()),
        refresh_at: sent + refresh_after,
        ext_expires_at: ext.map(|e| sent + e),
    })
}

/// IdP text for a log line: control characters dropped, length bounded.
fn printable(text: &str, max: usize) -> String {
    text.chars()
        .filter(|c| !c.is_control() || *c == '\n')
        .take(max)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_or_strings_and_refresh_in() {
        let now = Instant::now();
        let t = parse_response(
            200,
            br#"{"access_token":"abc","token_type":"Bearer","expires_in":"3600","ext_expires_in":7200,"refresh_in":1800}"#,
            now,
        )
        .unwrap();
        assert_eq!(t.expires_at - now, Duration::from_secs(3600));
        assert_eq!(t.refresh_at - now, Duration::from_secs(1800));
        assert_eq!(t.ext_expires_at.unwrap() - now, Duration::from_secs(7200));
        assert!(t.bearer.is_sensitive());
        assert_eq!(t.bearer.to_str().unwrap(), "Bearer abc");
    }

    #[test]
    fn refresh_defaults_to_when_a_third_remains() {
        let now = Instant::now();
        let t = parse_response(200, br#"{"access_token":"a","expires_in":300}"#, now).unwrap();
        assert_eq!(t.refresh_at - now, Duration::from_secs(200));
        let on = unix_now() + 600;
        let body = format!(r#"{{"access_token":"a","token_type":"Bearer","expires_on":"{on}"}}"#);
        let t = parse_response(200, body.as_bytes(), now).unwrap();
        assert!((t.expires_at - now).as_secs().abs_diff(600) <= 1);
    }

    #[test]
    fn unusable_responses_and_oauth_errors() {
        let now = Instant::now();
        for body in [
            &b"not json"[..],
            br#"{"token_type":"Bearer","expires_in":10}"#,
            br#"{"access_token":"a","token_type":"mac","expires_in":10}"#,
            br#"{"access_token":"a","expires_in":0}"#,
            br#"{"access_token":"a"}"#,
            br#"{"access_token":"a\nb","expires_in":10}"#,
        ] {
            assert!(matches!(
                parse_response(200, body, now),
                Err(AcquireError::BadResponse(_))
            ));
        }
        let err = parse_response(
            401,
            br#"{"error":"invalid_client","error_description":"AADSTS7000215: Invalid client secret provided.\r\nTrace ID: x","error_codes":[7000215]}"#,
            now,
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "token endpoint answered 401 invalid_client: AADSTS7000215: Invalid client secret provided. (error_codes 7000215)"
        );
        assert!(!err.idp_unavailable());
        assert!(parse_response(503, b"", now).unwrap_err().idp_unavailable());
    }
}
