//! RFC 6750 §2.1: exactly one `Authorization` header, scheme `Bearer` (any case), one token.

use http::{HeaderMap, header};

use super::jwt::TokenError;
use super::refusal::Refusal;

/// The token of the request's single `Authorization: Bearer` header.
pub fn extract(headers: &HeaderMap, max_token_bytes: usize) -> Result<&str, Refusal> {
    let mut values = headers.get_all(header::AUTHORIZATION).iter();
    let value = match (values.next(), values.next()) {
        (None, _) => return Err(Refusal::MissingToken),
        (Some(_), Some(_)) => {
            return Err(Refusal::MalformedAuthorization(
                "more than one Authorization header",
            ));
        }
        (Some(v), None) => v,
    };
    // Checked before any parsing: a huge header costs nothing more than its length.
    if value.len() > max_token_bytes + "Bearer ".len() {
        return Err(Refusal::Token(TokenError::TooLarge));
    }
    let text = value
        .to_str()
        .map_err(|_| Refusal::MalformedAuthorization("the Authorization header is not ASCII"))?;
    let (scheme, token) = text.trim().split_once(' ').unwrap_or((text.trim(), ""));
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(Refusal::MalformedAuthorization(
            "the Authorization scheme must be Bearer",
        ));
    }
    let token = token.trim();
    if token.is_empty() {
        return Err(Refusal::MalformedAuthorization("the Bearer token is empty"));
    }
    // Bytes, not chars: the token is ASCII (checked above) and this scan runs on every request.
    if token.bytes().any(|b| matches!(b, b' ' | b'\t' | b',')) {
        return Err(Refusal::MalformedAuthorization(
            "exactly one Bearer token is allowed",
        ));
    }
    Ok(token)
}

#[cfg(test)]
mod tests {
    use http::HeaderValue;

    use super::*;

    fn headers(values: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append(header::AUTHORIZATION, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn scheme_is_case_insensitive() {
        for v in ["Bearer abc", "bearer abc", "BEARER abc", "Bearer  abc "] {
            assert_eq!(extract(&headers(&[v]), 100).ok(), Some("abc"), "{v}");
        }
    }

    #[test]
    fn refusals() {
        assert!(matches!(extract(&headers(&[]), 100), Err(Refusal::MissingToken)));
        assert!(matches!(
            extract(&headers(&["Bearer a", "Bearer b"]), 100),
            Err(Refusal::MalformedAuthorization(_))
        ));
        assert!(matches!(
            extract(&headers(&["Basic dXNlcjpwYXNz"]), 100),
            Err(Refusal::MalformedAuthorization(_))
        ));
        assert!(matches!(
            extract(&headers(&["Bearer"]), 100),
            Err(Refusal::MalformedAuthorization(_))
        ));
        assert!(matches!(
            extract(&headers(&["Bearer a b"]), 100),
            Err(Refusal::MalformedAuthorization(_))
        ));
        let big = format!("Bearer {}", "a".repeat(101));
        assert!(matches!(
            extract(&headers(&[&big]), 100),
            Err(Refusal::Token(TokenError::TooLarge))
        ));
    }
}
